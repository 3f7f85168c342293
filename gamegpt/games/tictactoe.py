"""Tic-tac-toe: rules and the one-token-per-cell codec.

Cells are numbered 0-8 row by row::

    0 | 1 | 2
    3 | 4 | 5
    6 | 7 | 8

X moves first (side 0), O second (side 1). A move is the `int` of the cell.
"""

from __future__ import annotations

from typing import Sequence

from gamegpt.games.base import Codec, Game, IllegalMoveError, Outcome

LINES: tuple[tuple[int, int, int], ...] = (
    (0, 1, 2), (3, 4, 5), (6, 7, 8),
    (0, 3, 6), (1, 4, 7), (2, 5, 8),
    (0, 4, 8), (2, 4, 6),
)
CORNERS = (0, 2, 6, 8)
SIDES = (1, 3, 5, 7)
CENTER = 4
OPPOSITE_CORNER = {0: 8, 2: 6, 6: 2, 8: 0}
MARKS = ("X", "O")
EMPTY = -1


def winner_of(cells: Sequence[int]) -> int | None:
    """The side (0 = X, 1 = O) with three in a row on `cells`, else None."""
    for a, b, c in LINES:
        if cells[a] != EMPTY and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return None


class TicTacToe(Game[int]):
    """A tic-tac-toe position with its history."""

    name = "tictactoe"
    side_names = ("x", "o")

    def __init__(self, moves: Sequence[int] = ()) -> None:
        self.cells: list[int] = [EMPTY] * 9
        self._history: list[int] = []
        for move in moves:
            self.push(move)

    def legal_moves(self) -> list[int]:
        if winner_of(self.cells) is not None:
            return []
        return [cell for cell in range(9) if self.cells[cell] == EMPTY]

    def push(self, move: int) -> None:
        if not isinstance(move, int) or isinstance(move, bool) or move not in self.legal_moves():
            raise IllegalMoveError(f"illegal tic-tac-toe move {move!r} after {self._history}")
        self.cells[move] = self.to_move
        self._history.append(move)

    def pop(self) -> int:
        move = self._history.pop()
        self.cells[move] = EMPTY
        return move

    def outcome(self) -> Outcome | None:
        winner = winner_of(self.cells)
        if winner is not None:
            return Outcome(winner, "three_in_a_row")
        if len(self._history) == 9:
            return Outcome(None, "board_full")
        return None

    def copy(self) -> "TicTacToe":
        return TicTacToe(self._history)

    @property
    def history(self) -> list[int]:
        return list(self._history)

    @property
    def to_move(self) -> int:
        return len(self._history) % 2

    def move_to_str(self, move: int) -> str:
        return str(move)

    def move_from_str(self, text: str) -> int:
        text = text.strip()
        if len(text) != 1 or text not in "012345678":
            raise ValueError(f"not a tic-tac-toe cell (0-8): {text!r}")
        return int(text)

    def render(self) -> str:
        """The board as three text rows, empty cells shown by their number."""
        marks = [MARKS[c] if c != EMPTY else str(i) for i, c in enumerate(self.cells)]
        rows = [" | ".join(marks[r * 3:r * 3 + 3]) for r in range(3)]
        return "\n---------\n".join(rows)

    def __repr__(self) -> str:
        return f"TicTacToe({self._history})"


class TicTacToeCodec(Codec):
    """One token per cell (0-8), `bos` = 9 starts a game, `eos` = 10 ends a finished one."""

    name = "tictactoe-cells"
    vocab_size = 11
    bos = 9
    eos = 10
    max_move_tokens = 1
    _symbols = "012345678;."

    def new_game(self, start: str | None = None) -> TicTacToe:
        if start is not None:
            raise ValueError("tic-tac-toe games always start from the empty board")
        return TicTacToe()

    def encode_moves(self, game_before: Game[int], moves: Sequence[int]) -> list[int]:
        game = game_before.copy()
        for move in moves:
            game.push(move)  # raises IllegalMoveError
        return [int(m) for m in moves]

    def decode_game(self, tokens: Sequence[int]) -> tuple[str | None, list[int]]:
        tokens = list(tokens)
        if not tokens or tokens[0] != self.bos:
            raise ValueError("an encoded tic-tac-toe game starts with the bos token")
        body = tokens[1:]
        if body and body[-1] == self.eos:
            body = body[:-1]
        game = TicTacToe()
        for token in body:
            try:
                game.push(token)
            except IllegalMoveError as exc:
                raise ValueError(str(exc)) from None
        return None, game.history

    def move_token_sequences(self, game: Game[int]) -> dict[tuple[int, ...], int]:
        return {(move,): move for move in game.legal_moves()}

    def parse_move(self, game: Game[int], tokens: Sequence[int]) -> tuple[int | None, bool]:
        if not tokens:
            return None, False
        token = tokens[0]
        return (token if game.is_legal(token) else None), True

    def tokens_to_text(self, tokens: Sequence[int]) -> str:
        return "".join(self._symbols[t] if 0 <= t < len(self._symbols) else "?" for t in tokens)
