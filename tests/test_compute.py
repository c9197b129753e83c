"""lmcourse.compute: the closed-form parameter count equals the real model's, and the FLOP
formula agrees with torch's FlopCounterMode on the real model (forward and forward+backward)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
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


# ----------------------------------------------------------------------------- training memory

MEMORY_CASES = {  # name -> (config, batch size, T, dtype)
    "sdpa": (GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=32), 4, 32, torch.float32),
    "written": (GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=32, attention="written"),
                4, 32, torch.float32),
    "written T<block, no bias, n_inner": (GPTConfig(vocab_size=50, block_size=64, n_layer=2, n_head=4, n_embd=32,
                                                    bias=False, n_inner=48, attention="written"), 3, 40, torch.float32),
    "relu, exact gelu": (GPTConfig(vocab_size=60, block_size=16, n_layer=3, n_head=1, n_embd=24, activation="relu"),
                         2, 16, torch.float32),
    "gelu erf": (GPTConfig(vocab_size=60, block_size=16, n_layer=1, n_head=3, n_embd=24, activation="gelu"),
                 5, 7, torch.float32),
    "bfloat16": (GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=32), 4, 32, torch.bfloat16),
}

# The estimate's total (all four parts held at once) against the measured peak of a step: over
# it where the activations are a small part (gradients arrive as activations are freed: relu
# case, 1.14), under it where one layer's attention backward is large next to the rest (its
# B·H·T·T gradients coexist: the n_inner case, 0.90); GPTConfig.tiny() at B8 T128 is 0.99.
PEAK_TOLERANCE = 0.20


def _model_and_batch(config: GPTConfig, B: int, T: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = GPT(config).to(dtype)
    x = torch.randint(0, config.vocab_size, (B, T), generator=g)
    y = torch.randint(0, config.vocab_size, (B, T), generator=g)
    return model, (x, y)


@pytest.mark.parametrize("name", list(MEMORY_CASES))
def test_memory_estimate_against_the_measured_step(name):
    config, B, T, dtype = MEMORY_CASES[name]
    est = compute.training_memory(config, B, T, dtype=dtype)
    got = compute.measured_training_memory(*_model_and_batch(config, B, T, dtype))
    s = torch.empty((), dtype=dtype).element_size()
    P = compute.param_count(config, non_embedding=False)
    assert est["weights"] == got["weights"] == P * s
    assert est["gradients"] == got["gradients"] == P * s
    # AdamW's two running means, plus its `step` counter (one float32 scalar per parameter tensor)
    n_tensors = len(list(GPT(config).parameters()))
    assert est["optimiser"] == 2 * P * s == got["optimiser"] - 4 * n_tensors
    # the per-layer formula is what autograd saves, to the byte, on this torch
    assert est["activations"] == got["activations"]
    assert est["total"] == sum(est[k] for k in ("weights", "gradients", "optimiser", "activations"))
    assert abs(est["total"] / got["peak"] - 1) < PEAK_TOLERANCE, (est["total"], got["peak"])


def test_the_written_path_stores_the_attention_weights_and_sdpa_does_not():
    sdpa, B, T, _ = MEMORY_CASES["sdpa"]
    written = dataclasses.replace(sdpa, attention="written")
    L, H = sdpa.n_layer, sdpa.n_head
    grow = compute.training_memory(written, B, T)["activations"] - compute.training_memory(sdpa, B, T)["activations"]
    # three B·H·T·T float32 tensors per layer (scores, exp, weights), row max and denominator in
    # float32 and two bool masks per row, the causal T·T bool mask; minus SDPA's log-sum-exp
    assert grow == L * (B * T * (4 * (3 * H * T + 2 * H) + 2 * H) + T * T) - L * B * T * 4 * H
    measured = [compute.measured_training_memory(*_model_and_batch(c, B, T, torch.float32))["activations"]
                for c in (written, sdpa)]
    assert measured[0] - measured[1] == grow


def test_activations_grow_linearly_with_the_batch_and_the_weights_do_not():
    config = GPTConfig.tiny()
    one, four = (compute.training_memory(config, B, 128) for B in (1, 4))
    assert four["weights"] == one["weights"] and four["optimiser"] == one["optimiser"]
    constant = 4  # the loss's scalar weight (float32), once per step
    assert four["activations"] - constant == 4 * (one["activations"] - constant)


def test_optimizer_states_and_dtype_scale_the_parameter_terms():
    config = GPTConfig.tiny()
    P = compute.param_count(config, non_embedding=False)
    assert compute.training_memory(config, 1, 8, optimizer="sgd")["optimiser"] == 0
    assert compute.training_memory(config, 1, 8, optimizer="adam")["optimiser"] == 8 * P
    half = compute.training_memory(config, 1, 8, dtype=torch.bfloat16)
    assert half["weights"] == half["gradients"] == 2 * P and half["optimiser"] == 4 * P


def test_measured_sgd_has_no_optimiser_state():
    config, B, T, dtype = MEMORY_CASES["sdpa"]
    got = compute.measured_training_memory(*_model_and_batch(config, B, T, dtype), optimizer="sgd")
    est = compute.training_memory(config, B, T, optimizer="sgd")
    assert got["optimiser"] == est["optimiser"] == 0
    assert got["activations"] == est["activations"]
    assert abs(est["total"] / got["peak"] - 1) < PEAK_TOLERANCE


def test_measuring_leaves_the_model_and_the_random_state_alone():
    config, B, T, dtype = MEMORY_CASES["sdpa"]
    model, batch = _model_and_batch(config, B, T, dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    compute.measured_training_memory(model, batch)
    assert torch.equal(torch.rand(2), expected)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_the_live_bytes_mode_counts_storages_once_and_sees_them_freed():
    x = torch.ones(10)
    with compute._live_bytes_mode({x.untyped_storage().data_ptr()}) as live:
        a = x * 2  # 40 bytes
        v = a[2:].view(2, 4)  # a view: no new storage
        b = torch.empty(100, dtype=torch.float64)  # 800 bytes
        x.add_(1)  # in place on a known storage: not counted
        assert live.live == 840 and v.shape == (2, 4)
        del b
        assert live.live == 40
        c = torch.zeros(5)  # 20 bytes
        del a, v
        assert live.live == 20
        del c
    assert live.live == 0 and live.peak == 840


def test_the_memory_table_prints_estimate_and_measurement(capsys):
    config, B, T, _ = MEMORY_CASES["sdpa"]
    compute._print_memory_table({"small": (config, B, T)})
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["case", "act", "est", "act", "meas", "total", "est", "peak", "meas", "est/peak"]
    act_est, act_meas, total, peak, ratio = (float(v) for v in row.split()[1:])
    assert act_est == act_meas == pytest.approx(compute.training_memory(config, B, T)["activations"] / 1e6, abs=1e-3)
    assert total == pytest.approx(compute.training_memory(config, B, T)["total"] / 1e6, abs=1e-3)
    assert ratio == pytest.approx(total / peak, abs=2e-3) and abs(ratio - 1) < PEAK_TOLERANCE


# ----------------------------------------------------------------------------- time, money and MFU

def test_gpt3_costs_3_15e23_flops_priced_at_a_stated_throughput():
    flops = 6 * compute.GPT3_PARAMS * compute.GPT3_TOKENS
    assert flops == pytest.approx(3.15e23, rel=1e-12)
    a100 = compute.training_cost(flops, peak_flops_per_s=compute.A100_BF16_FLOPS, utilisation=0.4,
                                 price_per_hour=2.0, n_gpus=1024)
    seconds = 3.15e23 / (1024 * 0.4 * 312e12)
    assert a100["seconds"] == pytest.approx(seconds, rel=1e-12)
    assert a100["days"] == pytest.approx(28.53, abs=0.01)  # about four weeks on 1024 A100s
    assert a100["gpu_hours"] == pytest.approx(3.15e23 / (0.4 * 312e12) / 3600, rel=1e-12)  # 701,122
    assert round(a100["gpu_hours"]) == 701_122
    assert a100["cost"] == pytest.approx(2.0 * a100["gpu_hours"], rel=1e-12)
    # the same work on V100s (125 TFLOP/s) takes 312/125 times the GPU-hours; the GPU count
    # changes the days, never the GPU-hours
    v100 = compute.training_cost(flops, peak_flops_per_s=compute.V100_FP16_FLOPS, utilisation=0.4)
    assert v100["gpu_hours"] == pytest.approx(a100["gpu_hours"] * 312 / 125, rel=1e-12)
    assert v100["cost"] is None and v100["seconds"] == pytest.approx(v100["gpu_hours"] * 3600, rel=1e-12)
    assert compute.training_cost(0, peak_flops_per_s=1e12, utilisation=0.5)["seconds"] == 0.0


def test_mfu_is_achieved_model_flops_over_the_peak():
    config = GPTConfig.tiny()
    per_token = compute.flops_per_token(config, 128, training=True)
    assert compute.mfu(1000, config, 128, 1e12) == pytest.approx(1000 * per_token / 1e12, rel=1e-12)
    assert compute.mfu(2000, config, 128, 1e12) == pytest.approx(2 * compute.mfu(1000, config, 128, 1e12), rel=1e-12)
    assert compute.mfu(1000, config, 64, 1e12) < compute.mfu(1000, config, 128, 1e12)  # less attention work
    assert compute.mfu(0, config, 128, 1e12) == 0.0


def test_matmul_peak_measures_a_positive_finite_rate():
    rate = compute.matmul_peak(16, repeats=2, warmup=1)
    assert isinstance(rate, float) and 0 < rate < float("inf")
    assert compute.matmul_peak(8, dtype=torch.float64, repeats=1, warmup=0) > 0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: compute.training_memory(GPTConfig.tiny(), 0, 8), "batch_size"),
        (lambda: compute.training_memory(GPTConfig.tiny(), 2, 200), "block_size=128"),
        (lambda: compute.training_memory(GPTConfig.tiny(), 2, 8, optimizer="lion"), "optimizer"),
        (lambda: compute.training_memory(GPTConfig.tiny(), 2, 8, dtype=torch.int64), "dtype"),
        (lambda: compute.training_memory(GPTConfig.tiny(), 2, 8, dtype="float32"), "dtype"),
        (lambda: compute.training_memory(GPTConfig.tiny(), 2, 8, activations="checkpoint"), "activations"),
        (lambda: compute.training_memory(GPTConfig.tiny(dropout=0.1), 2, 8), "dropout"),
        (lambda: compute.training_memory(SimpleNamespace(vocab_size=10, block_size=4, n_layer=1, n_embd=8), 1, 4),
         "n_head"),
        (lambda: compute.measured_training_memory(object(), None), "nn.Module"),
        (lambda: compute.measured_training_memory(GPT(MEMORY_CASES["sdpa"][0]), torch.zeros(2, 4)), "pair"),
        (lambda: compute.measured_training_memory(GPT(MEMORY_CASES["sdpa"][0]),
                                                  (torch.zeros(1, 4, dtype=torch.long),) * 2, optimizer="lion"),
         "optimizer"),
        (lambda: compute.training_cost(-1, peak_flops_per_s=1e12, utilisation=0.4), "flops"),
        (lambda: compute.training_cost(1e20, peak_flops_per_s=0, utilisation=0.4), "peak_flops_per_s"),
        (lambda: compute.training_cost(1e20, peak_flops_per_s=1e12, utilisation=1.5), "utilisation"),
        (lambda: compute.training_cost(1e20, peak_flops_per_s=1e12, utilisation=0), "utilisation"),
        (lambda: compute.training_cost(1e20, peak_flops_per_s=1e12, utilisation=0.4, n_gpus=0), "n_gpus"),
        (lambda: compute.training_cost(1e20, peak_flops_per_s=1e12, utilisation=0.4, price_per_hour=-2), "price"),
        (lambda: compute.mfu(-5, GPTConfig.tiny(), 128, 1e12), "tokens_per_s"),
        (lambda: compute.mfu(5, GPTConfig.tiny(), 128, float("nan")), "peak_flops_per_s"),
        (lambda: compute.mfu(5, GPTConfig.tiny(), 0, 1e12), "T"),
        (lambda: compute.matmul_peak(0), "n"),
        (lambda: compute.matmul_peak(8, repeats=0), "repeats"),
        (lambda: compute.matmul_peak(8, warmup=-1), "warmup"),
        (lambda: compute.matmul_peak(8, dtype=torch.int32), "dtype"),
    ],
)
def test_bad_input_to_the_second_part_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_cost_table_prints_gpt3_on_each_accelerator(capsys):
    compute._print_cost_table(price_per_hour=2.0, n_gpus=1024, utilisation=0.4)
    title, header, *rows = capsys.readouterr().out.splitlines()
    assert "3.15e+23 FLOPs" in title and "1024 GPUs" in title
    assert header.split() == ["GPU", "peak", "TFLOP/s", "GPU-hours", "days", "cost"]
    a100 = next(r for r in rows if r.startswith("A100")).split()
    assert a100[2:] == ["312", "7.01e+05", "28.5", "1.4e+06"]  # $1.4M at an assumed $2 per GPU-hour
    assert [r.split()[0] for r in rows] == ["V100", "A100", "H100"]


def test_the_cpu_peak_agrees_with_torchs_own_memory_tracker():
    # an independent measurement: torch.distributed._tools.mem_tracker.MemTracker (private,
    # hence the skip) also follows storages through a dispatch mode, and by module
    mem_tracker = pytest.importorskip("torch.distributed._tools.mem_tracker")
    config, B, T, dtype = MEMORY_CASES["written"]
    model, (x, y) = _model_and_batch(config, B, T, dtype)
    ours = compute.measured_training_memory(model, (x, y))["peak"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(x, y)[1].backward()  # as measured_training_memory: a first step makes AdamW's states
    opt.step()
    opt.zero_grad(set_to_none=True)
    tracker = mem_tracker.MemTracker()
    tracker.track_external(model, opt, x, y)
    with tracker:
        model(x, y)[1].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    theirs = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]
    assert abs(ours / theirs - 1) < 0.01, (ours, theirs)


# ----------------------------------------------------------------------------- fit_power_law

_SIZES = np.array([3e3, 1e4, 3e4, 1e5, 3e5, 1e6])


@pytest.mark.parametrize("a, alpha", [(5.0, 0.3), (400.0, 0.076), (2.0, 1.2)])
def test_a_pure_power_law_is_recovered_exactly(a, alpha):
    fit = compute.fit_power_law(_SIZES, a * _SIZES**-alpha)
    assert isinstance(fit, compute.PowerLawFit)
    assert fit.a == pytest.approx(a, rel=1e-9)
    assert fit.alpha == pytest.approx(alpha, rel=1e-9)
    assert fit.c == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.5, 50.0), st.floats(0.1, 0.8), st.floats(0.2, 4.0))
def test_a_power_law_with_an_offset_is_recovered(a, alpha, c):
    # noiseless: the grid + golden section + Gauss–Newton reach the exact minimum (zero error)
    loss = a * _SIZES**-alpha + c
    fit = compute.fit_power_law(_SIZES.tolist(), loss.tolist())
    assert fit.a == pytest.approx(a, rel=1e-4)
    assert fit.alpha == pytest.approx(alpha, rel=1e-4)
    assert fit.c == pytest.approx(c, rel=1e-4, abs=1e-6)


def test_noisy_losses_give_the_law_within_a_stated_tolerance():
    # 0.2% multiplicative noise on 6 points, as a small training run's val loss: alpha within 10%
    # and c within 2%, and the fit's error no larger than the true law's (it is least squares)
    rng = np.random.default_rng(0)
    true = compute.PowerLawFit(a=20.0, alpha=0.35, c=1.7)
    for _ in range(5):
        loss = true(_SIZES) * (1 + 0.002 * rng.standard_normal(_SIZES.size))
        fit = compute.fit_power_law(_SIZES, loss)
        assert fit.alpha == pytest.approx(true.alpha, rel=0.1)
        assert fit.c == pytest.approx(true.c, rel=0.02)
        assert np.sum((fit(_SIZES) - loss) ** 2) <= np.sum((true(_SIZES) - loss) ** 2)
        assert 0 <= fit.c < loss.min()


def test_the_fit_is_least_squares_in_the_loss_not_in_its_logarithm():
    # the straight log-log line through L − c weighs small losses up; the returned fit must beat
    # every nearby (a, alpha, c) on the squared error in L itself
    rng = np.random.default_rng(1)
    loss = 3.0 * _SIZES**-0.25 + 0.9 + 0.01 * rng.standard_normal(_SIZES.size)
    fit = compute.fit_power_law(_SIZES, loss)
    best = np.sum((fit(_SIZES) - loss) ** 2)
    for da, dalpha, dc in [(1.001, 0, 0), (0.999, 0, 0), (1, 1e-3, 0), (1, -1e-3, 0), (1, 0, 1e-3), (1, 0, -1e-3)]:
        other = compute.PowerLawFit(fit.a * da, fit.alpha + dalpha, fit.c + dc)
        assert np.sum((other(_SIZES) - loss) ** 2) > best


def test_a_power_law_fit_evaluates_at_any_size():
    fit = compute.PowerLawFit(a=2.0, alpha=0.5, c=1.0)
    assert fit(4.0) == pytest.approx(2.0)
    np.testing.assert_allclose(fit(np.array([1.0, 100.0])), [3.0, 1.2])


@pytest.mark.parametrize("n, loss, match", [
    ([1e3, 1e4], [3.0, 2.5], "at least 3 points"),
    ([1e3, 1e3, 1e4], [3.0, 2.9, 2.5], "3 distinct sizes"),
    ([1e3, 0.0, 1e4], [3.0, 2.9, 2.5], "n must be > 0"),
    ([1e3, -5.0, 1e4], [3.0, 2.9, 2.5], "n must be > 0"),
    ([1e3, 1e4, 1e5], [3.0, float("nan"), 2.5], "loss must be finite"),
    ([1e3, float("inf"), 1e5], [3.0, 2.9, 2.5], "n must be finite"),
    ([1e3, 1e4, 1e5], [3.0, 0.0, 2.5], "loss must be > 0"),
    ([1e3, 1e4, 1e5], [3.0, 2.9], "same length"),
    ([[1e3, 1e4, 1e5]], [[3.0, 2.9, 2.5]], "one-dimensional"),
    (["a", "b", "c"], [3.0, 2.9, 2.5], "sequence of numbers"),
])
def test_bad_input_to_fit_power_law_is_named(n, loss, match):
    with pytest.raises(ValueError, match=match):
        compute.fit_power_law(n, loss)
