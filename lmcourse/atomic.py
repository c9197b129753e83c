"""Atomic file writes: an interrupted save never destroys the previous file.

Everything the course writes (notebooks, tokenizer files, downloaded data, checkpoints) goes
through `write_atomic`: the bytes land in a temporary file in the same folder, which then
replaces the target in one `os.replace`, so a reader sees the old file or the new one, never half.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8 with "\\n" newlines, or bytes) to `path` atomically; return the path."""
    path = Path(path)
    if not isinstance(data, (str, bytes)):
        raise ValueError(f"write_atomic: data must be str or bytes, got {type(data).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if isinstance(data, str):
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(data)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
