"""Chapter 03 exercises: embedding lookup as a matrix product, cosine similarity and
nearest neighbours, sinusoidal positions, rotary positions.

Derived in chapters/03_embeddings.ipynb; practised in solutions/03_embeddings.ipynb.
"""
from __future__ import annotations

import torch

from lmcourse import forbid
from lmcourse.checks import Case, Exercise, Wrong


def _sizes(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random sizes in [low, high), so a hidden seed changes shapes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------ 3.1 lookup = one-hot @ W


def _embed_by_matmul(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    V = weight.shape[0]
    one_hot = (ids[..., None] == torch.arange(V)).to(weight.dtype)  # (..., V)
    return one_hot @ weight                                          # (..., C)


def _embed_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    V, C, n, B, T, V2, C2 = _sizes(g, 7, 2, 12)
    ids = torch.randint(0, V, (n,), generator=g)
    ids[0] = V - 1  # the last row is always looked up (an off-by-one in the one-hot misses it)
    return [
        Case((torch.tensor([2, 0, 1]), torch.randn(4, 4, generator=g, dtype=torch.float64)), label="square 4×4 table"),
        Case((ids, torch.randn(V, C, generator=g, dtype=torch.float64)), label="1-D ids, the last row included"),
        Case((torch.randint(0, V2, (B, T), generator=g), torch.randn(V2, C2, generator=g)),
             label="batch (B, T), float32"),
    ]


def _embed_transposed(ids, weight):
    V = weight.shape[0]
    return (ids[..., None] == torch.arange(V)).to(weight.dtype) @ weight.T


def _embed_off_by_one(ids, weight):
    V = weight.shape[0]
    return (ids[..., None] == torch.arange(1, V + 1)).to(weight.dtype) @ weight


def _embed_half(ids, weight):
    V = weight.shape[0]
    return (ids[..., None] == torch.arange(V)).half() @ weight.half()


def _embed_flat(ids, weight):
    V = weight.shape[0]
    return (ids.reshape(-1)[:, None] == torch.arange(V)).to(weight.dtype) @ weight


def _embed_bag(ids, weight):
    V = weight.shape[0]
    one_hot = (ids[..., None] == torch.arange(V)).to(weight.dtype)
    return (one_hot.sum(dim=-2, keepdim=True) @ weight).expand(*ids.shape, weight.shape[1])


embed_by_matmul = Exercise(
    id="3.1",
    name="embed_by_matmul",
    title="An embedding lookup as one-hot @ W",
    reference=_embed_by_matmul,
    forbidden=("lmcourse.embeddings.embed_by_matmul", "torch.nn.functional.embedding"),
    forbidden_ops=forbid.EMBEDDING,
    cases=_embed_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_embed_transposed, "you multiplied by Wᵀ, so you picked columns of W, not rows: the table is (V, C), "
              "row v is token v's vector, and one_hot (..., V) @ W (V, C) gives (..., C)."),
        Wrong(_embed_off_by_one, "your one-hot is shifted by one (token v picks row v-1, token 0 gets zeros): "
              "ids start at 0, so compare ids with torch.arange(V) = 0 .. V-1."),
        Wrong(_embed_bag, "every position got the same vector, the sum over the sequence: you summed the one-hot rows "
              "(a bag of words) before multiplying. Keep one one-hot row per position."),
        Wrong(_embed_half, "your output is float16: a one-hot row selects a row of W exactly, so build the one-hot "
              "in weight's own dtype (.to(weight.dtype)) and do not cast W; float16 keeps only about 3 digits."),
        Wrong(_embed_flat, "you flattened the ids: the output keeps the shape of ids plus one axis, (..., C), so ids "
              "of shape (2, 5) give (2, 5, C), not (10, C). Add the one-hot axis at the end instead of flattening."),
    ],
    hint="Compare every id with each of the V possible ids (broadcasting over a new last axis) to get a one-hot "
    "array of shape (..., V); make it the same dtype as the table, then one matrix product with the (V, C) table.",
)

# ------------------------------------------------------------- 3.2 cosine similarity


def _cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    return a @ b.T


def _cos_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 1)
    M, extra, C, n, C2 = _sizes(g, 5, 2, 10)
    N = M + extra  # N != M, so a transposed answer has the wrong shape
    return [
        Case((torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[6.0, 8.0], [0.0, 2.0], [-1.0, 0.0]])),
             label="2-D vectors, different lengths"),
        Case((torch.randn(N, C, generator=g, dtype=torch.float64) * 3,
              torch.randn(M, C, generator=g, dtype=torch.float64) + 1), label="N×C against M×C, N ≠ M"),
        Case((torch.randn(n, 2 * C2, generator=g, dtype=torch.float64),
              torch.randn(n, 2 * C2, generator=g, dtype=torch.float64) * 0.1), label="square N×N"),
    ]


def _cos_dot(a, b):
    return a @ b.T


def _cos_one_side(a, b):
    return (a / a.norm(dim=1, keepdim=True)) @ b.T


def _cos_wrong_dim(a, b):
    return (a / a.norm(dim=0, keepdim=True)) @ (b / b.norm(dim=0, keepdim=True)).T


def _cos_product_norm(a, b):
    return (a @ b.T) / (a.norm() * b.norm())


cosine_similarity = Exercise(
    id="3.2",
    name="cosine_similarity",
    title="All-pairs cosine similarity",
    reference=_cosine_similarity,
    forbidden=("lmcourse.embeddings.cosine_similarity", "torch.nn.functional.cosine_similarity"),
    forbidden_ops=("aten::cosine_similarity",),  # F.cosine_similarity, nn.CosineSimilarity
    cases=_cos_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_cos_dot, "this is the plain dot product a @ bᵀ: long vectors get large scores. "
              "Divide each row of a and of b by its length first, so only the direction counts."),
        Wrong(_cos_one_side, "you normalised only one side: divide the rows of both a and b by their norms."),
        Wrong(_cos_wrong_dim, "you normalised the columns (norm over dim=0): each row is a vector, "
              "so take the norm along dim=1 with keepdim=True."),
        Wrong(_cos_product_norm, "you divided by the norms of the whole matrices (one number each): "
              "every pair needs its own ‖a_i‖‖b_j‖; normalise each row."),
    ],
    hint="cos(a_i, b_j) = a_i·b_j / (‖a_i‖‖b_j‖). Scale every row of a and of b to length 1 first "
    "(the norm along the channel axis, kept so it broadcasts); then one matrix product gives all N×M pairs.",
)

# ------------------------------------------------------------- 3.3 nearest neighbours


def _nearest(weight: torch.Tensor, query: int, k: int) -> torch.Tensor:
    w = weight / weight.norm(dim=1, keepdim=True)
    sims = w @ w[query]
    sims[query] = -float("inf")                  # a word is not its own neighbour
    return torch.sort(sims, descending=True, stable=True).indices[:k]


def _nearest_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 2)
    W = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.9, 0.3], [3.0, 5.0], [-1.0, 0.2], [0.7, 0.7]])
    V1, V2, V3 = _sizes(g, 3, 8, 25)
    C1, C2, C3 = _sizes(g, 3, 2, 9)
    q1, k1, k2 = int(torch.randint(0, V1, (1,), generator=g)), *_sizes(g, 2, 1, 8)
    # Tied rows: copies of the query scaled by powers of two have exactly the same cosine, 1,
    # so only a stable sort returns them lower id first.
    tied = torch.randn(V3, C3, generator=g, dtype=torch.float64)
    q3 = int(torch.randint(0, V3, (1,), generator=g))
    copies = [int(i) for i in torch.randperm(V3, generator=g) if i != q3][:4]
    for j, i in enumerate(copies):
        tied[i] = tied[q3] * 2.0 ** (j - 1)
    return [
        Case((W, 0, 3), label="hand-made 6×2 table, query 0"),
        Case((torch.randn(V1, C1, generator=g, dtype=torch.float64) * torch.rand(V1, 1, generator=g, dtype=torch.float64) * 5,
              q1, k1), label="random table, query and k"),
        Case((torch.randn(V2, C2, generator=g, dtype=torch.float64), V2 - 1, k2), label="random table, last id"),
        Case((tied, q3, 5), label="four rows tied with the query: lower id first"),
    ]


def _nearest_self(weight, query, k):
    w = weight / weight.norm(dim=1, keepdim=True)
    return torch.sort(w @ w[query], descending=True, stable=True).indices[:k]


def _nearest_dot(weight, query, k):
    sims = weight @ weight[query]
    sims[query] = -float("inf")
    return torch.sort(sims, descending=True, stable=True).indices[:k]


def _nearest_ascending(weight, query, k):
    w = weight / weight.norm(dim=1, keepdim=True)
    sims = w @ w[query]
    sims[query] = float("inf")
    return torch.sort(sims, descending=False, stable=True).indices[:k]


def _nearest_topk(weight, query, k):
    w = weight / weight.norm(dim=1, keepdim=True)
    sims = w @ w[query]
    sims[query] = -float("inf")
    return torch.topk(sims, k).indices


nearest = Exercise(
    id="3.3",
    name="nearest",
    title="Nearest neighbours by cosine similarity",
    reference=_nearest,
    forbidden=("lmcourse.embeddings.nearest",),
    cases=_nearest_cases,
    wrong=[
        Wrong(_nearest_self, "the query itself came back as its own nearest neighbour (similarity 1): "
              "leave it out, e.g. set its similarity to -inf before sorting."),
        Wrong(_nearest_dot, "you ranked by the raw dot product, so long vectors win whatever their direction: "
              "normalise the rows first (cosine similarity)."),
        Wrong(_nearest_ascending, "you returned the least similar rows: sort with descending=True."),
        Wrong(_nearest_topk, "rows with exactly the same similarity came back out of id order: topk (or an unstable "
              "sort) may order ties any way. Use torch.sort(..., descending=True, stable=True)."),
    ],
    hint="Normalise every row, score all rows against the query row with one product, give the query itself "
    "the lowest possible score, then sort from high to low (stably) and keep the first k indices.",
)

# ---------------------------------------------------------- 3.4 sinusoidal positions


def _sinusoidal(T: int, d: int, base: float = 10000.0) -> torch.Tensor:
    pos = torch.arange(T, dtype=torch.float64)[:, None]                  # (T, 1)
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)  1 / base^(2i/d)
    pe = torch.zeros(T, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq)
    return pe


def _sin_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 5)
    T, half = (int(v) for v in torch.randint(2, 40, (2,), generator=g))
    return [
        Case((6, 4), label="T=6, d=4"),
        Case((50, 16), label="T=50, d=16"),
        Case((20, 8), {"base": 100.0}, label="T=20, d=8, base=100"),
        Case((T, 2 * half), {"base": float(torch.randint(50, 20000, (1,), generator=g))}, label="random T, d and base"),
    ]


def _sin_swapped(T, d, base=10000.0):
    pe = _sinusoidal(T, d, base)
    return torch.stack([pe[:, 1::2], pe[:, 0::2]], dim=-1).reshape(T, d)


def _sin_i_not_2i(T, d, base=10000.0):
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    inv_freq = base ** (-torch.arange(d // 2, dtype=torch.float64) / d)
    pe = torch.zeros(T, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq)
    return pe


def _sin_column_index(T, d, base=10000.0):
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    j = torch.arange(d, dtype=torch.float64)
    angle = pos * base ** (-j / d)
    return torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))


def _sin_fixed_base(T, d, base=10000.0):
    return _sinusoidal(T, d, 10000.0)


def _sin_concat(T, d, base=10000.0):
    pe = _sinusoidal(T, d, base)
    return torch.cat([pe[:, 0::2], pe[:, 1::2]], dim=-1)


sinusoidal_positions = Exercise(
    id="3.4",
    name="sinusoidal_positions",
    title="Sinusoidal positional encodings",
    reference=_sinusoidal,
    forbidden=("lmcourse.embeddings.sinusoidal_positions",),
    cases=_sin_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_sin_swapped, "sin and cos are swapped: even columns 2i hold sin(pos/base^(2i/d)), "
              "odd columns 2i+1 hold cos. Row 0 should read 0, 1, 0, 1, ..."),
        Wrong(_sin_i_not_2i, "your frequencies fall off too slowly: the exponent is 2i/d, with i the pair index "
              "(i = 0 .. d/2-1), not i/d. Equivalently, use torch.arange(0, d, 2) / d."),
        Wrong(_sin_column_index, "each sin/cos pair must share one frequency: you used the column index j in "
              "base^(j/d), so column 2i+1 got a different frequency than column 2i. Use 2i/d for both."),
        Wrong(_sin_fixed_base, "you ignored the `base` argument (hard-coded 10000): use base ** (2i/d)."),
        Wrong(_sin_concat, "the values are right but the layout is not: all sines first, then all cosines, is another "
              "convention. Here they interleave: pe[:, 0::2] = sin, pe[:, 1::2] = cos."),
    ],
    hint="Build the (T, d/2) table of angles pos / base^(2i/d), one column per pair i, with an outer product "
    "(broadcasting) in float64. Its sines go to the even columns and its cosines to the odd ones.",
)

# ------------------------------------------------------------- 3.5 rotary positions


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]         # pair i is (x1[i], x2[i]) = (x[i], x[i + d/2])
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def _rope_tables(T: int, d: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    pos = torch.arange(offset, offset + T, dtype=torch.float64)[:, None]
    angle = pos * 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    return torch.cos(angle), torch.sin(angle)


def _rope_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 3)
    B, H, T, T2 = _sizes(g, 4, 1, 9)
    d, d2 = (2 * n for n in _sizes(g, 2, 1, 9))
    offset, offset2 = _sizes(g, 2, 1, 50)
    return [
        Case((torch.randn(5, 4, generator=g, dtype=torch.float64), *_rope_tables(5, 4)), label="x (5, 4)"),
        Case((torch.randn(B, H, T, d, generator=g, dtype=torch.float64), *_rope_tables(T, d, offset=offset)),
             label="x (B, H, T, d), positions from an offset"),
        Case((torch.randn(T2, d2, generator=g, dtype=torch.float64), *_rope_tables(T2, d2, offset=offset2)),
             label="x (T, d), positions from an offset"),
    ]


def _rope_minus(x, cos, sin):
    return _apply_rotary(x, cos, -sin)


def _rope_interleaved(x, cos, sin):
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out


def _rope_halves_swapped(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * sin + x2 * cos, x1 * cos - x2 * sin], dim=-1)


def _rope_scale(x, cos, sin):
    return x * torch.cat([cos, sin], dim=-1)


apply_rotary = Exercise(
    id="3.5",
    name="apply_rotary",
    title="Rotary positional embeddings (RoPE)",
    reference=_apply_rotary,
    forbidden=("lmcourse.embeddings.apply_rotary",),
    cases=_rope_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_rope_minus, "you rotated by -θ (clockwise): the first half is x1·cos - x2·sin and the second "
              "x1·sin + x2·cos. The scores still depend only on offsets, but with the opposite sign convention."),
        Wrong(_rope_interleaved, "you paired neighbouring dimensions (0,1), (2,3), ...: that is the interleaved "
              "(GPT-J / original paper) layout. Here dimension i pairs with i + d/2 (half-split, as in Llama)."),
        Wrong(_rope_halves_swapped, "the two halves of your output are swapped: write the x1-side result "
              "(x1·cos - x2·sin) into the first half and x1·sin + x2·cos into the second."),
        Wrong(_rope_scale, "you multiplied by cos and sin element-wise instead of rotating: each output mixes "
              "both members of a pair, (x1, x2) -> (x1·cos - x2·sin, x1·sin + x2·cos)."),
    ],
    hint="Cut the last dimension of x into its first and second halves; cos and sin, (T, d/2), broadcast over "
    "the leading dims. Rotate each (first-half, second-half) pair by its angle, then join the two rotated halves.",
)
