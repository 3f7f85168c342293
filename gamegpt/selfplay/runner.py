"""Self-play runs: play N games between two player specs and append the records to a JSONL file.

Game `i` is always seeded by (seed, i). Re-running the same command continues to the requested count:
the indices already in the file are skipped, so no game is played twice. With `workers` > 1 a pool of
processes plays the games (each builds its players once: one engine process per worker and side) and
the main process appends each finished record at once, so records may be out of index order, and a
kill or Ctrl-C loses at most the games in flight. A summary JSON beside the records names the settings;
a re-run with other settings is refused. Chess runs also rebuild a PGN export beside the records
(`games.jsonl` → `games.pgn`) at the end of every run, interrupted or not.
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from tqdm import tqdm

from gamegpt.errors import UserError
from gamegpt.arena.play import derive_seed, play_game
from gamegpt.games import new_game
from gamegpt.players.base import Player
from gamegpt.arena.specs import PlayerSpec, make_player
from gamegpt.arena.records import GameRecord, RecordWriter, iter_records
from gamegpt.arena.runs import check_settings, completed_indices, indexed_records, write_json_atomic

__all__ = ["SelfplayResult", "run_selfplay", "summary_path_for", "write_enumeration", "write_json_atomic"]


@dataclass
class SelfplayResult:
    """What a self-play run left behind (`pgn_path` for chess runs)."""

    records_path: Path
    summary_path: Path
    games_total: int
    games_new: int
    results: dict[str, int]
    pgn_path: Path | None = None


def summary_path_for(records_path: Path) -> Path:
    """Where the summary JSON of a records file lives (`games.jsonl` → `games.summary.json`)."""
    return records_path.with_name(records_path.stem + ".summary.json")


def run_selfplay(
    game: str,
    player_specs: Sequence["str | PlayerSpec"],
    *,
    n_games: int,
    seed: int,
    out: str | Path,
    max_plies: int | None = None,
    progress: bool = True,
    workers: int = 1,
    game_options: dict[str, Any] | None = None,
) -> SelfplayResult:
    """Play the games of indices 0..n_games-1 not yet in `out` between `player_specs[0]` (moves first)
    and `[1]`, on `workers` processes. `game_options` go to the game's constructor (chess:
    `{"claim_draws": True}` ends games on the 50-move rule and threefold repetition); `max_plies`
    adjudicates a longer game a draw. The results do not depend on `workers` when the players are
    deterministic. Raises UserError for bad settings or a records file that is not of this run."""
    if n_games < 0:
        raise UserError(f"the game count must be >= 0, got {n_games}")
    if workers < 1:
        raise UserError(f"the worker count must be >= 1, got {workers}")
    if max_plies is not None and max_plies < 1:
        raise UserError(f"max plies must be >= 1, got {max_plies}")
    player_specs = [str(spec) for spec in player_specs]  # text, as the summary keeps them
    records_path = Path(out)
    summary_path = summary_path_for(records_path)
    game_options = dict(game_options or {})
    settings: dict[str, Any] = {"game": game, "players": list(player_specs), "seed": seed, "max_plies": max_plies}
    if game_options:
        settings["game_options"] = game_options
    created = check_settings(summary_path, records_path, settings)
    new_game(game, **game_options)  # an unknown game or option fails here, before any work
    existing = list(iter_records(records_path)) if records_path.exists() else []
    done = completed_indices(existing, n_games, records_path)
    pending = [index for index in range(n_games) if index not in done]
    players = [make_player(spec, game) for spec in player_specs]  # bad specs fail here, in one clear line
    workers = max(1, min(workers, len(pending)))
    if workers > 1:
        _close_all(players)  # each worker builds its own; these only checked the specs (engines start lazily)
        players = []
    job = _Job(game, list(player_specs), game_options, seed, max_plies)
    results = Counter(r.result for r in existing)
    if not summary_path.exists():  # first, so that even a run killed at once leaves its settings behind
        write_json_atomic(summary_path, {"settings": settings, "created": created, "games": len(done),
                                         "results": dict(results)})
    written = 0
    completed = False
    try:
        with RecordWriter(records_path) as writer, tqdm(
            total=n_games, initial=len(done), disable=not progress, desc=f"self-play {game}", unit="game",
            smoothing=0.1,
        ) as bar, _records(job, players, pending, workers) as records:
            for record in records:
                writer.write(record)
                results[record.result] += 1
                written += 1
                bar.update(1)
        completed = True
    finally:
        _close_all(players)
        total = len(done) + written
        if written:
            write_json_atomic(summary_path, {"settings": settings, "created": created, "games": total,
                                             "results": dict(results)})
        pgn_path = _export_pgn(game, records_path, must_succeed=completed)
    return SelfplayResult(records_path, summary_path, total, written, dict(results), pgn_path)


def _close_all(players: Sequence[Player]) -> None:
    for player in players:
        player.close()


def _export_pgn(game: str, records_path: Path, *, must_succeed: bool) -> Path | None:
    """Rebuild the PGN of a chess run; after a failed or interrupted run, errors here are not raised
    (the first error is the one to report)."""
    if game != "chess" or not records_path.exists():
        return None
    from gamegpt.arena.pgn_export import export_pgn, pgn_path_for

    pgn_path = pgn_path_for(records_path)
    try:
        export_pgn(records_path, pgn_path)
    except Exception:
        if must_succeed:
            raise
        return None
    return pgn_path


# --------------------------------------------------------------------------- playing the games
@dataclass(frozen=True)
class _Job:
    """What a worker needs to play any game of the run (pickled once per worker)."""

    game: str
    player_specs: list[str]
    game_options: dict[str, Any]
    seed: int
    max_plies: int | None

    def open(self) -> list[Player]:
        return [make_player(spec, self.game) for spec in self.player_specs]

    def play(self, players: Sequence[Player], index: int) -> GameRecord:
        return play_game(new_game(self.game, **self.game_options), players, seed=derive_seed(self.seed, index),
                         index=index, max_plies=self.max_plies)

    def close(self, players: Sequence[Player]) -> None:
        _close_all(players)


def _records(job: _Job, players: list[Player], pending: list[int],
             workers: int) -> AbstractContextManager[Iterator[GameRecord]]:
    """The records of the pending games as they finish: in this process with `players` (one worker), else
    from `workers` processes (see `gamegpt.arena.runs.indexed_records`)."""
    return indexed_records(job, pending, workers, label="self-play", local_state=players if workers == 1 else None)


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
