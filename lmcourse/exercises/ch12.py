"""Chapter 12 exercises: the exposure of a canary, and the MinHash estimate of a Jaccard similarity.

Derived in chapters/12_ethics_safety.ipynb; practised in solutions/12_ethics_safety.ipynb.
The references are plain code; tests/test_ch12_13_checks.py proves they equal
lmcourse.safety's `canary_rank` / `exposure_from_scores` and `minhash_signature` /
`estimated_jaccard` (same permutations, same empty-set convention).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lmcourse import safety
from lmcourse.checks import Case, Exercise, Wrong


def _ints(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random ints in [low, high), so a hidden seed changes sizes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------------ 12.1 exposure


def _canary_exposure(canary_logprob, candidate_logprobs):
    higher = int((candidate_logprobs > canary_logprob).sum())   # candidates the model prefers
    tied = int((candidate_logprobs == canary_logprob).sum())     # ties count half: the expected rank
    rank = 1 + higher + tied / 2                                 # best = 1
    n = len(candidate_logprobs) + 1                              # N counts the canary itself
    return rank, math.log2(n) - math.log2(rank)


def _ce_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 121)

    def logprobs(k: int) -> torch.Tensor:  # log P(secret | prefix) of k random secrets: around -14 (6 digits)
        return -14.0 + 2.0 * torch.randn(k, generator=g, dtype=torch.float64)

    def between(scores: torch.Tensor, above: int) -> float:
        """A canary score with exactly `above` candidates scoring higher (none tied)."""
        s = scores.sort(descending=True).values
        return float((s[above - 1] + s[above]) / 2)

    k1, k2, k3, k4, k5, k6 = _ints(g, 6, 6, 40)
    c1 = logprobs(k1)
    c2 = logprobs(k2)
    # ties: three candidates share the canary's score (a value exact in binary), some above, some below
    above, below = _ints(g, 2, 1, 6)
    tie = torch.cat([-10.0 - torch.rand(above, generator=g, dtype=torch.float64),   # higher than -12.5
                     torch.full((3,), -12.5, dtype=torch.float64),
                     -15.0 - torch.rand(below, generator=g, dtype=torch.float64)])
    tie = tie[torch.randperm(len(tie), generator=g)]
    c3, c4, c5 = logprobs(k3).float(), logprobs(k4), logprobs(k5)
    return [
        Case((between(c1, max(1, k1 // 5)), c1), label="canary in the top fifth of N - 1 random candidates"),
        Case((between(c2, k2 // 2), c2), label="canary mid-ranked: exposure about 1"),
        Case((-12.5, tie), label="three candidates tied with the canary count half"),
        Case((float(c4.max()) + 3.0, c4), label="the canary the best: exposure log2 N"),
        Case((float(c5.min()) - 3.0, c5), label="the canary the worst: rank N, exposure 0"),
        Case((-13.25, torch.full((k6,), -13.25, dtype=torch.float64)), label="all tied: rank (N + 1) / 2"),
        Case((float(logprobs(1)[0]), torch.zeros(0, dtype=torch.float64)), label="no candidates: N = 1"),
        Case((between(c3, 1), c3), label="float32 scores, one candidate above"),
    ]


def _ce_rank(canary, cands, *, base0=False, ascending=False, ties=0.5):
    beats = (cands < canary) if ascending else (cands > canary)
    rank = (0 if base0 else 1) + int(beats.sum()) + ties * int((cands == canary).sum())
    return rank


def _ce_rank_from_0(canary_logprob, candidate_logprobs):
    rank = _ce_rank(canary_logprob, candidate_logprobs, base0=True)
    return rank, math.log2(len(candidate_logprobs) + 1) - math.log2(rank)


def _ce_natural_log(canary_logprob, candidate_logprobs):
    rank = _ce_rank(canary_logprob, candidate_logprobs)
    return rank, math.log(len(candidate_logprobs) + 1) - math.log(rank)


def _ce_ascending(canary_logprob, candidate_logprobs):
    rank = _ce_rank(canary_logprob, candidate_logprobs, ascending=True)
    return rank, math.log2(len(candidate_logprobs) + 1) - math.log2(rank)


def _ce_ties_favour(canary_logprob, candidate_logprobs):
    rank = _ce_rank(canary_logprob, candidate_logprobs, ties=0)
    return rank, math.log2(len(candidate_logprobs) + 1) - math.log2(rank)


def _ce_ties_against(canary_logprob, candidate_logprobs):
    rank = _ce_rank(canary_logprob, candidate_logprobs, ties=1)
    return rank, math.log2(len(candidate_logprobs) + 1) - math.log2(rank)


def _ce_n_without_canary(canary_logprob, candidate_logprobs):
    rank = _ce_rank(canary_logprob, candidate_logprobs)
    return rank, math.log2(len(candidate_logprobs)) - math.log2(rank)


def _ce_sign_flipped(canary_logprob, candidate_logprobs):
    rank = _ce_rank(canary_logprob, candidate_logprobs)
    return rank, math.log2(rank) - math.log2(len(candidate_logprobs) + 1)


canary_exposure = Exercise(
    id="12.1",
    name="canary_exposure",
    title="The exposure of a canary",
    reference=_canary_exposure,
    forbidden=(
        "lmcourse.safety.exposure",
        "lmcourse.safety.exposure_from_scores",
        "lmcourse.safety.canary_rank",
        "scipy.stats.rankdata",
    ),
    cases=_ce_cases,
    atol=1e-9,
    rtol=1e-9,
    wrong=[
        Wrong(_ce_rank_from_0, "your ranks start at 0: the canary the model likes best has rank 1, so that its "
              "exposure is log2 N - log2 1 = log2 N (a rank of 0 would make the best canary's log2 rank -inf)."),
        Wrong(_ce_natural_log, "you used the natural log: exposure is measured in bits, log2 N - log2 rank, so "
              "the best rank among N = 2^k candidates gives exactly k."),
        Wrong(_ce_ascending, "you ranked from the lowest log-probability up: rank 1 is the secret the model "
              "finds MOST likely, so count the candidates that score HIGHER than the canary."),
        Wrong(_ce_ties_favour, "you broke ties in the canary's favour (a tied candidate did not count): a tie "
              "counts half, rank = 1 + #higher + #tied / 2, the expected rank when ties are broken at random."),
        Wrong(_ce_ties_against, "you counted every tied candidate as ahead of the canary: a tie counts half, "
              "rank = 1 + #higher + #tied / 2, the expected rank when ties are broken at random."),
        Wrong(_ce_n_without_canary, "your N left out the canary: it is ranked among itself and the candidates, "
              "so N = len(candidate_logprobs) + 1 (and with no candidates N = 1, exposure 0)."),
        Wrong(_ce_sign_flipped, "your exposure has the wrong sign: it is log2 N - log2 rank, which is 0 for the "
              "worst rank and log2 N for the best, never negative."),
    ],
    hint="First the rank: start at 1 and add one for every candidate the model scores above the canary, and "
    "half a place for every candidate it scores exactly the same. Then N: how many secrets were ranked, the "
    "canary included? Exposure is the number of bits that ranking reveals: log base 2 of N, minus log base 2 "
    "of the rank.",
)

# ---------------------------------------------------------------- 12.2 MinHash


def _minhash_similarity(hashes_a, hashes_b, a, b, p):
    def signature(x):                                               # x: (S,) uint64 hashes, each < p
        if len(x) == 0:
            return np.full(a.shape, p, dtype=np.uint64)            # the empty set: p, never a real hash
        h = (x[:, None] * a[None, :] + b[None, :]) % np.uint64(p)  # (S, K): every shingle under every permutation
        return h.min(axis=0)                                       # (K,): the smallest per permutation

    sig_a, sig_b = signature(hashes_a), signature(hashes_b)
    return sig_a, sig_b, float(np.mean(sig_a == sig_b))            # the fraction of slots that agree


_WORDS = ("the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "little", "red", "hen",
          "found", "some", "grain", "who", "will", "help", "me", "plant", "this", "said", "she", "not", "i")


def _doc(g: torch.Generator, n_words: int) -> list[str]:
    return [_WORDS[i] for i in _ints(g, n_words, 0, len(_WORDS))]


def _hashes(words: list[str]) -> np.ndarray:
    """The (S,) uint64 hashes of a document's word 2-gram shingles, as lmcourse.safety computes them (< p)."""
    shingles = safety.shingles(" ".join(words), n=2, unit="word") if words else set()
    return np.array(sorted({safety._hash32(s) % safety._PRIME for s in shingles}), dtype=np.uint64)


def _mh_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 122)

    def perms(k: int) -> tuple[np.ndarray, np.ndarray]:  # the library's permutation family for a seed drawn here
        return safety._perms(k, _ints(g, 1, 0, 2**31 - 1)[0])

    def edited(words: list[str], frac: float) -> list[str]:  # a near-duplicate: a fraction of the words replaced
        out = list(words)
        for i in _ints(g, max(1, int(frac * len(words))), 0, len(words)):
            out[i] = _WORDS[_ints(g, 1, 0, len(_WORDS))[0]]
        return out

    p = safety._PRIME
    doc = _doc(g, _ints(g, 1, 25, 45)[0])
    doc2 = _doc(g, _ints(g, 1, 10, 20)[0])
    other = [w + "zz" for w in _doc(g, _ints(g, 1, 8, 16)[0])]  # words doc2 never uses: no shingle in common
    k1, k2, k3 = _ints(g, 3, 24, 80)
    return [
        Case((_hashes(doc), _hashes(edited(doc, 0.2)), *perms(k1), p), label="a near-duplicate pair of documents"),
        Case((_hashes(doc2), _hashes(edited(doc2, 0.6)), *perms(k2), p), label="a pair with less in common"),
        Case((_hashes(doc2), _hashes(doc2), *perms(k3), p), label="identical sets: estimate 1"),
        Case((_hashes(doc2), _hashes(other), *perms(k3), p), label="disjoint sets: estimate 0"),
        Case((_hashes(doc), _hashes(edited(doc, 0.3)), *perms(1), p), label="one permutation (K = 1)"),
        Case((_hashes(doc2), _hashes([]), *perms(k2), p), label="one set empty: its signature is p in every slot"),
        Case((_hashes([]), _hashes([]), *perms(k1), p), label="both sets empty: estimate 1"),
    ]


def _mh_variant(hashes_a, hashes_b, a, b, p, *, reduce="min", modulus=True, shared=False, empty=None,
                estimate="agree"):
    if shared:
        a, b = np.full_like(a, a[0]), np.full_like(b, b[0])

    def signature(x):
        if len(x) == 0:
            return np.full(a.shape, p if empty is None else empty, dtype=np.uint64)
        h = x[:, None] * a[None, :] + b[None, :]
        if modulus:
            h = h % np.uint64(p)
        return h.max(axis=0) if reduce == "max" else h.min(axis=0)

    sig_a, sig_b = signature(hashes_a), signature(hashes_b)
    if estimate == "agree":
        est = float(np.mean(sig_a == sig_b))
    elif estimate == "disagree":
        est = float(np.mean(sig_a != sig_b))
    elif estimate == "value sets":
        sa, sb = set(sig_a.tolist()), set(sig_b.tolist())
        est = len(sa & sb) / len(sa | sb)
    else:  # "exact": the true Jaccard of the hash sets
        sa, sb = set(hashes_a.tolist()), set(hashes_b.tolist())
        est = len(sa & sb) / len(sa | sb)
    return sig_a, sig_b, est


def _mh_max(hashes_a, hashes_b, a, b, p):
    return _mh_variant(hashes_a, hashes_b, a, b, p, reduce="max")


def _mh_exact_jaccard(hashes_a, hashes_b, a, b, p):
    return _mh_variant(hashes_a, hashes_b, a, b, p, estimate="exact")


def _mh_no_modulus(hashes_a, hashes_b, a, b, p):
    return _mh_variant(hashes_a, hashes_b, a, b, p, modulus=False)


def _mh_count_unequal(hashes_a, hashes_b, a, b, p):
    return _mh_variant(hashes_a, hashes_b, a, b, p, estimate="disagree")


def _mh_signature_value_sets(hashes_a, hashes_b, a, b, p):
    return _mh_variant(hashes_a, hashes_b, a, b, p, estimate="value sets")


def _mh_one_shared_permutation(hashes_a, hashes_b, a, b, p):
    return _mh_variant(hashes_a, hashes_b, a, b, p, shared=True)


def _mh_empty_zeros(hashes_a, hashes_b, a, b, p):
    return _mh_variant(hashes_a, hashes_b, a, b, p, empty=0)


minhash_similarity = Exercise(
    id="12.2",
    name="minhash_similarity",
    title="MinHash: two signatures and the estimated Jaccard similarity",
    reference=_minhash_similarity,
    forbidden=(
        "lmcourse.safety.minhash_signature",
        "lmcourse.safety.minhash_signatures",
        "lmcourse.safety._signature",
        "lmcourse.safety.estimated_jaccard",
        "lmcourse.safety.jaccard",
    ),
    cases=_mh_cases,
    atol=1e-12,   # signatures are integers below 2**32 and the estimate a fraction k / K: compared exactly
    rtol=0.0,
    wrong=[
        Wrong(_mh_max, "you kept the LARGEST hash per permutation: MinHash keeps the smallest, "
              "min over the shingles of (a_i x + b_i) mod p (the maximum would work too, but it is not this "
              "signature)."),
        Wrong(_mh_exact_jaccard, "you returned the exact Jaccard similarity of the two hash sets: the point of "
              "MinHash is to ESTIMATE it from the signatures alone, as the fraction of the K slots where they "
              "agree."),
        Wrong(_mh_no_modulus, "you left out the modulus: each permutation is h_i(x) = (a_i x + b_i) mod p; "
              "without mod p, h_i is increasing in x, so every slot picks the same shingle (the one with the "
              "smallest hash)."),
        Wrong(_mh_count_unequal, "you counted the slots where the signatures DIFFER: the estimate is the "
              "fraction where they are equal."),
        Wrong(_mh_signature_value_sets, "you treated the signatures as sets of values and took their Jaccard "
              "similarity: compare them slot by slot, position i of one with position i of the other, and "
              "count the positions that agree."),
        Wrong(_mh_one_shared_permutation, "you used one permutation (a[0], b[0]) for every slot, so all K slots "
              "hold the same value and the estimate can only be 0 or 1: slot i uses its own a[i] and b[i]."),
        Wrong(_mh_empty_zeros, "your empty set's signature is 0 in every slot: the convention is p in every slot "
              "(no real hash reaches p, so an empty set never agrees with a non-empty one, and two empty sets "
              "agree everywhere)."),
    ],
    hint="Build a table with one row per shingle and one column per permutation: entry (s, i) is the hash of "
    "shingle s under permutation i, a[i] times the hash plus b[i], reduced mod p. Keep uint64 throughout: "
    "every product is below 2**64. A signature is the smallest entry of each column. An empty set has no rows, "
    "so give it p in every column. The estimate compares the two signatures column by column.",
)
