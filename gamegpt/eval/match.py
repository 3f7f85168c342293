"""A head-to-head chess match in colour-swapped pairs, optionally stopped by an SPRT, and resumable.

    from gamegpt.eval.match import run_match
    from gamegpt.eval.openings import default_book, load_openings
    from gamegpt.eval.sprt import SprtSettings
    result = run_match("new=model:path=runs/a/model", "old=model:path=runs/b/model",
                       openings=load_openings(default_book(), count=1000), max_pairs=1000,
                       sprt=SprtSettings.parse("elo0=0,elo1=10,alpha=0.05,beta=0.05"), out_dir="results/ab")
    print(result.report())     # Score of ... / Elo difference ... / Ptnml(0-2) ... / SPRT: llr ...
    result.decision            # "H1", "H0", or None (no decision within max_pairs)

Schedule. Pair k plays opening k mod len(openings): game 2k with the first player as White, game 2k + 1
with colours swapped (the players take over after the book moves; `gamegpt.eval.tournament` plays each
game, with its adjudication, limits and seeds: game i is seeded by (seed, i)).

SPRT. After every complete pair the log-likelihood ratio of H1 (the first player is `elo1` stronger)
against H0 (`elo0`) is computed from the pentanomial counts with fastchess's model (`gamegpt.eval.sprt`)
and compared with the bounds; the match stops at the first decision. With several workers games finish
out of order: the test counts the complete pairs so far, and games still being played at the decision
are dropped (as fastchess does). Without an SPRT, all `max_pairs` pairs are played.

Files in `out_dir`: games.jsonl (one record per game, appended as games finish), games.pgn, and
match.json (settings, openings, the counts, the Elo line's numbers, the LLR and the decision). Killed at
any point, the same call continues from the records; a finished match re-run plays nothing and reports
again; a larger `max_pairs` extends a match that ended undecided. Other settings are refused (UserError).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from gamegpt.arena.play import TimeControl
from gamegpt.arena.records import GameRecord, RecordWriter, iter_records
from gamegpt.arena.runs import completed_indices, creation_date, indexed_records, read_summary
from gamegpt.atomic import write_json_atomic
from gamegpt.errors import UserError
from gamegpt.eval.match_stats import WHITE_SCORES, MatchStats, format_match, stats_to_dict
from gamegpt.eval.openings import START_POSITION, Opening
from gamegpt.eval.sprt import SprtSettings
from gamegpt.eval.tournament import (Entrant, ScheduledGame, _export_pgn, _TournamentJob, add_engine_limits,
                                     check_specs, parse_entrant)
from gamegpt.players.limits import SearchLimits


@dataclass
class MatchResult:
    """What a match left behind: its files, the counts (`stats`, the first player's view), the SPRT's
    last LLR and decision ("H0", "H1", or None), the complete pairs, and the games this call played."""

    out_dir: Path
    records_path: Path
    pgn_path: Path
    summary_path: Path
    stats: MatchStats
    sprt: SprtSettings | None
    llr: float | None
    decision: str | None
    max_pairs: int
    games_new: int
    paths: list[Path] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return self.stats.pentanomial.pairs

    def report(self) -> str:
        """The cutechess/fastchess lines, with the SPRT's line and a last line saying how it ended."""
        return match_report(self.stats, self.sprt, self.llr, self.decision, self.max_pairs)


def sprt_line(sprt: SprtSettings, llr: float, decision: str | None) -> str:
    """cutechess's `SPRT: llr 2.96 (100.6%), lbound -2.94, ubound 2.94 - H1 was accepted`."""
    line = (f"SPRT: llr {llr:.2f} ({sprt.fraction(llr) * 100:.1f}%), lbound {sprt.lower:.2f}, "
            f"ubound {sprt.upper:.2f}")
    return line + (f" - {decision} was accepted" if decision else "")


def match_report(stats: MatchStats, sprt: SprtSettings | None, llr: float | None, decision: str | None,
                 max_pairs: int) -> str:
    """The summary lines of a match so far (see `MatchResult.report`)."""
    lines = [format_match(stats)]
    if sprt is not None and llr is not None:
        lines.append(sprt_line(sprt, llr, decision))
    pairs = stats.pentanomial.pairs
    if sprt is not None and decision is not None:
        lines.append(f"{decision} accepted after {pairs} pairs ({stats.games} games): {stats.first} vs "
                     f"{stats.second}, H0 {sprt.elo0:g} / H1 {sprt.elo1:g} {sprt.model} Elo, alpha {sprt.alpha:g}, "
                     f"beta {sprt.beta:g}")
    elif sprt is not None and pairs >= max_pairs:
        lines.append(f"no decision after {pairs} pairs, the most asked for")
    return "\n".join(line for line in lines if line)


def match_schedule(first: str, second: str, max_pairs: int, n_openings: int) -> list[ScheduledGame]:
    """Games 2k (first has White) and 2k + 1 (second has White) of opening k mod n_openings."""
    games = []
    for pair in range(max_pairs):
        games.append(ScheduledGame(2 * pair, first, second, pair % n_openings))
        games.append(ScheduledGame(2 * pair + 1, second, first, pair % n_openings))
    return games


class _Tally:
    """The match's counts, kept as records arrive: games, and pairs once both halves are in."""

    def __init__(self, first: str, second: str) -> None:
        self.stats = MatchStats(first, second)
        self.halves: dict[int, float] = {}  # game index → the first player's score

    def add(self, record: GameRecord) -> bool:
        """Count a record; True when it completes a pair."""
        assert record.index is not None
        white_score = WHITE_SCORES.get(record.result)
        if white_score is None:
            return False
        own = white_score if record.index % 2 == 0 else 1.0 - white_score
        self.stats.add_game(own)
        self.halves[record.index] = own
        partner = record.index ^ 1
        if partner in self.halves:
            self.stats.pentanomial.add(own, self.halves[partner])
            return True
        return False


class _Decided(Exception):
    """Raised inside the play loop to leave it (and stop the workers at once) when the SPRT decides."""


def run_match(
    first: str | Entrant,
    second: str | Entrant,
    *,
    out_dir: str | Path,
    openings: Sequence[Opening] = (START_POSITION,),
    max_pairs: int = 1000,
    sprt: SprtSettings | None = None,
    time_control: TimeControl | None = None,
    engine_limits: SearchLimits = SearchLimits(),
    max_plies: int | None = 400,
    workers: int = 1,
    seed: int = 0,
    event: str = "gamegpt match",
    progress: bool = True,
    torch_threads: int | None = 1,
    report: Callable[[str], None] | None = None,
    report_every: int = 10,
) -> MatchResult:
    """Play the match's missing games in `out_dir` until the SPRT decides or `max_pairs` pairs are
    complete (see the module docstring). `first`/`second` are `[NAME=]SPEC` texts or entrants.
    `report`, when given, receives the summary lines (`match_report`) after every `report_every`
    complete pairs played by this call, except at the decision or the last pair (the result reports
    those). Raises UserError for bad specs, names or limits, records of another match, or a worker that
    died."""
    a, b = parse_entrant(first), parse_entrant(second)
    if a.name == b.name:
        raise UserError(f"the two players have the same name {a.name!r}; name them: NAME=SPEC")
    if max_pairs < 1:
        raise UserError(f"the pair count must be at least 1, got {max_pairs}")
    if workers < 1:
        raise UserError(f"the worker count must be >= 1, got {workers}")
    if max_plies is not None and max_plies < 1:
        raise UserError(f"max plies must be >= 1, got {max_plies}")
    if report_every < 1:
        raise UserError(f"the report interval must be at least 1 pair, got {report_every}")
    if not openings:
        raise UserError("a match needs at least one opening (START_POSITION for none)")
    specs = {a.name: add_engine_limits(a.spec, engine_limits), b.name: add_engine_limits(b.spec, engine_limits)}
    check_specs(specs)

    out = Path(out_dir)
    records_path, summary_path, pgn_path = out / "games.jsonl", out / "match.json", out / "games.pgn"
    settings: dict[str, Any] = {"players": [[a.name, specs[a.name]], [b.name, specs[b.name]]],
                                "time_control": None if time_control is None else str(time_control),
                                "nodes": engine_limits.nodes, "movetime": engine_limits.movetime,
                                "max_plies": max_plies, "seed": seed,
                                "sprt": None if sprt is None else sprt.to_dict()}
    book = [o.to_dict() for o in openings]
    previous = read_summary(summary_path, records_path, settings)
    if previous is not None:
        _check_openings(previous.get("openings") or [], book, records_path)
    created = creation_date(previous)
    schedule = match_schedule(a.name, b.name, max_pairs, len(openings))

    def check_record(record: GameRecord) -> None:
        index = record.index
        assert index is not None
        if index >= len(schedule):
            raise UserError(f"{records_path} holds game {index} (pair {index // 2 + 1}); ask for at least "
                            f"{index // 2 + 1} pairs or choose another --out")
        expected = [schedule[index].white, schedule[index].black]
        if record.extra.get("entrants") != expected:
            raise UserError(f"{records_path}: game {index} was {record.extra.get('entrants')}, this match "
                            f"schedules {expected}; not this match (choose another --out)")
        opening = (record.extra.get("opening") or {}).get("index")
        if opening != schedule[index].opening:
            raise UserError(f"{records_path}: game {index} was played from opening {opening}, now it would be "
                            f"opening {schedule[index].opening}; use the same --opening-count or another --out")

    existing = list(iter_records(records_path)) if records_path.exists() else []
    done = completed_indices(existing, len(schedule), records_path, run="match", check=check_record)
    tally = _Tally(a.name, b.name)
    for record in existing:
        tally.add(record)

    def sprt_state() -> tuple[float | None, str | None]:
        if sprt is None or not tally.stats.pentanomial.pairs:
            return None, None
        llr = sprt.llr_pentanomial(**asdict(tally.stats.pentanomial))
        return llr, sprt.decision(llr)

    llr, decision = sprt_state()

    def summary() -> dict[str, Any]:
        return {"settings": settings, "created": created, "event": event, "games": tally.stats.games,
                "max_pairs": max_pairs, "openings": book, **stats_to_dict(tally.stats),
                "sprt": None if sprt is None else {
                    **sprt.to_dict(), "lower": sprt.lower, "upper": sprt.upper,
                    "llr": llr if llr is None or math.isfinite(llr) else str(llr), "decision": decision}}

    def write_summary() -> None:
        write_json_atomic(summary_path, summary())

    pending = [] if decision else [index for index in range(len(schedule)) if index not in done]
    games_new = 0
    if previous is None:
        write_summary()
    if pending:
        job = _TournamentJob(tuple(specs.items()), tuple(schedule), tuple(openings), seed, max_plies,
                             time_control, torch_threads)
        workers = max(1, min(workers, len(pending)))
        try:
            with RecordWriter(records_path) as writer, tqdm(
                total=len(schedule), initial=len(done), disable=not progress, desc="match", unit="game",
                smoothing=0.1,
            ) as bar, indexed_records(job, pending, workers, label="match") as records:
                for record in records:
                    writer.write(record)
                    games_new += 1
                    bar.update(1)
                    if not tally.add(record):
                        continue
                    llr, decision = sprt_state()
                    if decision:
                        raise _Decided
                    pairs = tally.stats.pentanomial.pairs
                    if report is not None and pairs % report_every == 0 and pairs < max_pairs:
                        report(match_report(tally.stats, sprt, llr, decision, max_pairs))
        except _Decided:
            pass
        finally:
            if games_new:
                write_summary()
            if records_path.exists():
                _export_pgn(records_path, pgn_path, created, event, specs)
    else:  # nothing to play: bring back what a kill between the last record and the summary left out
        if previous is not None and json.loads(json.dumps(summary())) != previous:
            write_summary()
        if records_path.exists() and not pgn_path.exists():
            _export_pgn(records_path, pgn_path, created, event, specs)
    result = MatchResult(out, records_path, pgn_path, summary_path, tally.stats, sprt, llr, decision, max_pairs,
                         games_new)
    result.paths = [p for p in (records_path, pgn_path, summary_path) if p.exists()]
    return result


def _check_openings(earlier: list[dict[str, Any]], book: list[dict[str, Any]], records_path: Path) -> None:
    """Refuse a book whose first openings differ from those the match was played with (a longer or shorter
    list with the same start is fine)."""
    common = min(len(earlier), len(book))
    if earlier[:common] != book[:common]:
        k = next(k for k in range(common) if earlier[k] != book[k])
        raise UserError(f"{records_path.parent}: opening {k + 1} differs from the one its games were played with "
                        f"({earlier[k].get('name')!r}, now {book[k].get('name')!r}); use the same book, seed and "
                        "order, or choose another --out")
