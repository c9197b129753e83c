"""Chapter 10 exercises: macro and micro F1 from a confusion matrix, and SQuAD-style token F1.

Derived in chapters/10_evaluation.ipynb; practised in solutions/10_evaluation.ipynb.
The references are plain code; tests/test_ch09_11_checks.py proves they equal
lmcourse.metrics.f1_score (average="macro" and "micro") and lmcourse.metrics.token_f1.
"""
from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np
import torch

from lmcourse.checks import Case, Exercise, Wrong


def _ints(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random ints in [low, high), so a hidden seed changes sizes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------------ 10.1 F1 from a confusion matrix


def _f1_from_confusion(cm):
    cm = np.asarray(cm, dtype=np.float64)                   # (L, L): rows = true class, columns = predicted
    tp = np.diag(cm)                                        # (L,) the samples of class c predicted c
    predicted = cm.sum(axis=0)                              # (L,) TP + FP: everything predicted c
    actual = cm.sum(axis=1)                                 # (L,) TP + FN: everything that is c
    den = predicted + actual
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)  # 2TP / (2TP + FP + FN); 0 / 0 -> 0
    macro = float(f1.mean())                                # every class counts the same
    total = cm.sum()
    micro = float(tp.sum() / total) if total > 0 else 0.0   # summed counts: 2ΣTP / (ΣPred + ΣTrue) = accuracy
    return macro, micro


def _cm_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 101)

    def counts(L: int, *, high: int = 12) -> np.ndarray:
        cm = torch.randint(0, high, (L, L), generator=g)
        cm += torch.diag(torch.randint(3, 3 * high, (L,), generator=g))  # a classifier better than chance
        return cm.numpy().astype(np.int64)

    L, L2 = _ints(g, 2, 3, 7)
    imbalanced = counts(L2, high=5)
    imbalanced[0] *= 20                                     # one class holds most samples: weighted != macro
    never_predicted = counts(L)
    k = _ints(g, 1, 0, L)[0]
    never_predicted[:, k] = 0                               # class k occurs but is never predicted: P = 0 / 0
    never_predicted[k, (k + 1) % L] += 4                    # ... its samples go to another class
    empty = counts(L2)
    e = _ints(g, 1, 0, L2)[0]
    empty[e, :] = 0                                         # class e never occurs and is never predicted
    empty[:, e] = 0
    one_class = np.zeros((L, L), dtype=np.int64)
    one_class[k, k] = _ints(g, 1, 1, 50)[0]                 # every sample is class k, and predicted k
    return [
        Case((counts(L),), label="(L, L) counts"),
        Case((imbalanced,), label="imbalanced classes"),
        Case((counts(2, high=30),), label="2×2"),
        Case((never_predicted,), label="a class never predicted"),
        Case((empty,), label="an empty class: row and column zero"),
        Case((one_class,), label="all one class"),
    ]


def _cm_parts(cm):
    cm = np.asarray(cm, dtype=np.float64)
    return np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)


def _safe(num, den, zero):
    return np.divide(num, den, out=np.full_like(num, zero), where=den > 0)


def _cm_f1_of_means(cm):
    tp, pred, true = _cm_parts(cm)
    p, r = _safe(tp, pred, 0.0).mean(), _safe(tp, true, 0.0).mean()
    macro = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return float(macro), _f1_from_confusion(cm)[1]


def _cm_precision(cm):
    tp, pred, true = _cm_parts(cm)
    return float(_safe(tp, pred, 0.0).mean()), _f1_from_confusion(cm)[1]


def _cm_recall(cm):
    tp, pred, true = _cm_parts(cm)
    return float(_safe(tp, true, 0.0).mean()), _f1_from_confusion(cm)[1]


def _cm_zero_is_one(cm):
    tp, pred, true = _cm_parts(cm)
    return float(_safe(2 * tp, pred + true, 1.0).mean()), _f1_from_confusion(cm)[1]


def _cm_micro_as_macro(cm):
    macro = _f1_from_confusion(cm)[0]
    return macro, macro


def _cm_weighted(cm):
    tp, pred, true = _cm_parts(cm)
    f1 = _safe(2 * tp, pred + true, 0.0)
    return float(np.average(f1, weights=true)), _f1_from_confusion(cm)[1]


def _cm_present_only(cm):
    tp, pred, true = _cm_parts(cm)
    seen = (pred + true) > 0
    return float(_safe(2 * tp, pred + true, 0.0)[seen].mean()), _f1_from_confusion(cm)[1]


def _cm_swapped(cm):
    macro, micro = _f1_from_confusion(cm)
    return micro, macro


f1_from_confusion = Exercise(
    id="10.1",
    name="f1_from_confusion",
    title="Macro and micro F1 from a confusion matrix",
    reference=_f1_from_confusion,
    forbidden=(
        "lmcourse.metrics.f1_score",
        "lmcourse.metrics.precision_recall_f1",
        "lmcourse.metrics.precision",
        "lmcourse.metrics.recall",
        "lmcourse.metrics.accuracy",
        "sklearn.metrics.f1_score",
        "sklearn.metrics.fbeta_score",
        "sklearn.metrics.precision_recall_fscore_support",
        "sklearn.metrics.precision_score",
        "sklearn.metrics.recall_score",
        "sklearn.metrics.accuracy_score",
        "sklearn.metrics.classification_report",
    ),
    cases=_cm_cases,
    atol=1e-9,
    rtol=1e-9,
    wrong=[
        Wrong(_cm_f1_of_means, "you took the F1 of the mean precision and the mean recall: macro F1 is the MEAN of the "
              "per-class F1 scores, F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c), averaged over the classes."),
        Wrong(_cm_precision, "you returned the macro precision, TP / column sum: F1 needs both the column sum (what "
              "was predicted c) and the row sum (what is c), 2 TP / (row sum + column sum)."),
        Wrong(_cm_recall, "you returned the macro recall, TP / row sum: F1 needs both the row sum (what is c) and the "
              "column sum (what was predicted c), 2 TP / (row sum + column sum)."),
        Wrong(_cm_zero_is_one, "a class with 2TP + FP + FN = 0 (never occurs, never predicted) scored 1: the "
              "convention here (zero_division=0, scikit-learn's and the library's default) gives it 0, and it still "
              "counts in the macro mean."),
        Wrong(_cm_micro_as_macro, "your micro F1 is the macro F1: micro sums TP, FP and FN over the classes FIRST, "
              "then takes one F1, 2ΣTP / (ΣTP + ΣFP + ΣTP + ΣFN), which with every class included is the accuracy."),
        Wrong(_cm_weighted, "you weighted the classes by their support: macro F1 is the PLAIN mean over the classes, "
              "so a rare class counts as much as a common one (weighting is average='weighted')."),
        Wrong(_cm_present_only, "you left the empty class out of the macro mean: every class of the matrix counts, "
              "and an empty one scores 0 (zero_division=0), so it pulls the mean down, as scikit-learn does when "
              "given its labels."),
        Wrong(_cm_swapped, "you returned (micro, macro): return (macro F1, micro F1), in that order."),
    ],
    hint="Read three vectors off the matrix: the diagonal (true positives), the column sums (everything predicted "
    "as each class) and the row sums (everything that truly is each class). Per class, F1 is twice the true "
    "positives over the sum of the two totals; guard the classes where that total is 0. Macro averages those "
    "per-class scores; micro first sums the counts over all classes, then divides once.",
)

# ------------------------------------------------------------------ 10.2 SQuAD token F1


def _token_f1(prediction, golds):
    def tokens(text):                                       # SQuAD's normalize_answer, as a token list
        text = text.lower()
        text = "".join(ch for ch in text if ch not in string.punctuation)  # drop ASCII punctuation
        text = re.sub(r"\b(a|an|the)\b", " ", text)        # and the articles, as whole words
        return text.split()                                 # split also collapses runs of whitespace

    pred = tokens(prediction)
    best = 0.0
    for gold in golds:
        ref = tokens(gold)
        if not pred or not ref:                             # an empty answer: right only if both are empty
            score = float(pred == ref)
        else:
            same = sum((Counter(pred) & Counter(ref)).values())  # shared tokens, counted with multiplicity
            if same == 0:
                score = 0.0
            else:
                p, r = same / len(pred), same / len(ref)
                score = 2 * p * r / (p + r)
        best = max(best, score)                             # several golds: the best match counts
    return best


_WORDS = ("cat", "dog", "mat", "hat", "red", "blue", "sat", "ran", "home", "park", "tom", "lily", "ball", "tree")
_DECOR = ("", "", "", ",", ".", "!", "?", "'s")


def _tf1_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 102)

    def pick(seq, n):
        return [seq[i] for i in _ints(g, n, 0, len(seq))]

    def answer(n: int) -> str:
        words = [w + d for w, d in zip(pick(_WORDS, n), pick(_DECOR, n))]
        for i in _ints(g, max(1, n // 2), 0, n):            # articles and capitals to normalise away
            words[i] = pick(["the", "The", "a", "An"], 1)[0] + " " + words[i].capitalize()
        return " ".join(words)

    # The first cases each tell one mistake from all the others (distinct scores), so a report
    # names only the likely one: capitals and punctuation, then articles, then bags, then golds.
    order = torch.randperm(len(_WORDS), generator=g).tolist()
    w = [_WORDS[i] for i in order]                          # distinct words, in a random order
    k = _ints(g, 1, 1, 4)[0]
    mid = " ".join(w[1:k + 1])
    last = w[k + 1]
    # raw words share only `mid` (F1 k / (k + 3)); with the punctuation kept `last.` misses ((k + 1) / (k + 2))
    shout = (f"The {w[0].capitalize()} {mid} {last}.", [f"{w[0]} {mid} the {last}"])
    article = (f"The {w[0]} {w[1].capitalize()}", [f"{w[0]} {w[1]}"])  # articles kept: 0.8; raw words: 0.4
    a = _ints(g, 1, 2, 4)[0]
    # F1 4 / (2a + 3), precision 2 / (a + 1), recall 2 / (a + 2), and a set would see 0.8: all different
    repeated = (" ".join([w[2]] * a + [w[3]]), [" ".join([w[2]] + [w[3]] * a + [w[4]])])
    m = _ints(g, 1, 2, 4)[0]
    golds = [" ".join(w[7:7 + m]), "the " + " ".join(w[:m + 1]), answer(m)]
    best = " ".join(w[1:3] + [w[5]])                        # shares nothing with the first gold
    n1, n2, n3 = _ints(g, 3, 3, 8)
    art = pick(["a", "an", "the"], 1)[0]
    return [
        Case(shout, label="capitals, punctuation and an article"),
        Case(article, label="an article and a capital"),
        Case(repeated, label="repeated tokens: a bag, not a set"),
        Case((best, golds), label="several golds: the best counts"),
        Case((art, [art]), label="an article alone on both sides: 1"),
        Case((answer(n2), [answer(n3)]), label="two random answers"),
        Case((f"{w[6]}, {w[6]} {w[6]}!", [f"{w[6]}"]), label="one word repeated in the prediction"),
        Case(("The.", ["a", "an!"]), label="both empty after normalisation: 1"),
        Case((f"the {w[5]}", ["?"]), label="one side empty: 0"),
        Case((answer(n1), [answer(n2), "!!"]), label="a gold that normalises to nothing"),
    ]


def _tf1_variant(prediction, golds, *, norm=True, bag=True, articles=True, punct=True, first_only=False, what="f1",
                 empty_both=1.0, reduce=max):
    def tokens(text):
        if not norm:
            return text.split()
        text = text.lower()
        if punct:
            text = "".join(ch for ch in text if ch not in string.punctuation)
        if articles:
            text = re.sub(r"\b(a|an|the)\b", " ", text)
        return text.split()

    pred = tokens(prediction)
    scores = []
    for gold in golds[:1] if first_only else golds:
        ref = tokens(gold)
        if not pred or not ref:
            scores.append(empty_both if pred == ref else 0.0)
            continue
        if bag:
            same = sum((Counter(pred) & Counter(ref)).values())
            n_p, n_r = len(pred), len(ref)
        else:
            same, n_p, n_r = len(set(pred) & set(ref)), len(set(pred)), len(set(ref))
        p, r = same / n_p, same / n_r
        f1 = 2 * p * r / (p + r) if same else 0.0
        scores.append({"f1": f1, "precision": p, "recall": r}[what])
    return float(reduce(scores))


def _tf1_raw(prediction, golds):
    return _tf1_variant(prediction, golds, norm=False)


def _tf1_set(prediction, golds):
    return _tf1_variant(prediction, golds, bag=False)


def _tf1_articles_kept(prediction, golds):
    return _tf1_variant(prediction, golds, articles=False)


def _tf1_punct_kept(prediction, golds):
    return _tf1_variant(prediction, golds, punct=False)


def _tf1_first_gold(prediction, golds):
    return _tf1_variant(prediction, golds, first_only=True)


def _tf1_mean_gold(prediction, golds):
    return _tf1_variant(prediction, golds, reduce=lambda s: sum(s) / len(s))


def _tf1_precision(prediction, golds):
    return _tf1_variant(prediction, golds, what="precision")


def _tf1_recall(prediction, golds):
    return _tf1_variant(prediction, golds, what="recall")


def _tf1_both_empty_zero(prediction, golds):
    return _tf1_variant(prediction, golds, empty_both=0.0)


token_f1 = Exercise(
    id="10.2",
    name="token_f1",
    title="SQuAD-style token F1",
    reference=_token_f1,
    forbidden=(
        "lmcourse.metrics.token_f1",
        "lmcourse.metrics.squad_scores",
        "lmcourse.metrics.normalize_answer",
        "lmcourse.metrics._f1",
        "lmcourse.metrics._best_over_golds",
    ),
    cases=_tf1_cases,
    atol=1e-9,
    rtol=1e-9,
    wrong=[
        Wrong(_tf1_raw, "you compared the raw words: normalise both sides first, lower-case, remove punctuation, "
              "remove the articles a, an, the, then split on whitespace, so 'The Cat.' and 'cat' are the same answer."),
        Wrong(_tf1_set, "you counted shared tokens as a set: token F1 counts them with multiplicity (a bag: "
              "Counter(pred) & Counter(gold)), and precision and recall divide by the full token counts."),
        Wrong(_tf1_articles_kept, "you kept the articles: SQuAD's normalisation removes the words a, an and the "
              "(whole words only, after lower-casing), so 'the cat' and 'a cat' match exactly."),
        Wrong(_tf1_punct_kept, "you kept the punctuation: SQuAD's normalisation deletes every character of "
              "string.punctuation, so 'mat.' and 'mat' are the same token."),
        Wrong(_tf1_first_gold, "you scored against the first gold answer only: with several golds the score is the "
              "BEST F1 over them (annotators wrote different but correct answers)."),
        Wrong(_tf1_mean_gold, "you averaged over the gold answers: the score is the best (max) F1 over them."),
        Wrong(_tf1_precision, "you returned the precision (shared / prediction tokens): F1 is the harmonic mean of "
              "precision and recall, 2PR / (P + R)."),
        Wrong(_tf1_recall, "you returned the recall (shared / gold tokens): F1 is the harmonic mean of precision and "
              "recall, 2PR / (P + R)."),
        Wrong(_tf1_both_empty_zero, "when both answers normalise to nothing they agree: the score is 1.0 there (and "
              "0.0 when only one side is empty), SQuAD v2.0's rule for 'no answer'."),
    ],
    hint="First write the normalisation as its own small function that returns a list of tokens, and try it on "
    "'The Cat sat.'. Then for one gold: handle an empty side first; otherwise count how many tokens the two lists "
    "share, a token that appears twice in both counting twice (collections.Counter can intersect). Turn that count "
    "into precision and recall and combine them. Finally keep the best score over the golds.",
)
