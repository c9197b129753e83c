"""The checks framework: each exercise is declared once and judged the same way everywhere.

An `Exercise` holds the reference function, a deterministic case generator, a tolerance
and a list of known wrong variants (`Wrong`), each with a message that names the likely
mistake. `ex.check(fn)` runs the student's function on every case and prints either
✓ and what was tested, or ✗ with the first failing case, what differs, and the message
of any wrong variant the student's output matches. A stub that raises
NotImplementedError prints "not implemented yet"; an exception inside the student's
function is shown as the student's own, with its line (and the likely mistake when a
wrong variant raises the same error). While the student's function runs, a tripwire
notes every call to a function the exercise forbids (`Exercise.forbidden_names()`), and an
`lmcourse.forbid.OpGuard` notes every ATen operator it forbids (`Exercise.forbidden_ops`,
whatever alias reached it: `Tensor.softmax`, `torch.special.softmax`, `F.cross_entropy`...)
and, for a hand-written backward, any use of autograd (`Exercise.forbid_autograd`); the
report then opens with a warning, since the grader gives such an answer 0.

Every declared exercise lands in `REGISTRY`, and tests/test_checks.py proves that each
one passes its reference and fails each of its wrong variants.

Derived in chapters/00_getting_started.ipynb.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import inspect
import math
import pkgutil
import re
import textwrap
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from lmcourse import forbid
from lmcourse.forbid import OpGuard

REGISTRY: dict[str, "Exercise"] = {}

#: What joins the case labels in a report ("all 3 cases pass: a; b; c"), so no label may contain it.
LABEL_SEPARATOR = "; "


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
    """A plausible wrong implementation and the message that explains the mistake.

    The student's output matches it when it equals `fn`'s output on the failing case, or
    when both raise the same error there. `random=True` marks a mistake whose output is
    random (dropout left on): it matches when the student's function returns a different
    output when called again on the same input.
    """

    fn: Callable
    message: str
    random: bool = False


@dataclass
class Result:
    """What `Exercise.run` found. `status` is "pass", "fail", "error" or "not implemented"."""

    exercise: str
    status: str
    report: str
    matched: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)  # forbidden functions / operators the student's function called

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class Exercise:
    """An exercise's check, declared once.

    reference: the correct function. cases: a list of `Case`, or a callable taking a seed
    and returning them (deterministic for a given seed). atol / rtol: the tolerance of the
    default comparison. wrong: known wrong variants. compare: optional
    `compare(expected, got) -> str | None`, a description of the difference or None when equal.
    forbidden: dotted names of Python functions the student may not call (besides the reference).
    forbidden_ops: fnmatch patterns over ATen operator names that do the exercise in one call
    (see `lmcourse.forbid`; e.g. `forbid.SOFTMAX`). forbid_autograd: the exercise is a
    hand-written backward, so any backward pass or forward-mode AD counts as forbidden.
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
        forbidden_ops: Sequence[str] = (),
        forbid_autograd: bool = False,
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
        if isinstance(forbidden_ops, str):
            raise TypeError(f"exercise {id}: forbidden_ops must be a sequence of patterns, got the string {forbidden_ops!r}")
        self.forbidden_ops = tuple(forbidden_ops)
        self.forbid_autograd = bool(forbid_autograd)
        OpGuard(self.forbidden_ops)  # a bad pattern fails here, at the declaration, not in a student's check
        if not callable(cases):
            self._check_labels(cases)
        if register:
            if id in REGISTRY and REGISTRY[id].name != name:
                raise ValueError(f"exercise id {id!r} is already registered for {REGISTRY[id].name!r}")
            REGISTRY[id] = self

    def __repr__(self) -> str:
        return f"Exercise({self.id} {self.name}: {self.title})"

    # -- the cases and the comparison ---------------------------------------------------
    def cases(self, seed: int | None = None) -> list[Case]:
        """The cases for `seed` (default: the exercise's public seed); ValueError on a bad label."""
        cases = list(self._cases(self.seed if seed is None else seed) if callable(self._cases) else self._cases)
        self._check_labels(cases)
        return cases

    def _check_labels(self, cases: Sequence[Case]) -> None:
        # A report counts the cases and lists their labels joined by LABEL_SEPARATOR: a label
        # holding the separator would make "6 cases" read as 9.
        for case in cases:
            if LABEL_SEPARATOR.strip() in case.label or "\n" in case.label:
                raise ValueError(
                    f"exercise {self.id}: case label {case.label!r} contains {LABEL_SEPARATOR.strip()!r} or a newline; "
                    f"labels are listed joined by {LABEL_SEPARATOR!r}, so use commas or words instead"
                )

    def compare(self, expected: Any, got: Any) -> str | None:
        """None when `got` matches `expected`, else a description of the difference."""
        if self._compare is not None:
            return self._compare(expected, got)
        return compare_values(expected, got, atol=self.atol, rtol=self.rtol)

    def forbidden_names(self) -> tuple[str, ...]:
        """The reference itself and the declared library equivalents, as dotted names."""
        ref = f"{self.reference.__module__}.{self.reference.__qualname__}"
        return (ref, *self.forbidden)

    def op_guard(self, *, raise_on_hit: bool = False) -> OpGuard:
        """A fresh `OpGuard` for this exercise's forbidden operators (and autograd, when forbidden)."""
        return OpGuard(self.forbidden_ops, autograd=self.forbid_autograd, raise_on_hit=raise_on_hit)

    def forbidden_ops_text(self) -> str:
        """A Markdown sentence naming the forbidden operators and how they are usually spelled ("" when none)."""
        items = []
        for pattern in self.forbidden_ops:
            spelled = forbid.spelling(pattern)
            items.append(f"`{pattern}`" + (f" ({spelled})" if spelled else ""))
        if self.forbid_autograd:
            items.append(f"autograd ({forbid.spelling(forbid.AUTOGRAD)})")
        if not items:
            return ""
        return (
            f"**Not allowed under any name:** {', '.join(items)}. These are caught at the operator, "
            "whichever alias calls them; `check()` warns, and the grader gives such an answer 0."
        )

    def rules(self) -> str:
        """The sentence the exercise's text carries (Markdown), generated from the declaration.

        It names every forbidden function, so the text and the declaration cannot drift apart
        (tests/test_exercises_text.py checks that each solutions notebook carries it verbatim).
        """
        ref, *others = self.forbidden_names()
        names = "".join(f"`{n}`, " for n in others[:-1]) + (f"`{others[-1]}` and " if others else "")
        return (
            f"**Not allowed:** {names}this exercise's own reference `{ref}`. "
            f"`check()` warns when your function calls {'one of them' if others else 'it'}, "
            "and the grader gives such an answer 0."
        )

    # -- running ------------------------------------------------------------------------
    def run(self, fn: Callable) -> Result:
        """Judge `fn` on every case; return a `Result` (nothing is printed)."""
        return self.judge(fn, self.cases(), repeat=True)

    def judge(self, fn: Callable, cases: list[Case], *, repeat: bool = False) -> Result:
        """Judge `fn` on the given cases (the grader passes a stand-in that replays a worker's outputs).

        repeat: on a failing case, call `fn` once more on the same input to recognise a random
        mistake (`Wrong(random=True)`, e.g. dropout left on). Off for the grader's replay,
        which holds exactly one output per case.
        """
        head = f"{self.name} (Exercise {self.id})"
        if not callable(fn):
            return Result(self.id, "error", f"✗ {head}: expected a function, got {type(fn).__name__}")
        reference = self.reference
        with _Tripwires(self.forbidden_names(), fn, self.op_guard()) as wires:
            self.reference = wires.wrap(reference, wires.names[0])  # `ch00.stable_softmax.reference(x)` too
            try:
                result = self._judge(fn, reference, cases, head, wires, repeat)
            finally:
                self.reference = reference
        hits = wires.hits + wires.guard.hits
        if hits:
            warning = (
                f"⚠ {head}: your function calls {' and '.join(map(forbid.describe, hits))}, which this exercise "
                "forbids; the grader gives such an answer 0, so write it yourself."
            )
            result.report = warning + "\n" + result.report
            result.forbidden = list(hits)
        return result

    def _judge(self, fn, reference, cases, head, wires, repeat) -> Result:
        for i, case in enumerate(cases, 1):
            expected = _call(reference, case)
            try:
                with wires.armed():
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
                ).rstrip()
                matched = self._matching_wrong_error(case, kind, str(exc))
                for msg in matched:
                    text += f"\n  Likely mistake: {msg}"
                return Result(self.id, "error", text, matched)
            try:
                diff = self.compare(expected, got)
            except Exception as exc:  # an output so unexpected that the comparison itself fails
                diff = f"output: expected {_describe(expected)}, got {_describe(got)} ({type(exc).__name__}: {exc})"
            if diff is not None:
                matched = self._matching_wrong(case, got)
                if repeat and any(w.random for w in self.wrong) and self._is_random(fn, case, got, wires):
                    matched += [w.message for w in self.wrong if w.random]
                text = (
                    f"✗ {head}: case {i} of {len(cases)}{_label(case)} is wrong\n"
                    f"  input: {case.describe()}\n" + textwrap.indent(diff, "  ")
                )
                for msg in matched:
                    text += f"\n  Likely mistake: {msg}"
                return Result(self.id, "fail", text, matched)
        labels = [c.label for c in cases if c.label]
        what = f": {LABEL_SEPARATOR.join(labels)}" if labels else ""
        return Result(self.id, "pass", f"✓ {head}: all {len(cases)} cases pass{what}")

    def _matching_wrong(self, case: Case, got: Any) -> list[str]:
        out = []
        for w in self.wrong:
            if w.random:
                continue
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

    def _matching_wrong_error(self, case: Case, kind: str, message: str) -> list[str]:
        """The wrong variants that raise the same error as the student's function on `case`."""
        out = []
        for w in self.wrong:
            if w.random:
                continue
            try:
                _call(w.fn, case)
            except Exception as exc:
                if type(exc).__name__ == kind and str(exc)[:200] == message[:200]:
                    out.append(w.message)
        return out

    def _is_random(self, fn: Callable, case: Case, got: Any, wires: "_Tripwires") -> bool:
        """True when `fn` returns something else when called again on the same input."""
        try:
            with wires.armed():
                again = _call(fn, case)
            return self.compare(got, again) is not None
        except Exception:
            return False

    def check(self, fn: Callable) -> None:
        """Run the checks on `fn` and print what was found; never raises."""
        print(self.run(fn).report)

    def hint(self) -> None:
        print(self._hint or "No hint for this one: re-read the exercise statement.")

    def solution_source(self) -> str:
        """The reference's source, renamed to the names the student uses.

        The reference (say `_softmax`) is printed as `def stable_softmax(...)`, and any other
        exercise's reference from the same module that it calls gets that exercise's name too,
        so the printed solution calls the student's own earlier functions.
        """
        if self._solution is not None:
            return self._solution
        src = textwrap.dedent(inspect.getsource(self.reference))
        renames = {
            ex.reference.__name__: ex.name
            for ex in REGISTRY.values()
            if ex.reference.__module__ == self.reference.__module__
        }
        renames[self.reference.__name__] = self.name
        for old, new in renames.items():
            src = re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, src)
        return src

    def solution(self) -> None:
        print(self.solution_source())


# -- the tripwire ------------------------------------------------------------------------
def _resolve(dotted: str):
    """(owner, attribute name) for "pkg.module.func" or "pkg.module.Class.method"."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:-1]:
            owner = getattr(owner, p)
        return owner, parts[-1]
    raise ValueError(f"cannot resolve {dotted!r}")


_MISSING = object()


class _Tripwires:
    """While `judge` runs, each forbidden dotted name points to a wire that notes the call
    (only while `armed()`, i.e. inside the student's function) and then calls the original.
    `armed()` also enters the exercise's `OpGuard`, which notes forbidden operators.

    Also rewired: names in the student's function's globals bound to a forbidden function
    (`from lmcourse.losses import softmax` before the check). Everything is restored on exit.
    Calling the reference itself as the answer (`check(ch00._softmax)`) counts too.
    """

    def __init__(self, names: Sequence[str], fn: Callable, guard: OpGuard | None = None) -> None:
        self.names = tuple(names)
        self.fn = fn
        self.guard = guard if guard is not None else OpGuard(())  # the operator layer, armed with the wires
        self.hits: list[str] = []
        self._armed = False
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, original: Callable, name: str) -> Callable:
        def wire(*args, **kwargs):
            if self._armed and name not in self.hits:
                self.hits.append(name)
            return original(*args, **kwargs)

        try:
            functools.update_wrapper(wire, original)
        except Exception:  # some builtins lack attributes update_wrapper copies: the wire works without
            pass
        return wire

    @staticmethod
    def _raw(owner: Any, attr: str) -> Any:
        """The attribute as the owner itself holds it (_MISSING when inherited), to put back exactly."""
        return getattr(owner, "__dict__", {}).get(attr, _MISSING)

    def __enter__(self) -> "_Tripwires":
        target = inspect.unwrap(self.fn.func if isinstance(self.fn, functools.partial) else self.fn)
        env = getattr(target, "__globals__", None)
        for name in self.names:
            try:
                owner, attr = _resolve(name)
                original = getattr(owner, attr)
            except Exception:
                continue
            if target is original or getattr(target, "__func__", None) is original:
                self.hits.append(name)
            wire = self.wrap(original, name)
            raw = self._raw(owner, attr)
            try:
                setattr(owner, attr, wire)
            except (TypeError, AttributeError):
                continue
            self._undo.append((owner, attr, raw))
            if isinstance(env, dict):
                for key, value in list(env.items()):
                    if value is original:
                        env[key] = wire
                        self._undo.append((env, key, value))
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, raw in reversed(self._undo):
            if isinstance(owner, dict):
                owner[attr] = raw
            elif raw is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, raw)
        self._undo.clear()

    @contextlib.contextmanager
    def armed(self):
        """Note forbidden calls (functions and operators) only inside this block: the student's own calls."""
        self._armed = True
        try:
            with self.guard:
                yield
        finally:
            self._armed = False


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
    text = " ".join(repr(x).split())  # a module's or optimiser's repr spans lines: keep the report's one line
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
    return {"f": "float", "c": "complex", "i": "integer", "u": "integer"}.get(k, a.dtype.name)  # bool: "bool"


def _fmt(v) -> str:
    import numpy as np

    if isinstance(v, (complex, np.complexfloating)):
        return f"{complex(v):.6g}"
    try:
        return f"{float(v):.6g}"
    except (TypeError, ValueError):
        return repr(v)


# (got, expected) float dtypes where the answer lost precision: named when its values miss.
_LESS_PRECISE = {
    ("float16", "float32"), ("float16", "float64"), ("bfloat16", "float32"), ("bfloat16", "float64"),
    ("float32", "float64"),
}


def _dtype_name(x: Any) -> str:
    return str(x.dtype).replace("torch.", "")


def _close(got: float, expected: float, atol: float, rtol: float) -> bool:
    """The scalar form of np.isclose(got, expected, atol, rtol, equal_nan=True): one rule for all."""
    if math.isinf(expected) or math.isinf(got):
        return got == expected
    return abs(got - expected) <= atol + rtol * abs(expected) or (math.isnan(got) and math.isnan(expected))


def compare_values(expected: Any, got: Any, *, atol: float = 1e-6, rtol: float = 1e-5, path: str = "output") -> str | None:
    """Describe how `got` differs from `expected` (None when they match within tolerance).

    Handles tensors, NumPy arrays, Python and NumPy numbers, strings, None, sets, and lists /
    tuples / dicts of those. The rules:

    - numbers and array entries match when |got - expected| <= atol + rtol·|expected|
      (NumPy's isclose); NaN matches NaN, and inf matches only the same inf;
    - a tensor must be answered with a tensor or an array, an array likewise; shapes must
      be equal; an integer expected may come back as an equal float and vice versa (a
      numeric kind is not judged, its values are), but bool and complex must stay bool and
      complex; a lower-precision float (float16) that misses is named as the likely cause;
    - a number must be answered with a number (a 0-dim tensor or array is fine, bool is not);
      two ints compare exactly;
    - bool, None and str must be answered with the same type and value;
    - a list or tuple with a list or tuple (either kind) of the same length, item by item;
      a torch.Size is a tuple of ints; a dict with the same keys, value by value;
    - anything else (a set, say) with ==, so a set matches a set or frozenset of equal items.
    """
    import numpy as np

    if isinstance(expected, np.generic):  # a NumPy scalar is a number, not an array
        expected = expected.item()
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
        # One rule for every kind: bool and int values are exact in complex128, floats keep their value.
        bad = ~np.isclose(g.astype(np.complex128), e.astype(np.complex128), atol=atol, rtol=rtol, equal_nan=True)
        if not bad.any():
            return None
        tolerance = f"(tolerance atol={atol:g}, rtol={rtol:g})"
        if e.ndim == 0:  # a single value: no entries to count, no index to name
            msg = f"{path}: expected {_fmt(e[()])}, got {_fmt(g[()])} {tolerance}"
        else:
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = idx if len(idx) != 1 else idx[0]
            msg = (
                f"{path}: {int(bad.sum())} of {bad.size} entries differ {tolerance}\n"
                f"first at index {where}: expected {_fmt(e[idx])}, got {_fmt(g[idx])}"
            )
        if _kind(g) == "float" and not np.isfinite(g).all() and np.isfinite(e).all():
            msg += f"\nyour output has {int((~np.isfinite(g)).sum())} inf/nan entries"
        ename, gname = _dtype_name(expected), _dtype_name(got)
        if (gname, ename) in _LESS_PRECISE:
            msg += (f"\nyour output is {gname}, less precise than the expected {ename}: "
                    f"compute in the inputs' dtype ({gname} keeps only about 3 significant digits)")
        return msg
    if isinstance(got, np.generic):
        got = got.item()
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        same = type(got) is type(expected) and got == expected
        return None if same else f"{path}: expected {expected!r}, got {_describe(got)}"
    if isinstance(expected, (int, float)):
        if _is_tensor(got) or _is_array(got):
            if got.ndim != 0:
                return f"{path}: expected a single number, got shape {tuple(got.shape)}"
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"{path}: expected a number, got {_describe(got)}"
        if isinstance(expected, int) and isinstance(got, int):
            return None if got == expected else f"{path}: expected {expected}, got {got}"
        if _close(float(got), float(expected), atol, rtol):
            return None
        return f"{path}: expected {_fmt(expected)}, got {_fmt(got)}"
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            kind = "list" if isinstance(expected, list) else "tuple"  # a torch.Size is a tuple of ints
            return f"{path}: expected a {kind} of {len(expected)}, got {_describe(got)}"
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
            parts = [f"{what} {_some(keys)}" for what, keys in (("missing keys", missing), ("unexpected keys", extra)) if keys]
            return f"{path}: " + "; ".join(parts)
        for k in expected:
            diff = compare_values(expected[k], got[k], atol=atol, rtol=rtol, path=f"{path}[{k!r}]")
            if diff is not None:
                return diff
        return None
    try:
        same = bool(got == expected)
    except Exception:  # an == that raises or returns something without a truth value
        same = False
    return None if same else f"{path}: expected {_describe(expected)}, got {_describe(got)}"


def _some(keys: list) -> str:
    """At most five keys, sorted by their repr, and how many more there are."""
    shown = sorted(map(repr, keys))
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    return ", ".join(shown[:5]) + more


def load_all() -> dict[str, Exercise]:
    """Import every `lmcourse.exercises.chNN` module so that REGISTRY is complete."""
    import lmcourse.exercises as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return dict(sorted(REGISTRY.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]))
