"""Shared test fixtures. Tests are hermetic: tmp_path for files, no network, no wall clock."""
from __future__ import annotations

import os
from pathlib import Path

# No test may reach the Hugging Face Hub: set before any test module imports transformers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest
from hypothesis import settings

from lmcourse.data import cache_dir, cached_path

# Property tests are derandomized (the same examples every run, no example database) so that
# `make test` is deterministic; `--hypothesis-profile=explore` searches afresh.
settings.register_profile("lmcourse", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile("lmcourse")

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def pytest_addoption(parser):
    parser.addoption(
        "--update-snapshots",
        action="store_true",
        default=False,
        help="rewrite the .npz snapshots under tests/snapshots instead of comparing with them",
    )


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one intra-op thread: its models are tiny, a second thread buys nothing, and
    on a shared, loaded machine two spinning threads make a training step ~100x slower. Modules opt in with
    `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def update_snapshots(request) -> bool:
    return request.config.getoption("--update-snapshots")


def load_benchmark(name: str):
    """benchmarks/<name>.py imported as the module `name` (benchmarks/ is scripts, not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def find_shakespeare(shared: Path = SHAKESPEARE) -> Path | None:
    """Tiny Shakespeare for the tests that need it: `shared` (CI lays it beside the clone), else
    the copy `load_text("tinyshakespeare")` downloaded into the cache, if it holds the pinned bytes."""
    if shared.exists():
        return shared
    return cached_path("tinyshakespeare")


@pytest.fixture(scope="session")
def shakespeare_path() -> Path:
    """The Tiny Shakespeare file (see `find_shakespeare`); skip where there is none.

    Session-scoped, so it looks at the download cache before any test points LMCOURSE_DATA elsewhere.
    """
    path = find_shakespeare()
    if path is None:
        pytest.skip(
            f"Tiny Shakespeare is absent: neither {SHAKESPEARE} (CI provides it) nor a verified copy in the "
            f"download cache {cache_dir()} (online, `lmcourse.data.load_text('tinyshakespeare')` puts one there)"
        )
    return path
