"""The hosted CI workflow: it runs .ci/run on every tested Python, on Linux, weekly too, with pip caching."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lmcourse.environment import TESTED_PYTHONS, TESTED_SYSTEMS

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), "the workflow's `on:` must be a mapping of triggers"
    return on


def _steps(workflow: dict) -> list[tuple[str, dict]]:
    return [(name, step) for name, job in workflow["jobs"].items() for step in job["steps"]]


def test_every_job_step_that_tests_calls_ci_run(workflow):
    runs = [step["run"] for _, step in _steps(workflow) if "run" in step]
    assert runs and all(re.fullmatch(r"\s*\.ci/run\s*", r) for r in runs), runs
    assert set(workflow["jobs"]) == {name for name, step in _steps(workflow) if step.get("run", "").strip() == ".ci/run"}


def test_matrix_is_the_tested_pythons_on_linux(workflow):
    for job in workflow["jobs"].values():
        versions = job["strategy"]["matrix"]["python-version"]
        assert all(isinstance(v, str) for v in versions), f"{versions}: quote them (YAML reads 3.10 as 3.1)"
        assert tuple(versions) == TESTED_PYTHONS == ("3.10", "3.11", "3.12")
        assert job["runs-on"].startswith("ubuntu") and TESTED_SYSTEMS == ("Linux",)
        assert job["strategy"].get("fail-fast") is False  # one Python failing must not hide the others
        setup = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
        assert len(setup) == 1 and setup[0]["with"]["python-version"] == "${{ matrix.python-version }}"
        assert job["steps"].index(setup[0]) < next(i for i, s in enumerate(job["steps"]) if "run" in s)


def test_pip_downloads_are_cached(workflow):
    for job in workflow["jobs"].values():
        (setup,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
        assert setup["with"]["cache"] == "pip"
        assert (ROOT / setup["with"]["cache-dependency-path"]).is_file()


def test_runs_on_push_pull_request_and_weekly(workflow):
    on = _triggers(workflow)
    assert "push" in on and "pull_request" in on
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    minute, hour, day_of_month, month, day_of_week = cron.split()
    assert day_of_month == "*" and month == "*" and re.fullmatch(r"[0-6]", day_of_week), f"{cron!r} is not weekly"
    assert re.fullmatch(r"\d+", minute) and re.fullmatch(r"\d+", hour)


def test_ci_run_is_executable_and_runs_make_test():
    script = ROOT / ".ci" / "run"
    mode = subprocess.run(["git", "ls-files", "-s", ".ci/run"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert mode and mode[0] == "100755", "a fresh clone must be able to run .ci/run"
    assert re.search(r"^make test$", script.read_text(encoding="utf-8"), re.M)


def test_readme_states_the_tested_combinations():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    supported = readme[readme.index("### Supported"):]
    supported = supported[: supported.index("\n#")]
    from lmcourse.environment import TESTED_TORCH

    for needle in (*TESTED_PYTHONS, f"PyTorch {TESTED_TORCH}", *TESTED_SYSTEMS):
        assert needle in supported, needle


def test_ci_run_installs_debian_packages_as_root_or_through_sudo():
    """GitHub's runners are not root: every apt-get in .ci/run goes through $SUDO (sudo there, nothing as root)."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    calls = re.findall(r"(\S+\s+)?apt-get\b", code)
    assert calls and all(prefix.strip() == "$SUDO" for prefix in calls), calls
    assert re.search(r'if \[ "\$\(id -u\)" != 0 \] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi', text)
