"""Which challenges the bot accepts, and the reason Lichess shows the challenger when it declines.

Lichess's decline reasons: generic, later, tooFast, tooSlow, timeControl, rated, casual, standard,
variant, noBot, onlyBot. The rules come from the config's `challenge:` section; a challenge that breaks
a rule gets that rule's reason even when the bot is also busy, so the challenger learns what to change;
`later` is for a good challenge that arrives while `max_games` games run.
"""

from __future__ import annotations

from typing import Any

from gamegpt.bots.config import SPEEDS, ChallengeRules


def is_bot(user: dict[str, Any] | None) -> bool:
    """Whether a Lichess user (challenger, opponent) is a BOT account."""
    return bool(user) and str(user.get("title") or "").upper() == "BOT"  # type: ignore[union-attr]


def decline_reason(challenge: dict[str, Any], rules: ChallengeRules, busy_games: int) -> str | None:
    """None to accept `challenge` (Lichess's challenge JSON), else the decline reason.
    `busy_games` counts the games running plus challenges accepted whose game has not started yet."""
    challenger = challenge.get("challenger") or {}
    names = {str(challenger.get(k, "")).lower() for k in ("id", "name")} - {""}
    if names & {name.lower() for name in rules.blocked}:
        return "generic"
    if is_bot(challenger):
        if not rules.accept_bots:
            return "noBot"
    elif not rules.accept_humans:
        return "onlyBot"
    variant = str((challenge.get("variant") or {}).get("key", "standard"))
    if variant not in rules.variants:
        return "standard" if variant == "standard" else "variant"
    reason = _time_control_reason(challenge, rules)
    if reason is not None:
        return reason
    rated = bool(challenge.get("rated"))
    if rated and "rated" not in rules.modes:
        return "casual"
    if not rated and "casual" not in rules.modes:
        return "rated"
    if busy_games >= rules.max_games:
        return "later"
    return None


def _time_control_reason(challenge: dict[str, Any], rules: ChallengeRules) -> str | None:
    speed = str(challenge.get("speed") or "correspondence")
    if speed not in rules.speeds:
        if speed not in SPEEDS:
            return "timeControl"
        index = SPEEDS.index(speed)
        allowed = [SPEEDS.index(s) for s in rules.speeds]
        if allowed and min(allowed) > index:
            return "tooFast"
        if allowed and max(allowed) < index:
            return "tooSlow"
        return "timeControl"
    control = challenge.get("timeControl") or {}
    if control.get("type") != "clock":
        return None
    base, increment = int(control.get("limit", 0)), int(control.get("increment", 0))
    if base < rules.min_base_seconds or increment < rules.min_increment_seconds:
        return "tooFast"
    if base > rules.max_base_seconds or increment > rules.max_increment_seconds:
        return "tooSlow"
    return None
