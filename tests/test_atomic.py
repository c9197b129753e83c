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


def _umask(mask: int) -> int:
    return os.umask(mask)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_new_file_honours_the_umask(tmp_path):
    old = _umask(0o022)
    try:
        assert (write_atomic(tmp_path / "a.txt", "x").stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        assert (write_atomic(tmp_path / "b.txt", b"x").stat().st_mode & 0o777) == 0o600
        os.umask(0o002)
        assert (write_atomic(tmp_path / "c.txt", "x").stat().st_mode & 0o777) == 0o664
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_an_existing_file_keeps_its_mode(tmp_path):
    old = _umask(0o022)
    try:
        for mode in (0o600, 0o640, 0o755, 0o444):
            target = tmp_path / f"f{mode:o}"
            target.write_text("old")
            target.chmod(mode)
            write_atomic(target, "new")
            assert target.read_text() == "new"
            assert (target.stat().st_mode & 0o7777) == mode, oct(mode)
    finally:
        os.umask(old)
