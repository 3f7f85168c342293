"""The Newell–Simon tic-tac-toe player: ordered rules, the first rule that applies gives the moves.

Rules, in order: win, block, fork, block fork, center, opposite corner, empty corner, empty side.
Block fork is read precisely (a naive "make any two-in-a-row" loses as O):
  1. if the opponent has exactly one fork square, take it;
  2. else the moves that make a two-in-a-row and leave the opponent no fork square;
  3. else the moves that make a two-in-a-row whose forced block does not give the opponent a fork;
  4. else the opponent's fork squares.
Every cell allowed by the first rule that applies is a candidate; `choose` samples one uniformly.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from gamegpt.games.base import Game
from gamegpt.games.tictactoe import CENTER, CORNERS, EMPTY, LINES, OPPOSITE_CORNER, SIDES, TicTacToe, winner_of
from gamegpt.players.base import Player

RULES = ("win", "block", "fork", "block_fork", "center", "opposite_corner", "empty_corner", "empty_side")


def winning_cells(cells: Sequence[int], side: int) -> set[int]:
    """Empty cells where `side` would complete a line."""
    found = set()
    for line in LINES:
        marks = [cells[c] for c in line]
        if marks.count(side) == 2 and marks.count(EMPTY) == 1:
            found.add(line[marks.index(EMPTY)])
    return found


def _with(cells: Sequence[int], cell: int, side: int) -> list[int]:
    after = list(cells)
    after[cell] = side
    return after


def fork_cells(cells: Sequence[int], side: int) -> set[int]:
    """Empty cells where a move by `side` creates two or more different winning cells."""
    empty = [c for c in range(9) if cells[c] == EMPTY]
    return {c for c in empty if len(winning_cells(_with(cells, c, side), side)) >= 2}


def _block_fork(cells: Sequence[int], me: int) -> set[int]:
    opponent = 1 - me
    opponent_forks = fork_cells(cells, opponent)
    if not opponent_forks:
        return set()
    if len(opponent_forks) == 1:
        return opponent_forks
    empty = [c for c in range(9) if cells[c] == EMPTY]
    threats: dict[int, tuple[list[int], int]] = {}
    for move in empty:
        after = _with(cells, move, me)
        made = winning_cells(after, me)
        if len(made) == 1:
            threats[move] = (after, next(iter(made)))
    no_fork_left = {m for m, (after, _) in threats.items() if not fork_cells(after, opponent)}
    if no_fork_left:
        return no_fork_left
    safe_block = {m for m, (after, block) in threats.items() if block not in fork_cells(after, opponent)}
    if safe_block:
        return safe_block
    return opponent_forks


def candidate_moves(cells: Sequence[int], me: int) -> tuple[str, list[int]]:
    """The first rule that applies for `me` (0 = X, 1 = O) on `cells`, and its cells in ascending order."""
    if winner_of(cells) is not None or EMPTY not in cells:
        return "none", []
    opponent = 1 - me
    empty = {c for c in range(9) if cells[c] == EMPTY}
    rules: list[tuple[str, Any]] = [
        ("win", lambda: winning_cells(cells, me)),
        ("block", lambda: winning_cells(cells, opponent)),
        ("fork", lambda: fork_cells(cells, me)),
        ("block_fork", lambda: _block_fork(cells, me)),
        ("center", lambda: {CENTER} & empty),
        ("opposite_corner", lambda: {OPPOSITE_CORNER[c] for c in CORNERS if cells[c] == opponent} & empty),
        ("empty_corner", lambda: set(CORNERS) & empty),
        ("empty_side", lambda: set(SIDES) & empty),
    ]
    for rule, cells_for_rule in rules:
        moves = cells_for_rule()
        if moves:
            return rule, sorted(moves)
    raise AssertionError("an empty cell always satisfies a rule")  # unreachable: empty_side or corner


class NewellSimonPlayer(Player):
    """The rule-based perfect tic-tac-toe player; ties between candidate cells are broken by a seeded draw."""

    name = "newell-simon"

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def reset(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def candidates(self, game: TicTacToe) -> list[int]:
        """Every cell the first applicable rule allows."""
        return candidate_moves(game.cells, game.to_move)[1]

    def choose(self, game: Game[Any]) -> int:
        if not isinstance(game, TicTacToe):
            raise TypeError("the Newell-Simon player plays tic-tac-toe only")
        return self.rng.choice(self.candidates(game))


def enumerate_games(newell_simon_side: int) -> list[tuple[int, ...]]:
    """Every game in which `newell_simon_side` follows the rules (any candidate) and the other side plays
    every legal move."""
    games: list[tuple[int, ...]] = []
    game = TicTacToe()

    def walk() -> None:
        if game.outcome() is not None:
            games.append(tuple(game.history))
            return
        if game.to_move == newell_simon_side:
            moves = candidate_moves(game.cells, game.to_move)[1]
        else:
            moves = game.legal_moves()
        for move in moves:
            game.push(move)
            walk()
            game.pop()

    walk()
    return games


def enumerate_newell_simon_games() -> list[tuple[int, ...]]:
    """Every game in which at least one side follows the Newell–Simon rules and the other plays every legal
    move: the union over both sides, without duplicates, in a fixed order."""
    return sorted(set(enumerate_games(0)) | set(enumerate_games(1)))
