"""Grading: score submitted exercise notebooks with the grader's own checks, on hidden cases.

    lmcourse grade SUBMISSIONS [--out gradebook.csv] [--feedback DIR] [--seed N] [--jobs N]
                               [--root DIR] [--no-sandbox]

SUBMISSIONS holds one folder per student with their NN_topic.ipynb files. Each notebook is
run by a *worker* process inside a bubblewrap sandbox (`lmcourse.sandbox`: unprivileged user,
read-only root, a private folder holding only its copy of the notebook, no network, its own pid
namespace, memory and process count bounded for the whole worker). The worker gets its job on
stdin, executes every code cell, then calls the student's function for each exercise on the
grader's cases and streams one JSON line per exercise back. The grader never runs student code
and never trusts what a worker says about itself: it judges the returned *values* with the
exercise's reference (`Exercise.judge`) in its own process, where the references live.

What a submission cannot do:

- see the references: in the worker `lmcourse.exercises`, `lmcourse.exercises.*` and an
  instructor's `checks` are stub modules (a meta-path hook; the sandbox also hides the files)
  whose exercises have no-op check/hint/solution; calling anything else on them is "forbidden";
- know the cases: they come from `Exercise.cases(seed)` with a seed the student never sees
  (`--seed`, else a random one, printed and recorded in the gradebook so a run can be redone);
- call what the exercise forbids: Python-level wires on the declared library names (the
  function's own `__code__` is swapped for a trampoline, so held references, `__kwdefaults__`
  and frames lead to the wire too; a meta-path hook re-wires a module that is reloaded or
  re-imported), plus `lmcourse.forbid.OpGuard` at the ATen operator (every alias meets there)
  around each call and around encoding its result. Status "forbidden";
- return something that runs code while it is encoded: only exact `torch.Tensor`,
  `numpy.ndarray` (numeric), NumPy and Python scalars and list/tuple/dict containers are taken;
- lose or steal another exercise's marks: a timeout, crash or `os._exit` during exercise k scores
  k "timeout", "error" or "memory" and a fresh worker (the notebook re-executed, the cell that
  crashed it skipped) grades the exercises after k. The deadline is the grader's, so a function
  that swallows an alarm still stops at it. A cell that crashes or stalls the worker is skipped.

Fairness to honest notebooks: every code cell runs after IPython's own input transformer
(`!cmd` and `%magic` become calls on a `get_ipython()` stand-in that runs no shell command;
`%time`/`%%time`/`%%capture` still run their code); each call gets deep copies of its arguments;
NumPy scalars keep their type across the JSON boundary. A student folder with several notebooks
for one chapter grades only the one named exactly NN_topic.ipynb and reports the others.

The gradebook is long-format CSV: student, exercise, points, max, status, seed; status is one of
`STATUSES`. The assignment is every chapter that at least one student submitted a notebook for
(or the chapters given with `chapters=`): each student gets a row for every exercise of it,
"not attempted" for a chapter they did not submit. Points per exercise come from the solution
notebooks' nbgrader metadata (`notebooks.exercise_points`, default 1). Symlinked student folders
and notebooks are refused (a note, status "error"). Feedback escapes or fences whatever came from
the student.
"""
from __future__ import annotations

import copy
import csv
import html
import importlib.abc
import importlib.machinery
import io
import json
import math
import os
import pickle
import random
import re
import signal
import sys
import threading
import time
import traceback
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .atomic import write_atomic
from .checks import Exercise, Result, _resolve, load_all
from .notebooks import chapter_number

CELL_SECONDS = 60
EXERCISE_SECONDS = 30
NOTEBOOK_SECONDS = 600
MEMORY_MB = 2048
MAX_PROCS = 64
# The most the grader reads back from one worker (all its lines together): more is that
# student's error, never the grader's memory.
OUTPUT_BYTES = 64 * 2**20

STATUSES = ("passed", "failed", "not attempted", "error", "timeout", "memory", "forbidden")
_STUBBED = ("lmcourse.exercises", "checks")
_JOB_FILE = "job.pkl"  # in the worker's private folder  # never importable in the worker: they hold the references


class GraderError(RuntimeError):
    """The grader itself could not grade (a worker that cannot start): nobody in the class is to blame."""


# -- values across the process boundary: JSON only, never pickle from student code ---------
def encode(value: Any) -> Any:
    """A JSON-safe form of a return value; TypeError for anything but the exact types below.

    Exact types only (`type(x) is ...`, never isinstance): a subclass could run code of its own
    (a lazy `.detach()`) while it is encoded. Taken: None, bool, int, float, str, NumPy scalars
    and arrays of numeric dtype, `torch.Tensor` (not complex), and list / tuple / dict of those.
    """
    import numpy as np

    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return {"int": str(value)}
    if t is float:
        return {"float": repr(value)}
    if t in _NUMPY_SCALARS:
        return {"scalar": value.dtype.str, "data": _flat(np.asarray(value))[0]}
    if t is np.ndarray:  # 0-d arrays too: shape []
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cannot grade an array of dtype {value.dtype}")
        return {"array": value.dtype.str, "shape": list(value.shape), "data": _flat(value)}
    torch = sys.modules.get("torch")
    if torch is not None and t is torch.Tensor:
        a = value.detach().cpu()
        if a.is_complex() or a.dtype not in _TENSOR_DTYPES:
            raise TypeError(f"cannot grade a tensor of dtype {a.dtype}")
        dtype = str(a.dtype).replace("torch.", "")
        if a.dtype in (torch.float16, torch.bfloat16):
            a = a.float()
        return {"tensor": dtype, "shape": list(a.shape), "data": _flat(a.numpy())}
    if t is list or t is tuple:
        return {t.__name__: [encode(v) for v in value]}
    if t is dict:
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot grade a value of type {t.__module__}.{t.__qualname__}")


def _numpy_scalars() -> frozenset:
    import numpy as np

    kinds = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
             np.float16, np.float32, np.float64, np.longlong, np.ulonglong]
    return frozenset(kinds)


def _tensor_dtypes() -> frozenset:
    import torch

    return frozenset([torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                      torch.float16, torch.bfloat16, torch.float32, torch.float64])


class _Lazy:
    """A set computed on first use (the grader imports NumPy and torch only when it needs them)."""

    def __init__(self, make: Callable[[], frozenset]):
        self._make, self._value = make, None

    def __contains__(self, x) -> bool:
        if self._value is None:
            self._value = self._make()
        return x in self._value


_NUMPY_SCALARS = _Lazy(_numpy_scalars)
_TENSOR_DTYPES = _Lazy(_tensor_dtypes)


def _flat(a) -> list:
    return [repr(float(x)) if a.dtype.kind == "f" else int(x) for x in a.reshape(-1).tolist()]


def decode(obj: Any) -> Any:
    """Inverse of `encode`; accepts only the shapes `encode` makes (numeric dtypes only)."""
    import numpy as np

    if obj is None or type(obj) in (bool, str):
        return obj
    if type(obj) is not dict or len(obj) == 0:
        raise ValueError(f"not an encoded value: {str(obj)[:80]}")
    if "int" in obj:
        return int(obj["int"])
    if "float" in obj:
        return float(obj["float"])
    if "scalar" in obj:
        dtype = _numeric_dtype(obj["scalar"])
        x = obj["data"]
        return dtype.type(float(x) if isinstance(x, str) else x)
    if "array" in obj or "tensor" in obj:
        dtype = _numeric_dtype(obj["array"]) if "array" in obj else None  # checked before any data is read
        data = [float(x) if isinstance(x, str) else x for x in obj["data"]]
        shape = [int(n) for n in obj["shape"]]
        if dtype is not None:
            return np.array(data, dtype=dtype).reshape(shape)
        import torch

        dtype = getattr(torch, str(obj["tensor"]), None)
        if not isinstance(dtype, torch.dtype) or dtype not in _TENSOR_DTYPES:
            raise ValueError(f"not a numeric torch dtype: {str(obj['tensor'])[:40]}")
        return torch.tensor(data, dtype=torch.float64 if dtype.is_floating_point else dtype).to(dtype).reshape(shape)
    if "list" in obj:
        return [decode(v) for v in obj["list"]]
    if "tuple" in obj:
        return tuple(decode(v) for v in obj["tuple"])
    if "dict" in obj:
        return {_hashable(decode(k)): decode(v) for k, v in obj["dict"]}
    raise ValueError(f"not an encoded value: {str(obj)[:80]}")


def _numeric_dtype(text: Any):
    import numpy as np

    try:
        dtype = np.dtype(str(text))
    except TypeError:
        raise ValueError(f"not a NumPy dtype: {str(text)[:40]}") from None
    if dtype.kind not in "biuf":  # no object, void, string or datetime dtypes
        raise ValueError(f"not a numeric NumPy dtype: {str(text)[:40]}")
    return dtype


def _hashable(k: Any) -> Any:
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    return k


# -- the worker: runs in the sandbox, the only place student code runs ----------------------
class _Forbidden(BaseException):
    """Raised by a wire or the stub of a reference: not an Exception, so `except Exception`
    in student code cannot swallow it (a swallowed one is still counted: see `_HITS`)."""


_HITS: list[str] = []  # every forbidden call the wires saw during the calls phase, swallowed or not


class _StubExercise:
    """What an exercise is in the worker: `check`, `hint` and `solution` do nothing; anything
    else (the reference, the cases) is not there, and calling it is a forbidden call."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def check(self, *args, **kwargs) -> None:
        return None

    hint = solution = check

    def __getattr__(self, attr: str) -> "_StubExercise":
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _StubExercise(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise _Forbidden(f"{self._name} (the exercise's reference is not available in the grader)")

    def __repr__(self) -> str:
        return f"<{self._name}: not available in the grader>"


class _StubModule(types.ModuleType):
    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _StubExercise(f"{self.__name__}.{attr}")


class _GraderImports(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The worker's import hook, first on sys.meta_path.

    Serves stub modules for the exercise declarations (`lmcourse.exercises`, its submodules and
    an instructor's `checks`), and re-wires a module that owns a forbidden name whenever it is
    executed again (`importlib.reload`, or deleted from sys.modules and imported anew).
    """

    def __init__(self, rewire: Callable[[types.ModuleType], None], wired_modules: set[str]) -> None:
        self._rewire, self._wired = rewire, wired_modules

    @staticmethod
    def stubbed(name: str) -> bool:
        return any(name == s or name.startswith(s + ".") for s in _STUBBED)

    def find_spec(self, name, path=None, target=None):
        if self.stubbed(name):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        if name in self._wired:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _RewiringLoader(spec.loader, self._rewire)
                    return spec
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []  # a package with no files: `from lmcourse.exercises import ch00` finds the stub
        return module

    def exec_module(self, module) -> None:
        return None


class _RewiringLoader(importlib.abc.Loader):
    def __init__(self, loader, rewire) -> None:
        self._loader, self._rewire = loader, rewire

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._rewire(module)

    def __getattr__(self, attr):
        return getattr(self._loader, attr)


def _trampoline(nfree: int, dispatch: Callable, key: str, like: types.CodeType) -> types.CodeType:
    """Code for `*args, **kwargs -> dispatch(key, args, kwargs)` with `nfree` free variables (so
    it can replace the `__code__` of a function that has a closure of that size)."""
    free = [f"_free{i}" for i in range(nfree)]
    src = (
        "def _outer():\n" + "".join(f"    {v} = None\n" for v in free)
        + "    def trampoline(*args, **kwargs):\n"
        + (f"        ({', '.join(free)},)\n" if free else "")
        + "        return '__DISPATCH__'('__KEY__', args, kwargs)\n    return trampoline\n"
    )
    namespace: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "'str' object is not callable": the constant is swapped below
        exec(compile(src, "<lmcourse grader wire>", "exec"), namespace)
    code = namespace["_outer"]().__code__
    consts = tuple(dispatch if c == "__DISPATCH__" else key if c == "__KEY__" else c for c in code.co_consts)
    return code.replace(co_consts=consts, co_name=like.co_name, co_qualname=like.co_qualname)


class _Wires:
    """Python-level wires on the forbidden library names, installed before any student code.

    A Python function keeps its identity: its `__code__` becomes a trampoline into `dispatch`,
    so every reference to it (imported earlier, held in `__kwdefaults__`, found on a frame) is
    wired; its original code runs from a private copy. A builtin (torch.softmax) is replaced on
    its owner; its aliases meet again at the ATen operator, where `OpGuard` watches. Before the
    calls phase a wire passes the call through (a demo cell may compare with torch); while an
    exercise's function runs, a wire on a name that exercise forbids notes the call and raises.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self._originals: dict[str, Callable] = {}
        self.hot: frozenset[str] = frozenset()  # the names the exercise being called forbids

    def dispatch(self, key: str, args: tuple, kwargs: dict):
        if key in self.hot:
            _HITS.append(key)
            raise _Forbidden(key)
        return self._originals[key](*args, **kwargs)

    def install(self) -> None:
        for name in self.names:
            try:
                owner, attr = _resolve(name)
                self._wire(owner, attr, name)
            except Exception:  # noqa: BLE001 - a name this environment lacks cannot be called either
                continue

    def modules(self) -> set[str]:
        """The modules whose re-execution must re-wire: every dotted prefix of a wired name."""
        out = set()
        for name in self.names:
            parts = name.split(".")
            out.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return out

    def rewire(self, module: types.ModuleType) -> None:
        for name in self.names:
            if not name.startswith(module.__name__ + "."):
                continue
            try:
                owner, attr = _resolve(name)
                self._wire(owner, attr, name)
            except Exception:  # noqa: BLE001
                continue

    def _wire(self, owner: Any, attr: str, name: str) -> None:
        raw = getattr(owner, "__dict__", {}).get(attr, getattr(owner, attr))
        fn = raw.__func__ if isinstance(raw, (classmethod, staticmethod, types.MethodType)) else raw
        if isinstance(fn, types.FunctionType):
            if fn.__code__.co_filename == "<lmcourse grader wire>":
                return  # already wired
            twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
            twin.__kwdefaults__ = copy.copy(fn.__kwdefaults__)
            twin.__dict__.update(fn.__dict__)
            if isinstance(raw, classmethod):
                self._originals[name] = lambda *a, __t=twin, __o=owner, **k: __t(__o, *a, **k)
            else:
                self._originals[name] = twin
            fn.__code__ = _trampoline(len(fn.__code__.co_freevars), self.dispatch, name, fn.__code__)
            return
        if callable(fn):  # a builtin: the owner's attribute becomes a wire
            self._originals[name] = fn

            def wire(*args, **kwargs):
                return _dispatch_builtin(name, args, kwargs)

            _dispatch_builtin.targets[name] = self
            wire.__name__ = getattr(fn, "__name__", attr)
            setattr(owner, attr, wire)


def _dispatch_builtin(name: str, args: tuple, kwargs: dict):
    return _dispatch_builtin.targets[name].dispatch(name, args, kwargs)


_dispatch_builtin.targets = {}


def _code_cells(nb_bytes: bytes) -> list[str]:
    """Every code cell of a notebook as Python, through IPython's own input transformer (as Jupyter
    would): `!ls` becomes `get_ipython().system('ls')`, `%time x` `get_ipython().run_line_magic(...)`,
    and a line that merely starts with `!=` (a PEP 8 continuation) stays what it is. Done in the
    grader (plain text work; the worker then need not import IPython). ValueError when the bytes
    are not a notebook."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        nb = json.loads(nb_bytes.decode("utf-8"))
        cells = nb["cells"]
        if type(cells) is not list:
            raise TypeError
    except (UnicodeDecodeError, ValueError, TypeError, KeyError):
        raise ValueError("is not a notebook (no JSON with a list of cells)") from None
    manager = TransformerManager()
    out = []
    for cell in cells:
        if type(cell) is not dict or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(map(str, source)) if type(source) is list else str(source)
        try:
            out.append(manager.transform_cell(source))
        except Exception:  # noqa: BLE001 - left as is: compiling it reports the error as the cell's
            out.append(source)
    return out


class _Discard(io.TextIOBase):
    """The notebook's prints: dropped, so that printing gigabytes costs the worker nothing."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        return len(s)


class _NoShell:
    """`get_ipython()` in the worker: a minimal stand-in, not an InteractiveShell (which would run
    shell commands and every magic). Shell escapes (`!cmd`, `x = !cmd`, `%system`, `%%bash`) run
    nothing; magics do nothing, except the timing and capturing ones that also run code (`%time
    stmt`, `%%time`, `%%capture`), whose code runs as any other cell code."""

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


class _TimeUp(BaseException):
    pass


def _alarm(seconds: float) -> None:
    def handler(signum, frame):
        raise _TimeUp(f"took longer than {seconds:g} s")

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


def _student_where(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    return "\n".join(f"  at line {f.lineno} in {f.name} ({f.filename[1:-1]}): {(f.line or '').strip()}"
                     for f in frames[-3:])


def _op_guard(ex: dict):
    """`OpGuard(ex's operators, autograd=..., raise_on_hit=True)`, or None when it has nothing to watch."""
    if not ex["ops"] and not ex["autograd"]:
        return None
    from .forbid import OpGuard

    return OpGuard(ex["ops"], autograd=ex["autograd"], raise_on_hit=True)


def _call_all(ex: dict, fn: Callable, wires: "_Wires") -> list[dict]:
    """Call `fn` on each of the exercise's cases; what came back, encoded, one entry per call."""
    try:
        from .forbid import ForbiddenCall
    except ImportError:  # pragma: no cover - only while lmcourse.forbid is absent
        ForbiddenCall = _Forbidden
    calls: list[dict] = []
    wires.hot = frozenset(ex["wires"])
    for args, kwargs in ex["cases"]:
        seen = len(_HITS)
        guard = _op_guard(ex)
        try:
            # Fresh copies for every call: a function that changes its input in place
            # (`x /= T`) must not change the next case, which may share that array.
            call_args, call_kwargs = copy.deepcopy((args, kwargs))
            if guard is None:
                value = encode(fn(*call_args, **call_kwargs))
            else:
                with guard:  # around the call AND the encoding: a lazy value is caught too
                    value = encode(fn(*call_args, **call_kwargs))
            hits = _HITS[seen:] + (list(guard.hits) if guard is not None else [])
            if hits:  # a forbidden call the student's code caught and swallowed
                calls.append({"forbidden": hits[0]})
                break
            calls.append({"value": value})
        except (_Forbidden, ForbiddenCall) as exc:
            hits = _HITS[seen:] + (list(guard.hits) if guard is not None else [])
            calls.append({"forbidden": hits[0] if hits else getattr(exc, "hit", None) or str(exc)})
            break
        except NotImplementedError:
            calls.append({"not_implemented": True})
            break
        except MemoryError:
            calls.append({"memory": True})
            break
        except BaseException as exc:  # noqa: BLE001 - the student's error, reported as theirs
            hits = _HITS[seen:] + (list(guard.hits) if guard is not None else [])
            if hits:
                calls.append({"forbidden": hits[0]})
            else:
                calls.append({"raised": type(exc).__name__, "message": str(exc)[:300], "where": _student_where(exc)})
            break
    return calls


def worker_main() -> int:
    """The worker process: job on stdin, one JSON line per step on a private copy of stdout."""
    # The job (cells, wires, exercise names) is a file the grader wrote; the cases come on stdin
    # only after the cells have run, so no cell can read them from the worker's memory.
    job = pickle.loads(Path(_JOB_FILE).read_bytes())
    os.unlink(_JOB_FILE)
    # The channel is a private duplicate of fd 1; fds 1 and 2 (and so every print, child process
    # and C library write) go to /dev/null, so nothing the notebook prints reaches the grader.
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stdout = sys.stderr = _Discard()

    def send(obj: dict) -> None:
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a huge file write fails that cell (OSError), not the worker
    import numpy  # noqa: F401 - what the cases are made of, imported before any student code
    import torch  # noqa: F401

    for name in [m for m in sys.modules if _GraderImports.stubbed(m)]:
        del sys.modules[name]
    wires = _Wires(job["wires"])
    wires.install()
    sys.meta_path.insert(0, _GraderImports(wires.rewire, wires.modules()))
    if any(ex["ops"] or ex["autograd"] for ex in job["exercises"]):
        from . import forbid  # noqa: F401 - imported now, not first inside a student's call

    namespace: dict[str, Any] = {"__name__": "__main__"}
    cell_number = [0]
    shell = _NoShell(namespace, cell_number)
    namespace["get_ipython"] = lambda: shell
    log: list[str] = []
    send({"started": True})
    skip = set(job["skip_cells"])
    for i, source in enumerate(job["cells"], 1):
        if i in skip:
            continue
        send({"cell": i})
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
    send({"ready": True, "log": log[:20]})
    cases = pickle.loads(sys.stdin.buffer.read())  # written by the grader's own process
    for ex in job["exercises"][job["start"]:]:
        ex["cases"] = cases[ex["id"]]
        fn = namespace.get(ex["name"])
        if not callable(fn):
            send({"exercise": ex["id"], "missing": True})
            continue
        send({"exercise": ex["id"], "calls": _call_all(ex, fn, wires)})
    send({"done": True})
    channel.close()
    os._exit(0)  # no interpreter shutdown: a student's atexit hook or thread cannot add a line



# -- the grader's side -------------------------------------------------------------------
@dataclass
class Limits:
    """What one notebook may use. timeout: seconds for the whole notebook, restarts included;
    cell_seconds: one cell; exercise_seconds: all the calls of one exercise, encoding included;
    memory_mb and max_procs: the whole worker, its children included."""

    timeout: float = NOTEBOOK_SECONDS
    memory_mb: int = MEMORY_MB
    cell_seconds: float = CELL_SECONDS
    exercise_seconds: float = EXERCISE_SECONDS
    max_procs: int = MAX_PROCS

    def check(self) -> None:
        """ValueError unless every limit is a positive number (memory and processes whole numbers)."""
        for name in ("timeout", "cell_seconds", "exercise_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < float("inf")):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        for name, unit in (("memory_mb", "MB"), ("max_procs", "processes")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive whole number of {unit}, got {value!r}")


def check_limits(**limits) -> Limits:
    """The `Limits` these keyword arguments make; ValueError naming a bad or unknown one."""
    unknown = sorted(set(limits) - set(Limits.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown limit(s): {', '.join(unknown)}")
    out = Limits(**limits)
    out.check()
    return out


@dataclass
class NotebookGrade:
    """One student's grade for one chapter: per exercise its status, points earned and points possible."""

    student: str
    notebook: str
    chapter: int | None = None
    statuses: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    max: dict[str, float] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for the instructor, printed by `lmcourse grade`


@dataclass
class Gradebook:
    """What `grade_folder` found: the seed, every notebook's grade, the CSV rows and a summary table."""

    seed: int
    grades: list[NotebookGrade]
    rows: list[dict[str, str]]
    summary: str
    isolation: str


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
        exc = StudentError(str(c.get("message", ""))[:300])
        exc.where = str(c.get("where", ""))[:2000]
        exc.kind = str(c.get("raised", "Error"))[:80]
        raise exc


class StudentError(Exception):
    """An exception raised inside the student's function, as reported by the worker."""

    where = ""
    kind = "Error"


class _Missing(BaseException):
    """The worker sent fewer outputs than there are cases: its data cannot be trusted."""


_JUDGE_LOCK = threading.Lock()  # Exercise.judge swaps module attributes while it runs: one at a time


def course_registry(root: Path | None) -> dict[str, Exercise]:
    """The exercises to grade: the package's, plus `<root>/solutions/checks.py`'s when `root` is given."""
    from . import course

    if root is not None and hasattr(course, "course_exercises"):
        return course.course_exercises(root)
    return load_all()


def exercises_for(chapter: int, registry: dict[str, Exercise] | None = None) -> list[Exercise]:
    registry = load_all() if registry is None else registry
    return [ex for k, ex in registry.items() if int(k.split(".")[0]) == chapter]


def _points(root: Path | None) -> dict[str, float]:
    if root is None or not (Path(root) / "solutions").is_dir():
        return {}
    from . import notebooks

    if not hasattr(notebooks, "exercise_points"):
        return {}
    return dict(notebooks.exercise_points(Path(root) / "solutions"))


def _wired_names(exercises: list[Exercise]) -> list[str]:
    """The library names the worker wires: each exercise's declared `forbidden` (its reference
    and everything else in the stubbed modules does not exist there at all)."""
    names = {n for ex in exercises for n in ex.forbidden}
    return sorted(n for n in names if not _GraderImports.stubbed(n))


def _job_exercise(ex: Exercise, cases) -> dict:
    return {
        "id": ex.id, "name": ex.name, "wires": _wired_names([ex]),
        "ops": list(getattr(ex, "forbidden_ops", ())), "autograd": bool(getattr(ex, "forbid_autograd", False)),
        "cases": [(c.args, c.kwargs) for c in cases],
    }


_WORKER_ENV = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}


def _new_sandbox(job: bytes, limits: Limits, use_sandbox: bool):
    from .sandbox import Sandbox, python_binds

    return Sandbox(
        [sys.executable, "-I", "-B", "-m", "lmcourse.grading"],
        ro_binds=python_binds(), files={_JOB_FILE: job}, memory_mb=limits.memory_mb,
        max_procs=limits.max_procs, cpu_seconds=max(1, math.ceil(limits.timeout)), env=dict(_WORKER_ENV),
        max_output_bytes=OUTPUT_BYTES, sandbox=use_sandbox,
    )


def _parse(line: bytes | None) -> dict | None:
    if line is None:
        return None
    try:
        msg = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return msg if type(msg) is dict else None


_KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)


def _failure(sb, *, limits: Limits, what: str, deadline: float) -> tuple[str, str]:
    """(status, why) for a worker that sent no (valid) line in time for `what`."""
    if sb.oversize:
        return "error", f"the output of the worker went over the {OUTPUT_BYTES / 2**20:g} MB cap during {what}"
    if not sb.eof:
        sb.kill()
        return "timeout", f"{what} did not finish within {deadline:g} s"
    rc = sb.wait()
    if sb.memory_exceeded or rc in _KILLED:
        return "memory", f"the worker was killed during {what}, most likely for using more than {limits.memory_mb} MB"
    return "error", f"the worker ended during {what} (exit status {rc})"


def _run_notebook(cells: list[str], job_exercises: list[dict], wires: list[str], limits: Limits,
                  use_sandbox: bool) -> tuple[dict[str, dict], list[str]]:
    """Run the notebook's worker(s): {exercise id: what came back, or {"status", "why"}}, and notes.

    A cell that crashes or stalls the worker is skipped and the notebook runs again without it;
    a failure during exercise k scores k and a fresh worker goes on with k + 1.
    """
    outcomes: dict[str, dict] = {}
    notes: list[str] = []
    skip: list[int] = []
    start = 0
    t_end = time.monotonic() + limits.timeout
    # The cases stay here until the worker says its cells have run (see worker_main).
    cases = {ex["id"]: ex["cases"] for ex in job_exercises}
    job = {"cells": cells, "cell_seconds": limits.cell_seconds, "wires": wires,
           "exercises": [{k: v for k, v in ex.items() if k != "cases"} for ex in job_exercises]}
    while start < len(job_exercises):
        if time.monotonic() >= t_end:
            for ex in job_exercises[start:]:
                outcomes[ex["id"]] = {"status": "timeout", "why": f"the notebook used up its {limits.timeout:g} s"}
            break
        with _new_sandbox(pickle.dumps({**job, "skip_cells": list(skip), "start": start}), limits, use_sandbox) as sb:
            started, cell, ready = False, None, None
            while ready is None:
                wait = (limits.timeout if not started else limits.cell_seconds + 5)
                wait = max(0.0, min(wait, t_end - time.monotonic()))
                msg = _parse(sb.readline(timeout=wait))
                if msg is None:
                    break
                if msg.get("started") is True:
                    started = True
                elif type(msg.get("cell")) is int:
                    cell = msg["cell"]
                elif msg.get("ready") is True:
                    ready = msg
            if ready is None:
                if not started or cell is None:
                    if time.monotonic() >= t_end:
                        continue
                    raise GraderError(
                        f"the grader's worker could not start ({_failure(sb, limits=limits, what='start-up', deadline=wait)[1]}: "
                        f"{sb.stderr_tail().strip()[-300:]}); no student code had run, so this is the grader's failure, "
                        f"not the student's. Check the limits (--memory-mb {limits.memory_mb}, --timeout {limits.timeout:g}) "
                        f"and the Python environment"
                    )
                status, why = _failure(sb, limits=limits, what=f"cell {cell}", deadline=limits.cell_seconds)
                notes.append(f"{why}: skipped, and the notebook was run again without it")
                skip.append(cell)
                continue
            notes.extend(str(x)[:300] for x in (ready.get("log") or [])[:20])
            sb.send(pickle.dumps({ex["id"]: cases[ex["id"]] for ex in job_exercises[start:]}))
            for k in range(start, len(job_exercises)):
                ex = job_exercises[k]
                wait = max(0.0, min(limits.exercise_seconds, t_end - time.monotonic()))
                msg = _parse(sb.readline(timeout=wait))
                start = k + 1
                if msg is not None and msg.get("exercise") == ex["id"]:
                    outcomes[ex["id"]] = msg
                    continue
                if msg is not None:  # a line, but not the one due: something else wrote to the channel
                    sb.kill()
                    outcomes[ex["id"]] = {"status": "error", "why": "the worker's output was not what the grader sent for"}
                else:
                    status, why = _failure(sb, limits=limits, what=f"the calls of `{ex['name']}`", deadline=wait)
                    outcomes[ex["id"]] = {"status": status, "why": why}
                break
    return outcomes, notes


def _judge(ex: Exercise, outcome: dict, cases) -> tuple[str, str]:
    """(status, report) for one exercise from what its worker sent back."""
    head = f"{ex.name} (Exercise {ex.id})"
    if "status" in outcome:
        return outcome["status"], f"✗ {head}: {outcome['why']}. Scored 0."
    if outcome.get("missing"):
        return "not attempted", f"✗ {head}: no function named `{ex.name}` was defined"
    calls = outcome.get("calls")
    if type(calls) is not list or not all(type(c) is dict for c in calls):
        return "error", f"✗ {head}: the grader could not read your function's output. Scored 0."
    hit = next((c["forbidden"] for c in calls if "forbidden" in c), None)
    if hit is not None:
        return "forbidden", (
            f"✗ {head}: your function calls {_describe_hit(str(hit)[:200])}, which this exercise forbids "
            f"(the grader stops it there); write it yourself. Scored 0."
        )
    if any(c.get("memory") for c in calls):
        return "memory", f"✗ {head}: your function ran out of memory. Scored 0."
    try:
        with _JUDGE_LOCK:
            result = ex.judge(_Replay(calls), cases)
    except (Exception, _Missing) as exc:  # malformed worker data: the notebook's fault, never the grader's crash
        result = Result(ex.id, "error", f"✗ {head}: could not read your function's output ({type(exc).__name__})")
    status = {"pass": "passed", "fail": "failed", "not implemented": "not attempted"}.get(result.status, "error")
    return status, result.report


def _describe_hit(hit: str) -> str:
    try:
        from .forbid import describe
    except ImportError:  # pragma: no cover
        return hit
    return describe(hit)


def _read_notebook(path: Path, cap: int = 50 * 2**20) -> bytes:
    """The notebook's bytes, never through a symlink (O_NOFOLLOW); ValueError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"is larger than {cap // 2**20} MB")
    return data


def grade_notebook(
    path: Path,
    student: str,
    *,
    seed: int = 0,
    registry: dict[str, Exercise] | None = None,
    points: dict[str, float] | None = None,
    sandbox: bool = True,
    **limits,
) -> NotebookGrade:
    """Grade one notebook in sandboxed worker(s) on the cases of `seed`; never raises for anything
    the notebook does. ValueError for a bad limit; GraderError when the worker could not start."""
    lim = check_limits(**limits)
    registry = load_all() if registry is None else registry
    points = points or {}
    path = Path(path)
    grade = NotebookGrade(student, path.name)
    try:
        grade.chapter = chapter_number(path)
    except ValueError as exc:
        grade.notes.append(str(exc))
        return grade
    exercises = exercises_for(grade.chapter, registry)
    for ex in exercises:
        grade.max[ex.id] = float(points.get(ex.id, 1.0))
        grade.scores[ex.id] = 0.0
        grade.statuses[ex.id] = "error"
    if not exercises:
        grade.notes.append(f"no exercises are registered for chapter {grade.chapter}")
        return grade
    try:
        if path.is_symlink():
            raise ValueError("is a symlink; submit the notebook itself")
        cells = _code_cells(_read_notebook(path))
    except ValueError as exc:
        grade.notes.append(f"error: {path.name} {exc}: not graded")
        for ex in exercises:
            grade.reports[ex.id] = f"✗ {ex.name} (Exercise {ex.id}): not graded, the notebook was refused"
        return grade
    cases = {ex.id: ex.cases(seed) for ex in exercises}
    outcomes, notes = _run_notebook(cells, [_job_exercise(ex, cases[ex.id]) for ex in exercises],
                                    _wired_names(exercises), lim, sandbox)
    grade.notes.extend(notes)
    for ex in exercises:
        status, report = _judge(ex, outcomes.get(ex.id, {"status": "error", "why": "no result came back"}), cases[ex.id])
        grade.statuses[ex.id], grade.reports[ex.id] = status, report
        grade.scores[ex.id] = grade.max[ex.id] if status == "passed" else 0.0
    return grade


def probe_worker(*, sandbox: bool = True, registry: dict[str, Exercise] | None = None, **limits) -> None:
    """Start one worker under the limits on an empty notebook, with every exercise's wires;
    ValueError naming the limit when it cannot finish, before anyone is graded."""
    lim = check_limits(**limits)
    exercises = list((load_all() if registry is None else registry).values())
    job = [{"id": ex.id, "name": ex.name, "wires": [], "ops": [], "autograd": False, "cases": []} for ex in exercises[:1]]
    try:
        outcomes, _ = _run_notebook([], job, _wired_names(exercises), lim, sandbox)
        ok = all(o.get("missing") for o in outcomes.values())
        why = "; ".join(o.get("why", "") for o in outcomes.values() if not o.get("missing"))
    except GraderError as exc:
        ok, why = False, str(exc)
    if not ok:
        raise ValueError(
            f"the grader's worker cannot run an empty notebook under these limits (--memory-mb {lim.memory_mb}, "
            f"--timeout {lim.timeout:g}): {why or 'it did not finish in time'}. Raise the limit "
            f"(the worker alone imports torch and needs about 1 GB of memory); nothing was graded"
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
        import tempfile

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
    """The per-student folders (symlinked ones included, to be refused); ValueError for a layout
    that would grade nothing or miss notebooks."""
    expected = f"expected one folder per student: {submissions}/<student>/NN_topic.ipynb"
    loose = sorted(p.name for p in submissions.glob("*.ipynb"))
    if loose:
        shown = ", ".join(loose[:5]) + (f" and {len(loose) - 5} more" if len(loose) > 5 else "")
        raise ValueError(f"{submissions}: notebooks directly in the submissions folder ({shown}); {expected}")
    students = sorted(p for p in submissions.iterdir()
                      if (p.is_dir() or p.is_symlink()) and not p.name.startswith("."))
    if not students:
        raise ValueError(f"{submissions}: no student folders, nothing to grade; {expected}")
    real = [s for s in students if not s.is_symlink()]
    if not any(nb.is_file() for s in real for nb in s.glob("*.ipynb")):
        deeper = sorted(str(p.relative_to(submissions)) for p in submissions.rglob("*.ipynb"))[:3]
        found = f"; found only deeper ones, e.g. {', '.join(deeper)}" if deeper else ""
        raise ValueError(f"{submissions}: no student folder holds a notebook, nothing to grade{found}; {expected}")
    return students


def _id_key(k: str) -> list[int]:
    return [int(p) for p in k.split(".")]


def grade_folder(
    submissions: Path,
    out_csv: Path,
    feedback_dir: Path | None = None,
    *,
    seed: int | None = None,
    jobs: int = 1,
    root: Path | None = None,
    sandbox: bool = True,
    **limits,
) -> Gradebook:
    """Grade every student folder under `submissions`; write the gradebook CSV and feedback files.

    seed: the cases' seed (default: a random one, returned in the Gradebook and written in the CSV).
    jobs: notebooks graded at once. root: the course folder whose solutions/checks.py and
    solutions/ notebooks add exercises and give points (None: the package's exercises, 1 point each).
    sandbox=False runs workers without bubblewrap (trusted submissions only).

    Everything that does not depend on a student is checked first: ValueError for bad limits, a
    bad layout, an unwritable output or a worker that cannot run under the limits; GraderError
    when a worker fails to start later. Nothing is written then.
    """
    submissions = Path(submissions)
    lim = check_limits(**limits)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs <= 0:
        raise ValueError(f"jobs must be a positive whole number, got {jobs!r}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    if not submissions.is_dir():
        raise ValueError(f"{submissions}: not a folder of student submissions")
    students = _student_folders(submissions)
    _check_writable(Path(out_csv), "--out", folder=False)
    if feedback_dir is not None:
        _check_writable(Path(feedback_dir), "--feedback", folder=True)
    registry = course_registry(root)
    points = _points(root)
    probe_worker(sandbox=sandbox, registry=registry, **vars(lim))

    grades: list[NotebookGrade] = []
    todo: list[tuple[Path, str]] = []
    for student_dir in students:
        student = student_dir.name
        if student_dir.is_symlink():
            grades.append(NotebookGrade(student, "", notes=[f"error: the student folder {student} is a symlink: refused, "
                                                           f"nothing in it was graded"]))
            grades[-1].warnings.append(grades[-1].notes[-1])
            continue
        notebooks = sorted(student_dir.glob("*.ipynb"))
        if not notebooks:
            grades.append(NotebookGrade(student, "", notes=["no notebook submitted"]))
        for nb, warning, graded in _one_per_chapter(notebooks):
            if graded:
                todo.append((nb, warning))
            else:
                chapter = chapter_number(nb)
                g = NotebookGrade(student, "", chapter)
                for ex in exercises_for(chapter, registry):
                    g.max[ex.id], g.scores[ex.id], g.statuses[ex.id] = float(points.get(ex.id, 1.0)), 0.0, "error"
                g.notes.append(warning)
                g.warnings.append(warning)
                grades.append(g)

    def one(item: tuple[Path, str]) -> NotebookGrade:
        nb, warning = item
        g = grade_notebook(nb, nb.parent.name, seed=seed, registry=registry, points=points, sandbox=sandbox, **vars(lim))
        if warning:
            g.notes.append(warning)
            g.warnings.append(warning)
        if nb.is_symlink():
            g.warnings.append(f"{nb.name} is a symlink: refused")
        return g

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        grades.extend(pool.map(one, todo))

    # The assignment: every chapter somebody submitted; each student answers for all of it.
    chapters = sorted({g.chapter for g in grades if g.chapter is not None})
    assignment = [ex for c in chapters for ex in exercises_for(c, registry)]
    rows: list[dict[str, str]] = []
    for student in sorted(s.name for s in students):
        mine = [g for g in grades if g.student == student]
        refused = any(g.notebook == "" and any("is a symlink" in n for n in g.notes) for g in mine)
        for ex in assignment:
            got = next((g for g in mine if ex.id in g.statuses), None)
            possible = float(points.get(ex.id, 1.0))
            status = got.statuses[ex.id] if got else ("error" if refused else "not attempted")
            earned = got.scores[ex.id] if got else 0.0
            rows.append({"student": student, "exercise": ex.id, "points": _fmt(earned), "max": _fmt(possible),
                         "status": status, "seed": str(seed)})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["student", "exercise", "points", "max", "status", "seed"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(out_csv, buf.getvalue())
    if feedback_dir is not None:
        for student in sorted(s.name for s in students):
            write_atomic(Path(feedback_dir) / f"{_file_name(student)}.md", _feedback(student, grades))
    from . import sandbox as sandbox_module

    isolation = sandbox_module.isolation() if sandbox else "none (--no-sandbox): rlimits on each worker only"
    return Gradebook(seed, grades, rows, summary_table(rows, {ex.id: ex.name for ex in assignment}), isolation)


def _file_name(student: str) -> str:
    """A feedback file name for a student folder's name (already a single path component)."""
    return student if student not in ("", ".", "..") else "_"


def _feedback(student: str, grades: list[NotebookGrade]) -> str:
    # Everything that came from the student (names, notes, reports with their error messages
    # and values) is escaped or fenced: nothing in it is read as Markdown or HTML.
    lines = [f"# Feedback for {_md_inline(student)}", ""]
    for g in (g for g in grades if g.student == student):
        if g.notebook:
            lines += [f"## {_md_inline(g.notebook)}: {_fmt(sum(g.scores.values()))} / {_fmt(sum(g.max.values()))}", ""]
        if g.notes:
            lines += _md_fence("\n".join(f"note: {n}" for n in g.notes))
        for k in sorted(g.reports, key=_id_key):
            lines += ["", f"{k}: {g.statuses.get(k, '')}, {_fmt(g.scores.get(k, 0))} / {_fmt(g.max.get(k, 0))}"]
            lines += _md_fence(g.reports[k])
        lines.append("")
    return "\n".join(lines)


def summary_table(rows: list[dict[str, str]], names: dict[str, str]) -> str:
    """Per exercise: its max, the mean points over the class and how many got each status."""
    head = ["exercise", "name", "max", "mean", *STATUSES]
    table = [head]
    for ex_id in sorted({r["exercise"] for r in rows}, key=_id_key):
        mine = [r for r in rows if r["exercise"] == ex_id]
        mean = sum(float(r["points"]) for r in mine) / len(mine)
        counts = [str(sum(r["status"] == s for r in mine)) for s in STATUSES]
        table.append([ex_id, names.get(ex_id, ""), mine[0]["max"], f"{mean:.2f}", *counts])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


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


if __name__ == "__main__":  # the worker process
    sys.exit(worker_main())
