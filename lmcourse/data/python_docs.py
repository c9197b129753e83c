"""Real English prose: Python's own reference manual (`pydoc_data.topics`), shipped with CPython.

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import re
from functools import lru_cache

# a reST section underline
_UNDERLINE = re.compile(r"^[*=\-^~#+]{3,}$")


@lru_cache(maxsize=1)
def pydoc_prose() -> str:
    """English prose from the Python reference manual (`pydoc_data.topics`), cleaned.

    Topics in sorted order; section underlines, indented code and grammar blocks and
    single-line headings are dropped, each paragraph is re-flowed onto one line, and
    paragraphs are separated by blank lines. About 0.3 MB; the exact text depends on the
    Python version. Derived in chapters/01_language_models.ipynb.
    """
    from pydoc_data.topics import topics

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
