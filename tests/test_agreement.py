"""Top-1 agreement with Stockfish on held-out positions of real games: the labels, the measure, the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import chess
import pytest

from gamegpt.arena.pgn_import import import_pgn
from gamegpt.arena.records import read_records
from gamegpt.eval.agreement import label_positions, top1_agreement
from gamegpt.players.base import RandomPlayer
from gamegpt.players.stockfish import StockfishPlayer
from shared_files import shared

NODES = 2000


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agreement") / "fischer.jsonl"
    import_pgn([shared("games", "fischer.pgn")], path, limit=20)
    return path


def test_stockfish_agrees_with_itself_and_random_rarely(held_out: Path) -> None:
    records = read_records(held_out)
    positions = label_positions(records, count=12, nodes=NODES, seed=3)
    assert len(positions) == 12
    for position in positions:
        game = position.game()
        assert 10 <= len(position.history) and chess.Move.from_uci(position.best) in game.board.legal_moves
        assert chess.Move.from_uci(position.played) in game.board.legal_moves
    assert label_positions(records, count=12, nodes=NODES, seed=3) == positions  # the same labels every run
    stockfish = StockfishPlayer(nodes=NODES)
    try:
        same = top1_agreement(stockfish, positions, label="stockfish")
    finally:
        stockfish.close()
    assert (same.stockfish_top1, same.positions) == (12, 12)
    rare = top1_agreement(RandomPlayer(), positions, label="random")
    assert rare.stockfish_top1 < 6 and rare.to_dict()["stockfish_top1"] == rare.stockfish_top1 / 12


def test_the_command_writes_json_and_bad_input_is_one_line(held_out: Path, untrained_chess_model: Path,
                                                          tmp_path: Path) -> None:
    command = [sys.executable, "-m", "gamegpt.cli", "eval", "agreement", "--model", str(untrained_chess_model),
               "--records", str(held_out), "--positions", "5", "--nodes", "500", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert summary["positions"] == 5 and 0.0 <= summary["results"][0]["stockfish_top1"] <= 1.0
    bad = subprocess.run(command[:-4] + ["--positions", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
