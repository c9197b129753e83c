"""Pretraining a GPT: token data, AdamW with warm-up and cosine decay, evaluation, checkpoints.

One code path, `train(model, data, cfg)`, serves the chapters, `lmcourse train` and the
benchmarks. Read top to bottom: the configuration, the data, the optimiser and schedule,
evaluation, checkpoints, what the user sees (progress bar, live figure, metrics log,
callbacks), then the loop itself.

Steps count optimiser updates from 0, as nanoGPT does: step s uses the learning rate
`lr_at(s, cfg)` and its loss is `losses[s]`. An evaluation or a checkpoint "at step k" is taken
after k updates, i.e. just before step k runs; a checkpoint's `step` is therefore the next
step to run, and resuming from it continues exactly where the run stopped: on CPU a resumed
run is bit-identical to one that never stopped (the tests hold it so).

A checkpoint is a folder, `DIR/step-000120/`, holding
- model.safetensors: the weights (a tied tensor stored once);
- optimizer.pt: AdamW's state, plain tensors and numbers (read back with weights_only=True);
- rng.pt: torch's RNG states (CPU, and CUDA where there is one), plain tensors;
- state.json: the step, both configs, the data generator's state (the "data position"),
  Python's and NumPy's RNG states and the loss history;
- manifest.json, written last: the size and SHA-256 of every other file, so a truncated or
  corrupted file is named when loading, instead of failing somewhere deep inside torch.
The folder is written under a temporary name and renamed into place; then `DIR/latest`
(written atomically) is pointed at it. Until that moment `latest` names the previous,
complete checkpoint, so a crash during a save never costs more than the save itself.

Derived in chapters/07_pretraining.ipynb.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import numbers
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from lmcourse.atomic import _umask, write_atomic

__all__ = [
    "TrainConfig",
    "TokenData",
    "decay_groups",
    "make_optimizer",
    "lr_at",
    "evaluate",
    "StepInfo",
    "EvalInfo",
    "TrainResult",
    "LivePlot",
    "MetricsLog",
    "train",
    "Checkpoint",
    "CheckpointError",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model",
    "save_tokenizer",
    "load_tokenizer",
]

CHECKPOINT_FORMAT = "lmcourse-checkpoint 1"
LATEST = "latest"  # the file in a run folder that names its newest complete checkpoint
METRICS = "metrics.jsonl"
_FILES = ("model.safetensors", "optimizer.pt", "rng.pt", "state.json")  # manifest.json lists these


# ----------------------------------------------------------------------------- configuration

def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: every number the loop uses, validated on creation (errors name the field).

    steps: optimiser updates; each sees batch_size * grad_accum windows of block_size tokens
    (grad_accum micro-batches whose gradients add up to one batch's). lr: the peak learning
    rate, reached after warmup_steps of linear warm-up, then cosine decay to min_lr at
    lr_decay_steps (None: at `steps`), constant after. weight_decay applies to matrices only
    (see `decay_groups`); betas and eps are AdamW's. grad_clip: clip the global gradient norm
    to this (None: no clipping). Evaluate every eval_interval steps on eval_batches fixed val
    batches (0: never); log every log_interval steps; checkpoint every checkpoint_interval
    steps (0: only at the end) keeping the newest keep_checkpoints. seed: the data order, the
    val batches and torch's RNG (dropout). device: "auto" (`lmcourse.device()`), "cpu",
    "cuda", "cuda:N" or "mps". dtype: "auto" (bf16 autocast on CUDA, fp32 elsewhere),
    "fp32", or "bf16" (autocast on any device). compile: `torch.compile` the model.
    """

    steps: int = 1000
    batch_size: int = 16
    block_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    lr_decay_steps: int | None = None
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    eval_interval: int = 100
    eval_batches: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 0
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> ValueError:
            return ValueError(f"TrainConfig.{name} must be {want}, got {getattr(self, name)!r}")

        for name in ("steps", "batch_size", "block_size", "grad_accum", "eval_batches", "log_interval", "keep_checkpoints"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise bad(name, "an int >= 1")
        for name in ("warmup_steps", "eval_interval", "checkpoint_interval", "seed"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise bad(name, "an int >= 0")
        if self.lr_decay_steps is not None and (not _is_int(self.lr_decay_steps) or self.lr_decay_steps < 1):
            raise bad("lr_decay_steps", "None or an int >= 1")
        if self.warmup_steps > self.decay_steps:
            raise ValueError(
                f"TrainConfig.warmup_steps={self.warmup_steps} must be <= the decay end "
                f"{'lr_decay_steps' if self.lr_decay_steps is not None else 'steps'}={self.decay_steps}"
            )
        if not _is_real(self.lr) or self.lr <= 0:
            raise bad("lr", "a finite float > 0")
        if not _is_real(self.min_lr) or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"TrainConfig.min_lr must be in [0, lr={self.lr}], got {self.min_lr!r}")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            raise bad("weight_decay", "a finite float >= 0")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else self.betas
        if not (isinstance(betas, tuple) and len(betas) == 2 and all(_is_real(b) and 0 <= b < 1 for b in betas)):
            raise bad("betas", "two floats in [0, 1)")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))  # a JSON list comes back a tuple
        if not _is_real(self.eps) or self.eps <= 0:
            raise bad("eps", "a finite float > 0")
        if self.grad_clip is not None and (not _is_real(self.grad_clip) or self.grad_clip <= 0):
            raise bad("grad_clip", "None (no clipping) or a finite float > 0")
        dev = self.device
        if not isinstance(dev, str) or not (
            dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())
        ):
            raise bad("device", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        if self.dtype not in ("auto", "fp32", "bf16"):
            raise bad("dtype", "'auto', 'fp32' or 'bf16'")
        if not isinstance(self.compile, bool):
            raise bad("compile", "True or False")

    @property
    def decay_steps(self) -> int:
        """The step at which the cosine reaches min_lr: lr_decay_steps, or steps when that is None."""
        return self.steps if self.lr_decay_steps is None else self.lr_decay_steps

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.grad_accum * self.block_size

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """A TrainConfig from a dict (e.g. JSON); unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; the fields are {sorted(known)}")
        return cls(**d)


# Fields a resumed run may change: they do not alter what the updates compute.
_RESUMABLE_CHANGES = frozenset({
    "steps", "eval_interval", "eval_batches", "log_interval", "checkpoint_interval", "keep_checkpoints",
    "device", "dtype", "compile",
})


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        from lmcourse.environment import device

        return device()
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"TrainConfig.device={name!r} but CUDA is not available here (use 'auto' or 'cpu')")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"TrainConfig.device={name!r} but MPS is not available here (use 'auto' or 'cpu')")
    return dev


def _world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group this process trains in; (0, 1) alone.

    `lmcourse.distributed` starts the group (from torchrun's environment); `train` reads it
    here, so one loop serves one process and many (see lmcourse/distributed.py).
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _autocast(dev: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """bf16 autocast where asked, or by default on CUDA (its tensor cores); fp32 otherwise."""
    if dtype == "bf16" or (dtype == "auto" and dev.type == "cuda"):
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------- data

def _small_dtype(hi: int) -> np.dtype:
    return np.dtype(np.uint16) if hi < 2**16 else np.dtype(np.int32) if hi < 2**31 else np.dtype(np.int64)


class TokenData:
    """A token stream split once into train and val, and batches of random windows from it.

    `train` and `val` are 1-D integer NumPy arrays or `np.memmap`s (from `from_file`, for
    streams larger than memory: a batch reads only its windows). `from_ids(ids, val_fraction)`
    keeps the first 1 - val_fraction of the stream for training and the rest for validation,
    a fixed split with no window crossing it. A window is block_size + 1 consecutive tokens,
    the input and (shifted by one) the targets; its start is drawn uniformly by a seeded
    `np.random.Generator`, whose state is the data position a checkpoint keeps.
    """

    def __init__(self, train: np.ndarray, val: np.ndarray) -> None:
        for name, a in (("train", train), ("val", val)):
            if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype.kind not in "iu":
                got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"TokenData.{name} must be a 1-D integer NumPy array or memmap, got {got}")
            if a.size < 2:
                raise ValueError(f"TokenData.{name} holds {a.size} token(s); a window needs at least 2")
        self.train, self.val = train, val

    @classmethod
    def from_ids(cls, ids: Sequence[int] | np.ndarray | torch.Tensor, val_fraction: float = 0.1) -> "TokenData":
        """Split one stream of token ids: the first (1 - val_fraction) trains, the rest validates."""
        a = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise ValueError(f"ids must be one stream of integer token ids, got a {a.dtype} array of shape {a.shape}")
        if a.size and a.min() < 0:
            raise ValueError(f"token ids must be >= 0, got {int(a.min())}")
        a = a.astype(_small_dtype(int(a.max()) if a.size else 0), copy=False)
        return cls(*cls._split(a, val_fraction))

    @classmethod
    def from_file(cls, path: str | os.PathLike, dtype: Any = np.uint16, val_fraction: float = 0.1) -> "TokenData":
        """Memory-map a flat binary file of token ids (as written by `TokenData.write`) and split it."""
        path = Path(path)
        dtype = np.dtype(dtype)
        if dtype.kind not in "iu":
            raise ValueError(f"dtype must be an integer type, got {dtype}")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such token file")
        size = path.stat().st_size
        if size == 0 or size % dtype.itemsize:
            raise ValueError(f"{path}: {size} bytes is not a whole, non-zero number of {dtype} tokens "
                             f"({dtype.itemsize} bytes each): wrong dtype, or a truncated file?")
        return cls(*cls._split(np.memmap(path, dtype=dtype, mode="r"), val_fraction))

    @staticmethod
    def write(path: str | os.PathLike, ids: Sequence[int] | np.ndarray, dtype: Any = np.uint16) -> Path:
        """Write token ids to `path` as a flat binary file of `dtype` (atomically), for `from_file`."""
        a = np.asarray(ids)
        dtype = np.dtype(dtype)
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise ValueError(f"ids must be one stream of integer token ids, got a {a.dtype} array of shape {a.shape}")
        info = np.iinfo(dtype)
        if a.size and (a.min() < max(info.min, 0) or a.max() > info.max):
            raise ValueError(f"token ids {int(a.min())}..{int(a.max())} do not fit {dtype} (0..{info.max})")
        return write_atomic(path, a.astype(dtype).tobytes())

    @staticmethod
    def _split(a: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        if not _is_real(val_fraction) or not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        n_train = int(round(len(a) * (1 - val_fraction)))
        return a[:n_train], a[n_train:]

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.train if name == "train" else self.val

    def check_block_size(self, block_size: int) -> None:
        """Both splits must hold at least one window of block_size + 1 tokens."""
        for name in ("train", "val"):
            n = len(self.split(name))
            if n < block_size + 1:
                raise ValueError(f"the {name} split holds {n} tokens, fewer than one window of "
                                 f"block_size + 1 = {block_size + 1}: use more text or a smaller block_size")

    def windows(self, split: str, starts: np.ndarray, block_size: int) -> torch.Tensor:
        """The windows starting at `starts` (N,), as a LongTensor (N, block_size + 1) on the CPU."""
        a = self.split(split)
        idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(block_size + 1)  # (N, T + 1)
        return torch.from_numpy(np.asarray(a[idx], dtype=np.int64))

    def get_batch(self, split: str, rng: np.random.Generator, batch_size: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of random windows: inputs x (B, T) and next-token targets y (B, T), CPU LongTensors."""
        a = self.split(split)
        if len(a) < block_size + 1:
            self.check_block_size(block_size)
        w = self.windows(split, rng.integers(0, len(a) - block_size, size=batch_size), block_size)
        return w[:, :-1], w[:, 1:]

    def fingerprint(self) -> dict[str, Any]:
        """Sizes, dtype and a checksum of the first and last tokens: enough to refuse resuming on other data."""
        def ends(a: np.ndarray) -> str:
            return hashlib.sha256(np.ascontiguousarray(a[:4096]).tobytes() + np.ascontiguousarray(a[-4096:]).tobytes()).hexdigest()[:16]

        return {"train": len(self.train), "val": len(self.val), "dtype": str(self.train.dtype),
                "train_ends": ends(self.train), "val_ends": ends(self.val)}

    def __repr__(self) -> str:
        kind = "memmap" if isinstance(self.train, np.memmap) else "array"
        return f"TokenData({len(self.train)} train + {len(self.val)} val tokens, {self.train.dtype} {kind})"


# ----------------------------------------------------------------------------- optimiser and schedule

def decay_groups(model: nn.Module) -> tuple[list[str], list[str]]:
    """Split the parameter names into (decayed, not decayed) for AdamW's weight decay.

    The rule: decay every matrix (a parameter with 2 or more dimensions) except embedding
    tables; never decay vectors (biases, LayerNorm weights and biases). Decay pulls weights
    toward 0, which is a prior on the maps the matrices compute; for a bias or a LayerNorm
    gain, 0 is no sensible prior, and an embedding row that is seldom used would just shrink
    away between its rare updates. A tied lm_head is the embedding table itself, so it is not
    decayed either. Names are those of `named_parameters()` (a tied tensor appears once).
    Derived in chapters/07_pretraining.ipynb.
    """
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and id(p) not in embeddings else no_decay).append(name)
    return decay, no_decay


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over two groups, `decay_groups`' matrices with cfg.weight_decay and the rest with 0.

    Decoupled weight decay (Loshchilov & Hutter): each step shrinks a decayed weight by
    lr * weight_decay * w, apart from the Adam update, instead of adding the decay to the
    gradient. Uses PyTorch's fused kernel where the device has one (one kernel for all
    parameters; much faster than the per-tensor loop on CPU too).
    """
    decay, no_decay = decay_groups(model)
    params = dict(model.named_parameters())
    groups = [
        {"params": [params[n] for n in decay], "weight_decay": cfg.weight_decay},
        {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
    ]
    kwargs = dict(lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # no fused kernel for this device or dtype
        return torch.optim.AdamW(groups, **kwargs)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of step `step` (from 0): linear warm-up, cosine decay to a floor, then the floor.

    Warm-up: lr * (step + 1) / warmup_steps for step < warmup_steps, so step 0 already learns
    (lr / warmup_steps) and step warmup_steps - 1 reaches the peak lr. Then, with
    d = cfg.decay_steps, min_lr + (lr - min_lr) * (1 + cos(pi * (step - warmup_steps) /
    (d - warmup_steps))) / 2: the peak at step warmup_steps, min_lr at step d, and min_lr for
    every step after. Derived in chapters/07_pretraining.ipynb.
    """
    if not _is_int(step) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if step >= cfg.decay_steps:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / (cfg.decay_steps - cfg.warmup_steps)  # in [0, 1)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


# ----------------------------------------------------------------------------- evaluation

def _val_starts(data: TokenData, cfg: TrainConfig) -> np.ndarray:
    # its own generator, seeded from cfg.seed alone: the same windows at every call, and the
    # training data order is never touched
    rng = np.random.default_rng([cfg.seed, 1])
    return rng.integers(0, len(data.val) - cfg.block_size, size=(cfg.eval_batches, cfg.batch_size))


# What `train` and `evaluate` call on a data source other than TokenData (lmcourse.finetune.ExampleData):
# get_batch(split, rng, batch_size, block_size) -> a tuple of CPU tensors, batch first, that the model
# is called with, model(*batch) -> (logits, loss); check_block_size(block_size) raises on data that
# cannot fit; fingerprint() -> a JSON-able dict that a checkpoint keeps, to refuse resuming on other data.
_BATCH_SOURCE = ("get_batch", "check_block_size", "fingerprint")


def _val_batches(data: Any, cfg: TrainConfig, world: int = 1) -> Iterable[tuple[torch.Tensor, ...]]:
    """The fixed val batches of world * batch_size rows: TokenData's windows as (x, y), or a batch source's own."""
    if isinstance(data, TokenData):
        big = dataclasses.replace(cfg, batch_size=cfg.batch_size * world) if world > 1 else cfg
        for starts in _val_starts(data, big):
            w = data.windows("val", starts, cfg.block_size)
            yield w[:, :-1], w[:, 1:]
    else:  # the same seeded generator, its own draws
        rng = np.random.default_rng([cfg.seed, 1])
        for _ in range(cfg.eval_batches):
            yield data.get_batch("val", rng, cfg.batch_size * world, cfg.block_size)


@torch.no_grad()
def evaluate(model: nn.Module, data: TokenData, cfg: TrainConfig, *, distributed: bool = False) -> float:
    """The mean loss over cfg.eval_batches fixed val batches of (batch_size, block_size).

    The batches depend only on cfg.seed, so two calls on the same weights return the same
    number. Runs in eval mode (no dropout) on the model's own device, with cfg.dtype's
    autocast, and puts the model back in the mode it was in. distributed=True (every rank of
    the torch.distributed group must call it, as `train` does): the val batches are those of
    one process with the whole batch, W * batch_size windows; each rank evaluates its
    batch_size of each and the means are all-reduced, so every rank returns that number.
    """
    data.check_block_size(cfg.block_size)
    dev = next(model.parameters()).device
    rank, world = _world() if distributed else (0, 1)
    B = cfg.batch_size
    was_training = model.training
    model.eval()
    try:
        total = torch.zeros((), device=dev)
        with _autocast(dev, cfg.dtype):
            for batch in _val_batches(data, cfg, world):  # (W * B, ...) each: this rank's B rows
                _, loss = model(*(t[rank * B:(rank + 1) * B].to(dev, non_blocking=True) for t in batch))
                total += loss.float()
        if world > 1:
            torch.distributed.all_reduce(total)
            total /= world
        return total.item() / cfg.eval_batches
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------- results and errors

@dataclass(frozen=True)
class StepInfo:
    """What `on_step` and `on_log` callbacks get, after step `step` (from 0).

    loss: that step's loss (for on_log, the mean since the previous log); grad_norm: the
    gradient norm before clipping (nan without clipping); tokens_per_s: training throughput
    since the previous log (on_step: since the start of this session).
    """

    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    elapsed_s: float


@dataclass(frozen=True)
class EvalInfo:
    """What `on_eval` callbacks get: the mean val loss after `step` updates, and the last train loss."""

    step: int
    val_loss: float
    train_loss: float


@dataclass
class TrainResult:
    """The history of a run, across resumes: `losses[s]` is step s's train loss.

    val_steps / val_losses: each evaluation (after that many updates); grad_norms: per step,
    before clipping (nan without clipping); lrs: per step. step: updates done. tokens_per_s
    and wall_s: this session's training throughput (evaluation and saving excluded) and wall
    time. stopped: "done", "callback", "interrupted" or "nonfinite". checkpoint: the newest
    checkpoint folder, or None.
    """

    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    step: int = 0
    tokens_per_s: float = 0.0
    wall_s: float = 0.0
    stopped: str = "done"
    checkpoint: Path | None = None

    def _history(self) -> dict[str, Any]:
        return {"losses": self.losses, "grad_norms": self.grad_norms, "lrs": self.lrs,
                "val_steps": self.val_steps, "val_losses": self.val_losses}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupted, or not this run's. The message names the file."""


class NonFiniteLossError(FloatingPointError):
    """The loss became nan or inf: training stopped. `step` is the first bad step; `result` the run so far;
    `checkpoint` the last good checkpoint (None if there is none)."""

    def __init__(self, message: str, step: int, result: TrainResult, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.step, self.result, self.checkpoint = step, result, checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a KeyboardInterrupt from a callback) stopped training between two steps.

    A checkpoint of that moment was saved first when the run has an out_dir (`checkpoint`);
    `result` is the run so far. Subclasses KeyboardInterrupt, so it stops a script as Ctrl-C does.
    """

    def __init__(self, message: str, result: TrainResult, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.result, self.checkpoint = result, checkpoint


class _NonFinite(Exception):
    def __init__(self, step: int, what: str) -> None:
        self.step, self.what = step, what


# ----------------------------------------------------------------------------- checkpoints

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def _step_name(step: int) -> str:
    return f"step-{step:06d}"


def _checkpoint_folders(run_dir: Path) -> list[Path]:
    """The complete-looking checkpoint folders of a run, oldest first."""
    found = []
    for p in run_dir.glob("step-*"):
        if p.is_dir() and p.name[5:].isdigit():
            found.append((int(p.name[5:]), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint folder `run_dir/latest` names; None when the run has saved none yet.

    A `latest` that names a folder which is not there raises CheckpointError.
    """
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    path = run_dir / name
    if not name.startswith("step-") or "/" in name or not path.is_dir():
        raise CheckpointError(f"{pointer} names {name!r}, which is not a checkpoint folder in {run_dir}")
    return path


def _random_state() -> dict[str, Any]:
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"python": [version, list(mt), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_random_state(s: dict[str, Any]) -> None:
    version, mt, gauss = s["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = s["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _model_config(model: nn.Module) -> dict[str, Any] | None:
    cfg = getattr(model, "config", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else None


def _save_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig, *,
                     step: int, data_rng: np.random.Generator, data: TokenData, result: TrainResult,
                     world: int = 1, rank_rng: list[dict[str, torch.Tensor]] | None = None) -> Path:
    """Write the checkpoint of `step` into run_dir/step-NNNNNN, then point run_dir/latest at it.

    A data-parallel run saves from rank 0: `world` processes, and each rank's torch RNG states
    (`rank_rng`, gathered by `train`) so that every rank's dropout resumes where it was.
    """
    from safetensors.torch import save_model

    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob(".step-*.tmp"):  # left by a run killed mid-save
        shutil.rmtree(stale, ignore_errors=True)
    name = _step_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=run_dir))
    try:
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": CHECKPOINT_FORMAT, "step": str(step)})
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        if rank_rng is not None:
            rng["ranks"] = rank_rng
        torch.save(rng, tmp / "rng.pt")
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "train_config": cfg.to_dict(),
            "model_class": type(model).__name__,
            "model_config": _model_config(model),
            "data": {"fingerprint": data.fingerprint(), "rng": data_rng.bit_generator.state},
            "random": _random_state(),
            "history": result._history(),
            "world_size": world,
            "torch": torch.__version__,
        }
        (tmp / "state.json").write_text(json.dumps(state, allow_nan=True), encoding="utf-8")
        manifest = {"format": CHECKPOINT_FORMAT, "step": step,
                    "files": {f: {"bytes": (tmp / f).stat().st_size, "sha256": _sha256(tmp / f)} for f in _FILES}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        mask = _umask()  # mkdtemp and safetensors make private 0700 / 0600 entries: give the usual modes
        for f in (*_FILES, "manifest.json"):
            os.chmod(tmp / f, 0o666 & ~mask)
            _fsync(tmp / f)
        os.chmod(tmp, 0o777 & ~mask)
        _fsync(tmp)
        final = run_dir / name
        if final.exists():  # saving the same step again (a resumed run stopped at once): swap it out
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", suffix=".tmp", dir=run_dir))
            os.replace(final, old / name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_atomic(run_dir / LATEST, name + "\n")  # the commit point: from here on, this is the checkpoint
    for old in _checkpoint_folders(run_dir)[:-cfg.keep_checkpoints]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint folder: every file's size and SHA-256 matched its manifest.

    step: updates done (the next step to run); train_config; model_config (a GPTConfig's
    fields, or None for a model without a dataclass config); state: all of state.json.
    `model(device)` builds the GPT and loads the weights; the optimizer and RNG states are
    read by `train(..., resume=True)`.
    """

    path: Path
    step: int
    train_config: TrainConfig
    model_config: dict[str, Any] | None
    state: dict[str, Any]

    def load_weights(self, model: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
        """Copy the checkpoint's weights into `model` (its parameters keep their device)."""
        from safetensors.torch import load_model as st_load_model

        file = self.path / "model.safetensors"
        try:
            missing, unexpected = st_load_model(model, file, strict=False, device=str(device))
        except Exception as e:  # safetensors' own errors have no common base class
            raise CheckpointError(f"{file}: cannot load into {type(model).__name__}: {e}") from None
        if missing or unexpected:
            raise CheckpointError(f"{file}: does not fit {type(model).__name__}: missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]}")
        return model

    def model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The GPT this checkpoint holds, on `device`, in eval mode."""
        from lmcourse.model import GPT, GPTConfig

        if self.state.get("model_class") != "GPT" or self.model_config is None:
            raise CheckpointError(f"{self.path / 'state.json'}: holds a {self.state.get('model_class')!r}, "
                                  "not a GPT; build the model yourself and use load_weights")
        model = GPT(GPTConfig(**self.model_config)).to(device)
        return self.load_weights(model, device).eval()

    def _torch_file(self, name: str, device: torch.device | str = "cpu") -> Any:
        file = self.path / name
        try:
            return torch.load(file, map_location=device, weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{file}: cannot be read: {e}") from None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Verify and open a checkpoint: a run folder (its `latest`) or one `step-NNNNNN` folder.

    Every file is checked against manifest.json (present, its size, its SHA-256) before any
    is parsed, so a truncated or corrupted checkpoint raises CheckpointError naming the file,
    and nothing is loaded from it.
    """
    path = Path(path)
    if (path / LATEST).is_file():
        path = latest_checkpoint(path)  # type: ignore[assignment]
    elif not (path / "manifest.json").exists():
        if not path.exists():
            raise CheckpointError(f"{path}: no such checkpoint or run folder")
        raise CheckpointError(f"{path}: no checkpoint here (neither a '{LATEST}' file nor a manifest.json)")
    manifest_file = path / "manifest.json"
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != CHECKPOINT_FORMAT or not isinstance(files, dict):
            raise ValueError(f"not a {CHECKPOINT_FORMAT!r} manifest")
    except FileNotFoundError:
        raise CheckpointError(f"{manifest_file}: missing (the checkpoint was never completed)") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{manifest_file}: corrupted ({e})") from None
    for name in _FILES:
        file = path / name
        if name not in files:
            raise CheckpointError(f"{manifest_file}: does not list {name} (corrupted manifest)")
        if not file.is_file():
            raise CheckpointError(f"{file}: missing")
        size, want = file.stat().st_size, files[name].get("bytes")
        if size != want:
            raise CheckpointError(f"{file}: truncated or damaged: {size} bytes, the manifest says {want}")
        if _sha256(file) != files[name].get("sha256"):
            raise CheckpointError(f"{file}: corrupted: its SHA-256 does not match the manifest")
    state_file = path / "state.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        cfg = TrainConfig.from_dict(state["train_config"])
        step = state["step"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{state_file}: unreadable ({e})") from None
    return Checkpoint(path=path, step=step, train_config=cfg, model_config=state.get("model_config"), state=state)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The GPT saved in a checkpoint (a run folder or a step folder), on `device`, in eval mode."""
    return load_checkpoint(path).model(device)


# Tokenizers beside the checkpoints: a run folder holds everything `lmcourse generate` needs.

def save_tokenizer(tokenizer: Any, run_dir: str | os.PathLike) -> Path:
    """Save a CharTokenizer (tokenizer.json) or BPETokenizer (tokenizer.bpe) into run_dir, atomically."""
    from lmcourse.tokenizers import BPETokenizer, CharTokenizer

    run_dir = Path(run_dir)
    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.save(run_dir / "tokenizer.bpe")
    if isinstance(tokenizer, CharTokenizer):
        doc = {"format": "lmcourse-char 1", "chars": tokenizer.itos}
        return write_atomic(run_dir / "tokenizer.json", json.dumps(doc, ensure_ascii=False) + "\n")
    raise ValueError(f"can save a CharTokenizer or a BPETokenizer, got {type(tokenizer).__name__}")


def load_tokenizer(run_dir: str | os.PathLike) -> Any:
    """The tokenizer `save_tokenizer` wrote into run_dir (ValueError naming the file when it is bad)."""
    from lmcourse.tokenizers import BPETokenizer, CharTokenizer

    run_dir = Path(run_dir)
    if (run_dir / "tokenizer.bpe").is_file():
        return BPETokenizer.load(run_dir / "tokenizer.bpe")
    file = run_dir / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"{run_dir}: no tokenizer.bpe or tokenizer.json")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        if doc.get("format") != "lmcourse-char 1" or not isinstance(doc.get("chars"), list):
            raise ValueError("not an 'lmcourse-char 1' tokenizer")
        return CharTokenizer(doc["chars"])
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: {e}") from None


# ----------------------------------------------------------------------------- what the user sees

def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where a figure can be displayed and updated in place)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _display(obj: Any) -> Any:
    from IPython.display import display

    return display(obj, display_id=True)


class LivePlot:
    """One figure of train and val loss, redrawn in place in a notebook.

    `train(..., plot=True)` adds one inside a Jupyter kernel (never elsewhere). The figure
    is a PNG shown through an IPython display handle, so each update replaces the previous
    image instead of adding one; it is redrawn at most every `min_interval_s` seconds and
    at each evaluation, and once more at the end, so the notebook keeps the final figure.
    """

    def __init__(self, min_interval_s: float = 1.0, title: str = "training") -> None:
        self.min_interval_s = min_interval_s
        self.title = title
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self._handle: Any = None
        self._last = -math.inf

    def figure(self):
        """The figure as it stands (a matplotlib Figure, no pyplot: nothing is shown by itself)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.0, 3.6), dpi=90)
        ax = fig.add_subplot()
        if self.train:
            ax.plot(*zip(*self.train), label="train", lw=1)
        if self.val:
            ax.plot(*zip(*self.val), "o-", label="val", ms=3)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(self.title)
        if self.train or self.val:
            ax.legend()
        fig.tight_layout()
        return fig

    def png(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.figure().savefig(buf, format="png")
        return buf.getvalue()

    def draw(self) -> None:
        from IPython.display import Image

        image = Image(data=self.png(), format="png")
        if self._handle is None:
            self._handle = _display(image)
        else:
            self._handle.update(image)
        self._last = time.perf_counter()

    def on_log(self, info: StepInfo) -> None:
        self.train.append((info.step + 1, info.loss))  # after step s, s + 1 updates are done: the val axis
        if time.perf_counter() - self._last >= self.min_interval_s:
            self.draw()

    def on_eval(self, info: EvalInfo) -> None:
        self.val.append((info.step, info.val_loss))
        self.draw()

    def on_end(self, result: TrainResult) -> None:
        self.draw()


class MetricsLog:
    """Append one JSON line per log (step, loss, lr, grad_norm, tokens_per_s) and per evaluation (step, val_loss).

    `train` keeps one in every run folder (`metrics.jsonl`). On resume, lines from after the
    checkpoint (written by the run that was interrupted) are dropped first, so the log reads
    like that of a run that never stopped.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by the crash
                # a train line's step is the update it follows (< resume_step); an eval's the updates done (<= it)
                if rec.get("step", 0) < resume_step or ("val_loss" in rec and rec["step"] == resume_step):
                    kept.append(line)
            write_atomic(self.path, "".join(line + "\n" for line in kept))
        elif resume_step is None:
            write_atomic(self.path, "")
        self._file = open(self.path, "a", encoding="utf-8")

    def _write(self, rec: dict[str, Any]) -> None:
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()

    def on_log(self, info: StepInfo) -> None:
        self._write({"step": info.step, "loss": info.loss, "lr": info.lr, "grad_norm": info.grad_norm,
                     "tokens_per_s": round(info.tokens_per_s, 1), "elapsed_s": round(info.elapsed_s, 3)})

    def on_eval(self, info: EvalInfo) -> None:
        self._write({"step": info.step, "val_loss": info.val_loss})

    def on_end(self, result: TrainResult) -> None:
        self._file.close()


class _StopRequest:
    """Ctrl-C during training: the first press asks the loop to stop after the current step (and
    save); a second press interrupts at once, as Ctrl-C normally does."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step and saving a checkpoint (press again to stop at once, unsaved)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# ----------------------------------------------------------------------------- the loop

def _callbacks_for(callbacks: Iterable[Any], event: str) -> list[Any]:
    return [getattr(cb, event) for cb in callbacks if callable(getattr(cb, event, None))]


def _resume(ck: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
            data: TokenData, dev: torch.device) -> tuple[np.random.Generator, TrainResult]:
    """Load a checkpoint into the model and optimiser and restore every RNG; refuse one from another run."""
    old = ck.train_config.to_dict()
    new = cfg.to_dict()
    changed = [f"{k} ({old[k]!r} -> {new[k]!r})" for k in new if k not in _RESUMABLE_CHANGES and old[k] != new[k]]
    if changed:
        raise CheckpointError(f"{ck.path}: was trained with other settings: {', '.join(changed)}; "
                              f"only {sorted(_RESUMABLE_CHANGES)} may change on resume")
    if ck.model_config is not None and ck.model_config != _model_config(model):
        mc = _model_config(model) or {}
        diff = [f"{k} ({v!r} -> {mc.get(k)!r})" for k, v in ck.model_config.items() if mc.get(k) != v]
        raise CheckpointError(f"{ck.path}: holds a model with another config: {', '.join(diff)}")
    if ck.state["data"]["fingerprint"] != data.fingerprint():
        raise CheckpointError(f"{ck.path}: was trained on other data ({ck.state['data']['fingerprint']}, "
                              f"now {data.fingerprint()})")
    rank, world = _world()
    if ck.state.get("world_size", 1) != world:  # each rank's batch_size windows: another count is another batch
        raise CheckpointError(f"{ck.path}: was trained by {ck.state.get('world_size', 1)} process(es), now {world}: "
                              "the batch of every step would change; resume with the same number of processes")
    ck.load_weights(model, dev)
    try:
        optimizer.load_state_dict(ck._torch_file("optimizer.pt", dev))
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{ck.path / 'optimizer.pt'}: does not fit this optimiser: {e}") from None
    rng = ck._torch_file("rng.pt")
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    if "ranks" in rng:  # a data-parallel run: this rank's own dropout stream
        torch.set_rng_state(rng["ranks"][rank]["torch"])
        if "cuda" in rng["ranks"][rank] and dev.type == "cuda":
            torch.cuda.set_rng_state(rng["ranks"][rank]["cuda"], dev)
    _set_random_state(ck.state["random"])
    data_rng = np.random.default_rng(cfg.seed)
    data_rng.bit_generator.state = ck.state["data"]["rng"]
    h = ck.state["history"]
    result = TrainResult(losses=h["losses"], grad_norms=h["grad_norms"],
                         lrs=h["lrs"], val_steps=h["val_steps"], val_losses=h["val_losses"], step=ck.step)
    return data_rng, result


def train(
    model: nn.Module,
    data: TokenData,
    cfg: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    callbacks: Sequence[Any] = (),
    *,
    resume: bool = False,
    progress: bool = True,
    plot: bool = True,
) -> TrainResult:
    """Train `model` on `data` for cfg.steps AdamW updates; the one loop the course uses.

    model: any module whose forward(x, targets) returns (logits, loss), such as
    `lmcourse.model.GPT`; it is moved to cfg.device and trained in place. data: a TokenData,
    or any batch source with get_batch, check_block_size and fingerprint (fine-tuning's
    `lmcourse.finetune.ExampleData`: labelled examples; the model is called as model(*batch)).
    Each step draws batch_size * grad_accum random windows from data.train, accumulates the micro-batches'
    gradients, clips their norm to cfg.grad_clip, and takes one AdamW step at `lr_at(step)`.
    Every cfg.eval_interval steps (and at the start and end) `evaluate` measures the val loss; a
    resumed run first takes the evaluation due at its start step if the checkpoint lacks it.

    out_dir: a run folder for checkpoints (every cfg.checkpoint_interval steps and at the
    end), metrics.jsonl and, from the CLI, the tokenizer. A folder that already holds a
    checkpoint is refused unless resume=True, which continues it (a fresh process will do).
    callbacks: objects with any of on_step(StepInfo) (every step; costs a device sync on a
    GPU), on_log(StepInfo) (every cfg.log_interval steps), on_eval(EvalInfo), on_end(TrainResult);
    on_step, on_log or on_eval returning True stops training after that step (saved, as at the end).
    progress: a tqdm bar on stderr (loss, tokens/s); plot: in a Jupyter kernel, a live loss figure.

    Returns a TrainResult. A nan or inf loss raises NonFiniteLossError naming the step, and
    saves nothing: the last good checkpoint stays the newest. Ctrl-C, or a KeyboardInterrupt
    raised by a callback, lets the current step finish (its log line, evaluation and checkpoint
    included), saves a checkpoint and raises TrainingInterrupted; resuming from it gives the
    metrics log of a run that never stopped.

    Data-parallel: run in every process of a torch.distributed group (`lmcourse.distributed`
    starts one; `lmcourse train --nproc N`), the same call trains one DistributedDataParallel
    replica per rank. cfg.batch_size is per rank: every rank draws the same batch_size *
    grad_accum * W windows and keeps its share of each micro-batch, so W ranks see exactly the
    windows one process with W times the batch sees, and DDP averages their gradients. Losses
    and val losses are all-reduced (every rank returns the same TrainResult); rank 0 alone writes
    checkpoints, metrics.jsonl and the progress bar; a Ctrl-C on any rank stops all after the same
    step. Derived in chapters/07_pretraining.ipynb (data parallelism: chapters/13_compute_scaling.ipynb).
    """
    from tqdm.auto import tqdm

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, TokenData) and not all(callable(getattr(data, m, None)) for m in _BATCH_SOURCE):
        raise ValueError(f"data must be a TokenData or a batch source with {', '.join(_BATCH_SOURCE)} "
                         f"(such as lmcourse.finetune.ExampleData), got {type(data).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    model_block = getattr(getattr(model, "config", None), "block_size", None)
    if model_block is not None and cfg.block_size > model_block:
        raise ValueError(f"TrainConfig.block_size={cfg.block_size} is longer than the model's context "
                         f"block_size={model_block}")
    data.check_block_size(cfg.block_size)
    run_dir = None if out_dir is None else Path(out_dir)
    if resume and run_dir is None:
        raise ValueError("resume=True needs the out_dir of the run to continue")
    found = None if run_dir is None else latest_checkpoint(run_dir)
    if run_dir is not None and found is not None and not resume:
        raise ValueError(f"{run_dir} already holds a run (checkpoint {found.name}): pass resume=True to continue "
                         "it, or choose another out_dir")
    if resume and found is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from")
    ck = load_checkpoint(found) if found is not None else None  # verify before touching anything

    dev = _resolve_device(cfg.device)
    rank, world = _world()
    if world > 1 and dev.type not in ("cpu", "cuda"):
        raise ValueError(f"data-parallel training runs on CPU (gloo) or CUDA (nccl), not {dev.type}: use device='cpu'")
    model.to(dev)
    model.train()
    optimizer = make_optimizer(model, cfg)
    if ck is not None:
        data_rng, result = _resume(ck, model, optimizer, cfg, data, dev)
    else:
        torch.manual_seed(cfg.seed + rank)  # dropout draws from torch's global RNG: its own stream per rank
        data_rng, result = np.random.default_rng(cfg.seed), TrainResult()
    start = result.step
    step_model = eval_model = torch.compile(model) if cfg.compile else model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # copies rank 0's weights to every rank, then averages the gradients during backward;
        # evaluation uses the bare model (it all-reduces its own sums)
        step_model = DistributedDataParallel(step_model)
    tokens_per_step = cfg.tokens_per_step * world
    autocast = _autocast(dev, cfg.dtype)
    params = [p for p in model.parameters() if p.requires_grad]

    callbacks = list(callbacks)
    if run_dir is not None and rank == 0:
        callbacks.append(MetricsLog(run_dir / METRICS, resume_step=start if ck is not None else None))
    if plot and rank == 0 and _in_notebook():
        callbacks.append(LivePlot())
    on_step, on_log, on_eval = (_callbacks_for(callbacks, e) for e in ("on_step", "on_log", "on_eval"))

    B, T, K = cfg.batch_size, cfg.block_size, cfg.grad_accum
    # per-step numbers stay on the device until a log point reads them: no sync every step
    loss_buf = torch.zeros(cfg.steps, device=dev)
    norm_buf = torch.full((cfg.steps,), float("nan"), device=dev)
    synced = start  # losses[:synced] are in `result`
    saved_at = ck.step if ck is not None else None
    last_good = ck.path if ck is not None else None
    session_t0 = time.perf_counter()
    busy = 0.0  # seconds spent evaluating, saving and in callbacks: not training throughput
    log_t, log_busy, log_step = session_t0, 0.0, start  # the previous log in this session: throughput since

    def sync(upto: int) -> None:
        nonlocal synced
        if upto <= synced:
            return
        losses = loss_buf[synced:upto].tolist()
        norms = norm_buf[synced:upto].tolist()
        for i, v in enumerate(losses):
            if not math.isfinite(v):
                result.losses.extend(losses[:i])
                result.grad_norms.extend(norms[:i])
                result.lrs.extend(lr_at(s, cfg) for s in range(synced, synced + i))
                raise _NonFinite(synced + i, f"the loss is {v}")
        result.losses.extend(losses)
        result.grad_norms.extend(norms)
        result.lrs.extend(lr_at(s, cfg) for s in range(synced, upto))
        synced = upto

    def throughput(now: float) -> float:
        trained = now - session_t0 - busy
        return (result.step - start) * tokens_per_step / trained if trained > 0 else 0.0

    def call(cbs: list[Any], info: Any) -> bool:
        """Run every callback; True when one asks to stop. A KeyboardInterrupt from one is Ctrl-C's
        first press: the step's logging, evaluation and checkpoint still happen (so a resumed run's
        log equals a straight run's), then the loop stops and saves. A second one stops at once."""
        stop = False
        for cb in cbs:
            try:
                stop |= bool(cb(info))
            except KeyboardInterrupt:
                if ctrl_c.requested:
                    raise
                ctrl_c.requested = True
        return stop

    def run_eval() -> bool:
        nonlocal busy
        t = time.perf_counter()
        val = evaluate(eval_model, data, cfg, distributed=world > 1)
        model.train()
        result.val_steps.append(result.step)
        result.val_losses.append(val)
        info = EvalInfo(step=result.step, val_loss=val, train_loss=result.losses[-1] if result.losses else float("nan"))
        stop = call(on_eval, info)
        busy += time.perf_counter() - t
        return stop

    def save() -> None:
        nonlocal busy, saved_at, last_good
        if run_dir is None or saved_at == result.step:
            return
        t = time.perf_counter()
        with torch.no_grad():
            bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
        if bad:  # finite losses but the last update broke the weights: keep the last good checkpoint
            raise _NonFinite(result.step - 1, f"the weights hold nan or inf ({', '.join(bad[:3])})")
        if world == 1:
            result.checkpoint = _save_checkpoint(run_dir, model, optimizer, cfg, step=result.step, data_rng=data_rng,
                                                 data=data, result=result)
        else:  # every rank holds the same weights, optimiser state and data position: rank 0 writes them
            rank_rng: list[Any] = [None] * world
            mine = {"torch": torch.get_rng_state()}
            if dev.type == "cuda":
                mine["cuda"] = torch.cuda.get_rng_state(dev)
            torch.distributed.all_gather_object(rank_rng, mine)
            failed = None
            if rank == 0:
                try:
                    result.checkpoint = _save_checkpoint(run_dir, model, optimizer, cfg, step=result.step,
                                                         data_rng=data_rng, data=data, result=result, world=world,
                                                         rank_rng=rank_rng)
                except Exception as e:
                    failed = e
            # the others wait here until rank 0 has saved, and learn whether it could
            ok = torch.tensor([0 if failed is not None else 1], device=dev)
            torch.distributed.broadcast(ok, src=0)
            if failed is not None:
                raise failed
            if not ok.item():
                raise OSError(f"rank 0 could not save the checkpoint of step {result.step} into {run_dir}")
            result.checkpoint = run_dir / _step_name(result.step)
        saved_at, last_good = result.step, result.checkpoint
        busy += time.perf_counter() - t

    bar = tqdm(total=cfg.steps, initial=start, disable=not progress or rank != 0, file=sys.stderr, unit="step",
               dynamic_ncols=True, desc="train")
    in_step = False
    try:
        with _StopRequest() as ctrl_c:
            stop = ""
            # the evaluation due after `start` updates, unless it is in the history already: at the start
            # of a run, or on resuming from a checkpoint saved without it (interrupted during that
            # evaluation); a straight run evaluates there, so a resumed one must too
            due = cfg.eval_interval and (start % cfg.eval_interval == 0 or start == cfg.steps)
            if due and not (result.val_steps and result.val_steps[-1] == start):
                stop = "callback" if run_eval() else ""
            while result.step < cfg.steps and not stop:
                in_step = True
                s = result.step
                lr = lr_at(s, cfg)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                # all B * K windows at once: K micro-batches draw exactly the windows of one big batch.
                # Data-parallel, every rank draws all W * B * K (one data position for all) and keeps
                # its B of each micro-batch: W ranks see exactly what one process with batch W * B sees
                # TokenData: (x, y), each (B * K * W, T), the same draws as windows(starts); a batch
                # source: its own tuple, batch first
                batch = data.get_batch("train", data_rng, B * K * world, T)
                if world > 1:
                    batch = tuple(t.reshape(K, world, B, *t.shape[1:])[:, rank].reshape(K * B, *t.shape[1:]) for t in batch)
                if dev.type == "cuda":
                    batch = tuple(t.pin_memory().to(dev, non_blocking=True) for t in batch)
                loss_sum = None
                for k in range(K):
                    part = tuple(t[k * B:(k + 1) * B] for t in batch)  # TokenData: x, y (B, T)
                    # DDP all-reduces the gradients in the last micro-batch's backward only
                    with step_model.no_sync() if world > 1 and k < K - 1 else contextlib.nullcontext():
                        with autocast:
                            _, loss = step_model(*part)
                        (loss / K if K > 1 else loss).backward()
                    loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
                if cfg.grad_clip is not None:
                    norm_buf[s] = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                loss_step = loss_sum / K if K > 1 else loss_sum
                if world > 1:
                    # the loss over all ranks' windows (one process's number), and a Ctrl-C seen by any
                    # rank stops every rank after this same step (one sync per step, data-parallel only)
                    both = torch.stack([loss_step.float(), torch.tensor(float(ctrl_c.requested), device=dev)])
                    torch.distributed.all_reduce(both)
                    loss_step = both[0] / world
                    ctrl_c.requested = bool(both[1].item() > 0)
                # every rank agrees on this; a stop asked later in the step (by a callback on one rank)
                # waits for the next step's all-reduce, so that all ranks stop after the same step
                stop_agreed = ctrl_c.requested
                loss_buf[s] = loss_step
                result.step = s + 1
                in_step = False

                if on_step:
                    sync(s + 1)
                    t = time.perf_counter()
                    info = StepInfo(s, result.losses[s], lr, result.grad_norms[s], throughput(t), t - session_t0)
                    if call(on_step, info):
                        stop = "callback"
                    busy += time.perf_counter() - t
                if s % cfg.log_interval == 0 or s == cfg.steps - 1:
                    sync(s + 1)
                    now = time.perf_counter()
                    prev = (s - 1) // cfg.log_interval * cfg.log_interval if s else -1  # the previous log: same windows after a resume
                    window = result.losses[prev + 1:s + 1]
                    trained = now - log_t - (busy - log_busy)
                    info = StepInfo(s, sum(window) / len(window), lr, result.grad_norms[s],
                                    (s + 1 - log_step) * tokens_per_step / trained if trained > 0 else 0.0,
                                    now - session_t0)
                    bar.set_postfix(loss=f"{info.loss:.4f}", tok_s=f"{info.tokens_per_s:,.0f}", refresh=False)
                    bar.update(s + 1 - bar.n)
                    t = time.perf_counter()
                    if call(on_log, info):
                        stop = "callback"
                    busy += time.perf_counter() - t
                    log_t, log_busy, log_step = time.perf_counter(), busy, s + 1
                if cfg.eval_interval and (result.step % cfg.eval_interval == 0 or result.step == cfg.steps):
                    sync(result.step)
                    if run_eval():
                        stop = "callback"
                if run_dir is not None and cfg.checkpoint_interval and result.step % cfg.checkpoint_interval == 0:
                    sync(result.step)
                    save()
                if ctrl_c.requested if world == 1 else stop_agreed:
                    raise KeyboardInterrupt
            sync(result.step)
            save()
            result.checkpoint = last_good
            result.stopped = stop or "done"
    except _NonFinite as e:
        result.stopped = "nonfinite"
        result.checkpoint = last_good
        where = (f"the last good checkpoint, {last_good}, is kept" if last_good is not None
                 else "no checkpoint was saved" + ("" if run_dir is not None else " (no out_dir)"))
        raise NonFiniteLossError(
            f"training stopped: {e.what} at step {e.step} (lr {lr_at(e.step, cfg):.3g}); {where}. "
            "Lower the learning rate, or check the data and the model.", e.step, result, last_good) from None
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        if in_step:  # interrupted mid-update: the state is half a step, so it is not saved
            result.checkpoint = last_good
            raise
        try:
            sync(result.step)
            save()
        except _NonFinite:
            pass
        result.checkpoint = last_good
        where = f"checkpoint saved: {last_good}" if last_good is not None else "nothing saved (no out_dir)"
        raise TrainingInterrupted(f"training interrupted after step {result.step - 1}; {where}",
                                  result, last_good) from None
    finally:
        bar.close()
        session = time.perf_counter() - session_t0
        result.wall_s = session
        trained = session - busy
        result.tokens_per_s = (len(result.losses) - start) * tokens_per_step / trained if trained > 0 else 0.0
        for cb in _callbacks_for(callbacks, "on_end"):
            cb(result)
    return result
