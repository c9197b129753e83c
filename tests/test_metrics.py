"""lmcourse.metrics against its oracles: scikit-learn, sacrebleu, rouge-score, and SQuAD's known answers.

The oracles are test-only dependencies in the `dev` extra, which the suite needs anyway: they
are imported, not skipped, so a missing oracle fails loudly. BLEU is compared with sacrebleu on
text that is already tokenised (sacrebleu's tokenize="none" = this module's "whitespace"),
and on Chinese characters (sacrebleu's "char" and "zh" = this module's "char"). ROUGE-L is
compared with rouge-score on lowercase ASCII words without punctuation, where rouge-score's
default tokenizer and whitespace splitting give the same tokens.
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import sacrebleu
import sklearn.calibration as sklearn_calibration
import sklearn.metrics as sklearn_metrics
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from lmcourse import losses, metrics

NAN = float("nan")

# scikit-learn warns that a single label needs labels= for its matrix shape: all-one-class data is tested on purpose
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((np.abs(a - b) <= tol) | (np.isnan(a) & np.isnan(b))))


def _random_labels(seed):
    """Random labels with a random number of classes, often leaving some class out of one side."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    k = int(rng.integers(1, 6))
    p = rng.dirichlet(np.full(k, 0.5))  # uneven class frequencies: rare classes go missing
    y_true = rng.choice(k, size=n, p=p)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.choice(k, size=n))
    return y_true, y_pred, k


# --------------------------------------------------------------------------------------
# classification against scikit-learn


@pytest.mark.parametrize("seed", range(40))
def test_accuracy_and_confusion_matrix_match_sklearn(seed):
    y_true, y_pred, k = _random_labels(seed)
    assert metrics.accuracy(y_true, y_pred) == sklearn_metrics.accuracy_score(y_true, y_pred)
    got = metrics.confusion_matrix(y_true, y_pred)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, sklearn_metrics.confusion_matrix(y_true, y_pred))
    # labels: a chosen order, classes that never occur (empty rows and columns), and a class left out
    labels = [k + 1, *range(k - 1, -1, -1), k]
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, labels=labels),
                                  sklearn_metrics.confusion_matrix(y_true, y_pred, labels=labels))
    if k > 1 and np.isin(y_true, range(1, k)).any():
        sub = list(range(1, k))  # samples labelled 0 (true or predicted) are not counted
        np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, labels=sub),
                                      sklearn_metrics.confusion_matrix(y_true, y_pred, labels=sub))


@pytest.mark.parametrize("zero_division", [0.0, 1.0, NAN])
@pytest.mark.parametrize("seed", range(24))
def test_precision_recall_f1_match_sklearn(seed, zero_division):
    y_true, y_pred, k = _random_labels(seed)
    label_sets = [None, list(range(k + 2))]  # k and k + 1 never occur: empty classes
    if k > 1:
        label_sets.append(list(range(1, k)))  # a subset: micro is no longer the accuracy
    for labels in label_sets:
        for average in ("macro", "micro", "weighted", None):
            want = sklearn_metrics.precision_recall_fscore_support(
                y_true, y_pred, average=average, labels=labels, zero_division=zero_division)[:3]
            got = metrics.precision_recall_f1(y_true, y_pred, average=average, labels=labels,
                                              zero_division=zero_division)
            for g, w in zip(got, want):
                assert _close(g, w), (labels, average, got, want)
    yb_true, yb_pred = (y_true % 2), (y_pred % 2)
    for pos_label in (0, 1):
        want = sklearn_metrics.precision_recall_fscore_support(
            yb_true, yb_pred, average="binary", pos_label=pos_label, zero_division=zero_division)[:3]
        got = metrics.precision_recall_f1(yb_true, yb_pred, average="binary", pos_label=pos_label,
                                          zero_division=zero_division)
        assert _close(got, want), (pos_label, got, want)
        assert _close(metrics.precision(yb_true, yb_pred, pos_label=pos_label, zero_division=zero_division), want[0])
        assert _close(metrics.recall(yb_true, yb_pred, pos_label=pos_label, zero_division=zero_division), want[1])
        assert _close(metrics.f1_score(yb_true, yb_pred, pos_label=pos_label, zero_division=zero_division), want[2])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=30),
       st.sampled_from(["macro", "micro", "weighted"]))
def test_f1_matches_sklearn_on_any_labels(pairs, average):
    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]
    want = sklearn_metrics.f1_score(y_true, y_pred, average=average, labels=list(range(6)), zero_division=0)
    assert math.isclose(metrics.f1_score(y_true, y_pred, average=average, labels=list(range(6))), want,
                        rel_tol=0, abs_tol=1e-12)


@pytest.mark.parametrize("value", [0, 1])
def test_all_one_class_data(value):
    y = [value] * 7
    for zd in (0.0, 1.0):
        want = sklearn_metrics.precision_recall_fscore_support(y, y, average="binary", zero_division=zd)[:3]
        assert _close(metrics.precision_recall_f1(y, y, zero_division=zd), want)
        for average in ("macro", "micro", "weighted"):
            want = sklearn_metrics.precision_recall_fscore_support(
                y, y, average=average, labels=[0, 1], zero_division=zd)[:3]
            assert _close(metrics.precision_recall_f1(y, y, average=average, labels=[0, 1], zero_division=zd), want)
    # hand-worked: all 1 and all right -> perfect; all 0 with pos_label=1 -> nothing to find, zero_division
    expected = (1.0, 1.0, 1.0) if value == 1 else (0.0, 0.0, 0.0)
    assert metrics.precision_recall_f1(y, y) == expected
    assert metrics.accuracy(y, y) == 1.0
    np.testing.assert_array_equal(metrics.confusion_matrix(y, y), [[7]])


def test_constant_classifier_on_imbalanced_data():
    # chapter 10's point: 95% accuracy, and F1 0 for the class that matters
    y_true = [1] * 5 + [0] * 95
    y_pred = [0] * 100
    assert metrics.accuracy(y_true, y_pred) == 0.95
    assert metrics.precision_recall_f1(y_true, y_pred) == (0.0, 0.0, 0.0)
    assert metrics.precision(y_true, y_pred, zero_division=1.0) == 1.0  # never predicted: 0/0
    assert metrics.f1_score(y_true, y_pred, average="macro") == pytest.approx(0.5 * 2 * 95 / 195)
    assert metrics.f1_score(y_true, y_pred, average="micro") == 0.95


def test_string_labels_and_pos_label():
    y_true = ["pos", "neg", "pos", "pos", "neg"]
    y_pred = ["pos", "pos", "neg", "pos", "neg"]
    got = metrics.precision_recall_f1(y_true, y_pred, pos_label="pos")
    want = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label="pos")[:3]
    assert _close(got, want) and got == (2 / 3, 2 / 3, 2 / 3)
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, labels=["pos", "neg"]), [[2, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"pos_label=1 is not a label.*'neg', 'pos'"):
        metrics.precision_recall_f1(y_true, y_pred)


def test_input_kinds_agree():
    y_true, y_pred, _ = _random_labels(3)
    ref = metrics.precision_recall_f1(y_true, y_pred, average="weighted")
    for conv in (list, np.asarray, torch.as_tensor, lambda a: np.asarray(a, dtype=np.float32),
                 lambda a: torch.as_tensor(a, dtype=torch.int32)):
        assert metrics.precision_recall_f1(conv(y_true), conv(y_pred), average="weighted") == ref
        assert metrics.accuracy(conv(y_true), conv(y_pred)) == metrics.accuracy(y_true, y_pred)
    np.testing.assert_array_equal(metrics.confusion_matrix([True, False, True], [True, True, True]), [[0, 1], [0, 2]])


def test_per_class_scores_are_arrays_in_label_order():
    p, r, f = metrics.precision_recall_f1([0, 1, 2, 2], [0, 2, 2, 1], average=None, labels=[2, 0, 1, 3])
    np.testing.assert_allclose(p, [0.5, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(r, [0.5, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(f, [0.5, 1.0, 0.0, 0.0])
    # weighted over classes that never occur: every weight is 0, so the plain mean (scikit-learn's rule)
    for zd in (0.0, 1.0):
        want = sklearn_metrics.precision_recall_fscore_support(
            [0, 1, 1], [0, 1, 0], average="weighted", labels=[5, 6], zero_division=zd)[:3]
        assert metrics.precision_recall_f1([0, 1, 1], [0, 1, 0], average="weighted", labels=[5, 6],
                                           zero_division=zd) == want == (zd, zd, zd)
    # zero_division=nan leaves the empty class 3 out of the macro mean
    assert metrics.f1_score([0, 1, 2, 2], [0, 2, 2, 1], average="macro", labels=[0, 1, 2, 3], zero_division=NAN) == 0.5


def test_empty_inputs():
    with pytest.raises(ValueError, match="empty"):
        metrics.accuracy([], [])
    with pytest.raises(ValueError, match="empty"):
        metrics.precision_recall_f1(np.array([], dtype=int), np.array([], dtype=int), average="macro")
    # counts of nothing are zeros (scikit-learn 1.9 raises here instead)
    np.testing.assert_array_equal(metrics.confusion_matrix([], [], labels=[0, 1]), np.zeros((2, 2)))
    assert metrics.confusion_matrix([], []).shape == (0, 0)
    np.testing.assert_array_equal(metrics.confusion_matrix([0, 1], [1, 1], labels=[2, 3]), np.zeros((2, 2)))


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.accuracy([0, 1], [0]), "same length, got 2 and 1"),
    (lambda: metrics.accuracy([[0, 1]], [[0, 1]]), r"1-D .* shape \(1, 2\)"),
    (lambda: metrics.accuracy(torch.tensor([0.2, 0.9]), [0, 1]), "float32 .* not whole numbers"),
    (lambda: metrics.accuracy([0, 1], [0, float("nan")]), "not whole numbers"),
    (lambda: metrics.accuracy("01", "01"), "got str"),
    (lambda: metrics.accuracy([None, 1], [0, 1]), "dtype object"),
    (lambda: metrics.accuracy(["a", "b"], [0, 1]), "mix string and number"),
    (lambda: metrics.f1_score([0, 1, 2], [0, 1, 2]), "at most two labels, got 3"),
    (lambda: metrics.f1_score([0, 2], [0, 2]), r"pos_label=1 .* one of \[0, 2\]"),
    (lambda: metrics.f1_score([0, 1], [0, 1], average="mean"), "average must be one of"),
    (lambda: metrics.f1_score([0, 1], [0, 1], zero_division="warn"), "zero_division must be .* got 'warn'"),
    (lambda: metrics.f1_score([0, 1], [0, 1], zero_division=0.5), "zero_division must be 0.0, 1.0 or nan, got 0.5"),
    (lambda: metrics.f1_score([0, 1], [0, 1], average="macro", labels=[]), "at least one label"),
    (lambda: metrics.f1_score([0, 1], [0, 1], average="macro", labels=[1, 1]), r"repeat a label, got \[1, 1\]"),
    (lambda: metrics.f1_score([0, 1], [0, 1], average="macro", labels=["a"]), "mix strings and numbers"),
    (lambda: metrics.confusion_matrix([0, 1], [0, 1], labels=[]), "at least one label"),
])
def test_bad_classification_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------
# perplexity and bits per byte over a dataset


class _Uniform(torch.nn.Module):
    """Logits all 0: every one of V tokens has probability 1 / V."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.zeros(*x.shape, self.vocab) + 0 * self.dummy


def _tiny_gpt(seed=0):
    from lmcourse.model import GPT, GPTConfig
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16))


def _windows(n=10, t=12, vocab=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, t + 1), generator=g)


def test_lm_totals_of_a_uniform_model_is_the_vocabulary_size():
    tot = metrics.lm_totals(_Uniform(37), _windows(5, 8, 37), token_bytes=[2] * 37)
    assert tot.n_tokens == 40 and tot.n_bytes == 80
    # the per-token loss is float32, hence rel=1e-6
    assert tot.perplexity == pytest.approx(37, rel=1e-6)
    assert tot.bits_per_token == pytest.approx(math.log2(37), rel=1e-6)
    assert tot.bits_per_byte == pytest.approx(math.log2(37) / 2, rel=1e-6)


def test_lm_totals_agrees_with_the_models_own_loss():
    model = _tiny_gpt()
    model.train()
    w = _windows()
    tot = metrics.lm_totals(model, w, batch_size=3)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        logits, loss = model(w[:, :-1], w[:, 1:])
    assert tot.n_tokens == w[:, 1:].numel()
    assert tot.mean_nll == pytest.approx(loss.item(), rel=1e-5)
    want = losses.perplexity(logits.flatten(0, 1), w[:, 1:].flatten())
    assert tot.perplexity == pytest.approx(want.item(), rel=1e-5)
    # batching, and a list of chunks, change nothing but rounding
    for other in (metrics.lm_totals(model, w, batch_size=100), metrics.lm_totals(model, [w[:4], w[4:]])):
        assert other.total_nll == pytest.approx(tot.total_nll, rel=1e-9) and other.n_tokens == tot.n_tokens


def test_bits_per_byte_counts_the_bytes_of_the_predicted_tokens():
    model = _tiny_gpt(1)
    w = _windows(6, 10, seed=2)
    token_bytes = [i % 4 + 1 for i in range(40)]
    tot = metrics.lm_totals(model, w, token_bytes=torch.tensor(token_bytes))
    n_bytes = sum(token_bytes[i] for i in w[:, 1:].flatten().tolist())
    assert tot.n_bytes == n_bytes
    assert tot.bits_per_byte == losses.bits_per_byte(tot.total_nll, n_bytes)
    both = tot + metrics.LMTotals(3.0, 2, 5)
    assert (both.total_nll, both.n_tokens, both.n_bytes) == (tot.total_nll + 3.0, tot.n_tokens + 2, n_bytes + 5)
    assert (tot + metrics.LMTotals(1.0, 1)).n_bytes is None
    with pytest.raises(ValueError, match="needs n_bytes"):
        _ = metrics.lm_totals(model, w).bits_per_byte


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.lm_totals(_Uniform(5), torch.zeros(3, 4)), "integer token tensors.*float32"),
    (lambda: metrics.lm_totals(_Uniform(5), torch.zeros(3, 1, dtype=torch.long)), r"shape \(3, 1\)"),
    (lambda: metrics.lm_totals(_Uniform(5), torch.zeros(3, 4, dtype=torch.long), batch_size=0), "batch_size"),
    (lambda: metrics.lm_totals(_Uniform(5), torch.full((3, 4), 6), token_bytes=[1] * 5), "token_bytes has 5"),
    (lambda: metrics.lm_totals(_Uniform(5), torch.zeros(2, 4, dtype=torch.long), token_bytes=[-1] * 5), "byte count"),
    (lambda: metrics.lm_totals(torch.nn.Linear(3, 3), torch.zeros(2, 4, dtype=torch.long)), "logits|Long|float"),
    (lambda: metrics.LMTotals(float("inf"), 3), "finite"),
    (lambda: metrics.LMTotals(1.0, -1), "n_tokens"),
    (lambda: metrics.LMTotals(1.0, 2, 2.5), "n_bytes"),
    (lambda: metrics.LMTotals(0.0, 0).perplexity, "zero tokens"),
])
def test_bad_lm_input(call, match):
    with pytest.raises((ValueError, RuntimeError), match=match):
        call()


# --------------------------------------------------------------------------------------
# calibration


def test_ece_hand_worked():
    probs = [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45], [0.2, 0.8]]
    labels = [0, 1, 1, 0, 0]
    # confidences 0.9, 0.6, 0.7, 0.55, 0.8; correct 1, 0, 1, 1, 0; bins of width 0.2:
    # (0.4, 0.6]: 0.6 and 0.55, one right; (0.6, 0.8]: 0.7 and 0.8, one right; (0.8, 1]: 0.9, right
    rb = metrics.reliability_bins(probs, labels, n_bins=5)
    np.testing.assert_array_equal(rb.count, [0, 0, 2, 2, 1])
    np.testing.assert_allclose(rb.confidence[2:], [0.575, 0.75, 0.9])
    np.testing.assert_allclose(rb.accuracy[2:], [0.5, 0.5, 1.0])
    assert np.isnan(rb.confidence[:2]).all() and np.isnan(rb.accuracy[:2]).all()
    ece = (2 * 0.075 + 2 * 0.25 + 1 * 0.1) / 5
    assert metrics.expected_calibration_error(probs, labels, n_bins=5) == pytest.approx(ece)
    # one bin: |overall accuracy - mean confidence|
    assert metrics.expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(abs(3 / 5 - 3.55 / 5))


@pytest.mark.parametrize("seed", range(6))
def test_reliability_bins_match_sklearn_calibration_curve(seed):
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(500, 4, generator=g)
    probs = torch.softmax(logits, -1)
    labels = torch.randint(0, 4, (500,), generator=g)
    probs[:5] = torch.tensor([0.4, 0.2, 0.2, 0.2])  # a confidence exactly on an edge
    n_bins = 10
    rb = metrics.reliability_bins(probs, labels, n_bins)
    conf, pred = probs.double().max(-1)
    prob_true, prob_pred = sklearn_calibration.calibration_curve(
        (pred == labels).numpy().astype(int), conf.numpy(), n_bins=n_bins, strategy="uniform")
    keep = rb.count > 0
    np.testing.assert_allclose(rb.accuracy[keep], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rb.confidence[keep], prob_pred, rtol=0, atol=1e-12)
    assert rb.count.sum() == 500 and rb.count[3] >= 5  # 0.4 belongs to (0.3, 0.4]
    np.testing.assert_allclose(rb.edges, np.linspace(0, 1, 11))


def _calibrated_data(n, c, seed, sharpen=1.0):
    """Labels drawn from softmax(z): those probabilities are calibrated; logits sharpen * z are not."""
    g = torch.Generator().manual_seed(seed)
    z = 1.5 * torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z, -1), 1, generator=g).squeeze(1)
    return sharpen * z, y


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece():
    logits, y = _calibrated_data(20000, 5, seed=0, sharpen=3.0)
    t = metrics.fit_temperature(logits, y)
    assert t == pytest.approx(3.0, rel=0.05)
    before = metrics.expected_calibration_error(torch.softmax(logits, -1), y)
    after = metrics.expected_calibration_error(torch.softmax(logits / t, -1), y)
    assert before > 0.1 and after < 0.02
    calibrated, y2 = _calibrated_data(20000, 5, seed=1)
    assert metrics.expected_calibration_error(torch.softmax(calibrated, -1), y2) < 0.02


@pytest.mark.parametrize("seed", range(4))
def test_fit_temperature_is_the_nll_minimum(seed):
    logits, y = _calibrated_data(400, 3, seed, sharpen=[0.5, 1.0, 2.0, 4.0][seed])
    t = metrics.fit_temperature(logits, y)
    # oracle: LBFGS on log T with autograd, from T = 1
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    assert t == pytest.approx(log_t.exp().item(), rel=1e-5)
    nll = lambda temp: torch.nn.functional.cross_entropy(logits / temp, y).item()  # noqa: E731
    assert nll(t) <= min(nll(t * 1.01), nll(t / 1.01))
    assert metrics.fit_temperature(logits.float().numpy(), y.tolist()) == pytest.approx(t, rel=1e-4)


def test_fit_temperature_clamps_to_bounds():
    # labels the opposite of the argmax: the best temperature is infinite (uniform predictions)
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    assert metrics.fit_temperature(logits, [1, 0], bounds=(0.5, 10.0)) == pytest.approx(10.0, rel=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.reliability_bins([[0.5, 0.5]], [0], n_bins=0), "n_bins"),
    (lambda: metrics.reliability_bins([0.5, 0.5], [0, 1]), r"\(N, C\) .* shape \(2,\)"),
    (lambda: metrics.reliability_bins(np.zeros((0, 2)), []), "empty"),
    (lambda: metrics.reliability_bins([[2.0, -1.0]], [0]), "softmax"),
    (lambda: metrics.reliability_bins([[0.5, 0.6]], [0]), "sum to 1"),
    (lambda: metrics.reliability_bins([[0.5, 0.5]], [2]), r"\[0, 1\]"),
    (lambda: metrics.reliability_bins([[0.5, 0.5]], [0, 1]), "1 integer class"),
    (lambda: metrics.fit_temperature(torch.zeros(3), [0, 1, 0]), "shape"),
    (lambda: metrics.fit_temperature(torch.tensor([[float("nan"), 0.0]]), [0]), "finite"),
    (lambda: metrics.fit_temperature(torch.zeros(2, 2), [0, 5]), "integer classes"),
    (lambda: metrics.fit_temperature(torch.zeros(2, 2), [0, 1], bounds=(0.0, 1.0)), "bounds"),
    (lambda: metrics.ReliabilityBins(np.zeros(2), np.zeros(1, dtype=int), np.zeros(1), np.zeros(1)).ece, "no samples"),
])
def test_bad_calibration_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------
# exact match and token F1: SQuAD's official answers, worked by hand


@pytest.mark.parametrize("text, tokens", [
    ("The Quick, brown fox!", ["quick", "brown", "fox"]),          # case, punctuation, article
    ("  an   apple  a day ", ["apple", "day"]),                     # articles and spaces
    ("banana theory", ["banana", "theory"]),                        # a/the inside words stay
    ("Don't stop", ["dont", "stop"]),                               # punctuation goes, no space left
    ("1,000.5 $", ["10005"]),
    ("the", []),
    ("", []),
])
def test_normalize_answer_as_squad(text, tokens):
    assert metrics.normalize_answer(text) == tokens


@pytest.mark.parametrize("pred, gold, em, f1", [
    ("Denver Broncos", "Denver Broncos", 1.0, 1.0),
    ("the Denver Broncos!", "denver broncos", 1.0, 1.0),
    ("Broncos", "Denver Broncos", 0.0, 2 * 1 * 0.5 / 1.5),          # P 1, R 1/2
    ("Denver Broncos win", "Denver Broncos", 0.0, 2 * (2 / 3) * 1 / (2 / 3 + 1)),
    ("the the cat", "cat cat", 0.0, 2 * 1 * 0.5 / 1.5),             # articles gone: "cat" vs "cat cat"
    ("cat cat dog", "cat", 0.0, 2 * (1 / 3) * 1 / (1 / 3 + 1)),     # repeated tokens count once each
    ("Santa Clara", "Levi's Stadium", 0.0, 0.0),
    ("Levis Stadium", ["Levi's Stadium", "Santa Clara, California"], 1.0, 1.0),  # best gold
    ("Santa Clara", ["Levi's Stadium", "Santa Clara, California"], 0.0, 0.8),
    ("the", "a", 1.0, 1.0),                                          # both empty: v2.0's rule
    ("the", "cat", 0.0, 0.0),
])
def test_exact_match_and_token_f1(pred, gold, em, f1):
    assert metrics.exact_match(pred, gold) == em
    assert metrics.token_f1(pred, gold) == pytest.approx(f1, abs=1e-15)


def test_chinese_answers_score_characters():
    assert metrics.normalize_answer("北京大学。", tokenize="char") == ["北", "京", "大", "学"]
    assert metrics.token_f1("北京大学。", "北京", tokenize="char") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert metrics.exact_match("北京 ", "北京！", tokenize="char") == 1.0
    # whitespace tokens see one word each and no overlap
    assert metrics.token_f1("北京大学", "北京") == 0.0


def test_squad_scores_are_means():
    got = metrics.squad_scores(["Denver Broncos", "Broncos", "x"], ["Denver Broncos", "Denver Broncos", ["y", "x"]])
    assert got == {"exact_match": pytest.approx(2 / 3), "f1": pytest.approx((1 + 2 / 3 + 1) / 3)}
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        metrics.squad_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        metrics.squad_scores([], [])
    with pytest.raises(ValueError, match="empty list of gold"):
        metrics.token_f1("a", [])
    with pytest.raises(ValueError, match="strings, got int"):
        metrics.exact_match(3, "3")
    with pytest.raises(ValueError, match="tokenize"):
        metrics.normalize_answer("x", tokenize="word")


# --------------------------------------------------------------------------------------
# BLEU against sacrebleu, ROUGE-L against rouge-score

# (hypothesis, reference): lowercase, pre-tokenised, no punctuation, so that sacrebleu's
# tokenize="none" and rouge-score's default tokenizer both see exactly the whitespace tokens
PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),                       # identical
    ("the cat sat on the mat", "a cat was sitting on a mat"),
    ("", "the cat sat on the mat"),                                             # empty hypothesis
    ("dogs bark loudly", "the cat sat on the mat"),                             # no overlap
    ("the the the the the the the", "the cat is on the mat"),                   # clipping
    ("cat the mat on sat the", "the cat sat on the mat"),                       # same words, new order
    ("the cat", "the cat sat on the mat"),                                      # short: brevity penalty
    ("the cat sat on the mat and then it slept for a very long time", "the cat sat on the mat"),
    ("a", "a"),
    ("a b", "a b c d e"),
    ("there is a cat on the mat", "the cat is on the mat"),
    ("it is a guide to action which ensures that the military always obeys the commands of the party",
     "it is a guide to action that ensures that the military will forever heed party commands"),
    ("it is to insure the troops forever hearing the activity guidebook that party direct",
     "it is the practical guide for the army always to heed the directions of the party"),
    ("the quick brown fox jumps over the lazy dog", "the quick brown dog jumps over the lazy fox"),
    ("she sells sea shells by the sea shore", "she sells shells on the sea shore"),
    ("the model was trained on a small corpus", "we trained the model on a small corpus of stories"),
    ("once upon a time there was a little robot", "once upon a time there lived a small robot"),
    ("the robot found a red ball in the garden", "in the garden the robot found a ball that was red"),
    ("tom and lily went to the park", "lily and tom walked to the park together"),
    ("1 2 3 4 5 6 7 8", "1 2 3 4 5 6 7 8 9"),
    ("x y z", "z y x"),
    ("the end", "the end"),
    ("unrelated words only here", "a completely different sentence"),
    ("repeat repeat repeat", "repeat"),
]
SMOOTH = [("exp", None), ("none", None), ("floor", 0.1), ("floor", 0.5), ("add-k", 1.0), ("add-k", 2.0)]


def _sacre(hyps, ref_streams, method, value, tokenize="none"):
    scorer = sacrebleu.metrics.BLEU(tokenize=tokenize, smooth_method=method, smooth_value=value)
    return scorer.corpus_score(hyps, ref_streams)


@pytest.mark.parametrize("method, value", SMOOTH)
@pytest.mark.parametrize("seed", range(12))
def test_bleu_matches_sacrebleu(seed, method, value):
    rng = random.Random(seed)
    pairs = PAIRS if seed == 0 else rng.sample(PAIRS, rng.randint(1, len(PAIRS)))
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    want = _sacre(hyps, [refs], method, value)
    got = metrics.bleu(hyps, refs, smooth=method, smooth_value=value)
    assert got.score == pytest.approx(want.score, rel=1e-12, abs=1e-12)
    assert got.brevity_penalty == pytest.approx(want.bp, rel=1e-12)
    assert (got.hyp_len, got.ref_len) == (want.sys_len, want.ref_len)
    if method != "add-k":  # sacrebleu adds k to its own counts
        assert got.matches == list(want.counts) and got.totals == list(want.totals)
    assert got.precisions == pytest.approx(want.precisions, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("method, value", SMOOTH)
def test_bleu_each_sentence_as_a_corpus_matches_sacrebleu(method, value):
    for h, r in PAIRS:
        want = _sacre([h], [[r]], method, value).score
        assert metrics.bleu([h], [r], smooth=method, smooth_value=value).score == pytest.approx(want, abs=1e-12)


def test_bleu_with_several_references_matches_sacrebleu():
    rng = random.Random(0)
    hyps = [h for h, _ in PAIRS]
    refs1 = [r for _, r in PAIRS]
    refs2 = [rng.choice(PAIRS)[0] + " extra" for _ in PAIRS]  # other lengths: tests the closest-length rule
    refs3 = [" ".join(r.split()[::-1]) for r in refs1]
    for max_order in (4, 2):
        want = sacrebleu.metrics.BLEU(tokenize="none", max_ngram_order=max_order).corpus_score(hyps, [refs1, refs2, refs3])
        got = metrics.bleu(hyps, [list(t) for t in zip(refs1, refs2, refs3)], max_order=max_order)
        assert got.score == pytest.approx(want.score, rel=1e-12) and got.ref_len == want.ref_len


def test_bleu_reference_length_ties_go_to_the_shorter_reference():
    # hypothesis of 5 tokens, references of 6 and 4: both 1 away, the shorter (4) counts, so BP = 1
    hyps, refs = ["a b c d e"], [["a b c d e f", "a b c x"]]
    got = metrics.bleu(hyps, refs)
    want = _sacre(hyps, [[refs[0][0]], [refs[0][1]]], "exp", None)
    assert got.ref_len == want.ref_len == 4 and got.brevity_penalty == 1.0
    assert got.score == pytest.approx(want.score, rel=1e-12)
    got = metrics.bleu(["a b c"], [["a b c d", "a b"]])  # 4 and 2: the 2
    assert got.ref_len == 2


ZH = [
    ("我喜欢读书", "我喜欢看书"),
    ("今天天气很好", "今天的天气非常好"),
    ("他去了北京大学", "他去了北京"),
    ("猫坐在垫子上", "猫坐在垫子上"),
    ("", "小猫睡觉了"),
    ("机器学习很有趣", "深度学习很有意思"),
]


@pytest.mark.parametrize("sacre_tokenize", ["char", "zh"])
def test_bleu_on_chinese_characters_matches_sacrebleu(sacre_tokenize):
    hyps, refs = [h for h, _ in ZH], [r for _, r in ZH]
    for method, value in SMOOTH:
        want = _sacre(hyps, [refs], method, value, tokenize=sacre_tokenize)
        got = metrics.bleu(hyps, refs, smooth=method, smooth_value=value, tokenize="char")
        assert got.score == pytest.approx(want.score, rel=1e-12, abs=1e-12)
    # on words there is almost nothing to match: a sentence is one "word"
    assert metrics.bleu(hyps, refs, tokenize="whitespace").score < got.score


def test_bleu_hand_worked():
    # identical corpus: every precision 100, BP 1
    assert metrics.bleu(["a b c d"], ["a b c d"]).score == pytest.approx(100.0)
    # hypothesis 4 tokens, reference 8: BP = exp(1 - 8/4)
    got = metrics.bleu(["a b c d"], ["a b c d e f g h"])
    assert got.brevity_penalty == pytest.approx(math.exp(-1)) and got.score == pytest.approx(100 * math.exp(-1))
    assert metrics.bleu(["a b c"], ["a b c"]).score == 0.0  # no 4-grams in the corpus
    assert metrics.bleu(["a b c"], ["a b c"], max_order=3).score == pytest.approx(100.0)
    assert metrics.bleu(["abc"], ["abc"], tokenize="char", max_order=3).score == pytest.approx(100.0)
    assert metrics.bleu(["A-B"], ["a-b"], tokenize=lambda s: s.lower().split("-"), max_order=2).score == pytest.approx(100.0)
    assert metrics.brevity_penalty(4, 8) == pytest.approx(math.exp(-1))
    assert metrics.brevity_penalty(9, 8) == 1.0 and metrics.brevity_penalty(8, 8) == 1.0
    assert metrics.brevity_penalty(0, 8) == 0.0 and metrics.brevity_penalty(0, 0) == 0.0


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.bleu([], []), "empty"),
    (lambda: metrics.bleu("a b", ["a b"]), "list of strings, got str"),
    (lambda: metrics.bleu(["a"], ["a", "b"]), "1 hypotheses but 2 references"),
    (lambda: metrics.bleu(["a"], [[]]), "empty list of references"),
    (lambda: metrics.bleu([["a", "b"]], ["a b"]), "strings, got list"),
    (lambda: metrics.bleu(["a"], ["a"], smooth="add-one"), "smooth must be one of"),
    (lambda: metrics.bleu(["a"], ["a"], smooth="floor", smooth_value=0), "smooth_value"),
    (lambda: metrics.bleu(["a"], ["a"], max_order=0), "max_order"),
    (lambda: metrics.bleu(["a"], ["a"], tokenize="13a"), "tokenize must be one of"),
    (lambda: metrics.brevity_penalty(-1, 3), "hyp_len"),
    (lambda: metrics.brevity_penalty(1, 2.0), "ref_len"),
])
def test_bad_bleu_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_rouge_l_matches_rouge_score():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    worst = 0.0
    for h, r in PAIRS:
        want = scorer.score(r, h)["rougeL"]  # rouge-score takes (target, prediction)
        got = metrics.rouge_l(h, r)
        for g, w in zip((got.precision, got.recall, got.fmeasure), want):
            worst = max(worst, abs(g - w))
    assert worst <= 1e-15
    # corpus: the mean of the sentence scores
    got = metrics.corpus_rouge_l([h for h, _ in PAIRS], [r for _, r in PAIRS])
    assert got.fmeasure == pytest.approx(np.mean([scorer.score(r, h)["rougeL"].fmeasure for h, r in PAIRS]), rel=1e-12)
    assert got.recall == pytest.approx(np.mean([scorer.score(r, h)["rougeL"].recall for h, r in PAIRS]), rel=1e-12)
    # several references: the best F, as rouge-score's score_multi
    for h, r in PAIRS[:10]:
        refs = [r, PAIRS[-1][1], h[::-1]]
        want = scorer.score_multi(refs, h)["rougeL"]
        assert metrics.rouge_l(h, refs).fmeasure == pytest.approx(want.fmeasure, abs=1e-15)


def test_rouge_l_on_chinese_characters_matches_rouge_score():
    class Chars:
        def tokenize(self, text):
            return [ch for ch in text if not ch.isspace()]

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Chars())
    for h, r in ZH:
        want = scorer.score(r, h)["rougeL"]
        got = metrics.rouge_l(h, r, tokenize="char")
        assert (got.precision, got.recall, got.fmeasure) == pytest.approx(tuple(want), abs=1e-15)


def test_rouge_l_hand_worked():
    assert metrics.lcs_length("ABCBDAB", "BDCABA") == 4  # the textbook example (CLRS)
    assert metrics.lcs_length([], [1, 2]) == 0
    s = metrics.rouge_l("police killed the gunman", "police kill the gunman")  # Lin (2004): LCS 3
    assert (s.precision, s.recall, s.fmeasure) == (0.75, 0.75, 0.75)
    assert metrics.rouge_l("", "") == metrics.RougeScore(0.0, 0.0, 0.0)
    assert metrics.rouge_l("a b", "c d").fmeasure == 0.0
    with pytest.raises(ValueError, match="empty list"):
        metrics.rouge_l("a", [])
    with pytest.raises(ValueError, match="1 hypotheses but 2"):
        metrics.corpus_rouge_l(["a"], ["a", "b"])


# --------------------------------------------------------------------------------------
# contamination: the n-gram overlap detector against a brute-force substring search


def _brute_overlap(item, docs, n):
    """The fraction of item's word n-grams found, by searching each training text as a string."""
    w = metrics.words(item)
    if not w:
        return 0.0
    m = min(n, len(w))
    haystacks = [" " + " ".join(metrics.words(d)) + " " for d in docs]
    grams = [" " + " ".join(w[i:i + m]) + " " for i in range(len(w) - m + 1)]
    return sum(any(g in h for h in haystacks) for g in grams) / len(grams)


def _random_texts(rng, k, vocab="a b c d E, f. G!".split()):
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12))) for _ in range(k)]


@pytest.mark.parametrize("seed", range(12))
def test_ngram_overlap_matches_brute_force(seed):
    rng = random.Random(seed)
    docs, items, n = _random_texts(rng, rng.randint(1, 6)), _random_texts(rng, 20), rng.randint(1, 5)
    items += [docs[0], docs[-1] + " b"]                        # copied whole, and copied with a word added
    got = metrics.ngram_overlap(items, docs, n)
    assert got.dtype == np.float64 and got.shape == (len(items),)
    assert _close(got, [_brute_overlap(t, docs, n) for t in items])
    index = metrics.NGramIndex(docs, n)                        # an index built once gives the same answers
    assert _close(metrics.ngram_overlap(items, index, n=99), got)
    for threshold in (0.25, 0.5, 1.0):
        np.testing.assert_array_equal(metrics.contaminated(items, index, threshold=threshold), got >= threshold)


def test_ngram_overlap_hand_worked():
    docs = ["Mia loved the cake at the park.", "Tom cried all the way home."]
    # case and punctuation do not hide a copy
    assert metrics.ngram_overlap(["MIA, loved the cake -- at the PARK!"], docs, 3).tolist() == [1.0]
    # "the cake at the beach": 3-grams (the cake at) and (cake at the) found, (at the beach) not
    assert metrics.ngram_overlap("the cake at the beach", docs, 3).tolist() == [2 / 3]
    # an n-gram never spans two documents; one string is one document
    assert metrics.ngram_overlap("park tom cried", docs, 3).tolist() == [0.0]
    assert metrics.ngram_overlap("park tom cried", " ".join(docs), 3).tolist() == [1.0]
    # shorter than n: the whole item in a row, or nothing
    assert metrics.ngram_overlap(["cried all", "all cried", ""], docs, 8).tolist() == [1.0, 0.0, 0.0]
    assert metrics.ngram_overlap([], docs, 3).shape == (0,)
    # the threshold is inclusive
    assert metrics.contaminated(["a b c x"], ["a b c"], 2, threshold=2 / 3).tolist() == [True]
    assert metrics.contaminated(["a b c x"], ["a b c"], 2, threshold=0.7).tolist() == [False]
    assert repr(metrics.NGramIndex(docs, 4)) == "NGramIndex(2 documents, 13 words, n=4)"


def test_a_small_n_flags_templated_text_a_large_n_does_not():
    # two different sentences of one template share their short n-grams without any copying
    train, test = ["Mia loved the warm soup at the old park today"], ["Tom loved the warm soup at the old beach today"]
    assert metrics.contaminated(test, train, 3).tolist() == [True]
    assert metrics.contaminated(test, train, 8).tolist() == [False]


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.NGramIndex(["a"], 0), "n must be an int >= 1"),
    (lambda: metrics.NGramIndex(["a"], True), "n must be an int >= 1"),
    (lambda: metrics.NGramIndex(["a", ("b", 1)]), r"documents\[1\] must be a string.*not \(text, label\) pairs"),
    (lambda: metrics.NGramIndex(3), "documents must be a string or a list of strings"),
    (lambda: metrics.ngram_overlap(["a", 3], ["a"]), r"items\[1\] must be a string"),
    (lambda: metrics.contaminated(["a"], ["a"], threshold=0), r"threshold must be in \(0, 1\]"),
    (lambda: metrics.contaminated(["a"], ["a"], threshold=1.5), r"threshold must be in \(0, 1\]"),
    (lambda: metrics.contaminated(["a"], ["a"], threshold=True), r"threshold must be in \(0, 1\]"),
    (lambda: metrics.contaminated(["a"], ["a"], threshold="0.5"), r"threshold must be in \(0, 1\]"),
    (lambda: metrics.words(None), "texts must be strings"),
])
def test_bad_contamination_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
