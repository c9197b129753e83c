"""Instructors' own exercises: solutions/checks.py beside their notebooks, built and checked like the package's."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lmcourse import checks, course
from lmcourse import notebooks as nbt
from lmcourse.cli import main as cli

# Chapter 42: far from the package's chapters, so the course's ids never meet theirs.
CHECKS = '''\
"""My course's exercises (an instructor's own, declared with lmcourse's API)."""
import torch

from lmcourse.checks import Case, Exercise, Wrong


def _relu(x):
    return torch.where(x > 0, x, torch.zeros_like(x))


def _cases(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(3, 9, (1,), generator=g))
    return [
        Case((torch.tensor([-1.0, 0.0, 2.0]),), label="mixed signs"),
        Case((torch.empty(0),), label="empty"),
        Case((torch.randn(n, generator=g),), label=f"random, {n} values"),
    ]


relu = Exercise(
    id="42.1",
    name="relu",
    title="ReLU",
    reference=_relu,
    cases=_cases,
    wrong=[
        Wrong(lambda x: x.abs(), "abs is not ReLU: a negative input becomes 0, not its size"),
        Wrong(lambda x: torch.where(x < 0, x, torch.zeros_like(x)), "you kept the negatives: keep x where x > 0"),
    ],
    forbidden=("torch.relu", "torch.nn.functional.relu"),
    hint="Keep x where it is positive, 0 elsewhere: torch.where.",
)
'''

SOLUTION_CELLS = [
    ("markdown", "# 42 · ReLU — exercises"),
    ("code", "import torch\nimport checks"),
    ("code", "def relu(x):\n    ### BEGIN SOLUTION\n    return torch.where(x > 0, x, torch.zeros_like(x))\n    ### END SOLUTION"),
    ("code", "checks.relu.check(relu)"),
]


def make_course(root: Path, checks_source: str = CHECKS) -> Path:
    """A tiny instructor course: one solutions notebook with one exercise, and its checks.py."""
    cells = [nbformat.v4.new_markdown_cell(s) if k == "markdown" else nbformat.v4.new_code_cell(s) for k, s in SOLUTION_CELLS]
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i}"
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "42_relu.ipynb").write_text(nbt.dumps(nb), encoding="utf-8")
    (root / "solutions" / "checks.py").write_text(checks_source, encoding="utf-8")
    return root


def test_course_exercises_adds_the_courses_own_and_leaves_the_package_registry_alone(tmp_path):
    root = make_course(tmp_path)
    found = course.course_exercises(root)
    package = checks.load_all()
    assert set(found) == set(package) | {"42.1"}
    assert list(found) == sorted(found, key=lambda k: [int(p) for p in k.split(".")])
    assert found["42.1"].name == "relu" and "42.1" not in checks.REGISTRY
    assert course.course_exercises(None) == package and course.course_exercises(tmp_path / "elsewhere") == package


def test_the_courses_exercise_passes_its_reference_and_fails_each_wrong_variant(tmp_path):
    ex = course.course_exercises(make_course(tmp_path))["42.1"]
    assert ex.run(ex.reference).passed
    for w in ex.wrong:
        result = ex.run(w.fn)
        assert result.status == "fail" and w.message in result.matched
    assert ex.run(lambda x: x).status == "fail"


def test_a_checks_file_may_import_the_packages_exercises_without_declaring_them(tmp_path):
    root = make_course(tmp_path, CHECKS + "\nfrom lmcourse.exercises import ch04\ncausal_mask = ch04.causal_mask\n")
    found = course.course_exercises(root)
    assert found["4.1"] is checks.load_all()["4.1"] and found["42.1"].name == "relu"
    assert set(course.load_course_checks(root / "solutions" / "checks.py")) == {"42.1"}


def test_an_id_clash_with_the_package_names_both_exercises_and_the_file(tmp_path):
    root = make_course(tmp_path, CHECKS.replace('id="42.1"', 'id="4.1"'))
    with pytest.raises(course.CourseChecksError) as err:
        course.course_exercises(root)
    text = str(err.value)
    assert str(root / "solutions" / "checks.py") in text and "'relu'" in text and "'causal_mask'" in text and "4.1" in text


@pytest.mark.parametrize("tail, needle", [
    ("\nraise RuntimeError('boom')\n", f"(line {len(CHECKS.splitlines()) + 2}: raise RuntimeError('boom')): RuntimeError: boom"),
    ("\ndef broken(:\n", f"(line {len(CHECKS.splitlines()) + 2}: def broken(:): SyntaxError"),
    ("\nimport no_such_module_for_lmcourse\n", "ModuleNotFoundError"),
])
def test_a_checks_file_that_fails_to_import_is_named_with_its_line(tmp_path, tail, needle):
    root = make_course(tmp_path, CHECKS + tail)
    with pytest.raises(course.CourseChecksError) as err:
        course.course_exercises(root)
    assert f"{root / 'solutions' / 'checks.py'}" in str(err.value) and "could not be imported" in str(err.value)
    assert needle in str(err.value)
    assert "42.1" not in checks.REGISTRY


@pytest.mark.parametrize("source, needle", [
    (CHECKS.replace('id="42.1"', 'id="relu"'), "has id 'relu'"),
    ('"""Nothing here."""\n', "declares no Exercise"),
    (CHECKS + "\nrelu2 = Exercise(id='42.1', name='relu2', title='t', reference=_relu, cases=_cases, register=False)\n",
     "two exercises have id '42.1'"),
])
def test_bad_declarations_are_refused_naming_the_file(tmp_path, source, needle):
    root = make_course(tmp_path, source)
    with pytest.raises(course.CourseChecksError, match=needle) as err:
        course.course_exercises(root)
    assert str(root / "solutions" / "checks.py") in str(err.value)


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_build_root_makes_the_student_version_and_it_runs_headless(tmp_path, capsys):
    root = make_course(tmp_path / "mycourse")
    assert cli(["exercises", "build", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "nbgrader metadata added or updated in solutions/42_relu.ipynb" in out
    assert "wrote exercises/42_relu.ipynb" in out and "wrote exercises/checks.py" in out
    assert (root / "exercises" / "checks.py").read_bytes() == (root / "solutions" / "checks.py").read_bytes()
    assert cli(["exercises", "--check", "--root", str(root)]) == 0
    exercise = nbformat.read(root / "exercises" / "42_relu.ipynb", as_version=4)
    assert 'raise NotImplementedError("Exercise 42.1")' in exercise.cells[2].source
    assert "torch.where" not in exercise.cells[2].source
    assert nbt.exercise_points(root / "solutions") == {"42.1": 1.0}

    # Jupyter runs a notebook in its own folder, so `import checks` finds exercises/checks.py.
    ran = nbt.execute(root / "exercises" / "42_relu.ipynb", timeout=120, save=True)
    assert ran.ok, ran.error
    assert "… relu (Exercise 42.1): not implemented yet" in _outputs(root / "exercises" / "42_relu.ipynb")
    ran = nbt.execute(root / "solutions" / "42_relu.ipynb", timeout=120, save=True)
    assert ran.ok, ran.error
    assert "✓ relu (Exercise 42.1): all 3 cases pass" in _outputs(root / "solutions" / "42_relu.ipynb")

    found = course.course_exercises(root)
    assert found["42.1"].run(found["42.1"].reference).passed


def test_check_notices_a_stale_or_missing_checks_copy_and_a_stray(tmp_path, capsys):
    root = make_course(tmp_path / "mycourse")
    nbt.build_exercises(root)
    (root / "solutions" / "checks.py").write_text(CHECKS.replace("ReLU", "Rectifier"))
    assert nbt.check_exercises(root) == ["exercises/checks.py: differs from solutions/checks.py"]
    (root / "exercises" / "checks.py").unlink()
    assert nbt.check_exercises(root) == ["exercises/checks.py: missing"]
    nbt.build_exercises(root)
    assert nbt.check_exercises(root) == []
    (root / "solutions" / "checks.py").unlink()
    stray = "exercises/checks.py: has no solutions/checks.py (a stray: `lmcourse exercises build --prune` removes it)"
    assert nbt.check_exercises(root) == [stray]
    assert nbt.build_exercises(root, prune=True).removed == [root / "exercises" / "checks.py"]


def test_build_refuses_a_clashing_checks_file_naming_it_and_writes_nothing(tmp_path, capsys):
    root = make_course(tmp_path / "mycourse", CHECKS.replace('id="42.1"', 'id="4.1"'))
    before = (root / "solutions" / "42_relu.ipynb").read_text()
    assert cli(["exercises", "build", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"error: {root / 'solutions' / 'checks.py'}: exercise 4.1 'relu' clashes with the package's exercise 4.1 'causal_mask'" in err
    assert not (root / "exercises").exists() and (root / "solutions" / "42_relu.ipynb").read_text() == before


def test_the_readme_walkthrough_builds_as_written(tmp_path, capsys):
    """README "For instructors": its checks.py and notebook cells make a course that builds, in sync."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("## For instructors", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
    assert len(blocks) == 4, "checks.py, then the notebook's three code cells"
    root = tmp_path / "mycourse"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "checks.py").write_text(blocks[0], encoding="utf-8")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(b.rstrip("\n")) for b in blocks[1:]])
    (root / "solutions" / "42_relu.ipynb").write_text(nbt.dumps(nb), encoding="utf-8")
    ex = course.course_exercises(root)["42.1"]
    assert ex.run(ex.reference).passed and all(ex.run(w.fn).status == "fail" for w in ex.wrong)
    assert cli(["exercises", "build", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    for line in ("nbgrader metadata added or updated in solutions/42_relu.ipynb", "wrote exercises/42_relu.ipynb",
                 "wrote exercises/checks.py"):
        assert f"# {line}" in section and line in out
    assert cli(["exercises", "--check", "--root", str(root)]) == 0
    stub = nbformat.read(root / "exercises" / "42_relu.ipynb", as_version=4).cells[1].source
    assert 'raise NotImplementedError("Exercise 42.1")' in stub and stub.startswith("def relu(x):")
