"""Chess rules through the `chess` package (python-chess), behind the Game protocol.

Moves are `chess.Move` objects; their record form is UCI (`e2e4`, `e7e8q`). A game may start from any
legal position given as FEN; `start` is None for the standard start position. Codecs (Karvonen's
character PGN, one token per move) build on this class.
"""

from __future__ import annotations

from typing import Sequence

import chess

from gamegpt.games.base import Game, IllegalMoveError, Outcome

TERMINATIONS = {
    chess.Termination.CHECKMATE: "checkmate",
    chess.Termination.STALEMATE: "stalemate",
    chess.Termination.INSUFFICIENT_MATERIAL: "insufficient_material",
    chess.Termination.SEVENTYFIVE_MOVES: "seventyfive_moves",
    chess.Termination.FIVEFOLD_REPETITION: "fivefold_repetition",
    chess.Termination.FIFTY_MOVES: "fifty_moves",
    chess.Termination.THREEFOLD_REPETITION: "threefold_repetition",
}


class ChessGame(Game[chess.Move]):
    """A chess position with its history. `board` is the underlying `chess.Board` (read it, don't push on it).

    `outcome()` ends the game only on what needs no claim (mate, stalemate, insufficient material, the
    75-move and fivefold rules) unless `claim_draws` is set, then also once 50 moves have passed without a
    capture or pawn move, or the position on the board has occurred three times (python-chess's
    `is_fifty_moves`/`is_repetition(3)`: a draw claimable now, not one claimable by announcing the next
    move, which costs ~25x more to find). The outcome is computed once per position and cached.
    """

    name = "chess"
    side_names = ("white", "black")

    def __init__(self, fen: str | None = None, *, claim_draws: bool = False) -> None:
        if fen is not None:
            try:
                board = chess.Board(fen)
            except ValueError as exc:
                raise ValueError(f"bad FEN {fen!r}: {exc}") from None
            if not board.is_valid():
                raise ValueError(f"bad FEN {fen!r}: {board.status()!r}")
            if board.fen() == chess.STARTING_FEN:
                fen = None
        self.board = chess.Board(fen) if fen is not None else chess.Board()
        self._start = fen
        self.claim_draws = claim_draws
        self._outcome_key: tuple[int, chess.Move | None] | None = None
        self._outcome: Outcome | None = None

    @classmethod
    def replay(cls, start: str | None, moves: Sequence[str], *, claim_draws: bool = False) -> "ChessGame":
        """The game from `start` (a FEN; None: the standard position) after `moves` (UCI); an illegal move
        raises IllegalMoveError."""
        game = cls(start, claim_draws=claim_draws)
        for text in moves:
            game.push(chess.Move.from_uci(text))
        return game

    def legal_moves(self) -> list[chess.Move]:
        if self.outcome() is not None:
            return []
        return list(self.board.legal_moves)

    def is_legal(self, move: object) -> bool:
        return isinstance(move, chess.Move) and self.outcome() is None and self.board.is_legal(move)

    def push(self, move: chess.Move) -> None:
        if not self.is_legal(move):
            raise IllegalMoveError(f"illegal move {move} in {self.board.fen()}")
        self.board.push(move)

    def pop(self) -> chess.Move:
        return self.board.pop()

    def outcome(self) -> Outcome | None:
        stack = self.board.move_stack
        key = (len(stack), stack[-1] if stack else None)
        if self._outcome_key is not None and key[0] == self._outcome_key[0] and key[1] is self._outcome_key[1]:
            return self._outcome
        self._outcome, self._outcome_key = self._compute_outcome(), key
        return self._outcome

    def _compute_outcome(self) -> Outcome | None:
        result = self.board.outcome()
        if result is None and self.claim_draws:
            if self.board.is_fifty_moves():
                result = chess.Outcome(chess.Termination.FIFTY_MOVES, None)
            elif self.board.is_repetition(3):
                result = chess.Outcome(chess.Termination.THREEFOLD_REPETITION, None)
        if result is None:
            return None
        winner = None if result.winner is None else (0 if result.winner == self._first_mover() else 1)
        return Outcome(winner, TERMINATIONS.get(result.termination, result.termination.name.lower()))

    def can_win(self, side: int) -> bool:
        """False when `side` has too little material to ever mate (python-chess's
        `has_insufficient_material`, as FIDE's rule for a game lost on time)."""
        color = self._first_mover() if side == 0 else not self._first_mover()
        return not self.board.has_insufficient_material(color)

    def _first_mover(self) -> chess.Color:
        return chess.Board(self._start).turn if self._start else chess.WHITE

    @property
    def to_move(self) -> int:
        return 0 if self.board.turn == self._first_mover() else 1

    def copy(self) -> "ChessGame":
        other = ChessGame(self._start, claim_draws=self.claim_draws)
        other.board = self.board.copy()
        return other

    @property
    def history(self) -> list[chess.Move]:
        return list(self.board.move_stack)

    @property
    def start(self) -> str | None:
        return self._start

    def render(self, perspective: chess.Color = chess.WHITE) -> str:
        """The board as text with rank and file labels (White's pieces upper case, `.` empty squares),
        seen from `perspective`'s side."""
        ranks = range(7, -1, -1) if perspective == chess.WHITE else range(8)
        files = list(range(8)) if perspective == chess.WHITE else list(range(7, -1, -1))
        rows = []
        for rank in ranks:
            pieces = (self.board.piece_at(chess.square(f, rank)) for f in files)
            rows.append(f"{rank + 1}  " + " ".join(p.symbol() if p else "." for p in pieces))
        rows.append("   " + " ".join(chess.FILE_NAMES[f] for f in files))
        return "\n".join(rows)

    def move_to_str(self, move: chess.Move) -> str:
        return move.uci()

    def move_from_str(self, text: str) -> chess.Move:
        try:
            return chess.Move.from_uci(text.strip())
        except ValueError:
            pass
        try:
            return self.board.parse_san(text.strip())
        except ValueError:
            raise ValueError(f"not a move in UCI or legal SAN here: {text!r}") from None
