"""Fine-tuning a pretrained model: task heads, freezing, LoRA, instruction tuning (SFT), and the data they train on.

Read top to bottom: padding masks, the three heads (each `forward(ids, targets=None,
attention_mask=None) -> (logits, loss)`, like GPT), span decoding for extractive QA,
freezing, LoRA, the SFT chat format, and `ExampleData`, which batches labelled examples
for `lmcourse.training.train` exactly as `TokenData` batches a token stream: everything
trains through the one Trainer. Then predictions (`classify`, `sft_answers`), and the
classical baseline a fine-tuned model is measured against: `BagOfWords` word counts and
`LogisticRegression` (L-BFGS, scikit-learn's model, without scikit-learn at run time).

Padding is always on the right, and `attention_mask` (B, T) marks real tokens with 1 and
padding with 0 (Hugging Face's convention). The token id under a pad does not matter: the
mask, never a pad id, says what is padding.

Used in chapters/09_finetuning.ipynb.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse.model import GPT, IGNORE_INDEX, Encoder, _check_attention_mask, _check_ids

__all__ = [
    "GPTClassifier",
    "EncoderClassifier",
    "SpanHead",
    "EncoderForQA",
    "best_spans",
    "FREEZE_MODES",
    "freeze",
    "trainable_parameters",
    "LoRALinear",
    "apply_lora",
    "merge_lora",
    "unmerge_lora",
    "SFT_PROMPT",
    "SFT_RESPONSE",
    "sft_prompt",
    "sft_example",
    "pad_batch",
    "collate_classification",
    "collate_sft",
    "collate_spans",
    "ExampleData",
    "classify",
    "sft_answers",
    "words",
    "BagOfWords",
    "LogisticRegression",
]


# ----------------------------------------------------------------------------- input checks

def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_n_classes(owner: str, n_classes: Any) -> None:
    if not _is_int(n_classes) or n_classes < 2:
        raise ValueError(f"{owner}: n_classes must be an int >= 2, got {n_classes!r}")


def _mask(attention_mask: Any, ids: torch.Tensor) -> torch.Tensor:
    """attention_mask (B, T), 1 = token and 0 = padding -> bool (B, T); None means no padding."""
    if attention_mask is None:
        return torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
    return _check_attention_mask(attention_mask, ids, "attention_mask", "the input ids")[:, 0, 0, :]


def _check_labels(targets: Any, B: int, n_classes: int) -> None:
    """Class targets: (B,) integers in [0, n_classes)."""
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        got = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be an integer tensor of class labels (B,), got {got}")
    if targets.shape != (B,):
        raise ValueError(f"targets must have shape (B,) = ({B},), one label per sequence, got {tuple(targets.shape)}")
    if targets.numel():
        lo, hi = int(targets.min()), int(targets.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"targets must lie in [0, {n_classes - 1}] (n_classes={n_classes}), got min={lo}, max={hi}")


# ----------------------------------------------------------------------------- heads

class GPTClassifier(nn.Module):
    """A GPT with a classification head on the hidden state of each sequence's last token.

    A causal model's last position is the only one that has read the whole sequence, so it
    carries the summary (GPT-1's choice; Hugging Face's GPT2ForSequenceClassification too).
    With right padding, the last *real* token is at position length - 1, and causal attention
    means the padding after it never reaches it. `forward(idx, targets=None,
    attention_mask=None) -> (logits (B, n_classes), loss)`: loss = mean cross-entropy over
    the (B,) labels. The GPT's lm_head is kept (it is tied to the token table) but unused.
    """

    def __init__(self, gpt: GPT, n_classes: int) -> None:
        super().__init__()
        if not isinstance(gpt, GPT):
            raise ValueError(f"GPTClassifier needs a GPT, got {type(gpt).__name__}")
        _check_n_classes("GPTClassifier", n_classes)
        self.gpt, self.n_classes = gpt, n_classes
        self.config = gpt.config  # the Trainer reads block_size from here
        C = gpt.config.n_embd
        self.head = nn.Linear(C, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        self.head.to(gpt.transformer.wte.weight.device, gpt.transformer.wte.weight.dtype)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The GPT's final hidden states (after ln_f): idx (B, T) -> (B, T, C)."""
        g, cfg = self.gpt, self.gpt.config
        _check_ids("idx", idx, cfg.vocab_size, cfg.block_size)
        x = g.transformer.wte(idx) + g.transformer.wpe.weight[:idx.shape[1]]  # (B, T, C)
        if self.training and g.transformer.drop.p > 0:
            x = g.transformer.drop(x)
        for block in g.transformer.h:
            x = block(x)
        return g.transformer.ln_f(x)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.hidden(idx)  # (B, T, C)
        keep = _mask(attention_mask, idx)  # (B, T) bool
        if keep.shape[1] > 1 and (keep[:, 1:] & ~keep[:, :-1]).any():
            # a gap or left padding would move the real tokens off their positions
            raise ValueError("attention_mask must be right-padded: each row ones, then zeros")
        lengths = keep.sum(dim=1)  # (B,)
        if (lengths == 0).any():
            row = int((lengths == 0).nonzero()[0])
            raise ValueError(f"row {row} of attention_mask has no tokens: an empty sequence has no last token to classify")
        last = h[torch.arange(h.shape[0], device=h.device), lengths - 1]  # (B, C)
        logits = self.head(last)  # (B, n_classes)
        if targets is None:
            return logits, None
        _check_labels(targets, idx.shape[0], self.n_classes)
        return logits, F.cross_entropy(logits, targets.long())


def _freeze_unused_pooler(encoder: Encoder) -> None:
    # the heads read the hidden states, never BERT's pooler: it would get no gradient, so it
    # is frozen rather than counted as trainable
    if encoder.pooler is not None:
        encoder.pooler.requires_grad_(False)


class EncoderClassifier(nn.Module):
    """An Encoder with a classification head on a pooled vector: the [CLS] state or the mean over tokens.

    pooling="cls": the last hidden state at position 0 (BERT's [CLS]; the pooler's tanh layer
    is not used); pooling="mean": the mean of the last hidden states over the real tokens only
    (padding masked out; sentence-transformers' pooling, which all-MiniLM-L6-v2 was trained
    with); a row with no real token pools to zeros. `forward(input_ids, targets=None,
    attention_mask=None, token_type_ids=None) -> (logits (B, n_classes), loss)`.
    """

    POOLINGS = ("cls", "mean")

    def __init__(self, encoder: Encoder, n_classes: int, pooling: str = "cls") -> None:
        super().__init__()
        if not isinstance(encoder, Encoder):
            raise ValueError(f"EncoderClassifier needs an Encoder, got {type(encoder).__name__}")
        _check_n_classes("EncoderClassifier", n_classes)
        if pooling not in self.POOLINGS:
            raise ValueError(f"pooling must be one of {self.POOLINGS}, got {pooling!r}")
        self.encoder, self.n_classes, self.pooling = encoder, n_classes, pooling
        self.config = encoder.config
        _freeze_unused_pooler(encoder)
        w = encoder.embeddings.word_embeddings.weight
        self.classifier = nn.Linear(encoder.config.n_embd, n_classes).to(w.device, w.dtype)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def pool(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, C) and the bool token mask (B, T) -> one vector per sequence (B, C)."""
        if self.pooling == "cls":
            return h[:, 0]
        m = keep.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)  # an all-padding row: 0 / 1 = zeros

    def forward(
        self,
        input_ids: torch.Tensor,
        targets: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.encoder(input_ids, attention_mask, token_type_ids, output_attentions=False)
        keep = _mask(attention_mask, input_ids)
        logits = self.classifier(self.pool(out.last_hidden_state, keep))  # (B, n_classes)
        if targets is None:
            return logits, None
        _check_labels(targets, input_ids.shape[0], self.n_classes)
        return logits, F.cross_entropy(logits, targets.long())


class SpanHead(nn.Module):
    """Extractive QA's head: one Linear C -> 2 scoring every token as the answer's start and its end.

    hidden (B, T, C) -> logits (B, T, 2): [..., 0] the start scores, [..., 1] the end scores
    (BERT's qa_outputs). Padding positions get the dtype's most negative value, so no
    softmax or argmax ever picks them, and the logits stay finite.
    """

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        if not _is_int(n_embd) or n_embd < 1:
            raise ValueError(f"SpanHead: n_embd must be a positive int, got {n_embd!r}")
        self.qa_outputs = nn.Linear(n_embd, 2)
        nn.init.normal_(self.qa_outputs.weight, std=0.02)
        nn.init.zeros_(self.qa_outputs.bias)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.qa_outputs(hidden)  # (B, T, 2)
        if keep is not None:
            logits = logits.masked_fill(~keep.unsqueeze(-1), torch.finfo(logits.dtype).min)
        return logits


def _check_spans(targets: Any, keep: torch.Tensor) -> None:
    """Span targets: (B, 2) integers, (start, end) on real tokens with start <= end, or both IGNORE_INDEX."""
    B, T = keep.shape
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        got = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be an integer (B, 2) tensor of (start, end) token positions, got {got}")
    if targets.shape != (B, 2):
        raise ValueError(f"targets must have shape (B, 2) = ({B}, 2), (start, end) per sequence, got {tuple(targets.shape)}")
    ignored = (targets == IGNORE_INDEX).all(dim=1)
    s, e = targets[:, 0], targets[:, 1]
    bad = ~ignored & ((s < 0) | (e >= T) | (s > e))
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(f"targets row {row} is {targets[row].tolist()}: want 0 <= start <= end < T={T} "
                         f"(or both {IGNORE_INDEX} to ignore the row)")
    rows = torch.arange(B, device=keep.device)
    on_pad = ~ignored & ~(keep[rows, s.clamp(0, T - 1)] & keep[rows, e.clamp(0, T - 1)])
    if on_pad.any():
        row = int(on_pad.nonzero()[0])
        raise ValueError(f"targets row {row} ({targets[row].tolist()}) points at padding")


class EncoderForQA(nn.Module):
    """An Encoder with a `SpanHead`: extractive question answering (BERT's recipe).

    `forward(input_ids, targets=None, attention_mask=None, token_type_ids=None) -> (logits
    (B, T, 2), loss)`. targets (B, 2) hold each answer's (start, end) token positions, end
    inclusive; loss = (CE(start logits, start) + CE(end logits, end)) / 2, each a mean over
    the batch; a row of (-1, -1) is ignored. Decode answers with `best_spans`.
    """

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        if not isinstance(encoder, Encoder):
            raise ValueError(f"EncoderForQA needs an Encoder, got {type(encoder).__name__}")
        self.encoder = encoder
        self.config = encoder.config
        _freeze_unused_pooler(encoder)
        w = encoder.embeddings.word_embeddings.weight
        self.span = SpanHead(encoder.config.n_embd).to(w.device, w.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        targets: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.encoder(input_ids, attention_mask, token_type_ids, output_attentions=False)
        keep = _mask(attention_mask, input_ids)
        logits = self.span(out.last_hidden_state, keep if attention_mask is not None else None)  # (B, T, 2)
        if targets is None:
            return logits, None
        _check_spans(targets, keep)
        t = targets.long()
        loss = (F.cross_entropy(logits[..., 0], t[:, 0], ignore_index=IGNORE_INDEX)
                + F.cross_entropy(logits[..., 1], t[:, 1], ignore_index=IGNORE_INDEX)) / 2
        return logits, loss


def best_spans(logits: torch.Tensor, attention_mask: torch.Tensor | None = None, max_len: int = 30) -> torch.Tensor:
    """The highest-scoring answer span per sequence: logits (B, T, 2) -> (B, 2) (start, end), end inclusive.

    Maximises start_logit[s] + end_logit[e] over start <= e < start + max_len (at most max_len
    tokens, Hugging Face's max_answer_len), both on real tokens. Ties go to the smallest
    start, then the smallest end. Scores all T * T pairs at once: fine for T in the hundreds.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim != 3 or logits.shape[-1] != 2:
        got = f"{logits.dtype} {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a float tensor (B, T, 2) of start and end scores, got {got}")
    if not _is_int(max_len) or max_len < 1:
        raise ValueError(f"max_len must be a positive int (the longest answer, in tokens), got {max_len!r}")
    B, T, _ = logits.shape
    if T == 0:
        raise ValueError("logits have T=0 positions: there is no span to choose")
    keep = torch.ones(B, T, dtype=torch.bool, device=logits.device)
    if attention_mask is not None:
        keep = _check_attention_mask(attention_mask, logits[..., 0], "attention_mask", "logits' (B, T)")[:, 0, 0, :]
        if not keep.any(dim=1).all():
            row = int((~keep.any(dim=1)).nonzero()[0])
            raise ValueError(f"row {row} of attention_mask has no tokens: no span to choose")
    score = logits[:, :, None, 0] + logits[:, None, :, 1]  # (B, T start, T end)
    pos = torch.arange(T, device=logits.device)
    width = pos[None, :] - pos[:, None]  # end - start, (T, T)
    ok = (width >= 0) & (width < max_len)  # (T, T)
    ok = ok[None] & keep[:, :, None] & keep[:, None, :]  # (B, T, T)
    score = score.masked_fill(~ok, float("-inf"))
    flat = score.reshape(B, T * T).argmax(dim=1)  # the first maximum: smallest start, then end
    return torch.stack([flat // T, flat % T], dim=1)


# ----------------------------------------------------------------------------- freezing

FREEZE_MODES = ("head", "last_k", "none")


def _parts(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module], list[nn.Module], list[nn.Module]]:
    """(blocks, what sits after them, the head, modules never trained) of each model `freeze` knows."""
    if isinstance(model, GPTClassifier):
        t = model.gpt.transformer
        return list(t.h), [t.ln_f], [model.head], []
    if isinstance(model, GPT):
        return list(model.transformer.h), [model.transformer.ln_f], [model.lm_head], []
    if isinstance(model, (EncoderClassifier, EncoderForQA)):
        head = model.classifier if isinstance(model, EncoderClassifier) else model.span
        unused = [model.encoder.pooler] if model.encoder.pooler is not None else []
        return list(model.encoder.encoder.layer), [], [head], unused
    raise ValueError(f"freeze knows GPTClassifier, EncoderClassifier, EncoderForQA and GPT, got {type(model).__name__}")


def trainable_parameters(model: nn.Module) -> int:
    """The number of parameters with requires_grad (a tied tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def freeze(model: nn.Module, mode: str = "head", k: int | None = None) -> int:
    """Choose what trains; returns the number of trainable parameters.

    mode="head": only the head trains. mode="last_k": the head, the last k blocks and what
    sits between them and the head. mode="none": nothing is frozen (full fine-tuning). A block
    is one Transformer layer (GPT: transformer.h[i]; Encoder: encoder.layer[i]). The head is
    the task layer: GPTClassifier.head, EncoderClassifier.classifier, EncoderForQA.span; on a
    bare GPT (SFT) it is lm_head, which is tied to the token table, so "head" trains the
    embeddings. Between the blocks and the head: GPT's final LayerNorm ln_f (trains with any
    k >= 1; BERT's post-LN layers end in their own LayerNorm). Everything else (embeddings,
    earlier blocks) is frozen. An Encoder's pooler, which no head here reads, stays frozen.
    Freeze before `apply_lora`, not after: mode="none" would unfreeze the LoRA base weights.
    """
    if mode not in FREEZE_MODES:
        raise ValueError(f"mode must be one of {FREEZE_MODES}, got {mode!r}")
    blocks, top, head, unused = _parts(model)
    if mode == "last_k":
        if not _is_int(k) or not 0 <= k <= len(blocks):
            raise ValueError(f"mode='last_k' needs k, an int in [0, {len(blocks)}] (the model has {len(blocks)} blocks), got {k!r}")
    elif k is not None:
        raise ValueError(f"k={k!r} applies only to mode='last_k', not mode={mode!r}")
    model.requires_grad_(mode == "none")
    if mode == "last_k" and k:
        for m in blocks[len(blocks) - k:] + top:
            m.requires_grad_(True)
    for m in head:
        m.requires_grad_(True)
    for m in unused:
        m.requires_grad_(False)
    return trainable_parameters(model)


# ----------------------------------------------------------------------------- LoRA

class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: y = W x + b + (alpha / rank) · B A x (Hu et al. 2021).

    A (rank, in) starts Kaiming-uniform (as PEFT), B (out, rank) starts at zero, so at first
    the output is exactly the base layer's and training starts from the pretrained function.
    Only A and B train: rank * (in + out) parameters instead of in * out. `dropout` applies to
    the input of the low-rank branch only. `merge()` folds the update into the base weight
    (W += scale · B A: inference then costs nothing extra); `unmerge()` takes it out again.
    While merged, A and B receive no gradient: merge for inference, unmerge to train on.
    `weight` is the effective weight W + scale · B A, so code that reads `.weight` directly
    (cross-attention's fused projection) computes the same function.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear) or isinstance(base, LoRALinear):
            raise ValueError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if not _is_int(rank) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.base = base
        base.requires_grad_(False)
        self.rank, self.alpha, self.scaling = rank, float(alpha), float(alpha) / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own init, as PEFT
        self.dropout = nn.Dropout(dropout)
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def delta(self) -> torch.Tensor:
        """The low-rank update scale · B A, (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight if self.merged else self.base.weight + self.delta()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)  # (..., out)
        if self.merged:
            return y
        h = self.dropout(x) if self.training and self.dropout.p > 0 else x
        return y + (h @ self.lora_A.t() @ self.lora_B.t()) * self.scaling  # (..., in) -> (..., rank) -> (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight: afterwards forward is one Linear."""
        if self.merged:
            raise ValueError("this LoRALinear is already merged")
        self.base.weight += self.delta()
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the base weight again (the inverse of merge, to float rounding)."""
        if not self.merged:
            raise ValueError("this LoRALinear is not merged")
        self.base.weight -= self.delta()
        self.merged = False

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}, alpha={self.alpha}, merged={self.merged}"


def apply_lora(
    model: nn.Module,
    targets: Sequence[str] = ("c_attn", "c_proj"),
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    keep_trainable: Sequence[str] = (),
) -> int:
    """Replace every nn.Linear whose own name is in `targets` by a LoRALinear; freeze all else; return the trainable count.

    A name is the last part of the module's path: "c_attn" matches transformer.h.3.attn.c_attn;
    "c_proj" matches both the attention's and the MLP's output projection (GPT names); BERT's
    are "query", "key", "value", "dense". Afterwards only the LoRA matrices train, plus the
    parameters under the module paths in `keep_trainable` (e.g. ("head",) for GPTClassifier's
    new, untrained head, ("classifier",) or ("span",) on an Encoder). The model is changed in place.
    """
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) for t in targets):
        raise ValueError(f"targets must be a non-empty list of module names such as ('c_attn',), got {targets!r}")
    if isinstance(keep_trainable, str):
        raise ValueError(f"keep_trainable must be a list of module paths, got the single string {keep_trainable!r}")
    modules = dict(model.named_modules())
    for path in keep_trainable:
        if path not in modules:
            raise ValueError(f"keep_trainable: the model has no module {path!r}")
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("the model already has LoRA layers: apply_lora once")
    if not found:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear named {list(targets)} in the model; its Linear names are {names}")
    model.requires_grad_(False)
    for name, linear in found:
        parent, _, child = name.rpartition(".")
        setattr(modules[parent] if parent else model, child, LoRALinear(linear, rank, alpha, dropout))
    for path in keep_trainable:
        modules[path].requires_grad_(True)
    return trainable_parameters(model)


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRALinear in the model (see LoRALinear.merge); returns how many."""
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    for m in layers:
        m.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Unmerge every LoRALinear in the model; returns how many."""
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    for m in layers:
        m.unmerge()
    return len(layers)


# ----------------------------------------------------------------------------- SFT

# The chat format: the prompt part ends with "### Answer:", the response starts with a space
# and ends with a newline, the stop signal when generating (the course's BPE has no
# end-of-text token; pass eos_id to end with one as well).
SFT_PROMPT = "### Question: {prompt}\n### Answer:"
SFT_RESPONSE = " {response}\n"


def _encode(tokenizer: Any, text: str) -> list[int]:
    if not callable(getattr(tokenizer, "encode", None)):
        raise ValueError(f"tokenizer must have an encode(text) method, got {type(tokenizer).__name__}")
    return list(tokenizer.encode(text))


def sft_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """The ids a model continues at inference: the prompt in the chat format, up to "### Answer:"."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a str, got {type(prompt).__name__}")
    return _encode(tokenizer, SFT_PROMPT.format(prompt=prompt))


def sft_example(tokenizer: Any, prompt: str, response: str, eos_id: int | None = None) -> tuple[list[int], list[int]]:
    """One instruction-tuning example: (ids, targets), next-token pairs with the loss masked to the response.

    The sequence is sft_prompt(prompt) + encode(SFT_RESPONSE) (+ eos_id); prompt and response
    are encoded apart, so the prompt's ids are exactly those the model sees at inference.
    ids = sequence[:-1], targets = sequence[1:], and every target that is a prompt token is
    IGNORE_INDEX (-1): cross-entropy with ignore_index (chapter 05) then averages over the
    response tokens only. The model learns to answer, not to write questions.
    """
    if not isinstance(response, str) or not response:
        raise ValueError(f"response must be a non-empty str, got {response!r:.60}")
    p = sft_prompt(tokenizer, prompt)
    r = _encode(tokenizer, SFT_RESPONSE.format(response=response))
    if eos_id is not None:
        if not _is_int(eos_id) or eos_id < 0:
            raise ValueError(f"eos_id must be a token id (an int >= 0) or None, got {eos_id!r}")
        r.append(int(eos_id))
    if not p:
        raise ValueError("the prompt encodes to no tokens")
    seq = p + r
    targets = [IGNORE_INDEX] * (len(p) - 1) + r  # targets[i] = seq[i + 1]; the first response token follows the prompt
    return seq[:-1], targets


# ----------------------------------------------------------------------------- batching

def pad_batch(seqs: Sequence[Sequence[int]], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad sequences of ids to the longest: (ids (B, L) long, attention_mask (B, L) long, 1 = token)."""
    if isinstance(seqs, (str, bytes)) or not isinstance(seqs, Sequence):
        raise ValueError(f"seqs must be a list of id lists, got {type(seqs).__name__}")
    L = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def collate_classification(examples: Sequence[tuple[Sequence[int], int]], pad_id: int = 0) -> tuple[torch.Tensor, ...]:
    """(ids, label) examples -> (ids (B, L), labels (B,), attention_mask (B, L)), the heads' argument order."""
    ids, mask = pad_batch([e[0] for e in examples], pad_id)
    return ids, torch.tensor([int(e[1]) for e in examples], dtype=torch.long), mask


def collate_sft(examples: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int = 0) -> tuple[torch.Tensor, ...]:
    """(ids, targets) examples -> (ids (B, L), targets (B, L)): padding's targets are IGNORE_INDEX, so it costs no loss."""
    ids, _ = pad_batch([e[0] for e in examples], pad_id)
    targets, _ = pad_batch([e[1] for e in examples], IGNORE_INDEX)
    return ids, targets


def collate_spans(examples: Sequence[tuple[Sequence[int], int, int]], pad_id: int = 0) -> tuple[torch.Tensor, ...]:
    """(ids, start, end) examples -> (ids (B, L), targets (B, 2), attention_mask (B, L))."""
    ids, mask = pad_batch([e[0] for e in examples], pad_id)
    return ids, torch.tensor([[int(e[1]), int(e[2])] for e in examples], dtype=torch.long).reshape(-1, 2), mask


_COLLATE = {"classification": collate_classification, "sft": collate_sft, "span": collate_spans}


def _check_example(kind: str, split: str, i: int, e: Any) -> tuple:
    where = f"{split} example {i}"
    size = {"classification": 2, "sft": 2, "span": 3}[kind]
    if not isinstance(e, (tuple, list)) or len(e) != size:
        want = {"classification": "(ids, label)", "sft": "(ids, targets)", "span": "(ids, start, end)"}[kind]
        raise ValueError(f"{where}: a {kind} example is {want}, got {e!r:.80}")
    ids = e[0]
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or not ids or not all(_is_int(t) and t >= 0 for t in ids):
        raise ValueError(f"{where}: ids must be a non-empty list of token ids (ints >= 0), got {ids!r:.80}")
    if kind == "classification" and (not _is_int(e[1]) or e[1] < 0):
        raise ValueError(f"{where}: the label must be an int >= 0, got {e[1]!r}")
    if kind == "sft":
        t = e[1]
        if not isinstance(t, Sequence) or len(t) != len(ids) or not all(_is_int(v) and v >= IGNORE_INDEX for v in t):
            raise ValueError(f"{where}: targets must be ints >= {IGNORE_INDEX}, one per id ({len(ids)}), got {t!r:.80}")
        if all(v == IGNORE_INDEX for v in t):
            raise ValueError(f"{where}: every target is {IGNORE_INDEX}: nothing to learn")
    if kind == "span" and not (_is_int(e[1]) and _is_int(e[2]) and 0 <= e[1] <= e[2] < len(ids)):
        raise ValueError(f"{where}: want 0 <= start <= end < len(ids)={len(ids)}, got start={e[1]!r}, end={e[2]!r}")
    return tuple(e)


class ExampleData:
    """Labelled examples, already tokenized, split into train and val, batched for `lmcourse.training.train`.

    kind="classification": examples (ids, label) -> batches (ids, labels, attention_mask);
    "sft": (ids, targets) from `sft_example` -> (ids, targets); "span": (ids, start, end) ->
    (ids, targets (B, 2), attention_mask). A batch is a tuple the model is called with,
    `model(*batch) -> (logits, loss)`, padded on the right with pad_id to its longest example.
    `get_batch(split, rng, batch_size, block_size)` draws batch_size examples uniformly with
    replacement from the seeded generator (as TokenData draws windows), so the Trainer's data
    position, checkpoints and resuming work unchanged. block_size is the longest example
    allowed: a longer one is an error (cutting it would cut off a label or a response).
    """

    def __init__(self, train: Sequence, val: Sequence, kind: str = "classification", pad_id: int = 0) -> None:
        if kind not in _COLLATE:
            raise ValueError(f"kind must be one of {tuple(_COLLATE)}, got {kind!r}")
        if not _is_int(pad_id) or pad_id < 0:
            raise ValueError(f"pad_id must be a token id (an int >= 0), got {pad_id!r}")
        self.kind, self.pad_id = kind, int(pad_id)
        for name, examples in (("train", train), ("val", val)):
            if isinstance(examples, (str, bytes)) or not isinstance(examples, Sequence) or not examples:
                raise ValueError(f"ExampleData.{name} must be a non-empty list of examples, got {examples!r:.60}")
        self.train = [_check_example(kind, "train", i, e) for i, e in enumerate(train)]
        self.val = [_check_example(kind, "val", i, e) for i, e in enumerate(val)]
        # each split's longest example (index, length): checked on every batch, found once
        self._longest = {name: max(((i, len(e[0])) for i, e in enumerate(self.split(name))), key=lambda p: p[1])
                         for name in ("train", "val")}

    def split(self, name: str) -> list[tuple]:
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.train if name == "train" else self.val

    def collate(self, examples: Sequence[tuple]) -> tuple[torch.Tensor, ...]:
        return _COLLATE[self.kind](examples, self.pad_id)

    def check_block_size(self, block_size: int) -> None:
        """Every example must fit in block_size tokens."""
        for name in ("train", "val"):
            longest, n = self._longest[name]
            if n > block_size:
                raise ValueError(f"{name} example {longest} has {n} tokens, more than block_size={block_size}: "
                                 "raise block_size (up to the model's context) or shorten the example")

    def get_batch(self, split: str, rng: np.random.Generator, batch_size: int, block_size: int) -> tuple[torch.Tensor, ...]:
        """batch_size examples drawn with replacement, collated: a tuple of CPU tensors, batch first."""
        examples = self.split(split)
        self.check_block_size(block_size)
        return self.collate([examples[i] for i in rng.integers(0, len(examples), size=batch_size)])

    def batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """Every example of a split once, in order, batch_size at a time: for predictions and metrics."""
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        examples = self.split(split)
        for i in range(0, len(examples), batch_size):
            yield self.collate(examples[i:i + batch_size])

    def fingerprint(self) -> dict[str, Any]:
        """Kind, sizes and a checksum of every example: enough to refuse resuming on other data."""
        def digest(examples: list[tuple]) -> str:
            return hashlib.sha256(json.dumps([[list(e[0]), *[list(x) if isinstance(x, Sequence) else int(x) for x in e[1:]]]
                                              for e in examples]).encode()).hexdigest()[:16]

        return {"kind": self.kind, "train": len(self.train), "val": len(self.val), "pad_id": self.pad_id,
                "train_sha": digest(self.train), "val_sha": digest(self.val)}

    def __repr__(self) -> str:
        return f"ExampleData({self.kind}: {len(self.train)} train + {len(self.val)} val examples)"



# ----------------------------------------------------------------------------- predictions

@torch.no_grad()
def classify(model: nn.Module, data: ExampleData, split: str = "val", batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A classifier's predictions on every example of a split, in order: (labels (N,), predicted (N,)).

    model: a GPTClassifier or EncoderClassifier (any module called as model(ids,
    attention_mask=mask) -> (logits (B, K), ...)); the predicted class is the argmax. The
    model runs in eval mode on its own device, and its mode is restored afterwards.
    """
    if not isinstance(data, ExampleData) or data.kind != "classification":
        got = f"ExampleData of kind {data.kind!r}" if isinstance(data, ExampleData) else type(data).__name__
        raise ValueError(f"data must be an ExampleData of kind 'classification', got {got}")
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    labels, preds = [], []
    try:
        for ids, y, mask in data.batches(split, batch_size):
            logits = model(ids.to(dev), attention_mask=mask.to(dev))[0]  # (B, K)
            preds.append(logits.argmax(dim=-1).cpu())
            labels.append(y)
    finally:
        model.train(was)
    return torch.cat(labels).numpy(), torch.cat(preds).numpy()


def sft_answers(model: nn.Module, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
    """Greedy answers of a GPT to prompts in the chat format: up to the first newline, stripped.

    Each prompt becomes `sft_prompt(tokenizer, prompt)`; generation stops at the response's
    closing newline (SFT_RESPONSE ends with one) or after max_new_tokens. Prompts of the same
    token length are generated together as one batch (greedy decoding gives each row the same
    answer alone or batched). Derived in chapters/09_finetuning.ipynb.
    """
    from lmcourse.generation import generate

    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a list of str, got {prompts!r:.60}")
    if not _is_int(max_new_tokens) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    newline = _encode(tokenizer, "\n")
    if len(newline) != 1:
        raise ValueError(f"the tokenizer encodes a newline as {len(newline)} tokens, not one: it cannot stop generation")
    dev = next(model.parameters()).device
    encoded = [sft_prompt(tokenizer, p) for p in prompts]
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    answers = [""] * len(prompts)
    for n, rows in by_length.items():
        idx = torch.tensor([encoded[i] for i in rows], device=dev)  # (B, n)
        out = generate(model, idx, max_new_tokens=max_new_tokens, strategy="greedy", stop_tokens=newline[0])
        for i, row in zip(rows, out[:, n:].tolist()):
            answers[i] = tokenizer.decode(row).split("\n")[0].strip()
    return answers


# ----------------------------------------------------------------------------- a classical baseline

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-cased words (letters and digits, with an inner apostrophe: "didn't"), for `BagOfWords`."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class BagOfWords:
    """Texts -> word-count vectors over a vocabulary fitted on training texts (unseen words are dropped).

    `fit(texts)` keeps every word seen at least min_count times, in sorted order;
    `transform(texts)` -> (N, V) float64 counts (binary=True: 1 if present). The baseline a
    pretrained model has to beat: it sees which words occur, never their order.
    Derived in chapters/09_finetuning.ipynb.
    """

    def __init__(self, min_count: int = 1, binary: bool = False) -> None:
        if not _is_int(min_count) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        self.min_count, self.binary = min_count, bool(binary)
        self.vocab: dict[str, int] = {}

    @staticmethod
    def _texts(texts: Any) -> list[str]:
        if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"texts must be a list of str, got {texts!r:.60}")
        return list(texts)

    def fit(self, texts: Sequence[str]) -> "BagOfWords":
        counts: dict[str, int] = {}
        for t in self._texts(texts):
            for w in words(t):
                counts[w] = counts.get(w, 0) + 1
        kept = sorted(w for w, c in counts.items() if c >= self.min_count)
        if not kept:
            raise ValueError(f"no word occurs {self.min_count} or more times in the {len(texts)} texts: the vocabulary is empty")
        self.vocab = {w: i for i, w in enumerate(kept)}
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if not self.vocab:
            raise ValueError("this BagOfWords is not fitted: call fit(train_texts) first")
        texts = self._texts(texts)
        X = np.zeros((len(texts), len(self.vocab)), dtype=np.float64)
        for i, t in enumerate(texts):
            for w in words(t):
                j = self.vocab.get(w)
                if j is not None:
                    X[i, j] = 1.0 if self.binary else X[i, j] + 1.0
        return X

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.fit(texts).transform(texts)


class LogisticRegression:
    """Multinomial logistic regression with an L2 penalty, fitted by L-BFGS (scikit-learn's default model).

    Minimises  C * sum_i CE(softmax(x_i W + b), y_i) + ||W||^2 / 2  over W (D, K) and b (K,)
    (the intercept is not penalised), in float64 with torch's L-BFGS. Two classes use one
    weight vector w and a sigmoid, logit x w + b, as scikit-learn does: the softmax with two
    penalised rows would halve the penalty and reach another optimum. coef_ is (K, D), or
    (1, D) for two classes; `classes_` holds the sorted labels seen by fit, and predict
    returns labels from it. Derived in chapters/09_finetuning.ipynb.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 500, tol: float = 1e-8) -> None:
        if not isinstance(C, numbers.Real) or isinstance(C, bool) or not math.isfinite(C) or C <= 0:
            raise ValueError(f"C (the inverse penalty strength) must be a finite number > 0, got {C!r}")
        if not _is_int(max_iter) or max_iter < 1:
            raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
        self.C, self.max_iter, self.tol = float(C), max_iter, float(tol)
        self.coef_: np.ndarray | None = None  # (K, D), scikit-learn's layout
        self.intercept_: np.ndarray | None = None  # (K,)
        self.classes_: np.ndarray | None = None

    @staticmethod
    def _X(X: Any, d: int | None = None) -> torch.Tensor:
        a = np.asarray(X)
        if a.ndim != 2 or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError(f"X must be a 2-D array of numbers (N, D), got {a.dtype} {a.shape}")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError("X holds nan or inf")
        if d is not None and a.shape[1] != d:
            raise ValueError(f"X has {a.shape[1]} features, but the model was fitted on {d}")
        return torch.from_numpy(a)

    def fit(self, X: Any, y: Any) -> "LogisticRegression":
        x = self._X(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != x.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row of X ({x.shape[0]}), got shape {y.shape}")
        classes, target = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y must hold at least 2 classes to separate, got {classes.tolist()}")
        N, D = x.shape
        K = len(classes)
        k = 1 if K == 2 else K  # two classes: one sigmoid
        W = torch.zeros(D, k, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        t = torch.from_numpy(target.astype(np.int64))
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=self.max_iter, tolerance_grad=self.tol,
                                tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

        def objective() -> torch.Tensor:
            opt.zero_grad()
            z = x @ W + b  # (N, k)
            data_loss = (F.binary_cross_entropy_with_logits(z[:, 0], t.double(), reduction="sum") if k == 1
                         else F.cross_entropy(z, t, reduction="sum"))
            loss = self.C * data_loss + 0.5 * (W * W).sum()
            loss.backward()
            return loss

        opt.step(objective)
        self.coef_, self.intercept_, self.classes_ = W.detach().t().numpy().copy(), b.detach().numpy().copy(), classes
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits (N, K), one column per class; with two classes (0, x w + b), which softmax the same as the sigmoid."""
        if self.coef_ is None:
            raise ValueError("this LogisticRegression is not fitted: call fit(X, y) first")
        x = self._X(X, self.coef_.shape[1])
        z = x.numpy() @ self.coef_.T + self.intercept_  # (N, k)
        return np.concatenate([np.zeros_like(z), z], axis=1) if len(self.classes_) == 2 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, K), columns in the order of classes_."""
        return torch.softmax(torch.from_numpy(self.decision_function(X)), dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label per row, (N,)."""
        z = self.decision_function(X)
        return self.classes_[z.argmax(axis=1)] if len(z) else self.classes_[:0]
