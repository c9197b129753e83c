"""Data for the course, offline by default. One module per source:

- `stories`: `story_corpus(n_chars, seed)`, a procedural corpus of simple English stories
  about characters, places, objects, feelings and events, the same text on every platform
  for the same seed; `generate_stories` with summaries, questions and facts.
- `story_tasks`: labelled task sets drawn from the same world, each with fixed
  train/val/test splits: `sentiment_set`, `qa_set`, `summary_set`.
- `translation`: `translation_set`, English -> simple Mandarin from a bilingual lexicon.
- `written_reviews`: `reviews(split)`, real-sounding product and film reviews written for
  this course, kept as JSON Lines data files beside the module.
- `python_docs`: `pydoc_prose()`, real English prose from `pydoc_data.topics`, which ships
  with CPython.
- `downloads`: "tinyshakespeare", downloaded once, checked against a pinned size and sha256,
  cached; offline it says where to put the file by hand. `cached_path(name)` says whether a
  verified copy is already there, without downloading.

`load_text(name)` gives a whole text by name: "stories", "pydoc", or "tinyshakespeare".
Every name is importable from `lmcourse.data` itself.

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

from .downloads import DATA_ENV, REMOTES, DownloadError, Remote, cache_dir, cached_path, download
from .python_docs import pydoc_prose
from .splits import SPLITS
from .stories import (
    BAKED,
    BOYS,
    COLOURS,
    FAMILY,
    FEARS,
    FOODS,
    GAMES,
    GIRLS,
    HAPPY,
    HOMES,
    KINDS,
    MORALS,
    OBJECTS,
    PLACES,
    PLOTS,
    SAD,
    SAID,
    SEEDS,
    SKIES,
    SMELLS,
    SOUNDS,
    TIMES,
    TRAITS,
    WEATHER,
    Story,
    corpus_stats,
    generate_stories,
    make_story,
    story_corpus,
    words,
)
from .story_tasks import qa_set, sentiment_set, summary_set
from .translation import translation_set
from .written_reviews import reviews

__all__ = [
    "BAKED", "BOYS", "COLOURS", "DATA_ENV", "FAMILY", "FEARS", "FOODS", "GAMES", "GIRLS", "HAPPY", "HOMES",
    "KINDS", "MORALS", "OBJECTS", "PLACES", "PLOTS", "REMOTES", "SAD", "SAID", "SEEDS", "SKIES", "SMELLS",
    "SOUNDS", "SPLITS", "TIMES", "TRAITS", "WEATHER", "DownloadError", "Remote", "Story", "cache_dir", "cached_path",
    "corpus_stats", "download", "generate_stories", "load_text", "make_story", "pydoc_prose", "qa_set",
    "reviews", "sentiment_set", "story_corpus", "summary_set", "translation_set", "words",
]


def load_text(name: str, url: str | None = None) -> str:
    """A named text: "stories" (1 MB story corpus, seed 0), "pydoc" (Python docs prose), or
    "tinyshakespeare" (downloaded once and cached, see `download`).

    Derived in chapters/01_language_models.ipynb.
    """
    if name == "stories":
        return story_corpus()
    if name == "pydoc":
        return pydoc_prose()
    if name in REMOTES:
        return download(name, url=url).read_text(encoding="utf-8")
    raise ValueError(f"unknown text {name!r}; choose 'stories', 'pydoc' or one of {sorted(REMOTES)}")
