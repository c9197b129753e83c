"""setup(), device(), doctor() and the `lmcourse doctor` command."""
from __future__ import annotations

import io
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

import lmcourse
from lmcourse import environment
from lmcourse.cli import main as cli


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_setup_seeds_python_numpy_and_torch():
    lmcourse.setup(seed=123)
    a = _draws()
    lmcourse.setup(seed=123)
    assert _draws() == a
    lmcourse.setup(seed=124)
    assert _draws() != a


def test_setup_returns_what_it_chose_and_pins_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        env = lmcourse.setup(seed=0, threads=1)
        assert env.threads == 1 == torch.get_num_threads()
        assert env.device == lmcourse.device() and env.seed == 0
        monkeypatch.setenv("LMCOURSE_NUM_THREADS", "2")
        assert lmcourse.setup().threads == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kwargs,needle", [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"threads": 0}, "threads")])
def test_setup_rejects_bad_values(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        lmcourse.setup(**kwargs)


def test_setup_rejects_bad_thread_env(monkeypatch):
    monkeypatch.setenv("LMCOURSE_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="LMCOURSE_NUM_THREADS"):
        lmcourse.setup()


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("LMCOURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert lmcourse.device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert lmcourse.device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert lmcourse.device().type == "cpu"


def test_doctor_reports_versions_device_threads_widgets_extras():
    out = io.StringIO()
    assert environment.doctor(file=out) is True
    text = out.getvalue()
    for name in ("python", "lmcourse", "torch", "numpy", "matplotlib", "ipywidgets", "regex", "device", "threads", "widgets",
                 "extra lab", "extra dev", "extra hf", "tested"):
        assert name in text, name
    assert torch.__version__ in text


def test_doctor_fails_with_a_fix_when_something_required_is_missing(monkeypatch):
    real = environment._version
    monkeypatch.setattr(environment, "_version", lambda d: None if d == "matplotlib" else real(d))
    out = io.StringIO()
    assert environment.doctor(file=out) is False
    text = out.getvalue()
    assert "matplotlib  MISSING" in text and "fix: in your checkout run `make setup`" in text  # this is an editable install
    assert cli(["doctor"]) == 1


def test_doctor_command_runs_as_a_console_script():
    proc = subprocess.run([sys.executable, "-m", "lmcourse.cli", "doctor"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "doctor: all required packages present" in proc.stdout


def test_device_override(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LMCOURSE_DEVICE", "cpu")
    assert lmcourse.device().type == "cpu"
    monkeypatch.setenv("LMCOURSE_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="LMCOURSE_DEVICE"):
        lmcourse.device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LMCOURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        lmcourse.device()


def test_doctor_reports_a_torch_that_is_installed_but_does_not_import(tmp_path):
    """A torch whose shared library is broken: doctor says BROKEN with a fix line, and does not crash."""
    import os
    from pathlib import Path

    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("libtorch_cpu.so: cannot open shared object file")\n')
    package_parent = Path(lmcourse.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(package_parent)])}
    proc = subprocess.run([sys.executable, "-m", "lmcourse.cli", "doctor"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    broken = [i for i, line in enumerate(lines) if line.startswith("torch ") and "BROKEN" in line]
    assert broken and "libtorch_cpu.so" in lines[broken[0]], proc.stdout
    assert "fix:" in lines[broken[0] + 1] and "torch" in lines[broken[0] + 1]
    assert "device      unknown (torch does not import)" in proc.stdout
    assert "doctor: something required is missing or broken" in proc.stdout


def test_doctor_gives_a_fix_when_jupyterlab_widgets_is_missing(monkeypatch):
    real = environment._version
    monkeypatch.setattr(environment, "_version", lambda d: None if d == "jupyterlab_widgets" else real(d))
    out = io.StringIO()
    environment.doctor(file=out)
    lines = out.getvalue().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("widgets"))
    assert "jupyterlab_widgets is missing, widgets will show as text" in lines[i]
    assert lines[i + 1].strip().startswith("fix:") and "jupyterlab_widgets" in lines[i + 1]


def test_doctor_reports_a_bad_device_setting_instead_of_crashing(monkeypatch):
    monkeypatch.setenv("LMCOURSE_DEVICE", "gpu0")
    out = io.StringIO()
    assert environment.doctor(file=out) is False
    text = out.getvalue()
    assert "device      BROKEN" in text and "LMCOURSE_DEVICE" in text and "fix:" in text


# ----------------------------------------------------------------------------- install kind, fixes


def _dist(tmp_path, direct_url: dict | None, files_here: bool = True):
    """A fake installed lmcourse distribution (a .dist-info folder) with this direct_url.json."""
    import importlib.metadata
    import json

    site = tmp_path / "site"
    info = site / "lmcourse-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmcourse\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    if files_here:  # the dist's files are the package being imported
        import os

        pkg = site / "lmcourse"
        pkg.mkdir()
        os.symlink(os.path.realpath(lmcourse.__file__), pkg / "__init__.py")
    return importlib.metadata.Distribution.at(info)


@pytest.mark.parametrize(
    "direct_url,kind,fix",
    [
        ({"url": "file:///home/me/lmcourse", "dir_info": {"editable": True}}, "checkout", "make setup"),
        ({"url": "https://github.com/me/fork", "vcs_info": {"vcs": "git", "requested_revision": "main", "commit_id": "ab" * 20}},
         "git", "`pip install 'lmcourse[lab] @ git+https://github.com/me/fork@main'`"),
        ({"url": "https://github.com/me/fork", "vcs_info": {"vcs": "git", "commit_id": "ab" * 20}},
         "git", f"`pip install 'lmcourse[lab] @ git+https://github.com/me/fork@{'ab' * 20}'`"),
        ({"url": "file:///tmp/dist/lmcourse-0.1.0-py3-none-any.whl", "archive_info": {}},
         "file", "`pip install 'lmcourse[lab] @ file:///tmp/dist/lmcourse-0.1.0-py3-none-any.whl'`"),
        (None, "index", "`pip install 'lmcourse[lab]'`"),
    ],
)
def test_install_kind_gives_the_fix_for_how_it_was_installed(tmp_path, direct_url, kind, fix):
    install = environment.install_kind(_dist(tmp_path, direct_url))
    assert install.kind == kind
    assert fix in install.fix(("lab",))
    if kind != "checkout":
        assert "make" not in install.fix(("lab",)) and "-e" not in install.fix(("lab",))
    assert "/home/me" not in install.describe() and "/tmp/dist" not in install.describe()  # no local paths in notebooks


def test_an_installed_wheel_shadowed_by_a_source_tree_is_a_checkout(tmp_path):
    """The wheel's metadata is there, but `import lmcourse` loads a source tree: its fix is the checkout's."""
    install = environment.install_kind(_dist(tmp_path, {"url": "file:///x.whl", "archive_info": {}}, files_here=False))
    assert install.kind == "checkout"


def test_doctor_gives_a_wheel_user_a_pip_fix_not_make(monkeypatch):
    monkeypatch.setattr(environment, "install_kind", lambda: environment.Install("index"))
    real = environment._version
    monkeypatch.setattr(environment, "_version", lambda d: None if d in ("numpy", "jupyterlab") else real(d))
    out = io.StringIO()
    assert environment.doctor(file=out) is False
    lines = out.getvalue().splitlines()
    i = lines.index("numpy       MISSING")
    assert lines[i + 1].strip() == "fix: `pip install 'lmcourse'`"
    j = next(j for j, line in enumerate(lines) if line.startswith("extra lab"))
    assert lines[j] == "extra lab   missing jupyterlab" and lines[j + 1].strip() == "fix: `pip install 'lmcourse[lab]'`"
    assert "make" not in out.getvalue() and "-e ." not in out.getvalue()
    assert "lmcourse    0.1.0 (from a package index)" in lines


def test_a_missing_extra_does_not_fail_doctor(monkeypatch):
    real = environment._version
    monkeypatch.setattr(environment, "_version", lambda d: None if d == "jupyterlab" else real(d))
    out = io.StringIO()
    assert environment.doctor(file=out) is True
    assert "extra lab   missing jupyterlab" in out.getvalue()


@pytest.mark.parametrize(
    "python,torch_version,system,flagged",
    [
        ("3.11.7", "2.13.0+cpu", "Linux", []),
        ("3.10.0", "2.13.0", "Linux", []),
        ("3.12.9", "2.13.0+cu121", "Linux", []),
        ("3.13.0", "2.13.0", "Linux", ["Python 3.13.0"]),
        ("3.9.18", "2.13.0", "Linux", ["Python 3.9.18"]),
        ("3.11.7", "2.14.1", "Linux", ["PyTorch 2.14.1"]),
        ("3.11.7", "2.13.1", "Linux", ["PyTorch 2.13.1"]),
        ("3.11.7", "2.13.0", "Darwin", ["Darwin"]),
        ("3.13.1", "2.5.0", "Windows", ["Python 3.13.1", "PyTorch 2.5.0", "Windows"]),
        ("3.11.7", None, "Linux", []),  # no torch: doctor already says MISSING
    ],
)
def test_untested_names_each_thing_outside_the_tested_combinations(python, torch_version, system, flagged):
    got = environment.untested(python, torch_version, system)
    assert len(got) == len(flagged)
    for phrase, want in zip(got, flagged):
        assert phrase.startswith(want + " (tested: ")


def test_doctor_warns_outside_the_tested_combinations_but_does_not_fail(monkeypatch):
    out = io.StringIO()
    assert environment.doctor(file=out) is True
    assert "tested      yes" in out.getvalue().splitlines()
    monkeypatch.setattr(environment.platform, "system", lambda: "Darwin")
    real = environment._version
    monkeypatch.setattr(environment, "_version", lambda d: "2.99.0" if d == "torch" else real(d))
    out = io.StringIO()
    assert environment.doctor(file=out) is True
    lines = out.getvalue().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("tested"))
    assert "PyTorch 2.99.0 (tested: 2.13.0)" in lines[i] and "Darwin (tested: Linux)" in lines[i]
    assert lines[i + 1].strip().startswith("warning:") and "Supported" in lines[i + 1]


def test_tested_torch_is_the_one_make_installs(root):
    import re

    pin = re.search(r"^TORCH\s*:?=\s*torch==(\S+)\s*$", (root / "Makefile").read_text(), re.M)
    assert pin and pin.group(1) == environment.TESTED_TORCH


# ----------------------------------------------------------------------------- Colab widgets


def test_setup_enables_colabs_widget_manager_only_on_colab(monkeypatch):
    import types

    calls = []
    assert environment.enable_colab_widgets() is False  # not Colab: google.colab does not import
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("on"))
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    lmcourse.setup(seed=0)
    assert calls == ["on"]


def test_setup_outside_colab_imports_nothing_from_google(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    lmcourse.setup(seed=0)
    assert "google.colab" not in sys.modules


# ----------------------------------------------------------------------------- --version


def test_version_command_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lmcourse {lmcourse.__version__}"
