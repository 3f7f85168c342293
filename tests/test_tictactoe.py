"""Tic-tac-toe rules, codec, and the Newell–Simon player checked exhaustively against minimax."""

from __future__ import annotations

import functools

import pytest

from gamegpt.games.base import IllegalMoveError, PrefixEncoder
from gamegpt.games.tictactoe import TicTacToe, TicTacToeCodec
from gamegpt.players.newell_simon import candidate_moves, enumerate_games, enumerate_newell_simon_games


@functools.lru_cache(maxsize=None)
def minimax_value(history: tuple[int, ...]) -> int:
    """Game value for X (+1 win, 0 draw, -1 loss) under perfect play from this history."""
    game = TicTacToe(history)
    outcome = game.outcome()
    if outcome is not None:
        return 0 if outcome.winner is None else (1 if outcome.winner == 0 else -1)
    values = [minimax_value(history + (m,)) for m in game.legal_moves()]
    return max(values) if game.to_move == 0 else min(values)


def all_positions() -> list[tuple[int, ...]]:
    """Every reachable history, the empty one included."""
    seen: list[tuple[int, ...]] = []
    game = TicTacToe()

    def walk() -> None:
        seen.append(tuple(game.history))
        for move in game.legal_moves():
            game.push(move)
            walk()
            game.pop()

    walk()
    return seen


def test_game_counts_match_known_totals() -> None:
    histories = all_positions()
    finished: list[int | None] = []
    boards = set()
    for history in histories:
        game = TicTacToe(history)
        boards.add(tuple(game.cells))
        outcome = game.outcome()
        if outcome is not None:
            finished.append(outcome.winner)
    assert len(finished) == 255_168
    assert finished.count(0) == 131_184 and finished.count(1) == 77_904 and finished.count(None) == 46_080
    assert len(boards) == 5_478


def test_illegal_moves_are_rejected() -> None:
    game = TicTacToe([4])
    for bad in (4, 9, -1, "3", True):
        with pytest.raises(IllegalMoveError):
            game.push(bad)  # type: ignore[arg-type]
    won = TicTacToe([0, 3, 1, 4, 2])
    assert won.outcome().winner == 0 and won.legal_moves() == []
    with pytest.raises(IllegalMoveError):
        won.push(8)


def test_newell_simon_never_loses_against_every_opponent_sequence() -> None:
    for side in (0, 1):
        games = enumerate_games(side)
        assert games
        for history in games:
            outcome = TicTacToe(history).outcome()
            assert outcome is not None
            assert outcome.winner != 1 - side, f"Newell-Simon as {'XO'[side]} lost: {history}"


def test_newell_simon_only_plays_minimax_optimal_moves() -> None:
    """In every position reachable with Newell–Simon playing its side from the start, every candidate
    keeps the minimax value. (From positions it would never have entered, e.g. after a noise move of its
    own, it can go wrong: that is what noise costs.)"""
    checked = 0
    for side in (0, 1):
        seen: set[tuple[int, ...]] = set()
        for history in enumerate_games(side):
            for ply in range(side, len(history), 2):
                prefix = history[:ply]
                if prefix in seen:
                    continue
                seen.add(prefix)
                game = TicTacToe(prefix)
                best = minimax_value(prefix)
                _, moves = candidate_moves(game.cells, game.to_move)
                assert moves
                for move in moves:
                    assert minimax_value(prefix + (move,)) == best, (prefix, move)
                checked += 1
    assert checked > 1000


def test_block_fork_reading_avoids_the_naive_loss() -> None:
    # Naive "make any two-in-a-row" plays O1 here and loses: X0 O4 X5 O1 X7 O2 X6 O8 X3.
    rule, moves = candidate_moves(TicTacToe([0, 4, 5]).cells, 1)
    assert 1 not in moves and moves


def test_enumeration_is_union_without_duplicates() -> None:
    games = enumerate_newell_simon_games()
    assert len(games) == len(set(games)) == len(set(enumerate_games(0)) | set(enumerate_games(1)))
    for history in games:
        assert TicTacToe(history).outcome() is not None


def test_prefix_encoder_gives_the_prefix_tokens_of_every_position() -> None:
    codec = TicTacToeCodec()
    encoder = PrefixEncoder(codec)
    games = enumerate_newell_simon_games()
    for history in games:
        game = TicTacToe()
        assert encoder.prefix_tokens(game) == codec.prefix_tokens(game) == [codec.bos]
        for move in history:
            game.push(move)
            assert encoder.prefix_tokens(game) == codec.prefix_tokens(game)
        taken = [game.pop(), game.pop()]  # a takeback of two moves, then one of them again
        assert encoder.prefix_tokens(game) == codec.prefix_tokens(game)
        game.push(taken[1])
        assert encoder.prefix_tokens(game) == codec.prefix_tokens(game) == [codec.bos, *history[:-1]]
    assert encoder.full_encodings == 2 * len(games)  # each new game and each takeback, no other position


def test_codec_round_trips_every_enumerated_game() -> None:
    codec = TicTacToeCodec()
    for history in enumerate_newell_simon_games():
        tokens = codec.encode_game(history)
        assert tokens[0] == codec.bos and tokens[-1] == codec.eos
        assert codec.decode_game(tokens) == (None, list(history))
    with pytest.raises(ValueError):
        codec.decode_game([codec.bos, 4, 4])
