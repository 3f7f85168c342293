"""Tic-tac-toe evaluation: players against the perfect (Newell–Simon) player and the random player,
as X and as O; win/draw/loss and the illegal-move rate per setting, as rows for a table, JSON and a PNG."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from tqdm import tqdm

from gamegpt.arena.play import derive_seed, play_games
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.games.tictactoe import TicTacToe
from gamegpt.players.base import Player, RandomPlayer
from gamegpt.players.newell_simon import NewellSimonPlayer
from gamegpt.arena.records import GameRecord

SIDES = {"x": 0, "o": 1}


def standard_opponents() -> dict[str, Player]:
    """The two reference opponents: the perfect player and the uniformly random one."""
    return {"newell-simon": NewellSimonPlayer(), "random": RandomPlayer()}


@dataclass
class SettingResult:
    """One subject against one opponent, playing one side, over `games` games."""

    subject: str
    opponent: str
    side: str
    games: int
    wins: int
    draws: int
    losses: int
    illegal_moves: int
    subject_moves: int

    @property
    def score(self) -> float:
        """Points per game: a win 1, a draw 1/2."""
        return (self.wins + 0.5 * self.draws) / self.games if self.games else float("nan")

    @property
    def score_stderr(self) -> float:
        """Standard error of `score` over the games (0 if every game scored the same)."""
        if self.games < 2:
            return float("nan")
        mean = self.score
        var = (self.wins * (1 - mean) ** 2 + self.draws * (0.5 - mean) ** 2 + self.losses * mean ** 2) / (self.games - 1)
        return math.sqrt(var / self.games)

    @property
    def illegal_rate(self) -> float:
        """Share of the subject's moves that were illegal (an illegal move ends the game as a loss)."""
        return self.illegal_moves / self.subject_moves if self.subject_moves else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "score": self.score, "score_stderr": self.score_stderr,
                "illegal_rate": self.illegal_rate}


def score_records(records: Iterable[GameRecord], subject_side: int, subject: str, opponent: str) -> SettingResult:
    """Tally records from the point of view of the player on `subject_side`."""
    wins = draws = losses = illegal = moves = 0
    games = 0
    for record in records:
        games += 1
        if record.winner is None:
            draws += 1
        elif record.winner == subject_side:
            wins += 1
        else:
            losses += 1
        moves += len(record.moves[subject_side::2])
        bad = record.extra.get("illegal")
        if bad and bad.get("side") == subject_side:
            illegal += 1
            moves += 1
    side_name = "x" if subject_side == 0 else "o"
    return SettingResult(subject, opponent, side_name, games, wins, draws, losses, illegal, moves)


def evaluate(
    subjects: Mapping[str, Player],
    opponents: Mapping[str, Player] | None = None,
    *,
    games: int,
    seed: int = 0,
    sides: Iterable[str] = ("x", "o"),
    progress: bool = True,
) -> list[SettingResult]:
    """Play every subject against every opponent on each side, `games` games per setting.

    Seeds depend on the opponent, side and game number, not on the subject, so all subjects meet the
    same opponent randomness.
    """
    opponents = dict(opponents or standard_opponents())
    settings = [(s, o, side) for s in subjects for o in opponents for side in sides]
    results = []
    bar = tqdm(total=len(settings) * games, disable=not progress, desc="eval tictactoe", unit="game")
    for subject_name, opponent_name, side in settings:
        side_index = SIDES[side]
        players = [subjects[subject_name], opponents[opponent_name]]
        if side_index == 1:
            players.reverse()
        setting_seed = derive_seed(seed, sorted(opponents).index(opponent_name), side_index)
        records = []
        for record in play_games(TicTacToe, players, n_games=games, seed=setting_seed):
            records.append(record)
            bar.update(1)
        results.append(score_records(records, side_index, subject_name, opponent_name))
    bar.close()
    return results


def format_table(results: Iterable[SettingResult]) -> str:
    """A plain-text table, one row per setting."""
    header = f"{'player':<24} {'opponent':<13} {'side':<4} {'games':>5} {'win':>6} {'draw':>6} {'loss':>6} {'score':>6} {'illegal':>8}"
    lines = [header, "-" * len(header)]
    for r in results:
        n = max(r.games, 1)
        lines.append(
            f"{r.subject:<24} {r.opponent:<13} {r.side:<4} {r.games:>5} {r.wins / n:>6.1%} {r.draws / n:>6.1%} "
            f"{r.losses / n:>6.1%} {r.score:>6.3f} {r.illegal_rate:>8.2%}"
        )
    return "\n".join(lines)


def plot_results(results: list[SettingResult], path: str | Path, title: str = "tic-tac-toe evaluation") -> Path:
    """Stacked win/draw/loss bars per setting, one panel per opponent; illegal-move rate printed on each bar."""
    opponents = list(dict.fromkeys(r.opponent for r in results))
    fig, axes = pyplot().subplots(1, len(opponents), figsize=(6 * len(opponents), 4.5), squeeze=False)
    for ax, opponent in zip(axes[0], opponents):
        rows = [r for r in results if r.opponent == opponent]
        labels = [f"{r.subject}\nas {r.side.upper()}" for r in rows]
        bottom = [0.0] * len(rows)
        for field, color in (("wins", "#2e7d32"), ("draws", "#9e9e9e"), ("losses", "#c62828")):
            values = [getattr(r, field) / max(r.games, 1) for r in rows]
            ax.bar(range(len(rows)), values, bottom=bottom, color=color, label=field[:-1] if field != "losses" else "loss")
            bottom = [b + v for b, v in zip(bottom, values)]
        for i, r in enumerate(rows):
            if r.illegal_moves:
                ax.text(i, 1.01, f"illegal {r.illegal_rate:.1%}", ha="center", fontsize=7)
        ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=30, ha="right")
        ax.set_ylim(0, 1.08)
        ax.set_ylabel("share of games")
        ax.set_title(f"vs {opponent}")
        ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)
