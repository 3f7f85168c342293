"""How the model plays: one set of decoding settings, with one default and one check for each.

The UCI engine's options, the Lichess bot's `engine:` section, the `model:` player spec and the command
line all build a `DecodingSettings`, so a setting means the same and is checked the same everywhere.
Importable without torch, so that `gamegpt uci` can answer `uci` before the model's libraries load.

Policies (see `gamegpt.engine.model_player`):
  * `raw`   the first sampled move, legal or not (an illegal one is returned as an `InvalidMove`);
  * `retry` Karvonen's rule: up to 5 samples at `RETRY_TEMPERATURES`, the first legal one is played;
  * `mask`  constrained decoding: only legal moves can be sampled.
Fallbacks, for a front end that must always answer with a legal move (UCI engine, bot) when `raw` or
`retry` gives none: `mask` (masked decoding) or `random` (a seeded random legal move).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from gamegpt.errors import ConfigError

POLICIES = ("raw", "retry", "mask")
FALLBACKS = ("mask", "random")
RETRY_TEMPERATURES = (0.001, 0.2, 0.4, 0.5, 0.5)
"""Karvonen's five tries per move (chess_gpt_eval): the first legal sample is played."""


@dataclass(frozen=True)
class DecodingSettings:
    """The model's decoding, and what a front end needs to play it on a clock.

    `temperature` 0 takes the most likely token; the default 0.001 is practically that, and is what the
    transcendence studies call low temperature. `top_k` 0 keeps every token. `seed` seeds the sampling
    (front ends mix in the position, so a replayed game repeats). `threads` are torch's CPU threads.
    `move_overhead_ms` is kept back from every move's share of the clock for lag (GUI, network).
    `avoid_repetition` (chess, off by default) steers away from repeating a position (or letting the
    opponent repeat one a third time) and from stalemating the opponent while the model has more material
    than its opponent (see `gamegpt.engine.decide.moves_avoiding_repetition`): a decoding aid like an
    engine's contempt, so figures measured with it are not the model's own.
    Raises `ConfigError` naming the setting when a value is out of range.
    """

    policy: str = "mask"
    temperature: float = 0.001
    top_k: int = 0
    fallback: str = "mask"
    seed: int = 0
    threads: int = 1
    move_overhead_ms: int = 100
    avoid_repetition: bool = False

    def __post_init__(self) -> None:
        check_setting("policy", self.policy)
        check_setting("temperature", self.temperature)
        check_setting("top_k", self.top_k)
        check_setting("fallback", self.fallback)
        check_setting("seed", self.seed)
        check_setting("threads", self.threads)
        check_setting("move_overhead_ms", self.move_overhead_ms)
        check_setting("avoid_repetition", self.avoid_repetition)

    def replace(self, **changes: Any) -> "DecodingSettings":
        """A copy with `changes`, checked."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "") -> "DecodingSettings":
        """Settings from a mapping of field names to values (text is converted); ConfigError for an
        unknown name or a bad value. `where` prefixes the names in messages (e.g. "engine.")."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        converted: dict[str, Any] = {}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(f"unknown decoding setting {where}{key!r}; known: {', '.join(fields)}")
            converted[key] = convert_setting(key, value, where=where)
        return cls(**converted)


_KINDS: dict[str, type] = {"policy": str, "temperature": float, "top_k": int, "fallback": str, "seed": int,
                           "threads": int, "move_overhead_ms": int, "avoid_repetition": bool}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def convert_setting(name: str, value: Any, *, where: str = "") -> Any:
    """`value` (text or a number) as the type of setting `name`; ConfigError when it does not convert."""
    kind = _KINDS[name]
    if kind is bool:
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in _TRUE + _FALSE:
            return value if isinstance(value, bool) else text in _TRUE
        raise ConfigError(f"{where}{name} must be true or false, got {value!r}")
    if isinstance(value, bool) or (kind is str and not isinstance(value, str)):
        raise ConfigError(f"{where}{name} must be a {kind.__name__}, got {value!r}")
    try:
        if kind is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError(value)
            return int(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}{name} must be a {'whole number' if kind is int else 'number'}, "
                          f"got {value!r}") from None


def check_setting(name: str, value: Any, *, where: str = "") -> None:
    """Raise ConfigError when `value` is not allowed for setting `name`: the one check of each setting."""
    label = f"{where}{name}"
    if name == "policy" and value not in POLICIES:
        raise ConfigError(f"{label} must be one of {', '.join(POLICIES)}, got {value!r}")
    if name == "fallback" and value not in FALLBACKS:
        raise ConfigError(f"{label} must be one of {', '.join(FALLBACKS)}, got {value!r}")
    if name == "temperature" and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{label} must be a number >= 0, got {value!r}")
    if name in ("top_k", "seed", "move_overhead_ms") and not (isinstance(value, int) and value >= 0):
        raise ConfigError(f"{label} must be a whole number >= 0, got {value!r}")
    if name == "avoid_repetition" and not isinstance(value, bool):
        raise ConfigError(f"{label} must be true or false, got {value!r}")
    if name == "threads" and not (isinstance(value, int) and value >= 1):
        raise ConfigError(f"{label} must be a whole number >= 1, got {value!r}")


DEFAULTS = DecodingSettings()
"""The one default of each setting."""
