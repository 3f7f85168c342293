"""Game records → token shards for training (see `gamegpt.core.data` for the shard format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from gamegpt.core.data import write_shards
from gamegpt.errors import RecordsError
from gamegpt.games import DEFAULT_CODEC, codec_from_spec
from gamegpt.games.base import Codec, IllegalMoveError
from gamegpt.arena.records import GameRecord, iter_records

DEFAULT_BLOCK_LEN = {"tictactoe": 64}


GameKey = tuple[str, Optional[str], tuple[str, ...]]


class ExcludedGames:
    """Games that must not be trained on (e.g. a held-out evaluation set): a game is excluded when its game,
    start position and moves equal those of a game in one of the files, whatever its players, result or seed.
    A missing or malformed file raises RecordsError."""

    def __init__(self, paths: Sequence[str | Path] = ()) -> None:
        self.paths = [str(p) for p in paths]
        self.keys: set[GameKey] = {_key(record) for path in paths for record in iter_records(path)}
        self.skipped = 0

    def drops(self, record: GameRecord) -> bool:
        """Whether `record` is one of the excluded games (counted in `skipped`)."""
        if self.keys and _key(record) in self.keys:
            self.skipped += 1
            return True
        return False

    def meta(self) -> dict[str, Any]:
        """What the shards' meta records about the exclusion (nothing when no file was given)."""
        return {"excluded": {"files": self.paths, "games_skipped": self.skipped}} if self.paths else {}


def _key(record: GameRecord) -> GameKey:
    return record.game, record.start, tuple(record.moves)


def record_tokens(codec: Codec, paths: Sequence[str | Path],
                  exclude: ExcludedGames | None = None) -> Iterator[list[int]]:
    """Tokens of every game in the records files (moves in record form: UCI for chess), but those `exclude`
    drops. A record of another game, or with a move that is not legal in its position, raises RecordsError
    naming the file and game."""
    for path in paths:
        for number, record in enumerate(iter_records(path)):
            if exclude is not None and exclude.drops(record):
                continue
            game = codec.new_game(record.start)
            if record.game != game.name:
                raise RecordsError(f"{path}: game {number} is {record.game!r}, but codec {codec.name} is for {game.name!r}")
            try:
                moves = [game.move_from_str(text) for text in record.moves]
                tokens = codec.encode_game(moves, record.start, finished=record.result != "*")
            except (ValueError, IllegalMoveError) as exc:
                raise RecordsError(f"{path}: game {number}: {exc}") from None
            yield tokens


def records_to_shards(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    game: str,
    codec_name: str | None = None,
    block_len: int | None = None,
    val_fraction: float = 0.05,
    seed: int = 0,
    overwrite: bool = False,
    exclude: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Encode the games of `paths` with the codec (default: the game's) and pack them into shards, leaving
    out every game that is also in a file of `exclude` (same start and moves; meta counts them).

    A codec whose samples are positions (`Codec.sample_len`, e.g. chess-position-move) gives one sample per
    position of a game, each a block of its own (`block_len` defaults to the sample's length, and must be it),
    with the loss on the move only (`Codec.scored_targets`); the split is still by game.
    """
    codec = codec_from_spec(codec_name or DEFAULT_CODEC[game])
    excluded = ExcludedGames(exclude)
    return write_shards(
        record_tokens(codec, paths, excluded), out_dir,
        block_len=block_len or codec.sample_len or DEFAULT_BLOCK_LEN.get(game, 1024),
        vocab_size=codec.vocab_size, codec=codec.spec(), val_fraction=val_fraction, seed=seed, overwrite=overwrite,
        sample_len=codec.sample_len, scored_targets=codec.scored_targets(), extra_meta=excluded.meta,
    )
