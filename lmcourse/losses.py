"""Losses and their gradients, written out by hand.

Cross-entropy is the negative log-likelihood of the targets under the model's softmax
distribution. This module computes it the numerically stable way (log-sum-exp), with
every mode of ``torch.nn.functional.cross_entropy`` (class indices or probabilities,
``ignore_index``, label smoothing, mean / sum / none), and writes its gradient
(softmax − target distribution) by hand. It also holds the hand-written backward pass of
scaled dot-product attention, and perplexity. Every function here is checked against
PyTorch (the function itself, or autograd) in tests/test_losses.py.

Derived in chapters/05_cross_entropy.ipynb.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------------------
# softmax and log-softmax


def _stable_max(x: Tensor, dim: int) -> Tensor:
    """Row max, kept as a dim, with -inf (all entries -inf) replaced by 0 so that x - max stays defined.

    An empty dim has no max: 0 then. A +inf or nan max is kept, so such rows give nan, as in torch.
    """
    if x.numel() == 0:
        return torch.zeros_like(x).sum(dim=dim, keepdim=True)
    m = x.amax(dim=dim, keepdim=True).detach()
    return torch.where(m == float("-inf"), torch.zeros_like(m), m)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Log of the softmax along ``dim``, computed as ``x - logsumexp(x)``.

    ``x`` is any floating tensor, e.g. logits of shape (B, T, V); the result has the same
    shape. The max along ``dim`` is subtracted before ``exp`` (softmax does not change when
    every entry is shifted by the same amount), so logits of 1000 give finite results
    where the naive ``log(exp(x) / exp(x).sum())`` gives nan. Derived in
    chapters/05_cross_entropy.ipynb.
    """
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise ValueError(f"log_softmax needs a floating tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    m = _stable_max(x, dim)
    shifted = x - m
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax along ``dim``: ``exp(x - max) / sum(exp(x - max))``, same shape as ``x``.

    Subtracting the max first keeps every ``exp`` in [0, 1], so large logits do not
    overflow. Derived in chapters/05_cross_entropy.ipynb.
    """
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise ValueError(f"softmax needs a floating tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    e = torch.exp(x - _stable_max(x, dim))
    return e / e.sum(dim=dim, keepdim=True)


# --------------------------------------------------------------------------------------
# cross-entropy


def _check_ce_args(
    logits: Tensor, targets: Tensor, ignore_index: int, label_smoothing: float, reduction: str
) -> bool:
    """Validate the arguments of cross_entropy; return True for probability targets."""
    if not isinstance(logits, Tensor) or not isinstance(targets, Tensor):
        raise ValueError(
            f"logits and targets must be tensors, got {type(logits).__name__} and {type(targets).__name__}"
        )
    if not torch.is_floating_point(logits):
        raise ValueError(f"logits must be a floating tensor, got dtype {logits.dtype}")
    if logits.dim() == 0:
        raise ValueError("logits must have a class dimension: shape (C,), (N, C) or (N, C, d1, ...), got a scalar")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if torch.is_floating_point(targets):
        if ignore_index != -100:
            raise ValueError(
                f"ignore_index={ignore_index} needs class-index targets; probability targets have no "
                f"index to ignore (torch refuses this too)"
            )
        if targets.shape != logits.shape:
            raise ValueError(
                f"probability targets must have the shape of the logits {tuple(logits.shape)}, "
                f"got {tuple(targets.shape)}"
            )
        return True
    if targets.dtype == torch.bool or torch.is_complex(targets):
        raise ValueError(f"targets must be integer class indices or float probabilities, got dtype {targets.dtype}")
    class_dim = 0 if logits.dim() == 1 else 1
    expected = logits.shape[:class_dim] + logits.shape[class_dim + 1:]
    if targets.shape != expected:
        raise ValueError(
            f"class-index targets for logits of shape {tuple(logits.shape)} must have shape "
            f"{tuple(expected)} (the logits without the class dim {class_dim}), got {tuple(targets.shape)}"
        )
    n_classes = logits.shape[class_dim]
    bad = (targets != ignore_index) & ((targets < 0) | (targets >= n_classes))
    if bool(bad.any()):
        values = sorted(set(targets[bad].tolist()))[:5]
        raise ValueError(
            f"targets must be in [0, {n_classes - 1}] (C = {n_classes} classes) or equal ignore_index="
            f"{ignore_index}, got {values}"
        )
    return False


def _classes_last(logits: Tensor) -> Tensor:
    """(C,) stays; (N, C, d1, ...) -> (N, d1, ..., C)."""
    return logits if logits.dim() == 1 else logits.movedim(1, -1)


def _classes_back(x: Tensor) -> Tensor:
    """Inverse of _classes_last."""
    return x if x.dim() == 1 else x.movedim(-1, 1)


def _target_distribution(
    logits_last: Tensor, targets: Tensor, probs: bool, ignore_index: int, label_smoothing: float
) -> tuple[Tensor, Tensor]:
    """The per-position target distribution q (classes last) and the mask of counted positions.

    Class index t becomes the one-hot row e_t; label smoothing mixes it with the uniform
    distribution, q = (1 - eps) * e_t + eps / C. Ignored positions get q = 0.
    """
    n_classes = logits_last.shape[-1]
    if probs:
        q = _classes_last(targets).to(logits_last.dtype)
        valid = torch.ones(q.shape[:-1], dtype=torch.bool, device=q.device)
    else:
        valid = targets != ignore_index
        safe = torch.where(valid, targets, torch.zeros_like(targets)).long()
        q = torch.nn.functional.one_hot(safe, n_classes).to(logits_last.dtype)
        q = q * valid.unsqueeze(-1)
    if label_smoothing > 0:
        q = (1.0 - label_smoothing) * q + (label_smoothing / n_classes) * valid.unsqueeze(-1).to(q.dtype)
    return q, valid


def cross_entropy(
    logits: Tensor,
    targets: Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Cross-entropy between the softmax of ``logits`` and ``targets``, as torch's F.cross_entropy.

    ``logits`` has shape (C,), (N, C) or (N, C, d1, ...) with classes in dim 1 (dim 0 when
    1-D). ``targets`` are either integer class indices of shape (), (N) or (N, d1, ...),
    or float probabilities of the logits' shape. Per position the loss is
    ``-sum_c q_c log softmax(logits)_c`` where q is the one-hot target (this is
    ``-log p[target]``) or the given probabilities, mixed with the uniform distribution
    when ``label_smoothing`` > 0. Positions whose class index equals ``ignore_index``
    contribute 0 and are not counted: "mean" divides by the number of counted positions
    (nan when none is counted, like torch), "sum" adds, "none" returns the per-position
    losses of shape (N, d1, ...). Derived in chapters/05_cross_entropy.ipynb.
    """
    probs = _check_ce_args(logits, targets, ignore_index, label_smoothing, reduction)
    logp = log_softmax(_classes_last(logits), dim=-1)
    if probs:
        q, valid = _target_distribution(logp, targets, True, ignore_index, label_smoothing)
        loss = -(q * logp).sum(dim=-1)
    else:
        # Gather -log p[t] (the one-hot target picks one term of the sum over classes).
        valid = targets != ignore_index
        safe = torch.where(valid, targets, torch.zeros_like(targets)).long()
        nll = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        loss = torch.where(valid, nll, torch.zeros_like(nll))
        if label_smoothing > 0:
            smooth = torch.where(valid, -logp.mean(dim=-1), torch.zeros_like(nll))
            loss = (1.0 - label_smoothing) * loss + label_smoothing * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum().to(loss.dtype)


def cross_entropy_grad(
    logits: Tensor,
    targets: Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    grad_output: Tensor | float | None = None,
) -> Tensor:
    """The gradient of ``cross_entropy(logits, targets, ...)`` with respect to ``logits``, by hand.

    Same arguments and shapes as :func:`cross_entropy`; the result has the shape of
    ``logits``. Per position the gradient is ``softmax(logits) * sum(q) - q`` where q is the
    target distribution (one-hot, smoothed, or the given probabilities), which is the
    familiar ``p - y`` whenever q sums to 1; ignored positions get 0 and "mean" divides by
    the number of counted positions (when none is counted, the gradient is 0, as in torch).
    ``grad_output`` is the upstream gradient (a scalar for "mean"/"sum", shape (N, d1, ...)
    for "none"; default 1). Derived in chapters/05_cross_entropy.ipynb.
    """
    probs = _check_ce_args(logits, targets, ignore_index, label_smoothing, reduction)
    z = _classes_last(logits)
    p = softmax(z, dim=-1)
    q, valid = _target_distribution(z, targets, probs, ignore_index, label_smoothing)
    grad = p * q.sum(dim=-1, keepdim=True) - q
    grad = grad * valid.unsqueeze(-1).to(grad.dtype)
    if reduction == "mean":  # every position ignored: grad is already all 0; keep it 0, not 0/0
        grad = grad / valid.sum().clamp_min(1).to(grad.dtype)
    if grad_output is not None:
        g = torch.as_tensor(grad_output, dtype=grad.dtype, device=grad.device)
        if reduction == "none":
            if g.shape != grad.shape[:-1]:
                raise ValueError(
                    f"grad_output for reduction='none' must have shape {tuple(grad.shape[:-1])}, got {tuple(g.shape)}"
                )
            g = g.unsqueeze(-1)
        elif g.numel() != 1:
            raise ValueError(f"grad_output for reduction={reduction!r} must be a scalar, got shape {tuple(g.shape)}")
        grad = grad * g.reshape(g.shape if reduction == "none" else ())
    return _classes_back(grad)


class CrossEntropyFunction(torch.autograd.Function):
    """Cross-entropy as an autograd Function whose backward is :func:`cross_entropy_grad`.

    ``CrossEntropyFunction.apply(logits, targets, ignore_index, label_smoothing, reduction)``
    (positional arguments) equals :func:`cross_entropy`, but ``.backward()`` runs the
    hand-written gradient, so ``torch.autograd.gradcheck`` can test it.
    Derived in chapters/05_cross_entropy.ipynb.
    """

    @staticmethod
    def forward(ctx, logits, targets, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        ctx.save_for_backward(logits, targets)
        ctx.opts = (ignore_index, label_smoothing, reduction)
        return cross_entropy(logits, targets, ignore_index, label_smoothing, reduction)

    @staticmethod
    def backward(ctx, grad_output):
        logits, targets = ctx.saved_tensors
        ignore_index, label_smoothing, reduction = ctx.opts
        grad = cross_entropy_grad(logits, targets, ignore_index, label_smoothing, reduction, grad_output)
        return grad, None, None, None, None


# --------------------------------------------------------------------------------------
# perplexity


def perplexity_from_nll(mean_nll: Tensor | float) -> Tensor | float:
    """Perplexity ``exp(mean NLL)`` from a mean negative log-likelihood in nats (a loss).

    A tensor in gives a tensor out, a float gives a float. A model that spreads its
    probability evenly over V tokens has mean NLL log V and perplexity V: perplexity is
    the effective number of choices the model hesitates between.
    Derived in chapters/05_cross_entropy.ipynb.
    """
    if isinstance(mean_nll, Tensor):
        return torch.exp(mean_nll)
    return math.exp(float(mean_nll))


def perplexity(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Perplexity of ``targets`` under ``logits``: ``exp(cross_entropy(logits, targets))``.

    Shapes as for :func:`cross_entropy` with class-index targets, e.g. logits (N, C) and
    targets (N); for a language model's (B, T, V) logits pass ``logits.transpose(1, 2)``
    or flatten to (B*T, V). Positions equal to ``ignore_index`` are left out of the mean.
    Returns a 0-dim tensor; use :func:`perplexity_from_nll` when you already have the loss.
    Derived in chapters/05_cross_entropy.ipynb.
    """
    if torch.is_floating_point(targets):
        raise ValueError(f"perplexity needs integer class-index targets, got dtype {targets.dtype}")
    return torch.exp(cross_entropy(logits, targets, ignore_index=ignore_index))


def bits_per_byte(total_nll: Tensor | float, n_bytes: int) -> float:
    """Bits per byte: the total negative log-likelihood of a text, in nats, over its UTF-8 bytes.

    ``total_nll`` is the *sum* of the per-token losses over the whole text (mean loss times
    the number of predicted tokens), ``n_bytes`` the length of that text in UTF-8 bytes.
    Dividing by bytes instead of tokens, and by ln 2 to go from nats to bits, gives a number
    that does not depend on the tokenizer: a per-token perplexity does, since a tokenizer with
    longer tokens has fewer, harder predictions for the same text. Derived in
    chapters/05_cross_entropy.ipynb.
    """
    if isinstance(n_bytes, bool) or not isinstance(n_bytes, int) or n_bytes <= 0:
        raise ValueError(f"n_bytes must be a positive int, got {n_bytes!r}")
    nll = float(total_nll.detach()) if isinstance(total_nll, Tensor) else float(total_nll)
    if not math.isfinite(nll) or nll < 0:
        raise ValueError(f"total_nll must be a finite sum of losses >= 0, got {nll}")
    return nll / (n_bytes * math.log(2))


# --------------------------------------------------------------------------------------
# attention, forward and hand-written backward


def _check_attention_args(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor) or not torch.is_floating_point(t):
            raise ValueError(f"{name} must be a floating tensor, got {getattr(t, 'dtype', type(t).__name__)}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, d), got {tuple(t.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(
            f"q, k, v must share their leading dims, got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dim d_k, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length T_k, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if mask is not None:
        if not isinstance(mask, Tensor) or not (mask.dtype == torch.bool or torch.is_floating_point(mask)):
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor (True = keep) or a float one (added to the scores), got {got}")
        scores_shape = q.shape[:-1] + (k.shape[-2],)
        try:
            torch.broadcast_shapes(mask.shape, scores_shape)
        except RuntimeError:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape {tuple(scores_shape)}"
            ) from None


def _attention_probs(q: Tensor, k: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """P = softmax(Q Kᵀ · scale + mask), shape (..., T_q, T_k); a fully masked row is all 0.

    A row whose scores are all -inf (every key masked, or no keys) has no distribution:
    its exps are all 0, and dividing by 1 instead of their sum 0 makes its weights 0, so
    its output is 0 and it sends no gradient back, as in F.scaled_dot_product_attention.
    """
    s = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        if mask.dtype == torch.bool:
            s = s.masked_fill(~mask, float("-inf"))
        else:
            s = s + mask
    e = torch.exp(s - _stable_max(s, -1))
    denom = e.sum(dim=-1, keepdim=True)
    return e / torch.where(denom > 0, denom, torch.ones_like(denom))


def _default_scale(q: Tensor, scale: float | None) -> float:
    # d_k = 0: the scores are empty sums, 0 at any scale (torch gives uniform weights too)
    return 1.0 / math.sqrt(max(q.shape[-1], 1)) if scale is None else float(scale)


def attention_forward(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """Scaled dot-product attention ``softmax(Q Kᵀ · scale + mask) V``, the forward pass.

    ``q`` is (..., T_q, d_k), ``k`` (..., T_k, d_k), ``v`` (..., T_k, d_v); the result is
    (..., T_q, d_v). ``scale`` defaults to 1/√d_k. ``mask`` broadcasts to (..., T_q, T_k): a
    bool mask keeps the True entries (PyTorch's convention), a float mask is added to the
    scores. A row with every key masked (or no keys) gets weights 0 and output 0, as in
    ``F.scaled_dot_product_attention``. The library's main version lives in
    lmcourse.attention; this one is here so that the backward pass below can be read next
    to the forward it differentiates.
    Derived in chapters/05_cross_entropy.ipynb.
    """
    _check_attention_args(q, k, v, mask)
    return _attention_probs(q, k, mask, _default_scale(q, scale)) @ v


def attention_backward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    grad_out: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients (dQ, dK, dV) of attention, by hand, given the upstream gradient dO.

    Shapes as in :func:`attention_forward`; ``grad_out`` has the output's shape
    (..., T_q, d_v). With S = Q Kᵀ · scale + mask, P = softmax(S) and O = P V:
    dV = Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)) (the softmax Jacobian applied
    row by row), dQ = dS K · scale and dK = dSᵀ Q · scale. Masked entries have P = 0 and
    so get no gradient; a fully masked row has P = 0 throughout and sends none back. Derived in chapters/05_cross_entropy.ipynb.
    """
    _check_attention_args(q, k, v, mask)
    out_shape = q.shape[:-1] + v.shape[-1:]
    if not isinstance(grad_out, Tensor) or grad_out.dtype != q.dtype:
        got = grad_out.dtype if isinstance(grad_out, Tensor) else type(grad_out).__name__
        raise ValueError(f"grad_out must be a tensor of q's dtype {q.dtype}, got {got}")
    if grad_out.shape != out_shape:
        raise ValueError(f"grad_out must have the output's shape {tuple(out_shape)}, got {tuple(grad_out.shape)}")
    scale = _default_scale(q, scale)
    p = _attention_probs(q, k, mask, scale)              # (..., T_q, T_k)
    dv = p.transpose(-2, -1) @ grad_out                  # (..., T_k, d_v)
    dp = grad_out @ v.transpose(-2, -1)                  # (..., T_q, T_k)
    ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))   # (..., T_q, T_k)
    dq = (ds @ k) * scale                                # (..., T_q, d_k)
    dk = (ds.transpose(-2, -1) @ q) * scale              # (..., T_k, d_k)
    return dq, dk, dv


class AttentionFunction(torch.autograd.Function):
    """Attention as an autograd Function whose backward is :func:`attention_backward`.

    ``AttentionFunction.apply(q, k, v, mask, scale)`` (positional; mask and scale may be
    None) equals :func:`attention_forward`, and ``torch.autograd.gradcheck`` can test its
    hand-written backward. No gradient flows to the mask. Derived in chapters/05_cross_entropy.ipynb.
    """

    @staticmethod
    def forward(ctx, q, k, v, mask=None, scale=None):
        ctx.save_for_backward(q, k, v, mask)
        ctx.scale = scale
        return attention_forward(q, k, v, mask, scale)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, mask = ctx.saved_tensors
        dq, dk, dv = attention_backward(q, k, v, grad_out, mask, ctx.scale)
        return dq, dk, dv, None, None
