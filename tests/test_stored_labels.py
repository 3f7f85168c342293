"""Stored labels (`gamegpt data labels`): every train block labelled once by worker processes, equal to the
codec's own labels; training reads them and trains exactly as when it labels batches itself; labels of
other shards or a damaged labels directory are one line with exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.core.data import BlockLabels, open_split
from gamegpt.core.stored_labels import LABEL_KINDS, labels_dir, load_stored_labels
from gamegpt.games import MoveTokenCodec
from gamegpt.selfplay.dataset import records_to_shards
from gamegpt.selfplay.labels import write_stored_labels
from gamegpt.selfplay.runner import run_selfplay
from tiny_training import train_tiny

CODEC = MoveTokenCodec()


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stored-labels") / "games.jsonl"
    run_selfplay("chess", ["random", "random"], n_games=24, seed=7, out=path, max_plies=80, progress=False)
    return path


def make_shards(records: Path, out: Path, seed: int = 0) -> Path:
    records_to_shards([records], out, game="chess", codec_name="chess-uci-moves", block_len=96, val_fraction=0.25,
                      seed=seed)
    return out


def test_stored_labels_are_the_codecs_labels_of_every_block(records: Path, tmp_path: Path) -> None:
    shards = make_shards(records, tmp_path / "shards")
    result = CliRunner().invoke(main, ["data", "labels", str(shards), "--kind", "legal", "--workers", "2",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    write_stored_labels(shards, "board", workers=1, chunk_blocks=3)  # chunks that do not divide the blocks
    blocks = open_split(shards, "train")
    assert len(blocks) > 3
    every = np.arange(len(blocks))
    for kind, (method, fill) in LABEL_KINDS.items():
        stored = load_stored_labels(shards, kind, method, n_blocks=len(blocks), block_len=blocks.shape[1])
        assert stored is not None
        expected = np.stack([getattr(CODEC, method)(np.asarray(block))[:-1] for block in blocks])
        assert expected.any() and (expected != fill).sum() < expected.size  # labels, sparse
        assert np.array_equal(stored.batch(blocks, every, "cpu").numpy(), expected)
        shuffled = every[::-1][:5]
        assert np.array_equal(stored.batch(blocks, shuffled, "cpu").numpy(),
                              BlockLabels(getattr(CODEC, method), fill).batch(blocks, shuffled, "cpu").numpy())


def test_training_reads_stored_labels_and_trains_as_when_it_labels(records: Path, tmp_path: Path) -> None:
    shards = make_shards(records, tmp_path / "shards")
    labelled_here = train_tiny(shards, tmp_path / "here", steps=20, batch_size=4, legal_loss_weight=1.0)
    write_stored_labels(shards, "legal", workers=1)
    from_disk = train_tiny(shards, tmp_path / "stored", steps=20, batch_size=4, legal_loss_weight=1.0)
    assert [e["legal_loss"] for e in from_disk] == [e["legal_loss"] for e in labelled_here]
    assert [e["loss"] for e in from_disk] == [e["loss"] for e in labelled_here]
    starts = [json.loads(line) for line in (tmp_path / "stored" / "train_log.jsonl").read_text().splitlines()
              if '"start"' in line]
    assert starts[0]["stored_labels"] == ["legal"]
    here_start = json.loads((tmp_path / "here" / "train_log.jsonl").read_text().splitlines()[0])
    assert here_start["stored_labels"] == []


def test_labels_of_other_shards_or_damaged_ones_are_one_line(records: Path, tmp_path: Path) -> None:
    shards = make_shards(records, tmp_path / "shards")
    other = make_shards(records, tmp_path / "other", seed=1)  # another split of the same games
    write_stored_labels(shards, "legal", workers=1)
    shutil.copytree(labels_dir(shards, "legal"), labels_dir(other, "legal"))
    args = ["--set", "n_layer=1", "--set", "n_head=2", "--set", "n_embd=16", "--set", "batch_size=2",
            "--set", "max_steps=2", "--set", "legal_loss_weight=1", "--no-progress"]
    result = CliRunner().invoke(main, ["train", "--data", str(other), "--out", str(tmp_path / "run-other"), *args])
    assert result.exit_code == 2 and "labels of other shards" in result.output, result.output
    assert "gamegpt data labels" in result.output and len(result.output.strip().splitlines()) == 1

    where = labels_dir(shards, "legal") / "where.bin"
    where.write_bytes(where.read_bytes()[:-4])
    result = CliRunner().invoke(main, ["train", "--data", str(shards), "--out", str(tmp_path / "run-damaged"), *args])
    assert result.exit_code == 2 and "damaged stored labels" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "run-damaged" / "checkpoints").exists()

    result = CliRunner().invoke(main, ["data", "labels", str(shards), "--kind", "legal", "--workers", "1",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output  # labelling again mends it
    plain = CliRunner().invoke(main, ["train", "--data", str(shards), "--out", str(tmp_path / "run-mended"), *args])
    assert plain.exit_code == 0, plain.output


def test_a_codec_without_labels_is_one_line(tictactoe_shards: Path) -> None:
    result = CliRunner().invoke(main, ["data", "labels", str(tictactoe_shards), "--workers", "1", "--no-progress"])
    assert result.exit_code == 2 and "has no legal_targets" in result.output and "Traceback" not in result.output
    assert not labels_dir(tictactoe_shards, "legal").exists()
