"""Product and film reviews written for this course (not scraped, no real people).

The texts live beside this module as data files (JSON Lines, UTF-8, one record a line):

- `reviews.jsonl`: 40 reviews written whole, with the hard cases (negation, sarcasm,
  contrast): `{"label": 1, "text": "Not bad at all! ..."}`, label 1 = positive, 0 = negative.
- `review_sentences.jsonl`: sentences from which more reviews are composed, each tagged with
  its `domain` ("product" or "film"), its `part` of a review ("open", "aspect", "aside",
  "close"; films also "title" and "genre"), the `label` of the review it belongs in, and for
  product aspects the product `category`. An "aside" is a small complaint inside a positive
  review or a small compliment inside a negative one.

A review is an opening, one to three aspects, sometimes an aside, usually a closing line.
The file order of each group is part of the seeded output: append, don't reorder.
Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from random import Random

from .splits import SPLITS, _check_split, _split


def _jsonl(name: str) -> list[dict]:
    """The records of data file `name` shipped in this package; a bad line is a ValueError naming it."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{name}, line {i}: not valid JSON ({e})") from e
    return records


@lru_cache(maxsize=1)
def _whole_reviews() -> tuple[tuple[str, int], ...]:
    return tuple((r["text"], r["label"]) for r in _jsonl("reviews.jsonl"))


@lru_cache(maxsize=1)
def _sentences() -> dict[tuple, tuple[str, ...]]:
    """Sentence groups keyed by (domain, part, label, category), each in file order."""
    groups: dict[tuple, list[str]] = {}
    for r in _jsonl("review_sentences.jsonl"):
        groups.setdefault((r["domain"], r["part"], r.get("label"), r.get("category")), []).append(r["text"])
    return {key: tuple(texts) for key, texts in groups.items()}


def _part(domain: str, part: str, label: int | None = None, category: str | None = None) -> tuple[str, ...]:
    return _sentences()[(domain, part, label, category)]


def _product_categories() -> list[str]:
    return sorted({category for (domain, part, _, category) in _sentences() if domain == "product" and part == "aspect"})


def _compose_review(rng: Random, label: int) -> str:
    if rng.random() < 0.55:  # product
        cat = rng.choice(_product_categories())
        opener = rng.choice(_part("product", "open", label))
        if "{cat}" in opener and not cat.endswith("s"):
            opener = opener.replace("these {cat}", "this {cat}")
        parts = [opener.format(cat=cat)]
        parts += rng.sample(_part("product", "aspect", label, cat), rng.choice((1, 2, 2, 3)))
        if rng.random() < 0.35:
            parts.append(rng.choice(_part("product", "aside", label)))
        if rng.random() < 0.8:
            parts.append(rng.choice(_part("product", "close", label)))
    else:
        title, genre = rng.choice(_part("film", "title")), rng.choice(_part("film", "genre"))
        parts = [rng.choice(_part("film", "open", label)).format(title=title, genre=genre)]
        parts += rng.sample(_part("film", "aspect", label), rng.choice((1, 2, 2, 3)))
        if rng.random() < 0.35:
            parts.append(rng.choice(_part("film", "aside", label)))
        if rng.random() < 0.7:
            parts.append(rng.choice(_part("film", "close", label)))
    return " ".join(parts)


@lru_cache(maxsize=1)
def _review_splits() -> dict[str, list]:
    rng = Random(909)
    by_label: dict[int, list[str]] = {0: [], 1: []}
    seen: set[str] = set()
    for text, label in _whole_reviews():
        by_label[label].append(text)
        seen.add(text)
    for label in (0, 1):
        while len(by_label[label]) < 200:
            r = _compose_review(rng, label)
            if r not in seen:
                seen.add(r)
                by_label[label].append(r)
    splits: dict[str, list] = {s: [] for s in SPLITS}
    for label in (0, 1):
        items = by_label[label][:]
        rng.shuffle(items)
        parts = _split(items, (0.7, 0.15))
        for s in SPLITS:
            splits[s] += [(t, label) for t in parts[s]]
    for s in SPLITS:
        rng.shuffle(splits[s])
    return splits


def reviews(split: str = "train") -> list[tuple[str, int]]:
    """(review, label) pairs, label 1 = positive, 0 = negative: 400 product and film reviews.

    Written for this course: 40 whole reviews with negation, contrast and sarcasm ("not bad
    at all", "five stars for the packaging, zero for what was inside") plus reviews composed
    from hand-written sentences about eight products and sixteen made-up films. Balanced,
    split 70/15/15 within each label (280/60/60). Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    return list(_review_splits()[split])
