"""What a GPT costs: its parameters and its FLOPs per token, in closed form.

Read top to bottom: where the parameters live (`param_breakdown`, summed by `param_count`,
equal to `GPT(config).num_params()` for every config), then the FLOPs of one token through
the model (`flops_per_token`), forward and for a training step, then the totals for a
training run (`training_flops`, the famous 6·N·D).

The FLOP count is a count of multiply-adds in the matrix products, 2 FLOPs each, which is
what dominates the run time and what `torch.utils.flop_counter.FlopCounterMode` counts.
With N the non-embedding parameter count (Kaplan et al. 2020's N: every parameter except the
token and position embedding tables), V the vocabulary, d = n_embd, L = n_layer and T the
context length, one token costs, forward:

    2·N          every weight of every block is used once per token, one multiply and one add
  + 2·V·d        the lm_head, logits = h @ wteᵀ: tied, so not in N, but it is real compute
  + 4·L·T·d      attention: QKᵀ and the weighted sum AV, 2·T·d each per layer

and a training step (forward + backward) costs three times that: the backward pass of a
matrix product needs two products of the same size (the gradient for the input and the one
for the weight). Left out, because they are O(d) per token per layer rather than O(d²) or
O(T·d): the embedding lookup (a gather, no multiplies) and the position add, the biases,
LayerNorm, GELU, softmax, the residual adds and the loss. 2·N does count the biases and the
LayerNorm parameters as 2 FLOPs each, which is about what those element-wise operations cost.

The attention term is where the literature differs by a factor of 2. Kaplan et al. (Table 1)
write 2·L·n_ctx·d; a causal model needs only the lower half of the T×T scores, and a kernel
that skips the masked half does 2·L·T·d. This model's attention (the written path and
PyTorch's math kernel alike) computes the full T×T square, 4·L·T·d, which is the default
here; `skip_masked=True` gives the half. Note that on CPU `FlopCounterMode` does not count
`F.scaled_dot_product_attention` at all (it has no formula for the CPU kernel): count the
attention with `GPTConfig(attention="written")`, whose matrix products it sees
(`counted_flops_per_token` does). On the real model the formula is the counter's count plus
exactly 2 FLOPs per bias and LayerNorm parameter (6 in training): within 1.5% for the small
models of `python -m lmcourse.compute`, which prints the table (tests/test_compute.py holds it).

Derived in chapters/06_transformer.ipynb.
"""
from __future__ import annotations

import numbers
from typing import Any

__all__ = ["param_breakdown", "param_count", "flops_per_token", "training_flops", "counted_flops_per_token"]

_FIELDS = ("vocab_size", "block_size", "n_layer", "n_embd")


def _sizes(config: Any) -> tuple[int, int, int, int, int, bool]:
    """(V, block_size, L, d, n_inner, bias) from a GPTConfig-like object; ValueError names a bad field."""
    values = []
    for name in _FIELDS:
        if not hasattr(config, name):
            raise ValueError(f"config must have a {name!r} field (a GPTConfig), got {type(config).__name__}")
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"config.{name} must be a positive int, got {v!r}")
        values.append(int(v))
    V, block_size, L, d = values
    n_inner = getattr(config, "n_inner", None)
    if n_inner is None:
        n_inner = 4 * d  # GPT-2's MLP is four times as wide as the residual stream
    elif isinstance(n_inner, bool) or not isinstance(n_inner, numbers.Integral) or n_inner < 1:
        raise ValueError(f"config.n_inner must be a positive int or None (4·n_embd), got {n_inner!r}")
    bias = getattr(config, "bias", True)
    if not isinstance(bias, bool):
        raise ValueError(f"config.bias must be True or False, got {bias!r}")
    return V, block_size, L, d, int(n_inner), bias


def param_breakdown(config: Any) -> dict[str, int]:
    """Where a GPT's parameters live: {"embeddings", "attention", "mlp", "layer_norms", "lm_head"}.

    embeddings: the token table wte (V, d) and the position table wpe (block_size, d).
    attention: per layer c_attn (d -> 3d) and c_proj (d -> d), weights and, with bias, biases.
    mlp: per layer c_fc (d -> n_inner) and c_proj (n_inner -> d).
    layer_norms: ln_1 and ln_2 per layer plus the final ln_f; each has a weight (d) and, with
    bias, a bias (d). lm_head: 0, because its weight is wte itself (tied), already counted.
    The values sum to `param_count(config, non_embedding=False)`.
    Derived in chapters/06_transformer.ipynb.
    """
    V, block_size, L, d, n_inner, bias = _sizes(config)
    b = int(bias)
    return {
        "embeddings": V * d + block_size * d,
        "attention": L * (d * 3 * d + b * 3 * d + d * d + b * d),
        "mlp": L * (d * n_inner + b * n_inner + n_inner * d + b * d),
        "layer_norms": (2 * L + 1) * (d + b * d),
        "lm_head": 0,
    }


def param_count(config: Any, *, non_embedding: bool = True) -> int:
    """The number of parameters of `GPT(config)`, in closed form.

    non_embedding=True (the default, as `GPT.num_params`) leaves out the token and position
    embedding tables: Kaplan et al.'s N, the count the FLOP formulas use. The lm_head is tied
    to the token table, so it is never counted twice. Equal to
    `GPT(config).num_params(non_embedding=...)` for every config (tests/test_compute.py).
    Derived in chapters/06_transformer.ipynb.
    """
    if not isinstance(non_embedding, bool):
        raise ValueError(f"non_embedding must be True or False, got {non_embedding!r}")
    parts = param_breakdown(config)
    total = sum(parts.values())
    return total - parts["embeddings"] if non_embedding else total


def _context(config: Any, T: Any) -> int:
    block_size = _sizes(config)[1]
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T (the context length) must be a positive int, got {T!r}")
    if T > block_size:
        raise ValueError(f"T={T} is longer than the model's context, config.block_size={block_size}")
    return int(T)


def flops_per_token(config: Any, T: int, *, training: bool = False, skip_masked: bool = False) -> int:
    """FLOPs to process one token in a sequence of T tokens: 2·N + 2·V·d + 4·L·T·d forward.

    N = `param_count(config)` (non-embedding), V·d the tied lm_head's matrix product, and
    4·L·T·d the attention scores QKᵀ and the weighted sum AV over all T keys (the full T×T
    square that this model computes). skip_masked=True counts only the causal half,
    2·L·T·d (Kaplan et al.'s term, what a kernel that skips masked blocks does).
    training=True: forward + backward, three times the forward (6·N + ...), since the
    backward of each matrix product is two products of its size. Left out: embedding lookup,
    biases, LayerNorm, GELU, softmax, residual adds and the loss (see the module docstring).
    Derived in chapters/06_transformer.ipynb.
    """
    for name, flag in (("training", training), ("skip_masked", skip_masked)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    T = _context(config, T)
    V, _, L, d, _, _ = _sizes(config)
    attention = (2 if skip_masked else 4) * L * T * d
    forward = 2 * param_count(config) + 2 * V * d + attention
    return 3 * forward if training else forward


def training_flops(config: Any, tokens: int | float, *, T: int | None = None) -> float:
    """FLOPs to train on `tokens` tokens: 6·N·D when T is None, else D·flops_per_token(training=True).

    6·N·D (N non-embedding, D = tokens) is the rule of thumb of Kaplan et al. and of the GPT-3
    paper (175B parameters, 300B tokens: 3.14e23 FLOPs); with T given, the lm_head and the
    attention at context T are added. Derived in chapters/06_transformer.ipynb.
    """
    if isinstance(tokens, bool) or not isinstance(tokens, numbers.Real) or not 0 <= tokens < float("inf"):
        raise ValueError(f"tokens must be a finite number >= 0, got {tokens!r}")
    if T is None:
        return 6.0 * param_count(config) * float(tokens)
    return float(flops_per_token(config, T, training=True)) * float(tokens)


def counted_flops_per_token(config: Any, T: int, *, training: bool = False) -> float:
    """FLOPs per token of the real `GPT(config)`, as `torch.utils.flop_counter.FlopCounterMode` counts them.

    Builds the model (with `attention="written"`, since the counter has no formula for the CPU
    kernel of `F.scaled_dot_product_attention`, and dropout 0), runs one sequence of T tokens
    forward (training=True: forward with a loss, then backward) and divides the counted FLOPs
    by T. The global random state is left as it was. For checking `flops_per_token` on small
    models: the whole model is built, so keep the config small.
    Derived in chapters/06_transformer.ipynb.
    """
    import dataclasses

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lmcourse.model import GPT

    if not isinstance(training, bool):
        raise ValueError(f"training must be True or False, got {training!r}")
    T = _context(config, T)
    config = dataclasses.replace(config, attention="written", dropout=0.0)
    with torch.random.fork_rng(devices=[]):  # GPT's init draws from the global generator
        model = GPT(config)
    idx = torch.zeros(1, T, dtype=torch.long)  # which tokens does not change the FLOPs
    with FlopCounterMode(display=False) as counter:
        _, loss = model(idx, targets=idx if training else None)
        if training:
            loss.backward()
    return counter.get_total_flops() / T


def _print_flop_table(configs: dict[str, Any] | None = None) -> None:
    """`python -m lmcourse.compute`: the formula against FlopCounterMode on small real models.

    One row per model, context T (16, 128 and the model's block_size, up to block_size) and
    pass; `ratio` is formula / counted, `kaplan` is 2·N + 2·L·T·d (×3 in training: no lm_head,
    the causal half of the attention) / counted, for comparison.
    """
    from lmcourse.model import GPTConfig

    configs = configs or {
        "L2 d64 V256": GPTConfig(vocab_size=256, block_size=512, n_layer=2, n_head=2, n_embd=64),
        "tiny (L4 d128 V512)": GPTConfig.tiny(),
        "L4 d256 V1000": GPTConfig(vocab_size=1000, block_size=512, n_layer=4, n_head=4, n_embd=256),
        "L2 d128 V50257 no bias": GPTConfig(vocab_size=50257, block_size=256, n_layer=2, n_head=4, n_embd=128,
                                            bias=False),
    }
    print(f"{'model':24} {'T':>5} {'pass':8} {'formula':>11} {'counted':>11} {'ratio':>7} {'kaplan':>7}")
    for name, config in configs.items():
        for T in sorted(t for t in {16, 128, config.block_size} if t <= config.block_size):
            for training in (False, True):
                formula = flops_per_token(config, T, training=training)
                counted = counted_flops_per_token(config, T, training=training)
                kaplan = (3 if training else 1) * (2 * param_count(config) + 2 * config.n_layer * T * config.n_embd)
                print(f"{name:24} {T:5d} {'fwd+bwd' if training else 'forward':8} {formula:11.4e} {counted:11.4e} "
                      f"{formula / counted:7.4f} {kaplan / counted:7.4f}")


if __name__ == "__main__":
    _print_flop_table()
