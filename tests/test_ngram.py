"""lmcourse.ngram against an independent oracle: a dense NumPy count table built by indexing."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse.data import story_corpus, words
from lmcourse.ngram import NGramLM, ngram_counts

TEXT = story_corpus(20_000, seed=3)


def _dense_table(tokens, n, vocab):
    """Oracle: counts as an (V,)*n array built with np.add.at, independent of NGramLM."""
    idx = np.array([vocab.index(t) for t in tokens])
    V = len(vocab)
    table = np.zeros((V,) * n)
    grams = np.stack([idx[i : len(idx) - n + 1 + i] for i in range(n)])
    np.add.at(table, tuple(grams), 1)
    return table


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("k", [0.0, 0.5, 1.0])
def test_probabilities_match_dense_oracle(n, k):
    tokens = TEXT[:3000]
    lm = NGramLM(n, k=k).fit(tokens)
    vocab = lm.vocab
    table = _dense_table(tokens, n, vocab)
    V = len(vocab)
    rng = np.random.default_rng(0)
    for _ in range(40):
        ctx = tuple(vocab[i] for i in rng.integers(0, V, n - 1))
        ctx_idx = tuple(vocab.index(c) for c in ctx)
        row = table[ctx_idx]
        total = row.sum()
        expected = np.full(V, 1 / V) if total == 0 else (row + k) / (total + k * V)
        got = np.array(lm.distribution(ctx))
        assert np.abs(got - expected).max() < 1e-12
    # and on contexts that were actually seen
    for i in range(n - 1, 200):
        ctx = tokens[i - n + 1 : i]
        row = table[tuple(vocab.index(c) for c in ctx)]
        exp = (row[vocab.index(tokens[i])] + k) / (row.sum() + k * V)
        assert lm.prob(ctx, tokens[i]) == pytest.approx(exp, rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [0.0, 0.01, 1.0])
def test_distribution_sums_to_one_for_every_context(n, k):
    toks = words(TEXT)[:2000]
    lm = NGramLM(n, k=k).fit(toks)
    contexts = list(lm.counts) + [("never-seen-context",) * (n - 1)]
    for ctx in contexts:
        assert math.fsum(lm.distribution(ctx)) == pytest.approx(1.0, abs=1e-12)


def test_mle_equals_normalised_counts_when_k_is_zero():
    toks = list("abracadabra")
    lm = NGramLM(2, k=0).fit(toks)
    # 'a' is followed by b, c, d, b: P(b|a)=2/4, P(c|a)=1/4, P(d|a)=1/4, P(a|a)=0, P(r|a)=0
    assert lm.prob("a", "b") == 0.5
    assert lm.prob("a", "c") == 0.25
    assert lm.prob("a", "r") == 0.0
    assert lm.logprob("a", "r") == -math.inf
    counts = ngram_counts(toks, 2)
    for (a, b), c in counts.items():
        total = sum(v for (x, _), v in counts.items() if x == a)
        assert lm.prob([a], b) == c / total


def test_a_longer_context_uses_its_last_n_minus_1_tokens():
    lm = NGramLM(2, k=0.5).fit("abracadabra")
    assert lm.prob("xyzca", "d") == lm.prob("a", "d") != lm.prob("c", "d")
    tri = NGramLM(3).fit("abracadabra")
    assert tri.distribution("zzzab") == tri.distribution("ab") != tri.distribution("zz")
    assert tri.logprob(list("rrrbr"), "a") == 0.0  # "br" is always followed by "a"


def test_add_k_formula_by_hand():
    lm = NGramLM(2, k=1).fit("abracadabra")
    V = 5  # a b c d r
    assert lm.vocab == list("abcdr")
    assert lm.prob("a", "b") == pytest.approx((2 + 1) / (4 + V))
    assert lm.prob("a", "r") == pytest.approx((0 + 1) / (4 + V))


@pytest.mark.parametrize("V", [2, 5, 26])
def test_perplexity_of_uniform_model_is_vocab_size(V):
    alphabet = [chr(97 + i) for i in range(V)]
    lm = NGramLM(1).fit(alphabet * 7)  # every token equally often: uniform
    rng = np.random.default_rng(V)
    seq = [alphabet[i] for i in rng.integers(0, V, 50)]
    assert lm.perplexity(seq) == pytest.approx(V, rel=1e-12)
    # an unseen context under k=0 also falls back to uniform
    lm2 = NGramLM(3, k=0).fit(alphabet + alphabet[:2])
    assert lm2.distribution(["z", "z"] if "z" in alphabet else alphabet[-1:] * 2) == [1 / V] * V


def test_perplexity_is_exp_of_mean_negative_logprob():
    toks = words(TEXT)
    cut = int(0.8 * len(toks))
    train, test = toks[:cut], toks[cut:]
    lm = NGramLM(2, k=0.1).fit(train, vocab=set(toks))
    lp = lm.sequence_logprob(test)
    assert lm.perplexity(test) == pytest.approx(math.exp(-lp / (len(test) - 1)))
    assert 1 < lm.perplexity(test) < lm.vocab_size


def test_unseen_ngram_with_k0_gives_infinite_perplexity_and_k_fixes_it():
    lm0 = NGramLM(2, k=0).fit("abab", vocab="abc")
    assert lm0.perplexity("abc") == math.inf
    lm1 = NGramLM(2, k=1).fit("abab", vocab="abc")
    assert math.isfinite(lm1.perplexity("abc"))


def test_sampling_is_deterministic_and_seed_dependent():
    lm = NGramLM(3, k=0).fit(TEXT)
    a = lm.sample(300, seed=1)
    assert a == lm.sample(300, seed=1)
    assert a != lm.sample(300, seed=2)
    assert len(a) == 302
    # with k=0 every sampled trigram was seen in training
    seen = set(ngram_counts(TEXT, 3))
    assert all(tuple(a[i : i + 3]) in seen for i in range(len(a) - 2))
    p = lm.sample(50, seed=0, prompt="Once")
    assert "".join(p).startswith("Once")


def test_sampling_frequencies_follow_the_distribution():
    lm = NGramLM(1).fit("aaab")  # P(a)=0.75
    s = lm.sample(4000, seed=0, prompt=[])
    assert abs(s.count("a") / 4000 - 0.75) < 0.03
    cold = lm.sample(2000, seed=0, prompt=[], temperature=0.25)  # sharper: (3^4)/(3^4+1)
    assert cold.count("a") / 2000 > 0.95


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="abcde", min_size=4, max_size=60), st.integers(1, 3), st.sampled_from([0.0, 0.3, 2.0]))
def test_property_sequence_logprob_is_sum_of_conditionals(text, n, k):
    lm = NGramLM(n, k=k).fit(text)
    total = sum(lm.logprob(text[i - n + 1 : i], text[i]) for i in range(n - 1, len(text)))
    assert lm.sequence_logprob(text) == pytest.approx(total)
    assert lm.num_ngrams == len(ngram_counts(text, n))


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="n must be"):
        NGramLM(0)
    with pytest.raises(ValueError, match="k must be"):
        NGramLM(2, k=-1)
    lm = NGramLM(3)
    with pytest.raises(ValueError, match="not fitted"):
        lm.prob("ab", "c")
    lm.fit("abcabc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        lm.prob("ab", "z")
    with pytest.raises(ValueError, match="context of 2 tokens"):
        lm.prob("a", "b")
    with pytest.raises(ValueError, match="missing training tokens"):
        NGramLM(2).fit("abc", vocab="ab")
    with pytest.raises(ValueError, match="length must be an int >= 0, got 2.5"):
        lm.sample(2.5)
    with pytest.raises(ValueError, match="n must be an int >= 1, got '2'"):
        ngram_counts("abc", "2")
