"""Game records → token shards for training (see `gamegpt.core.data` for the shard format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from gamegpt.core.data import write_shards
from gamegpt.errors import RecordsError
from gamegpt.games import DEFAULT_CODEC, codec_from_spec
from gamegpt.games.base import Codec, IllegalMoveError
from gamegpt.arena.records import iter_records

DEFAULT_BLOCK_LEN = {"tictactoe": 64}


def record_tokens(codec: Codec, paths: Sequence[str | Path]) -> Iterator[list[int]]:
    """Tokens of every game in the records files (moves in record form: UCI for chess). A record of another
    game, or with a move that is not legal in its position, raises RecordsError naming the file and game."""
    for path in paths:
        for number, record in enumerate(iter_records(path)):
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
) -> dict[str, Any]:
    """Encode the games of `paths` with the codec (default: the game's) and pack them into shards.

    A codec whose samples are positions (`Codec.sample_len`, e.g. chess-position-move) gives one sample per
    position of a game, each a block of its own (`block_len` defaults to the sample's length, and must be it),
    with the loss on the move only (`Codec.scored_targets`); the split is still by game.
    """
    codec = codec_from_spec(codec_name or DEFAULT_CODEC[game])
    return write_shards(
        record_tokens(codec, paths), out_dir,
        block_len=block_len or codec.sample_len or DEFAULT_BLOCK_LEN.get(game, 1024),
        vocab_size=codec.vocab_size, codec=codec.spec(), val_fraction=val_fraction, seed=seed, overwrite=overwrite,
        sample_len=codec.sample_len, scored_targets=codec.scored_targets(),
    )
