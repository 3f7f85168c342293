"""PGN files → game records. Variants and broken games are skipped and counted, never fatal.

A game is imported when it is standard chess (no Variant header, or "Standard"/"From Position"), parses
without errors, and has at least one move; a FEN header (SetUp) becomes the record's start position.
PGN files may be gzip-compressed (a name ending in `.gz`).

`import_pgn(paths, out)` reads the files in this process in one go: for small files, and the reference.
`import_pgn(paths, out, workers=N)` (what `gamegpt data import-pgn` runs) is chunked, parallel and
resumable, and writes the same bytes: the input is cut into chunks of whole games, N processes parse them,
each chunk's records are kept as a part in `<out>.parts/` (written atomically, beside a summary of the
import's settings), and at the end the parts are joined into `out` with the serial import's game indices.
A killed import, run again with the same command, parses only the chunks that have no part yet.

Cuts are cheap and checked. The splitter cuts before a line that opens a game's tags (a `[` line after a
blank line after movetext) every `chunk_games` games; python-chess alone decides where a game ends (a blank
line after the movetext, outside a comment), so a cut could fall inside a game, e.g. in a `{...}` comment
that holds a blank line and a tag line. Each chunk's parse notes whether its last game ran into the end of
the chunk's text; where one did, the join parses that chunk again together with the chunks after it, until
a game ends before the text does, so every game is read exactly as the serial import reads it.
"""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import queue as queue_module
import shutil
import signal
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence, TextIO

import chess
import chess.pgn
from tqdm import tqdm

from gamegpt.atomic import atomic_path, write_json_atomic, write_text_atomic
from gamegpt.errors import RecordsError, UserError
from gamegpt.games.chess import ChessGame
from gamegpt.arena.records import RESULTS, GameRecord, RecordWriter
from gamegpt.arena.runs import exit_with_parent

STANDARD_VARIANTS = {"", "standard", "chess", "from position", "from_position"}
CHUNK_GAMES = 1000  # games per chunk of a chunked import: a few seconds of one worker's time
PARTS_SUFFIX = ".parts"


@dataclass
class ImportReport:
    """What an import read: games written, and games skipped by reason ("variant: Crazyhouse", ...)."""

    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def read(self) -> int:
        return self.imported + sum(self.skipped.values())

    def describe(self) -> str:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        return f"{self.imported} of {self.read} games imported" + (f"; skipped: {reasons}" if reasons else "")


def import_pgn(pgn_paths: Sequence[str | Path], out: str | Path, *, workers: int | None = None,
               chunk_games: int = CHUNK_GAMES, limit: int | None = None, progress: bool = False) -> ImportReport:
    """Write the standard games of the PGN files (`.pgn`, or gzip-compressed `.pgn.gz`) as records to `out`
    (replaced atomically), indexed 0, 1, ... in input order; raises RecordsError for a file it cannot read.

    Without `workers`, the files are parsed here in one go, and a killed import starts over. With `workers`
    (1: parse here), the import is chunked and resumable (see the module's docstring): it keeps its parts
    in `<out>.parts/` until they are joined, continues from them when called again with the same inputs,
    `chunk_games` and `limit`, and refuses (UserError) parts left by an import of other inputs or settings.
    `limit` reads only the first `limit` games, counted as the splitter counts them: by their tags.
    `progress` shows a progress bar of the chunked import (input bytes, or games with a `limit`).
    """
    paths = [Path(path) for path in pgn_paths]
    if workers is None:
        return _import_serial(paths, Path(out), limit)
    if workers < 1 or chunk_games < 1:
        raise ValueError(f"workers ({workers}) and chunk_games ({chunk_games}) must be at least 1")
    return _import_chunked(paths, Path(out), workers=workers, chunk_games=chunk_games, limit=limit,
                           progress=progress)


def parts_dir_for(out: str | Path) -> Path:
    """Where a chunked import into `out` keeps its parts (`games.jsonl` → `games.jsonl.parts/`)."""
    out = Path(out)
    return out.with_name(out.name + PARTS_SUFFIX)


# ---------------------------------------------------------------------------------------------- one game
class _QuietGameBuilder(chess.pgn.GameBuilder[chess.pgn.Game]):
    """python-chess's GameBuilder without the log line per error: the errors stay in `game.errors`,
    and the import counts them, so a big import's output is its progress bar and its report."""

    def handle_error(self, error: Exception) -> None:
        self.game.errors.append(error)


def _record_from_pgn(game: chess.pgn.Game, index: int) -> tuple[GameRecord | None, str | None]:
    """The record of one parsed PGN game, or (None, why it is skipped)."""
    variant = game.headers.get("Variant", "").strip()
    if variant.lower() not in STANDARD_VARIANTS:
        return None, f"variant: {variant}"
    if game.errors:
        return None, f"broken: {str(game.errors[0]).splitlines()[0][:60]}"
    fen = game.headers.get("FEN")
    try:
        board = ChessGame(fen)
    except ValueError:
        return None, "broken: bad FEN"
    moves = list(game.mainline_moves())
    if not moves:
        return None, "no moves"
    for move in moves:
        if not move:
            return None, "broken: null move"
        if not board.is_legal(move):
            return None, "broken: a move after the game ended"  # python-chess reports other illegal moves
        board.push(move)
    result = game.headers.get("Result", "*")
    if result not in RESULTS:
        result = "*"
    outcome = board.outcome()
    termination = outcome.termination if outcome else (game.headers.get("Termination") or "unknown").lower()
    players = []
    for side in ("White", "Black"):
        player: dict[str, object] = {"name": game.headers.get(side, "?")}
        if game.headers.get(f"{side}Elo", "").isdigit():
            player["elo"] = int(game.headers[f"{side}Elo"])
        players.append(player)
    extra = {k: game.headers[k] for k in ("Event", "Site", "Date", "Round") if game.headers.get(k, "?") not in ("?", "")}
    return GameRecord(game="chess", moves=[m.uci() for m in moves], players=players, result=result,
                      termination=termination, index=index, start=board.start, extra=extra), None


# ---------------------------------------------------------------------------------------- games of a text
class _EndWatchingText(io.StringIO):
    """A text handle that notes when its reader asked for a line past its end."""

    reached_end = False

    def readline(self, size: int | None = -1) -> str:
        line = super().readline(size)
        if not line:
            self.reached_end = True
        return line


class _GameReader:
    """The games of one PGN text, read one `chess.pgn.read_game` after another (the serial import's way)."""

    def __init__(self, text: str) -> None:
        self._handle = _EndWatchingText(text)
        self.last_game_ran_into_end = False
        """Whether python-chess read to the end of the text before it ended the last game: text after
        this one could then have belonged to that game."""

    def records(self, report: ImportReport) -> Iterator[GameRecord]:
        """The records of the standard games, indexed from `report.imported` on; counts every game in `report`."""
        handle = self._handle
        while True:
            handle.reached_end = False
            try:
                game = chess.pgn.read_game(handle, Visitor=_QuietGameBuilder)
            except (ValueError, RuntimeError) as exc:  # defensive: python-chess normally records errors
                report.skipped[f"broken: {exc}"[:70]] += 1
                self.last_game_ran_into_end = handle.reached_end
                continue
            if game is None:
                return
            self.last_game_ran_into_end = handle.reached_end
            record, why = _record_from_pgn(game, report.imported)
            if record is None:
                report.skipped[why or "unknown"] += 1
            else:
                report.imported += 1
                yield record


# ------------------------------------------------------------------------------------- reading and cutting
class _PgnFile:
    """A PGN file as lines of text, as every import reads it: gunzipped when its name ends in `.gz`, UTF-8
    with or without a byte-order mark, undecodable bytes replaced, any line ending read as "\\n"."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._raw: BinaryIO = open(path, "rb")
        except OSError as exc:
            raise RecordsError(f"cannot read PGN file {path}: {exc.strerror or exc}") from None
        binary: BinaryIO = gzip.GzipFile(fileobj=self._raw) if path.name.endswith(".gz") else self._raw
        self._text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace")

    def lines(self) -> Iterator[str]:
        """The file's lines; a file that cannot be read to its end (not gzip, truncated) is a RecordsError."""
        try:
            for line in self._text:  # not `yield from`, which would close the file when the caller stops early
                yield line
        except (OSError, EOFError) as exc:
            raise RecordsError(f"cannot read PGN file {self.path}: {exc}") from None

    def bytes_read(self) -> int:
        """Bytes of the file read so far (ahead of the lines by a buffer: enough for a progress bar)."""
        return self._raw.tell()

    def __enter__(self) -> "_PgnFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self._text.close()
        self._raw.close()


@dataclass(frozen=True)
class _Chunk:
    """Whole games of one input file: the `number`th chunk of the input (from 0, in input order)."""

    number: int
    text: str
    ends_file: bool  # no text of its file follows it (the file's end, or the `limit`)
    input_bytes: int  # input bytes it spans (roughly: for progress)


def _chunks(paths: Sequence[Path], chunk_games: int | None, limit: int | None) -> Iterator[_Chunk]:
    """The input cut before every `chunk_games`th game (None: a chunk per file), never across files,
    and ending before game `limit` + 1. A game starts at a `[` line that follows a blank line that
    follows movetext, or at a file's first `[` line (lines of `%` or `;` comments are passed over)."""
    number = 0
    games = 0
    for path in paths:
        with _PgnFile(path) as pgn:
            lines: list[str] = []
            games_in_chunk = 0
            bytes_at_cut = 0
            after_blank, after_tags = True, False
            limit_reached = False
            for line in pgn.lines():
                if line.isspace():
                    after_blank = True
                elif line[0] not in "%;":
                    if line[0] == "[" and after_blank and not after_tags:
                        games += 1
                        if limit is not None and games > limit:
                            limit_reached = True
                            break
                        if games_in_chunk == chunk_games:
                            yield _Chunk(number, "".join(lines), False, pgn.bytes_read() - bytes_at_cut)
                            number, lines, games_in_chunk, bytes_at_cut = number + 1, [], 0, pgn.bytes_read()
                        games_in_chunk += 1
                    after_blank, after_tags = False, line[0] == "["
                lines.append(line)
            yield _Chunk(number, "".join(lines), True, pgn.bytes_read() - bytes_at_cut)
            number += 1
            if limit_reached:
                return


# ------------------------------------------------------------------------------------------ serial import
def _import_serial(paths: Sequence[Path], out: Path, limit: int | None) -> ImportReport:
    """Parse each file here as one text and write its records (the reference for the chunked import)."""
    report = ImportReport()
    with atomic_path(out) as tmp, RecordWriter(tmp) as writer:
        for chunk in _chunks(paths, None, limit):
            for record in _GameReader(chunk.text).records(report):
                writer.write(record)
    return report


# ----------------------------------------------------------------------------------------- chunked import
def _import_chunked(paths: Sequence[Path], out: Path, *, workers: int, chunk_games: int, limit: int | None,
                    progress: bool) -> ImportReport:
    """Parse the chunks that have no part yet (on `workers` processes), then join all parts into `out`."""
    parts_dir = parts_dir_for(out)
    _check_or_write_settings(parts_dir, out, _import_settings(paths, chunk_games, limit))
    finished = _finished_parts(parts_dir)
    chunk_count = 0
    games_read = 0
    with _progress_bar(paths, limit, progress) as bar, _ChunkParsers(parts_dir, workers) as parsers:
        def advance(input_bytes: int, games: int) -> None:
            nonlocal games_read
            games_read += games
            bar.update(games if limit is not None else input_bytes)
            bar.set_postfix_str(f"{games_read} games", refresh=False)

        for chunk in _chunks(paths, chunk_games, limit):
            chunk_count = chunk.number + 1
            if chunk.number in finished:
                advance(chunk.input_bytes, finished[chunk.number])
            else:
                for input_bytes, games in parsers.parse(chunk):
                    advance(input_bytes, games)
        for input_bytes, games in parsers.finish():
            advance(input_bytes, games)
    report = _join_parts(parts_dir, chunk_count, out, lambda: _chunks(paths, chunk_games, limit))
    shutil.rmtree(parts_dir)
    return report


def _import_settings(paths: Sequence[Path], chunk_games: int, limit: int | None) -> dict[str, Any]:
    """What decides a chunked import's parts: each input's path, size and modification time, the chunk
    size and the limit (not the number of workers)."""
    inputs = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError as exc:
            raise RecordsError(f"cannot read PGN file {path}: {exc.strerror or exc}") from None
        inputs.append({"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return {"inputs": inputs, "chunk_games": chunk_games, "limit": limit}


def _check_or_write_settings(parts_dir: Path, out: Path, settings: dict[str, Any]) -> None:
    """Refuse (UserError, one line) parts left by an import of other inputs or settings; write the
    settings of a new import into `parts_dir/summary.json` (the way `arena.runs` keeps a run's settings)."""
    summary_path = parts_dir / "summary.json"
    if not summary_path.exists():
        write_json_atomic(summary_path, {"settings": settings})
        return
    advice = f"run that import again to finish it, or delete {parts_dir} to start over"
    try:
        previous = json.loads(summary_path.read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{summary_path}: unreadable summary of an unfinished import into {out}; "
                        f"delete {parts_dir} to start over") from None
    if previous != settings:
        differs = [name.replace("_", " ") for name in settings if previous.get(name) != settings[name]]
        raise UserError(f"{parts_dir} holds an unfinished import into {out} with other "
                        f"{', '.join(differs) or 'settings'} ({previous}); {advice}")


def _part_path(parts_dir: Path, number: int) -> Path:
    return parts_dir / f"chunk-{number:06d}.jsonl"


def _finished_parts(parts_dir: Path) -> dict[int, int]:
    """The chunks whose parts exist, with the games each read (a kill's temp files are passed over)."""
    finished = {}
    for path in parts_dir.glob("chunk-*.jsonl"):
        try:
            with path.open(encoding="utf-8") as handle:
                finished[int(path.stem.split("-")[1])] = int(json.loads(handle.readline())["games"])
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{path}: not a readable part of a PGN import; delete {parts_dir} to start over") from None
    return finished


def _write_part(parts_dir: Path, chunk: _Chunk) -> int:
    """Parse a chunk and keep it as its part (atomically): a first line with its counts and whether its
    games end before its text does, then its records, indexed from 0 within the chunk. Returns the games read."""
    report = ImportReport()
    reader = _GameReader(chunk.text)
    lines = [record.to_json() + "\n" for record in reader.records(report)]
    head = {"chunk": chunk.number, "games": report.read, "imported": report.imported,
            "skipped": dict(report.skipped), "ends_cleanly": chunk.ends_file or not reader.last_game_ran_into_end}
    write_text_atomic(_part_path(parts_dir, chunk.number), json.dumps(head) + "\n" + "".join(lines))
    return report.read


def _read_part(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A part's counts and its record lines (UserError when it is not a part this module wrote)."""
    try:
        head_line, *records = path.read_text(encoding="utf-8").splitlines()
        head = json.loads(head_line)
        if len(records) != head["imported"] or not isinstance(head["games"], int):
            raise ValueError("counts do not match")
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a readable part of a PGN import; delete {path.parent} to start over") from None
    return head, records


def _join_parts(parts_dir: Path, chunk_count: int, out: Path,
                chunks: Callable[[], Iterator[_Chunk]]) -> ImportReport:
    """Join the parts of chunks 0..chunk_count-1 into `out` (atomically) with consecutive indices, and
    count their games. A chunk whose last game ran into its end is parsed again with the chunks after
    it, from `chunks()` (the input's chunks, read anew), until a game ends before the text does."""
    report = ImportReport()
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        number = 0
        while number < chunk_count:
            head, records = _read_part(_part_path(parts_dir, number))
            if not head["ends_cleanly"]:
                number = _join_reparsed(chunks(), number, report, handle)
                continue
            for line in records:
                handle.write(_with_index(line, report.imported) + "\n")
                report.imported += 1
            report.skipped.update(head["skipped"])
            number += 1
    return report


def _join_reparsed(chunks: Iterator[_Chunk], first: int, report: ImportReport, handle: TextIO) -> int:
    """Parse chunk `first` with as many following chunks as its games need, write their records to
    `handle` indexed on from `report.imported`, count them, and return the number of the next chunk."""
    text = ""
    for chunk in chunks:
        if chunk.number < first:
            continue
        text += chunk.text
        reader = _GameReader(text)
        group_report = ImportReport(imported=report.imported)
        records = list(reader.records(group_report))
        if chunk.ends_file or not reader.last_game_ran_into_end:
            handle.writelines(record.to_json() + "\n" for record in records)
            report.imported = group_report.imported
            report.skipped.update(group_report.skipped)
            return chunk.number + 1
    raise RecordsError("the PGN input changed while it was imported; run the import again")


def _with_index(record_line: str, index: int) -> str:
    """A record's JSON line (as GameRecord.to_json writes it) with another game index: the same bytes
    GameRecord.to_json gives for that index (json keeps the keys' order; the values round-trip)."""
    data = json.loads(record_line)
    data["index"] = index
    return json.dumps(data, separators=(",", ":"))


def _progress_bar(paths: Sequence[Path], limit: int | None, enabled: bool) -> tqdm:
    """A bar of input bytes (of games when a `limit` sets their number), with the games read so far."""
    if limit is not None:
        return tqdm(total=limit, unit="game", desc="import-pgn", disable=not enabled, smoothing=0.1)
    total = sum(path.stat().st_size for path in paths)
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="import-pgn",
                disable=not enabled, smoothing=0.1)


# ------------------------------------------------------------------------------------------ the workers
class _ChunkParsers:
    """Parse chunks into parts: here (1 worker), or on spawned worker processes that end when this process
    dies (even by SIGKILL), with at most two chunks per worker handed out at a time. `parse` and `finish`
    yield (input bytes, games read) for each chunk whose part has been written since."""

    def __init__(self, parts_dir: Path, workers: int) -> None:
        self.parts_dir = parts_dir
        self.workers = workers
        self._in_flight: dict[int, int] = {}  # chunk number → its input bytes
        self._processes: list[Any] = []

    def __enter__(self) -> "_ChunkParsers":
        if self.workers > 1:
            context = multiprocessing.get_context("spawn")  # fork is unsafe once torch or threads are loaded
            self._tasks: Any = context.Queue()
            self._results: Any = context.Queue()
            self._processes = [context.Process(target=_parse_chunks, args=(self.parts_dir, self._tasks, self._results),
                                               name=f"pgnimport-worker-{n}", daemon=True)
                               for n in range(self.workers)]
            for process in self._processes:
                process.start()
        return self

    def parse(self, chunk: _Chunk) -> Iterator[tuple[int, int]]:
        """Parse `chunk` (here, or hand it to a worker once fewer than two per worker are in flight)."""
        if not self._processes:
            yield chunk.input_bytes, _write_part(self.parts_dir, chunk)
            return
        while len(self._in_flight) >= 2 * self.workers:
            yield self._next_finished()
        self._tasks.put(chunk)
        self._in_flight[chunk.number] = chunk.input_bytes

    def finish(self) -> Iterator[tuple[int, int]]:
        """Wait for the chunks in flight."""
        while self._in_flight:
            yield self._next_finished()

    def _next_finished(self) -> tuple[int, int]:
        """The next part a worker wrote. Raises a worker's error, or UserError when a worker died."""
        while True:
            all_ended = all(p.exitcode is not None for p in self._processes)  # before the last look at the queue
            dead = [p for p in self._processes if p.exitcode not in (None, 0)]
            if dead:
                raise UserError(f"PGN import worker {dead[0].name} died (exit code {dead[0].exitcode}); "
                                "re-run the same command to continue")
            try:
                kind, number, payload = self._results.get(timeout=0.5)
            except queue_module.Empty:
                if all_ended:
                    raise UserError(f"PGN import workers ended with {len(self._in_flight)} chunks unparsed; "
                                    "re-run the same command to continue") from None
                continue
            if kind == "error":
                raise RuntimeError(f"PGN import worker failed on chunk {number}:\n{payload}")
            return self._in_flight.pop(number), payload

    def __exit__(self, *exc: object) -> None:
        if not self._processes:
            return
        for _ in self._processes:
            self._tasks.put(None)  # one stop sign per worker
        for process in self._processes:
            process.join(timeout=5 if exc[0] is None else 0)
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=5)
        for queue in (self._tasks, self._results):
            queue.cancel_join_thread()
            queue.close()


def _parse_chunks(parts_dir: Path, tasks: Any, results: Any) -> None:
    """A worker process: write the part of each chunk from `tasks` until a None, putting ("done", number,
    games read) on `results`, or ("error", number, traceback) and stopping."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    threading.Thread(target=exit_with_parent, daemon=True).start()
    number = -1
    try:
        for chunk in iter(tasks.get, None):
            number = chunk.number
            results.put(("done", number, _write_part(parts_dir, chunk)))
    except Exception:  # noqa: BLE001 - a bug: handed to the main process, which raises it
        results.put(("error", number, traceback.format_exc()))
