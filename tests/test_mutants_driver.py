"""tests/mutants.py (`make mutants`): which mutants it calls equivalent, and how it counts.

mutmut itself is not needed here (it is the optional `mutation` extra); these pin the driver's
own rules, so the rate it reports means what its docstring says.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("mutants_driver", Path(__file__).with_name("mutants.py"))
mutants = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mutants  # dataclasses look their module up there
_spec.loader.exec_module(mutants)

ORIG = '''def f(x):
    if not isinstance(x, str):
        raise ValueError("f expects a str, got " + type(x).__name__)
    return x.strip(" ")
'''


def _mutate(old: str, new: str) -> str:
    assert ORIG.count(old) == 1
    return ORIG.replace(old, new)


@pytest.mark.parametrize("old,new", [
    ('"f expects a str, got "', '"XXf expects a str, got XX"'),
    ('"f expects a str, got "', '"F EXPECTS A STR, GOT "'),
])
def test_message_wording_is_equivalent(old, new):
    assert mutants._message_text_only(ORIG, _mutate(old, new))


@pytest.mark.parametrize("old,new", [
    ("type(x).__name__", "type(None).__name__"),  # what the message names: counts
    ('ValueError("f expects a str, got " + type(x).__name__)', "ValueError(None)"),  # message dropped
    ("ValueError", "TypeError"),  # another exception
    ('strip(" ")', 'strip("XX XX")'),  # a str constant outside a raise: behaviour
    ("type(x).__name__", 'getattr(x, "DTYPE", "?")'),  # a constant in what the message names
    ("not isinstance", "isinstance"),
])
def test_behaviour_changes_are_not_equivalent(old, new):
    assert not mutants._message_text_only(ORIG, _mutate(old, new))


def test_constant_inside_an_fstring_field_is_not_wording():
    src = 'def f(x):\n    raise ValueError(f"needs a float, got {getattr(x, \'dtype\', None)}")\n'
    assert mutants._message_text_only(src, src.replace("needs", "NEEDS"))
    assert not mutants._message_text_only(src, src.replace("'dtype'", "'DTYPE'"))


def test_identical_function_is_not_called_equivalent():
    assert not mutants._message_text_only(ORIG, ORIG)


def test_method_source_is_dedented():
    method = "    " + ORIG.replace("\n", "\n    ").rstrip(" ")
    assert mutants._message_text_only(method, method.replace("got ", "GOT "))


def test_key_ignores_indentation_but_not_the_change():
    k = mutants._mutation_key("lmcourse/x.py", "f", ["    a = 1"], ["    a = 2"])
    assert k == mutants._mutation_key("lmcourse/x.py", "f", ["a = 1"], ["a = 2"])
    assert k != mutants._mutation_key("lmcourse/x.py", "f", ["a = 1"], ["a = 3"])
    assert k != mutants._mutation_key("lmcourse/x.py", "g", ["a = 1"], ["a = 2"])
    assert k.startswith("lmcourse/x.py::f::")


def test_equivalents_file_needs_a_reason(tmp_path):
    p = tmp_path / "eq.txt"
    p.write_text("# comment\n\nlmcourse/x.py::f::1234abcd  the two spellings are equal\n")
    assert mutants.load_equivalents(p) == {"lmcourse/x.py::f::1234abcd": "the two spellings are equal"}
    p.write_text("lmcourse/x.py::f::1234abcd\n")
    with pytest.raises(ValueError, match="eq.txt:1"):
        mutants.load_equivalents(p)


def test_the_repository_equivalents_file_parses():
    for key, reason in mutants.load_equivalents().items():
        assert key.split("::")[0] in {path for path, _ in mutants.MODULES.values()}, key
        assert reason


def _m(status: str, equivalent: str = "") -> "mutants.Mutant":
    return mutants.Mutant("n", status, "f", 1, "", "k", equivalent)


def test_rate_excludes_equivalents_and_does_not_count_timeouts_as_caught():
    r = mutants.ModuleResult("x", "lmcourse/x.py", [], 0.0, [
        _m("killed"), _m("check was interrupted by user"), _m("segfault"),
        _m("survived"), _m("no tests"), _m("timeout"), _m("suspicious"),
        _m("survived", equivalent="listed: equal"), _m("killed", equivalent="rule: wording"),
    ])
    assert (r.count(mutants.KILLED), r.count(mutants.SURVIVED), r.count(mutants.TIMEOUT)) == (3, 2, 1)
    assert (r.n_other, r.n_equivalent, r.count()) == (1, 2, 7)
    assert r.caught == pytest.approx(3 / 7)
    assert [m.status for m in r.not_caught()] == ["survived", "no tests", "timeout", "suspicious"]
    row = mutants.table([r]).splitlines()[2].split()
    assert row[:8] == ["x", "9", "3", "2", "1", "1", "2", "42.9%"]


def test_every_module_names_existing_files():
    root = Path(__file__).resolve().parents[1]
    for module, (path, patterns) in mutants.MODULES.items():
        assert (root / path).is_file(), module
        assert any(root.glob(p) for p in patterns), module


def test_rescore_reapplies_listed_equivalents_and_keeps_the_rule(tmp_path):
    r = mutants.ModuleResult("x", "lmcourse/x.py", ["tests/test_x.py"], 1.0, [
        mutants.Mutant("a", "survived", "f", 3, "diff a", "lmcourse/x.py::f::aaaaaaaa"),
        mutants.Mutant("b", "survived", "f", 4, "diff b", "lmcourse/x.py::f::bbbbbbbb", "listed: old reason"),
        mutants.Mutant("c", "survived", "f", 5, "diff c", "lmcourse/x.py::f::cccccccc", "rule: wording"),
        mutants.Mutant("d", "killed", "f", 6, "diff d", "lmcourse/x.py::f::dddddddd"),
    ])
    mutants._write_report(tmp_path, [r])
    equivalents = {"lmcourse/x.py::f::aaaaaaaa": "equal", "lmcourse/x.py::f::99999999": "gone"}
    [again] = mutants.rescore(tmp_path / "results.json", equivalents)
    assert [m.equivalent for m in again.mutants] == ["listed: equal", "", "rule: wording", ""]
    assert again.stale == ["lmcourse/x.py::f::99999999"]
    assert again.caught == pytest.approx(1 / 2)
    assert "stale entry" in mutants.survivors_text(again) and "diff b" in mutants.survivors_text(again)
