"""Files replaced whole (`trainers.files.replace_file`): text or bytes, readable by other users'
workers, and nothing half-written or left behind when a write fails."""

from __future__ import annotations

import stat

import pytest

from trainers.files import replace_file


def test_a_replaced_file_is_whole_readable_by_all_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "run.yaml"
    replace_file(path, "a: 1\n")
    replace_file(path, b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["run.yaml"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    path = tmp_path / "run.yaml"
    replace_file(path, "a: 1\n")
    with pytest.raises(UnicodeEncodeError):
        replace_file(path, "\udc80")  # a lone surrogate no encoding writes
    assert path.read_text() == "a: 1\n" and [p.name for p in tmp_path.iterdir()] == ["run.yaml"]
