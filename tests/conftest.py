"""Shared test fixtures. Tests are hermetic: tmp_path for files, no network, no wall clock."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

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


@pytest.fixture
def update_snapshots(request) -> bool:
    return request.config.getoption("--update-snapshots")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shakespeare_path() -> Path:
    """../shared/data/tinyshakespeare.txt, which CI lays beside the clone; skip where it is absent."""
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} is absent (CI provides it at ../shared/data)")
    return SHAKESPEARE
