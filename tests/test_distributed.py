"""Data-parallel training (lmcourse.distributed): 2 ranks on gloo equal 1 process with twice the batch.

Each test starts real processes through torchrun (--standalone: its rendezvous on this machine at
a free port), one torch thread each. Tolerances: the losses (all-reduced) within 1e-5; the weights
after 6 AdamW steps within 5e-6 (measured here: 9.5e-7). Why not bit-equal: DDP adds the two ranks'
gradients after each has summed its own half, a float32 sum in another order, and Adam divides
each update by sqrt(v), which magnifies a rounding difference on an entry whose gradient is tiny.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from lmcourse.distributed import (DataParallelResult, backend_for, init_process_group, launch_command,
                                  run_data_parallel, under_torchrun)
from lmcourse.model import GPT, GPTConfig
from lmcourse.training import TokenData, TrainConfig, load_checkpoint, train

WEIGHT_TOL = 5e-6
LOSS_TOL = 1e-5


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32))
    data = TokenData.from_ids(np.random.default_rng(0).integers(0, 64, size=4000))
    # grad_accum=2: each rank's micro-batches are its halves of the one-process micro-batches
    cfg = TrainConfig(steps=6, batch_size=4, block_size=16, grad_accum=2, lr=1e-3, min_lr=1e-4, warmup_steps=2,
                      eval_interval=3, eval_batches=3, log_interval=1, device="cpu")
    return model, data, cfg


@pytest.fixture(scope="module")
def initial(setup):
    return {k: v.clone() for k, v in setup[0].state_dict().items()}


@pytest.fixture(scope="module")
def ddp(setup, initial, tmp_path_factory) -> DataParallelResult:
    model, data, cfg = setup
    return run_data_parallel(model, data, cfg, nproc=2, out_dir=tmp_path_factory.mktemp("ddp") / "run")


def _single(model, data, cfg, batch_size):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each rank: matmul sums in the same order
    try:
        one = copy.deepcopy(model)
        result = train(one, data, dataclasses.replace(cfg, batch_size=batch_size), progress=False, plot=False)
    finally:
        torch.set_num_threads(threads)
    return one, result


def test_two_ranks_of_batch_b_equal_one_process_of_batch_2b(setup, initial, ddp):
    model, data, cfg = setup
    one, single = _single(model, data, cfg, 2 * cfg.batch_size)
    diff = ddp.max_abs_diff(one)
    print(f"DDP 2 x {cfg.batch_size} vs 1 x {2 * cfg.batch_size}: max |weight diff| {diff:.2e}")
    assert diff <= WEIGHT_TOL
    assert ddp.result.step == single.step == cfg.steps and ddp.nproc == 2
    assert np.allclose(ddp.result.losses, single.losses, rtol=0, atol=LOSS_TOL)
    assert ddp.result.val_steps == single.val_steps == [0, 3, 6]
    assert np.allclose(ddp.result.val_losses, single.val_losses, rtol=0, atol=LOSS_TOL)
    # the test can fail: one process with only batch B (half the windows) ends far away
    half, half_result = _single(model, data, cfg, cfg.batch_size)
    assert ddp.max_abs_diff(half) > 100 * WEIGHT_TOL
    assert not np.allclose(ddp.result.losses[1:], half_result.losses[1:], rtol=0, atol=LOSS_TOL)
    # and the model handed in is untouched
    assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items())


def test_rank_zero_writes_one_checkpoint_that_records_the_ranks(setup, ddp):
    model, data, cfg = setup
    ck = load_checkpoint(ddp.result.checkpoint.parent)
    assert ck.path == ddp.result.checkpoint and ck.step == cfg.steps and ck.state["world_size"] == 2
    assert [p.name for p in ck.path.parent.glob("step-*")] == [ck.path.name]
    assert not list(ck.path.parent.glob(".*.tmp"))
    rng = torch.load(ck.path / "rng.pt", weights_only=True)
    assert len(rng["ranks"]) == 2 and not torch.equal(rng["ranks"][0]["torch"], rng["ranks"][1]["torch"])
    saved = GPT(model.config)
    ck.load_weights(saved)
    assert ddp.max_abs_diff(saved) == 0.0
    lines = [json.loads(x) for x in (ck.path.parent / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == list(range(cfg.steps))  # one writer: no line twice


def test_resume_needs_the_same_number_of_processes(setup, ddp):
    model, data, cfg = setup
    with pytest.raises(ValueError, match=r"trained by 2 process\(es\), now 1"):
        train(copy.deepcopy(model), data, dataclasses.replace(cfg, steps=8), out_dir=ddp.result.checkpoint.parent,
              resume=True, progress=False, plot=False)


def test_run_data_parallel_errors(setup):
    model, data, cfg = setup
    with pytest.raises(ValueError, match="lmcourse.model.GPT"):
        run_data_parallel(torch.nn.Linear(2, 2), data, cfg)
    with pytest.raises(ValueError, match="nproc must be an int >= 1, got 0"):
        run_data_parallel(model, data, cfg, nproc=0)
    with pytest.raises(ValueError, match="threads must be an int >= 1, got 1.5"):
        run_data_parallel(model, data, cfg, threads=1.5)
    with pytest.raises(ValueError, match="TokenData"):
        run_data_parallel(model, np.arange(10), cfg)
    with pytest.raises(ValueError, match="'mps'"):
        run_data_parallel(model, data, dataclasses.replace(cfg, device="mps"))


def test_launch_helpers(monkeypatch):
    assert backend_for("cpu") == "gloo" and backend_for("cuda") == "nccl"
    with pytest.raises(ValueError, match="not on 'mps'"):
        backend_for("mps")
    cmd = launch_command(3, ["train", "--out", "x"])
    assert cmd[:2] == [sys.executable, "-m"] and cmd[2] == "torch.distributed.run"
    assert cmd[3:6] == ["--nproc-per-node", "3", "--standalone"] and cmd[-5:] == ["-m", "lmcourse.cli", "train", "--out", "x"]
    with pytest.raises(ValueError, match="nproc must be an int >= 1"):
        launch_command(0, [])
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    assert not under_torchrun()
    with pytest.raises(RuntimeError, match="not started by torchrun: RANK, WORLD_SIZE"):
        init_process_group()


def test_cli_without_nproc_strips_it():
    from lmcourse.cli import _without_nproc

    assert _without_nproc(["train", "--nproc", "2", "--out", "r"]) == ["train", "--out", "r"]
    assert _without_nproc(["train", "--nproc=2", "--no-progress"]) == ["train", "--no-progress"]
    assert _without_nproc(["train", "--npr", "2", "--steps", "3"]) == ["train", "--steps", "3"]


def test_cli_train_nproc_2_writes_one_checkpoint(tmp_path):
    corpus = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    corpus.write_text(" ".join(rng.choice(["the cat", "a dog", "sat on", "the mat", "runs"], size=2000)))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lmcourse.cli", "train", "--nproc", "2", "--corpus", str(corpus), "--tokenizer",
           "char", "--preset", "scale_32", "--block-size", "16", "--batch-size", "4", "--steps", "4",
           "--eval-interval", "2", "--eval-batches", "2", "--log-interval", "1", "--device", "cpu", "--out", str(out),
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("step 4: train loss") == 1  # rank 1 keeps quiet
    assert proc.stderr.count("parameters, TokenData(") == 1
    ck = load_checkpoint(out)
    assert ck.step == 4 and ck.state["world_size"] == 2
    assert sorted(p.name for p in out.glob("step-*")) == ["step-000004"]
    assert (out / "tokenizer.json").is_file() and (out / "run.json").is_file()
