"""The bot's side of the Lichess API, on berserk, with the network rules that keep it up.

* Every request has a `(connect, read)` timeout (berserk sets none): `read_timeout_seconds` for calls,
  `stream_read_timeout_seconds` for streams, where it bounds the silence between two lines (Lichess sends
  a blank keep-alive line every few seconds, so a longer silence means a dead connection).
* HTTP 429 pauses only the endpoint that got it (`endpoint_of`: the move, chat, accept, decline... calls
  of every game share one name each): no request to it leaves for the answer's `Retry-After` seconds, else
  `rate_limit_seconds` (Lichess asks for a full minute); other endpoints go on. 5xx answers and network
  errors are retried with exponential backoff and jitter, at most `max_retries` times; other 4xx answers
  are not retried (they would fail again). Calls that must not hold up a game (accept, decline, chat) go
  through `outbox.Outbox`, which sends them from its own thread and drops those it cannot send in time.
* Streams are read through berserk's `Requestor` with a format handler that yields `None` for each
  keep-alive line (berserk's own stream methods swallow them), so a reader wakes every few seconds to
  check its deadlines and the stop event.
* Every wait checks the stop event; a stopped bot raises `BotStopped` from wherever it waits.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import json
import logging
import random
import re
import threading
import time
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import urlsplit

import berserk
import requests
from berserk import models, utils
from berserk.exceptions import ApiError, ResponseError
from berserk.formats import JSON, FormatHandler
from berserk.session import Requestor
from requests.adapters import HTTPAdapter

from gamegpt.bots.config import NetworkSettings

LOG = logging.getLogger("gamegpt.bots.api")
T = TypeVar("T")
Event = dict[str, Any]


class BotStopped(Exception):
    """The bot was asked to stop while a thread waited (for a retry, a 429 pause, a stream)."""


ENDPOINTS = (
    (re.compile(r"/api/stream/event"), "event stream"),
    (re.compile(r"/api/bot/game/stream/[^/]+"), "game stream"),
    (re.compile(r"/api/bot/game/[^/]+/(move|chat|abort|resign|draw|takeback|claim-victory)(/.*)?"), None),
    (re.compile(r"/api/challenge/[^/]+/(accept|decline|cancel)"), None),
    (re.compile(r"/api/challenge/[^/]+"), "challenge"),
    (re.compile(r"/api/bot/online"), "online bots"),
    (re.compile(r"/api/account/playing"), "ongoing games"),
    (re.compile(r"/api/account"), "account"),
)
MAX_RETRY_AFTER_SECONDS = 3600.0
"""A `Retry-After` longer than this is read as this (a broken header must not silence an endpoint for days)."""


def endpoint_of(url: str) -> str:
    """The rate-limit name of a request's endpoint: `move`, `chat`, `accept`, `decline`, `game stream`,
    `event stream`, ... (game and challenge ids left out, so all games share one `move`); else the path."""
    path = urlsplit(url).path.rstrip("/") or "/"
    for pattern, name in ENDPOINTS:
        match = pattern.fullmatch(path)
        if match:
            return name or match.group(1)
    return path


def retry_after_seconds(response: requests.Response, default: float) -> float:
    """The pause a 429 answer asks for: its `Retry-After` header (seconds, or an HTTP date), else `default`."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return default
    return min(MAX_RETRY_AFTER_SECONDS, max(0.0, seconds))


class RateLimits:
    """The endpoints paused by a 429, each until its own time; shared by all threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resume_at: dict[str, float] = {}

    def trip(self, endpoint: str, seconds: float) -> None:
        """Pause `endpoint` for `seconds` from now (extends a pause already running)."""
        with self._lock:
            self._resume_at[endpoint] = max(self._resume_at.get(endpoint, 0.0), time.monotonic() + seconds)

    def remaining(self, endpoint: str) -> float:
        """Seconds until `endpoint` may be called again (0: now)."""
        with self._lock:
            return max(0.0, self._resume_at.get(endpoint, 0.0) - time.monotonic())

    def paused(self) -> dict[str, float]:
        """The endpoints paused now, with the seconds left."""
        now = time.monotonic()
        with self._lock:
            return {name: at - now for name, at in self._resume_at.items() if at > now}

    def wait(self, endpoint: str, stop: threading.Event) -> None:
        """Return when `endpoint` is open; raise BotStopped if `stop` is set meanwhile."""
        while (left := self.remaining(endpoint)) > 0:
            if stop.wait(left):
                raise BotStopped()
        if stop.is_set():
            raise BotStopped()


class TimeoutTokenSession(berserk.TokenSession):
    """berserk's token session with a default timeout on every request and the per-endpoint 429 pauses."""

    def __init__(self, token: str, network: NetworkSettings, limits: RateLimits, stop: threading.Event,
                 pool_size: int = 16) -> None:
        super().__init__(token)
        self.call_timeout = (network.connect_timeout_seconds, network.read_timeout_seconds)
        self.stream_timeout = (network.connect_timeout_seconds, network.stream_read_timeout_seconds)
        self.rate_limit_seconds = network.rate_limit_seconds
        self.limits = limits
        self.stop = stop
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"  # never the token

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if not args and kwargs.get("timeout") is None:
            kwargs["timeout"] = self.stream_timeout if kwargs.get("stream") else self.call_timeout
        endpoint = endpoint_of(url.decode() if isinstance(url, bytes) else url)
        self.limits.wait(endpoint, self.stop)
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            seconds = retry_after_seconds(response, self.rate_limit_seconds)
            LOG.warning("Lichess answered 429 (too many requests) on %s: pausing that endpoint for %gs",
                        endpoint, seconds)
            self.limits.trip(endpoint, seconds)
        return response


class KeepAliveNdjson(FormatHandler[Any]):
    """NDJSON whose blank keep-alive lines come out as `None`; the stream's response is closed when the
    generator is closed (or garbage collected)."""

    def __init__(self) -> None:
        super().__init__(mime_type="application/x-ndjson")

    def handle(self, response: requests.Response, is_stream: bool,
               converter: Callable[[Any], Any] = utils.noop) -> Any:
        if not is_stream:
            return converter(response.json())
        return self._lines(response, converter)

    @staticmethod
    def _lines(response: requests.Response, converter: Callable[[Any], Any]) -> Iterator[Event | None]:
        try:
            for line in response.iter_lines():
                yield converter(json.loads(line)) if line.strip() else None
        finally:
            response.close()


class Backoff:
    """Exponential backoff with jitter: attempt n waits between half and all of min(maximum, initial * 2^n)."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * 2.0 ** min(attempt, 32))
        return base / 2 + self.rng.uniform(0, base / 2)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: 429, 5xx, timeouts, dropped connections, a stream cut in the middle of a line."""
    if isinstance(exc, ResponseError):
        return bool(exc.status_code == 429 or exc.status_code >= 500)
    return isinstance(exc, (ApiError, requests.RequestException, OSError, ValueError))


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an error answer, None for network errors."""
    return int(exc.status_code) if isinstance(exc, ResponseError) else None


def describe(exc: BaseException) -> str:
    """A one-line description of an error for the log (type and the start of its message)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class LichessApi:
    """berserk's client for the calls the bot makes, with timeouts, retries and the per-endpoint 429 pauses.

    `call` runs one berserk call with retries; `stream` opens an NDJSON stream (keep-alives as None).
    The token lives only in the session's Authorization header.
    """

    def __init__(self, token: str, url: str, network: NetworkSettings, stop: threading.Event,
                 pool_size: int = 16) -> None:
        self.network = network
        self.site = url
        self.stop = stop
        self.limits = RateLimits()
        self.session = TimeoutTokenSession(token, network, self.limits, stop, pool_size=pool_size)
        self.client = berserk.Client(session=self.session, base_url=url)
        self._requestor = Requestor(self.session, url, default_fmt=JSON)
        self.backoff = Backoff(network.backoff_initial_seconds, network.backoff_max_seconds)

    def close(self) -> None:
        self.session.close()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        """Wait `seconds` (less if `wake` is set); raise BotStopped if the bot stops meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, 0.05) if wake is not None else left):
                raise BotStopped()
            if wake is not None and wake.is_set():
                return
        if self.stop.is_set():
            raise BotStopped()

    def call(self, what: str, fn: Callable[..., T], *args: Any, retries: int | None = None, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, retried on transient errors with backoff (at most `retries` times,
        default `max_retries`); the last error, or a non-transient one, is raised."""
        retries = self.network.max_retries if retries is None else retries
        attempt = 0
        while True:
            if self.stop.is_set():
                raise BotStopped()
            try:
                return fn(*args, **kwargs)
            except BotStopped:
                raise
            except Exception as exc:
                if not is_transient(exc) or attempt >= retries:
                    raise
                delay = self.backoff.delay(attempt)
                attempt += 1
                LOG.warning("%s failed (%s); retry %d/%d in %.2fs", what, describe(exc), attempt, retries, delay)
                self.sleep(delay)

    def stream(self, path: str, converter: Callable[[Any], Any] = utils.noop) -> Iterator[Event | None]:
        """Open the NDJSON stream at `path`: events as dicts (through `converter`), keep-alives as None.
        Raises berserk's ResponseError/ApiError if it cannot be opened; reading raises requests errors
        when the connection drops or stays silent past the stream read timeout."""
        return self._requestor.get(path, stream=True, fmt=KeepAliveNdjson(),
                                   converter=converter)

    # ---- the calls (berserk's client where it has them)
    def account(self) -> dict[str, Any]:
        return dict(self.call("fetching the account", self.client.account.get))

    def ongoing_games(self) -> list[dict[str, Any]]:
        return list(self.call("listing ongoing games", self.client.games.get_ongoing, 50))

    def event_stream(self) -> Iterator[Event | None]:
        return self.stream("/api/stream/event")

    def game_stream(self, game_id: str) -> Iterator[Event | None]:
        return self.stream(f"/api/bot/game/stream/{game_id}", converter=models.GameState.convert)

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST through berserk's requestor (for the bot endpoints berserk 0.14's Bots client lacks)."""
        return self._requestor.post(path, **kwargs)

    def make_move(self, game_id: str, uci: str, offering_draw: bool = False) -> None:
        """Play `uci`; with `offering_draw`, offer a draw with it (Lichess's `offeringDraw` parameter)."""
        if offering_draw:
            self.call(f"move {uci} (offering a draw) in game {game_id}", self.post,
                      f"/api/bot/game/{game_id}/move/{uci}", params={"offeringDraw": "true"})
        else:
            self.call(f"move {uci} in game {game_id}", self.client.bots.make_move, game_id, uci)

    def accept_challenge(self, challenge_id: str, retries: int | None = None) -> None:
        self.call(f"accepting challenge {challenge_id}", self.client.bots.accept_challenge, challenge_id,
                  retries=retries)

    def decline_challenge(self, challenge_id: str, reason: str, retries: int | None = None) -> None:
        self.call(f"declining challenge {challenge_id}", self.client.bots.decline_challenge, challenge_id,
                  reason=reason, retries=retries)

    def chat(self, game_id: str, text: str, spectator: bool = False, retries: int | None = None) -> None:
        self.call(f"chat in game {game_id}", self.client.bots.post_message, game_id, text, spectator=spectator,
                  retries=retries)

    def resign(self, game_id: str) -> None:
        self.call(f"resigning game {game_id}", self.client.bots.resign_game, game_id)

    def online_bots(self, limit: int) -> list[dict[str, Any]]:
        """The bots online now (at most `limit`), as Lichess's user JSON (with `perfs`)."""
        def read() -> list[dict[str, Any]]:
            with contextlib.closing(self.stream(f"/api/bot/online?nb={int(limit)}")) as lines:
                return [dict(user) for user in lines if user is not None]
        return self.call("listing online bots", read)

    def create_challenge(self, username: str, rated: bool, base_seconds: int, increment_seconds: int,
                         days: int | None = None) -> dict[str, Any]:
        """Challenge `username` (standard chess, random colour): Lichess's challenge JSON. Not retried:
        a challenge sent twice would be two challenges."""
        data: dict[str, Any] = {"rated": str(rated).lower(), "color": "random", "variant": "standard"}
        if days is not None:
            data["days"] = days
        else:
            data.update({"clock.limit": base_seconds, "clock.increment": increment_seconds})
        return dict(self.call(f"challenging {username}", self.post, f"/api/challenge/{username}", data=data,
                              retries=0))

    def cancel_challenge(self, challenge_id: str) -> None:
        self.call(f"cancelling challenge {challenge_id}", self.post, f"/api/challenge/{challenge_id}/cancel")

    def abort(self, game_id: str) -> None:
        self.call(f"aborting game {game_id}", self.client.bots.abort_game, game_id)

    def answer_draw(self, game_id: str, accept: bool) -> None:
        self.call(f"answering a draw offer in game {game_id}", self.post,
                  f"/api/bot/game/{game_id}/draw/{'yes' if accept else 'no'}")

    def answer_takeback(self, game_id: str, accept: bool) -> None:
        self.call(f"answering a takeback in game {game_id}", self.post,
                  f"/api/bot/game/{game_id}/takeback/{'yes' if accept else 'no'}")

    def claim_victory(self, game_id: str) -> None:
        self.call(f"claiming victory in game {game_id}", self.post, f"/api/bot/game/{game_id}/claim-victory")
