"""Calls that must never hold up the event stream or a game's moves: accepts, declines, chat lines.

`Outbox.submit` queues a call and returns at once; the outbox's own thread sends the calls in order, one
endpoint's calls strictly first in, first out (a game's greeting before its goodbye), skipping past an
endpoint that a 429 has paused to the calls of open ones. A call that cannot be sent by its deadline (its
endpoint paused too long, or failing) is dropped, with a log line, never retried for ever: a late decline
is worth nothing, and Lichess sends an open challenge again when the event stream reconnects.

A 429 answer leaves the call at the head of its endpoint's queue (the session has paused the endpoint);
5xx answers and network errors are retried with the API's backoff, at most `max_retries` times; any other
error drops the call (a challenge already gone answers 404).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gamegpt.bots.api import BotStopped, LichessApi, describe, is_transient, status_of

LOG = logging.getLogger("gamegpt.bots.outbox")
MAX_QUEUED = 200
"""At most this many calls wait; a call submitted beyond it is dropped at once (a chat flood, a challenge
storm), so the queue and its memory stay bounded."""


@dataclass
class OutgoingCall:
    """One queued call. `done` is set once it was sent or dropped; `sent` says which."""

    what: str
    endpoint: str
    send: Callable[[], Any]
    deadline: float
    on_sent: Callable[[], None] | None = None
    on_dropped: Callable[[str], None] | None = None
    attempts: int = 0
    not_before: float = 0.0
    sent: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Outbox:
    """A queue of calls sent by one daemon thread (`start()`; it ends when `stop` is set)."""

    def __init__(self, api: LichessApi, stop: threading.Event) -> None:
        self.api = api
        self.stop = stop
        self._calls: list[OutgoingCall] = []
        self._changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self.dropped = 0
        self.sent = 0

    def start(self) -> None:
        self.thread.start()

    def submit(self, what: str, endpoint: str, send: Callable[[], Any], within: float,
               on_sent: Callable[[], None] | None = None,
               on_dropped: Callable[[str], None] | None = None) -> OutgoingCall:
        """Queue `send()` (a call to `endpoint`, described by `what` in the log) to go out within `within`
        seconds; returns at once. `on_sent`/`on_dropped(reason)` run in the outbox thread."""
        call = OutgoingCall(what, endpoint, send, time.monotonic() + within, on_sent, on_dropped)
        with self._changed:
            full = len(self._calls) >= MAX_QUEUED
            if not full:
                self._calls.append(call)
                self._changed.notify_all()
        if full:
            self._drop(call, f"{MAX_QUEUED} calls already wait")
        return call

    def waiting(self, endpoint: str | None = None) -> int:
        """How many calls wait (to `endpoint`, or to any)."""
        with self._changed:
            return sum(1 for c in self._calls if endpoint is None or c.endpoint == endpoint)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                call = self._next()
                if call is not None:
                    self._send(call)
        except BotStopped:
            pass
        finally:
            with self._changed:
                left, self._calls = self._calls, []
            for call in left:
                self._drop(call, "the bot stopped")

    def _next(self) -> OutgoingCall | None:
        """The first call that may go now (expired ones dropped on the way), or None after waiting until
        something may have changed (a new call, an endpoint reopening, a deadline, at most 1 s)."""
        expired: list[OutgoingCall] = []
        chosen: OutgoingCall | None = None
        with self._changed:
            now = time.monotonic()
            wake = now + 1.0
            heads: set[str] = set()
            for call in list(self._calls):
                if call.deadline <= now:
                    self._calls.remove(call)
                    expired.append(call)
                    continue
                if call.endpoint in heads:
                    continue  # first in, first out within an endpoint
                heads.add(call.endpoint)
                ready_at = max(call.not_before, now + self.api.limits.remaining(call.endpoint))
                if ready_at <= now:
                    self._calls.remove(call)
                    chosen = call
                    break
                wake = min(wake, ready_at, call.deadline)
            if chosen is None and not expired:
                self._changed.wait(max(0.0, wake - now))
        for call in expired:
            paused = self.api.limits.remaining(call.endpoint)
            self._drop(call, f"not sent in time ({call.endpoint} paused for {paused:.1f}s more after a 429)"
                       if paused > 0 else "not sent in time")
        return chosen

    def _send(self, call: OutgoingCall) -> None:
        try:
            call.send()
        except BotStopped:
            self._requeue(call)
            raise
        except Exception as exc:
            if status_of(exc) == 429:  # the session paused the endpoint: the call waits at its queue's head
                self._requeue(call)
                return
            if not is_transient(exc) or call.attempts >= self.api.network.max_retries:
                self._drop(call, describe(exc))
                return
            call.not_before = time.monotonic() + self.api.backoff.delay(call.attempts)
            call.attempts += 1
            LOG.warning("%s failed (%s); retry %d/%d", call.what, describe(exc), call.attempts,
                        self.api.network.max_retries)
            self._requeue(call)
            return
        call.sent = True
        self.sent += 1
        call.done.set()
        if call.on_sent is not None:
            try:
                call.on_sent()
            except Exception:  # a callback's bug must not end the outbox
                LOG.exception("after sending %s", call.what)

    def _requeue(self, call: OutgoingCall) -> None:
        with self._changed:
            self._calls.insert(0, call)
            self._changed.notify_all()

    def _drop(self, call: OutgoingCall, reason: str) -> None:
        self.dropped += 1
        LOG.warning("%s dropped: %s", call.what, reason)
        call.done.set()
        if call.on_dropped is not None:
            try:
                call.on_dropped(reason)
            except Exception:  # a callback's bug must not end the outbox
                LOG.exception("after dropping %s", call.what)
