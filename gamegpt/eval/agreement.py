"""Top-1 agreement with Stockfish: a cheap strength proxy for chess checkpoints.

One position per held-out game, at a ply drawn from (seed, game number) between `min_ply` and the game's
last move, is labelled with Stockfish's best move at a fixed node count (Skill Level 20, 1 thread: the
same label every run). A player's agreement is the share of positions where its move is that best move;
its agreement with the move actually played in the game is reported beside it. Far cheaper than a
tournament, and comparable between checkpoints labelled with the same positions and nodes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import chess

from gamegpt.arena.play import derive_seed
from gamegpt.arena.records import GameRecord
from gamegpt.games.base import InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import Player
from gamegpt.players.limits import SearchLimits
from gamegpt.players.uci import UciEngineProcess, find_stockfish


@dataclass(frozen=True)
class LabelledPosition:
    """A position of a held-out game (its start and the moves before it, UCI), the move played there and
    Stockfish's best move."""

    start: str | None
    history: tuple[str, ...]
    played: str
    best: str

    def game(self) -> ChessGame:
        return ChessGame.replay(self.start, self.history)


@dataclass(frozen=True)
class AgreementResult:
    """How often one player's move is Stockfish's best move, and the move played, over `positions`."""

    label: str
    positions: int
    stockfish_top1: int
    played_top1: int

    def to_dict(self) -> dict[str, Any]:
        share = (lambda n: n / self.positions if self.positions else None)
        return {"label": self.label, "positions": self.positions, "stockfish_top1": share(self.stockfish_top1),
                "played_top1": share(self.played_top1), "stockfish_top1_count": self.stockfish_top1}


def label_positions(records: Sequence[GameRecord], *, count: int, nodes: int = 20_000, seed: int = 0,
                    min_ply: int = 10, stockfish: str | None = None) -> list[LabelledPosition]:
    """Up to `count` labelled positions, one per record long enough (at least `min_ply` + 1 moves), in
    record order. Stockfish (found as `find_stockfish` does) searches `nodes` nodes per position."""
    chosen: list[tuple[str | None, tuple[str, ...], str]] = []
    for number, record in enumerate(records):
        if len(chosen) >= count:
            break
        if record.game != "chess" or len(record.moves) <= min_ply:
            continue
        ply = random.Random(derive_seed(seed, number)).randrange(min_ply, len(record.moves))
        chosen.append((record.start, tuple(record.moves[:ply]), record.moves[ply]))
    labelled = []
    with UciEngineProcess([find_stockfish(stockfish)]) as engine:
        engine.set_option("Threads", 1)
        for start, history, played in chosen:
            engine.new_game()  # an empty hash: the label does not depend on the positions before it
            board = ChessGame(start).board
            engine.position(board.fen() if start is not None else None, history)
            white = (board.turn == chess.WHITE) == (len(history) % 2 == 0)
            best = engine.go(SearchLimits(nodes=nodes), white_to_move=white).text
            labelled.append(LabelledPosition(start, history, played, best))
    return labelled


def seeded_answer(player: Player, game: ChessGame, seed: int) -> str:
    """`player`'s move in `game` (UCI, or the illegal text it gave), after a reset with `seed`."""
    player.reset(seed)
    move = player.choose(game)
    return move.text if isinstance(move, InvalidMove) else move.uci()


def top1_agreement(player: Player, positions: Sequence[LabelledPosition], *, label: str, seed: int = 0) -> AgreementResult:
    """The share of `positions` where `player` (reset with a seed per position) plays Stockfish's best move,
    and the move played in the game. An illegal answer counts as disagreement."""
    stockfish = played = 0
    for number, position in enumerate(positions):
        text = seeded_answer(player, position.game(), derive_seed(seed, number))
        stockfish += text == position.best
        played += text == position.played
    return AgreementResult(label, len(positions), stockfish, played)


def format_agreement_table(results: Sequence[AgreementResult]) -> str:
    width = max([len(r.label) for r in results] + [6])
    lines = [f"{'player':<{width}}  {'positions':>9}  {'= Stockfish best':>16}  {'= move played':>13}"]
    for r in results:
        data = r.to_dict()
        lines.append(f"{r.label:<{width}}  {r.positions:>9}  {100 * (data['stockfish_top1'] or 0):>15.1f}%  "
                     f"{100 * (data['played_top1'] or 0):>12.1f}%")
    return "\n".join(lines)
