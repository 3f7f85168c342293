"""The Lichess bot under rate limits, against the fake Lichess (a real HTTP server on 127.0.0.1): a 429 pauses
only the endpoint that got it, for `Retry-After` seconds when given, else `rate_limit_seconds`; accepts,
declines and chat never hold up the event stream or a game; a decline that cannot go out in time is dropped."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from gamegpt.bots.api import RateLimits, endpoint_of, retry_after_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_lichess import FakeLichess, Faults, Script
from test_lichess_bot import (TOKEN, assert_token_never_logged, check_game, debug_logs, make_config,  # noqa: F401
                              running_bot, wait_results)

ACCEPT = r"/api/challenge/\w+/accept"
DECLINE = r"/api/challenge/\w+/decline"


def test_endpoint_names_leave_ids_out() -> None:
    base = "https://lichess.org"
    assert endpoint_of(f"{base}/api/bot/game/abcd1234/move/e2e4") == "move"
    assert endpoint_of(f"{base}/api/bot/game/zzzz9999/move/e7e8q?offeringDraw=false") == "move"
    assert endpoint_of(f"{base}/api/bot/game/abcd1234/chat") == "chat"
    assert endpoint_of(f"{base}/api/bot/game/abcd1234/draw/yes") == "draw"
    assert endpoint_of(f"{base}/api/bot/game/stream/abcd1234") == "game stream"
    assert endpoint_of(f"{base}/api/stream/event") == "event stream"
    assert endpoint_of(f"{base}/api/challenge/XyZ12345/accept") == "accept"
    assert endpoint_of(f"{base}/api/challenge/XyZ12345/decline") == "decline"
    assert endpoint_of(f"{base}/api/challenge/SomeBot") == "challenge"
    assert endpoint_of(f"{base}/api/bot/online?nb=50") == "online bots"
    assert endpoint_of(f"{base}/api/account/playing") == "ongoing games"
    assert endpoint_of(f"{base}/api/something/else") == "/api/something/else"


def test_retry_after_header() -> None:
    def answer(value: str | None) -> requests.Response:
        response = requests.Response()
        response.status_code = 429
        if value is not None:
            response.headers["Retry-After"] = value
        return response

    assert retry_after_seconds(answer(None), 60.0) == 60.0
    assert retry_after_seconds(answer("7"), 60.0) == 7.0
    assert retry_after_seconds(answer("0.25"), 60.0) == 0.25
    assert retry_after_seconds(answer("soon"), 60.0) == 60.0
    assert retry_after_seconds(answer("-5"), 60.0) == 0.0
    assert retry_after_seconds(answer("99999999"), 60.0) == 3600.0
    assert retry_after_seconds(answer("Wed, 21 Oct 2015 07:28:00 GMT"), 60.0) == 0.0  # in the past
    limits = RateLimits()
    limits.trip("decline", 0.3)
    assert 0.2 < limits.remaining("decline") <= 0.3 and limits.remaining("move") == 0.0
    assert set(limits.paused()) == {"decline"}
    stop = threading.Event()
    started = time.monotonic()
    limits.wait("move", stop)  # another endpoint: no wait
    assert time.monotonic() - started < 0.1
    limits.wait("decline", stop)
    assert time.monotonic() - started >= 0.25


def test_a_burst_of_challenges_with_429s_loses_no_game(untrained_chess_model: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    """The first decline gets a 429 without Retry-After (decline pauses for rate_limit_seconds, longer than
    decline_within_seconds: the waiting declines are dropped), the second accept a 429 with Retry-After 0.4
    (accept pauses 0.4 s, not the default); meanwhile the first game is played and the event stream read.
    Every accepted game is played to its end; a decline after the pause goes out."""
    pause, retry_after = 1.5, 0.4
    faults = Faults(rate_limited={DECLINE: (1,), ACCEPT: (2,)}, retry_after={ACCEPT: str(retry_after)})
    with FakeLichess(TOKEN, faults=faults) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model, challenge={"max_games": 3},
                             network={"rate_limit_seconds": pause, "decline_within_seconds": 0.5,
                                      "accept_within_seconds": 10.0})
        with running_bot(config) as bot:
            good, bad = [], []
            for number in range(3):
                good.append(fake.challenge(f"Good{number}", script=Script(resign_at_ply=30, move_delay=0.05)))
                bad.append(fake.challenge(f"Odd{number}", variant="chess960"))
            wait_results(fake, bot, good)
            assert fake.wait_for(lambda: fake.pattern_counts.get(DECLINE, 0) >= 1, 5)
            time.sleep(max(0.0, pause - 0.3))  # the decline pause is over by now (it began before the games)
            later = fake.challenge("Later", variant="chess960")
            assert fake.wait_for(lambda: later in fake.declines, 10), fake.declines
        assert sorted(fake.accepted) == sorted(good)
        for game_id in good:
            check_game(fake, fake.games[game_id], bot, status="resign")
        assert fake.declines == {later: "variant"}  # the burst's declines were dropped, not retried for ever
        assert all(b in fake.challenges for b in bad)  # still open on Lichess: answered again on a reconnect
        assert caplog.text.count("dropped: not sent in time") == len(bad)
        log = sorted(fake.requests)
        decline_hit = next(t for t, _, path, status in log if status == 429 and endpoint_of(path) == "decline")
        accept_hit = next(t for t, _, path, status in log if status == 429 and endpoint_of(path) == "accept")
        declines = [t for t, _, path, _ in log if endpoint_of(path) == "decline" and t > decline_hit]
        assert declines and declines[0] >= decline_hit + pause - 0.05  # no decline during its pause
        accepts = [t for t, _, path, _ in log if endpoint_of(path) == "accept" and t > accept_hit]
        assert accepts and accept_hit + retry_after - 0.05 <= accepts[0] < accept_hit + pause - 0.3  # Retry-After
        moves = [t for t, _, path, _ in log if endpoint_of(path) == "move" and decline_hit < t < decline_hit + pause]
        assert moves, "no move while declines were paused"
        assert "pausing that endpoint for 1.5s" in caplog.text and "pausing that endpoint for 0.4s" in caplog.text
        assert fake.errors == []
    assert_token_never_logged(caplog, capfd)


def test_chat_paused_by_429_never_delays_a_move(untrained_chess_model: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Every chat line gets 429 with a long Retry-After: the games go on at full speed, the lines are dropped."""
    faults = Faults(rate_limited={r"/api/bot/game/\w+/chat": tuple(range(1, 50))},
                    retry_after={r"/api/bot/game/\w+/chat": "30"})
    with FakeLichess(TOKEN, faults=faults) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model,
                             network={"chat_within_seconds": 0.5, "rate_limit_seconds": 30})
        with running_bot(config) as bot:
            ids = [fake.challenge("Alice", color="white", script=Script(resign_at_ply=20)),
                   fake.challenge("Bob", color="black", script=Script(resign_at_ply=20))]
            wait_results(fake, bot, ids, timeout=20)
        for game_id in ids:
            game = fake.games[game_id]
            check_game(fake, game, bot, status="resign")
            assert game.chat == []
            assert max(game.bot_move_times) < 5.0  # no move waited for the 30 s chat pause
        assert "chat in game" in caplog.text and "dropped" in caplog.text
