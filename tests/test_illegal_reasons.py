"""Why a sampled chess move is illegal (`gamegpt eval legality`'s breakdown): each reason on a position built
to show it, and on a real (untrained) model's samples the reasons account for every illegal one."""

from __future__ import annotations

from pathlib import Path

import chess

from gamegpt.arena.records import read_records
from gamegpt.engine.model_player import load_model_player
from gamegpt.eval.legality import (AMBIGUOUS_SAN, CAPTURES_OWN_PIECE, CASTLING_NOT_ALLOWED, GAME_OVER, KING_IN_CHECK,
                                   NO_OWN_PIECE, NO_SAN_MATCH, NOT_A_MOVE, NOT_HOW_IT_MOVES, PIECE_IN_THE_WAY,
                                   format_reasons_table, illegal_reason, legal_move_rate)
from gamegpt.games.base import InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.selfplay.runner import run_selfplay


def after(moves: str) -> ChessGame:
    return ChessGame.replay(None, moves.split())


def test_each_reason() -> None:
    start = ChessGame()
    assert illegal_reason(start, chess.Move.from_uci("e3e4")) == NO_OWN_PIECE  # an empty square
    assert illegal_reason(start, chess.Move.from_uci("e7e5")) == NO_OWN_PIECE  # the opponent's pawn
    assert illegal_reason(start, chess.Move.from_uci("e2e5")) == NOT_HOW_IT_MOVES
    assert illegal_reason(start, chess.Move.from_uci("e2d3")) == NOT_HOW_IT_MOVES  # a pawn capturing nothing
    assert illegal_reason(start, chess.Move.from_uci("f1c4")) == PIECE_IN_THE_WAY  # its own pawn on e2
    assert illegal_reason(start, chess.Move.from_uci("a1a3")) == PIECE_IN_THE_WAY
    assert illegal_reason(start, chess.Move.from_uci("d1d2")) == CAPTURES_OWN_PIECE
    assert illegal_reason(start, chess.Move.from_uci("e1g1")) == CASTLING_NOT_ALLOWED  # through its own pieces
    assert illegal_reason(start, InvalidMove("e2e5")) == NOT_HOW_IT_MOVES  # the same, as text
    blocked_pawn = after("e2e4 e7e5")
    assert illegal_reason(blocked_pawn, chess.Move.from_uci("e4e5")) == PIECE_IN_THE_WAY
    assert illegal_reason(start, InvalidMove("<eos>")) == NOT_A_MOVE
    assert illegal_reason(start, InvalidMove("Nf6")) == NO_SAN_MATCH  # SAN of a PGN model
    checked = after("e2e4 f7f5 d1h5")  # Black is in check
    assert illegal_reason(checked, chess.Move.from_uci("a7a6")) == KING_IN_CHECK
    pinned = after("e2e4 e7e5 b1c3 f8b4 d2d3 a7a6")  # Bb4 pins Nc3 to the king on e1
    assert illegal_reason(pinned, chess.Move.from_uci("c3d5")) == KING_IN_CHECK
    two_knights = after("e2e4 a7a6 b1c3 a6a5")  # Nc3 and Ng1 both reach e2
    assert illegal_reason(two_knights, InvalidMove("Ne2")) == AMBIGUOUS_SAN
    mated = after("f2f3 e7e5 g2g4 d8h4")
    assert illegal_reason(mated, chess.Move.from_uci("a2a3")) == GAME_OVER


def test_the_reasons_account_for_every_illegal_sample(untrained_chess_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "games.jsonl"
    run_selfplay("chess", ["random", "random"], n_games=6, seed=3, out=path, max_plies=40, progress=False)
    player = load_model_player(str(untrained_chess_model), "chess", temperature=1.0, policy="raw")
    result = legal_move_rate(player, read_records(path), move_numbers=(1, 10, 20), progress=False)
    for number in (1, 10, 20):
        illegal = result.positions[number] - result.legal[number]
        assert sum(result.reasons[number].values()) == illegal
    assert sum(result.positions.values()) > sum(result.legal.values())  # an untrained model errs
    data = result.to_dict()
    assert sum(sum(counts.values()) for counts in data["illegal_by_reason"].values()) == \
        sum(result.positions.values()) - sum(result.legal.values())
    assert all("reason" in example for example in data["illegal_examples"])
    table = format_reasons_table(result)
    assert table.splitlines()[0].startswith("move") and len(table.splitlines()) == 4
