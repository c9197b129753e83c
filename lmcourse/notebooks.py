"""Notebook tooling: execute notebooks in place, and generate exercises/ from solutions/.

`run_notebooks` executes each notebook in a fresh kernel with a fixed environment (seeds,
thread count), stops at the first error showing the failing cell, and records wall times in
one timings file. `build_exercise` turns an instructor solution into the student version:
nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` blocks become
`raise NotImplementedError("Exercise N.k")`, hidden-test blocks are dropped, outputs cleared.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_atomic
from .course import pip_spec

ROOT = Path(__file__).resolve().parents[1]
TIMINGS_FILE = ROOT / "tests" / "notebook_timings.json"
DEFAULT_THREADS = 2

# The first code cell of every notebook. On Colab lmcourse is missing, so it is installed;
# everywhere else this is one import and one call.
SETUP_CELL = (
    "# Setup: installs lmcourse when missing (Colab), seeds everything, picks the device, sets the plot style.\n"
    "import importlib.util, subprocess, sys\n"
    "if importlib.util.find_spec(\"lmcourse\") is None: subprocess.run("
    f"[sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"{pip_spec()}\"], check=True)\n"
    "import lmcourse; env = lmcourse.setup(seed=0)"
)

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
MARKDOWN_PLACEHOLDER = "YOUR ANSWER HERE"


class MarkerError(ValueError):
    """A solution notebook has unterminated, stray or nested markers."""


def dumps(nb) -> str:
    """The canonical text of a notebook (what nbformat writes, newline-terminated)."""
    import nbformat

    return nbformat.writes(nb) + "\n"


# -- executing --------------------------------------------------------------------------
def kernel_env(threads: int = DEFAULT_THREADS) -> dict[str, str]:
    """The fixed environment every notebook runs in: thread counts and hash seed pinned."""
    env = dict(os.environ)
    t = str(threads)
    env.update(
        {
            "LMCOURSE_NUM_THREADS": t,
            "OMP_NUM_THREADS": t,
            "MKL_NUM_THREADS": t,
            "PYTHONHASHSEED": "0",
            "LMCOURSE_DEVICE": "cpu",  # stored outputs are CPU outputs, even on a GPU machine
        }
    )
    return env


@dataclass
class RunResult:
    path: Path
    seconds: float
    ok: bool
    error: str = ""


def _folder(path: Path) -> str:
    return path.resolve().parent.name


def execute(path: Path, *, timeout: int = 600, threads: int = DEFAULT_THREADS, save: bool | None = None) -> RunResult:
    """Execute one notebook in a fresh kernel; save outputs in place unless it is an exercise.

    Exercises (a notebook under exercises/) are stored clean, so by default they are run
    and timed but not rewritten.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    if save is None:
        save = _folder(path) != "exercises"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.resolve().parent)}},
        allow_errors=False,
        record_timing=False,
    )
    # The kernel inherits this process's environment: pin it for the run.
    old = dict(os.environ)
    os.environ.update(kernel_env(threads))
    start = time.perf_counter()
    try:
        client.execute()
        ok, error = True, ""
    except CellExecutionError as exc:
        ok, error = False, str(exc)
    finally:
        seconds = time.perf_counter() - start
        os.environ.clear()
        os.environ.update(old)
    if ok and save:
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
        # Widget state is a snapshot of live kernel objects (model ids, PNGs): large and
        # different on every run. Widgets render again when the cell is re-run.
        nb.metadata.pop("widgets", None)
        write_atomic(path, dumps(nb))
    return RunResult(path, seconds, ok, error)


def record_timings(results: list[RunResult], file: Path = TIMINGS_FILE) -> None:
    """Merge the wall times of successful runs into the one timings file."""
    data = json.loads(file.read_text()) if file.exists() else {}
    for r in results:
        if r.ok:
            try:
                key = r.path.resolve().relative_to(ROOT).as_posix()
            except ValueError:
                key = r.path.as_posix()
            data[key] = round(r.seconds, 1)
    data["_threads"] = data.get("_threads", DEFAULT_THREADS)
    write_atomic(file, json.dumps(dict(sorted(data.items())), indent=1) + "\n")


def run_notebooks(
    paths: list[Path], *, timeout: int = 600, threads: int = DEFAULT_THREADS, out=None, timings: Path | None = None
) -> int:
    """Execute notebooks in order, stop at the first failure; 0 when all ran."""
    out = out or sys.stdout
    timings = timings or TIMINGS_FILE
    results = []
    for p in paths:
        print(f"run  {p} ...", end="", flush=True, file=out)
        r = execute(Path(p), timeout=timeout, threads=threads)
        results.append(r)
        print(f" {r.seconds:6.1f} s {'ok' if r.ok else 'FAILED'}", file=out)
        if not r.ok:
            print(r.error, file=out)
            record_timings(results, timings)
            return 1
    record_timings(results, timings)
    return 0


def all_notebooks() -> list[Path]:
    """chapters/, solutions/, then exercises/ (exercises last: they are generated)."""
    return [p for d in ("chapters", "solutions", "exercises") for p in sorted((ROOT / d).glob("*.ipynb"))]


# -- exercises from solutions ------------------------------------------------------------
_NUM = re.compile(r"^(\d+)_")


def chapter_number(path: Path) -> int:
    """The chapter number a course notebook's name starts with ("04_self_attention.ipynb" -> 4)."""
    m = _NUM.match(Path(path).name)
    if not m:
        raise ValueError(f"{path}: a course notebook's name starts with its two-digit number, e.g. 04_self_attention.ipynb")
    return int(m.group(1))


def _strip_code(source: str, where: str, counter: list[int], chapter: int) -> str:
    out: list[str] = []
    state = None  # None, "solution" or "hidden"
    for line in source.split("\n"):
        tag = line.strip()
        if tag in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if state is not None:
                raise MarkerError(f"{where}: {tag!r} inside an open {state} block (markers cannot nest)")
            state = "solution" if tag == BEGIN_SOLUTION else "hidden"
            if state == "solution":
                counter[0] += 1
                indent = line[: len(line) - len(line.lstrip())]
                out.append(f'{indent}raise NotImplementedError("Exercise {chapter}.{counter[0]}")')
            continue
        if tag in (END_SOLUTION, END_HIDDEN):
            expect = "solution" if tag == END_SOLUTION else "hidden"
            if state != expect:
                raise MarkerError(f"{where}: {tag!r} without a matching BEGIN")
            state = None
            continue
        if state is None:
            out.append(line)
    if state is not None:
        raise MarkerError(f"{where}: unterminated {state} block (missing END marker)")
    return "\n".join(out)


def _strip_markdown(source: str, where: str) -> str:
    out: list[str] = []
    state = None
    for line in source.split("\n"):
        tag = line.strip()
        if tag == BEGIN_SOLUTION:
            if state:
                raise MarkerError(f"{where}: {tag!r} inside an open solution block (markers cannot nest)")
            state = "solution"
            out.append(MARKDOWN_PLACEHOLDER)
            continue
        if tag == END_SOLUTION:
            if not state:
                raise MarkerError(f"{where}: {tag!r} without a matching BEGIN")
            state = None
            continue
        if tag in (BEGIN_HIDDEN, END_HIDDEN):
            raise MarkerError(f"{where}: hidden-test markers belong in code cells")
        if state is None:
            out.append(line)
    if state:
        raise MarkerError(f"{where}: unterminated solution block (missing END marker)")
    return "\n".join(out)


def build_exercise(solution_path: Path):
    """The student version of a solution notebook (a new notebook; nothing is written)."""
    import nbformat

    solution_path = Path(solution_path)
    nb = nbformat.read(solution_path, as_version=4)
    chapter = chapter_number(solution_path)
    counter = [0]
    for i, cell in enumerate(nb.cells, 1):
        where = f"{solution_path} cell {i}"
        if cell.cell_type == "code":
            cell.source = _strip_code(cell.source, where, counter, chapter)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            cell.source = _strip_markdown(cell.source, where)
    nb.metadata.pop("widgets", None)
    return nb


def build_exercises(root: Path = ROOT) -> list[Path]:
    """Write exercises/ from solutions/; return the files written. Stale exercises are removed."""
    written = []
    sources = sorted((root / "solutions").glob("*.ipynb"))
    names = {p.name for p in sources}
    for src in sources:
        dst = root / "exercises" / src.name
        write_atomic(dst, dumps(build_exercise(src)))
        written.append(dst)
    for stale in (root / "exercises").glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    return written


def check_exercises(root: Path = ROOT) -> list[str]:
    """Every problem that `build_exercises` would fix: empty when exercises/ is in sync."""
    problems = []
    sources = sorted((root / "solutions").glob("*.ipynb"))
    names = {p.name for p in sources}
    for src in sources:
        dst = root / "exercises" / src.name
        want = dumps(build_exercise(src))
        if not dst.exists():
            problems.append(f"exercises/{src.name}: missing")
        elif dst.read_text(encoding="utf-8") != want:
            problems.append(f"exercises/{src.name}: differs from what `lmcourse exercises build` writes")
    for extra in sorted((root / "exercises").glob("*.ipynb")):
        if extra.name not in names:
            problems.append(f"exercises/{extra.name}: has no solutions/{extra.name}")
    return problems
