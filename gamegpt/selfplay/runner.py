"""Self-play runs: play N games between two player specs and append the records to a JSONL file.

Re-running the same command continues to the requested count: the games already in the file are kept,
game `i` is always seeded by (seed, i), so nothing is played twice and the file equals one straight run.
A summary JSON beside the records names the settings; a re-run with other settings is refused.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from gamegpt.errors import UserError
from gamegpt.eval.arena import play_games
from gamegpt.games import new_game
from gamegpt.players.spec import make_player
from gamegpt.records import GameRecord, RecordWriter, iter_records


@dataclass
class SelfplayResult:
    """What a self-play run left behind."""

    records_path: Path
    summary_path: Path
    games_total: int
    games_new: int
    results: dict[str, int]


def summary_path_for(records_path: Path) -> Path:
    """Where the summary JSON of a records file lives (`games.jsonl` → `games.summary.json`)."""
    return records_path.with_name(records_path.stem + ".summary.json")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def run_selfplay(
    game: str,
    player_specs: Sequence[str],
    *,
    n_games: int,
    seed: int,
    out: str | Path,
    max_plies: int | None = None,
    progress: bool = True,
) -> SelfplayResult:
    """Play games `len(existing) .. n_games-1` between `player_specs[0]` (moves first) and `[1]`."""
    if n_games < 0:
        raise UserError(f"the game count must be >= 0, got {n_games}")
    records_path = Path(out)
    summary_path = summary_path_for(records_path)
    settings = {"game": game, "players": list(player_specs), "seed": seed, "max_plies": max_plies}
    if summary_path.exists():
        try:
            previous = json.loads(summary_path.read_text())["settings"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{summary_path}: unreadable summary; move it away to start over") from None
        if previous != settings:
            raise UserError(f"{records_path} was made with other settings ({previous}); choose another --out")
    existing = list(iter_records(records_path)) if records_path.exists() else []
    if any(r.index != i for i, r in enumerate(existing)):
        raise UserError(f"{records_path}: records are not the games 0..{len(existing) - 1} of one run")
    players = [make_player(spec, game) for spec in player_specs]
    results = Counter(r.result for r in existing)
    written = 0
    try:
        with RecordWriter(records_path) as writer, tqdm(
            total=n_games, initial=min(len(existing), n_games), disable=not progress, desc="self-play", unit="game"
        ) as bar:
            for record in play_games(lambda: new_game(game), players, n_games=n_games, seed=seed,
                                     first_index=len(existing), max_plies=max_plies):
                writer.write(record)
                results[record.result] += 1
                written += 1
                bar.update(1)
    finally:
        for player in players:
            player.close()
        total = len(existing) + written
        if written or not summary_path.exists():
            write_json_atomic(summary_path, {"settings": settings, "games": total, "results": dict(results)})
    return SelfplayResult(records_path, summary_path, total, written, dict(results))


def write_enumeration(out: str | Path) -> SelfplayResult:
    """Write every tic-tac-toe game in which at least one side follows the Newell–Simon rules and the other
    plays every legal move (see `enumerate_newell_simon_games`). Overwrites `out` atomically."""
    from gamegpt.players.newell_simon import enumerate_games

    as_x, as_o = set(enumerate_games(0)), set(enumerate_games(1))
    records_path = Path(out)
    tmp = records_path.with_name(f".{records_path.name}.{os.getpid()}.tmp")
    records_path.parent.mkdir(parents=True, exist_ok=True)
    results: Counter[str] = Counter()
    with RecordWriter(tmp) as writer:
        for index, history in enumerate(sorted(as_x | as_o)):
            from gamegpt.games.tictactoe import TicTacToe

            final = TicTacToe(history)
            outcome = final.outcome()
            assert outcome is not None
            followers = [side for side, games in ((0, as_x), (1, as_o)) if history in games]
            players = [{"name": "newell-simon" if side in followers else "every-move"} for side in (0, 1)]
            record = GameRecord(game="tictactoe", moves=[str(m) for m in history], players=players,
                                result=outcome.result, termination=outcome.termination, index=index)
            writer.write(record)
            results[record.result] += 1
    os.replace(tmp, records_path)
    summary_path = summary_path_for(records_path)
    total = sum(results.values())
    write_json_atomic(summary_path, {"settings": {"game": "tictactoe", "enumerate": "newell-simon"},
                                     "games": total, "newell_simon_as_x": len(as_x),
                                     "newell_simon_as_o": len(as_o), "results": dict(results)})
    return SelfplayResult(records_path, summary_path, total, total, dict(results))
