"""Chapter 01 exercises: n-gram counts, counts to probabilities, sampling, perplexity.

Derived in chapters/01_language_models.ipynb; practised in solutions/01_language_models.ipynb.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from lmcourse.checks import Case, Exercise, Wrong

# -- 1.1 counting n-grams ----------------------------------------------------------------


def _ngram_counts(tokens, n):
    return dict(Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)))


def _counts_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    words = "the cat sat on the mat and the cat ran".split()
    return [
        Case(("abab", 2), label="'abab', bigrams"),
        Case(("banana", 3), label="'banana', trigrams"),
        Case((words, 2), label="a list of words, bigrams"),
        Case(("".join(rng.choice(list("abcd"[: rng.integers(2, 5)]), rng.integers(8, 60))), 3),
             label="random text, trigrams"),
        Case(("hello", 1), label="unigrams"),
        Case(("hi", 2), label="exactly one bigram"),
    ]


def _counts_missing_last(tokens, n):
    return dict(Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n)))


def _counts_wrap(tokens, n):
    t = list(tokens) + list(tokens[: n - 1])
    return dict(Counter(tuple(t[i : i + n]) for i in range(len(tokens))))


def _counts_no_overlap(tokens, n):
    return dict(Counter(tuple(tokens[i : i + n]) for i in range(0, len(tokens) - n + 1, n)))


def _counts_strings(tokens, n):
    return dict(Counter("".join(map(str, tokens[i : i + n])) for i in range(len(tokens) - n + 1)))


ngram_counts = Exercise(
    id="1.1",
    name="ngram_counts",
    title="Count the n-grams of a sequence",
    reference=_ngram_counts,
    forbidden=("lmcourse.ngram.ngram_counts",),
    cases=_counts_cases,
    wrong=[
        Wrong(_counts_missing_last, "the last n-gram is missing: a sequence of length L has L - n + 1 n-grams, "
              "so the start index runs over range(len(tokens) - n + 1)."),
        Wrong(_counts_wrap, "you wrapped around the end of the sequence: the text does not continue from its "
              "beginning, so there are only L - n + 1 n-grams."),
        Wrong(_counts_no_overlap, "n-grams overlap: step the start index by 1, not by n "
              "('banana' has the trigrams ban, ana, nan, ana)."),
        Wrong(_counts_strings, "the keys must be tuples of tokens, like ('a', 'b'), not joined strings: "
              "tuple(tokens[i:i+n]) works for characters and for words alike."),
    ],
    hint="Slide a window of width n along the sequence one token at a time, from the first start index to the "
    "last one that still leaves n tokens, and count each window as a tuple. collections.Counter can do the counting.",
)

# -- 1.2 counts -> conditional probabilities (MLE and add-k) -----------------------------


def _bigram_probs(counts, k=0.0):
    counts = np.asarray(counts, dtype=np.float64)
    V = counts.shape[1]
    return (counts + k) / (counts.sum(axis=1, keepdims=True) + k * V)


def _probs_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed + 1)
    c3 = np.array([[0, 2, 1], [3, 0, 0], [1, 1, 1]])
    n5, n4 = (int(n) for n in rng.integers(4, 9, size=2))
    c5 = rng.integers(0, 6, size=(n5, n5))
    c5[:, 0] += 1  # every row seen at least once, so k = 0 is defined
    c4 = rng.integers(0, 3, size=(n4, n4))
    c4[rng.integers(n4)] = 0  # a context never seen: only defined with smoothing
    return [
        Case((c3,), label="3x3 counts, MLE (k=0)"),
        Case((c3,), {"k": 1.0}, label="3x3 counts, add-one"),
        Case((c5,), label="square counts, MLE"),
        Case((c5,), {"k": 0.5}, label="square counts, k=0.5"),
        Case((c4,), {"k": 0.1}, label="square, an unseen context, k=0.1"),
    ]


def _probs_wrong_axis(counts, k=0.0):
    counts = np.asarray(counts, dtype=np.float64)
    V = counts.shape[0]
    return (counts + k) / (counts.sum(axis=0, keepdims=True) + k * V)


def _probs_no_kV(counts, k=0.0):
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + k) / counts.sum(axis=1, keepdims=True).clip(min=1e-300)


def _probs_k_once(counts, k=0.0):
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + k) / (counts.sum(axis=1, keepdims=True) + k)


def _probs_joint(counts, k=0.0):
    counts = np.asarray(counts, dtype=np.float64) + k
    return counts / counts.sum()


bigram_probs = Exercise(
    id="1.2",
    name="bigram_probs",
    title="From bigram counts to conditional probabilities, with add-k smoothing",
    reference=_bigram_probs,
    forbidden=("lmcourse.ngram.NGramLM.distribution",),
    cases=_probs_cases,
    atol=1e-9,
    rtol=1e-7,
    wrong=[
        Wrong(_probs_wrong_axis, "you normalised over the wrong axis: row i is the context (previous token), "
              "so each ROW must sum to 1. Sum with axis=1, keepdims=True."),
        Wrong(_probs_no_kV, "the rows no longer sum to 1: adding k to each of the V counts in a row adds k·V to "
              "the row total, so the denominator is count(context) + k·V."),
        Wrong(_probs_k_once, "the denominator gets k·V, not k: k was added to all V entries of the row. "
              "With k = 1 and V = 3, a row [0, 2, 1] becomes [1, 3, 2], total 6 = 3 + 1·3."),
        Wrong(_probs_joint, "you divided by the total of the whole table: that is the joint P(a, b), not the "
              "conditional P(b | a). Divide each row by its own total."),
    ],
    hint="P(b | a) = (C[a, b] + k) / (Σ_b' C[a, b'] + k·V): each row is one context. Work in floats, "
    "sum each row with the summed axis kept so it broadcasts, and remember that k was added V times per row.",
)

# -- 1.3 sampling from a distribution with one uniform number ----------------------------


def _sample_index(weights, u):
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    return int(min(np.searchsorted(cdf, u, side="right"), len(w) - 1))


def _sample_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed + 2)
    w = rng.integers(1, 9, size=rng.integers(2, 12)).tolist()
    out = [
        Case(([0.2, 0.5, 0.3], 0.95), label="u in the last bin"),
        Case(([0.2, 0.5, 0.3], 0.65), label="u in the middle bin"),
        Case(([0.2, 0.5, 0.3], 0.1), label="u in the first bin"),
        Case(([2, 5, 3], 0.65), label="unnormalised counts"),
        Case(([0.25, 0.0, 0.75], 0.25), label="u exactly on a bin edge (belongs to the next bin)"),
        Case(([5, 1, 1, 1], 0.9), label="u past the most likely token"),
    ]
    out += [Case((w, float(u)), label="random weights") for u in rng.random(3)]
    return out


def _sample_argmax(weights, u):
    return int(np.argmax(weights))


def _sample_no_normalise(weights, u):
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    return int(min(np.searchsorted(cdf, u, side="right"), len(cdf) - 1))


def _sample_left(weights, u):
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    return int(min(np.searchsorted(cdf, u, side="left"), len(w) - 1))


def _sample_plus_one(weights, u):
    return min(_sample_index(weights, u) + 1, len(weights) - 1)


sample_index = Exercise(
    id="1.3",
    name="sample_index",
    title="Sampling a token: inverse-CDF with one uniform number",
    reference=_sample_index,
    cases=_sample_cases,
    wrong=[
        Wrong(_sample_argmax, "you always returned the most likely token (greedy decoding): sampling must use u, "
              "so that token i comes out with probability p_i."),
        Wrong(_sample_no_normalise, "the weights were not normalised: divide by their sum first, so the "
              "cumulative sum ends at exactly 1 and u in [0, 1) lands in the right bin."),
        Wrong(_sample_left, "a u exactly on a bin edge belongs to the next bin: token i owns [cdf[i-1], cdf[i]), "
              "so look for the first cumulative value strictly greater than u (searchsorted side='right')."),
        Wrong(_sample_plus_one, "off by one: the answer is the index of the first cumulative probability that is "
              "greater than u, counting from 0."),
    ],
    hint="Normalise the weights to probabilities and take their running (cumulative) sums c_0 <= c_1 <= ...; "
    "the answer is the first index whose running sum is strictly greater than u. np.searchsorted can find it.",
)

# -- 1.4 perplexity -----------------------------------------------------------------------


def _perplexity(logprobs):
    lp = np.asarray(logprobs, dtype=np.float64)
    return float(np.exp(-lp.mean()))


def _ppl_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed + 3)
    n = int(rng.integers(5, 40))
    return [
        Case(([math.log(0.25)] * 4,), label="uniform over 4 tokens: perplexity 4"),
        Case(([math.log(0.5), math.log(0.125)],), label="two tokens"),
        Case((np.log(rng.uniform(0.05, 0.9, size=n)).tolist(),), label="random log-probabilities"),
        Case((np.log(rng.uniform(0.01, 0.3, size=rng.integers(1, 12))),), label="a NumPy array"),
        Case(([0.0, 0.0, 0.0],), label="a perfect model: perplexity 1"),
    ]


def _ppl_sum(logprobs):
    return float(np.exp(-np.sum(logprobs)))


def _ppl_base2(logprobs):
    return float(2.0 ** (-np.mean(logprobs)))


def _ppl_no_minus(logprobs):
    return float(np.exp(np.mean(logprobs)))


def _ppl_no_exp(logprobs):
    return float(-np.mean(logprobs))


perplexity = Exercise(
    id="1.4",
    name="perplexity",
    title="Perplexity from per-token log-probabilities",
    reference=_perplexity,
    forbidden=("lmcourse.ngram.NGramLM.perplexity", "lmcourse.losses.perplexity_from_nll"),
    cases=_ppl_cases,
    atol=1e-9,
    rtol=1e-7,
    wrong=[
        Wrong(_ppl_sum, "you used the SUM of the log-probabilities: perplexity is per token, "
              "exp(-mean), so it does not grow with the length of the text."),
        Wrong(_ppl_base2, "the log-probabilities are natural logs (base e), so undo them with exp, not 2**: "
              "2**(-mean) mixes base 2 with base e (it would be right only for log2 probabilities)."),
        Wrong(_ppl_no_minus, "you forgot the minus sign: log-probabilities are negative, so exp(mean) is below 1; "
              "perplexity = exp(-mean log p) is at least 1."),
        Wrong(_ppl_no_exp, "that is the cross-entropy (the average negative log-likelihood, in nats); "
              "perplexity is its exponential, exp(cross-entropy)."),
    ],
    hint="Perplexity = exp(-(1/N) Σ log p_i). For a uniform model over V tokens every log p_i = -log V, "
    "so the perplexity is exactly V: a good sanity check.",
)
