"""The board pictures of the platonic study, and the CNN that reads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gamegpt.core.board_cnn import BoardCNN, BoardCNNConfig
from gamegpt.errors import ConfigError
from gamegpt.games.tictactoe import TicTacToe
from gamegpt.games.tictactoe_image import CELL_PIXELS, IMAGE_PIXELS, LINE_PIXELS, read_board, render_board, render_boards


def _reachable_boards() -> list[tuple[int, ...]]:
    seen: set[tuple[int, ...]] = set()
    stack = [TicTacToe()]
    while stack:
        game = stack.pop()
        cells = tuple(game.cells)
        if cells in seen:
            continue
        seen.add(cells)
        for move in game.legal_moves():
            stack.append(TicTacToe(game.history + [move]))
    return sorted(seen)


def test_every_reachable_board_is_drawn_as_it_is() -> None:
    boards = _reachable_boards()
    assert len(boards) == 5478  # every position of tic-tac-toe, the empty board included
    pictures = {}
    for cells in boards:
        image = render_board(cells)
        assert image.shape == (IMAGE_PIXELS, IMAGE_PIXELS) and image.dtype == np.float32
        assert read_board(image) == list(cells)
        pictures[image.tobytes()] = cells
    assert len(pictures) == len(boards)  # no two boards share a picture


def test_the_pixels_of_grid_and_marks() -> None:
    empty = render_board([-1] * 9)
    grid = 2 * 2 * IMAGE_PIXELS * LINE_PIXELS - 4 * LINE_PIXELS ** 2
    assert empty.sum() == grid  # only the grid lines are inked
    assert empty[CELL_PIXELS, :].all() and empty[:, CELL_PIXELS].all()
    board = [0, 1, -1, -1, -1, -1, -1, -1, 1]
    image = render_board(board)
    x_square = image[:CELL_PIXELS, :CELL_PIXELS]
    o_square = image[:CELL_PIXELS, CELL_PIXELS + LINE_PIXELS:2 * CELL_PIXELS + LINE_PIXELS]
    middle = CELL_PIXELS // 2
    assert x_square[middle, middle] == 1.0 and x_square[2, 2] == 1.0 and x_square[2, CELL_PIXELS - 3] == 1.0
    assert x_square[0, middle] == 0.0  # the X's arms do not reach the middle of the edge
    assert o_square[middle, middle] == 0.0 and o_square[1, middle] == 1.0 and o_square[middle, 1] == 1.0
    corner = image[-CELL_PIXELS:, -CELL_PIXELS:]
    assert np.array_equal(corner, o_square)  # the same mark looks the same in any cell
    assert image[:CELL_PIXELS, -CELL_PIXELS:].sum() == 0  # an empty cell holds no ink
    stacked = render_boards([board, [-1] * 9])
    assert stacked.shape == (2, 1, IMAGE_PIXELS, IMAGE_PIXELS) and np.array_equal(stacked[0, 0], image)
    with pytest.raises(ValueError):
        render_board([0, 1, 2, -1, -1, -1, -1, -1, -1])


def test_the_cnn_gives_a_logit_per_cell_and_every_layer() -> None:
    torch.manual_seed(0)
    model = BoardCNN(BoardCNNConfig())
    images = torch.from_numpy(render_boards([[-1] * 9, [0, -1, -1, -1, 1, -1, -1, -1, -1]]))
    logits = model(images)
    assert logits.shape == (2, 9)
    features = model.features(images)
    assert [f.shape[1] for f in features] == [16 * 16 * 16, 32 * 8 * 8, 128, 9]
    assert torch.allclose(features[-1], logits)
    with pytest.raises(ValueError):
        model(images[:, 0])
    with pytest.raises(ConfigError):
        BoardCNNConfig(image_pixels=30)
