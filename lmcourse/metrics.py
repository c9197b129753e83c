"""Evaluation metrics: classification, language-model likelihood, calibration, QA, BLEU and ROUGE-L,
and an n-gram overlap detector for test items leaked into training data.

Every function here is checked against an outside oracle in tests/test_metrics.py:
scikit-learn for accuracy, precision / recall / F1 and the confusion matrix (and its
``calibration_curve`` for the reliability bins), sacrebleu for BLEU, rouge-score for ROUGE-L,
and the official SQuAD evaluation's known answers for exact match and token F1; the n-gram
overlap detector against a brute-force substring search of the training text.

Conventions, chosen once for the whole module:

- Labels and predictions are 1-D lists, NumPy arrays or torch tensors of class labels
  (ints, bools, strings, or floats that are whole numbers, as scikit-learn accepts). Scores
  or probabilities (floats that are not whole numbers) are refused: pass ``argmax`` first.
- Rates of nothing are undefined: accuracy, precision, recall and F1 of zero samples raise
  ``ValueError``. Counts of nothing are zero: the confusion matrix of zero samples is all 0.
- A ratio whose denominator is 0 (precision of a class never predicted, recall of a class
  that never occurs) is ``zero_division``: 0.0 by default, as scikit-learn's
  ``zero_division=0``; 1.0 or ``nan`` may be chosen, and ``nan`` leaves that class out of
  the macro and weighted means, as scikit-learn does.
- Classification, calibration and QA scores are fractions in [0, 1]; BLEU is on sacrebleu's
  0-100 scale, as papers report it; ROUGE-L is in [0, 1], as rouge-score reports it.

Used in chapters/10_evaluation.ipynb and chapters/11_applications.ipynb.
"""
from __future__ import annotations

import math
import numbers
import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lmcourse import losses

AVERAGES = ("binary", "macro", "micro", "weighted", None)

# --------------------------------------------------------------------------------------
# input checks


def _as_labels(name: str, y: Any) -> np.ndarray:
    """A 1-D NumPy array of class labels from a list, array or tensor; ValueError otherwise."""
    if isinstance(y, Tensor):
        y = y.detach().cpu().numpy()
    elif isinstance(y, (str, bytes)) or not hasattr(y, "__len__"):
        raise ValueError(f"{name} must be a 1-D sequence of class labels, got {type(y).__name__}")
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample), got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(
                f"{name} has dtype {a.dtype} with values that are not whole numbers: these look like "
                f"scores or probabilities; pass class labels (e.g. probs.argmax(-1))"
            )
        a = a.astype(np.int64)
    elif a.dtype.kind not in "biuU":
        raise ValueError(f"{name} must hold ints, bools or strings, got dtype {a.dtype}")
    return a


def _pair(y_true: Any, y_pred: Any, allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_labels("y_true", y_true), _as_labels("y_pred", y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and {len(p)}")
    if len(t) == 0 and not allow_empty:
        raise ValueError("y_true and y_pred are empty: a rate over zero samples is undefined")
    if len(t) and len(p) and (t.dtype.kind == "U") != (p.dtype.kind == "U"):
        raise ValueError(f"y_true and y_pred mix string and number labels ({t.dtype} and {p.dtype})")
    return t, p


def _check_zero_division(zero_division: float) -> float:
    try:
        z = float(zero_division)
    except (TypeError, ValueError):
        z = 0.5  # refused below
    if not (z in (0.0, 1.0) or math.isnan(z)):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division!r}")
    return z


def _label_list(name: str, labels: Any, data: np.ndarray) -> np.ndarray:
    a = _as_labels(name, labels)
    if len(a) and len(data) and (a.dtype.kind == "U") != (data.dtype.kind == "U"):
        raise ValueError(f"{name} {a.tolist()[:10]} and the data's labels ({data.dtype}) mix strings and numbers")
    if len(a) == 0:
        raise ValueError(f"{name} must name at least one label, got an empty list")
    if len(np.unique(a)) != len(a):
        raise ValueError(f"{name} must not repeat a label, got {a.tolist()}")
    return a


# --------------------------------------------------------------------------------------
# classification


def accuracy(y_true: Any, y_pred: Any) -> float:
    """The fraction of samples whose prediction equals the label. ValueError for zero samples."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def _index_of(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Position of each value in labels, or -1 for a value that is not a label."""
    order = np.argsort(labels, kind="stable")
    pos = np.searchsorted(labels[order], values)
    pos = np.clip(pos, 0, len(labels) - 1)
    found = labels[order][pos] == values
    return np.where(found, order[pos], -1)


def confusion_matrix(y_true: Any, y_pred: Any, labels: Any = None) -> np.ndarray:
    """Counts C (L, L), int64: C[i, j] = number of samples of true label i predicted as label j.

    Rows and columns follow ``labels`` (default: the sorted labels seen in either input). With
    ``labels`` given, a sample whose true or predicted label is not among them is not counted,
    and a label that never occurs gets a row and a column of zeros, as in scikit-learn. Counts
    of nothing are zero: zero samples, or no given label in ``y_true``, give the counts
    (zeros) where scikit-learn raises.
    """
    t, p = _pair(y_true, y_pred, allow_empty=True)
    labs = np.unique(np.concatenate([t, p])) if labels is None else _label_list("labels", labels, t)
    n = len(labs)
    if n == 0:
        return np.zeros((0, 0), dtype=np.int64)
    ti, pi = _index_of(t, labs), _index_of(p, labs)
    keep = (ti >= 0) & (pi >= 0)
    flat = np.bincount(ti[keep] * n + pi[keep], minlength=n * n)
    return flat.reshape(n, n).astype(np.int64)


def _divide(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, zero_division, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _mean(x: np.ndarray, weights: np.ndarray | None) -> float:
    """Mean that leaves out nan entries (zero_division=nan); all-zero weights mean an unweighted mean."""
    keep = ~np.isnan(x)
    if not keep.any():
        return float("nan")
    if weights is None or weights[keep].sum() == 0:
        return float(x[keep].mean())
    return float(np.average(x[keep], weights=weights[keep]))


def precision_recall_f1(
    y_true: Any,
    y_pred: Any,
    average: str | None = "binary",
    pos_label: Any = 1,
    labels: Any = None,
    zero_division: float = 0.0,
) -> tuple[Any, Any, Any]:
    """Precision, recall and F1, per class or averaged, as scikit-learn's precision_recall_fscore_support.

    Per class c: precision = TP / (TP + FP) (of the samples predicted c, how many are c),
    recall = TP / (TP + FN) (of the samples that are c, how many were found), and
    F1 = 2 TP / (2 TP + FP + FN), their harmonic mean. A zero denominator gives ``zero_division``.

    ``average``:
      "binary": the scores of class ``pos_label`` alone; the data may hold at most two labels.
      "macro": the plain mean over classes (every class counts the same, however rare).
      "micro": TP, FP and FN summed over the classes first; with every class included this
      is the accuracy, for all three scores.
      "weighted": the mean over classes weighted by each class's support (its true count).
      None: NumPy arrays with one score per class, in the order of ``labels``.
    ``labels`` (not for "binary") chooses the classes and their order: default, every label
    seen in either input. A given label that never occurs counts as a class with TP = FP = FN
    = 0, so its three scores are ``zero_division`` and it pulls a macro mean down (with 0).
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    z = _check_zero_division(zero_division)
    t, p = _pair(y_true, y_pred)
    present = np.unique(np.concatenate([t, p]))
    if average == "binary":
        if len(present) > 2:
            raise ValueError(
                f"average='binary' needs at most two labels, got {len(present)}: {present.tolist()[:10]}; "
                f"choose average='macro', 'micro', 'weighted' or None"
            )
        if pos_label not in present.tolist() and len(present) == 2:
            raise ValueError(f"pos_label={pos_label!r} is not a label of the data; it should be one of {present.tolist()}")
        labs = _label_list("pos_label", [pos_label], present)
    else:
        labs = present if labels is None else _label_list("labels", labels, present)
    ti, pi = _index_of(t, labs), _index_of(p, labs)
    n = len(labs)
    tp = np.bincount(ti[(ti >= 0) & (ti == pi)], minlength=n)
    pred_sum = np.bincount(pi[pi >= 0], minlength=n)
    true_sum = np.bincount(ti[ti >= 0], minlength=n)
    if average == "micro":
        tp, pred_sum, true_sum = tp.sum(keepdims=True), pred_sum.sum(keepdims=True), true_sum.sum(keepdims=True)
    precision = _divide(tp, pred_sum, z)
    recall = _divide(tp, true_sum, z)
    f1 = _divide(2 * tp, pred_sum + true_sum, z)  # = 2PR / (P + R) where both are defined
    if average is None:
        return precision, recall, f1
    weights = true_sum.astype(np.float64) if average == "weighted" else None
    return _mean(precision, weights), _mean(recall, weights), _mean(f1, weights)


def precision(y_true: Any, y_pred: Any, average: str | None = "binary", pos_label: Any = 1,
              labels: Any = None, zero_division: float = 0.0) -> Any:
    """Precision TP / (TP + FP); arguments as :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, average, pos_label, labels, zero_division)[0]


def recall(y_true: Any, y_pred: Any, average: str | None = "binary", pos_label: Any = 1,
           labels: Any = None, zero_division: float = 0.0) -> Any:
    """Recall TP / (TP + FN); arguments as :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, average, pos_label, labels, zero_division)[1]


def f1_score(y_true: Any, y_pred: Any, average: str | None = "binary", pos_label: Any = 1,
             labels: Any = None, zero_division: float = 0.0) -> Any:
    """F1 = 2 TP / (2 TP + FP + FN); arguments as :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, average, pos_label, labels, zero_division)[2]


# --------------------------------------------------------------------------------------
# language models over a dataset


@dataclass(frozen=True)
class LMTotals:
    """The summed negative log-likelihood of a dataset's predicted tokens, and what it covers.

    ``total_nll`` is in nats, summed (not averaged) over ``n_tokens`` predictions; ``n_bytes``
    is the UTF-8 length of the text those predicted tokens spell, when known. Sums are what
    combine correctly across batches and datasets (``a + b``); means are taken only at the end.
    """

    total_nll: float
    n_tokens: int
    n_bytes: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.total_nll) or self.total_nll < 0:
            raise ValueError(f"total_nll must be a finite sum of losses >= 0, got {self.total_nll}")
        if isinstance(self.n_tokens, bool) or not isinstance(self.n_tokens, int) or self.n_tokens < 0:
            raise ValueError(f"n_tokens must be an int >= 0, got {self.n_tokens!r}")
        if self.n_bytes is not None and (isinstance(self.n_bytes, bool) or not isinstance(self.n_bytes, int)
                                         or self.n_bytes < 0):
            raise ValueError(f"n_bytes must be an int >= 0 or None, got {self.n_bytes!r}")

    def __add__(self, other: "LMTotals") -> "LMTotals":
        if not isinstance(other, LMTotals):
            return NotImplemented
        nb = None if self.n_bytes is None or other.n_bytes is None else self.n_bytes + other.n_bytes
        return LMTotals(self.total_nll + other.total_nll, self.n_tokens + other.n_tokens, nb)

    @property
    def mean_nll(self) -> float:
        """The loss: mean NLL per predicted token, in nats."""
        if self.n_tokens == 0:
            raise ValueError("no tokens were predicted: the mean NLL of zero tokens is undefined")
        return self.total_nll / self.n_tokens

    @property
    def perplexity(self) -> float:
        """exp(mean NLL per token): depends on the tokenizer, so compare it only between models that share one."""
        return float(losses.perplexity_from_nll(self.mean_nll))

    @property
    def bits_per_token(self) -> float:
        return self.mean_nll / math.log(2)

    @property
    def bits_per_byte(self) -> float:
        """Total NLL in bits over the bytes of text predicted: comparable across tokenizers."""
        if self.n_bytes is None:
            raise ValueError("bits_per_byte needs n_bytes: pass token_bytes to lm_totals, or n_bytes to LMTotals")
        return losses.bits_per_byte(self.total_nll, self.n_bytes)


def _model_logits(model: torch.nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    logits = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(logits, Tensor) or logits.dim() != 3 or logits.shape[:2] != x.shape:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits (B, T, V) for inputs (B, T) = {tuple(x.shape)}, got {got}")
    return logits


@torch.no_grad()
def lm_totals(
    model: torch.nn.Module,
    windows: Tensor | Iterable[Tensor],
    batch_size: int = 32,
    token_bytes: Sequence[int] | Tensor | None = None,
) -> LMTotals:
    """Summed next-token NLL of ``model`` over token ``windows``: perplexity and bits per byte of a dataset.

    ``windows`` is a LongTensor (N, T + 1), as ``TokenData.windows`` returns, or an iterable of
    such tensors (a DataLoader): each window's first T tokens are the input and its last T the
    targets, so every window predicts T tokens. Pass non-overlapping windows to score each
    token of a text once. ``model(x)`` returns logits (B, T, V) or a tuple that starts with
    them (lmcourse's GPT returns (logits, loss)). ``token_bytes[i]`` is the UTF-8 length of
    token i (for a byte-level BPE ``len(tok.vocab[i])``); with it the result counts the bytes
    of every predicted token, so that ``bits_per_byte`` is ``losses.bits_per_byte`` of the
    whole dataset. Runs in eval mode on the model's device, in float32 for the loss, and
    puts the model back in the mode it was in.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    chunks = [windows] if isinstance(windows, Tensor) else list(windows)
    dev = next(model.parameters()).device
    nbytes_of = None
    if token_bytes is not None:
        nbytes_of = torch.as_tensor(token_bytes, dtype=torch.int64, device=dev)
        if nbytes_of.dim() != 1 or bool((nbytes_of < 0).any()):
            raise ValueError(f"token_bytes must be one byte count >= 0 per token id, got shape {tuple(nbytes_of.shape)}")
    total, n_tokens, n_bytes = torch.zeros((), dtype=torch.float64, device=dev), 0, 0
    was_training = model.training
    model.eval()
    try:
        for w in chunks:
            if not isinstance(w, Tensor) or w.dim() != 2 or w.dtype not in (torch.int64, torch.int32) or w.shape[1] < 2:
                got = f"{w.dtype} of shape {tuple(w.shape)}" if isinstance(w, Tensor) else type(w).__name__
                raise ValueError(f"windows must be integer token tensors (N, T + 1) with T >= 1, got {got}")
            for i in range(0, w.shape[0], batch_size):
                b = w[i:i + batch_size].to(dev, dtype=torch.int64)
                x, y = b[:, :-1], b[:, 1:]                               # (B, T), (B, T)
                logits = _model_logits(model, x).float()                 # (B, T, V)
                if nbytes_of is not None and int(y.max()) >= nbytes_of.numel():
                    raise ValueError(f"token_bytes has {nbytes_of.numel()} entries but a target id is {int(y.max())}")
                # per-token losses in float32, summed in float64: the sum does not drift with the batching
                total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").double().sum()
                n_tokens += y.numel()
                if nbytes_of is not None:
                    n_bytes += int(nbytes_of[y].sum())
    finally:
        model.train(was_training)
    return LMTotals(float(total), n_tokens, n_bytes if nbytes_of is not None else None)


# --------------------------------------------------------------------------------------
# calibration


@dataclass(frozen=True)
class ReliabilityBins:
    """Per bin of top-label confidence: its edges, count, mean confidence and accuracy.

    ``edges`` has n_bins + 1 entries from 0 to 1; bin b holds confidences in
    (edges[b], edges[b + 1]], the first bin also holding 0. Empty bins have count 0 and nan
    confidence and accuracy (a reliability diagram leaves them blank).
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """sum over bins of (count / N) * |accuracy - confidence|: the expected calibration error."""
        n = self.count.sum()
        if n == 0:
            raise ValueError("no samples: the calibration error of nothing is undefined")
        keep = self.count > 0
        gap = np.abs(self.accuracy[keep] - self.confidence[keep])
        return float(np.sum(self.count[keep] / n * gap))


def _probs_and_labels(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = probs.detach().cpu().double().numpy() if isinstance(probs, Tensor) else np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be class probabilities (N, C) with C >= 2, got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("probs is empty: calibration over zero samples is undefined")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must lie in [0, 1]: pass softmax(logits), not the logits")
    worst = float(np.abs(p.sum(axis=1) - 1).max())
    if worst > 1e-3:
        raise ValueError(f"each row of probs must sum to 1 (a row is off by {worst:.3g}): pass softmax(logits)")
    y = _as_labels("labels", labels)
    if len(y) != p.shape[0] or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be {p.shape[0]} integer class indices, got {len(y)} of dtype {y.dtype}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be in [0, {p.shape[1] - 1}], got {int(y.min())}..{int(y.max())}")
    return p, y


def reliability_bins(probs: Any, labels: Any, n_bins: int = 15) -> ReliabilityBins:
    """Bin the top-label confidence max_c p_c into n_bins equal-width bins of [0, 1].

    ``probs`` (N, C) are predicted class probabilities (rows sum to 1), ``labels`` (N) the
    true classes. Each sample's prediction is argmax p (the first on ties) and its
    confidence that max; per bin the accuracy is the fraction of correct predictions and
    the confidence their mean. A calibrated model has accuracy = confidence in every bin.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}")
    p, y = _probs_and_labels(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.searchsorted(edges[1:-1], conf, side="left")  # (lower, upper]; 0 lands in bin 0
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
        acc = np.bincount(b, weights=correct, minlength=n_bins) / count
    return ReliabilityBins(edges, count.astype(np.int64), mean_conf, acc)


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """ECE (Guo et al., 2017): sum_b (n_b / N) |acc_b - conf_b| over :func:`reliability_bins`.

    The gap between accuracy and confidence in each equal-width confidence bin, weighted by
    the fraction of samples in it. 0 for a calibrated model; its value depends on n_bins.
    """
    return reliability_bins(probs, labels, n_bins).ece


def fit_temperature(logits: Any, labels: Any, bounds: tuple[float, float] = (0.01, 100.0)) -> float:
    """The temperature T > 0 that minimises the mean NLL of ``softmax(logits / T)`` on ``labels``.

    ``logits`` (N, C), ``labels`` (N) integer classes (held-out data, not the training set).
    The NLL is convex in 1 / T, hence has a single minimum along log T, found by
    golden-section search over log T in ``bounds`` to float precision (deterministic, no
    learning rate). Dividing by T never changes the argmax, so accuracy is unchanged; T > 1
    softens an over-confident model. A minimum outside ``bounds`` returns the nearer bound.
    """
    z = logits.detach().cpu().double() if isinstance(logits, Tensor) else torch.as_tensor(np.asarray(logits, dtype=np.float64))
    if z.dim() != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(f"logits must be (N, C) with N >= 1 and C >= 2, got shape {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError("logits must be finite")
    y = _as_labels("labels", labels)
    if len(y) != z.shape[0] or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be {z.shape[0]} integer classes in [0, {z.shape[1] - 1}], got {y[:5].tolist()}...")
    lo_t, hi_t = float(bounds[0]), float(bounds[1])
    if not 0 < lo_t < hi_t or not math.isfinite(hi_t):
        raise ValueError(f"bounds must be 0 < low < high, got {bounds}")
    target = torch.as_tensor(y, dtype=torch.int64)

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_t), target))

    a, b = math.log(lo_t), math.log(hi_t)
    r = (math.sqrt(5) - 1) / 2
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = nll(c), nll(d)
    while b - a > 1e-10:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - r * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + r * (b - a)
            fd = nll(d)
    return math.exp((a + b) / 2)


# --------------------------------------------------------------------------------------
# text: tokenising for the text metrics

TOKENIZE = ("whitespace", "char")


def _tokens(text: str, tokenize: str | Callable[[str], Sequence[str]], name: str) -> list[str]:
    if not isinstance(text, str):
        raise ValueError(f"{name} must be strings, got {type(text).__name__}")
    if callable(tokenize):
        return list(tokenize(text))
    if tokenize == "whitespace":
        return text.split()
    if tokenize == "char":  # every character but whitespace: Chinese has no spaces between words
        return [ch for ch in text if not ch.isspace()]
    raise ValueError(f"tokenize must be one of {TOKENIZE} or a function str -> list of tokens, got {tokenize!r}")


def _references(references: Any, n: int) -> list[list[str]]:
    """Each entry: one reference string or a non-empty list of them -> list of lists."""
    if isinstance(references, str) or not hasattr(references, "__len__"):
        raise ValueError(f"references must be a list with one entry per hypothesis, got {type(references).__name__}")
    if len(references) != n:
        raise ValueError(f"got {n} hypotheses but {len(references)} references: one entry (a string or a list of strings) each")
    out = []
    for r in references:
        refs = [r] if isinstance(r, str) else list(r)
        if not refs:
            raise ValueError("a hypothesis has an empty list of references")
        out.append(refs)
    return out


def _hypotheses(hypotheses: Any) -> list[str]:
    if isinstance(hypotheses, str) or not hasattr(hypotheses, "__len__"):
        raise ValueError(f"hypotheses must be a list of strings, got {type(hypotheses).__name__}")
    if len(hypotheses) == 0:
        raise ValueError("hypotheses is empty: a score over zero sentences is undefined")
    return list(hypotheses)


# --------------------------------------------------------------------------------------
# exact match and token F1 (SQuAD)

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_ASCII_PUNCT = set(string.punctuation)


def normalize_answer(text: str, tokenize: str = "whitespace") -> list[str]:
    """SQuAD's answer normalisation, as tokens: lowercase, drop punctuation, drop a/an/the, split.

    The official SQuAD v1.1 script's ``normalize_answer`` (lowercase; remove every character
    of ``string.punctuation``; remove the words a, an, the; collapse whitespace), then split
    on whitespace. ``tokenize="char"`` is for Chinese, written without spaces between words:
    it also drops Unicode punctuation (，。！？ and the like) and returns single characters,
    as Chinese reading-comprehension evaluations (CMRC 2018) score character overlap.
    """
    if not isinstance(text, str):
        raise ValueError(f"answers must be strings, got {type(text).__name__}")
    if tokenize not in TOKENIZE:
        raise ValueError(f"tokenize must be one of {TOKENIZE}, got {tokenize!r}")
    s = text.lower()
    if tokenize == "char":
        s = "".join(ch for ch in s if ch not in _ASCII_PUNCT and not unicodedata.category(ch).startswith("P"))
    else:
        s = "".join(ch for ch in s if ch not in _ASCII_PUNCT)
    s = _ARTICLES.sub(" ", s)
    return _tokens(s, tokenize, "answers")


def _best_over_golds(pred: str, golds: Any, score: Callable[[list[str], list[str]], float], tokenize: str) -> float:
    gl = [golds] if isinstance(golds, str) else list(golds)
    if not gl:
        raise ValueError("an answer has an empty list of gold answers")
    p = normalize_answer(pred, tokenize)
    return max(score(p, normalize_answer(g, tokenize)) for g in gl)


def _em(p: list[str], g: list[str]) -> float:
    return float(p == g)


def _f1(p: list[str], g: list[str]) -> float:
    if not p or not g:  # an empty answer: 1 if both are empty, else 0 (SQuAD v2.0's rule)
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def exact_match(prediction: str, gold: str | Sequence[str], tokenize: str = "whitespace") -> float:
    """1.0 when the normalised prediction equals a normalised gold answer (the best of several), else 0.0."""
    return _best_over_golds(prediction, gold, _em, tokenize)


def token_f1(prediction: str, gold: str | Sequence[str], tokenize: str = "whitespace") -> float:
    """SQuAD's token F1: the harmonic mean of precision and recall of the shared tokens.

    Tokens are :func:`normalize_answer`'s, counted with multiplicity (a bag of words); with
    several gold answers the best F1 counts. When either side normalises to nothing the
    score is 1.0 if both do and 0.0 otherwise: SQuAD v2.0's rule (v1.1's script gives 0.0
    when both are empty, its only difference).
    """
    return _best_over_golds(prediction, gold, _f1, tokenize)


def squad_scores(predictions: Sequence[str], golds: Sequence[Any], tokenize: str = "whitespace") -> dict[str, float]:
    """Mean exact match and mean token F1 over a dataset, as fractions: {"exact_match": ..., "f1": ...}."""
    preds = _hypotheses(predictions)
    gold = _references(golds, len(preds))
    em = [exact_match(p, g, tokenize) for p, g in zip(preds, gold)]
    f1 = [token_f1(p, g, tokenize) for p, g in zip(preds, gold)]
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1))}


# --------------------------------------------------------------------------------------
# BLEU

SMOOTHING = ("exp", "floor", "add-k", "none")


@dataclass(frozen=True)
class BleuScore:
    """Corpus BLEU on the 0-100 scale, with the statistics it is made of."""

    score: float
    precisions: list[float]   # modified n-gram precisions, 0-100, after smoothing
    matches: list[int]        # clipped n-gram matches, n = 1..max_order
    totals: list[int]         # hypothesis n-grams, n = 1..max_order
    brevity_penalty: float
    hyp_len: int
    ref_len: int


def _ngrams(tokens: list[str], max_order: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for n in range(1, max_order + 1) for i in range(len(tokens) - n + 1))


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    max_order: int = 4,
    smooth: str = "exp",
    smooth_value: float | None = None,
    tokenize: str | Callable[[str], Sequence[str]] = "whitespace",
) -> BleuScore:
    """Corpus-level BLEU (Papineni et al., 2002), as sacrebleu computes it.

    ``references[i]`` is one reference string for ``hypotheses[i]`` or a list of several.
    For n = 1..max_order the modified precision p_n is the number of hypothesis n-grams
    found in a reference (each clipped to the largest count in any one reference), summed
    over the corpus, over the number of hypothesis n-grams. BLEU = BP * exp(mean log p_n),
    with the brevity penalty BP = 1 if c > r else exp(1 - r / c) (0 when c = 0), where c is
    the hypotheses' total length and r the sum over sentences of the reference length
    closest to the hypothesis (the shorter on ties). No n-gram matching at all gives 0.

    ``smooth`` (for a p_n with no match; sacrebleu's methods, from Chen & Cherry 2014):
      "none": BLEU is 0.
      "exp" (default, as sacrebleu and mteval-v13a): the k-th such order gets 1 / (2^k total_n).
      "floor": p_n = smooth_value / total_n (default 0.1).
      "add-k": for n >= 2, p_n = (matches + k) / (total + k), k = smooth_value (default 1).
    A corpus with fewer than n tokens in all has no n-grams for that order and scores 0
    (except with "add-k"), as sacrebleu does.

    ``tokenize``: "whitespace" splits on spaces (sacrebleu's ``tokenize="none"``: pass text
    already tokenised); "char" makes every non-space character a token (sacrebleu's "char",
    and its "zh" on Chinese text without Latin words): BLEU on characters, the usual choice
    for Chinese, which has no spaces to split on; or any function str -> tokens.
    """
    hyps = _hypotheses(hypotheses)
    refs = _references(references, len(hyps))
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"max_order must be an int >= 1, got {max_order!r}")
    if smooth not in SMOOTHING:
        raise ValueError(f"smooth must be one of {SMOOTHING}, got {smooth!r}")
    k = {"floor": 0.1, "add-k": 1.0}.get(smooth, 0.0) if smooth_value is None else float(smooth_value)
    if smooth in ("floor", "add-k") and not k > 0:
        raise ValueError(f"smooth_value for {smooth!r} must be > 0, got {smooth_value!r}")

    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, rs in zip(hyps, refs):
        h = _tokens(hyp, tokenize, "hypotheses")
        r_toks = [_tokens(r, tokenize, "references") for r in rs]
        h_ng = _ngrams(h, max_order)
        r_max: Counter = Counter()
        for r in r_toks:
            r_max |= _ngrams(r, max_order)  # | keeps the larger count: clip to the best single reference
        for g, cnt in h_ng.items():
            totals[len(g) - 1] += cnt
            matches[len(g) - 1] += min(cnt, r_max[g])
        hyp_len += len(h)
        ref_len += min((len(r) for r in r_toks), key=lambda n: (abs(n - len(h)), n))

    bp = 1.0 if hyp_len > ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0)
    precisions = [0.0] * max_order
    if not any(matches):
        return BleuScore(0.0, precisions, matches, totals, bp, hyp_len, ref_len)
    num = [float(m) for m in matches]
    den = [float(t) for t in totals]
    n_missing = 0
    for n in range(max_order):
        if smooth == "add-k" and n >= 1:
            num[n] += k
            den[n] += k
        if den[n] == 0:
            break  # no n-grams of this order or longer: p_n stays 0 and BLEU is 0
        if num[n] == 0:
            if smooth == "exp":
                n_missing += 1
                precisions[n] = 100.0 / (2 ** n_missing * den[n])
            elif smooth == "floor":
                precisions[n] = 100.0 * k / den[n]
        else:
            precisions[n] = 100.0 * num[n] / den[n]
    if min(precisions) == 0.0:
        return BleuScore(0.0, precisions, matches, totals, bp, hyp_len, ref_len)
    score = bp * math.exp(sum(math.log(p) for p in precisions) / max_order)
    return BleuScore(score, precisions, matches, totals, bp, hyp_len, ref_len)


def brevity_penalty(hyp_len: int, ref_len: int) -> float:
    """BLEU's brevity penalty: 1 when the hypotheses are longer than the references, else exp(1 - r / c)."""
    for name, v in (("hyp_len", hyp_len), ("ref_len", ref_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be an int >= 0, got {v!r}")
    if hyp_len > ref_len:
        return 1.0
    return math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0


# --------------------------------------------------------------------------------------
# ROUGE-L


@dataclass(frozen=True)
class RougeScore:
    """Precision, recall and F-measure, each in [0, 1]."""

    precision: float
    recall: float
    fmeasure: float


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence of a and b (in order, not necessarily adjacent)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _rouge_l_pair(hyp: list[str], ref: list[str]) -> RougeScore:
    if not hyp or not ref:  # nothing to match (rouge-score's convention, also when both are empty)
        return RougeScore(0.0, 0.0, 0.0)
    lcs = lcs_length(hyp, ref)
    p, r = lcs / len(hyp), lcs / len(ref)
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return RougeScore(p, r, f)


def rouge_l(
    hypothesis: str,
    reference: str | Sequence[str],
    tokenize: str | Callable[[str], Sequence[str]] = "whitespace",
) -> RougeScore:
    """Sentence ROUGE-L (Lin, 2004): P = LCS / len(hyp), R = LCS / len(ref), F = 2PR / (P + R).

    LCS is the longest common subsequence of the two token lists, so word order counts but
    gaps are allowed. An empty hypothesis or reference scores 0 (as rouge-score). With several
    references the one with the best F counts (rouge-score's ``score_multi``). ``tokenize`` as
    in :func:`bleu`: "whitespace", "char" (Chinese), or a function. Unlike rouge-score's default,
    text is not lowercased nor stripped of punctuation or non-ASCII: do that first, or pass
    a tokenizer that does; rouge-score's default tokenizer drops Chinese characters entirely.
    """
    refs = [reference] if isinstance(reference, str) else list(reference)
    if not refs:
        raise ValueError("reference is an empty list")
    h = _tokens(hypothesis, tokenize, "hypothesis")
    return max((_rouge_l_pair(h, _tokens(r, tokenize, "reference")) for r in refs), key=lambda s: s.fmeasure)


def corpus_rouge_l(
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    tokenize: str | Callable[[str], Sequence[str]] = "whitespace",
) -> RougeScore:
    """The mean over sentences of :func:`rouge_l`'s precision, recall and F-measure."""
    hyps = _hypotheses(hypotheses)
    refs = _references(references, len(hyps))
    scores = [rouge_l(h, r, tokenize) for h, r in zip(hyps, refs)]
    return RougeScore(*(float(np.mean([getattr(s, f) for s in scores])) for f in ("precision", "recall", "fmeasure")))


# --------------------------------------------------------------------------------------
# contamination: test items found in the training data


def words(text: str) -> list[str]:
    """The words a contamination check compares: lowercased runs of letters and digits (``\\w+``).

    Punctuation, case and spacing are dropped, so a test item copied into the training data
    with other quotes or capitals is still found (decontamination as in GPT-3's, Brown et al.
    2020, appendix C, which compares normalised 13-grams). Derived in chapters/10_evaluation.ipynb.
    """
    if not isinstance(text, str):
        raise ValueError(f"texts must be strings, got {type(text).__name__}")
    return re.findall(r"\w+", text.lower())


def _texts(name: str, texts: Any) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not hasattr(texts, "__iter__"):
        raise ValueError(f"{name} must be a string or a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(t).__name__} (pass the texts, not (text, label) pairs)")
    return out


class NGramIndex:
    """Every word n-gram of a training corpus, to look test items up in: the n-gram overlap detector.

    ``documents``: one string (a whole corpus) or a list of them (training examples); an n-gram
    never spans two documents. ``n``: the n-gram length in words (:func:`words`). Long n-grams
    are evidence of copying, short ones are not: templated or formulaic text shares its 3-grams
    without any leak, so a small n flags clean items (false positives), and a large n misses
    items that were leaked with a few words changed. GPT-3 used n = 13; this course's
    one-sentence items need less. Derived in chapters/10_evaluation.ipynb, which measures
    the detector's precision and recall against n on leaked test sentences.
    """

    def __init__(self, documents: str | Iterable[str], n: int = 8) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1 (words per n-gram), got {n!r}")
        self.n = n
        self._docs = [words(d) for d in _texts("documents", documents)]
        self._by_len: dict[int, set[tuple[str, ...]]] = {}

    def grams(self, m: int) -> set[tuple[str, ...]]:
        """The set of the corpus's m-word sequences (built on first use, then kept)."""
        if m not in self._by_len:
            self._by_len[m] = {tuple(d[i:i + m]) for d in self._docs for i in range(len(d) - m + 1)}
        return self._by_len[m]

    def overlap(self, text: str) -> float:
        """The fraction of ``text``'s word n-grams that occur in the corpus, in [0, 1].

        An item shorter than n words is one "n-gram", all of its words in a row: 1.0 if that
        sequence occurs in a training document, else 0.0. An item with no words scores 0.0
        (nothing in it can have been copied).
        """
        w = words(text)
        if not w:
            return 0.0
        m = min(self.n, len(w))
        seen = self.grams(m)
        grams = [tuple(w[i:i + m]) for i in range(len(w) - m + 1)]
        return sum(g in seen for g in grams) / len(grams)

    def __repr__(self) -> str:
        return f"NGramIndex({len(self._docs)} documents, {sum(map(len, self._docs))} words, n={self.n})"


def ngram_overlap(items: str | Sequence[str], training: NGramIndex | str | Iterable[str], n: int = 8) -> np.ndarray:
    """Per test item, the fraction of its word n-grams found in the training data: float64 (len(items),).

    ``training`` is an :class:`NGramIndex` (its own n is used) or the training texts, indexed
    here with ``n``. See :meth:`NGramIndex.overlap` for items shorter than n words. Zero items
    give an empty array. Derived in chapters/10_evaluation.ipynb.
    """
    index = training if isinstance(training, NGramIndex) else NGramIndex(training, n)
    return np.array([index.overlap(t) for t in _texts("items", items)], dtype=np.float64)


def contaminated(items: str | Sequence[str], training: NGramIndex | str | Iterable[str], n: int = 8,
                 threshold: float = 0.5) -> np.ndarray:
    """Which test items look leaked into the training data: bool (len(items),), overlap >= threshold.

    The n-gram overlap detector: an item is flagged when at least ``threshold`` of its word
    n-grams (:func:`ngram_overlap`) occur in the training data; threshold in (0, 1]. With 1.0
    only items copied whole are flagged; lower values also catch items leaked with an edit.
    Derived in chapters/10_evaluation.ipynb.
    """
    t = float(threshold) if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool) else math.nan
    if not 0 < t <= 1:
        raise ValueError(f"threshold must be in (0, 1] (a fraction of the n-grams), got {threshold!r}")
    return ngram_overlap(items, training, n) >= t
