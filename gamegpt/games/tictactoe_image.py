"""Tic-tac-toe boards as pictures: a grey-scale image of the grid with its X and O marks drawn in pixels.

The image models of the platonic study read these instead of the move text: they see the position, not
the cells as tokens. `render_board(cells)` draws a (size, size) float32 array, ink 1.0 on paper 0.0: two
grid lines each way, an X as two diagonal strokes, an O as a ring. `read_board(image)` reads the marks
back from the pixels (ink at a cell's centre: X; ink on the ring but not at the centre: O; no ink: empty),
so a test can check that every picture shows what its board says.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gamegpt.games.tictactoe import EMPTY

CELL_PIXELS = 10
LINE_PIXELS = 1
IMAGE_PIXELS = 3 * CELL_PIXELS + 2 * LINE_PIXELS  # 32
STROKE = 0.75
"""Half the width of a mark's stroke, in pixels."""


def _cell_origin(cell: int) -> tuple[int, int]:
    """Top-left pixel (row, column) of a cell's square."""
    row, column = divmod(cell, 3)
    return row * (CELL_PIXELS + LINE_PIXELS), column * (CELL_PIXELS + LINE_PIXELS)


def _mark(side: int) -> np.ndarray:
    """A (CELL_PIXELS, CELL_PIXELS) boolean mask of one mark, drawn by distance from its strokes."""
    centre = (CELL_PIXELS - 1) / 2
    y, x = np.mgrid[0:CELL_PIXELS, 0:CELL_PIXELS].astype(np.float64) - centre
    reach = centre - 1.5  # a margin of paper around the mark
    if side == 0:  # X: |x| = |y| within the square of half-side `reach`
        on_diagonals = np.minimum(np.abs(x - y), np.abs(x + y)) / np.sqrt(2) <= STROKE
        return on_diagonals & (np.maximum(np.abs(x), np.abs(y)) <= reach + 0.5)
    return np.abs(np.hypot(x, y) - reach) <= STROKE  # O: a ring of radius `reach`


_MARKS = (_mark(0), _mark(1))


def render_board(cells: Sequence[int]) -> np.ndarray:
    """The picture of a board (9 cells, 0 = X, 1 = O, -1 = empty): an (IMAGE_PIXELS, IMAGE_PIXELS) float32
    array with ink 1.0 (grid lines and marks) on paper 0.0."""
    if len(cells) != 9 or any(c not in (EMPTY, 0, 1) for c in cells):
        raise ValueError(f"a tic-tac-toe board is 9 cells of -1, 0 or 1, got {list(cells)!r}")
    image = np.zeros((IMAGE_PIXELS, IMAGE_PIXELS), dtype=np.float32)
    for line in (1, 2):
        at = line * CELL_PIXELS + (line - 1) * LINE_PIXELS
        image[at:at + LINE_PIXELS, :] = 1.0
        image[:, at:at + LINE_PIXELS] = 1.0
    for cell, side in enumerate(cells):
        if side != EMPTY:
            top, left = _cell_origin(cell)
            image[top:top + CELL_PIXELS, left:left + CELL_PIXELS][_MARKS[side]] = 1.0
    return image


def render_boards(boards: Sequence[Sequence[int]]) -> np.ndarray:
    """Pictures of many boards: (len(boards), 1, IMAGE_PIXELS, IMAGE_PIXELS) float32, channel-first for a CNN."""
    return np.stack([render_board(cells) for cells in boards])[:, None]


def read_board(image: np.ndarray) -> list[int]:
    """The board a picture shows, read from its pixels alone (the inverse of `render_board`)."""
    image = np.asarray(image)
    if image.shape != (IMAGE_PIXELS, IMAGE_PIXELS):
        raise ValueError(f"a board picture is {IMAGE_PIXELS}x{IMAGE_PIXELS} pixels, got {image.shape}")
    cells = []
    middle = CELL_PIXELS // 2
    for cell in range(9):
        top, left = _cell_origin(cell)
        square = image[top:top + CELL_PIXELS, left:left + CELL_PIXELS] > 0.5
        if square[middle - 1:middle + 1, middle - 1:middle + 1].any():
            cells.append(0)
        elif square.any():
            cells.append(1)
        else:
            cells.append(EMPTY)
    return cells
