"""Chapter 04 exercises: the causal mask, causal scaled dot-product attention, splitting
the channels into heads, and a whole multi-head causal self-attention layer.

Derived in chapters/04_self_attention.ipynb; practised in solutions/04_self_attention.ipynb.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from lmcourse import forbid
from lmcourse.checks import Case, Exercise, Wrong


def _sizes(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random sizes in [low, high), so a hidden seed changes shapes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ---------------------------------------------------------------- 4.1 the causal mask


def _causal_mask(T: int) -> torch.Tensor:
    return torch.ones(T, T, dtype=torch.bool).tril()  # [i, j] True when j <= i: the past and itself


def _mask_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    T = int(torch.randint(3, 12, (1,), generator=g))
    return [Case((4,), label="T=4"), Case((1,), label="T=1"), Case((2,), label="T=2"), Case((T,), label="random T")]


def _mask_upper(T):
    return torch.ones(T, T, dtype=torch.bool).triu()


def _mask_strict(T):
    return torch.ones(T, T, dtype=torch.bool).tril(-1)


def _mask_inverted(T):
    return ~torch.ones(T, T, dtype=torch.bool).tril()


def _mask_float(T):
    return torch.ones(T, T).tril()


causal_mask = Exercise(
    id="4.1",
    name="causal_mask",
    title="The causal mask",
    reference=_causal_mask,
    forbidden=("lmcourse.attention.causal_mask",),
    cases=_mask_cases,
    wrong=[
        Wrong(_mask_upper, "your mask is upper triangular: row i (the query) would see the future keys j >= i. "
              "Keep [i, j] when j <= i: the lower triangle, torch.tril."),
        Wrong(_mask_strict, "the diagonal is False, so a token cannot attend to itself (and token 0 sees nothing at all, "
              "which makes its softmax row 0/0). Keep j <= i, diagonal included: tril with diagonal=0."),
        Wrong(_mask_inverted, "your mask says where to *block* (True = masked). In this course, as in PyTorch's boolean "
              "attn_mask for F.scaled_dot_product_attention, True means keep: return the lower triangle itself."),
        Wrong(_mask_float, "right pattern, wrong dtype: return a bool tensor (dtype=torch.bool), so that it can be used "
              "with masked_fill(~mask, -inf); a float 0/1 mask would be added to or multiplied with the scores instead."),
    ],
    hint="Entry [i, j] is True exactly when j <= i: the lower triangle of a T×T matrix of True, diagonal "
    "included. PyTorch has a function for the lower triangle of a matrix.",
)

# ---------------------------------------------------- 4.2 causal scaled dot-product attention


def _causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    T, d_k = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)                # (..., T, T)
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~mask, float("-inf"))                 # the future gets -inf ...
    weights = torch.softmax(scores, dim=-1)                           # ... so weight exactly 0
    return weights @ v                                                # (..., T, d_v)


def _att_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 4)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    B, T, dk, dv = _sizes(g, 4, 2, 12)
    B2, H, T2, hs = _sizes(g, 4, 2, 7)
    d1, dv1 = _sizes(g, 2, 1, 6)
    return [
        Case((r(4, 8), r(4, 8), r(4, 8)), label="T=4, d=8"),
        Case((r(B, T, dk), r(B, T, dk), r(B, T, dv)), label="batch (B, T, d), its own d_v"),
        Case((r(B2, H, T2, hs), r(B2, H, T2, hs), r(B2, H, T2, hs)), label="(B, heads, T, hs)"),
        Case((r(1, d1) * 4, r(1, d1) * 4, r(1, dv1)), label="T=1"),
    ]


def _att_k_dot_T(q, k, v):
    T, d = q.shape[-2:]
    with warnings.catch_warnings():  # torch deprecates .T on >2-D tensors; the mistake is the point here
        warnings.simplefilter("ignore", UserWarning)
        kT = k.T
    scores = (q @ kT / math.sqrt(d)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _att_no_scale(q, k, v):
    T = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _att_scale_d(q, k, v):
    T, d = q.shape[-2:]
    scores = (q @ k.transpose(-2, -1) / d).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _att_wrong_axis(q, k, v):
    T, d = q.shape[-2:]
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-2) @ v


def _att_mask_after(q, k, v):
    T, d = q.shape[-2:]
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)
    return (weights * torch.ones(T, T, dtype=q.dtype).tril()) @ v


def _att_zero_fill(q, k, v):
    T, d = q.shape[-2:]
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), 0.0)
    return torch.softmax(scores, dim=-1) @ v


def _att_sees_next(q, k, v):
    T, d = q.shape[-2:]
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _att_blocks_self(q, k, v):
    T, d = q.shape[-2:]
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _att_no_mask(q, k, v):
    d = q.shape[-1]
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1) @ v


def _att_mask_inverted(q, k, v):
    T, d = q.shape[-2:]
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


causal_attention = Exercise(
    id="4.2",
    name="causal_attention",
    title="Causal scaled dot-product attention",
    reference=_causal_attention,
    forbidden=("lmcourse.attention.scaled_dot_product_attention", "torch.nn.functional.scaled_dot_product_attention"),
    forbidden_ops=forbid.ATTENTION,
    cases=_att_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_att_no_scale, "looks like you forgot the 1/√d_k scaling: q·k has variance d_k, so unscaled scores "
              "saturate the softmax. Divide the scores by math.sqrt(d_k) before the softmax."),
        Wrong(_att_scale_d, "you divided the scores by d_k instead of √d_k: the standard deviation of q·k is √d_k, "
              "so dividing by √d_k brings it back to 1. Use math.sqrt(q.shape[-1])."),
        Wrong(_att_wrong_axis, "the softmax runs over the wrong axis: each query row (dim -2 indexes queries) must be a "
              "distribution over the keys, so normalise over the last axis, softmax(scores, dim=-1)."),
        Wrong(_att_mask_after, "you applied the mask after the softmax: zeroing weights afterwards leaves rows that no "
              "longer sum to 1 (and the future still shaped the normaliser). Fill the scores with -inf first, then softmax."),
        Wrong(_att_zero_fill, "you filled the masked scores with 0, not -inf: exp(0) = 1, so the future still gets weight. "
              "Use masked_fill(~mask, float('-inf')) so that exp gives exactly 0."),
        Wrong(_att_sees_next, "your mask is off by one: every token also sees the next one (tril(diagonal=1)). "
              "Keep key j only when j <= i: tril with diagonal=0."),
        Wrong(_att_blocks_self, "your mask is off by one: the diagonal is masked, so a token cannot see itself and the first "
              "token sees nothing (a row of -inf gives NaN). Mask only j > i: triu(diagonal=1), or keep tril()."),
        Wrong(_att_no_mask, "there is no causal mask: every token attends to the whole sequence, future included. "
              "Fill the scores above the diagonal with -inf before the softmax."),
        Wrong(_att_mask_inverted, "your mask is inverted: you filled the past and the diagonal with -inf and kept the future "
              "(the last token sees nothing, a row of NaN). tril() marks what to keep, so fill where it is False: "
              "masked_fill(~mask, float('-inf'))."),
        Wrong(_att_k_dot_T, "k.T reverses ALL the dimensions of a batched tensor ((B, T, d) becomes (d, T, B)), "
              "so the product fails or mixes batches. Swap only the last two: k.transpose(-2, -1) (or k.mT)."),
    ],
    hint="The scores are q times k transposed in its last two dimensions (so batch and head dims ride along), "
    "scaled by 1/√d_k: shape (..., T, T). Set the future (key after query) to -inf BEFORE the softmax over keys, "
    "then weight v.",
)

# -------------------------------------------------------------- 4.3 split the channels into heads


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)  # (B, T, nh, hs) -> (B, nh, T, hs)


def _split_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 5)
    return [
        Case((torch.arange(2 * 5 * 12, dtype=torch.float32).reshape(2, 5, 12), 3), label="(2, 5, 12), 3 heads"),
        *(Case((torch.randn(B, T, nh * hs, generator=g), nh), label=label)
          for label, (B, T, nh, hs) in (("random (B, T, C), heads", _sizes(g, 4, 2, 7)),
                                        ("another random (B, T, C), heads", _sizes(g, 4, 2, 7)))),
        Case((torch.randn(*_sizes(g, 3, 1, 8), generator=g), 1), label="1 head"),
    ]


def _split_no_transpose(x, n_head):
    B, T, C = x.shape
    return x.reshape(B, n_head, T, C // n_head)


def _split_interleaved(x, n_head):
    B, T, C = x.shape
    return x.view(B, T, C // n_head, n_head).permute(0, 3, 1, 2)


def _split_forgot_transpose(x, n_head):
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head)


split_heads = Exercise(
    id="4.3",
    name="split_heads",
    title="Multi-head as a reshape: (B, T, C) -> (B, n_head, T, hs)",
    reference=_split_heads,
    forbidden=("lmcourse.attention.split_heads",),
    cases=_split_cases,
    atol=0.0,
    rtol=0.0,
    wrong=[
        Wrong(_split_no_transpose, "right shape, scrambled values: you reshaped straight to (B, nh, T, hs) without a "
              "transpose, which cuts the sequence (not each token's channels) into heads. View as (B, T, nh, hs) first, "
              "then .transpose(1, 2)."),
        Wrong(_split_interleaved, "your heads take every nh-th channel (view(B, T, hs, nh)): head h must own the "
              "consecutive channels h*hs .. (h+1)*hs - 1, so view as (B, T, nh, hs)."),
        Wrong(_split_forgot_transpose, "you stopped at (B, T, nh, hs): move the head axis in front of time with "
              ".transpose(1, 2), so that attention runs over T separately in each head."),
    ],
    hint="First cut each token's C channels into n_head consecutive slices of hs channels (a 4-D view, heads "
    "after time); then swap the time and head axes so each head holds its own (T, hs) sequence.",
)

# ---------------------------------------------------- 4.4 multi-head causal self-attention


def _causal_self_attention(x, w_attn, b_attn, w_proj, b_proj, n_head: int) -> torch.Tensor:
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = F.linear(x, w_attn, b_attn).split(C, dim=-1)           # 3 × (B, T, C)
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)                 # (B, nh, T, T)
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=x.device).tril(), float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v                            # (B, nh, T, hs)
    y = y.transpose(1, 2).reshape(B, T, C)                           # heads side by side again
    return F.linear(y, w_proj, b_proj)                               # (B, T, C)


def _mha_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 6)

    def case(B, T, C, nh, label):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        return Case((r(B, T, C), r(3 * C, C) / math.sqrt(C), r(3 * C) * 0.1, r(C, C) / math.sqrt(C), r(C) * 0.1, nh),
                    label=label)

    (B, T, nh, hs), (B2, T2, nh2, hs2) = _sizes(g, 4, 2, 6), _sizes(g, 4, 2, 6)
    return [
        case(B, T, nh * hs, nh, "random (B, T, C), heads"),
        case(B2, T2, nh2 * hs2, nh2, "another random (B, T, C), heads"),
        case(*_sizes(g, 3, 2, 6), 1, "1 head"),
        case(*_sizes(g, 1, 1, 4), 1, 2 * _sizes(g, 1, 2, 5)[0], 2, "T=1"),
    ]


def _mha_variant(x, w_attn, b_attn, w_proj, b_proj, n_head, *, merge="ok", scale="hs", causal=True, proj=True, heads=True):
    B, T, C = x.shape
    nh = n_head if heads else 1
    hs = C // nh
    q, k, v = F.linear(x, w_attn, b_attn).split(C, dim=-1)
    q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs if scale == "hs" else C)
    if causal:
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v
    y = y.transpose(1, 2).reshape(B, T, C) if merge == "ok" else y.reshape(B, T, C)
    return F.linear(y, w_proj, b_proj) if proj else y


def _mha_dropout_on(x, w_attn, b_attn, w_proj, b_proj, n_head):
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = F.linear(x, w_attn, b_attn).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-2, -1) / math.sqrt(hs)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    weights = F.dropout(torch.softmax(scores, dim=-1), p=0.1)  # training=True by default: random
    return F.linear((weights @ v).transpose(1, 2).reshape(B, T, C), w_proj, b_proj)


def _mha_merge_no_transpose(*a):
    return _mha_variant(*a, merge="no transpose")


def _mha_scale_C(*a):
    return _mha_variant(*a, scale="C")


def _mha_not_causal(*a):
    return _mha_variant(*a, causal=False)


def _mha_no_proj(*a):
    return _mha_variant(*a, proj=False)


def _mha_one_head(*a):
    return _mha_variant(*a, heads=False)


causal_self_attention = Exercise(
    id="4.4",
    name="causal_self_attention",
    title="A multi-head causal self-attention layer (GPT-2's c_attn and c_proj)",
    reference=_causal_self_attention,
    forbidden=(
        "lmcourse.attention.MultiHeadAttention.forward",
        "lmcourse.attention.CausalSelfAttention.forward",
        "torch.nn.MultiheadAttention.forward",
    ),
    # The whole layer in one call; F.scaled_dot_product_attention per head stays allowed, as the text says.
    forbidden_ops=("aten::_native_multi_head_attention", "torch.nn.functional.multi_head_attention_forward"),
    cases=_mha_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_mha_merge_no_transpose, "merging the heads without the transpose: y is (B, nh, T, hs), and "
              "y.reshape(B, T, C) mixes positions across heads. Use y.transpose(1, 2).reshape(B, T, C)."),
        Wrong(_mha_scale_C, "you scaled by 1/√C (the model width), but each head's dot product has hs = C // n_head "
              "terms: scale by 1/√hs."),
        Wrong(_mha_not_causal, "no causal mask: position t sees the tokens after it. Fill the scores above the "
              "diagonal with -inf before the softmax."),
        Wrong(_mha_no_proj, "the heads are merged but the output projection is missing: finish with "
              "F.linear(y, w_proj, b_proj), GPT-2's c_proj."),
        Wrong(_mha_one_head, "this is single-head attention over all C channels: split q, k, v into n_head heads "
              "of size hs = C // n_head, attend in each head separately, then merge."),
        Wrong(_mha_dropout_on, "your output changes from one call to the next on the same input: dropout is still on. "
              "F.dropout(x, p) defaults to training=True (an nn.Dropout module too, until .eval()); this layer is "
              "evaluated without dropout, so leave it out or pass training=False.", random=True),
    ],
    hint="Follow the five steps of the statement, reusing exercises 4.2 and 4.3 in spirit: one linear map gives "
    "q, k and v side by side; split them into heads; attend causally in every head with the head size in the "
    "scale; undo the head split (swap the axes back before reshaping); finish with the output projection.",
)
