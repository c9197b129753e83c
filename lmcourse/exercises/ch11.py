"""Chapter 11 exercises: BLEU's brevity penalty and its clipped n-gram counts.

BLEU scores chapter 11's English→Chinese translation (lmcourse.tasks, on characters); practised in
solutions/11_applications.ipynb. The
references are plain code; tests/test_ch09_11_checks.py proves they equal
lmcourse.metrics.brevity_penalty and the matches / totals of lmcourse.metrics.bleu.
"""
from __future__ import annotations

import math
from collections import Counter

import torch

from lmcourse.checks import Case, Exercise, Wrong


def _ints(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random ints in [low, high), so a hidden seed changes sizes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------------ 11.1 the brevity penalty


def _brevity_penalty(c, r):
    if c > r:
        return 1.0                                          # longer than the references: no penalty
    if c == 0:
        return 0.0                                          # nothing translated: BLEU is 0 (the limit of exp(1 - r/c))
    return math.exp(1 - r / c)                              # c <= r: 1 at c = r, falling fast as c shrinks


def _bp_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 111)
    r, r2, r3, c_long = _ints(g, 4, 5, 60)
    return [
        Case((r - 1 - _ints(g, 1, 0, r // 2)[0], r), label="shorter than the references"),
        Case((r2 + 1 + c_long, r2), label="longer than the references: 1"),
        Case((r3, r3), label="c = r: exactly 1"),
        Case((1, r3), label="one token against many"),
        Case((r + 1, r), label="one token longer: 1"),
        Case((0, r2), label="c = 0: 0"),
        Case((0, 0), label="c = r = 0: 0"),
        Case((900 + 10 * c_long, 1000 + 10 * r), label="corpus-sized lengths"),
    ]


def _bp_inverted(c, r):
    if c > r:
        return 1.0
    return math.exp(1 - c / r) if r > 0 else 0.0


def _bp_uncapped(c, r):
    return math.exp(1 - r / c) if c > 0 else 0.0


def _bp_geq(c, r):
    if c >= r:
        return 1.0
    return math.exp(1 - r / c) if c > 0 else 0.0


def _bp_linear(c, r):
    if c > r:
        return 1.0
    return c / r if r > 0 else 0.0


def _bp_no_one(c, r):
    if c > r:
        return 1.0
    return math.exp(-r / c) if c > 0 else 0.0


def _bp_unguarded(c, r):
    if c > r:
        return 1.0
    return math.exp(1 - r / c)


brevity_penalty = Exercise(
    id="11.1",
    name="brevity_penalty",
    title="BLEU's brevity penalty",
    reference=_brevity_penalty,
    forbidden=(
        "lmcourse.metrics.brevity_penalty",
        "lmcourse.metrics.bleu",
        "sacrebleu.corpus_bleu",
        "sacrebleu.sentence_bleu",
        "sacrebleu.metrics.bleu.BLEU.corpus_score",
        "sacrebleu.metrics.bleu.BLEU.sentence_score",
        "nltk.translate.bleu_score.brevity_penalty",
        "nltk.translate.bleu_score.corpus_bleu",
        "nltk.translate.bleu_score.sentence_bleu",
    ),
    cases=_bp_cases,
    atol=1e-12,
    rtol=1e-9,
    wrong=[
        Wrong(_bp_inverted, "you inverted the ratio: the penalty is exp(1 - r / c), references over hypotheses, so it "
              "grows as the hypotheses get shorter (exp(1 - c / r) would barely penalise a one-word translation)."),
        Wrong(_bp_uncapped, "you did not cap the penalty at 1: when the hypotheses are longer than the references "
              "(c > r) BP = 1, since a long output is already punished by its lower n-gram precisions."),
        Wrong(_bp_geq, "you used c >= r for the no-penalty branch: BLEU's rule is c > r. At c = r both give 1, but at "
              "c = r = 0 (nothing to compare) the penalty is 0, as for every empty output."),
        Wrong(_bp_linear, "you used the length ratio c / r: the penalty is exponential, exp(1 - r / c), which falls "
              "much faster than c / r for short outputs."),
        Wrong(_bp_no_one, "you wrote exp(-r / c): the exponent is 1 - r / c, so that BP = 1 exactly when c = r."),
        Wrong(_bp_unguarded, "c = 0 needs its own branch: exp(1 - r / c) divides by zero there; an empty output gets "
              "BP = 0 (the limit as c falls to 0), so its BLEU is 0."),
    ],
    hint="There are three situations: the output is longer than the references, it is empty, or neither. Only the "
    "last one uses the exponential; write it so that it equals 1 when the two lengths are equal.",
)

# ------------------------------------------------------------------ 11.2 clipped n-gram counts


def _clipped_ngram_counts(hypothesis, references, n):
    def count_ngrams(tokens):                               # len - n + 1 windows of n tokens (none if too short)
        return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))

    hyp = count_ngrams(hypothesis.split())
    max_ref = Counter()
    for ref in references:
        for gram, count in count_ngrams(ref.split()).items():
            max_ref[gram] = max(max_ref[gram], count)       # the most times any ONE reference has it
    matches = sum(min(count, max_ref[gram]) for gram, count in hyp.items())  # clipped
    total = sum(hyp.values())                               # the hypothesis's own n-grams
    return matches, total


_VOCAB = ("the", "cat", "is", "on", "mat", "there", "a", "dog", "sat", "by", "door", "red")


def _ng_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 112)

    def sentence(n: int, vocab: int = len(_VOCAB)) -> str:
        return " ".join(_VOCAB[i] for i in _ints(g, n, 0, vocab))

    n_rand, n_many = _ints(g, 2, 1, 4)
    L, L2, R = _ints(g, 3, 6, 14)
    refs = [sentence(R, 5) for _ in range(_ints(g, 1, 2, 5)[0])]  # a small vocabulary: n-grams repeat
    base = refs[0].split()
    hyp_many = " ".join(base[:3] + base[:3] + base[3:])    # repeats the references' n-grams: clipping acts
    k = _ints(g, 1, 2, 5)[0]
    # The first four cases each tell one group of mistakes apart by distinct counts, so a report
    # names only the likely one: windows and orders, clipping, references joined, the sum over references.
    mat = ["the cat sat on the mat"]
    papineni = ["the cat is on the mat", "there is a cat on the mat"]
    return [
        Case(("cat on the mat", mat, 2), label="n-grams may not cross a gap"),
        Case(("the cat the cat on", mat, 2), label="a bigram twice, once in the reference"),
        Case(("mat there is cat", papineni, 2), label="no n-gram across two references"),
        Case((" ".join(["the"] * (k + 3)), ["the cat the the", "the the cat"], 2), label="repeated bigram, n = 2"),
        Case(("the the the the the the the", papineni, 1), label="Papineni's 'the the the ...', n = 1"),
        Case((sentence(L, 6), [sentence(L2, 6)], n_rand), label="one reference, random n"),
        Case((hyp_many, refs, n_many), label="several references"),
        Case((sentence(k), [sentence(L)], k + 1), label="hypothesis shorter than n"),
        Case((sentence(L2, 5), [sentence(L, 5), sentence(R, 5)], 4), label="n = 4"),
    ]


def _ng_variant(hypothesis, references, n, *, clip="max", total_from="hyp", windows=0, orders=False):
    def grams(tokens):
        counts = Counter()
        for m in range(1, n + 1) if orders else (n,):
            counts.update(tuple(tokens[i:i + m]) for i in range(max(len(tokens) - m + 1 + windows, 0)))
        return counts

    hyp = grams(hypothesis.split())
    refs = [grams(r.split()) for r in references]
    allowed = Counter()
    for rc in refs:
        for gram, count in rc.items():
            allowed[gram] = {"max": max(allowed[gram], count), "sum": allowed[gram] + count, "none": 10**9}[clip]
    matches = sum(min(count, allowed[gram]) if allowed[gram] else 0 for gram, count in hyp.items())
    total = sum(hyp.values()) if total_from == "hyp" else sum(refs[0].values())
    return matches, total


def _ng_unclipped(hypothesis, references, n):
    return _ng_variant(hypothesis, references, n, clip="none")


def _ng_sum_refs(hypothesis, references, n):
    return _ng_variant(hypothesis, references, n, clip="sum")


def _ng_ref_total(hypothesis, references, n):
    return _ng_variant(hypothesis, references, n, total_from="ref")


def _ng_one_window_short(hypothesis, references, n):
    return _ng_variant(hypothesis, references, n, windows=-1)


def _ng_tail_windows(hypothesis, references, n):
    return _ng_variant(hypothesis, references, n, windows=n - 1)  # tokens[i:i + n] past the end: shorter tail "n-grams"


def _ng_all_orders(hypothesis, references, n):
    return _ng_variant(hypothesis, references, n, orders=True)


def _ng_bag_of_words(hypothesis, references, n):
    hyp = hypothesis.split()
    ref_words = {w for r in references for w in r.split()}
    grams = [tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1)]
    return sum(all(w in ref_words for w in gram) for gram in grams), len(grams)  # each word somewhere, not the n-gram


def _ng_joined_refs(hypothesis, references, n):
    return _ng_variant(hypothesis, [" ".join(references)], n)  # one long reference: n-grams across the seams


clipped_ngram_counts = Exercise(
    id="11.2",
    name="clipped_ngram_counts",
    title="BLEU's clipped n-gram counts",
    reference=_clipped_ngram_counts,
    forbidden=(
        "lmcourse.metrics.bleu",
        "lmcourse.metrics._ngrams",
        "sacrebleu.corpus_bleu",
        "sacrebleu.sentence_bleu",
        "sacrebleu.metrics.bleu.BLEU.corpus_score",
        "sacrebleu.metrics.bleu.BLEU.sentence_score",
        "sacrebleu.metrics.helpers.extract_all_word_ngrams",
        "sacrebleu.metrics.helpers.extract_word_ngrams",
        "nltk.translate.bleu_score.modified_precision",
        "nltk.util.ngrams",
    ),
    cases=_ng_cases,
    wrong=[
        Wrong(_ng_unclipped, "you did not clip: an n-gram of the hypothesis counts at most as many times as it appears "
              "in a reference, so 'the the the the the the the' scores 2 of 7 against 'the cat is on the mat', not 7."),
        Wrong(_ng_sum_refs, "you clipped by the SUM of an n-gram's counts over the references: clip by the MAX, the "
              "most times any single reference has it (two references with 'the' twice allow 2, not 4)."),
        Wrong(_ng_ref_total, "your total counts the reference's n-grams: precision divides by the number of n-grams in "
              "the HYPOTHESIS (the brevity penalty, not the precision, deals with the reference lengths)."),
        Wrong(_ng_one_window_short, "you missed the last n-gram: a sentence of L tokens has L - n + 1 n-grams, "
              "starting at positions 0 .. L - n."),
        Wrong(_ng_tail_windows, "you counted shorter pieces at the end of the sentence as n-grams: tokens[i:i + n] "
              "near the end has fewer than n tokens; only the L - n + 1 full windows count (and none when L < n)."),
        Wrong(_ng_all_orders, "you counted the n-grams of every order up to n: this function counts order n only "
              "(BLEU computes each order's precision separately, then averages their logs)."),
        Wrong(_ng_bag_of_words, "you matched each word of an n-gram on its own: an n-gram matches only when the same "
              "n words appear next to each other, in order, in a reference ('cat on' is not in 'the cat sat on the "
              "mat', though both words are)."),
        Wrong(_ng_joined_refs, "you joined the references into one: each reference is a sentence of its own, so no "
              "n-gram runs from the end of one into the start of the next, and an n-gram is clipped by the most "
              "times ONE reference has it."),
    ],
    hint="Split the sentences on whitespace. Write a small helper that counts the n-grams of a token list: tuples "
    "of n consecutive tokens, one per start position that leaves room for n tokens (collections.Counter counts "
    "them). For each n-gram of the hypothesis, find how many times it occurs in each reference and keep the "
    "largest; the hypothesis's count is clipped to that. The total is simply how many n-grams the hypothesis has.",
)
