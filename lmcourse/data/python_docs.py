"""Real English prose: Python's own reference manual (`pydoc_data.topics`), as a pinned snapshot.

`pydoc_data.topics` ships with CPython, but its text changes from one Python release to the
next, so statistics printed from it (chapter 01) would differ under each Python. The course
therefore reads a snapshot, `pydoc_prose.txt` beside this module, cleaned by `clean_topics`
from CPython 3.11.7's topics: the same text under every Python. Its SHA-256 is pinned here.
The text is the Python documentation's, under the PSF License Version 2 (LICENSES/PSF-2.0.txt
in the repository says what was changed).

To regenerate it, `write_snapshot("lmcourse/data/pydoc_prose.txt")` under the Python you want,
then update SNAPSHOT_PYTHON and SNAPSHOT_SHA256 and re-run chapter 01.

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources

SNAPSHOT = "pydoc_prose.txt"
SNAPSHOT_PYTHON = "3.11.7"  # the CPython whose pydoc_data.topics the snapshot was cleaned from
SNAPSHOT_SHA256 = "970bd77a6cea1785d9bbe4f046efdcccef9fd3850281fe9595860b19ab29fc59"

# a reST section underline
_UNDERLINE = re.compile(r"^[*=\-^~#+]{3,}$")


def clean_topics(topics: dict[str, str]) -> str:
    """English prose from a `pydoc_data.topics`-style mapping (topic name -> reST-ish text).

    Topics in sorted order; section underlines, indented code and grammar blocks and
    single-line headings are dropped, each paragraph is re-flowed onto one line, duplicates
    and paragraphs that are mostly symbols are dropped, and paragraphs are separated by
    blank lines.
    """
    paragraphs: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics):
        para: list[str] = []
        indent = 0

        def flush() -> None:
            p = re.sub(r"\s+", " ", re.sub(r"^[*-] ", "", " ".join(para)))  # bullet marks go
            para.clear()
            if p in seen or len(p.split()) < 6 or not p.endswith((".", ":", ")")):
                return
            if ">>>" in p or "::=" in p or "..." in p:
                return
            letters = sum(ch.isalpha() or ch in " ,.;:'\"()-" for ch in p)
            if letters / len(p) < 0.9:
                return  # code, tables, grammar
            seen.add(p)
            paragraphs.append(p)

        for line in topics[key].split("\n"):
            stripped = line.strip()
            ind = len(line) - len(line.lstrip())
            if not stripped or _UNDERLINE.match(stripped) or (para and ind != indent and not stripped[:1].islower()):
                flush()
            if not stripped or _UNDERLINE.match(stripped):
                continue
            if not para:
                indent = ind
            para.append(stripped)
        flush()
    return "\n\n".join(paragraphs)


@lru_cache(maxsize=1)
def pydoc_prose() -> str:
    """English prose from the Python reference manual: the pinned snapshot (about 0.26 MB).

    The same text under every Python version (cleaned by `clean_topics` from CPython
    SNAPSHOT_PYTHON's `pydoc_data.topics`). A snapshot whose SHA-256 is not the pinned one (an
    edited or damaged installation) is a ValueError. Derived in chapters/01_language_models.ipynb.
    """
    raw = resources.files(__package__).joinpath(SNAPSHOT).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SNAPSHOT_SHA256:
        raise ValueError(
            f"lmcourse/data/{SNAPSHOT} has SHA-256 {digest}, expected {SNAPSHOT_SHA256}: the installed copy "
            "was changed or damaged; reinstall lmcourse"
        )
    return raw.decode("utf-8")


def installed_pydoc_prose() -> str:
    """The same cleaning applied to this Python's own `pydoc_data.topics` (varies by version)."""
    from pydoc_data.topics import topics

    return clean_topics(topics)


def write_snapshot(path) -> str:
    """Write `installed_pydoc_prose()` to `path` (atomically); return its SHA-256 for SNAPSHOT_SHA256."""
    from ..atomic import write_atomic

    text = installed_pydoc_prose()
    write_atomic(path, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
