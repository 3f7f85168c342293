"""gamegpt.atomic: a write that fails leaves the old file or directory as it was, and no temp entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gamegpt.atomic import atomic_directory, atomic_path, temp_path, write_json_atomic, write_text_atomic


def test_files_are_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "summary.json"
    write_json_atomic(target, {"games": 1})
    assert json.loads(target.read_text()) == {"games": 1}
    with pytest.raises(RuntimeError, match="killed mid-write"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"games": ')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"games": 1}
    write_text_atomic(target, "é\n")
    assert target.read_bytes() == "é\n".encode("utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.json"]


def test_temp_names_are_hidden_unique_and_keep_the_suffix(tmp_path: Path) -> None:
    first, second = temp_path(tmp_path / "ratings.png"), temp_path(tmp_path / "ratings.png")
    assert first != second and first.parent == tmp_path
    assert first.name.startswith(".tmp-") and first.suffix == ".png"


def test_a_directory_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "shards"
    with atomic_directory(target) as tmp:
        (tmp / "meta.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "meta.json").write_text("half")
            raise RuntimeError("too few games")
    assert (target / "meta.json").read_text() == "old"
    with atomic_directory(target) as tmp:
        (tmp / "train.bin").write_bytes(b"\x01")
    assert sorted(p.name for p in target.iterdir()) == ["train.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]
