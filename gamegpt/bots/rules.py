"""When the bot resigns, offers a draw or accepts one (the config's `resign:` and `draw:` sections, both off
by default), and the in-game chat commands.

The model has no value head, so "the evaluation" is the static one the UCI engine reports
(`engine.evaluation.static_evaluation`: material and piece placement, in centipawns from the bot's side),
recorded at each of the bot's turns. A position is *dead drawn* here when no pawn is left and each side has
at most one bishop or knight besides its king: no side can force mate (Lichess itself ends only the games
where mate is impossible, such as king against king and bishop).
"""

from __future__ import annotations

import chess

from gamegpt.bots.config import DrawRules, ResignRules
from gamegpt.engine.evaluation import static_evaluation

COMMANDS = ("help", "name", "howto", "eval", "queue")
MAX_COMMAND_ANSWERS = 30
"""A game answers at most this many chat commands (a flood gets silence, not a 429 on chat)."""


def dead_drawn(board: chess.Board) -> bool:
    """No pawns, no rooks or queens, and at most one bishop or knight a side (or insufficient material)."""
    if board.is_insufficient_material():
        return True
    if board.pawns or board.rooks or board.queens:
        return False
    return all(chess.popcount(board.occupied_co[color] & (board.knights | board.bishops)) <= 1
               for color in chess.COLORS)


class GameJudgement:
    """The evaluations at the bot's turns in one game, and what the rules make of them."""

    def __init__(self, color: chess.Color, resign: ResignRules, draw: DrawRules) -> None:
        self.color = color
        self.resign_rules = resign
        self.draw_rules = draw
        self.scores: dict[int, int] = {}
        """Ply -> the static evaluation at the bot's turn (a position seen twice, after a reconnect, counts once)."""
        self.last_offer_ply: int | None = None

    def record(self, board: chess.Board) -> int:
        """Note the evaluation of `board` (the bot to move) and return it."""
        score = static_evaluation(board, self.color)
        self.scores[len(board.move_stack)] = score
        return score

    def _recent(self, count: int, before_ply: int) -> list[int]:
        plies = sorted(p for p in self.scores if p <= before_ply)[-count:]
        return [self.scores[p] for p in plies]

    def should_resign(self, board: chess.Board) -> bool:
        """Whether the evaluation has been at most `resign.score` at the last `resign.moves` turns."""
        rules = self.resign_rules
        if not rules.enabled:
            return False
        recent = self._recent(rules.moves, len(board.move_stack))
        return len(recent) >= rules.moves and all(score <= rules.score for score in recent)

    def draw_worthy(self, board: chess.Board) -> bool:
        """Whether the bot would agree to a draw in `board`: dead drawn (`draw.dead_draws`), or level within
        `draw.score` at the last `draw.moves` turns with at most `draw.max_pieces` pieces."""
        rules = self.draw_rules
        if not rules.enabled:
            return False
        if rules.dead_draws and dead_drawn(board):
            return True
        if chess.popcount(board.occupied) > rules.max_pieces:
            return False
        recent = self._recent(rules.moves, len(board.move_stack))
        return len(recent) >= rules.moves and all(abs(score) <= rules.score for score in recent)

    def should_offer_draw(self, board: chess.Board) -> bool:
        """Offer a draw with the move now: draw-worthy, and no offer of ours in the last `draw.moves` turns."""
        ply = len(board.move_stack)
        if self.last_offer_ply is not None and ply - self.last_offer_ply < 2 * self.draw_rules.moves:
            return False
        return self.draw_worthy(board)


def command_of(text: str) -> str | None:
    """The command a chat line asks for (`!eval` -> "eval"), or None when it is not one of ours."""
    words = text.strip().split()
    if not words or not words[0].startswith("!"):
        return None
    name = words[0][1:].lower()
    return name if name in COMMANDS else None
