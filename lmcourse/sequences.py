"""From a token stream to training pairs: sliding windows of inputs and next-token targets.

A language model is trained to predict token t+1 from tokens up to t. Cut a long stream of
token ids into windows of T + 1 consecutive ids: the first T are the input, the last T (the
same window shifted by one) are the targets, so position t of the input is paired with the
token that follows it. Window i starts at i * stride; stride = T (the default) gives
non-overlapping windows, a smaller stride overlapping ones. `sliding_windows` builds all
windows at once; `TokenWindows` is the same as a `torch.utils.data.Dataset`, which cuts each
window on demand.

Derived in chapters/02_tokenization.ipynb.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["num_windows", "sliding_windows", "TokenWindows"]


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _as_ids(ids: Sequence[int] | Tensor) -> Tensor:
    """A 1-D LongTensor copy of `ids`, or ValueError naming what is wrong."""
    if isinstance(ids, Tensor) or (hasattr(ids, "__array__") and hasattr(ids, "dtype")):
        t = torch.as_tensor(ids)  # a tensor or a NumPy array
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise ValueError(f"ids must be integers, got a {t.dtype} array; token ids are ints")
        if t.dim() != 1:
            raise ValueError(f"ids must be one stream of shape (n,), got shape {tuple(t.shape)}")
        t = t.to(torch.long).clone()
    elif isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise ValueError(
            f"ids must be a sequence of int token ids (list, tuple, 1-D tensor or array), "
            f"got {type(ids).__name__}; encode text with a tokenizer first"
        )
    else:
        for pos, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, numbers.Integral):
                raise ValueError(f"ids must be ints, got {i!r} ({type(i).__name__}) at position {pos}")
        t = torch.tensor([int(i) for i in ids], dtype=torch.long)
    if t.numel() and int(t.min()) < 0:
        pos = int((t < 0).nonzero()[0, 0])
        raise ValueError(f"token ids must be >= 0, got {int(t[pos])} at position {pos}")
    return t


def num_windows(n_tokens: int, context_length: int, stride: int | None = None) -> int:
    """How many (input, target) windows a stream of `n_tokens` ids gives.

    A window needs context_length + 1 ids, and window i starts at i * stride, so the count is
    (n_tokens - context_length - 1) // stride + 1, and 0 when n_tokens <= context_length.
    `stride` defaults to `context_length`. Derived in chapters/02_tokenization.ipynb.
    """
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, numbers.Integral) or n_tokens < 0:
        raise ValueError(f"n_tokens must be an int >= 0, got {n_tokens!r}")
    T = _check_positive_int("context_length", context_length)
    S = T if stride is None else _check_positive_int("stride", stride)
    return 0 if n_tokens < T + 1 else (int(n_tokens) - T - 1) // S + 1


def sliding_windows(
    ids: Sequence[int] | Tensor, context_length: int, stride: int | None = None
) -> tuple[Tensor, Tensor]:
    """Cut a token stream into (inputs, targets) training pairs of length T = `context_length`.

    `ids` is one stream of n token ids (list, tuple, or 1-D integer tensor or array). Window i
    covers ids[i*stride : i*stride + T + 1]; `inputs[i]` is its first T ids, `targets[i]` its
    last T, so ``targets[i, t] == ids[i*stride + t + 1]``, the token that follows
    ``inputs[i, t]``. `stride` defaults to T (windows that touch but do not overlap: every
    id is a target once); stride < T overlaps windows, stride > T skips ids. Ids after the
    last whole window are left out. Returns two LongTensors of shape (N, T), N =
    `num_windows(n, T, stride)`; a stream with fewer than T + 1 ids (the empty one too) gives
    N = 0, tensors of shape (0, T). Raises ValueError for ids that are not non-negative ints
    (floats, bools, strings, 2-D arrays) and for a context_length or stride below 1.
    Derived in chapters/02_tokenization.ipynb.
    """
    T = _check_positive_int("context_length", context_length)
    S = T if stride is None else _check_positive_int("stride", stride)
    t = _as_ids(ids)
    n = num_windows(t.numel(), T, S)
    if n == 0:
        empty = torch.empty(0, T, dtype=torch.long)
        return empty, empty.clone()
    windows = t.unfold(0, T + 1, S)[:n]  # (N, T + 1), a view of t
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


class TokenWindows(Dataset):
    """`sliding_windows` as a Dataset: item i is the pair (inputs[i], targets[i]), each of shape (T,).

    Keeps one copy of the stream and cuts each window when it is asked for, so overlapping
    windows (stride 1) cost no memory; a DataLoader stacks them into (B, T) batches. Unlike
    `sliding_windows`, a stream too short for a single window (fewer than T + 1 ids) raises
    ValueError: a training set with no example is always a mistake. Indices may be negative,
    as for a list; others out of range raise IndexError. Derived in chapters/02_tokenization.ipynb.
    """

    def __init__(self, ids: Sequence[int] | Tensor, context_length: int, stride: int | None = None):
        self.context_length = _check_positive_int("context_length", context_length)
        self.stride = self.context_length if stride is None else _check_positive_int("stride", stride)
        self.ids = _as_ids(ids)
        self._n = num_windows(self.ids.numel(), self.context_length, self.stride)
        if self._n == 0:
            raise ValueError(
                f"a stream of {self.ids.numel()} ids is too short for one window: context_length="
                f"{self.context_length} needs at least {self.context_length + 1} ids (inputs plus the next token)"
            )

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"TokenWindows indices must be ints, got {type(i).__name__}")
        if not -self._n <= i < self._n:
            raise IndexError(f"window {i} out of range for {self._n} windows")
        start = (int(i) % self._n) * self.stride
        w = self.ids[start:start + self.context_length + 1]
        return w[:-1].clone(), w[1:].clone()

    def __repr__(self) -> str:
        return (f"TokenWindows({self._n} windows, context_length={self.context_length}, "
                f"stride={self.stride}, {self.ids.numel()} ids)")
