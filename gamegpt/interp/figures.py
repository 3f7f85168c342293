"""Boards drawn with matplotlib: a grid of squares with marks or pieces, optionally shaded by a value."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gamegpt.games.chess_codecs import MoveTokenCodec
from gamegpt.interp.labels import BoardSpec

_CHESS_SYMBOLS = dict(zip(".PNBRQKpnbrqk", " ♙♘♗♖♕♔♟♞♝♜♛♚"))


def symbol(spec: BoardSpec, cls: int, framing: str = "white_black") -> str:
    """The mark of a square class: X/O for tic-tac-toe, a chess symbol for chess (mine = white symbols)."""
    if spec.game == "tictactoe":
        return ("", "X", "O")[cls] if framing == "white_black" else ("", "m", "t")[cls]
    return _CHESS_SYMBOLS[spec.classes[cls]]


def draw_board(ax: Any, spec: BoardSpec, board: Sequence[int], *, title: str = "", shade: Sequence[float] | None = None,
               cmap: str = "viridis", vmin: float = 0.0, vmax: float = 1.0, framing: str = "white_black",
               highlight: Sequence[int] = (), colorbar: bool = False) -> Any:
    """Draw `board` (a class per square) on `ax`; rank 8 / row 0 at the top. `shade` colours each square
    (e.g. the probe's confidence); `highlight` outlines squares in red."""
    side = spec.side
    grid = np.zeros((side, side))
    image = None
    if shade is not None:
        for square in range(spec.squares):
            r, c = _cell(spec, square)
            grid[r, c] = shade[square]
        image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax)
    else:
        light = np.indices((side, side)).sum(axis=0) % 2 if spec.game == "chess" else np.zeros((side, side))
        ax.imshow(light, cmap="Greys", vmin=-3, vmax=4)
    for square in range(spec.squares):
        r, c = _cell(spec, square)
        text = symbol(spec, int(board[square]), framing)
        if text.strip():
            colour = "black"
            if shade is not None:  # white on dark squares of the colour map, black on light ones
                value = (shade[square] - vmin) / max(1e-9, vmax - vmin)
                red, green, blue, _ = image.cmap(float(np.clip(value, 0.0, 1.0)))  # type: ignore[union-attr]
                colour = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"
            ax.text(c, r, text, ha="center", va="center", fontsize=22 if spec.game == "tictactoe" else 11,
                    color=colour, fontweight="bold")
        if square in highlight:
            import matplotlib.patches as patches

            ax.add_patch(patches.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(side))
    ax.set_yticks(range(side))
    if spec.game == "chess":
        ax.set_xticklabels(list("abcdefgh"), fontsize=6)
        ax.set_yticklabels([str(8 - r) for r in range(8)], fontsize=6)
    else:
        ax.set_xticklabels([])
        ax.set_yticklabels([])
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=8)
    if colorbar and image is not None:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return image


def move_mass_by_square(move_probabilities: np.ndarray) -> list[float]:
    """For a one-token-per-move chess model: the probability of moving from each square (a1 ... h8), from its
    probabilities over the `MoveTokenCodec` move tokens (the first `N_MOVES` of its vocabulary)."""
    moves = MoveTokenCodec.vocabulary_moves()
    mass = np.zeros(64)
    np.add.at(mass, [move.from_square for move in moves], np.asarray(move_probabilities)[:len(moves)])
    return mass.tolist()


def _cell(spec: BoardSpec, square: int) -> tuple[int, int]:
    if spec.game == "tictactoe":
        return square // 3, square % 3
    return 7 - square // 8, square % 8
