"""Cut puzzles, with the game that led to them, from a game collection with Stockfish (`gamegpt puzzles make`).

For every position of every game (from ply `min_ply` on), after the opponent's move the side to move is
the solver, and Stockfish analyses the position with MultiPV 2 at a fixed node count. It is a puzzle when
one move wins clearly and the others do not:

  * the best move scores at least `win_cp` (default +200 centipawns) for the solver, or mates;
  * the second-best scores at most `unclear_cp` (default +50) and is not a mate for the solver;
  * the position has at least two legal moves.

The solution then follows Stockfish's line: the solver's best move, the opponent's reply (the second
move of the principal variation, or Stockfish's best move there), and the solver's next best move as long
as the same condition holds, up to `max_solver_moves` (default 3) solver moves. A move that mates ends
the line; a mate in one continues a line whatever the second-best move scores, since any mating move
solves (and a mate in one with a second mate in one is a puzzle too, for the same reason). A forced move
(the only legal one) continues a line but never starts one. The line always ends with a solver move.

Rows are written in Lichess's format: the FEN before the opponent's move, `Moves` starting with that move
(UCI), `Rating` empty (no rating can be estimated without players trying the puzzle: the puzzle counts as
`unrated`), Themes `mate mateInN` for lines that end in mate, else `advantage`, plus `oneMove`/`short`/
`long` by length, and a `History` column with the game's moves from the start (UCI). `PuzzleId` is
`<source>-g<game number>-p<ply>` (both 1-based; the ply of the opponent's move).

At most `per_game` puzzles are cut from one game (default 1, the first found); after a puzzle the scan
goes on after its line. Games from a set-up position (no History possible) and non-chess records are
skipped and counted.

Progress is saved beside the CSV (`<csv>.progress.json`) after every puzzle and every 25 games, CSV first,
each written atomically, so a killed run loses at most the game in flight: re-running the same command
continues (a larger `--max` goes on from where a finished run stopped). Stockfish gets only positions that
python-chess validated (it crashes on malformed FEN); one process, Threads 1, fixed nodes, `ucinewgame`
per game, so a run repeats exactly.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import chess
import chess.engine

from gamegpt.errors import EngineError, EngineSetupError, RecordsError, UserError
from gamegpt.arena.puzzle_file import HISTORY_COLUMN, LICHESS_COLUMNS
from gamegpt.players.uci import find_stockfish
from gamegpt.arena.records import GameRecord, iter_records
from gamegpt.atomic import write_text_atomic

OUTPUT_COLUMNS = (*LICHESS_COLUMNS, HISTORY_COLUMN)
MATE_SCORE = 100_000
CHECKPOINT_EVERY = 25
_ID = re.compile(r"-g(\d+)-p\d+$")


@dataclass(frozen=True)
class MakerSettings:
    """What decides which puzzles are cut (see the module docstring); a resumed run must use the same.
    `nodes` per analysed position; `win_cp`/`unclear_cp` the best and second-best thresholds (centipawns,
    solver's view); `min_ply` the first ply of the game whose move can be the opponent's move of a puzzle."""

    nodes: int = 50_000
    win_cp: int = 200
    unclear_cp: int = 50
    max_solver_moves: int = 3
    min_ply: int = 10
    per_game: int = 1

    def validate(self) -> None:
        if self.nodes < 1 or self.max_solver_moves < 1 or self.per_game < 1 or self.min_ply < 0:
            raise UserError("nodes, max solver moves and puzzles per game must be at least 1, min ply at least 0")
        if self.unclear_cp >= self.win_cp:
            raise UserError(f"the winning threshold ({self.win_cp}) must be above the unclear one ({self.unclear_cp})")


@dataclass
class MakeReport:
    """What a run did: games scanned (in all, with resumed ones), puzzles in the file, games skipped by reason."""

    out: Path
    games_read: int = 0
    games_scanned: int = 0
    puzzles: int = 0
    new_puzzles: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    complete: bool = False

    def describe(self) -> str:
        plural = "" if self.puzzles == 1 else "s"
        text = (f"{self.puzzles} puzzle{plural} ({self.new_puzzles} new) from {self.games_scanned} of "
                f"{self.games_read} games scanned")
        if self.skipped:
            text += "; games skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return text


class Analyser:
    """Stockfish through python-chess (MultiPV analysis at a fixed node count), errors as EngineError."""

    def __init__(self, nodes: int, path: str | None = None, hash_mb: int = 32) -> None:
        executable = find_stockfish(path)
        self.limit = chess.engine.Limit(nodes=nodes)
        try:
            self.engine = chess.engine.SimpleEngine.popen_uci([executable])
            self.engine.configure({"Threads": 1, "Hash": hash_mb})
        except (chess.engine.EngineError, chess.engine.EngineTerminatedError, OSError) as exc:
            raise EngineSetupError(f"cannot start Stockfish at {executable}: {exc}") from None

    def analyse(self, board: chess.Board, multipv: int, game: object) -> list[chess.engine.InfoDict]:
        """The top `multipv` lines of a position python-chess calls valid (ValueError otherwise)."""
        if not board.is_valid():
            raise ValueError(f"not a valid position: {board.fen()}")
        try:
            return self.engine.analyse(board, self.limit, multipv=multipv, game=game)
        except (chess.engine.EngineError, chess.engine.EngineTerminatedError) as exc:
            raise EngineError(f"Stockfish failed on {board.fen()}: {exc}") from None

    def close(self) -> None:
        try:
            self.engine.quit()
        except (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError):
            self.engine.close()


def _cp(info: chess.engine.InfoDict, solver: chess.Color) -> int:
    return info["score"].pov(solver).score(mate_score=MATE_SCORE)


def _mate(info: chess.engine.InfoDict, solver: chess.Color) -> int | None:
    return info["score"].pov(solver).mate()


def solution_line(analyser: Analyser, board: chess.Board, settings: MakerSettings,
                  game: object) -> list[chess.Move]:
    """The solver's line from `board` (solver to move) by the rule of the module docstring: solver move,
    reply, solver move, ... ending with a solver move; empty when the position is no puzzle."""
    solver, position = board.turn, board.copy()
    line: list[chess.Move] = []
    for step in range(settings.max_solver_moves):
        legal = position.legal_moves.count()
        if legal == 0 or (legal == 1 and step == 0):
            break
        infos = analyser.analyse(position, 2, game)
        best = infos[0]
        if not best.get("pv"):
            break
        mate = _mate(best, solver)
        wins = (mate is not None and mate > 0) or _cp(best, solver) >= settings.win_cp
        if legal > 1:
            second = infos[1] if len(infos) > 1 else None
            if second is None or not second.get("pv"):
                break
            second_mate = _mate(second, solver)
            if mate == 1 and (step > 0 or second_mate == 1):
                unique = True  # any mating move solves
            else:
                unique = (second_mate is None or second_mate < 0) and _cp(second, solver) <= settings.unclear_cp
            wins = wins and unique
        if not wins:
            break
        move = best["pv"][0]
        position.push(move)
        line.append(move)
        if position.is_game_over() or step + 1 == settings.max_solver_moves:
            break
        reply = best["pv"][1] if len(best["pv"]) > 1 else analyser.analyse(position, 1, game)[0].get("pv", [None])[0]
        if reply is None or not position.is_legal(reply):
            break
        position.push(reply)
        line.append(reply)
        if position.is_game_over():
            break
    if len(line) % 2 == 0 and line:
        line.pop()  # the line ends with the solver's move
    return line


def _themes(board: chess.Board, full: list[chess.Move]) -> str:
    """Lichess-style themes of a puzzle: `mate mateInN` or `advantage`, and its length."""
    end = board.copy()
    for move in full:
        end.push(move)
    solver_moves = len(full) // 2
    kind = f"mate mateIn{solver_moves}" if end.is_checkmate() else "advantage"
    length = "oneMove" if solver_moves == 1 else "short" if solver_moves == 2 else "long"
    return f"{kind} {length}"


def puzzles_in_game(analyser: Analyser, record: GameRecord, number: int, source: str,
                    settings: MakerSettings) -> list[dict[str, str]]:
    """The puzzle rows cut from one game (`number`: 1-based in the collection)."""
    board = chess.Board()
    moves = [chess.Move.from_uci(text) for text in record.moves]
    rows: list[dict[str, str]] = []
    resume_at = settings.min_ply
    url = str(record.extra.get("Site", ""))
    for ply, move in enumerate(moves):
        if len(rows) >= settings.per_game:
            break
        before = board.copy()
        if not board.is_legal(move):
            break
        board.push(move)
        if ply < resume_at or board.is_game_over():
            continue
        line = solution_line(analyser, board, settings, game=number)
        if not line:
            continue
        full = [move, *line]
        rows.append({
            "PuzzleId": f"{source}-g{number}-p{ply + 1}", "FEN": before.fen(), "Moves": " ".join(m.uci() for m in full),
            "Rating": "", "RatingDeviation": "", "Popularity": "", "NbPlays": "", "Themes": _themes(before, full),
            "GameUrl": url if url.startswith("http") else "", "OpeningTags": "",
            HISTORY_COLUMN: " ".join(m.uci() for m in moves[:ply]),
        })
        resume_at = ply + len(full)
    return rows


# ----------------------------------------------------------------------------------------------- files


def _load_records(path: Path, scratch: Path) -> tuple[list[GameRecord], Counter[str]]:
    """Records of a JSONL file, or of a PGN file (imported; broken games and variants counted)."""
    from gamegpt.arena.pgn_import import import_pgn

    if not path.is_file():
        raise RecordsError(f"games file not found: {path}")
    skipped: Counter[str] = Counter()
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if path.suffix.lower() in (".jsonl", ".json") or head.startswith(b"{"):
        return list(iter_records(path)), skipped
    report = import_pgn([path], scratch / "games.jsonl")
    skipped.update(report.skipped)
    if report.imported == 0:
        raise RecordsError(f"{path}: no standard chess game read ({report.describe()})")
    return list(iter_records(scratch / "games.jsonl")), skipped


def _csv_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=OUTPUT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def progress_path(out: Path) -> Path:
    """The progress file kept beside a puzzle CSV."""
    return out.with_name(out.name + ".progress.json")


def _resume(out: Path, source: Path, settings: MakerSettings, overwrite: bool) -> tuple[list[dict[str, str]], int]:
    """(rows, games scanned) of an earlier run with the same source and settings; ([], 0) for a fresh one."""
    progress = progress_path(out)
    if overwrite or not out.exists():
        progress.unlink(missing_ok=True)
        return [], 0
    try:
        state = json.loads(progress.read_text())
    except (OSError, ValueError):
        raise UserError(f"{out} exists and was not made by an unfinished or finished `puzzles make` run "
                        f"(no readable {progress.name}); remove it or give --overwrite") from None
    wanted = {"source": str(source.resolve()), "settings": asdict(settings)}
    if {k: state.get(k) for k in wanted} != wanted:
        raise UserError(f"{out} was made from another source or with other settings ({progress.name}); "
                        "remove it or give --overwrite")
    scanned = int(state["games_scanned"])
    with open(out, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle)]
    kept = []
    for row in rows:
        match = _ID.search(row.get("PuzzleId", ""))
        if match and int(match.group(1)) <= scanned:
            kept.append({column: row.get(column) or "" for column in OUTPUT_COLUMNS})
    return kept, scanned


def make_puzzles(games: str | Path, out: str | Path, *, settings: MakerSettings | None = None,
                 max_puzzles: int | None = None, stockfish: str | None = None, overwrite: bool = False,
                 progress: Callable[[list[Any]], Iterable[Any]] | None = None) -> MakeReport:
    """Cut puzzles from the games of a PGN or records (JSONL) file into a Lichess-format CSV with History.

    Continues an earlier run with the same source and settings (see the module docstring). `progress`
    wraps the game iterator (e.g. tqdm). Raises RecordsError for a missing or unreadable games file,
    EngineError when Stockfish is missing or fails, UserError for bad settings or a foreign `out`.
    """
    settings = settings or MakerSettings()
    settings.validate()
    if max_puzzles is not None and max_puzzles < 1:
        raise UserError(f"--max must be at least 1, got {max_puzzles}")
    source, out_path = Path(games), Path(out)
    report = MakeReport(out_path)
    if not source.is_file():
        raise RecordsError(f"games file not found: {source}")
    rows, scanned = _resume(out_path, source, settings, overwrite)
    with tempfile.TemporaryDirectory() as scratch:
        records, skipped = _load_records(source, Path(scratch))
    report.skipped.update(skipped)
    report.games_read = len(records)
    initial = len(rows)
    label = re.sub(r"[^A-Za-z0-9_]+", "_", source.stem) or "games"

    def save(complete: bool) -> None:
        write_text_atomic(out_path, _csv_text(rows))
        state = {"source": str(source.resolve()), "settings": asdict(settings), "games_scanned": scanned,
                 "puzzles": len(rows), "complete": complete}
        write_text_atomic(progress_path(out_path), json.dumps(state, indent=2) + "\n")

    analyser: Analyser | None = None
    try:
        pending = list(enumerate(records[scanned:], start=scanned + 1))
        for number, record in progress(pending) if progress is not None else pending:
            if max_puzzles is not None and len(rows) >= max_puzzles:
                break
            if record.game != "chess":
                report.skipped[f"not chess ({record.game})"] += 1
            elif record.start is not None:
                report.skipped["set-up start position (no History)"] += 1
            else:
                analyser = analyser or Analyser(settings.nodes, stockfish)
                found = puzzles_in_game(analyser, record, number, label, settings)
                rows.extend(found[: (max_puzzles - len(rows)) if max_puzzles is not None else None])
                if found:
                    scanned = number
                    save(False)
            scanned = number
            if number % CHECKPOINT_EVERY == 0:
                save(False)
        report.complete = scanned >= len(records)
        save(report.complete)
    except KeyboardInterrupt:
        save(False)  # the games finished so far count; a re-run continues after them
        raise
    finally:
        if analyser is not None:
            analyser.close()
    report.games_scanned, report.puzzles, report.new_puzzles = scanned, len(rows), len(rows) - initial
    return report
