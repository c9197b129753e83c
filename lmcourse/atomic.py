"""Atomic file writes: an interrupted save never destroys the previous file.

Everything the course writes (notebooks, tokenizer files, downloaded data, checkpoints) goes
through `write_atomic`: the bytes land in a temporary file in the same folder, which then
replaces the target in one `os.replace`, so a reader sees the old file or the new one, never half.
The new file gets the permissions the old one had; a file that did not exist gets what `open()`
would give it (0666 less the umask, so 0644 under the usual umask 022), not mkstemp's private 0600.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it and set it back
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The permission bits the written file should have: the existing file's, else 0666 & ~umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8 with "\\n" newlines, or bytes) to `path` atomically; return the path."""
    path = Path(path)
    if not isinstance(data, (str, bytes)):
        raise ValueError(f"write_atomic: data must be str or bytes, got {type(data).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, mode)
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
