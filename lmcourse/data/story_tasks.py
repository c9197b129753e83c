"""Labelled task sets drawn from the story world, each with fixed train/val/test splits.

`qa_set` (questions with short answers) and `summary_set` (one-line summaries) come from the
same 1,500 seeded stories, split by story; `sentiment_set` is 3,000 one-sentence judgements.

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

from functools import lru_cache
from random import Random

from .splits import _check_split, _split
from .stories import FOODS, HAPPY, OBJECTS, PLACES, SAD, Story, _cap, _make_char, _was, generate_stories


@lru_cache(maxsize=1)
def _task_stories() -> tuple[Story, ...]:
    return tuple(generate_stories(1500, seed=20240601))


def qa_set(split: str = "train") -> list[dict[str, str]]:
    """Questions about a story with short answers: dicts with "story", "question", "answer".

    1,500 stories (seeded), split 80/10/10 by story, so no test story is seen in training;
    every question of a story is one item. Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    stories = _split(list(_task_stories()))[split]
    return [{"story": s.text, "question": q, "answer": a} for s in stories for q, a in s.qa]


def summary_set(split: str = "train") -> list[tuple[str, str]]:
    """(story, one-line summary) pairs; the same 1,500 stories and story split as `qa_set`.

    Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    return [(s.text, s.summary) for s in _split(list(_task_stories()))[split]]


_POS_SENT = (
    "{N} loved the {food} at {place}.", "{N} had a wonderful day at {place}.",
    "The {food} {was} warm and delicious.", "{N} laughed and danced all the way home.",
    "What a lovely {obj}! {N} smiled.", "{N} felt {pos} when {M} came to visit.",
    "It was the best {event} ever.", "The sun was shining and {place} looked beautiful.",
    "{N} was so {pos} with {his} new {obj}.", "Everyone enjoyed the {event} very much.",
    "{N} thanked {M} for the kind gift.", "The {food} at the {event} {was} not bad at all.",
    "{N} could not stop smiling.", "{N} did not feel lonely any more.",
    "The {obj} was perfect, and {N} loved it.", "{M} gave {N} a big hug, and {N} felt {pos}.",
    "{N} won the race and felt {pos}.", "The walk through {place} was peaceful and fun.",
)
_NEG_SENT = (
    "{N} hated the {food} at {place}.", "{N} had a terrible day at {place}.",
    "The {food} {was} cold and tasted awful.", "{N} cried all the way home.",
    "What an ugly {obj}! {N} frowned.", "{N} felt {neg} when {M} broke {his} {obj}.",
    "It was the worst {event} ever.", "The rain was cold and {place} looked gloomy.",
    "{N} was so {neg} about {his} broken {obj}.", "Nobody enjoyed the {event} at all.",
    "{M} was rude to {N}, and {N} felt {neg}.", "The {food} at the {event} {was} not good at all.",
    "{N} could not stop crying.", "{N} did not have any fun.",
    "The {obj} was broken, and {N} was {neg}.", "{M} shouted at {N}, and {N} felt {neg}.",
    "{N} lost the race and felt {neg}.", "The walk through {place} was muddy and boring.",
)
_EVENTS = ("party", "picnic", "trip", "game", "holiday", "birthday", "show", "fair")


def _sentiment_pairs() -> list[tuple[str, int]]:
    rng = Random(777)
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    target = 1500  # per class
    counts = [0, 0]
    while min(counts) < target:
        label = 1 if counts[1] < counts[0] or (counts[1] == counts[0] and rng.random() < 0.5) else 0
        if counts[label] >= target:
            label = 1 - label
        a, b = _make_char(rng), _make_char(rng)
        while b.name == a.name:
            b = _make_char(rng)
        tmpl = rng.choice(_POS_SENT if label else _NEG_SENT)
        food = rng.choice(FOODS)
        s = tmpl.format(N=a.name, M=b.name, his=a.his, food=food, was=_was(food), place=rng.choice(PLACES)[0],
                        obj=rng.choice(OBJECTS), pos=rng.choice(HAPPY + ("proud", "excited")),
                        neg=rng.choice(SAD + ("angry", "lonely")), event=rng.choice(_EVENTS))
        s = _cap(s)
        if s in seen:
            continue
        seen.add(s)
        out.append((s, label))
        counts[label] += 1
    return out


@lru_cache(maxsize=1)
def _sentiment_splits() -> dict[str, list]:
    return _split(_sentiment_pairs())


def sentiment_set(split: str = "train") -> list[tuple[str, int]]:
    """(sentence, label) pairs from the story world, label 1 = positive, 0 = negative.

    3,000 distinct sentences, balanced, split 80/10/10; includes negations such as
    "not bad at all" (positive). Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    return list(_sentiment_splits()[split])
