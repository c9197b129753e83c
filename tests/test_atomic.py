"""write_atomic: the old file survives an interrupted write."""
from __future__ import annotations

import os

import pytest

from lmcourse.atomic import write_atomic


def test_writes_text_and_bytes(tmp_path):
    assert write_atomic(tmp_path / "sub" / "a.txt", "héllo\n").read_text(encoding="utf-8") == "héllo\n"
    assert write_atomic(tmp_path / "b.bin", b"\x00\xff").read_bytes() == b"\x00\xff"


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_rejects_other_types(tmp_path):
    with pytest.raises(ValueError, match="str or bytes"):
        write_atomic(tmp_path / "x", 42)
