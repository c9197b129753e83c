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

import math
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse.attention import ATTENTION_PATHS, CausalSelfAttention, KVCache, MultiHeadAttention
from lmcourse.embeddings import sinusoidal_positions

__all__ = [
    "GPTConfig",
    "PRESETS",
    "layer_norm",
    "LayerNorm",
    "MLP",
    "Block",
    "GPT",
    "KVCache",
    "EncoderConfig",
    "EncoderOutput",
    "EncoderLayer",
    "Encoder",
    "EncoderDecoderConfig",
    "Seq2SeqBlock",
    "EncoderDecoder",
    "ACTIVATIONS",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -1  # a target equal to this is skipped by the loss (padding, or a prompt not to learn)

# name -> function; GPT-2 uses the tanh approximation of GELU, BERT the exact (erf) one,
# the 2017 Transformer ReLU
def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with GPT-2's tanh approximation (a named function, so a model pickles and torch.save works)."""
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {
    "gelu_tanh": gelu_tanh,
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

def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """LayerNorm written out: y = (x - mean) / sqrt(var + eps) * weight + bias, over the last dim.

    mean and var are taken over the C channels of each position separately; var is the biased
    (divide by n) variance, as nn.LayerNorm; bias=None drops the shift (nanoGPT's option).
    """
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    xc = x - mean
    var = (xc * xc).mean(dim=-1, keepdim=True)  # biased: divide by n, not n - 1
    y = xc * torch.rsqrt(var + eps) * weight
    return y if bias is None else y + bias


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias: `layer_norm` above as a module (weight 1 and bias 0 at init).

    `fused=True` (the default, what the models use) computes the same function with
    F.layer_norm, one kernel instead of six; `fused=False` runs the written-out formula.
    Both equal nn.LayerNorm(ndim, eps) forward and backward; the tests hold them so.
    """

    def __init__(self, ndim: int, bias: bool = True, eps: float = 1e-5, fused: bool = True) -> None:
        super().__init__()
        _check_positive_int("LayerNorm", "ndim", ndim)
        self.eps, self.fused = eps, fused
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != self.weight.shape:
            raise ValueError(f"LayerNorm({self.weight.shape[0]}) expects (..., {self.weight.shape[0]}), got {tuple(x.shape)}")
        if self.fused:
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)
        return layer_norm(x, self.weight, self.bias, self.eps)


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
        y = self.c_proj(self.act(self.c_fc(x)))  # (B, T, C) -> (B, T, d_ff) -> (B, T, C)
        return self.dropout(y) if self.training and self.dropout.p > 0 else y


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

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        # cache: this layer's slice of a KVCache (x then holds only the new positions)
        x = x + (self.attn(self.ln_1(x)) if cache is None else self.attn(self.ln_1(x), cache=cache))  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))
        return x


# ----------------------------------------------------------------------------- input checks

def _check_ids(
    name: str, ids: Any, vocab_size: int, max_len: int | None, what: str = "block_size", vocab_name: str = "vocab_size"
) -> None:
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
        # one fused pass (and one sync) for both ends: this runs on every forward
        lo, hi = (int(t) for t in torch.aminmax(ids))
        if lo < 0 or hi >= vocab_size:
            raise ValueError(
                f"{name} must lie in [0, {vocab_size - 1}] ({vocab_name}={vocab_size}), got min={lo}, max={hi}"
            )


def _check_targets(targets: Any, like: torch.Tensor, vocab_size: int, like_name: str) -> None:
    """targets must be integer, shaped like the input ids, each in [0, vocab_size) or IGNORE_INDEX."""
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        got = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be an integer tensor (torch.long or torch.int32), got {got}")
    if targets.shape != like.shape:
        raise ValueError(f"targets must have the shape of {like_name} {tuple(like.shape)}, got {tuple(targets.shape)}")
    if not targets.numel():
        return
    # IGNORE_INDEX is -1, next to the valid range [0, V): the targets are valid exactly when
    # they lie in [-1, V), so both ends of one fused min/max pass decide it
    lo, hi = (int(t) for t in torch.aminmax(targets))
    if lo < IGNORE_INDEX or hi >= vocab_size:
        bad = (targets != IGNORE_INDEX) & ((targets < 0) | (targets >= vocab_size))
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

    `forward(idx, cache=cache)` with a `KVCache` (`KVCache.for_model(model, B)`) runs only the
    new tokens idx (B, T): they take positions cache.length .. cache.length + T - 1, attend to
    the cached past and to each other causally, and are appended to the cache; the logits
    (B, T, V) are those of the new positions, equal (to float rounding) to the last T rows of
    a full forward over the whole sequence. A cache that cannot hold T more positions is an
    error naming its max_len. Derived in chapters/06_transformer.ipynb; the cache in
    chapters/08_generation.ipynb.
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

    def _check_cache(self, cache: Any, idx: Any) -> int:
        """The cache must be a KVCache shaped for this model and idx's batch; returns its length."""
        cfg = self.config
        if not isinstance(cache, KVCache):
            raise ValueError(f"cache must be a KVCache (KVCache.for_model(model, batch_size)), got {type(cache).__name__}")
        want = (cfg.n_layer, cfg.n_head, cfg.head_size)
        got = (cache.n_layer, cache.k.shape[2], cache.k.shape[4])
        if got != want:
            raise ValueError(f"cache has (n_layer, n_head, head_size) = {got}, the model {want}")
        if isinstance(idx, torch.Tensor) and idx.ndim == 2 and idx.shape[0] != cache.batch_size:
            raise ValueError(f"idx has batch size {idx.shape[0]}, the cache was built for {cache.batch_size}")
        if isinstance(idx, torch.Tensor) and idx.ndim == 2 and cache.length + idx.shape[1] > cache.max_len:
            raise ValueError(
                f"the KV cache is full: {cache.length} cached + {idx.shape[1]} new positions > its max_len={cache.max_len}"
            )
        return cache.length

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (the tied lm_head counted once). non_embedding=True leaves out the
        token and position tables wte and wpe, as Kaplan et al.'s N."""
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a tied tensor once
        if non_embedding:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.config
        start = 0 if cache is None else self._check_cache(cache, idx)
        _check_ids("idx", idx, cfg.vocab_size, cfg.block_size - start,
                   what="block_size" if cache is None else f"block_size - cache.length = {cfg.block_size} - {start}")
        if targets is not None:
            _check_targets(targets, idx, cfg.vocab_size, "idx")
        T = idx.shape[1]
        # position embeddings of positions start .. start+T-1: a slice of the table, which is
        # wpe(arange) without building the arange or running a gather (and its backward)
        x = self.transformer.wte(idx) + self.transformer.wpe.weight[start:start + T]  # (B, T, C)
        if self.training and self.transformer.drop.p > 0:
            x = self.transformer.drop(x)
        if cache is None:
            for block in self.transformer.h:
                x = block(x)
        else:
            for i, block in enumerate(self.transformer.h):
                x = block(x, cache=cache.layer(i))
            cache.advance(T)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None if targets is None else _lm_loss(logits, targets)
        return logits, loss


# ----------------------------------------------------------------------------- Encoder (BERT)

@dataclass(frozen=True)
class EncoderConfig:
    """A BERT-style encoder's shape, with BERT's field meanings. Defaults: bert-base-uncased.

    max_position_embeddings: the longest input; type_vocab_size: segment ids (sentence A / B);
    n_inner: the MLP width (None means 4 * n_embd; BERT's intermediate_size); dropout: BERT's
    hidden and attention dropout (0.1); add_pooler: the tanh dense layer on [CLS].
    activation: BERT's exact erf GELU. attention: as in GPTConfig.
    """

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_inner: int | None = None
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    add_pooler: bool = True
    attention: str = "sdpa"
    activation: str = "gelu"

    def __post_init__(self) -> None:
        _check_common(self, ("vocab_size", "max_position_embeddings", "type_vocab_size", "n_layer", "n_head", "n_embd"))
        if not isinstance(self.add_pooler, bool):
            raise ValueError(f"EncoderConfig.add_pooler must be True or False, got {self.add_pooler!r}")

    @property
    def d_ff(self) -> int:
        return 4 * self.n_embd if self.n_inner is None else self.n_inner

    @classmethod
    def bert_base(cls, **overrides: Any) -> "EncoderConfig":
        """bert-base-uncased: 12 layers, 12 heads, 768 wide, 110M parameters."""
        return cls(**overrides)

    @classmethod
    def minilm_l6(cls, **overrides: Any) -> "EncoderConfig":
        """all-MiniLM-L6-v2 (sentence-transformers): 6 layers, 12 heads, 384 wide, MLP 1536."""
        return cls(**{**dict(n_layer=6, n_head=12, n_embd=384, n_inner=1536), **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> "EncoderConfig":
        """2 layers, 4 heads, 64 wide, vocab 512, 128 positions: for tests and quick experiments."""
        return cls(**{**dict(vocab_size=512, max_position_embeddings=128, n_layer=2, n_head=4, n_embd=64), **overrides})


class EncoderOutput(NamedTuple):
    """What `Encoder.forward` returns (named like Hugging Face's BertModel output; there are no logits).

    last_hidden_state (B, T, C); pooler_output (B, C) or None without a pooler;
    hidden_states: n_layer + 1 tensors (B, T, C), the embeddings first;
    attentions: n_layer tensors (B, n_head, T, T), or () when not asked for.
    """

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None
    hidden_states: tuple[torch.Tensor, ...]
    attentions: tuple[torch.Tensor, ...]


class _AddNorm(nn.Module):
    """BERT's `output` modules: LayerNorm(residual + dropout(dense(x))), the post-LN step."""

    def __init__(self, d_in: int, n_embd: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, n_embd)
        self.LayerNorm = LayerNorm(n_embd, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class _Dense(nn.Module):
    """BERT's `intermediate`: dense C -> d_ff, then the activation (the first half of the MLP)."""

    def __init__(self, n_embd: int, d_ff: int, activation: str) -> None:
        super().__init__()
        self.dense = nn.Linear(n_embd, d_ff)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class _BertAttention(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        # `self` (BERT's name): query/key/value, no output projection; `output`: dense + add & norm
        self.self = MultiHeadAttention(
            config.n_embd, config.n_head, dropout=config.dropout,
            attention=config.attention, fused_qkv=False, out_proj=False,
        )
        self.output = _AddNorm(config.n_embd, config.n_embd, config.layer_norm_eps, config.dropout)


class EncoderLayer(nn.Module):
    """BERT's post-LN layer: h = LN(x + attn(x)), out = LN(h + mlp(h)); attention sees every unpadded token."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.attention = _BertAttention(config)
        self.intermediate = _Dense(config.n_embd, config.d_ff, config.activation)
        self.output = _AddNorm(config.d_ff, config.n_embd, config.layer_norm_eps, config.dropout)

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a = self.attention.self(x, mask=keep, return_weights=return_weights)  # (B, T, C) merged heads
        a, att = a if return_weights else (a, None)
        h = self.attention.output(a, x)  # LN(x + dense(a))
        return self.output(self.intermediate(h), h), att  # LN(h + dense(gelu(dense(h))))


class _BertEmbeddings(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.n_embd)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.n_embd)
        self.LayerNorm = LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))  # (B, T, C)


class _Pooler(nn.Module):
    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.dense = nn.Linear(n_embd, n_embd)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))  # the [CLS] position: (B, C)


def _check_attention_mask(mask: Any, ids: torch.Tensor, name: str, ids_name: str) -> torch.Tensor:
    """A (B, T) padding mask, 1/True = a real token, 0/False = padding -> bool keep (B, 1, 1, T) over the keys."""
    if not isinstance(mask, torch.Tensor) or mask.dtype.is_floating_point or mask.dtype.is_complex:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a bool or integer (B, T) tensor, 1 = token and 0 = padding, got {got}")
    if mask.shape != ids.shape:
        raise ValueError(f"{name} must have the shape of {ids_name} {tuple(ids.shape)}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if ((mask != 0) & (mask != 1)).any():
            raise ValueError(f"{name} must hold only 0 (padding) and 1 (token), got {sorted(set(mask.unique().tolist()))[:5]}")
        mask = mask.bool()
    return mask[:, None, None, :]  # broadcast over heads and queries: mask the keys


class Encoder(nn.Module):
    """A BERT-style encoder: embeddings (token + position + token type, LayerNorm), n_layer post-LN layers, optional pooler.

    `forward(input_ids, attention_mask=None, token_type_ids=None, *, output_attentions=True)
    -> EncoderOutput`. input_ids (B, T), T <= max_position_embeddings; attention_mask (B, T)
    with 1 for tokens and 0 for padding (Hugging Face's convention); token_type_ids (B, T),
    default all 0. Padding is masked as a *key*: no token attends to a pad, so padding never
    changes the other positions. Pad positions still get hidden states (they attend to the
    real tokens), exactly as BertModel computes them. Where the two differ: a sequence that is
    all padding has every key masked; its attention output is zeros here (the course's
    convention, as F.scaled_dot_product_attention), while BertModel's additive mask gives
    uniform weights. Use only unpadded positions (mean pooling weights them by the mask).
    Attention weights come from the written path; output_attentions=False skips them so the
    fast path (config.attention="sdpa") runs. The state_dict keys are BertModel's.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise ValueError(f"Encoder needs an EncoderConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = _BertEmbeddings(config)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([EncoderLayer(config) for _ in range(config.n_layer)])
        self.pooler = _Pooler(config.n_embd) if config.add_pooler else None
        self.apply(_init_gpt2)  # BERT's init is the same: N(0, 0.02), zero biases, LayerNorm 1 and 0

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters; non_embedding=True leaves out the three embedding tables."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            e = self.embeddings
            n -= sum(t.weight.numel() for t in (e.word_embeddings, e.position_embeddings, e.token_type_embeddings))
        return n

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        *,
        output_attentions: bool = True,
    ) -> EncoderOutput:
        cfg = self.config
        _check_ids("input_ids", input_ids, cfg.vocab_size, cfg.max_position_embeddings, "max_position_embeddings")
        keep = None if attention_mask is None else _check_attention_mask(attention_mask, input_ids, "attention_mask", "input_ids")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        elif not isinstance(token_type_ids, torch.Tensor) or token_type_ids.shape != input_ids.shape:
            got = tuple(token_type_ids.shape) if isinstance(token_type_ids, torch.Tensor) else type(token_type_ids).__name__
            raise ValueError(f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, got {got}")
        else:
            _check_ids("token_type_ids", token_type_ids, cfg.type_vocab_size, None, vocab_name="type_vocab_size")
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        hidden, attentions = [x], []
        for layer in self.encoder.layer:
            x, att = layer(x, keep, return_weights=output_attentions)
            hidden.append(x)
            if output_attentions:
                attentions.append(att)  # (B, nh, T, T)
        pooled = None if self.pooler is None else self.pooler(x)
        return EncoderOutput(x, pooled, tuple(hidden), tuple(attentions))


# ----------------------------------------------------------------------------- EncoderDecoder (2017)

@dataclass(frozen=True)
class EncoderDecoderConfig:
    """The original Transformer's shape (Vaswani et al. 2017), small by default.

    One vocabulary for source and target (a shared BPE), so one embedding table serves the
    encoder's input, the decoder's input and the output layer. block_size: the longest source
    and the longest target. n_layer encoder layers and n_decoder_layer decoder layers (None:
    the same number). norm_first=True puts LayerNorm inside each residual branch (pre-LN, with
    a final LayerNorm after each stack); False is the paper's post-LN. Pre-LN is the default,
    the layout GPT uses too. At this size neither wins clearly: on a reversal task (3 + 3
    layers, 64 wide, AdamW, constant learning rate, no warm-up, 2 seeds) pre-LN was ahead at
    step 150 with lr 5e-4 and 1e-3, post-LN with 2e-3, and both ended within 0.01 of each
    other at step 300; pre-LN is kept as the choice that stays trainable as depth grows
    (Xiong et al. 2020). activation: the paper's ReLU.
    """

    vocab_size: int = 512
    block_size: int = 128
    n_layer: int = 3
    n_decoder_layer: int | None = None
    n_head: int = 4
    n_embd: int = 128
    n_inner: int | None = None
    dropout: float = 0.0
    bias: bool = True
    layer_norm_eps: float = 1e-5
    norm_first: bool = True
    attention: str = "sdpa"
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_common(self, ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        if self.n_decoder_layer is not None:
            _check_positive_int("EncoderDecoderConfig", "n_decoder_layer", self.n_decoder_layer)
        if self.n_embd % 2:
            raise ValueError(f"EncoderDecoderConfig.n_embd must be even (sinusoidal positions come in sin/cos pairs), got {self.n_embd}")
        for name in ("bias", "norm_first"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"EncoderDecoderConfig.{name} must be True or False, got {getattr(self, name)!r}")

    @property
    def d_ff(self) -> int:
        return 4 * self.n_embd if self.n_inner is None else self.n_inner

    @property
    def n_dec(self) -> int:
        """The number of decoder layers: n_decoder_layer, or n_layer when that is None."""
        return self.n_layer if self.n_decoder_layer is None else self.n_decoder_layer


class Seq2SeqBlock(nn.Module):
    """An encoder layer (self-attention + MLP) or, with cross=True, a decoder layer (causal
    self-attention + cross-attention over the encoder's output + MLP); pre- or post-LN."""

    def __init__(self, config: EncoderDecoderConfig, cross: bool) -> None:
        super().__init__()
        C, eps, bias = config.n_embd, config.layer_norm_eps, config.bias
        mha = dict(bias=bias, dropout=config.dropout, attention=config.attention)
        self.norm_first = config.norm_first
        self.ln_1 = LayerNorm(C, bias=bias, eps=eps)
        self.attn = MultiHeadAttention(C, config.n_head, **mha)
        if cross:
            self.ln_cross = LayerNorm(C, bias=bias, eps=eps)
            self.cross_attn = MultiHeadAttention(C, config.n_head, **mha)
        self.ln_2 = LayerNorm(C, bias=bias, eps=eps)
        self.mlp = MLP(C, config.d_ff, bias, config.dropout, config.activation)

    def _residual(self, x: torch.Tensor, ln: LayerNorm, f: Any) -> torch.Tensor:
        return x + f(ln(x)) if self.norm_first else ln(x + f(x))

    def forward(
        self,
        x: torch.Tensor,
        keep: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # x (B, T, C); an encoder layer: keep masks the source's padding; a decoder layer
        # (memory (B, S, C) given): causal self-attention, then cross-attention to memory
        decoder = memory is not None
        x = self._residual(x, self.ln_1, lambda h: self.attn(h, mask=keep, is_causal=decoder))
        if decoder:
            x = self._residual(x, self.ln_cross, lambda h: self.cross_attn(h, memory, memory, mask=memory_keep))
        return self._residual(x, self.ln_2, self.mlp)


class EncoderDecoder(nn.Module):
    """The 2017 Transformer: an encoder reads the source, a decoder writes the target attending to it.

    `forward(src, tgt, src_mask=None, targets=None) -> (logits, loss)`: src (B, S) and tgt
    (B, T) token ids from the one shared vocabulary, S and T <= block_size; src_mask (B, S),
    1/True for a token and 0/False for padding, hides the source's padding from both the
    encoder and the cross-attention. logits (B, T, vocab_size); targets (B, T) are the next
    target tokens, -1 to ignore (a padded target), loss as GPT's. The target needs no padding
    mask: it is right-padded and the decoder is causal, so padding never reaches a real position.
    `encode(src, src_mask) -> memory (B, S, C)` and `decode(tgt, memory, src_mask) -> logits`
    are the two halves, for generation (chapter 11). Embeddings: one table scaled by √C, as in
    the paper, plus fixed sinusoidal positions. The table starts N(0, 0.02) like GPT-2's: with
    the paper's N(0, 1/C) the tied output layer would start out confidently copying its input.
    """

    def __init__(self, config: EncoderDecoderConfig) -> None:
        super().__init__()
        if not isinstance(config, EncoderDecoderConfig):
            raise ValueError(f"EncoderDecoder needs an EncoderDecoderConfig, got {type(config).__name__}")
        self.config = config
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)
        self.register_buffer("wpe", sinusoidal_positions(config.block_size, C), persistent=False)  # (block_size, C)
        self.drop = nn.Dropout(config.dropout)

        def stack(n: int, cross: bool) -> nn.ModuleDict:
            d = nn.ModuleDict(dict(h=nn.ModuleList([Seq2SeqBlock(config, cross) for _ in range(n)])))
            if config.norm_first:  # pre-LN leaves the stream unnormalised: one LayerNorm at the end
                d["ln_f"] = LayerNorm(C, bias=config.bias, eps=config.layer_norm_eps)
            return d

        self.encoder = stack(config.n_layer, cross=False)
        self.decoder = stack(config.n_dec, cross=True)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # shared vocabulary: one table in, one out
        self.apply(_init_gpt2)
        for prefix, n_branches in (("encoder.", 2 * config.n_layer), ("decoder.", 3 * config.n_dec)):
            for name, p in self.named_parameters():
                if name.startswith(prefix) and name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(n_branches))

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (the shared table counted once); non_embedding leaves it out."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wte.weight.numel() if non_embedding else n

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        return self.drop(self.wte(ids) * math.sqrt(self.config.n_embd) + self.wpe[:T].to(self.wte.weight.dtype))

    def _src_keep(self, src: torch.Tensor, src_mask: torch.Tensor | None) -> torch.Tensor | None:
        return None if src_mask is None else _check_attention_mask(src_mask, src, "src_mask", "src")

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) -> memory (B, S, C), the encoder's output."""
        cfg = self.config
        _check_ids("src", src, cfg.vocab_size, cfg.block_size)
        return self._encode(src, self._src_keep(src, src_mask))

    def _encode(self, src: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = self._embed(src)  # (B, S, C)
        for block in self.encoder.h:
            x = block(x, keep)
        return self.encoder.ln_f(x) if "ln_f" in self.encoder else x

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """tgt (B, T) and the encoder's memory (B, S, C) -> logits (B, T, vocab_size)."""
        cfg = self.config
        _check_ids("tgt", tgt, cfg.vocab_size, cfg.block_size)
        if not isinstance(memory, torch.Tensor) or memory.ndim != 3 or memory.shape[0] != tgt.shape[0] or memory.shape[2] != cfg.n_embd:
            got = tuple(memory.shape) if isinstance(memory, torch.Tensor) else type(memory).__name__
            raise ValueError(f"memory must have shape (B={tgt.shape[0]}, S, C={cfg.n_embd}), got {got}")
        keep = None
        if src_mask is not None:
            keep = _check_attention_mask(src_mask, memory[..., 0], "src_mask", "the source (memory's (B, S))")
        return self._decode(tgt, memory, keep)

    def _decode(self, tgt: torch.Tensor, memory: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = self._embed(tgt)  # (B, T, C)
        for block in self.decoder.h:
            x = block(x, memory=memory, memory_keep=keep)
        if "ln_f" in self.decoder:
            x = self.decoder.ln_f(x)
        return self.lm_head(x)  # (B, T, V)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.config
        _check_ids("src", src, cfg.vocab_size, cfg.block_size)
        _check_ids("tgt", tgt, cfg.vocab_size, cfg.block_size)
        if src.shape[0] != tgt.shape[0]:
            raise ValueError(f"src and tgt must share the batch size B, got src {tuple(src.shape)} and tgt {tuple(tgt.shape)}")
        keep = self._src_keep(src, src_mask)
        if targets is not None:
            _check_targets(targets, tgt, cfg.vocab_size, "tgt")
        logits = self._decode(tgt, self._encode(src, keep), keep)
        loss = None if targets is None else _lm_loss(logits, targets)
        return logits, loss
