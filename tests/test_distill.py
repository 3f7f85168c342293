"""Distillation: `gamegpt data move-values` asks the real Stockfish for the value of the best moves of every
position of game records (resumable, deterministic), the codec turns a table into per-token distributions,
the loss is the cross-entropy against them, a model trained with it moves toward the teacher, and misuse is
one line with exit code 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import chess
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gamegpt.arena.records import GameRecord, RecordWriter
from gamegpt.cli import main
from gamegpt.core.checkpoint import load_model
from gamegpt.core.data import BlockLabels, open_split
from gamegpt.core.model import soft_target_loss
from gamegpt.errors import UserError
from gamegpt.games import MoveTokenCodec
from gamegpt.games.chess_move_values import MATE_CENTIPAWNS, MoveValueTable
from gamegpt.selfplay.dataset import records_to_shards
from gamegpt.selfplay.move_values import labelling_seconds, value_records
from gamegpt.selfplay.runner import run_selfplay
from tiny_training import train_tiny

CODEC = MoveTokenCodec()
OPERA = "e2e4 e7e5 g1f3 d7d6 d2d4 c8g4 d4e5 g4f3 d1f3 d6e5 f1c4 g8f6".split()
BEFORE_SCHOLARS_MATE = "e2e4 e7e5 f1c4 b8c6 d1h5 g8f6".split()  # white mates with h5f7


def _boards(moves: list[str]) -> list[chess.Board]:
    """The board before each move and after the last."""
    board, boards = chess.Board(), [chess.Board()]
    for move in moves:
        board.push_uci(move)
        boards.append(board.copy())
    return boards


@pytest.fixture(scope="module")
def two_games_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("move-values")
    with RecordWriter(folder / "games.jsonl") as writer:
        for moves in (OPERA, BEFORE_SCHOLARS_MATE):
            writer.write(GameRecord(game="chess", moves=moves, players=[], result="*", termination="test"))
    report = value_records([folder / "games.jsonl"], folder / "table", nodes=300, max_moves=8, workers=2,
                           chunk_games=1)
    assert report == {"chunks": 2, "chunks_done_before": 0, "positions": 13 + 7}  # each chunk values its own positions
    return folder / "table"


def test_every_position_is_valued_with_legal_moves_best_first(two_games_table: Path) -> None:
    table = MoveValueTable.load(two_games_table)
    positions = {chess.polyglot.zobrist_hash(b) for b in _boards(OPERA) + _boards(BEFORE_SCHOLARS_MATE)}
    assert len(table) == len(positions) == 13 + 7 - 3  # both games open e2e4 e7e5
    for board in _boards(OPERA) + _boards(BEFORE_SCHOLARS_MATE):
        found = table.lookup(board)
        assert found is not None
        moves, values = found
        assert 1 <= len(moves) <= 8 and all(board.is_legal(move) for move in moves)
        assert values[0] == values.max()
    moves, values = table.lookup(_boards(BEFORE_SCHOLARS_MATE)[-1])  # type: ignore[misc]
    assert moves[0] == chess.Move.from_uci("h5f7") and values[0] == MATE_CENTIPAWNS - 1
    assert table.lookup(chess.Board("8/8/8/4k3/8/8/8/4K2R w K - 0 1")) is None


def test_a_second_run_resumes_and_other_settings_are_refused(two_games_table: Path, tmp_path: Path) -> None:
    records = two_games_table.parent / "games.jsonl"
    assert value_records([records], two_games_table, nodes=300, max_moves=8, chunk_games=1) == {
        "chunks": 2, "chunks_done_before": 2, "positions": 0}
    part = two_games_table / "part-00001.npz"
    copy = tmp_path / "table"
    copy.mkdir()
    for name in ("settings.json", "part-00000.npz"):
        (copy / name).write_bytes((two_games_table / name).read_bytes())
    assert value_records([records], copy, nodes=300, max_moves=8, chunk_games=1)["chunks_done_before"] == 1
    with np.load(copy / "part-00001.npz") as again, np.load(part) as first:  # deterministic: an empty hash per position
        assert all(np.array_equal(again[name], first[name]) for name in ("keys", "moves", "values"))
        assert 0 < float(again["seconds"]) < 60
    assert labelling_seconds(two_games_table) > 0
    result = CliRunner().invoke(main, ["data", "move-values", str(records), "--out", str(copy), "--nodes", "301",
                                       "--max-moves", "8", "--chunk-games", "1", "--no-progress"])
    assert result.exit_code == 2 and "other settings (nodes)" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["data", "move-values", str(tmp_path / "missing.jsonl"), "--out",
                                       str(tmp_path / "new"), "--no-progress"])
    assert result.exit_code == 2 and "no such records file" in result.output and not (tmp_path / "new").exists()


def test_tables_of_one_teacher_load_as_one(two_games_table: Path, tmp_path: Path) -> None:
    halves = []
    for part in ("part-00000.npz", "part-00001.npz"):  # one game each
        half = tmp_path / part.removesuffix(".npz")
        half.mkdir()
        for name in ("settings.json", part):
            (half / name).write_bytes((two_games_table / name).read_bytes())
        halves.append(half)
    whole, merged = MoveValueTable.load(two_games_table), MoveValueTable.load(halves)
    assert len(MoveValueTable.load(halves[0])) < len(merged) == len(whole)
    for a, b in ((whole.keys, merged.keys), (whole.moves, merged.moves), (whole.values, merged.values)):
        assert np.array_equal(a, b)
    settings = json.loads((halves[1] / "settings.json").read_text())
    (halves[1] / "settings.json").write_text(json.dumps({**settings, "nodes": 2000}))
    with pytest.raises(UserError, match="other teacher settings"):
        MoveValueTable.load(halves)


def test_value_targets_are_the_tables_distributions(two_games_table: Path) -> None:
    table = MoveValueTable.load(two_games_table)
    tokens = CODEC.encode_game([chess.Move.from_uci(m) for m in OPERA], finished=True)  # bos, 12 moves, eos
    rows = CODEC.value_targets(tokens, table, temperature=0.05).astype(np.float64)
    assert rows.shape == (len(tokens), MoveTokenCodec.N_MOVES)
    for at, board in enumerate(_boards(OPERA)[:-1]):  # row `at` reads tokens[:at+1]; its target is move `at`
        moves, probabilities = table.target(board, 0.05)  # type: ignore[misc]
        assert rows[at].sum() == pytest.approx(1.0, abs=1e-3)
        tokens_of_moves = [CODEC.move_token(move) for move in moves]
        assert rows[at, tokens_of_moves] == pytest.approx(probabilities, abs=1e-3)  # float16 labels
    assert not rows[len(OPERA):].any()  # before <eos> and after the last token: no move to predict
    corrupt = CODEC.value_targets([CODEC.bos, tokens[1], tokens[1], tokens[2]], table, 0.05)  # e2e4 twice
    assert corrupt[1].sum() == pytest.approx(1.0, abs=1e-3) and not corrupt[2:].any()  # no board after it


def test_soft_target_loss_is_the_cross_entropy_against_the_rows() -> None:
    logits = torch.zeros(3, 10)
    targets = torch.zeros(3, 8)
    targets[0, :2] = 0.5  # uniform logits: -log(1/10) whatever the target
    targets[1, 3] = 1.0
    logits[1, 3] = 50.0  # the model agrees with a sure teacher
    assert soft_target_loss(logits, targets).item() == pytest.approx(math.log(10) / 2)  # row 2 has no target
    assert soft_target_loss(logits, torch.zeros(3, 8)).item() == 0.0
    with pytest.raises(ValueError, match="do not match"):
        soft_target_loss(logits, torch.zeros(2, 8))


@pytest.fixture(scope="module")
def random_games(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Shards and a move-value table of 30 games of random movers (40 plies)."""
    folder = tmp_path_factory.mktemp("distill")
    records = folder / "games.jsonl"
    run_selfplay("chess", ["random", "random"], n_games=30, seed=5, out=records, max_plies=40, progress=False)
    records_to_shards([records], folder / "shards", game="chess", codec_name="chess-uci-moves", block_len=64,
                      val_fraction=0.1)
    value_records([records], folder / "table", nodes=100, max_moves=8, workers=2, chunk_games=10)
    return folder / "shards", folder / "table"


def _cross_entropy_to_teacher(run: Path, shards: Path, table: MoveValueTable) -> float:
    model, _, _ = load_model(run)
    blocks = np.asarray(open_split(str(shards), "train"))
    x = torch.from_numpy(blocks[:, :-1].astype(np.int64))
    targets = torch.from_numpy(np.stack([CODEC.value_targets(block, table, 0.05)[:-1] for block in blocks]))
    with torch.no_grad():
        logits, _ = model(x, all_positions=True)
    return float(soft_target_loss(logits.reshape(-1, logits.size(-1)), targets.reshape(-1, targets.size(-1))))


def test_training_with_distillation_moves_the_model_toward_the_teacher(random_games: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    shards, table_dir = random_games
    table = MoveValueTable.load(table_dir)
    distance = {}
    for teacher in (None, str(table_dir)):
        run = tmp_path / ("distilled" if teacher else "plain")
        events = train_tiny(shards, run, steps=100, batch_size=8, distill_values=teacher)
        assert len([e for e in events if "distill_loss" in e]) == (10 if teacher else 0)
        distance[teacher] = _cross_entropy_to_teacher(run, shards, table)
    # the same steps on the same games: the distilled model is clearly closer to Stockfish's distributions
    assert distance[str(table_dir)] < distance[None] - 0.3, distance


def test_distillation_misuse_is_one_line(random_games: tuple[Path, Path], tictactoe_shards: Path,
                                         tmp_path: Path) -> None:
    shards, table = random_games
    args = ["train", "--data", str(shards), "--set", "n_layer=1", "--set", "n_head=2", "--set", "n_embd=16",
            "--set", "batch_size=2", "--set", "max_steps=1", "--no-progress"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "settings.json").write_bytes((table / "settings.json").read_bytes())
    (broken / "part-00000.npz").write_bytes(b"not a zip file")
    for setting, expected in ((f"distill_values={tmp_path}", "not a move-value table"),
                              (f"distill_values={broken}", "not a readable move-value part"),
                              ("distill_temperature=0", "distill_temperature must be above 0")):
        result = CliRunner().invoke(main, args + ["--out", str(tmp_path / "run"), "--set", setting,
                                                  "--set", f"distill_values={table}" if "temperature" in setting
                                                  else "distill_loss_weight=1"])
        assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["train", "--data", str(tictactoe_shards), "--out", str(tmp_path / "ttt"),
                                       "--set", f"distill_values={table}", "--set", "max_steps=1", "--no-progress"])
    assert result.exit_code == 2 and "distill_values needs data of one token per move" in result.output


def test_block_labels_label_each_block_once_and_return_the_same_labels() -> None:
    blocks = np.array([CODEC.encode_game([chess.Move.from_uci(m) for m in moves], finished=True)[:7]
                       for moves in (OPERA, BEFORE_SCHOLARS_MATE)], dtype=np.uint16)
    calls = []

    def legal(tokens: np.ndarray) -> np.ndarray:
        calls.append(1)
        return CODEC.legal_targets(tokens)

    labels = BlockLabels(legal, fill=False)
    first = labels.batch(blocks, np.array([1, 0, 1]), "cpu")
    again = labels.batch(blocks, np.array([0, 1]), "cpu")
    assert len(calls) == 2 and labels.stored_bytes > 0  # one call per block, however often it is drawn
    assert torch.equal(first[1], torch.from_numpy(CODEC.legal_targets(blocks[0])[:-1]))
    assert torch.equal(again, first[1:]) and first.shape == (3, 6, MoveTokenCodec.N_MOVES)
    boards = BlockLabels(CODEC.board_targets, fill=-1, max_bytes=0)  # nothing kept: labelled anew each time
    assert torch.equal(boards.batch(blocks, np.array([0]), "cpu")[0], torch.from_numpy(CODEC.board_targets(blocks[0])[:-1]))
    assert boards.stored_bytes == 0
