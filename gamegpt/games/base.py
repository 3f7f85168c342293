"""The Game and Codec protocols that every game of gamegpt implements.

A `Game` is a mutable position with its history, in the style of `chess.Board`: `legal_moves()`,
`push(move)`, `outcome()`. Moves are game-specific objects (an `int` cell for tic-tac-toe, a
`chess.Move` for chess); `move_to_str`/`move_from_str` give the text form used in game records.

A `Codec` turns a game into model tokens and back. A game is encoded as `bos`, then the tokens of
each move; a finished game may end with `eos`. A move may take several tokens (chess as PGN text);
`move_token_sequences` lists the exact tokens of every legal move, which is what constrained
decoding needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, Hashable, Sequence, TypeVar

Move = TypeVar("Move", bound=Hashable)


class IllegalMoveError(ValueError):
    """Raised by `Game.push` when a move is not legal in the current position."""


@dataclass(frozen=True)
class Outcome:
    """How a game ended. `winner` is the index of the winning side (0 moves first) or None for a draw."""

    winner: int | None
    termination: str

    @property
    def result(self) -> str:
        """The result in PGN notation: '1-0', '0-1' or '1/2-1/2'."""
        if self.winner is None:
            return "1/2-1/2"
        return "1-0" if self.winner == 0 else "0-1"


class Game(ABC, Generic[Move]):
    """Rules of a two-player game and one position in it, with the moves that led there."""

    name: str = ""
    side_names: tuple[str, str] = ("first", "second")

    @abstractmethod
    def legal_moves(self) -> list[Move]:
        """The legal moves in the current position, in a fixed order; empty once the game is over."""

    @abstractmethod
    def push(self, move: Move) -> None:
        """Play `move`. Raises IllegalMoveError if it is not legal."""

    @abstractmethod
    def pop(self) -> Move:
        """Take back the last move and return it."""

    @abstractmethod
    def outcome(self) -> Outcome | None:
        """The outcome if the game is over, else None."""

    @abstractmethod
    def copy(self) -> "Game[Move]":
        """An independent copy with the same history."""

    @property
    @abstractmethod
    def history(self) -> list[Move]:
        """The moves played from the start position, oldest first (a copy)."""

    @property
    def to_move(self) -> int:
        """The side to move: 0 for the side that moved first from the start position, 1 for the other."""
        return len(self.history) % 2

    @property
    def start(self) -> str | None:
        """The start position as text (e.g. a FEN), or None for the standard start position."""
        return None

    def can_win(self, side: int) -> bool:
        """Whether `side` could still win by some series of legal moves (what decides a game lost on time:
        a draw when the opponent could not win). True unless a game knows better."""
        return True

    def is_legal(self, move: object) -> bool:
        """Whether `move` is a legal move now (any object may be asked)."""
        try:
            return move in self.legal_moves()
        except TypeError:
            return False

    @abstractmethod
    def move_to_str(self, move: Move) -> str:
        """The text form of a move used in game records."""

    @abstractmethod
    def move_from_str(self, text: str) -> Move:
        """Parse the record form of a move; raises ValueError if it is not a well-formed move."""


class Codec(ABC):
    """Turns games into token sequences for a model, and model tokens back into moves."""

    name: str = ""
    vocab_size: int = 0
    bos: int = 0
    eos: int | None = None

    @abstractmethod
    def new_game(self, start: str | None = None) -> Game[Any]:
        """A game in its start position (the standard one if `start` is None)."""

    @abstractmethod
    def encode_moves(self, game_before: Game[Any], moves: Sequence[Any]) -> list[int]:
        """Tokens of `moves` played one after the other from the position `game_before` (not changed)."""

    def encode_game(self, moves: Sequence[Any], start: str | None = None, finished: bool = True) -> list[int]:
        """Tokens of a whole game: bos, the moves, and eos if the game is finished and the codec has one."""
        tokens = self.prefix_tokens(self.new_game(start))
        tokens += self.encode_moves(self.new_game(start), moves)
        if finished and self.eos is not None:
            tokens.append(self.eos)
        return tokens

    def prefix_tokens(self, game: Game[Any]) -> list[int]:
        """The tokens a model reads before predicting the next move of `game` (bos + history)."""
        start = self.new_game(game.start)
        return [self.bos] + self.encode_moves(start, game.history)

    @abstractmethod
    def decode_game(self, tokens: Sequence[int]) -> tuple[str | None, list[Any]]:
        """The start position and moves of an encoded game; raises ValueError on tokens that are not a game."""

    @abstractmethod
    def move_token_sequences(self, game: Game[Any]) -> dict[tuple[int, ...], Any]:
        """The exact tokens of every legal move in `game`, mapped to the move. The set is prefix-free
        (no sequence starts another), so a sampled sequence that is in it is a whole move."""

    @abstractmethod
    def parse_move(self, game: Game[Any], tokens: Sequence[int]) -> tuple[Any | None, bool]:
        """Read the move that `tokens` (sampled after `prefix_tokens(game)`) start with.

        Returns (move, complete): `complete` is False while more tokens are needed; once complete,
        `move` is the move if the tokens name a legal one, else None.
        """

    @abstractmethod
    def tokens_to_text(self, tokens: Sequence[int]) -> str:
        """A human-readable rendering of tokens, for logs and illegal-move reports."""

    def spec(self) -> dict[str, Any]:
        """The JSON description stored with data and checkpoints; `codec_from_spec` rebuilds the codec."""
        return {"name": self.name, "vocab_size": self.vocab_size}

    def continuation_tokens(self, game: Game[Any]) -> list[int]:
        """The tokens at the end of `prefix_tokens(game)` that introduce the next move rather than record a
        played one (chess text: the move number `2.`); empty by default."""
        return []

    def recent_moves_tokens(self, game: Game[Any], count: int) -> list[int]:
        """The tokens the last `count` moves of `game` add to its text (its `prefix_tokens` without the
        `continuation_tokens`), so that for `before`, the game `count` moves earlier,
        `text(game) == text(before) + recent_moves_tokens(game, count)`.

        A codec whose tokens of a move need more than the position before it overrides this so that the
        cost grows with `count`, not with the game's length: it never replays the game from its start.
        """
        before = game.copy()
        moves = [before.pop() for _ in range(count)][::-1]
        return self.encode_moves(before, moves)

    max_move_tokens: int = 1

    prefix_is_game_text: bool = True
    """Whether `prefix_tokens` is the game's text so far (bos, any start block, the moves played), so that the
    prefix after more moves extends the earlier one and `PrefixEncoder` encodes only the new moves. False for
    a codec whose prefix is the current position alone: `PrefixEncoder` encodes every new position in full."""

    sample_len: int | None = None
    """How training data cuts the text: None, a game's `encode_game` is one sample, packed with other games into
    blocks; an int, `encode_game` writes samples of exactly this many tokens one after the other, and each is a
    training block of its own (a codec whose samples are positions)."""

    def scored_targets(self) -> dict[str, int] | None:
        """Which targets of the training text the loss counts, in the form the shards' meta keeps
        (`gamegpt.core.data`): None for every target; `{"after": a, "below": b}` for only a target that
        follows the token `a` and is a token below `b`."""
        return None

    def cut_points(self, tokens: Sequence[int]) -> tuple[int, list[int]]:
        """Where a too-long `prefix_tokens` sequence may be cut to fit a model's context.

        Returns (header, starts): the first `header` tokens (bos and any start-position block) are always
        kept; `starts` are the indices, in increasing order, at which the kept rest may begin. Default:
        one token per move after a one-token header, cut before every other move, so the side to move
        keeps its parity.
        """
        return 1, list(range(1, len(tokens), 2))


class PrefixEncoder:
    """`codec.prefix_tokens(game)` built incrementally: it remembers the last game it encoded (start,
    moves, tokens), and for a game whose history extends that one (the next move of the same game) it
    encodes only the new moves (`Codec.recent_moves_tokens`), never the game from its start again. Any other
    game (a new game, a takeback, another start position), and every new position of a codec whose prefix is
    not the game's text (`Codec.prefix_is_game_text`), is encoded in full. Telling the two apart compares
    the moves, one comparison per move (at C speed when the game keeps its move objects, as an arena's does).

    It holds state, so each player has its own (a codec may be shared between threads).
    """

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._game_type: type | None = None
        """The kind of game last encoded; None before the first call."""
        self._start: str | None = None
        self._moves: list[Any] = []
        self._text: list[int] = []
        """`prefix_tokens` of the last game without its `continuation_tokens`."""
        self._prefix: list[int] = []
        self.full_encodings = 0
        """How many times a whole game was encoded (a first call, a new game, a takeback, another start)."""

    def prefix_tokens(self, game: Game[Any]) -> list[int]:
        """Tokens equal to `codec.prefix_tokens(game)`. The list is the encoder's own (do not change it): the
        same object while the game has not changed since the last call, a new one once it has."""
        history = game.history
        moved = len(history) > len(self._moves)
        if not self._extends_last_game(game, history) or (moved and not self.codec.prefix_is_game_text):
            self._encode_in_full(game, history)
        elif moved:
            self._text += self.codec.recent_moves_tokens(game, len(history) - len(self._moves))
            self._prefix = self._text + self.codec.continuation_tokens(game)
            self._moves = history
        return self._prefix

    def _extends_last_game(self, game: Game[Any], history: list[Any]) -> bool:
        """Whether `game` is the last game encoded, or that game with more moves played."""
        known = len(self._moves)
        return (type(game) is self._game_type and game.start == self._start and len(history) >= known
                and history[:known] == self._moves)

    def _encode_in_full(self, game: Game[Any], history: list[Any]) -> None:
        prefix = self.codec.prefix_tokens(game)
        self.full_encodings += 1
        self._text = prefix[:len(prefix) - len(self.codec.continuation_tokens(game))]
        self._prefix = prefix
        self._game_type, self._start, self._moves = type(game), game.start, history


@dataclass(frozen=True)
class InvalidMove:
    """What a player returns when its output names no legal move (a model's illegal sample).

    `text` is the raw output, for reports. An arena treats it as an illegal move.
    """

    text: str
