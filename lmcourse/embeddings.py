"""Embeddings and positions: token vectors, similarity, and three ways to say *where*.

An embedding table is a matrix W of shape (V, C): row v is the vector of token v. Looking
up ids is the same as multiplying their one-hot rows by W, which is why the table is an
ordinary learnable weight. Attention alone is blind to order (permute the tokens and the
outputs permute with them), so a model adds or applies positions:

- sinusoidal (Vaswani et al. 2017): a fixed (T, C) table added to the token vectors;
- learned (GPT-2's `wpe`): a second embedding table indexed by position;
- rotary, RoPE (Su et al. 2021): rotate each query/key pair of dimensions by an angle
  proportional to the position, so that q·k depends only on the offset between them.

Derived in chapters/03_embeddings.ipynb.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "one_hot",
    "embed_by_matmul",
    "cosine_similarity",
    "nearest",
    "sinusoidal_positions",
    "LearnedPositionalEmbedding",
    "rope_frequencies",
    "apply_rotary",
]


# ----------------------------------------------------------------------------- checks

def _check_ids(ids: Tensor, vocab_size: int) -> None:
    if not isinstance(ids, Tensor):
        raise ValueError(f"ids must be a torch.Tensor of integers, got {type(ids).__name__}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ValueError(f"ids must have an integer dtype, got {ids.dtype}")
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size <= 0:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    if ids.numel() == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        bad = ids[(ids < 0) | (ids >= vocab_size)].unique()[:5].tolist()
        raise ValueError(
            f"token ids must lie in [0, {vocab_size - 1}] (vocab_size={vocab_size}), "
            f"got min={lo}, max={hi}; offending ids include {bad}"
        )


def _check_length_dim(T: int, d: int, *, even: bool, what: str) -> None:
    if not isinstance(T, int) or isinstance(T, bool) or T <= 0:
        raise ValueError(f"{what}: T (number of positions) must be a positive int, got T={T!r}")
    if not isinstance(d, int) or isinstance(d, bool) or d <= 0:
        raise ValueError(f"{what}: d (embedding width) must be a positive int, got d={d!r}")
    if even and d % 2:
        raise ValueError(f"{what}: d must be even (dimensions come in sin/cos pairs), got d={d}")


def _check_float_dtype(dtype: torch.dtype, what: str) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"{what}: dtype must be a floating dtype (sin and cos lie in [-1, 1]), got {dtype!r}")


def _check_base(base: float, what: str) -> None:
    if not isinstance(base, (int, float)) or isinstance(base, bool) or not base > 1.0:
        raise ValueError(f"{what}: base must be > 1, got base={base!r}")


# ------------------------------------------------------------------- lookup = one-hot @ W

def one_hot(ids: Tensor, vocab_size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot rows for integer `ids` of any shape (...,): returns (..., vocab_size).

    Entry [..., v] is 1 where ids[...] == v and 0 elsewhere, in `dtype` (a float, so the
    result can be multiplied by a weight matrix). Raises ValueError naming the offending
    ids when any lies outside [0, vocab_size). Derived in chapters/03_embeddings.ipynb.
    """
    _check_ids(ids, vocab_size)
    out = torch.zeros(*ids.shape, vocab_size, dtype=dtype, device=ids.device)
    return out.scatter_(-1, ids.unsqueeze(-1), 1)


def embed_by_matmul(ids: Tensor, weight: Tensor) -> Tensor:
    """Embedding lookup written as a matrix product: one_hot(ids) @ weight.

    ids (...,) integers in [0, V), weight (V, C); returns (..., C), exactly equal to
    `weight[ids]`, `F.embedding(ids, weight)` and `nn.Embedding` (each output row is
    1·W[v] plus zeros). Slow on purpose: it shows why the lookup is a linear layer.
    Derived in chapters/03_embeddings.ipynb.
    """
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 2-D (V, C) tensor, got {shape}")
    return one_hot(ids, weight.shape[0], dtype=weight.dtype) @ weight


# ------------------------------------------------------------------------- similarity

def cosine_similarity(a: Tensor, b: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """All-pairs cosine similarity: a (N, C), b (M, C) or None (= a); returns (N, M).

    Entry [i, j] = a_i·b_j / (‖a_i‖ ‖b_j‖), a number in [-1, 1] that ignores vector
    length and keeps only direction. Both sides are normalised; a zero row gets
    similarity 0 (norms are clamped below at `eps`). Derived in chapters/03_embeddings.ipynb.
    """
    b = a if b is None else b
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor) or t.ndim != 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"cosine_similarity: {name} must be a 2-D (N, C) tensor, got {shape}")
        if not t.is_floating_point():
            raise ValueError(f"cosine_similarity: {name} must be a floating tensor, got dtype {t.dtype}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"cosine_similarity: a and b need the same width C, got a {tuple(a.shape)}, b {tuple(b.shape)}"
        )
    a_n = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
    b_n = b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    return a_n @ b_n.T


def nearest(weight: Tensor, query: int | Tensor, k: int = 5) -> tuple[Tensor, Tensor]:
    """The k rows of `weight` (V, C) most cosine-similar to `query`: returns (ids (k,), sims (k,)).

    `query` is a row index (that row itself is then left out) or a vector (C,). Results
    are sorted by decreasing similarity; ties keep the lower id first.
    Derived in chapters/03_embeddings.ipynb.
    """
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"nearest: weight must be a 2-D (V, C) tensor, got {getattr(weight, 'shape', weight)!r}")
    V, C = weight.shape
    exclude = None
    if isinstance(query, int) and not isinstance(query, bool):
        if not 0 <= query < V:
            raise ValueError(f"nearest: query id {query} is outside [0, {V - 1}]")
        exclude, vec = query, weight[query]
    elif isinstance(query, Tensor) and query.shape == (C,):
        vec = query.to(weight.dtype)
    else:
        raise ValueError(f"nearest: query must be an int id or a ({C},) vector, got {getattr(query, 'shape', query)!r}")
    available = V - (exclude is not None)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= available:
        raise ValueError(f"nearest: k must be an int in [1, {available}], got k={k!r}")
    sims = cosine_similarity(vec[None], weight)[0]
    if exclude is not None:
        sims[exclude] = -float("inf")
    order = torch.sort(sims, descending=True, stable=True).indices[:k]
    return order, sims[order]


# -------------------------------------------------------------------------- positions

def sinusoidal_positions(
    T: int, d: int, base: float = 10000.0, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """The fixed sinusoidal encodings of Vaswani et al. (2017): returns (T, d).

    Interleaved layout, as in the paper: for pair i = 0 .. d/2-1 and angle
    θ_i = pos / base^(2i/d), column 2i holds sin(θ_i) and column 2i+1 holds cos(θ_i).
    Every value lies in [-1, 1] and PE(pos + k) is PE(pos) rotated by k/base^(2i/d) in
    each (2i, 2i+1) plane. Computed in float64 on the CPU, then cast and moved to `device`.
    d must be even.
    Derived in chapters/03_embeddings.ipynb.
    """
    _check_length_dim(T, d, even=True, what="sinusoidal_positions")
    _check_base(base, "sinusoidal_positions")
    _check_float_dtype(dtype, "sinusoidal_positions")
    pos = torch.arange(T, dtype=torch.float64)[:, None]                     # (T, 1)
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)    # (d/2,)
    angle = pos * inv_freq                                                  # (T, d/2)
    pe = torch.empty(T, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.to(device=device, dtype=dtype)


class LearnedPositionalEmbedding(nn.Module):
    """GPT-2's learned positions: a (block_size, n_embd) table named `wpe`.

    forward(T, offset=0) returns rows offset .. offset+T-1, shape (T, n_embd), to be added
    to the token embeddings (B, T, n_embd) by broadcasting. Unlike sinusoids it cannot
    go beyond `block_size`: asking for more raises ValueError.
    Derived in chapters/03_embeddings.ipynb.
    """

    def __init__(self, block_size: int, n_embd: int) -> None:
        super().__init__()
        _check_length_dim(block_size, n_embd, even=False, what="LearnedPositionalEmbedding")
        self.block_size = block_size
        self.wpe = nn.Embedding(block_size, n_embd)

    def forward(self, T: int, offset: int = 0) -> Tensor:
        if not isinstance(T, int) or isinstance(T, bool) or T <= 0:
            raise ValueError(f"LearnedPositionalEmbedding: T must be a positive int, got T={T!r}")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"LearnedPositionalEmbedding: offset must be an int >= 0, got {offset!r}")
        if offset + T > self.block_size:
            raise ValueError(
                f"sequence of T={T} positions (offset={offset}) exceeds block_size={self.block_size}: "
                f"learned positions exist only for 0..{self.block_size - 1}"
            )
        pos = torch.arange(offset, offset + T, device=self.wpe.weight.device)
        return self.wpe(pos)

    def extra_repr(self) -> str:
        return f"block_size={self.block_size}"


def rope_frequencies(
    T: int,
    d: int,
    base: float = 10000.0,
    offset: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Cos and sin tables for rotary embeddings: returns (cos, sin), each (T, d/2).

    Row t is position p = offset + t; column i is the angle p·θ_i with θ_i = base^(-2i/d),
    so the first pair turns fastest (one radian per position) and the last slowest.
    Computed in float64 on the CPU, then cast and moved to `device`. Pass them to
    `apply_rotary`. d must be even.
    Derived in chapters/03_embeddings.ipynb.
    """
    _check_length_dim(T, d, even=True, what="rope_frequencies")
    _check_base(base, "rope_frequencies")
    _check_float_dtype(dtype, "rope_frequencies")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"rope_frequencies: offset must be an int >= 0, got {offset!r}")
    pos = torch.arange(offset, offset + T, dtype=torch.float64)[:, None]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = pos * theta                                                     # (T, d/2)
    return torch.cos(angle).to(device=device, dtype=dtype), torch.sin(angle).to(device=device, dtype=dtype)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate queries or keys x (..., T, d) by their positions: returns (..., T, d).

    Half-split pairing (GPT-NeoX / Llama in Hugging Face): dimension i is paired with
    i + d/2, and the pair (x1, x2) at position t becomes
    (x1·cos - x2·sin, x1·sin + x2·cos) with cos, sin from `rope_frequencies` (T, d/2).
    Each pair turns by +angle (counter-clockwise), so norms are kept and
    ⟨R(m)q, R(n)k⟩ depends only on m - n. Derived in chapters/03_embeddings.ipynb.
    """
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ValueError(f"apply_rotary: x must be a (..., T, d) tensor, got {getattr(x, 'shape', x)!r}")
    if not x.is_floating_point():
        raise ValueError(f"apply_rotary: x must be a floating tensor (it is rotated, not indexed), got dtype {x.dtype}")
    T, d = x.shape[-2], x.shape[-1]
    if d % 2:
        raise ValueError(f"apply_rotary: the last dimension d must be even, got x {tuple(x.shape)}")
    if not (isinstance(cos, Tensor) and isinstance(sin, Tensor)) or cos.shape != sin.shape or cos.shape[-2:] != (T, d // 2):
        raise ValueError(
            f"apply_rotary: cos and sin must end in (T, d/2) = ({T}, {d // 2}) for x {tuple(x.shape)}, "
            f"got cos {tuple(getattr(cos, 'shape', ()))}, sin {tuple(getattr(sin, 'shape', ()))}"
        )
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    cos, sin = cos.to(device=x.device, dtype=x.dtype), sin.to(device=x.device, dtype=x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
