"""The checks framework, and every registered exercise against its reference and wrong variants."""
from __future__ import annotations

import fnmatch
import functools
import math
import sys

import numpy as np
import pytest
import torch

from lmcourse import checks, forbid
from lmcourse.checks import Case, Exercise, Wrong, compare_values

REGISTRY = checks.load_all()


def test_registry_holds_every_chapter_module():
    import pkgutil

    import lmcourse.exercises as pkg

    modules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert "ch00" in modules
    chapters = {int(ex_id.split(".")[0]) for ex_id in REGISTRY}
    assert chapters == {int(m[2:]) for m in modules}, "a chNN module declares no exercise, or an id names the wrong chapter"


@pytest.mark.parametrize("ex_id", list(REGISTRY))
def test_reference_passes(ex_id):
    ex = REGISTRY[ex_id]
    result = ex.run(ex.reference)
    assert result.passed, result.report
    assert len(ex.cases()) >= 2, f"{ex}: a check needs several cases"


@pytest.mark.parametrize(
    "ex_id,k", [(ex_id, k) for ex_id, ex in REGISTRY.items() for k in range(len(ex.wrong))]
)
def test_each_wrong_variant_fails_with_its_message(ex_id, k):
    ex = REGISTRY[ex_id]
    wrong = ex.wrong[k]
    result = ex.run(wrong.fn)
    assert result.status in ("fail", "error"), f"{ex}: wrong variant {wrong.fn.__name__} passed the check"
    if result.status == "fail":
        assert wrong.message in result.report, f"{ex}: {wrong.fn.__name__} failed without its own message:\n{result.report}"


def test_every_exercise_has_a_hint_and_wrong_variants():
    for ex in REGISTRY.values():
        assert ex._hint, f"{ex}: no hint"
        assert ex.wrong, f"{ex}: no wrong variants, so nothing shows the check can fail"


def test_cases_are_deterministic():
    for ex in REGISTRY.values():
        a, b = ex.cases(), ex.cases()
        assert [c.label for c in a] == [c.label for c in b]
        for ca, cb in zip(a, b):
            assert compare_values(_state(ca.args), _state(cb.args), atol=0, rtol=0) is None, ex


def _state(x):
    """A case's arguments with each model and optimiser (7.1's) replaced by its state dict: those
    objects compare by identity, so two equal builds are told apart only by what they hold."""
    if isinstance(x, (torch.nn.Module, torch.optim.Optimizer)):
        return [type(x).__name__, x.state_dict()]
    if isinstance(x, (list, tuple)):
        return [_state(v) for v in x]
    if isinstance(x, dict):
        return {k: _state(v) for k, v in x.items()}
    return x


# -- the framework itself ---------------------------------------------------------------
def _double(x):
    return 2 * x


def _make(**kw):
    kw.setdefault("wrong", [Wrong(lambda x: 3 * x, "you tripled instead of doubling")])
    return Exercise(
        id="99.1", name="double", title="double", reference=_double,
        cases=[Case((np.arange(3.0),), label="small"), Case((np.ones((2, 2)),), label="square")],
        hint="multiply by two", register=False, **kw,
    )


def test_pass_prints_tick_and_what_was_tested(capsys):
    _make().check(lambda x: x * 2)
    out = capsys.readouterr().out
    assert out == "✓ double (Exercise 99.1): all 2 cases pass: small; square\n"


def test_failure_names_case_entry_and_matching_mistake(capsys):
    ex = _make()
    ex.check(lambda x: 3 * x)
    out = capsys.readouterr().out
    assert out.startswith("✗") and "case 1 of 2 (small)" in out
    assert "first at index 1: expected 2, got 3" in out
    assert "Likely mistake: you tripled instead of doubling" in out


def test_failure_without_known_mistake_has_no_likely_line():
    result = _make().run(lambda x: x + 1)
    assert result.status == "fail" and "Likely mistake" not in result.report and result.matched == []


def test_shape_mismatch_is_reported():
    result = _make().run(lambda x: (2 * x).reshape(-1))
    assert "expected shape (3,)" not in result.report  # case 1 passes: 1-D already
    assert "expected shape (2, 2), got shape (4,)" in result.report


def test_stub_prints_not_implemented_and_does_not_raise(capsys):
    def stub(x):
        raise NotImplementedError("Exercise 99.1")

    _make().check(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert _make().run(stub).status == "not implemented"


def test_student_exception_is_shown_as_theirs_with_their_line():
    def student(x):
        y = x.sum()
        return y.bogus_attribute  # the student's own bug

    result = _make().run(student)
    assert result.status == "error"
    assert "your function raised AttributeError" in result.report
    assert "return y.bogus_attribute" in result.report
    assert "lmcourse/checks.py" not in result.report and "_call" not in result.report


def test_inputs_are_copied_so_mutation_cannot_leak():
    def mutating(x):
        x *= 2
        return x

    # If the checker passed the same array to the reference after the student mutated it, this
    # would compare 4x with 2x and fail.
    assert _make().run(mutating).passed


def test_not_a_function():
    assert _make().run(42).status == "error"


def test_hint_and_solution_print(capsys):
    ex = _make()
    ex.hint()
    ex.solution()
    out = capsys.readouterr().out
    assert "multiply by two" in out and "def double(x):" in out and "_double" not in out


def test_duplicate_id_for_another_name_is_refused():
    Exercise(id="98.1", name="a", title="a", reference=_double, cases=[], register=True)
    with pytest.raises(ValueError, match="98.1"):
        Exercise(id="98.1", name="b", title="b", reference=_double, cases=[], register=True)
    del checks.REGISTRY["98.1"]


@pytest.mark.parametrize(
    "expected,got,needle",
    [
        (torch.zeros(2), np.zeros(2), None),
        (torch.zeros(2), [0.0, 0.0], "expected a tensor"),
        (np.zeros(3), np.zeros((3, 1)), "expected shape (3,)"),
        (np.array([True, False]), np.array([1.0, 0.0]), "expected bool"),
        (1.0, 1.0 + 1e-9, None),
        (1.0, 1.1, "expected 1, got 1.1"),
        (3, 4, "expected 3, got 4"),
        (float("nan"), float("nan"), None),
        ("ab", "ab", None),
        ("ab", "ba", "expected 'ab'"),
        ([1, 2], [1, 2, 3], "expected 2 items, got 3"),
        ({"a": 1}, {"b": 1}, "missing keys"),
        ((np.ones(2), 1), (np.ones(2), 2), "output[1]"),
        (np.array([1.0, np.nan]), np.array([1.0, np.nan]), None),
        (np.array([1.0, 2.0]), np.array([1.0, np.inf]), "inf/nan"),
        (torch.tensor(2.0), torch.tensor(2.0), None),
        (2.0, torch.tensor(2.0), None),
        (2.0, torch.ones(2), "expected a single number"),
    ],
)
def test_compare_values(expected, got, needle):
    diff = compare_values(expected, got)
    if needle is None:
        assert diff is None, diff
    else:
        assert diff is not None and needle in diff, diff


def test_a_custom_compare_that_breaks_on_odd_output_still_reports(capsys):
    ex = _make(compare=lambda expected, got: None if got.shape == expected.shape and (got == expected).all() else "differs")
    ex.check(lambda x: None)  # None has no .shape: the comparison raises, the check must not
    out = capsys.readouterr().out
    assert out.startswith("✗") and "got None" in out and "AttributeError" in out


# -- compare_values, branch by branch (each rule in its docstring is pinned here) ----------
class _EqRaises:
    def __eq__(self, other):
        raise RuntimeError("no equality here")


@pytest.mark.parametrize(
    "expected,got,message",
    [
        # arrays and tensors: container, shape, kind of dtype
        (torch.zeros(2), [0.0, 0.0], "output: expected a tensor of shape (2,), got list"),
        (np.zeros(3), 1.0, "output: expected a NumPy array of shape (3,), got float"),
        (np.zeros(3), np.zeros((3, 1)), "output: expected shape (3,), got shape (3, 1)"),
        (np.array([True, False]), np.array([1.0, 0.0]), "output: expected bool values (bool), got float (float64)"),
        (np.array([1.0, 0.0]), np.array([True, False]), "output: expected float values (float64), got bool (bool)"),
        (np.array([1 + 1j]), np.array([1.0]), "output: expected complex values (complex128), got float (float64)"),
        (np.array([1.0]), np.array([1 + 0j]), "output: expected float values (float64), got complex (complex128)"),
        (np.array([1, 2]), np.array([1, 3]), "output: 1 of 2 entries differ (tolerance atol=1e-06, rtol=1e-05)\n"
         "first at index 1: expected 2, got 3"),
        (np.array([True, False]), np.array([True, True]), "output: 1 of 2 entries differ (tolerance atol=1e-06, "
         "rtol=1e-05)\nfirst at index 1: expected 0, got 1"),
        (np.zeros((2, 2)), np.array([[0, 0], [1, 0.0]]), "output: 1 of 4 entries differ (tolerance atol=1e-06, "
         "rtol=1e-05)\nfirst at index (1, 0): expected 0, got 1"),
        (np.array([1.0]), np.array([2.0]), "output: 1 of 1 entries differ (tolerance atol=1e-06, rtol=1e-05)\n"
         "first at index 0: expected 1, got 2"),
        (torch.tensor(30.0), torch.tensor(20.5), "output: expected 30, got 20.5 (tolerance atol=1e-06, rtol=1e-05)"),
        (np.array(1.0), np.array(np.inf), "output: expected 1, got inf (tolerance atol=1e-06, rtol=1e-05)\n"
         "your output has 1 inf/nan entries"),
        (np.array([1 + 1j]), np.array([1 + 2j]), "output: 1 of 1 entries differ (tolerance atol=1e-06, rtol=1e-05)\n"
         "first at index 0: expected 1+1j, got 1+2j"),
        (np.array([1.0, 2.0]), np.array([1.0, np.inf]), "output: 1 of 2 entries differ (tolerance atol=1e-06, "
         "rtol=1e-05)\nfirst at index 1: expected 2, got inf\nyour output has 1 inf/nan entries"),
        (np.array([1.0, 2.0, 3.0]), np.array([np.nan, 2.0, np.inf]), "output: 2 of 3 entries differ (tolerance "
         "atol=1e-06, rtol=1e-05)\nfirst at index 0: expected 1, got nan\nyour output has 2 inf/nan entries"),
        (np.array([1.0, np.inf]), np.array([1.0, -np.inf]), "output: 1 of 2 entries differ (tolerance atol=1e-06, "
         "rtol=1e-05)\nfirst at index 1: expected inf, got -inf"),  # no inf/nan line: the expected has one too
        (torch.ones(3, dtype=torch.float64) / 3, (torch.ones(3) / 3).half(), "output: 3 of 3 entries differ "
         "(tolerance atol=1e-06, rtol=1e-05)\nfirst at index 0: expected 0.333333, got 0.333252\nyour output is "
         "float16, less precise than the expected float64: compute in the inputs' dtype (float16 keeps only about "
         "3 significant digits)"),
        (np.array([1 / 3]), np.array([0.5], dtype=np.float32), "output: 1 of 1 entries differ (tolerance atol=1e-06, "
         "rtol=1e-05)\nfirst at index 0: expected 0.333333, got 0.5\nyour output is float32, less precise than the "
         "expected float64: compute in the inputs' dtype (float32 keeps only about 3 significant digits)"),
        # numbers
        (1, True, "output: expected a number, got True"),
        (1.0, True, "output: expected a number, got True"),
        (1.0, "x", "output: expected a number, got 'x'"),
        (1.0, None, "output: expected a number, got None"),
        (2.0, torch.ones(2), "output: expected a single number, got shape (2,)"),
        (3, 4, "output: expected 3, got 4"),
        (3, 3.5, "output: expected 3, got 3.5"),
        (1.0, 1.1, "output: expected 1, got 1.1"),
        (float("inf"), -float("inf"), "output: expected inf, got -inf"),
        (float("inf"), 1e308, "output: expected inf, got 1e+308"),
        (1e308, float("inf"), "output: expected 1e+308, got inf"),
        (1.0, float("nan"), "output: expected 1, got nan"),
        (float("nan"), 1.0, "output: expected nan, got 1"),
        (np.int64(3), 4, "output: expected 3, got 4"),
        # bool, None, str: same type and value
        (True, 1, "output: expected True, got 1"),
        (False, None, "output: expected False, got None"),
        (None, 0, "output: expected None, got 0"),
        ("ab", "ba", "output: expected 'ab', got 'ba'"),
        ("1", 1, "output: expected '1', got 1"),
        # containers
        ([1, 2], "12", "output: expected a list of 2, got '12'"),
        ((1, 2), 3, "output: expected a tuple of 2, got 3"),
        ([1, 2], [1, 2, 3], "output: expected 2 items, got 3"),
        ([1, 2], [5, 6], "output[0]: expected 1, got 5"),
        ([1, [2]], [1, [3]], "output[1][0]: expected 2, got 3"),
        ((np.ones(2), 1), (np.ones(2), 2), "output[1]: expected 1, got 2"),
        (torch.Size([2, 3]), torch.tensor([2, 3]), "output: expected a tuple of 2, got tensor int64 (2,) [2, 3]"),
        (torch.Size([2, 3]), (2, 4), "output[1]: expected 3, got 4"),
        ({"a": 1}, [1], "output: expected a dict, got [1]"),
        ({"a": 1}, {"a": 2}, "output['a']: expected 1, got 2"),
        ({"a": 1, "b": 2}, {"c": 1}, "output: missing keys 'a', 'b'; unexpected keys 'c'"),
        ({"a": 1}, {"a": 1, "b": 2}, "output: unexpected keys 'b'"),
        (dict.fromkeys("gfedcba", 1), {}, "output: missing keys 'a', 'b', 'c', 'd', 'e' and 2 more"),
        ({"a": {"b": [1.0]}}, {"a": {"b": [2.0]}}, "output['a']['b'][0]: expected 1, got 2"),
        # everything else compares with ==
        ({1, 2}, {1, 3}, "output: expected {1, 2}, got {1, 3}"),
        ({1, 2}, [1, 2], "output: expected {1, 2}, got [1, 2]"),
        (_EqRaises(), 1, None),  # checked below: a message, not a crash
        # describing what came back
        (list(range(7)), list(range(8)), "output: expected 7 items, got 8"),
        ([0], [list(range(7))], "output[0]: expected a number, got list of 7"),
        ([0], [dict.fromkeys(range(7))], "output[0]: expected a number, got dict of 7 items"),
        ("x", "y" * 70, "output: expected 'x', got '" + "y" * 56 + "..."),
        (1, np.array(["a"]), "output: expected a single number, got shape (1,)"),
        (1, [np.array(["a"])], "output: expected a number, got [array(['a'], dtype='<U1')]"),
        (["x"], [torch.arange(9)], "output[0]: expected 'x', got tensor int64 (9,)"),
        (["x"], [torch.tensor([1e-9, 1.0])], "output[0]: expected 'x', got tensor float32 (2,) [0., 1.]"),
        ("x", np.array(["a"]), "output: expected 'x', got array <U1 (1,)"),
        ("x", np.zeros((3, 3)), "output: expected 'x', got array float64 (3, 3)"),
        ([1], [np.array([2, 3])], "output[0]: expected a single number, got shape (2,)"),
        (np.zeros(1), np.array(["a"]), "output: expected float values (float64), got str32 (<U1)"),
    ],
)
def test_compare_values_messages(expected, got, message):
    diff = compare_values(expected, got)
    if isinstance(expected, _EqRaises):
        assert diff is not None and diff.startswith("output: expected <")
    else:
        assert diff == message


@pytest.mark.parametrize(
    "expected,got",
    [
        (np.array([1, 2]), np.array([1.0, 2.0])),        # an int expected, equal floats back: values are judged
        (np.array([1.0, 2.0]), np.array([1, 2])),
        (torch.tensor([1, 2]), torch.tensor([1.0, 2.0])),
        (torch.tensor([1.0, 2.0]), np.array([1.0, 2.0])),  # a tensor may be answered with an array ...
        (np.array([1.0, 2.0]), torch.tensor([1.0, 2.0])),  # ... and the other way round
        (np.zeros(0), np.zeros(0, dtype=np.int64)),
        (np.array([1.0, np.nan]), np.array([1.0, np.nan])),
        (np.array([np.inf, -np.inf]), np.array([np.inf, -np.inf])),
        (np.array([True, False]), np.array([True, False])),
        (np.array([1 + 1j]), np.array([1 + 1j])),
        (torch.tensor([1.0, 2.0], dtype=torch.bfloat16), torch.tensor([1.0, 2.0])),
        (torch.tensor(2.0), torch.tensor(2.0)),
        (2.0, torch.tensor(2.0)),
        (2.0, np.array(2.0)),
        (2.0, np.float32(2.0)),
        (np.float64(1.0), 1.0),
        (np.int64(3), 3),
        (3, 3.0),
        (3.0, 3),
        (True, np.bool_(True)),
        (np.bool_(False), False),
        (float("nan"), float("nan")),
        (float("inf"), float("inf")),
        (1.0, 1.0 + 1e-9),
        (None, None),
        ("ab", "ab"),
        ([1, 2], (1, 2)),
        ((1, 2), [1, 2]),
        (torch.Size([2, 3]), (2, 3)),
        ((2, 3), torch.Size([2, 3])),
        (torch.Size([2, 3]), torch.Size([2, 3])),
        ({"a": [1.0, 2.0]}, {"a": (1.0, 2.0)}),
        ({1, 2}, {2, 1}),
        ({1, 2}, frozenset({1, 2})),
        ([], []),
        ({}, {}),
    ],
)
def test_compare_values_accepts(expected, got):
    assert compare_values(expected, got) is None


@pytest.mark.parametrize("box", [lambda v: v, lambda v: np.array([v]), lambda v: torch.tensor([v], dtype=torch.float64)])
def test_tolerance_edge_is_atol_plus_rtol_times_expected(box):
    """|got - expected| <= atol + rtol·|expected|, the same rule for numbers, arrays and tensors."""
    atol, rtol = 0.5, 0.25  # exact in binary: the edge is exactly representable

    def ok(expected, got):
        return compare_values(box(expected), box(got), atol=atol, rtol=rtol) is None

    assert ok(2.0, 3.0) and ok(2.0, 1.0)  # exactly at the edge: 0.5 + 0.25·2 = 1
    assert not ok(2.0, 3.0 + 2**-40) and not ok(2.0, 1.0 - 2**-40)
    assert ok(-2.0, -3.0) and not ok(-2.0, -3.0 - 2**-40)  # |expected|
    assert ok(0.0, 0.5) and not ok(0.0, 0.5 + 2**-40)  # atol alone
    assert not ok(1.0, 2.0)  # rtol scales the expected value (0.75), not the answer (1.0)
    assert compare_values(box(2.0), box(3.0), atol=1.0, rtol=0.0) is None
    assert compare_values(box(2.0), box(3.0), atol=0.0, rtol=0.5) is None
    assert compare_values(box(2.0), box(3.0), atol=0.0, rtol=0.49) is not None
    assert compare_values(box(2.0), box(3.0), atol=0.99, rtol=0.0) is not None


def test_default_tolerances():
    assert compare_values(1.0, 1.0 + 1.05e-5) is None and compare_values(1.0, 1.0 + 1.2e-5) is not None
    assert compare_values(0.0, 1e-6) is None and compare_values(0.0, 1.01e-6) is not None


def test_two_ints_compare_exactly_whatever_the_tolerance():
    assert compare_values(1000, 1001, atol=10, rtol=1) == "output: expected 1000, got 1001"
    assert compare_values(1000, 1001.0, atol=10, rtol=1) is None


def test_tolerance_and_path_reach_nested_values():
    assert compare_values([{"a": 1.0}], [{"a": 1.4}], atol=0.5) is None
    assert compare_values({"a": [np.ones(2)]}, {"a": [np.ones(2) * 1.4]}, atol=0.5) is None
    assert compare_values((1.0,), (1.4,), atol=0.5) is None
    assert compare_values(1.0, 2.0, path="x") == "x: expected 1, got 2"
    assert compare_values([1.0], [2.0], path="x") == "x[0]: expected 1, got 2"
    assert compare_values({"k": 1}, {"k": 2}, path="x") == "x['k']: expected 1, got 2"
    assert compare_values({"k": 1}, {}, path="x") == "x: missing keys 'k'"
    assert compare_values(np.ones(1), np.ones(1) * 3, path="x").startswith("x: 1 of 1")
    assert compare_values(1.0, [2.0], path="x") == "x: expected a number, got [2.0]"
    assert compare_values(np.ones(1), 1.0, path="x").startswith("x: expected a NumPy array")


def test_case_describes_args_and_kwargs():
    case = Case((np.array([1.0, 2.0]), 3), {"axis": 0, "name": "x"}, label="L")
    assert case.describe() == "array float64 (2,) [1., 2.], 3, axis=0, name='x'"
    assert Case().describe() == ""


# -- the tripwire: a forbidden call gets a warning, and everything is put back -------------
class _Base:
    def method(self, x):
        return 2 * x


class _Sub(_Base):
    pass


def _fsum_ref(xs):
    return math.fsum(xs)


def _forbidding(names, reference=_fsum_ref, **kw):
    return Exercise(id="97.1", name="total", title="total", reference=reference,
                    cases=[Case(([0.5, 0.25],), label="two"), Case(([1.0],), label="one")],
                    forbidden=names, hint="add", register=False, **kw)


WARNING = ("⚠ total (Exercise 97.1): your function calls math.fsum, which this exercise forbids; "
           "the grader gives such an answer 0, so write it yourself.")


def test_a_forbidden_call_is_warned_about_on_the_first_line_and_still_judged():
    import math as m

    original = m.fsum
    result = _forbidding(["math.fsum"]).run(lambda xs: m.fsum(xs))
    assert result.passed and result.forbidden == ["math.fsum"]
    assert result.report.split("\n") == [WARNING, "✓ total (Exercise 97.1): all 2 cases pass: two; one"]
    assert m.fsum is original  # put back


def test_the_reference_calling_a_forbidden_function_is_not_the_students_call():
    result = _forbidding(["math.fsum"]).run(lambda xs: sum(xs))
    assert result.passed and result.forbidden == [] and "⚠" not in result.report


def test_a_forbidden_call_in_a_wrong_answer_is_warned_about_too():
    result = _forbidding(["math.fsum"]).run(lambda xs: math.fsum(xs) + 1)
    assert result.status == "fail" and result.report.startswith(WARNING + "\n✗ total")


def test_an_alias_imported_before_the_check_is_caught_and_restored():
    namespace = {"fsum": math.fsum}
    exec("def total(xs):\n    return fsum(xs)\n", namespace)
    result = _forbidding(["math.fsum"]).run(namespace["total"])
    assert result.forbidden == ["math.fsum"]
    assert namespace["fsum"] is math.fsum  # the student's namespace is left as it was


def test_calling_the_reference_is_caught_every_way():
    ex = _forbidding([])
    name = f"{__name__}._fsum_ref"
    assert ex.forbidden_names() == (name,)
    assert ex.run(_fsum_ref).forbidden == [name]                       # the reference as the answer
    assert ex.run(lambda xs: ex.reference(xs)).forbidden == [name]     # through the exercise
    assert ex.run(lambda xs: _fsum_ref(xs)).forbidden == [name]        # through its module
    assert ex.reference is _fsum_ref and globals()["_fsum_ref"].__name__ == "_fsum_ref"
    assert ex.run(functools.partial(_fsum_ref)).forbidden == [name]


def test_a_forbidden_method_is_caught_and_the_class_restored_exactly():
    ex = _forbidding([f"{__name__}._Sub.method", f"{__name__}._Base.method"], reference=lambda xs: 2 * xs[0])
    result = ex.run(lambda xs: _Sub().method(xs[0]))
    assert result.forbidden == [f"{__name__}._Sub.method"] and result.passed
    assert "method" not in vars(_Sub) and _Sub.method is _Base.method  # inherited again, not copied in


def test_several_forbidden_calls_are_all_named_once():
    ex = _forbidding(["math.fsum", "math.prod"])
    result = ex.run(lambda xs: math.fsum(xs) + math.fsum(xs) + 0 * math.prod(xs))
    assert result.forbidden == ["math.fsum", "math.prod"]
    assert "calls math.fsum and math.prod, which" in result.report


def test_unresolvable_or_unpatchable_names_are_skipped():
    ex = _forbidding(["no_such_module.f", "math.no_such_function", "builtins.int.bit_length"])
    result = ex.run(lambda xs: math.fsum(xs))
    assert result.passed and result.forbidden == []


def test_wires_are_removed_even_when_the_check_breaks():
    import math as m

    original = m.fsum
    ex = _forbidding(["math.fsum"], compare=lambda e, g: 1 / 0)
    result = ex.run(lambda xs: m.fsum(xs))
    assert result.status == "fail" and m.fsum is original


def test_forbidden_calls_warn_in_errors_too():
    def student(xs):
        math.fsum(xs)
        raise ValueError("my bug")

    result = _forbidding(["math.fsum"]).run(student)
    assert result.status == "error" and result.report.startswith(WARNING + "\n✗ total")


# -- forbidden operators (lmcourse.forbid.OpGuard inside judge) -------------------------------
def _torch_softmax_ref(x):
    z = x - x.max(dim=-1, keepdim=True).values
    return z.exp() / z.exp().sum(dim=-1, keepdim=True)


def _op_forbidding(**kw):
    kw.setdefault("forbidden_ops", forbid.SOFTMAX)
    return Exercise(id="95.1", name="softmax", title="softmax", reference=_torch_softmax_ref,
                    cases=[Case((torch.randn(2, 3, generator=torch.Generator().manual_seed(0)),), label="2-D")],
                    hint="subtract the max", register=False, **kw)


OP_WARNING = ("⚠ softmax (Exercise 95.1): your function calls aten::_softmax (torch.softmax, Tensor.softmax, "
              "F.softmax, torch.special.softmax), which this exercise forbids; the grader gives such an answer 0, "
              "so write it yourself.")


@pytest.mark.parametrize("student", [
    lambda x: torch.softmax(x, -1), lambda x: x.softmax(-1), lambda x: torch.nn.functional.softmax(x, dim=-1),
    lambda x: torch.ops.aten._softmax(x, -1, False),
], ids=["torch.softmax", "Tensor.softmax", "F.softmax", "torch.ops.aten._softmax"])
def test_a_forbidden_operator_is_warned_about_whatever_its_alias(student):
    result = _op_forbidding().run(student)
    assert result.passed and result.forbidden == ["aten::_softmax"]
    assert result.report.split("\n") == [OP_WARNING, "✓ softmax (Exercise 95.1): all 1 cases pass: 2-D"]


def test_an_operator_in_inference_mode_is_named_by_its_composite_name():
    def student(x):
        with torch.inference_mode():
            return torch.softmax(x, -1)

    result = _op_forbidding().run(student)
    assert result.forbidden == ["aten::softmax"] and "calls aten::softmax (torch.softmax" in result.report


def test_the_reference_using_a_forbidden_operator_is_not_the_students_call():
    ex = _op_forbidding(wrong=[Wrong(lambda x: torch.log_softmax(x, -1), "log-probabilities")])
    ex.reference = lambda x: torch.softmax(x, -1)
    assert ex.run(_torch_softmax_ref).forbidden == []
    result = ex.run(lambda x: _torch_softmax_ref(x).log())  # matching a wrong variant runs it: not the student's
    assert result.status == "fail" and result.forbidden == [] and result.matched == ["log-probabilities"]


def test_operator_and_function_hits_are_both_listed():
    ex = _op_forbidding(forbidden=["math.fsum"])
    result = ex.run(lambda x: torch.softmax(x, -1) + 0 * math.fsum([1.0]))
    assert result.forbidden == ["math.fsum", "aten::_softmax"]


def test_autograd_is_forbidden_only_when_declared():
    def by_autograd(x):
        x = x.clone().requires_grad_(True)
        torch.logsumexp(x, -1).sum().backward()
        return x.grad

    for forbid_autograd, hits in ((True, [forbid.AUTOGRAD]), (False, [])):
        ex = _op_forbidding(forbidden_ops=(), forbid_autograd=forbid_autograd)
        result = ex.run(by_autograd)
        assert result.passed and result.forbidden == hits
        assert ("autograd (Tensor.backward" in result.report) == forbid_autograd


def test_forbidden_ops_are_kept_validated_and_described():
    ex = _op_forbidding(forbidden_ops=["aten::nll_loss*"], forbid_autograd=True)
    assert ex.forbidden_ops == ("aten::nll_loss*",) and ex.forbid_autograd is True
    text = ex.forbidden_ops_text()
    assert text.startswith("**Not allowed under any name:** `aten::nll_loss*` (F.cross_entropy, F.nll_loss")
    assert "autograd (Tensor.backward, torch.autograd.grad" in text
    assert _make().forbidden_ops == () and _make().forbid_autograd is False and _make().forbidden_ops_text() == ""
    with pytest.raises(TypeError, match="got the string"):
        _op_forbidding(forbidden_ops="aten::_softmax")
    with pytest.raises(TypeError, match="non-empty strings"):
        _op_forbidding(forbidden_ops=[""])
    guard = ex.op_guard(raise_on_hit=True)
    assert (guard.patterns, guard.autograd, guard.raise_on_hit) == (("aten::nll_loss*",), True, True)


def test_the_guard_is_off_outside_the_students_call():
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    seen = []
    ex = _op_forbidding(compare=lambda e, g: seen.append(len(_get_current_dispatch_mode_stack())))
    ex.run(lambda x: seen.append(len(_get_current_dispatch_mode_stack())) or _torch_softmax_ref(x))
    assert seen == [1, 0]  # on inside the student's function, off in the comparison


# -- known mistakes that raise, and mistakes that are random --------------------------------
def _raises_key(x):
    return {}["missing"]


def _make_err(**kw):
    return _make(wrong=[Wrong(_raises_key, "you looked up a key that is not there"),
                        Wrong(lambda x: x.no_such_attr, "you used an attribute arrays do not have")], **kw)


def test_an_error_matching_a_wrong_variant_names_the_mistake():
    result = _make_err().run(lambda x: {}["missing"])
    assert result.status == "error" and result.matched == ["you looked up a key that is not there"]
    assert result.report.endswith("\n  Likely mistake: you looked up a key that is not there")


def _other_key(x):
    return {}["other"]


def _index_error(x):
    return [][1]


def test_an_error_of_another_kind_or_message_matches_nothing():
    assert _make_err().run(_other_key).matched == []
    result = _make_err().run(_index_error)
    assert result.status == "error" and result.matched == [] and "Likely mistake" not in result.report


def test_a_random_mistake_is_recognised_by_calling_twice():
    rng = np.random.default_rng(0)
    ex = _make(wrong=[Wrong(lambda x: 3 * x, "tripled"), Wrong(lambda x: x, "your output is random", random=True)])
    result = ex.run(lambda x: 2 * x + rng.normal(size=x.shape))
    assert result.status == "fail" and result.matched == ["your output is random"]
    assert ex.run(lambda x: 3 * x).matched == ["tripled"]  # a deterministic mistake is not called random
    assert ex.judge(lambda x: 2 * x + rng.normal(size=x.shape), ex.cases()).matched == []  # the grader's replay


def test_a_random_check_survives_a_second_call_that_raises():
    calls = []

    def flaky(x):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("second call")
        return x

    ex = _make(wrong=[Wrong(lambda x: x, "random", random=True)])
    assert ex.run(flaky).matched == []


def test_student_frames_name_the_notebook_cell():
    import linecache

    source = "def f(x):\n    return x.nope\n"
    linecache.cache["<cell 3>"] = (len(source), None, source.splitlines(True), "<cell 3>")
    namespace = {}
    exec(compile(source, "<cell 3>", "exec"), namespace)
    report = _make().run(namespace["f"]).report
    assert "  at line 2 in f (your notebook cell): return x.nope" in report


# -- labels, seeds, solution ---------------------------------------------------------------
@pytest.mark.parametrize("label", ["a; b", "a;b", "two\nlines"])
def test_a_label_holding_the_separator_is_refused(label):
    with pytest.raises(ValueError, match=r"exercise 99\.1: case label"):
        _make_cases([Case((np.ones(1),), label=label)])
    ex = _make_cases(lambda seed: [Case((np.ones(1),), label=label)])  # a generator is checked when it runs
    with pytest.raises(ValueError, match=r"exercise 99\.1: case label"):
        ex.cases()


def _make_cases(cases):
    return Exercise(id="99.1", name="double", title="double", reference=_double, cases=cases, register=False)


def test_labels_are_joined_by_the_separator_so_the_count_reads_right():
    ex = _make_cases([Case((np.ones(1),), label="a, b"), Case((np.ones(1),)), Case((np.ones(1),), label="c")])
    report = ex.run(lambda x: 2 * x).report
    assert report == "✓ double (Exercise 99.1): all 3 cases pass: a, b; c"
    assert checks.LABEL_SEPARATOR == "; "
    assert _make_cases([Case((np.ones(1),))]).run(lambda x: 2 * x).report == "✓ double (Exercise 99.1): all 1 cases pass"


def test_cases_take_a_seed():
    ex = _make_cases(lambda seed: [Case((np.full(1, float(seed)),), label=f"s{seed}")])
    assert [c.label for c in ex.cases()] == ["s0"] and [c.label for c in ex.cases(5)] == ["s5"]
    ex.seed = 3
    assert [c.label for c in ex.cases()] == ["s3"]


def test_solution_prints_the_students_name_and_their_earlier_functions():
    from lmcourse.exercises import ch00

    src = ch00.softmax_temperature.solution_source()
    assert src.startswith("def softmax_temperature(x")
    assert "return stable_softmax(x / temperature, axis=-1)" in src
    assert "(_softmax" not in src and " _softmax" not in src
    assert _make(solution="def double(x): ...").solution_source() == "def double(x): ..."


def test_rules_name_every_forbidden_function():
    ex = _forbidding(["math.fsum", "math.prod"])
    assert ex.rules() == (
        f"**Not allowed:** `math.fsum`, `math.prod` and this exercise's own reference `{__name__}._fsum_ref`. "
        "`check()` warns when your function calls one of them, and the grader gives such an answer 0."
    )


def test_hint_without_text_says_so(capsys):
    _make_cases([]).hint()
    assert capsys.readouterr().out == "No hint for this one: re-read the exercise statement.\n"


def test_rules_with_only_the_reference():
    assert _forbidding([]).rules() == (f"**Not allowed:** this exercise's own reference `{__name__}._fsum_ref`. "
                                       "`check()` warns when your function calls it, and the grader gives such an answer 0.")
    assert _forbidding(["math.fsum"]).rules().startswith("**Not allowed:** `math.fsum` and this exercise's own")


# -- what the mutation run showed untested ---------------------------------------------------
def test_load_all_imports_every_chapter_and_sorts_ids_numerically():
    import pkgutil

    import lmcourse.exercises as pkg

    for ex_id in ("99.1", "2.10", "2.9"):  # ids no chapter uses
        Exercise(id=ex_id, name=f"n{ex_id}", title="t", reference=_double, cases=[])
    try:
        registry = checks.load_all()
        ids = list(registry)
        assert ids.index("2.9") < ids.index("2.10") < ids.index("99.1")  # numbers, not strings
        assert ids == sorted(ids, key=lambda k: [int(p) for p in k.split(".")])
        assert all(registry[k] is checks.REGISTRY[k] for k in ids)
        modules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
        assert {f"lmcourse.exercises.{m}" for m in modules} <= set(sys.modules)
        assert {k.split(".")[0] for k in ids} >= {str(int(m[2:])) for m in modules}
    finally:
        for ex_id in ("99.1", "2.10", "2.9"):
            del checks.REGISTRY[ex_id]


def _deep(n, x):
    return x.nope if n == 0 else _deep(n - 1, x)


def test_student_frames_show_the_last_three_with_where_they_are(tmp_path):
    import linecache

    source = "def f(x):\n    return g(x)\ndef g(x):\n    return h(x)\ndef h(x):\n    return k(x)\ndef k(x):\n    return x.nope\n"
    for filename, where in [("<cell 3>", "your notebook cell"), ("/tmp/ipykernel_7/123.py", "your notebook cell"),
                            (str(tmp_path / "mine.py"), str(tmp_path / "mine.py"))]:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {}
        exec(compile(source, filename, "exec"), namespace)
        report = _make().run(namespace["f"]).report
        lines = [ln for ln in report.splitlines() if ln.startswith("  at line")]
        assert lines == [
            f"  at line 4 in g ({where}): return h(x)",
            f"  at line 6 in h ({where}): return k(x)",
            f"  at line 8 in k ({where}): return x.nope",
        ], report


def test_an_exception_without_student_frames_has_no_lines():
    assert checks._student_frames(RuntimeError("never raised")) == ""


@pytest.mark.parametrize(
    "value,text",
    [
        (np.arange(8.0), "array float64 (8,) [0., 1., 2., 3., 4., 5., 6., 7.]"),
        (np.arange(9.0), "array float64 (9,)"),
        (np.zeros(0), "array float64 (0,)"),
        (np.array([1.23456, -2.0]), "array float64 (2,) [ 1.2346, -2. ]"),
        (np.array([True, False]), "array bool (2,) [ True, False]"),
        (np.array([1 + 2j]), "array complex128 (1,) [1.+2.j]"),
        (np.array([3], dtype=np.uint8), "array uint8 (1,) [3]"),
        (np.array(["ab"]), "array <U2 (1,)"),
        (np.array([None, 1], dtype=object), "array object (2,)"),
        (torch.tensor([1.5], dtype=torch.float16), "tensor float16 (1,) [1.5]"),
        (torch.tensor([1.5], dtype=torch.bfloat16), "tensor bfloat16 (1,) [1.5]"),
        (torch.tensor([1 + 2j]), "tensor complex64 (1,) [1.+2.j]"),
        (torch.tensor([1 + 2j]).conj(), "tensor complex64 (1,) [1.-2.j]"),
        (torch.ones(2, requires_grad=True), "tensor float32 (2,) [1., 1.]"),
        ([0] * 6, "[0, 0, 0, 0, 0, 0]"),
        ((0,) * 7, "tuple of 7"),
        (dict.fromkeys(range(6)), "{0: None, 1: None, 2: None, 3: None, 4: None, 5: None}"),
        ("x" * 60, "'" + "x" * 56 + "..."),
        ("x" * 58, "'" + "x" * 58 + "'"),
    ],
)
def test_describe(value, text):
    assert checks._describe(value) == text


class _Shaped:
    shape = (2,)


def test_only_numpy_and_torch_objects_count_as_arrays():
    assert not checks._is_array(_Shaped()) and not checks._is_tensor(_Shaped())
    assert not checks._is_array(np.dtype("float64")) and checks._is_array(np.zeros(1))
    assert not checks._is_tensor(torch.Size([1])) and not checks._is_tensor(torch.float32)
    assert compare_values(_Shaped(), _Shaped()) is not None  # compared with ==, which objects do by identity


def test_fmt():
    assert checks._fmt(1 / 3) == "0.333333" and checks._fmt(np.float32(2.5)) == "2.5"
    assert checks._fmt(np.complex128(1 - 2j)) == "1-2j" and checks._fmt(True) == "1"
    assert checks._fmt("a") == "'a'" and checks._fmt(None) == "None"


@pytest.mark.parametrize("n,text", [(5, "'a', 'b', 'c', 'd', 'e'"), (6, "'a', 'b', 'c', 'd', 'e' and 1 more"),
                                    (1, "'a'")])
def test_some_keys(n, text):
    assert checks._some(list("fedcba"[-n:])) == text


def test_an_error_match_compares_the_first_200_characters_of_the_message():
    def student(x):
        raise ValueError("x" * 200 + "a")

    def same_start(x):
        raise ValueError("x" * 200 + "b")

    def differs_at_199(x):
        raise ValueError("x" * 199 + "b")

    def random_one(x):
        raise ValueError("x" * 200 + "a")

    ex = _make(wrong=[Wrong(same_start, "first"), Wrong(differs_at_199, "second"), Wrong(random_one, "r", random=True)])
    assert ex.run(student).matched == ["first"]


def test_a_random_variant_is_never_matched_by_value():
    ex = _make(wrong=[Wrong(lambda x: 3 * x, "random", random=True)])
    assert ex.run(lambda x: 3 * x).matched == []  # same value, but deterministic: not "random"


def test_exercise_keeps_its_settings():
    ex = Exercise(id="96.1", name="n", title="t", reference=_double, cases=[Case((1.0,), label="a")],
                  atol=0.25, rtol=0.5, seed=7, forbidden=["math.fsum"], hint="h", register=False)
    assert (ex.atol, ex.rtol, ex.seed, ex.forbidden, ex._hint) == (0.25, 0.5, 7, ("math.fsum",), "h")
    assert ex.compare(1.0, 1.7) is None and ex.compare(1.0, 1.8) is not None
    assert "96.1" not in checks.REGISTRY and repr(ex) == "Exercise(96.1 n: t)"
    registered = Exercise(id="96.2", name="m", title="t", reference=_double, cases=[])
    try:
        assert checks.REGISTRY["96.2"] is registered
        Exercise(id="96.2", name="m", title="t2", reference=_double, cases=[])  # same name: a re-run cell, allowed
    finally:
        del checks.REGISTRY["96.2"]


@pytest.mark.parametrize("got_dtype,expected_dtype", [("float16", "float32"), ("float16", "float64"),
                                                       ("bfloat16", "float32"), ("bfloat16", "float64"),
                                                       ("float32", "float64")])
def test_each_loss_of_precision_is_named(got_dtype, expected_dtype):
    expected = torch.tensor([1 / 3], dtype=getattr(torch, expected_dtype))
    diff = compare_values(expected, torch.tensor([0.5], dtype=getattr(torch, got_dtype)))
    assert diff.endswith(f"your output is {got_dtype}, less precise than the expected {expected_dtype}: compute in "
                         f"the inputs' dtype ({got_dtype} keeps only about 3 significant digits)")


@pytest.mark.parametrize("got_dtype,expected_dtype", [("float64", "float32"), ("float32", "float32"),
                                                       ("int64", "float64"), ("float16", "int64")])
def test_no_precision_note_otherwise(got_dtype, expected_dtype):
    diff = compare_values(torch.tensor([1, 3], dtype=getattr(torch, expected_dtype)),
                          torch.tensor([2, 3], dtype=getattr(torch, got_dtype)))
    assert diff is not None and "less precise" not in diff


class _MyStr(str):
    pass


def test_more_kinds_and_types():
    assert compare_values(np.array([1], dtype=np.uint8), np.array([True])) == \
        "output: expected integer values (uint8), got bool (bool)"
    assert compare_values(np.array([True]), np.array([1], dtype=np.uint8)) == \
        "output: expected bool values (bool), got integer (uint8)"
    assert compare_values(np.array([1], dtype=np.uint8), np.array([1.0])) is None
    assert compare_values("ab", _MyStr("ab")) == "output: expected 'ab', got 'ab'"  # the same type, not a subclass
    assert compare_values([1.0], [1.4], rtol=0.5) is None and compare_values({"a": 1.0}, {"a": 1.4}, rtol=0.5) is None
    assert compare_values([1.0], [1.6], rtol=0.5) is not None and compare_values({"a": 1.0}, {"a": 1.6}, rtol=0.5)


def test_resolve():
    import math as m

    assert checks._resolve("math.fsum") == (m, "fsum")
    assert checks._resolve(f"{__name__}._Sub.method") == (_Sub, "method")
    assert checks._resolve("torch.nn.functional.softmax") == (torch.nn.functional, "softmax")
    with pytest.raises(ValueError, match="cannot resolve 'nothing'"):
        checks._resolve("nothing")


def test_wires_look_like_what_they_replace_and_pass_keywords():
    wires = checks._Tripwires([], None)
    wire = wires.wrap(_fsum_ref, "x")
    assert wire.__name__ == "_fsum_ref" and wire.__wrapped__ is _fsum_ref and wire([1.0, 2.0]) == 3.0
    assert wires.wrap(math.fsum, "y").__name__ == "fsum"
    ex = _forbidding([f"{__name__}._Sub.method"], reference=lambda xs: 2 * xs[0])
    result = ex.run(lambda xs: _Sub().method(x=xs[0]))
    assert result.passed and result.forbidden == [f"{__name__}._Sub.method"]


def test_a_wire_counts_only_while_armed():
    wires = checks._Tripwires([], None)
    wire = wires.wrap(_fsum_ref, "x")
    wire([1.0])
    assert wires.hits == []
    with wires.armed():
        wire([1.0])
    wire([1.0])
    assert wires.hits == ["x"] and wires._armed is False


def test_an_unpatchable_name_does_not_stop_the_others():
    ex = _forbidding(["builtins.int.bit_length", "math.fsum"])
    assert ex.run(lambda xs: math.fsum(xs)).forbidden == ["math.fsum"]


def test_a_bound_method_of_a_forbidden_function_is_caught():
    ex = _forbidding([f"{__name__}._Base.method"], reference=lambda xs: 2 * xs[0])
    assert ex.run(lambda xs: 2 * xs[0]).forbidden == []

    class Answer:
        def __call__(self, xs):
            return 2 * xs[0]

    assert ex.run(Answer()).passed  # a callable object without __globals__ is fine
    bound = _Base().method
    ex2 = Exercise(id="97.2", name="m", title="m", reference=lambda x: 2 * x, cases=[Case((1.0,), label="one")],
                   forbidden=[f"{__name__}._Base.method"], register=False)
    assert ex2.run(bound).forbidden == [f"{__name__}._Base.method"]


def test_calling_the_reference_through_the_exercise_still_gets_its_value():
    ex = _forbidding([])
    result = ex.run(lambda xs: ex.reference(xs))
    assert result.passed and result.exercise == "97.1"


def test_results_carry_the_exercise_id_and_exact_reports():
    ex = _make()
    assert ex.run(42).report == "✗ double (Exercise 99.1): expected a function, got int"
    assert ex.run(42).exercise == "99.1" and ex.run(lambda x: 2 * x).exercise == "99.1"
    fail = ex.run(lambda x: 3 * x)
    assert fail.exercise == "99.1" and fail.report == (
        "✗ double (Exercise 99.1): case 1 of 2 (small) is wrong\n"
        "  input: array float64 (3,) [0., 1., 2.]\n"
        "  output: 2 of 3 entries differ (tolerance atol=1e-06, rtol=1e-05)\n"
        "  first at index 1: expected 2, got 3\n"
        "  Likely mistake: you tripled instead of doubling"
    )
    unlabelled = _make_cases([Case((np.ones(1),))]).run(lambda x: x)
    assert unlabelled.report.startswith("✗ double (Exercise 99.1): case 1 of 1 is wrong\n")

    def stub(x):
        raise NotImplementedError

    assert ex.run(stub).exercise == "99.1" and ex.run(stub).report == "… double (Exercise 99.1): not implemented yet"
    err = _make_err().run(lambda x: {}["missing"])
    assert err.exercise == "99.1" and err.report.startswith("✗ double (Exercise 99.1): your function raised KeyError")


def test_an_error_report_without_student_lines_ends_with_the_case():
    report = _make().run(dict).report  # dict(array) fails inside C: no frame of the student's
    assert "\n  on case 1 of 2 (small): array float64 (3,) [0., 1., 2.]" in report and report == report.rstrip()


class _StandIn(Exception):
    """Like the grader's replay error: the kind and the lines come from the worker."""

    kind = "ZeroDivisionError"
    where = "  at line 9 in f (cell 4): 1 / 0"


def test_a_stand_in_error_reports_the_workers_kind_and_lines():
    def replay(x):
        raise _StandIn("division by zero")

    report = _make().run(replay).report
    assert report == ("✗ double (Exercise 99.1): your function raised ZeroDivisionError: division by zero\n"
                      "  on case 1 of 2 (small): array float64 (3,) [0., 1., 2.]\n"
                      "  at line 9 in f (cell 4): 1 / 0")


def test_a_broken_comparison_describes_both_sides():
    ex = _make(compare=lambda expected, got: 1 / 0)
    report = ex.run(lambda x: 2 * x).report
    assert "  output: expected array float64 (3,) [0., 2., 4.], got array float64 (3,) [0., 2., 4.] " \
           "(ZeroDivisionError: division by zero)" in report


def test_a_custom_compare_gets_expected_then_got():
    seen = []
    ex = _make(compare=lambda expected, got: seen.append((expected.sum(), got.sum())))
    ex.run(lambda x: 3 * x)
    assert seen[0] == (6.0, 9.0)


def test_order_of_wrong_variants_does_not_hide_a_match():
    def raises(x):
        raise RuntimeError("no")

    ex = _make(wrong=[Wrong(lambda x: x, "random", random=True), Wrong(raises, "raises"),
                      Wrong(lambda x: 3 * x, "tripled")])
    assert ex.run(lambda x: 3 * x).matched == ["tripled"]
    ex = _make(wrong=[Wrong(raises, "random", random=True), Wrong(raises, "raises")])
    assert ex.run(raises).matched == ["raises"]


def test_a_random_answer_that_also_matches_a_variant_gets_both_messages():
    calls = []

    def student(x):
        calls.append(1)
        return 3 * x if len(calls) == 1 else 4 * x

    ex = _make(wrong=[Wrong(lambda x: 3 * x, "tripled"), Wrong(lambda x: x, "random", random=True)])
    assert ex.run(student).matched == ["tripled", "random"]


def test_describe_edges():
    assert checks._describe("x" * 59) == "'" + "x" * 56 + "..."  # a repr of 61 characters is cut
    assert checks._describe([0] * 6) == "[0, 0, 0, 0, 0, 0]" and checks._describe([0] * 7) == "list of 7"


def test_rules_list_all_declared_names():
    assert _forbidding(["math.fsum", "math.prod", "math.hypot"]).rules().startswith(
        "**Not allowed:** `math.fsum`, `math.prod`, `math.hypot` and this exercise's own reference")


def test_positional_and_keyword_inputs_are_both_deep_copied():
    x, y = np.ones(2), np.ones(2)
    ex = Exercise(id="95.1", name="add", title="add", reference=lambda x, y: x + y,
                  cases=[Case((x,), {"y": y}, label="a")], register=False)

    def mutating(x, y):
        x *= 5
        y *= 7
        return x / 5 + y / 7

    assert ex.run(mutating).passed and ex.run(mutating).passed
    assert (x == 1).all() and (y == 1).all()


# -- hidden cases: every exercise for any seed, and the shortcuts each one forbids ----------------
SEEDS = range(5)

# The labelled edge cases of each exercise (the ones its statement or docstring names): present
# whatever the seed, so a hidden seed never drops them.
EDGE_LABELS = {
    "0.1": ["1-D", "large logits (1000)", "rows far apart (±1000)", "rows [0, 1000], [-1000, 1000], [800, 0], [-1000, -999]"],
    "0.2": ["log 2", "large logits (±1000)", "rows [0, 1000], [-1000, 1000], [800, 0], [-1000, -999]"],
    "0.3": ["T=1 (plain softmax)", "T=0.5 (sharper)", "T=4 (flatter)", "large logits, T=0.1"],
    "1.1": ["'abab', bigrams", "unigrams", "exactly one bigram"],
    "1.2": ["3x3 counts, MLE (k=0)", "3x3 counts, add-one"],
    "1.3": ["u in the last bin", "u in the first bin", "u exactly on a bin edge (belongs to the next bin)",
            "unnormalised counts"],
    "1.4": ["uniform over 4 tokens: perplexity 4", "a perfect model: perplexity 1", "a NumPy array"],
    "2.1": ['one chunk "aaa"', "empty and one-id chunks"],
    "2.2": ['"aaa", merge (a, a)', "pair absent", "empty"],
    "2.3": ["a tie between (c, d) and (a, b)", "runs out of pairs"],
    "2.4": ['"aaaa" with merges aa, aaa', '"abbc" with merges bc, ab, abb', "Chinese, merges glue UTF-8 bytes",
            "empty text"],
    "3.1": ["square 4×4 table"],
    "3.2": ["2-D vectors, different lengths"],
    "3.3": ["hand-made 6×2 table, query 0", "four rows tied with the query: lower id first"],
    "3.4": ["T=6, d=4", "T=20, d=8, base=100"],
    "3.5": ["x (5, 4)"],
    "4.1": ["T=1", "T=2"],
    "4.2": ["T=1"],
    "4.3": ["1 head"],
    "4.4": ["1 head", "T=1"],
    "5.1": ["logits near ±1000", "two targets = -100 (ignored)", "ignore_index=-1", "ignore_index=0 (padding id)",
            "confidently wrong: logits [0, 30], target 0"],
    "5.2": ["(3, 4)"],
    "5.3": ["eps=0 (plain cross-entropy)"],
    "5.4": ["T=4, d=3"],
    "5.5": ["alpha=0 is the MLE", "no data: the prior's uniform"],
    "7.1": ["AdamW with state from earlier steps", "one batch", "fresh AdamW, clip never reached"],
    "7.2": ["step 0: already learning", "last warm-up step: the peak", "first cosine step: the peak",
            "step max_steps: the floor", "past max_steps: still the floor", "no warm-up: step 0 is the peak",
            "warmup_steps = max_steps: the peak", "warmup_steps = max_steps: then the floor"],
    "8.1": ["p below the top token's probability: only it is kept", "rows with -inf already (after top-k)",
            "tied logits at the boundary: lower index first", "p = 1 keeps every token", "V = 1"],
    "8.2": ["empty cache: the first token", "one cached position, one head", "float32"],
    # ch09 edge labels (part 09 adds its lines below this one)
    "9.1": ["square layer (in = out), (N, in) input", "B = 0: a fresh LoRA equals the base layer", "rank 1",
            "empty batch", "no bias", "float32"],
    "9.2": ["no EOS id", "one-token prompt", "empty response with EOS: learn to stop at once",
            "empty response, no EOS: nothing to learn", "custom ignore_index (-100)"],
    # ch10 edge labels (part 10 adds its lines below this one)
    "10.1": ["imbalanced classes", "2×2", "a class never predicted", "an empty class: row and column zero",
             "all one class"],
    "10.2": ["capitals, punctuation and an article", "an article and a capital", "repeated tokens: a bag, not a set",
             "several golds: the best counts", "an article alone on both sides: 1", "one word repeated in the prediction",
             "both empty after normalisation: 1", "one side empty: 0", "a gold that normalises to nothing"],
    # ch11 edge labels (part 11 adds its lines below this one)
    "11.1": ["longer than the references: 1", "c = r: exactly 1", "one token against many", "one token longer: 1",
             "c = 0: 0", "c = r = 0: 0"],
    "11.2": ["n-grams may not cross a gap", "a bigram twice, once in the reference", "no n-gram across two references",
             "repeated bigram, n = 2", "Papineni's 'the the the ...', n = 1", "several references",
             "hypothesis shorter than n"],
    # ch12 edge labels (part 12 adds its lines below this one)
    "12.1": ["three candidates tied with the canary count half", "the canary the best: exposure log2 N",
             "the canary the worst: rank N, exposure 0", "all tied: rank (N + 1) / 2", "no candidates: N = 1"],
    "12.2": ["identical sets: estimate 1", "disjoint sets: estimate 0", "one permutation (K = 1)",
             "one set empty: its signature is p in every slot", "both sets empty: estimate 1"],
    # ch13 edge labels (part 13 adds its lines below this one)
    "13.1": ["no bias", "n_inner is not 4 * n_embd", "1 layer", "T = 1",
             "GPT-2 small sizes: the tied lm_head is compute outside N"],
    "13.2": ["an exact power law: a and alpha recovered", "two points: the line through them",
             "c = 0: a pure power law", "noisy losses above an irreducible loss c"],
}


@pytest.mark.parametrize("ex_id", list(REGISTRY))
def test_hidden_seeds_pass_the_reference_and_fail_every_wrong_variant(ex_id):
    ex = REGISTRY[ex_id]
    for seed in SEEDS:
        cases = ex.cases(seed)
        result = ex.judge(ex.reference, cases)
        assert result.passed, f"seed {seed}: {result.report}"
        for w in ex.wrong:
            result = ex.judge(w.fn, cases, repeat=True)
            assert result.status in ("fail", "error"), f"{ex} seed {seed}: {w.fn.__name__} passed"
            if result.status == "fail":
                assert w.message in result.matched, f"{ex} seed {seed}: {w.fn.__name__}:\n{result.report}"


def _args(cases):
    return [(c.label, list(c.args), c.kwargs) for c in cases]


@pytest.mark.parametrize("ex_id", list(REGISTRY))
def test_hidden_seeds_change_the_cases_sizes_included(ex_id):
    ex = REGISTRY[ex_id]
    one, two = ex.cases(1), ex.cases(2)
    assert compare_values(_args(one), _args(two), atol=0, rtol=0) is not None, f"{ex}: seeds 1 and 2 give the same cases"

    def sizes(cases):  # the shape of each array argument, the length of each sequence, the value of each int
        return [tuple(a.shape) if hasattr(a, "shape") else len(a) if isinstance(a, (list, tuple, str, dict)) else a
                for c in cases for a in c.args if not isinstance(a, float)]

    assert any(sizes(ex.cases(s)) != sizes(ex.cases(0)) for s in SEEDS), f"{ex}: sizes never change with the seed"


def test_every_exercise_but_chapter_6s_lists_its_edge_cases():
    # chapter 6's exercises pin their edge cases in tests/test_ch06_checks.py
    assert {i for i in REGISTRY if int(i.split(".")[0]) != 6} == set(EDGE_LABELS)


@pytest.mark.parametrize("ex_id", list(EDGE_LABELS))
def test_the_labelled_edge_cases_are_there_for_every_seed(ex_id):
    ex = REGISTRY[ex_id]
    for seed in SEEDS:
        labels = [c.label for c in ex.cases(seed)]
        missing = [label for label in EDGE_LABELS[ex_id] if label not in labels]
        assert not missing, f"{ex} seed {seed}: edge cases {missing} are missing"


def _np_torch(fn):
    """A NumPy exercise answered through torch (the round trip a student might try)."""
    return lambda x, axis=-1: fn(torch.from_numpy(np.asarray(x)), axis).numpy()


def _mha_native(x, w_attn, b_attn, w_proj, b_proj, n_head):
    T, C = x.shape[1], x.shape[2]
    mask = ~torch.ones(T, T, dtype=torch.bool).tril()
    return torch.nn.functional.multi_head_attention_forward(
        x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), C, n_head, w_attn, b_attn, None, None, False, 0.0,
        w_proj, b_proj, need_weights=False, attn_mask=mask)[0].transpose(0, 1)


def _ce_grad_by_autograd(logits, targets):
    z = logits.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(z, targets).backward()
    return z.grad


def _attention_backward_by_autograd(q, k, v, d_out, causal=False):
    q, k, v = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return torch.autograd.grad(out, (q, k, v), d_out)


# A student who takes the shortcut each exercise forbids (in one call, under one of its aliases).
CHEATS = {
    "0.1": _np_torch(lambda x, axis: x.softmax(axis)),
    "0.2": _np_torch(lambda x, axis: torch.special.logsumexp(x, axis)),
    "3.1": lambda ids, weight: torch.nn.Embedding.from_pretrained(weight)(ids),
    "3.2": lambda a, b: torch.nn.CosineSimilarity(dim=-1)(a[:, None], b[None]),
    "4.2": lambda q, k, v: torch._C._nn.scaled_dot_product_attention(q, k, v, is_causal=True),
    "4.4": _mha_native,
    "5.1": lambda logits, targets, ignore_index=-100: torch.nn.functional.nll_loss(
        logits.log_softmax(-1), targets, ignore_index=ignore_index),
    "5.2": _ce_grad_by_autograd,
    "5.3": lambda logits, targets, eps=0.1: torch.nn.CrossEntropyLoss(label_smoothing=eps)(logits, targets),
    "5.4": _attention_backward_by_autograd,
    "8.2": lambda k_cache, v_cache, q, k, v: (
        torch._C._nn.scaled_dot_product_attention(q, torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)),
        torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)),
    # ch09 cheats (part 09 adds its lines below this one)
    # ch10 cheats (part 10 adds its lines below this one)
    # ch11 cheats (part 11 adds its lines below this one)
    # ch12 cheats (part 12 adds its lines below this one)
    # ch13 cheats (part 13 adds its lines below this one)
}


def test_every_exercise_that_forbids_operators_has_a_cheat():
    forbidding = {i for i, ex in REGISTRY.items() if (ex.forbidden_ops or ex.forbid_autograd) and i in EDGE_LABELS}
    assert forbidding == set(CHEATS)


@pytest.mark.parametrize("ex_id", list(CHEATS))
def test_each_forbidden_shortcut_passes_the_values_but_is_flagged(ex_id):
    ex = REGISTRY[ex_id]
    result = ex.run(CHEATS[ex_id])
    assert result.passed, result.report  # a real shortcut: right values, so only the guard stands in its way
    assert result.forbidden and result.report.startswith("⚠"), result.report
    patterns = ex.forbidden_ops + ((forbid.AUTOGRAD,) if ex.forbid_autograd else ())
    by_guard = [h for h in result.forbidden if any(fnmatch.fnmatchcase(h, p) for p in patterns)]
    assert by_guard, f"the operator guard missed it: {result.forbidden}"
    assert set(result.forbidden) - set(by_guard) <= set(ex.forbidden_names())  # the rest: the tripwire's names
    assert ex.run(ex.reference).forbidden == [f"{ex.reference.__module__}.{ex.reference.__qualname__}"]


def test_describe_keeps_a_multiline_repr_on_one_line():
    # An exercise case holding a model or an optimiser: its repr spans lines, the report's input line must not.
    text = checks._describe(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()))
    assert "\n" not in text and text.startswith("Sequential( (0): Linear(") and len(text) <= 60
