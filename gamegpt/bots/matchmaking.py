"""Matchmaking: when the bot is idle, it challenges another bot (the config's `matchmaking:` section, off by
default), within Lichess's limit on games against bots per day.

`BotGameCounter` counts the games against bots per UTC day (challenged or accepted: Lichess's limit counts
both) in a small JSON file, written atomically, so a restart does not forget them. `Matchmaker.tick()`
runs in the bot's housekeeping thread, never in the event stream's or a game's: after `idle_seconds`
without a game it reads the online bots, picks one at random among those rated `rating_min`..`rating_max`
in the challenge's speed (never itself, a blocked user, or one that recently declined), and challenges it;
a challenge unanswered after `challenge_timeout_seconds` is cancelled. A decline (or an unanswered or
refused challenge) leaves that bot alone for `decline_backoff_seconds`, doubled at each further one.
"""

from __future__ import annotations

import datetime
import json
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable

from gamegpt.atomic import write_json_atomic
from gamegpt.bots.api import BotStopped, LichessApi, describe, status_of
from gamegpt.bots.config import BotConfig

LOG = logging.getLogger("gamegpt.bots.matchmaking")
ONLINE_BOTS_READ = 100
"""How many online bots are read for each challenge."""
MAX_BACKOFF_DOUBLINGS = 6


def speed_of(base_seconds: int, increment_seconds: int) -> str:
    """Lichess's speed of a clock (estimated duration base + 40 x increment)."""
    estimate = base_seconds + 40 * increment_seconds
    for bound, speed in ((29, "ultraBullet"), (179, "bullet"), (479, "blitz"), (1499, "rapid")):
        if estimate <= bound:
            return speed
    return "classical"


def utc_today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


class BotGameCounter:
    """Games against bots today (UTC), by game id, kept in `path` (JSON: {"date": ..., "games": [...]})."""

    def __init__(self, path: str | Path, limit: int, today: Callable[[], str] = utc_today) -> None:
        self.path = Path(path)
        self.limit = limit
        self.today = today
        self._lock = threading.Lock()
        self._date = today()
        self._games: list[str] = []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("date") == self._date:
                self._games = [str(g) for g in data.get("games", [])]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:
            LOG.warning("could not read the bot-game count %s (%s); counting from 0 today", self.path, exc)

    def _roll(self) -> None:
        if self.today() != self._date:
            self._date, self._games = self.today(), []

    def count(self) -> int:
        with self._lock:
            self._roll()
            return len(self._games)

    def reached(self) -> bool:
        """Whether no further game against a bot may start today."""
        return self.count() >= self.limit

    def add(self, game_id: str) -> bool:
        """Count game `game_id` (once); True if it was new."""
        with self._lock:
            self._roll()
            if game_id in self._games:
                return False
            self._games.append(game_id)
            games = list(self._games)
            try:
                write_json_atomic(self.path, {"date": self._date, "games": games})
            except OSError as exc:
                LOG.warning("could not save the bot-game count to %s (%s)", self.path, exc)
        LOG.info("games against bots today: %d of %d", len(games), self.limit)
        return True


class Matchmaker:
    """Challenges bots while the bot is idle (see the module's docstring). `busy()` counts games running and
    challenges accepted; `tick()` is cheap when nothing is due."""

    def __init__(self, api: LichessApi, config: BotConfig, counter: BotGameCounter, account_id: str,
                 busy: Callable[[], int], rng: random.Random | None = None) -> None:
        self.api = api
        self.config = config
        self.settings = config.matchmaking
        self.counter = counter
        self.account_id = account_id.lower()
        self.busy = busy
        self.rng = rng or random.Random(config.engine.seed)
        self.speed = speed_of(self.settings.base_seconds, self.settings.increment_seconds)
        self._lock = threading.Lock()
        self._idle_since = time.monotonic()
        self._outgoing: dict[str, tuple[str, float]] = {}
        self._backoff: dict[str, tuple[float, int]] = {}
        self._early: dict[str, tuple[float, str | None]] = {}
        """Challenge id -> (when, None: its game started, else the decline reason), for answers that come on
        the event stream before the challenge's own reply."""
        self._said_limit = False
        self._said_nobody = False
        self.challenges_sent = 0

    # ------------------------------------------------------------------ what the event stream tells
    def is_ours(self, challenge_id: str) -> bool:
        with self._lock:
            return challenge_id in self._outgoing

    def on_game_start(self, game_id: str) -> None:
        with self._lock:
            if self._outgoing.pop(game_id, None) is None:
                self._early[game_id] = (time.monotonic(), None)

    def on_declined(self, challenge_id: str, reason: str) -> None:
        with self._lock:
            entry = self._outgoing.pop(challenge_id, None)
            self._idle_since = time.monotonic()
            if entry is None:
                self._early[challenge_id] = (time.monotonic(), reason)
        if entry is not None:
            self._back_off(entry[0], f"declined ({reason})")

    def on_canceled(self, challenge_id: str) -> None:
        with self._lock:
            self._outgoing.pop(challenge_id, None)

    def _back_off(self, user_id: str, why: str) -> None:
        with self._lock:
            _, times = self._backoff.get(user_id, (0.0, 0))
            seconds = self.settings.decline_backoff_seconds * 2 ** min(times, MAX_BACKOFF_DOUBLINGS)
            self._backoff[user_id] = (time.monotonic() + seconds, times + 1)
        LOG.info("matchmaking: %s %s; leaving it alone for %gs", user_id, why, seconds)

    # ------------------------------------------------------------------ the housekeeping thread
    def tick(self) -> None:
        """Cancel stale challenges; challenge a bot if idle long enough and under the daily limit."""
        now = time.monotonic()
        self._cancel_stale(now)
        with self._lock:
            waiting = bool(self._outgoing)
        if waiting or self.busy() > 0:
            with self._lock:
                self._idle_since = now
            return
        with self._lock:
            if now - self._idle_since < self.settings.idle_seconds:
                return
            self._idle_since = now  # whatever happens next, the next try waits a full idle period
        if self.counter.reached():
            if not self._said_limit:
                LOG.info("matchmaking: %d games against bots today, the limit: no more challenges today",
                         self.counter.count())
                self._said_limit = True
            return
        self._said_limit = False
        self._challenge_someone()

    def _cancel_stale(self, now: float) -> None:
        with self._lock:
            for cid, (when, _) in list(self._early.items()):
                if now - when > self.settings.challenge_timeout_seconds + 60:
                    del self._early[cid]
            stale = [(cid, user) for cid, (user, sent) in self._outgoing.items()
                     if now - sent > self.settings.challenge_timeout_seconds]
            for cid, _ in stale:
                del self._outgoing[cid]
        for cid, user in stale:
            try:
                self.api.cancel_challenge(cid)
            except BotStopped:
                raise
            except Exception as exc:
                LOG.warning("matchmaking: cancelling challenge %s failed (%s)", cid, describe(exc))
            self._back_off(user, "did not answer")

    def candidates(self, bots: list[dict[str, Any]]) -> list[str]:
        """The usernames among `bots` (Lichess user JSON) that may be challenged now."""
        now = time.monotonic()
        blocked = {name.lower() for name in self.config.challenge.blocked}
        names = []
        for user in bots:
            user_id = str(user.get("id") or user.get("username") or "").lower()
            if not user_id or user_id == self.account_id or user_id in blocked:
                continue
            if self._backoff.get(user_id, (0.0, 0))[0] > now:
                continue
            perf = (user.get("perfs") or {}).get(self.speed) or {}
            rating = perf.get("rating")
            if rating is None or not self.settings.rating_min <= int(rating) <= self.settings.rating_max:
                continue
            names.append(str(user.get("username") or user_id))
        return names

    def _challenge_someone(self) -> None:
        s = self.settings
        try:
            bots = self.api.online_bots(ONLINE_BOTS_READ)
        except BotStopped:
            raise
        except Exception as exc:
            LOG.warning("matchmaking: could not list the online bots (%s)", describe(exc))
            return
        names = self.candidates(bots)
        if not names:
            (LOG.debug if self._said_nobody else LOG.info)(
                "matchmaking: no online bot rated %d-%d in %s to challenge now", s.rating_min, s.rating_max,
                self.speed)
            self._said_nobody = True
            return
        self._said_nobody = False
        name = self.rng.choice(names)
        try:
            answer = self.api.create_challenge(name, s.rated, s.base_seconds, s.increment_seconds)
        except BotStopped:
            raise
        except Exception as exc:
            if status_of(exc) == 429:  # our own limit (the endpoint is paused meanwhile)
                LOG.warning("matchmaking: Lichess refused a challenge with 429 (%s)", describe(exc))
            else:  # 400: that bot cannot be challenged now (its own daily limit, closed challenges)
                self._back_off(name.lower(), f"could not be challenged ({describe(exc)})")
            return
        challenge = answer.get("challenge") if isinstance(answer.get("challenge"), dict) else answer
        challenge_id = str(challenge.get("id") or "")
        self.challenges_sent += 1
        early: tuple[float, str | None] | None = None
        if challenge_id:
            with self._lock:
                early = self._early.pop(challenge_id, None)
                if early is None:
                    self._outgoing[challenge_id] = (name.lower(), time.monotonic())
        if early is not None and early[1] is not None:  # declined before the reply came
            self._back_off(name.lower(), f"declined ({early[1]})")
        LOG.info("matchmaking: challenged %s (%s %d+%d, %s)", name, self.speed, s.base_seconds,
                 s.increment_seconds, "rated" if s.rated else "casual")
