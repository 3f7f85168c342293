"""Chess behind the Game protocol, on real games: every game of fischer.pgn replays to its recorded result."""

from __future__ import annotations


import chess
import chess.pgn
import pytest

from gamegpt.arena.play import play_game
from gamegpt.games import new_game
from gamegpt.games.base import IllegalMoveError
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import RandomPlayer
from shared_files import shared


def test_fischer_games_replay_through_the_protocol() -> None:
    games = 0
    with open(shared("games", "fischer.pgn"), encoding="utf-8", errors="replace") as handle:
        while (pgn := chess.pgn.read_game(handle)) is not None:
            if pgn.errors or pgn.headers.get("Variant", "Standard") != "Standard":
                continue
            game = ChessGame(pgn.headers.get("FEN"))
            for move in pgn.mainline_moves():
                text = game.move_to_str(move)
                assert game.move_from_str(text) == move
                game.push(move)
            assert game.history == list(pgn.mainline_moves())
            outcome = game.outcome()
            if outcome is not None and outcome.termination == "checkmate":
                assert outcome.result == pgn.headers["Result"]
            games += 1
    assert games > 800


def test_illegal_moves_fen_and_side_to_move() -> None:
    game = new_game("chess")
    with pytest.raises(IllegalMoveError):
        game.push(chess.Move.from_uci("e2e5"))
    with pytest.raises(ValueError):
        ChessGame("not a fen")
    assert ChessGame(chess.STARTING_FEN).start is None
    black_first = ChessGame("4k3/8/8/8/8/8/4P3/4K3 b - - 0 1")
    assert black_first.to_move == 0 and black_first.start is not None
    black_first.push(black_first.move_from_str("Kd7"))
    assert black_first.to_move == 1


def test_random_players_finish_a_chess_game_in_the_arena() -> None:
    record = play_game(ChessGame(claim_draws=True), [RandomPlayer(), RandomPlayer()], seed=1, max_plies=400)
    assert record.game == "chess" and record.termination
    replay = ChessGame(claim_draws=True)
    for text in record.moves:
        replay.push(replay.move_from_str(text))
    if record.termination != "max_plies":
        assert replay.outcome() is not None and replay.outcome().result == record.result
