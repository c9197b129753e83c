"""Benchmark: byte-level BPE training and encoding speed on Tiny Shakespeare.

Trains 256 merges (vocab 512) on the first 1,000,000 characters, then encodes those same
characters, and prints both times and the encoding rate in MB/s (UTF-8 bytes per second).
Targets on a 2-core machine: training <= 5 s, encoding >= 1 MB/s. For comparison, the
textbook trainer that recounts every pair after every merge takes about 110 s here.

    python benchmarks/tokenizer.py [path/to/tinyshakespeare.txt] [--pattern gpt4|gpt2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lmcourse.tokenizers import BPETokenizer

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/tinyshakespeare.txt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT), help=f"text file (default {DEFAULT})")
    ap.add_argument("--pattern", default="gpt4", choices=["gpt4", "gpt2"])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--vocab-size", type=int, default=512)
    args = ap.parse_args(argv)

    path = Path(args.path)
    if not path.is_file():
        print(f"error: data file {path} not found. Pass the path to tinyshakespeare.txt "
              "(or call lmcourse.data.load_text('tinyshakespeare') once online).", file=sys.stderr)
        return 2
    text = path.read_text(encoding="utf-8")[: args.chars]
    nbytes = len(text.encode("utf-8"))

    t0 = time.perf_counter()
    tok = BPETokenizer(args.pattern).train(text, args.vocab_size)
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    ids = tok.encode(text)
    t_enc = time.perf_counter() - t0
    assert tok.decode(ids) == text

    print(f"data      {path.name}: {len(text):,} chars, {nbytes:,} bytes, pattern {args.pattern}")
    print(f"train     {len(tok.merges)} merges (vocab {tok.vocab_size}) in {t_train:.2f} s  (target <= 5 s)")
    print(f"encode    {len(ids):,} tokens in {t_enc:.2f} s = {nbytes / 1e6 / t_enc:.2f} MB/s  (target >= 1 MB/s)")
    print(f"ratio     {nbytes / len(ids):.2f} bytes per token")
    return 0


if __name__ == "__main__":
    sys.exit(main())
