"""`gamegpt bot lichess`: ChessGPT as a Lichess bot, on berserk.

Threads: the caller's thread runs `LichessBot.run`, which reads the account's event stream (challenges,
game starts and ends) and decides on challenges; the answers (accept, decline) and every chat line go
through the `outbox.Outbox` thread, so a 429 on one of them never holds up the event stream or a move;
each game is played by a `GameWorker` in its own thread from its own game stream; a game's model decoding
runs in a short-lived worker thread so the clock is never overrun. A failure in one game ends only that
game's thread. A housekeeping thread challenges bots when idle (`matchmaking`) and wakes correspondence
games, which hold no thread while the opponent thinks (`correspondence`).

Staying up (see `api` for the network rules): the event stream is reopened with exponential backoff and
jitter when it drops, stalls or fails (at most `max_reconnects` failures in a row); on reopening Lichess
sends `gameStart` again for every running game, and at start the bot asks for its ongoing games
(/api/account/playing), so games survive both a dropped stream and a restart of the bot. `stop()` (or the
`stop` event) ends every loop within about one stream read timeout; games are left running on Lichess
and picked up by the next start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable

from gamegpt.bots.api import BotStopped, LichessApi, describe, status_of
from gamegpt.bots.challenges import decline_reason, is_bot
from gamegpt.bots.config import BotConfig
from gamegpt.bots.moves import GameMoveChooser, model_move_choosers
from gamegpt.bots.game import BotContext, GameResult, GameWorker
from gamegpt.bots.matchmaking import BotGameCounter, Matchmaker
from gamegpt.bots.outbox import Outbox
from gamegpt.bots.redact import redacted_logging
from gamegpt.errors import UserError

LOG = logging.getLogger("gamegpt.bots.lichess")
PENDING_SECONDS = 20.0
"""How long an accepted challenge counts against `max_games` after its accept was sent while its gameStart
has not arrived (an accept still waiting in the outbox counts until it is sent or dropped)."""


HOUSEKEEPING_SECONDS = 0.2
"""How often the housekeeping thread looks whether matchmaking or a correspondence check-in is due."""


class BotError(UserError):
    """The bot cannot run: the token is refused, the account is not usable, Lichess cannot be reached."""


class LichessBot:
    """The bot: `run()` blocks until `stop()` (from another thread) or a fatal error (BotError); a bot runs
    once (make a new one to start again).

    `move_choosers` makes the per-game move chooser (default: the config's model, loaded once at construction so a bad
    model fails at start). `results` holds every game that ended while the bot ran, by game id.
    """

    def __init__(self, config: BotConfig, token: str, *, move_choosers: Callable[[str], GameMoveChooser] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.config = config
        self._token = token
        self.stop_event = stop or threading.Event()
        self.move_choosers = move_choosers or model_move_choosers(config.engine)
        self.results: dict[str, GameResult] = {}
        self.account: dict[str, Any] = {}
        self._workers: dict[str, GameWorker] = {}
        self._pending: dict[str, float | None] = {}
        self._answering: set[str] = set()
        self._lock = threading.Lock()
        self.api: LichessApi | None = None
        self.outbox: Outbox | None = None
        self.context: BotContext | None = None
        self.bot_games = BotGameCounter(config.count_file, config.matchmaking.bot_games_per_day)
        self.matchmaker: Matchmaker | None = None
        self._sleeping: set[str] = set()
        self._correspondence: set[str] = set()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)

    def __repr__(self) -> str:
        return f"<LichessBot {self.config.url}>"  # never the token

    def stop(self) -> None:
        """Ask every loop to end (the event stream, the games, the waits)."""
        self.stop_event.set()

    def run(self) -> None:
        """Connect, pick up running games, and serve the event stream until stopped."""
        with redacted_logging([self._token]):
            network = self.config.network
            self.api = LichessApi(self._token, self.config.url, network, self.stop_event,
                                  pool_size=self.config.challenge.max_games * 2 + 4)
            self.outbox = Outbox(self.api, self.stop_event)
            self.outbox.start()
            try:
                self._connect()
                self._housekeeper.start()
                self._event_loop()
            except BotStopped:
                pass
            finally:
                self.stop_event.set()
                deadline = time.monotonic() + network.stream_read_timeout_seconds + 2
                for worker in self.workers():
                    worker.thread.join(timeout=max(0.0, deadline - time.monotonic()))
                self.outbox.thread.join(timeout=max(0.0, deadline - time.monotonic()))
                if self._housekeeper.ident is not None:
                    self._housekeeper.join(timeout=max(0.0, deadline - time.monotonic()))
                self.api.close()
                LOG.info("bot stopped")

    def workers(self) -> list[GameWorker]:
        with self._lock:
            return list(self._workers.values())

    # ------------------------------------------------------------------ start-up
    def _connect(self) -> None:
        assert self.api is not None
        try:
            self.account = self.api.account()
        except BotStopped:
            raise
        except Exception as exc:
            status = status_of(exc)
            if status in (401, 403):
                raise BotError(f"Lichess refused the API token (HTTP {status}): create one with the bot:play "
                               "scope at https://lichess.org/account/oauth/token") from None
            raise BotError(f"cannot reach Lichess at {self.config.url} ({describe(exc)})") from None
        name = str(self.account.get("username") or self.account.get("id") or "?")
        if str(self.account.get("title") or "").upper() != "BOT":
            LOG.warning("account %s is not a BOT account: upgrade it first (see the README); "
                        "Lichess refuses the bot endpoints otherwise", name)
        LOG.info("connected to %s as %s; finished games are saved as PGN under %s", self.config.url, name,
                 self.config.games.pgn_dir)
        assert self.outbox is not None
        self.context = BotContext(self.api, self.config, str(self.account.get("id") or name).lower(), name,
                                  self.move_choosers, self.stop_event, self.outbox, self.queue_status,
                                  self._count_bot_game)
        if self.config.matchmaking.enabled:
            self.matchmaker = Matchmaker(self.api, self.config, self.bot_games, self.context.account_id,
                                         self.busy_games)
        try:
            ongoing = self.api.ongoing_games()
        except BotStopped:
            raise
        except Exception as exc:  # the event stream sends gameStart for them anyway
            LOG.warning("could not list ongoing games (%s); waiting for the event stream", describe(exc))
            ongoing = []
        for game in ongoing:
            game_id = str(game.get("gameId") or game.get("id") or "")
            if game_id:
                LOG.info("picking up ongoing game %s", game_id)
                self._start_game(game_id)

    # ------------------------------------------------------------------ the event stream
    def _event_loop(self) -> None:
        assert self.api is not None
        network = self.config.network
        failures = 0
        while not self.stop_event.is_set():
            try:
                with contextlib.closing(self.api.event_stream()) as events:  # type: ignore[type-var]
                    for event in events:
                        if self.stop_event.is_set():
                            return
                        failures = 0
                        if event is not None:
                            self._on_event(event)
                reason = "the event stream ended"
            except BotStopped:
                return
            except Exception as exc:
                status = status_of(exc)
                if status is not None and 400 <= status < 500 and status != 429:
                    raise BotError(f"Lichess refused the event stream ({describe(exc)})") from None
                reason = describe(exc)
            failures += 1
            if failures > network.max_reconnects:
                raise BotError(f"lost the Lichess event stream: {failures - 1} reconnects failed (last: {reason})")
            delay = self.api.backoff.delay(failures - 1)
            LOG.warning("%s; reconnecting in %.2fs (%d/%d)", reason, delay, failures, network.max_reconnects)
            self.api.sleep(delay)

    def _on_event(self, event: dict[str, Any]) -> None:
        """One event; an error here (a challenge that vanished, a refused answer) is logged, not raised."""
        kind = event.get("type")
        try:
            if kind == "challenge":
                self._on_challenge(event.get("challenge") or {})
            elif kind == "gameStart" and _game_id(event):
                if self.matchmaker is not None:
                    self.matchmaker.on_game_start(_game_id(event))
                self._start_game(_game_id(event))
            elif kind == "gameFinish":
                game_id = _game_id(event)
                with self._lock:
                    worker = self._workers.get(game_id)
                    asleep = game_id in self._sleeping
                if worker is not None:
                    worker.wake.set()  # a worker waiting to reconnect reads the final state now
                elif asleep:
                    self._start_game(game_id)  # a correspondence game ended while asleep: read and save it
            elif kind in ("challengeCanceled", "challengeDeclined"):
                challenge = event.get("challenge") or {}
                challenge_id = str(challenge.get("id"))
                with self._lock:
                    self._pending.pop(challenge_id, None)
                if self.matchmaker is not None:
                    if kind == "challengeDeclined":
                        self.matchmaker.on_declined(challenge_id, str(challenge.get("declineReasonKey")
                                                                      or challenge.get("declineReason") or "?"))
                    else:
                        self.matchmaker.on_canceled(challenge_id)
                LOG.info("challenge %s: %s", challenge_id, kind)
            else:
                LOG.debug("ignoring event %r", kind)
        except BotStopped:
            raise
        except Exception as exc:
            LOG.warning("event %s: %s", kind, describe(exc))

    def _on_challenge(self, challenge: dict[str, Any]) -> None:
        assert self.api is not None
        challenge_id = str(challenge.get("id"))
        challenger = challenge.get("challenger") or {}
        who = challenger.get("name") or challenger.get("id") or "?"
        assert self.context is not None
        if str(challenger.get("id", "")).lower() == self.context.account_id or challenge.get("direction") == "out":
            return  # our own challenge
        with self._lock:
            if challenge_id in self._pending or challenge_id in self._workers or challenge_id in self._answering:
                return  # sent again after a reconnect, already answered (or its answer is on its way)
        reason = decline_reason(challenge, self.config.challenge, self.busy_games())
        if reason is None and is_bot(challenger) and self.bot_games.reached():
            reason = "later"  # Lichess's daily limit on games against bots
            LOG.info("challenge %s from the bot %s: %d games against bots today, the limit", challenge_id, who,
                     self.bot_games.count())
        if reason is None and str(challenge.get("speed")) == "correspondence":
            with self._lock:
                if len(self._correspondence) >= self.config.challenge.max_correspondence_games:
                    reason = "later"
        if reason is None and is_bot(challenger):
            self.bot_games.add(challenge_id)  # counted now (the game's id is the challenge's), so a burst stops at the limit
        self._answer(challenge_id, who, reason, challenge)

    def _answer(self, challenge_id: str, who: str, reason: str | None, challenge: dict[str, Any]) -> None:
        """Queue the accept or decline in the outbox; the event stream goes on at once."""
        assert self.api is not None and self.outbox is not None
        api, network = self.api, self.config.network

        def done(_reason: str | None = None) -> None:
            with self._lock:
                self._answering.discard(challenge_id)

        with self._lock:
            self._answering.add(challenge_id)
        if reason is not None:
            def declined() -> None:
                done()
                LOG.info("declined challenge %s from %s (%s)", challenge_id, who, reason)

            self.outbox.submit(f"declining challenge {challenge_id}", "decline",
                               lambda: api.decline_challenge(challenge_id, reason, retries=0),
                               network.decline_within_seconds, on_sent=declined, on_dropped=done)
            return

        def accepted() -> None:
            with self._lock:
                self._answering.discard(challenge_id)
                if challenge_id in self._pending:
                    self._pending[challenge_id] = time.monotonic()  # counts PENDING_SECONDS from now
            LOG.info("accepted challenge %s from %s (%s %s)", challenge_id, who,
                     "rated" if challenge.get("rated") else "casual", challenge.get("speed"))

        def dropped(_reason: str) -> None:
            with self._lock:
                self._answering.discard(challenge_id)
                self._pending.pop(challenge_id, None)

        with self._lock:
            self._pending[challenge_id] = None  # counts against max_games while the accept waits
        self.outbox.submit(f"accepting challenge {challenge_id}", "accept",
                           lambda: api.accept_challenge(challenge_id, retries=0),
                           network.accept_within_seconds, on_sent=accepted, on_dropped=dropped)

    def queue_status(self) -> str:
        """The `!queue` answer: games running and challenges waiting for an answer or a game."""
        with self._lock:
            playing = sum(1 for w in self._workers.values() if w.thread.is_alive())
            waiting = len(set(self._pending) | self._answering)
        return (f"Playing {playing} game{'s' if playing != 1 else ''} (at most {self.config.challenge.max_games} "
                f"at once); {waiting} challenge{'s' if waiting != 1 else ''} waiting.")

    def busy_games(self) -> int:
        """Games being played plus accepted challenges whose game has not started yet."""
        now = time.monotonic()
        with self._lock:
            for challenge_id, since in list(self._pending.items()):
                if since is not None and now - since > PENDING_SECONDS:
                    del self._pending[challenge_id]
            running = {gid for gid, w in self._workers.items() if w.thread.is_alive() or not w.thread.ident}
            return len(running | set(self._pending))

    # ------------------------------------------------------------------ games
    def _start_game(self, game_id: str) -> None:
        with self._lock:
            self._pending.pop(game_id, None)
            self._sleeping.discard(game_id)
            worker = self._workers.get(game_id)
            if worker is not None:
                return  # already being played (gameStart again after a reconnect)
            assert self.context is not None
            worker = GameWorker(game_id, self.context, on_done=self._game_done)
            self._workers[game_id] = worker
        LOG.info("game %s: starting", game_id)
        worker.start()

    def _game_done(self, worker: GameWorker) -> None:
        with self._lock:
            if worker.result is not None:
                self.results[worker.game_id] = worker.result
                self._correspondence.discard(worker.game_id)
            if worker.correspondence and worker.result is None:
                self._correspondence.add(worker.game_id)
            if worker.sleeping:
                self._sleeping.add(worker.game_id)
            if self._workers.get(worker.game_id) is worker:
                del self._workers[worker.game_id]  # a later gameStart (a game given up on) starts it again

    def _count_bot_game(self, game_id: str) -> None:
        self.bot_games.add(game_id)

    # ------------------------------------------------------------------ housekeeping
    def _housekeeping(self) -> None:
        """Matchmaking and correspondence check-ins, in their own thread (never the event stream's)."""
        next_checkin = time.monotonic() + self.config.correspondence.checkin_seconds
        while not self.stop_event.wait(HOUSEKEEPING_SECONDS):
            try:
                if self.matchmaker is not None:
                    self.matchmaker.tick()
                if time.monotonic() >= next_checkin:
                    next_checkin = time.monotonic() + self.config.correspondence.checkin_seconds
                    self._correspondence_checkin()
            except BotStopped:
                return
            except Exception as exc:  # a failed check is tried again at the next round
                LOG.warning("housekeeping: %s", describe(exc))

    def _correspondence_checkin(self) -> None:
        """Wake the sleeping correspondence games where it is the bot's move (or that have ended)."""
        with self._lock:
            sleeping = set(self._sleeping)
        if not sleeping:
            return
        assert self.api is not None
        ongoing = {str(g.get("gameId") or g.get("id") or ""): g for g in self.api.ongoing_games()}
        for game_id in sorted(sleeping):
            game = ongoing.get(game_id)
            if game is None or game.get("isMyTurn"):  # gone from the list: ended; read its end
                self._start_game(game_id)


def _game_id(event: dict[str, Any]) -> str:
    """The game id of a gameStart/gameFinish event (`game.id`, or `game.gameId`), "" if missing."""
    game = event.get("game") or {}
    return str(game.get("id") or game.get("gameId") or "")
