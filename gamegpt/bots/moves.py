"""The model's moves in a bot game: a legal move for every turn, in time.

`move_budget` turns Lichess's clock into seconds to think (`engine.decide.clock_budget`, as in the UCI
engine), at most `first_move_seconds` for the bot's first move (Lichess aborts a game whose first move is
late), `correspondence_move_seconds` without a clock.

`GameMoveChooser` (one per game, with its own KV cache) decodes in a worker thread; if the model has not
answered within the budget, or fails, a random legal move is played and a note says why (as the UCI
engine does). A policy's illegal sample (`raw`, `retry`) falls back to masked decoding. Sampling is
seeded from the config's seed and the game's moves, so a replayed position gets the same move.

With `engine.book` (a Polyglot .bin file; off by default) the first `book_depth` plies come from the book
when it has the position: a move drawn by the book's weights (`book_selection: weighted`, seeded like the
model's sampling) or its highest-weighted move (`best`).
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any, Callable

import chess

from gamegpt.bots.config import EngineSettings
from gamegpt.engine.decide import book_move, clock_budget, model_move, position_seed, random_move
from gamegpt.games.chess import ChessGame

LOG = logging.getLogger("gamegpt.bots.moves")
MIN_BUDGET_SECONDS = 0.05


def millis(value: Any) -> float:
    """A Lichess clock value in milliseconds: an int (gameFull's state) or a timedelta (berserk's gameState)."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds() * 1000
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def move_budget(state: dict[str, Any], color: chess.Color, plies: int, has_clock: bool,
                settings: EngineSettings) -> float:
    """Seconds the bot may spend on the move in `state` (Lichess gameState) as `color` after `plies` plies."""
    overhead = settings.move_overhead_ms / 1000
    if has_clock:
        side = "w" if color == chess.WHITE else "b"
        budget = clock_budget(millis(state.get(f"{side}time")) / 1000, millis(state.get(f"{side}inc")) / 1000,
                              overhead)
    else:
        budget = settings.correspondence_move_seconds
    if plies < 2:
        budget = min(budget, settings.first_move_seconds)
    return max(MIN_BUDGET_SECONDS, budget)


class GameMoveChooser:
    """Chooses the bot's moves in one game. `player` is a ModelPlayer (None: random legal moves)."""

    def __init__(self, player: Any, settings: EngineSettings, name: str = "engine") -> None:
        self.player = player
        self.settings = settings
        self.name = name
        self._lock = threading.Lock()

    def choose(self, game: ChessGame, budget: float) -> tuple[chess.Move, str | None]:
        """A legal move for `game` within about `budget` seconds, and a note when it is not the model's own
        move (fallback, timeout, error). Raises ValueError if there is no legal move."""
        legal = list(game.board.legal_moves)
        if not legal:
            raise ValueError("no legal move")
        seed = position_seed(self.settings.seed, game)
        book_move = self.book_move(game.board, seed)
        if book_move is not None:
            return book_move, "book move"
        if self.player is None:
            return random_move(seed, legal), "no model: random legal move"
        result: dict[str, Any] = {}
        done = threading.Event()
        snapshot = game.copy()

        def work() -> None:
            try:
                with self._lock:
                    result["move"], result["note"] = self._decide(snapshot, seed)
            except Exception as exc:  # the model failed: the game goes on with a random legal move
                result["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name=f"{self.name}-decode", daemon=True).start()
        if done.wait(budget) and "move" in result:
            return result["move"], result["note"]
        reason = (f"model error ({type(result['error']).__name__}: {result['error']})" if "error" in result
                  else f"no model move within {budget:.2f}s")
        return random_move(seed, legal), f"{reason}: random legal move"

    def book_move(self, board: chess.Board, seed: int) -> chess.Move | None:
        """The opening book's move for `board` (None: no book, past `book_depth`, or not in the book)."""
        settings = self.settings
        if not settings.book or len(board.move_stack) >= settings.book_depth:
            return None
        try:
            return book_move(settings.book, board, seed, best=settings.book_selection == "best")
        except (OSError, ValueError) as exc:
            LOG.warning("opening book %s unreadable (%s): the model plays", settings.book, exc)
            return None

    def _decide(self, game: ChessGame, seed: int) -> tuple[chess.Move, str | None]:
        move, notes = model_move(self.player, game, seed, fallback="mask")
        return move, "; ".join(notes) or None


def model_move_choosers(settings: EngineSettings) -> Callable[[str], GameMoveChooser]:
    """Load the model once (UserError if it cannot be) and return a factory of per-game move choosers that
    share its weights, each with its own KV cache."""
    from gamegpt.engine.model_player import load_model_player

    def make(game_id: str) -> GameMoveChooser:
        player = load_model_player(settings.model, "chess", settings=settings.decoding)
        return GameMoveChooser(player, settings, name=f"game-{game_id}")

    make("check")  # loads (and caches) the weights now, so a bad model path fails at start
    return make
