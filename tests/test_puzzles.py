"""Puzzles on the real Lichess sample (../shared/data/puzzles) and real games (fischer.pgn): the solve rule on
hand-checked puzzles, the random baseline, skipped-puzzle accounting for history and start-position models,
the History column, `gamegpt puzzles make` checked by Stockfish, and bad files giving one line and exit 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chess
import chess.pgn
import pytest
import torch

from gamegpt.core.checkpoint import save_model
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.engine.model_player import load_model_player
from gamegpt.selfplay.puzzle_maker import MakerSettings, make_puzzles, progress_path
from gamegpt.arena.puzzle_file import NO_HISTORY, Puzzle, PuzzleFileError, parse_puzzle, rating_bucket, read_puzzles
from gamegpt.eval.puzzles import (
    attempt_puzzle,
    evaluate_puzzles,
    format_puzzle_table,
    random_baseline,
    random_solve_probability,
    solve_puzzles,
)
from gamegpt.games.base import Game, InvalidMove
from gamegpt.games.chess_codecs import MoveTokenCodec, PgnCharCodec
from gamegpt.players.base import Player
from gamegpt.players.limits import SearchLimits
from gamegpt.players.uci import UciEngineProcess, find_stockfish
from gamegpt.resources import PUZZLE_SAMPLE, data_file
from shared_files import shared

LICHESS = data_file(*PUZZLE_SAMPLE)
HEADER = "PuzzleId,FEN,Moves,Rating,RatingDeviation,Popularity,NbPlays,Themes,GameUrl,OpeningTags,History"


class ScriptedPlayer(Player):
    """Plays the given moves (UCI text, or an InvalidMove) in turn."""

    name = "scripted"

    def __init__(self, moves: Sequence[str | InvalidMove]) -> None:
        self.moves = list(moves)

    def choose(self, game: Game[Any]) -> Any:
        move = self.moves.pop(0)
        return move if isinstance(move, InvalidMove) else chess.Move.from_uci(move)


def lichess_rows(*ids: str) -> dict[str, dict[str, str]]:
    with open(LICHESS, encoding="utf-8") as handle:
        return {row["PuzzleId"]: row for row in csv.DictReader(handle) if row["PuzzleId"] in ids}


def lichess_puzzle(puzzle_id: str) -> Puzzle:
    return parse_puzzle(lichess_rows(puzzle_id)[puzzle_id], 1)


def solve(puzzle: Puzzle, *moves: str | InvalidMove) -> tuple[bool, str | None]:
    attempt = attempt_puzzle(ScriptedPlayer(moves), puzzle, puzzle.game())
    return attempt.solved, attempt.failure


def tiny_model(path: Path, codec: PgnCharCodec | MoveTokenCodec, block_size: int) -> Path:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=codec.vocab_size, block_size=block_size, n_layer=1, n_head=2, n_embd=32))
    return save_model(path, model, codec.spec(), {})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight chess models: character PGN (reads games from move 1) and move tokens with
    start-position encoding (reads a FEN)."""
    root = tmp_path_factory.mktemp("puzzle-models")
    return {"chars": tiny_model(root / "chars", PgnCharCodec(), 512),
            "start": tiny_model(root / "start", MoveTokenCodec(start_position=True), 160)}


def gamegpt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-m", "gamegpt.cli", *args], check=False, capture_output=True, text=True,
                          timeout=300, env=env)


def assert_user_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert needle in lines[0], lines[0]


# ----------------------------------------------------------------------------------------------- reading


def test_the_lichess_sample_reads_whole_into_rating_buckets() -> None:
    puzzle_set = read_puzzles(LICHESS)
    assert len(puzzle_set.puzzles) == 1000 and not puzzle_set.malformed
    with open(LICHESS, encoding="utf-8") as handle:
        ratings = [int(row["Rating"]) for row in csv.DictReader(handle)]
    buckets = [p.bucket for p in puzzle_set.puzzles]
    assert buckets.count("<900") == sum(r < 900 for r in ratings) >= 1  # the sample starts at 835
    assert buckets.count("1400+") == sum(r >= 1400 for r in ratings)
    assert buckets.count("1200") == sum(1200 <= r < 1300 for r in ratings)
    assert [rating_bucket(r) for r in (835, 899, 900, 999, 1000, 1399, 1400, 2147, None)] == \
        ["<900", "<900", "900", "900", "1000", "1300", "1400+", "1400+", "unrated"]
    assert read_puzzles(LICHESS, limit=7).rows == 7


def test_malformed_rows_are_skipped_with_reasons(tmp_path: Path) -> None:
    good = lichess_rows("tewjc", "mJDcO")
    fields = list(good["tewjc"])
    broken = [
        {**good["tewjc"], "FEN": "not a fen"},
        {**good["tewjc"], "PuzzleId": "nomoves", "Moves": ""},
        {**good["tewjc"], "PuzzleId": "illegal", "Moves": "a2a7 e5e4 f2e3 f6a1"},
        {**good["tewjc"], "PuzzleId": "odd", "Moves": "a2a7 e5e3 f2e3"},
        {**good["tewjc"], "PuzzleId": "rating", "Rating": "strong"},
        {**good["tewjc"], "PuzzleId": ""},
        {**good["tewjc"], "FEN": "8/8/8/8/8/8/8/8 w - - 0 1", "PuzzleId": "nokings"},
        good["mJDcO"], good["mJDcO"],
    ]
    path = tmp_path / "mixed.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows([good["tewjc"], *broken])
        handle.write("extra,fields,r5k1/pp3p1p/2b2qp1/3pr3/8/4P2P/R1PN1PP1/Q3K2R w K - 0 19,,,,,,,,,,,,,\n")
    puzzle_set = read_puzzles(path)
    assert [p.puzzle_id for p in puzzle_set.puzzles] == ["tewjc", "mJDcO"]
    reasons = sorted(s.reason for s in puzzle_set.malformed)
    assert reasons == sorted(["bad FEN", "bad FEN", "bad Moves", "bad Moves", "bad Moves", "bad Rating",
                              "missing PuzzleId", "repeated PuzzleId", "too many fields"]), reasons
    assert puzzle_set.describe().startswith(f"{path}: 2 of 11 rows read; malformed: 2 bad FEN, 3 bad Moves")


# ----------------------------------------------------------------------------------------------- solving


def test_solve_rule_on_hand_checked_puzzles() -> None:
    # tewjc: after 1.Ra7, ...Rxe3+ 2.fxe3 Qxa1+ 3.Rxa1 Rxa1+ wins the queen (three solver moves).
    tewjc = lichess_puzzle("tewjc")
    assert tewjc.bucket == "1400+" and [m.uci() for m in tewjc.solver_moves] == ["e5e3", "f6a1", "a8a1"]
    assert solve(tewjc, "e5e3", "f6a1", "a8a1") == (True, None)
    assert solve(tewjc, "e5e3", "f6f2") == (False, "wrong move")  # Qf2+ is legal, not the solution
    assert solve(tewjc, "e5e3", InvalidMove("Qz9")) == (False, "illegal move")
    assert solve(tewjc, "e5e1") == (False, "illegal move")  # the rook cannot jump over e3

    # mJDcO: 1.Rf4 Qa1+ 2.Rf1 and now Qxf1# (the solution) or Rxf1# (the other mate) both mate.
    mjdco = lichess_puzzle("mJDcO")
    assert solve(mjdco, "d4a1", "a1f1") == (True, None)
    assert solve(mjdco, "d4a1", "f8f1") == (True, None)
    assert solve(mjdco, "d4a1", "a1c1") == (False, "wrong move")  # ...Qxc1? is check, not mate
    # The same as a mate in one (cut from that puzzle): any of the two mates counts.
    mate_in_one = parse_puzzle({"PuzzleId": "m1", "FEN": "5rk1/p1Q3pp/8/3p4/5R2/8/P1P3PP/q6K w - - 0 22",
                                "Moves": "f4f1 a1f1", "Rating": "1000"}, 1)
    assert solve(mate_in_one, "a1f1") == solve(mate_in_one, "f8f1") == (True, None)
    assert solve(mate_in_one, "f8f1") == (True, None) and solve(mate_in_one, "h7h6") == (False, "wrong move")

    # oY29r, the sample's mate in one: ...Qg1# is the only mate among Black's 32 legal moves.
    oy29r = lichess_puzzle("oY29r")
    assert solve(oy29r, "e3g1") == (True, None) and solve(oy29r, "e3e2") == (False, "wrong move")
    assert random_solve_probability(oy29r) == pytest.approx(1 / 32)
    assert random_solve_probability(mate_in_one) == pytest.approx(2 / len(list(mate_in_one.game().board.legal_moves)))


def test_random_baseline_is_low_but_computed_and_seeded() -> None:
    puzzles = read_puzzles(LICHESS, limit=100).puzzles
    first, again = random_baseline(puzzles, seed=1), random_baseline(puzzles, seed=1)
    assert len(first.attempts) == 100 and not first.skipped
    assert [a.played for a in first.attempts] == [a.played for a in again.attempts]
    assert all(a.failure != "illegal move" for a in first.attempts)
    rate, expected = first.rate(), first.expected_rate()
    assert rate is not None and expected is not None
    assert rate <= 0.05 and 0 < expected < 0.02
    assert first.to_dict()["by_bucket"]["1400+"]["attempted"] == sum(p.bucket == "1400+" for p in puzzles)


# ----------------------------------------------------------------------------------------------- models


def test_skipped_puzzles_are_accounted_per_model(models: dict[str, Path], tmp_path: Path) -> None:
    puzzle_set = read_puzzles(LICHESS, limit=25)
    chars = load_model_player(str(models["chars"]), "chess", temperature=0.0, policy="mask")
    start = load_model_player(str(models["start"]), "chess", temperature=1.0, policy="mask")
    evaluation = evaluate_puzzles({"chars": chars, "start": start}, puzzle_set, seed=0, progress=False)
    by_label = {r.label: r for r in evaluation.results}

    # The character-PGN model reads games from move 1: every FEN-only puzzle is skipped, with the reason.
    assert not by_label["chars"].attempts and by_label["chars"].skip_counts() == {NO_HISTORY: 25}
    data = evaluation.to_dict()
    chars_data = next(r for r in data["results"] if r["label"] == "chars")
    assert chars_data["skipped"] == {NO_HISTORY: 25}
    assert chars_data["skipped_ids"][NO_HISTORY] == [p.puzzle_id for p in puzzle_set.puzzles]
    assert chars_data["player"]["start_position"] is False

    # The start-position model reads the FEN and attempts them all, with legal (masked) moves.
    attempts = by_label["start"].attempts
    assert len(attempts) == 25 and not by_label["start"].skipped
    assert all(a.failure in (None, "wrong move") and a.played for a in attempts)
    game = puzzle_set.puzzles[0].game()
    assert start.codec.prefix_tokens(game)[1] == start.codec.position_token  # it reads the position block
    assert data["baseline"]["attempted"] == 25 and "attempted" in data["baseline"]["scope"]
    table = format_puzzle_table(evaluation)
    assert f"skipped for chars: 25 {NO_HISTORY}" in table and "random (expected)" in table


def fischer_games(count: int) -> list[chess.pgn.Game]:
    with open(shared("games", "fischer.pgn"), encoding="utf-8-sig") as handle:
        return [chess.pgn.read_game(handle) for _ in range(count)]  # type: ignore[misc]


def test_history_column_in_san_and_uci_feeds_a_char_pgn_model(models: dict[str, Path], tmp_path: Path) -> None:
    game = fischer_games(1)[0]
    moves = list(game.mainline_moves())
    ply = 20
    board = game.board()
    san_words = []
    for number, move in enumerate(moves[:ply]):
        san_words.append((f"{number // 2 + 1}. " if number % 2 == 0 else "") + board.san(move))
        board.push(move)
    fen = board.fen()
    solution = " ".join(m.uci() for m in moves[ply:ply + 4])
    uci = " ".join(m.uci() for m in moves[:ply])
    rows = [("san", " ".join(san_words)), ("uci", uci), ("short", " ".join(m.uci() for m in moves[:ply - 2])),
            ("garbage", "e4 e5 Kz9")]
    path = tmp_path / "history.csv"
    path.write_text(HEADER + "\n" + "".join(f"{pid},{fen},{solution},1250,,,,,,,{history}\n" for pid, history in rows))

    puzzle_set = read_puzzles(path)
    assert [p.puzzle_id for p in puzzle_set.puzzles] == ["san", "uci"]
    assert {s.puzzle_id: s.reason for s in puzzle_set.malformed} == {
        "short": "History does not lead to the FEN", "garbage": "bad History"}
    san, uci_puzzle = puzzle_set.puzzles
    assert san.history == uci_puzzle.history == tuple(moves[:ply])

    player = load_model_player(str(models["chars"]), "chess", temperature=0.0, policy="mask")
    text = player.codec.prefix_text(san.game())
    assert text.startswith(";1.d4 Nf6 2.c4") and len(text) > 100  # the model reads the real game
    result = solve_puzzles(player, puzzle_set.puzzles, progress=False)
    assert [a.puzzle_id for a in result.attempts] == ["san", "uci"] and not result.skipped
    assert result.attempts[0].played == result.attempts[1].played  # same game text, argmax: same moves
    # The game's own continuation solves it (the rule with History, through the same game the model saw).
    assert attempt_puzzle(ScriptedPlayer([m.uci() for m in moves[ply + 1:ply + 4:2]]), san, san.game()).solved


# ----------------------------------------------------------------------------------------------- make


def test_puzzles_make_cuts_puzzles_stockfish_confirms(tmp_path: Path) -> None:
    fischer = shared("games", "fischer.pgn")
    out = tmp_path / "fischer-puzzles.csv"
    settings = MakerSettings(nodes=10_000)
    report = make_puzzles(fischer, out, settings=settings, max_puzzles=2)
    assert report.puzzles == report.new_puzzles == 2 and not report.complete and report.games_read == 827
    with open(out, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == HEADER.split(",") and len(rows) == 2

    puzzle_set = read_puzzles(out)  # parsing checks that each History reaches its FEN
    assert len(puzzle_set.puzzles) == 2 and not puzzle_set.malformed
    with UciEngineProcess([find_stockfish()]) as engine:
        engine.set_option("Threads", 1)
        for row, puzzle in zip(rows, puzzle_set.puzzles):
            assert puzzle.bucket == "unrated" and puzzle.history is not None
            board = chess.Board()
            for word in row["History"].split():
                board.push_uci(word)
            assert board.epd() == chess.Board(row["FEN"]).epd()
            board.push(puzzle.moves[0])
            engine.new_game()
            for index in range(1, len(puzzle.moves), 2):
                engine.position(board.fen())
                best = engine.go(SearchLimits(nodes=40_000)).move()
                solution = puzzle.moves[index]
                board.push(solution)
                assert best == solution or board.is_checkmate(), (row["PuzzleId"], best, solution)
                if index + 1 < len(puzzle.moves):
                    board.push(puzzle.moves[index + 1])

    # Re-running with a larger --max continues after the games already scanned (through the CLI).
    state = json.loads(progress_path(out).read_text())
    result = gamegpt("puzzles", "make", "--games", str(fischer), "--out", str(out), "--max", "3",
                     "--stockfish-nodes", "10000", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and "3 puzzles (1 new)" in result.stdout
    with open(out, encoding="utf-8") as handle:
        again = list(csv.DictReader(handle))
    assert again[:2] == rows and len(again) == 3
    game_number = int(again[2]["PuzzleId"].split("-g")[1].split("-")[0])
    assert game_number > state["games_scanned"]
    # Other settings on the same file are refused, not mixed in.
    result = gamegpt("puzzles", "make", "--games", str(fischer), "--out", str(out), "--stockfish-nodes", "500")
    assert_user_error(result, "other settings")


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_eval_puzzles_writes_table_json_and_plot(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = gamegpt("eval", "puzzles", "--model", str(models["start"]), "--model", str(models["chars"]),
                     "--puzzles", str(LICHESS), "--limit", "30", "--policy", "mask", "--out", str(out),
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"skipped for {models['chars']}: 30 {NO_HISTORY}" in result.stdout
    assert f"wrote {out / 'puzzles.json'}" in result.stdout
    data = json.loads((out / "puzzles.json").read_text())
    assert [r["attempted"] for r in data["results"]] == [30, 0]
    assert data["results"][1]["skipped"] == {NO_HISTORY: 30} and data["rows"] == 30
    assert data["baseline"]["attempted"] == 30 and data["malformed"]["counts"] == {}
    assert (out / "puzzles.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_puzzle_files_give_one_line_and_exit_2(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(PuzzleFileError, match="not found"):
        read_puzzles(tmp_path / "missing.csv")
    result = gamegpt("eval", "puzzles", "--model", str(models["start"]), "--puzzles", str(tmp_path / "missing.csv"))
    assert_user_error(result, "puzzle file not found")
    headerless = tmp_path / "games.csv"
    headerless.write_text("white,black,result\nfischer,spassky,1-0\n")
    result = gamegpt("eval", "puzzles", "--model", str(models["start"]), "--puzzles", str(headerless))
    assert_user_error(result, "not a Lichess puzzle CSV")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_user_error(gamegpt("eval", "puzzles", "--model", str(models["start"]), "--puzzles", str(binary)),
                      "not a text")
    assert_user_error(gamegpt("puzzles", "make", "--games", str(tmp_path / "none.pgn"), "--out",
                              str(tmp_path / "p.csv")), "games file not found")
