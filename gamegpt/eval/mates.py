"""Mate in one: does a player take a checkmate that is on the board?

A model trained on over-the-board games rarely sees a game end in mate (about 2 % of the TWIC games do; the
rest end by resignation or agreement), so it can win material and then never finish. This measure takes
positions of held-out games where the side to move has a mate in one (found by python-chess alone: no engine,
no labels to compute) and counts how often a player's move mates. The chance a uniformly random legal move
mates is reported beside it, so "found 12 %" can be read against what luck gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import chess

from gamegpt.arena.play import derive_seed
from gamegpt.arena.records import GameRecord
from gamegpt.eval.agreement import seeded_answer
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import Player


@dataclass(frozen=True)
class MatePosition:
    """A position of a held-out game (its start and the moves before it, UCI) whose side to move can mate at
    once with any of `mating_moves`, out of `legal_moves` legal moves."""

    start: str | None
    history: tuple[str, ...]
    mating_moves: tuple[str, ...]
    legal_moves: int

    def game(self) -> ChessGame:
        return ChessGame.replay(self.start, self.history)


@dataclass(frozen=True)
class MateResult:
    """How often one player mated in `positions` mate-in-one positions; `random_expected` is how many a
    uniformly random legal mover would mate in on average."""

    label: str
    positions: int
    found: int
    random_expected: float

    def to_dict(self) -> dict[str, Any]:
        share = (lambda n: n / self.positions if self.positions else None)
        return {"label": self.label, "positions": self.positions, "found": self.found,
                "found_rate": share(self.found), "random_rate": share(self.random_expected)}


def mating_moves(board: chess.Board) -> list[chess.Move]:
    """Every legal move of `board` that checkmates."""
    mates = []
    for move in board.legal_moves:
        if not board.gives_check(move):
            continue
        board.push(move)
        if board.is_checkmate():
            mates.append(move)
        board.pop()
    return mates


def find_mate_positions(records: Iterable[GameRecord], *, count: int) -> list[MatePosition]:
    """Up to `count` mate-in-one positions, the first of each chess record that has one, in record order. A
    record whose moves stop being legal is used up to that point."""
    found: list[MatePosition] = []
    for record in records:
        if len(found) >= count:
            break
        if record.game != "chess":
            continue
        board = ChessGame(record.start).board
        for ply, text in enumerate(record.moves):
            mates = mating_moves(board)
            if mates:
                found.append(MatePosition(record.start, tuple(record.moves[:ply]), tuple(m.uci() for m in mates),
                                          board.legal_moves.count()))
                break
            move = chess.Move.from_uci(text)
            if move not in board.legal_moves:
                break
            board.push(move)
    return found


def mate_in_one_rate(player: Player, positions: Sequence[MatePosition], *, label: str, seed: int = 0) -> MateResult:
    """How often `player` (reset with a seed per position) plays a mating move. An illegal answer counts as
    a miss."""
    found = 0
    for number, position in enumerate(positions):
        found += seeded_answer(player, position.game(), derive_seed(seed, number)) in position.mating_moves
    expected = sum(len(p.mating_moves) / p.legal_moves for p in positions)
    return MateResult(label, len(positions), found, expected)


def format_mate_table(results: Sequence[MateResult]) -> str:
    width = max([len(r.label) for r in results] + [6])
    lines = [f"{'player':<{width}}  {'positions':>9}  {'mated':>7}  {'a random mover':>14}"]
    for r in results:
        data = r.to_dict()
        lines.append(f"{r.label:<{width}}  {r.positions:>9}  {100 * (data['found_rate'] or 0):>6.1f}%  "
                     f"{100 * (data['random_rate'] or 0):>13.1f}%")
    return "\n".join(lines)
