"""Player specs: the short text that names a player, and the registry that builds the player.

    NAME[:KEY=VALUE,KEY=VALUE...]

e.g. `newell-simon`, `random`, `human`, `newell-simon:noise=0.05`,
`model:path=models/tictactoe,temperature=0.001,policy=mask`; for chess `stockfish:skill=3,nodes=1000`,
`stockfish:elo=1500,movetime=50`, `stockfish:skill=0-9` (a level drawn per game) and
`uci:cmd=/path/to/engine,depth=8,opt_hash=32` (any UCI engine). Any player takes `noise=P`, which wraps it
in `Noisy(player, P)`. A value with a comma (or that starts with a quote or has spaces at its ends) is written in double quotes
(`model:path="runs/a,b/model"`; `\\"` and `\\\\` inside); `PlayerSpec` writes and reads them so.

Programs build specs as data (`PlayerSpec("model", {"path": p, "temperature": "0.1"})`, `with_options`) and
turn them into text only to show or store them; text is parsed once, by `PlayerSpec.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from gamegpt.errors import ConfigError, PlayerSpecError
from gamegpt.players.base import Noisy, Player, RandomPlayer



@dataclass(frozen=True)
class PlayerSpec:
    """A player's name (lower case, aliases resolved) and its options, in order (keys lower case with
    `_` for `-`; values as text)."""

    name: str
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = self.name.strip().lower()
        object.__setattr__(self, "name", ALIASES.get(name, name))
        object.__setattr__(self, "options", {_key(k): _text(v) for k, v in self.options.items()})

    @classmethod
    def parse(cls, text: "str | PlayerSpec") -> "PlayerSpec":
        """Read `NAME[:KEY=VALUE,...]`; PlayerSpecError naming the problem when malformed."""
        if isinstance(text, PlayerSpec):
            return text
        name, _, rest = text.strip().partition(":")
        if not name.strip():
            raise PlayerSpecError(f"empty player name in spec {text!r}")
        options: dict[str, str] = {}
        for key, value in _items(rest, text):
            options[_key(key)] = value
        return cls(name, options)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def with_options(self, **changes: Any) -> "PlayerSpec":
        """A copy with options added or replaced (None removes one); values are written as text."""
        options = dict(self.options)
        for key, value in changes.items():
            if value is None:
                options.pop(_key(key), None)
            else:
                options[_key(key)] = _text(value)
        return PlayerSpec(self.name, options)

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{key}={_quoted(value)}" for key, value in self.options.items())


def _key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quoted(value: str) -> str:
    if "," not in value and not value.startswith('"') and value == value.strip():
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _items(rest: str, spec: str) -> list[tuple[str, str]]:
    """The KEY=VALUE items of a spec's option text, honouring double quotes."""
    items: list[tuple[str, str]] = []
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        equals = rest.find("=", i)
        comma = rest.find(",", i)
        if equals < 0 or (0 <= comma < equals):
            item = rest[i:comma if comma >= 0 else n].strip()
            raise PlayerSpecError(f"bad option {item!r} in player spec {spec!r} (expected KEY=VALUE)")
        key = rest[i:equals].strip()
        if not key:
            raise PlayerSpecError(f"bad option {rest[i:equals + 1]!r} in player spec {spec!r} (expected KEY=VALUE)")
        i = equals + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            chars: list[str] = []
            i += 1
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise PlayerSpecError(f"unclosed quote in option {key!r} of player spec {spec!r}")
            i += 1
            tail = rest.find(",", i)
            if rest[i:tail if tail >= 0 else n].strip():
                raise PlayerSpecError(f"text after the quoted value of option {key!r} in player spec {spec!r}")
            value = "".join(chars)
            i = tail if tail >= 0 else n
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            value = rest[i:end].strip()
            i = end
        items.append((key, value))
    return items


# --------------------------------------------------------------------------- the registry
Factory = Callable[[str, dict[str, str]], Player]


def _no_options(cls: Callable[[], Player], games: tuple[str, ...] | None = None) -> Factory:
    def build(game: str, options: dict[str, str]) -> Player:
        if games is not None and game not in games:
            raise PlayerSpecError(f"player {cls.name!r} does not play {game}")  # type: ignore[attr-defined]
        if options:
            raise PlayerSpecError(f"player {cls.name!r} takes no option {', '.join(options)}")  # type: ignore[attr-defined]
        return cls()
    return build


def _newell_simon(game: str, options: dict[str, str]) -> Player:
    from gamegpt.players.newell_simon import NewellSimonPlayer
    return _no_options(NewellSimonPlayer, ("tictactoe",))(game, options)


def _human(game: str, options: dict[str, str]) -> Player:
    from gamegpt.players.human import HumanPlayer
    return _no_options(HumanPlayer)(game, options)


def _model(game: str, options: dict[str, str]) -> Player:
    """path (default: the shipped model of the game), device, and the decoding settings policy,
    temperature, top_k, avoid_repetition (`gamegpt.engine.settings`; the same defaults as the UCI engine
    and the bot)."""
    from gamegpt.engine.model_player import load_model_player
    from gamegpt.engine.settings import DecodingSettings

    path = options.pop("path", game)
    device = options.pop("device", "cpu")
    decoding = {key: options.pop(key) for key in ("policy", "temperature", "top_k", "avoid_repetition")
                if key in options}
    _no_more(options, "model", "path, device, policy, temperature, top_k, avoid_repetition")
    try:
        settings = DecodingSettings.from_mapping(decoding)
    except ConfigError as exc:
        raise PlayerSpecError(f"player 'model': {exc}") from None
    return load_model_player(path, game, device=device, settings=settings)


def _stockfish(game: str, options: dict[str, str]) -> Player:
    """skill (N or LOW-HIGH), elo, nodes, depth, movetime, threads, hash, path, timeout (seconds to wait
    for a move before giving up)."""
    from gamegpt.players.stockfish import StockfishPlayer, parse_skill

    _plays_chess("stockfish", game)
    kwargs: dict[str, Any] = {
        "skill": option(options, "skill", parse_skill, None, "stockfish"),
        "elo": option(options, "elo", int, None, "stockfish"),
        "path": options.pop("path", None),
        "timeout": option(options, "timeout", float, None, "stockfish"),
    }
    for key in ("nodes", "depth", "movetime", "threads", "hash"):
        value = option(options, key, int, None, "stockfish")
        if value is not None:
            kwargs[key] = value
    _no_more(options, "stockfish", "skill, elo, nodes, depth, movetime, threads, hash, path, timeout")
    return StockfishPlayer(**kwargs)


def _uci(game: str, options: dict[str, str]) -> Player:
    """`cmd` (the engine command), `nodes`/`depth`/`movetime` (ms), `timeout` (s), and `opt_<name>=<value>`
    for any engine option (underscores read as spaces: `opt_skill_level=5`, `opt_hash=32`)."""
    from gamegpt.players.limits import SearchLimits
    from gamegpt.players.uci import UciPlayer

    _plays_chess("uci", game)
    command = options.pop("cmd", None)
    if not command:
        raise PlayerSpecError("player 'uci' needs cmd=ENGINE (e.g. uci:cmd=/usr/games/stockfish,nodes=1000)")
    limits = {key: option(options, key, _positive_int, None, "uci") for key in ("nodes", "depth", "movetime")}
    timeout = option(options, "timeout", float, None, "uci")
    engine_options = {key[4:].replace("_", " "): options.pop(key) for key in list(options) if key.startswith("opt_")}
    _no_more(options, "uci", "cmd, nodes, depth, movetime, timeout, opt_<name>")
    stated = SearchLimits(**limits)
    return UciPlayer(command, options=engine_options, limits=stated if stated.has_fixed_limit else None,
                     timeout=timeout)


PLAYERS: dict[str, Factory] = {
    "random": _no_options(RandomPlayer),
    "newell-simon": _newell_simon,
    "human": _human,
    "model": _model,
    "stockfish": _stockfish,
    "uci": _uci,
}
ALIASES = {"ns": "newell-simon", "perfect": "newell-simon"}


def make_player(spec: "str | PlayerSpec", game: str) -> Player:
    """Build the player a spec names, for the named game; PlayerSpecError for a bad spec."""
    spec = PlayerSpec.parse(spec)
    if spec.name not in PLAYERS:
        known = ", ".join(sorted(PLAYERS))
        raise PlayerSpecError(f"unknown player {spec.name!r} in spec {str(spec)!r}; known players: {known}")
    options = dict(spec.options)
    noise = options.pop("noise", None)
    player = PLAYERS[spec.name](game, options)
    if noise is not None:
        try:
            rate = float(noise)
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            raise PlayerSpecError(f"noise must be a number in [0, 1], got {noise!r} in spec {str(spec)!r}")
        player = Noisy(player, rate)
    return player


def with_noise(spec: "str | PlayerSpec", noise: float | None) -> PlayerSpec:
    """`spec` with `noise=` added, unless `noise` is None or 0 or the spec states its own."""
    spec = PlayerSpec.parse(spec)
    if not noise or "noise" in spec.options:
        return spec
    return spec.with_options(noise=noise)


def option(options: dict[str, Any], key: str, kind: Callable[[str], Any], default: Any, spec_name: str) -> Any:
    """Pop and convert one option of a spec, with a PlayerSpecError naming it when the value is bad."""
    if key not in options:
        return default
    raw = options.pop(key)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise PlayerSpecError(f"bad value {raw!r} for option {key!r} of player {spec_name!r}") from None


def _no_more(options: dict[str, str], name: str, known: str) -> None:
    if options:
        raise PlayerSpecError(f"player {name!r} has no option {', '.join(sorted(options))} (it has {known})")


def _plays_chess(name: str, game: str) -> None:
    if game != "chess":
        raise PlayerSpecError(f"player {name!r} plays chess, not {game}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value
