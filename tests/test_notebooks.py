"""Notebook tooling: the exercise generator, the sync check, conventions, and nbval's teeth."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lmcourse import notebooks as nbt
from lmcourse.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


def _nb(*sources, kind="code"):
    cells = [nbformat.v4.new_code_cell(s) if kind == "code" else nbformat.v4.new_markdown_cell(s) for s in sources]
    for i, c in enumerate(cells):
        c["id"] = f"c{i}"
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def _write(path: Path, nb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbt.dumps(nb))
    return path


SOLVED = '''def f(x):
    """Doc."""
    ### BEGIN SOLUTION
    y = x + 1
    return y
    ### END SOLUTION

class A:
    def g(self):
        ### BEGIN SOLUTION
        return 2
        ### END SOLUTION
'''


def test_build_replaces_solutions_keeping_indentation_and_numbers(tmp_path):
    src = _write(tmp_path / "solutions" / "04_x.ipynb", _nb(SOLVED, "### BEGIN SOLUTION\nz = 3\n### END SOLUTION\nprint(z)"))
    nb = nbt.build_exercise(src)
    first, second = nb.cells[0].source, nb.cells[1].source
    assert '    """Doc."""\n    raise NotImplementedError("Exercise 4.1")\n' in first
    assert '        raise NotImplementedError("Exercise 4.2")' in first
    assert "y = x + 1" not in first and "return 2" not in first and "BEGIN" not in first
    assert second == 'raise NotImplementedError("Exercise 4.3")\nprint(z)'


def test_build_drops_hidden_tests_and_outputs(tmp_path):
    nb = _nb("x = 1\n### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS\nprint(x)")
    nb.metadata["lmcourse"] = {"exercises": 0}
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[0].execution_count = 3
    out = nbt.build_exercise(_write(tmp_path / "solutions" / "01_a.ipynb", nb))
    assert out.cells[0].source == "x = 1\nprint(x)"
    assert out.cells[0].outputs == [] and out.cells[0].execution_count is None


def test_markdown_solution_becomes_placeholder(tmp_path):
    nb = _nb("Answer:\n### BEGIN SOLUTION\nBecause softmax is shift-invariant.\n### END SOLUTION", kind="md")
    out = nbt.build_exercise(_write(tmp_path / "solutions" / "02_b.ipynb", nb))
    assert out.cells[0].source == f"Answer:\n{nbt.MARKDOWN_PLACEHOLDER}"


@pytest.mark.parametrize(
    "source,needle",
    [
        ("### BEGIN SOLUTION\nx = 1", "unterminated solution"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "cannot nest"),
        ("### BEGIN HIDDEN TESTS\n### BEGIN SOLUTION\n### END SOLUTION\n### END HIDDEN TESTS", "cannot nest"),
        ("x = 1\n### END SOLUTION", "without a matching BEGIN"),
        ("### BEGIN HIDDEN TESTS\nassert 1", "unterminated hidden"),
        ("### BEGIN SOLUTION\n### END HIDDEN TESTS", "without a matching BEGIN"),
    ],
)
def test_bad_markers_are_refused_naming_file_and_cell(tmp_path, source, needle):
    src = _write(tmp_path / "solutions" / "03_c.ipynb", _nb("ok = 1", source))
    with pytest.raises(nbt.MarkerError, match=needle) as info:
        nbt.build_exercise(src)
    assert "03_c.ipynb cell 2" in str(info.value)


def _no_exercises(nb):
    nb.metadata["lmcourse"] = {"exercises": 0}
    return nb


def _mini_repo(tmp_path: Path) -> Path:
    _write(tmp_path / "solutions" / "00_a.ipynb", _nb(SOLVED))
    _write(tmp_path / "solutions" / "01_b.ipynb", _no_exercises(_nb("print(1)")))
    (tmp_path / "exercises").mkdir()
    return tmp_path


def test_check_exercises_detects_missing_edited_and_stale(tmp_path):
    repo = _mini_repo(tmp_path)
    assert set(nbt.check_exercises(repo)) == {
        "exercises/00_a.ipynb: missing", "exercises/01_b.ipynb: missing",
        "solutions/00_a.ipynb: nbgrader metadata missing or out of date in cell(s) 1 (`lmcourse exercises build` writes it)",
    }
    assert nbt.build_exercises(repo).metadata == [repo / "solutions" / "00_a.ipynb"]
    assert nbt.check_exercises(repo) == [] and nbt.build_exercises(repo).metadata == []
    # An edit to a solution's code makes the generated exercise stale.
    sol = nbformat.read(repo / "solutions" / "01_b.ipynb", as_version=4)
    sol.cells[0].source = "print(2)"
    _write(repo / "solutions" / "01_b.ipynb", sol)
    assert nbt.check_exercises(repo) == ["exercises/01_b.ipynb: differs from what `lmcourse exercises build` writes"]
    # A hand edit to an exercise is caught too, and so is an orphan.
    nbt.build_exercises(repo)
    (repo / "exercises" / "00_a.ipynb").write_text((repo / "exercises" / "00_a.ipynb").read_text().replace("Exercise 0.1", "Exercise 9.9"))
    _write(repo / "exercises" / "07_orphan.ipynb", _nb("x"))
    assert set(nbt.check_exercises(repo)) == {
        "exercises/00_a.ipynb: differs from what `lmcourse exercises build` writes",
        "exercises/07_orphan.ipynb: has no solutions/07_orphan.ipynb (a stray: `lmcourse exercises build --prune` removes it)",
    }
    build = nbt.build_exercises(repo)
    assert build.strays == [repo / "exercises" / "07_orphan.ipynb"] and build.removed == []
    assert (repo / "exercises" / "07_orphan.ipynb").exists()  # a file the generator did not write stays
    assert nbt.check_exercises(repo) == [
        "exercises/07_orphan.ipynb: has no solutions/07_orphan.ipynb (a stray: `lmcourse exercises build --prune` removes it)"
    ]
    build = nbt.build_exercises(repo, prune=True)
    assert build.removed == [repo / "exercises" / "07_orphan.ipynb"]
    assert nbt.check_exercises(repo) == [] and not (repo / "exercises" / "07_orphan.ipynb").exists()


def test_build_never_deletes_what_it_did_not_write(tmp_path, capsys):
    repo = _mini_repo(tmp_path)
    nbt.build_exercises(repo)
    copy = _write(repo / "exercises" / "00_a-Copy1.ipynb", _nb("my work = 1"))
    (repo / "exercises" / "notes.txt").write_text("mine")
    before = copy.read_text()
    assert cli(["exercises", "build", "--root", str(repo)]) == 0
    captured = capsys.readouterr()
    assert "stray: exercises/00_a-Copy1.ipynb has no solutions/00_a-Copy1.ipynb; kept" in captured.err
    assert "--prune" in captured.err
    assert copy.read_text() == before and (repo / "exercises" / "notes.txt").exists()
    assert "2 exercise file(s) already up to date" in captured.out  # and nothing rewritten
    assert cli(["exercises", "build", "--prune", "--root", str(repo)]) == 0
    assert "removed stray exercises/00_a-Copy1.ipynb" in capsys.readouterr().out
    assert not copy.exists() and (repo / "exercises" / "notes.txt").exists()  # only notebooks are pruned


@pytest.mark.parametrize("layout", ["missing", "empty", "only_other_files"])
def test_build_refuses_without_solutions_and_deletes_nothing(tmp_path, capsys, layout):
    repo = _mini_repo(tmp_path)
    nbt.build_exercises(repo)
    _write(repo / "chapters" / "00_a.ipynb", _nb("print(1)"))  # still a course folder
    shutil.rmtree(repo / "solutions")
    if layout != "missing":
        (repo / "solutions").mkdir()
    if layout == "only_other_files":
        (repo / "solutions" / "README.md").write_text("x")
    before = {p.name: p.read_text() for p in (repo / "exercises").iterdir()}
    assert len(before) == 2
    with pytest.raises(nbt.NothingToBuild, match="nothing to build"):
        nbt.build_exercises(repo, prune=True)
    with pytest.raises(nbt.NothingToBuild, match="nothing to build"):
        nbt.check_exercises(repo)
    for argv in (["exercises", "build", "--prune"], ["exercises", "--check"]):
        assert cli([*argv, "--root", str(repo)]) == 2
        err = capsys.readouterr().err
        assert "nothing to build exercises from" in err and "in sync" not in err
    assert {p.name: p.read_text() for p in (repo / "exercises").iterdir()} == before


def test_a_marker_error_writes_nothing(tmp_path):
    repo = _mini_repo(tmp_path)
    _write(repo / "solutions" / "02_c.ipynb", _nb("### BEGIN SOLUTION\nx = 1"))
    with pytest.raises(nbt.MarkerError):
        nbt.build_exercises(repo)
    assert list((repo / "exercises").iterdir()) == []


def test_cli_exercises_check_exit_codes(tmp_path, capsys):
    repo = _mini_repo(tmp_path)
    assert cli(["exercises", "--check", "--root", str(repo)]) == 1
    assert "exercises/00_a.ipynb: missing" in capsys.readouterr().out
    assert cli(["exercises", "build", "--root", str(repo)]) == 0
    assert "wrote exercises/00_a.ipynb" in capsys.readouterr().out
    assert cli(["exercises", "--check", "--root", str(repo)]) == 0
    assert cli(["exercises", "check", "--root", str(repo)]) == 0


# -- markers that would leak the solution into the exercise -------------------------------
def test_a_solution_without_markers_is_refused_unless_it_declares_no_exercises(tmp_path):
    src = _write(tmp_path / "solutions" / "03_c.ipynb", _nb("def f(x):\n    return x + 1"))
    with pytest.raises(nbt.MarkerError, match="no '### BEGIN SOLUTION' block") as info:
        nbt.build_exercise(src)
    assert "03_c.ipynb" in str(info.value) and '{"lmcourse": {"exercises": 0}}' in str(info.value)
    nb = _nb("print('no exercises here')")
    nb.metadata["lmcourse"] = {"exercises": 0}
    assert nbt.build_exercise(_write(src, nb)).cells[0].source == "print('no exercises here')"


@pytest.mark.parametrize("declared,needle", [(2, "says 2 exercise"), (0, "says 0 exercise"), (-1, ">= 0"), (True, ">= 0"), ("1", ">= 0")])
def test_declared_exercise_count_must_match(tmp_path, declared, needle):
    nb = _nb("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    nb.metadata["lmcourse"] = {"exercises": declared}
    with pytest.raises(nbt.MarkerError, match=needle):
        nbt.build_exercise(_write(tmp_path / "solutions" / "03_c.ipynb", nb))
    nb.metadata["lmcourse"] = {"exercises": 1}
    assert "raise NotImplementedError" in nbt.build_exercise(_write(tmp_path / "solutions" / "03_c.ipynb", nb)).cells[0].source


NEAR_MISSES = [
    "###BEGIN SOLUTION", "### begin solution", "## BEGIN SOLUTION", "#### BEGIN SOLUTION", "###  BEGIN SOLUTION",
    "### BEGIN  SOLUTION", "### Begin Solution", "# END SOLUTION", "### END SOLUTIONS", "### BEGIN HIDDEN TEST",
    "###END HIDDEN TESTS", "y = 2  ### BEGIN SOLUTION", "### BEGIN SOLUTION: part a",
]


@pytest.mark.parametrize("line", NEAR_MISSES)
def test_near_miss_markers_are_errors_naming_file_cell_and_line(tmp_path, line):
    src = _write(tmp_path / "solutions" / "03_c.ipynb", _nb(
        "### BEGIN SOLUTION\nok = 1\n### END SOLUTION",
        f"def f(x):\n    {line}\n    return x + 1\n    ### END SOLUTION",
    ))
    with pytest.raises(nbt.MarkerError, match="looks like a marker") as info:
        nbt.build_exercise(src)
    assert "03_c.ipynb cell 2 line 2" in str(info.value) and line.strip() in str(info.value)


@pytest.mark.parametrize("line", ["## BEGIN SOLUTION", "###BEGIN SOLUTION", "### end solution"])
def test_near_miss_markers_in_markdown_are_errors(tmp_path, line):
    src = _write(tmp_path / "solutions" / "03_c.ipynb", _nb(f"Answer:\n{line}\nBecause.", kind="md"))
    with pytest.raises(nbt.MarkerError, match="03_c.ipynb cell 1 line 2: .*looks like a marker"):
        nbt.build_exercise(src)


def test_words_that_only_mention_solutions_are_not_markers(tmp_path):
    nb = _nb("# the end: a solution that works\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n# begins here, solution below")
    out = nbt.build_exercise(_write(tmp_path / "solutions" / "03_c.ipynb", nb))
    assert "x = 1" not in out.cells[0].source


def test_the_repository_exercises_are_in_sync():
    problems = nbt.check_exercises(ROOT)
    assert problems == [], "run `make exercises`:\n" + "\n".join(problems)


# -- conventions over every course notebook ----------------------------------------------
COURSE = sorted(p for d in ("chapters", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))


@pytest.mark.parametrize("path", COURSE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_first_code_cell_is_the_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and code[0].source == nbt.SETUP_CELL, f"{path.name}: the first code cell must be lmcourse.notebooks.SETUP_CELL"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_outputs_policy(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if path.parent.name == "exercises":
        assert all(not c.outputs for c in code), "exercises are stored without outputs"
        return
    assert any(c.outputs for c in code), f"{path.name}: no stored outputs; run `make notebooks`"
    for c in code:
        assert all(o.output_type != "error" for o in c.outputs), f"{path.name}: a stored error"
        text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in c.outputs)
        assert "<matplotlib." not in text and " at 0x" not in text, f"{path.name}: an object repr is stored; end plot cells with plt.show()"
        leaks = [p for p in (str(ROOT), sys.prefix, str(Path.home())) if len(p) > 1 and p in text]
        leaks += re.findall(r"/home/\w+|/Users/\w+|[A-Za-z]:\\+Users\\+\w+", text)
        assert not leaks, f"{path.name}: a stored output shows a path of the machine that ran it: {leaks[0]!r}"


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_solutions_have_exercises_with_checks(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    n = text.count(nbt.BEGIN_SOLUTION)
    assert n >= 1, f"{path.name}: no ### BEGIN SOLUTION block"
    assert text.count(".check(") >= 1, f"{path.name}: no check call"


def test_course_notebook_names_follow_the_course_map():
    from lmcourse.course import CHAPTERS

    names = {c.filename for c in CHAPTERS}
    for path in COURSE:
        assert path.name in names, f"{path}: not in lmcourse/course.py CHAPTERS"


def test_timings_are_recorded_and_within_budget():
    budgets = {"chapters": 120, "solutions": 60, "exercises": 30}
    timings = json.loads((ROOT / "tests" / "notebook_timings.json").read_text())
    for path in COURSE:
        key = f"{path.parent.name}/{path.name}"
        assert key in timings, f"{key}: no recorded run time; run `make notebooks`"
        assert timings[key] <= budgets[path.parent.name], f"{key}: {timings[key]} s recorded, budget {budgets[path.parent.name]} s"


# -- nbval has teeth ----------------------------------------------------------------------
def _nbval(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), str(path)],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )


def test_tampered_stored_output_fails_nbval(tmp_path):
    src = ROOT / "chapters" / "00_getting_started.ipynb"
    good = tmp_path / "good" / src.name
    bad = tmp_path / "bad" / src.name
    good.parent.mkdir()
    bad.parent.mkdir()
    shutil.copy(src, good)
    nb = json.loads(src.read_text())
    edited = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "NBVAL_IGNORE_OUTPUT" in "".join(cell["source"]):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and "0.6652" in "".join(out["text"]):
                out["text"] = "".join(out["text"]).replace("0.6652", "0.6653")
                edited = True
    assert edited, "chapter 00 no longer prints the probability this test tampers with"
    bad.write_text(json.dumps(nb, indent=1))
    ok = _nbval(good, good.parent)
    assert ok.returncode == 0, ok.stdout[-2000:]
    broken = _nbval(bad, bad.parent)
    assert broken.returncode != 0 and "0.6653" in broken.stdout, broken.stdout[-2000:]


def test_runner_executes_in_place_records_time_and_stops_at_first_error(tmp_path):
    import io

    good = _write(tmp_path / "chapters" / "00_good.ipynb", _nb("import os\nprint(os.environ['LMCOURSE_NUM_THREADS'], os.environ['PYTHONHASHSEED'])"))
    bad = _write(tmp_path / "chapters" / "01_bad.ipynb", _nb("x = 1", "raise RuntimeError('cell two broke')", "print('never')"))
    never = _write(tmp_path / "chapters" / "02_never.ipynb", _nb("print(1)"))
    ex = _write(tmp_path / "exercises" / "00_good.ipynb", _nb("print('clean')"))
    timings = tmp_path / "timings.json"
    out = io.StringIO()
    rc = nbt.run_notebooks([good, ex, bad, never], threads=1, out=out, timings=timings, timeout=120)
    assert rc == 1
    text = out.getvalue()
    assert "cell two broke" in text and "raise RuntimeError" in text, text
    assert "02_never" not in text
    stored = nbformat.read(good, as_version=4).cells[0].outputs
    assert stored and stored[0]["text"] == "1 0\n"  # the fixed environment reached the kernel
    assert nbformat.read(ex, as_version=4).cells[0].outputs == []  # exercises stay clean
    assert nbformat.read(bad, as_version=4).cells[0].outputs == []  # a failed run saves nothing
    recorded = json.loads(timings.read_text())
    assert set(recorded) == {"_threads", good.as_posix(), ex.as_posix()}  # the failed and unrun ones are not timed
    assert all(v >= 0 for v in recorded.values())


def test_runner_refuses_folders_and_files_that_are_not_notebooks_before_running(tmp_path, capsys):
    good = _write(tmp_path / "chapters" / "00_good.ipynb", _nb("print(1)"))
    text = tmp_path / "chapters" / "01_text.ipynb"
    text.write_text("this is not JSON")
    wrong = tmp_path / "chapters" / "02_wrong.ipynb"
    wrong.write_text('{"cells": 3}')
    for path, needle in ((tmp_path / "chapters", "is a folder, not a notebook"), (text, "not a notebook (its content is not JSON)"),
                         (wrong, "not a valid notebook"), (tmp_path / "nope.ipynb", "no such notebook")):
        with pytest.raises(nbt.NotebookError, match=re.escape(needle)):
            nbt.run_notebooks([good, path], timings=None)
        assert cli(["notebooks", "run", "--root", str(tmp_path), str(good), str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and needle in err and "Traceback" not in err, err
    assert nbformat.read(good, as_version=4).cells[0].outputs == []  # nothing ran


def test_a_cell_timeout_is_one_line_naming_file_and_cell(tmp_path):
    import io

    slow = _write(tmp_path / "chapters" / "00_slow.ipynb", _nb("x = 1", "import time\ntime.sleep(60)", "print('never')"))
    out = io.StringIO()
    assert nbt.run_notebooks([slow], timeout=3, out=out) == 1
    last = out.getvalue().strip().splitlines()[-1]
    assert last == f"{slow}: cell 2 did not finish within the 3 s cell timeout; stopped", out.getvalue()


@pytest.mark.parametrize("argv", [
    ["notebooks", "run", "--timeout", "0"], ["notebooks", "run", "--timeout", "-5"], ["notebooks", "run", "--threads", "0"],
    ["grade", "subs", "--timeout", "0"], ["grade", "subs", "--timeout", "-1"], ["grade", "subs", "--memory-mb", "0"],
    ["grade", "subs", "--timeout", "ten"],
])
def test_limits_that_are_not_positive_are_rejected_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli(argv)
    assert info.value.code == 2
    assert "> 0" in capsys.readouterr().err


def test_run_notebooks_rejects_a_non_positive_timeout(tmp_path):
    good = _write(tmp_path / "chapters" / "00_good.ipynb", _nb("print(1)"))
    for bad in (0, -1, None):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            nbt.run_notebooks([good], timeout=bad)


@pytest.mark.parametrize("path", sorted((ROOT / "exercises").glob("*.ipynb")), ids=lambda p: p.name)
def test_stub_numbers_match_the_checks_that_follow(path):
    """The k-th stub says "Exercise N.k" and the k-th check judges exercise N.k: one numbering."""
    import re

    from lmcourse import checks

    registry = checks.load_all()
    by_name = {(int(k.split(".")[0]), ex.name): k for k, ex in registry.items()}
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    stubs = re.findall(r'NotImplementedError\("Exercise (\d+\.\d+)"\)', source)
    checked = [by_name.get((int(n), name)) for n, name in re.findall(r"ch(\d\d)\.(\w+)\.check\(", source)]
    assert stubs and stubs == checked, f"{path.name}: stubs {stubs} but checks {checked}"


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_each_checked_function_carries_its_exercise_name(path):
    """The grader finds the student's function by the exercise's name."""
    import re

    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    calls = re.findall(r"ch\d\d\.(\w+)\.check\((\w+)\)", source)
    assert calls and all(name == fn for name, fn in calls), calls


def test_timings_are_keyed_by_course_path_and_skip_notebooks_outside_the_course(tmp_path):
    inside = tmp_path / "course" / "chapters" / "00_a.ipynb"
    outside = tmp_path / "elsewhere" / "00_b.ipynb"
    file = tmp_path / "course" / "tests" / "notebook_timings.json"
    file.parent.mkdir(parents=True)
    file.write_text('{"_threads": 2, "chapters/09_old.ipynb": 3.0}\n')
    nbt.record_timings([nbt.RunResult(inside, 1.26, True), nbt.RunResult(outside, 2.0, True),
                        nbt.RunResult(tmp_path / "course" / "chapters" / "01_bad.ipynb", 5.0, False)], file, tmp_path / "course")
    assert json.loads(file.read_text()) == {"_threads": 2, "chapters/00_a.ipynb": 1.3, "chapters/09_old.ipynb": 3.0}
    assert nbt.timings_file(tmp_path / "course") == file and nbt.timings_file(tmp_path / "elsewhere") is None


# -- nbgrader metadata and points ---------------------------------------------------------
def _exercise_nb(*points):
    """A solution notebook with one exercise per entry: a solution cell, then its check cell (points or None)."""
    sources = []
    for k, _ in enumerate(points, 1):
        sources += [f"def f{k}(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION", f"ex.f{k}.check(f{k})"]
    nb = _nb(*sources)
    for k, p in enumerate(points):
        if p is not None:
            nb.cells[2 * k + 1].metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                                        "grade_id": f"7_{k + 1}", "points": p, "schema_version": 3}
    return nb


def test_exercise_points_reads_the_check_cells_and_counts_one_where_none_is_given(tmp_path):
    _write(tmp_path / "solutions" / "07_a.ipynb", _exercise_nb(3, None, 0.5))
    _write(tmp_path / "solutions" / "08_b.ipynb", _exercise_nb(None))
    assert nbt.exercise_points(tmp_path / "solutions") == {"7.1": 3.0, "7.2": 1.0, "7.3": 0.5, "8.1": 1.0}
    assert nbt.exercise_points(tmp_path / "nowhere") == {}


@pytest.mark.parametrize("bad", [-1, "2", True, float("nan"), float("inf")])
def test_exercise_points_refuses_points_that_are_not_a_number_at_least_zero(tmp_path, bad):
    path = _write(tmp_path / "solutions" / "07_a.ipynb", _exercise_nb(1, bad))
    with pytest.raises(ValueError, match=re.escape(f"{path} cell 4: nbgrader points must be a number >= 0")):
        nbt.exercise_points(tmp_path / "solutions")


def test_exercise_points_refuses_two_notebooks_for_one_chapter(tmp_path):
    _write(tmp_path / "solutions" / "07_a.ipynb", _exercise_nb(1))
    _write(tmp_path / "solutions" / "07_b.ipynb", _exercise_nb(1))
    with pytest.raises(ValueError, match="07_a.ipynb and .*07_b.ipynb: two solution notebooks for chapter 7"):
        nbt.exercise_points(tmp_path / "solutions")


def test_the_repository_solutions_give_points_to_every_registered_exercise():
    from lmcourse import checks

    points = nbt.exercise_points(ROOT / "solutions")
    chapters = {nbt.chapter_number(p) for p in (ROOT / "solutions").glob("*.ipynb")}
    assert set(points) == {k for k in checks.load_all() if int(k.split(".")[0]) in chapters}
    assert all(p > 0 for p in points.values())


def test_add_nbgrader_metadata_marks_solution_and_check_cells_and_keeps_the_points_set(tmp_path):
    nb = _exercise_nb(None, 4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("ex.demo.check(demo)"))  # a check before any solution: not graded
    nb.cells[0].metadata["nbgrader"] = {"grade": False, "solution": False, "locked": True, "grade_id": "intro",
                                        "schema_version": 3}  # an instructor's own read-only cell: kept
    nb.cells.append(nbformat.v4.new_code_cell("print(1)"))
    nb.cells[-1].metadata["nbgrader"] = {"grade": True, "grade_id": "7_9", "points": 2}  # stale, ours: removed
    out = nbt.add_nbgrader_metadata(nb, 7)
    meta = [c.metadata.get("nbgrader") for c in out.cells]
    assert meta[0]["grade_id"] == "intro" and meta[5] is None
    assert meta[1] == {"grade": False, "grade_id": "7_1-solution", "locked": False, "schema_version": 3, "solution": True}
    assert meta[2] == {"grade": True, "grade_id": "7_1", "locked": True, "points": 1, "schema_version": 3, "solution": False}
    assert meta[3]["grade_id"] == "7_2-solution" and meta[4]["points"] == 4 and meta[4]["grade_id"] == "7_2"
    again = nbt.dumps(out)
    assert nbt.dumps(nbt.add_nbgrader_metadata(out, 7)) == again  # idempotent


def test_exercise_cells_pair_each_check_with_its_own_solution(tmp_path):
    nb = _nb("def a():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION",  # 9.1 has no check cell
             "def b():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n"
             "def c():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION",
             "ex.b.check(b)", "ex.c.check(c)", "ex.c.check(c)  # again: not a second grade cell")
    cells, answers = nbt.exercise_cells(nb, 9)
    assert [(e.id, e.solution, e.check) for e in cells] == [("9.1", 0, None), ("9.2", 1, 2), ("9.3", 1, 3)]
    assert answers == []


def test_a_solution_and_its_check_in_one_cell_is_refused(tmp_path):
    src = _write(tmp_path / "solutions" / "07_a.ipynb", _nb("def f(x):\n    ### BEGIN SOLUTION\n    return x\n"
                                                             "    ### END SOLUTION\nex.f.check(f)"))
    with pytest.raises(nbt.MarkerError, match=re.escape(f"{src} cell 1: holds both a '### BEGIN SOLUTION' block and a `.check(` call")):
        nbt.build_exercise(src)


def test_the_student_version_keeps_the_metadata_and_locks_the_check_cells(tmp_path):
    src = _write(tmp_path / "solutions" / "07_a.ipynb", _exercise_nb(2))
    out = nbt.build_exercise(src)
    solution, check = out.cells
    assert solution.metadata["nbgrader"]["solution"] and solution.metadata["deletable"] is False
    assert "editable" not in solution.metadata and 'raise NotImplementedError("Exercise 7.1")' in solution.source
    assert check.metadata["nbgrader"] == {"grade": True, "grade_id": "7_1", "locked": True, "points": 2,
                                          "schema_version": 3, "solution": False}
    assert check.metadata["deletable"] is False and check.metadata["editable"] is False


def test_the_repository_solutions_carry_the_metadata_the_build_writes():
    """A check cell's grade_id is the id of the exercise it calls, by name, in every solutions notebook."""
    from lmcourse import checks

    by_name = {(int(k.split(".")[0]), ex.name): k for k, ex in checks.load_all().items()}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert nbt.dumps(nbt.add_nbgrader_metadata(nbformat.read(path, as_version=4), nbt.chapter_number(path))) == nbt.dumps(nb)
        for cell in nb.cells:
            m = re.search(r"ch(\d\d)\.(\w+)\.check\(", cell.source)
            if m and cell.cell_type == "code":
                assert cell.metadata["nbgrader"]["grade_id"] == nbt.grade_id(by_name[(int(m[1]), m[2])]), path.name
