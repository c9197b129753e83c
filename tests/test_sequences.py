"""lmcourse.sequences: token stream -> (input, target) windows, checked by hand and against a slow loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lmcourse.sequences import TokenWindows, num_windows, sliding_windows

IDS = [10, 11, 12, 13, 14, 15, 16]  # 7 ids


def slow_windows(ids, T, stride):
    """The definition, one window at a time."""
    xs, ys, start = [], [], 0
    while start + T + 1 <= len(ids):
        xs.append(ids[start:start + T])
        ys.append(ids[start + 1:start + T + 1])
        start += stride
    return xs, ys


def test_hand_checked_default_stride_is_context_length():
    x, y = sliding_windows(IDS, 3)
    assert x.tolist() == [[10, 11, 12], [13, 14, 15]]
    assert y.tolist() == [[11, 12, 13], [14, 15, 16]]
    assert x.dtype == y.dtype == torch.long and x.shape == y.shape == (2, 3)


@pytest.mark.parametrize(
    "stride, inputs, targets",
    [
        (1, [[10, 11, 12], [11, 12, 13], [12, 13, 14], [13, 14, 15]],
            [[11, 12, 13], [12, 13, 14], [13, 14, 15], [14, 15, 16]]),
        (2, [[10, 11, 12], [12, 13, 14]], [[11, 12, 13], [13, 14, 15]]),   # id 16 is left out
        (3, [[10, 11, 12], [13, 14, 15]], [[11, 12, 13], [14, 15, 16]]),
        (4, [[10, 11, 12]], [[11, 12, 13]]),                               # 14.. cannot fill a window
        (5, [[10, 11, 12]], [[11, 12, 13]]),                               # stride > T skips ids
    ],
)
def test_hand_checked_strides(stride, inputs, targets):
    x, y = sliding_windows(IDS, 3, stride=stride)
    assert x.tolist() == inputs and y.tolist() == targets
    assert len(inputs) == num_windows(len(IDS), 3, stride)


@pytest.mark.parametrize("n", [0, 1, 4, 5, 9, 50])
@pytest.mark.parametrize("T", [1, 2, 4])
@pytest.mark.parametrize("stride", [None, 1, 3, 7])
def test_matches_the_definition(n, T, stride):
    ids = list(range(100, 100 + n))
    x, y = sliding_windows(ids, T, stride)
    xs, ys = slow_windows(ids, T, T if stride is None else stride)
    assert x.shape == y.shape == (len(xs), T)
    assert x.tolist() == xs and y.tolist() == ys
    assert num_windows(n, T, stride) == len(xs)


def test_targets_are_the_inputs_shifted_by_one():
    ids = torch.randint(0, 50, (200,), generator=torch.Generator().manual_seed(0))
    x, y = sliding_windows(ids, 8, stride=1)
    assert torch.equal(y[:, :-1], x[:, 1:])     # within a window
    assert torch.equal(y[:-1], x[1:])           # stride 1: the next window's inputs
    assert torch.equal(x[:, 0], ids[:len(x)]) and torch.equal(y[:, -1], ids[8:8 + len(x)])


def test_exactly_one_window_and_too_few_ids():
    x, y = sliding_windows([1, 2, 3, 4], 3)     # T + 1 ids: one window
    assert x.tolist() == [[1, 2, 3]] and y.tolist() == [[2, 3, 4]]
    for ids in ([1, 2, 3], [7], []):            # fewer than T + 1: no window, shape (0, T)
        x, y = sliding_windows(ids, 3)
        assert x.shape == y.shape == (0, 3) and x.dtype == y.dtype == torch.long


def test_empty_tensor_gives_empty_windows():
    x, y = sliding_windows(torch.empty(0, dtype=torch.long), 5, stride=2)
    assert x.shape == y.shape == (0, 5)


@pytest.mark.parametrize(
    "ids",
    [tuple(IDS), range(10, 17), torch.tensor(IDS, dtype=torch.int32), torch.tensor(IDS, dtype=torch.uint8),
     np.array(IDS, dtype=np.int64), np.array(IDS, dtype=np.int16), [np.int64(i) for i in IDS]],
    ids=["tuple", "range", "int32 tensor", "uint8 tensor", "int64 array", "int16 array", "numpy ints"],
)
def test_accepts_any_integer_stream(ids):
    x, y = sliding_windows(ids, 3)
    assert x.dtype == torch.long and x.tolist() == [[10, 11, 12], [13, 14, 15]]
    assert y.tolist() == [[11, 12, 13], [14, 15, 16]]


def test_results_do_not_share_memory_with_the_input():
    ids = torch.arange(9)
    x, y = sliding_windows(ids, 4)
    x[0, 0] = 99
    assert ids[0] == 0 and y[0, 0] == 1     # neither the stream nor the targets changed


@pytest.mark.parametrize(
    "ids, match",
    [
        ([1, 2.0, 3], r"ids must be ints, got 2\.0 \(float\) at position 1"),
        ([1, True, 3], r"ids must be ints, got True \(bool\) at position 1"),
        (["a", "b"], r"ids must be ints, got 'a'"),
        ("hello", r"got str; encode text with a tokenizer first"),
        (b"hello", r"got bytes"),
        (None, r"got NoneType"),
        (7, r"got int"),
        ({1, 2, 3}, r"got set"),
        (torch.tensor([1.0, 2.0]), r"ids must be integers, got a torch.float32"),
        (torch.tensor([True, False]), r"torch.bool"),
        (np.array([1.5, 2.5]), r"torch.float64"),
        (torch.zeros(2, 5, dtype=torch.long), r"shape \(n,\), got shape \(2, 5\)"),
        (torch.tensor(5), r"got shape \(\)"),
        ([3, -1, 2], r"token ids must be >= 0, got -1 at position 1"),
        (torch.tensor([0, 1, -5]), r"got -5 at position 2"),
    ],
)
def test_bad_ids_raise_value_error_naming_the_problem(ids, match):
    with pytest.raises(ValueError, match=match):
        sliding_windows(ids, 2)
    with pytest.raises(ValueError, match=match):
        TokenWindows(ids, 2)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3", None])
def test_bad_context_length_and_stride(bad):
    if bad is not None:  # None is a valid stride (the default), not a valid context_length
        with pytest.raises(ValueError, match=r"stride must be an int >= 1, got"):
            sliding_windows(IDS, 3, stride=bad)
        with pytest.raises(ValueError, match=r"stride must be an int >= 1"):
            TokenWindows(IDS, 3, stride=bad)
        with pytest.raises(ValueError, match=r"stride must be an int >= 1"):
            num_windows(7, 3, bad)
    with pytest.raises(ValueError, match=r"context_length must be an int >= 1, got"):
        sliding_windows(IDS, bad)
    with pytest.raises(ValueError, match=r"context_length must be an int >= 1"):
        TokenWindows(IDS, bad)


@pytest.mark.parametrize("bad", [-1, 2.0, True, None])
def test_num_windows_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="n_tokens must be an int >= 0"):
        num_windows(bad, 3)


def test_num_windows_boundaries():
    assert [num_windows(n, 3) for n in range(0, 11)] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert [num_windows(n, 3, 1) for n in range(0, 8)] == [0, 0, 0, 0, 1, 2, 3, 4]
    assert num_windows(10, 1, 1) == 9


def test_dataset_items_are_the_rows_of_sliding_windows():
    ids = list(range(40))
    for stride in (None, 1, 5):
        ds = TokenWindows(ids, 6, stride)
        x, y = sliding_windows(ids, 6, stride)
        assert len(ds) == len(x) > 0
        for i in range(len(ds)):
            xi, yi = ds[i]
            assert xi.shape == yi.shape == (6,) and xi.dtype == torch.long
            assert torch.equal(xi, x[i]) and torch.equal(yi, y[i])
        assert torch.equal(ds[-1][0], x[-1]) and torch.equal(ds[-len(ds)][1], y[0])


def test_dataset_attributes_and_repr():
    ds = TokenWindows(IDS, 3, stride=2)
    assert (ds.context_length, ds.stride, len(ds)) == (3, 2, 2)
    assert ds.ids.tolist() == IDS and ds.ids.dtype == torch.long
    assert repr(ds) == "TokenWindows(2 windows, context_length=3, stride=2, 7 ids)"
    assert TokenWindows(IDS, 3).stride == 3


def test_dataset_index_errors():
    ds = TokenWindows(IDS, 3)
    for i in (2, -3, 100):
        with pytest.raises(IndexError, match=f"window {i} out of range for 2 windows"):
            ds[i]
    with pytest.raises(TypeError, match="indices must be ints"):
        ds[0.0]


def test_dataset_items_do_not_share_memory():
    ds = TokenWindows(IDS, 3)
    x, _ = ds[0]
    x[0] = 99
    assert ds[0][0].tolist() == [10, 11, 12]


def test_dataset_too_short_raises():
    for ids in ([], [1], [1, 2, 3]):
        with pytest.raises(ValueError, match=rf"stream of {len(ids)} ids is too short.*at least 4 ids"):
            TokenWindows(ids, 3)
    assert len(TokenWindows([1, 2, 3, 4], 3)) == 1


def test_dataloader_batches_are_b_by_t():
    ds = TokenWindows(list(range(101)), 10)          # 100 targets, 10 windows
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert [tuple(xb.shape) for xb, _ in batches] == [(4, 10), (4, 10), (2, 10)]
    xs = torch.cat([xb for xb, _ in batches])
    ys = torch.cat([yb for _, yb in batches])
    assert torch.equal(ys, xs + 1)                    # ids are consecutive, so targets = inputs + 1
    assert sorted(xs[:, 0].tolist()) == list(range(0, 100, 10))   # every window exactly once
