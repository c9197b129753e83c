"""Chapter 00 exercises: a numerically stable softmax.

Derived in chapters/00_getting_started.ipynb; practised in solutions/00_getting_started.ipynb.
"""
from __future__ import annotations

import numpy as np

from lmcourse import forbid
from lmcourse.checks import Case, Exercise, Wrong


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)  # shift-invariant, and exp(z) <= 1 cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _shape(rng: np.random.Generator, ndim: int, low: int = 2, high: int = 7) -> tuple[int, ...]:
    """A random shape, so a hidden seed changes sizes as well as values."""
    return tuple(int(n) for n in rng.integers(low, high, size=ndim))


def _cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        Case((np.array([1.0, 2.0, 3.0]),), label="1-D"),
        Case((rng.normal(size=_shape(rng, 2)) * rng.uniform(1, 4),), label="2-D, default axis=-1"),
        Case((rng.normal(size=_shape(rng, 3)),), {"axis": 1}, label="3-D, axis=1"),
        Case((rng.normal(size=_shape(rng, 2)).astype(np.float32),), {"axis": 0}, label="float32, axis=0"),
        Case((np.array([[1000.0, 999.0, 998.0], [-3.0, 0.0, 3.0]]),), label="large logits (1000)"),
        Case((np.array([[1000.0, 999.0], [-1000.0, -1001.0]]),), label="rows far apart (±1000)"),
        Case((_SPREAD,), label="rows [0, 1000], [-1000, 1000], [800, 0], [-1000, -999]"),
    ]


# Rows whose max sits far above their min and their mean: only subtracting the max keeps every
# exponent <= 0 (the last row underflows when nothing is subtracted).
_SPREAD = np.array([[0.0, 1000.0], [-1000.0, 1000.0], [800.0, 0.0], [-1000.0, -999.0]])


def _no_max(x, axis=-1):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)


def _wrong_axis(x, axis=-1):
    z = x - x.max(axis=0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def _log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _global_max(x, axis=-1):
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max())
        return e / e.sum(axis=axis, keepdims=True)


def _row_min(x, axis=-1):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x - x.min(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


def _row_mean(x, axis=-1):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x - x.mean(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


stable_softmax = Exercise(
    id="0.1",
    name="stable_softmax",
    title="A numerically stable softmax",
    reference=_softmax,
    forbidden=("lmcourse.losses.softmax", "torch.softmax", "torch.nn.functional.softmax"),
    forbidden_ops=forbid.SOFTMAX + forbid.LOG_SOFTMAX,  # exp(log_softmax(x)) is a softmax in one call too
    cases=_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_no_max, "exp overflowed: you did not subtract the max before exp. "
              "exp(1000) is inf in floating point, and inf/inf is nan. softmax(x) = softmax(x - max(x)), so subtract it."),
        Wrong(_wrong_axis, "the probabilities sum to 1 along the wrong axis: use the `axis` argument "
              "in max and sum (with keepdims=True), not a fixed axis=0."),
        Wrong(_log_softmax, "these are log-probabilities (log-softmax): they are negative and their exp sums to 1. "
              "Return exp(z) / sum(exp(z)), not z - log(sum(exp(z)))."),
        Wrong(_global_max, "you subtracted the max of the whole array, not of each slice along `axis`: "
              "a row far below the global max underflows to 0/0 = nan. Use x.max(axis=axis, keepdims=True)."),
        Wrong(_row_min, "you subtracted each row's minimum: then the largest exponent is max - min, 1000 for the row "
              "[0, 1000], and exp(1000) overflows to inf. Subtract the max, so that every exponent is <= 0."),
        Wrong(_row_mean, "you subtracted each row's mean: for the row [-1000, 1000] the mean is 0 and exp(1000) still "
              "overflows. Only the max guarantees that every exponent is <= 0."),
    ],
    hint="softmax is shift-invariant: softmax(x) = softmax(x - c) for any c that is constant along the axis. "
    "Which c makes the largest exponent exactly 0, so nothing can overflow? Keep the reduced axis so it broadcasts.",
)


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _lse_naive(x, axis=-1):
    with np.errstate(over="ignore", divide="ignore"):
        return np.log(np.exp(x).sum(axis=axis))


def _lse_forgot_max(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return np.log(np.exp(x - m).sum(axis=axis))


def _lse_keepdims(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _lse_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed + 1)
    return [
        Case((np.array([0.0, 0.0]),), label="log 2"),
        Case((rng.normal(size=_shape(rng, 2)) * rng.uniform(1, 4),), label="2-D, axis=-1"),
        Case((rng.normal(size=_shape(rng, 3)),), {"axis": 0}, label="3-D, axis=0"),
        Case((np.array([[1000.0, 1000.0], [-1000.0, -999.0]]),), label="large logits (±1000)"),
        Case((_SPREAD,), label="rows [0, 1000], [-1000, 1000], [800, 0], [-1000, -999]"),
    ]


def _lse_row_min(x, axis=-1):
    m = x.min(axis=axis, keepdims=True)
    with np.errstate(over="ignore"):
        return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _lse_row_mean(x, axis=-1):
    m = x.mean(axis=axis, keepdims=True)
    with np.errstate(over="ignore"):
        return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


logsumexp = Exercise(
    id="0.2",
    name="logsumexp",
    title="log-sum-exp without overflow",
    reference=_logsumexp,
    forbidden=("torch.logsumexp",),
    forbidden_ops=forbid.LOGSUMEXP + forbid.LOG_SOFTMAX,  # x - log_softmax(x) holds log-sum-exp in every entry
    cases=_lse_cases,
    wrong=[
        Wrong(_lse_naive, "exp overflowed to inf: compute m + log(sum(exp(x - m))) with m the max along the axis."),
        Wrong(_lse_forgot_max, "you subtracted the max inside the exp but did not add it back outside the log: "
              "log Σ exp(x) = m + log Σ exp(x - m)."),
        Wrong(_lse_keepdims, "the axis you reduce over should disappear from the shape: "
              "use keepdims=True only for the max you subtract, then drop that axis from the result."),
        Wrong(_lse_row_min, "you factored out the row's minimum: exp(x - min) still overflows when the row spans "
              "1000 (e.g. [0, 1000]). Factor out the max m, so that every exp(x - m) <= 1."),
        Wrong(_lse_row_mean, "you factored out the row's mean: for [-1000, 1000] the mean is 0 and exp(1000) overflows. "
              "Factor out the max m, so that every exp(x - m) <= 1."),
    ],
    hint="Factor a constant out of the sum: Σ_j exp(x_j) = exp(m) Σ_j exp(x_j - m) for any m, so "
    "log Σ_j exp(x_j) = m + log Σ_j exp(x_j - m). Choose m so that no term can overflow.",
)


def _softmax_t(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return _softmax(x / temperature, axis=-1)


def _t_multiply(x, temperature=1.0):
    return _softmax(x * temperature, axis=-1)


def _t_after(x, temperature=1.0):
    return _softmax(x, axis=-1) / temperature


def _t_twice(x, temperature=1.0):
    return _softmax(x / temperature / temperature, axis=-1)


def _t_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed + 2)
    x = rng.normal(size=_shape(rng, 2, 2, 8)) * rng.uniform(1, 3)
    return [
        Case((x,), {"temperature": 1.0}, label="T=1 (plain softmax)"),
        Case((x,), {"temperature": 0.5}, label="T=0.5 (sharper)"),
        Case((x,), {"temperature": 4.0}, label="T=4 (flatter)"),
        Case((np.array([500.0, 0.0, -500.0]),), {"temperature": 0.1}, label="large logits, T=0.1"),
    ]


softmax_temperature = Exercise(
    id="0.3",
    name="softmax_temperature",
    title="Softmax with a temperature",
    reference=_softmax_t,
    cases=_t_cases,
    wrong=[
        Wrong(_t_multiply, "you multiplied the logits by the temperature: divide them, softmax(x / T), "
              "so a low temperature sharpens and a high one flattens."),
        Wrong(_t_after, "you divided the probabilities by T after the softmax, so they no longer sum to 1: "
              "divide the logits before the softmax."),
        Wrong(_t_twice, "you applied the temperature twice (x / T², e.g. once here and once more inside a helper): "
              "divide the logits by T exactly once."),
    ],
    hint="Scale the logits by the temperature so that T < 1 sharpens and T > 1 flattens, then reuse your "
    "stable softmax along the last axis.",
)
