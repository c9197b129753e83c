"""The Transformer, three ways: a GPT (decoder-only), a BERT-style Encoder and the 2017 EncoderDecoder.

Read top to bottom: the configuration, the pieces (LayerNorm written out, the MLP, the
pre-LN block), then the models built from them. Attention is lmcourse.attention's, not a
second copy: `CausalSelfAttention` for GPT, `MultiHeadAttention` for the rest.

Parameter names follow the checkpoints, so loading real weights is a key copy:
- `GPT.state_dict()` has Hugging Face `GPT2LMHeadModel`'s keys (transformer.wte, .wpe,
  .h.{i}.ln_1, .attn.c_attn, .attn.c_proj, .ln_2, .mlp.c_fc, .mlp.c_proj, transformer.ln_f,
  lm_head). Our Linear weights are (out, in); GPT-2's Conv1D weights are (in, out), so
  c_attn, c_proj and c_fc are transposed on the way (lmcourse.interop does it).
- `Encoder.state_dict()` has Hugging Face `BertModel`'s keys (embeddings.*,
  encoder.layer.{i}.attention.self.query/key/value, ...), with no transpose at all.

Built in chapters/06_transformer.ipynb.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse.attention import ATTENTION_PATHS, CausalSelfAttention, MultiHeadAttention
from lmcourse.embeddings import sinusoidal_positions

__all__ = [
    "GPTConfig",
    "PRESETS",
    "LayerNorm",
    "MLP",
    "Block",
    "GPT",
    "ACTIVATIONS",
]

IGNORE_INDEX = -1  # a target equal to this is skipped by the loss (padding, or a prompt not to learn)

# name -> function; GPT-2 uses the tanh approximation of GELU, BERT the exact (erf) one,
# the 2017 Transformer ReLU
ACTIVATIONS = {
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
}


# ----------------------------------------------------------------------------- configuration

def _check_positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive int, got {value!r}")


def _check_common(cfg: Any, int_fields: tuple[str, ...]) -> None:
    """The checks every config here shares: sizes, heads, dropout, eps, attention, activation."""
    owner = type(cfg).__name__
    for name in int_fields:
        _check_positive_int(owner, name, getattr(cfg, name))
    if cfg.n_embd % cfg.n_head:
        raise ValueError(f"{owner}.n_embd={cfg.n_embd} must be divisible by n_head={cfg.n_head}")
    if cfg.n_inner is not None:
        _check_positive_int(owner, "n_inner", cfg.n_inner)
    d = cfg.dropout
    if isinstance(d, bool) or not isinstance(d, numbers.Real) or not 0.0 <= d < 1.0:
        raise ValueError(f"{owner}.dropout must be in [0, 1), got {d!r}")
    eps = cfg.layer_norm_eps
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0 or not math.isfinite(eps):
        raise ValueError(f"{owner}.layer_norm_eps must be a positive float, got {eps!r}")
    if cfg.attention not in ATTENTION_PATHS:
        raise ValueError(f"{owner}.attention must be one of {ATTENTION_PATHS}, got {cfg.attention!r}")
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"{owner}.activation must be one of {tuple(ACTIVATIONS)}, got {cfg.activation!r}")


@dataclass(frozen=True)
class GPTConfig:
    """A GPT's shape. The defaults are GPT-2 small (124M parameters).

    vocab_size: number of token ids; block_size: the longest context (positions);
    n_layer blocks of n_head heads over n_embd channels; n_inner: the MLP's hidden width
    (None means 4 * n_embd, as GPT-2; read it resolved as `d_ff`); bias: biases in the
    Linears and LayerNorms; attention: "sdpa" (PyTorch's fused kernel, fast) or "written"
    (the chapter 04 formula, which can return attention weights): same math, same weights.
    """

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_inner: int | None = None
    dropout: float = 0.0
    bias: bool = True
    layer_norm_eps: float = 1e-5
    attention: str = "sdpa"
    activation: str = "gelu_tanh"

    def __post_init__(self) -> None:
        _check_common(self, ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        if not isinstance(self.bias, bool):
            raise ValueError(f"GPTConfig.bias must be True or False, got {self.bias!r}")

    @property
    def d_ff(self) -> int:
        """The MLP's hidden width: n_inner, or 4 * n_embd when n_inner is None."""
        return 4 * self.n_embd if self.n_inner is None else self.n_inner

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    # presets; each takes overrides, e.g. GPTConfig.tiny(vocab_size=65)
    @classmethod
    def tiny(cls, **overrides: Any) -> "GPTConfig":
        """4 layers, 4 heads, 128 wide, context 128, vocab 512 (the course's BPE): ~0.9M parameters, trains on 2 cores in minutes."""
        return cls(**{**dict(vocab_size=512, block_size=128, n_layer=4, n_head=4, n_embd=128), **overrides})

    @classmethod
    def gpt2_small(cls, **overrides: Any) -> "GPTConfig":
        """GPT-2 small, 124M parameters."""
        return cls(**{**dict(n_layer=12, n_head=12, n_embd=768), **overrides})

    @classmethod
    def gpt2_medium(cls, **overrides: Any) -> "GPTConfig":
        """GPT-2 medium, 350M parameters."""
        return cls(**{**dict(n_layer=24, n_head=16, n_embd=1024), **overrides})

    @classmethod
    def gpt2_large(cls, **overrides: Any) -> "GPTConfig":
        """GPT-2 large, 774M parameters."""
        return cls(**{**dict(n_layer=36, n_head=20, n_embd=1280), **overrides})

    @classmethod
    def gpt2_xl(cls, **overrides: Any) -> "GPTConfig":
        """GPT-2 XL, 1558M parameters."""
        return cls(**{**dict(n_layer=48, n_head=25, n_embd=1600), **overrides})

    @classmethod
    def gpt3_175b(cls, **overrides: Any) -> "GPTConfig":
        """GPT-3 175B (Brown et al. 2020, table 2.1): for the formulas only, never build it."""
        return cls(**{**dict(block_size=2048, n_layer=96, n_head=96, n_embd=12288), **overrides})


# The scaling chapter's sizes: small enough to train several on 2 cores, same vocab and context as tiny.
_SCALING = {"scale_32": (2, 2, 32), "scale_64": (2, 4, 64), "scale_96": (3, 4, 96), "scale_128": (4, 4, 128), "scale_192": (6, 6, 192)}

PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig.tiny(),
    "gpt2_small": GPTConfig.gpt2_small(),
    "gpt2_medium": GPTConfig.gpt2_medium(),
    "gpt2_large": GPTConfig.gpt2_large(),
    "gpt2_xl": GPTConfig.gpt2_xl(),
    "gpt3_175b": GPTConfig.gpt3_175b(),
    **{name: GPTConfig.tiny(n_layer=L, n_head=H, n_embd=C) for name, (L, H, C) in _SCALING.items()},
}


# ----------------------------------------------------------------------------- the pieces

class LayerNorm(nn.Module):
    """LayerNorm written out: y = (x - mean) / sqrt(var + eps) * weight + bias, over the last dim.

    mean and var are taken over the n_embd channels of each position separately, var is the
    biased (divide by n) variance, as nn.LayerNorm; `bias=False` drops the shift (nanoGPT's
    option). Equal to nn.LayerNorm(ndim, eps) forward and backward; the tests hold it so.
    """

    def __init__(self, ndim: int, bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        _check_positive_int("LayerNorm", "ndim", ndim)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != self.weight.shape:
            raise ValueError(f"LayerNorm({self.weight.shape[0]}) expects (..., {self.weight.shape[0]}), got {tuple(x.shape)}")
        mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
        xc = x - mean
        var = (xc * xc).mean(dim=-1, keepdim=True)  # biased: divide by n, not n - 1
        y = xc * torch.rsqrt(var + self.eps) * self.weight
        return y if self.bias is None else y + self.bias


class MLP(nn.Module):
    """The position-wise feed-forward net: Linear C -> d_ff, activation, Linear d_ff -> C (GPT-2 names)."""

    def __init__(self, n_embd: int, d_ff: int, bias: bool = True, dropout: float = 0.0, activation: str = "gelu_tanh") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        self.c_fc = nn.Linear(n_embd, d_ff, bias=bias)
        self.c_proj = nn.Linear(d_ff, n_embd, bias=bias)
        self.act = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C) -> (B, T, d_ff) -> (B, T, C)


class Block(nn.Module):
    """GPT-2's pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

    The LayerNorms sit inside the residual branches, so the residual stream itself is never
    normalised: gradients reach early layers through the additions unchanged, which is why
    pre-LN trains without warm-up tricks where post-LN (the 2017 layout) struggles.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias, eps=config.layer_norm_eps)
        self.mlp = MLP(config.n_embd, config.d_ff, config.bias, config.dropout, config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))
        return x


# ----------------------------------------------------------------------------- input checks

def _check_ids(name: str, ids: Any, vocab_size: int, max_len: int | None, what: str = "block_size") -> None:
    """ids must be a (B, T) integer tensor with T <= max_len and every id in [0, vocab_size)."""
    if not isinstance(ids, torch.Tensor):
        raise ValueError(f"{name} must be a (B, T) tensor of token ids, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must hold integer token ids (torch.long or torch.int32), got dtype {ids.dtype}")
    if ids.ndim != 2:
        raise ValueError(f"{name} must have shape (B, T), got {tuple(ids.shape)} (a single sequence: {name}[None])")
    T = ids.shape[1]
    if max_len is not None and T > max_len:
        raise ValueError(f"{name} has length T={T}, longer than the context {what}={max_len}")
    if ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(
                f"{name} must lie in [0, {vocab_size - 1}] (vocab_size={vocab_size}), got min={lo}, max={hi}"
            )


def _check_targets(targets: Any, like: torch.Tensor, vocab_size: int, like_name: str) -> None:
    """targets must be integer, shaped like the input ids, each in [0, vocab_size) or IGNORE_INDEX."""
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        got = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be an integer tensor (torch.long or torch.int32), got {got}")
    if targets.shape != like.shape:
        raise ValueError(f"targets must have the shape of {like_name} {tuple(like.shape)}, got {tuple(targets.shape)}")
    bad = (targets != IGNORE_INDEX) & ((targets < 0) | (targets >= vocab_size))
    if bad.any():
        raise ValueError(
            f"targets must lie in [0, {vocab_size - 1}] (vocab_size={vocab_size}) or be {IGNORE_INDEX} (ignored), "
            f"got {sorted(set(targets[bad].tolist()))[:5]}"
        )


def _lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # mean over the counted positions; every target ignored -> nan (0/0) with zero gradient, as F.cross_entropy
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(), ignore_index=IGNORE_INDEX)


def _init_gpt2(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2's initialisation: Linear and Embedding weights N(0, std), biases 0, LayerNorm 1 and 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, LayerNorm):
        nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------- GPT

class GPT(nn.Module):
    """GPT-2: token + position embeddings, n_layer pre-LN blocks, a final LayerNorm, tied lm_head.

    `forward(idx, targets=None) -> (logits, loss)`: idx (B, T) token ids, T <= block_size;
    logits (B, T, vocab_size) for every position. targets (B, T), already shifted (targets[:, t]
    is the token after idx[:, t], as nanoGPT; Hugging Face's `labels` are shifted inside the
    model instead), gives loss = mean cross-entropy over the targets that are not -1; -1 marks
    a position to ignore (padding). When every target is -1 the loss is nan (0 / 0) with a
    zero gradient, exactly as F.cross_entropy. Without targets, loss is None.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings (V, C)
            wpe=nn.Embedding(config.block_size, config.n_embd),  # position embeddings (block_size, C)
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias, eps=config.layer_norm_eps),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # weight tying (Press & Wolf 2017): the output layer scores a hidden state against each
        # token's own embedding; one (V, C) tensor, counted once
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(_init_gpt2)
        # GPT-2's scaled init: each block adds two branches (attn, mlp) to the residual stream,
        # so the projections into it get std 0.02 / sqrt(2 * n_layer) and the stream's variance
        # stays put however deep the model
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (the tied lm_head counted once). non_embedding=True leaves out the
        token and position tables wte and wpe, as Kaplan et al.'s N."""
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a tied tensor once
        if non_embedding:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.config
        _check_ids("idx", idx, cfg.vocab_size, cfg.block_size)
        if targets is not None:
            _check_targets(targets, idx, cfg.vocab_size, "idx")
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None if targets is None else _lm_loss(logits, targets)
        return logits, loss
