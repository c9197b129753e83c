"""Self-attention: softmax(QKᵀ/√d_k)V, the causal mask, and multi-head attention.

Read top to bottom: the mask, the one formula, the two reshapes that make it
multi-head, then the two modules a Transformer uses. Parameter names follow GPT-2
(`c_attn` is the fused query/key/value projection C → 3C, `c_proj` the output
projection), so GPT-2 weights load by a key copy (Hugging Face keeps these two as Conv1D
weights of shape (in, out): transpose them, as nanoGPT does).

The modules run either the written-out formula (the teaching path, which can return the
attention weights) or the same math through `F.scaled_dot_product_attention` (the fast
path, `attention="sdpa"`); the tests hold the two equal, forward and backward.

Derived in chapters/04_self_attention.ipynb.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "causal_mask",
    "scaled_dot_product_attention",
    "split_heads",
    "merge_heads",
    "MultiHeadAttention",
    "CausalSelfAttention",
    "KVCache",
    "ATTENTION_PATHS",
]


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The causal mask: a bool (T, T) tensor, True on and below the diagonal.

    Entry [i, j] is True when query position i may look at key position j, i.e. j <= i:
    every token sees itself and the past, never the future. True means *keep*, the same
    convention as `scaled_dot_product_attention`'s `mask` and PyTorch's boolean `attn_mask`.
    Derived in chapters/04_self_attention.ipynb.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 0:
        raise ValueError(f"causal_mask: T must be a non-negative int, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Size:
    """Validate q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v); return the batch shape."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{name} must have shape (..., T, d), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dim d_k, got q {tuple(q.shape)} and k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same length Tk (dim -2), got k {tuple(k.shape)} and v {tuple(v.shape)}"
        )
    try:
        return torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch, head) dims of q, k, v do not broadcast: "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        ) from None


def _keep_mask(
    q: torch.Tensor, k: torch.Tensor, batch: torch.Size, mask: torch.Tensor | None, is_causal: bool
) -> torch.Tensor | None:
    """Validate `mask` against the scores' shape (*batch, Tq, Tk) and fold in the causal mask."""
    Tq, Tk = q.shape[-2], k.shape[-2]
    scores_shape = (*batch, Tq, Tk)
    keep = None
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor (True = keep), got {got}")
        try:
            ok = torch.broadcast_shapes(mask.shape, scores_shape) == torch.Size(scores_shape)
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                f"{scores_shape} (..., Tq, Tk) for q {tuple(q.shape)}, k {tuple(k.shape)}"
            )
        keep = mask
    if is_causal:
        if Tq != Tk:
            raise ValueError(f"is_causal needs Tq == Tk, got q {tuple(q.shape)} and k {tuple(k.shape)}")
        causal = causal_mask(Tq, device=q.device)
        keep = causal if keep is None else keep & causal
    return keep


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    *,
    is_causal: bool = False,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attention(Q, K, V) = softmax(Q Kᵀ · scale) V, written out.

    q is (..., Tq, d_k), k is (..., Tk, d_k), v is (..., Tk, d_v); the leading dims (batch,
    heads, ...) broadcast. `scale` defaults to 1/√d_k. `mask` is a bool tensor broadcastable
    to (..., Tq, Tk), True = keep (query i may attend to key j); `is_causal=True` adds the
    causal mask (needs Tq == Tk). Returns the output (..., Tq, d_v), and also the attention
    weights (..., Tq, Tk) when `return_weights=True`. A query row whose keys are *all* masked
    (or that has no keys, Tk = 0) has no distribution to take: its weights are defined as all
    zeros, so its output is the zero vector, and it passes no gradient back (the same
    convention as `torch.nn.functional.scaled_dot_product_attention`), never NaN. Empty
    shapes follow torch too: d_k = 0 makes every score an empty sum, 0, so the weights are
    uniform. Derived in chapters/04_self_attention.ipynb.
    """
    batch = _check_qkv(q, k, v)
    Tk, d_k = k.shape[-2], q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(max(d_k, 1))  # d_k = 0: the scores are empty sums, 0 at any scale
    elif isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise ValueError(f"scale must be a float (or None for 1/sqrt(d_k)), got {scale!r}")

    keep = _keep_mask(q, k, batch, mask, is_causal)

    # 1. similarity of every query with every key: (..., Tq, d_k) @ (..., d_k, Tk) -> (..., Tq, Tk)
    scores = (q @ k.transpose(-2, -1)) * scale
    # 2. masked keys get -inf, so exp() turns them into exactly 0
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    # 3. softmax over the keys (the last axis), stabilised by subtracting each row's max;
    #    a fully masked row has max -inf: use 0 instead, so its weights come out as 0, not NaN
    #    (with no keys at all, Tk = 0, there is no max to take: the rows are empty)
    row_max = scores.amax(dim=-1, keepdim=True) if Tk else scores.new_zeros(*scores.shape[:-1], 1)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(scores - row_max)
    denom = e.sum(dim=-1, keepdim=True)
    weights = e / torch.where(denom > 0, denom, torch.ones_like(denom))
    # 4. each output is a weighted average of the values: (..., Tq, Tk) @ (..., Tk, d_v)
    out = weights @ v
    return (out, weights) if return_weights else out


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head): multi-head is a reshape, then a transpose.

    The channels of each position are cut into n_head consecutive slices of size hs = C // n_head
    (view to (B, T, nh, hs)), then the head axis moves in front of time (transpose to
    (B, nh, T, hs)) so that attention runs per head over the time axis.
    Derived in chapters/04_self_attention.ipynb.
    """
    if x.ndim != 3:
        raise ValueError(f"split_heads expects (B, T, C), got {tuple(x.shape)}")
    B, T, C = x.shape
    if isinstance(n_head, bool) or not isinstance(n_head, int) or n_head < 1 or C % n_head:
        raise ValueError(f"C={C} (from x {tuple(x.shape)}) must be divisible by n_head={n_head!r}")
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, T, nh * hs): the inverse of `split_heads`.

    Transpose time back in front of the heads, then lay the heads side by side along the channels.
    Derived in chapters/04_self_attention.ipynb.
    """
    if x.ndim != 4:
        raise ValueError(f"merge_heads expects (B, nh, T, hs), got {tuple(x.shape)}")
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, nh * hs)


ATTENTION_PATHS = ("written", "sdpa")


def _fast_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, is_causal: bool, dropout_p: float
) -> torch.Tensor:
    """The same attention through PyTorch's fused kernel, `F.scaled_dot_product_attention`.

    Same conventions as `scaled_dot_product_attention` (bool mask, True = keep; fully masked
    rows give zeros); a mask together with is_causal is folded into one bool mask, since
    torch takes one or the other. With no mask, is_causal goes straight to the kernel, which
    then builds no (T, T) mask at all.
    """
    if mask is None and (not is_causal or q.shape[-2] == k.shape[-2]):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal)
    batch = _check_qkv(q, k, v)
    keep = _keep_mask(q, k, batch, mask, is_causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout_p)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with GPT-2 parameter names: `c_attn` (C -> 3C) and `c_proj` (C -> C).

    `forward(query, key=None, value=None, mask=None, is_causal=False, return_weights=False)`:
    query is (B, Tq, C); key and value (B, Tk, C) are given together (cross-attention) or
    both left out, and then default to the query (self-attention, one fused matmul); a key
    without a value, or a value without a key, is an error, as in `nn.MultiheadAttention`. The first, second and third C rows of `c_attn` project queries, keys and
    values, exactly like `nn.MultiheadAttention.in_proj_weight`, so its weights copy over.
    `mask` is bool, True = keep, broadcastable to (B, n_head, Tq, Tk): a key-padding mask
    `keep` of shape (B, Tk) becomes `keep[:, None, None, :]`. Returns (B, Tq, C), plus the
    per-head weights (B, n_head, Tq, Tk) if asked. Derived in chapters/04_self_attention.ipynb.

    Options (keyword-only), used by lmcourse.model:
    - `attention`: "written" (default) runs `scaled_dot_product_attention` above, the
      teaching path; "sdpa" runs the same math through `F.scaled_dot_product_attention`,
      PyTorch's fused kernel (faster, and it never builds the causal mask). Asking for the
      weights (`return_weights=True`) always takes the written path, since the fused kernel
      does not return them.
    - `fused_qkv=False`: three projections named as BERT names them, `query`, `key` and
      `value` (each C -> C), instead of the one fused `c_attn`.
    - `out_proj=False`: no output projection `c_proj` (BERT keeps it in a sibling module,
      `attention.output.dense`): the merged heads (B, Tq, C) are returned as they are.
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        bias: bool = True,
        dropout: float = 0.0,
        *,
        attention: str = "written",
        fused_qkv: bool = True,
        out_proj: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(n_embd, bool) or not isinstance(n_embd, int) or n_embd < 1:
            raise ValueError(f"n_embd must be a positive int, got {n_embd!r}")
        if isinstance(n_head, bool) or not isinstance(n_head, int) or n_head < 1 or n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if attention not in ATTENTION_PATHS:
            raise ValueError(f"attention must be one of {ATTENTION_PATHS}, got {attention!r}")
        self.n_embd, self.n_head, self.dropout = n_embd, n_head, dropout
        self.attention, self.fused_qkv = attention, bool(fused_qkv)
        if self.fused_qkv:
            self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        else:
            self.query = nn.Linear(n_embd, n_embd, bias=bias)
            self.key = nn.Linear(n_embd, n_embd, bias=bias)
            self.value = nn.Linear(n_embd, n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias) if out_proj else None
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)

    def _project(self, query: torch.Tensor, key: torch.Tensor | None, value: torch.Tensor | None):
        C = self.n_embd
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t is not None and (t.ndim != 3 or t.shape[-1] != C):
                raise ValueError(f"{name} must have shape (B, T, C={C}), got {tuple(t.shape)}")
        if key is None and value is None:
            if not self.fused_qkv:
                return self.query(query), self.key(query), self.value(query)
            return self.c_attn(query).split(C, dim=2)
        if key is None or value is None:
            missing = "key" if key is None else "value"
            raise ValueError(
                f"give key and value both (cross-attention) or neither (self-attention): {missing} is missing"
            )
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"key and value must share (B, Tk), got key {tuple(key.shape)}, value {tuple(value.shape)}")
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"query and key must share the batch size B, got {tuple(query.shape)} and {tuple(key.shape)}")
        if not self.fused_qkv:
            return self.query(query), self.key(key), self.value(value)
        w, b = self.c_attn.weight, self.c_attn.bias
        bq, bk, bv = (None, None, None) if b is None else b.split(C)
        wq, wk, wv = w.split(C)
        if key is value:  # cross-attention on one memory (an encoder's output): keys and values in one matmul
            k, v = F.linear(key, w[C:], None if b is None else b[C:]).split(C, dim=2)
            return F.linear(query, wq, bq), k, v
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self._project(query, key, value)  # (B, Tq, C), (B, Tk, C), (B, Tk, C)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs)
        return self._attend(q, k, v, mask, is_causal, return_weights)

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
        mask: torch.Tensor | None, is_causal: bool, return_weights: bool,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Per-head attention (B, nh, Tq, hs) on the chosen path, heads merged, output projection."""
        att = None
        if self.attention == "written" or return_weights:
            y, att = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal, return_weights=True)
            if self.training and self.dropout > 0:
                y = self.attn_dropout(att) @ v  # dropout on the weights, as in GPT-2
        else:
            y = _fast_attention(q, k, v, mask, is_causal, self.dropout if self.training else 0.0)
        y = merge_heads(y)  # (B, Tq, C)
        if self.c_proj is not None:
            y = self.c_proj(y)
            if self.training and self.resid_dropout.p > 0:
                y = self.resid_dropout(y)
        return (y, att) if return_weights else y


class CausalSelfAttention(MultiHeadAttention):
    """GPT-2's attention: multi-head self-attention where each token sees only itself and the past.

    Build it from a config with `n_embd` and `n_head` (and optionally `bias`, `dropout`,
    `attention`), or from the numbers: `CausalSelfAttention(n_embd, n_head, bias=True,
    dropout=0.0, attention="written")`.
    `forward(x, mask=None, return_weights=False, cache=None)` maps (B, T, C) -> (B, T, C); an
    optional bool `mask` (True = keep, broadcastable to (B, n_head, T, T), e.g. padding) is
    combined with the causal mask. With `cache` (one layer of a `KVCache`, `cache.layer(i)`),
    x holds only the T *new* positions: their keys and values are written into the cache
    after the S already there, and the queries attend to all S + T keys, query i seeing keys
    j <= S + i (the causal mask shifted by S; `mask` then broadcasts to (B, n_head, T, S + T)).
    The cache's length is advanced by its owner (GPT, once every layer has run).
    Derived in chapters/04_self_attention.ipynb; the cache in chapters/08_generation.ipynb.
    """

    def __init__(
        self,
        config: Any,
        n_head: int | None = None,
        bias: bool = True,
        dropout: float = 0.0,
        attention: str = "written",
    ) -> None:
        if isinstance(config, numbers.Number):  # the numbers themselves; MultiHeadAttention checks them
            if n_head is None:
                raise ValueError("CausalSelfAttention(n_embd, n_head): n_head is missing")
            n_embd = config
        else:
            if n_head is not None:
                raise ValueError("give either a config or (n_embd, n_head), not both")
            try:
                n_embd, n_head = config.n_embd, config.n_head
            except AttributeError:
                raise ValueError(
                    f"config must have n_embd and n_head attributes (or pass ints), got {config!r}"
                ) from None
            bias = getattr(config, "bias", bias)
            dropout = getattr(config, "dropout", dropout)
            attention = getattr(config, "attention", attention)
        super().__init__(n_embd, n_head, bias=bias, dropout=dropout, attention=attention)

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
        cache: "_LayerKV | None" = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"x must have shape (B, T, C={self.n_embd}), got {tuple(x.shape)}")
        if cache is None:
            return super().forward(x, mask=mask, is_causal=True, return_weights=return_weights)
        if not isinstance(cache, _LayerKV):
            raise ValueError(f"cache must be one layer of a KVCache (cache.layer(i)), got {type(cache).__name__}")
        q, k, v = self._project(x, None, None)  # (B, T, C) each
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs)
        k, v = cache.write(k, v)  # (B, nh, S + T, hs): the cached past and the new positions
        T, S = q.shape[2], k.shape[2] - q.shape[2]
        if S == 0:  # nothing cached yet: plain causal attention (SDPA's is_causal, no mask built)
            return self._attend(q, k, v, mask, True, return_weights)
        if T > 1:  # several new queries after S cached keys: query i sees keys j <= S + i
            keep = torch.ones(T, S + T, dtype=torch.bool, device=q.device).tril(diagonal=S)
            mask = keep if mask is None else mask & keep
        # T == 1: the one new query sees every key, so no mask at all (SDPA's fastest case)
        return self._attend(q, k, v, mask, False, return_weights)


class _LayerKV:
    """One layer's slice of a KVCache: views k, v (B, nh, max_len, hs) into the cache's tensors."""

    __slots__ = ("k", "v", "_owner")

    def __init__(self, k: torch.Tensor, v: torch.Tensor, owner: "KVCache") -> None:
        self.k, self.v, self._owner = k, v, owner

    def write(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Copy the new keys and values (B, nh, T, hs) in after the cached ones, in place; return
        views of everything filled so far, (B, nh, S + T, hs). Nothing is allocated."""
        S, T = self._owner.length, k.shape[2]
        if k.shape[:2] != self.k.shape[:2] or k.shape[3] != self.k.shape[3]:
            raise ValueError(
                f"keys of shape {tuple(k.shape)} do not fit a cache of (B, n_head, max_len, head_size) = {tuple(self.k.shape)}"
            )
        if k.dtype != self.k.dtype or k.device != self.k.device:
            raise ValueError(f"the cache holds {self.k.dtype} on {self.k.device}, the keys are {k.dtype} on {k.device}")
        if S + T > self.k.shape[2]:
            raise ValueError(f"the KV cache is full: {S} cached + {T} new positions > its max_len={self.k.shape[2]}")
        # narrow + copy_: the same as self.k[:, :, S:S+T] = k, without Python's indexing machinery
        # (this runs for every layer on every generated token)
        self.k.narrow(2, S, T).copy_(k)
        self.v.narrow(2, S, T).copy_(v)
        return self.k.narrow(2, 0, S + T), self.v.narrow(2, 0, S + T)


class KVCache:
    """The keys and values every layer has computed so far, so that generating one more token
    runs the model on that one token instead of the whole sequence again.

    Pre-allocated once, for n_layer layers: keys and values are each one tensor of shape
    (n_layer, B, n_head, max_len, head_size); `layer(i)` hands layer i its (B, n_head, max_len,
    head_size) views, into which new positions are copied in place, so nothing is allocated
    per token. `length` is the number of positions filled (the next one's position index);
    GPT.forward advances it. The memory it holds is 2 (keys and values) * n_layer * n_embd
    numbers per position per sequence: `bytes_per_token`. Build one for a model with
    `KVCache.for_model(model, batch_size, max_len)`.
    Derived in chapters/08_generation.ipynb.
    """

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_head: int,
        max_len: int,
        head_size: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        for name, n in (("n_layer", n_layer), ("batch_size", batch_size), ("n_head", n_head),
                        ("max_len", max_len), ("head_size", head_size)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"KVCache: {name} must be a positive int, got {n!r}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"KVCache: dtype must be a floating-point torch.dtype, got {dtype!r}")
        shape = (n_layer, batch_size, n_head, max_len, head_size)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0
        self._layers = [_LayerKV(self.k[i], self.v[i], self) for i in range(n_layer)]

    @classmethod
    def for_model(
        cls, model: nn.Module, batch_size: int, max_len: int | None = None, *, dtype: torch.dtype | None = None
    ) -> "KVCache":
        """A cache shaped for a GPT (anything with a `.config` holding n_layer, n_head, n_embd,
        block_size): max_len defaults to, and may not exceed, block_size; dtype and device
        default to the model's."""
        cfg = getattr(model, "config", None)
        if cfg is None or not all(hasattr(cfg, a) for a in ("n_layer", "n_head", "n_embd", "block_size")):
            raise ValueError(f"KVCache.for_model needs a GPT (a .config with n_layer, n_head, n_embd, block_size), got {type(model).__name__}")
        max_len = cfg.block_size if max_len is None else max_len
        if isinstance(max_len, int) and not isinstance(max_len, bool) and max_len > cfg.block_size:
            raise ValueError(f"KVCache max_len={max_len} exceeds the model's block_size={cfg.block_size} (it has no positions beyond)")
        p = next(model.parameters())
        return cls(cfg.n_layer, batch_size, cfg.n_head, max_len, cfg.n_embd // cfg.n_head,
                   dtype=p.dtype if dtype is None else dtype, device=p.device)

    @property
    def n_layer(self) -> int:
        return self.k.shape[0]

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    @property
    def bytes_per_token(self) -> int:
        """Bytes held per position of one sequence: 2 * n_layer * n_head * head_size * element size."""
        L, _, nh, _, hs = self.k.shape
        return 2 * L * nh * hs * self.k.element_size()

    @property
    def nbytes(self) -> int:
        """Bytes allocated in all (keys and values, every position up to max_len)."""
        return self.k.nbytes + self.v.nbytes

    def layer(self, i: int) -> _LayerKV:
        return self._layers[i]

    def advance(self, T: int) -> None:
        """Mark T more positions as filled (called once all layers have written them)."""
        if self.length + T > self.max_len:
            raise ValueError(f"the KV cache is full: {self.length} cached + {T} new positions > its max_len={self.max_len}")
        self.length += T

    def reset(self) -> None:
        """Forget every position (the memory stays allocated, to be overwritten)."""
        self.length = 0

    def reorder(self, index: torch.Tensor) -> None:
        """Keep sequence index[b] in row b (beam search: each surviving beam takes its parent's past).
        Only the filled positions are gathered."""
        n = self.length
        if n:
            for t in (self.k, self.v):
                t[:, :, :, :n] = t[:, index, :, :n]

    def __repr__(self) -> str:
        L, B, nh, T, hs = self.k.shape
        return (f"KVCache(n_layer={L}, batch_size={B}, n_head={nh}, max_len={T}, head_size={hs}, "
                f"length={self.length}, dtype={self.k.dtype})")
