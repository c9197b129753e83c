"""lmcourse.training and `lmcourse train`: schedule, weight decay, data, accumulation, checkpoints, resume, failures.

Tiny models (2 layers, 32 wide) and a few steps each; torch runs on one thread here and in the
subprocesses, so the in-process and fresh-process runs compute the same floats.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lmcourse import training
from lmcourse.cli import main
from lmcourse.model import GPT, GPTConfig
from lmcourse.tokenizers import BPETokenizer, CharTokenizer
from lmcourse.training import (
    CheckpointError, EvalInfo, LivePlot, NonFiniteLossError, StepInfo, TokenData, TrainConfig, TrainingInterrupted,
    decay_groups, evaluate, latest_checkpoint, load_checkpoint, load_model, load_tokenizer, lr_at, make_optimizer,
    save_tokenizer, train,
)

ROOT = Path(__file__).resolve().parents[1]
V = 40


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(dropout: float = 0.0, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=dropout))


def tiny_data(n: int = 3000) -> TokenData:
    # a learnable stream: a fixed random phrase repeated with some noise
    rng = np.random.default_rng(0)
    ids = np.tile(rng.integers(0, V, 37), n // 37 + 1)[:n]
    noise = rng.random(n) < 0.1
    ids[noise] = rng.integers(0, V, noise.sum())
    return TokenData.from_ids(ids)


def cfg(**kw) -> TrainConfig:
    base = dict(steps=20, batch_size=4, block_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=3, eval_interval=0,
                eval_batches=2, log_interval=5, device="cpu")
    return TrainConfig(**{**base, **kw})


def quiet(model, data, c, out=None, callbacks=(), **kw):
    return train(model, data, c, out, callbacks, progress=False, plot=False, **kw)


# ----------------------------------------------------------------------------- config

@pytest.mark.parametrize("field, value", [
    ("steps", 0), ("steps", 1.5), ("batch_size", True), ("block_size", -1), ("lr", 0.0), ("lr", float("nan")),
    ("min_lr", 2.0), ("warmup_steps", -1), ("weight_decay", -0.1), ("betas", (0.9,)), ("betas", (0.9, 1.0)),
    ("grad_clip", 0.0), ("grad_accum", 0), ("eval_interval", -1), ("device", "gpu"), ("dtype", "fp16"),
    ("compile", "yes"), ("seed", -3), ("lr_decay_steps", 0), ("keep_checkpoints", 0),
])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field}"):
        TrainConfig(**{field: value})


def test_config_warmup_longer_than_decay_and_dict_round_trip():
    with pytest.raises(ValueError, match="warmup_steps=50 must be <= the decay end steps=10"):
        TrainConfig(steps=10, warmup_steps=50)
    c = TrainConfig(betas=[0.8, 0.95], grad_clip=None)
    assert c.betas == (0.8, 0.95)
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['stepz'\]"):
        TrainConfig.from_dict({"stepz": 3})


# ----------------------------------------------------------------------------- schedule

def test_lr_schedule_pins():
    c = TrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-4)
    assert lr_at(0, c) == pytest.approx(1e-4)  # lr / warmup: the first step already learns
    assert lr_at(4, c) == pytest.approx(5e-4)
    assert lr_at(9, c) == pytest.approx(1e-3)  # the last warm-up step reaches the peak
    assert lr_at(10, c) == pytest.approx(1e-3)  # the cosine starts at the peak
    assert lr_at(55, c) == pytest.approx((1e-3 + 1e-4) / 2)  # half way down the cosine
    assert lr_at(99, c) > 1e-4  # the last step is still above the floor
    assert lr_at(100, c) == pytest.approx(1e-4)  # the end
    assert lr_at(10_000, c) == 1e-4  # beyond the end: the floor, never below or back up
    lrs = [lr_at(s, c) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lr_at(0, TrainConfig(steps=5, warmup_steps=0, lr=2e-3, min_lr=0.0)) == 2e-3
    d = TrainConfig(steps=100, warmup_steps=0, lr_decay_steps=50, lr=1.0, min_lr=0.0)
    assert lr_at(25, d) == pytest.approx(0.5) and lr_at(50, d) == 0.0 and lr_at(75, d) == 0.0
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="step must be an int >= 0"):
            lr_at(bad, c)


# ----------------------------------------------------------------------------- weight decay

def test_decay_groups_on_a_gpt_decays_only_linear_matrices():
    model = tiny_model()
    decay, no_decay = decay_groups(model)
    names = [n for n, _ in model.named_parameters()]
    assert sorted(decay + no_decay) == sorted(names)
    want = [n for n in names if n.endswith(("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"))]
    assert sorted(decay) == sorted(want) and len(want) == 4 * 2
    assert "transformer.wte.weight" in no_decay  # the token table, tied to lm_head: an embedding
    assert "transformer.wpe.weight" in no_decay
    assert all(n in no_decay for n in names if n.endswith(".bias") or ".ln_" in n)


def test_weight_decay_is_decoupled_and_skips_the_rest():
    model = tiny_model()
    c = cfg(weight_decay=0.5, lr=0.1)
    opt = make_optimizer(model, c)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: Adam's update is 0, only the decay moves weights
    opt.step()
    decay, _ = decay_groups(model)
    for n, p in model.named_parameters():
        want = before[n] * (1 - 0.1 * 0.5) if n in decay else before[n]
        torch.testing.assert_close(p.detach(), want, rtol=1e-6, atol=0)


# ----------------------------------------------------------------------------- data

def test_token_data_split_windows_and_memmap(tmp_path):
    ids = np.arange(1000) % 300
    d = TokenData.from_ids(ids, val_fraction=0.1)
    assert d.train.dtype == np.uint16 and len(d.train) == 900 and len(d.val) == 100
    np.testing.assert_array_equal(d.train, ids[:900])  # a fixed split: the first 90% trains
    np.testing.assert_array_equal(d.val, ids[900:])
    x, y = d.get_batch("train", np.random.default_rng(0), 8, 10)
    assert x.shape == y.shape == (8, 10) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    assert torch.equal((x[:, 0] + 1) % 300, y[:, 0])
    path = TokenData.write(tmp_path / "ids.bin", ids)
    m = TokenData.from_file(path)
    assert isinstance(m.train, np.memmap) and m.fingerprint() == d.fingerprint()
    a, b = m.get_batch("val", np.random.default_rng(1), 4, 10), d.get_batch("val", np.random.default_rng(1), 4, 10)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_token_data_bad_input(tmp_path):
    with pytest.raises(ValueError, match="do not fit uint16"):
        TokenData.write(tmp_path / "x.bin", [1, 70000])
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(ValueError, match=r"odd\.bin: 7 bytes is not a whole"):
        TokenData.from_file(tmp_path / "odd.bin")
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        TokenData.from_file(tmp_path / "nope.bin")
    with pytest.raises(ValueError, match="integer token ids"):
        TokenData.from_ids(np.ones(10, dtype=np.float32))
    with pytest.raises(ValueError, match="must be >= 0"):
        TokenData.from_ids([3, -1, 2])
    with pytest.raises(ValueError, match="val_fraction"):
        TokenData.from_ids(range(100), val_fraction=1.0)
    with pytest.raises(ValueError, match="the val split holds 10 tokens, fewer than one window of block_size \\+ 1 = 17"):
        TokenData.from_ids(range(100)).check_block_size(16)
    with pytest.raises(ValueError, match=r"block_size=32 is longer than the model's context block_size=16"):
        quiet(tiny_model(), tiny_data(), cfg(block_size=32))


# ----------------------------------------------------------------------------- evaluation

def test_evaluate_is_the_same_every_call_and_keeps_the_mode():
    model, data = tiny_model(dropout=0.5), tiny_data()
    c = cfg(eval_batches=3)
    model.train()
    rng = torch.get_rng_state()
    a, b = evaluate(model, data, c), evaluate(model, data, c)
    assert a == b and math.isfinite(a)
    assert model.training and torch.equal(rng, torch.get_rng_state())  # eval mode inside: no dropout drawn
    assert evaluate(model, data, cfg(eval_batches=3, seed=1)) != a  # the batches come from the seed


# ----------------------------------------------------------------------------- the loop

def test_training_learns_and_reports(tmp_path):
    data = tiny_data()
    seen: list[StepInfo] = []
    evals: list[EvalInfo] = []

    class Record:
        def on_step(self, info):
            seen.append(info)

        def on_eval(self, info):
            evals.append(info)

    r = quiet(tiny_model(), data, cfg(steps=30, eval_interval=10), callbacks=[Record()])
    assert r.stopped == "done" and r.step == 30 and len(r.losses) == len(r.grad_norms) == len(r.lrs) == 30
    assert r.val_steps == [0, 10, 20, 30] and [e.step for e in evals] == r.val_steps
    assert r.val_losses[-1] < r.val_losses[0] - 0.3
    assert [i.step for i in seen] == list(range(30)) and [i.loss for i in seen] == r.losses
    assert r.lrs == [lr_at(s, cfg(steps=30)) for s in range(30)]
    assert all(g > 0 for g in r.grad_norms) and r.tokens_per_s > 0 and r.checkpoint is None


def test_a_callback_stops_training():
    class StopAt7:
        def on_step(self, info):
            return info.step == 6

    r = quiet(tiny_model(), tiny_data(), cfg(), callbacks=[StopAt7()])
    assert r.stopped == "callback" and r.step == 7 and len(r.losses) == 7


def test_grad_accumulation_equals_one_big_batch():
    data = tiny_data()
    big = tiny_model()
    r1 = quiet(big, data, cfg(steps=6, batch_size=8, grad_accum=1, grad_clip=0.5))
    acc = tiny_model()
    r2 = quiet(acc, data, cfg(steps=6, batch_size=4, grad_accum=2, grad_clip=0.5))
    np.testing.assert_allclose(r2.losses, r1.losses, rtol=1e-5)
    np.testing.assert_allclose(r2.grad_norms, r1.grad_norms, rtol=1e-4)  # pre-clip norms: the gradients' scale
    for (n, p), q in zip(big.named_parameters(), acc.parameters()):
        # atol: the key bias's true gradient is 0 (softmax ignores a shift), so Adam turns its rounding noise into ~1e-6 steps
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=n)
    # and it is not just any run: half the batch without accumulation differs
    r3 = quiet(tiny_model(), data, cfg(steps=6, batch_size=4, grad_accum=1, grad_clip=0.5))
    assert not np.allclose(r3.losses, r1.losses, rtol=1e-3)


def test_precision_fp32_on_cpu_unless_bf16_is_asked():
    assert isinstance(training._autocast(torch.device("cpu"), "auto"), type(training._autocast(torch.device("cpu"), "fp32")))
    assert isinstance(training._autocast(torch.device("cpu"), "bf16"), torch.autocast)
    data = tiny_data()
    fp32 = quiet(tiny_model(), data, cfg(steps=3))
    auto = quiet(tiny_model(), data, cfg(steps=3, dtype="auto"))
    bf16 = quiet(tiny_model(), data, cfg(steps=3, dtype="bf16"))
    assert auto.losses == fp32.losses  # "auto" on a CPU is fp32
    assert bf16.losses != fp32.losses  # autocast really ran the matmuls in bf16 ...
    np.testing.assert_allclose(bf16.losses, fp32.losses, rtol=1e-2)  # ... with bf16's precision


def test_clipping_reports_the_pre_clip_norm():
    model, data = tiny_model(), tiny_data()
    r = quiet(model, data, cfg(steps=3, grad_clip=1e-3))
    assert all(g > 1e-3 for g in r.grad_norms)  # what the gradient was, not what it was clipped to
    assert all(math.isnan(g) for g in quiet(tiny_model(), data, cfg(steps=3, grad_clip=None)).grad_norms)


# ----------------------------------------------------------------------------- checkpoints and resume

RESUME = textwrap.dedent("""
    import json, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_training import tiny_model, tiny_data, cfg
    from lmcourse.training import train
    r = train(tiny_model(dropout=0.1, seed=123), tiny_data(), cfg(**json.loads(sys.argv[2])), sys.argv[1],
              resume=True, progress=False, plot=False)
    print(json.dumps({{"losses": r.losses, "val": r.val_losses, "step": r.step}}))
""")


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    data = tiny_data()
    kw = dict(steps=20, grad_accum=2, eval_interval=5, checkpoint_interval=5)
    straight_model = tiny_model(dropout=0.1)  # dropout: torch's RNG must be restored too
    straight = quiet(straight_model, data, cfg(**kw), tmp_path / "straight")

    class StopAfter10:
        def on_step(self, info):
            return info.step == 9

    first = quiet(tiny_model(dropout=0.1), data, cfg(**kw), tmp_path / "run", [StopAfter10()])
    assert first.step == 10 and latest_checkpoint(tmp_path / "run").name == "step-000010"
    # a fresh process, whose model starts from other weights: everything must come from the checkpoint
    proc = subprocess.run([sys.executable, "-c", RESUME.format(tests=str(ROOT / "tests")), str(tmp_path / "run"),
                           json.dumps(kw)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads(proc.stdout)
    assert resumed["step"] == 20
    assert resumed["losses"] == straight.losses  # exactly: every float of all 20 steps
    assert resumed["val"] == straight.val_losses
    a = load_checkpoint(tmp_path / "straight").model()
    b = load_checkpoint(tmp_path / "run").model()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), n
    assert all(torch.equal(p, q) for p, q in zip(straight_model.parameters(), a.parameters()))
    assert b.lm_head.weight is b.transformer.wte.weight  # still tied after loading
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    straight_logs = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r.get("loss"), r.get("val_loss")) for r in logs] == \
        [(r["step"], r.get("loss"), r.get("val_loss")) for r in straight_logs]


def _run_with_checkpoints(run, steps=10):
    quiet(tiny_model(), tiny_data(), cfg(steps=steps, checkpoint_interval=5), run)
    return sorted(p.name for p in run.glob("step-*"))


def test_a_corrupted_checkpoint_names_the_file_and_the_previous_one_is_intact(tmp_path):
    run = tmp_path / "run"
    assert _run_with_checkpoints(run) == ["step-000005", "step-000010"]
    good = load_checkpoint(run / "step-000005").model()
    weights = run / "step-000010" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte in the middle of a tensor
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=rf"{weights}: corrupted: its SHA-256 does not match") as e:
        load_checkpoint(run)
    print("\n[corrupted]", e.value)
    model = tiny_model(seed=5)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(CheckpointError, match="model.safetensors: corrupted"):
        quiet(model, tiny_data(), cfg(steps=20, checkpoint_interval=5), run, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing loaded from it
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 2
    # the previous checkpoint still loads, with the same weights
    again = load_checkpoint(run / "step-000005").model()
    assert all(torch.equal(a, b) for a, b in zip(good.parameters(), again.parameters()))

    opt = run / "step-000005" / "optimizer.pt"
    opt.write_bytes(opt.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError, match=rf"{opt}: truncated or damaged: 100 bytes, the manifest says \d+") as e:
        load_checkpoint(run / "step-000005")
    print("[truncated]", e.value)
    (run / "step-000005" / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"step-000005/manifest.json: corrupted"):
        load_checkpoint(run / "step-000005")
    (run / "latest").write_text("step-000099\n")
    with pytest.raises(CheckpointError, match="names 'step-000099', which is not a checkpoint folder"):
        load_checkpoint(run)


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_save = torch.save
    calls = []

    def failing_save(obj, f, *a, **kw):  # the second checkpoint dies half way through writing
        calls.append(f)
        if len(calls) == 3:
            Path(f).write_bytes(b"half")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(training.torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        quiet(tiny_model(), tiny_data(), cfg(steps=10, checkpoint_interval=5), run)
    assert (run / "latest").read_text().strip() == "step-000005"
    assert sorted(p.name for p in run.iterdir()) == ["latest", "metrics.jsonl", "step-000005"]  # no half folder left
    assert load_checkpoint(run).step == 5


class Poison:
    """A callback that puts a nan into the model's weights after step `after`."""

    def __init__(self, model, after):
        self.model, self.after = model, after

    def on_step(self, info):
        if info.step == self.after:
            with torch.no_grad():
                self.model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_model()
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"the loss is nan at step 7 .*last good checkpoint, .*step-000005") as e:
        quiet(model, tiny_data(), cfg(steps=20, checkpoint_interval=5), run, [Poison(model, after=6)])
    print("\n[nan]", e.value)
    assert e.value.step == 7 and e.value.result.stopped == "nonfinite" and len(e.value.result.losses) == 7
    assert latest_checkpoint(run).name == "step-000005"
    assert all(torch.isfinite(p).all() for p in load_model(run).parameters())
    # weights broken just before a checkpoint, every loss so far finite: that checkpoint is not written
    model = tiny_model()
    with pytest.raises(NonFiniteLossError, match=r"the weights hold nan or inf \(transformer.h.0.mlp.c_fc.weight\) at step 9"):
        quiet(model, tiny_data(), cfg(steps=20, checkpoint_interval=5), tmp_path / "run2", [Poison(model, after=9)])
    assert latest_checkpoint(tmp_path / "run2").name == "step-000005"
    # an absurd learning rate, no checkpoint folder
    with pytest.raises(NonFiniteLossError, match=r"the loss is (nan|inf) at step \d+ .*no checkpoint was saved"):
        quiet(tiny_model(), tiny_data(), cfg(steps=30, lr=1e12, min_lr=0.0, warmup_steps=0, grad_clip=None))


def test_keyboard_interrupt_saves_then_stops(tmp_path):
    class CtrlCAfterStep3:
        def on_step(self, info):
            if info.step == 3:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="interrupted after step 3; checkpoint saved") as e:
        quiet(tiny_model(), tiny_data(), cfg(), run, [CtrlCAfterStep3()])
    assert isinstance(e.value, KeyboardInterrupt) and e.value.checkpoint == run / "step-000004"
    assert load_checkpoint(run).step == 4 and e.value.result.step == 4
    r = quiet(tiny_model(), tiny_data(), cfg(), run, resume=True)
    assert r.step == 20 and len(r.losses) == 20


# Evaluate after updates 0, 4, 8, 12 (start, every 4, end); log after steps 0, 3, 6, 9 and 11 (the last).
RESUME_KW = dict(steps=12, eval_interval=4, log_interval=3)


def _metrics(run: Path) -> list[dict]:
    # timings differ between any two runs; everything else in the log must not
    return [{k: v for k, v in json.loads(line).items() if k not in ("tokens_per_s", "elapsed_s")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight_12(tmp_path_factory):
    run = tmp_path_factory.mktemp("straight") / "run"
    return quiet(tiny_model(), tiny_data(), cfg(**RESUME_KW), run), _metrics(run)


def _assert_resumes_as_straight(run: Path, straight_12) -> None:
    straight, straight_log = straight_12
    r = quiet(tiny_model(seed=7), tiny_data(), cfg(**RESUME_KW), run, resume=True)
    assert r.losses == straight.losses
    assert (r.val_steps, r.val_losses) == (straight.val_steps, straight.val_losses)
    assert _metrics(run) == straight_log


# 3: the step whose end is an eval (and a log) point; 7: the same, not a log point; 4: the step right after
# an eval; 0 and 11: the first and the last step
@pytest.mark.parametrize("stop_at", [0, 3, 4, 7, 11])
def test_resume_after_a_callback_interrupt_at_any_step_logs_as_a_straight_run(tmp_path, straight_12, stop_at):
    class CtrlC:
        def on_step(self, info):
            if info.step == stop_at:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match=f"after step {stop_at};"):
        quiet(tiny_model(), tiny_data(), cfg(**RESUME_KW), run, [CtrlC()])
    assert load_checkpoint(run).step == stop_at + 1
    _assert_resumes_as_straight(run, straight_12)


@pytest.mark.parametrize("eval_at", [0, 4, 12])  # the start, the middle, the end
def test_resume_after_an_interrupt_during_evaluation_evaluates_first(tmp_path, straight_12, monkeypatch, eval_at):
    real = training.evaluate

    def interrupted(model, data, c, **kw):  # a second Ctrl-C while the val loss after `eval_at` updates is measured
        calls.append(1)
        if len(calls) == eval_at // 4 + 1:
            raise KeyboardInterrupt
        return real(model, data, c, **kw)

    calls: list = []
    monkeypatch.setattr(training, "evaluate", interrupted)
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        quiet(tiny_model(), tiny_data(), cfg(**RESUME_KW), run)
    monkeypatch.setattr(training, "evaluate", real)
    ck = load_checkpoint(run)
    assert ck.step == eval_at and eval_at not in ck.state["history"]["val_steps"]  # saved without that eval
    _assert_resumes_as_straight(run, straight_12)


def test_run_folder_rules(tmp_path):
    run = tmp_path / "run"
    _run_with_checkpoints(run)
    with pytest.raises(ValueError, match="already holds a run .*pass resume=True"):
        quiet(tiny_model(), tiny_data(), cfg(steps=10), run)
    with pytest.raises(CheckpointError, match=r"other settings: lr \(0.003 -> 0.001\)"):
        quiet(tiny_model(), tiny_data(), cfg(steps=20, lr=1e-3, checkpoint_interval=5), run, resume=True)
    with pytest.raises(CheckpointError, match="was trained on other data"):
        quiet(tiny_model(), tiny_data(2000), cfg(steps=20, checkpoint_interval=5), run, resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        quiet(tiny_model(), tiny_data(), cfg(), tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="resume=True needs the out_dir"):
        quiet(tiny_model(), tiny_data(), cfg(), resume=True)
    # resuming may extend the run: steps is not part of what the checkpoint pins
    r = quiet(tiny_model(), tiny_data(), cfg(steps=12, checkpoint_interval=5), run, resume=True)
    assert r.step == 12 and len(r.losses) == 12


def test_tokenizers_beside_the_checkpoint(tmp_path):
    char = CharTokenizer.fit("hello world")
    save_tokenizer(char, tmp_path / "c")
    assert load_tokenizer(tmp_path / "c").itos == char.itos
    bpe = BPETokenizer().train("hello hello world " * 20, 270)
    save_tokenizer(bpe, tmp_path / "b")
    assert load_tokenizer(tmp_path / "b").encode("hello world") == bpe.encode("hello world")
    (tmp_path / "c" / "tokenizer.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="tokenizer.json: not an 'lmcourse-char 1' tokenizer"):
        load_tokenizer(tmp_path / "c")


# ----------------------------------------------------------------------------- what the user sees

def test_no_figure_outside_a_notebook(monkeypatch):
    def no_display(obj):
        raise AssertionError("displayed a figure outside IPython")

    monkeypatch.setattr(training, "_display", no_display)
    assert not training._in_notebook()
    quiet(tiny_model(), tiny_data(), cfg(steps=3, eval_interval=2))  # quiet() passes plot=False; now plot=True:
    train(tiny_model(), tiny_data(), cfg(steps=3, eval_interval=2), progress=False, plot=True)


def test_live_plot_updates_one_figure_in_place(monkeypatch):
    shown = []

    class Handle:
        updates = 0

        def update(self, obj):
            Handle.updates += 1
            shown.append(obj)

    def display(obj):
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(training, "_in_notebook", lambda: True)
    monkeypatch.setattr(training, "_display", display)
    pytest.importorskip("IPython")
    train(tiny_model(), tiny_data(), cfg(steps=6, eval_interval=3, log_interval=1), progress=False, plot=True)
    assert Handle.updates >= 3  # the evaluations at 3 and 6, and the end: all into the one display
    assert shown[-1].data[:8] == b"\x89PNG\r\n\x1a\n"
    plot = LivePlot()
    plot.train, plot.val = [(1, 3.0), (2, 2.5)], [(0, 3.1), (2, 2.6)]
    ax = plot.figure().axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["train", "val"]


def test_progress_bar_on_stderr(capsys):
    train(tiny_model(), tiny_data(), cfg(steps=6, log_interval=2), progress=True, plot=False)
    err = capsys.readouterr().err
    assert "loss=" in err and "tok_s=" in err and "6/6" in err


# ----------------------------------------------------------------------------- the command line

def _cli_args(corpus, out, *extra):
    return ["train", "--corpus", str(corpus), "--tokenizer", "char", "--preset", "scale_32", "--block-size", "16",
            "--batch-size", "4", "--eval-batches", "2", "--out", str(out), "--no-progress", *extra]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat. the dog ate the bone. " * 60, encoding="utf-8")
    return path


def test_cli_trains_logs_and_resumes(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(_cli_args(corpus, out, "--steps", "6", "--eval-interval", "3")) == 0
    captured = capsys.readouterr()
    assert "step 6: train loss" in captured.out and "parameters" in captured.err
    assert {p.name for p in out.iterdir()} >= {"latest", "metrics.jsonl", "run.json", "tokenizer.json", "step-000006"}
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "val_loss" in r] == [0, 3, 6]
    assert load_model(out).config.n_embd == 32
    # longer: the warm-up stays the run's own (a fresh --steps 6 warms up for 0 steps, --steps 30 would for 3)
    assert main(["train", "--out", str(out), "--resume", "--steps", "30", "--log-interval", "100", "--no-progress"]) == 0
    assert load_checkpoint(out).step == 30 and load_checkpoint(out).train_config.warmup_steps == 0
    assert main(_cli_args(corpus, out, "--steps", "6")) == 2  # a second run into the same folder is refused
    assert "already holds a run" in capsys.readouterr().err


def test_cli_config_file(tmp_path, corpus, capsys):
    conf = {"corpus": str(corpus), "tokenizer": "char", "preset": "scale_32", "model": {"dropout": 0.1},
            "train": {"steps": 4, "warmup_steps": 1, "block_size": 16, "batch_size": 4, "eval_batches": 2, "eval_interval": 2}}
    (tmp_path / "c.json").write_text(json.dumps(conf))
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.json"), "--out", str(out), "--lr", "0.002", "--no-progress"]) == 0
    ck = load_checkpoint(out)
    assert ck.model_config["dropout"] == 0.1 and ck.model_config["n_embd"] == 32
    assert (ck.train_config.steps, ck.train_config.warmup_steps, ck.train_config.lr) == (4, 1, 0.002)  # the flag wins
    (tmp_path / "bad.json").write_text(json.dumps({"optimiser": "sgd"}))
    capsys.readouterr()
    assert main(["train", "--config", str(tmp_path / "bad.json"), "--out", str(tmp_path / "r2")]) == 2
    assert "unknown key(s) ['optimiser']" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "TrainConfig.steps must be an int >= 1, got 0"),
    (["--steps", "many"], "argument --steps: invalid int value: 'many'"),
    (["--preset", "huge"], "--preset 'huge': choose one of tiny"),
    (["--lr", "-1"], "TrainConfig.lr must be a finite float > 0"),
])
def test_cli_bad_arguments_give_one_line(tmp_path, corpus, capsys, args, message):
    try:
        rc = main(_cli_args(corpus, tmp_path / "run", *args))
    except SystemExit as e:  # argparse's own errors exit
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_missing_corpus_and_missing_checkpoint(tmp_path, capsys):
    assert main(_cli_args(tmp_path / "nope.txt", tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "nope.txt': no such file" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "no such checkpoint or run folder" in err and len(err.strip().splitlines()) == 1


def test_cli_ctrl_c_saves_a_checkpoint_then_exits(tmp_path, corpus):
    out = tmp_path / "run"
    env = {**os.environ, "LMCOURSE_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lmcourse.cli", *_cli_args(corpus, out, "--steps", "100000", "--log-interval", "1")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (out / "metrics.jsonl").is_file() or (out / "metrics.jsonl").read_text().count("\n") < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "checkpoint saved" in stderr and "--resume" in stderr
    step = load_checkpoint(out).step
    assert 2 <= step < 100000
