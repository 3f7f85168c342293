"""Mate in one on held-out games: the positions (checked by brute force), the measure against real players,
and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import chess
import pytest

from gamegpt.arena.records import GameRecord, read_records
from gamegpt.eval.mates import find_mate_positions, mate_in_one_rate
from gamegpt.players.base import RandomPlayer
from gamegpt.players.stockfish import StockfishPlayer
from gamegpt.selfplay.runner import run_selfplay

FOOLS_MATE = ["f2f3", "e7e5", "g2g4", "d8h4"]


def record(moves: list[str], start: str | None = None) -> GameRecord:
    return GameRecord("chess", moves, [], "*", "unknown", start=start)


@pytest.fixture(scope="module")
def decisive_games(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Stockfish games, a strong side against a weak and noisy one: they end in mate."""
    path = tmp_path_factory.mktemp("mates") / "games.jsonl"
    run_selfplay("chess", ["stockfish:skill=20,nodes=2000", "stockfish:skill=0,nodes=10,noise=0.5"], n_games=4,
                 seed=11, out=path, max_plies=300, progress=False)
    return path


def brute_force_mates(board: chess.Board) -> set[str]:
    mates = set()
    for move in board.legal_moves:
        after = board.copy()
        after.push(move)
        if after.is_checkmate():
            mates.add(move.uci())
    return mates


def test_fools_mate_and_games_without_one() -> None:
    [position] = find_mate_positions([record(FOOLS_MATE)], count=5)
    assert position.history == tuple(FOOLS_MATE[:3]) and position.mating_moves == ("d8h4",)
    assert position.legal_moves == position.game().board.legal_moves.count() == 30
    assert find_mate_positions([record(["e2e4", "e7e5", "g1f3"])], count=5) == []
    # a record whose moves stop being legal is read up to that point, never past it
    assert find_mate_positions([record(["f2f3", "e7e5", "e1e3", "g2g4", "d8h4"])], count=5) == []
    # a game from a position: White to move mates with the rook on the back rank
    start = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"
    [from_fen] = find_mate_positions([record(["a1a8"], start=start)], count=1)
    assert from_fen.mating_moves == ("a1a8",) and from_fen.game().board.fen() == start


def test_positions_of_real_games_are_the_first_mate_of_each(decisive_games: Path) -> None:
    records = read_records(decisive_games)
    assert sum(r.termination == "checkmate" for r in records) >= 3
    positions = find_mate_positions(records, count=10)
    assert 3 <= len(positions) <= len(records)
    for position in positions:
        board = position.game().board
        assert set(position.mating_moves) == brute_force_mates(board) != set()
        replay = chess.Board()
        for text in position.history:  # no earlier position of the game had a mate in one
            assert not brute_force_mates(replay)
            replay.push_uci(text)
    assert find_mate_positions(records, count=2) == positions[:2]


def test_stockfish_always_mates_and_random_rarely(decisive_games: Path) -> None:
    positions = find_mate_positions(read_records(decisive_games), count=10)
    stockfish = StockfishPlayer(nodes=2000)
    try:
        sure = mate_in_one_rate(stockfish, positions, label="stockfish")
    finally:
        stockfish.close()
    assert sure.found == sure.positions == len(positions)
    chance = mate_in_one_rate(RandomPlayer(), positions, label="random", seed=3)
    expected = sum(len(p.mating_moves) / p.legal_moves for p in positions)
    assert chance.random_expected == pytest.approx(expected) and 0 < expected < len(positions) / 4
    assert chance.to_dict()["random_rate"] == pytest.approx(expected / len(positions))
    assert mate_in_one_rate(RandomPlayer(), positions, label="random", seed=3).found == chance.found  # seeded


def test_the_command_writes_json_and_bad_input_is_one_line(decisive_games: Path, untrained_chess_model: Path,
                                                          tmp_path: Path) -> None:
    command = [sys.executable, "-m", "gamegpt.cli", "eval", "mates", "--model", str(untrained_chess_model),
               "--records", str(decisive_games), "--positions", "3", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "mates.json").read_text())
    assert summary["positions"] == 3 and 0.0 <= summary["results"][0]["found_rate"] <= 1.0
    assert "a random mover" in done.stdout
    no_mates = tmp_path / "quiet.jsonl"
    no_mates.write_text(record(["e2e4", "e7e5"]).to_json() + "\n")
    for bad in (command[:-4] + ["--positions", "0"], command[:7] + ["--records", str(no_mates)]):
        failed = subprocess.run(bad, capture_output=True, text=True, timeout=60)
        assert failed.returncode == 2 and failed.stderr.strip().startswith("error:")
        assert len(failed.stderr.strip().splitlines()) == 1
