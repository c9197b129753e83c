"""Chapter 13 exercises: the FLOPs of a GPT per token, and a power law fitted on log-log axes.

Derived in chapters/13_compute_scaling.ipynb; practised in solutions/13_compute_scaling.ipynb.
The references are plain code; tests/test_ch12_13_checks.py proves they equal
lmcourse.compute's `param_count` and `flops_per_token` on the same sizes, and that on an exact
power law the fit agrees with lmcourse.compute.fit_power_law (which fits c as well).
"""
from __future__ import annotations

import numpy as np
import torch

from lmcourse.checks import Case, Exercise, Wrong


def _ints(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random ints in [low, high), so a hidden seed changes sizes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------ 13.1 FLOPs per token


def _count_flops(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    V, L, d, b = vocab_size, n_layer, n_embd, int(bias)
    attention = d * 3 * d + b * 3 * d + d * d + b * d       # c_attn (d -> 3d) and c_proj (d -> d)
    mlp = d * n_inner + b * n_inner + n_inner * d + b * d   # c_fc (d -> n_inner) and c_proj (n_inner -> d)
    norms = 2 * (d + b * d)                                 # ln_1 and ln_2: a weight and a bias each
    n_params = L * (attention + mlp + norms) + (d + b * d)  # + ln_f; wte and wpe are lookups, not in N
    forward = 2 * n_params + 2 * V * d + 4 * L * T * d      # the weights, the tied lm_head, QKᵀ and AV
    return n_params, forward, 3 * forward                   # backward: two products per forward product


def _fl_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 131)

    def sizes(n_layer: int | None = None, bias: bool = True, inner: float | None = 4):
        V, L = _ints(g, 1, 50, 5000)[0], n_layer or _ints(g, 1, 2, 13)[0]
        d = 16 * _ints(g, 1, 2, 33)[0]
        block = 64 * _ints(g, 1, 2, 17)[0]
        n_inner = 4 * d if inner == 4 else 16 * _ints(g, 1, 1, 65)[0]
        return V, block, L, d, n_inner, bias

    def t_in(block: int) -> int:
        return _ints(g, 1, 2, block + 1)[0]

    cases = []
    for label, kw in (("random sizes, T up to block_size", {}), ("no bias", {"bias": False}),
                      ("n_inner is not 4 * n_embd", {"inner": None}), ("1 layer", {"n_layer": 1})):
        V, block, L, d, n_inner, bias = sizes(**kw)
        cases.append(Case((V, block, L, d, n_inner, bias, t_in(block)), label=label))
    V, block, L, d, n_inner, bias = sizes()
    cases.append(Case((V, block, L, d, n_inner, bias, 1), label="T = 1"))
    T = 256 * _ints(g, 1, 1, 5)[0]
    cases.append(Case((50257, 1024, 12, 768, 3072, True, T),
                      label="GPT-2 small sizes: the tied lm_head is compute outside N"))
    return cases


def _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, *, weights=2, lm_head=True, attention=4,
                t_power=1, embeddings=False, biases=True, norms=True, ln_f=True, training=3):
    V, L, d = vocab_size, n_layer, n_embd
    b = int(bias and biases)
    n_params = L * (4 * d * d + 4 * b * d + 2 * d * n_inner + b * (n_inner + d))
    if norms:
        n_params += L * 2 * (d + int(bias) * d) + (d + int(bias) * d if ln_f else 0)
    if embeddings:
        n_params += V * d + block_size * d
    forward = weights * n_params + (2 * V * d if lm_head else 0) + attention * L * T**t_power * d
    return n_params, forward, training * forward


def _fl_no_attention(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, attention=0)


def _fl_6n_forward(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, weights=6)


def _fl_training_2x(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, training=2)


def _fl_embeddings_as_matmuls(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, embeddings=True)


def _fl_no_lm_head(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, lm_head=False)


def _fl_t_squared(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, t_power=2)


def _fl_causal_half(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, attention=2)


def _fl_no_biases(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, biases=False)


def _fl_no_layernorms(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, norms=False)


def _fl_no_ln_f(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T):
    return _fl_variant(vocab_size, block_size, n_layer, n_embd, n_inner, bias, T, ln_f=False)


count_flops = Exercise(
    id="13.1",
    name="count_flops",
    title="The FLOPs of a GPT per token",
    reference=_count_flops,
    forbidden=(
        "lmcourse.compute.flops_per_token",
        "lmcourse.compute.training_flops",
        "lmcourse.compute.counted_flops_per_token",
        "lmcourse.compute.param_count",
        "lmcourse.compute.param_breakdown",
        "lmcourse.model.GPT.num_params",
    ),
    cases=_fl_cases,
    atol=0.5,     # counts are integers: an answer in floats must still be exact (ln_f alone is 2·d of millions)
    rtol=0.0,
    wrong=[
        Wrong(_fl_no_attention, "you left out the attention: 2·N counts the products with the WEIGHTS, but "
              "QKᵀ and AV multiply activations by activations, 4·L·T·d FLOPs per token, growing with T."),
        Wrong(_fl_6n_forward, "your FORWARD pass uses 6·N: a forward pass is 2 FLOPs (a multiply and an add) "
              "per weight, 2·N; the 6·N of the rule of thumb is a training step, forward and backward."),
        Wrong(_fl_training_2x, "your training step is twice the forward: the backward pass of a matrix product "
              "is TWO products of its size (the gradient for the input and the one for the weight), so forward + "
              "backward is 3 times the forward."),
        Wrong(_fl_embeddings_as_matmuls, "you counted the embedding tables in N: wte and wpe are looked up (a "
              "gather, no multiplications), so N leaves them out; the lm_head's product with wte is added "
              "separately, 2·V·d."),
        Wrong(_fl_no_lm_head, "you left out the lm_head: its weight is wte (tied), so it is not in N, but "
              "logits = h @ wteᵀ is a real (V × d) product, 2·V·d FLOPs per token."),
        Wrong(_fl_t_squared, "your attention term grows with T²: that is the whole sequence's cost. Per TOKEN, "
              "one query meets T keys in QKᵀ and T values in AV, 2·T·d each per layer: 4·L·T·d."),
        Wrong(_fl_causal_half, "you counted the causal half of the attention, 2·L·T·d (Kaplan et al.'s term): "
              "this model computes the full T × T square of scores and masks it afterwards, 4·L·T·d."),
        Wrong(_fl_no_biases, "you left out the Linear layers' biases: with bias=True each has one, 3d for "
              "c_attn, n_inner for c_fc and d for each c_proj, and N counts every parameter outside the "
              "embedding tables."),
        Wrong(_fl_no_layernorms, "you left out the LayerNorms: ln_1 and ln_2 in every block and the final ln_f "
              "have a weight (d) and, with bias, a bias (d); N counts them."),
        Wrong(_fl_no_ln_f, "you left out the final LayerNorm, ln_f, after the last block: its weight (d) and "
              "bias (d, with bias=True) are in N too."),
    ],
    hint="Count the parameters of one block first: the attention's two Linear layers (d to 3d, then d to d), the "
    "MLP's two (d to n_inner, then back), each with a bias when bias is True, and two LayerNorms. Multiply by "
    "the layers and add the final LayerNorm: that is N; the embedding tables stay out. A forward pass costs 2 "
    "FLOPs per weight, plus the tied output layer's product, plus the attention's two activation products "
    "over T positions in every layer. block_size is only the size of a table that is looked up.",
)

# ------------------------------------------------------------------ 13.2 power-law fit


def _loglog_fit(n, loss, c):
    x = np.log(n)                                     # log N
    y = np.log(loss - c)                              # log(L - c) = log a - alpha log N: a straight line
    x_mean, y_mean = x.mean(), y.mean()
    slope = ((x - x_mean) * (y - y_mean)).sum() / ((x - x_mean) ** 2).sum()  # least squares: cov / var
    intercept = y_mean - slope * x_mean               # the line passes through the means
    return float(np.exp(intercept)), float(-slope)    # (a, alpha)


def _pl_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 132)

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    def data(k: int, c: float, noise: float, shuffle: bool = False):
        """Losses of k model sizes between 1e5 and 1e9 parameters, L = a N^-alpha + c, (L - c) times e^(noise·z).
        Two points lie a decade or more apart: nearly equal sizes would make the slope hinge on rounding."""
        if k == 2:
            n = np.exp(np.array([u(np.log(1e5), np.log(1e6)), u(np.log(1e7), np.log(1e9))]))
        else:
            n = np.sort(np.exp(np.array([u(np.log(1e5), np.log(1e9)) for _ in range(k)])))
        if shuffle:
            n = n[torch.randperm(k, generator=g).numpy()]
        a, alpha = u(50.0, 1000.0), u(0.1, 0.5)
        z = torch.randn(k, generator=g, dtype=torch.float64).numpy()
        return n, a * n ** -alpha * np.exp(noise * z) + c, c

    k1, k2, k3, k4 = _ints(g, 4, 5, 13)
    return [
        Case(data(k1, round(u(1.5, 2.0), 3), 0.05), label="noisy losses above an irreducible loss c"),
        Case(data(k2, round(u(1.5, 2.0), 3), 0.0), label="an exact power law: a and alpha recovered"),
        Case(data(2, round(u(1.0, 2.0), 3), 0.05), label="two points: the line through them"),
        Case(data(k3, 0.0, 0.05), label="c = 0: a pure power law"),
        Case(data(k4, round(u(1.5, 2.0), 3), 0.05, shuffle=True), label="sizes in no particular order"),
    ]


def _pl_line(x, y):
    xm, ym = x.mean(), y.mean()
    slope = ((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum()
    return slope, ym - slope * xm


def _pl_axes_swapped(n, loss, c):
    x, y = np.log(n), np.log(loss - c)
    m, q = _pl_line(y, x)                              # log N = m log(L - c) + q, solved for log(L - c)
    return float(np.exp(-q / m)), float(1 / m)


def _pl_log10_intercept(n, loss, c):
    slope, intercept = _pl_line(np.log10(n), np.log10(loss - c))
    return float(np.exp(intercept)), float(-slope)     # a base-10 intercept undone with e


def _pl_sign_flipped(n, loss, c):
    slope, intercept = _pl_line(np.log(n), np.log(loss - c))
    return float(np.exp(intercept)), float(slope)


def _pl_c_not_subtracted(n, loss, c):
    slope, intercept = _pl_line(np.log(n), np.log(loss))
    return float(np.exp(intercept)), float(-slope)


def _pl_linear_space(n, loss, c):
    slope, intercept = _pl_line(n, loss - c)           # a straight line through (N, L - c)
    return float(intercept), float(-slope)


def _pl_semilog(n, loss, c):
    slope, intercept = _pl_line(n, np.log(loss - c))   # log of the loss, but not of N
    return float(np.exp(intercept)), float(-slope)


def _pl_end_points(n, loss, c):
    x, y = np.log(n), np.log(loss - c)
    slope = (y[-1] - y[0]) / (x[-1] - x[0])            # the line through the first and last points only
    return float(np.exp(y[0] - slope * x[0])), float(-slope)


loglog_fit = Exercise(
    id="13.2",
    name="loglog_fit",
    title="A power law fitted on log-log axes",
    reference=_loglog_fit,
    forbidden=(
        "lmcourse.compute.fit_power_law",
        "numpy.polyfit",
        "numpy.polynomial.polynomial.polyfit",
        "numpy.polynomial.Polynomial.fit",
        "numpy.linalg.lstsq",
        "torch.linalg.lstsq",
        "scipy.stats.linregress",
        "scipy.optimize.curve_fit",
    ),
    cases=_pl_cases,
    atol=1e-9,
    rtol=1e-7,
    wrong=[
        Wrong(_pl_axes_swapped, "you regressed log N on log(L - c): least squares minimises the errors of the "
              "variable you PREDICT, here log(L - c), so fit it as a line in log N (slope = cov(x, y) / var(x) "
              "with x = log N). Swapping the axes gives another line as soon as the points are noisy."),
        Wrong(_pl_log10_intercept, "your intercept is a base-10 logarithm undone with e: fit with the natural log "
              "throughout (or undo log10 with 10**intercept); alpha is the same in every base, a is not."),
        Wrong(_pl_sign_flipped, "your alpha has the wrong sign: the loss FALLS with N, so the slope of "
              "log(L - c) against log N is -alpha, and alpha = -slope > 0."),
        Wrong(_pl_c_not_subtracted, "you fitted log L: only L - c is a power law, log(L - c) = log a - alpha "
              "log N, so subtract the irreducible loss c before taking the log."),
        Wrong(_pl_linear_space, "you fitted a straight line to (N, L - c) in linear space: a power law is a "
              "straight line only on log-log axes, so take the log of both N and L - c first."),
        Wrong(_pl_semilog, "you took the log of the loss but not of N: that fits an exponential, "
              "L - c = a e^(-alpha N); a power law needs log N on the x axis."),
        Wrong(_pl_end_points, "you drew the line through the first and last points only: least squares uses "
              "every point, slope = Σ (x - x̄)(y - ȳ) / Σ (x - x̄)²."),
    ],
    hint="Take logs to turn the power law into a line: with x = log N and y = log(L - c), y = log a - alpha x. "
    "Fit that line by least squares, which has a closed form: the slope is the covariance of x and y over the "
    "variance of x, and the line passes through the point of the two means. Then read alpha off the slope "
    "(mind the sign) and a off the intercept (undo the log).",
)
