"""The Lichess bot's YAML config: everything a user tunes in one file (see configs/lichess-bot.yaml).

`load_config(path)` reads and validates it; any problem (unknown key, wrong type, value out of range,
a variant the model cannot play) raises `ConfigError` with one line naming the key. `resolve_token`
takes the token from an environment variable (LICHESS_BOT_TOKEN by default) or else the file's `token:`;
the token is kept out of the config's repr and out of every message.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from gamegpt.engine.settings import DEFAULTS, DecodingSettings
from gamegpt.errors import ConfigError

TOKEN_ENV = "LICHESS_BOT_TOKEN"
SPEEDS = ("ultraBullet", "bullet", "blitz", "rapid", "classical", "correspondence")
"""Lichess's speed categories, fastest first (unlimited games count as correspondence)."""
PLAYABLE_VARIANTS = ("standard", "fromPosition")
"""Variants the model can play: chess from the standard start, or from a given position (python-chess
rules; a model without start-position encoding plays those off its training distribution)."""
MODES = ("casual", "rated")
DRAW_POLICIES = ("decline", "accept", "accept_when_behind")


@dataclass
class EngineSettings:
    """How the model plays: which model, its decoding (the keys and defaults of
    `gamegpt.engine.settings.DecodingSettings`; an illegal `raw`/`retry` sample falls back to masked
    decoding), and how it spends the clock."""

    model: str = "chessgpt"
    policy: str = DEFAULTS.policy
    temperature: float = DEFAULTS.temperature
    top_k: int = DEFAULTS.top_k
    seed: int = DEFAULTS.seed
    threads: int = DEFAULTS.threads
    move_overhead_ms: int = DEFAULTS.move_overhead_ms
    first_move_seconds: float = 5.0
    correspondence_move_seconds: float = 20.0

    @property
    def decoding(self) -> DecodingSettings:
        """The decoding settings of this section (ConfigError naming the bad key)."""
        try:
            return DecodingSettings(policy=self.policy, temperature=self.temperature, top_k=self.top_k,
                                    seed=self.seed, threads=self.threads, move_overhead_ms=self.move_overhead_ms)
        except ConfigError as exc:
            raise ConfigError(f"engine.{exc}") from None


@dataclass
class ChallengeRules:
    """Which challenges are accepted; the others are declined with the reason Lichess shows the challenger."""

    variants: list[str] = field(default_factory=lambda: ["standard"])
    speeds: list[str] = field(default_factory=lambda: ["bullet", "blitz", "rapid", "classical"])
    min_base_seconds: int = 0
    max_base_seconds: int = 3 * 3600
    min_increment_seconds: int = 0
    max_increment_seconds: int = 180
    modes: list[str] = field(default_factory=lambda: ["casual", "rated"])
    accept_bots: bool = True
    accept_humans: bool = True
    max_games: int = 2
    blocked: list[str] = field(default_factory=list)


@dataclass
class GameSettings:
    """Manners during a game: chat, draw offers, takebacks, aborts, victory claims; where games are saved."""

    greeting: str = "Hi {opponent}! I am {me}, a small GPT that learned chess only by reading games. Good luck!"
    goodbye: str = "Thanks for the game, {opponent}!"
    spectator_greeting: str = ""
    draw_offers: str = "decline"
    behind_centipawns: int = 200
    max_takebacks: int = 0
    abort_after_seconds: float = 30.0
    claim_victory: bool = True
    pgn_dir: str = "lichess-games"


@dataclass
class NetworkSettings:
    """Timeouts, retries and backoff. Stream reads time out after `stream_read_timeout_seconds` of silence
    (Lichess sends a keep-alive line every few seconds); a 429 pauses every request for
    `rate_limit_seconds` (Lichess asks for a full minute)."""

    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    stream_read_timeout_seconds: float = 20.0
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    max_retries: int = 6
    max_reconnects: int = 12
    rate_limit_seconds: float = 60.0


@dataclass
class BotConfig:
    """The whole config file. `token` is hidden from repr; prefer the environment variable."""

    url: str = "https://lichess.org"
    token: str | None = field(default=None, repr=False)
    engine: EngineSettings = field(default_factory=EngineSettings)
    challenge: ChallengeRules = field(default_factory=ChallengeRules)
    games: GameSettings = field(default_factory=GameSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)

    def validate(self) -> "BotConfig":
        """Check ranges and choices; raise ConfigError (one line) on the first bad value. Returns self."""
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url must start with http:// or https://, got {self.url!r}")
        e, c, g, n = self.engine, self.challenge, self.games, self.network
        e.decoding  # noqa: B018 - builds (and so checks) the decoding settings
        _positive("engine.first_move_seconds", e.first_move_seconds)
        _positive("engine.correspondence_move_seconds", e.correspondence_move_seconds)
        for variant in c.variants:
            if variant not in PLAYABLE_VARIANTS:
                raise ConfigError(f"challenge.variants: the model cannot play {variant!r}; "
                                  f"choose from {', '.join(PLAYABLE_VARIANTS)}")
        for speed in c.speeds:
            _choice("challenge.speeds", speed, SPEEDS)
        for mode in c.modes:
            _choice("challenge.modes", mode, MODES)
        for low, high in (("min_base_seconds", "max_base_seconds"),
                          ("min_increment_seconds", "max_increment_seconds")):
            _at_least(f"challenge.{low}", getattr(c, low), 0)
            if getattr(c, high) < getattr(c, low):
                raise ConfigError(f"challenge.{high} ({getattr(c, high)}) is below challenge.{low} ({getattr(c, low)})")
        _at_least("challenge.max_games", c.max_games, 1)
        _choice("games.draw_offers", g.draw_offers, DRAW_POLICIES)
        _at_least("games.max_takebacks", g.max_takebacks, 0)
        _positive("games.abort_after_seconds", g.abort_after_seconds)
        for name in ("greeting", "goodbye", "spectator_greeting"):
            _check_template(f"games.{name}", getattr(g, name))
        for f in dataclasses.fields(n):
            value = getattr(n, f.name)
            if f.name in ("max_retries", "max_reconnects"):
                _at_least(f"network.{f.name}", value, 0)
            else:
                _positive(f"network.{f.name}", value)
        if n.backoff_max_seconds < n.backoff_initial_seconds:
            raise ConfigError("network.backoff_max_seconds is below network.backoff_initial_seconds")
        return self


def load_config(path: str | Path | None) -> BotConfig:
    """The config in the YAML file at `path` (None: all defaults), validated; ConfigError on any problem."""
    if path is None:
        return BotConfig().validate()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    return config_from_dict({} if data is None else data, source=str(path))


def config_from_dict(data: Any, source: str = "config") -> BotConfig:
    """Build and validate a BotConfig from parsed YAML; ConfigError names the bad key."""
    config: BotConfig = _build(BotConfig, data, source, "")
    return config.validate()


def resolve_token(config: BotConfig, env_name: str = TOKEN_ENV) -> str:
    """The API token: the environment variable `env_name` if set, else the config's `token`.
    ConfigError if neither is given or the token is malformed (the message never contains it)."""
    token = os.environ.get(env_name, "").strip() or (config.token or "").strip()
    if not token:
        raise ConfigError(f"no Lichess API token: set the environment variable {env_name} "
                          "(or `token:` in the config file) to a token with the bot:play scope")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise ConfigError("the Lichess API token contains spaces or unprintable characters")
    return token


# --------------------------------------------------------------------------- helpers
def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, checking keys and value types against its annotations."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]} (known in {where}: {', '.join(names)})")
    values: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        key = f"{prefix}{name}"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[name] = _build(hint, {} if value is None else value, source, key + ".")
        else:
            values[name] = _coerce(hint, value, source, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    """`value` checked against a simple annotation: bool, int, float, str, list[str], X | None."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(args[0], value, source, key)
    if origin is list:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return [_coerce(typing.get_args(hint)[0], item, source, key) for item in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be text, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config annotation {hint!r} for {key}")  # a bug, not a user error


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value!r}")


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key} must be positive, got {value!r}")


def _check_template(key: str, text: str) -> None:
    try:
        text.format(me="me", opponent="opponent")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"{key} may only use the placeholders {{me}} and {{opponent}}: {text!r}") from None
