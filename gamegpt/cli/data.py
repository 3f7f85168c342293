"""`gamegpt data`: game records → token shards, PGN files → game records, and labels for the auxiliary losses."""

from __future__ import annotations

from typing import Sequence

import click

from gamegpt.cli.common import Group


@click.group(cls=Group)
def data() -> None:
    """Game records → token shards."""


@data.command("shards")
@click.argument("records", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True, help="shard directory to create")
@click.option("--game", default="tictactoe", show_default=True)
@click.option("--codec", default=None, help="codec name (default: the game's)")
@click.option("--block-len", type=int, default=None, help="tokens per block (default: 64 tic-tac-toe, 1024 chess)")
@click.option("--val-fraction", type=float, default=0.05, show_default=True, help="share of games held out")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
@click.option("--exclude", multiple=True, type=click.Path(dir_okay=False),
              help="records file (repeatable) whose games are left out, e.g. a held-out evaluation set")
def data_shards(records: Sequence[str], out: str, game: str, codec: str | None, block_len: int | None,
                val_fraction: float, seed: int, overwrite: bool, exclude: Sequence[str]) -> None:
    """Encode game records with a codec and pack them into train/val token shards. A game that is also in
    an --exclude file (same start position and moves) is left out and counted."""
    from gamegpt.selfplay.dataset import records_to_shards

    meta = records_to_shards(list(records), out, game=game, codec_name=codec, block_len=block_len,
                             val_fraction=val_fraction, seed=seed, overwrite=overwrite, exclude=exclude)
    click.echo(f"{meta['n_games']['train']} train / {meta['n_games']['val']} val games, "
               f"{meta['n_blocks']['train']} / {meta['n_blocks']['val']} blocks of {meta['block_len']} tokens")
    if "excluded" in meta:
        click.echo(f"left out {meta['excluded']['games_skipped']} game(s) also in {', '.join(exclude)}")
    click.echo(f"wrote {out}")


@data.command("import-pgn")
@click.argument("pgn_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="records file (JSONL) to write")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="parsing processes (default: the CPUs)")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="import only the first N games of the input")
@click.option("--chunk-games", type=click.IntRange(min=1), default=1000, show_default=True,
              help="games per chunk (a chunk's records are kept in OUT.parts/ until the import ends)")
@click.option("--no-progress", is_flag=True)
def data_import_pgn(pgn_files: Sequence[str], out: str, workers: int | None, limit: int | None, chunk_games: int,
                    no_progress: bool) -> None:
    """Turn PGN files (.pgn, or gzip-compressed .pgn.gz) into chess game records, in parallel; variants and
    broken games are skipped and counted. A killed import continues when the same command is run again."""
    from gamegpt.arena.pgn_import import import_pgn
    from gamegpt.arena.runs import default_workers

    report = import_pgn(list(pgn_files), out, workers=workers or default_workers(), chunk_games=chunk_games,
                        limit=limit, progress=not no_progress)
    click.echo(report.describe())
    click.echo(f"wrote {out}")


@data.command("move-values")
@click.argument("records", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="table directory to create (or to continue: the same command resumes a killed run)")
@click.option("--nodes", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Stockfish nodes per position (one MultiPV search values all listed moves)")
@click.option("--max-moves", type=click.IntRange(min=1, max=256), default=32, show_default=True,
              help="moves valued per position, best first")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Stockfish processes (default: the CPUs)")
@click.option("--chunk-games", type=click.IntRange(min=1), default=200, show_default=True,
              help="games per part file")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="value only the first N games")
@click.option("--stockfish", default=None, help="Stockfish executable (default: found on PATH)")
@click.option("--no-progress", is_flag=True)
def data_move_values(records: Sequence[str], out: str, nodes: int, max_moves: int, workers: int | None,
                     chunk_games: int, limit: int | None, stockfish: str | None, no_progress: bool) -> None:
    """Stockfish's value of the best moves of every position in chess game records: the table that
    `gamegpt train --set distill_values=DIR` learns from (distillation)."""
    from gamegpt.arena.runs import default_workers
    from gamegpt.selfplay.move_values import value_records

    report = value_records(list(records), out, nodes=nodes, max_moves=max_moves, workers=workers or default_workers(),
                           chunk_games=chunk_games, limit=limit, stockfish=stockfish, progress=not no_progress)
    click.echo(f"{report['positions']} positions valued in {report['chunks'] - report['chunks_done_before']} chunk(s) "
               f"({report['chunks_done_before']} done before)")
    click.echo(f"wrote {out}")


@data.command("labels")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--kind", type=click.Choice(["legal", "board"]), default="legal", show_default=True,
              help="legal: the legal-move sets (legal_loss_weight); board: the pieces on the squares (board_head)")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="labelling processes (default: the CPUs)")
@click.option("--no-progress", is_flag=True)
def data_labels(data_dir: str, kind: str, workers: int | None, no_progress: bool) -> None:
    """Label every train block of token shards once, in parallel, into DATA_DIR/labels-KIND/: `gamegpt train`
    on these shards then reads the auxiliary loss's labels from disk instead of labelling batches itself
    (the same labels; no python-chess time in the training process, in every run and every --resume)."""
    from gamegpt.arena.runs import default_workers
    from gamegpt.selfplay.labels import write_stored_labels

    out = write_stored_labels(data_dir, kind, workers=workers or default_workers(), progress=not no_progress)
    click.echo(f"wrote {out}")
