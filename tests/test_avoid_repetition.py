"""The repetition-avoidance decoding option: steers a model that is ahead in material away from
repeating positions and from stalemating its opponent, and changes nothing while it is not ahead or when off."""

from __future__ import annotations

from pathlib import Path

import chess
import pytest

from gamegpt.arena.specs import make_player
from gamegpt.engine.decide import material_balance, moves_avoiding_repetition
from gamegpt.engine.model_player import ModelPlayer, load_model_player
from gamegpt.engine.settings import DecodingSettings
from gamegpt.errors import ConfigError
from gamegpt.games.chess import ChessGame

# White wins a pawn (2.exd5 Qxd5? no: 2...Nf6), then both knights shuffle out and back.
AHEAD_SHUFFLE = "e2e4 d7d5 e4d5 g8f6 g1f3 f6g8 f3g1 g8f6"
REPEATING = chess.Move.from_uci("g1f3")  # back to the position after 3.Nf3
FRESH = chess.Move.from_uci("a2a3")


def game_after(moves: str) -> ChessGame:
    game = ChessGame()
    for uci in moves.split():
        game.push(chess.Move.from_uci(uci))
    return game


def test_material_balance_is_from_the_side_to_move() -> None:
    board = game_after("e2e4 d7d5 e4d5").board  # Black to move, a pawn down
    assert material_balance(board) == -1
    board.push_uci("d8d5")
    assert material_balance(board) == 0


def test_only_the_side_that_is_ahead_is_steered() -> None:
    ahead = game_after(AHEAD_SHUFFLE)
    fresh = moves_avoiding_repetition(ahead)
    assert fresh is not None and REPEATING not in fresh and FRESH in fresh
    assert len(fresh) == ahead.board.legal_moves.count() - 1  # only the one repeating move is left out
    level = game_after("g1f3 g8f6 f3g1 f6g8")  # the same shuffle, material level
    assert moves_avoiding_repetition(level) is None
    behind = game_after("e2e4 d7d5 e4d5 g8f6 g1f3 f6g8 f3g1")  # Black, a pawn down, may repeat
    assert moves_avoiding_repetition(behind) is None


def test_a_move_that_lets_the_opponent_repeat_thrice_is_left_out() -> None:
    # The position after 2...Nf6 has occurred twice; 6.Ng1 is new, but 6...Nb8 would make it occur a third time.
    game = game_after("e2e4 d7d5 e4d5 g8f6 g1h3 f6g8 h3g1 g8f6 g1h3 b8c6")
    back = chess.Move.from_uci("h3g1")
    board = game.board.copy()
    board.push(back)
    assert not board.is_repetition(2)  # the move itself repeats nothing
    board.push_uci("c6b8")
    assert board.is_repetition(3)
    fresh = moves_avoiding_repetition(game)
    assert fresh is not None and back not in fresh and FRESH in fresh


def test_a_stalemating_move_is_left_out_when_ahead() -> None:
    queen_up = ChessGame("7k/5K2/8/8/8/8/8/6Q1 w - - 0 1")  # Qg6 and Qb1 stalemate the bare king; Qg7 mates
    stalemating = {chess.Move.from_uci("g1g6"), chess.Move.from_uci("g1b1")}
    fresh = moves_avoiding_repetition(queen_up)
    assert fresh is not None and not stalemating & set(fresh) and chess.Move.from_uci("g1g7") in fresh
    assert len(fresh) == queen_up.board.legal_moves.count() - 2
    queen_down = ChessGame("7K/5k2/8/8/8/8/8/6q1 w - - 0 1")  # White, bare king, to move: not steered
    assert moves_avoiding_repetition(queen_down) is None


def test_the_model_never_repeats_when_ahead_and_does_without_the_option(untrained_chess_model: Path) -> None:
    game = game_after(AHEAD_SHUFFLE)
    settings = DecodingSettings(temperature=50.0)  # near-uniform: both moves are drawn without the option
    plain = load_model_player(str(untrained_chess_model), "chess", settings=settings)
    steered = load_model_player(str(untrained_chess_model), "chess", settings=settings.replace(avoid_repetition=True))
    picks: dict[str, set[chess.Move]] = {"plain": set(), "steered": set()}
    for seed in range(30):
        for name, player in (("plain", plain), ("steered", steered)):
            player.reset(seed)
            picks[name].add(player.choose(game, among=[REPEATING, FRESH]))
    assert picks["plain"] == {REPEATING, FRESH}
    assert picks["steered"] == {FRESH}


def test_the_option_reads_as_text_in_the_spec_and_is_checked(untrained_chess_model: Path) -> None:
    player = make_player(f"model:path={untrained_chess_model},avoid_repetition=true", "chess")
    assert isinstance(player, ModelPlayer) and player.settings.avoid_repetition is True
    with pytest.raises(ConfigError, match="avoid_repetition must be true or false"):
        DecodingSettings.from_mapping({"avoid_repetition": "maybe"})
    with pytest.raises(ConfigError, match="avoid_repetition must be true or false"):
        DecodingSettings(avoid_repetition=1)  # type: ignore[arg-type]
