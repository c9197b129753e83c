"""The well-known CPU recipe on Tiny Shakespeare characters: lmcourse vs Hugging Face, then beat it.

The recipe (nanoGPT's README CPU run): 4 layers, 4 heads, 128 wide, context 64, batch 12,
2000 iterations, no dropout; AdamW lr 1e-3, betas (0.9, 0.99), weight decay 0.1, gradient
clipping at 1.0; 100 steps of linear warm-up, then cosine decay to 1e-4. The first 90% of
the characters train, the last 10% validate; the val loss is the mean over 200 fixed
batches. Targets on 2 cores: lmcourse >= 1.35x Hugging Face's tokens/s, val <= 1.89 (the
best-known minimal implementation: about 1.886 in about 136 s). That 1.886 is nanoGPT's own
estimate over 20 random val batches; on these 200 fixed batches nanoGPT's run reaches 1.903
(seed 1337; 1.899-1.914 over three seeds): `nanogpt_peer.py` measures it.

Both models are trained by the same loop, `lmcourse.training.train`, on the same batches in
the same order: lmcourse's `GPT`, and Hugging Face's `GPT2LMHeadModel` with identical shapes
(biases, tied embeddings, tanh GELU, no dropout) behind a two-line adapter that returns
(logits, loss) as the loop expects. Same optimiser groups (matrices decayed, embeddings,
biases and LayerNorms not), same schedule, same clipping, so the tokens/s ratio measures the
models alone. By default the runs go one after another, and a neighbour's load hits whichever
runs then (the load average is printed at the start and end of each run); --parallel runs
them at the same time, one process each (--threads 1), so that they share the same load.

Then "beat the recipe": `BEAT` (a narrower model over more steps, at a higher learning rate) must
reach val <= 1.80 in no more wall time than the recipe's lmcourse run took in this same run.

    nice -n 5 .venv/bin/python benchmarks/train_cpu.py [--threads 2] [--parallel] [--skip-hf] [--skip-beat] [--quick] [--data PATH] [--seed N]

--quick: a smoke run (a few steps and val batches of each, seconds); its figures mean nothing.
Data: ../shared/data/tinyshakespeare.txt (beside the checkout), else the download cache
(`lmcourse.data.cached_path`); exits with status 2 and a message when neither has it.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch._dynamo  # noqa: E402,F401  AdamW's constructor imports it (seconds): here, outside the timed runs, as transformers does for HF
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lmcourse.model import GPT, GPTConfig  # noqa: E402
from lmcourse.tokenizers import CharTokenizer  # noqa: E402
from lmcourse.training import TokenData, TrainConfig, evaluate, train  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
TARGET_RATIO = 1.35
TARGET_VAL = 1.89
TARGET_BEAT = 1.80

MODEL = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
RECIPE = TrainConfig(
    steps=2000, batch_size=12, block_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=100,
    weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0,
    eval_interval=0, eval_batches=200, log_interval=100, seed=1337, device="cpu", dtype="fp32",
)
# Beat the recipe in its own wall time. The recipe's model is too big for 2000 steps: at this
# budget a narrower model that sees more tokens wins (as the scaling laws say: for a fixed compute,
# fewer parameters and more data). 96 wide instead of 128 costs 0.65x per step on one thread but
# 0.77x on two (a narrower model splits worse across threads: quiet machine, 2 threads, 32.9 vs
# 42.6 ms/iter), so 2400 steps (1.8M tokens instead of 1.5M) take ~0.93x the recipe's time on the
# 2-core target; 2700 steps fit one thread (0.88x) but not two (1.04x, val 1.7525). A model this
# narrow also takes a far higher rate than 1e-3 (GPT-2's rates fall with width: 6e-4 at 768 wide).
# Measured with --parallel, 1 thread per run: the recipe 1.9116; 128 wide, 1800 steps at lr 3e-3
# (floor 3e-4) 1.8058, at 4e-3 1.8085, at 6e-3 1.8048: the rate alone stops helping near 1.805; these
# settings with 2700 steps, 1.7603 in 0.88x the recipe's time: the extra tokens did the rest. On 2
# threads, quiet: 2400 steps, 1.7758 in 0.90x (79.2 against 87.8 s).
# Larger batches do not help on one thread: 24 or 48 windows cost as much per token as 12.
BEAT_MODEL = dataclasses.replace(MODEL, n_embd=96)
BEAT = dataclasses.replace(RECIPE, steps=2400, lr=4e-3, min_lr=1e-4, warmup_steps=50)


def load_text(path: str | None = None) -> str:
    """`path`, else Tiny Shakespeare from ../shared/data, else the download cache; exits with status 2 when none holds it."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    if SHARED.is_file():
        return SHARED.read_text(encoding="utf-8")
    from lmcourse.data import cache_dir, cached_path

    path = cached_path("tinyshakespeare")
    if path is None:
        print(f"train_cpu.py: no Tiny Shakespeare at {SHARED} nor in the download cache {cache_dir()} "
              "(python -c 'import lmcourse.data as d; d.download(\"tinyshakespeare\")' fetches it once)", file=sys.stderr)
        sys.exit(2)
    return path.read_text(encoding="utf-8")


def hf_model(cfg: GPTConfig) -> nn.Module:
    """Hugging Face's GPT2LMHeadModel with `cfg`'s shapes, no dropout, behind train()'s (logits, loss) interface."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    hf_cfg = GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
        n_embd=cfg.n_embd, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=cfg.layer_norm_eps,
        activation_function="gelu_new", bos_token_id=0, eos_token_id=0,
    )
    return HFCausalLM(GPT2LMHeadModel(hf_cfg))


class HFCausalLM(nn.Module):
    """forward(idx (B, T), targets (B, T)) -> (logits (B, T, V), loss), the interface train() expects.

    The targets are already shifted (y = x moved by one), so the loss is computed here rather
    than by HF's `labels=`, which would shift them a second time.
    """

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf
        self.config = None  # train() reads config.block_size when it is there; HF's is n_positions

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.hf(idx).logits  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def run(name: str, model: nn.Module, data: TokenData, cfg: TrainConfig) -> dict:
    """Train `model` with `cfg`, then measure the val loss; print one line and return the figures."""
    n_params = sum(p.numel() for p in model.parameters())
    before = load()
    c0, t0 = time.process_time(), time.perf_counter()
    train(model, data, cfg, progress=False, plot=False)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0  # this process's CPU seconds (all its threads): what a neighbour's load barely moves
    t1 = time.perf_counter()
    val = evaluate(model, data, dataclasses.replace(cfg, seed=RECIPE.seed))  # the same 200 val batches whatever the run's seed
    eval_s = time.perf_counter() - t1
    ms = 1000 * wall / cfg.steps
    tps = cfg.steps * cfg.tokens_per_step / wall
    print(f"{name:10s} {n_params / 1e6:.2f}M params, {cfg.steps} steps x {cfg.batch_size}x{cfg.block_size} tokens, "
          f"lr {cfg.lr:g}: {tps:8,.0f} tokens/s, {ms:6.1f} ms/iter, wall {wall:6.1f} s; "
          f"val {val:.4f} ({cfg.eval_batches} batches, {eval_s:.1f} s); cpu {cpu:6.1f} s; {before} -> {load()}", flush=True)
    return {"tokens_per_s": tps, "wall_s": wall, "val": val, "ms": ms, "cpu_s": cpu}


RUNS = ("lmcourse", "hf", "beat")


def one_run(name: str, data: TokenData, vocab_size: int, quick: bool, seed: int | None = None) -> dict:
    """Build and train run `name` (the recipe on lmcourse or on HF, or the beat settings).

    seed: None, the runs the targets were measured with (weights from seed 0, data order from
    1337); N, weights and data order from N, for the spread over seeds. The val batches stay the same.
    """
    recipe, beat = RECIPE, BEAT
    if quick:
        recipe = dataclasses.replace(RECIPE, steps=6, warmup_steps=2, eval_batches=2)
        beat = dataclasses.replace(BEAT, steps=3, warmup_steps=1, eval_batches=2)
    if seed is not None:
        recipe, beat = dataclasses.replace(recipe, seed=seed), dataclasses.replace(beat, seed=seed)
    torch.manual_seed(0 if seed is None else seed)  # the same initial weights on every run of this script
    if name == "lmcourse":
        return run(name, GPT(dataclasses.replace(MODEL, vocab_size=vocab_size)), data, recipe)
    if name == "hf":
        return run(name, hf_model(dataclasses.replace(MODEL, vocab_size=vocab_size)), data, recipe)
    return run(name, GPT(dataclasses.replace(BEAT_MODEL, vocab_size=vocab_size)), data, beat)


def in_parallel(names: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """Each run in its own process, all at once, args.threads threads each: they share whatever load there is."""
    import json
    import subprocess

    cmd = [sys.executable, __file__, "--threads", str(args.threads)] + (["--quick"] if args.quick else []) + (
        ["--data", args.data] if args.data else []) + ([] if args.seed is None else ["--seed", str(args.seed)])
    procs = {n: subprocess.Popen([*cmd, "--only", n], stdout=subprocess.PIPE, text=True) for n in names}
    results = {}
    for n, p in procs.items():
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"train_cpu.py: the {n} run failed (status {p.returncode})")
        for line in out.splitlines():
            if line.startswith("RESULT "):
                results[n] = json.loads(line[len("RESULT "):])
            else:
                print(line, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run (2: the 2-core target machine)")
    ap.add_argument("--parallel", action="store_true",
                    help="the runs at once, one process each (use --threads 1): fair on a loaded machine")
    ap.add_argument("--skip-hf", action="store_true", help="do not train Hugging Face's model")
    ap.add_argument("--skip-beat", action="store_true", help="do not run the beat-the-recipe settings")
    ap.add_argument("--only", choices=RUNS, default=None, help=argparse.SUPPRESS)  # one run, for --parallel
    ap.add_argument("--data", default=None, help="another UTF-8 text instead of Tiny Shakespeare (for the smoke test)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: a few steps and val batches; figures mean nothing")
    ap.add_argument("--seed", type=int, default=None,
                    help="weights and data order from this seed (default: seed 0 and 1337, the runs reported); same val batches")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    text = load_text(args.data)
    tok = CharTokenizer.fit(text)
    data = TokenData.from_ids(tok.encode(text), val_fraction=0.1)
    if args.only:
        import json

        print("RESULT " + json.dumps(one_run(args.only, data, tok.vocab_size, args.quick, args.seed)), flush=True)
        return 0
    names = [n for n in RUNS if not (n == "hf" and args.skip_hf) and not (n == "beat" and args.skip_beat)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads per run, float32, "
          f"{'all runs at once' if args.parallel else 'one run after another'}; {data}, vocab {tok.vocab_size}; "
          f"targets: lmcourse >= {TARGET_RATIO}x HF tokens/s, val <= {TARGET_VAL}, beat: val <= {TARGET_BEAT} "
          f"in <= the recipe's wall time" + ("  [--quick: figures mean nothing]" if args.quick else ""), flush=True)
    if args.parallel:
        res = in_parallel(names, args)
    else:
        res = {n: one_run(n, data, tok.vocab_size, args.quick, args.seed) for n in names}

    ours = res["lmcourse"]
    ok = ours["val"] <= TARGET_VAL
    print(f"recipe: val {ours['val']:.4f} ({'meets' if ok else 'ABOVE'} <= {TARGET_VAL}), wall {ours['wall_s']:.1f} s")
    if "hf" in res:
        ratio = ours["tokens_per_s"] / res["hf"]["tokens_per_s"]
        ok &= ratio >= TARGET_RATIO
        print(f"lmcourse / hf tokens/s: {ratio:.2f}x ({'meets' if ratio >= TARGET_RATIO else 'BELOW'} "
              f">= {TARGET_RATIO}x); hf val {res['hf']['val']:.4f}; tokens per CPU-second: "
              f"{res['hf']['cpu_s'] / ours['cpu_s']:.2f}x (the fairer figure on a loaded machine)")
    if "beat" in res:
        b = res["beat"]
        beaten = b["val"] <= TARGET_BEAT and b["wall_s"] <= ours["wall_s"]
        ok &= beaten
        print(f"beat the recipe: val {b['val']:.4f} in {b['wall_s']:.1f} s vs the recipe's {ours['val']:.4f} in "
              f"{ours['wall_s']:.1f} s ({'meets' if beaten else 'MISSES'} val <= {TARGET_BEAT} in <= the recipe's time)")
    print("all targets met" if ok else "some targets missed", "(--quick: not a measurement)" if args.quick else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
