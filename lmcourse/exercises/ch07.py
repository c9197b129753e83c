"""Chapter 07 exercises: the training step (zero_grad, forward, backward, clip, step) and the
warm-up + cosine learning-rate schedule.

Derived in chapters/07_pretraining.ipynb; practised in solutions/07_pretraining.ipynb.
The references are plain code; tests/test_ch07_08_checks.py proves they equal what
lmcourse.training does (its loop's step, and `lr_at`).
"""
from __future__ import annotations

import math

import torch

from lmcourse.checks import Case, Exercise, Wrong, compare_values
from lmcourse.model import GPT, GPTConfig


def _ints(g: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """n random ints in [low, high), so a hidden seed changes sizes as well as values."""
    return [int(v) for v in torch.randint(low, high, (n,), generator=g)]

# ------------------------------------------------------------ 7.1 training steps


def _train_steps(model, optimizer, batches, grad_clip):
    losses, grad_norms = [], []
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)           # .backward() adds into .grad: start from none
        _, loss = model(x, y)                           # forward: (B, T, V) logits and the mean loss
        loss.backward()                                 # fills p.grad for every parameter
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # the norm BEFORE clipping
        optimizer.step()                                # the update sees the clipped gradients
        losses.append(loss.item())
        grad_norms.append(norm.item())
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    return losses, grad_norms, params


def _ts_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 71)

    def model(V: int, T: int) -> GPT:
        n_head, hs, n_layer = _ints(g, 1, 1, 3)[0], 4 * _ints(g, 1, 1, 3)[0], _ints(g, 1, 1, 3)[0]
        # activation "gelu": the default "gelu_tanh" is a lambda, which the grader could not pickle into its worker
        cfg = GPTConfig(vocab_size=V, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_head * hs, activation="gelu")
        with torch.random.fork_rng(devices=[]):         # GPT's init draws from the global RNG: leave it as it was
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
            return GPT(cfg)

    def batches(n: int, V: int, T: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for _ in range(n):
            B, t = _ints(g, 1, 1, 5)[0], _ints(g, 1, 2, T + 1)[0]
            w = torch.randint(0, V, (B, t + 1), generator=g)
            out.append((w[:, :-1], w[:, 1:]))             # targets: the inputs shifted by one
        return out

    def clip() -> float:  # well below the gradient norms here (about 1 to 3), so clipping always acts
        return round(0.05 + 0.15 * float(torch.rand((), generator=g)), 3)

    cases = []
    V, T = _ints(g, 2, 5, 20)[0], _ints(g, 1, 3, 9)[0]
    m = model(V, T)
    cases.append(Case((m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), batches(3, V, T), clip()),
                      label="SGD with momentum, 3 batches"))

    V, T = _ints(g, 1, 5, 20)[0], _ints(g, 1, 3, 9)[0]
    m = model(V, T)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
    _train_steps(m, opt, batches(2, V, T), 1.0)          # warm: Adam's running averages already hold gradients
    opt.zero_grad(set_to_none=True)
    cases.append(Case((m, opt, batches(3, V, T), clip()), label="AdamW with state from earlier steps"))

    V, T = _ints(g, 1, 5, 20)[0], _ints(g, 1, 3, 9)[0]
    m = model(V, T)
    cases.append(Case((m, torch.optim.SGD(m.parameters(), lr=0.2), batches(1, V, T), clip()), label="one batch"))

    V, T = _ints(g, 1, 5, 20)[0], _ints(g, 1, 3, 9)[0]
    m = model(V, T)
    cases.append(Case((m, torch.optim.AdamW(m.parameters(), lr=1e-2), batches(2, V, T), 1e3),
                      label="fresh AdamW, clip never reached"))
    return cases


def _ts_compare(expected, got) -> str | None:
    """Judge (losses, grad_norms, params) part by part, naming the part that differs."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return f"output: expected a tuple (losses, grad_norms, params), got {type(got).__name__}"
    for part, e, v in zip(("losses", "grad_norms", "params"), expected, got):
        if part == "params" and isinstance(v, dict):
            odd = [k for k, t in v.items() if type(t) is not torch.Tensor or t.requires_grad]
            if odd:
                return (f"params[{odd[0]!r}]: return plain tensors, p.detach().clone(), not the parameters "
                        f"themselves (got {type(v[odd[0]]).__name__}, requires_grad={getattr(v[odd[0]], 'requires_grad', None)})")
        diff = compare_values(e, v, atol=1e-6, rtol=1e-5, path=part)
        if diff is not None:
            return diff
    return None


def _ts_variant(model, optimizer, batches, grad_clip, *, zero=True, clip="before", norm_after=False, no_update=False,
                loss_after=False):
    params = list(model.parameters())
    losses, norms = [], []
    for x, y in batches:
        if zero:
            optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        if clip == "before":
            norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        elif clip == "per_tensor":
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
            for p in params:
                torch.nn.utils.clip_grad_norm_([p], grad_clip)
        elif clip == "value":
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
            torch.nn.utils.clip_grad_value_(params, grad_clip)
        else:  # "after": the step uses the raw gradients
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        if norm_after:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        if no_update:
            optimizer.zero_grad(set_to_none=True)         # cleared before the step: nothing to apply
        optimizer.step()
        if clip == "after":
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if loss_after:
            with torch.no_grad():
                loss = model(x, y)[1]
        losses.append(loss.item())
        norms.append(norm.item())
    return losses, norms, {name: p.detach().clone() for name, p in model.named_parameters()}


def _ts_no_zero_grad(model, optimizer, batches, grad_clip):
    return _ts_variant(model, optimizer, batches, grad_clip, zero=False)


def _ts_clip_after_step(model, optimizer, batches, grad_clip):
    return _ts_variant(model, optimizer, batches, grad_clip, clip="after")


def _ts_norm_after_clip(model, optimizer, batches, grad_clip):
    return _ts_variant(model, optimizer, batches, grad_clip, norm_after=True)


def _ts_per_tensor_clip(model, optimizer, batches, grad_clip):
    return _ts_variant(model, optimizer, batches, grad_clip, clip="per_tensor")


def _ts_clip_value(model, optimizer, batches, grad_clip):
    return _ts_variant(model, optimizer, batches, grad_clip, clip="value")


def _ts_no_update(model, optimizer, batches, grad_clip):
    return _ts_variant(model, optimizer, batches, grad_clip, no_update=True)


def _ts_loss_after_step(model, optimizer, batches, grad_clip):
    return _ts_variant(model, optimizer, batches, grad_clip, loss_after=True)


train_steps = Exercise(
    id="7.1",
    name="train_steps",
    title="Training steps: zero_grad, forward, backward, clip, step",
    reference=_train_steps,
    forbidden=("lmcourse.training.train",),
    cases=_ts_cases,
    compare=_ts_compare,
    wrong=[
        Wrong(_ts_no_zero_grad, "from the second batch on, your gradients are too large: .backward() ADDS into "
              "p.grad, so without optimizer.zero_grad(set_to_none=True) at the start of each step the second "
              "update follows the sum of both batches' gradients."),
        Wrong(_ts_clip_after_step, "the update used the unclipped gradients: you clipped after optimizer.step() "
              "(or not at all). Clipping must sit between loss.backward() and optimizer.step(), so the step "
              "applies the clipped gradients."),
        Wrong(_ts_norm_after_clip, "your grad_norms are the norms after clipping (never above grad_clip): report "
              "the norm before clipping, the value clip_grad_norm_ returns. It is how a training log shows "
              "whether clipping fired and how far the gradients spiked."),
        Wrong(_ts_per_tensor_clip, "you clipped each parameter's gradient on its own: norm clipping rescales ALL "
              "gradients by one factor, min(1, grad_clip / ‖g‖) with ‖g‖ the norm of every gradient "
              "together, so the update keeps its direction. Pass all parameters to one clip_grad_norm_ call."),
        Wrong(_ts_clip_value, "you clipped each gradient entry to [-grad_clip, grad_clip] (clip_grad_value_): "
              "that changes the gradient's direction. Clip the global norm: scale all gradients by "
              "min(1, grad_clip / ‖g‖)."),
        Wrong(_ts_no_update, "the weights never move: optimizer.step() found no gradients, because they were "
              "cleared before it ran (zero_grad between backward and step) or did not exist yet (step before "
              "backward). The order is zero_grad, forward, backward, clip, step."),
        Wrong(_ts_loss_after_step, "your losses were measured after the update: report the loss of the forward "
              "pass whose gradients you followed (loss.item() of that step's loss)."),
    ],
    hint="Each batch is one step, always in the same order: clear the old gradients (set them to None), run "
    "the model on the batch (it returns logits and the loss), backpropagate, clip the global gradient norm "
    "(PyTorch's clip_grad_norm_ returns the norm it measured before clipping), then let the optimiser "
    "update. Keep Python floats for the log (.item()) and return detached copies of the parameters.",
)

# ------------------------------------------------------ 7.2 warm-up + cosine schedule


def _lr_at(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps                # step 0 already learns; step warmup-1 is the peak
    if step >= max_steps:
        return min_lr                                            # the floor, for every step after the end
    progress = (step - warmup_steps) / (max_steps - warmup_steps)  # 0 at the peak, -> 1 at max_steps
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def _lr_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 72)

    def rates() -> tuple[float, float]:
        max_lr = round(10 ** float(-4 + 2 * torch.rand((), generator=g)), 6)  # 1e-4 .. 1e-2
        return max_lr, round(max_lr * float(0.05 + 0.25 * torch.rand((), generator=g)), 8)

    W, D = _ints(g, 1, 3, 30)[0], _ints(g, 1, 10, 200)[0]
    M = W + D
    hi, lo = rates()
    mid, late, beyond = W + _ints(g, 1, 1, D // 2)[0], W + D // 2 + _ints(g, 1, 1, D // 2)[0], M + _ints(g, 1, 1, D)[0]
    args = (hi, lo, W, M)
    cases = [
        Case((0, *args), label="step 0: already learning"),
        Case((_ints(g, 1, 1, W - 1)[0], *args), label="inside the warm-up"),
        Case((W - 1, *args), label="last warm-up step: the peak"),
        Case((W, *args), label="first cosine step: the peak"),
        Case((mid, *args), label="early in the decay"),
        Case((late, *args), label="late in the decay"),
        Case((M - 1, *args), label="the step before max_steps"),
        Case((M, *args), label="step max_steps: the floor"),
        Case((beyond, *args), label="past max_steps: still the floor"),
    ]
    hi2, lo2 = rates()
    M2 = _ints(g, 1, 5, 50)[0]
    W3 = _ints(g, 1, 2, 10)[0]
    hi3, _ = rates()
    cases += [
        Case((0, hi2, lo2, 0, M2), label="no warm-up: step 0 is the peak"),
        Case((_ints(g, 1, 1, M2)[0], hi2, lo2, 0, M2), label="no warm-up, decaying"),
        Case((M2 // 3, hi2, 0.0, 1, M2), label="min_lr = 0, one warm-up step"),
        Case((W3 - 1, hi3, hi3 / 10, W3, W3), label="warmup_steps = max_steps: the peak"),
        Case((W3, hi3, hi3 / 10, W3, W3), label="warmup_steps = max_steps: then the floor"),
        Case((W3 + _ints(g, 1, 1, 9)[0], hi3, hi3 / 10, W3, W3), label="warmup_steps = max_steps: beyond"),
    ]
    return cases


def _lr_warmup_from_zero(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    return _lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_no_floor(step, max_lr, min_lr, warmup_steps, max_steps):
    if warmup_steps <= step < max_steps:
        progress = (step - warmup_steps) / (max_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress)) * max_lr
    return _lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_cosine_over_max_steps(step, max_lr, min_lr, warmup_steps, max_steps):
    if warmup_steps <= step < max_steps:
        progress = (step - warmup_steps) / max_steps
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)
    return _lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_linear(step, max_lr, min_lr, warmup_steps, max_steps):
    if warmup_steps <= step < max_steps:
        progress = (step - warmup_steps) / (max_steps - warmup_steps)
        return min_lr + (1.0 - progress) * (max_lr - min_lr)
    return _lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_no_clamp(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps or warmup_steps == max_steps:
        return _lr_at(step, max_lr, min_lr, warmup_steps, max_steps)
    progress = (step - warmup_steps) / (max_steps - warmup_steps)  # > 1 past the end: the cosine climbs again
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def _lr_decay_from_zero(step, max_lr, min_lr, warmup_steps, max_steps):
    if warmup_steps <= step < max_steps:
        progress = step / max_steps                                # the cosine started at step 0, not at the peak
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)
    return _lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


lr_at = Exercise(
    id="7.2",
    name="lr_at",
    title="Linear warm-up, then cosine decay to a floor",
    reference=_lr_at,
    forbidden=("lmcourse.training.lr_at",),
    cases=_lr_cases,
    atol=1e-12,
    rtol=1e-9,
    wrong=[
        Wrong(_lr_warmup_from_zero, "your warm-up is one step late: step 0 gets lr 0 (a wasted step) and the peak "
              "comes only at step warmup_steps. Use max_lr * (step + 1) / warmup_steps, so step 0 already "
              "learns and step warmup_steps - 1 reaches max_lr."),
        Wrong(_lr_no_floor, "your cosine decays to 0, not to min_lr: the floor belongs inside the formula, "
              "min_lr + (max_lr - min_lr) · (1 + cos(π·progress)) / 2."),
        Wrong(_lr_cosine_over_max_steps, "your cosine runs over max_steps steps, so it has not reached min_lr at "
              "max_steps: the decay lasts max_steps - warmup_steps steps, progress = (step - warmup_steps) / "
              "(max_steps - warmup_steps)."),
        Wrong(_lr_linear, "this is a linear decay: the schedule is a half cosine, (1 + cos(π·progress)) / 2, "
              "flat near the peak and near the floor."),
        Wrong(_lr_no_clamp, "past max_steps your learning rate climbs again: the cosine is periodic. Return "
              "min_lr for every step >= max_steps."),
        Wrong(_lr_decay_from_zero, "your cosine starts at step 0, so the first decay step is already below "
              "max_lr: measure progress from the end of the warm-up, (step - warmup_steps) / "
              "(max_steps - warmup_steps)."),
    ],
    hint="Three regions, tested in order: during the warm-up the rate rises in equal steps and reaches the peak "
    "on the warm-up's last step; from the end of the warm-up to max_steps a half cosine carries it from the "
    "peak down to the floor (work out the fraction of the decay done so far); from max_steps on it stays at "
    "the floor.",
)
