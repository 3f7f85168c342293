"""Games (rules) and codecs (games as tokens). `make_codec`/`codec_from_spec` find a codec by name."""

from __future__ import annotations

from typing import Any, Callable

from gamegpt.errors import UserError
from gamegpt.games.base import Codec, Game, IllegalMoveError, InvalidMove, Outcome
from gamegpt.games.chess import ChessGame
from gamegpt.games.chess_codecs import MoveTokenCodec, PgnCharCodec, PositionMoveCodec
from gamegpt.games.tictactoe import TicTacToe, TicTacToeCodec

_CODECS: dict[str, Callable[..., Codec]] = {
    TicTacToeCodec.name: TicTacToeCodec,
    PgnCharCodec.name: PgnCharCodec,
    MoveTokenCodec.name: MoveTokenCodec,
    PositionMoveCodec.name: PositionMoveCodec,
}
_GAMES: dict[str, Callable[..., Game[Any]]] = {
    "tictactoe": TicTacToe,
    "chess": ChessGame,
}
DEFAULT_CODEC = {"tictactoe": TicTacToeCodec.name, "chess": PgnCharCodec.name}


def new_game(name: str, **options: Any) -> Game[Any]:
    """A new game of the named kind in its standard start position; `options` go to its constructor
    (chess: `claim_draws=True`). Raises UserError for an unknown game or option."""
    if name not in _GAMES:
        raise UserError(f"unknown game {name!r}; known: {', '.join(sorted(_GAMES))}")
    try:
        return _GAMES[name](**options)
    except TypeError:
        if not options:
            raise
        raise UserError(f"game {name!r} does not take the options {', '.join(sorted(options))}") from None


def codec_from_spec(spec: dict[str, Any] | str) -> Codec:
    """The codec a data set or checkpoint was made with (`spec` from `Codec.spec()`, or just its name)."""
    name = spec if isinstance(spec, str) else spec.get("name")
    options = {} if isinstance(spec, str) else {k: v for k, v in spec.items() if k not in ("name", "vocab_size")}
    if name not in _CODECS:
        raise UserError(f"unknown codec {name!r}; known: {', '.join(sorted(_CODECS))}")
    codec = _CODECS[name](**options)
    if not isinstance(spec, str) and "vocab_size" in spec and spec["vocab_size"] != codec.vocab_size:
        raise UserError(f"codec {name!r} has {codec.vocab_size} tokens, but the file says {spec['vocab_size']}")
    return codec


__all__ = [
    "ChessGame", "Codec", "Game", "IllegalMoveError", "InvalidMove", "MoveTokenCodec", "Outcome", "PgnCharCodec",
    "PositionMoveCodec", "TicTacToe", "TicTacToeCodec",
    "codec_from_spec", "new_game", "DEFAULT_CODEC",
]
