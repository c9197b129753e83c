"""nbgrader interop: solutions/ carries nbgrader's cell metadata, and nbgrader's own generate_assignment runs on it.

nbgrader is a test-only dependency (the dev extra). Without it the tests skip, except in CI
(`CI` set), where a missing nbgrader is a failure: interop must not go quietly untested.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lmcourse import notebooks as nbt

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "solutions" / "04_self_attention.ipynb"

try:
    import nbgrader  # noqa: F401
    from nbgrader.nbgraderformat import MetadataValidator
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI"):
        pytest.fail("nbgrader is not installed; CI must run the nbgrader interop tests (pip install -e '.[dev]')",
                    pytrace=False)
    pytest.skip("nbgrader is not installed (it is in the dev extra)", allow_module_level=True)


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_course_notebook_passes_nbgraders_metadata_validator(path):
    nb = nbformat.read(path, as_version=4)
    MetadataValidator().validate_nb(nb)  # schema 3, grade_id characters, points on grade cells, unique ids
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    solution = nbformat.read(ROOT / "solutions" / path.name, as_version=4)  # the exercise's markers are gone
    assert graded and len(graded) == len(solutions) == len(nbt.exercise_cells(solution, nbt.chapter_number(path))[0])


def test_a_dotted_grade_id_is_what_nbgrader_refuses():
    """Why exercise 4.1's grade_id is "4_1": nbgrader's schema allows only letters, digits, _ and -."""
    from jsonschema import ValidationError

    nb = nbformat.read(CHAPTER, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    cell.metadata["nbgrader"]["grade_id"] = "4.1"
    with pytest.raises(ValidationError, match="does not match"):
        MetadataValidator().validate_nb(nb)


def test_nbgrader_generate_assignment_runs_on_a_solution_notebook(tmp_path):
    course = tmp_path / "course"
    (course / "source" / "ps04").mkdir(parents=True)
    shutil.copy(CHAPTER, course / "source" / "ps04" / CHAPTER.name)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.course_id = 'lmcourse'\n")
    env = dict(os.environ)
    env.update({
        # nbgrader runs `alembic` from PATH: the one installed beside this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    })
    run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "ps04", "--force"],
                         cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    released = nbformat.read(course / "release" / "ps04" / CHAPTER.name, as_version=4)
    source = nbformat.read(CHAPTER, as_version=4)
    ours = nbformat.read(ROOT / "exercises" / CHAPTER.name, as_version=4)
    exercises, _ = nbt.exercise_cells(source, 4)
    assert len(exercises) == 4
    for ex in exercises:
        solution, check = released.cells[ex.solution], released.cells[ex.check]
        # The solution is gone, replaced by nbgrader's stub; the function's signature stays.
        assert "BEGIN SOLUTION" not in solution.source and "raise NotImplementedError()" in solution.source
        assert source.cells[ex.solution].source.split("\n")[0] == solution.source.split("\n")[0]
        # The check cell is locked, unchanged, and worth its points.
        assert check.source == source.cells[ex.check].source
        assert check.metadata["editable"] is False and check.metadata["deletable"] is False
        assert check.metadata["nbgrader"]["locked"] and check.metadata["nbgrader"]["grade_id"] == nbt.grade_id(ex.id)
        # lmcourse's own student version keeps the same metadata and locks (less nbgrader's checksums).
        for i in (ex.solution, ex.check):
            theirs = {k: v for k, v in released.cells[i].metadata.items()}
            theirs["nbgrader"] = {k: v for k, v in theirs["nbgrader"].items() if k not in ("checksum", "cell_type")}
            assert dict(ours.cells[i].metadata) == theirs
    assert all(not c.get("outputs") for c in released.cells if c.cell_type == "code")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # nbgrader read the points from the metadata
        assert gb.find_assignment("ps04").max_score == sum(nbt.exercise_points(ROOT / "solutions")[e.id] for e in exercises)
