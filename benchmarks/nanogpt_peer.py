"""nanoGPT's own CPU run beside lmcourse's recipe, both measured on the same 200 val batches.

`train_cpu.py`'s val target (<= 1.89) quotes the best-known minimal implementation, nanoGPT,
at about 1.886. That figure is nanoGPT's own estimate: the mean over 20 *random* val batches.
This script runs nanoGPT itself, from a checkout you already have (nothing is downloaded),
with its README's CPU command on the same Tiny Shakespeare split, then loads the checkpoint
it wrote after its 2000 iterations and measures it as `train_cpu.py` measures lmcourse: the
mean loss over the 200 fixed val batches of `train_cpu.RECIPE`. Then it trains lmcourse's
recipe in the same process (unless --skip-lmcourse), so both wall times come from one run.

    git clone https://github.com/karpathy/nanoGPT /somewhere/nanoGPT   # once, by hand
    nice -n 5 .venv/bin/python benchmarks/nanogpt_peer.py --nanogpt /somewhere/nanoGPT [--threads 2] [--seed 1337] [--skip-lmcourse] [--quick]

nanoGPT's files are copied to a temporary folder (its checkout is left untouched); its data
folder there is written from the text lmcourse reads (characters sorted, first 90% train),
as its `data/shakespeare_char/prepare.py` would write it without the download. `--seed`
replaces nanoGPT's hard-coded `torch.manual_seed(1337 + seed_offset)` in the copy.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import train_cpu  # noqa: E402
from lmcourse.tokenizers import CharTokenizer  # noqa: E402
from lmcourse.training import TokenData, evaluate  # noqa: E402

# nanoGPT's README, "I only have a macbook": the CPU run the 1.886 refers to.
README_FLAGS = ("--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 "
                "--n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0").split()
QUICK_FLAGS = "--max_iters=4 --lr_decay_iters=4 --warmup_iters=1 --eval_interval=2 --eval_iters=2".split()
SEED_LINE = "torch.manual_seed(1337 + seed_offset)"
FINAL_EVAL = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)", re.M)


def prepare(checkout: Path, work: Path, text: str, tok: CharTokenizer, seed: int) -> Path:
    """Copy nanoGPT's runnable files to `work`, write its data folder from `text` with `tok`'s ids, set the seed.

    `tok` is lmcourse's character tokenizer, whose ids are prepare.py's (the sorted characters),
    so nanoGPT's checkpoint reads lmcourse's val batches as it reads its own. Returns the data folder.
    """
    for name in ("train.py", "model.py", "configurator.py"):
        if not (checkout / name).is_file():
            raise SystemExit(f"nanogpt_peer.py: {checkout} is not a nanoGPT checkout (no {name})")
        shutil.copy(checkout / name, work / name)
    shutil.copytree(checkout / "config", work / "config")
    train_py = (work / "train.py").read_text(encoding="utf-8")
    if SEED_LINE not in train_py:
        raise SystemExit(f"nanogpt_peer.py: {checkout / 'train.py'} has no line {SEED_LINE!r} to set the seed in")
    (work / "train.py").write_text(train_py.replace(SEED_LINE, f"torch.manual_seed({seed} + seed_offset)"), encoding="utf-8")
    data = work / "data" / "lmcourse_chars"
    data.mkdir(parents=True)
    n = int(len(text) * 0.9)  # prepare.py's split
    np.array(tok.encode(text[:n]), dtype=np.uint16).tofile(data / "train.bin")
    np.array(tok.encode(text[n:]), dtype=np.uint16).tofile(data / "val.bin")
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": tok.vocab_size, "itos": dict(enumerate(tok.itos)), "stoi": tok.stoi}, f)
    return data


def run_nanogpt(work: Path, threads: int, extra: list[str]) -> tuple[float, str]:
    """nanoGPT's train.py with the README's CPU flags; returns (wall seconds, its output)."""
    cmd = [sys.executable, "train.py", "config/train_shakespeare_char.py", "--dataset=lmcourse_chars",
           "--out_dir=out", "--always_save_checkpoint=True", *README_FLAGS, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"nanogpt_peer.py: nanoGPT's train.py failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


class _Contiguous(torch.nn.Module):
    """nanoGPT's forward flattens its targets with .view(-1); evaluate() hands it y = window[:, 1:], a strided slice."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        return self.model(idx.contiguous(), None if targets is None else targets.contiguous())


def load_nanogpt(work: Path) -> tuple[torch.nn.Module, int]:
    """The model in nanoGPT's checkpoint, built by nanoGPT's own model.py; returns (model, its iteration)."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", work / "model.py")
    nano = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nano)  # nanoGPT's GPT, not lmcourse's (whose GELU is the tanh one)
    ckpt = torch.load(work / "out" / "ckpt.pt", map_location="cpu", weights_only=False)
    m = nano.GPT(nano.GPTConfig(**ckpt["model_args"]))
    m.load_state_dict(ckpt["model"])
    return _Contiguous(m).eval(), int(ckpt["iter_num"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nanogpt", required=True, type=Path, help="a checkout of github.com/karpathy/nanoGPT")
    ap.add_argument("--threads", type=int, default=2, help="threads for each run (2: the target machine)")
    ap.add_argument("--seed", type=int, default=1337, help="nanoGPT's torch seed (its own: 1337)")
    ap.add_argument("--skip-lmcourse", action="store_true", help="do not train lmcourse's recipe after it")
    ap.add_argument("--data", default=None, help="another UTF-8 text instead of Tiny Shakespeare (for the smoke test)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: nanoGPT and lmcourse for a few steps; figures mean nothing")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    text = train_cpu.load_text(args.data)
    tok = CharTokenizer.fit(text)
    data = TokenData.from_ids(tok.encode(text), val_fraction=0.1)
    print(f"torch {torch.__version__}, {args.threads} threads per run; nanoGPT from {args.nanogpt} (seed {args.seed}) "
          f"with its README's CPU flags; val: lmcourse's {train_cpu.RECIPE.eval_batches} fixed batches", flush=True)
    with tempfile.TemporaryDirectory(prefix="nanogpt-peer-") as tmp:
        work = Path(tmp)
        prepare(args.nanogpt, work, text, tok, args.seed)
        extra = QUICK_FLAGS if args.quick else []
        wall, out = run_nanogpt(work, args.threads, extra)
        evals = FINAL_EVAL.findall(out)
        if not evals:
            raise SystemExit("nanogpt_peer.py: nanoGPT printed no 'step N: train loss X, val loss Y' line")
        step, _, own_val = evals[-1]
        own_batches = [f.split("=")[1] for f in README_FLAGS + extra if f.startswith("--eval_iters=")][-1]  # the last wins, as in nanoGPT's configurator
        model, it = load_nanogpt(work)
        val = evaluate(model, data, train_cpu.RECIPE)
    print(f"nanogpt    {it} iterations, wall {wall:6.1f} s (process, incl. start-up and its evaluations); "
          f"its own val at step {step}: {float(own_val):.4f} ({own_batches} random batches); "
          f"on lmcourse's {train_cpu.RECIPE.eval_batches} fixed batches: {val:.4f}", flush=True)
    if not args.skip_lmcourse:
        ours = train_cpu.one_run("lmcourse", data, tok.vocab_size, quick=args.quick)
        print(f"val on the same batches: lmcourse {ours['val']:.4f}, nanoGPT {val:.4f}; "
              f"wall: lmcourse {ours['wall_s']:.1f} s, nanoGPT {wall:.1f} s"
              + ("  [--quick: lmcourse's val is over 2 of the batches; figures mean nothing]" if args.quick else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
