"""Atomic writes: old or new content, never half; no temp files left; normal permissions."""

from __future__ import annotations

import json
import os
import stat

import pytest

from initlab import atomic
from initlab.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text


def test_write_replace_and_permissions(tmp_path):
    p = atomic_write_text(tmp_path / "sub" / "a.txt", "first")
    assert p.read_text() == "first"
    mode = stat.S_IMODE(p.stat().st_mode)
    assert mode == 0o666 & ~atomic._umask()  # not mkstemp's 0600
    os.chmod(p, 0o640)
    atomic_write_bytes(p, b"second")
    assert p.read_bytes() == b"second" and stat.S_IMODE(p.stat().st_mode) == 0o640
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_old_content_and_leaves_no_temp(tmp_path, monkeypatch):
    p = atomic_write_text(tmp_path / "a.txt", "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_json_is_strict_and_sorted(tmp_path):
    p = atomic_write_json(tmp_path / "s.json", {"b": 1, "a": [1.5, None]})
    assert p.read_text() == json.dumps({"a": [1.5, None], "b": 1}, indent=2) + "\n"
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "bad.json", {"x": float("nan")})
    assert not (tmp_path / "bad.json").exists()
