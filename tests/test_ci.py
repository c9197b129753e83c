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


# ----------------------------------------------------------------------------- outputs independent of the Python version

# Every standard-library module a chapter or solution imports, and why what it gives the stored
# outputs is the same on every tested Python. A new import fails test_stdlib_reads_are_reviewed
# until it is added here with its reason.
STDLIB_READS = {
    "collections": "Counter / defaultdict: insertion-ordered (3.7+), most_common ties in insertion order",
    "copy": "deepcopy of a module: no output of its own",
    "dataclasses": "dataclasses.replace on a frozen TrainConfig: builds a config, prints nothing of its own",
    "importlib": "the setup cell's find_spec: no output",
    "io": "StringIO for doctor's report, whose cell's output is not compared (NBVAL_IGNORE_OUTPUT)",
    "math": "log, exp, sqrt, pi on floats: the C library's, not the Python version's",
    "os": "os.environ set (HF_HUB_OFFLINE): no output",
    "pathlib": "Path joins for a temporary run folder: paths are not printed",
    "random": "random.Random(seed) draws (Mersenne Twister): the same sequence on 3.10-3.12",
    "re": "ASCII patterns on ASCII text",
    "subprocess": "the setup cell's pip install, run only where lmcourse is missing: no output",
    "shutil": "copytree / rmtree of a temporary run folder: no output",
    "sys": "sys.executable, masked in stored output",
    "tempfile": "mkdtemp for a run folder, whose name is never printed",
    "time": "perf_counter for timings, printed only in cells whose output is not compared (NBVAL_IGNORE_OUTPUT)",
    "unicodedata": "NFC / NFKC of long-assigned characters (Latin, CJK compatibility, ligatures), stable since Unicode 3.2",
    # ch09 (part 09 adds modules its notebooks read below this line; keep one entry per module)
    # ch10 (part 10 adds below this line)
    "string": "string.punctuation: the ASCII punctuation characters, a constant on every Python",
    # ch11 (part 11 adds below this line)
    # ch12 (part 12 adds below this line)
    "statistics": "mean / variance of exposures: exact rational arithmetic on the floats, the same result on 3.10-3.12",
    # ch13 (part 13 adds below this line)
}
# What does vary with the Python version: never in a cell whose output is compared.
VARIES = ("pydoc_data", "platform.", "sysconfig", "sys.version", "keyword.", "sys.getsizeof", "unidata_version",
          "hash(", "doctor(", "installed_pydoc_prose", "__doc__", "help(", "inspect.getsource")


def _checked_code_cells():
    import nbformat

    for folder in ("chapters", "solutions"):
        for path in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb")):
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type == "code":
                    ignored = re.match(r"\s*#\s*NBVAL_(IGNORE_OUTPUT|SKIP)", cell.source) or {
                        "nbval-ignore-output", "nbval-skip"} & set(cell.metadata.get("tags", []))
                    yield path, cell, bool(ignored)


def test_stdlib_reads_are_reviewed():
    import sys

    imported: dict[str, set[str]] = {}
    for path, cell, _ in _checked_code_cells():
        for m in re.finditer(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w., ]+))", cell.source, re.M):
            names = [m.group(1)] if m.group(1) else [n.strip().split(" as ")[0] for n in m.group(2).split(",")]
            for top in {n.split(".")[0] for n in names} & set(sys.stdlib_module_names):
                imported.setdefault(top, set()).add(path.name)
    unreviewed = {m: sorted(p) for m, p in imported.items() if m not in STDLIB_READS}
    assert not unreviewed, f"standard-library modules read by notebooks, not in STDLIB_READS: {unreviewed}"
    assert {"random", "unicodedata", "math"} <= set(imported)  # the list is what the notebooks really read


def test_no_compared_output_reads_what_varies_with_the_python_version():
    offenders = [(p.name, needle) for p, cell, ignored in _checked_code_cells() if not ignored
                 for needle in VARIES if needle in cell.source]
    assert not offenders, offenders
    assert any("doctor(" in c.source for _, c, ignored in _checked_code_cells() if ignored)  # the rule sees them
