"""lmcourse.attention against PyTorch's own attention (the oracles), then its properties and errors."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse.attention import (
    CausalSelfAttention,
    MultiHeadAttention,
    causal_mask,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)

TOL = {torch.float64: 1e-6, torch.float32: 1e-5}
DTYPES = [torch.float64, torch.float32]


def maxerr(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item() if a.numel() else 0.0


def randn(*shape, g, dtype):
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


# ---------------------------------------------------------------- oracle 1: F.scaled_dot_product_attention

@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=3),
    Tq=st.integers(1, 9),
    Tk=st.integers(1, 9),
    d_k=st.integers(1, 17),
    d_v=st.integers(1, 9),
    masked=st.booleans(),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(DTYPES),
)
def test_sdpa_equals_torch_with_attn_mask(lead, Tq, Tk, d_k, d_v, masked, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    q, k, v = randn(*lead, Tq, d_k, g=g, dtype=dtype), randn(*lead, Tk, d_k, g=g, dtype=dtype), randn(*lead, Tk, d_v, g=g, dtype=dtype)
    mask = (torch.rand(*lead, Tq, Tk, generator=g) < 0.7) if masked else None
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    got = scaled_dot_product_attention(q, k, v, mask=mask)
    assert got.dtype == dtype
    assert maxerr(got, want) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 4), (5, 8), (2, 5, 8), (2, 3, 7, 16), (2, 2, 3, 6, 4)])
def test_sdpa_equals_torch_is_causal(shape, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    q, k, v = (randn(*shape, g=g, dtype=dtype) for _ in range(3))
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert maxerr(scaled_dot_product_attention(q, k, v, is_causal=True), want) <= TOL[dtype]
    T = shape[-2]
    assert maxerr(scaled_dot_product_attention(q, k, v, mask=causal_mask(T)), want) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [0.0, 0.1, 1.0, 3.0])
def test_sdpa_equals_torch_custom_scale_and_broadcast_mask(scale, dtype):
    g = torch.Generator().manual_seed(1)
    q, k, v = randn(2, 3, 5, 8, g=g, dtype=dtype), randn(2, 3, 6, 8, g=g, dtype=dtype), randn(2, 3, 6, 4, g=g, dtype=dtype)
    mask = torch.rand(2, 1, 1, 6, generator=g) < 0.6  # a key-padding mask broadcast over heads and queries
    mask[..., 0] = True
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    assert maxerr(scaled_dot_product_attention(q, k, v, mask=mask, scale=scale), want) <= TOL[dtype]


def test_sdpa_broadcasts_leading_dims_like_matmul():
    g = torch.Generator().manual_seed(2)
    q, k, v = randn(2, 3, 4, 8, g=g, dtype=torch.float64), randn(1, 3, 5, 8, g=g, dtype=torch.float64), randn(3, 5, 2, g=g, dtype=torch.float64)
    got = scaled_dot_product_attention(q, k, v)
    assert got.shape == (2, 3, 4, 2)
    want = F.scaled_dot_product_attention(q, k.expand(2, 3, 5, 8), v.expand(2, 3, 5, 2))
    assert maxerr(got, want) <= 1e-12


@pytest.mark.parametrize("dtype", DTYPES)
def test_fully_masked_row_gives_zeros_like_torch(dtype):
    g = torch.Generator().manual_seed(3)
    q, k, v = randn(2, 4, 8, g=g, dtype=dtype), randn(2, 5, 8, g=g, dtype=dtype), randn(2, 5, 3, g=g, dtype=dtype)
    mask = torch.rand(2, 4, 5, generator=g) < 0.5
    mask[0, 1] = False  # query 1 of batch 0 may look at nothing
    mask[1, 2] = False
    mask[1, 3] = True
    out, w = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    assert (out[0, 1] == 0).all() and (w[0, 1] == 0).all() and (out[1, 2] == 0).all()
    assert maxerr(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask)) <= TOL[dtype]
    # the rows that do see something are still distributions
    sums = w.sum(-1)
    assert torch.allclose(sums[mask.any(-1)], torch.ones((), dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_are_softmax_rows_and_respect_the_mask(dtype):
    g = torch.Generator().manual_seed(4)
    q, k, v = randn(3, 6, 4, g=g, dtype=dtype), randn(3, 6, 4, g=g, dtype=dtype), randn(3, 6, 5, g=g, dtype=dtype)
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    assert w.shape == (3, 6, 6)
    assert (w.triu(1) == 0).all()
    assert maxerr(w.sum(-1), torch.ones(3, 6, dtype=dtype)) <= TOL[dtype]
    ref = torch.softmax((q @ k.mT / 2.0).masked_fill(~causal_mask(6), -math.inf), dim=-1)
    assert maxerr(w, ref) <= TOL[dtype]
    assert maxerr(out, w @ v) <= TOL[dtype]


def test_sdpa_gradients_match_torch_and_gradcheck():
    g = torch.Generator().manual_seed(5)
    q, k, v = (randn(2, 4, 3, g=g, dtype=torch.float64).requires_grad_() for _ in range(3))
    mask = causal_mask(4)
    assert torch.autograd.gradcheck(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask=mask), (q, k, v))
    ours = torch.autograd.grad(scaled_dot_product_attention(q, k, v, mask=mask).square().sum(), (q, k, v))
    theirs = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).square().sum(), (q, k, v))
    for a, b in zip(ours, theirs):
        assert maxerr(a, b) <= 1e-10


# ---------------------------------------------------------------- oracle 2: nn.MultiheadAttention

def copy_into(ours: MultiHeadAttention, mha: nn.MultiheadAttention) -> None:
    """nn.MultiheadAttention's fused in_proj is our c_attn, its out_proj our c_proj: a key copy."""
    with torch.no_grad():
        ours.c_attn.weight.copy_(mha.in_proj_weight)
        ours.c_proj.weight.copy_(mha.out_proj.weight)
        if mha.in_proj_bias is not None:
            ours.c_attn.bias.copy_(mha.in_proj_bias)
            ours.c_proj.bias.copy_(mha.out_proj.bias)


def pair(C, nh, bias, dtype, seed, cls=MultiHeadAttention):
    torch.manual_seed(seed)
    mha = nn.MultiheadAttention(C, nh, bias=bias, batch_first=True).to(dtype).eval()
    if bias:  # torch initialises the biases to 0: make them count
        with torch.no_grad():
            mha.in_proj_bias.normal_()
            mha.out_proj.bias.normal_()
    ours = (cls(C, nh, bias=bias) if cls is not CausalSelfAttention else cls(SimpleNamespace(n_embd=C, n_head=nh, bias=bias, dropout=0.0))).to(dtype).eval()
    copy_into(ours, mha)
    return ours, mha


SHAPES = [(1, 1, 4, 1), (2, 5, 8, 2), (3, 7, 12, 3), (2, 9, 16, 4), (1, 6, 6, 6)]  # (B, T, C, n_head)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B,T,C,nh", SHAPES)
def test_causal_self_attention_equals_nn_multihead_attention(B, T, C, nh, bias, dtype):
    ours, mha = pair(C, nh, bias, dtype, seed=B * 100 + T, cls=CausalSelfAttention)
    x = randn(B, T, C, g=torch.Generator().manual_seed(T), dtype=dtype)
    with torch.no_grad():
        # nn.MultiheadAttention's bool attn_mask means the opposite: True = NOT allowed
        want, want_w = mha(x, x, x, attn_mask=~causal_mask(T), need_weights=True, average_attn_weights=False)
        got, got_w = ours(x, return_weights=True)
    assert maxerr(got, want) <= TOL[dtype]
    assert maxerr(got_w, want_w) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,T,C,nh", SHAPES)
def test_multihead_attention_with_key_padding_equals_nn(B, T, C, nh, dtype):
    ours, mha = pair(C, nh, True, dtype, seed=7 + T)
    g = torch.Generator().manual_seed(8 + T)
    x = randn(B, T, C, g=g, dtype=dtype)
    pad = torch.rand(B, T, generator=g) < 0.4  # True = padding, ignore (torch's convention)
    pad[:, 0] = False  # at least one real token per sequence
    with torch.no_grad():
        want = mha(x, x, x, key_padding_mask=pad, need_weights=False)[0]
        got = ours(x, mask=~pad[:, None, None, :])
        assert maxerr(got, want) <= TOL[dtype]
        # padding and causal together
        want = mha(x, x, x, key_padding_mask=pad, attn_mask=~causal_mask(T), need_weights=False)[0]
        got = ours(x, mask=~pad[:, None, None, :], is_causal=True)
        assert maxerr(got, want) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("Tq,Tk", [(1, 5), (4, 7), (6, 2)])
def test_cross_attention_equals_nn(Tq, Tk, dtype):
    C, nh, B = 12, 3, 2
    ours, mha = pair(C, nh, True, dtype, seed=Tq * Tk)
    g = torch.Generator().manual_seed(Tq + Tk)
    query, key, value = randn(B, Tq, C, g=g, dtype=dtype), randn(B, Tk, C, g=g, dtype=dtype), randn(B, Tk, C, g=g, dtype=dtype)
    with torch.no_grad():
        want, want_w = mha(query, key, value, average_attn_weights=False)
        got, got_w = ours(query, key, value, return_weights=True)
    assert maxerr(got, want) <= TOL[dtype]
    assert maxerr(got_w, want_w) <= TOL[dtype]


def test_fused_self_attention_equals_the_separate_projections():
    m = MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert maxerr(m(x), m(x, x, x)) <= 1e-12


# ---------------------------------------------------------------- properties

def test_causal_mask_values():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert m.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert causal_mask(0).shape == (0, 0)
    assert causal_mask(3, device="cpu").device.type == "cpu"
    assert causal_mask(3, device="meta").device.type == "meta"


def test_causal_self_attention_never_looks_ahead():
    torch.manual_seed(0)
    att = CausalSelfAttention(16, 4).double().eval()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    y = x.clone()
    y[:, 4:] = torch.randn(2, 3, 16, dtype=torch.float64)  # change the future
    a, b = att(x), att(y)
    assert maxerr(a[:, :4], b[:, :4]) <= 1e-12
    assert maxerr(a[:, 4:], b[:, 4:]) > 1e-3


def test_split_and_merge_heads_are_inverse_reshapes():
    x = torch.arange(2 * 3 * 6).reshape(2, 3, 6).float()
    h = split_heads(x, 2)
    assert h.shape == (2, 2, 3, 3)
    assert h[0, 1, 0].tolist() == [3.0, 4.0, 5.0]  # head 1 gets channels 3..5 of position 0
    assert torch.equal(merge_heads(h), x)


def test_config_construction_and_parameter_names():
    cfg = SimpleNamespace(n_embd=12, n_head=3, bias=False, dropout=0.1)
    att = CausalSelfAttention(cfg)
    assert (att.n_embd, att.n_head, att.dropout) == (12, 3, 0.1)
    assert sorted(att.state_dict()) == ["c_attn.weight", "c_proj.weight"]
    assert sorted(CausalSelfAttention(12, 3).state_dict()) == ["c_attn.bias", "c_attn.weight", "c_proj.bias", "c_proj.weight"]
    assert att.c_attn.weight.shape == (36, 12)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    att = CausalSelfAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 5, 8)
    att.eval()
    y1, y2 = att(x), att(x)
    assert torch.equal(y1, y2)
    att.train()
    assert not torch.allclose(att(x), y1)


def test_training_dropout_also_drops_attention_weights():
    # With the residual dropout switched off, a training-mode output still differs: the weights are dropped.
    torch.manual_seed(0)
    att = CausalSelfAttention(8, 2, dropout=0.5)
    att.resid_dropout.p = 0.0
    x = torch.randn(2, 5, 8)
    att.eval()
    y = att(x)
    att.train()
    assert not torch.allclose(att(x), y)


# ---------------------------------------------------------------- errors name the shapes

@pytest.mark.parametrize(
    "shapes,match",
    [
        (((2, 4, 8), (2, 5, 7), (2, 5, 3)), r"same last dim d_k.*\(2, 4, 8\).*\(2, 5, 7\)"),
        (((2, 4, 8), (2, 5, 8), (2, 6, 3)), r"same length Tk.*\(2, 5, 8\).*\(2, 6, 3\)"),
        (((8,), (5, 8), (5, 8)), r"q must have shape \(\.\.\., T, d\), got \(8,\)"),
        (((2, 4, 8), (3, 5, 8), (3, 5, 8)), r"do not broadcast.*\(2, 4, 8\).*\(3, 5, 8\)"),
    ],
)
def test_sdpa_shape_errors(shapes, match):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v)


def test_sdpa_mask_errors():
    q, k, v = torch.zeros(2, 4, 8), torch.zeros(2, 5, 8), torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match=r"mask of shape \(4, 4\) does not broadcast.*\(2, 4, 5\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 4, 5\) does not broadcast"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"bool tensor.*torch.float32"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 5))
    with pytest.raises(ValueError, match=r"is_causal needs Tq == Tk.*\(2, 4, 8\).*\(2, 5, 8\)"):
        scaled_dot_product_attention(q, k, v, is_causal=True)
    with pytest.raises(ValueError, match=r"dtype"):
        scaled_dot_product_attention(q.double(), k, v)
    with pytest.raises(ValueError, match=r"floating-point"):
        scaled_dot_product_attention(q.long(), k.long(), v.long())
    with pytest.raises(ValueError, match=r"scale must be a float.*'0.5'"):
        scaled_dot_product_attention(q, k, v, scale="0.5")


def test_module_errors():
    with pytest.raises(ValueError, match=r"n_embd=10 must be divisible by n_head=3"):
        CausalSelfAttention(10, 3)
    with pytest.raises(ValueError, match=r"n_head is missing"):
        CausalSelfAttention(10)
    with pytest.raises(ValueError, match=r"n_embd and n_head"):
        CausalSelfAttention(object())
    att = CausalSelfAttention(8, 2)
    with pytest.raises(ValueError, match=r"^x must have shape \(B, T, C=8\), got \(2, 5, 6\)"):
        att(torch.zeros(2, 5, 6))
    with pytest.raises(ValueError, match=r"^x must have shape \(B, T, C=8\), got \(5, 8\)"):
        att(torch.zeros(5, 8))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 3\) does not broadcast.*\(2, 2, 5, 5\)"):
        att(torch.zeros(2, 5, 8), mask=torch.ones(3, 3, dtype=torch.bool))
    m = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"key and value must share \(B, Tk\).*\(2, 5, 8\).*\(2, 4, 8\)"):
        m(torch.zeros(2, 3, 8), torch.zeros(2, 5, 8), torch.zeros(2, 4, 8))
    with pytest.raises(ValueError, match=r"batch size"):
        m(torch.zeros(3, 3, 8), torch.zeros(2, 5, 8), torch.zeros(2, 5, 8))
    with pytest.raises(ValueError, match=r"C=6.*divisible by n_head=4"):
        split_heads(torch.zeros(1, 2, 6), 4)
    with pytest.raises(ValueError, match=r"\(B, nh, T, hs\), got \(2, 3\)"):
        merge_heads(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"non-negative int"):
        causal_mask(-1)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 'x'"):
        MultiHeadAttention(8, 2, dropout="x")


# ---------------------------------------------------------------- chapter 04's exercise references

def test_ch04_references_equal_the_library():
    from lmcourse.exercises import ch04

    for T in (1, 4, 7):
        assert torch.equal(ch04.causal_mask.reference(T), causal_mask(T))
    for case in ch04.causal_attention.cases():
        q, k, v = case.args
        assert maxerr(ch04.causal_attention.reference(q, k, v), scaled_dot_product_attention(q, k, v, is_causal=True)) <= 1e-12
    for case in ch04.split_heads.cases():
        assert torch.equal(ch04.split_heads.reference(*case.args), split_heads(*case.args))
    for case in ch04.causal_self_attention.cases():
        x, w_attn, b_attn, w_proj, b_proj, nh = case.args
        att = CausalSelfAttention(x.shape[-1], nh).double()
        with torch.no_grad():
            att.c_attn.weight.copy_(w_attn), att.c_attn.bias.copy_(b_attn)
            att.c_proj.weight.copy_(w_proj), att.c_proj.bias.copy_(b_proj)
            assert maxerr(ch04.causal_self_attention.reference(*case.args), att(x)) <= 1e-12


def test_ch04_messages_name_the_mistake():
    from lmcourse.exercises import ch04

    report = ch04.causal_attention.run(ch04._att_no_scale).report
    assert "✗" in report and "1/√d_k" in report
    for k, wrong in enumerate(ch04.causal_attention.wrong):  # each mistake is told apart from the others
        assert ch04.causal_attention.run(wrong.fn).matched == [wrong.message], wrong.fn.__name__
    assert ch04.split_heads.run(ch04._split_no_transpose).matched == [ch04.split_heads.wrong[0].message]


# ---------------------------------------------------------------- empty shapes: as torch does

EMPTY = [  # (lead, Tq, Tk, d_k, d_v)
    ((2,), 0, 5, 4, 3),   # no queries
    ((2,), 3, 0, 4, 3),   # no keys: every row is "fully masked", output 0
    ((2,), 0, 0, 4, 3),   # T = 0
    ((2,), 3, 5, 0, 3),   # d_k = 0: every score is an empty sum, 0, so the weights are uniform
    ((2,), 3, 5, 4, 0),   # d_v = 0
    ((), 0, 0, 0, 0),
]


@pytest.mark.parametrize("lead,Tq,Tk,d_k,d_v", EMPTY)
@pytest.mark.parametrize("masked", [False, True])
def test_empty_shapes_follow_torch_with_gradients(lead, Tq, Tk, d_k, d_v, masked):
    g = torch.Generator().manual_seed(11)
    q, k, v = (randn(*lead, T, d, g=g, dtype=torch.float64).requires_grad_()
               for T, d in ((Tq, d_k), (Tk, d_k), (Tk, d_v)))
    mask = None
    if masked:
        mask = torch.rand(*lead, Tq, Tk, generator=g) < 0.6
        if Tq:
            mask[..., 0, :] = False  # one fully masked row too
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    got, w = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert got.shape == want.shape == (*lead, Tq, d_v) and w.shape == (*lead, Tq, Tk)
    assert maxerr(got, want) <= 1e-12
    if Tk and Tq and not d_k and not masked:
        assert maxerr(w, torch.full_like(w, 1 / Tk)) <= 1e-12
    if got.numel():
        up = randn(*got.shape, g=g, dtype=torch.float64)
        ours = torch.autograd.grad(got, (q, k, v), up, allow_unused=True)
        theirs = torch.autograd.grad(want, (q, k, v), up, allow_unused=True)
        for a, b, t in zip(ours, theirs, (q, k, v)):
            a = torch.zeros_like(t) if a is None else a
            b = torch.zeros_like(t) if b is None else b
            assert maxerr(a, b) <= 1e-12


def test_empty_sequences_through_the_modules():
    torch.manual_seed(0)
    att = CausalSelfAttention(8, 2).double().eval()
    assert att(torch.zeros(2, 0, 8, dtype=torch.float64)).shape == (2, 0, 8)
    assert scaled_dot_product_attention(*(torch.zeros(1, 0, 4) for _ in range(3)), is_causal=True).shape == (1, 0, 4)
    m = MultiHeadAttention(8, 2).double().eval()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    empty = torch.zeros(2, 0, 8, dtype=torch.float64)
    # no keys at all: the attention output is 0, so the module returns the output projection's bias
    assert maxerr(m(x, empty, empty), m.c_proj.bias.expand(2, 3, 8)) <= 1e-12


# ---------------------------------------------------------------- every branch of the arguments

def test_default_scale_is_one_over_sqrt_dk_and_a_given_scale_is_used():
    g = torch.Generator().manual_seed(12)
    q, k, v = randn(3, 9, g=g, dtype=torch.float64), randn(4, 9, g=g, dtype=torch.float64), randn(4, 2, g=g, dtype=torch.float64)
    _, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    assert maxerr(w, torch.softmax(q @ k.T / 3.0, dim=-1)) <= 1e-12  # 1/sqrt(9)
    _, w = scaled_dot_product_attention(q, k, v, scale=2, return_weights=True)  # an int is a real number
    assert maxerr(w, torch.softmax(q @ k.T * 2.0, dim=-1)) <= 1e-12
    q1, k1 = q[:, :1], k[:, :1]  # d_k = 1: the default scale is exactly 1
    _, w = scaled_dot_product_attention(q1, k1, v, return_weights=True)
    assert maxerr(w, torch.softmax(q1 @ k1.T, dim=-1)) <= 1e-12


def test_return_weights_switch():
    q = k = v = torch.randn(2, 3, 4)
    assert isinstance(scaled_dot_product_attention(q, k, v), torch.Tensor)
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    assert out.shape == (2, 3, 4) and w.shape == (2, 3, 3)
    assert torch.equal(out, scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_and_is_causal_together_equal_torch(dtype):
    g = torch.Generator().manual_seed(13)
    q, k, v = (randn(2, 2, 5, 4, g=g, dtype=dtype) for _ in range(3))
    keep = torch.rand(2, 1, 5, 5, generator=g) < 0.7
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=keep & causal_mask(5))
    got, w = scaled_dot_product_attention(q, k, v, mask=keep, is_causal=True, return_weights=True)
    assert maxerr(got, want) <= TOL[dtype]
    assert not w[~(keep & causal_mask(5)).expand(2, 2, 5, 5)].any()
    # ... and the module combines a padding mask with its causal mask the same way
    torch.manual_seed(1)
    att = CausalSelfAttention(8, 2).to(dtype).eval()
    x = randn(2, 5, 8, g=g, dtype=dtype)
    pad = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]
    with torch.no_grad():
        mixed = att(x, mask=pad)
        q_, k_, v_ = (split_heads(t, 2) for t in att.c_attn(x).split(8, dim=2))
        ref = att.c_proj(merge_heads(F.scaled_dot_product_attention(q_, k_, v_, attn_mask=pad & causal_mask(5))))
    assert maxerr(mixed, ref) <= TOL[dtype]


@pytest.mark.parametrize(
    "args,match",
    [
        (([[1.0]], torch.zeros(2, 3), torch.zeros(2, 3)), r"q must be a torch.Tensor, got list"),
        ((torch.zeros(2, 3), None, torch.zeros(2, 3)), r"k must be a torch.Tensor, got NoneType"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), 1.0), r"v must be a torch.Tensor, got float"),
        ((torch.zeros(2, 3), torch.zeros(3), torch.zeros(2, 3)), r"k must have shape \(\.\.\., T, d\), got \(3,\)"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(())), r"v must have shape \(\.\.\., T, d\), got \(\)"),
        ((torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.int32), torch.zeros(2, 3)), r"k must be a floating-point.*int32"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool)), r"v must be a floating-point.*bool"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64)), r"share one dtype.*float32, torch.float32, torch.float64"),
        ((torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3)), r"share one dtype"),
    ],
)
def test_sdpa_argument_errors(args, match):
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(*args)


def test_sdpa_mask_and_scale_errors():
    q, k, v = torch.zeros(2, 4, 8), torch.zeros(2, 5, 8), torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match=r"bool tensor \(True = keep\), got list"):
        scaled_dot_product_attention(q, k, v, mask=[[True] * 5] * 4)
    with pytest.raises(ValueError, match=r"bool tensor.*torch.int64"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 5, dtype=torch.long))
    # a mask that broadcasts with the scores but would enlarge them is refused, not silently broadcast
    with pytest.raises(ValueError, match=r"mask of shape \(3, 2, 4, 5\) does not broadcast.*\(2, 4, 5\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"scale must be a float.*True"):
        scaled_dot_product_attention(q, k, v, scale=True)
    with pytest.raises(ValueError, match=r"scale must be a float.*tensor"):
        scaled_dot_product_attention(q, k, v, scale=torch.tensor(0.5))
    # the accepted forms: a broadcastable mask, scale 0 (uniform weights)
    ok = torch.ones(5, dtype=torch.bool)
    assert scaled_dot_product_attention(q, k, v, mask=ok).shape == (2, 4, 3)


@pytest.mark.parametrize("T", [-1, True, 2.0, "3", None])
def test_causal_mask_rejects_non_ints(T):
    with pytest.raises(ValueError, match=r"T must be a non-negative int"):
        causal_mask(T)


@pytest.mark.parametrize("n_head", [0, -2, True, 2.0, None, 4])
def test_split_heads_rejects_bad_n_head(n_head):
    with pytest.raises(ValueError, match=r"C=6 \(from x \(1, 2, 6\)\) must be divisible by n_head="):
        split_heads(torch.zeros(1, 2, 6), n_head)


def test_split_heads_errors_and_edges():
    with pytest.raises(ValueError, match=r"split_heads expects \(B, T, C\), got \(2, 6\)"):
        split_heads(torch.zeros(2, 6), 2)
    with pytest.raises(ValueError, match=r"split_heads expects \(B, T, C\), got \(1, 2, 2, 6\)"):
        split_heads(torch.zeros(1, 2, 2, 6), 2)
    x = torch.arange(12.0).reshape(1, 2, 6)
    assert split_heads(x, 1).shape == (1, 1, 2, 6) and split_heads(x, 6).shape == (1, 6, 2, 1)
    assert torch.equal(merge_heads(split_heads(x, 3)), x)
    with pytest.raises(ValueError, match=r"merge_heads expects \(B, nh, T, hs\), got \(1, 2, 3, 4, 5\)"):
        merge_heads(torch.zeros(1, 2, 3, 4, 5))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_embd=0, n_head=1), r"n_embd must be a positive int, got 0"),
        (dict(n_embd=-4, n_head=1), r"n_embd must be a positive int, got -4"),
        (dict(n_embd=True, n_head=1), r"n_embd must be a positive int, got True"),
        (dict(n_embd=8.0, n_head=2), r"n_embd must be a positive int, got 8.0"),
        (dict(n_embd=8, n_head=0), r"n_embd=8 must be divisible by n_head=0"),
        (dict(n_embd=8, n_head=-2), r"n_embd=8 must be divisible by n_head=-2"),
        (dict(n_embd=8, n_head=True), r"n_embd=8 must be divisible by n_head=True"),
        (dict(n_embd=8, n_head=2.0), r"n_embd=8 must be divisible by n_head=2.0"),
        (dict(n_embd=8, n_head=3), r"n_embd=8 must be divisible by n_head=3"),
        (dict(n_embd=8, n_head=2, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
        (dict(n_embd=8, n_head=2, dropout=-0.1), r"dropout must be in \[0, 1\), got -0.1"),
        (dict(n_embd=8, n_head=2, dropout=True), r"dropout must be in \[0, 1\), got True"),
        (dict(n_embd=8, n_head=2, dropout=None), r"dropout must be in \[0, 1\), got None"),
    ],
)
@pytest.mark.parametrize("cls", [MultiHeadAttention, CausalSelfAttention])
def test_constructors_name_the_bad_field(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(kwargs["n_embd"], **{k: v for k, v in kwargs.items() if k != "n_embd"})


@pytest.mark.parametrize(
    "fields,match",
    [
        (dict(n_embd=0, n_head=1), r"n_embd must be a positive int, got 0"),
        (dict(n_embd=8, n_head=0), r"divisible by n_head=0"),
        (dict(n_embd=8, n_head=2, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_config_fields_are_checked_too(fields, match):
    with pytest.raises(ValueError, match=match):
        CausalSelfAttention(SimpleNamespace(**fields))


def test_constructor_edges_that_are_allowed():
    m = MultiHeadAttention(1, 1, dropout=0.0)
    assert (m.n_embd, m.n_head, m.dropout) == (1, 1, 0.0)
    assert MultiHeadAttention(6, 6, dropout=0.999).dropout == 0.999
    assert MultiHeadAttention(4, 2, dropout=0).attn_dropout.p == 0
    m = MultiHeadAttention(4, 2, dropout=0.25)
    assert m.attn_dropout.p == m.resid_dropout.p == 0.25
    # a config without bias / dropout fields gets the defaults: biases on, no dropout
    att = CausalSelfAttention(SimpleNamespace(n_embd=4, n_head=2))
    assert att.c_attn.bias is not None and att.dropout == 0.0
    # numbers and keywords
    att = CausalSelfAttention(4, 2, bias=False, dropout=0.5)
    assert att.c_attn.bias is None and att.c_proj.bias is None and att.dropout == 0.5


def test_causal_self_attention_construction_errors():
    cfg = SimpleNamespace(n_embd=8, n_head=2)
    with pytest.raises(ValueError, match=r"either a config or \(n_embd, n_head\), not both"):
        CausalSelfAttention(cfg, 2)
    with pytest.raises(ValueError, match=r"n_head is missing"):
        CausalSelfAttention(8.0)
    with pytest.raises(ValueError, match=r"config must have n_embd and n_head.*'8'"):
        CausalSelfAttention("8")
    with pytest.raises(ValueError, match=r"config must have n_embd and n_head.*namespace\(n_embd=8\)"):
        CausalSelfAttention(SimpleNamespace(n_embd=8))


def test_multihead_attention_needs_key_and_value_together():
    # like nn.MultiheadAttention, which takes (query, key, value): a key alone is not silently its own value
    m = MultiHeadAttention(8, 2)
    x, y = torch.zeros(2, 3, 8), torch.zeros(2, 5, 8)
    with pytest.raises(ValueError, match=r"key and value.*both.*value is missing"):
        m(x, y)
    with pytest.raises(ValueError, match=r"key and value.*both.*key is missing"):
        m(x, value=y)
    assert m(x, y, y).shape == (2, 3, 8)


@pytest.mark.parametrize(
    "shapes,match",
    [
        (((2, 3, 6), None, None), r"query must have shape \(B, T, C=8\), got \(2, 3, 6\)"),
        (((3, 8), None, None), r"query must have shape \(B, T, C=8\), got \(3, 8\)"),
        (((2, 3, 8), (2, 5, 7), (2, 5, 8)), r"key must have shape \(B, T, C=8\), got \(2, 5, 7\)"),
        (((2, 3, 8), (2, 5, 8), (2, 5, 8, 1)), r"value must have shape \(B, T, C=8\), got \(2, 5, 8, 1\)"),
        (((2, 3, 8), (2, 5, 8), (2, 5, 9)), r"value must have shape \(B, T, C=8\), got \(2, 5, 9\)"),
    ],
)
def test_multihead_attention_checks_its_own_shapes(shapes, match):
    m = MultiHeadAttention(8, 2)
    args = [None if s is None else torch.zeros(s) for s in shapes]
    with pytest.raises(ValueError, match=match):
        m(*args)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_attention_without_bias_equals_nn(dtype):
    ours, mha = pair(8, 2, False, dtype, seed=3)
    g = torch.Generator().manual_seed(14)
    query, kv = randn(2, 3, 8, g=g, dtype=dtype), randn(2, 6, 8, g=g, dtype=dtype)
    with torch.no_grad():
        want, want_w = mha(query, kv, kv, average_attn_weights=False)
        got, got_w = ours(query, kv, kv, return_weights=True)
    assert maxerr(got, want) <= TOL[dtype] and maxerr(got_w, want_w) <= TOL[dtype]


def test_training_mode_without_dropout_is_deterministic_and_equals_eval():
    torch.manual_seed(0)
    att = CausalSelfAttention(8, 2, dropout=0.0)
    x = torch.randn(2, 5, 8)
    att.train()
    y = att(x)
    att.eval()
    assert torch.equal(y, att(x))


def test_attention_weight_dropout_zeroes_and_rescales_weights():
    # With p = 0.5 each kept weight is doubled (inverted dropout): the output is (dropped weights) @ v.
    torch.manual_seed(0)
    m = MultiHeadAttention(4, 1, bias=False, dropout=0.5)
    m.resid_dropout.p = 0.0
    with torch.no_grad():
        m.c_attn.weight.copy_(torch.eye(4).repeat(3, 1))
        m.c_proj.weight.copy_(torch.eye(4))
    x = torch.randn(1, 6, 4)
    m.eval()
    y_eval, w = m(x, return_weights=True)
    m.train()
    torch.manual_seed(5)
    y_train = m(x)
    torch.manual_seed(5)
    dropped = F.dropout(w, 0.5, training=True)
    assert set(torch.unique(dropped / w.clamp_min(1e-30)).round().tolist()) <= {0.0, 2.0}
    assert maxerr(y_train, (dropped @ x[:, None])[:, 0]) <= 1e-6  # one head: its values are x itself
    assert maxerr(y_train, y_eval) > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_scores_do_not_overflow(dtype):
    # scores of ±900: exp(900) overflows even float64, so the row max must be subtracted first
    q = torch.tensor([[30.0], [-30.0]], dtype=dtype)
    k = torch.tensor([[30.0], [29.0], [-30.0]], dtype=dtype)
    v = torch.tensor([[1.0], [2.0], [3.0]], dtype=dtype)
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    assert maxerr(out, F.scaled_dot_product_attention(q, k, v)) <= TOL[dtype]
    assert out[:, 0].tolist() == pytest.approx([1.0, 3.0])


def test_the_causal_mask_is_built_on_the_inputs_device():
    # "meta" stands in for a GPU: a mask left on the CPU could not be combined with the scores
    q = torch.empty(2, 3, 4, device="meta")
    assert scaled_dot_product_attention(q, q, q, is_causal=True).device.type == "meta"
    keep = torch.ones(3, 3, dtype=torch.bool, device="meta")
    assert scaled_dot_product_attention(q, q, q, mask=keep, is_causal=True).device.type == "meta"


# ---------------------------------------------------------------- the fast path and the options lmcourse.model uses

def _twins(C=12, nh=3, bias=True, seed=0, **kw):
    torch.manual_seed(seed)
    slow = MultiHeadAttention(C, nh, bias=bias, attention="written", **kw).double()
    fast = MultiHeadAttention(C, nh, bias=bias, attention="sdpa", **kw).double()
    with torch.no_grad():
        for p in slow.parameters():
            p.normal_(0, 0.5)
    fast.load_state_dict(slow.state_dict())
    return slow, fast


def _grads(m, inputs):
    return [p.grad.clone() for p in m.parameters()] + [t.grad.clone() for t in inputs]


@pytest.mark.parametrize("case", ["self", "causal", "padding", "causal+padding", "cross", "cross+padding", "all masked"])
@pytest.mark.parametrize("bias", [True, False])
def test_sdpa_path_equals_written_path_forward_and_backward(case, bias):
    B, Tq, C = 2, 5, 12
    Tk = 7 if case.startswith("cross") else Tq
    g = torch.Generator().manual_seed(len(case))
    x = torch.randn(B, Tq, C, generator=g, dtype=torch.float64)
    mem = torch.randn(B, Tk, C, generator=g, dtype=torch.float64)
    keep = torch.rand(B, Tk, generator=g) < 0.6
    keep[:, 0] = True
    if case == "all masked":
        keep[1] = False  # batch row 1 has no key at all: zeros, in both paths
    mask = keep[:, None, None, :] if ("padding" in case or case == "all masked") else None
    causal = "causal" in case
    outs = []
    for m in _twins(C, 3, bias):
        xi, memi = x.clone().requires_grad_(), mem.clone().requires_grad_()
        if case.startswith("cross"):
            y = m(xi, memi, memi, mask=mask)
            inputs = [xi, memi]
        else:
            y = m(xi, mask=mask, is_causal=causal)
            inputs = [xi]
        y.pow(2).sum().backward()
        outs.append((y.detach(), _grads(m, inputs)))
    (ys, gs), (yf, gf) = outs
    assert maxerr(ys, yf) <= 1e-12
    for a, b in zip(gs, gf):
        assert maxerr(a, b) <= 1e-12
    if case == "all masked":
        slow = _twins(C, 3, bias)[0]
        assert slow(x, mask=mask, return_weights=True)[1][1].abs().max() == 0


def test_sdpa_module_returns_the_written_weights_when_asked():
    slow, fast = _twins()
    x = torch.randn(2, 4, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (ys, ws), (yf, wf) = slow(x, is_causal=True, return_weights=True), fast(x, is_causal=True, return_weights=True)
    assert maxerr(ys, yf) <= 1e-12 and maxerr(ws, wf) <= 1e-12 and wf.shape == (2, 3, 4, 4)
    assert wf.triu(1).abs().max() == 0


def test_sdpa_path_checks_masks_and_causal_lengths_like_the_written_one():
    fast = MultiHeadAttention(8, 2, attention="sdpa")
    x, mem = torch.zeros(2, 3, 8), torch.zeros(2, 5, 8)
    with pytest.raises(ValueError, match=r"mask must be a bool tensor.*torch.float32"):
        fast(x, mask=torch.ones(2, 1, 1, 3))
    with pytest.raises(ValueError, match=r"mask of shape \(4, 4\) does not broadcast.*\(2, 2, 3, 3\)"):
        fast(x, mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"is_causal needs Tq == Tk"):
        fast(x, mem, mem, is_causal=True)
    with pytest.raises(ValueError, match=r"is_causal needs Tq == Tk"):
        fast(x, mem, mem, mask=torch.ones(2, 1, 1, 5, dtype=torch.bool), is_causal=True)


def test_attention_option_is_checked_and_read_from_a_config():
    with pytest.raises(ValueError, match=r"attention must be one of \('written', 'sdpa'\), got 'flash'"):
        MultiHeadAttention(8, 2, attention="flash")
    assert MultiHeadAttention(8, 2).attention == "written"  # chapter 04's module keeps the written formula
    assert CausalSelfAttention(SimpleNamespace(n_embd=8, n_head=2, attention="sdpa")).attention == "sdpa"
    assert CausalSelfAttention(SimpleNamespace(n_embd=8, n_head=2)).attention == "written"
    assert CausalSelfAttention(8, 2, attention="sdpa").attention == "sdpa"
    with pytest.raises(ValueError, match=r"attention must be one of"):
        CausalSelfAttention(SimpleNamespace(n_embd=8, n_head=2, attention="fast"))


def test_fast_causal_self_attention_equals_nn_and_never_looks_ahead():
    ours, mha = pair(12, 3, True, torch.float64, seed=5, cls=CausalSelfAttention)
    fast = CausalSelfAttention(12, 3, attention="sdpa").double()
    fast.load_state_dict(ours.state_dict())
    x = randn(2, 6, 12, g=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        want = mha(x, x, x, attn_mask=~causal_mask(6), need_weights=False)[0]
        assert maxerr(fast(x), want) <= 1e-12
        y = x.clone()
        y[:, 3:] += 1.0
        assert maxerr(fast(x)[:, :3], fast(y)[:, :3]) <= 1e-12


def test_sdpa_dropout_only_in_training():
    fast = MultiHeadAttention(8, 2, dropout=0.5, attention="sdpa")
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    fast.eval()
    assert torch.equal(fast(x, is_causal=True), fast(x, is_causal=True))
    fast.train()
    torch.manual_seed(0)
    assert not torch.equal(fast(x, is_causal=True), fast(x, is_causal=True))


@pytest.mark.parametrize("attention", ["written", "sdpa"])
def test_separate_bert_named_projections_equal_the_fused_one(attention):
    fused = MultiHeadAttention(12, 3, attention=attention).double()
    sep = MultiHeadAttention(12, 3, attention=attention, fused_qkv=False).double()
    assert sorted(sep.state_dict()) == [
        "c_proj.bias", "c_proj.weight", "key.bias", "key.weight", "query.bias", "query.weight", "value.bias", "value.weight",
    ]
    with torch.no_grad():
        for p in fused.parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
        for i, name in enumerate(("query", "key", "value")):
            getattr(sep, name).weight.copy_(fused.c_attn.weight[12 * i: 12 * (i + 1)])
            getattr(sep, name).bias.copy_(fused.c_attn.bias[12 * i: 12 * (i + 1)])
        sep.c_proj.load_state_dict(fused.c_proj.state_dict())
    g = torch.Generator().manual_seed(3)
    x, mem, mem2 = (torch.randn(2, t, 12, generator=g, dtype=torch.float64) for t in (4, 6, 6))
    assert maxerr(sep(x, is_causal=True), fused(x, is_causal=True)) <= 1e-12
    assert maxerr(sep(x, mem, mem2), fused(x, mem, mem2)) <= 1e-12  # keys and values from different tensors
    assert maxerr(sep(x, mem, mem), fused(x, mem, mem)) <= 1e-12


def test_one_memory_for_keys_and_values_equals_two_copies_of_it():
    m = MultiHeadAttention(8, 2).double()
    with torch.no_grad():
        m.c_attn.bias.normal_(0, 1, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x, mem = torch.randn(2, 3, 8, generator=g, dtype=torch.float64), torch.randn(2, 5, 8, generator=g, dtype=torch.float64)
    assert maxerr(m(x, mem, mem), m(x, mem, mem.clone())) <= 1e-12
    m_nb = MultiHeadAttention(8, 2, bias=False).double()
    assert maxerr(m_nb(x, mem, mem), m_nb(x, mem, mem.clone())) <= 1e-12


def test_without_output_projection_the_merged_heads_come_back():
    full = MultiHeadAttention(8, 2).double()
    bare = MultiHeadAttention(8, 2, out_proj=False).double()
    assert bare.c_proj is None and "c_proj.weight" not in bare.state_dict()
    bare.c_attn.load_state_dict(full.c_attn.state_dict())
    x = torch.randn(2, 5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y, w = bare(x, return_weights=True)
    assert maxerr(full.c_proj(y), full(x)) <= 1e-12
    _, _, v = full.c_attn(x).split(8, dim=2)
    assert maxerr(y, merge_heads(w @ split_heads(v, 2))) <= 1e-12
