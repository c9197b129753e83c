"""lmcourse: the reference library of the course on how large language models work.

The chapters in chapters/ derive each idea; this package keeps what later chapters reuse.
Topic modules are imported on demand (`from lmcourse import attention`), so importing
`lmcourse` itself stays fast.
"""
from __future__ import annotations

from .environment import device, doctor, seed_everything, setup

# The one place the version is written: pyproject.toml reads it, `lmcourse --version` prints it,
# and CHANGELOG.md has a section for it (tests/test_packaging.py checks all three).
__version__ = "0.1.0"
__all__ = ["device", "doctor", "seed_everything", "setup", "__version__"]
