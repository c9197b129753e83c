"""Downloadable texts, pinned by size and sha256 and cached (never at import, never in a chapter by default).

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic


@dataclass(frozen=True)
class Remote:
    """A downloadable text pinned by size and sha256."""

    url: str
    filename: str
    sha256: str
    size: int


REMOTES = {
    "tinyshakespeare": Remote(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        filename="tinyshakespeare.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
    ),
}
DATA_ENV = "LMCOURSE_DATA"


class DownloadError(RuntimeError):
    """A download failed, or what arrived does not match the pinned checksum.

    The message names the URL and the cache path where the file can be placed by hand.
    """


def cache_dir() -> Path:
    """Where downloads are cached: $LMCOURSE_DATA, else the platform's user cache dir + /lmcourse.

    Linux: $XDG_CACHE_HOME or ~/.cache; macOS: ~/Library/Caches; Windows: %LOCALAPPDATA%.
    Derived in chapters/01_language_models.ipynb.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lmcourse"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(name: str, url: str | None = None, timeout: float = 30.0) -> Path:
    """Return the cached path of remote text `name`, downloading it first if needed.

    The URL is `url`, else $LMCOURSE_<NAME>_URL, else the canonical one. The bytes must
    match the pinned size and sha256, else DownloadError and nothing is cached; the file is
    written to a temporary file in the cache dir and moved into place with os.replace, so a
    crash never leaves a half-written file. Derived in chapters/01_language_models.ipynb.
    """
    if name not in REMOTES:
        raise ValueError(f"unknown remote text {name!r}; known: {sorted(REMOTES)}")
    r = REMOTES[name]
    folder = cache_dir()
    path = folder / r.filename
    stale = ""
    if path.exists():
        data = path.read_bytes()
        if len(data) == r.size and _sha256(data) == r.sha256:
            return path
        stale = f" The file now at {path} does not match the pinned sha256 {r.sha256} (a partial or edited copy?)."
    url = url or os.environ.get(f"LMCOURSE_{name.upper()}_URL") or r.url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DownloadError(
            f"could not download {name!r} from {url} ({e}). If you are offline, download the file "
            f"elsewhere and place it by hand at {path} (or set {DATA_ENV} to a folder that holds {r.filename})."
            + stale
        ) from e
    digest = _sha256(data)
    if len(data) != r.size or digest != r.sha256:
        raise DownloadError(
            f"checksum mismatch for {name!r} from {url}: got {len(data)} bytes with sha256 {digest}, "
            f"expected {r.size} bytes with sha256 {r.sha256}; nothing was cached."
        )
    write_atomic(path, data)
    return path
