"""Chapter 05 exercises: stable cross-entropy with ignore_index, its gradient p − y,
label smoothing, the attention backward pass by hand, and add-α (MAP) estimates.

Derived in chapters/05_cross_entropy.ipynb; practised in solutions/05_cross_entropy.ipynb.
The references are plain code; tests/test_losses.py proves they equal lmcourse.losses.
"""
from __future__ import annotations

import math

import torch

from lmcourse import forbid
from lmcourse.checks import Case, Exercise, Wrong


def _sizes(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random sizes in [low, high), so a hidden seed changes shapes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------ 5.1 stable cross-entropy


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    z = logits - logits.max(dim=1, keepdim=True).values                # exp(z) <= 1: no overflow
    logp = z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))        # log-softmax, (N, V)
    keep = targets != ignore_index                                     # (N,)
    safe = torch.where(keep, targets, torch.zeros_like(targets))       # any valid index for ignored rows
    nll = -logp[torch.arange(len(targets)), safe]                      # -log p[i, t_i], (N,)
    return (nll * keep).sum() / keep.sum()                             # mean over the counted rows


def _ce_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    big = 1000.0 + torch.randn(3, 4, generator=g, dtype=torch.float64)
    big[1] -= 2000.0                                                   # a row at -1000 as well
    padded = torch.randint(1, 6, (7,), generator=g)
    padded[[2, 5]] = 0                                                 # 0 is the padding id here
    N, V, N2, V2 = _sizes(g, 4, 2, 12)
    return [
        Case((torch.randn(N, V, generator=g, dtype=torch.float64), torch.randint(0, V, (N,), generator=g)),
             label="(N, V), no ignored targets"),
        Case((3 * torch.randn(N2, V2, generator=g), torch.randint(0, V2, (N2,), generator=g)),
             label="float32 (N, V)"),
        Case((big, torch.tensor([0, 3, 1])), label="logits near ±1000"),
        Case((torch.randn(5, 3, generator=g, dtype=torch.float64), torch.tensor([2, -100, 0, -100, 1])),
             label="two targets = -100 (ignored)"),
        Case((torch.randn(4, 3, generator=g, dtype=torch.float64), torch.tensor([1, -1, 2, 0])), {"ignore_index": -1},
             label="ignore_index=-1"),
        Case((torch.randn(7, 6, generator=g, dtype=torch.float64), padded), {"ignore_index": 0},
             label="ignore_index=0 (padding id)"),
        Case((torch.tensor([[0.0, 30.0]], dtype=torch.float64), torch.tensor([0])),
             label="confidently wrong: logits [0, 30], target 0"),
    ]


def _ce_parts(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    safe = torch.where(keep, targets, torch.zeros_like(targets))
    return keep, safe


def _ce_no_max(logits, targets, ignore_index=-100):
    p = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)  # inf / inf = nan at 1000
    keep, safe = _ce_parts(logits, targets, ignore_index)
    nll = -torch.log(p[torch.arange(len(targets)), safe])
    return (nll * keep).sum() / keep.sum()


def _logp(logits, dim=1):
    z = logits - logits.max(dim=dim, keepdim=True).values
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))


def _ce_mean_over_classes_too(logits, targets, ignore_index=-100):
    keep, safe = _ce_parts(logits, targets, ignore_index)
    y = torch.nn.functional.one_hot(safe, logits.shape[1]).to(logits.dtype) * keep[:, None]
    return -(y * _logp(logits)).sum() / (keep.sum() * logits.shape[1])  # = -(y * logp).mean() over N·V


def _ce_softmax_over_batch(logits, targets, ignore_index=-100):
    keep, safe = _ce_parts(logits, targets, ignore_index)
    nll = -_logp(logits, dim=0)[torch.arange(len(targets)), safe]
    return (nll * keep).sum() / keep.sum()


def _ce_ignored_rows_counted(logits, targets, ignore_index=-100):
    keep, safe = _ce_parts(logits, targets, ignore_index)
    nll = -_logp(logits)[torch.arange(len(targets)), safe] * keep  # ignored terms zeroed ...
    return nll.mean()                                               # ... but still counted in N


def _ce_hardcoded_ignore(logits, targets, ignore_index=-100):
    return _cross_entropy(logits, targets, -100)


def _ce_clamped_targets(logits, targets, ignore_index=-100):
    nll = -_logp(logits)[torch.arange(len(targets)), targets.clamp(min=0)]  # a valid index, but no mask
    return nll.mean()


def _ce_log_eps(logits, targets, ignore_index=-100):
    keep, safe = _ce_parts(logits, targets, ignore_index)
    p = torch.exp(_logp(logits))
    nll = -torch.log(p[torch.arange(len(targets)), safe] + 1e-9)
    return (nll * keep).sum() / keep.sum()


def _ce_sum(logits, targets, ignore_index=-100):
    keep, safe = _ce_parts(logits, targets, ignore_index)
    return -(_logp(logits)[torch.arange(len(targets)), safe] * keep).sum()


_NO_MAX = ("exp overflowed: exp(1000) is inf, so the probabilities became inf/inf = nan (or log(inf) = inf). "
           "Subtract each row's max before exp: log softmax(z) = (z - m) - log Σ exp(z - m).")

cross_entropy = Exercise(
    id="5.1",
    name="cross_entropy",
    title="Stable cross-entropy with ignore_index",
    reference=_cross_entropy,
    forbidden=("lmcourse.losses.cross_entropy", "torch.nn.functional.cross_entropy"),
    # The text asks for the stable log-softmax by hand (5.3 then allows torch.log_softmax).
    forbidden_ops=forbid.CROSS_ENTROPY + forbid.LOG_SOFTMAX + forbid.LOGSUMEXP,
    cases=_ce_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_ce_no_max, _NO_MAX),
        Wrong(_ce_mean_over_classes_too, "your loss is V times too small: you averaged over the V classes as well "
              "(a mean over all N·V entries of y ⊙ log p). Sum over the classes, then average over the examples."),
        Wrong(_ce_softmax_over_batch, "you normalised over the batch (dim 0), not over the classes: each row of "
              "logits is one example's scores, so the softmax / log-sum-exp runs along dim 1."),
        Wrong(_ce_ignored_rows_counted, "the ignored positions still count in the mean: you zeroed their terms "
              "but divided by N. Divide by the number of targets that are not ignore_index."),
        Wrong(_ce_hardcoded_ignore, "you ignored targets equal to -100, not the `ignore_index` argument: "
              "use the argument (here the padding id 0)."),
        Wrong(_ce_sum, "you returned the sum over the examples: the loss is the mean over the counted examples."),
        Wrong(_ce_clamped_targets, "the padded positions were counted: clamping the targets makes every index valid, "
              "but the ignored rows still add -log p[i, 0] to the loss and count in the mean. Mask them out "
              "(targets != ignore_index) and divide by the number of rows kept."),
        Wrong(_ce_log_eps, "you computed log(p + ε): the ε caps each term at -log ε ≈ 20.7, so a confidently wrong "
              "row (logits [0, 30], target 0, true loss 30) is scored far too kindly. Take log p from the "
              "log-softmax, (z - m) - log Σ_j exp(z_j - m), which needs no ε."),
    ],
    hint="Work with log-probabilities, never with p itself: log p_c = (z_c - m) - log Σ_j exp(z_j - m) with m the "
    "row max. Gather each row's target entry (give ignored rows any valid index first), then average only over "
    "the rows whose target is not ignore_index.",
)

# ------------------------------------------------------------ 5.2 the gradient p − y


def _cross_entropy_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    n, V = logits.shape
    p = torch.softmax(logits, dim=1)                                   # (N, V)
    y = torch.nn.functional.one_hot(targets, V).to(logits.dtype)      # (N, V)
    return (p - y) / n                                                 # d mean(CE) / d logits


def _grad_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 1)
    N, extra, N2, V2 = _sizes(g, 4, 2, 10)
    V = N + extra  # N != V, so 1/N and 1/V cannot be mistaken for each other
    return [
        Case((torch.randn(3, 4, generator=g, dtype=torch.float64), torch.tensor([0, 3, 1])), label="(3, 4)"),
        Case((torch.randn(N, V, generator=g, dtype=torch.float64), torch.randint(0, V, (N,), generator=g)),
             label="(N, V), N ≠ V"),
        Case((5 * torch.randn(N2, V2, generator=g), torch.full((N2,), V2 - 1)), label="float32, every target the last class"),
    ]


def _grad_no_1_over_n(logits, targets):
    return _cross_entropy_grad(logits, targets) * logits.shape[0]


def _grad_sign(logits, targets):
    return -_cross_entropy_grad(logits, targets)


def _grad_no_softmax(logits, targets):
    y = torch.nn.functional.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (logits - y) / logits.shape[0]


def _grad_1_over_c(logits, targets):
    return _cross_entropy_grad(logits, targets) * logits.shape[0] / logits.shape[1]


cross_entropy_grad = Exercise(
    id="5.2",
    name="cross_entropy_grad",
    title="The gradient of the mean cross-entropy: (p − y) / N",
    reference=_cross_entropy_grad,
    forbidden=("lmcourse.losses.cross_entropy_grad",),
    forbid_autograd=True,  # "without autograd", says the text
    cases=_grad_cases,
    atol=1e-7,
    rtol=1e-5,
    wrong=[
        Wrong(_grad_no_1_over_n, "your gradient is N times too large: that is the gradient of the sum. "
              "The loss is the mean over N examples, so divide p - y by N."),
        Wrong(_grad_sign, "the sign is flipped: dL/dz = p - y (raising the target's logit lowers the loss, so its "
              "gradient entry p_t - 1 is negative). You returned y - p."),
        Wrong(_grad_no_softmax, "you used the logits where the probabilities belong: the gradient is "
              "softmax(logits) - y, not logits - y."),
        Wrong(_grad_1_over_c, "you divided by the number of classes V: the mean runs over the N examples."),
    ],
    hint="For one row, L = -z_t + log Σ_j exp(z_j). Differentiate with respect to one logit z_c: the first term "
    "gives -[c = t], the second softmax(z)_c. Do all rows at once and remember the 1/N of the mean.",
)

# ------------------------------------------------------------ 5.3 label smoothing


def _smoothed_ce(logits: torch.Tensor, targets: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    n, V = logits.shape
    logp = torch.log_softmax(logits, dim=1)
    q = (1 - eps) * torch.nn.functional.one_hot(targets, V).to(logits.dtype) + eps / V  # smoothed targets
    return -(q * logp).sum(dim=1).mean()


def _smooth_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 2)
    N, V, N2, V2, N3, V3 = _sizes(g, 6, 2, 12)
    x = torch.randn(N, V, generator=g, dtype=torch.float64) * 2
    t = torch.randint(0, V, (N,), generator=g)
    return [
        Case((x, t), {"eps": 0.0}, label="eps=0 (plain cross-entropy)"),
        Case((x, t), {"eps": 0.1}, label="eps=0.1"),
        Case((torch.randn(N2, V2, generator=g, dtype=torch.float64), torch.randint(0, V2, (N2,), generator=g)),
             {"eps": 0.3}, label="eps=0.3, random V"),
        Case((4 * torch.randn(N3, V3, generator=g), torch.randint(0, V3, (N3,), generator=g)), {"eps": 0.2},
             label="float32, eps=0.2"),
    ]


def _smooth_others_only(logits, targets, eps=0.1):
    n, V = logits.shape
    y = torch.nn.functional.one_hot(targets, V).to(logits.dtype)
    q = (1 - eps) * y + eps / (V - 1) * (1 - y)
    return -(q * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _smooth_no_1_minus_eps(logits, targets, eps=0.1):
    n, V = logits.shape
    y = torch.nn.functional.one_hot(targets, V).to(logits.dtype)
    return -((y + eps / V) * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _smooth_no_1_over_c(logits, targets, eps=0.1):
    n, V = logits.shape
    y = torch.nn.functional.one_hot(targets, V).to(logits.dtype)
    return -(((1 - eps) * y + eps) * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _smooth_probabilities(logits, targets, eps=0.1):
    n, V = logits.shape
    p = (1 - eps) * torch.softmax(logits, dim=1) + eps / V  # the model's p smoothed, not the target
    return -torch.log(p[torch.arange(n), targets]).mean()


label_smoothed_cross_entropy = Exercise(
    id="5.3",
    name="label_smoothed_cross_entropy",
    title="Cross-entropy with label smoothing",
    reference=_smoothed_ce,
    forbidden=("lmcourse.losses.cross_entropy", "torch.nn.functional.cross_entropy"),
    forbidden_ops=forbid.CROSS_ENTROPY,  # F.cross_entropy(label_smoothing=eps); torch.log_softmax is allowed here
    cases=_smooth_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_smooth_others_only, "you spread eps over the V - 1 other classes only. PyTorch's (and this course's) "
              "label smoothing mixes with the uniform distribution over all V classes: q = (1 - eps) y + eps / V."),
        Wrong(_smooth_no_1_minus_eps, "your target rows sum to 1 + eps: you added eps / V without scaling the "
              "one-hot part by (1 - eps)."),
        Wrong(_smooth_no_1_over_c, "you added eps to every class instead of eps / V: the uniform part of q must "
              "sum to eps over the V classes."),
        Wrong(_smooth_probabilities, "you smoothed the model's probabilities, (1 - eps) p + eps / V, and took -log of "
              "that at the target. Label smoothing changes the TARGET distribution: q = (1 - eps) y + eps / V, and "
              "the loss is -Σ_j q_j log p_j with the model's own log p."),
    ],
    hint="Smooth the target, not the prediction: mix the one-hot target with the uniform distribution over the "
    "V classes so that each target row still sums to 1. The loss is then the cross-entropy between that target "
    "and the model's log-probabilities, summed over classes and averaged over examples.",
)

# ------------------------------------------------------------ 5.4 attention backward


def _attention_backward(q, k, v, d_out, causal: bool = False):
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = q @ k.transpose(-2, -1) * scale                                # (..., T, T)
    if causal:
        t = s.shape[-1]
        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
    p = torch.softmax(s, dim=-1)                                       # recompute P
    dv = p.transpose(-2, -1) @ d_out                                   # dV = Pᵀ dO
    dp = d_out @ v.transpose(-2, -1)                                   # dP = dO Vᵀ
    ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))                 # softmax Jacobian, row by row
    dq = ds @ k * scale                                                # dQ = dS K · scale
    dk = ds.transpose(-2, -1) @ q * scale                              # dK = dSᵀ Q · scale
    return dq, dk, dv


def _attn_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 3)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    T, dk, dv = _sizes(g, 3, 2, 9)
    B, H, T2, d = _sizes(g, 4, 2, 9)
    B3, T3, d3 = _sizes(g, 3, 2, 17)
    return [
        Case((r(4, 3), r(4, 3), r(4, 3), r(4, 3)), label="T=4, d=3"),
        Case((r(T, dk), r(T, dk), r(T, dv), r(T, dv)), {"causal": True}, label="causal, (T, d_k), its own d_v"),
        Case((r(B, H, T2, d), r(B, H, T2, d), r(B, H, T2, d), r(B, H, T2, d)), {"causal": True},
             label="causal, (B, H, T, d)"),
        Case((r(B3, T3, d3), r(B3, T3, d3), r(B3, T3, d3), r(B3, T3, d3)), label="(B, T, d)"),
    ]


def _wrong_backward(q, k, v, d_out, causal=False, *, jacobian=True, scaled=True, dv_t=True, mask=True, axis=-1):
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = q @ k.transpose(-2, -1) * scale
    if causal and mask:
        t = s.shape[-1]
        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
    p = torch.softmax(s, dim=-1)
    dv = p.transpose(-2, -1) @ d_out if dv_t else p @ d_out
    dp = d_out @ v.transpose(-2, -1)
    ds = p * (dp - (dp * p).sum(dim=axis, keepdim=True)) if jacobian else dp
    f = scale if scaled else 1.0
    return ds @ k * f, ds.transpose(-2, -1) @ q * f, dv


def _bw_no_jacobian(q, k, v, d_out, causal=False):
    return _wrong_backward(q, k, v, d_out, causal, jacobian=False)


def _bw_no_rowsum(q, k, v, d_out, causal=False):
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = q @ k.transpose(-2, -1) * scale
    if causal:
        t = s.shape[-1]
        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
    p = torch.softmax(s, dim=-1)
    ds = p * (d_out @ v.transpose(-2, -1))  # P ⊙ dP: the row-sum term is missing
    return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, p.transpose(-2, -1) @ d_out


def _bw_no_scale(q, k, v, d_out, causal=False):
    return _wrong_backward(q, k, v, d_out, causal, scaled=False)


def _bw_dv_untransposed(q, k, v, d_out, causal=False):
    return _wrong_backward(q, k, v, d_out, causal, dv_t=False)


def _bw_no_mask(q, k, v, d_out, causal=False):
    return _wrong_backward(q, k, v, d_out, causal, mask=False)


def _bw_rowsum_wrong_axis(q, k, v, d_out, causal=False):
    return _wrong_backward(q, k, v, d_out, causal, axis=-2)


attention_backward = Exercise(
    id="5.4",
    name="attention_backward",
    title="The attention backward pass by hand",
    reference=_attention_backward,
    forbidden=("lmcourse.losses.attention_backward", "lmcourse.losses.AttentionFunction.backward"),
    forbid_autograd=True,  # a backward pass by hand: autograd would do it for you
    cases=_attn_cases,
    atol=1e-8,
    rtol=1e-6,
    wrong=[
        Wrong(_bw_no_jacobian, "you used dS = dP: the gradient must also pass back through the softmax. "
              "Row by row, dS = P ⊙ (dP − rowsum(dP ⊙ P)). (dV is right; dQ and dK are not.)"),
        Wrong(_bw_no_scale, "dQ and dK are √d_k times too large: S = Q Kᵀ · scale, so dQ = dS K · scale and "
              "dK = dSᵀ Q · scale with scale = 1/√d_k."),
        Wrong(_bw_dv_untransposed, "dV = P dO is not the gradient: O = P V, so dV = Pᵀ dO "
              "(each value row j collects dO from every query that attended to j)."),
        Wrong(_bw_no_mask, "with causal=True the backward must recompute the same masked P as the forward: "
              "you recomputed P without the causal mask."),
        Wrong(_bw_rowsum_wrong_axis, "the softmax runs along the last axis (over keys), so the sum in "
              "dS = P ⊙ (dP − Σ_j dP_ij P_ij) is over the last axis too (keepdim=True), not over dim -2."),
        Wrong(_bw_no_rowsum, "you used dS = P ⊙ dP and dropped the row-sum term: dS = P ⊙ (dP − rowsum(dP ⊙ P)). "
              "The weights of a row share one normaliser, so raising one score lowers all the others: that is "
              "the subtracted term. (dV is right; dQ and dK are not.)"),
    ],
    hint="Recompute the forward pass first (the same mask when causal), then go backwards one product at a "
    "time: O = PV gives dV and dP; the softmax's Jacobian, row by row, turns dP into dS; S = QKᵀ/√d_k gives dQ "
    "and dK. Transpose only the last two axes so leading batch and head dims ride along.",
)

# ------------------------------------------------------------ 5.5 add-α = MAP


def _add_alpha(counts: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    counts = counts.to(torch.float64)
    return (counts + alpha) / (counts.sum() + alpha * counts.numel())


def _alpha_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 4)
    V, V0 = _sizes(g, 2, 3, 20)
    return [
        Case((torch.tensor([3, 0, 1, 0]),), {"alpha": 1.0}, label="Laplace (alpha=1), unseen words"),
        Case((torch.tensor([3, 0, 1, 0]),), {"alpha": 0.0}, label="alpha=0 is the MLE"),
        Case((torch.randint(0, 50, (V,), generator=g),), {"alpha": 0.5}, label="random V, alpha=0.5"),
        Case((torch.zeros(V0, dtype=torch.long),), {"alpha": 2.0}, label="no data: the prior's uniform"),
    ]


def _alpha_no_v(counts, alpha=1.0):
    counts = counts.to(torch.float64)
    return (counts + alpha) / (counts.sum() + alpha)


def _alpha_numerator_only(counts, alpha=1.0):
    counts = counts.to(torch.float64)
    return (counts + alpha) / counts.sum().clamp(min=1)


def _alpha_mle(counts, alpha=1.0):
    counts = counts.to(torch.float64)
    return counts / counts.sum().clamp(min=1)


add_alpha = Exercise(
    id="5.5",
    name="add_alpha",
    title="MAP unigram estimates: add-α smoothing",
    reference=_add_alpha,
    cases=_alpha_cases,
    atol=1e-9,
    rtol=1e-7,
    wrong=[
        Wrong(_alpha_no_v, "your probabilities do not sum to 1: each of the V words gets α pseudo-counts, "
              "so the denominator is N + V·α, not N + α."),
        Wrong(_alpha_numerator_only, "your probabilities sum to more than 1: you added α to every count but "
              "kept N in the denominator. Divide by N + V·α."),
        Wrong(_alpha_mle, "these are the MLE counts / N: unseen words get probability 0. Add α to every count "
              "(the prior's pseudo-counts) and normalise."),
    ],
    hint="Every word gets α extra pseudo-counts, so the numerator is c_v + α and the denominator is the total of "
    "all the new counts. Convert to float64 first.",
)
