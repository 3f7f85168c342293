"""One Lichess game, played in its own thread from its game stream.

The stream sends `gameFull` first (players, clock, start position, state), then `gameState` after every
move or offer, `chatLine` and `opponentGone`; keep-alive lines come through as None and wake the thread
to check its deadlines (abort, claim victory) and the stop event. The position is rebuilt from the full
move list at every state, so reconnects and accepted takebacks need no bookkeeping.

Staying up: a stream that drops, stalls past the read timeout, or answers 5xx/429 is reopened with
backoff (at most `max_reconnects` failures in a row; a `gameFull` resets the count). A fresh `gameFull`
makes the thread answer the position again if it is still the bot's turn, so a move lost on the way is
sent again; a move Lichess refuses (4xx) forces such a fresh read. Any error ends only this game's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import chess

from gamegpt.bots.api import BotStopped, LichessApi, describe, status_of
from gamegpt.bots.config import PLAYABLE_VARIANTS, BotConfig
from gamegpt.bots.moves import GameMoveChooser, move_budget
from gamegpt.bots.outbox import OutgoingCall, Outbox
from gamegpt.bots.pgn import game_pgn, result_of, save_pgn
from gamegpt.bots.rules import MAX_COMMAND_ANSWERS, GameJudgement, command_of, dead_drawn
from gamegpt.engine.evaluation import static_evaluation
from gamegpt.games.chess import ChessGame

LOG = logging.getLogger("gamegpt.bots.game")
RUNNING = ("created", "started")
MAX_CLAIMS = 10


class Resync(Exception):
    """Read the game afresh (reopen its stream): the bot's view and Lichess's may differ."""


class Sleep(Exception):
    """A correspondence game waits for the opponent: its thread ends until the game wakes it again."""


@dataclass
class BotContext:
    """What every game thread shares: the API, the config, who the bot is, its move choosers, the stop event,
    the outbox its chat lines go through."""

    api: LichessApi
    config: BotConfig
    account_id: str
    account_name: str
    move_choosers: Callable[[str], GameMoveChooser]
    stop: threading.Event
    outbox: Outbox
    queue_status: Callable[[], str] = lambda: ""
    """A line for the `!queue` chat command (games running, challenges waiting)."""
    on_bot_game: Callable[[str], None] = lambda game_id: None
    """Called with the id of every running game against a BOT (the daily bot-game count)."""


@dataclass
class GameResult:
    """How a game ended, as Lichess reported it."""

    game_id: str
    status: str
    winner: str | None
    bot_color: str | None
    moves: list[str]
    pgn_path: Path | None


def _user_id(player: dict[str, Any]) -> str:
    return str(player.get("id") or player.get("name") or "").lower()


class GameWorker:
    """Plays game `game_id` in a daemon thread (`start()`), until it ends, the bot stops, or its stream
    cannot be reopened. `wake` cuts a reconnect wait short (set when the event stream says the game ended).
    `result` is set once the game has ended and been saved. A correspondence game (no clock) ends its thread
    `correspondence.disconnect_seconds` after the bot's move (`sleeping` is then True, `result` None): the
    bot starts a new worker when the game is announced again or its check-in finds the bot to move."""

    def __init__(self, game_id: str, ctx: BotContext, on_done: Callable[["GameWorker"], None] | None = None) -> None:
        self.game_id = game_id
        self.ctx = ctx
        self.on_done = on_done
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"game-{game_id}", daemon=True)
        self.result: GameResult | None = None
        self.full: dict[str, Any] = {}
        self.color: chess.Color | None = None
        self.opponent: dict[str, Any] = {}
        self.moves: list[str] = []
        self.takebacks_accepted = 0
        self._mover: GameMoveChooser | None = None
        self._sent_for: str | None = None
        self._answered_draw: str | None = None
        self._answered_takeback: str | None = None
        self._saw_running = False
        self._greet_pending = False
        self._abort_at: float | None = None
        self._claim_at: float | None = None
        self._claims = 0
        self._judgement: GameJudgement | None = None
        self._resigned = False
        self._commands_answered = 0
        self._last_note: str | None = None
        self._sleep_at: float | None = None
        self.sleeping = False

    @property
    def finished(self) -> bool:
        return self.result is not None

    def start(self) -> None:
        self.thread.start()

    # ------------------------------------------------------------------ the stream loop
    def run(self) -> None:
        try:
            self._play()
        except BotStopped:
            LOG.info("game %s: the bot stops; the game is left running on Lichess", self.game_id)
        except Sleep:
            self.sleeping = True
            LOG.info("game %s: correspondence: waiting for the opponent's move without a thread", self.game_id)
        except Unplayable as exc:
            LOG.error("%s; leaving it", exc)
        except Exception:
            LOG.exception("game %s: unexpected error; this game's thread ends", self.game_id)
        finally:
            if self.on_done is not None:
                self.on_done(self)

    def _play(self) -> None:
        api, network = self.ctx.api, self.ctx.config.network
        failures = 0
        while not self.finished:
            if self.ctx.stop.is_set():
                raise BotStopped()
            try:
                with contextlib.closing(api.game_stream(self.game_id)) as events:  # type: ignore[type-var]
                    for event in events:
                        if self.ctx.stop.is_set():
                            raise BotStopped()
                        if event is not None:
                            if event.get("type") == "gameFull":
                                failures = 0
                            self._handle(event)
                        if not self.finished:
                            self._check_deadlines()
                        if self.finished:
                            break
                reason = "the stream ended"
            except (BotStopped, Unplayable, Sleep):
                raise
            except Resync as exc:
                reason = str(exc)
            except Exception as exc:
                status = status_of(exc)
                if status is not None and 400 <= status < 500 and status != 429:
                    LOG.error("game %s: Lichess refused its stream (%s); giving up on it", self.game_id, describe(exc))
                    return
                reason = describe(exc)
            if self.finished:
                return
            failures += 1
            if failures > network.max_reconnects:
                LOG.error("game %s: giving up after %d failed reconnects (last: %s)", self.game_id,
                          failures - 1, reason)
                return
            delay = api.backoff.delay(failures - 1)
            LOG.warning("game %s: %s; reconnecting in %.2fs (%d/%d)", self.game_id, reason, delay, failures,
                        network.max_reconnects)
            self.wake.clear()
            api.sleep(delay, wake=self.wake)

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "gameFull":
            self._on_full(event)
        elif kind == "gameState":
            self._on_state(event)
        elif kind == "chatLine":
            if str(event.get("username", "")).lower() != self.ctx.account_id:
                LOG.info("game %s: chat (%s) %s: %s", self.game_id, event.get("room"), event.get("username"),
                         event.get("text"))
                self._on_command(str(event.get("room") or "player"), str(event.get("text") or ""))
        elif kind == "opponentGone":
            self._on_gone(event)
        else:
            LOG.debug("game %s: ignoring event %r", self.game_id, kind)

    # ------------------------------------------------------------------ events
    def _on_full(self, full: dict[str, Any]) -> None:
        self.full = full
        white, black = full.get("white") or {}, full.get("black") or {}
        if _user_id(white) == self.ctx.account_id:
            self.color, self.opponent = chess.WHITE, black
        elif _user_id(black) == self.ctx.account_id:
            self.color, self.opponent = chess.BLACK, white
        else:
            raise Unplayable(f"game {self.game_id}: {self.ctx.account_name} plays neither side")
        if self._judgement is None:
            self._judgement = GameJudgement(self.color, self.ctx.config.resign, self.ctx.config.draw)
        if str(self.opponent.get("title") or "").upper() == "BOT" and str(
                (full.get("state") or {}).get("status") or "started") in RUNNING:
            self.ctx.on_bot_game(self.game_id)
        self._sent_for = self._answered_draw = self._answered_takeback = None  # answer the fresh view
        self._on_state(full.get("state") or {})

    def _on_state(self, state: dict[str, Any]) -> None:
        if self.color is None:
            raise Resync("a game state before the game's gameFull")
        moves_text = str(state.get("moves") or "")
        self.moves = moves_text.split()
        status = str(state.get("status") or "started")
        if status not in RUNNING:
            self._finish(status, state.get("winner"))
            return
        variant = str((self.full.get("variant") or {}).get("key", "standard"))
        if variant not in PLAYABLE_VARIANTS:
            raise Unplayable(f"game {self.game_id}: the model cannot play variant {variant!r}")
        if not self._saw_running:  # greet a game seen from its start, not one picked up in the middle
            self._saw_running, self._greet_pending = True, len(self.moves) < 2
        game = self._position()
        ours = game.board.turn == self.color
        if self.correspondence:
            self._sleep_at = None if ours else (
                self._sleep_at or time.monotonic() + self.ctx.config.correspondence.disconnect_seconds)
        self._abort_at = None if ours or len(self.moves) >= 2 else (
            self._abort_at or time.monotonic() + self.ctx.config.games.abort_after_seconds)
        theirs = "b" if self.color == chess.WHITE else "w"
        if state.get(f"{theirs}draw") and self._answered_draw != moves_text:
            self._answered_draw = moves_text
            if self._answer_draw(game):
                return
        if state.get(f"{theirs}takeback") and self._answered_takeback != moves_text:
            self._answered_takeback = moves_text
            if self._answer_takeback():
                return
        if ours and self._sent_for != moves_text and any(True for _ in game.board.legal_moves):
            assert self._judgement is not None
            self._judgement.record(game.board)
            if not self._resign_if_lost(game):
                self._play_move(game, state, moves_text)
        if self._greet_pending:  # after the move: the first move's deadline is short
            self._greet_pending = False
            self._greet()

    def _position(self) -> ChessGame:
        fen = self.full.get("initialFen")
        try:
            game = ChessGame(None if not fen or fen == "startpos" else str(fen))
        except ValueError as exc:
            raise Unplayable(f"game {self.game_id}: bad start position ({exc})") from None
        for uci in self.moves:
            try:
                move = game.board.parse_uci(uci)  # checks legality (IllegalMoveError is a ValueError)
            except ValueError as exc:
                raise Resync(f"move {uci} of the game does not replay ({exc})") from None
            # on the board itself: Lichess, not our draw rules (75 moves, fivefold), says when a game ends
            game.board.push(move)
        return game

    def _play_move(self, game: ChessGame, state: dict[str, Any], moves_text: str) -> None:
        assert self.color is not None
        settings = self.ctx.config.engine
        budget = move_budget(state, self.color, len(self.moves), bool(self.full.get("clock")), settings)
        if self._mover is None:
            self._mover = self.ctx.move_choosers(self.game_id)
        move, note = self._mover.choose(game, budget)
        self._last_note = note
        if note:
            LOG.info("game %s: %s", self.game_id, note)
        self._sent_for = moves_text
        assert self._judgement is not None
        offer = self._judgement.should_offer_draw(game.board)
        try:
            self.ctx.api.make_move(self.game_id, move.uci(), offering_draw=offer)
        except BotStopped:
            raise
        except Exception as exc:
            status = status_of(exc)
            if status is not None and 400 <= status < 500 and status != 429:
                # most often our own move, already played, sent again after a lost reply
                raise Resync(f"Lichess refused move {move.uci()} ({describe(exc)})") from None
            raise
        LOG.debug("game %s: played %s", self.game_id, move.uci())
        if offer:
            self._judgement.last_offer_ply = len(game.board.move_stack)
            LOG.info("game %s: offered a draw with %s (%s)", self.game_id, move.uci(), self._draw_reason(game))

    def _draw_reason(self, game: ChessGame) -> str:
        return "dead drawn" if dead_drawn(game.board) else "level for a long time"

    def _resign_if_lost(self, game: ChessGame) -> bool:
        """Resign by the `resign:` rules; True if the game was resigned (no move to play then)."""
        assert self._judgement is not None
        if self._resigned or not self._judgement.should_resign(game.board):
            return False
        rules = self.ctx.config.resign
        try:
            self.ctx.api.resign(self.game_id)
        except BotStopped:
            raise
        except Exception as exc:  # the move goes out instead
            LOG.warning("game %s: resigning failed (%s); playing on", self.game_id, describe(exc))
            return False
        self._resigned = True
        LOG.info("game %s: resigned: the evaluation was at most %d cp at %d turns in a row", self.game_id,
                 rules.score, rules.moves)
        return True

    def _answer_draw(self, game: ChessGame) -> bool:
        policy = self.ctx.config.games.draw_offers
        assert self.color is not None
        accept = policy == "accept" or (policy == "accept_when_behind" and static_evaluation(
            game.board, self.color) <= -self.ctx.config.games.behind_centipawns)
        if not accept and self._judgement is not None and self._judgement.draw_worthy(game.board):
            accept = True  # the draw rules: a position the bot would offer a draw in itself
        self.ctx.api.answer_draw(self.game_id, accept)
        LOG.info("game %s: %s a draw offer", self.game_id, "accepted" if accept else "declined")
        return accept

    def _answer_takeback(self) -> bool:
        accept = self.takebacks_accepted < self.ctx.config.games.max_takebacks
        self.ctx.api.answer_takeback(self.game_id, accept)
        if accept:
            self.takebacks_accepted += 1
        LOG.info("game %s: %s a takeback", self.game_id, "accepted" if accept else "declined")
        return accept

    def _on_gone(self, event: dict[str, Any]) -> None:
        if event.get("gone") and self.ctx.config.games.claim_victory:
            seconds = float(event.get("claimWinInSeconds") or 0)
            self._claim_at = time.monotonic() + max(0.0, seconds)
            LOG.info("game %s: the opponent left; claiming victory in %gs", self.game_id, seconds)
        else:
            self._claim_at = None

    @property
    def correspondence(self) -> bool:
        """A game without a clock (correspondence or unlimited), known once its gameFull has come."""
        return bool(self.full) and not self.full.get("clock")

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        if self._sleep_at is not None and now >= self._sleep_at and self._claim_at is None and self._abort_at is None:
            raise Sleep()
        if self._claim_at is not None and now >= self._claim_at:
            self._claim_at = None
            self._claims += 1
            try:
                self.ctx.api.claim_victory(self.game_id)
                LOG.info("game %s: claimed victory", self.game_id)
            except BotStopped:
                raise
            except Exception as exc:
                LOG.warning("game %s: claiming victory failed (%s)", self.game_id, describe(exc))
                if self._claims < MAX_CLAIMS:
                    self._claim_at = now + 1.0
        if self._abort_at is not None and now >= self._abort_at:
            self._abort_at = None
            try:
                self.ctx.api.abort(self.game_id)
                LOG.info("game %s: aborted: the opponent did not make its first move", self.game_id)
            except BotStopped:
                raise
            except Exception as exc:
                LOG.warning("game %s: aborting failed (%s)", self.game_id, describe(exc))

    # ------------------------------------------------------------------ chat and the end
    def _say(self, template: str, spectator: bool = False) -> OutgoingCall | None:
        """Queue a chat line (from a template with {me} and {opponent}) in the outbox: chat never holds up
        a move, and a line that cannot be sent in time is dropped (chat is a courtesy)."""
        if not template:
            return None
        text = template.format(me=self.ctx.account_name, opponent=self.opponent.get("name") or "opponent")
        return self._chat(text, spectator)

    def _chat(self, text: str, spectator: bool = False) -> OutgoingCall:
        api, game_id = self.ctx.api, self.game_id
        return self.ctx.outbox.submit(f"chat in game {game_id}", "chat",
                                      lambda: api.chat(game_id, text[:140], spectator=spectator, retries=0),
                                      self.ctx.config.network.chat_within_seconds)

    def _on_command(self, room: str, text: str) -> None:
        """Answer a chat command (`!help`...) in the room it was asked in; `!eval` only to spectators."""
        command = command_of(text)
        if command is None or not self.ctx.config.games.chat_commands:
            return
        if self._commands_answered >= MAX_COMMAND_ANSWERS:
            return
        self._commands_answered += 1
        spectator = room == "spectator"
        self._chat(self._command_answer(command, spectator), spectator)

    def _command_answer(self, command: str, spectator: bool) -> str:
        config = self.ctx.config
        if command == "help":
            return "Commands: !help, !name, !howto, !eval (spectators only), !queue"
        if command == "name":
            from gamegpt import __version__

            return (f"{self.ctx.account_name} is gamegpt {__version__} playing the model "
                    f"{Path(config.engine.model).name} ({config.engine.policy}, temperature {config.engine.temperature:g})")
        if command == "howto":
            return config.games.howto
        if command == "queue":
            return self.ctx.queue_status() or "No queue."
        # eval
        if not spectator:
            return "Sorry, the evaluation is for spectators only (ask in the spectator room)."
        if self.color is None:
            return "No position yet."
        try:
            board = self._position().board
        except (Resync, Unplayable):
            return "No position yet."
        score = static_evaluation(board, self.color)
        text = (f"Evaluation for {self.ctx.account_name}: {score / 100:+.2f} (material and placement: "
                f"the model has no value head)")
        if self._last_note:
            text += f"; last move: {self._last_note}"
        return text

    def _greet(self) -> None:
        self._say(self.ctx.config.games.greeting)
        self._say(self.ctx.config.games.spectator_greeting, spectator=True)

    def _finish(self, status: str, winner: Any) -> None:
        winner = str(winner) if winner else None
        if self._saw_running:
            goodbye = self._say(self.ctx.config.games.goodbye)
            if goodbye is not None:  # the game is over: its thread may wait a little for the line to go out
                goodbye.done.wait(self.ctx.config.network.read_timeout_seconds)
        path: Path | None = None
        try:
            text = game_pgn(self.full or {"id": self.game_id}, self.moves, status, winner, self.ctx.api.site)
            path = save_pgn(self.ctx.config.games.pgn_dir, self.game_id, text)
        except OSError as exc:
            LOG.error("game %s: could not save its PGN (%s)", self.game_id, exc)
        color = None if self.color is None else ("white" if self.color == chess.WHITE else "black")
        self.result = GameResult(self.game_id, status, winner, color, list(self.moves), path)
        if winner is not None:
            outcome = "won" if winner == color else "lost"
        else:
            outcome = "drawn" if result_of(status, None) == "1/2-1/2" else "ended without a result"
        LOG.info("game %s finished: %s (%s) after %d plies; PGN: %s", self.game_id, outcome, status,
                 len(self.moves), path)


class Unplayable(Exception):
    """The bot cannot play this game (not a player, unknown variant, broken start position)."""
