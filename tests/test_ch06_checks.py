"""Chapter 06's exercises beyond what tests/test_checks.py does for every exercise: each reference
equals the library (and PyTorch), other correct answers pass, each wrong variant is caught with
its own message for the grader's seeds too, and the library's or PyTorch's own versions are noted."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from lmcourse import compute
from lmcourse.attention import MultiHeadAttention
from lmcourse.exercises import ch06
from lmcourse.model import GPT, Block, GPTConfig, LayerNorm

EXERCISES = [ch06.layer_norm, ch06.block_forward, ch06.count_params, ch06.cross_attention]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- the references are the library's modules, written out ---------------------------------
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_layer_norm_reference_equals_the_library_and_torch(eps):
    g = _gen()
    x = 3.0 + 2.0 * torch.randn(2, 5, 16, generator=g, dtype=torch.float64)
    ln = LayerNorm(16, eps=eps).double()
    with torch.no_grad():
        ln.weight.copy_(1.0 + torch.randn(16, generator=g))
        ln.bias.copy_(torch.randn(16, generator=g))
    got = ch06._layer_norm(x, ln.weight.detach(), ln.bias.detach(), eps)
    torch.testing.assert_close(got, ln(x).detach(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(got, F.layer_norm(x, (16,), ln.weight, ln.bias, eps).detach(), atol=1e-12, rtol=1e-12)


def _randomise(module: torch.nn.Module, g: torch.Generator) -> None:
    """Every parameter non-trivial (LayerNorm weights off 1, biases off 0), so nothing hides."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * (0.3 if p.ndim == 1 else 1 / math.sqrt(p.shape[-1])))


@pytest.mark.parametrize("attention", ["written", "sdpa"])
def test_block_reference_equals_the_models_block(attention):
    g = _gen(1)
    config = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=3, n_embd=12, n_inner=20, attention=attention)
    block = Block(config).double().eval()
    _randomise(block, g)
    x = torch.randn(2, 6, 12, generator=g, dtype=torch.float64)
    params = {k: v.detach() for k, v in block.state_dict().items()}
    assert set(params) == set(ch06._BLOCK_KEYS)  # the exercise's dict is a block's state_dict
    torch.testing.assert_close(ch06._block_forward(x, params, config.n_head), block(x).detach(), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("sizes", [(97, 16, 2, 32, True), (5, 3, 1, 4, False), (50257, 1024, 12, 768, True)])
def test_count_params_reference_equals_compute_and_the_model(sizes):
    V, block_size, L, d, bias = sizes
    config = GPTConfig(vocab_size=V, block_size=block_size, n_layer=L, n_head=1, n_embd=d, bias=bias)
    expected = compute.param_count(config, non_embedding=False)
    assert ch06._count_params(V, block_size, L, d, bias) == expected
    if d < 100:  # build only the small ones
        assert GPT(config).num_params(non_embedding=False) == expected


def _cross_attention_inputs(g, B=3, Tq=4, Tk=6, nh=2, hs=4, lengths=(6, 2, 4)):
    C = nh * hs
    x, memory = torch.randn(B, Tq, C, generator=g, dtype=torch.float64), torch.randn(B, Tk, C, generator=g, dtype=torch.float64)
    mha = MultiHeadAttention(C, nh).double().eval()
    _randomise(mha, g)
    keep = torch.arange(Tk)[None, :] < torch.tensor(lengths)[:, None]  # (B, Tk), True = a real token
    return x, memory, mha, keep


def test_cross_attention_reference_equals_the_librarys_and_torchs_multi_head_attention():
    x, memory, mha, keep = _cross_attention_inputs(_gen(2))
    weights = (mha.c_attn.weight.detach(), mha.c_attn.bias.detach(), mha.c_proj.weight.detach(), mha.c_proj.bias.detach())
    got = ch06._cross_attention(x, memory, *weights, mha.n_head, src_mask=keep)
    torch.testing.assert_close(got, mha(x, memory, memory, mask=keep[:, None, None, :]).detach(), atol=1e-12, rtol=1e-10)
    # torch's nn.MultiheadAttention: the same weights, and key_padding_mask with True = padding
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).double().eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(weights[0])
        ref.in_proj_bias.copy_(weights[1])
        ref.out_proj.weight.copy_(weights[2])
        ref.out_proj.bias.copy_(weights[3])
    out, _ = ref(x, memory, memory, key_padding_mask=~keep, need_weights=False)
    torch.testing.assert_close(got, out.detach(), atol=1e-12, rtol=1e-10)


def test_cross_attention_with_an_all_padding_source_gives_the_bias_as_the_library_does():
    x, memory, mha, keep = _cross_attention_inputs(_gen(3), lengths=(6, 0, 3))
    weights = (mha.c_attn.weight.detach(), mha.c_attn.bias.detach(), mha.c_proj.weight.detach(), mha.c_proj.bias.detach())
    got = ch06._cross_attention(x, memory, *weights, mha.n_head, src_mask=keep)
    assert not got.isnan().any()
    torch.testing.assert_close(got[1], weights[3].expand(4, 8))  # no keys: zero weights, so only c_proj's bias
    torch.testing.assert_close(got, mha(x, memory, memory, mask=keep[:, None, None, :]).detach(), atol=1e-12, rtol=1e-10)


# -- other correct answers pass: the checks are not tied to the reference's way ---------------
def _ln_var_mean(x, weight, bias, eps=1e-5):
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, unbiased=False)
    return (x - mean) * torch.rsqrt(var + eps) * weight + bias


def _block_by_hand(x, params, n_head, eps=1e-5):
    def ln(z, name):
        return _ln_var_mean(z, params[f"{name}.weight"], params[f"{name}.bias"], eps)

    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (ln(x, "ln_1") @ params["attn.c_attn.weight"].T + params["attn.c_attn.bias"]).chunk(3, dim=-1)
    q, k, v = (t.reshape(B, T, n_head, hs).permute(0, 2, 1, 3) for t in (q, k, v))
    att = (q @ k.mT / math.sqrt(hs)).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), -math.inf).softmax(-1)
    y = (att @ v).permute(0, 2, 1, 3).reshape(B, T, C)
    x = x + y @ params["attn.c_proj.weight"].T + params["attn.c_proj.bias"]
    h = ln(x, "ln_2") @ params["mlp.c_fc.weight"].T + params["mlp.c_fc.bias"]
    h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    return x + h @ params["mlp.c_proj.weight"].T + params["mlp.c_proj.bias"]


def _count_by_layers(vocab_size, block_size, n_layer, n_embd, bias=True):
    def linear(i, o):
        return i * o + (o if bias else 0)

    ln = n_embd * (2 if bias else 1)
    per_layer = 2 * ln + linear(n_embd, 3 * n_embd) + linear(n_embd, n_embd) + linear(n_embd, 4 * n_embd) + linear(4 * n_embd, n_embd)
    return (vocab_size + block_size) * n_embd + n_layer * per_layer + ln


def _cross_attention_where(x, memory, w_attn, b_attn, w_proj, b_proj, n_head, src_mask=None):
    B, Tq, C = x.shape
    hs = C // n_head
    q = (x @ w_attn[:C].T + b_attn[:C]).unflatten(-1, (n_head, hs)).transpose(1, 2)
    k = (memory @ w_attn[C:2 * C].T + b_attn[C:2 * C]).unflatten(-1, (n_head, hs)).transpose(1, 2)
    v = (memory @ w_attn[2 * C:].T + b_attn[2 * C:]).unflatten(-1, (n_head, hs)).transpose(1, 2)
    s = q @ k.transpose(-1, -2) * hs**-0.5
    if src_mask is not None:
        s = torch.where(src_mask[:, None, None, :], s, -math.inf)
    w = torch.exp(s - s.amax(-1, keepdim=True).clamp(min=-1e300))  # an all -inf row: exp(-inf) = 0
    denom = w.sum(-1, keepdim=True)
    w = w / torch.where(denom > 0, denom, 1.0)
    return (w @ v).transpose(1, 2).flatten(2) @ w_proj.T + b_proj


@pytest.mark.parametrize("ex,fn", [
    (ch06.layer_norm, _ln_var_mean),
    (ch06.block_forward, _block_by_hand),
    (ch06.count_params, _count_by_layers),
    (ch06.cross_attention, _cross_attention_where),
], ids=lambda v: getattr(v, "id", ""))
def test_another_correct_answer_passes_every_seed(ex, fn):
    for seed in (0, 1, 7):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # var_mean of an empty batch warns, as torch.var does
            result = ex.judge(fn, ex.cases(seed))
        assert result.passed and not result.forbidden, result.report


# -- each wrong variant is caught by its own message for other seeds (the grader's) too -------
@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.id)
def test_wrong_variants_are_caught_with_their_own_message_for_other_seeds(ex):
    assert len(ex.wrong) >= 4
    assert len({w.message for w in ex.wrong}) == len(ex.wrong)
    for seed in (1, 2, 3):
        cases = ex.cases(seed)
        for w in ex.wrong:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = ex.judge(w.fn, cases)
            assert result.status in ("fail", "error") and result.matched == [w.message], (seed, w.fn.__name__, result.report)


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.id)
def test_the_edge_cases_are_in_every_seed(ex):
    edge = {
        "6.1": {"constant rows (variance 0)", "C=1", "empty batch (0, C)", "rows near 1e8", "eps=0.1"},
        "6.2": {"T=1", "one head", "MLP width not 4C"},
        "6.3": {"bias=False", "GPT-2 small (124,439,808)", "one layer, tiny sizes"},
        "6.4": {"one source all padding", "Tq=1", "Tq=0 (empty)", "one head, Tk=1"},
    }[ex.id]
    for seed in (0, 1, 99):
        assert edge <= {c.label for c in ex.cases(seed)}


def test_empty_and_fully_masked_inputs_follow_pytorch():
    (empty,) = [c for c in ch06.layer_norm.cases() if c.label == "empty batch (0, C)"]
    out = ch06._layer_norm(*empty.args)
    assert out.shape == empty.args[0].shape == (0, out.shape[1])
    (none,) = [c for c in ch06.cross_attention.cases() if c.label == "Tq=0 (empty)"]
    assert ch06._cross_attention(*none.args, **none.kwargs).shape[1] == 0
    (const,) = [c for c in ch06.layer_norm.cases() if c.label == "constant rows (variance 0)"]
    x, weight, bias = const.args
    torch.testing.assert_close(ch06._layer_norm(x, weight, bias)[0], bias)  # zero variance: only the shift


# -- the library's and PyTorch's own versions are noted (the grader gives them 0) --------------
def _ln_functional(x, weight, bias, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)


def _ln_torch_alias(x, weight, bias, eps=1e-5):
    return torch.layer_norm(x, x.shape[-1:], weight, bias, eps)  # not a forbidden *name*: the operator guard


def _ln_group_norm(x, weight, bias, eps=1e-5):
    flat = x.reshape(-1, x.shape[-1])
    return torch.group_norm(flat, 1, weight, bias, eps).reshape(x.shape)


def _ln_module(x, weight, bias, eps=1e-5):
    ln = LayerNorm(x.shape[-1], eps=eps).to(x.dtype)
    with torch.no_grad():
        ln.weight.copy_(weight)
        ln.bias.copy_(bias)
    return ln(x).detach()


def _block_module(x, params, n_head, eps=1e-5):
    C = x.shape[-1]
    config = GPTConfig(vocab_size=1, block_size=x.shape[1], n_layer=1, n_head=n_head, n_embd=C,
                       n_inner=params["mlp.c_fc.weight"].shape[0], layer_norm_eps=eps)
    block = Block(config).to(x.dtype)
    block.load_state_dict(params)
    return block(x).detach()


def _count_with_compute(vocab_size, block_size, n_layer, n_embd, bias=True):
    config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1, n_embd=n_embd, bias=bias)
    return compute.param_count(config, non_embedding=False)


def _count_by_building(vocab_size, block_size, n_layer, n_embd, bias=True):
    if n_embd > 64:
        return _count_by_layers(vocab_size, block_size, n_layer, n_embd, bias)
    config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1, n_embd=n_embd, bias=bias)
    return GPT(config).num_params(non_embedding=False)


def _cross_attention_sdpa(x, memory, w_attn, b_attn, w_proj, b_proj, n_head, src_mask=None):
    B, Tq, C = x.shape
    q, k, v = F.linear(x, w_attn[:C], b_attn[:C]), *F.linear(memory, w_attn[C:], b_attn[C:]).split(C, dim=-1)
    q, k, v = (t.unflatten(-1, (n_head, C // n_head)).transpose(1, 2) for t in (q, k, v))
    mask = None if src_mask is None else src_mask[:, None, None, :]
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return F.linear(y.transpose(1, 2).flatten(2), w_proj, b_proj)


@pytest.mark.parametrize("ex,fn,hit", [
    (ch06.layer_norm, _ln_functional, "torch.nn.functional.layer_norm"),
    (ch06.layer_norm, _ln_torch_alias, "aten::"),
    (ch06.layer_norm, _ln_group_norm, "group_norm"),
    (ch06.layer_norm, _ln_module, "lmcourse.model.LayerNorm.forward"),
    (ch06.block_forward, _block_module, "lmcourse.model.Block.forward"),
    (ch06.count_params, _count_with_compute, "lmcourse.compute.param_count"),
    (ch06.count_params, _count_by_building, "lmcourse.model.GPT"),
    (ch06.cross_attention, _cross_attention_sdpa, "scaled_dot_product_attention"),
], ids=lambda v: getattr(v, "__name__", ""))
def test_the_library_and_torch_versions_are_noted(ex, fn, hit):
    result = ex.run(fn)
    assert result.forbidden and any(hit in h for h in result.forbidden), result.forbidden
    assert result.report.startswith("⚠")


def test_the_rules_name_every_forbidden_function():
    for ex in EXERCISES:
        rules = ex.rules()
        for name in ex.forbidden_names():
            assert f"`{name}`" in rules
