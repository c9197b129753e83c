"""The course's shipped model: a tiny GPT pretrained on the story-world corpus, with its BPE tokenizer.

Chapters after 07 start from a trained model instead of training one: `story_gpt()` is the
GPT (eval mode), `story_tokenizer()` its tokenizer, `story_info()` the record written with
them (configs, val loss, training time, the SHA-256 of the weights).

It is built by the project's own training command from a committed config, `make model`:

    lmcourse train --config lmcourse/checkpoints/story_tiny.json --out build/story_tiny
    python -m lmcourse.pretrained build/story_tiny

The second line (`export`) copies the run's final weights and tokenizer into
lmcourse/checkpoints/story_tiny/ and records the val loss, measured again on the CPU on the
run's own fixed held-out batches (`story_val_loss` repeats that measurement; a test holds the
shipped weights to the recorded figure). Only the weights travel, not the optimiser's
state, so the package stays small (about 3.6 MB); to continue training, use the run folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from lmcourse.atomic import write_atomic

__all__ = ["STORY_CONFIG", "STORY_DIR", "story_gpt", "story_tokenizer", "story_info", "story_val_data",
           "story_val_loss", "export"]

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
STORY_CONFIG = CHECKPOINTS / "story_tiny.json"  # what `make model` trains from
STORY_DIR = CHECKPOINTS / "story_tiny"  # what it ships: model.safetensors, tokenizer.bpe, model.json
FORMAT = "lmcourse-pretrained 1"
_WEIGHTS, _TOKENIZER, _RECORD = "model.safetensors", "tokenizer.bpe", "model.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def story_info(folder: str | os.PathLike = STORY_DIR) -> dict[str, Any]:
    """The record written with the shipped model (model.json): model_config, train_config, run
    (corpus, tokenizer, val_fraction), step, val_loss, train_wall_s, tokens_per_s, sha256, bytes, torch."""
    file = Path(folder) / _RECORD
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing; `make model` builds the shipped model")
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"{file}: not a {FORMAT!r} record")
    return info


def story_gpt(device: str | torch.device = "cpu", folder: str | os.PathLike = STORY_DIR):
    """The shipped GPT, on `device`, in eval mode; its weights are checked against the record's SHA-256 first."""
    from safetensors.torch import load_model

    from lmcourse.model import GPT, GPTConfig

    folder = Path(folder)
    info = story_info(folder)
    weights = folder / _WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing; `make model` builds the shipped model")
    if _sha256(weights) != info["sha256"]:
        raise ValueError(f"{weights}: corrupted or replaced: its SHA-256 does not match {folder / _RECORD}; "
                         "`make model` rebuilds both")
    model = GPT(GPTConfig(**info["model_config"]))
    missing, unexpected = load_model(model, weights, strict=False, device=str(device))
    if missing or unexpected:
        raise ValueError(f"{weights}: does not fit GPT({info['model_config']}): missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model.to(device).eval()


def story_tokenizer(folder: str | os.PathLike = STORY_DIR):
    """The shipped model's BPE tokenizer (a `lmcourse.tokenizers.BPETokenizer`)."""
    from lmcourse.tokenizers import BPETokenizer

    file = Path(folder) / _TOKENIZER
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing; `make model` builds the shipped model")
    return BPETokenizer.load(file)


def story_val_data(folder: str | os.PathLike = STORY_DIR):
    """The run's data as it was split for training (`TokenData`): the corpus, encoded by the shipped tokenizer."""
    from lmcourse.cli import _train_text
    from lmcourse.training import TokenData

    run = story_info(folder)["run"]
    ids = story_tokenizer(folder).encode(_train_text(run["corpus"]))
    return TokenData.from_ids(ids, val_fraction=run["val_fraction"])


def story_val_loss(model: torch.nn.Module | None = None, folder: str | os.PathLike = STORY_DIR, data: Any = None) -> float:
    """The mean loss over the run's fixed held-out batches (its final evaluation), on the CPU in fp32.

    model: the shipped GPT when None. The batches are those `lmcourse.training.evaluate`
    draws from the run's TrainConfig (its seed, eval_batches, batch_size, block_size).
    """
    from lmcourse.training import TrainConfig, evaluate

    info = story_info(folder)
    cfg = dataclasses.replace(TrainConfig.from_dict(info["train_config"]), device="cpu", dtype="fp32")
    model = story_gpt("cpu", folder) if model is None else model
    return evaluate(model, story_val_data(folder) if data is None else data, cfg)


def export(run_dir: str | os.PathLike, dest: str | os.PathLike = STORY_DIR) -> dict[str, Any]:
    """Copy a finished `lmcourse train` run (a BPE one) into `dest` as the shipped model; returns the record.

    Writes model.safetensors and tokenizer.bpe, then model.json (last: it names the weights'
    SHA-256, so a half-written export does not load). The val loss is measured here, on the CPU.
    """
    from lmcourse.training import load_checkpoint

    run_dir, dest = Path(run_dir), Path(dest)
    ck = load_checkpoint(run_dir)  # verified against its manifest
    if ck.step != ck.train_config.steps:
        raise ValueError(f"{ck.path}: step {ck.step} of {ck.train_config.steps}: the run is not finished "
                         "(lmcourse train --resume finishes it)")
    run_file = run_dir / "run.json"
    if not (run_dir / _TOKENIZER).is_file() or not run_file.is_file():
        raise ValueError(f"{run_dir}: needs {_TOKENIZER} and run.json (a run folder of `lmcourse train --tokenizer bpe`)")
    run = json.loads(run_file.read_text(encoding="utf-8"))
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / (_WEIGHTS + ".tmp")
    shutil.copyfile(ck.path / _WEIGHTS, tmp)
    os.replace(tmp, dest / _WEIGHTS)
    write_atomic(dest / _TOKENIZER, (run_dir / _TOKENIZER).read_bytes())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()] if (run_dir / "metrics.jsonl").is_file() else []
    wall = max((m.get("elapsed_s", 0.0) for m in metrics), default=None)
    speeds = [m["tokens_per_s"] for m in metrics if "tokens_per_s" in m]
    info = {
        "format": FORMAT,
        "model_config": ck.model_config,
        "train_config": ck.train_config.to_dict(),
        "run": {"corpus": run["corpus"], "tokenizer": run["tokenizer"], "val_fraction": run["val_fraction"]},
        "step": ck.step,
        "train_val_loss": ck.state["history"]["val_losses"][-1] if ck.state["history"]["val_losses"] else None,
        "train_wall_s": wall,
        "tokens_per_s": sorted(speeds)[len(speeds) // 2] if speeds else None,  # the median log window
        "torch": torch.__version__,
        "val_threads": torch.get_num_threads(),  # the threads the val loss below was measured with
        "bytes": (dest / _WEIGHTS).stat().st_size,
        "sha256": _sha256(dest / _WEIGHTS),
    }
    write_atomic(dest / _RECORD, json.dumps({**info, "val_loss": None}, indent=1) + "\n")  # so the loaders work
    t = time.perf_counter()
    info["val_loss"] = story_val_loss(folder=dest)
    info["val_eval_s"] = round(time.perf_counter() - t, 2)
    write_atomic(dest / _RECORD, json.dumps(info, indent=1) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    """`python -m lmcourse.pretrained RUN_DIR [DEST]`: export a finished run as the shipped model."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print("usage: python -m lmcourse.pretrained RUN_DIR [DEST]", file=sys.stderr)
        return 2
    try:
        info = export(*argv)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    dest = Path(argv[1]) if len(argv) == 2 else STORY_DIR
    total = sum(p.stat().st_size for p in dest.iterdir() if p.is_file())
    print(f"{dest}: step {info['step']}, val loss {info['val_loss']:.4f}, {total / 1e6:.2f} MB in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
