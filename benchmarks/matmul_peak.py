"""This machine's matrix-product FLOP/s: square (n, n) @ (n, n) products, n from 256 to 4096.

`lmcourse.compute.matmul_peak` at each size (2·n³ FLOPs a product; warm-up first, then the
median of the repetitions, one preallocated output), with torch's threads as set (2 unless
--threads says otherwise). The largest rate is the practical peak that chapter 13 measures
its training run's MFU against; small sizes show where the overheads stop mattering. The
load average before and after is printed too: a neighbour's work lowers every figure, so run
it on an otherwise idle machine.

    nice -n 5 .venv/bin/python benchmarks/matmul_peak.py [--sizes 256 512 1024 2048 4096] [--threads 2]
        [--repeats 5] [--dtype float32]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lmcourse.compute import matmul_peak  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", choices=("float32", "float64", "bfloat16"), default="float32")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}, "
          f"load average before {os.getloadavg()[0]:.2f}")
    print(f"{'n':>6} {'GFLOP/s':>9} {'ms/product':>11} {'wall s':>7}")
    best = 0.0
    for n in args.sizes:
        t0 = time.perf_counter()
        # fewer repetitions at the largest sizes would be noisier; the warm-up is one product
        rate = matmul_peak(n, dtype=dtype, repeats=args.repeats, warmup=1)
        best = max(best, rate)
        print(f"{n:6d} {rate / 1e9:9.1f} {2 * n**3 / rate * 1e3:11.2f} {time.perf_counter() - t0:7.1f}")
    print(f"peak {best / 1e9:.1f} GFLOP/s; load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
