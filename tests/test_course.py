"""The course map: README in sync, Colab links from one slug."""
from __future__ import annotations

from pathlib import Path

import pytest

from lmcourse import course, notebooks

ROOT = Path(__file__).resolve().parents[1]


def test_readme_course_map_is_generated_and_current():
    readme = ROOT / "README.md"
    assert readme.read_text() == course.update_readme(readme, ROOT), "run `make readme`"


def test_every_link_uses_the_one_slug():
    table = course.course_map_markdown(ROOT)
    assert f"github/{course.REPO_SLUG}/blob/{course.BRANCH}/chapters/00_getting_started.ipynb" in table
    assert course.REPO_SLUG in notebooks.SETUP_CELL


def test_readme_shows_the_two_commands_first_and_the_setup_cell():
    text = (ROOT / "README.md").read_text()
    first_code = text.split("```bash", 1)[1].split("```", 1)[0]
    assert "make lab" in first_code and "make test" in first_code
    assert notebooks.SETUP_CELL in text, "README's Colab section must show the setup cell verbatim"


def test_update_readme_without_markers_is_refused(tmp_path):
    p = tmp_path / "README.md"
    p.write_text("# nothing\n")
    with pytest.raises(ValueError, match="course-map"):
        course.update_readme(p, ROOT)


def test_chapters_are_numbered_in_order():
    assert [c.number for c in course.CHAPTERS] == list(range(len(course.CHAPTERS)))
    assert len({c.filename for c in course.CHAPTERS}) == len(course.CHAPTERS)


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# -- the command line acts on the course folder it is run from -----------------------------
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import lmcourse  # noqa: E402

PACKAGE_PARENT = Path(lmcourse.__file__).resolve().parents[1]


def _notebook(*sources: str, metadata: dict | None = None) -> str:
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": s}
             for i, s in enumerate(sources)]
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}, **(metadata or {})}
    return json.dumps({"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


def _small_course(folder: Path) -> Path:
    """A course folder of its own: one chapter, one solution, a README with the map markers, tests/."""
    (folder / "chapters").mkdir(parents=True)
    (folder / "solutions").mkdir()
    (folder / "tests").mkdir()
    (folder / "chapters" / "00_getting_started.ipynb").write_text(_notebook("print(6 * 7)"))
    (folder / "solutions" / "00_getting_started.ipynb").write_text(
        _notebook("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION")
    )
    (folder / "README.md").write_text(f"# My course\n\n{course.MAP_BEGIN}\nold\n{course.MAP_END}\n")
    return folder


def _lmcourse(cwd: Path, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)}
    return subprocess.run([sys.executable, "-m", "lmcourse.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".ipynb_checkpoints" not in p.parts}


def test_find_root_walks_up_to_the_course_folder_and_nowhere_else(tmp_path):
    home = _small_course(tmp_path / "course")
    assert course.find_root(home) == home.resolve()
    assert course.find_root(home / "chapters") == home.resolve()
    assert course.find_root(root=home) == home.resolve()
    (tmp_path / "elsewhere" / "chapters").mkdir(parents=True)  # a chapters/ without numbered notebooks
    (tmp_path / "elsewhere" / "chapters" / "notes.ipynb").write_text(_notebook("1"))
    with pytest.raises(course.NotACourseError, match="not inside a course folder.*--root DIR"):
        course.find_root(tmp_path / "elsewhere")
    with pytest.raises(course.NotACourseError, match="not a course folder"):
        course.find_root(root=tmp_path / "elsewhere")
    with pytest.raises(course.NotACourseError, match="no such folder"):
        course.find_root(root=tmp_path / "missing")


def test_cli_acts_on_the_course_it_is_run_from(tmp_path):
    home = _small_course(tmp_path / "course")
    repo_before = _snapshot(ROOT / "exercises")
    readme_before = (ROOT / "README.md").read_bytes()

    built = _lmcourse(home / "chapters", "exercises", "build")  # from a sub-folder of the course
    assert built.returncode == 0, built.stderr
    exercise = (home / "exercises" / "00_getting_started.ipynb").read_text()
    assert 'raise NotImplementedError(\\"Exercise 0.1\\")' in exercise and "return x + 1" not in exercise
    checked = _lmcourse(home, "exercises", "--check")
    assert checked.returncode == 0 and "in sync" in checked.stdout, checked.stdout + checked.stderr

    readme = _lmcourse(home, "readme")
    assert readme.returncode == 0, readme.stderr
    text = (home / "README.md").read_text()
    assert "[Getting started](chapters/00_getting_started.ipynb)" in text and "old" not in text
    assert "[Language models" not in text  # chapter 01 is not in this course: planned

    ran = _lmcourse(home, "notebooks", "run", "chapters/00_getting_started.ipynb", "--timeout", "120")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    outputs = json.loads((home / "chapters" / "00_getting_started.ipynb").read_text())["cells"][0]["outputs"]
    assert "".join(outputs[0]["text"]) == "42\n"
    timings = json.loads((home / "tests" / "notebook_timings.json").read_text())
    assert set(timings) == {"_threads", "chapters/00_getting_started.ipynb"}

    # The checkout the package came from was not touched.
    assert _snapshot(ROOT / "exercises") == repo_before
    assert (ROOT / "README.md").read_bytes() == readme_before


def test_run_times_are_not_recorded_for_a_course_without_tests(tmp_path):
    home = _small_course(tmp_path / "course")
    (home / "tests").rmdir()
    ran = _lmcourse(home, "notebooks", "run", "chapters/00_getting_started.ipynb", "--timeout", "120")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "run times not recorded" in ran.stderr
    assert not (home / "tests").exists()


@pytest.mark.parametrize("argv", [
    ["exercises", "build"], ["exercises", "--check"], ["exercises", "build", "--prune"], ["readme"], ["readme", "--check"],
    ["notebooks", "run"],
])
def test_cli_outside_a_course_folder_refuses(tmp_path, argv):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _lmcourse(elsewhere, *argv)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not inside a course folder" in proc.stderr and "--root DIR" in proc.stderr
    assert "Traceback" not in proc.stderr and "in sync" not in proc.stdout
    assert list(elsewhere.iterdir()) == []


def test_cli_root_option_names_the_course(tmp_path):
    home = _small_course(tmp_path / "course")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _lmcourse(elsewhere, "exercises", "build", "--root", str(home))
    assert proc.returncode == 0, proc.stderr
    assert (home / "exercises" / "00_getting_started.ipynb").exists() and list(elsewhere.iterdir()) == []
    proc = _lmcourse(home, "exercises", "--check", "--root", str(elsewhere))
    assert proc.returncode == 2 and "not a course folder" in proc.stderr
