"""Player specs: the short text that names a player on the command line.

    NAME[:KEY=VALUE,KEY=VALUE...]

e.g. `newell-simon`, `random`, `human`, `newell-simon:noise=0.05`,
`model:path=models/tictactoe,temperature=0.001,policy=mask`; for chess `stockfish:skill=3,nodes=1000`,
`stockfish:elo=1500,movetime=50`, `stockfish:skill=0-9` (a level drawn per game) and
`uci:cmd=/path/to/engine,depth=8,opt_hash=32` (any UCI engine). Any player takes `noise=P`, which wraps it
in `Noisy(player, P)`.
"""

from __future__ import annotations

from typing import Any, Callable

from gamegpt.errors import PlayerSpecError
from gamegpt.players.base import Noisy, Player, RandomPlayer

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
    from gamegpt.engine.model_player import model_player_from_options
    return model_player_from_options(game, options)


def _stockfish(game: str, options: dict[str, str]) -> Player:
    from gamegpt.players.stockfish import stockfish_from_options
    return stockfish_from_options(game, options)


def _uci(game: str, options: dict[str, str]) -> Player:
    from gamegpt.players.uci import uci_player_from_options
    return uci_player_from_options(game, options)


PLAYERS: dict[str, Factory] = {
    "random": _no_options(RandomPlayer),
    "newell-simon": _newell_simon,
    "human": _human,
    "model": _model,
    "stockfish": _stockfish,
    "uci": _uci,
}
ALIASES = {"ns": "newell-simon", "perfect": "newell-simon"}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split a spec into its name and options; raises PlayerSpecError when malformed."""
    name, _, rest = spec.strip().partition(":")
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PlayerSpecError(f"bad option {item!r} in player spec {spec!r} (expected KEY=VALUE)")
        options[key.strip().lower().replace("-", "_")] = value.strip()
    return name, options


def make_player(spec: str, game: str) -> Player:
    """Build the player a spec names, for the named game."""
    name, options = parse_spec(spec)
    if name not in PLAYERS:
        known = ", ".join(sorted(PLAYERS))
        raise PlayerSpecError(f"unknown player {name!r} in spec {spec!r}; known players: {known}")
    noise = options.pop("noise", None)
    player = PLAYERS[name](game, options)
    if noise is not None:
        try:
            rate = float(noise)
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            raise PlayerSpecError(f"noise must be a number in [0, 1], got {noise!r} in spec {spec!r}")
        player = Noisy(player, rate)
    return player


def option(options: dict[str, Any], key: str, kind: Callable[[str], Any], default: Any, spec_name: str) -> Any:
    """Pop and convert one option of a spec, with a PlayerSpecError naming it when the value is bad."""
    if key not in options:
        return default
    raw = options.pop(key)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise PlayerSpecError(f"bad value {raw!r} for option {key!r} of player {spec_name!r}") from None
