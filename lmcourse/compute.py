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

The second part (chapter 13) turns the counts into what training needs:
- memory: `training_memory` estimates the bytes of the weights, gradients, optimiser states
  and the activations autograd saves for the backward pass, from a formula per layer; and
  `measured_training_memory` measures the same four and the peak of one training step (the
  CUDA allocator's peak, or on CPU the live tensor storages tracked op by op);
- time and money: `training_cost` turns FLOPs (6·N·D, e.g. GPT-3's 3.15e23) into seconds,
  GPU-hours and a price at a stated peak throughput and utilisation;
- efficiency: `mfu`, the model-FLOPs utilisation of a measured tokens/s, against a peak such
  as `matmul_peak`, this machine's measured fp32 matrix-product FLOP/s.
- scaling laws: `fit_power_law` fits L(N) = a·N^(−alpha) + c to the losses of a family of
  models (least squares in L; chapter 13 trains five sizes for one compute budget).
`python -m lmcourse.compute` prints the FLOP table, then estimate against measurement for the
memory of a step, then GPT-3's cost on each accelerator of the datasheet constants below.
"""
from __future__ import annotations

import math
import numbers
import statistics
import time
import weakref
from typing import Any, NamedTuple

__all__ = [
    "param_breakdown", "param_count", "flops_per_token", "training_flops", "counted_flops_per_token",
    "OPTIMIZER_STATES", "training_memory", "measured_training_memory",
    "A100_BF16_FLOPS", "V100_FP16_FLOPS", "H100_BF16_FLOPS", "GPT3_PARAMS", "GPT3_TOKENS",
    "training_cost", "mfu", "matmul_peak", "PowerLawFit", "fit_power_law",
]

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


# ----------------------------------------------------------------------------- training memory

# per-parameter tensors each optimiser keeps: AdamW/Adam the running mean and the running mean
# of squares (2), plain SGD (momentum 0) nothing
OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd": 0}
_ACTIVATION_MODES = ("full",)


def _float_itemsize(dtype: Any) -> int:
    import torch

    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype (torch.float32, torch.bfloat16, ...), got {dtype!r}")
    return torch.empty((), dtype=dtype).element_size()


def _optimizer_states(optimizer: Any) -> int:
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZER_STATES)}, got {optimizer!r}")
    return OPTIMIZER_STATES[optimizer]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def training_memory(
    config: Any,
    batch_size: int,
    T: int,
    *,
    optimizer: str = "adamw",
    dtype: Any = None,
    activations: str = "full",
) -> dict[str, int]:
    """Bytes one training step of `GPT(config)` holds: {"weights", "gradients", "optimiser", "activations", "total"}.

    weights: every parameter once (the tied lm_head is wte), P = param_count(non_embedding=False)
    values of `dtype` (default torch.float32); gradients: one per parameter, P again; optimiser:
    `OPTIMIZER_STATES[optimizer]` tensors per parameter (AdamW: 2, the two running means).
    activations: what autograd saves in the forward pass for the backward pass, counted from
    this GPT's forward (lmcourse.model) op by op, with d = n_embd, f = d_ff, H = n_head, V the
    vocabulary, s the bytes of `dtype`, per token of the batch_size·T tokens:

      per layer, both paths:
        LayerNorm ×2     its input and its output (d each) and mean and 1/std (1 each): 4d + 4
        attention in/out the q, k, v the kernel reads (3d) and the merged heads c_proj reads (d): 4d
        MLP              c_fc's output, which GELU saves, and GELU's output, which c_proj saves:
                         2f (ReLU saves only its output, which is c_proj's input: f)
      attention="sdpa"   + the kernel's log-sum-exp per head, float32: 4·H bytes
                           (q, k, v are views of c_attn's output; the kernel's output is itself
                           c_proj's input, so the merge copies nothing)
      attention="written"+ the T×T weights three times, H·T each: the masked scores (softmax's
                           max reads them), their exp and the normalised weights (AV reads them),
                           + the row max and the denominator (H each) and two bool masks (H
                           bytes each), + the causal mask, T·T bools per layer (not per token)
                           (q, k, v here are copies, since the batched matmul needs them contiguous)
      once, the head:    ln_f (2d + 2), the log-softmax of the logits (V) that the loss keeps,
                         the token ids and the targets (8 bytes each, int64), and the loss's
                         scalar weight (s) once per step (the position embeddings are a slice
                         of wpe, a view of a parameter: nothing new is saved)

    so with f = 4d and SDPA a layer saves (16d + 4)·s + 4H bytes a token: the activations grow
    with batch_size·T·n_layer·d, and with the written path also with batch_size·n_layer·H·T²,
    which is why fused attention (which recomputes the weights in the backward pass instead of
    storing them) matters for long contexts. For torch 2.13 on CPU this is exact: it equals the
    bytes `measured_training_memory` sees autograd save (tests/test_compute.py); CUDA's fused
    attention kernels save about the same (q, k, v, output, log-sum-exp). It assumes
    dropout = 0 (a dropout > 0 keeps its masks too; ValueError) and that the step holds no
    logits beyond the loss (a caller who keeps `logits` alive adds batch_size·T·V·s).

    total = weights + gradients + optimiser + activations, all four at once. The real peak
    differs both ways: lower, because in the backward pass gradients are made as activations
    are freed; higher, by the transients this leaves out (the logits' gradient, V per token
    twice; in the written path's backward a few B·H·T·T gradients of one layer at once; kernel
    workspaces). On GPTConfig.tiny() (batch 8, T = 128) total / measured peak is 0.99 with
    either path; on the tests' small models it lies within 20% (0.90 to 1.14).
    `activations` must be "full" (every activation stored; no checkpointing). LayerNorm's mean
    and 1/std take the dtype's size here, as on CPU (CUDA keeps them in float32 for half
    types). Used in chapter 13 (compute and scaling).
    """
    import torch

    V, _, L, d, f, _ = _sizes(config)
    batch_size = _positive_int("batch_size", batch_size)
    T = _context(config, T)
    s = _float_itemsize(torch.float32 if dtype is None else dtype)
    n_states = _optimizer_states(optimizer)
    if activations not in _ACTIVATION_MODES:
        raise ValueError(f"activations must be one of {_ACTIVATION_MODES}, got {activations!r}")
    dropout = getattr(config, "dropout", 0.0)
    if dropout:
        raise ValueError(
            f"the activation formula assumes config.dropout == 0 (each dropout keeps a mask), got {dropout!r}")
    attention = getattr(config, "attention", "sdpa")
    if attention not in ("sdpa", "written"):
        raise ValueError(f"config.attention must be 'sdpa' or 'written', got {attention!r}")
    H = getattr(config, "n_head", None)
    if isinstance(H, bool) or not isinstance(H, numbers.Integral) or H < 1 or d % H:
        raise ValueError(f"config.n_head must be a positive int dividing n_embd={d}, got {H!r}")
    mlp = f if getattr(config, "activation", "gelu_tanh") == "relu" else 2 * f

    # bytes per token per layer
    layer = (8 * d + 4 + mlp) * s
    if attention == "sdpa":
        layer += 4 * H
    else:
        layer += (3 * H * T + 2 * H) * s + 2 * H
    head = (2 * d + 2 + V) * s + 8 + 8
    tokens = batch_size * T
    acts = tokens * (L * layer + head) + s
    if attention == "written":
        acts += L * T * T

    P = param_count(config, non_embedding=False)
    out = {"weights": P * s, "gradients": P * s, "optimiser": n_states * P * s, "activations": acts}
    out["total"] = sum(out.values())
    return out


def _storage_key(t: Any) -> tuple[int, int]:
    st = t.untyped_storage()
    return st.data_ptr(), st.nbytes()


def _unique_bytes(tensors: Any) -> int:
    """Bytes of the distinct storages behind `tensors` (a view or a tied tensor counted once)."""
    return sum(n for _, n in {_storage_key(t) for t in tensors if t is not None})


def _live_bytes_mode(known: set[int]) -> Any:
    """A TorchDispatchMode that follows the bytes of live tensor storages, op by op, and keeps the peak.

    Every output of every op is looked at; a storage not seen before is counted once (by its
    untyped_storage's data pointer, so views are free) and a weak reference with a callback
    takes its bytes off when the storage is freed. Storages in `known` (data pointers of
    tensors that existed before) are the caller's to count. Read `.live` and `.peak` (bytes).
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class LiveBytes(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.known, self.refs = set(known), {}
            self.live = self.peak = 0

        def _free(self, key: int, nbytes: int) -> None:
            self.live -= nbytes
            self.refs.pop(key, None)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if not isinstance(t, torch.Tensor):
                    continue
                st = t.untyped_storage()
                key, n = st.data_ptr(), st.nbytes()
                if n == 0 or key in self.refs or key in self.known:
                    continue
                # CPython frees a storage the moment its last reference goes, and the callback
                # runs then, before the allocator can hand the same address to a new tensor
                self.refs[key] = weakref.ref(st, lambda _, key=key, n=n: self._free(key, n))
                self.live += n
                self.peak = max(self.peak, self.live)
            return out

    return LiveBytes()


def _make_optimizer(name: str, params: Any) -> Any:
    import torch

    _optimizer_states(name)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3)
    return (torch.optim.AdamW if name == "adamw" else torch.optim.Adam)(params, lr=1e-3)


def measured_training_memory(model: Any, batch: Any, *, optimizer: str = "adamw") -> dict[str, Any]:
    """Bytes of one training step of `model` on `batch = (idx, targets)`, measured: as `training_memory`, with "peak".

    The step runs on a deep copy of the model (the model, its gradients and the global random
    state are left alone): one step first, so that the optimiser's states exist as they do in
    a run, then the measured step: forward with the loss (the logits are not kept), backward,
    `optimizer.step()`, `zero_grad(set_to_none=True)`.
    - weights, gradients, optimiser: the distinct storages of the parameters, of their .grad
      after the backward pass, and of the optimiser's state (AdamW's `step` counters included).
    - activations: exactly what autograd saves for the backward pass, seen through
      `torch.autograd.graph.saved_tensors_hooks`, each storage once, the parameters left out
      (they are the weights). This is the quantity `training_memory` counts op by op.
    - peak: the most bytes held at once during the measured step, counting the weights, the
      optimiser's states and the batch, which exist before it. On CUDA, the caching
      allocator's own figure (`torch.cuda.max_memory_allocated`, blocks rounded up to 512
      bytes). On CPU there is no allocator statistic, and the process's RSS moves with the
      allocator's caching and pages rather than with tensors, so a TorchDispatchMode follows
      every op's output storages, counted once by data pointer and taken off, through a weak
      reference's callback, when freed. What that misses: memory a kernel allocates and frees
      inside itself (workspaces, e.g. the fused attention's blocks) and anything not held in a
      tensor; so the CPU peak is a lower bound on the tensors' true peak, and says nothing of
      the allocator's overhead or fragmentation.
    Used in chapter 13 (compute and scaling).
    """
    import copy

    import torch
    import torch.nn as nn

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (a GPT), got {type(model).__name__}")
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        raise ValueError(f"batch must be a pair of tensors (idx, targets), got {type(batch).__name__}")
    _optimizer_states(optimizer)
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters: there is nothing to train")
    device = params[0].device
    x, y = batch
    if x.device != device or y.device != device:
        raise ValueError(f"batch is on {x.device}/{y.device}, the model on {device}: move one to the other")

    def loss_of(m: nn.Module) -> torch.Tensor:
        out = m(x, y)
        loss = out[1] if isinstance(out, tuple) else None
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ValueError("model(idx, targets) must return (logits, loss) with a scalar loss, as GPT does")
        return loss

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        m = copy.deepcopy(model).train()
        opt = _make_optimizer(optimizer, m.parameters())
        for p in m.parameters():
            p.grad = None
        loss_of(m).backward()  # the warm-up step: the optimiser's states now exist
        opt.step()
        opt.zero_grad(set_to_none=True)

        state = [v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
        weights = _unique_bytes(m.parameters())
        states = _unique_bytes(state)
        before = weights + states + _unique_bytes([x, y])
        param_keys = {_storage_key(p)[0] for p in m.parameters()}
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            key, n = _storage_key(t)
            if key not in param_keys:
                saved[key] = n
            return t

        def step() -> int:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = loss_of(m)
            loss.backward()
            del loss
            grads = _unique_bytes(p.grad for p in m.parameters())
            opt.step()
            opt.zero_grad(set_to_none=True)
            return grads

        if device.type == "cuda":
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            grads = step()
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - base + before
        else:
            known = {_storage_key(t)[0] for t in [*m.parameters(), *state, x, y]}
            with _live_bytes_mode(known) as live:
                grads = step()
            peak = live.peak + before
    return {"weights": weights, "gradients": grads, "optimiser": states, "activations": sum(saved.values()),
            "peak": peak}


# ----------------------------------------------------------------------------- time and money

# Peak dense matrix-product throughput, from NVIDIA's datasheets (the figures without the 2:4
# sparsity that doubles them on paper); a datasheet peak, never a measurement:
A100_BF16_FLOPS = 312e12  # A100 (SXM and PCIe), BF16/FP16 Tensor Core: 312 TFLOPS dense (624 sparse)
V100_FP16_FLOPS = 125e12  # V100 SXM2, "Tensor Performance" (FP16 in, FP32 accumulate): 125 TFLOPS
H100_BF16_FLOPS = 989e12  # H100 SXM, BF16 Tensor Core: 989 TFLOPS dense (1,979 sparse)

# GPT-3 (Brown et al. 2020): 175e9 parameters trained on 300e9 tokens; 6·N·D = 3.15e23 FLOPs
# (the paper's table D.1 gives 3.14e23 for its exact N)
GPT3_PARAMS = 175e9
GPT3_TOKENS = 300e9


def _positive_real(name: str, value: Any, *, upper: float = math.inf, closed_upper: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    ok = ok and (value <= upper if closed_upper else value < upper)
    if not ok:
        bound = "" if upper == math.inf else f" and {'<=' if closed_upper else '<'} {upper}"
        raise ValueError(f"{name} must be a finite number > 0{bound}, got {value!r}")
    return float(value)


def training_cost(
    flops: float,
    *,
    peak_flops_per_s: float,
    utilisation: float,
    price_per_hour: float | None = None,
    n_gpus: int = 1,
) -> dict[str, float | None]:
    """What `flops` of training take on n_gpus accelerators: {"seconds", "days", "gpu_hours", "cost"}.

    Each accelerator delivers utilisation·peak_flops_per_s (the model FLOPs utilisation, MFU:
    large runs reach about 0.3-0.5 of the datasheet peak), so the run lasts
    flops / (n_gpus·utilisation·peak) seconds of wall clock and costs n_gpus times as many
    accelerator-seconds; cost = gpu_hours·price_per_hour (the price of one accelerator for an
    hour, an assumption of the caller; None when not given). GPT-3 (6·175e9·300e9 = 3.15e23
    FLOPs) at 40% of an A100's 312 TFLOP/s: 7.0e5 GPU-hours, 28.5 days on 1024 of them.
    Used in chapter 13 (compute and scaling).
    """
    if isinstance(flops, bool) or not isinstance(flops, numbers.Real) or not 0 <= flops < math.inf:
        raise ValueError(f"flops must be a finite number >= 0, got {flops!r}")
    peak = _positive_real("peak_flops_per_s", peak_flops_per_s)
    util = _positive_real("utilisation", utilisation, upper=1.0, closed_upper=True)
    n_gpus = _positive_int("n_gpus", n_gpus)
    if price_per_hour is not None and not (
        isinstance(price_per_hour, numbers.Real) and not isinstance(price_per_hour, bool)
        and 0 <= price_per_hour < math.inf
    ):
        raise ValueError(f"price_per_hour must be a finite number >= 0 or None, got {price_per_hour!r}")
    seconds = float(flops) / (n_gpus * util * peak)
    gpu_hours = seconds * n_gpus / 3600
    return {
        "seconds": seconds,
        "days": seconds / 86400,
        "gpu_hours": gpu_hours,
        "cost": None if price_per_hour is None else gpu_hours * float(price_per_hour),
    }


def mfu(tokens_per_s: float, config: Any, T: int, peak_flops_per_s: float) -> float:
    """Model FLOPs utilisation: the FLOP/s a training run achieves, over the hardware's peak.

    Achieved = tokens_per_s · flops_per_token(config, T, training=True) (6·N, the lm_head and
    the attention at context T, forward and backward: the FLOPs the model needs, not the ones
    the run happens to do, so recomputation or padding do not count as useful work, as in
    PaLM's definition). tokens_per_s is a measured training throughput (tokens through forward
    and backward per second); peak_flops_per_s a datasheet figure or `matmul_peak()`.
    Used in chapter 13 (compute and scaling).
    """
    if isinstance(tokens_per_s, bool) or not isinstance(tokens_per_s, numbers.Real) or not 0 <= tokens_per_s < math.inf:
        raise ValueError(f"tokens_per_s must be a finite number >= 0, got {tokens_per_s!r}")
    peak = _positive_real("peak_flops_per_s", peak_flops_per_s)
    return float(tokens_per_s) * flops_per_token(config, T, training=True) / peak


def matmul_peak(n: int = 1024, *, dtype: Any = None, repeats: int = 5, warmup: int = 2, seed: int = 0) -> float:
    """This machine's matrix-product FLOP/s: the median over `repeats` timings of one (n, n) @ (n, n).

    A square product of size n does 2·n³ FLOPs (n³ multiply-adds); large ones keep every core's
    vector units busy, so their rate is the practical peak that `mfu` measures a training run
    against. `warmup` untimed products first (threads started, caches and pages touched), the
    result written into one preallocated tensor (no allocation timed), the median so that one
    interruption by a neighbour does not count. It uses torch's threads as set
    (`torch.get_num_threads()`). dtype defaults to torch.float32. n = 1024 takes well under a
    second on 2 cores; benchmarks/matmul_peak.py sweeps n from 256 to 4096.
    Used in chapter 13 (compute and scaling).
    """
    import torch

    n = _positive_int("n", n)
    repeats = _positive_int("repeats", repeats)
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    dtype = torch.float32 if dtype is None else dtype
    _float_itemsize(dtype)
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / max(statistics.median(times), 1e-9)  # a timer tick of 0 would divide by zero


# ----------------------------------------------------------------------------- scaling laws


class PowerLawFit(NamedTuple):
    """L(N) = a·N^(−alpha) + c: a the scale, alpha the exponent, c the irreducible loss."""

    a: float
    alpha: float
    c: float

    def __call__(self, n: Any) -> Any:
        """The fitted loss at n (a number or a numpy array of them)."""
        return self.a * n ** (-self.alpha) + self.c


def _log_line(log_n: Any, loss: Any, c: float) -> tuple[float, float, float]:
    """For a fixed c: (a, alpha) from the straight line log(L − c) = log a − alpha·log N, and its squared error in L."""
    import numpy as np

    slope, intercept = np.polyfit(log_n, np.log(loss - c), 1)
    a, alpha = float(np.exp(intercept)), float(-slope)
    return a, alpha, float(np.sum((a * np.exp(-alpha * log_n) + c - loss) ** 2))


def fit_power_law(n: Any, loss: Any) -> PowerLawFit:
    """Least-squares fit of L(N) = a·N^(−alpha) + c to losses measured at model sizes n.

    n: the sizes (parameters, or any positive scale: compute, tokens), loss: the loss at each;
    sequences or 1-D arrays of the same length, at least 3 points at 3 distinct sizes. With c
    fixed, the law is a straight line in log–log coordinates, log(L − c) = log a − alpha·log N,
    so: for each c on a fine grid in [0, min(L)) fit that line, keep the c whose (a, alpha)
    give the smallest squared error in L itself, narrow the bracket around it by golden-section
    search, then polish all three jointly with Gauss–Newton steps on the squared error in L
    (kept only while they lower it and c stays in [0, min(L))). c is bounded below by 0 (a
    loss has no negative floor) and above by the smallest loss. A pure power law (c = 0) is
    recovered exactly, up to rounding: its c = 0 line has zero error.
    ValueError on fewer than 3 points, fewer than 3 distinct sizes, a non-positive size or
    loss, non-finite values, or mismatched lengths.
    Derived in chapters/13_compute_scaling.ipynb.
    """
    import numpy as np

    arrays = []
    for name, values in (("n", n), ("loss", loss)):
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from err
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr.tolist()}")
        if np.any(arr <= 0):
            raise ValueError(f"{name} must be > 0 everywhere, got {arr.tolist()}")
        arrays.append(arr)
    n_arr, l_arr = arrays
    if n_arr.shape != l_arr.shape:
        raise ValueError(f"n and loss must have the same length, got {n_arr.size} and {l_arr.size}")
    if n_arr.size < 3:
        raise ValueError(f"a power law with an offset has 3 parameters: need at least 3 points, got {n_arr.size}")
    if np.unique(n_arr).size < 3:
        raise ValueError(f"n must hold at least 3 distinct sizes, got {np.unique(n_arr).tolist()}")

    log_n = np.log(n_arr)
    top = float(l_arr.min())
    # dense near min(L), where the error is most sensitive to c: a linear grid plus 1 − 10^−k steps
    grid = np.unique(np.concatenate([np.linspace(0.0, top, 2001)[:-1], top * (1 - np.logspace(-1, -9, 81))]))
    errors = [_log_line(log_n, l_arr, c)[2] for c in grid]
    k = int(np.argmin(errors))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    best_c, best = float(grid[k]), _log_line(log_n, l_arr, float(grid[k]))
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):  # golden-section search of the bracket around the best grid point
        c1, c2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if _log_line(log_n, l_arr, c1)[2] <= _log_line(log_n, l_arr, c2)[2]:
            hi = c2
        else:
            lo = c1
    mid = (lo + hi) / 2
    if _log_line(log_n, l_arr, mid)[2] < best[2]:
        best_c, best = mid, _log_line(log_n, l_arr, mid)
    a, alpha, sse = best
    c = best_c
    # Gauss–Newton on (log a, alpha, c): the line above minimised the error of log(L − c), not of L
    for _ in range(50):
        power = np.exp(np.log(a) - alpha * log_n)
        residual = power + c - l_arr
        jac = np.stack([power, -power * log_n, np.ones_like(log_n)], axis=1)
        step = np.linalg.lstsq(jac, -residual, rcond=None)[0]
        new_a, new_alpha, new_c = a * math.exp(step[0]), alpha + step[1], c + step[2]
        if not (0.0 <= new_c < top and math.isfinite(new_a) and math.isfinite(new_alpha)):
            break
        new_sse = float(np.sum((new_a * np.exp(-new_alpha * log_n) + new_c - l_arr) ** 2))
        if not new_sse < sse:
            break
        a, alpha, c, sse = new_a, new_alpha, new_c, new_sse
    return PowerLawFit(a=float(a), alpha=float(alpha), c=float(c))


def _print_memory_table(cases: dict[str, tuple[Any, int, int]] | None = None) -> None:
    """`python -m lmcourse.compute`: `training_memory` against `measured_training_memory`, AdamW, float32.

    One row per case (config, batch size, T): estimated and measured activations and totals
    (MB = 1e6 bytes), and estimate / measured peak.
    """
    import dataclasses

    import torch

    from lmcourse.model import GPT, GPTConfig

    tiny = GPTConfig.tiny()
    cases = cases or {
        "tiny sdpa B8 T128": (tiny, 8, 128),
        "tiny written B8 T128": (dataclasses.replace(tiny, attention="written"), 8, 128),
        "L2 d64 sdpa B4 T64": (GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64), 4, 64),
        "L2 d64 written B4 T64": (GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64,
                                            attention="written"), 4, 64),
    }
    print(f"{'case':24} {'act est':>9} {'act meas':>9} {'total est':>10} {'peak meas':>10} {'est/peak':>8}")
    for name, (config, B, T) in cases.items():
        est = training_memory(config, B, T)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = GPT(config)
            x = torch.randint(0, config.vocab_size, (B, T))
            y = torch.randint(0, config.vocab_size, (B, T))
        got = measured_training_memory(model, (x, y))
        print(f"{name:24} {est['activations'] / 1e6:9.3f} {got['activations'] / 1e6:9.3f} "
              f"{est['total'] / 1e6:10.3f} {got['peak'] / 1e6:10.3f} {est['total'] / got['peak']:8.3f}")


def _print_cost_table(price_per_hour: float | None = None, n_gpus: int = 1024, utilisation: float = 0.4) -> None:
    """`python -m lmcourse.compute`: GPT-3's 6·N·D FLOPs on n_gpus accelerators at each datasheet peak.

    One row per accelerator: its datasheet peak, GPU-hours, wall-clock days and, with a
    price_per_hour (an assumption, per accelerator-hour), the cost. Nothing here is measured.
    """
    flops = 6 * GPT3_PARAMS * GPT3_TOKENS
    print(f"GPT-3: 6 x {GPT3_PARAMS:.3g} parameters x {GPT3_TOKENS:.3g} tokens = {flops:.3g} FLOPs, "
          f"at {utilisation:.0%} of the datasheet peak on {n_gpus} GPUs")
    print(f"{'GPU':18} {'peak TFLOP/s':>12} {'GPU-hours':>11} {'days':>7} {'cost':>12}")
    gpus = (("V100 FP16", V100_FP16_FLOPS), ("A100 BF16", A100_BF16_FLOPS), ("H100 SXM BF16", H100_BF16_FLOPS))
    for name, peak in gpus:
        c = training_cost(flops, peak_flops_per_s=peak, utilisation=utilisation, price_per_hour=price_per_hour,
                          n_gpus=n_gpus)
        cost = "-" if c["cost"] is None else f"{c['cost']:.3g}"
        print(f"{name:18} {peak / 1e12:12.0f} {c['gpu_hours']:11.3g} {c['days']:7.1f} {cost:>12}")


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
    print()
    _print_memory_table()
    print()
    _print_cost_table()
