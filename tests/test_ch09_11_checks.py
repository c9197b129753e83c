"""Exercises 9.1, 9.2, 10.1, 10.2, 11.1 and 11.2: their references equal the library (and the
library's outside oracles where it has them), their cases hold what the checks rely on, and a
student who calls the library or scikit-learn / sacrebleu / NLTK instead is flagged.

tests/test_checks.py already runs every exercise against its wrong variants over hidden seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcourse import finetune, metrics
from lmcourse.checks import compare_values
from lmcourse.exercises import ch09, ch10, ch11
from lmcourse.model import IGNORE_INDEX

SEEDS = range(5)


# ------------------------------------------------------------------------------- 9.1
def _lora_layer(x, weight, bias, lora_A, lora_B, alpha) -> finetune.LoRALinear:
    d_out, d_in = weight.shape
    base = torch.nn.Linear(d_in, d_out, bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        base.weight.copy_(weight)
        if bias is not None:
            base.bias.copy_(bias)
    layer = finetune.LoRALinear(base, rank=lora_A.shape[0], alpha=alpha)
    with torch.no_grad():
        layer.lora_A.copy_(lora_A)
        layer.lora_B.copy_(lora_B)
    return layer


@pytest.mark.parametrize("seed", SEEDS)
def test_lora_reference_is_the_librarys_forward_and_its_merged_weight(seed):
    for case in ch09.lora_forward.cases(seed):
        layer = _lora_layer(*case.args)
        want = ch09._lora_forward(*case.args)
        with torch.no_grad():
            got = layer(case.args[0])
            assert got.shape == want.shape and got.dtype == want.dtype, case.label
            assert compare_values(got, want, atol=1e-6, rtol=1e-5) is None, case.label
            layer.merge()                                  # W + (alpha / r) B A: the same function, one Linear
            assert compare_values(layer(case.args[0]), want, **_tol(want)) is None, case.label


def _tol(t: torch.Tensor) -> dict:
    return {"atol": 1e-5, "rtol": 1e-4} if t.dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-9}


def test_lora_cases_hold_what_the_wrong_variants_need():
    for seed in SEEDS:
        cases = {c.label: c.args for c in ch09.lora_forward.cases(seed)}
        x, W, b, A, B, alpha = cases["square layer (in = out), (N, in) input"]
        assert W.shape[0] == W.shape[1]                    # x (B A), untransposed, fits: only the values tell
        assert A.shape[0] > 1 and alpha != A.shape[0]      # alpha / r differs from alpha and from 1
        assert cases["empty batch"][0].shape[0] == 0 and cases["no bias"][2] is None
        assert (cases["B = 0: a fresh LoRA equals the base layer"][4] == 0).all()
        assert cases["rank 1"][3].shape[0] == 1


def test_a_fresh_lora_is_exactly_the_base_layer():
    x, W, b, A, B, alpha = next(c.args for c in ch09.lora_forward.cases(3) if c.label.startswith("B = 0"))
    assert torch.equal(ch09._lora_forward(x, W, b, A, B, alpha), x @ W.t() + b)


def test_calling_the_librarys_lora_is_flagged():
    def cheat(x, weight, bias, lora_A, lora_B, alpha):
        with torch.no_grad():
            return _lora_layer(x, weight, bias, lora_A, lora_B, alpha)(x)

    result = ch09.lora_forward.run(cheat)
    assert result.passed and result.forbidden == ["lmcourse.finetune.LoRALinear.forward"], result.report


# ------------------------------------------------------------------------------- 9.2
class _CharTokenizer:
    """One id per character: enough to build the library's chat format without a trained tokenizer."""

    def encode(self, text: str) -> list[int]:
        return [ord(ch) for ch in text]


@pytest.mark.parametrize("eos_id", [None, 7])
@pytest.mark.parametrize("prompt,response", [("Who is Lily?", "a girl"), ("Q", "yes"), ("Where did Tom go?", "home.")])
def test_sft_reference_is_the_librarys_example(prompt, response, eos_id):
    tok = _CharTokenizer()
    p = finetune.sft_prompt(tok, prompt)
    r = tok.encode(finetune.SFT_RESPONSE.format(response=response))
    assert ch09._sft_ids_targets(p, r, eos_id) == finetune.sft_example(tok, prompt, response, eos_id)


def test_sft_default_ignore_index_is_the_librarys():
    import inspect

    assert inspect.signature(ch09._sft_ids_targets).parameters["ignore_index"].default == IGNORE_INDEX == -1


def test_sft_by_hand():
    ids, targets = ch09._sft_ids_targets([10, 11, 12], [20, 21], eos_id=99)
    assert ids == [10, 11, 12, 20, 21] and targets == [-1, -1, 20, 21, 99]
    assert ch09._sft_ids_targets([10], [], eos_id=99) == ([10], [99])          # one-token prompt, empty response
    assert ch09._sft_ids_targets([10, 11], []) == ([10], [-1])                 # nothing left to learn
    assert ch09._sft_ids_targets([10, 11], [5], ignore_index=-100) == ([10, 11], [-100, 5])


@pytest.mark.parametrize("seed", SEEDS)
def test_sft_cases_pair_with_the_librarys_collate_and_loss(seed):
    """The references' pairs batch with collate_sft, and the masked loss is the loss over the response alone."""
    for case in ch09.sft_ids_targets.cases(seed):
        ids, targets = ch09._sft_ids_targets(*case.args, **case.kwargs)
        assert len(ids) == len(targets)
        ignore = case.kwargs.get("ignore_index", IGNORE_INDEX)
        n_learned = len(case.args[1]) + (len(case.args) > 2 and case.args[2] is not None)
        assert sum(t != ignore for t in targets) == n_learned, case.label
    x, y = finetune.collate_sft([ch09._sft_ids_targets([1, 2, 3], [4, 5], 6), ch09._sft_ids_targets([1], [4], 6)])
    assert y.tolist() == [[-1, -1, 4, 5, 6], [4, 6, -1, -1, -1]] and x.shape == (2, 5)


# ------------------------------------------------------------------------------- 10.1
def _labels_from(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.nonzero(cm >= 0)
    reps = cm[t, p]
    return np.repeat(t, reps), np.repeat(p, reps)


@pytest.mark.parametrize("seed", SEEDS)
def test_f1_reference_is_the_librarys_and_scikit_learns_macro_and_micro(seed):
    sk = pytest.importorskip("sklearn.metrics")
    for case in ch10.f1_from_confusion.cases(seed):
        cm = case.args[0]
        labels = list(range(len(cm)))
        y_true, y_pred = _labels_from(cm)
        assert np.array_equal(metrics.confusion_matrix(y_true, y_pred, labels=labels), cm), case.label
        macro, micro = ch10._f1_from_confusion(cm)
        for average, got in (("macro", macro), ("micro", micro)):
            lib = metrics.f1_score(y_true, y_pred, average=average, labels=labels)
            oracle = sk.f1_score(y_true, y_pred, average=average, labels=labels, zero_division=0)
            assert math.isclose(got, lib, abs_tol=1e-12), (case.label, average)
            assert math.isclose(got, oracle, abs_tol=1e-12), (case.label, average)


def test_f1_by_hand():
    # class 0: TP 2, FP 1, FN 0 -> F1 0.8; class 1: TP 1, FP 0, FN 1 -> 2/3; class 2 empty -> 0
    cm = np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0]])
    macro, micro = ch10._f1_from_confusion(cm)
    assert math.isclose(macro, (0.8 + 2 / 3 + 0) / 3) and math.isclose(micro, 3 / 4)


def test_f1_cases_hold_their_edges():
    for seed in SEEDS:
        cases = {c.label: c.args[0] for c in ch10.f1_from_confusion.cases(seed)}
        never = cases["a class never predicted"]
        k = int(np.nonzero(never.sum(axis=0) == 0)[0][0])
        assert never[k].sum() > 0                          # it occurs, so its recall is 0, not 0 / 0
        empty = cases["an empty class: row and column zero"]
        assert ((empty.sum(axis=0) + empty.sum(axis=1)) == 0).sum() == 1
        assert np.count_nonzero(cases["all one class"]) == 1 and cases["2×2"].shape == (2, 2)


def test_calling_scikit_learn_is_flagged():
    sk = pytest.importorskip("sklearn.metrics")

    def cheat(cm):
        y_true, y_pred = _labels_from(np.asarray(cm))
        labels = list(range(len(cm)))
        return tuple(float(sk.f1_score(y_true, y_pred, average=a, labels=labels, zero_division=0))
                     for a in ("macro", "micro"))

    result = ch10.f1_from_confusion.run(cheat)
    assert result.passed and result.forbidden == ["sklearn.metrics.f1_score"], result.report


# ------------------------------------------------------------------------------- 10.2
@pytest.mark.parametrize("seed", SEEDS)
def test_token_f1_reference_is_the_librarys(seed):
    for case in ch10.token_f1.cases(seed):
        prediction, golds = case.args
        assert ch10._token_f1(prediction, golds) == metrics.token_f1(prediction, golds), case.label


@pytest.mark.parametrize("prediction,golds,want", [
    ("The Cat sat.", ["a cat  sat"], 1.0),
    ("cat cat dog", ["cat dog dog mat"], 2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4)),
    ("the", ["An!"], 1.0),
    ("the", ["dog"], 0.0),
    ("red ball", ["blue hat", "a red ball!"], 1.0),
])
def test_token_f1_by_hand(prediction, golds, want):
    assert math.isclose(ch10._token_f1(prediction, golds), want)


def test_calling_the_librarys_normalisation_is_flagged():
    def cheat(prediction, golds):
        pred = metrics.normalize_answer(prediction)
        return max(ch10._token_f1(" ".join(pred), [g]) for g in golds)

    result = ch10.token_f1.run(cheat)
    assert result.passed and "lmcourse.metrics.normalize_answer" in result.forbidden, result.report


# ------------------------------------------------------------------------------- 11.1
@pytest.mark.parametrize("seed", SEEDS)
def test_brevity_penalty_reference_is_the_librarys_and_nltks(seed):
    bleu_score = pytest.importorskip("nltk.translate.bleu_score")
    for case in ch11.brevity_penalty.cases(seed):
        c, r = case.args
        want = ch11._brevity_penalty(c, r)
        assert want == metrics.brevity_penalty(c, r) == float(bleu_score.brevity_penalty(r, c)), case.label


def test_brevity_penalty_is_what_sacrebleu_reports():
    sacrebleu = pytest.importorskip("sacrebleu")
    score = sacrebleu.corpus_bleu(["a b c"], [["a b c d e f"]], tokenize="none")
    assert math.isclose(score.bp, ch11._brevity_penalty(3, 6), rel_tol=1e-3)  # sacrebleu rounds to 3 decimals


# ------------------------------------------------------------------------------- 11.2
@pytest.mark.parametrize("seed", SEEDS)
def test_clipped_counts_are_the_librarys_bleu_statistics(seed):
    for case in ch11.clipped_ngram_counts.cases(seed):
        hyp, refs, n = case.args
        got = ch11._clipped_ngram_counts(hyp, refs, n)
        stats = metrics.bleu([hyp], [refs], max_order=n, smooth="none")
        assert got == (stats.matches[n - 1], stats.totals[n - 1]), case.label


@pytest.mark.parametrize("seed", SEEDS)
def test_clipped_counts_are_nltks_modified_precision(seed):
    bleu_score = pytest.importorskip("nltk.translate.bleu_score")
    for case in ch11.clipped_ngram_counts.cases(seed):
        hyp, refs, n = case.args
        frac = bleu_score.modified_precision([r.split() for r in refs], hyp.split(), n)
        matches, total = ch11._clipped_ngram_counts(hyp, refs, n)
        assert (matches, max(total, 1)) == (frac.numerator, frac.denominator), case.label  # NLTK: 0 / 1 for no n-grams


def test_clipped_counts_by_hand():
    refs = ["the cat is on the mat", "there is a cat on the mat"]
    assert ch11._clipped_ngram_counts("the the the the the the the", refs, 1) == (2, 7)   # Papineni et al. 2002
    assert ch11._clipped_ngram_counts("the cat", refs, 3) == (0, 0)
    assert ch11._clipped_ngram_counts("cat on the mat", ["the cat sat on the mat"], 2) == (2, 3)


def test_calling_nltk_is_flagged():
    bleu_score = pytest.importorskip("nltk.translate.bleu_score")

    def cheat(hypothesis, references, n):
        frac = bleu_score.modified_precision([r.split() for r in references], hypothesis.split(), n)
        return frac.numerator, max(len(hypothesis.split()) - n + 1, 0)

    result = ch11.clipped_ngram_counts.run(cheat)
    assert result.passed and result.forbidden == ["nltk.translate.bleu_score.modified_precision"], result.report
