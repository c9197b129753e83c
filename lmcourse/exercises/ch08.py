"""Chapter 08 exercises: the top-p (nucleus) filter and one attention step with a KV cache.

Derived in chapters/08_generation.ipynb; practised in solutions/08_generation.ipynb.
The references are plain code; tests/test_ch07_08_checks.py proves they equal
lmcourse.generation.top_p_filter and the cached attention of lmcourse.model.GPT.
"""
from __future__ import annotations

import math

import torch

from lmcourse import forbid
from lmcourse.checks import Case, Exercise, Wrong


def _ints(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random ints in [low, high), so a hidden seed changes sizes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------------ 8.1 top-p


def _top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    if p >= 1.0:
        return logits.clone()                                              # p = 1 keeps every token
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)  # ties: lower index first
    probs = torch.softmax(sorted_logits, dim=-1)                           # (B, V), most likely first
    before = torch.cumsum(probs, dim=-1) - probs                           # the mass strictly before each token
    drop_sorted = before >= p                                              # p already reached: not needed
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)   # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def _safe_p(logits: torch.Tensor, p: float, margin: float = 2e-3) -> float:
    """p moved until no row's cumulative mass lies within `margin` of it: a case must not hinge
    on the last bit of a sum, which two correct answers may round differently."""
    cum = torch.softmax(logits.double(), dim=-1).sort(dim=-1, descending=True).values.cumsum(dim=-1)
    while bool(((cum - p).abs() < margin).any()):
        p = round(p - 0.7 * margin, 6)  # down, away from the tail's masses that crowd below 1
        if p <= margin:
            raise ValueError("no safe p below the first one tried: the rows' masses are too dense")
    return p


def _tp_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 81)
    B, V, B2, V2 = _ints(g, 4, 2, 12)
    V += 4
    x = 2.0 * torch.randn(B, V, generator=g)
    x64 = 1.5 * torch.randn(B2, V2 + 2, generator=g, dtype=torch.float64)
    spread = 3.0 * torch.randn(3, V, generator=g)
    spread[:, 0] = spread.max() + 4.0                                      # a dominant first token in every row
    after_top_k = torch.randn(2, V, generator=g)
    after_top_k[0, :V // 2] = float("-inf")                                # as a top-k filter leaves a row
    after_top_k[1, 1::2] = float("-inf")
    flat = 0.5 * torch.randn(2, V2, generator=g)                           # every token above 1e-3: p = 1 keeps all
    # ties: three equal logits lead; the boundary falls between the 2nd and 3rd of them
    tie = torch.tensor([1.0, 3.0, 2.0, 3.0, 3.0, 0.0])[torch.randperm(6, generator=g)][None]
    u = lambda lo, hi: lo + (hi - lo) * float(torch.rand((), generator=g))  # noqa: E731
    return [
        Case((x, _safe_p(x, round(u(0.5, 0.95), 3))), label="(B, V), p in [0.5, 0.95]"),
        Case((x64, _safe_p(x64, round(u(0.2, 0.6), 3))), label="float64, p in [0.2, 0.6]"),
        Case((spread, 1e-3), label="p below the top token's probability: only it is kept"),
        Case((after_top_k, _safe_p(after_top_k, round(u(0.6, 0.9), 3))), label="rows with -inf already (after top-k)"),
        Case((tie, 0.4), label="tied logits at the boundary: lower index first"),
        Case((flat, 1.0), label="p = 1 keeps every token"),
        Case((torch.randn(3, 1, generator=g), 0.5), label="V = 1"),
    ]


def _tp_sorted(logits, p):
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    return sorted_logits, order, torch.softmax(sorted_logits, dim=-1)


def _tp_unsort(logits, order, drop_sorted):
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _tp_strict(logits, p):
    if p >= 1.0:
        return logits.clone()
    _, order, probs = _tp_sorted(logits, p)
    drop = torch.cumsum(probs, dim=-1) > p                                 # the token that crosses p is dropped
    drop[..., 0] = False
    return _tp_unsort(logits, order, drop)


def _tp_shift_unguarded(logits, p):
    if p >= 1.0:
        return logits.clone()
    _, order, probs = _tp_sorted(logits, p)
    drop = torch.cumsum(probs, dim=-1) > p
    drop[..., 1:] = drop[..., :-1].clone()                                 # shifted right by one ...
    return _tp_unsort(logits, order, drop)                                 # ... but drop[..., 0] never reset to False


def _tp_probabilities(logits, p):
    out = _top_p_filter(logits, p)
    return torch.softmax(out, dim=-1)                                      # probabilities, not logits


def _tp_unsorted(logits, p):
    if p >= 1.0:
        return logits.clone()
    probs = torch.softmax(logits, dim=-1)
    return logits.masked_fill(torch.cumsum(probs, dim=-1) - probs >= p, float("-inf"))  # vocabulary order


def _tp_ascending(logits, p):
    if p >= 1.0:
        return logits.clone()
    sorted_logits, order = torch.sort(logits, dim=-1, descending=False, stable=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    return _tp_unsort(logits, order, torch.cumsum(probs, dim=-1) - probs >= p)


def _tp_ties_together(logits, p):
    out = _top_p_filter(logits, p)
    kept_min = out.masked_fill(out == float("-inf"), float("inf")).min(dim=-1, keepdim=True).values
    return torch.where(logits >= kept_min, logits, out)                     # every token tied with the last kept one


top_p_filter = Exercise(
    id="8.1",
    name="top_p_filter",
    title="The top-p (nucleus) filter",
    reference=_top_p_filter,
    forbidden=("lmcourse.generation.top_p_filter",),
    cases=_tp_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_tp_strict, "you dropped the token that carries the mass past p: keep the smallest set whose mass "
              "REACHES p, so a token stays when the mass of the tokens before it is still below p "
              "(cumsum - probs < p, not cumsum <= p)."),
        Wrong(_tp_shift_unguarded, "when the most likely token alone holds more than p, you removed every token: "
              "after shifting the drop mask right by one, the first entry must be set to False, so the top "
              "token is always kept."),
        Wrong(_tp_probabilities, "you returned probabilities: the filter returns LOGITS, with the dropped "
              "tokens at -inf and the kept ones unchanged, so that temperature and sampling come after it."),
        Wrong(_tp_unsorted, "you summed the probabilities in vocabulary order: sort them from the most likely "
              "down first (torch.sort(..., descending=True)), accumulate in that order, then put the drop "
              "mask back in vocabulary order."),
        Wrong(_tp_ascending, "you sorted from the least likely up, so you kept the unlikely tail: the nucleus is "
              "the most likely tokens, sort with descending=True."),
        Wrong(_tp_ties_together, "you kept every token tied with the last kept one: among equal logits the "
              "lower index comes first (a stable sort, stable=True), and the filter stops as soon as the mass "
              "reaches p, even inside a tie."),
    ],
    hint="Work in sorted order: sort each row from the most likely token down (stably, so ties keep their index "
    "order), turn the sorted logits into probabilities, and for each token find the mass of the tokens before "
    "it. A token is still needed while that mass is below p. Carry the verdict back to vocabulary order with "
    "the sort's indices (scatter), and put -inf where a token is not needed.",
)

# ------------------------------------------------------- 8.2 one KV-cache attention step


def _kv_attention_step(k_cache, v_cache, q, k, v):
    new_k = torch.cat([k_cache, k], dim=2)                              # (B, H, T_past + 1, hs): append in time
    new_v = torch.cat([v_cache, v], dim=2)
    scores = q @ new_k.transpose(-2, -1) / math.sqrt(q.shape[-1])      # (B, H, 1, T_past + 1)
    weights = torch.softmax(scores, dim=-1)                            # no mask: the newest token sees all keys
    return weights @ new_v, new_k, new_v                               # (B, H, 1, hs)


def _kv_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 82)

    def case(B, H, T, hs, dtype=torch.float64, label=""):
        r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
        return Case((r(B, H, T, hs), r(B, H, T, hs), 2 * r(B, H, 1, hs), r(B, H, 1, hs), r(B, H, 1, hs)), label=label)

    B, H, T, hs = _ints(g, 4, 2, 7)
    return [
        case(B, H, T + 2, hs, label="(B, H, T_past, hs)"),
        case(*_ints(g, 2, 1, 4), 0, _ints(g, 1, 2, 9)[0], label="empty cache: the first token"),
        case(1, 1, 1, _ints(g, 1, 2, 9)[0], label="one cached position, one head"),
        case(*_ints(g, 3, 1, 5), 8 * _ints(g, 1, 1, 3)[0], dtype=torch.float32, label="float32"),
    ]


def _kv_variant(k_cache, v_cache, q, k, v, *, axis=2, prepend=False, append_first=True, mask=False, scale="sqrt",
                keep_old=False, softmax_dim=-1):
    pair_k, pair_v = ([k, k_cache], [v, v_cache]) if prepend else ([k_cache, k], [v_cache, v])
    new_k, new_v = torch.cat(pair_k, dim=axis), torch.cat(pair_v, dim=axis)
    keys, values = (new_k, new_v) if append_first else (k_cache, v_cache)
    hs = q.shape[-1]
    scores = q @ keys.transpose(-2, -1) / (math.sqrt(hs) if scale == "sqrt" else hs)
    if mask:  # a (T_q, T_k) causal mask aligned top-left, as for a prompt: the one query sees key 0 only
        Tq, Tk = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(Tq, Tk, dtype=torch.bool).tril(), float("-inf"))
    out = torch.softmax(scores, dim=softmax_dim) @ values
    return (out, k_cache, v_cache) if keep_old else (out, new_k, new_v)


def _kv_wrong_axis(k_cache, v_cache, q, k, v):
    return _kv_variant(k_cache, v_cache, q, k, v, axis=1)


def _kv_prepend(k_cache, v_cache, q, k, v):
    return _kv_variant(k_cache, v_cache, q, k, v, prepend=True)


def _kv_attend_before_append(k_cache, v_cache, q, k, v):
    return _kv_variant(k_cache, v_cache, q, k, v, append_first=False)


def _kv_causal_top_left(k_cache, v_cache, q, k, v):
    return _kv_variant(k_cache, v_cache, q, k, v, mask=True)


def _kv_scale_hs(k_cache, v_cache, q, k, v):
    return _kv_variant(k_cache, v_cache, q, k, v, scale="hs")


def _kv_old_cache(k_cache, v_cache, q, k, v):
    return _kv_variant(k_cache, v_cache, q, k, v, keep_old=True)


def _kv_softmax_over_queries(k_cache, v_cache, q, k, v):
    return _kv_variant(k_cache, v_cache, q, k, v, softmax_dim=-2)


kv_attention_step = Exercise(
    id="8.2",
    name="kv_attention_step",
    title="One attention step with a KV cache",
    reference=_kv_attention_step,
    forbidden=(
        "lmcourse.attention.scaled_dot_product_attention",
        "lmcourse.attention.CausalSelfAttention.forward",
        "lmcourse.attention._LayerKV.write",
        "torch.nn.functional.scaled_dot_product_attention",
    ),
    forbidden_ops=forbid.ATTENTION,                                    # F.scaled_dot_product_attention under any name
    cases=_kv_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_kv_wrong_axis, "you appended along the wrong axis: the cache is (B, H, T, hs) and the new token is "
              "one more position in TIME, so concatenate along dim=2 (B and H must not change)."),
        Wrong(_kv_prepend, "your new key and value went in FRONT of the cache: the cache keeps positions in order, "
              "oldest first, so the new token goes at the end, torch.cat([k_cache, k], dim=2). (Attention alone "
              "cannot see the order, but the next step's cache, and anything that relies on positions, can.)"),
        Wrong(_kv_attend_before_append, "you attended over the old cache only: the new token must see itself "
              "too, so append its key and value first, then attend over all T_past + 1 positions. (With an empty "
              "cache there would be nothing to attend to at all.)"),
        Wrong(_kv_causal_top_left, "you applied a causal mask: torch.ones(1, T).tril() keeps only key 0, since "
              "a top-left mask treats the one query as position 0 (SDPA's is_causal does the same). The new "
              "token is the LAST position, so every cached key is in its past: no mask at all."),
        Wrong(_kv_scale_hs, "you scaled the scores by 1/hs: the scale is 1/√hs (the dot product of two "
              "hs-long random vectors has a standard deviation of √hs)."),
        Wrong(_kv_old_cache, "you returned the cache you were given: return the cache with the new token's key "
              "and value appended, (B, H, T_past + 1, hs), so the next step can use it."),
        Wrong(_kv_softmax_over_queries, "your softmax ran over the single query (dim=-2), so every weight is 1: "
              "normalise over the keys, the last axis."),
    ],
    hint="A new token adds one position to the cache, so the cached keys and values grow by one along the time "
    "axis; the new query then attends over all of them, itself included. There is a single query and it is "
    "the newest position, so think about whether any key is in its future. Scale, normalise over the keys, "
    "and weight the values as in chapter 04.",
)
