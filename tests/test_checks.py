"""The checks framework, and every registered exercise against its reference and wrong variants."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lmcourse import checks
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
            assert compare_values(list(ca.args), list(cb.args), atol=0, rtol=0) is None, ex


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
