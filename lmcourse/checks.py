"""The checks framework: each exercise is declared once and judged the same way everywhere.

An `Exercise` holds the reference function, a deterministic case generator, a tolerance
and a list of known wrong variants (`Wrong`), each with a message that names the likely
mistake. `ex.check(fn)` runs the student's function on every case and prints either
✓ and what was tested, or ✗ with the first failing case, what differs, and the message
of any wrong variant the student's output matches. A stub that raises
NotImplementedError prints "not implemented yet"; an exception inside the student's
function is shown as the student's own, with its line.

Every declared exercise lands in `REGISTRY`, and tests/test_checks.py proves that each
one passes its reference and fails each of its wrong variants.

Derived in chapters/00_getting_started.ipynb.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import math
import pkgutil
import sys
import textwrap
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

REGISTRY: dict[str, "Exercise"] = {}


@dataclass
class Case:
    """One input to an exercise: positional args, keyword args and a short label."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def describe(self) -> str:
        parts = [_describe(a) for a in self.args]
        parts += [f"{k}={_describe(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)


@dataclass
class Wrong:
    """A plausible wrong implementation and the message that explains the mistake."""

    fn: Callable
    message: str


@dataclass
class Result:
    """What `Exercise.run` found. `status` is "pass", "fail", "error" or "not implemented"."""

    exercise: str
    status: str
    report: str
    matched: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class Exercise:
    """An exercise's check, declared once.

    reference: the correct function. cases: a list of `Case`, or a callable taking a seed
    and returning them (deterministic for a given seed). atol / rtol: the tolerance of the
    default comparison. wrong: known wrong variants. compare: optional
    `compare(expected, got) -> str | None`, a description of the difference or None when equal.
    """

    def __init__(
        self,
        id: str,
        name: str,
        title: str,
        reference: Callable,
        cases: Sequence[Case] | Callable[[int], Sequence[Case]],
        *,
        atol: float = 1e-6,
        rtol: float = 1e-5,
        wrong: Iterable[Wrong] = (),
        hint: str = "",
        solution: str | None = None,
        compare: Callable[[Any, Any], str | None] | None = None,
        seed: int = 0,
        forbidden: Sequence[str] = (),
        register: bool = True,
    ) -> None:
        self.id, self.name, self.title = id, name, title
        self.reference = reference
        self._cases = cases
        self.atol, self.rtol = atol, rtol
        self.wrong = list(wrong)
        self._hint = hint
        self._solution = solution
        self._compare = compare
        self.seed = seed
        self.forbidden = tuple(forbidden)
        if register:
            if id in REGISTRY and REGISTRY[id].name != name:
                raise ValueError(f"exercise id {id!r} is already registered for {REGISTRY[id].name!r}")
            REGISTRY[id] = self

    def __repr__(self) -> str:
        return f"Exercise({self.id} {self.name}: {self.title})"

    # -- the cases and the comparison ---------------------------------------------------
    def cases(self) -> list[Case]:
        cases = self._cases(self.seed) if callable(self._cases) else self._cases
        return list(cases)

    def compare(self, expected: Any, got: Any) -> str | None:
        """None when `got` matches `expected`, else a description of the difference."""
        if self._compare is not None:
            return self._compare(expected, got)
        return compare_values(expected, got, atol=self.atol, rtol=self.rtol)

    def forbidden_names(self) -> tuple[str, ...]:
        """The reference itself and the declared library equivalents, as dotted names."""
        ref = f"{self.reference.__module__}.{self.reference.__qualname__}"
        return (ref, *self.forbidden)

    # -- running ------------------------------------------------------------------------
    def run(self, fn: Callable) -> Result:
        """Judge `fn` on every case; return a `Result` (nothing is printed)."""
        return self.judge(fn, self.cases())

    def judge(self, fn: Callable, cases: list[Case]) -> Result:
        """Judge `fn` on the given cases (the grader passes a stand-in that replays a worker's outputs)."""
        head = f"{self.name} (Exercise {self.id})"
        if not callable(fn):
            return Result(self.id, "error", f"✗ {head}: expected a function, got {type(fn).__name__}")
        for i, case in enumerate(cases, 1):
            expected = _call(self.reference, case)
            try:
                got = _call(fn, case)
            except NotImplementedError:
                return Result(self.id, "not implemented", f"… {head}: not implemented yet")
            except Exception as exc:  # the student's own error, shown as theirs
                # A grader's stand-in carries the kind and the lines from the worker process.
                kind = getattr(exc, "kind", None) or type(exc).__name__
                where = exc.where if hasattr(exc, "where") else _student_frames(exc)
                text = (
                    f"✗ {head}: your function raised {kind}: {exc}\n"
                    f"  on case {i} of {len(cases)}{_label(case)}: {case.describe()}\n{where}"
                )
                return Result(self.id, "error", text.rstrip())
            try:
                diff = self.compare(expected, got)
            except Exception as exc:  # an output so unexpected that the comparison itself fails
                diff = f"output: expected {_describe(expected)}, got {_describe(got)} ({type(exc).__name__}: {exc})"
            if diff is not None:
                matched = self._matching_wrong(case, got)
                text = (
                    f"✗ {head}: case {i} of {len(cases)}{_label(case)} is wrong\n"
                    f"  input: {case.describe()}\n" + textwrap.indent(diff, "  ")
                )
                for msg in matched:
                    text += f"\n  Likely mistake: {msg}"
                return Result(self.id, "fail", text, matched)
        labels = [c.label for c in cases if c.label]
        what = f": {', '.join(labels)}" if labels else ""
        return Result(self.id, "pass", f"✓ {head}: all {len(cases)} cases pass{what}")

    def _matching_wrong(self, case: Case, got: Any) -> list[str]:
        out = []
        for w in self.wrong:
            try:
                wrong_out = _call(w.fn, case)
            except Exception:
                continue
            try:
                if self.compare(wrong_out, got) is None:
                    out.append(w.message)
            except Exception:
                continue
        return out

    def check(self, fn: Callable) -> None:
        """Run the checks on `fn` and print what was found; never raises."""
        print(self.run(fn).report)

    def hint(self) -> None:
        print(self._hint or "No hint for this one: re-read the exercise statement.")

    def solution(self) -> None:
        print(self._solution if self._solution is not None else textwrap.dedent(inspect.getsource(self.reference)))


# -- helpers ---------------------------------------------------------------------------
def _label(case: Case) -> str:
    return f" ({case.label})" if case.label else ""


def _call(fn: Callable, case: Case) -> Any:
    # Deep copies: a student's function that mutates its input must not poison later calls.
    return fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


def _student_frames(exc: BaseException) -> str:
    """The traceback frames that are not the checker's own: the student's line(s)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if not frames:
        return ""
    lines = []
    for f in frames[-3:]:
        where = "your notebook cell" if f.filename.startswith("<") or "ipykernel" in f.filename else f.filename
        lines.append(f"  at line {f.lineno} in {f.name} ({where}): {(f.line or '').strip()}")
    return "\n".join(lines)


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _is_array(x: Any) -> bool:
    return type(x).__module__ == "numpy" and hasattr(x, "shape")


def _values(x: Any) -> str:
    """The values of a small array (at most 8 entries), so a student can redo the case by hand."""
    import numpy as np

    a = _to_numpy(x)
    if a.size == 0 or a.size > 8 or a.dtype.kind not in "biufc":
        return ""
    text = np.array2string(a, precision=4, separator=", ", suppress_small=True)
    return " " + " ".join(text.split())


def _describe(x: Any) -> str:
    if _is_tensor(x):
        return f"tensor {str(x.dtype).replace('torch.', '')} {tuple(x.shape)}{_values(x)}"
    if _is_array(x):
        return f"array {x.dtype} {tuple(x.shape)}{_values(x)}"
    if isinstance(x, (list, tuple)) and len(x) > 6:
        return f"{type(x).__name__} of {len(x)}"
    if isinstance(x, dict) and len(x) > 6:
        return f"dict of {len(x)} items"
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_numpy(x: Any):
    import numpy as np

    if _is_tensor(x):
        import torch

        x = x.detach().cpu()
        if x.dtype.is_complex:
            x = x.resolve_conj()
        elif x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _kind(a) -> str:
    k = a.dtype.kind
    return {"f": "float", "c": "complex", "i": "integer", "u": "integer", "b": "bool"}.get(k, a.dtype.name)


def _fmt(v) -> str:
    try:
        return f"{float(v):.6g}"
    except (TypeError, ValueError):
        return repr(v)


def compare_values(expected: Any, got: Any, *, atol: float = 1e-6, rtol: float = 1e-5, path: str = "output") -> str | None:
    """Describe how `got` differs from `expected` (None when they match within tolerance).

    Handles tensors, NumPy arrays, Python numbers, strings, None, and lists / tuples /
    dicts of those. Arrays are compared by shape, then kind of dtype, then values
    (NaN equals NaN; the first differing entry and the count are reported).
    """
    import numpy as np

    if _is_tensor(expected) or _is_array(expected):
        if not (_is_tensor(got) or _is_array(got)):
            want = "a tensor" if _is_tensor(expected) else "a NumPy array"
            return f"{path}: expected {want} of shape {tuple(expected.shape)}, got {type(got).__name__}"
        e, g = _to_numpy(expected), _to_numpy(got)
        if e.shape != g.shape:
            return f"{path}: expected shape {tuple(e.shape)}, got shape {tuple(g.shape)}"
        if _kind(e) != _kind(g) and not {_kind(e), _kind(g)} <= {"integer", "float"}:
            return f"{path}: expected {_kind(e)} values ({e.dtype}), got {_kind(g)} ({g.dtype})"
        if e.size == 0:
            return None
        if _kind(e) == "bool" or _kind(g) == "bool":
            bad = e != g
        else:
            ef, gf = e.astype(np.complex128 if "complex" in (_kind(e), _kind(g)) else np.float64), g.astype(
                np.complex128 if "complex" in (_kind(e), _kind(g)) else np.float64
            )
            bad = ~np.isclose(gf, ef, atol=atol, rtol=rtol, equal_nan=True)
        if not bad.any():
            return None
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = idx if len(idx) != 1 else idx[0]
        msg = (
            f"{path}: {int(bad.sum())} of {bad.size} entries differ (tolerance atol={atol:g}, rtol={rtol:g})\n"
            f"first at index {where}: expected {_fmt(e[idx])}, got {_fmt(g[idx])}"
        )
        if _kind(g) == "float" and not np.isfinite(g).all() and np.isfinite(e).all():
            msg += f"\nyour output has {int((~np.isfinite(g)).sum())} inf/nan entries"
        return msg
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        same = type(got) is type(expected) and got == expected
        return None if same else f"{path}: expected {expected!r}, got {_describe(got)}"
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if _is_tensor(got) or _is_array(got):
            if getattr(got, "ndim", 1) != 0:
                return f"{path}: expected a single number, got shape {tuple(got.shape)}"
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"{path}: expected a number, got {_describe(got)}"
        if isinstance(expected, float) and math.isnan(expected) and math.isnan(got):
            return None
        if isinstance(expected, int) and isinstance(got, int):
            return None if got == expected else f"{path}: expected {expected}, got {got}"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{path}: expected {_fmt(expected)}, got {_fmt(got)}"
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{path}: expected a {type(expected).__name__} of {len(expected)}, got {_describe(got)}"
        if len(got) != len(expected):
            return f"{path}: expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            diff = compare_values(e, g, atol=atol, rtol=rtol, path=f"{path}[{i}]")
            if diff is not None:
                return diff
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path}: expected a dict, got {_describe(got)}"
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys {sorted(map(repr, missing))[:5]}")
            if extra:
                parts.append(f"unexpected keys {sorted(map(repr, extra))[:5]}")
            return f"{path}: " + "; ".join(parts)
        for k in expected:
            diff = compare_values(expected[k], got[k], atol=atol, rtol=rtol, path=f"{path}[{k!r}]")
            if diff is not None:
                return diff
        return None
    return None if got == expected else f"{path}: expected {_describe(expected)}, got {_describe(got)}"


def load_all() -> dict[str, Exercise]:
    """Import every `lmcourse.exercises.chNN` module so that REGISTRY is complete."""
    import lmcourse.exercises as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return dict(sorted(REGISTRY.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]))
