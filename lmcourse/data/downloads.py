"""Downloadable texts: an optional extra, never fetched at import or by a chapter by default.

Each text is pinned by size and sha256 and cached under `cache_dir()` ($LMCOURSE_DATA, else
the platform's cache folder). `download` trusts nothing the server does: it reads at most
the pinned size plus one byte, gives up after a deadline, and words every failure as a
`DownloadError` that names the URL and where the file can be placed by hand.

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import threading
import time
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
    """A download failed, what arrived does not match the pin, or the cache cannot be written.

    The message names the URL and the cache path where the file can be placed by hand, or
    the cache folder and $LMCOURSE_DATA.
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


def _remote(name: str) -> Remote:
    if name not in REMOTES:
        raise ValueError(f"unknown remote text {name!r}; known: {sorted(REMOTES)}")
    return REMOTES[name]


def cached_path(name: str) -> Path | None:
    """The cached copy of remote text `name` if it is there and holds the pinned bytes, else None.

    Never downloads; a file of the wrong size is not even read. Derived in chapters/01_language_models.ipynb.
    """
    r = _remote(name)
    path = cache_dir() / r.filename
    try:
        if path.is_file() and path.stat().st_size == r.size and _sha256(path.read_bytes()) == r.sha256:
            return path
    except OSError:
        pass
    return None


def _fetch(url: str, size: int, timeout: float, deadline: float) -> bytes:
    """The body at `url`, read in chunks and never more than `size` + 1 bytes.

    DownloadError when the server announces or sends more than `size` bytes, closes the
    connection before the end it announced, or the whole transfer outlasts `deadline` seconds.
    Network failures propagate (URLError, OSError, http.client.HTTPException) for the caller to word.
    """
    end = time.monotonic() + deadline
    with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as resp:
        announced = resp.headers.get("Content-Length")
        announced = int(announced) if announced and announced.strip().isdigit() else None
        if announced is not None and announced > size:
            raise DownloadError(
                f"{url} announces {announced} bytes, more than the pinned {size} bytes; nothing was read."
            )
        chunks: list[bytes] = []
        got = 0
        while got <= size:
            chunk = resp.read1(min(1 << 16, size + 1 - got))  # returns as soon as any bytes arrive
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            if got < size and time.monotonic() > end:
                raise DownloadError(
                    f"the download from {url} did not finish within the {deadline:g} s deadline "
                    f"({got} of {size} bytes arrived); pass a larger `deadline` on a slow connection."
                )
    if got > size:
        raise DownloadError(
            f"{url} sent more than the pinned {size} bytes, so it is not the pinned file; stopped reading."
        )
    if announced is not None and got < announced:
        raise DownloadError(f"the connection to {url} closed after {got} of {announced} bytes.")
    return b"".join(chunks)


def _fetch_by(url: str, size: int, timeout: float, deadline: float) -> bytes:
    """`_fetch` with a hard deadline: it runs in a worker thread, and past `deadline` seconds
    DownloadError, even while the server is still trickling its headers. The abandoned worker
    holds at most `size` + 1 bytes and ends with the connection."""
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["data"] = _fetch(url, size, timeout, deadline)
        except BaseException as e:  # handed to the caller below
            outcome["error"] = e

    worker = threading.Thread(target=work, name=f"lmcourse download {url}", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        raise DownloadError(
            f"the download from {url} did not finish within the {deadline:g} s deadline; "
            f"pass a larger `deadline` on a slow connection."
        )
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["data"]  # type: ignore[return-value]


def _unwritable(folder: Path, e: OSError, filename: str = "") -> DownloadError:
    what = f"{filename} " if filename else ""
    return DownloadError(
        f"cannot write {what}to the cache folder {folder} ({e.strerror or type(e).__name__}). "
        f"Set {DATA_ENV} to a folder you can write to."
    )


def download(name: str, url: str | None = None, timeout: float = 30.0, deadline: float = 300.0) -> Path:
    """Return the cached path of remote text `name`, downloading it first if needed.

    The URL is `url`, else $LMCOURSE_<NAME>_URL, else the canonical one. The bytes must
    match the pinned size and sha256, else DownloadError and nothing is cached. The body is
    read in chunks and never past the pinned size plus one byte; each network operation may
    wait `timeout` seconds and the whole download, headers included, `deadline` seconds, so
    neither an endless nor a trickling server can hold on. The cache folder is
    created before anything is fetched, and the file is written to a temporary file in it and
    moved into place with os.replace, so a crash never leaves a half-written file.
    Derived in chapters/01_language_models.ipynb.
    """
    r = _remote(name)
    for arg, value in (("timeout", timeout), ("deadline", deadline)):
        if not value > 0:  # also rejects NaN
            raise ValueError(f"{arg} must be a positive number of seconds, got {value!r}")
    folder = cache_dir()
    path = folder / r.filename
    if cached_path(name) is not None:
        return path
    stale = ""
    if path.exists():
        stale = f" The file now at {path} does not match the pinned sha256 {r.sha256} (a partial or edited copy?)."
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(folder, e) from e
    url = url or os.environ.get(f"LMCOURSE_{name.upper()}_URL") or r.url
    hint = (
        f" To work offline, download the file elsewhere and place it by hand at {path} "
        f"(or set {DATA_ENV} to a folder that holds {r.filename})." + stale
    )
    try:
        data = _fetch_by(url, r.size, timeout, deadline)
    except DownloadError as e:
        raise DownloadError(f"could not download {name!r}: {e}{hint}") from e
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        raise DownloadError(f"could not download {name!r} from {url} ({e}).{hint}") from e
    digest = _sha256(data)
    if len(data) != r.size or digest != r.sha256:
        raise DownloadError(
            f"checksum mismatch for {name!r} from {url}: got {len(data)} bytes with sha256 {digest}, "
            f"expected {r.size} bytes with sha256 {r.sha256}; nothing was cached."
        )
    try:
        write_atomic(path, data)
    except OSError as e:
        raise _unwritable(folder, e, r.filename) from e
    return path
