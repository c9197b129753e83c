"""Notebook tooling: execute notebooks in place, and generate exercises/ from solutions/.

`run_notebooks` executes each notebook in a fresh kernel with a fixed environment (seeds,
thread count), stops at the first error showing the failing cell, and records wall times in
the course folder's timings file (tests/notebook_timings.json; not recorded when the course
has no tests/ folder). `build_exercise` turns an instructor solution into the student version:
nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` blocks become
`raise NotImplementedError("Exercise N.k")`, hidden-test blocks are dropped, outputs cleared.
Both versions carry nbgrader's cell metadata (`add_nbgrader_metadata`): the build writes it
into solutions/ where it is missing or stale (only that metadata changes, and the points an
instructor set are kept), and, as nbgrader's own release does, the student version keeps it
with the check cells locked. A course's own `solutions/checks.py` (its exercise declarations,
`lmcourse.course.course_exercises`) is copied to `exercises/checks.py`, where the student
notebooks `import checks`.

Markers are exact lines. A line that looks like a marker but is not one (`###BEGIN SOLUTION`,
`## BEGIN SOLUTION`, lower case, a marker after code) is an error, and so is a solution
notebook with no solution block at all, since its exercise would hold the whole solution:
a notebook that has no exercises says so in its metadata, `{"lmcourse": {"exercises": 0}}`
(when present, that number must equal the number of solution blocks).

Every function here takes the course folder (`lmcourse.course.find_root`) as an argument:
the tools act on the course you stand in, never on the installed package's folder, and
never delete a file they did not write.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_atomic
from .course import pip_spec

TIMINGS = Path("tests") / "notebook_timings.json"  # relative to the course folder
DEFAULT_THREADS = 2
COURSE_DIRS = ("chapters", "solutions", "exercises")

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
    """A solution notebook has unterminated, stray, nested or misspelt markers, or none at all."""


class NothingToBuild(ValueError):
    """solutions/ is missing or holds no notebooks: there is nothing to build exercises from."""


class NotebookError(ValueError):
    """A path given to the runner is not a notebook it can run (a folder, not JSON, not a notebook)."""


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


def read_notebook(path: Path):
    """The notebook at `path`; NotebookError with a one-line reason when it is not one."""
    import nbformat

    path = Path(path)
    if not path.exists():
        raise NotebookError(f"{path}: no such notebook")
    if path.is_dir():
        raise NotebookError(f"{path}: is a folder, not a notebook (give the .ipynb files, e.g. {path}/*.ipynb)")
    try:
        return nbformat.read(path, as_version=4)
    except (UnicodeDecodeError, nbformat.reader.NotJSONError, json.JSONDecodeError):
        raise NotebookError(f"{path}: not a notebook (its content is not JSON)") from None
    except Exception as exc:  # nbformat's validation and version errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookError(f"{path}: not a valid notebook ({first[:200]})") from None


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def execute(path: Path, *, timeout: int = 600, threads: int = DEFAULT_THREADS, save: bool | None = None) -> RunResult:
    """Execute one notebook in a fresh kernel; save outputs in place unless it is an exercise.

    Exercises (a notebook under exercises/) are stored clean, so by default they are run
    and timed but not rewritten. `timeout` is seconds per cell (> 0). A failure is returned,
    not raised: `error` names the file and the cell (1-based, counting every cell).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    _positive("timeout", timeout)
    path = Path(path)
    if save is None:
        save = _folder(path) != "exercises"
    nb = read_notebook(path)
    current = {"cell": 0}

    def on_cell_start(cell, cell_index):
        current["cell"] = cell_index + 1

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.resolve().parent)}},
        allow_errors=False,
        record_timing=False,
        # One stream output per cell, however the kernel chunked the prints: a re-run that prints the
        # same text stores the same file (no churn in stored outputs).
        coalesce_streams=True,
        on_cell_start=on_cell_start,
    )
    # The kernel inherits this process's environment: pin it for the run.
    old = dict(os.environ)
    os.environ.update(kernel_env(threads))
    start = time.perf_counter()
    try:
        client.execute()
        ok, error = True, ""
    except CellTimeoutError:
        ok, error = False, f"{path}: cell {current['cell']} did not finish within the {timeout:g} s cell timeout; stopped"
    except CellExecutionError as exc:
        ok, error = False, f"{path}: cell {current['cell']} raised an error:\n{exc}"
    except DeadKernelError:
        ok, error = False, f"{path}: the kernel died while running cell {current['cell']}"
    except Exception as exc:  # the kernel could not start, or a message was lost: still one line
        ok, error = False, f"{path}: could not run (cell {current['cell']}): {type(exc).__name__}: {str(exc).strip()[:200]}"
    finally:
        seconds = time.perf_counter() - start
        os.environ.clear()
        os.environ.update(old)
    if ok and save:
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
        # nbclient collected the widgets' state (store_widget_state): keep what the stored
        # outputs show, so a static renderer (nbconvert's HTML, the site) draws each widget as it was.
        keep_shown_widgets(nb, path.name)
        write_atomic(path, dumps(nb))
    return RunResult(path, seconds, ok, error)


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]{32})")


def shown_widgets(nb) -> list[str]:
    """The model ids of the widget views a notebook's stored outputs display, in order."""
    ids = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") not in ids:
                ids.append(view["model_id"])
    return ids


def keep_shown_widgets(nb, name: str = "") -> dict:
    """Trim nbclient's widget state (nb.metadata.widgets) to the models the outputs show, and give them stable ids.

    nbclient records every widget the kernel made, shown or not (chapter 04 builds a second,
    undisplayed explorer with its own PNG). Kept: each shown view and everything it references
    (`IPY_MODEL_<id>`: children, layouts, styles), so a static renderer draws the widget as it was
    at the end of the run. Model ids are random per run; they are renamed to ids derived from
    `name` (the notebook's file name) and their order, so that re-running a notebook does not
    rewrite its widget ids and two notebooks never share one. The metadata key is dropped when
    nothing is shown. Returns the state kept (model id -> model).
    """
    import uuid

    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    order: list[str] = []
    todo = shown_widgets(nb)
    while todo:  # depth-first from each shown view, so the order depends on the outputs alone
        mid = todo.pop(0)
        if mid in order or mid not in state:
            continue
        order.append(mid)
        todo[:0] = _MODEL_REF.findall(json.dumps(state[mid]["state"], sort_keys=True))
    if not order:
        nb.metadata.pop("widgets", None)
        return {}
    new_id = {old: uuid.uuid5(uuid.NAMESPACE_URL, f"lmcourse/{name}/{i}").hex for i, old in enumerate(order)}

    def rename(text: str) -> str:
        return _MODEL_REF.sub(lambda m: "IPY_MODEL_" + new_id.get(m.group(1), m.group(1)), text)

    kept = {new_id[old]: json.loads(rename(json.dumps(state[old]))) for old in order}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in new_id:
                view["model_id"] = new_id[view["model_id"]]
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": kept, "version_major": 2, "version_minor": 0}}
    return kept


def timings_file(root: Path) -> Path | None:
    """The course folder's timings file, tests/notebook_timings.json; None when it has no tests/."""
    root = Path(root)
    return root / TIMINGS if (root / TIMINGS.parent).is_dir() else None


def record_timings(results: list[RunResult], file: Path, root: Path | None = None) -> None:
    """Merge the wall times of successful runs into the timings file.

    With a course folder `root`, keys are paths relative to it and notebooks outside it are
    not recorded (they are not the course's); without one, keys are the paths as given.
    """
    file = Path(file)
    data = json.loads(file.read_text()) if file.exists() else {}
    for r in results:
        if not r.ok:
            continue
        key = r.path.as_posix()
        if root is not None:
            try:
                key = r.path.resolve().relative_to(Path(root).resolve()).as_posix()
            except ValueError:
                continue
        data[key] = round(r.seconds, 1)
    data["_threads"] = data.get("_threads", DEFAULT_THREADS)
    write_atomic(file, json.dumps(dict(sorted(data.items())), indent=1) + "\n")


def run_notebooks(
    paths: list[Path], *, timeout: int = 600, threads: int = DEFAULT_THREADS, out=None,
    timings: Path | None = None, root: Path | None = None,
) -> int:
    """Execute notebooks in order, stop at the first failure; 0 when all ran.

    Every path is read first, so a folder or a file that is not a notebook is refused
    (NotebookError) before anything runs. Wall times go to `timings` when given.
    """
    out = out or sys.stdout
    _positive("timeout", timeout)
    paths = [Path(p) for p in paths]
    for p in paths:
        read_notebook(p)
    results = []
    for p in paths:
        print(f"run  {p} ...", end="", flush=True, file=out)
        r = execute(p, timeout=timeout, threads=threads)
        results.append(r)
        print(f" {r.seconds:6.1f} s {'ok' if r.ok else 'FAILED'}", file=out)
        if not r.ok:
            print(r.error, file=out)
            break
    if timings is not None:
        record_timings(results, timings, root)
    return 0 if all(r.ok for r in results) else 1


def all_notebooks(root: Path) -> list[Path]:
    """The course folder's chapters/, solutions/, then exercises/ (exercises last: they are generated)."""
    return [p for d in COURSE_DIRS for p in sorted((Path(root) / d).glob("*.ipynb")) if p.is_file()]


# -- exercises from solutions ------------------------------------------------------------
_NUM = re.compile(r"^(\d+)_")


def chapter_number(path: Path) -> int:
    """The chapter number a course notebook's name starts with ("04_self_attention.ipynb" -> 4)."""
    m = _NUM.match(Path(path).name)
    if not m:
        raise ValueError(f"{path}: a course notebook's name starts with its two-digit number, e.g. 04_self_attention.ipynb")
    return int(m.group(1))


_MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
# A comment that looks like a marker: any number of '#', any spacing, any case, anywhere in the line.
_MARKER_LIKE = re.compile(r"#+\s*(begin|end)\s*(solution|hidden)", re.IGNORECASE)


def _near_miss(line: str, where: str, n: int, *, anywhere: bool) -> None:
    tag = line.strip()
    if tag in _MARKERS:
        return
    found = _MARKER_LIKE.search(tag) if anywhere else _MARKER_LIKE.match(tag)
    if found:
        raise MarkerError(
            f"{where} line {n}: {tag[:80]!r} looks like a marker but is not one, so it would leak into the "
            f"exercise; write a marker exactly, on a line of its own: {' / '.join(repr(m) for m in _MARKERS)}"
        )


def _strip_code(source: str, where: str, counter: list[int], chapter: int) -> str:
    out: list[str] = []
    state = None  # None, "solution" or "hidden"
    for n, line in enumerate(source.split("\n"), 1):
        tag = line.strip()
        _near_miss(line, where, n, anywhere=True)
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


def _strip_markdown(source: str, where: str, counter: list[int]) -> str:
    out: list[str] = []
    state = None
    for n, line in enumerate(source.split("\n"), 1):
        tag = line.strip()
        _near_miss(line, where, n, anywhere=False)
        if tag == BEGIN_SOLUTION:
            if state:
                raise MarkerError(f"{where}: {tag!r} inside an open solution block (markers cannot nest)")
            state = "solution"
            counter[0] += 1
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


# -- nbgrader metadata ---------------------------------------------------------------------
# solutions/ carries nbgrader's cell metadata (schema 3), so an instructor who prefers nbgrader
# can run it on the same notebooks, and the grader reads each exercise's points from it.
NBGRADER_SCHEMA = 3
_CHECK_CALL = re.compile(r"\.check\(")
# The grade ids this module writes; any other nbgrader metadata (an instructor's own
# read-only cell) is left alone.
_OUR_GRADE_ID = re.compile(r"^\d+_\d+(-solution)?$|^\d+_answer\d+$")


def grade_id(exercise_id: str) -> str:
    """nbgrader's grade_id for exercise "4.1": "4_1" (nbgrader's schema allows only letters, digits, _ and -)."""
    return exercise_id.replace(".", "_")


@dataclass
class ExerciseCells:
    """Where exercise `id` lives in a solution notebook: its solution cell and its check cell (0-based)."""

    id: str
    solution: int
    check: int | None


def exercise_cells(nb, chapter: int, where: str = "notebook") -> tuple[list[ExerciseCells], list[int]]:
    """The code exercises of a solution notebook, and the markdown cells holding a written answer.

    The k-th code `### BEGIN SOLUTION` block is exercise "chapter.k" (the number its stub
    says). Its check cell is the first code cell after its solution cell that calls `.check(`
    (a solution cell holding several blocks is followed by their checks, in order). A cell
    holding both a solution block and a `.check(` call is a MarkerError: nbgrader locks the
    check cell, so it must be a cell of its own.
    """
    found: list[ExerciseCells] = []
    answers: list[int] = []
    latest: list[ExerciseCells] = []  # the exercises of the most recent solution cell
    for i, cell in enumerate(nb.cells):
        lines = [line.strip() for line in cell.source.split("\n")]
        blocks = lines.count(BEGIN_SOLUTION)
        if cell.cell_type == "markdown" and blocks:
            answers.append(i)
        if cell.cell_type != "code":
            continue
        calls = bool(_CHECK_CALL.search(cell.source))
        if blocks and calls:
            raise MarkerError(
                f"{where} cell {i + 1}: holds both a {BEGIN_SOLUTION!r} block and a `.check(` call; put the check "
                "in a cell of its own below the solution (nbgrader locks that cell, and the grader scores it)"
            )
        if blocks:
            latest = [ExerciseCells(f"{chapter}.{len(found) + k + 1}", i, None) for k in range(blocks)]
            found += latest
        elif calls:
            open_ = [e for e in latest if e.check is None]
            if open_:
                open_[0].check = i
    return found, answers


def add_nbgrader_metadata(nb, chapter: int, where: str = "notebook"):
    """Give `nb`'s exercise cells nbgrader's cell metadata (schema 3); returns `nb`, changed in place.

    Solution cell: {solution: true, grade: false, locked: false, grade_id: "N_k-solution"};
    check cell: {grade: true, solution: false, locked: true, grade_id: "N_k", points: P}, keeping
    the points already there (1 when none); a markdown answer cell: {solution: true,
    grade: true, points: 0 unless set, grade_id: "N_answerK"} (nbgrader grades written answers by
    hand; lmcourse's grader does not score them). Stale metadata this function wrote earlier is
    removed; an instructor's other nbgrader cells are kept. Idempotent.
    """
    exercises, answers = exercise_cells(nb, chapter, where)
    wanted: dict[int, dict] = {}
    for ex in exercises:
        gid = grade_id(ex.id)
        # A cell holding several solution blocks is named after its first.
        wanted.setdefault(ex.solution, {"grade": False, "grade_id": f"{gid}-solution", "locked": False,
                                        "schema_version": NBGRADER_SCHEMA, "solution": True})
        if ex.check is not None:
            points = _points(nb.cells[ex.check], f"{where} cell {ex.check + 1}", default=1)
            wanted[ex.check] = {"grade": True, "grade_id": gid, "locked": True, "points": points,
                                "schema_version": NBGRADER_SCHEMA, "solution": False}
    for k, i in enumerate(answers, 1):
        points = _points(nb.cells[i], f"{where} cell {i + 1}", default=0)
        wanted[i] = {"grade": True, "grade_id": f"{chapter}_answer{k}", "locked": False, "points": points,
                     "schema_version": NBGRADER_SCHEMA, "solution": True}
    for i, cell in enumerate(nb.cells):
        if i in wanted:
            cell.metadata["nbgrader"] = wanted[i]
        elif _OUR_GRADE_ID.match(str(cell.metadata.get("nbgrader", {}).get("grade_id", ""))):
            del cell.metadata["nbgrader"]
    return nb


def _lock_like_nbgrader(nb) -> None:
    """What nbgrader's LockCells does to a release: check cells cannot be edited or deleted, solution cells not deleted."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.metadata["deletable"] = False
        elif meta.get("grade") or meta.get("locked"):
            cell.metadata["deletable"] = False
            cell.metadata["editable"] = False


def _stale_metadata(path: Path) -> tuple[object, list[int]]:
    """The solution notebook at `path` with its nbgrader metadata brought up to date, and the
    (1-based) cells whose metadata that changed; no cells when it was already right."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    before = [json.dumps(c.metadata.get("nbgrader"), sort_keys=True) for c in nb.cells]
    add_nbgrader_metadata(nb, chapter_number(path), str(path))
    after = [json.dumps(c.metadata.get("nbgrader"), sort_keys=True) for c in nb.cells]
    return nb, [i for i, (a, b) in enumerate(zip(before, after), 1) if a != b]


def _points(cell, where: str, *, default: float) -> float:
    """The points a cell's nbgrader metadata gives (`default` when none); ValueError when not a number >= 0."""
    meta = cell.metadata.get("nbgrader")
    if not isinstance(meta, dict) or "points" not in meta or not meta.get("grade"):
        return default
    points = meta["points"]
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not points >= 0 or points == float("inf"):
        raise ValueError(f"{where}: nbgrader points must be a number >= 0, got {points!r}")
    return points


def exercise_points(solutions_dir: Path) -> dict[str, float]:
    """Points per exercise id ("N.M") from the solution notebooks' nbgrader metadata.

    An exercise's points are those of its check cell (`metadata.nbgrader.points` where
    `grade` is true); an exercise whose check cell has none, or that has no check cell, is
    worth 1. Every code exercise of every solutions notebook is listed; a missing folder
    gives {} (the caller counts 1 per exercise then). ValueError for points that are not a
    number >= 0, and for two notebooks of one chapter (their ids would collide), naming the files.
    """
    solutions_dir = Path(solutions_dir)
    points: dict[str, float] = {}
    chapters: dict[int, Path] = {}
    for path in sorted(p for p in solutions_dir.glob("*.ipynb") if p.is_file()):
        chapter = chapter_number(path)
        if chapter in chapters:
            raise ValueError(f"{chapters[chapter]} and {path}: two solution notebooks for chapter {chapter}; "
                             f"exercise ids (N.M) need one notebook per chapter")
        chapters[chapter] = path
        nb = read_notebook(path)
        exercises, _ = exercise_cells(nb, chapter, str(path))
        for ex in exercises:
            cell = nb.cells[ex.check] if ex.check is not None else None
            got = _points(cell, f"{path} cell {ex.check + 1}", default=1) if cell is not None else 1
            points[ex.id] = float(got)
    return points


NO_EXERCISES = {"lmcourse": {"exercises": 0}}


def build_exercise(solution_path: Path):
    """The student version of a solution notebook (a new notebook; nothing is written).

    MarkerError (naming the file, and the cell and line where there is one) for bad or
    misspelt markers, and for a notebook with no solution block unless its metadata says
    it has no exercises: {"lmcourse": {"exercises": 0}}.
    """
    import nbformat

    solution_path = Path(solution_path)
    nb = nbformat.read(solution_path, as_version=4)
    chapter = chapter_number(solution_path)
    add_nbgrader_metadata(nb, chapter, str(solution_path))
    _lock_like_nbgrader(nb)
    code_blocks, text_blocks = [0], [0]
    for i, cell in enumerate(nb.cells, 1):
        where = f"{solution_path} cell {i}"
        if cell.cell_type == "code":
            cell.source = _strip_code(cell.source, where, code_blocks, chapter)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            cell.source = _strip_markdown(cell.source, where, text_blocks)
    blocks = code_blocks[0] + text_blocks[0]
    declared = nb.metadata.get("lmcourse", {}).get("exercises") if isinstance(nb.metadata.get("lmcourse"), dict) else None
    if declared is not None:
        if isinstance(declared, bool) or not isinstance(declared, int) or declared < 0:
            raise MarkerError(f"{solution_path}: metadata lmcourse.exercises must be a whole number >= 0, got {declared!r}")
        if declared != blocks:
            raise MarkerError(
                f"{solution_path}: its metadata says {declared} exercise(s) (lmcourse.exercises) "
                f"but it has {blocks} {BEGIN_SOLUTION!r} block(s)"
            )
    elif blocks == 0:
        raise MarkerError(
            f"{solution_path}: no {BEGIN_SOLUTION!r} block, so its exercise would hold the whole solution. "
            f"Mark the solution code; or, if this notebook has no exercises, say so in its metadata: "
            f"{json.dumps(NO_EXERCISES)}"
        )
    nb.metadata.pop("widgets", None)
    return nb


@dataclass
class Build:
    """What `build_exercises` did: files written (changed or new), unchanged, strays found, strays removed,
    and solution notebooks whose nbgrader metadata it added or brought up to date."""

    written: list[Path]
    unchanged: list[Path]
    strays: list[Path]
    removed: list[Path]
    metadata: list[Path] = field(default_factory=list)


def _solution_sources(root: Path) -> list[Path]:
    folder = Path(root) / "solutions"
    if not folder.is_dir():
        raise NothingToBuild(f"{folder}: no such folder, so there is nothing to build exercises from; exercises/ was left as it is")
    sources = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not sources:
        raise NothingToBuild(f"{folder} holds no notebooks, so there is nothing to build exercises from; exercises/ was left as it is")
    return sources


def _strays(root: Path, names: set[str]) -> list[Path]:
    """exercises/*.ipynb with no solution of the same name (and exercises/checks.py with no
    solutions/checks.py): files the generator did not write, or wrote from a source now gone."""
    root = Path(root)
    strays = [p for p in (root / "exercises").glob("*.ipynb") if p.name not in names]
    copy = root / "exercises" / CHECKS_FILE
    if copy.is_file() and not (root / "solutions" / CHECKS_FILE).is_file():
        strays.append(copy)
    return sorted(strays)


CHECKS_FILE = "checks.py"  # a course's own exercise declarations, in solutions/ and (copied) in exercises/


def _course_checks(root: Path) -> bytes | None:
    """solutions/checks.py's bytes, after making sure it imports and clashes with nothing; None when absent."""
    from .course import course_exercises

    src = Path(root) / "solutions" / CHECKS_FILE
    if not src.is_file():
        return None
    course_exercises(root)  # CourseChecksError (a ValueError) naming the file when it cannot be used
    return src.read_bytes()


def build_exercises(root: Path, *, prune: bool = False) -> Build:
    """Write exercises/NN.ipynb from each solutions/NN.ipynb under the course folder `root`.

    Every exercise is built before any is written, so a marker error writes nothing.
    Only exercises named after a solution are (over)written: those are the generator's.
    Any other exercises/*.ipynb (a "…-Copy1.ipynb", an exercise whose solution was removed)
    is a stray: listed, and deleted only with `prune=True`. NothingToBuild when solutions/
    is missing or empty. Solution notebooks whose nbgrader metadata is missing or stale get
    it (only that metadata changes). A solutions/checks.py is imported first (a
    CourseChecksError names it when it fails or clashes), then copied to exercises/checks.py.
    """
    root = Path(root)
    sources = _solution_sources(root)
    built = [(root / "exercises" / src.name, dumps(build_exercise(src))) for src in sources]
    stale = [(src, _stale_metadata(src)) for src in sources]
    checks_source = _course_checks(root)
    result = Build([], [], _strays(root, {src.name for src in sources}), [])
    for src, (nb, cells) in stale:
        if cells:
            write_atomic(src, dumps(nb))
            result.metadata.append(src)
    for dst, text in built:
        if dst.exists() and dst.read_text(encoding="utf-8") == text:
            result.unchanged.append(dst)
        else:
            write_atomic(dst, text)
            result.written.append(dst)
    if checks_source is not None:
        dst = root / "exercises" / CHECKS_FILE
        if dst.is_file() and dst.read_bytes() == checks_source:
            result.unchanged.append(dst)
        else:
            write_atomic(dst, checks_source)
            result.written.append(dst)
    if prune:
        for stray in result.strays:
            stray.unlink()
            result.removed.append(stray)
    return result


def check_exercises(root: Path) -> list[str]:
    """Every problem that `build_exercises(root, prune=True)` would fix: empty when exercises/ is in sync
    (and solutions/ carries its nbgrader metadata, and exercises/checks.py is solutions/checks.py).

    NothingToBuild when solutions/ is missing or empty (never "in sync" with nothing).
    """
    root = Path(root)
    problems = []
    sources = _solution_sources(root)
    for src in sources:
        _, cells = _stale_metadata(src)
        if cells:
            problems.append(f"solutions/{src.name}: nbgrader metadata missing or out of date in cell(s) "
                            f"{', '.join(map(str, cells))} (`lmcourse exercises build` writes it)")
    checks_source = _course_checks(root)
    if checks_source is not None:
        dst = root / "exercises" / CHECKS_FILE
        if not dst.is_file():
            problems.append(f"exercises/{CHECKS_FILE}: missing")
        elif dst.read_bytes() != checks_source:
            problems.append(f"exercises/{CHECKS_FILE}: differs from solutions/{CHECKS_FILE}")
    for src in sources:
        dst = root / "exercises" / src.name
        want = dumps(build_exercise(src))
        if not dst.exists():
            problems.append(f"exercises/{src.name}: missing")
        elif dst.read_text(encoding="utf-8") != want:
            problems.append(f"exercises/{src.name}: differs from what `lmcourse exercises build` writes")
    for extra in _strays(root, {p.name for p in sources}):
        problems.append(f"exercises/{extra.name}: has no solutions/{extra.name} (a stray: `lmcourse exercises build --prune` removes it)")
    return problems
