"""A static evaluation of chess positions, for the score the UCI engine reports.

The model has no value head and does not search, so no score it could report is a real search result.
The engine reports instead what a reader can check by hand: the material and piece placement of the
position after its move, by Tomasz Michniewski's "Simplified Evaluation Function" (piece values
100/320/330/500/900 and one piece-square table per piece; the king's middle-game table). It varies from
move to move, so tournament managers do not see the constant `cp 0` that makes them adjudicate draws, and
it is far from zero whenever material is not level.
"""

from __future__ import annotations

import chess

PIECE_VALUES = {chess.PAWN: 100, chess.KNIGHT: 320, chess.BISHOP: 330, chess.ROOK: 500, chess.QUEEN: 900,
                chess.KING: 0}

# Tables from White's side, rank 8 first (as printed in the source), so index = square ^ 56 for White.
_TABLES = {
    chess.PAWN: (0, 0, 0, 0, 0, 0, 0, 0, 50, 50, 50, 50, 50, 50, 50, 50, 10, 10, 20, 30, 30, 20, 10, 10,
                 5, 5, 10, 25, 25, 10, 5, 5, 0, 0, 0, 20, 20, 0, 0, 0, 5, -5, -10, 0, 0, -10, -5, 5,
                 5, 10, 10, -20, -20, 10, 10, 5, 0, 0, 0, 0, 0, 0, 0, 0),
    chess.KNIGHT: (-50, -40, -30, -30, -30, -30, -40, -50, -40, -20, 0, 0, 0, 0, -20, -40,
                   -30, 0, 10, 15, 15, 10, 0, -30, -30, 5, 15, 20, 20, 15, 5, -30,
                   -30, 0, 15, 20, 20, 15, 0, -30, -30, 5, 10, 15, 15, 10, 5, -30,
                   -40, -20, 0, 5, 5, 0, -20, -40, -50, -40, -30, -30, -30, -30, -40, -50),
    chess.BISHOP: (-20, -10, -10, -10, -10, -10, -10, -20, -10, 0, 0, 0, 0, 0, 0, -10,
                   -10, 0, 5, 10, 10, 5, 0, -10, -10, 5, 5, 10, 10, 5, 5, -10,
                   -10, 0, 10, 10, 10, 10, 0, -10, -10, 10, 10, 10, 10, 10, 10, -10,
                   -10, 5, 0, 0, 0, 0, 5, -10, -20, -10, -10, -10, -10, -10, -10, -20),
    chess.ROOK: (0, 0, 0, 0, 0, 0, 0, 0, 5, 10, 10, 10, 10, 10, 10, 5, -5, 0, 0, 0, 0, 0, 0, -5,
                 -5, 0, 0, 0, 0, 0, 0, -5, -5, 0, 0, 0, 0, 0, 0, -5, -5, 0, 0, 0, 0, 0, 0, -5,
                 -5, 0, 0, 0, 0, 0, 0, -5, 0, 0, 0, 5, 5, 0, 0, 0),
    chess.QUEEN: (-20, -10, -10, -5, -5, -10, -10, -20, -10, 0, 0, 0, 0, 0, 0, -10,
                  -10, 0, 5, 5, 5, 5, 0, -10, -5, 0, 5, 5, 5, 5, 0, -5, 0, 0, 5, 5, 5, 5, 0, -5,
                  -10, 5, 5, 5, 5, 5, 0, -10, -10, 0, 5, 0, 0, 0, 0, -10, -20, -10, -10, -5, -5, -10, -10, -20),
    chess.KING: (-30, -40, -40, -50, -50, -40, -40, -30, -30, -40, -40, -50, -50, -40, -40, -30,
                 -30, -40, -40, -50, -50, -40, -40, -30, -30, -40, -40, -50, -50, -40, -40, -30,
                 -20, -30, -30, -40, -40, -30, -30, -20, -10, -20, -20, -20, -20, -20, -20, -10,
                 20, 20, 0, 0, 0, 0, 20, 20, 20, 30, 10, 0, 0, 10, 30, 20),
}


def static_evaluation(board: chess.Board, color: chess.Color) -> int:
    """Material plus piece-square bonuses of `board` in centipawns, from `color`'s side (positive: better
    for `color`). Only the pieces count: no search, no mobility, no checks."""
    score = 0
    for square, piece in board.piece_map().items():
        index = square ^ 56 if piece.color == chess.WHITE else square
        value = PIECE_VALUES[piece.piece_type] + _TABLES[piece.piece_type][index]
        score += value if piece.color == color else -value
    return score


def score_after(board: chess.Board, move: chess.Move) -> tuple[str, int]:
    """The UCI score (`("mate", 1)` or `("cp", n)`) of playing `move` on `board`, from the mover's side:
    mate 1 if it mates, cp 0 if it ends the game drawn (stalemate, insufficient material), else the
    static evaluation of the position after it."""
    mover = board.turn
    board.push(move)
    try:
        if board.is_checkmate():
            return "mate", 1
        if board.is_stalemate() or board.is_insufficient_material():
            return "cp", 0
        return "cp", static_evaluation(board, mover)
    finally:
        board.pop()
