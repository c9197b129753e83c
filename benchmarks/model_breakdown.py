"""Where one forward+backward of lmcourse's GPT spends its time: the whole step, then its kernels alone.

nanoGPT's CPU shape (B=12, T=64, 4 layers, 4 heads, 128 wide, V=65), float32. Timed with this
process's CPU time (time.process_time) on --threads threads (1 by default, so a neighbour's load
barely moves the figures), the parts in alternation, medians of the repetitions:
- step: `GPT(x, y)` and its backward, as model.py times it;
- matmuls: every matrix product of the Linear layers and the tied lm_head, forward (x @ W^T) and
  backward (the input's and the weight's gradients), on random tensors of the same shapes;
- attention: F.scaled_dot_product_attention, causal, forward+backward, once per layer;
- gelu: the tanh GELU on the MLP's (B*T, 4C) activations, forward+backward, once per layer;
- layernorm: F.layer_norm forward+backward, as many as the model has (2 per layer + ln_f).
What the step costs beyond their sum is the rest: loss, embeddings, bias sums, residual adds,
head copies, Python and autograd.

    nice -n 5 .venv/bin/python benchmarks/model_breakdown.py [--reps 9] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lmcourse.model import GPT, GPTConfig  # noqa: E402

CONFIG, BATCH = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128), 12


def parts(cfg: GPTConfig, B: int) -> dict:
    T, C, nh, V, L = cfg.block_size, cfg.n_embd, cfg.n_head, cfg.vocab_size, cfg.n_layer
    N = B * T
    torch.manual_seed(0)
    model = GPT(cfg).train()
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))

    def step():
        _, loss = model(x, y)
        loss.backward()
        for p in model.parameters():
            p.grad = None

    shapes = [(C, 3 * C), (C, C), (C, cfg.d_ff), (cfg.d_ff, C)] * L + [(C, V)]  # (in, out) of each product
    mats = [(torch.randn(N, i), torch.randn(o, i), torch.randn(N, o)) for i, o in shapes]

    def matmuls():
        for a, w, g in mats:
            a @ w.t()  # forward (B*T, in) @ (in, out)
            g @ w  # the input's gradient
            g.t() @ a  # the weight's gradient

    q, k, v = (torch.randn(B, nh, T, C // nh, requires_grad=True) for _ in range(3))
    go = torch.randn(B, nh, T, C // nh)

    def attention():
        for _ in range(L):
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(go)

    h, gh = torch.randn(N, cfg.d_ff, requires_grad=True), torch.randn(N, cfg.d_ff)

    def gelu():
        for _ in range(L):
            F.gelu(h, approximate="tanh").backward(gh)

    z, gz = torch.randn(B, T, C, requires_grad=True), torch.randn(B, T, C)
    w, b = torch.ones(C, requires_grad=True), torch.zeros(C, requires_grad=True)

    def layernorm():
        for _ in range(2 * L + 1):
            F.layer_norm(z, (C,), w, b).backward(gz)

    flop = sum(2 * N * i * o * 3 for i, o in shapes)
    return dict(step=step, matmuls=matmuls, attention=attention, gelu=gelu, layernorm=layernorm), flop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--steps", type=int, default=5, help="calls per repetition")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    fns, flop = parts(CONFIG, BATCH)
    for f in fns.values():  # warm-up
        f()
        f()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.reps):
        for name, f in fns.items():  # alternate, so load changes hit every part alike
            t0 = time.process_time()
            for _ in range(args.steps):
                f()
            times[name].append((time.process_time() - t0) / args.steps * 1000)
    ms = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU ms per step (median of {args.reps}), "
          f"B={BATCH}, T={CONFIG.block_size}, L={CONFIG.n_layer}, C={CONFIG.n_embd}, V={CONFIG.vocab_size}")
    for name, v in ms.items():
        note = f"  ({flop / 1e9:.2f} GFLOP, {flop / v / 1e6:.0f} GFLOP/s)" if name == "matmuls" else ""
        print(f"  {name:10s} {v:7.2f} ms{note}")
    rest = ms["step"] - sum(v for name, v in ms.items() if name != "step")
    print(f"  {'rest':10s} {rest:7.2f} ms  (loss, embeddings, bias sums, adds, copies, Python and autograd)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
