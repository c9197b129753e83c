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
