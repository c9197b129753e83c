"""lmcourse.compute: the closed-form parameter count equals the real model's, and the FLOP
formula agrees with torch's FlopCounterMode on the real model (forward and forward+backward)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse import compute
from lmcourse.model import GPT, GPTConfig


@st.composite
def small_configs(draw) -> GPTConfig:
    n_head = draw(st.integers(1, 4))
    return GPTConfig(
        vocab_size=draw(st.integers(1, 300)),
        block_size=draw(st.integers(1, 64)),
        n_layer=draw(st.integers(1, 4)),
        n_head=n_head,
        n_embd=n_head * draw(st.integers(1, 8)),
        n_inner=draw(st.none() | st.integers(1, 64)),
        bias=draw(st.booleans()),
    )


def _group(name: str) -> str:
    if name.startswith(("transformer.wte.", "transformer.wpe.")):
        return "embeddings"
    if ".attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    if ".ln_" in name:
        return "layer_norms"
    raise AssertionError(f"a parameter param_breakdown does not know: {name}")


@settings(max_examples=40, deadline=None)
@given(small_configs())
def test_param_count_equals_the_models_count(config):
    model = GPT(config)
    assert compute.param_count(config) == model.num_params() == model.num_params(non_embedding=True)
    assert compute.param_count(config, non_embedding=False) == model.num_params(non_embedding=False)
    # ... and each group of the breakdown is that group of the model's own parameters
    counted = dict.fromkeys(("embeddings", "attention", "mlp", "layer_norms"), 0)
    for name, p in model.named_parameters():  # the tied lm_head.weight is wte's tensor: listed once
        counted[_group(name)] += p.numel()
    assert compute.param_breakdown(config) == {**counted, "lm_head": 0}


def test_gpt2_small_has_its_published_count():
    # 124,439,808: Hugging Face's GPT2LMHeadModel("gpt2") and nanoGPT's "124.44M" (wpe included)
    config = GPTConfig.gpt2_small()
    assert compute.param_count(config, non_embedding=False) == 124_439_808
    assert compute.param_count(config) == 124_439_808 - 50257 * 768 - 1024 * 768


def test_gpt3_175b_parameters_and_training_flops_match_the_paper():
    config = GPTConfig.gpt3_175b()
    total = compute.param_count(config, non_embedding=False)
    assert abs(total / 175e9 - 1) < 0.01, total  # 174.6e9: 0.2% under the published 175B
    # Brown et al. 2020, table D.1: 3.14e23 FLOPs for 300B tokens; 6·N·D with N = 173.96e9
    flops = compute.training_flops(config, 300e9)
    assert flops == 6 * compute.param_count(config) * 300e9
    assert abs(flops / 3.14e23 - 1) < 0.01, flops
    # the breakdown: the MLP holds two thirds of the block parameters (8d² of 12d²)
    parts = compute.param_breakdown(config)
    assert abs(parts["mlp"] / (parts["mlp"] + parts["attention"]) - 2 / 3) < 1e-3


def test_flops_per_token_is_the_documented_formula():
    config = GPTConfig(vocab_size=100, block_size=64, n_layer=3, n_head=2, n_embd=16)
    N, V, L, d = compute.param_count(config), 100, 3, 16
    for T in (1, 10, 64):
        assert compute.flops_per_token(config, T) == 2 * N + 2 * V * d + 4 * L * T * d
        assert compute.flops_per_token(config, T, skip_masked=True) == 2 * N + 2 * V * d + 2 * L * T * d
        assert compute.flops_per_token(config, T, training=True) == 3 * compute.flops_per_token(config, T)
        assert compute.training_flops(config, 1000, T=T) == 1000 * compute.flops_per_token(config, T, training=True)


FLOP_CONFIGS = {
    "L2 d32 V97": GPTConfig(vocab_size=97, block_size=128, n_layer=2, n_head=2, n_embd=32),
    "L1 d64 V512 no bias": GPTConfig(vocab_size=512, block_size=128, n_layer=1, n_head=4, n_embd=64, bias=False),
    "L3 d48 V200 n_inner 40": GPTConfig(vocab_size=200, block_size=128, n_layer=3, n_head=3, n_embd=48, n_inner=40),
}


def _not_matmul(config: GPTConfig) -> int:
    """The parameters that are not weights of a matrix product: biases and LayerNorm parameters."""
    return sum(p.numel() for n, p in GPT(config).named_parameters() if n.endswith(".bias") or ".ln_" in n)


@pytest.mark.parametrize("training", [False, True], ids=["forward", "forward+backward"])
@pytest.mark.parametrize("T", [8, 128])
@pytest.mark.parametrize("name", list(FLOP_CONFIGS))
def test_flop_formula_agrees_with_the_flop_counter(name, T, training):
    config = FLOP_CONFIGS[name]
    formula = compute.flops_per_token(config, T, training=training)
    counted = compute.counted_flops_per_token(config, T, training=training)
    assert abs(formula / counted - 1) < 0.10, (formula, counted)
    # Exactly so, once the one documented difference is taken out: 2·N also counts each bias
    # and LayerNorm parameter (2 FLOPs per token, 6 in training), which the counter does not.
    assert counted == formula - (6 if training else 2) * _not_matmul(config)


def test_the_attention_term_is_what_the_counter_sees_grow_with_T():
    config = FLOP_CONFIGS["L2 d32 V97"]
    grow = compute.counted_flops_per_token(config, 100) - compute.counted_flops_per_token(config, 20)
    assert grow == 4 * config.n_layer * (100 - 20) * config.n_embd  # the full T×T square, QKᵀ and AV
    assert grow == compute.flops_per_token(config, 100) - compute.flops_per_token(config, 20)


def test_counted_flops_count_the_attention_of_an_sdpa_model_too():
    # FlopCounterMode has no formula for the CPU kernel of F.scaled_dot_product_attention:
    # counted_flops_per_token must count the written path whatever the config says.
    config = FLOP_CONFIGS["L2 d32 V97"]
    sdpa = dataclasses.replace(config, attention="sdpa")
    assert compute.counted_flops_per_token(sdpa, 64) == compute.counted_flops_per_token(config, 64)


def test_counted_flops_leave_the_global_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    compute.counted_flops_per_token(FLOP_CONFIGS["L2 d32 V97"], 4)
    assert torch.equal(torch.rand(3), expected)


def test_the_printed_table_compares_formula_counter_and_kaplan(capsys):
    config = GPTConfig(vocab_size=50, block_size=20, n_layer=1, n_head=2, n_embd=16)
    compute._print_flop_table({"small": config})
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["model", "T", "pass", "formula", "counted", "ratio", "kaplan"]
    assert [r.split()[:3] for r in rows] == [["small", T, p] for T in ("16", "20") for p in ("forward", "fwd+bwd")]
    for row, (T, training) in zip(rows, [(16, False), (16, True), (20, False), (20, True)]):
        formula, counted, ratio, kaplan = (float(v) for v in row.split()[3:])
        assert formula == pytest.approx(compute.flops_per_token(config, T, training=training), rel=1e-4)
        assert counted == pytest.approx(compute.counted_flops_per_token(config, T, training=training), rel=1e-4)
        assert ratio == pytest.approx(formula / counted, abs=1e-4)
        N = compute.param_count(config)
        assert kaplan == pytest.approx((3 if training else 1) * (2 * N + 2 * T * 16) / counted, abs=1e-4)


def test_training_flops_of_no_tokens_is_zero():
    assert compute.training_flops(GPTConfig.tiny(), 0) == 0.0
    with pytest.raises(ValueError, match="tokens"):
        compute.training_flops(GPTConfig.tiny(), True)


def test_any_object_with_the_fields_is_a_config():
    ns = SimpleNamespace(vocab_size=10, block_size=4, n_layer=1, n_embd=8)  # n_inner and bias default
    assert compute.param_count(ns, non_embedding=False) == compute.param_count(
        GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=8), non_embedding=False)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: compute.param_count(object()), "'vocab_size' field"),
        (lambda: compute.param_count(SimpleNamespace(vocab_size=10, block_size=4, n_layer=0, n_embd=8)), "n_layer"),
        (lambda: compute.param_count(SimpleNamespace(vocab_size=10, block_size=4, n_layer=1, n_embd=8.0)), "n_embd"),
        (lambda: compute.param_count(SimpleNamespace(vocab_size=10, block_size=4, n_layer=True, n_embd=8)), "n_layer"),
        (lambda: compute.param_count(SimpleNamespace(vocab_size=10, block_size=4, n_layer=1, n_embd=8, n_inner=0)),
         "n_inner"),
        (lambda: compute.param_count(SimpleNamespace(vocab_size=10, block_size=4, n_layer=1, n_embd=8, bias=1)), "bias"),
        (lambda: compute.param_count(GPTConfig.tiny(), non_embedding=None), "non_embedding"),
        (lambda: compute.flops_per_token(GPTConfig.tiny(), 129), "block_size=128"),
        (lambda: compute.flops_per_token(GPTConfig.tiny(), 0), "T"),
        (lambda: compute.flops_per_token(GPTConfig.tiny(), 2.0), "T"),
        (lambda: compute.flops_per_token(GPTConfig.tiny(), 8, training=1), "training"),
        (lambda: compute.flops_per_token(GPTConfig.tiny(), 8, skip_masked="yes"), "skip_masked"),
        (lambda: compute.training_flops(GPTConfig.tiny(), -1), "tokens"),
        (lambda: compute.training_flops(GPTConfig.tiny(), float("inf")), "tokens"),
        (lambda: compute.counted_flops_per_token(GPTConfig.tiny(), 500), "block_size"),
        (lambda: compute.counted_flops_per_token(GPTConfig.tiny(), 8, training=None), "training"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
