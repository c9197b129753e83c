"""lmcourse.losses against its oracles: torch.nn.functional and autograd."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse import losses

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
SHAPES = {  # logits shape; classes in dim 1 (dim 0 when 1-D)
    "C": (7,),
    "NC": (6, 7),
    "NCd": (3, 7, 5),
    "NCdd": (2, 7, 3, 4),
}


def _logits(shape, dtype, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)


def _index_targets(shape, ignore, seed=1):
    """Class indices for logits `shape`; with ignore=True about a third are -100 (never all)."""
    g = torch.Generator().manual_seed(seed)
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else shape[:1] + shape[2:]
    t = torch.randint(0, c, tshape, generator=g)
    if ignore and t.dim() > 0:
        drop = torch.rand(tshape, generator=g) < 0.35
        drop.view(-1)[0] = True
        drop.view(-1)[-1] = False
        t = t.masked_fill(drop, -100)
    return t


def _prob_targets(shape, dtype, seed=2):
    g = torch.Generator().manual_seed(seed)
    dim = 0 if len(shape) == 1 else 1
    return torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), dim=dim).to(dtype)


def _max_err(a, b):
    return (a.double() - b.double()).abs().max().item()


# --------------------------------------------------------------------------------------
# softmax / log_softmax


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_match_torch(dtype, dim):
    x = _logits((4, 5, 6), dtype)
    assert _max_err(losses.softmax(x, dim), torch.softmax(x, dim)) <= TOL[dtype]
    assert _max_err(losses.log_softmax(x, dim), torch.log_softmax(x, dim)) <= TOL[dtype]


def test_log_softmax_is_stable_where_the_naive_formula_overflows():
    x = torch.tensor([[1000.0, 999.0, 990.0], [-1000.0, -1001.0, -1010.0]])
    naive = torch.log(torch.exp(x) / torch.exp(x).sum(-1, keepdim=True))
    assert not torch.isfinite(naive).all()  # the failure the stable version avoids
    ours = losses.log_softmax(x)
    assert torch.isfinite(ours).all()
    assert _max_err(ours, torch.log_softmax(x, -1)) <= 1e-5
    assert torch.isfinite(losses.softmax(x)).all()
    assert _max_err(losses.softmax(x), torch.softmax(x, -1)) <= 1e-6


def test_softmax_rejects_integer_input():
    with pytest.raises(ValueError, match="int64"):
        losses.softmax(torch.arange(3))
    with pytest.raises(ValueError, match="int64"):
        losses.log_softmax(torch.arange(3))


# --------------------------------------------------------------------------------------
# cross-entropy == F.cross_entropy in every mode


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_class_indices_match_torch(reduction, ignore, label_smoothing, shape, dtype):
    x = _logits(SHAPES[shape], dtype)
    t = _index_targets(SHAPES[shape], ignore)
    if ignore and t.dim() > 0:
        assert (t == -100).any()
    kw = dict(ignore_index=-100, label_smoothing=label_smoothing, reduction=reduction)
    ours, ref = losses.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    assert _max_err(ours, ref) <= TOL[dtype] * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_targets_match_torch(reduction, label_smoothing, shape, dtype):
    x = _logits(SHAPES[shape], dtype)
    y = _prob_targets(SHAPES[shape], dtype)
    kw = dict(label_smoothing=label_smoothing, reduction=reduction)
    ours, ref = losses.cross_entropy(x, y, **kw), F.cross_entropy(x, y, **kw)
    assert ours.shape == ref.shape
    assert _max_err(ours, ref) <= TOL[dtype] * max(1.0, ref.abs().max().item())


def test_cross_entropy_custom_ignore_index_and_int32_targets():
    x = _logits((5, 4), torch.float64)
    t = torch.tensor([0, 3, 7, 1, 7])
    ref = F.cross_entropy(x, t, ignore_index=7, label_smoothing=0.2)
    assert _max_err(losses.cross_entropy(x, t, ignore_index=7, label_smoothing=0.2), ref) <= 1e-12
    ours32 = losses.cross_entropy(x, t.int(), ignore_index=7, label_smoothing=0.2)
    assert _max_err(ours32, ref) <= 1e-12


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_all_targets_ignored_follows_torch(label_smoothing):
    x = _logits((4, 3), torch.float64)
    t = torch.full((4,), -100)
    mean = losses.cross_entropy(x, t, label_smoothing=label_smoothing)
    assert torch.isnan(mean) and torch.isnan(F.cross_entropy(x, t, label_smoothing=label_smoothing))
    assert losses.cross_entropy(x, t, reduction="sum").item() == 0.0
    assert torch.equal(losses.cross_entropy(x, t, reduction="none"), torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_entropy_is_finite_at_logits_of_1000(dtype):
    x = torch.tensor([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 999.0]], dtype=dtype)
    t = torch.tensor([2, 1])
    ours = losses.cross_entropy(x, t, reduction="none")
    assert torch.isfinite(ours).all()
    assert _max_err(ours, F.cross_entropy(x, t, reduction="none")) <= TOL[dtype] * 2000
    assert torch.isfinite(losses.cross_entropy_grad(x, t)).all()


def test_cross_entropy_of_uniform_logits_is_log_c():
    x = torch.zeros(10, 50)
    t = torch.arange(10)
    assert abs(losses.cross_entropy(x, t).item() - math.log(50)) < 1e-6


# --------------------------------------------------------------------------------------
# the hand-written gradient


GRAD_MODES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(label_smoothing=0.1),
    dict(ignore_index=-100, label_smoothing=0.3, reduction="mean"),
    dict(ignore_index=-100, label_smoothing=0.3, reduction="none"),
]


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("mode", range(len(GRAD_MODES)))
@pytest.mark.parametrize("targets", ["index", "index+ignore", "probs"])
def test_cross_entropy_grad_matches_autograd(shape, mode, targets):
    kw = GRAD_MODES[mode]
    x = _logits(SHAPES[shape], torch.float64).requires_grad_(True)
    if targets == "probs":
        t = _prob_targets(SHAPES[shape], torch.float64)
    else:
        t = _index_targets(SHAPES[shape], ignore=targets == "index+ignore")
    loss = F.cross_entropy(x, t, **kw)
    g = torch.Generator().manual_seed(5)
    upstream = torch.randn(loss.shape, generator=g, dtype=torch.float64)
    (expected,) = torch.autograd.grad(loss, x, upstream)
    ours = losses.cross_entropy_grad(x.detach(), t, grad_output=upstream, **kw)
    assert ours.shape == x.shape
    assert _max_err(ours, expected) <= 1e-10


def test_cross_entropy_grad_is_p_minus_y_over_n():
    x = _logits((5, 4), torch.float64)
    t = torch.tensor([0, 3, 2, 1, 1])
    expected = (torch.softmax(x, -1) - F.one_hot(t, 4).double()) / 5
    assert _max_err(losses.cross_entropy_grad(x, t), expected) <= 1e-15


def test_cross_entropy_grad_with_unnormalised_probability_targets():
    # q does not sum to 1 here, so the gradient is p * sum(q) - q, not p - q.
    x = _logits((3, 4), torch.float64).requires_grad_(True)
    y = torch.rand(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    (expected,) = torch.autograd.grad(F.cross_entropy(x, y, label_smoothing=0.1), x)
    assert _max_err(losses.cross_entropy_grad(x.detach(), y, label_smoothing=0.1), expected) <= 1e-12


@pytest.mark.parametrize("mode", range(len(GRAD_MODES)))
@pytest.mark.parametrize("shape", ["NC", "NCd"])
def test_cross_entropy_function_passes_gradcheck(mode, shape):
    kw = GRAD_MODES[mode]
    x = _logits(SHAPES[shape], torch.float64, scale=1.0).requires_grad_(True)
    t = _index_targets(SHAPES[shape], ignore="ignore_index" in kw)
    args = (t, kw.get("ignore_index", -100), kw.get("label_smoothing", 0.0), kw.get("reduction", "mean"))
    assert torch.autograd.gradcheck(lambda z: losses.CrossEntropyFunction.apply(z, *args), (x,))
    out = losses.CrossEntropyFunction.apply(x, *args)
    assert _max_err(out, F.cross_entropy(x, t, **kw)) <= 1e-12


def test_gradcheck_catches_a_wrong_gradient():
    # The check above can fail: a backward that forgets the 1/N is rejected.
    class Forgot1OverN(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z, t):
            ctx.save_for_backward(z, t)
            return losses.cross_entropy(z, t)

        @staticmethod
        def backward(ctx, g):
            z, t = ctx.saved_tensors
            return g * losses.cross_entropy_grad(z, t, reduction="sum"), None

    x = _logits((4, 3), torch.float64).requires_grad_(True)
    t = torch.tensor([0, 1, 2, 0])
    assert not torch.autograd.gradcheck(lambda z: Forgot1OverN.apply(z, t), (x,), raise_exception=False)


# --------------------------------------------------------------------------------------
# perplexity


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    v = 37
    x = torch.zeros(4, 9, v, dtype=torch.float64)
    t = torch.randint(0, v, (4, 9), generator=torch.Generator().manual_seed(0))
    ppl = losses.perplexity(x.transpose(1, 2), t)
    assert abs(ppl.item() - v) < 1e-9
    assert abs(losses.perplexity_from_nll(math.log(v)) - v) < 1e-9


def test_perplexity_matches_exp_of_torch_cross_entropy():
    x = _logits((8, 11), torch.float64)
    t = _index_targets((8, 11), ignore=True)
    expected = torch.exp(F.cross_entropy(x, t))
    assert _max_err(losses.perplexity(x, t), expected) <= 1e-10
    assert _max_err(losses.perplexity_from_nll(F.cross_entropy(x, t)), expected) <= 1e-10
    with pytest.raises(ValueError, match="float"):
        losses.perplexity(x, torch.softmax(x, -1))


def test_perplexity_honours_a_custom_ignore_index():
    x = _logits((6, 5), torch.float64)
    t = torch.tensor([0, 3, 0, 1, 4, 2])  # 0 is the padding id here
    expected = torch.exp(F.cross_entropy(x, t, ignore_index=0))
    assert _max_err(losses.perplexity(x, t, ignore_index=0), expected) <= 1e-10
    assert _max_err(losses.perplexity(x, t, ignore_index=0), losses.perplexity(x, t)) > 1e-3


# --------------------------------------------------------------------------------------
# attention: forward against SDPA, hand-written backward against autograd


def _qkv(dtype=torch.float64, lead=(2, 3), tq=5, tk=6, dk=4, dv=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, tq, dk, generator=g, dtype=dtype)
    k = torch.randn(*lead, tk, dk, generator=g, dtype=dtype)
    v = torch.randn(*lead, tk, dv, generator=g, dtype=dtype)
    return q, k, v


def _masks(tq, tk):
    causal = torch.ones(tq, tk, dtype=torch.bool).tril(diagonal=tk - tq)
    g = torch.Generator().manual_seed(3)
    additive = torch.randn(tq, tk, generator=g, dtype=torch.float64)
    return {"none": None, "causal": causal, "additive": additive}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mask", ["none", "causal", "additive"])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_attention_forward_matches_sdpa(dtype, mask, scale):
    q, k, v = _qkv(dtype)
    m = _masks(5, 6)[mask]
    m = m.to(dtype) if m is not None and m.dtype != torch.bool else m
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)
    assert _max_err(losses.attention_forward(q, k, v, m, scale), ref) <= TOL[dtype]


@pytest.mark.parametrize("mask", ["none", "causal", "additive"])
@pytest.mark.parametrize("scale", [None, 0.3])
@pytest.mark.parametrize("lead", [(), (2,), (2, 3)])
def test_attention_backward_matches_autograd(mask, scale, lead):
    q, k, v = _qkv(lead=lead)
    m = _masks(5, 6)[mask]
    q, k, v = (t.requires_grad_(True) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)
    d_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    expected = torch.autograd.grad(out, (q, k, v), d_out)
    ours = losses.attention_backward(q.detach(), k.detach(), v.detach(), d_out, m, scale)
    for name, a, b in zip("qkv", ours, expected):
        assert a.shape == b.shape, name
        assert _max_err(a, b) <= 1e-10, name


@pytest.mark.parametrize("mask", ["none", "causal", "additive"])
def test_attention_function_passes_gradcheck(mask):
    q, k, v = (t.requires_grad_(True) for t in _qkv(lead=(2,), tq=4, tk=4, dk=3, dv=2))
    m = _masks(4, 4)[mask]
    assert torch.autograd.gradcheck(lambda a, b, c: losses.AttentionFunction.apply(a, b, c, m, None), (q, k, v))


def test_attention_gradcheck_catches_a_dropped_softmax_jacobian():
    def wrong_backward(q, k, v, d_out, scale):
        p = torch.softmax(q @ k.transpose(-2, -1) * scale, -1)
        ds = d_out @ v.transpose(-2, -1)  # dS = dP: the softmax Jacobian dropped
        return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, p.transpose(-2, -1) @ d_out

    q, k, v = _qkv(lead=(2,))
    d_out = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    right = losses.attention_backward(q, k, v, d_out)
    wrong = wrong_backward(q, k, v, d_out, 1 / math.sqrt(4))
    assert _max_err(right[2], wrong[2]) <= 1e-12  # dV agrees ...
    assert _max_err(right[0], wrong[0]) > 1e-3  # ... dQ does not

    class DroppedJacobian(torch.autograd.Function):  # ... and gradcheck rejects it as a backward pass
        @staticmethod
        def forward(ctx, q, k, v):
            ctx.save_for_backward(q, k, v)
            return losses.attention_forward(q, k, v)

        @staticmethod
        def backward(ctx, d_out):
            q, k, v = ctx.saved_tensors
            return wrong_backward(q, k, v, d_out, 1 / math.sqrt(q.shape[-1]))

    args = tuple(t.clone().requires_grad_(True) for t in (q, k, v))
    assert not torch.autograd.gradcheck(DroppedJacobian.apply, args, raise_exception=False)


# --------------------------------------------------------------------------------------
# errors name the offending values


@pytest.mark.parametrize(
    "logits, targets, kwargs, match",
    [
        (torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, dtype=torch.long), {}, "int64"),
        (torch.tensor(1.0), torch.tensor(0), {}, "scalar"),
        (torch.zeros(3, 4), torch.zeros(4, dtype=torch.long), {}, r"\(3,\).*got \(4,\)"),
        (torch.zeros(3, 4, 5), torch.zeros(3, 4, dtype=torch.long), {}, r"\(3, 5\)"),
        (torch.zeros(3, 4), torch.tensor([0, 4, 1]), {}, r"\[0, 3\].*\[4\]"),
        (torch.zeros(3, 4), torch.tensor([0, -1, 1]), {}, r"\[-1\]"),
        (torch.zeros(3, 4), torch.tensor([0, -100, 9]), {"ignore_index": 9}, r"\[-100\]"),
        (torch.zeros(3, 4), torch.zeros(3, 5), {}, r"\(3, 4\).*\(3, 5\)"),
        (torch.zeros(3, 4), torch.zeros(3, dtype=torch.bool), {}, "bool"),
        (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), {"reduction": "avg"}, "avg"),
        (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), {"label_smoothing": 1.5}, "1.5"),
        ([[0.0, 1.0]], torch.zeros(1, dtype=torch.long), {}, "list"),
    ],
)
def test_cross_entropy_errors(logits, targets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        losses.cross_entropy(logits, targets, **kwargs)
    with pytest.raises(ValueError, match=match):
        losses.cross_entropy_grad(logits, targets, **kwargs)


def test_cross_entropy_grad_rejects_a_bad_grad_output():
    x, t = torch.zeros(3, 4), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        losses.cross_entropy_grad(x, t, reduction="none", grad_output=torch.ones(2))
    with pytest.raises(ValueError, match="scalar"):
        losses.cross_entropy_grad(x, t, grad_output=torch.ones(3))


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((2, 5, 4), (2, 6, 3), (2, 6, 3)), r"d_k.*\(2, 5, 4\).*\(2, 6, 3\)"),
        (((2, 5, 4), (2, 6, 4), (2, 7, 3)), r"T_k.*\(2, 6, 4\).*\(2, 7, 3\)"),
        (((2, 5, 4), (3, 6, 4), (3, 6, 3)), "leading dims"),
        (((4,), (6, 4), (6, 3)), r"\(\.\.\., T, d\).*\(4,\)"),
    ],
)
def test_attention_shape_errors(shapes, match):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        losses.attention_forward(q, k, v)


def test_attention_mask_and_grad_out_errors():
    q, k, v = _qkv(lead=(2,))
    with pytest.raises(ValueError, match=r"mask of shape \(4, 4\)"):
        losses.attention_forward(q, k, v, mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(2, 5, 3\).*\(2, 5, 4\)"):
        losses.attention_backward(q, k, v, torch.zeros(2, 5, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="int64"):
        losses.attention_forward(q.long(), k, v)
    with pytest.raises(ValueError, match=r"share one dtype.*float32.*float64"):
        losses.attention_forward(q.float(), k, v)
    with pytest.raises(ValueError, match=r"bool tensor .* or a float one.*int64"):  # a 0/1 int mask is not silently added
        losses.attention_forward(q, k, v, mask=torch.ones(5, 6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"grad_out must be a tensor.*list"):
        losses.attention_backward(q, k, v, [[0.0]])
    with pytest.raises(ValueError, match=r"grad_out.*float64.*float32"):
        losses.attention_backward(q, k, v, torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="list"):
        losses.softmax([1.0, 2.0])


# --------------------------------------------------------------------------------------
# chapter 05 exercises: plain-code references equal the library, mistakes get their message


def test_ch05_references_equal_the_library():
    from lmcourse.exercises import ch05

    for case in ch05.cross_entropy.cases():
        (x, t), kw = case.args, case.kwargs
        ref = F.cross_entropy(x, t, ignore_index=kw.get("ignore_index", -100))
        assert _max_err(ch05._cross_entropy(x, t, **kw), losses.cross_entropy(x, t, **kw)) <= 1e-5, case.label
        assert _max_err(losses.cross_entropy(x, t, **kw), ref) <= 1e-5, case.label
    for case in ch05.cross_entropy_grad.cases():
        assert _max_err(ch05._cross_entropy_grad(*case.args), losses.cross_entropy_grad(*case.args)) <= 1e-6
    for case in ch05.label_smoothed_cross_entropy.cases():
        (x, t), eps = case.args, case.kwargs["eps"]
        assert _max_err(ch05._smoothed_ce(x, t, eps), losses.cross_entropy(x, t, label_smoothing=eps)) <= 1e-5
    for case in ch05.attention_backward.cases():
        q, k, v, d_out = case.args
        t = q.shape[-2]
        mask = torch.ones(t, t, dtype=torch.bool).tril() if case.kwargs.get("causal") else None
        ours = ch05._attention_backward(*case.args, **case.kwargs)
        for a, b in zip(ours, losses.attention_backward(q, k, v, d_out, mask)):
            assert _max_err(a, b) <= 1e-12, case.label
    for case in ch05.add_alpha.cases():
        (c,), alpha = case.args, case.kwargs["alpha"]
        est = ch05._add_alpha(c, alpha)
        assert abs(est.sum().item() - 1.0) < 1e-12


def test_ch05_each_wrong_variant_gets_its_own_message():
    from lmcourse.exercises import ch05

    exercises = [ch05.cross_entropy, ch05.cross_entropy_grad, ch05.label_smoothed_cross_entropy,
                 ch05.attention_backward, ch05.add_alpha]
    for ex in exercises:
        assert ex.run(ex.reference).passed, ex.name
        for w in ex.wrong:
            result = ex.run(w.fn)
            assert result.status == "fail" and result.matched == [w.message], (ex.name, w.fn.__name__)


def test_ch05_naive_log_sum_exp_is_told_about_overflow():
    from lmcourse.exercises import ch05

    def naive_lse(logits, targets, ignore_index=-100):
        logp = logits - torch.log(torch.exp(logits).sum(dim=1, keepdim=True))
        keep = targets != ignore_index
        safe = torch.where(keep, targets, torch.zeros_like(targets))
        return -(logp[torch.arange(len(targets)), safe] * keep).sum() / keep.sum()

    result = ch05.cross_entropy.run(naive_lse)
    assert result.status == "fail" and "overflow" in result.matched[0]


# --------------------------------------------------------------------------------------
# property: any shape, any targets, any smoothing, same as torch


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 6),
    extra=st.lists(st.integers(1, 3), max_size=2),
    eps=st.sampled_from([0.0, 0.05, 0.5]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    scale=st.sampled_from([1.0, 30.0, 1000.0]),
    seed=st.integers(0, 2**16),
)
def test_cross_entropy_property_matches_torch(n, c, extra, eps, reduction, scale, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (n, c, *extra)
    x = scale * torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.randint(0, c, (n, *extra), generator=g)
    t = t.masked_fill(torch.rand(t.shape, generator=g) < 0.3, -100)
    kw = dict(label_smoothing=eps, reduction=reduction)
    ref = F.cross_entropy(x, t, **kw)
    ours = losses.cross_entropy(x, t, **kw)
    assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-10, equal_nan=True)
    if reduction != "none" and torch.isfinite(ref):
        xr = x.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(F.cross_entropy(xr, t, **kw), xr)
        assert torch.allclose(losses.cross_entropy_grad(x, t, **kw), expected, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------
# edge cases, each against torch: fully masked rows, all targets ignored, -inf logits, empty shapes


def _grads_vs_torch(q, k, v, mask, scale=None, seed=21):
    """Our forward, hand-written backward and AttentionFunction against F.sdpa and autograd."""
    q, k, v = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    up = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=ref.dtype)
    expected = torch.autograd.grad(ref, (q, k, v), up, allow_unused=True)
    expected = [torch.zeros_like(t) if e is None else e for e, t in zip(expected, (q, k, v))]
    out = losses.attention_forward(q.detach(), k.detach(), v.detach(), mask, scale)
    ours = losses.attention_backward(q.detach(), k.detach(), v.detach(), up, mask, scale)
    fn_out = losses.AttentionFunction.apply(q, k, v, mask, scale)
    via_fn = torch.autograd.grad(fn_out, (q, k, v), up, allow_unused=True) if fn_out.numel() else expected
    via_fn = [torch.zeros_like(t) if e is None else e for e, t in zip(via_fn, (q, k, v))]
    return ref, out, fn_out, expected, ours, via_fn


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_attention_fully_masked_row_gives_zeros_and_zero_gradients_like_torch(kind):
    q, k, v = _qkv(lead=(2,))
    keep = torch.rand(2, 5, 6, generator=torch.Generator().manual_seed(4)) < 0.6
    keep[0, 1] = False  # query 1 of batch 0 may look at nothing
    keep[1, 4] = False
    keep[1, 0] = True
    mask = keep if kind == "bool" else torch.zeros(2, 5, 6, dtype=torch.float64).masked_fill(~keep, -math.inf)
    ref, out, fn_out, expected, ours, via_fn = _grads_vs_torch(q, k, v, mask)
    assert torch.equal(out[0, 1], torch.zeros(3, dtype=torch.float64)) and torch.equal(ref[0, 1], out[0, 1])
    assert _max_err(out, ref) <= 1e-12 and _max_err(fn_out, ref) <= 1e-12
    for name, a, b, c in zip("qkv", ours, expected, via_fn):
        assert torch.isfinite(a).all(), name
        assert _max_err(a, b) <= 1e-10 and _max_err(c, b) <= 1e-10, name
    assert torch.equal(ours[0][0, 1], torch.zeros(4, dtype=torch.float64))  # no gradient from that row


@pytest.mark.parametrize("tq,tk,dk,dv", [(0, 6, 4, 3), (5, 0, 4, 3), (0, 0, 4, 3), (5, 6, 0, 3), (5, 6, 4, 0)])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_forward_and_backward_on_empty_shapes_follow_torch(tq, tk, dk, dv, masked):
    q, k, v = _qkv(lead=(2,), tq=tq, tk=tk, dk=dk, dv=dv)
    mask = None
    if masked:
        mask = torch.rand(2, tq, tk, generator=torch.Generator().manual_seed(6)) < 0.5
    ref, out, fn_out, expected, ours, via_fn = _grads_vs_torch(q, k, v, mask)
    assert out.shape == ref.shape == (2, tq, dv)
    assert _max_err(out, ref) <= 1e-12 if ref.numel() else out.numel() == 0
    for name, a, b, c, t in zip("qkv", ours, expected, via_fn, (q, k, v)):
        assert a.shape == t.shape, name
        if a.numel():
            assert _max_err(a, b) <= 1e-10 and _max_err(c, b) <= 1e-10, name


def test_attention_with_d_k_zero_averages_the_values():
    q, k, v = _qkv(lead=(), tq=3, tk=4, dk=0, dv=2)
    out = losses.attention_forward(q, k, v)
    assert _max_err(out, v.mean(0, keepdim=True).expand(3, 2)) <= 1e-12


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (2, 0, 5)])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_on_empty_tensors_follows_torch(shape, dim):
    if dim >= len(shape):
        return
    x = torch.zeros(shape, dtype=torch.float64)
    assert losses.softmax(x, dim).shape == torch.softmax(x, dim).shape == shape
    assert losses.log_softmax(x, dim).shape == shape


def test_softmax_with_infinite_logits_follows_torch():
    x = torch.tensor([[0.0, -math.inf, 1.0], [-math.inf] * 3, [math.inf, 0.0, 1.0], [math.nan, 0.0, 1.0]],
                     dtype=torch.float64)
    for ours, theirs in ((losses.softmax(x), torch.softmax(x, -1)), (losses.log_softmax(x), torch.log_softmax(x, -1))):
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-12, equal_nan=True), (ours, theirs)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_targets_ignored_gradient_is_zero_like_autograd(reduction, label_smoothing):
    x = _logits((4, 3), torch.float64).requires_grad_(True)
    t = torch.full((4,), -100)
    kw = dict(label_smoothing=label_smoothing, reduction=reduction)
    ref = F.cross_entropy(x, t, **kw)
    (expected,) = torch.autograd.grad(ref.sum(), x)
    assert torch.equal(expected, torch.zeros_like(x))
    assert torch.equal(losses.cross_entropy_grad(x.detach(), t, **kw), expected)
    out = losses.CrossEntropyFunction.apply(x, t, -100, label_smoothing, reduction)
    assert torch.allclose(out, ref, equal_nan=True)  # "mean" over nothing is nan, as in torch
    (via_fn,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(via_fn, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_minus_inf_non_target_logit_stays_finite_like_torch(reduction, dtype):
    x = torch.tensor([[0.0, -math.inf, 1.0], [2.0, 0.5, -math.inf], [1.0, 2.0, 3.0]], dtype=dtype, requires_grad=True)
    t = torch.tensor([0, 1, 2])
    ref = F.cross_entropy(x, t, reduction=reduction)
    (expected,) = torch.autograd.grad(ref.sum(), x)
    ours = losses.cross_entropy(x, t, reduction=reduction)
    assert torch.isfinite(ours).all() and _max_err(ours, ref) <= TOL[dtype]
    grad = losses.cross_entropy_grad(x.detach(), t, reduction=reduction)
    assert torch.isfinite(grad).all() and _max_err(grad, expected) <= TOL[dtype]
    (through,) = torch.autograd.grad(ours.sum(), x)  # autograd through our forward, too
    assert _max_err(through, expected) <= TOL[dtype]
    # with label smoothing the -inf logit costs eps/C * inf = inf, in torch as here; the gradient stays finite
    ref_s = F.cross_entropy(x, t, reduction=reduction, label_smoothing=0.1)
    (exp_s,) = torch.autograd.grad(ref_s.sum(), x)
    assert torch.equal(losses.cross_entropy(x.detach(), t, reduction=reduction, label_smoothing=0.1), ref_s.detach())
    assert _max_err(losses.cross_entropy_grad(x.detach(), t, reduction=reduction, label_smoothing=0.1), exp_s) <= TOL[dtype]


def test_minus_inf_target_logit_gives_inf_like_torch():
    x = torch.tensor([[0.0, -math.inf, 1.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([1])
    ref = F.cross_entropy(x, t)
    (expected,) = torch.autograd.grad(ref, x)
    assert losses.cross_entropy(x.detach(), t).item() == math.inf == ref.item()
    assert _max_err(losses.cross_entropy_grad(x.detach(), t), expected) <= 1e-12


def test_cross_entropy_on_an_empty_batch_follows_torch():
    x, t = torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0, dtype=torch.long)
    for reduction in ("mean", "sum", "none"):
        ref = F.cross_entropy(x, t, reduction=reduction)
        ours = losses.cross_entropy(x, t, reduction=reduction)
        assert ours.shape == ref.shape and torch.allclose(ours, ref, equal_nan=True), reduction
        assert losses.cross_entropy_grad(x, t, reduction=reduction).shape == (0, 4)


# --------------------------------------------------------------------------------------
# each default, boundary and branch pinned


def test_cross_entropy_defaults_are_mean_ignore_minus_100_no_smoothing():
    x = _logits((6, 5), torch.float64)
    t = torch.tensor([0, -100, 4, 2, -100, 1])
    assert torch.equal(losses.cross_entropy(x, t), losses.cross_entropy(x, t, -100, 0.0, "mean"))
    assert _max_err(losses.cross_entropy(x, t), F.cross_entropy(x, t)) <= 1e-12
    assert _max_err(losses.cross_entropy_grad(x, t), losses.cross_entropy_grad(x, t, -100, 0.0, "mean")) == 0.0
    xr = x.clone().requires_grad_(True)
    assert _max_err(losses.CrossEntropyFunction.apply(xr, t), F.cross_entropy(x, t)) <= 1e-12
    (g,) = torch.autograd.grad(losses.CrossEntropyFunction.apply(xr, t), xr)
    assert _max_err(g, losses.cross_entropy_grad(x, t)) == 0.0


def test_reductions_relate_as_mean_sum_none():
    x = _logits((6, 5), torch.float64)
    t = torch.tensor([0, -100, 4, 2, -100, 1])
    none = losses.cross_entropy(x, t, reduction="none")
    assert none.shape == (6,) and none[1] == 0 and none[4] == 0 and (none[[0, 2, 3, 5]] > 0).all()
    assert _max_err(losses.cross_entropy(x, t, reduction="sum"), none.sum()) <= 1e-12
    assert _max_err(losses.cross_entropy(x, t), none.sum() / 4) <= 1e-12  # divided by the 4 counted, not 6
    g_sum = losses.cross_entropy_grad(x, t, reduction="sum")
    assert _max_err(losses.cross_entropy_grad(x, t), g_sum / 4) <= 1e-15
    assert _max_err(losses.cross_entropy_grad(x, t, reduction="none"), g_sum) <= 1e-15
    assert torch.equal(g_sum[1], torch.zeros(5, dtype=torch.float64))


def test_label_smoothing_mixes_with_the_uniform_distribution():
    x = _logits((4, 5), torch.float64)
    t = torch.tensor([0, 3, 4, 1])
    logp = torch.log_softmax(x, -1)
    nll, uniform = -logp[torch.arange(4), t], -logp.mean(-1)
    for eps in (0.0, 0.3, 1.0):
        got = losses.cross_entropy(x, t, label_smoothing=eps, reduction="none")
        assert _max_err(got, (1 - eps) * nll + eps * uniform) <= 1e-12, eps
        q = (1 - eps) * F.one_hot(t, 5).double() + eps / 5
        assert _max_err(losses.cross_entropy_grad(x, t, label_smoothing=eps, reduction="sum"), logp.exp() - q) <= 1e-12
    # probability targets are smoothed the same way
    y = torch.softmax(_logits((4, 5), torch.float64, seed=3), -1)
    got = losses.cross_entropy(x, y, label_smoothing=0.3, reduction="none")
    assert _max_err(got, -(((1 - 0.3) * y + 0.3 / 5) * logp).sum(-1)) <= 1e-12


@pytest.mark.parametrize("eps", [-0.1, -1e-9, 1.0 + 1e-9, 2.0])
def test_label_smoothing_outside_zero_one_is_refused(eps):
    x, t = torch.zeros(3, 4), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        losses.cross_entropy(x, t, label_smoothing=eps)


def test_probability_targets_refuse_an_ignore_index_like_torch():
    x = _logits((3, 4), torch.float64)
    y = torch.softmax(_logits((3, 4), torch.float64, seed=4), -1)
    assert _max_err(losses.cross_entropy(x, y, ignore_index=-100), F.cross_entropy(x, y, ignore_index=-100)) <= 1e-12
    with pytest.raises(RuntimeError, match="ignore_index"):  # torch refuses: there is nothing to compare it with
        F.cross_entropy(x, y, ignore_index=0)
    for fn in (losses.cross_entropy, losses.cross_entropy_grad):
        with pytest.raises(ValueError, match=r"ignore_index=0 .*class-index targets.*probability targets"):
            fn(x, y, ignore_index=0)


def test_one_dimensional_logits_take_a_scalar_target():
    x = _logits((5,), torch.float64).requires_grad_(True)
    t = torch.tensor(3)
    ref = F.cross_entropy(x, t)
    assert _max_err(losses.cross_entropy(x.detach(), t), ref) <= 1e-12
    (expected,) = torch.autograd.grad(ref, x)
    assert _max_err(losses.cross_entropy_grad(x.detach(), t), expected) <= 1e-12
    with pytest.raises(ValueError, match=r"must have shape \(\) .*class dim 0.*got \(1,\)"):
        losses.cross_entropy(x.detach(), torch.tensor([3]))


def test_bad_target_values_are_listed_sorted_and_at_most_five():
    x = torch.zeros(8, 4)
    t = torch.tensor([9, 8, 7, 6, 5, 4, -1, 0])
    with pytest.raises(ValueError, match=r"targets must be in \[0, 3\] \(C = 4 classes\) or equal ignore_index=-100, got \[-1, 4, 5, 6, 7\]$"):
        losses.cross_entropy(x, t)
    # a value equal to ignore_index is fine even when it is a valid class
    assert torch.isfinite(losses.cross_entropy(x, torch.tensor([0, 1, 2, 3, 3, 3, 3, 3]), ignore_index=3))


def test_complex_targets_are_refused():
    with pytest.raises(ValueError, match=r"targets must be integer class indices or float probabilities.*complex"):
        losses.cross_entropy(torch.zeros(3, 4), torch.zeros(3, dtype=torch.complex64))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_grad_output_scales_the_gradient(reduction):
    x = _logits((4, 3), torch.float64)
    t = torch.tensor([0, 2, 1, -100])
    base = losses.cross_entropy_grad(x, t, reduction=reduction)
    for g in (2.5, torch.tensor(2.5), torch.tensor([2.5]), torch.tensor([[2.5]])):
        assert _max_err(losses.cross_entropy_grad(x, t, reduction=reduction, grad_output=g), 2.5 * base) <= 1e-15
    assert torch.equal(losses.cross_entropy_grad(x, t, reduction=reduction, grad_output=None), base)


def test_grad_output_for_none_is_per_position_and_classes_stay_in_dim_1():
    x = _logits((2, 3, 4), torch.float64).requires_grad_(True)  # (N, C, d1)
    t = torch.tensor([[0, 2, 1, -100], [1, 1, 0, 2]])
    up = torch.arange(8, dtype=torch.float64).reshape(2, 4)
    (expected,) = torch.autograd.grad(F.cross_entropy(x, t, reduction="none"), x, up)
    got = losses.cross_entropy_grad(x.detach(), t, reduction="none", grad_output=up)
    assert got.shape == (2, 3, 4) and _max_err(got, expected) <= 1e-12


def test_perplexity_from_nll_keeps_the_type():
    t = losses.perplexity_from_nll(torch.tensor(math.log(5.0), dtype=torch.float64))
    assert isinstance(t, torch.Tensor) and abs(t.item() - 5.0) < 1e-12
    f = losses.perplexity_from_nll(math.log(5.0))
    assert type(f) is float and abs(f - 5.0) < 1e-12
    assert losses.perplexity_from_nll(0) == 1.0


@pytest.mark.parametrize("scale", [None, 0.3, 2])
def test_attention_function_uses_the_given_scale(scale):
    q, k, v = (t.requires_grad_(True) for t in _qkv(lead=(2,), tq=3, tk=4, dk=3, dv=2))
    assert torch.autograd.gradcheck(lambda a, b, c: losses.AttentionFunction.apply(a, b, c, None, scale), (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, scale=None if scale is None else float(scale))
    assert _max_err(losses.AttentionFunction.apply(q, k, v, None, scale), ref) <= 1e-12
    assert _max_err(losses.attention_forward(q, k, v, scale=scale), ref) <= 1e-12


def test_attention_default_scale_is_one_over_sqrt_dk():
    q, k, v = _qkv(lead=(), tq=3, tk=4, dk=9, dv=2)
    p = torch.softmax(q @ k.T / 3.0, -1)
    assert _max_err(losses.attention_forward(q, k, v), p @ v) <= 1e-12
    q1, k1 = q[:, :1], k[:, :1]  # d_k = 1: scale 1
    assert _max_err(losses.attention_forward(q1, k1, v), torch.softmax(q1 @ k1.T, -1) @ v) <= 1e-12


def test_attention_float_mask_is_added_and_bool_mask_keeps_true():
    q, k, v = _qkv(lead=(), tq=3, tk=4, dk=2, dv=2)
    s = q @ k.T / math.sqrt(2)
    add = torch.tensor([[0.0, 1.0, -2.0, 0.5]] * 3, dtype=torch.float64)
    assert _max_err(losses.attention_forward(q, k, v, add), torch.softmax(s + add, -1) @ v) <= 1e-12
    keep = torch.tensor([True, False, True, False])
    assert _max_err(losses.attention_forward(q, k, v, keep), torch.softmax(s[:, [0, 2]], -1) @ v[[0, 2]]) <= 1e-12


@pytest.mark.parametrize(
    "args, match",
    [
        (("q", torch.zeros(2, 3), torch.zeros(2, 3)), r"q must be a floating tensor, got str"),
        ((torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.int32), torch.zeros(2, 3)), r"k must be a floating tensor, got torch.int32"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), None), r"v must be a floating tensor, got NoneType"),
        ((torch.zeros(2, 3), torch.zeros(3), torch.zeros(2, 3)), r"k must have shape \(\.\.\., T, d\), got \(3,\)"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3)), r"v must have shape \(\.\.\., T, d\), got \(3,\)"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64)), r"share one dtype.*float32, torch.float32, torch.float64"),
        ((torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(2, 2, 3)), r"leading dims.*\(1, 2, 3\).*\(2, 2, 3\)"),
    ],
)
def test_attention_argument_errors(args, match):
    with pytest.raises(ValueError, match=match):
        losses.attention_forward(*args)


def test_attention_mask_type_errors():
    q, k, v = _qkv(lead=(2,))
    with pytest.raises(ValueError, match=r"bool tensor.*or a float one.*got list"):
        losses.attention_forward(q, k, v, mask=[[True]])
    with pytest.raises(ValueError, match=r"mask of shape \(3, 6\) does not broadcast.*\(2, 5, 6\)"):
        losses.attention_backward(q, k, v, torch.zeros(2, 5, 3, dtype=torch.float64), mask=torch.ones(3, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"d_k"):
        losses.attention_backward(q, k[..., :3], v, torch.zeros(2, 5, 3, dtype=torch.float64))


# --------------------------------------------------------------------------------------
# bits per byte


def test_bits_per_byte_values():
    assert losses.bits_per_byte(8 * math.log(2), 1) == pytest.approx(8.0, abs=1e-12)  # a uniform byte: 8 bits
    assert losses.bits_per_byte(100 * math.log(2), 50) == pytest.approx(2.0, abs=1e-12)
    assert losses.bits_per_byte(0.0, 7) == 0.0
    assert losses.bits_per_byte(0, 1) == 0.0
    got = losses.bits_per_byte(torch.tensor(3 * math.log(2), requires_grad=True), 3)
    assert type(got) is float and got == pytest.approx(1.0, abs=1e-7)
    # the same text, two tokenizers: 10 tokens at mean loss 2.0 vs 5 tokens at 4.0 (mean per token differs)
    text = "hello world, twenty-six b"
    n = len(text.encode("utf-8"))
    assert losses.bits_per_byte(10 * 2.0, n) == losses.bits_per_byte(5 * 4.0, n)
    assert losses.bits_per_byte(1.0, len("日本".encode("utf-8"))) == pytest.approx(1 / (6 * math.log(2)))


@pytest.mark.parametrize("n_bytes", [0, -3, True, 2.0, "4", None])
def test_bits_per_byte_rejects_bad_byte_counts(n_bytes):
    with pytest.raises(ValueError, match=r"n_bytes must be a positive int, got"):
        losses.bits_per_byte(1.0, n_bytes)


@pytest.mark.parametrize("nll", [-1e-9, -1.0, math.nan, math.inf, -math.inf, torch.tensor(math.nan)])
def test_bits_per_byte_rejects_bad_losses(nll):
    with pytest.raises(ValueError, match=r"total_nll must be a finite sum of losses >= 0, got"):
        losses.bits_per_byte(nll, 10)


def test_softmax_of_a_scalar_follows_torch():
    x = torch.tensor(2.0, dtype=torch.float64)
    assert torch.equal(losses.softmax(x), torch.softmax(x, -1))
    assert torch.equal(losses.log_softmax(x, 0), torch.log_softmax(x, 0))


def test_softmax_and_log_softmax_default_to_the_last_dim():
    x = _logits((2, 3, 4), torch.float64)
    assert torch.equal(losses.softmax(x), losses.softmax(x, -1))
    assert torch.equal(losses.log_softmax(x), losses.log_softmax(x, -1))
    assert _max_err(losses.softmax(x), torch.softmax(x, -1)) <= 1e-12
    assert _max_err(losses.log_softmax(x), torch.log_softmax(x, -1)) <= 1e-12


def test_cross_entropy_stays_on_the_logits_device_and_dtype():
    # "meta" stands in for a GPU: every helper tensor must be made on the logits' device
    x, y = torch.empty(3, 4, device="meta"), torch.empty(3, 4, device="meta")
    assert losses.cross_entropy(x, y).device.type == "meta"
    assert losses.cross_entropy_grad(x, y).device.type == "meta"
    # an upstream gradient given on the CPU, or in another dtype, is moved to the logits' device and dtype
    g = losses.cross_entropy_grad(x, y, reduction="none", grad_output=torch.ones(3, dtype=torch.float64))
    assert g.device.type == "meta" and g.dtype == torch.float32
    z, t = _logits((3, 4), torch.float32), torch.tensor([0, 1, 2])
    g = losses.cross_entropy_grad(z, t, reduction="none", grad_output=torch.full((3,), 2.0, dtype=torch.float64))
    assert g.dtype == torch.float32 and _max_err(g, 2 * losses.cross_entropy_grad(z, t, reduction="none")) <= 1e-7


def test_attention_with_large_scores_does_not_overflow():
    # scores of ±900: exp(900) overflows even float64, so the row max must be subtracted first
    q = torch.tensor([[30.0], [-30.0]], dtype=torch.float64)
    k = torch.tensor([[30.0], [29.0], [-30.0]], dtype=torch.float64)
    v = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    ref, out, fn_out, expected, ours, via_fn = _grads_vs_torch(q, k, v, None)
    assert torch.isfinite(out).all() and _max_err(out, ref) <= 1e-12
    for a, b in zip(ours, expected):
        assert torch.isfinite(a).all() and _max_err(a, b) <= 1e-10
