"""Exercises 12.1, 12.2, 13.1 and 13.2: their references equal the library (lmcourse.safety,
lmcourse.compute) on every case of every seed, and the cases hold what the checks rely on (ties
that are exact, sets that really are disjoint, data that really is a power law).

tests/test_checks.py already runs every exercise against its wrong variants over hidden seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcourse import compute, safety
from lmcourse.checks import compare_values
from lmcourse.exercises import ch12, ch13
from lmcourse.model import GPT, GPTConfig

SEEDS = range(5)


# ------------------------------------------------------------------------------- 12.1
@pytest.mark.parametrize("seed", SEEDS)
def test_exposure_reference_is_the_librarys_rank_and_exposure(seed):
    for case in ch12.canary_exposure.cases(seed):
        rank, exposure = ch12._canary_exposure(*case.args)
        assert rank == safety.canary_rank(*case.args), case.label
        assert exposure == pytest.approx(safety.exposure_from_scores(*case.args), abs=1e-12), case.label


def test_exposure_edge_cases_have_the_values_their_labels_promise():
    cases = {c.label: c for c in ch12.canary_exposure.cases(0)}

    def run(label):
        c = cases[label]
        return (*ch12._canary_exposure(*c.args), len(c.args[1]) + 1)

    rank, e, n = run("the canary the best: exposure log2 N")
    assert rank == 1 and e == math.log2(n)
    rank, e, n = run("the canary the worst: rank N, exposure 0")
    assert rank == n and e == 0
    rank, e, n = run("all tied: rank (N + 1) / 2")
    assert rank == (n + 1) / 2
    rank, e, n = run("no candidates: N = 1")
    assert (rank, e, n) == (1, 0, 1)
    tie = cases["three candidates tied with the canary count half"]
    assert int((tie.args[1] == tie.args[0]).sum()) == 3
    assert ch12._canary_exposure(*tie.args)[0] % 1 == 0.5  # three ties: a half place


def test_a_random_ranking_has_an_exposure_near_one():
    # the docstring's claim: a model that knows nothing ranks the canary uniformly, E[exposure] ≈ 1 bit
    g = torch.Generator().manual_seed(0)
    exposures = [ch12._canary_exposure(float(s[0]), s[1:])[1]
                 for s in (torch.randn(1000, generator=g, dtype=torch.float64) for _ in range(300))]
    assert 0.8 < float(np.median(exposures)) < 1.2


# ------------------------------------------------------------------------------- 12.2
@pytest.mark.parametrize("seed", SEEDS)
def test_minhash_reference_is_the_librarys_signature_and_estimate(seed, monkeypatch):
    # The library hashes shingle strings; name each case's hash x by the string "x" and let its
    # _hash32 read the number back, so lmcourse.safety._signature sees exactly the exercise's hashes.
    cases = ch12.minhash_similarity.cases(seed)  # built with the real _hash32
    monkeypatch.setattr(safety, "_hash32", int)
    for case in cases:
        hashes_a, hashes_b, a, b, p = case.args
        assert p == safety._PRIME and a.dtype == b.dtype == hashes_a.dtype == hashes_b.dtype == np.uint64
        sig_a, sig_b, est = ch12._minhash_similarity(*case.args)
        assert sig_a.dtype == sig_b.dtype == np.uint64 and sig_a.shape == sig_b.shape == a.shape
        np.testing.assert_array_equal(sig_a, safety._signature([str(int(x)) for x in hashes_a], a, b))
        np.testing.assert_array_equal(sig_b, safety._signature([str(int(x)) for x in hashes_b], a, b))
        assert est == safety.estimated_jaccard(sig_a, sig_b), case.label


def test_minhash_reference_equals_minhash_signature_on_real_documents():
    docs = ["the cat sat on the mat and the dog ran to the park", "the cat sat on a mat and a dog ran to the park", ""]
    for num_perm, seed in ((1, 0), (16, 3), (128, 0)):
        a, b = safety._perms(num_perm, seed)
        sets = [safety.shingles(d, n=2, unit="word") for d in docs]
        hashes = [np.array(sorted({safety._hash32(s) % safety._PRIME for s in sh}), dtype=np.uint64) for sh in sets]
        for i, j in ((0, 1), (0, 2), (2, 2)):
            sig_a, sig_b, est = ch12._minhash_similarity(hashes[i], hashes[j], a, b, safety._PRIME)
            np.testing.assert_array_equal(sig_a, safety.minhash_signature(sets[i], num_perm, seed))
            np.testing.assert_array_equal(sig_b, safety.minhash_signature(sets[j], num_perm, seed))
            assert est == safety.estimated_jaccard(safety.minhash_signature(sets[i], num_perm, seed),
                                                   safety.minhash_signature(sets[j], num_perm, seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_minhash_cases_are_what_their_labels_say(seed):
    cases = {c.label: c.args for c in ch12.minhash_similarity.cases(seed)}
    for args in cases.values():
        assert all(int(h) < safety._PRIME for h in (*args[0], *args[1]))  # already reduced mod p
    a_set, b_set = (set(h.tolist()) for h in cases["disjoint sets: estimate 0"][:2])
    assert a_set and b_set and not a_set & b_set
    assert np.array_equal(*cases["identical sets: estimate 1"][:2])
    assert len(cases["one permutation (K = 1)"][2]) == 1
    assert len(cases["one set empty: its signature is p in every slot"][1]) == 0
    assert [len(h) for h in cases["both sets empty: estimate 1"][:2]] == [0, 0]
    near = cases["a near-duplicate pair of documents"]
    a_set, b_set = set(near[0].tolist()), set(near[1].tolist())
    assert 0 < len(a_set & b_set) < len(a_set | b_set)  # overlapping, not identical: the estimate means something


# ------------------------------------------------------------------------------- 13.1
@pytest.mark.parametrize("seed", SEEDS)
def test_flops_reference_is_the_librarys_param_count_and_flops(seed):
    for case in ch13.count_flops.cases(seed):
        V, block, L, d, n_inner, bias, T = case.args
        config = GPTConfig(vocab_size=V, block_size=block, n_layer=L, n_head=1, n_embd=d, n_inner=n_inner, bias=bias)
        assert ch13._count_flops(*case.args) == (
            compute.param_count(config), compute.flops_per_token(config, T),
            compute.flops_per_token(config, T, training=True)), case.label


def test_flops_reference_counts_the_real_models_parameters():
    config = GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=8, n_inner=20, bias=True)
    n, forward, training = ch13._count_flops(37, 16, 2, 8, 20, True, 16)
    assert n == GPT(config).num_params()
    # the forward count is the FlopCounterMode count plus 2 FLOPs per bias / LayerNorm parameter (tests/test_compute.py)
    assert forward == compute.counted_flops_per_token(config, 16) + 2 * sum(
        p.numel() for name, p in GPT(config).named_parameters() if name.endswith(".bias") or ".ln_" in name)
    assert training == 3 * forward


def test_flops_in_floats_are_judged_exactly_too():
    # The smallest mistake, ln_f forgotten, is 2·d FLOPs of millions: within a relative tolerance of 1e-5.
    as_floats = lambda f: lambda *args: tuple(float(v) for v in f(*args))  # noqa: E731
    assert ch13.count_flops.run(as_floats(ch13._count_flops)).passed
    result = ch13.count_flops.run(as_floats(ch13._fl_no_ln_f))
    assert result.status == "fail" and result.matched == [ch13.count_flops.wrong[-1].message], result.report


# ------------------------------------------------------------------------------- 13.2
@pytest.mark.parametrize("seed", SEEDS)
def test_power_law_fit_is_least_squares_on_log_log_axes(seed):
    for case in ch13.loglog_fit.cases(seed):
        n, loss, c = case.args
        a, alpha = ch13._loglog_fit(n, loss, c)
        slope, intercept = np.polyfit(np.log(n), np.log(loss - c), 1)  # the oracle the exercise forbids
        assert compare_values((float(np.exp(intercept)), float(-slope)), (a, alpha), atol=0, rtol=1e-9) is None


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_and_two_point_cases_are_fitted_exactly(seed):
    cases = {c.label: c.args for c in ch13.loglog_fit.cases(seed)}
    for label in ("an exact power law: a and alpha recovered", "two points: the line through them"):
        n, loss, c = cases[label]
        a, alpha = ch13._loglog_fit(n, loss, c)
        np.testing.assert_allclose(a * n ** -alpha + c, loss, rtol=1e-10)  # every point on the fitted law
        assert 0.1 <= alpha <= 0.5
    assert len(cases["two points: the line through them"][0]) == 2
    assert cases["c = 0: a pure power law"][2] == 0.0


def test_on_an_exact_power_law_the_fit_agrees_with_the_library():
    n = np.array([1e5, 3e5, 1e6, 3e6, 1e7, 1e8])
    loss = 400.0 * n**-0.3 + 1.7
    fit = compute.fit_power_law(n, loss)
    a, alpha = ch13._loglog_fit(n, loss, fit.c)
    assert compare_values((fit.a, fit.alpha), (a, alpha), rtol=1e-5) is None
    assert compare_values((400.0, 0.3), (a, alpha), rtol=1e-5) is None


# ------------------------------------------------------------------ the one-call shortcuts are flagged
def _exposure_by_rankdata(canary_logprob, candidate_logprobs):
    from scipy.stats import rankdata

    scores = np.concatenate([[canary_logprob], np.asarray(candidate_logprobs, dtype=np.float64)])
    rank = float(rankdata(-scores, method="average")[0])  # average ranks: ties count half, as 12.1 asks
    return rank, math.log2(len(scores)) - math.log2(rank)


def _exposure_by_library(canary_logprob, candidate_logprobs):
    return safety.canary_rank(canary_logprob, candidate_logprobs), safety.exposure_from_scores(
        canary_logprob, candidate_logprobs)


def _minhash_by_library(hashes_a, hashes_b, a, b, p):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(safety, "_hash32", int)
        sig_a = safety._signature([str(int(x)) for x in hashes_a], a, b)
        sig_b = safety._signature([str(int(x)) for x in hashes_b], a, b)
    return sig_a, sig_b, safety.estimated_jaccard(sig_a, sig_b)


def _flops_by_library(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1, n_embd=n_embd,
                       n_inner=n_inner, bias=bias)
    return (compute.param_count(config), compute.flops_per_token(config, T),
            compute.flops_per_token(config, T, training=True))


def _fit_by_polyfit(n, loss, c):
    slope, intercept = np.polyfit(np.log(n), np.log(loss - c), 1)
    return float(np.exp(intercept)), float(-slope)


def _fit_by_polynomial_class(n, loss, c):
    intercept, slope = np.polynomial.Polynomial.fit(np.log(n), np.log(loss - c), 1).convert().coef
    return float(np.exp(intercept)), float(-slope)


def _fit_by_lstsq(n, loss, c):
    x = np.stack([np.ones_like(n), np.log(n)], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(x, np.log(loss - c), rcond=None)
    return float(np.exp(intercept)), float(-slope)


def _fit_by_linregress(n, loss, c):
    from scipy.stats import linregress

    r = linregress(np.log(n), np.log(loss - c))
    return float(np.exp(r.intercept)), float(-r.slope)


SHORTCUTS = [
    (ch12.canary_exposure, _exposure_by_rankdata, "scipy.stats.rankdata"),
    (ch12.canary_exposure, _exposure_by_library, "lmcourse.safety.canary_rank"),
    (ch12.minhash_similarity, _minhash_by_library, "lmcourse.safety._signature"),
    (ch13.count_flops, _flops_by_library, "lmcourse.compute.param_count"),
    (ch13.loglog_fit, _fit_by_polyfit, "numpy.polyfit"),
    (ch13.loglog_fit, _fit_by_polynomial_class, "numpy.linalg.lstsq"),  # Polynomial.fit solves with lstsq
    (ch13.loglog_fit, _fit_by_lstsq, "numpy.linalg.lstsq"),
    (ch13.loglog_fit, _fit_by_linregress, "scipy.stats.linregress"),
]


@pytest.mark.parametrize("ex,shortcut,name", SHORTCUTS, ids=[s[1].__name__ for s in SHORTCUTS])
def test_each_one_call_shortcut_gives_the_right_values_but_is_flagged(ex, shortcut, name):
    result = ex.run(shortcut)
    assert result.passed, result.report  # a real shortcut: right values, so only the tripwire stands in its way
    assert name in result.forbidden and result.report.startswith("⚠"), result.report
