"""Fixed train/val/test splits, shared by every labelled set in `lmcourse.data`."""
from __future__ import annotations

SPLITS = ("train", "val", "test")


def _split(items: list, fractions: tuple[float, float] = (0.8, 0.1)) -> dict[str, list]:
    n = len(items)
    a = int(n * fractions[0])
    b = a + int(n * fractions[1])
    return {"train": items[:a], "val": items[a:b], "test": items[b:]}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
