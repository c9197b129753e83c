"""Data-parallel training on torch.distributed: one model replica per process, gradients averaged.

Data parallelism is the first way to train on more than one device: each of W processes
(ranks) holds a full copy of the model, computes the gradient on its own share of the batch,
and `DistributedDataParallel` all-reduces (averages) the gradients during backward, so every
replica takes the same optimiser step and the replicas never drift apart. W ranks with batch B
compute the gradient of one batch of W * B, in 1/W of the time when the devices are real.

The loop is `lmcourse.training.train` itself: inside a process group it wraps the model in
DDP, gives each rank its share of every batch, all-reduces losses and val losses, and lets
rank 0 alone write checkpoints (see its docstring). This module only starts and joins the
group, the way PyTorch's own launcher `torchrun` (`python -m torch.distributed.run`) expects:

- `init_process_group()` joins the group torchrun describes in the environment (RANK,
  WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): gloo on CPU, nccl on CUDA GPUs with one
  GPU per rank (LOCAL_RANK);
- `launch_command()` is the torchrun command `lmcourse train --nproc N` runs; the same
  command with --nnodes 2 --node-rank R --rdzv-endpoint HOST:PORT spans two machines;
- `run_data_parallel()` trains a GPT in N fresh processes from a notebook (a Jupyter kernel
  cannot be a rank itself) and brings the weights and losses back through files.

Derived in chapters/13_compute_scaling.ipynb.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from lmcourse.atomic import write_atomic
from lmcourse.training import TokenData, TrainConfig, TrainResult

__all__ = [
    "TORCHRUN_ENV",
    "under_torchrun",
    "backend_for",
    "init_process_group",
    "destroy_process_group",
    "launch_command",
    "DataParallelResult",
    "run_data_parallel",
]

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets in each rank


def under_torchrun() -> bool:
    """True in a process that torchrun started (its environment names the rank and the group)."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def backend_for(device: str | torch.device) -> str:
    """The collective backend for a device type: nccl for CUDA, gloo for CPU (nothing else is supported)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return "nccl"
    if dev.type == "cpu":
        return "gloo"
    raise ValueError(f"data-parallel training runs on CPU (gloo) or CUDA (nccl), not on {dev.type!r}")


def init_process_group(device: str = "auto") -> torch.device:
    """Join the process group torchrun describes in the environment; return this rank's device.

    device: "auto" (CUDA when there is a GPU, else CPU: never MPS, which has no collective
    backend), "cpu" or "cuda". On CUDA each rank takes GPU LOCAL_RANK and makes it the current
    device, so `TrainConfig(device="cuda")` means this rank's own GPU. Raises RuntimeError
    outside torchrun and ValueError when the node has fewer GPUs than ranks.
    """
    if not under_torchrun():
        missing = [k for k in TORCHRUN_ENV if k not in os.environ]
        raise RuntimeError(f"not started by torchrun: {', '.join(missing)} not set in the environment "
                           "(launch with `python -m torch.distributed.run ...` or `lmcourse train --nproc N`)")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    local_rank, local_world = int(os.environ["LOCAL_RANK"]), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' but CUDA is not available here (use 'auto' or 'cpu')")
        if local_world > torch.cuda.device_count():
            raise ValueError(f"{local_world} ranks on this node but only {torch.cuda.device_count()} GPU(s): "
                             "one rank per GPU")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend_for(dev), device_id=dev if dev.type == "cuda" else None)
    return dev


def destroy_process_group() -> None:
    """Leave the process group (a no-op when there is none)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def launch_command(nproc: int, args: list[str], *, module: str = "lmcourse.cli") -> list[str]:
    """The torchrun command that runs `python -m module *args` in nproc ranks on this machine.

    `--standalone` starts the rendezvous on this machine at a free port. Across machines run
    the same module with `--nnodes 2 --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:PORT`
    instead (the README shows it).
    """
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise ValueError(f"nproc must be an int >= 1, got {nproc!r}")
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone",
            "-m", module, *args]


@dataclass
class DataParallelResult:
    """What `run_data_parallel` brings back: the trained model (a copy, on the CPU), the run's
    history (`result.losses[s]` is step s's loss over all ranks' windows), the number of
    processes and the wall time of the whole launch (process start-up included)."""

    model: nn.Module
    result: TrainResult
    nproc: int
    wall_s: float

    def max_abs_diff(self, other: nn.Module) -> float:
        """The largest absolute difference between these weights and `other`'s (same parameter names)."""
        mine, theirs = dict(self.model.named_parameters()), dict(other.named_parameters())
        if set(mine) != set(theirs):
            raise ValueError(f"the models hold different parameters: {sorted(set(mine) ^ set(theirs))[:5]}")
        with torch.no_grad():
            return max((mine[k].float() - theirs[k].detach().cpu().float()).abs().max().item() for k in mine)


def run_data_parallel(model: nn.Module, data: TokenData, cfg: TrainConfig, nproc: int = 2, *,
                      threads: int = 1, out_dir: str | os.PathLike | None = None,
                      timeout: float = 600.0) -> DataParallelResult:
    """Train a copy of `model` (a `lmcourse.model.GPT`) data-parallel in nproc fresh processes.

    Each rank starts from `model`'s weights (left untouched here) and runs `train(copy, data,
    cfg)` with batch cfg.batch_size, so the global batch is nproc * cfg.batch_size; torch in
    each rank uses `threads` threads. nproc=1 runs the same thing in one process, the baseline
    measured under the same conditions. out_dir: a run folder for checkpoints (rank 0 writes
    them). The ranks are started by torchrun (gloo on CPU, nccl on GPUs) and hand back the
    weights and the history through files in a temporary folder. Raises RuntimeError with
    the ranks' output when they fail, or after `timeout` seconds.
    """
    from safetensors.torch import load_model, save_model

    from lmcourse.model import GPT

    if not isinstance(model, GPT):
        raise ValueError(f"model must be an lmcourse.model.GPT (rebuilt from its config in each rank), "
                         f"got {type(model).__name__}")
    if not isinstance(data, TokenData):
        raise ValueError(f"data must be a TokenData, got {type(data).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    for name, v in (("nproc", nproc), ("threads", threads)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"cfg.device must be 'auto', 'cpu' or 'cuda' here (each rank takes its own GPU), "
                         f"got {cfg.device!r}")
    data.check_block_size(cfg.block_size)
    with tempfile.TemporaryDirectory(prefix="lmcourse-ddp-") as tmp:
        work = Path(tmp)
        save_model(model, str(work / "initial.safetensors"))
        np.save(work / "train.npy", np.asarray(data.train))
        np.save(work / "val.npy", np.asarray(data.val))
        spec = {"model_config": dataclasses.asdict(model.config), "train_config": cfg.to_dict(), "threads": threads,
                "out_dir": None if out_dir is None else str(Path(out_dir).resolve())}
        write_atomic(work / "spec.json", json.dumps(spec))
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(launch_command(nproc, [str(work)], module="lmcourse.distributed"), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
            raise RuntimeError(f"data-parallel run did not finish in {timeout:g} s; its output ended:\n"
                               f"{out[-3000:]}") from None
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not (work / "result.json").is_file():
            raise RuntimeError(f"data-parallel run failed (exit {proc.returncode}); its output ended:\n"
                               f"{proc.stdout[-3000:]}")
        h = json.loads((work / "result.json").read_text(encoding="utf-8"))
        trained = copy.deepcopy(model).cpu()
        load_model(trained, str(work / "final.safetensors"))
    result = TrainResult(losses=h["losses"], grad_norms=h["grad_norms"], lrs=h["lrs"], val_steps=h["val_steps"],
                         val_losses=h["val_losses"], step=h["step"], tokens_per_s=h["tokens_per_s"],
                         wall_s=h["wall_s"], stopped=h["stopped"],
                         checkpoint=None if h["checkpoint"] is None else Path(h["checkpoint"]))
    return DataParallelResult(model=trained, result=result, nproc=nproc, wall_s=wall)


def _worker(work: Path) -> int:
    """One rank of `run_data_parallel`: rebuild the model and data, train, and (rank 0) write the results."""
    from safetensors.torch import load_model, save_model

    from lmcourse.model import GPT, GPTConfig
    from lmcourse.training import train

    spec = json.loads((work / "spec.json").read_text(encoding="utf-8"))
    torch.set_num_threads(spec["threads"])
    cfg = TrainConfig.from_dict(spec["train_config"])
    dev = init_process_group(cfg.device)
    try:
        cfg = dataclasses.replace(cfg, device=dev.type)
        model = GPT(GPTConfig(**spec["model_config"]))
        load_model(model, str(work / "initial.safetensors"))
        data = TokenData(np.load(work / "train.npy"), np.load(work / "val.npy"))
        result = train(model, data, cfg, out_dir=spec["out_dir"], progress=False, plot=False)
        if torch.distributed.get_rank() == 0:
            save_model(model, str(work / "final.safetensors"))
            doc = {**result._history(), "step": result.step, "tokens_per_s": result.tokens_per_s,
                   "wall_s": result.wall_s, "stopped": result.stopped,
                   "checkpoint": None if result.checkpoint is None else str(result.checkpoint)}
            write_atomic(work / "result.json", json.dumps(doc))
    finally:
        destroy_process_group()
    return 0


if __name__ == "__main__":  # a rank started by run_data_parallel's torchrun
    sys.exit(_worker(Path(sys.argv[1])))
