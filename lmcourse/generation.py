"""Generating text: greedy, sampling (temperature, top-k, top-p), repetition penalty, beam search.

Read top to bottom: the three logit filters that chapter 08 derives (each a small function
on a (..., V) tensor of logits), how the model is run for the next token (with or without
the KV cache, and what happens when the text outgrows the context), then `generate`.

Conventions, each pinned by a test:
- top-k keeps every token whose logit is >= the k-th largest (ties at the boundary kept).
- top-p (nucleus, Holtzman et al. 2019) keeps the smallest set of most likely tokens whose
  probability mass reaches p, the token that crosses p INCLUDED: token i (in descending order)
  is kept when the mass strictly before it is < p. The most likely token is always kept.
- the repetition penalty is CTRL's (Keskar et al. 2019) as Hugging Face applies it: every
  token already in the sequence (prompt included) has its logit divided by the penalty when
  positive and multiplied by it when negative, so penalty > 1 always makes it less likely.
- temperature 0 means argmax (the limit T -> 0 of softmax(logits / T)), so a slider can reach it.
- beam search scores a hypothesis by its total log-probability divided by
  (generated length) ** length_penalty: 0 (the default) is the raw sum, not normalised;
  1 is the mean log-probability per token.
- a row that emits a stop token is finished: the stop token is kept, and the row repeats it
  as padding while other rows go on; generation ends when every row is finished.

Derived in chapters/08_generation.ipynb.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import torch
import torch.nn as nn

from lmcourse.attention import KVCache

__all__ = ["top_k_filter", "top_p_filter", "apply_repetition_penalty", "generate", "STRATEGIES"]

STRATEGIES = ("greedy", "sample", "beam")


# ----------------------------------------------------------------------------- the filters

def _check_logits(logits: Any, fn: str) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        got = logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{fn}: logits must be a floating-point tensor (..., V), got {got}")
    if logits.ndim < 1:
        raise ValueError(f"{fn}: logits must have shape (..., V), got a scalar")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k most likely tokens of each row: every other logit becomes -inf.

    logits (..., V) -> (..., V), a new tensor. A token is kept when its logit is >= the k-th
    largest of its row, so tokens tied with the k-th are all kept; k >= V keeps everything.
    Derived in chapters/08_generation.ipynb.
    """
    _check_logits(logits, "top_k_filter")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"top_k_filter: k must be an int >= 1, got {k!r}")
    V = logits.shape[-1]
    if k >= V or logits.numel() == 0:
        return logits.clone()
    kth = torch.topk(logits, int(k), dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose mass reaches p.

    logits (..., V) -> (..., V), a new tensor with the dropped tokens at -inf. Sorted by
    probability (descending, ties in index order), token i is kept when the mass of the
    tokens before it is < p: the token whose probability carries the mass to p or past it is
    INCLUDED. p = 1 keeps everything; the most likely token is always kept. p in (0, 1].
    Derived in chapters/08_generation.ipynb.
    """
    _check_logits(logits, "top_p_filter")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p_filter: p must be in (0, 1], got {p!r}")
    if p == 1.0 or logits.numel() == 0:
        return logits.clone()
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    # at least float32 (half-precision cumsums drift), float64 kept as float64
    probs = sorted_logits.to(torch.promote_types(sorted_logits.dtype, torch.float32)).softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # the mass strictly before each token, (..., V)
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, idx: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty: make every token already in the sequence less likely.

    logits (B, V), idx (B, T) the tokens so far -> (B, V), a new tensor: for each token id
    present in row b of idx, its logit is divided by `penalty` when > 0 and multiplied by it
    when <= 0 (Hugging Face's form; CTRL's paper divides, which would raise a negative logit).
    A token counts once however often it occurs. penalty > 0; 1 changes nothing, > 1 discourages.
    Derived in chapters/08_generation.ipynb.
    """
    _check_logits(logits, "apply_repetition_penalty")
    if isinstance(penalty, bool) or not isinstance(penalty, numbers.Real) or not penalty > 0 or not math.isfinite(penalty):
        raise ValueError(f"apply_repetition_penalty: penalty must be a positive number, got {penalty!r}")
    if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32) or idx.ndim != 2:
        got = f"{idx.dtype} {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"apply_repetition_penalty: idx must be a (B, T) integer tensor, got {got}")
    if logits.ndim != 2 or logits.shape[0] != idx.shape[0]:
        raise ValueError(f"apply_repetition_penalty: logits must be (B, V) with idx's B={idx.shape[0]}, got {tuple(logits.shape)}")
    V = logits.shape[1]
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= V):
        raise ValueError(f"apply_repetition_penalty: idx must lie in [0, {V - 1}] (V from logits), got "
                         f"min={int(idx.min())}, max={int(idx.max())}")
    seen = logits.gather(1, idx.long())  # (B, T): the logits of the tokens so far (repeats give the same value)
    penalised = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, idx.long(), penalised)


# ----------------------------------------------------------------------------- running the model

class _NextToken:
    """Logits of the token after `seq`, for every row, with or without a KV cache.

    The model sees a window seq[:, start:] of at most block_size tokens. When the sequence
    outgrows it, the window's start moves on by `context_shift` tokens at a time (as many
    times as needed): 1 is nanoGPT's sliding window of the last block_size tokens. GPT's
    positions are learned and absolute, so a cached key cannot move to another position:
    every move re-runs the window through the model (a prefill). With shift 1 that happens
    on every token once the context is full, so the cache stops saving work there; a larger
    shift lets it work between the jumps. Both paths use the same windows, so the cache
    never changes what is generated.
    """

    def __init__(self, model: nn.Module, batch_size: int, block_size: int, context_shift: int, use_cache: bool,
                 max_len: int) -> None:
        self.model, self.block_size, self.shift, self.start = model, block_size, context_shift, 0
        self.cache = KVCache.for_model(model, batch_size, min(block_size, max_len)) if use_cache else None

    def __call__(self, seq: torch.Tensor) -> torch.Tensor:
        L = seq.shape[1]
        over = L - self.start - self.block_size
        if over > 0:
            self.start += self.shift * -(-over // self.shift)  # ceil: the fewest whole shifts that fit
            if self.cache is not None:
                self.cache.reset()
        if self.cache is None:
            logits, _ = self.model(seq[:, self.start:])
        else:
            logits, _ = self.model(seq[:, self.start + self.cache.length:], cache=self.cache)
        return logits[:, -1, :]  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.reorder(index)


# ----------------------------------------------------------------------------- generate

def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _stop_tensor(stop_tokens: Any, vocab_size: int | None, device: torch.device) -> torch.Tensor:
    if stop_tokens is None:
        stop_tokens = ()
    elif isinstance(stop_tokens, numbers.Integral) and not isinstance(stop_tokens, bool):
        stop_tokens = (stop_tokens,)
    ids = list(stop_tokens) if isinstance(stop_tokens, Iterable) else [stop_tokens]
    for t in ids:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0 or (vocab_size is not None and t >= vocab_size):
            raise ValueError(f"stop_tokens must be token ids in [0, {vocab_size}), got {stop_tokens!r}")
    return torch.tensor([int(t) for t in ids], dtype=torch.long, device=device)


def generate(
    model: nn.Module,
    idx: torch.Tensor,
    *,
    max_new_tokens: int,
    strategy: str = "greedy",
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    num_beams: int = 4,
    length_penalty: float = 0.0,
    stop_tokens: int | Iterable[int] | None = None,
    context_shift: int = 1,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Continue each prompt row of idx (B, T) by up to max_new_tokens tokens -> (B, T + n).

    strategy:
    - "greedy": the most likely token each step;
    - "sample": draw from softmax(logits / temperature) (default temperature 1; 0 means
      argmax) after top_k and then top_p filtering, with `generator` (a torch.Generator on
      idx's device) for reproducible draws;
    - "beam": beam search with num_beams beams per row (num_beams=1 is greedy), scored by
      total log-probability / (generated length) ** length_penalty (0: the raw sum).
    repetition_penalty (CTRL's, see `apply_repetition_penalty`) applies to every strategy.
    A row ends at one of stop_tokens (kept in the output, then repeated as padding), and
    generation ends when every row has (so n <= max_new_tokens). The model sees at most its
    block_size last tokens, moved on by context_shift tokens when the text outgrows it (1:
    nanoGPT's sliding window; see `_NextToken`). use_cache=True runs each new token alone
    against a `KVCache`; False re-runs the whole window each step (same output, slower).
    The model runs in eval mode without gradients (its mode is restored). `model` is a GPT,
    or any module with `.config.block_size` whose forward(idx) returns (logits, ...); the
    cache needs GPT's forward(idx, cache=...).
    Derived in chapters/08_generation.ipynb.
    """
    cfg = getattr(model, "config", None)
    block_size = getattr(cfg, "block_size", None)
    if not isinstance(model, nn.Module) or not isinstance(block_size, int):
        raise ValueError(f"model must be a GPT (a module with .config.block_size), got {type(model).__name__}")
    vocab_size = getattr(cfg, "vocab_size", None)
    if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32) or idx.ndim != 2:
        got = f"{idx.dtype} of shape {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must be a (B, T) tensor of token ids (torch.long), got {got} (one prompt: idx[None])")
    if idx.shape[0] < 1 or idx.shape[1] < 1:
        raise ValueError(f"idx must hold at least one prompt of at least one token, got shape {tuple(idx.shape)}")
    max_new_tokens = _check_int("max_new_tokens", max_new_tokens, 0)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy != "sample":
        given = [n for n, v in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to strategy='sample', not {strategy!r}")
    if temperature is None:
        temperature = 1.0
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 <= temperature < math.inf:
        raise ValueError(f"temperature must be a number >= 0 (0 = argmax), got {temperature!r}")
    if top_k is not None:
        _check_int("top_k", top_k, 1)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    rp = repetition_penalty
    if isinstance(rp, bool) or not isinstance(rp, numbers.Real) or not rp > 0 or not math.isfinite(rp):
        raise ValueError(f"repetition_penalty must be a positive number (1 = none), got {rp!r}")
    num_beams = _check_int("num_beams", num_beams, 1)
    lp = length_penalty
    if isinstance(lp, bool) or not isinstance(lp, numbers.Real) or not math.isfinite(lp):
        raise ValueError(f"length_penalty must be a finite number, got {lp!r}")
    context_shift = _check_int("context_shift", context_shift, 1)
    if context_shift > block_size:
        raise ValueError(f"context_shift={context_shift} exceeds the model's block_size={block_size}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator is not None and generator.device.type != idx.device.type:
        raise ValueError(f"generator is on {generator.device}, idx on {idx.device}: make it with "
                         f"torch.Generator(device=idx.device)")
    stop = _stop_tensor(stop_tokens, vocab_size, idx.device)
    if max_new_tokens == 0:
        return idx.long().clone()

    was_training = model.training
    model.eval()
    try:
        # inference_mode: no autograd bookkeeping at all, which is much of the cost of a one-token step
        with torch.inference_mode():
            if strategy == "beam":
                out = _beam_search(model, idx.long(), max_new_tokens, num_beams, float(lp), float(rp), stop,
                                   block_size, context_shift, use_cache)
            else:
                out = _decode(model, idx.long(), max_new_tokens, strategy, float(temperature), top_k, top_p, float(rp),
                              stop, block_size, context_shift, generator, use_cache)
    finally:
        model.train(was_training)
    return out.clone()  # a normal tensor: an inference-mode one could not be fed to a model that trains


def _decode(model, idx, max_new_tokens, strategy, temperature, top_k, top_p, rp, stop, block_size, shift,
            generator, use_cache) -> torch.Tensor:
    """Greedy and sampling: one token per row per step."""
    B = idx.shape[0]
    next_logits = _NextToken(model, B, block_size, shift, use_cache, idx.shape[1] + max_new_tokens)
    seq = idx
    finished = torch.zeros(B, dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        logits = next_logits(seq).float()  # (B, V)
        if rp != 1.0:
            logits = apply_repetition_penalty(logits, seq, rp)
        if strategy == "greedy" or temperature == 0:
            tok = logits.argmax(dim=-1)  # (B,)
        else:
            logits = logits / temperature
            if top_k is not None:
                logits = top_k_filter(logits, top_k)
            if top_p is not None:
                logits = top_p_filter(logits, top_p)
            tok = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)
        if stop.numel():
            tok = torch.where(finished, seq[:, -1], tok)  # a finished row repeats its stop token
            finished |= torch.isin(tok, stop)
        seq = torch.cat([seq, tok[:, None]], dim=1)
        if stop.numel() and bool(finished.all()):
            break
    return seq


def _beam_search(model, idx, max_new_tokens, W, lp, rp, stop, block_size, shift, use_cache) -> torch.Tensor:
    """Beam search, W beams per prompt row; rows b*W .. b*W + W - 1 of the running batch are row b's beams."""
    B, T0 = idx.shape
    device = idx.device
    next_logits = _NextToken(model, B * W, block_size, shift, use_cache, T0 + max_new_tokens)
    seq = idx.repeat_interleave(W, dim=0)  # (B*W, T0)
    scores = torch.full((B, W), float("-inf"), device=device)
    scores[:, 0] = 0.0  # W copies of one prompt: only the first may spread, or the beams would be duplicates
    hyps: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(B)]  # (normalised score, tokens) that stopped
    done = [False] * B
    stop_ids = set(stop.tolist())

    def norm(total: float, n: int) -> float:
        return total / (n ** lp) if lp else total

    for step in range(1, max_new_tokens + 1):
        logits = next_logits(seq).float()  # (B*W, V)
        if rp != 1.0:
            logits = apply_repetition_penalty(logits, seq, rp)
        V = logits.shape[-1]
        cand = (scores[:, :, None] + logits.log_softmax(dim=-1).view(B, W, V)).view(B, W * V)
        # 2W candidates: even if W of them stop, W remain to carry on
        top_s, top_i = cand.topk(min(2 * W, W * V), dim=1)
        parent, token = top_i // V, top_i % V
        new_parent = torch.arange(B * W, device=device).view(B, W).clone()
        new_token = seq[:, -1].view(B, W).clone()
        new_scores = torch.full((B, W), float("-inf"), device=device)
        for b in range(B):
            if done[b]:
                continue
            n = 0
            for r in range(top_s.shape[1]):
                s = float(top_s[b, r])
                if s == float("-inf"):
                    break
                p, t = int(parent[b, r]), int(token[b, r])
                if t in stop_ids:
                    if r < W:  # a stopping candidate counts only if it ranks among the best W
                        hyps[b].append((norm(s, step), torch.cat([seq[b * W + p], token[b, r:r + 1]])))
                    continue
                new_parent[b, n], new_token[b, n], new_scores[b, n] = b * W + p, t, s
                n += 1
                if n == W:
                    break
            if n == 0:  # every candidate stopped: nothing left to extend
                done[b] = True
                continue
            # finished when W hypotheses have stopped and no running beam can still beat the worst of them:
            # exact for length_penalty 0 (log-probabilities only fall); for others the current length is
            # used, as Hugging Face's early_stopping=False does
            if len(hyps[b]) >= W:
                worst = sorted(h[0] for h in hyps[b])[-W]
                best_running = float(new_scores[b].max())
                if best_running == float("-inf") or norm(best_running, step) <= worst:
                    done[b] = True
        index = new_parent.view(-1)
        seq = torch.cat([seq[index], new_token.view(-1, 1)], dim=1)
        next_logits.reorder(index)
        scores = new_scores
        if all(done):
            break
    n_new = seq.shape[1] - T0
    for b in range(B):
        if not done[b]:  # out of tokens: the running beams compete with the stopped ones
            for w in range(W):
                if scores[b, w] > float("-inf"):
                    hyps[b].append((norm(float(scores[b, w]), n_new), seq[b * W + w]))
    best = [max(h, key=lambda x: x[0])[1] for h in hyps]
    L = max(len(t) for t in best)
    # a shorter result ended with a stop token: repeat it as padding, as the other strategies do
    return torch.stack([torch.cat([t, t[-1:].expand(L - len(t))]) for t in best])
