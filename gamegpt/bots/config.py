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
BOOK_SELECTIONS = ("weighted", "best")
LICHESS_BOT_GAMES_PER_DAY = 100
"""Lichess lets a bot play this many games a day against other bots (games against humans are unlimited)."""
HOWTO = ("I am a small GPT that learned chess by reading games. Run your own with the gamegpt package: "
         "gamegpt bot lichess --config my-bot.yaml")


@dataclass
class EngineSettings:
    """How the model plays: which model, its decoding (the keys and defaults of
    `gamegpt.engine.settings.DecodingSettings`; an illegal `raw`/`retry` sample falls back to masked
    decoding), how it spends the clock, and an optional Polyglot opening book (`book`: a .bin path, empty
    for none) consulted for the first `book_depth` plies, its moves picked by weight or the best one."""

    model: str = "chessgpt"
    policy: str = DEFAULTS.policy
    temperature: float = DEFAULTS.temperature
    top_k: int = DEFAULTS.top_k
    seed: int = DEFAULTS.seed
    threads: int = DEFAULTS.threads
    move_overhead_ms: int = DEFAULTS.move_overhead_ms
    avoid_repetition: bool = DEFAULTS.avoid_repetition
    first_move_seconds: float = 5.0
    correspondence_move_seconds: float = 20.0
    book: str = ""
    book_depth: int = 20
    book_selection: str = "weighted"

    @property
    def decoding(self) -> DecodingSettings:
        """The decoding settings of this section (ConfigError naming the bad key)."""
        try:
            return DecodingSettings(policy=self.policy, temperature=self.temperature, top_k=self.top_k,
                                    seed=self.seed, threads=self.threads, move_overhead_ms=self.move_overhead_ms,
                                    avoid_repetition=self.avoid_repetition)
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
    max_correspondence_games: int = 10


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
    chat_commands: bool = True
    howto: str = HOWTO


@dataclass
class ResignRules:
    """Resigning, off by default: when the evaluation from the bot's side (the static evaluation,
    `engine.evaluation.static_evaluation`: the model has no value head) is at most `score` centipawns at
    `moves` of the bot's turns in a row."""

    enabled: bool = False
    score: int = -1000
    moves: int = 3


@dataclass
class DrawRules:
    """Offering and accepting draws, off by default: in a dead-drawn position (no pawns, at most one bishop
    or knight a side) when `dead_draws`, or when the absolute evaluation has been at most `score` for
    `moves` of the bot's turns in a row with at most `max_pieces` pieces on the board. An offer is repeated
    at most every `moves` turns; the opponent's offer is accepted in such a position whatever
    `games.draw_offers` says."""

    enabled: bool = False
    dead_draws: bool = True
    score: int = 30
    moves: int = 10
    max_pieces: int = 10


@dataclass
class MatchmakingSettings:
    """Challenging other bots when idle, off by default: after `idle_seconds` without a game, a random online
    bot rated `rating_min`..`rating_max` in the time control's speed gets a `base_seconds`+`increment_seconds`
    challenge (cancelled after `challenge_timeout_seconds` unanswered). A bot that declines is left alone
    for `decline_backoff_seconds`, doubled at each further decline. Games against bots (challenged or
    accepted) are counted per UTC day in `count_file` (default `<pgn_dir>/bot-games-per-day.json`); at
    `bot_games_per_day` no bot is challenged and bots' challenges are declined with `later`."""

    enabled: bool = False
    idle_seconds: float = 60.0
    rating_min: int = 0
    rating_max: int = 4000
    base_seconds: int = 180
    increment_seconds: int = 2
    rated: bool = False
    challenge_timeout_seconds: float = 30.0
    decline_backoff_seconds: float = 600.0
    bot_games_per_day: int = LICHESS_BOT_GAMES_PER_DAY
    count_file: str = ""


@dataclass
class CorrespondenceSettings:
    """Correspondence games hold no thread while the opponent thinks: a game's thread ends
    `disconnect_seconds` after the bot's move and wakes when Lichess announces the game again, or when
    the check every `checkin_seconds` finds it is the bot's move."""

    checkin_seconds: float = 60.0
    disconnect_seconds: float = 10.0


@dataclass
class NetworkSettings:
    """Timeouts, retries and backoff. Stream reads time out after `stream_read_timeout_seconds` of silence
    (Lichess sends a keep-alive line every few seconds); a 429 pauses the endpoint that got it (only that
    one) for the answer's `Retry-After` seconds, else `rate_limit_seconds` (Lichess asks for a full minute).
    Accepts, declines and chat lines are sent from a queue of their own, so they never hold up a game; one
    not sent within `accept_within_seconds` / `decline_within_seconds` / `chat_within_seconds` is dropped."""

    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    stream_read_timeout_seconds: float = 20.0
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    max_retries: int = 6
    max_reconnects: int = 12
    rate_limit_seconds: float = 60.0
    accept_within_seconds: float = 90.0
    decline_within_seconds: float = 20.0
    chat_within_seconds: float = 30.0


@dataclass
class BotConfig:
    """The whole config file. `token` is hidden from repr; prefer the environment variable."""

    url: str = "https://lichess.org"
    token: str | None = field(default=None, repr=False)
    engine: EngineSettings = field(default_factory=EngineSettings)
    challenge: ChallengeRules = field(default_factory=ChallengeRules)
    games: GameSettings = field(default_factory=GameSettings)
    resign: ResignRules = field(default_factory=ResignRules)
    draw: DrawRules = field(default_factory=DrawRules)
    matchmaking: MatchmakingSettings = field(default_factory=MatchmakingSettings)
    correspondence: CorrespondenceSettings = field(default_factory=CorrespondenceSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)

    @property
    def count_file(self) -> Path:
        """Where the games against bots are counted per day."""
        return Path(self.matchmaking.count_file or Path(self.games.pgn_dir) / "bot-games-per-day.json")

    def validate(self) -> "BotConfig":
        """Check ranges and choices; raise ConfigError (one line) on the first bad value. Returns self."""
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url must start with http:// or https://, got {self.url!r}")
        e, c, g, n = self.engine, self.challenge, self.games, self.network
        e.decoding  # noqa: B018 - builds (and so checks) the decoding settings
        _positive("engine.first_move_seconds", e.first_move_seconds)
        _positive("engine.correspondence_move_seconds", e.correspondence_move_seconds)
        _at_least("engine.book_depth", e.book_depth, 0)
        _choice("engine.book_selection", e.book_selection, BOOK_SELECTIONS)
        if e.book and not Path(e.book).is_file():
            raise ConfigError(f"engine.book: no such file: {e.book}")
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
        _at_least("challenge.max_correspondence_games", c.max_correspondence_games, 0)
        _choice("games.draw_offers", g.draw_offers, DRAW_POLICIES)
        _at_least("games.max_takebacks", g.max_takebacks, 0)
        _positive("games.abort_after_seconds", g.abort_after_seconds)
        _at_least("resign.moves", self.resign.moves, 1)
        _at_least("draw.moves", self.draw.moves, 1)
        _at_least("draw.score", self.draw.score, 0)
        _at_least("draw.max_pieces", self.draw.max_pieces, 2)
        m = self.matchmaking
        for name in ("idle_seconds", "challenge_timeout_seconds", "decline_backoff_seconds"):
            _positive(f"matchmaking.{name}", getattr(m, name))
        _at_least("matchmaking.rating_min", m.rating_min, 0)
        if m.rating_max < m.rating_min:
            raise ConfigError(f"matchmaking.rating_max ({m.rating_max}) is below matchmaking.rating_min ({m.rating_min})")
        _at_least("matchmaking.base_seconds", m.base_seconds, 0)
        _at_least("matchmaking.increment_seconds", m.increment_seconds, 0)
        if m.base_seconds + m.increment_seconds == 0:
            raise ConfigError("matchmaking.base_seconds and matchmaking.increment_seconds are both 0")
        _at_least("matchmaking.bot_games_per_day", m.bot_games_per_day, 0)
        if m.bot_games_per_day > LICHESS_BOT_GAMES_PER_DAY:
            raise ConfigError(f"matchmaking.bot_games_per_day must be at most Lichess's limit "
                              f"{LICHESS_BOT_GAMES_PER_DAY}, got {m.bot_games_per_day}")
        _positive("correspondence.checkin_seconds", self.correspondence.checkin_seconds)
        _positive("correspondence.disconnect_seconds", self.correspondence.disconnect_seconds)
        for name in ("greeting", "goodbye", "spectator_greeting", "howto"):
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
