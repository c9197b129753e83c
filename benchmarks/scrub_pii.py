"""Benchmark: lmcourse.text.scrub_pii on hostile and real text, 1 MB each by default.

Hostile inputs are long runs of what the PII patterns look for ("%20" as in URL-encoded text,
digits, dots, "@", spaces, full-width digits); before the patterns were made linear, 300 KB of
"%20" took 29 s, because the e-mail pattern rescanned the rest of the run from every "%".
The real input is CPython's own documentation prose (pydoc_data) plus a URL-encoded query log.
Target on a 2-core machine: every input <= 1 s per MB (linear: twice the text, twice the time).

    python benchmarks/scrub_pii.py [--chars 1000000] [--module path/to/text.py] [--only %20,1]

`--module` times another version of text.py, for example the one before the fix:
    git show 0726461~1:lmcourse/text.py > /tmp/text_before.py
    python benchmarks/scrub_pii.py --module /tmp/text_before.py --only %20 --chars 300000
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

HOSTILE = ["%20", "%", "1", "1 ", "1.", "1-", ".", "@", "a@", "+", " ", "+1 ", "a.", "％２０", "٤"]
TARGET_S_PER_MB = 1.0


def load_text_module(path: str | None):
    if path is None:
        from lmcourse import text

        return text
    spec = importlib.util.spec_from_file_location("text_under_test", Path(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def real_text(chars: int) -> str:
    from lmcourse import data

    prose = data.pydoc_prose()
    query = ("GET /search?q=caf%C3%A9%20near%20me&email=jane.doe%40example.com&page=2 "
             "from 192.168.0.12, call +44 20 7946 0958 or mail ops@example.org\n")
    mixed = (prose + "\n" + query * 2000)
    return (mixed * (chars // len(mixed) + 1))[:chars]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=1_000_000, help="characters per input (default 1,000,000)")
    ap.add_argument("--module", help="time this text.py instead of the installed lmcourse.text")
    ap.add_argument("--only", help="comma-separated units to time (default: all, plus real text)")
    args = ap.parse_args(argv)
    text = load_text_module(args.module)
    units = args.only.split(",") if args.only else HOSTILE + ["real"]

    print(f"scrub_pii from {text.__file__}, {args.chars:,} characters per input")
    print(f"{'input':<18} {'seconds':>8} {'CPU s':>8} {'s per MB':>9}  target <= {TARGET_S_PER_MB} s per MB")
    worst = 0.0
    for unit in units:
        s = real_text(args.chars) if unit == "real" else unit * (args.chars // len(unit))
        t0, c0 = time.perf_counter(), time.process_time()
        text.scrub_pii(s)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0  # CPU time: what a loaded machine hides
        per_mb = dt / (len(s.encode("utf-8")) / 1e6)
        worst = max(worst, per_mb)
        label = "real text" if unit == "real" else f"{unit!r} x {len(s) // len(unit):,}"
        print(f"{label:<18} {dt:8.3f} {cpu:8.3f} {per_mb:9.3f}" + ("" if per_mb <= TARGET_S_PER_MB else "  SLOW"))
    print(f"worst: {worst:.3f} s per MB ({'meets' if worst <= TARGET_S_PER_MB else 'misses'} the target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
