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
FAST = {"cell_seconds": 3, "call_seconds": 3, "timeout": 120}


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
        names = ex.forbidden_names()
        assert names[0].endswith(ex.reference.__qualname__)
        for dotted in names:
            owner, attr = grading._resolve(dotted)
            assert callable(getattr(owner, attr)), dotted


# -- a class of five, graded end to end ----------------------------------------------------
def test_grade_folder_scores_only_what_was_earned(tmp_path):
    subs = tmp_path / "submissions"
    _submit(subs, "alice")  # the instructor's solution: full marks

    def wrong_temperature_and_fake_checks(nb):
        _replace(nb, "def softmax_temperature", "def softmax_temperature(x, temperature=1.0):\n    return stable_softmax(x * temperature)\n")
        # Redefine the checks, fake a pass, write files: none of it reaches the grader.
        nb["cells"].append(_cell(
            "import lmcourse.checks as C\nC.compare_values = lambda *a, **k: None\n"
            "C.Exercise.run = lambda self, fn: C.Result(self.id, 'pass', '✓')\n"
            "open('gradebook.csv', 'w').write('bob,1,1,1,3,3')\nprint('✓ all passed')"
        ))

    _submit(subs, "bob", wrong_temperature_and_fake_checks)

    def calls_the_reference(nb):
        _replace(nb, "def stable_softmax", "from lmcourse import losses\nimport torch\n"
                 "def stable_softmax(x, axis=-1):\n    return ch00.stable_softmax.reference(x, axis)\n")
        _replace(nb, "def logsumexp", "def logsumexp(x, axis=-1):\n    try:\n        return torch.logsumexp(torch.as_tensor(x), dim=axis).numpy()\n"
                 "    except Exception:\n        return None\n")

    _submit(subs, "carol", calls_the_reference)

    def loops_and_crashes_later(nb):
        _replace(nb, "def logsumexp", "def logsumexp(x, axis=-1):\n    while True:\n        pass\n")
        nb["cells"].append(_cell("while True:\n    pass"))  # an endless demo cell is skipped
        nb["cells"].append(_cell("x = bytearray(50 * 2**30)"))  # over the memory limit: a MemoryError, skipped

    _submit(subs, "dave", loops_and_crashes_later)

    def crashes(nb):
        nb["cells"].insert(3, _cell("import os\nos._exit(3)"))

    _submit(subs, "eve", crashes)
    _submit(subs, "frank", lambda nb: None, name="not_a_chapter.ipynb")
    (subs / "grace").mkdir()
    # The stub notebook, as handed out.
    (subs / "heidi").mkdir()
    (subs / "heidi" / "00_getting_started.ipynb").write_text((ROOT / "exercises" / "00_getting_started.ipynb").read_text())

    out, feedback = tmp_path / "gradebook.csv", tmp_path / "feedback"
    grading.grade_folder(subs, out, feedback, **FAST)
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert list(rows) == ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi"]
    scores = {s: (r["0.1"], r["0.2"], r["0.3"], r["total"], r["max"]) for s, r in rows.items()}
    assert scores == {
        "alice": ("1", "1", "1", "3", "3"),
        "bob": ("1", "1", "0", "2", "3"),
        "carol": ("0", "0", "1", "1", "3"),
        "dave": ("1", "0", "1", "2", "3"),
        "eve": ("0", "0", "0", "0", "3"),
        "frank": ("", "", "", "0", "0"),
        "grace": ("", "", "", "0", "0"),
        "heidi": ("0", "0", "0", "0", "3"),
    }
    text = {p.stem: p.read_text() for p in feedback.glob("*.md")}
    assert "Likely mistake: you multiplied the logits by the temperature" in text["bob"]
    assert "calls lmcourse.exercises.ch00._softmax, the reference implementation" in text["carol"]
    assert "calls torch.logsumexp" in text["carol"]  # caught even inside the student's try/except
    assert "took longer than 3 s" in text["dave"] and "cell" in text["dave"] and "MemoryError" in text["dave"]
    assert "crashed" in text["eve"]
    assert "name starts with its two-digit number" in text["frank"]
    assert "no notebook submitted" in text["grace"]
    assert text["heidi"].count("not implemented yet") == 3


def test_a_notebook_that_runs_out_of_time_does_not_stop_the_others(tmp_path):
    subs = tmp_path / "subs"

    def sleeps(nb):
        nb["cells"].insert(3, _cell("import time\ntime.sleep(600)"))

    _submit(subs, "a_sleeper", sleeps)
    _submit(subs, "b_honest")
    # 20 s: ample for the honest notebook (about 4 s here), far below the sleeper's 600 s.
    grading.grade_folder(subs, tmp_path / "g.csv", None, cell_seconds=600, call_seconds=3, timeout=20)
    rows = {r["student"]: r["total"] for r in csv.DictReader((tmp_path / "g.csv").open())}
    assert rows == {"a_sleeper": "0", "b_honest": "3"}


def test_cli_grade_reports_and_refuses_a_missing_folder(tmp_path, capsys):
    assert cli(["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "not a folder" in capsys.readouterr().err


# -- what is checked before anyone is graded ------------------------------------------------
GRADE_NOTEBOOK = grading.grade_notebook  # the real one, for tests that replace it in the module
@pytest.fixture
def no_grading(monkeypatch):
    """grade_notebook replaced by a recorder: these checks must stop before any notebook runs."""
    calls = []
    monkeypatch.setattr(grading, "grade_notebook", lambda path, student, **kw: calls.append(path) or grading.NotebookGrade(student, Path(path).name))
    return calls


@pytest.mark.parametrize("limits,needle", [
    ({"timeout": 0}, "timeout must be a positive"), ({"timeout": -3}, "timeout must be a positive"),
    ({"timeout": float("nan")}, "timeout"), ({"memory_mb": 0}, "memory_mb must be a positive"),
    ({"memory_mb": -512}, "memory_mb"), ({"memory_mb": True}, "memory_mb"), ({"memory_mb": 1.5}, "memory_mb"),
    ({"cell_seconds": 0}, "cell_seconds"), ({"call_seconds": -1}, "call_seconds"),
])
def test_limits_are_validated_up_front(tmp_path, no_grading, limits, needle):
    subs = tmp_path / "subs"
    _submit(subs, "alice")
    with pytest.raises(ValueError, match=needle):
        grading.grade_folder(subs, tmp_path / "g.csv", tmp_path / "fb", **limits)
    with pytest.raises(ValueError, match=needle):
        GRADE_NOTEBOOK(subs / "alice" / "00_getting_started.ipynb", "alice", **limits)
    assert no_grading == [] and not (tmp_path / "g.csv").exists()


def test_a_memory_limit_too_small_for_the_worker_is_refused_before_grading(tmp_path, no_grading, capsys):
    subs = tmp_path / "subs"
    _submit(subs, "alice")
    with pytest.raises(ValueError, match="cannot run an empty notebook under these limits \\(--memory-mb 300"):
        grading.grade_folder(subs, tmp_path / "g.csv", None, memory_mb=300, timeout=120)
    assert cli(["grade", str(subs), "--out", str(tmp_path / "g.csv"), "--memory-mb", "300"]) == 2
    err = capsys.readouterr().err
    assert "--memory-mb 300" in err and "Raise the limit" in err and "nothing was graded" in err
    assert no_grading == [] and not (tmp_path / "g.csv").exists()


def test_a_worker_that_cannot_start_is_the_graders_error_not_a_zero(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    _submit(subs, "alice")
    monkeypatch.setattr(grading, "probe_worker", lambda **kw: None, raising=False)  # as if the limit had passed the probe
    with pytest.raises(grading.GraderError, match="could not start .* not the student's"):
        grading.grade_notebook(subs / "alice" / "00_getting_started.ipynb", "alice", memory_mb=300, timeout=120)
    with pytest.raises(grading.GraderError, match="--memory-mb 300"):
        grading.grade_folder(subs, tmp_path / "g.csv", tmp_path / "fb", memory_mb=300, timeout=120)
    assert not (tmp_path / "g.csv").exists() and not (tmp_path / "fb").exists()


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
    # Refused by the worker probe, which comes after the outputs were checked for writing.
    assert cli(["grade", str(subs), "--memory-mb", "300"]) == 2  # default --out and --feedback, in the cwd
    assert cli(["grade", str(subs), "--out", str(tmp_path / "a" / "b" / "g.csv"),
                "--feedback", str(tmp_path / "c" / "d"), "--memory-mb", "300"]) == 2
    assert "Raise the limit" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["subs"], "a refused run left files or folders behind"
    assert no_grading == []


# -- fairness: honest notebooks that the grader used to mark down (issue 12) ---------------
def _grade_one(tmp_path, edit, name="00_getting_started.ipynb", **limits):
    path = _submit(tmp_path / "subs", "alice", edit, name=name)
    return grading.grade_notebook(path, "alice", **{**FAST, **limits})


@pytest.mark.parametrize("value", [np.float64(1.25), np.float32(-0.5), np.int64(-7), np.bool_(True), np.bool_(False),
                                   np.uint8(200), np.array(2.5), np.array(3, dtype=np.int32)])
def test_codec_round_trips_numpy_scalars_and_0d_arrays(value):
    back = grading.decode(json.loads(json.dumps(grading.encode(value))))
    assert type(back) is type(value) and back == value
    assert np.asarray(back).dtype == np.asarray(value).dtype and np.shape(back) == np.shape(value)


def test_a_function_returning_np_float64_scores_full_marks(tmp_path):
    def scalar(nb):
        # Natural code: on 1-D input np.sum(..., axis=-1) is an np.float64, not a 0-d array.
        _replace(nb, "def logsumexp", "def logsumexp(x, axis=-1):\n    m = x.max(axis=axis, keepdims=True)\n"
                 "    return np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis)\n")
        nb["cells"].append(_cell("assert type(logsumexp(np.array([0.0, 0.0]))) is np.float64"))

    g = _grade_one(tmp_path, scalar)
    assert g.scores == {"0.1": 1.0, "0.2": 1.0, "0.3": 1.0}, g.reports
    assert not any("cell" in n and "raised" in n for n in g.notes), g.notes


def test_a_function_that_changes_its_input_in_place_scores_full_marks(tmp_path):
    def in_place(nb):
        # The same array is every case's input: dividing it in place must not change the next case.
        _replace(nb, "def softmax_temperature", "def softmax_temperature(x, temperature=1.0):\n"
                 "    x /= temperature\n    return stable_softmax(x, axis=-1)\n")
        _replace(nb, "def stable_softmax", "def stable_softmax(x, axis=-1):\n    x -= x.max(axis=axis, keepdims=True)\n"
                 "    np.exp(x, out=x)\n    return x / x.sum(axis=axis, keepdims=True)\n")

    g = _grade_one(tmp_path, in_place)
    assert g.scores == {"0.1": 1.0, "0.2": 1.0, "0.3": 1.0}, g.reports


def test_a_cell_that_defines_the_function_and_calls_check_is_run(tmp_path):
    def one_cell(nb):
        _replace(nb, "def logsumexp", "import numpy as np")
        _replace(nb, "ch00.logsumexp.check(", "logsumexp = lambda x, axis=-1: (lambda m: (m + np.log(np.exp(x - m)"
                 ".sum(axis=axis, keepdims=True))).squeeze(axis))(x.max(axis=axis, keepdims=True))\n"
                 "ch00.logsumexp.check(logsumexp)\nch00.logsumexp.hint()\nch00.logsumexp.solution()\n")
        nb["cells"].append(_cell("from lmcourse.exercises.ch00 import _softmax as unused\n"
                                 "def helper(): pass\nch00.stable_softmax.check(stable_softmax)"))

    g = _grade_one(tmp_path, one_cell)
    assert g.scores == {"0.1": 1.0, "0.2": 1.0, "0.3": 1.0}, g.reports


@pytest.mark.parametrize("extra", [
    "ok = (1\n      != 2)\nassert ok",  # a PEP 8 continuation line that starts with !=
    "%timeit stable_softmax(np.ones(3))\n%time y = 1\nassert y == 1",
    "%%time\nz = stable_softmax(np.ones(3))\nassert z.shape == (3,)",
    "!ls /\nfiles = !ls\n%matplotlib inline\nassert files == []",
])
def test_ipython_syntax_in_an_honest_notebook_scores_full_marks(tmp_path, extra):
    def with_magic(nb):
        src = "".join(_cell_source(nb, "def softmax_temperature"))
        # The magic sits in the cell that defines the last function, so a dropped or failing cell loses its mark.
        if extra.startswith("%%"):
            _replace(nb, "def softmax_temperature", extra + "\n" + src)
        else:
            _replace(nb, "def softmax_temperature", src + "\n" + extra + "\n")

    g = _grade_one(tmp_path, with_magic)
    assert g.scores == {"0.1": 1.0, "0.2": 1.0, "0.3": 1.0}, (g.reports, g.notes)
    assert g.notes == [], g.notes


def _cell_source(nb, marker):
    return [c for c in nb["cells"] if marker in "".join(c["source"])][0]["source"]


def test_a_shell_escape_runs_nothing_in_the_grader(tmp_path):
    g = _grade_one(tmp_path, lambda nb: nb["cells"].append(_cell(f"!touch {tmp_path}/pwned\n%system touch {tmp_path}/pwned2")))
    assert g.scores == {"0.1": 1.0, "0.2": 1.0, "0.3": 1.0}
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_two_notebooks_for_one_chapter_are_reported_not_silently_replaced(tmp_path, capsys):
    subs = tmp_path / "subs"
    _submit(subs, "alice")  # the real one, with its exact NN_topic name
    _submit(subs, "alice", lambda nb: _replace(nb, "def stable_softmax", "def stable_softmax(x, axis=-1):\n    return x\n"),
            name="00_getting_started (1).ipynb")  # a stray copy, sorted after the real one
    _submit(subs, "bob", lambda nb: None, name="00_getting_started_v1.ipynb")
    _submit(subs, "bob", lambda nb: None, name="00_getting_started_v2.ipynb")  # two clean names: neither is graded
    out, fb = tmp_path / "g.csv", tmp_path / "fb"
    assert cli(["grade", str(subs), "--out", str(out), "--feedback", str(fb)]) == 0
    rows = {r["student"]: (r["0.1"], r["total"], r["max"]) for r in csv.DictReader(out.open())}
    assert rows == {"alice": ("1", "3", "3"), "bob": ("0", "0", "3")}
    err = capsys.readouterr().err
    assert "warning: alice: two notebooks for chapter 00" in err and "00_getting_started (1).ipynb was not graded" in err
    assert "warning: bob: error: two notebooks for chapter 00" in err
    assert "00_getting_started (1).ipynb was not graded" in (fb / "alice.md").read_text()
    assert "error: two notebooks for chapter 00" in (fb / "bob.md").read_text()


def _outside_fences(markdown: str) -> list[str]:
    """The lines of `markdown` that are not inside a fenced code block (CommonMark's backtick fences)."""
    outside, fence = [], None
    for line in markdown.split("\n"):
        stripped = line.lstrip()
        run = len(stripped) - len(stripped.lstrip("`"))
        if fence is None and run >= 3:
            fence = run
        elif fence is not None and run >= fence and stripped.strip("`").strip() == "":
            fence = None
        elif fence is None:
            outside.append(line)
    assert fence is None, "a fence was left open"
    return outside


def test_feedback_cannot_be_injected_with_markdown_or_html(tmp_path):
    subs = tmp_path / "subs"
    hostile = "<img src=x onerror=alert(1)>"
    evil_msg = "```\\n# You passed\\n" + hostile + "\\n````"

    def raises(nb):
        _replace(nb, "def logsumexp", f"def logsumexp(x, axis=-1):\n    raise ValueError('{evil_msg}')\n")
        nb["cells"].append(_cell(f"raise RuntimeError('{evil_msg}')"))

    _submit(subs, "eve<b>", raises, name=f"00_x{hostile}.ipynb")
    fb = tmp_path / "fb"
    grading.grade_folder(subs, tmp_path / "g.csv", fb, **FAST)
    text = (fb / "eve<b>.md").read_text()
    assert text.count("alert(1)") >= 3  # the file name, the failing cell's note, the function's error
    outside = "\n".join(_outside_fences(text))
    assert "<" not in outside and "# You passed" not in outside, outside
    assert "You passed" in text


def test_a_worker_output_over_the_cap_is_an_error_for_that_student(tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "OUTPUT_BYTES", 2**18)

    def huge(nb):
        _replace(nb, "def logsumexp", "def logsumexp(x, axis=-1):\n    return np.zeros(10**6)\n")  # about 5 MB of JSON
        nb["cells"].append(_cell("import os\nfor _ in range(50):\n    os.write(2, b'x' * 100_000)\nprint('y' * 10**7)"))

    g = _grade_one(tmp_path, huge)
    assert g.scores == {"0.1": 0.0, "0.2": 0.0, "0.3": 0.0}
    assert any("error: the worker's result is larger than the 0.25 MB cap" in n for n in g.notes), g.notes
    # Loud stderr alone (5 MB here, over the cap) is not a failure: only its end is read.
    g = _grade_one(tmp_path, lambda nb: nb["cells"].append(_cell("import os\nfor _ in range(50):\n    os.write(2, b'x' * 100_000)")))
    assert g.scores == {"0.1": 1.0, "0.2": 1.0, "0.3": 1.0}


def test_a_huge_file_written_by_a_cell_fails_that_cell_only(tmp_path):
    # Past the worker's file-size limit the write fails (OSError) instead of killing the whole worker.
    g = _grade_one(tmp_path, lambda nb: nb["cells"].append(_cell("open('big.bin', 'wb').write(bytes(70 * 2**20))")))
    assert g.scores == {"0.1": 1.0, "0.2": 1.0, "0.3": 1.0}, g.notes
    assert any("OSError" in n and "File too large" in n for n in g.notes), g.notes
