"""Chapter 09 exercises: a LoRA layer's forward pass and the SFT loss mask.

Derived in chapters/09_finetuning.ipynb; practised in solutions/09_finetuning.ipynb.
The references are plain code; tests/test_ch09_11_checks.py proves they equal
lmcourse.finetune.LoRALinear's forward and lmcourse.finetune.sft_example's (ids, targets).
"""
from __future__ import annotations

import torch

from lmcourse.checks import Case, Exercise, Wrong
from lmcourse.model import IGNORE_INDEX


def _ints(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random ints in [low, high), so a hidden seed changes sizes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------------ 9.1 LoRA forward


def _lora_forward(x, weight, bias, lora_A, lora_B, alpha):
    rank = lora_A.shape[0]                                  # A is (rank, in), B is (out, rank)
    y = x @ weight.t()                                      # (..., in) -> (..., out): the frozen layer
    if bias is not None:
        y = y + bias
    update = (x @ lora_A.t()) @ lora_B.t()                  # (..., in) -> (..., rank) -> (..., out)
    return y + (alpha / rank) * update                      # / rank: the update's size does not grow with the rank


def _lora_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 91)

    def case(shape_x, d_in, d_out, rank, *, bias=True, zero_B=False, dtype=torch.float64, label=""):
        r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
        x, W = r(*shape_x, d_in), r(d_out, d_in) / d_in ** 0.5
        b = r(d_out) if bias else None
        A = r(rank, d_in) / d_in ** 0.5
        B = torch.zeros(d_out, rank, dtype=dtype) if zero_B else r(d_out, rank)
        alpha = float(_ints(g, 1, 1, 33)[0])
        while alpha == rank:                                # alpha / rank = 1 would hide a missing or inverted scale
            alpha = float(_ints(g, 1, 1, 33)[0])
        return Case((x, W, b, A, B, alpha), label=label)

    n, C, rank = _ints(g, 1, 2, 7)[0], 4 * _ints(g, 1, 1, 4)[0], _ints(g, 1, 2, 5)[0]
    B, T, d_in, d_out = *_ints(g, 2, 1, 4), *_ints(g, 2, 3, 10)
    return [
        case((n,), C, C, rank, label="square layer (in = out), (N, in) input"),
        case((B, T), d_in, d_out + d_in, _ints(g, 1, 2, 6)[0], label="(B, T, in) input, out != in"),
        case((n,), d_in, d_out, rank, zero_B=True, label="B = 0: a fresh LoRA equals the base layer"),
        case((B, T), d_in, d_out, 1, label="rank 1"),
        case((0,), d_in, d_out, rank, label="empty batch"),
        case((n,), d_in, d_out, rank, bias=False, label="no bias"),
        case((B, T), C, C, rank, dtype=torch.float32, label="float32"),
    ]


def _lora_variant(x, weight, bias, lora_A, lora_B, alpha, *, scale="alpha/r", base=True, n_bias=1, untransposed=False,
                  scale_all=False):
    rank = lora_A.shape[0]
    s = {"alpha/r": alpha / rank, "alpha": alpha, "r/alpha": rank / alpha}[scale]
    y = x @ weight.t() if base else torch.zeros(*x.shape[:-1], weight.shape[0], dtype=x.dtype)
    if bias is not None:
        y = y + n_bias * bias
    update = x @ (lora_B @ lora_A) if untransposed else (x @ lora_A.t()) @ lora_B.t()
    return s * (y + update) if scale_all else y + s * update


def _lora_alpha(x, weight, bias, lora_A, lora_B, alpha):
    return _lora_variant(x, weight, bias, lora_A, lora_B, alpha, scale="alpha")


def _lora_r_over_alpha(x, weight, bias, lora_A, lora_B, alpha):
    return _lora_variant(x, weight, bias, lora_A, lora_B, alpha, scale="r/alpha")


def _lora_untransposed(x, weight, bias, lora_A, lora_B, alpha):
    return _lora_variant(x, weight, bias, lora_A, lora_B, alpha, untransposed=True)


def _lora_no_base(x, weight, bias, lora_A, lora_B, alpha):
    return _lora_variant(x, weight, bias, lora_A, lora_B, alpha, base=False)


def _lora_bias_twice(x, weight, bias, lora_A, lora_B, alpha):
    return _lora_variant(x, weight, bias, lora_A, lora_B, alpha, n_bias=2)


def _lora_no_bias(x, weight, bias, lora_A, lora_B, alpha):
    return _lora_variant(x, weight, bias, lora_A, lora_B, alpha, n_bias=0)


def _lora_scale_all(x, weight, bias, lora_A, lora_B, alpha):
    return _lora_variant(x, weight, bias, lora_A, lora_B, alpha, scale_all=True)


lora_forward = Exercise(
    id="9.1",
    name="lora_forward",
    title="A LoRA layer's forward pass",
    reference=_lora_forward,
    forbidden=(
        "lmcourse.finetune.LoRALinear.forward",
        "lmcourse.finetune.LoRALinear.delta",
        "lmcourse.finetune.LoRALinear.merge",
        "lmcourse.finetune.apply_lora",
        "lmcourse.finetune.merge_lora",
    ),
    cases=_lora_cases,
    atol=1e-5,                                              # float32: folding B A into W first (as merge does) rounds
    rtol=1e-4,                                              # differently; every wrong variant misses by far more
    wrong=[
        Wrong(_lora_alpha, "you scaled the update by alpha: LoRA scales it by alpha / rank, so that changing the rank "
              "does not change how big the update is (rank = A.shape[0])."),
        Wrong(_lora_r_over_alpha, "you scaled the update by rank / alpha: the scale is alpha / rank, alpha on top."),
        Wrong(_lora_untransposed, "you multiplied x by B A without transposing it: B A is (out, in) like the weight, "
              "and a Linear computes x Wᵀ, so the update is x Aᵀ Bᵀ = x (B A)ᵀ. (On a square layer the shapes fit "
              "either way, so only the values show it.)"),
        Wrong(_lora_no_base, "you returned the low-rank update alone: LoRA ADDS the update to the frozen layer's "
              "output, y = x Wᵀ + b + (alpha / rank) x Aᵀ Bᵀ; with B = 0 the layer must equal the base layer."),
        Wrong(_lora_bias_twice, "you added the bias twice: the low-rank branch has no bias of its own, only the "
              "base layer's b is added, once."),
        Wrong(_lora_no_bias, "you left out the base layer's bias: y = x Wᵀ + b + ..., and b is added when it is "
              "not None."),
        Wrong(_lora_scale_all, "you scaled the whole output by alpha / rank: the scale belongs to the low-rank update "
              "only; the frozen layer's output x Wᵀ + b passes through unchanged."),
    ],
    hint="Compute the frozen layer's output as a Linear does (the weight is (out, in), so multiply by its transpose, "
    "then add the bias when there is one). The low-rank branch is the same kind of computation done twice: first "
    "through A, down to rank numbers, then through B, back up to out. Scale that branch alone by alpha over the "
    "rank, where the rank is A's first dimension, and add it to the frozen output.",
)

# ------------------------------------------------------------------ 9.2 the SFT loss mask


def _sft_ids_targets(prompt_ids, response_ids, eos_id=None, ignore_index=-1):  # -1: the library's IGNORE_INDEX
    seq = list(prompt_ids) + list(response_ids)             # the whole conversation, prompt first
    if eos_id is not None:
        seq.append(eos_id)                                  # the model learns to stop
    ids = seq[:-1]                                          # the model reads every token but the last ...
    targets = seq[1:]                                       # ... and predicts the next one at each position
    n_masked = len(prompt_ids) - 1                          # targets[i] = seq[i + 1]: prompt token i + 1
    targets[:n_masked] = [ignore_index] * n_masked          # the first response token (target P - 1) is kept
    return ids, targets


def _sft_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 92)
    V = 50 + _ints(g, 1, 0, 200)[0]

    def toks(n: int) -> list[int]:
        return _ints(g, n, 0, V)

    P, R, P2, R2 = _ints(g, 4, 2, 9)
    return [
        Case((toks(P + 1), toks(R + 1), V), label="prompt, response, EOS"),
        Case((toks(P2), toks(R2)), label="no EOS id"),
        Case((toks(1), toks(R), V), label="one-token prompt"),
        Case((toks(P), [], V), label="empty response with EOS: learn to stop at once"),
        Case((toks(P2), []), label="empty response, no EOS: nothing to learn"),
        Case((toks(P), toks(R2), V + 1), {"ignore_index": -100}, label="custom ignore_index (-100)"),
    ]


def _sft_shifted(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    seq = list(prompt_ids) + list(response_ids) + ([] if eos_id is None else [eos_id])
    return seq[:-1], seq[1:]


def _sft_unmasked(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    return _sft_shifted(prompt_ids, response_ids, eos_id, ignore_index)


def _sft_first_response_masked(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    ids, targets = _sft_shifted(prompt_ids, response_ids, eos_id, ignore_index)
    n = min(len(prompt_ids), len(targets))
    return ids, [ignore_index] * n + targets[n:]


def _sft_last_prompt_kept(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    ids, targets = _sft_shifted(prompt_ids, response_ids, eos_id, ignore_index)
    n = max(len(prompt_ids) - 2, 0)
    return ids, [ignore_index] * n + targets[n:]


def _sft_response_masked(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    ids, targets = _sft_shifted(prompt_ids, response_ids, eos_id, ignore_index)
    n = len(prompt_ids) - 1
    return ids, targets[:n] + [ignore_index] * (len(targets) - n)


def _sft_no_shift(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    seq = list(prompt_ids) + list(response_ids) + ([] if eos_id is None else [eos_id])
    return seq, [ignore_index] * len(prompt_ids) + seq[len(prompt_ids):]  # labels aligned with the inputs


def _sft_no_eos(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    return _sft_ids_targets(prompt_ids, response_ids, None, ignore_index)


def _sft_fixed_ignore(prompt_ids, response_ids, eos_id=None, ignore_index=IGNORE_INDEX):
    return _sft_ids_targets(prompt_ids, response_ids, eos_id, IGNORE_INDEX)


sft_ids_targets = Exercise(
    id="9.2",
    name="sft_ids_targets",
    title="The SFT loss mask",
    reference=_sft_ids_targets,
    forbidden=(
        "lmcourse.finetune.sft_example",
        "lmcourse.finetune.collate_sft",
        "lmcourse.tasks.summary_example",                   # the same mask, for chapter 11's summaries
    ),
    cases=_sft_cases,
    wrong=[
        Wrong(_sft_unmasked, "you did not mask the prompt: every target that is a prompt token must be ignore_index, "
              "so the loss averages over the response only and the model learns to answer, not to write questions."),
        Wrong(_sft_first_response_masked, "you masked one target too many: targets[i] is the token AFTER ids[i], so "
              "the target at the prompt's last position is the first response token, and it must be kept. Only "
              "len(prompt) - 1 targets are prompt tokens."),
        Wrong(_sft_last_prompt_kept, "you masked one target too few: the target at position len(prompt) - 2 is the "
              "prompt's last token, which must be ignored too. Exactly len(prompt) - 1 targets are masked."),
        Wrong(_sft_response_masked, "you masked the response instead of the prompt: keep the targets that are response "
              "tokens (and the EOS), set the prompt's to ignore_index."),
        Wrong(_sft_no_shift, "you did not shift: ids and targets come from one sequence, ids = seq[:-1] and targets = "
              "seq[1:], so targets[i] is the token after ids[i] (this course's models do not shift inside the loss, "
              "as Hugging Face's do)."),
        Wrong(_sft_no_eos, "the EOS token is missing: when eos_id is given it ends the sequence, after the response, "
              "and it is the last target, so the model learns where an answer stops."),
        Wrong(_sft_fixed_ignore, "you wrote a fixed ignore value: use the ignore_index argument (the library's default "
              "is -1, PyTorch's is -100; the loss must be told the same value)."),
    ],
    hint="Put the prompt, the response and (when given) the EOS id together into one sequence. The inputs are that "
    "sequence without its last token and the targets are it without its first, so each target is the token that "
    "follows its input. Then count how many of the targets are prompt tokens (draw the two lists one above the "
    "other for a 3-token prompt) and replace exactly those with ignore_index.",
)
