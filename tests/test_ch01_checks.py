"""Chapter 01 checks: each wrong variant is caught, and the message shown is its own (not a neighbour's)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lmcourse.exercises import ch01
from lmcourse.ngram import NGramLM

EXERCISES = [ch01.ngram_counts, ch01.bigram_probs, ch01.sample_index, ch01.perplexity]


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.name)
def test_each_wrong_variant_gets_its_own_message(ex):
    for w in ex.wrong:
        r = ex.run(w.fn)
        assert r.status == "fail"
        assert w.message in r.matched
        assert len(r.matched) == 1, (w.fn.__name__, r.matched)


def test_references_agree_with_the_library():
    text = "the cat sat on the mat and the cat ran"
    lm = NGramLM(2, k=0.5).fit(text)
    vocab = lm.vocab
    counts = np.zeros((len(vocab), len(vocab)))
    for (a, b), c in ch01._ngram_counts(text, 2).items():
        counts[vocab.index(a), vocab.index(b)] = c
    P = ch01._bigram_probs(counts, k=0.5)
    assert np.abs(P - np.array([lm.distribution([a]) for a in vocab])).max() < 1e-12
    logps = [lm.logprob(text[i - 1], text[i]) for i in range(1, len(text))]
    assert ch01._perplexity(logps) == pytest.approx(lm.perplexity(text))


def test_sample_index_draws_in_proportion():
    rng = np.random.default_rng(0)
    w = [1, 0, 3]
    draws = [ch01._sample_index(w, float(u)) for u in rng.random(4000)]
    assert draws.count(1) == 0
    assert abs(draws.count(2) / 4000 - 0.75) < 0.03
    assert math.isclose(ch01._perplexity([math.log(0.25)] * 4), 4.0)
