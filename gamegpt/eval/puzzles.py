"""Chess puzzles in Lichess's CSV format: reading them, the solve rule, and solve rate by rating bucket.

A row (`PuzzleId,FEN,Moves,Rating,...`, Lichess's columns) holds the position *before* the opponent's
move; `Moves[0]` is that move, then the solver's moves alternate with the opponent's replies, the last
move being the solver's. An optional `History` column (SAN or UCI moves from the standard start,
space-separated; move numbers such as `1.` or `12...` are ignored) gives the game that led to the FEN.

The solve rule: the solver must play every solution move; the opponent's replies are played from the
solution. A move that checkmates always solves the puzzle, as on Lichess (in Lichess's database that
happens only where the solution's own move mates, so "any mating move counts on the last move of a mate
puzzle"). An illegal or unreadable move fails it.

What a player reads: a model without start-position encoding (Karvonen's character PGN) reads games
from move 1, so it gets a puzzle only with its `History`, as the game that was played; FEN-only puzzles
are skipped for it and counted. A model with start-position encoding (`chess-uci-moves` with
`start_position`) reads the FEN when there is no `History`; when there is one, every player reads the
game from the start. The random baseline needs neither.

Rating buckets: `<900` (every rating below 900), `900` (900-999), `1000`, `1100`, `1200`, `1300`
(each 100 wide), `1400+` (1400 and above), as in Karvonen's plot; `unrated` for an empty Rating (puzzles
from `gamegpt puzzles make`).

Rows that cannot be read (a bad FEN, an illegal solution move, a History that does not lead to the FEN,
...) are skipped and counted by reason, never fatal; a missing or unreadable file is a `PuzzleFileError`.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess
from tqdm import tqdm

from gamegpt.errors import UserError
from gamegpt.eval.arena import derive_seed
from gamegpt.games.base import IllegalMoveError, InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import Player, RandomPlayer

LICHESS_COLUMNS = ("PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes",
                   "GameUrl", "OpeningTags")
"""Lichess's puzzle columns, in their order."""
HISTORY_COLUMN = "History"
REQUIRED_COLUMNS = ("PuzzleId", "FEN", "Moves")

BUCKET_EDGES = (900, 1000, 1100, 1200, 1300, 1400)
"""Lower edges of the rated buckets after `<900`; the last one is open (`1400+`)."""
UNRATED = "unrated"
BUCKETS = ("<900", "900", "1000", "1100", "1200", "1300", "1400+", UNRATED)
"""Every bucket label, in plotting order."""

NO_HISTORY = "no History (the model reads games from move 1)"
"""The skip reason for a FEN-only puzzle and a model without start-position encoding."""

_MOVE_NUMBER = re.compile(r"^\d+\.+")


class PuzzleFileError(UserError):
    """A puzzle file is missing, unreadable, or not a Lichess-format CSV."""


class MalformedPuzzle(ValueError):
    """A row that is not a usable puzzle; `reason` is a short stable key, `detail` says more."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def rating_bucket(rating: int | None) -> str:
    """The bucket label of a puzzle rating (see the module docstring); `unrated` for None."""
    if rating is None:
        return UNRATED
    if rating < BUCKET_EDGES[0]:
        return BUCKETS[0]
    if rating >= BUCKET_EDGES[-1]:
        return f"{BUCKET_EDGES[-1]}+"
    return str(max(edge for edge in BUCKET_EDGES if edge <= rating))


@dataclass(frozen=True)
class Puzzle:
    """One puzzle. `moves[0]` is the opponent's move from `fen`; the solver plays `moves[1]`, `moves[3]`, ...
    `history` (or None) is the game from the standard start that reaches `fen`. `row` is the 1-based data
    row in its file, which seeds the players."""

    puzzle_id: str
    fen: str
    moves: tuple[chess.Move, ...]
    rating: int | None = None
    themes: tuple[str, ...] = ()
    history: tuple[chess.Move, ...] | None = None
    row: int = 0

    @property
    def bucket(self) -> str:
        return rating_bucket(self.rating)

    @property
    def solver_moves(self) -> tuple[chess.Move, ...]:
        return self.moves[1::2]

    def game(self, *, from_history: bool = True) -> ChessGame:
        """The game at the solver's first turn (the opponent's move played): from the standard start through
        `history` when there is one and `from_history` is set, else from the FEN."""
        if self.history is not None and from_history:
            game = ChessGame()
            for move in self.history:
                game.push(move)
        else:
            game = ChessGame(self.fen)
        game.push(self.moves[0])
        return game


@dataclass(frozen=True)
class SkippedPuzzle:
    """A puzzle (or row) left out, with a short `reason` (the key counts are grouped by) and a `detail`."""

    puzzle_id: str
    reason: str
    detail: str = ""
    row: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.puzzle_id, "row": self.row, "reason": self.reason, "detail": self.detail}


@dataclass
class PuzzleSet:
    """The puzzles of a file, and its rows that could not be read (`malformed`)."""

    source: str
    puzzles: list[Puzzle]
    malformed: list[SkippedPuzzle] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.puzzles) + len(self.malformed)

    def describe(self) -> str:
        text = f"{self.source}: {len(self.puzzles)} of {self.rows} rows read"
        if self.malformed:
            text += "; malformed: " + _count_text(Counter(s.reason for s in self.malformed))
        return text


# ----------------------------------------------------------------------------------------------- reading


def parse_moves(text: str, board: chess.Board, what: str) -> list[chess.Move]:
    """Space-separated SAN or UCI moves (move numbers ignored), each legal in turn from `board` (which is
    played forward). MalformedPuzzle(`bad <what>`) names the first move that is unreadable or illegal."""
    moves: list[chess.Move] = []
    for word in text.split():
        word = _MOVE_NUMBER.sub("", word)
        if not word:
            continue
        move = _parse_move(board, word)
        if move is None:
            raise MalformedPuzzle(f"bad {what}", f"{word!r} is not a legal move at ply {len(moves) + 1} "
                                                 f"in {board.fen()}")
        moves.append(move)
        board.push(move)
    return moves


def _parse_move(board: chess.Board, word: str) -> chess.Move | None:
    """A legal move written in UCI or SAN, or None."""
    try:
        move = chess.Move.from_uci(word)
        if move and board.is_legal(move):
            return move
    except ValueError:
        pass
    try:
        move = board.parse_san(word)
    except ValueError:
        return None
    return move if move else None


def _same_position(a: chess.Board, b: chess.Board) -> bool:
    """Pieces, side to move, castling rights and a usable en-passant square agree (move counters may not)."""
    return a.epd() == b.epd()


def parse_puzzle(row: Mapping[str, str | None], number: int) -> Puzzle:
    """The puzzle of one CSV row (`number`: its 1-based data row); MalformedPuzzle if it is not one."""
    puzzle_id = (row.get("PuzzleId") or "").strip()
    if not puzzle_id:
        raise MalformedPuzzle("missing PuzzleId")
    fen = (row.get("FEN") or "").strip()
    if not fen:
        raise MalformedPuzzle("missing FEN")
    try:
        board = chess.Board(fen)
    except ValueError as exc:
        raise MalformedPuzzle("bad FEN", str(exc)) from None
    if not board.is_valid():
        raise MalformedPuzzle("bad FEN", f"not a legal position ({board.status()!r})")
    start = board.copy()
    moves = parse_moves(row.get("Moves") or "", board, "Moves")
    if len(moves) < 2 or len(moves) % 2:
        raise MalformedPuzzle("bad Moves", f"{len(moves)} moves: expected the opponent's move, then pairs "
                                           "ending with the solver's")
    rating_text = (row.get("Rating") or "").strip()
    try:
        rating = int(float(rating_text)) if rating_text else None
    except ValueError:
        raise MalformedPuzzle("bad Rating", repr(rating_text)) from None
    history = None
    history_text = (row.get(HISTORY_COLUMN) or "").strip()
    if history_text:
        reached = chess.Board()
        history = tuple(parse_moves(history_text, reached, "History"))
        if not _same_position(reached, start):
            raise MalformedPuzzle("History does not lead to the FEN", f"it reaches {reached.fen()}")
    puzzle = Puzzle(puzzle_id, start.fen(), tuple(moves), rating, tuple((row.get("Themes") or "").split()),
                    history, number)
    for from_history in (False, True) if history is not None else (False,):
        try:  # ChessGame also ends games by the 75-move and fivefold rules, which chess.Board.is_legal ignores
            game = puzzle.game(from_history=from_history)
            for move in moves[1:]:
                game.push(move)
        except IllegalMoveError:
            raise MalformedPuzzle("bad Moves", "the game is over before the solution ends") from None
    return puzzle


def read_puzzles(path: str | Path, *, limit: int | None = None) -> PuzzleSet:
    """The puzzles of a Lichess-format CSV (the first `limit` data rows if given). Malformed rows and
    repeated ids are skipped and counted; PuzzleFileError for a missing, unreadable or headerless file."""
    path = Path(path)
    if not path.is_file():
        raise PuzzleFileError(f"puzzle file not found: {path}")
    if limit is not None and limit < 1:
        raise UserError(f"the limit must be at least 1, got {limit}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise PuzzleFileError(f"{path}: not a text (UTF-8) CSV file") from None
    except OSError as exc:
        raise PuzzleFileError(f"cannot read puzzle file {path}: {exc.strerror or exc}") from None
    if "\0" in text:
        raise PuzzleFileError(f"{path}: not a text CSV file (it holds NUL bytes)")
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise PuzzleFileError(f"{path}: not a Lichess puzzle CSV: no column {', '.join(missing)} in the header "
                              f"(expected {','.join(LICHESS_COLUMNS)}[,{HISTORY_COLUMN}])")
    reader.fieldnames = header
    result = PuzzleSet(str(path), [])
    seen: set[str] = set()
    try:
        for number, row in enumerate(reader, start=1):
            if limit is not None and number > limit:
                break
            puzzle_id = (row.get("PuzzleId") or "").strip() or f"row {number}"
            if None in row:
                result.malformed.append(SkippedPuzzle(puzzle_id, "too many fields", "", number))
                continue
            try:
                puzzle = parse_puzzle(row, number)
            except MalformedPuzzle as exc:
                result.malformed.append(SkippedPuzzle(puzzle_id, exc.reason, exc.detail, number))
                continue
            if puzzle.puzzle_id in seen:
                result.malformed.append(SkippedPuzzle(puzzle_id, "repeated PuzzleId", "", number))
                continue
            seen.add(puzzle.puzzle_id)
            result.puzzles.append(puzzle)
    except csv.Error as exc:
        raise PuzzleFileError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    return result


# ----------------------------------------------------------------------------------------------- solving


@dataclass(frozen=True)
class Attempt:
    """One player's try at one puzzle: `played` are the solver's moves (UCI, or an illegal sample's text);
    `failure` is None when solved, else "wrong move" or "illegal move"."""

    puzzle_id: str
    bucket: str
    solved: bool
    played: tuple[str, ...]
    failure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.puzzle_id, "bucket": self.bucket, "solved": self.solved, "played": list(self.played),
                "failure": self.failure}


def attempt_puzzle(player: Player, puzzle: Puzzle, game: ChessGame) -> Attempt:
    """Let `player` solve `puzzle` from `game` (the solver to move, see `Puzzle.game`); `game` is played on."""
    played: list[str] = []
    for index in range(1, len(puzzle.moves), 2):
        choice = player.choose(game)
        if isinstance(choice, InvalidMove) or not game.is_legal(choice):
            played.append(choice.text if isinstance(choice, InvalidMove) else str(choice))
            return Attempt(puzzle.puzzle_id, puzzle.bucket, False, tuple(played), "illegal move")
        played.append(choice.uci())
        if _board_mates(game.board, choice):
            return Attempt(puzzle.puzzle_id, puzzle.bucket, True, tuple(played))
        if choice != puzzle.moves[index]:
            return Attempt(puzzle.puzzle_id, puzzle.bucket, False, tuple(played), "wrong move")
        game.push(choice)
        if index + 1 < len(puzzle.moves):
            game.push(puzzle.moves[index + 1])
    return Attempt(puzzle.puzzle_id, puzzle.bucket, True, tuple(played))


def random_solve_probability(puzzle: Puzzle) -> float:
    """The exact chance that a uniformly random legal mover solves `puzzle` (the expected baseline)."""
    board = chess.Board(puzzle.fen)
    board.push(puzzle.moves[0])
    probability, reach = 0.0, 1.0
    for index in range(1, len(puzzle.moves), 2):
        legal = list(board.legal_moves)
        mating = sum(1 for move in legal if _board_mates(board, move))
        expected = puzzle.moves[index]
        probability += reach * mating / len(legal)
        if _board_mates(board, expected):
            return probability
        reach /= len(legal)
        board.push(expected)
        if index + 1 < len(puzzle.moves):
            board.push(puzzle.moves[index + 1])
    return probability + reach


def _board_mates(board: chess.Board, move: chess.Move) -> bool:
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()


def reads_start_position(player: Player) -> bool:
    """Whether `player` can be given a position without the game before it: a model whose codec encodes
    start positions, or any player that is not a model (Stockfish, random)."""
    codec = getattr(player, "codec", None)
    return codec is None or bool(codec.spec().get("start_position", False))


# ----------------------------------------------------------------------------------------------- results


@dataclass
class PuzzleResult:
    """One player's attempts over a puzzle set, and the puzzles skipped for it (with reasons)."""

    label: str
    attempts: list[Attempt] = field(default_factory=list)
    skipped: list[SkippedPuzzle] = field(default_factory=list)
    player: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, float] | None = None
    """For the random baseline: each attempted puzzle's exact solve probability."""

    def counts(self) -> dict[str, tuple[int, int]]:
        """(attempted, solved) by bucket, for buckets with attempts."""
        counts: dict[str, list[int]] = {}
        for attempt in self.attempts:
            cell = counts.setdefault(attempt.bucket, [0, 0])
            cell[0] += 1
            cell[1] += attempt.solved
        return {bucket: (a, s) for bucket, (a, s) in counts.items()}

    def rate(self, bucket: str | None = None) -> float | None:
        """Solve rate in `bucket` (all buckets if None); None without attempts there."""
        chosen = [a for a in self.attempts if bucket is None or a.bucket == bucket]
        return sum(a.solved for a in chosen) / len(chosen) if chosen else None

    def expected_rate(self, bucket: str | None = None) -> float | None:
        """The exact expected solve rate of the random baseline in `bucket`, or None."""
        if self.expected is None:
            return None
        chosen = [self.expected[a.puzzle_id] for a in self.attempts if bucket is None or a.bucket == bucket]
        return sum(chosen) / len(chosen) if chosen else None

    def skip_counts(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts()
        data: dict[str, Any] = {
            "label": self.label, "player": self.player, "attempted": len(self.attempts),
            "solved": sum(a.solved for a in self.attempts), "rate": self.rate(),
            "illegal_moves": sum(a.failure == "illegal move" for a in self.attempts),
            "by_bucket": {b: {"attempted": counts[b][0], "solved": counts[b][1], "rate": self.rate(b)}
                          for b in BUCKETS if b in counts},
            "skipped": dict(sorted(self.skip_counts().items())),
            "skipped_ids": {reason: [s.puzzle_id for s in self.skipped if s.reason == reason]
                            for reason in sorted(self.skip_counts())},
            "attempts": [a.to_dict() for a in self.attempts],
        }
        if self.expected is not None:
            data["expected_rate"] = self.expected_rate()
            for bucket, cell in data["by_bucket"].items():
                cell["expected_rate"] = self.expected_rate(bucket)
        return data


def solve_puzzles(player: Player, puzzles: Sequence[Puzzle], *, seed: int = 0, label: str | None = None,
                  progress: bool = True) -> PuzzleResult:
    """`player` tries every puzzle it can read (see the module docstring); the others are skipped with the
    reason. The player is reset with a seed derived from (`seed`, the puzzle's row) before each puzzle."""
    needs_history = not reads_start_position(player)
    described = player.describe()
    codec = getattr(player, "codec", None)
    if codec is not None:
        described.update(codec=codec.spec().get("name"), start_position=not needs_history)
    result = PuzzleResult(label or getattr(player, "label", player.name), player=described)
    for puzzle in tqdm(puzzles, disable=not progress, desc=f"puzzles {result.label}", unit="puzzle"):
        if needs_history and puzzle.history is None:
            result.skipped.append(SkippedPuzzle(puzzle.puzzle_id, NO_HISTORY, "", puzzle.row))
            continue
        player.reset(derive_seed(seed, puzzle.row))
        result.attempts.append(attempt_puzzle(player, puzzle, puzzle.game()))
    return result


def random_baseline(puzzles: Sequence[Puzzle], *, seed: int = 0) -> PuzzleResult:
    """A uniformly random legal mover on `puzzles` (seeded per puzzle), with the exact expected rates."""
    result = solve_puzzles(RandomPlayer(), puzzles, seed=seed, label="random", progress=False)
    result.player = {"name": "random", "seed": seed}
    result.expected = {p.puzzle_id: random_solve_probability(p) for p in puzzles}
    return result


@dataclass
class PuzzleEvaluation:
    """Several players on one puzzle set, with the random baseline on the puzzles they attempted."""

    puzzle_set: PuzzleSet
    results: list[PuzzleResult]
    baseline: PuzzleResult
    baseline_scope: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        malformed = Counter(s.reason for s in self.puzzle_set.malformed)
        return {
            "source": self.puzzle_set.source, "rows": self.puzzle_set.rows, "puzzles": len(self.puzzle_set.puzzles),
            "settings": self.settings, "buckets": list(BUCKETS),
            "bucket_definition": "<900: below 900; 900..1300: [N, N+100); 1400+: 1400 and above; "
                                 "unrated: no Rating",
            "malformed": {"counts": dict(sorted(malformed.items())),
                          "rows": [s.to_dict() for s in self.puzzle_set.malformed]},
            "results": [r.to_dict() for r in self.results],
            "baseline": {"scope": self.baseline_scope, **self.baseline.to_dict()},
        }


def evaluate_puzzles(players: Mapping[str, Player], puzzle_set: PuzzleSet, *, seed: int = 0,
                     settings: Mapping[str, Any] | None = None, progress: bool = True) -> PuzzleEvaluation:
    """Each player on the puzzles, then the random baseline on the puzzles at least one player attempted
    (all readable puzzles when no player attempted any)."""
    results = [solve_puzzles(player, puzzle_set.puzzles, seed=seed, label=label, progress=progress)
               for label, player in players.items()]
    attempted = {a.puzzle_id for r in results for a in r.attempts}
    chosen = [p for p in puzzle_set.puzzles if p.puzzle_id in attempted]
    scope = "the puzzles the models attempted"
    if not chosen:
        chosen, scope = list(puzzle_set.puzzles), "every readable puzzle (no model attempted any)"
    return PuzzleEvaluation(puzzle_set, results, random_baseline(chosen, seed=seed), scope, dict(settings or {}))


def _count_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))


def _shown_buckets(evaluation: PuzzleEvaluation) -> list[str]:
    """The rated buckets always (as in the reference plot), `unrated` only when some puzzle is."""
    used = {p.bucket for p in evaluation.puzzle_set.puzzles}
    return [b for b in BUCKETS if b != UNRATED or b in used]


def format_puzzle_table(evaluation: PuzzleEvaluation) -> str:
    """Players as rows, rating buckets as columns: solve rate (attempted); then the skips by reason."""
    buckets = _shown_buckets(evaluation)
    rows: list[tuple[str, list[tuple[float | None, int]], tuple[float | None, int], int]] = []
    for result in [*evaluation.results, evaluation.baseline]:
        counts = result.counts()
        cells = [(result.rate(b), counts.get(b, (0, 0))[0]) for b in buckets]
        rows.append((result.label if result is not evaluation.baseline else "random (seeded)", cells,
                     (result.rate(), len(result.attempts)), len(result.skipped)))
    base = evaluation.baseline
    counts = base.counts()
    rows.append(("random (expected)", [(base.expected_rate(b), counts.get(b, (0, 0))[0]) for b in buckets],
                 (base.expected_rate(), len(base.attempts)), len(base.skipped)))
    width = max([len(r[0]) for r in rows] + [6])

    def cell(rate: float | None, n: int) -> str:
        return f"{'-':>13}" if rate is None else f"{f'{rate:.1%} ({n})':>13}"

    lines = [evaluation.puzzle_set.describe(),
             f"{'player':<{width}} " + " ".join(f"{b:>13}" for b in buckets) + f" {'all':>13} {'skipped':>8}"]
    for label, cells, overall, skipped in rows:
        lines.append(f"{label:<{width}} " + " ".join(cell(*c) for c in cells) + f" {cell(*overall)} {skipped:>8}")
    lines.append("cells: solve rate (puzzles attempted); random baseline on " + evaluation.baseline_scope)
    for result in evaluation.results:
        if result.skipped:
            lines.append(f"skipped for {result.label}: {_count_text(result.skip_counts())}")
    return "\n".join(lines)


def plot_puzzles(evaluation: PuzzleEvaluation, path: str | Path, title: str) -> Path:
    """Solve rate by rating bucket: one line per player, the random baseline dashed (seeded) and dotted
    (exact expectation). Buckets without attempts are gaps."""
    from gamegpt.eval.plots import pyplot, save_figure

    buckets = _shown_buckets(evaluation)
    fig, ax = pyplot().subplots(figsize=(7.5, 4.2))
    x = list(range(len(buckets)))

    def series(values: Iterable[float | None]) -> list[float]:
        return [float("nan") if v is None else v for v in values]

    for result in evaluation.results:
        label = result.label if result.attempts else f"{result.label} (no puzzle attempted)"
        ax.plot(x, series(result.rate(b) for b in buckets), "-o", label=label)
    base = evaluation.baseline
    ax.plot(x, series(base.rate(b) for b in buckets), "--s", color="gray", label="random legal move (seeded)")
    ax.plot(x, series(base.expected_rate(b) for b in buckets), ":", color="gray", label="random (expected)")
    ax.set_xticks(x, buckets)
    ax.set_xlabel("puzzle rating")
    ax.set_ylabel("solve rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save_figure(fig, path)
