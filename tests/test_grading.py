"""`lmcourse grade`: scores come from the grader's own checks, whatever the notebook does."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lmcourse import checks, grading
from lmcourse.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = json.loads((ROOT / "solutions" / "00_getting_started.ipynb").read_text())


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Run each test from its tmp_path: `grade`'s default --feedback is relative to the cwd."""
    monkeypatch.chdir(tmp_path)
FAST = {"cell_seconds": 3, "exercise_seconds": 5, "timeout": 120}


def _cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}


def _submit(folder: Path, student: str, edit=None, name="00_getting_started.ipynb") -> Path:
    nb = json.loads(json.dumps(SOLUTION))
    if edit:
        edit(nb)
    path = folder / student / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def _replace(nb, marker: str, source: str) -> None:
    hits = [c for c in nb["cells"] if marker in "".join(c["source"])]
    assert len(hits) == 1, marker
    hits[0]["source"] = source


# -- the JSON codec between worker and grader ---------------------------------------------
def test_every_reference_output_survives_the_codec():
    for ex in checks.load_all().values():
        for case in ex.cases():
            out = ex.reference(*case.args, **case.kwargs)
            back = grading.decode(json.loads(json.dumps(grading.encode(out))))
            assert checks.compare_values(out, back, atol=0, rtol=0) is None, ex
            assert type(back) is type(out), ex


def test_codec_keeps_dtype_nan_and_tuple_keys():
    value = {(1, 2): torch.tensor([1.5, float("nan")], dtype=torch.float64), "b": (np.array([True, False]), 3, -0.0)}
    back = grading.decode(json.loads(json.dumps(grading.encode(value))))
    assert back[(1, 2)].dtype == torch.float64 and torch.isnan(back[(1, 2)][1])
    assert back["b"][0].dtype == np.bool_ and back["b"][1] == 3


@pytest.mark.parametrize("bad", [{"pickle": "x"}, [1, 2], {}, {"tensor": "Tensor", "shape": [1], "data": [1]}])
def test_decode_accepts_only_what_encode_makes(bad):
    with pytest.raises((ValueError, TypeError, AttributeError)):
        grading.decode(bad)


def test_encode_refuses_arbitrary_objects():
    with pytest.raises(TypeError, match="cannot grade"):
        grading.encode(object())


def test_every_forbidden_name_resolves():
    for ex in checks.load_all().values():
        for dotted in ex.forbidden:
            owner, attr = grading._resolve(dotted)
            assert callable(getattr(owner, attr)), dotted


class _LazyTensor(torch.Tensor):
    def detach(self):  # would run while the grader encodes the value
        raise AssertionError("ran student code")


@pytest.mark.parametrize("value", [_LazyTensor(), np.array([object()]), np.array(["a"]), np.ma.array([1.0]),
                                   type("L", (list,), {})([1]), np.datetime64(1, "s"), 1 + 2j])
def test_encode_takes_exact_types_only(value):
    with pytest.raises(TypeError, match="cannot grade"):
        grading.encode(value)


@pytest.mark.parametrize("bad", [{"array": "|O", "shape": [1], "data": [1]}, {"scalar": "<M8[s]", "data": 1},
                                 {"array": "<U1", "shape": [1], "data": ["a"]}, {"tensor": "complex64", "shape": [1], "data": [1]}])
def test_decode_refuses_object_and_other_non_numeric_dtypes(bad):
    with pytest.raises(ValueError, match="not a numeric"):
        grading.decode(bad)


def test_cli_grade_reports_and_refuses_a_missing_folder(tmp_path, capsys):
    assert cli(["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "not a folder" in capsys.readouterr().err


# -- what is checked before anyone is graded ------------------------------------------------
GRADE_NOTEBOOK = grading.grade_notebook  # the real one, for tests that replace it in the module
@pytest.fixture
def no_grading(monkeypatch):
    """grade_notebook replaced by a recorder: these checks must stop before any notebook runs."""
    calls = []
    monkeypatch.setattr(grading, "grade_notebook", lambda path, student, **kw: calls.append(path) or grading.NotebookGrade(
        student, Path(path).name, grading.chapter_number(path)))
    return calls


@pytest.mark.parametrize("limits,needle", [
    ({"timeout": 0}, "timeout must be a positive"), ({"timeout": -3}, "timeout must be a positive"),
    ({"timeout": float("nan")}, "timeout"), ({"memory_mb": 0}, "memory_mb must be a positive"),
    ({"memory_mb": -512}, "memory_mb"), ({"memory_mb": True}, "memory_mb"), ({"memory_mb": 1.5}, "memory_mb"),
    ({"cell_seconds": 0}, "cell_seconds"), ({"exercise_seconds": -1}, "exercise_seconds"),
    ({"max_procs": 0}, "max_procs"), ({"wall": 3}, "unknown limit"),
])
def test_limits_are_validated_up_front(tmp_path, no_grading, limits, needle):
    subs = tmp_path / "subs"
    _submit(subs, "alice")
    with pytest.raises(ValueError, match=needle):
        grading.grade_folder(subs, tmp_path / "g.csv", tmp_path / "fb", **limits)
    with pytest.raises(ValueError, match=needle):
        GRADE_NOTEBOOK(subs / "alice" / "00_getting_started.ipynb", "alice", **limits)
    assert no_grading == [] and not (tmp_path / "g.csv").exists()


def test_outputs_are_checked_for_writing_before_grading(tmp_path, no_grading, capsys):
    subs = tmp_path / "subs"
    _submit(subs, "alice")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out, feedback, needle in (
        (blocker / "g.csv", None, "--out .*cannot be written"),
        (tmp_path, None, "--out .*is a folder"),
        (tmp_path / "g.csv", blocker, "--feedback .*not a folder"),
        (tmp_path / "g.csv", blocker / "fb", "--feedback .*cannot be written"),
    ):
        with pytest.raises(ValueError, match=needle):
            grading.grade_folder(subs, out, feedback, timeout=120)
        argv = ["grade", str(subs), "--out", str(out)] + (["--feedback", str(feedback)] if feedback else [])
        assert cli(argv) == 2
        assert "nothing was graded" in capsys.readouterr().err
    assert no_grading == [] and not (tmp_path / "g.csv").exists()


def test_submissions_without_per_student_folders_are_errors(tmp_path, no_grading, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "00_getting_started.ipynb").write_text(json.dumps(SOLUTION))
    mixed = tmp_path / "mixed"
    _submit(mixed, "alice")
    (mixed / "bob.ipynb").write_text(json.dumps(SOLUTION))
    deep = tmp_path / "deep"
    _submit(deep / "alice", "week1")
    (tmp_path / "hollow" / "alice").mkdir(parents=True)
    for subs, needle in ((empty, "no student folders"), (flat, "notebooks directly in the submissions folder \\(00_getting_started.ipynb\\)"),
                         (mixed, "directly in the submissions folder \\(bob.ipynb\\)"),
                         (deep, "no student folder holds a notebook.*deeper ones, e.g. alice/week1/00_getting_started.ipynb"),
                         (tmp_path / "hollow", "no student folder holds a notebook, nothing to grade; expected")):
        with pytest.raises(ValueError, match=needle):
            grading.grade_folder(subs, tmp_path / "g.csv", None, timeout=120)
        assert cli(["grade", str(subs), "--out", str(tmp_path / "g.csv")]) == 2
        assert "<student>/NN_topic.ipynb" in capsys.readouterr().err
    assert no_grading == [] and not (tmp_path / "g.csv").exists()




def test_a_refused_run_leaves_no_folder_behind(tmp_path, no_grading, capsys):
    """The writability probe removes the folders it made: a run refused after it creates nothing."""
    subs = tmp_path / "subs"
    _submit(subs, "alice")
    with pytest.raises(SystemExit):  # argparse refuses a negative seed before anything is checked
        cli(["grade", str(subs), "--out", str(tmp_path / "a" / "b" / "g.csv"), "--feedback", str(tmp_path / "c" / "d"),
             "--seed", "-1"])
    assert "--seed: must be >= 0" in capsys.readouterr().err
    assert cli(["grade", str(subs), "--out", str(tmp_path / "a" / "b" / "g.csv"), "--feedback", str(tmp_path / "c" / "d"),
                "--jobs", "2", "--memory-mb", "64"]) == 2  # refused by the worker probe, after the outputs were checked
    assert "Raise the limit" in capsys.readouterr().err
    with pytest.raises(ValueError, match="memory_mb"):
        grading.grade_folder(subs, tmp_path / "a" / "g.csv", tmp_path / "c", memory_mb=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["subs"], "a refused run left files or folders behind"
    assert no_grading == []


def test_grade_refuses_without_a_sandbox_unless_told(tmp_path, monkeypatch, capsys, no_grading):
    """The CLI half: without bubblewrap it refuses; --no-sandbox warns, and the seed lands in every row."""
    from lmcourse import sandbox

    subs = tmp_path / "subs"
    _submit(subs, "alice")
    monkeypatch.setattr(sandbox, "available", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(grading, "probe_worker", lambda **kw: None)
    assert cli(["grade", str(subs), "--out", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err
    assert "cannot isolate the submissions here: bubblewrap (bwrap) is not installed" in err and "--no-sandbox" in err
    assert not (tmp_path / "g.csv").exists()
    assert cli(["grade", str(subs), "--out", str(tmp_path / "g.csv"), "--no-sandbox", "--seed", "7"]) == 0
    out, err = capsys.readouterr()
    assert "warning: --no-sandbox" in err and "seed: 7" in out and "isolation: none" in out
    rows = list(csv.DictReader((tmp_path / "g.csv").open()))
    assert [r["status"] for r in rows] == ["not attempted"] * 3 and {r["seed"] for r in rows} == {"7"}  # the recorder graded nothing


def test_the_summary_table_counts_every_status():
    rows = [{"exercise": "0.1", "points": p, "max": "2", "status": s}
            for p, s in (("2", "passed"), ("0", "failed"), ("0", "timeout"), ("0", "forbidden"))]
    table = grading.summary_table(rows, {"0.1": "stable_softmax"}).splitlines()
    assert table[0].split() == ["exercise", "name", "max", "mean", "passed", "failed", "not", "attempted",
                                "error", "timeout", "memory", "forbidden"]
    assert table[1].split() == ["0.1", "stable_softmax", "2", "0.50", "1", "1", "0", "0", "1", "0", "1"]


def test_no_sandbox_grades_honest_notebooks_with_points_from_the_course(tmp_path, monkeypatch):
    """--no-sandbox path end to end (the attack module needs bubblewrap): full, partial and empty."""
    subs = tmp_path / "subs"
    _submit(subs, "alice")
    _submit(subs, "bob", lambda nb: _replace(nb, "def softmax_temperature",
                                             "def softmax_temperature(x, temperature=1.0):\n    return stable_softmax(x * temperature)\n"))
    (subs / "carol").mkdir()
    monkeypatch.setattr(grading, "_points", lambda root: {"0.1": 2.0})
    book = grading.grade_folder(subs, tmp_path / "g.csv", tmp_path / "fb", seed=3, jobs=2, sandbox=False, **FAST)
    got = {(r["student"], r["exercise"]): (r["points"], r["max"], r["status"]) for r in book.rows}
    assert got == {
        ("alice", "0.1"): ("2", "2", "passed"), ("alice", "0.2"): ("1", "1", "passed"), ("alice", "0.3"): ("1", "1", "passed"),
        ("bob", "0.1"): ("2", "2", "passed"), ("bob", "0.2"): ("1", "1", "passed"), ("bob", "0.3"): ("0", "1", "failed"),
        ("carol", "0.1"): ("0", "2", "not attempted"), ("carol", "0.2"): ("0", "1", "not attempted"),
        ("carol", "0.3"): ("0", "1", "not attempted"),
    }
    assert "Likely mistake: you multiplied the logits by the temperature" in (tmp_path / "fb" / "bob.md").read_text()
    assert book.seed == 3 and "none (--no-sandbox)" in book.isolation
