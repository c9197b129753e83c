"""OpGuard: every alias of a forbidden operator is caught, honest code is not, and a hit can be refused."""
from __future__ import annotations

import fnmatch

import pytest
import torch
import torch.nn.functional as F

from lmcourse import forbid
from lmcourse.forbid import (
    ATTENTION, AUTOGRAD, CROSS_ENTROPY, EMBEDDING, GUARD_DISABLED, LAYER_NORM, LOG_SOFTMAX, LOGSUMEXP, SOFTMAX,
    ForbiddenCall, OpGuard,
)
X = torch.randn(2, 5)
T = torch.tensor([0, 3])
Q = torch.randn(1, 2, 4, 8)


# (what the student wrote, the family declared, the one hit it gives with autograd on: the
# operator layer's name, since the Python layer only speaks when nothing below named the call)
ALIASES = [
    ("torch.softmax", lambda: torch.softmax(X, -1), SOFTMAX, "aten::_softmax"),
    ("Tensor.softmax", lambda: X.softmax(-1), SOFTMAX, "aten::_softmax"),
    ("F.softmax", lambda: F.softmax(X, dim=-1), SOFTMAX, "aten::_softmax"),
    ("torch.special.softmax", lambda: torch.special.softmax(X, -1), SOFTMAX, "aten::_softmax"),
    ("torch.ops.aten._softmax", lambda: torch.ops.aten._softmax(X, -1, False), SOFTMAX, "aten::_softmax"),
    ("torch.ops.aten._softmax.default", lambda: torch.ops.aten._softmax.default(X, -1, False), SOFTMAX,
     "aten::_softmax"),
    ("torch.ops.aten.softmax.int", lambda: torch.ops.aten.softmax.int(X, -1), SOFTMAX, "aten::_softmax"),
    ("nn.Softmax", lambda: torch.nn.Softmax(dim=-1)(X), SOFTMAX, "aten::_softmax"),
    ("torch.log_softmax", lambda: torch.log_softmax(X, -1), LOG_SOFTMAX, "aten::_log_softmax"),
    ("Tensor.log_softmax", lambda: X.log_softmax(-1), LOG_SOFTMAX, "aten::_log_softmax"),
    ("F.log_softmax", lambda: F.log_softmax(X, -1), LOG_SOFTMAX, "aten::_log_softmax"),
    ("torch.special.log_softmax", lambda: torch.special.log_softmax(X, -1), LOG_SOFTMAX,
     "aten::_log_softmax"),
    ("F.cross_entropy", lambda: F.cross_entropy(X, T), CROSS_ENTROPY, "aten::nll_loss_forward"),
    ("nn.CrossEntropyLoss", lambda: torch.nn.CrossEntropyLoss()(X, T), CROSS_ENTROPY, "aten::nll_loss_forward"),
    ("F.nll_loss(F.log_softmax)", lambda: F.nll_loss(F.log_softmax(X, -1), T), CROSS_ENTROPY,
     "aten::nll_loss_forward"),
    ("F.nll_loss 4-D", lambda: F.nll_loss(torch.randn(2, 3, 2, 2), torch.zeros(2, 2, 2, dtype=torch.long)),
     CROSS_ENTROPY, "aten::nll_loss2d_forward"),
    ("torch.logsumexp", lambda: torch.logsumexp(X, -1), LOGSUMEXP, "aten::logsumexp"),
    ("Tensor.logsumexp", lambda: X.logsumexp(-1), LOGSUMEXP, "aten::logsumexp"),
    ("torch.special.logsumexp", lambda: torch.special.logsumexp(X, -1), LOGSUMEXP, "aten::logsumexp"),
    ("F.scaled_dot_product_attention", lambda: F.scaled_dot_product_attention(Q, Q, Q), ATTENTION,
     "aten::_scaled_dot_product_flash_attention_for_cpu"),
    ("torch._C._nn.scaled_dot_product_attention", lambda: torch._C._nn.scaled_dot_product_attention(Q, Q, Q),
     ATTENTION, "aten::_scaled_dot_product_flash_attention_for_cpu"),
    ("F.layer_norm", lambda: F.layer_norm(X, (5,)), LAYER_NORM, "aten::native_layer_norm"),
    ("nn.LayerNorm", lambda: torch.nn.LayerNorm(5)(X), LAYER_NORM, "aten::native_layer_norm"),
    ("F.embedding", lambda: F.embedding(T, X.mT), EMBEDDING, "aten::embedding"),
    ("nn.Embedding", lambda: torch.nn.Embedding(4, 3)(T), EMBEDDING, "aten::embedding"),
    ("F.embedding_bag", lambda: F.embedding_bag(T[None], X.mT), EMBEDDING, "aten::_embedding_bag_forward_only"),
    ("F.one_hot", lambda: F.one_hot(T, 5), ("aten::one_hot",), "aten::one_hot"),
    ("F.cosine_similarity", lambda: F.cosine_similarity(X, X), ("aten::cosine_similarity",),
     "aten::cosine_similarity"),
    ("a Python-level name", lambda: F.cross_entropy(X, T), ("torch.nn.functional.cross_entropy",),
     "torch.nn.functional.cross_entropy"),
]
GRAD_MODES = {"grad": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


def _under(ctx, fn):
    with ctx:
        return fn()


@pytest.mark.parametrize("mode", GRAD_MODES)
@pytest.mark.parametrize("label, call, family, hit", ALIASES, ids=[a[0] for a in ALIASES])
def test_every_alias_is_caught_in_every_grad_mode(label, call, family, hit, mode):
    with GRAD_MODES[mode]():
        with OpGuard(family) as guard:
            call()
    assert guard.hits, f"{label} under {mode} was not caught"
    assert all(any(fnmatch.fnmatchcase(h, p) for p in family) for h in guard.hits), guard.hits
    if mode == "grad":
        assert guard.hits == [hit]


@pytest.mark.parametrize("mode", GRAD_MODES)
@pytest.mark.parametrize("label, call, family, hit", ALIASES, ids=[a[0] for a in ALIASES])
def test_every_alias_is_refused_with_raise_on_hit(label, call, family, hit, mode):
    with GRAD_MODES[mode]():
        with pytest.raises(ForbiddenCall) as info:
            with OpGuard(family, raise_on_hit=True):
                call()
    assert any(fnmatch.fnmatchcase(info.value.hit, p) for p in family)


def test_under_inference_mode_a_composite_is_seen_by_its_own_name_only():
    # Why an exercise declares whole families: the decomposition runs below the guard there.
    for mode, seen in (("grad", True), ("inference_mode", False)):
        with GRAD_MODES[mode]():
            with OpGuard(["aten::_log_softmax", "aten::_scaled_dot_product_*"]) as guard:
                F.cross_entropy(X, T)
                F.scaled_dot_product_attention(Q, Q, Q)
        assert bool(guard.hits) == seen, (mode, guard.hits)


def _honest_softmax(x):
    z = x - x.max(dim=-1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def test_honest_code_is_not_a_hit_even_with_no_grad_inference_mode_and_autograd_off():
    every = (*SOFTMAX, *LOG_SOFTMAX, *LOGSUMEXP, *CROSS_ENTROPY, *ATTENTION, *LAYER_NORM, *EMBEDDING, "aten::one_hot")
    x = torch.randn(3, 4, requires_grad=True)
    with OpGuard(every, autograd=True) as guard:
        y = _honest_softmax(x)
        with torch.no_grad():
            _honest_softmax(x)
        with torch.inference_mode():
            _honest_softmax(torch.randn(2, 2))
        with torch.enable_grad():
            _honest_softmax(x)
        ids = torch.tensor([0, 2])
        torch.eye(4)[ids] @ torch.randn(4, 3)                 # an embedding by one-hot matmul
        (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True)  # a layer norm by hand
        _ = y.requires_grad, y.shape, y.detach().numpy()       # attribute access
    assert guard.hits == []
    assert torch.allclose(y, torch.softmax(x, -1))            # and the guard changed no value


def test_hits_are_deduplicated_and_in_order():
    with OpGuard(["aten::_softmax", "aten::logsumexp"]) as guard:
        X.logsumexp(-1)
        X.softmax(-1)
        X.logsumexp(-1)
        torch.softmax(X, 0)
    assert guard.hits == ["aten::logsumexp", "aten::_softmax"]


def test_overload_qualified_patterns_match():
    with OpGuard(["aten::where.self"]) as guard:
        torch.where(X > 0, X, X * 2)
    assert guard.hits == ["aten::where"]
    with OpGuard(["aten::where.ScalarOther"]) as guard:
        torch.where(X > 0, X, X * 2)
    assert guard.hits == []


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # torch's own forward-AD import
@pytest.mark.parametrize("label, call", [
    ("Tensor.backward", lambda x: (x * x).sum().backward()),
    ("torch.autograd.grad", lambda x: torch.autograd.grad((x * x).sum(), x)),
    ("torch.autograd.backward", lambda x: torch.autograd.backward([(x * x).sum()])),
    ("torch.func.grad", lambda x: torch.func.grad(lambda t: (t * t).sum())(x.detach())),
    ("torch.func.vjp", lambda x: torch.func.vjp(lambda t: t.sin(), x.detach())[1](torch.ones(3))),
    ("torch.autograd.functional.jacobian", lambda x: torch.autograd.functional.jacobian(torch.sin, x.detach())),
    ("forward-mode AD", lambda x: torch.func.jvp(torch.sin, (x.detach(),), (torch.ones(3),))),
    ("a derivative kernel", lambda x: torch.ops.aten._softmax_backward_data(torch.ones(3), x.detach(), 0,
                                                                             torch.float32)),
    ("a derivative kernel, by overload", lambda x: torch.ops.aten.nll_loss_backward.default(
        torch.tensor(1.0), x.detach()[None], torch.tensor([0]), None, 1, -100, torch.tensor(1.0))),
])
def test_autograd_is_caught_when_forbidden_and_only_then(label, call):
    x = torch.randn(3, requires_grad=True)
    with OpGuard((), autograd=True) as guard:
        call(x)
    assert guard.hits == [AUTOGRAD]
    with OpGuard(["aten::_softmax"]) as guard:
        call(x)
    assert guard.hits == []
    with pytest.raises(ForbiddenCall):
        with OpGuard((), autograd=True, raise_on_hit=True):
            call(x)


def test_forbidden_call_cannot_be_swallowed_by_except_exception():
    def sneaky(x):
        try:
            return torch.softmax(x, -1)
        except Exception:
            return _honest_softmax(x)

    with pytest.raises(ForbiddenCall) as info:
        with OpGuard(["aten::_softmax"], raise_on_hit=True):
            sneaky(X)
    assert info.value.hit == "aten::_softmax"
    assert not isinstance(info.value, Exception)
    assert "aten::_softmax (torch.softmax" in str(info.value)


def test_switching_the_dispatcher_off_is_noted():
    with OpGuard(["aten::_softmax"]) as guard:
        with torch._C._DisableTorchDispatch():
            torch.softmax(X, -1)
    assert GUARD_DISABLED in guard.hits


def test_modes_are_removed_on_exit_even_after_a_hit():
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    before = len(_get_current_dispatch_mode_stack())
    with pytest.raises(ForbiddenCall):
        with OpGuard(["aten::_softmax"], raise_on_hit=True):
            X.softmax(-1)
    assert len(_get_current_dispatch_mode_stack()) == before
    with OpGuard(["aten::_softmax"]) as guard:
        pass
    X.softmax(-1)                                  # after exit: not seen
    assert guard.hits == []


def test_nested_guards_both_see_the_call():
    with OpGuard(["aten::_softmax"]) as outer:
        with OpGuard(["aten::logsumexp"]) as inner:
            X.softmax(-1)
            X.logsumexp(-1)
    assert outer.hits == ["aten::_softmax"] and inner.hits == ["aten::logsumexp"]


def test_an_empty_guard_installs_nothing_and_bad_patterns_are_refused():
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    with OpGuard(()) as guard:
        assert _get_current_dispatch_mode_stack() == []
        X.softmax(-1)
    assert guard.hits == []
    with pytest.raises(TypeError, match="string 'aten::_softmax'"):
        OpGuard("aten::_softmax")
    with pytest.raises(TypeError, match="non-empty strings"):
        OpGuard(["", 3])
    guard = OpGuard(["aten::_softmax"])
    with guard:
        with pytest.raises(RuntimeError, match="already active"):
            guard.__enter__()


def test_describe_names_the_operator_and_its_python_spellings():
    assert forbid.describe("aten::_softmax").startswith("aten::_softmax (torch.softmax, Tensor.softmax, F.softmax")
    assert "F.scaled_dot_product_attention" in forbid.describe("aten::_scaled_dot_product_flash_attention_for_cpu")
    assert forbid.describe("aten::mystery") == "aten::mystery"
