"""What each probed position is: the board square by square in two framings, side to move, check, and for
tic-tac-toe the value of the position under perfect play.

Square classes, "white/black" framing (absolute colours):
  tic-tac-toe: 0 empty, 1 X, 2 O (9 squares, cells 0-8 row by row);
  chess: 0 empty, 1-6 White P N B R Q K, 7-12 Black p n b r q k (64 squares, a1 = 0 ... h8 = 63).
"mine/theirs" framing: the same with "mine" (the side to move) in place of the first colour.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from gamegpt.games.base import Game
from gamegpt.games.tictactoe import EMPTY, TicTacToe, winner_of

TICTACTOE_CLASSES = (".", "X", "O")
TICTACTOE_RELATIVE_CLASSES = (".", "mine", "theirs")
CHESS_CLASSES = (".", "P", "N", "B", "R", "Q", "K", "p", "n", "b", "r", "q", "k")
CHESS_RELATIVE_CLASSES = (".", "myP", "myN", "myB", "myR", "myQ", "myK", "thP", "thN", "thB", "thR", "thQ", "thK")
VALUE_CLASSES = ("lost", "drawn", "won")
"""The tic-tac-toe value of a position under perfect play, for the side to move."""


class BoardSpec:
    """The board of one game: its squares, classes and names."""

    def __init__(self, game: str) -> None:
        if game not in ("tictactoe", "chess"):
            raise ValueError(f"no board labels for game {game!r}")
        self.game = game
        self.squares = 9 if game == "tictactoe" else 64
        self.classes = TICTACTOE_CLASSES if game == "tictactoe" else CHESS_CLASSES
        self.relative_classes = TICTACTOE_RELATIVE_CLASSES if game == "tictactoe" else CHESS_RELATIVE_CLASSES
        self.side = 3 if game == "tictactoe" else 8
        """Squares in a row of the board."""

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def square_name(self, square: int) -> str:
        if self.game == "tictactoe":
            return str(square)
        return "abcdefgh"[square % 8] + str(square // 8 + 1)

    def class_names(self, framing: str) -> tuple[str, ...]:
        return self.classes if framing == "white_black" else self.relative_classes

    def feature_name(self, square: int, cls: int, framing: str = "white_black") -> str:
        """`X@4`, `N@f3`, `empty@e4`."""
        name = self.class_names(framing)[cls]
        return f"{'empty' if name == '.' else name}@{self.square_name(square)}"


def board_classes(game: Game[Any]) -> list[int]:
    """The board in the white/black framing (see the module docstring), one class per square."""
    if isinstance(game, TicTacToe):
        return [0 if c == EMPTY else 1 + c for c in game.cells]
    board = game.board  # type: ignore[attr-defined]
    out = [0] * 64
    for square, piece in board.piece_map().items():
        out[square] = piece.piece_type + (0 if piece.color else 6)
    return out


def to_relative(board: list[int], side_to_move: int, game: str) -> list[int]:
    """The same board in the mine/theirs framing: the side to move's pieces are "mine"."""
    if side_to_move == 0:
        return list(board)
    if game == "tictactoe":
        return [0 if c == 0 else 3 - c for c in board]
    return [0 if c == 0 else (c + 6 if c <= 6 else c - 6) for c in board]


def to_absolute(relative: list[int], side_to_move: int, game: str) -> list[int]:
    """The inverse of `to_relative` (it is its own inverse)."""
    return to_relative(relative, side_to_move, game)


@lru_cache(maxsize=None)
def _tictactoe_value(cells: tuple[int, ...], to_move: int) -> int:
    """Minimax value for the side to move: -1 lost, 0 drawn, 1 won."""
    winner = winner_of(cells)
    if winner is not None:
        return 1 if winner == to_move else -1
    empty = [i for i, c in enumerate(cells) if c == EMPTY]
    if not empty:
        return 0
    best = -1
    for cell in empty:
        after = list(cells)
        after[cell] = to_move
        best = max(best, -_tictactoe_value(tuple(after), 1 - to_move))
        if best == 1:
            break
    return best


def tictactoe_value(game: TicTacToe) -> int:
    """The position's value under perfect play for the side to move, as an index of VALUE_CLASSES."""
    return _tictactoe_value(tuple(game.cells), game.to_move) + 1


def position_labels(game: Game[Any]) -> dict[str, Any]:
    """Every label of one position: board (white/black), board_relative, side_to_move, and check (chess) or
    value (tic-tac-toe)."""
    board = board_classes(game)
    side = game.to_move
    game_name = "tictactoe" if isinstance(game, TicTacToe) else "chess"
    labels: dict[str, Any] = {"board": board, "board_relative": to_relative(board, side, game_name),
                              "side_to_move": side}
    if game_name == "chess":
        labels["check"] = int(game.board.is_check())  # type: ignore[attr-defined]
    else:
        labels["value"] = tictactoe_value(game)  # type: ignore[arg-type]
    return labels


SCALAR_TARGETS = {"tictactoe": {"side_to_move": ("X", "O"), "value": VALUE_CLASSES},
                  "chess": {"side_to_move": ("white", "black"), "check": ("no", "yes")}}
"""The one-number labels probed beside the board, with their class names."""
