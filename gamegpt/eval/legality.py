"""Legal-move rate by move number: how often a model's first sampled move is legal.

For held-out games (records or a PGN file), the model is asked for a move at the positions just before
move number n (n = 1, 2, 10, 20, 40, 50, 60 by default; both White's and Black's n-th move), with the
`raw` policy at a given temperature; the share of legal first samples is reported per move number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from tqdm import tqdm

from gamegpt.engine.model_player import ModelPlayer
from gamegpt.errors import RecordsError
from gamegpt.arena.play import derive_seed
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.games.base import IllegalMoveError, InvalidMove
from gamegpt.arena.records import GameRecord

DEFAULT_MOVE_NUMBERS = (1, 2, 10, 20, 40, 50, 60)


@dataclass
class LegalityResult:
    """Counts of legal first samples per move number for one model."""

    model: str
    temperature: float
    positions: dict[int, int] = field(default_factory=dict)
    legal: dict[int, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, move_number: int) -> float | None:
        """Share of legal first samples before move `move_number`, or None if no game was that long."""
        total = self.positions.get(move_number, 0)
        return self.legal.get(move_number, 0) / total if total else None

    def overall(self) -> float | None:
        total = sum(self.positions.values())
        return sum(self.legal.values()) / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature, "overall": self.overall(),
                "by_move_number": {str(n): {"positions": self.positions[n], "legal": self.legal.get(n, 0),
                                            "rate": self.rate(n)} for n in sorted(self.positions)},
                "illegal_examples": self.examples[:20]}


def legal_move_rate(
    player: ModelPlayer,
    records: Sequence[GameRecord],
    *,
    move_numbers: Iterable[int] = DEFAULT_MOVE_NUMBERS,
    seed: int = 0,
    label: str | None = None,
    progress: bool = True,
) -> LegalityResult:
    """Ask `player` (policy raw) for a move before each chosen move number of each game; count legal ones."""
    wanted = set(move_numbers)
    result = LegalityResult(label or player.label, player.temperature,
                            positions={n: 0 for n in sorted(wanted)}, legal={n: 0 for n in sorted(wanted)})
    for number, record in enumerate(tqdm(records, disable=not progress, desc=f"legality {result.model}", unit="game")):
        game = player.codec.new_game(record.start)
        if record.game != game.name:
            raise RecordsError(f"game {number} is {record.game!r}, but the model plays {game.name!r}")
        player.reset(derive_seed(seed, number))
        for ply, text in enumerate(record.moves):
            move_number = ply // 2 + 1
            if move_number > max(wanted):
                break
            try:
                move = game.move_from_str(text)
            except ValueError as exc:
                raise RecordsError(f"game {number}, ply {ply}: {exc}") from None
            if move_number in wanted:
                choice = player.choose(game)
                ok = not isinstance(choice, InvalidMove) and game.is_legal(choice)
                result.positions[move_number] += 1
                result.legal[move_number] += int(ok)
                if not ok and len(result.examples) < 20:
                    shown = choice.text if isinstance(choice, InvalidMove) else game.move_to_str(choice)
                    result.examples.append({"game": number, "ply": ply, "sampled": shown})
            try:
                game.push(move)
            except IllegalMoveError as exc:
                raise RecordsError(f"game {number}, ply {ply}: {exc}") from None
    return result


def format_legality_table(results: Sequence[LegalityResult]) -> str:
    """Models as rows, move numbers as columns: the legal-move rate (and the number of positions)."""
    numbers = sorted({n for r in results for n in r.positions})
    width = max([len(r.model) for r in results] + [5])
    lines = [f"{'model':<{width}} {'T':>5} " + " ".join(f"{'move ' + str(n):>10}" for n in numbers) + f" {'overall':>9}"]
    for r in results:
        cells = []
        for n in numbers:
            rate = r.rate(n)
            cells.append(f"{rate:>10.1%}" if rate is not None else f"{'-':>10}")
        overall = r.overall()
        lines.append(f"{r.model:<{width}} {r.temperature:>5g} " + " ".join(cells) + f" {overall if overall is None else f'{overall:.1%}':>9}")
    lines.append(f"{'positions':<{width}} {'':>5} " + " ".join(f"{results[0].positions.get(n, 0):>10}" for n in numbers))
    return "\n".join(lines)


def plot_legality(results: Sequence[LegalityResult], path: str | Path, title: str) -> Path:
    """One line per model: legal-move rate of the first sample against move number."""
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for r in results:
        numbers = [n for n in sorted(r.positions) if r.rate(n) is not None]
        ax.plot(numbers, [r.rate(n) for n in numbers], "-o", label=f"{r.model} (T={r.temperature:g})")
    ax.set_xlabel("move number")
    ax.set_ylabel("legal first samples")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save_figure(fig, path)
