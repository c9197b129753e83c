"""Grading: score submitted exercise notebooks with the grader's own checks.

Each notebook runs in its own process (a *worker*) with a wall-clock, CPU-time and memory
limit, in an empty temporary folder. The worker executes the notebook's code cells (each
with its own time limit; a failing cell is reported and skipped), then calls the student's
function for each exercise of that chapter on the grader's cases and sends the *values*
back as JSON. The grader's process never runs student code: it compares those values with
its own reference (`Exercise.judge`), so a notebook that redefines the checks, prints
"✓", or writes files changes nothing. A call into the reference implementation of the very
function being graded (the exercise's reference, or the library and PyTorch functions it
declares in `Exercise.forbidden`) is caught by a tripwire and scores 0 for that exercise.
A notebook that loops forever or crashes earns what it earned before that, and does not
stop the grading of the others.

    lmcourse grade SUBMISSIONS [--out gradebook.csv] [--feedback DIR]

SUBMISSIONS holds one folder per student with their NN_topic.ipynb files.

Before any notebook runs, `grade_folder` checks what would otherwise be blamed on a student
or found only at the end: the limits are positive; SUBMISSIONS holds per-student folders with
notebooks in them; the gradebook and the feedback folder can be written; and one worker
starts and finishes under the limits (a *probe* with an empty notebook), so a memory limit or
timeout too small for the worker itself is an error naming the limit. A worker that later
fails to start (before any student code ran) stops the grading with `GraderError`: it is
the grader's failure, never a student's 0.

Fairness to honest notebooks: every code cell runs, after IPython's own input transformer
(`!cmd` and `%magic` become calls on a `get_ipython()` stand-in that runs no shell command;
`%time`/`%%time`/`%%capture` still run their code), and the checks' `check()`, `hint()`,
`solution()` do nothing in the worker. Each call gets deep copies of its arguments, so changing
an input in place cannot change a later case. NumPy scalars keep their type across the JSON
boundary. A student folder with several notebooks for one chapter grades only the one named
exactly NN_topic.ipynb and reports the others; when no single one is named so, none is graded
("error: two notebooks for chapter NN"). Feedback escapes or fences whatever came from the
student, and the grader reads at most OUTPUT_BYTES of a worker's result (more is that
student's error) and only the end of its stderr.
"""
from __future__ import annotations

import copy
import csv
import errno
import html
import io
import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .checks import _resolve
from .checks import Case, Exercise, Result, load_all
from .notebooks import chapter_number

CELL_SECONDS = 60
CALL_SECONDS = 30
NOTEBOOK_SECONDS = 600
MEMORY_MB = 2048
# The most the grader reads back from one worker: its result file (more is that student's
# error, never the grader's memory) and, for the note on a crash, the end of its stderr.
OUTPUT_BYTES = 64 * 2**20
STDERR_TAIL_BYTES = 4096
_EXIT_TOO_BIG = 27  # the worker's exit status when its result exceeds the file-size limit


class GraderError(RuntimeError):
    """The grader itself could not grade (a worker that cannot start): nobody in the class is to blame."""


# -- values across the process boundary: JSON only, never pickle from student code ---------
def encode(value: Any) -> Any:
    """A JSON-safe form of a return value (tensors, arrays, numbers, str, lists, tuples, dicts)."""
    import numpy as np

    if isinstance(value, np.generic):  # before int/float: np.float64 is a float, np.bool_ is not a bool
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cannot grade a NumPy scalar of dtype {value.dtype}")
        return {"scalar": value.dtype.str, "data": _flat(np.asarray(value))[0]}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": repr(value)}
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        a = value.detach().cpu()
        if a.is_complex():
            raise TypeError("cannot grade a complex tensor")
        dtype = str(a.dtype).replace("torch.", "")
        if a.dtype in (_torch().float16, _torch().bfloat16):
            a = a.float()
        return {"tensor": dtype, "shape": list(a.shape), "data": _flat(a.numpy())}
    if isinstance(value, np.ndarray):  # 0-d arrays too: shape []
        a = np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"cannot grade an array of dtype {a.dtype}")
        return {"array": a.dtype.str, "shape": list(a.shape), "data": _flat(a)}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot grade a value of type {type(value).__name__}")


def _torch():
    import torch

    return torch


def _flat(a) -> list:
    return [repr(float(x)) if a.dtype.kind == "f" else int(x) for x in a.reshape(-1).tolist()]


def decode(obj: Any) -> Any:
    """Inverse of `encode`; accepts only the shapes `encode` makes."""
    import numpy as np

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"not an encoded value: {str(obj)[:80]}")
    if "int" in obj:
        return int(obj["int"])
    if "float" in obj:
        return float(obj["float"])
    if "scalar" in obj:
        dtype = np.dtype(obj["scalar"])
        if dtype.kind not in "biuf":
            raise ValueError(f"not a numeric NumPy dtype: {obj['scalar']}")
        x = obj["data"]
        return dtype.type(float(x) if isinstance(x, str) else x)
    if "array" in obj or "tensor" in obj:
        data = [float(x) if isinstance(x, str) else x for x in obj["data"]]
        if "array" in obj:
            return np.array(data, dtype=np.dtype(obj["array"])).reshape(obj["shape"])
        torch = _torch()
        dtype = getattr(torch, obj["tensor"])
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"not a torch dtype: {obj['tensor']}")
        return torch.tensor(data, dtype=torch.float64 if dtype.is_floating_point else dtype).to(dtype).reshape(obj["shape"])
    if "list" in obj:
        return [decode(v) for v in obj["list"]]
    if "tuple" in obj:
        return tuple(decode(v) for v in obj["tuple"])
    if "dict" in obj:
        return {_hashable(decode(k)): decode(v) for k, v in obj["dict"]}
    raise ValueError(f"not an encoded value: {str(obj)[:80]}")


def _hashable(k: Any) -> Any:
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    return k


# -- the worker: runs in its own process, the only place student code runs -----------------
class _Tripwire(BaseException):
    """Raised when the student's function calls a forbidden reference (not an Exception, so
    a bare `except Exception` in student code cannot swallow it)."""


class _TimeUp(BaseException):
    pass


def _alarm(seconds: float):
    def handler(signum, frame):
        raise _TimeUp(f"took longer than {seconds:g} s")

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _disarm():
    signal.setitimer(signal.ITIMER_REAL, 0)


def _code_cells(nb_path: Path) -> list[str]:
    """Every code cell as Python, through IPython's own input transformer (as Jupyter would):
    `!ls` becomes `get_ipython().system('ls')`, `%time x` `get_ipython().run_line_magic(...)`,
    and a line that merely starts with `!=` (a PEP 8 continuation) stays what it is."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(nb_path, as_version=4)
    manager = TransformerManager()
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            cells.append(manager.transform_cell(cell.source))
        except Exception:  # noqa: BLE001 - left as is: compiling it reports the error as the cell's
            cells.append(cell.source)
    return cells


class _Discard(io.TextIOBase):
    """The notebook's prints: dropped, so that printing gigabytes costs the worker nothing."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        return len(s)


class _NoShell:
    """`get_ipython()` in the worker: a minimal stand-in, not an InteractiveShell (which would run
    shell commands and every magic). Shell escapes (`!cmd`, `x = !cmd`, `%system`, `%%bash`) run
    nothing, so a submission cannot reach a shell through the grader; magics do nothing, except
    the timing and capturing ones that also run code (`%time stmt`, `%%time`, `%%capture`), whose
    code runs as any other cell code so what it defines is defined."""

    _RUNS_ITS_CODE = {"time", "capture", "prun"}

    def __init__(self, namespace: dict, cell: list):
        self._namespace, self._cell = namespace, cell
        self.user_ns = namespace

    def _run(self, code: str) -> None:
        exec(compile(code, f"<cell {self._cell[0]}>", "exec"), self._namespace)

    def system(self, cmd: str = "", *args, **kwargs) -> None:
        return None

    def getoutput(self, cmd: str = "", *args, **kwargs) -> list:
        return []

    def run_line_magic(self, name: str, line: str = "", *args, **kwargs) -> None:
        if name in ("time",) and line.strip():
            self._run(line)

    def run_cell_magic(self, name: str, line: str = "", cell: str = "", *args, **kwargs) -> None:
        if name in self._RUNS_ITS_CODE:
            self._run(cell)

    def __getattr__(self, name: str):  # any other shell method a cell reaches: does nothing
        return lambda *args, **kwargs: None


def worker(job: dict) -> dict:
    """Execute the notebook, then call each exercise's function on its cases; JSON-safe result."""
    nb_path = Path(job["notebook"])
    log: list[str] = []
    namespace: dict[str, Any] = {"__name__": "__main__"}
    armed: dict[str, Any] = {"names": None, "hit": None}

    # Tripwires go in before any student code, so `from x import f` also gets the wire.
    for dotted in sorted({d for ex in job["exercises"] for d in ex["forbidden"]}):
        try:
            owner, attr = _resolve(dotted)
            original = getattr(owner, attr)
        except Exception:
            continue

        def wire(*args, __orig=original, __name=dotted, **kwargs):
            if armed["names"] is not None and __name in armed["names"]:
                armed["hit"] = __name
                raise _Tripwire(__name)
            return __orig(*args, **kwargs)

        try:
            setattr(owner, attr, wire)
        except (TypeError, AttributeError):
            continue

    # `ch00.stable_softmax.reference` must lead to the wire too, not around it.
    registry = load_all()
    for ex in job["exercises"]:
        try:
            owner, attr = _resolve(ex["forbidden"][0])
            registry[ex["id"]].reference = getattr(owner, attr)
        except Exception:
            pass

    if job.get("started"):
        # Set-up is done and no student code has run yet: from here on a crash is the notebook's.
        Path(job["started"]).write_text("started")

    # Every cell runs, the checks' own calls included: in the worker they do nothing (the grader
    # judges the returned values itself), so a cell that also defines the function is not lost.
    from . import checks as _checks

    for method in ("check", "hint", "solution"):
        setattr(_checks.Exercise, method, lambda self, *args, **kwargs: None)
    cell_number = [0]
    shell = _NoShell(namespace, cell_number)
    namespace["get_ipython"] = lambda: shell

    real_stdout, real_stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _Discard()  # the notebook's prints are not the grader's output
    try:
        for i, source in enumerate(_code_cells(nb_path), 1):
            cell_number[0] = i
            try:
                _alarm(job["cell_seconds"])
                exec(compile(source, f"<cell {i}>", "exec"), namespace)
            except _TimeUp as exc:
                log.append(f"cell {i} skipped: it {exc}")
            except BaseException as exc:  # noqa: BLE001 - any failure of student code is reported, not fatal
                if isinstance(exc, SystemExit):
                    log.append(f"cell {i} called exit(); later cells still ran")
                else:
                    log.append(f"cell {i} raised {type(exc).__name__}: {str(exc)[:200]}")
            finally:
                _disarm()

        results = {}
        for ex in job["exercises"]:
            fn = namespace.get(ex["name"])
            calls = []
            if not callable(fn):
                results[ex["id"]] = {"missing": True}
                continue
            for args, kwargs in ex["cases"]:
                armed["names"], armed["hit"] = set(ex["forbidden"]), None
                try:
                    # Fresh copies for every call: a function that changes its input in place
                    # (`x /= T`) must not change the next case, which may share that array.
                    call_args, call_kwargs = copy.deepcopy((args, kwargs))
                    _alarm(job["call_seconds"])
                    out = fn(*call_args, **call_kwargs)
                    _disarm()
                    armed["names"] = None
                    calls.append({"value": encode(out)})
                except _Tripwire:
                    calls.append({"forbidden": armed["hit"]})
                    break
                except _TimeUp as exc:
                    calls.append({"raised": "TimeoutError", "message": f"your function {exc}", "where": ""})
                    break
                except NotImplementedError:
                    calls.append({"not_implemented": True})
                    break
                except BaseException as exc:  # noqa: BLE001
                    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
                    where = "\n".join(f"  at line {f.lineno} in {f.name} ({f.filename[1:-1]}): {(f.line or '').strip()}" for f in frames[-3:])
                    calls.append({"raised": type(exc).__name__, "message": str(exc)[:300], "where": where})
                    break
                finally:
                    _disarm()
                    armed["names"] = None
            results[ex["id"]] = {"calls": calls}
    finally:
        sys.stdout, sys.stderr = real_stdout, real_stderr
    return {"log": log, "results": results}


def _limits(memory_mb: int, cpu_seconds: int, file_bytes: int):
    def apply():  # runs in the child before exec
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        # No file the worker writes (its result, its stderr) grows past this: SIGXFSZ ends it.
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        os.setsid()

    return apply


# -- the grader's side -------------------------------------------------------------------
@dataclass
class NotebookGrade:
    student: str
    notebook: str
    scores: dict[str, float] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for the instructor, printed by `lmcourse grade`


class _Replay:
    """Stands in for the student's function in `Exercise.judge`: returns the values the worker sent."""

    def __init__(self, calls: list[dict]):
        self.calls = list(calls)

    def __call__(self, *args, **kwargs):
        if not self.calls:
            raise _Missing()
        c = self.calls.pop(0)
        if "value" in c:
            return decode(c["value"])
        if c.get("not_implemented"):
            raise NotImplementedError
        exc = StudentError(c.get("message", ""))
        exc.where = c.get("where", "")
        exc.kind = c.get("raised", "Error")
        raise exc


class StudentError(Exception):
    """An exception raised inside the student's function, as reported by the worker."""

    where = ""
    kind = "Error"


class _Missing(BaseException):
    """The worker sent fewer outputs than there are cases: its data cannot be trusted."""


def exercises_for(chapter: int) -> list[Exercise]:
    return [ex for k, ex in load_all().items() if int(k.split(".")[0]) == chapter]


@dataclass
class _WorkerRun:
    status: str  # "ok", "not_started", "timed_out", "crashed" or "oversize"
    data: dict | None = None
    why: str = ""


def _run_worker(job: dict, *, timeout: float, memory_mb: int) -> _WorkerRun:
    """Run one worker process under the limits; say whether it got as far as the student's code."""
    with tempfile.TemporaryDirectory(prefix="lmcourse-grade-") as tmp:
        job_file, out_file, started = Path(tmp) / "job.pkl", Path(tmp) / "result.json", Path(tmp) / "started"
        job_file.write_bytes(pickle.dumps({**job, "started": str(started)}))
        sandbox = Path(tmp) / "cwd"
        sandbox.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LMCOURSE_GRADE",))}
        env.update({"HOME": str(sandbox), "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"})
        cmd = [sys.executable, "-m", "lmcourse.grading", str(job_file), str(out_file)]
        cap = OUTPUT_BYTES
        # Room for the honest files a worker writes (caches under HOME); the result is capped below.
        file_bytes = max(cap, 64 * 2**20) + STDERR_TAIL_BYTES
        err_file = Path(tmp) / "stderr.txt"
        timed_out = False
        with open(err_file, "wb") as err:
            # Output goes to files, not pipes: a process the notebook leaves behind cannot hang us.
            proc = subprocess.Popen(
                cmd, cwd=sandbox, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                preexec_fn=_limits(memory_mb, max(1, math.ceil(timeout)), file_bytes),
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the worker's whole session, children included
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        tail = _read_tail(err_file, STDERR_TAIL_BYTES).strip().splitlines()[-1:]
        why = f"exit {proc.returncode}" + (f": {tail[0][:300]}" if tail else "")
        if not started.exists():
            return _WorkerRun("not_started", why=f"it did not start within {timeout:g} s" if timed_out else why)
        if timed_out:
            return _WorkerRun("timed_out")
        too_big = f"the worker's result is larger than the {cap / 2**20:g} MB cap"
        if proc.returncode in (_EXIT_TOO_BIG, -signal.SIGXFSZ):
            return _WorkerRun("oversize", why=f"the worker's result is larger than the {file_bytes / 2**20:g} MB file limit")
        try:
            with open(out_file, "rb") as f:
                raw = f.read(cap + 1)  # never more than the cap, whatever the file's size
            if len(raw) > cap:
                return _WorkerRun("oversize", why=too_big)
            data = json.loads(raw)
            data["results"], data["log"]  # noqa: B018 - both must be there
        except Exception:
            return _WorkerRun("crashed", why=why)
        return _WorkerRun("ok", data=data)


def _read_tail(path: Path, n: int) -> str:
    """The last `n` bytes of a file, as text (a worker may have written gigabytes to its stderr)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read(n).decode(errors="replace")
    except OSError:
        return ""


def check_limits(*, timeout: float = NOTEBOOK_SECONDS, memory_mb: int = MEMORY_MB,
                 cell_seconds: float = CELL_SECONDS, call_seconds: float = CALL_SECONDS) -> None:
    """ValueError unless every limit is a positive number (memory a whole number of MB)."""
    for name, value in (("timeout", timeout), ("cell_seconds", cell_seconds), ("call_seconds", call_seconds)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < float("inf")):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb <= 0:
        raise ValueError(f"memory_mb must be a positive whole number of MB, got {memory_mb!r}")


def probe_worker(*, timeout: float = NOTEBOOK_SECONDS, memory_mb: int = MEMORY_MB) -> None:
    """Start one worker under the limits on an empty notebook, with every registered exercise's
    tripwires; ValueError naming the limit when it cannot finish, before anyone is graded."""
    import nbformat

    check_limits(timeout=timeout, memory_mb=memory_mb)
    exercises = list(load_all().values())
    with tempfile.TemporaryDirectory(prefix="lmcourse-probe-") as tmp:
        empty = Path(tmp) / "00_probe.ipynb"
        empty.write_text(nbformat.writes(nbformat.v4.new_notebook()))
        job = {
            "notebook": str(empty), "cell_seconds": CELL_SECONDS, "call_seconds": CALL_SECONDS,
            "exercises": [{"id": ex.id, "name": ex.name, "forbidden": list(ex.forbidden_names()), "cases": []}
                          for ex in exercises],
        }
        run = _run_worker(job, timeout=timeout, memory_mb=memory_mb)
    if run.status != "ok":
        raise ValueError(
            f"the grader's worker cannot run an empty notebook under these limits (--memory-mb {memory_mb}, "
            f"--timeout {timeout:g}): {run.why or 'it did not finish in time'}. Raise the limit "
            f"(the worker alone imports torch and needs about 1 GB of address space); nothing was graded"
        )


def _check_writable(path: Path, what: str, *, folder: bool) -> None:
    """ValueError unless `path` (a file, or a folder when `folder`) can be written; creates its folder."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path}: exists and is not a folder; nothing was graded")
    if not folder and path.is_dir():
        raise ValueError(f"{what} {path}: is a folder, give a file name; nothing was graded")
    where = path if folder else path.parent
    # The folders this probe creates are removed again: a run refused later leaves nothing behind.
    created = [p for p in (where, *where.parents) if not p.exists()]
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".lmcourse-write-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot be written ({exc.strerror or exc}); nothing was graded") from None
    finally:
        for p in created:  # innermost first
            try:
                p.rmdir()
            except OSError:
                break


def _student_folders(submissions: Path) -> list[Path]:
    """The per-student folders; ValueError for a layout that would grade nothing or miss notebooks."""
    expected = f"expected one folder per student: {submissions}/<student>/NN_topic.ipynb"
    loose = sorted(p.name for p in submissions.glob("*.ipynb"))
    if loose:
        shown = ", ".join(loose[:5]) + (f" and {len(loose) - 5} more" if len(loose) > 5 else "")
        raise ValueError(f"{submissions}: notebooks directly in the submissions folder ({shown}); {expected}")
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise ValueError(f"{submissions}: no student folders, nothing to grade; {expected}")
    if not any(nb.is_file() for s in students for nb in s.glob("*.ipynb")):
        deeper = sorted(str(p.relative_to(submissions)) for p in submissions.rglob("*.ipynb"))[:3]
        found = f"; found only deeper ones, e.g. {', '.join(deeper)}" if deeper else ""
        raise ValueError(f"{submissions}: no student folder holds a notebook, nothing to grade{found}; {expected}")
    return students


def grade_notebook(
    path: Path,
    student: str,
    *,
    timeout: int = NOTEBOOK_SECONDS,
    memory_mb: int = MEMORY_MB,
    cell_seconds: int = CELL_SECONDS,
    call_seconds: int = CALL_SECONDS,
) -> NotebookGrade:
    """Grade one notebook in a worker process; never raises for anything the notebook does.

    ValueError for a limit that is not positive; GraderError when the worker could not start.
    """
    check_limits(timeout=timeout, memory_mb=memory_mb, cell_seconds=cell_seconds, call_seconds=call_seconds)
    path = Path(path).resolve()
    grade = NotebookGrade(student, path.name)
    try:
        chapter = chapter_number(path)
    except ValueError as exc:
        grade.notes.append(str(exc))
        return grade
    exercises = exercises_for(chapter)
    if not exercises:
        grade.notes.append(f"no exercises are registered for chapter {chapter}")
        return grade
    cases = {ex.id: ex.cases() for ex in exercises}
    job = {
        "notebook": str(path),
        "cell_seconds": cell_seconds,
        "call_seconds": call_seconds,
        "exercises": [
            {"id": ex.id, "name": ex.name, "forbidden": list(ex.forbidden_names()),
             "cases": [(c.args, c.kwargs) for c in cases[ex.id]]}
            for ex in exercises
        ],
    }
    for ex in exercises:
        grade.scores[ex.id] = 0.0
    run = _run_worker(job, timeout=timeout, memory_mb=memory_mb)
    if run.status == "not_started":
        raise GraderError(
            f"the grader's worker could not start for {path} ({run.why}); no student code had run, so this is "
            f"the grader's failure, not the student's: nothing was written. Check the limits "
            f"(--memory-mb {memory_mb}, --timeout {timeout}) and the Python environment."
        )
    if run.status == "timed_out":
        grade.notes.append(f"the notebook did not finish within {timeout} s and was stopped: nothing could be graded")
        for ex in exercises:
            grade.reports[ex.id] = f"✗ {ex.name} (Exercise {ex.id}): not graded, the notebook ran out of time"
        return grade
    if run.status == "oversize":
        grade.notes.append(f"error: {run.why}; nothing could be graded")
        for ex in exercises:
            grade.reports[ex.id] = f"✗ {ex.name} (Exercise {ex.id}): not graded, the notebook's output was too large"
        return grade
    if run.status == "crashed":
        grade.notes.append(f"the notebook crashed the grader's worker ({run.why}); nothing could be graded")
        for ex in exercises:
            grade.reports[ex.id] = f"✗ {ex.name} (Exercise {ex.id}): not graded, the notebook crashed"
        return grade
    results, log = run.data["results"], run.data["log"]
    grade.notes.extend(str(x) for x in log[:20])
    for ex in exercises:
        r = results.get(ex.id, {})
        if r.get("missing"):
            grade.reports[ex.id] = f"✗ {ex.name} (Exercise {ex.id}): no function named `{ex.name}` was defined"
            continue
        calls = r.get("calls", [])
        hit = next((c["forbidden"] for c in calls if "forbidden" in c), None)
        if hit:
            grade.reports[ex.id] = (
                f"✗ {ex.name} (Exercise {ex.id}): your function calls {hit}, the reference implementation of "
                f"this very exercise; write it yourself. Scored 0."
            )
            continue
        try:
            result = ex.judge(_Replay(calls), cases[ex.id])
        except (Exception, _Missing) as exc:  # malformed worker data: the notebook's fault, never the grader's crash
            result = Result(ex.id, "error", f"✗ {ex.name} (Exercise {ex.id}): could not read your function's output ({exc})")
        grade.reports[ex.id] = result.report
        grade.scores[ex.id] = 1.0 if result.passed else 0.0
    return grade


def grade_folder(submissions: Path, out_csv: Path, feedback_dir: Path | None = None, **limits) -> list[NotebookGrade]:
    """Grade every student folder under `submissions`; write the gradebook CSV and feedback files.

    Everything that does not depend on a student is checked first (see the module docstring):
    ValueError for bad limits, a bad layout, an unwritable output or a worker that cannot run
    under the limits; GraderError when a worker fails to start later. Nothing is written then.
    """
    submissions = Path(submissions)
    check_limits(**limits)
    if not submissions.is_dir():
        raise ValueError(f"{submissions}: not a folder of student submissions")
    students = _student_folders(submissions)
    _check_writable(Path(out_csv), "--out", folder=False)
    if feedback_dir is not None:
        _check_writable(Path(feedback_dir), "--feedback", folder=True)
    probe_worker(timeout=limits.get("timeout", NOTEBOOK_SECONDS), memory_mb=limits.get("memory_mb", MEMORY_MB))
    grades: list[NotebookGrade] = []
    for student_dir in students:
        notebooks = sorted(student_dir.glob("*.ipynb"))
        if not notebooks:
            grades.append(NotebookGrade(student_dir.name, "", notes=["no notebook submitted"]))
        for nb, warning, graded in _one_per_chapter(notebooks):
            if graded:
                grade = grade_notebook(nb, student_dir.name, **limits)
            else:
                grade = NotebookGrade(student_dir.name, "", {ex.id: 0.0 for ex in exercises_for(chapter_number(nb))})
            if warning:
                grade.notes.append(warning)
                grade.warnings.append(warning)
            grades.append(grade)
    ids = sorted({k for g in grades for k in g.scores}, key=lambda k: [int(p) for p in k.split(".")])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", *ids, "total", "max"])
    for student in [s.name for s in students]:
        mine = [g for g in grades if g.student == student]
        scores = {k: v for g in mine for k, v in g.scores.items()}
        possible = len(scores)
        total = sum(scores.values())
        w.writerow([student, *[_fmt(scores.get(k)) for k in ids], _fmt(total), possible])
    write_atomic(out_csv, buf.getvalue())
    if feedback_dir is not None:
        for student in [s.name for s in students]:
            # Everything that came from the student (names, notes, reports with their error
            # messages and values) is escaped or fenced: nothing in it is read as Markdown or HTML.
            lines = [f"# Feedback for {_md_inline(student)}", ""]
            for g in (g for g in grades if g.student == student):
                if g.notebook:
                    lines += [f"## {_md_inline(g.notebook)}: {_fmt(sum(g.scores.values()))} / {len(g.scores)}", ""]
                if g.notes:
                    lines += _md_fence("\n".join(f"note: {n}" for n in g.notes))
                for k in sorted(g.reports, key=lambda k: [int(p) for p in k.split(".")]):
                    lines += [""] + _md_fence(g.reports[k])
                lines.append("")
            write_atomic(Path(feedback_dir) / f"{student}.md", "\n".join(lines))
    return grades


# A notebook's name exactly as handed out: two digits, an underscore, a topic (no copies' "(1)", spaces).
_EXACT_NAME = re.compile(r"\d\d_[A-Za-z0-9_]+\.ipynb")


def _one_per_chapter(notebooks: list[Path]) -> list[tuple[Path, str, bool]]:
    """(notebook, warning or "", whether to grade it): a second notebook for a chapter is never graded silently.

    When a student folder holds several notebooks for one chapter, the one named exactly
    NN_topic.ipynb is graded and the others are reported (a note in the feedback, a warning from
    `lmcourse grade`); when that does not single one out (e.g. 00_x_v1 and 00_x_v2), none is
    graded: the chapter scores 0 with "error: two notebooks for chapter NN" until one is removed.
    A name without a chapter number is passed on to be graded (`grade_notebook` reports it).
    """
    by_chapter: dict[int, list[Path]] = {}
    out: list[tuple[Path, str, bool]] = []
    for nb in notebooks:
        try:
            by_chapter.setdefault(chapter_number(nb), []).append(nb)
        except ValueError:
            out.append((nb, "", True))
    for chapter, nbs in sorted(by_chapter.items()):
        if len(nbs) == 1:
            out.append((nbs[0], "", True))
            continue
        count = "two" if len(nbs) == 2 else str(len(nbs))
        names = ", ".join(nb.name for nb in nbs)
        exact = [nb for nb in nbs if _EXACT_NAME.fullmatch(nb.name)]
        if len(exact) == 1:
            others = ", ".join(nb.name for nb in nbs if nb != exact[0])
            out.append((exact[0], f"{count} notebooks for chapter {chapter:02d} ({names}): graded {exact[0].name}, "
                        f"the one named exactly NN_topic.ipynb; {others} was not graded", True))
        else:
            out.append((nbs[0], f"error: {count} notebooks for chapter {chapter:02d} ({names}) and no single one is "
                        f"named exactly NN_topic.ipynb: none was graded; keep only one", False))
    return out


def _md_inline(text: str) -> str:
    """`text` as literal Markdown inline text: HTML and Markdown punctuation escaped, on one line."""
    text = " ".join(str(text).splitlines())
    text = re.sub(r"([\\`*_\[\]#!|~{}])", r"\\\1", text)
    return html.escape(text, quote=False)


def _md_fence(text: str) -> list[str]:
    """`text` in a fenced code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _main(argv: list[str]) -> int:
    job_file, out_file = Path(argv[0]), Path(argv[1])
    job = pickle.loads(job_file.read_bytes())  # written by the grader's own process
    job_file.unlink()
    # A file written past RLIMIT_FSIZE fails with OSError (EFBIG) in that cell instead of killing the
    # worker (CPython ignores SIGXFSZ already; said here so that nothing relies on that by accident).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    result = worker(job)
    # Written last: whatever the notebook wrote to this path before is replaced.
    try:
        write_atomic(out_file, json.dumps(result))
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            return _EXIT_TOO_BIG
        raise
    return 0


if __name__ == "__main__":  # the worker process
    sys.exit(_main(sys.argv[1:]))
