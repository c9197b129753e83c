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
    for name in ("python", "torch", "numpy", "matplotlib", "ipywidgets", "jupyterlab", "device", "threads", "widgets", "extra dev", "extra hf"):
        assert name in text, name
    assert torch.__version__ in text


def test_doctor_fails_with_a_fix_when_something_required_is_missing(monkeypatch):
    real = environment._version
    monkeypatch.setattr(environment, "_version", lambda d: None if d == "matplotlib" else real(d))
    out = io.StringIO()
    assert environment.doctor(file=out) is False
    text = out.getvalue()
    assert "matplotlib  MISSING" in text and "fix: run `make lab`" in text
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
