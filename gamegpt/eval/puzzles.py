"""Puzzle scoring: the solve rule, and solve rate by rating bucket (the file format: `gamegpt.arena.puzzle_file`).

The solve rule: the solver must play every solution move; the opponent's replies are played from the
solution. A move that checkmates always solves the puzzle, as on Lichess (in Lichess's database that
happens only where the solution's own move mates, so "any mating move counts on the last move of a mate
puzzle"). An illegal or unreadable move fails it.

What a player reads: a model without start-position encoding (Karvonen's character PGN) reads games
from move 1, so it gets a puzzle only with its `History`, as the game that was played; FEN-only puzzles
are skipped for it and counted. A model with start-position encoding (`chess-uci-moves` with
`start_position`) reads the FEN when there is no `History`; when there is one, every player reads the
game from the start. The random baseline needs neither.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess
from tqdm import tqdm

from gamegpt.arena.play import derive_seed
from gamegpt.arena.puzzle_file import (
    BUCKETS,
    NO_HISTORY,
    Puzzle,
    PuzzleSet,
    UNRATED,
    SkippedPuzzle,
    count_text,
)
from gamegpt.games.base import InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import Player, RandomPlayer

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
            lines.append(f"skipped for {result.label}: {count_text(result.skip_counts())}")
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
