"""Self-play runs: play N games between two player specs and append the records to a JSONL file.

Game `i` is always seeded by (seed, i). Re-running the same command continues to the requested count:
the indices already in the file are skipped, so no game is played twice. With `workers` > 1 a pool of
processes plays the games (each builds its players once: one engine process per worker and side) and
the main process appends each finished record at once, so records may be out of index order, and a
kill or Ctrl-C loses at most the games in flight. A summary JSON beside the records names the settings;
a re-run with other settings is refused. Chess runs also rebuild a PGN export beside the records
(`games.jsonl` → `games.pgn`) at the end of every run, interrupted or not. The loop itself, shared with
tournaments, is `gamegpt.arena.runs.play_run`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gamegpt.atomic import atomic_path, write_json_atomic
from gamegpt.errors import UserError
from gamegpt.arena.play import derive_seed, play_game
from gamegpt.games import new_game
from gamegpt.players.base import Player
from gamegpt.arena.specs import PlayerSpec, make_player
from gamegpt.arena.records import GameRecord, RecordWriter
from gamegpt.arena.runs import RunHooks, play_run, summary_path_for

__all__ = ["SelfplayResult", "run_selfplay", "write_enumeration"]


@dataclass
class SelfplayResult:
    """What a self-play run left behind (`pgn_path` for chess runs)."""

    records_path: Path
    summary_path: Path
    games_total: int
    games_new: int
    results: dict[str, int]
    pgn_path: Path | None = None


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
    games_at_once: int = 1,
    ray: str | None = None,
) -> SelfplayResult:
    """Play the games of indices 0..n_games-1 not yet in `out` between `player_specs[0]` (moves first)
    and `[1]`, on `workers` processes. `game_options` go to the game's constructor (chess:
    `{"claim_draws": True}` ends games on the 50-move rule and threefold repetition); `max_plies`
    adjudicates a longer game a draw. The results do not depend on `workers` when the players are
    deterministic. `games_at_once` games are played at once by each process, their model moves decoded
    in one batched forward pass (same moves). With `ray` (a Ray address or "auto"), `workers` actors of
    that cluster play the games and this process writes their records (`gamegpt.arena.ray_runs`). Raises
    UserError for bad settings or a records file that is not of this run."""
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
    new_game(game, **game_options)  # an unknown game or option fails here, before any work
    players = [make_player(spec, game) for spec in player_specs]  # bad specs fail here, in one clear line
    if workers > 1 or games_at_once > 1 or ray is not None:
        _close_all(players)  # each worker builds its own; these only checked the specs (engines start lazily)
        players = []
    hooks = _SelfplayHooks(game, records_path)
    try:
        outcome = play_run(_Job(game, list(player_specs), game_options, seed, max_plies), hooks,
                           records_path=records_path, summary_path=summary_path, settings=settings,
                           n_games=n_games, workers=workers, progress=progress, label="self-play",
                           run="self-play run", description=f"self-play {game}", local_state=players if workers == 1 else None,
                           games_at_once=games_at_once, ray=ray)
    finally:
        _close_all(players)
    return SelfplayResult(records_path, summary_path, outcome.games_total, outcome.games_new, dict(hooks.results),
                          outcome.pgn_path)


def _close_all(players: Sequence[Player]) -> None:
    for player in players:
        player.close()


@dataclass
class _SelfplayHooks(RunHooks):
    """A self-play run's part of the loop: its summary counts the results; chess runs export a PGN."""

    game: str
    records_path: Path
    results: Counter[str] = field(default_factory=Counter)

    def add(self, record: GameRecord) -> None:
        self.results[record.result] += 1

    def summary(self) -> dict[str, Any]:
        return {"results": dict(self.results)}

    def export_pgn(self, created: str) -> Path | None:
        if self.game != "chess":
            return None
        from gamegpt.arena.pgn_export import export_pgn, pgn_path_for

        pgn_path = pgn_path_for(self.records_path)
        export_pgn(self.records_path, pgn_path)
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
        """The players; with a model among them, torch gets one CPU thread in this process (as in a
        tournament's workers): several workers with torch's default threads each slow each other ~5x."""
        if any(PlayerSpec.parse(str(spec)).name == "model" for spec in self.player_specs):
            import torch

            torch.set_num_threads(1)
        return [make_player(spec, self.game) for spec in self.player_specs]

    def play(self, players: Sequence[Player], index: int) -> GameRecord:
        return play_game(new_game(self.game, **self.game_options), players, seed=derive_seed(self.seed, index),
                         index=index, max_plies=self.max_plies)

    def close(self, players: Sequence[Player]) -> None:
        _close_all(players)


def write_enumeration(out: str | Path) -> SelfplayResult:
    """Write every tic-tac-toe game in which at least one side follows the Newell–Simon rules and the other
    plays every legal move (see `enumerate_newell_simon_games`). Overwrites `out` atomically."""
    from gamegpt.players.newell_simon import enumerate_games

    as_x, as_o = set(enumerate_games(0)), set(enumerate_games(1))
    records_path = Path(out)
    results: Counter[str] = Counter()
    with atomic_path(records_path) as tmp, RecordWriter(tmp) as writer:
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
    summary_path = summary_path_for(records_path)
    total = sum(results.values())
    write_json_atomic(summary_path, {"settings": {"game": "tictactoe", "enumerate": "newell-simon"},
                                     "games": total, "newell_simon_as_x": len(as_x),
                                     "newell_simon_as_o": len(as_o), "results": dict(results)})
    return SelfplayResult(records_path, summary_path, total, total, dict(results))
