"""Game records → Stockfish's value of the legal moves of every position in them (a `MoveValueTable`).

Each position of each game (before each move; positions already valued in the same chunk are skipped) is
searched once with MultiPV: `go nodes N` with `multipv K` gives up to K moves, best first, each with its
score. The games are cut into chunks of `chunk_games`; worker processes (one Stockfish each, one thread,
16 MB hash) value the chunks, and each chunk's rows are written atomically as `part-NNNNN.npz`. A killed
run, started again with the same command, values only the chunks that have no part yet; other settings in an
existing table directory are refused. Each part also records the seconds its chunk took (`seconds`): a worker and
its one-thread engine take turns, so on an unshared core that is the CPU time of the pair (`labelling_seconds`).

Cost on one core (Stockfish 15.1, 2-core Xeon): about 490 positions a second at 1000 nodes.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import chess
import chess.polyglot
import numpy as np
from tqdm import tqdm

from gamegpt.arena.records import iter_records
from gamegpt.arena.runs import exit_with_parent
from gamegpt.atomic import atomic_path, write_json_atomic
from gamegpt.errors import UserError
from gamegpt.games.chess_move_values import (FORMAT, MATE_CENTIPAWNS, NO_MOVE, SETTINGS_FILE, VERSION,
                                             encode_move)
from gamegpt.players.limits import SearchLimits
from gamegpt.players.uci import UciEngineProcess, find_stockfish

Game = tuple[str | None, list[str]]  # (start FEN or None, UCI moves)


def value_records(record_paths: Sequence[str | Path], out_dir: str | Path, *, nodes: int = 1000, max_moves: int = 32,
                  workers: int = 1, chunk_games: int = 200, limit: int | None = None,
                  stockfish: str | None = None, progress: bool = False) -> dict[str, int]:
    """Value every position of the chess games in `record_paths` (the first `limit` games) into the table
    directory `out_dir` (created, or continued). Returns {"chunks", "chunks_done_before", "positions"}.

    UserError for settings that differ from the table already in `out_dir`, or records that are not chess."""
    if nodes < 1 or max_moves < 1 or workers < 1 or chunk_games < 1:
        raise UserError("move-values: nodes, max_moves, workers and chunk_games must be at least 1")
    out = Path(out_dir)
    for path in record_paths:
        if not Path(path).is_file():
            raise UserError(f"{path}: no such records file")
    settings = {"format": FORMAT, "version": VERSION, "records": [str(p) for p in record_paths], "nodes": nodes,
                "max_moves": max_moves, "chunk_games": chunk_games, "limit": limit}
    _check_or_write_settings(out, settings)
    engine_path = find_stockfish(stockfish)
    chunks = _chunks(record_paths, chunk_games, limit)
    done = {int(p.stem.split("-")[1]) for p in out.glob("part-*.npz")}
    todo = ((number, games) for number, games in chunks if number not in done)
    positions = 0
    count = 0
    bar = tqdm(disable=not progress, unit="chunk", desc="move values")
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_start_worker,
                                                   initargs=(engine_path, nodes, max_moves)) as pool:
        for written in pool.imap_unordered(_value_chunk, ((out, number, games) for number, games in todo)):
            positions += written
            count += 1
            bar.update(1)
            bar.set_postfix(positions=positions, refresh=False)
    bar.close()
    return {"chunks": count + len(done), "chunks_done_before": len(done), "positions": positions}


def labelling_seconds(out_dir: str | Path) -> float:
    """The seconds spent valuing the parts of a table directory: the sum of each part's chunk time (parts
    written before parts recorded it count 0)."""
    total = 0.0
    for part in Path(out_dir).glob("part-*.npz"):
        with np.load(part, allow_pickle=False) as data:
            total += float(data["seconds"]) if "seconds" in data.files else 0.0
    return total


def _check_or_write_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / SETTINGS_FILE
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not readable JSON ({e})") from None
        if existing != settings:
            changed = sorted(k for k in settings if existing.get(k) != settings[k]) if isinstance(existing, dict) else []
            raise UserError(f"{out}: holds a move-value table made with other settings ({', '.join(changed) or 'format'}); "
                            "give another directory or the same command")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, settings)


def _chunks(record_paths: Sequence[str | Path], chunk_games: int, limit: int | None) -> Iterator[tuple[int, list[Game]]]:
    games = (record for path in record_paths for record in iter_records(path))
    games = itertools.islice(games, limit) if limit is not None else games
    for number in itertools.count():
        chunk = list(itertools.islice(games, chunk_games))
        if not chunk:
            return
        for record in chunk:
            if record.game != "chess":
                raise UserError(f"move-values: records of {record.game!r}, not chess")
        yield number, [(record.start, [str(m) for m in record.moves]) for record in chunk]


class _MultiPvSearcher:
    """One Stockfish (the project's lean UCI client) for bulk MultiPV searches. python-chess's engine module
    parsed every info line of every depth (each with its whole PV) and took more CPU than Stockfish itself here;
    this reads only the first move and the score of each line, keeping the last line of each MultiPV rank."""

    def __init__(self, engine_path: str, nodes: int, max_moves: int) -> None:
        self.engine = UciEngineProcess([engine_path])
        for name, value in (("Threads", 1), ("Hash", 16), ("MultiPV", max_moves)):
            self.engine.set_option(name, value)
        self.limits = SearchLimits(nodes=nodes)

    def search(self, board: chess.Board) -> list[tuple[str, int]]:
        """(UCI move, centipawns for the side to move) of each MultiPV line, best first."""
        # An empty hash, so the same position gets the same values in any worker and order. Stockfish clears it
        # before it reads the next command: no `isready` round trip (new_game's) is needed.
        self.engine.send("ucinewgame")
        self.engine.send_position(board.fen(), "")
        _, lines = self.engine.go_with_output(self.limits)
        ranked: dict[int, tuple[str, int]] = {}
        for line in lines:
            words = line.split()
            if not words or words[0] != "info" or "multipv" not in words or "pv" not in words or "score" not in words:
                continue
            at = words.index("score")
            kind, amount = words[at + 1], int(words[at + 2])
            value = amount if kind == "cp" else (MATE_CENTIPAWNS - amount if amount > 0 else -MATE_CENTIPAWNS - amount)
            ranked[int(words[words.index("multipv") + 1])] = (words[words.index("pv") + 1], value)
        return [ranked[rank] for rank in sorted(ranked)]


_searcher: _MultiPvSearcher | None = None
_max_moves = 0


def _start_worker(engine_path: str, nodes: int, max_moves: int) -> None:
    global _searcher, _max_moves
    threading.Thread(target=exit_with_parent, daemon=True).start()
    _searcher, _max_moves = _MultiPvSearcher(engine_path, nodes, max_moves), max_moves


def _value_chunk(task: tuple[Path, int, list[Game]]) -> int:
    out, number, games = task
    started = time.perf_counter()
    keys: list[int] = []
    moves = []
    values = []
    seen: set[int] = set()
    for start, game_moves in games:
        board = chess.Board(start) if start else chess.Board()
        for uci in game_moves + [None]:
            key = chess.polyglot.zobrist_hash(board)
            if key not in seen and not board.is_game_over(claim_draw=False):
                seen.add(key)
                row_moves, row_values = _value_position(board)
                keys.append(key)
                moves.append(row_moves)
                values.append(row_values)
            if uci is None:
                break
            try:
                board.push_uci(uci)
            except ValueError:
                break  # a record with a move its board does not allow: value the positions before it
    with atomic_path(out / f"part-{number:05d}.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys, dtype=np.uint64),
                     moves=np.array(moves, dtype=np.uint16).reshape(-1, _max_moves),
                     values=np.array(values, dtype=np.int16).reshape(-1, _max_moves),
                     seconds=np.float64(time.perf_counter() - started))
    return len(keys)


def _value_position(board: chess.Board) -> tuple[list[int], list[int]]:
    """The position's best moves (up to max_moves) as encoded moves and centipawns, padded to max_moves."""
    assert _searcher is not None
    lines = _searcher.search(board)[:_max_moves]
    row_moves = [encode_move(chess.Move.from_uci(move)) for move, _ in lines]
    row_values = [value for _, value in lines]
    pad = _max_moves - len(row_moves)
    return row_moves + [NO_MOVE] * pad, row_values + [0] * pad
