"""The wheel user's path: build, metadata, licences, versions, and chapters run from an installed wheel.

The slow half builds the wheel and sdist with `python -m build` from a copy of this checkout,
installs the wheel with the Makefile's torch pin into a fresh venv, and runs chapter 00 and the
most asset-hungry chapter (chosen by a rule, `hungriest_chapter`) from a temporary folder that
holds only those notebooks, so that the source tree cannot be what they import. One venv per
session; the fast half reads pyproject.toml, the Makefile, the README and the notebooks.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

import lmcourse
from lmcourse import course
from lmcourse.notebooks import SETUP_CELL

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; CI's 3.11 runs these
requirements = pytest.importorskip("packaging.requirements")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NOTEBOOK_DIRS = ("chapters", "solutions", "exercises")
PROBE_ASSETS = ("lmcourse/_probe_assets/deep/weights.safetensors", "lmcourse/_probe_assets/tokenizer.json")


def _notebooks() -> list[Path]:
    return [p for d in NOTEBOOK_DIRS for p in sorted((ROOT / d).glob("[0-9][0-9]_*.ipynb"))]


def _requirements(extra: str | None = None) -> list:
    deps = PYPROJECT["project"]["dependencies"] if extra is None else PYPROJECT["project"]["optional-dependencies"][extra]
    return [requirements.Requirement(r) for r in deps]


# ----------------------------------------------------------------------------- versions, licences


def test_version_is_written_once_and_the_changelog_records_it():
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lmcourse.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", lmcourse.__version__)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(lmcourse.__version__)}\b", changelog, re.M), "CHANGELOG.md has no section for this version"


def test_licences_are_stated_in_files_pyproject_and_readme():
    expression = PYPROJECT["project"]["license"]
    assert set(re.split(r"\s+AND\s+", expression)) == {"MIT", "CC-BY-4.0", "PSF-2.0"}
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Attribution 4.0 International" in (ROOT / "LICENSES" / "CC-BY-4.0.txt").read_text(encoding="utf-8")
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in (ROOT / "LICENSES" / "PSF-2.0.txt").read_text(encoding="utf-8")
    for pattern in PYPROJECT["project"]["license-files"]:
        assert list(ROOT.glob(pattern)), pattern
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    licence = readme[readme.index("## Licence"):]
    for needle in ("MIT", "LICENSE", "CC BY 4.0", "LICENSES/CC-BY-4.0.txt", "PSF", "pydoc_prose.txt"):
        assert needle in licence, needle


def test_classifiers_name_the_tested_pythons():
    from lmcourse.environment import TESTED_PYTHONS

    named = {c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert named == set(TESTED_PYTHONS)


# ----------------------------------------------------------------------------- what a Colab install gets


def test_torch_requirement_is_a_lower_bound_only_so_colab_keeps_its_torch():
    (torch,) = [r for r in _requirements() if r.name == "torch"]
    assert {s.operator for s in torch.specifier} == {">="}
    for newer in ("2.13.0", "2.20.0", "3.0.0", "9.9.9"):
        assert torch.specifier.contains(newer), newer
    assert not torch.specifier.contains("1.13.1")


def test_jupyterlab_is_the_lab_extra_not_a_hard_dependency():
    assert "jupyterlab" not in {r.name for r in _requirements()}
    assert "jupyterlab" in {r.name for r in _requirements("lab")}
    assert "lab" in re.search(r"pip install -q -e '\.\[([a-z,]+)\]'", (ROOT / "Makefile").read_text()).group(1).split(",")


def test_colab_cell_installs_this_distribution_from_the_one_slug():
    spec = requirements.Requirement(course.pip_spec())
    assert spec.name == PYPROJECT["project"]["name"]
    assert spec.extras == set(course.CHAPTER_EXTRAS) and "lab" not in spec.extras  # no second Jupyter on Colab
    assert spec.url == f"git+https://github.com/{course.REPO_SLUG}@{course.BRANCH}"
    assert course.pip_spec() in SETUP_CELL


def test_the_readmes_fork_recipe_rewrites_exactly_the_setup_cells(tmp_path, monkeypatch):
    """README tells a fork to change REPO_SLUG and run one sed: afterwards every first cell is SETUP_CELL again."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"sed -i 's#([^#]+)#([^#]+)#g' chapters/\*\.ipynb solutions/\*\.ipynb", readme)
    assert m, "README's fork section must give the sed command for the setup cells"
    old, new = m.group(1), m.group(2)
    assert old == f"github.com/{course.REPO_SLUG}@{course.BRANCH}"
    fork = re.search(r"github\.com/([^@]+)@", new).group(1)
    monkeypatch.setattr(course, "REPO_SLUG", fork)
    want = SETUP_CELL.replace(f"github.com/{old.split('github.com/')[1]}", new)
    assert want != SETUP_CELL and course.pip_spec() in want  # the new cell installs the fork
    for path in [p for p in _notebooks() if p.parent.name != "exercises"]:
        text = path.read_text(encoding="utf-8").replace(old, new)  # what the sed does
        nb = nbformat.reads(text, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "code"]
        assert cells[0].source == want, path.name
        assert all(new not in c.source for c in nb.cells[1:] if c is not cells[0]), path.name


def _third_party_imports(source: str) -> tuple[set[str], set[str]]:
    """(required, optional) top-level modules a cell imports, standard library and lmcourse left out;
    optional ones sit in a `try:` whose handler catches ImportError."""
    import ast

    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    required: set[str] = set()
    optional: set[str] = set()

    def visit(node, guarded: bool) -> None:
        if isinstance(node, ast.Try):
            catches = {getattr(h.type, "id", None) for h in node.handlers} | {
                getattr(e, "id", None) for h in node.handlers if isinstance(h.type, ast.Tuple) for e in h.type.elts}
            inner = guarded or bool(catches & {"ImportError", "ModuleNotFoundError", "Exception"})
            for child in node.body:
                visit(child, inner)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, guarded)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else ([node.module] if node.module and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top != "lmcourse" and top not in sys.stdlib_module_names:
                    (optional if guarded else required).add(top)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(code), False)
    return required, optional


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_chapter_imports_are_covered_by_the_requirements_and_chapter_extras():
    """What a notebook imports comes from the core requirements or CHAPTER_EXTRAS (the Colab cell installs
    both); a Jupyter host brings IPython. Each chapter extra is needed by some notebook."""
    import importlib.metadata

    dists_of = {m: {_normal(d) for d in ds} for m, ds in importlib.metadata.packages_distributions().items()}
    core = {_normal(r.name) for r in _requirements()}
    extras = {e: {_normal(r.name) for r in _requirements(e)} for e in course.CHAPTER_EXTRAS}
    host = {"ipython", "ipykernel", "matplotlib-inline"}
    used: set[str] = set()
    for path in _notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            required, _ = _third_party_imports(cell.source)
            for module in required:
                provided_by = dists_of.get(module, {_normal(module)})
                assert provided_by & (core | host | set().union(*extras.values())), (
                    f"{path.relative_to(ROOT)} imports {module} ({', '.join(sorted(provided_by))}), which neither the core "
                    f"requirements nor CHAPTER_EXTRAS {course.CHAPTER_EXTRAS} provide; guard it or add its extra")
                used |= {e for e, names in extras.items() if provided_by & names and not provided_by & core}
    assert used == set(course.CHAPTER_EXTRAS), f"chapter extras no notebook needs: {set(course.CHAPTER_EXTRAS) - used}"


def test_import_scan_tells_required_from_guarded():
    src = "import numpy as np, os\nfrom torch import nn\ntry:\n    import tiktoken\nexcept ImportError:\n    tiktoken = None\n%matplotlib inline\nfrom lmcourse import data\n"
    assert _third_party_imports(src) == ({"numpy", "torch"}, {"tiktoken"})


def test_notebooks_kernel_is_the_one_make_registers():
    """Opening and saving a notebook in `make lab` must not rewrite its kernelspec."""
    m = re.search(r'ipykernel install .*--name (\S+) --display-name "([^"]+)"', (ROOT / "Makefile").read_text())
    assert m, "the Makefile must register the kernel with --name and --display-name"
    want = {"name": m.group(1), "display_name": m.group(2), "language": "python"}
    assert want["name"] == "python3" and want["display_name"] == "Python 3"
    notebooks = _notebooks()
    assert len(notebooks) >= 3
    for path in notebooks:
        assert dict(nbformat.read(path, as_version=4).metadata.get("kernelspec", {})) == want, path


def test_package_data_globs_cover_every_committed_asset():
    """Every non-Python file committed under lmcourse/ matches a package-data glob (the slow test checks the wheel)."""
    committed = _committed_assets()
    assert "lmcourse/data/reviews.jsonl" in committed and "lmcourse/data/pydoc_prose.txt" in committed
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["lmcourse"]
    package = ROOT / "lmcourse"
    declared = {f"lmcourse/{p.relative_to(package).as_posix()}" for pat in patterns for p in package.glob(pat)}
    assert committed <= declared, sorted(committed - declared)
    assert not any("assets/" in p for p in patterns)


def _committed_assets() -> set[str]:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "lmcourse"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    return {f for f in files if not f.endswith((".py", ".pyc")) and (ROOT / f).is_file()}


# ----------------------------------------------------------------------------- which chapters to run

_IMPORT = re.compile(r"^\s*(?:from\s+lmcourse(?:\.(\w+))?[\w.]*\s+import\s+([^\n#]+)|import\s+lmcourse\.(\w+))", re.M)


def lmcourse_modules(path: Path) -> set[str]:
    """The lmcourse modules a notebook's code cells import (`from lmcourse import data, widgets` -> both)."""
    found: set[str] = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for sub, names, direct in _IMPORT.findall(cell.source):
            if sub or direct:
                found.add(sub or direct)
            else:
                found |= {n.split(" as ")[0].strip() for n in names.strip("() ").split(",")} - {"", "setup", "doctor"}
    return found


def hungriest_chapter(chapters: list[Path]) -> Path:
    """The chapter that imports the most lmcourse modules (so reads the most of the package); ties: the later one."""
    return max(chapters, key=lambda p: (len(lmcourse_modules(p)), p.name))


def test_the_hungriest_chapter_rule():
    chapters = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    assert lmcourse_modules(ROOT / "chapters" / "02_tokenization.ipynb") >= {"data", "widgets", "text", "tokenizers", "sequences"}
    best = hungriest_chapter(chapters)
    assert all(len(lmcourse_modules(p)) <= len(lmcourse_modules(best)) for p in chapters)


# ----------------------------------------------------------------------------- the built wheel (slow)


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> dict[str, Path]:
    """`python -m build` on a copy of the checkout (what a commit would hold, plus two probe assets)."""
    pytest.importorskip("build")
    top = tmp_path_factory.mktemp("dist")
    src = top / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    for probe in PROBE_ASSETS:  # assets of a kind and depth no chapter ships yet: the globs must still catch them
        (src / probe).parent.mkdir(parents=True, exist_ok=True)
        (src / probe).write_bytes(b"probe")
    start = time.perf_counter()
    _run([sys.executable, "-m", "build", "--outdir", top / "out", src], env=_clean_env())
    print(f"\npython -m build: {time.perf_counter() - start:.1f} s")
    (wheel,) = (top / "out").glob("*.whl")
    (sdist,) = (top / "out").glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.mark.slow
def test_wheel_holds_every_asset_licence_and_the_right_metadata(dist):
    with zipfile.ZipFile(dist["wheel"]) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(info).decode("utf-8")
    assert dist["wheel"].name == f"lmcourse-{lmcourse.__version__}-py3-none-any.whl"
    missing = (_committed_assets() | set(PROBE_ASSETS)) - names
    assert not missing, f"assets not in the wheel: {sorted(missing)}"
    assert {"lmcourse/py.typed", "lmcourse/exercises/ch00.py", "lmcourse/data/pydoc_prose.txt"} <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "chapters/"))]
    dist_info = info.rsplit("/", 1)[0]
    assert {f"{dist_info}/licenses/LICENSE", f"{dist_info}/licenses/LICENSES/CC-BY-4.0.txt"} <= names
    assert "License-Expression: MIT AND CC-BY-4.0 AND PSF-2.0" in metadata
    requires = [requirements.Requirement(line.split(": ", 1)[1]) for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    (torch,) = [r for r in requires if r.name == "torch"]
    assert {s.operator for s in torch.specifier} == {">="} and not torch.marker
    (lab,) = [r for r in requires if r.name == "jupyterlab"]
    assert str(lab.marker) == 'extra == "lab"'
    print(f"\nwheel {dist['wheel'].name}: {dist['wheel'].stat().st_size / 1024:.0f} KiB, {len(names)} files")


@pytest.mark.slow
def test_sdist_is_the_whole_course(dist):
    import tarfile

    with tarfile.open(dist["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for nb in _notebooks():
        assert nb.relative_to(ROOT).as_posix() in names
    assert {"LICENSE", "LICENSES/CC-BY-4.0.txt", "pyproject.toml", "Makefile", "lmcourse/data/pydoc_prose.txt"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("installed,kept", [("2.99.0", True), ("2.13.0", True), ("2.1.0", False)])
def test_installing_the_wheel_keeps_a_newer_torch(dist, tmp_path, installed, kept):
    """`pip install --dry-run` of the wheel where a torch is already installed (Colab's case).

    The venv holds only dist-info records: torch at `installed` and the other requirements, so
    pip resolves offline (--no-index) against what is there. A torch >= the lower bound is
    kept (only lmcourse would be installed); one below it makes pip look for another torch.
    """
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    site = next(venv.glob("lib/python*/site-packages"))
    # what the Colab cell installs: the core requirements and the chapter extras, all "already there"
    fake = {r.name: "9999.0" for e in (None, *course.CHAPTER_EXTRAS) for r in _requirements(e)} | {"torch": installed}
    for name, version in fake.items():
        info = site / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"  # the folder name pip writes
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--dry-run",
                           "--no-index", "--report", report, "--quiet", _wheel_spec(dist["wheel"])],
                          capture_output=True, text=True, env=_no_pip_config())
    if kept:
        assert proc.returncode == 0, proc.stderr
        would = {i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
        assert would == {"lmcourse": lmcourse.__version__}
    else:
        assert proc.returncode != 0 and "torch>=" in proc.stderr


def _wheel_spec(wheel: Path) -> str:
    """The wheel with the extras chapters need: what the Colab cell installs, from a file instead of git."""
    extras = f"[{','.join(course.CHAPTER_EXTRAS)}]" if course.CHAPTER_EXTRAS else ""
    return f"lmcourse{extras} @ {wheel.resolve().as_uri()}"


def _no_pip_config() -> dict[str, str]:
    """An environment in which pip reads no configuration (no site constraints, find-links or index)."""
    env = {k: v for k, v in _clean_env().items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


@pytest.fixture(scope="session")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv: the Makefile's torch pin first (TORCH_INDEX honoured, as `make` does), then the
    wheel, and the two packages a notebook host provides to run notebooks (ipykernel, nbclient)."""
    pin = re.search(r"^TORCH\s*:?=\s*(torch==\S+)\s*$", (ROOT / "Makefile").read_text(), re.M).group(1)
    venv = tmp_path_factory.mktemp("wheel-user") / "venv"
    start = time.perf_counter()
    _run([sys.executable, "-m", "venv", venv])
    index = ["--index-url", os.environ["TORCH_INDEX"]] if os.environ.get("TORCH_INDEX") else []
    # --no-compile: byte-compiling torch's thousands of modules is most of an install's time
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", pin, *index], env=_clean_env())
    torch_s = time.perf_counter() - start
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", _wheel_spec(dist["wheel"]), "ipykernel", "nbclient"],
         env=_clean_env())
    print(f"\nfresh venv: {torch_s:.1f} s with {pin}, {time.perf_counter() - start:.1f} s with the wheel")
    return venv


@pytest.mark.slow
def test_chapters_run_against_the_installed_wheel(venv, tmp_path):
    chapters = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    chosen = sorted({chapters[0], hungriest_chapter(chapters)})
    course_dir = tmp_path / "course"
    (course_dir / "chapters").mkdir(parents=True)
    for path in chosen:  # only the notebooks, plus a last cell that says where lmcourse came from
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(
            "import json, sys, lmcourse\n"
            f"json.dump({{'file': lmcourse.__file__, 'prefix': sys.prefix, 'path': sys.path}}, open('probe-{path.stem}.json', 'w'))"))
        nbformat.write(nb, course_dir / "chapters" / path.name)
    env = _clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", JUPYTER_DATA_DIR=str(tmp_path / "jupyter"),
                     JUPYTER_PATH="", HOME=str(tmp_path), MPLBACKEND="agg")
    start = time.perf_counter()
    proc = subprocess.run([venv / "bin" / "lmcourse", "notebooks", "run", "--threads", "2",
                           *[f"chapters/{p.name}" for p in chosen]], cwd=course_dir, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    times = {m.group(1): float(m.group(2)) for m in re.finditer(r"run\s+chapters/(\S+) \.\.\.(?:.*?)\s([\d.]+) s ok", proc.stdout, re.S)}
    assert set(times) == {p.name for p in chosen}, proc.stdout
    print(f"\ninstalled wheel ran {', '.join(f'{k} {v:.1f} s' for k, v in times.items())} (wall {wall:.1f} s)")
    # Measured and printed, not asserted: time budgets live in benchmarks/ and the runner's timings, not in tests.
    site = Path(venv).resolve()
    for path in chosen:
        probe = json.loads((course_dir / "chapters" / f"probe-{path.stem}.json").read_text())
        assert Path(probe["file"]).resolve().is_relative_to(site), probe["file"]
        assert Path(probe["prefix"]).resolve() == site
        assert not any(p and Path(p).resolve() == ROOT for p in probe["path"])


def test_environment_yml_mirrors_pyproject():
    """The conda route installs what `make setup` does: every requirement of the package and its dev, hf and lab extras."""
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda_names = {"build": "python-build"}  # conda-forge's name for the same package
    listed = set()
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            listed.add(re.split(r"[<>=! ]", item, maxsplit=1)[0].lower())
    for extra in (None, "dev", "hf", "lab"):
        for req in _requirements(extra):
            assert conda_names.get(req.name, req.name).lower() in listed, (extra, req.name)
    pin = re.search(r"^TORCH\s*:?=\s*(torch==\S+)\s*$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert pin in [i for d in env["dependencies"] if isinstance(d, dict) for i in d["pip"]]


@pytest.mark.slow
def test_the_installed_wheels_doctor_and_version_speak_to_a_wheel_user(venv, dist, tmp_path):
    env = _clean_env(HOME=str(tmp_path))
    version = _run([venv / "bin" / "lmcourse", "--version"], cwd=tmp_path, env=env).stdout.strip()
    assert version == f"lmcourse {lmcourse.__version__}"
    proc = subprocess.run([venv / "bin" / "lmcourse", "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the lab extra is missing, which is not an error
    lines = proc.stdout.splitlines()
    assert f"lmcourse    {lmcourse.__version__} (from a local wheel, sdist or folder)" in lines
    i = lines.index("extra lab   missing jupyterlab")
    assert lines[i + 1].strip() == f"fix: `pip install 'lmcourse[lab] @ {dist['wheel'].resolve().as_uri()}'`"
    assert "make" not in proc.stdout and "-e ." not in proc.stdout
