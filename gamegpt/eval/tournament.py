"""Chess tournaments between players given by spec, rated by maximum-likelihood Elo.

    from gamegpt.eval.tournament import ladder_entrants, run_tournament
    from gamegpt.players.limits import SearchLimits
    from gamegpt.eval.openings import default_book, load_openings
    result = run_tournament(["cold=model:path=chessgpt,temperature=0.001", *ladder_entrants("default")],
                            mode="gauntlet", subjects=["cold"],
                            openings=load_openings(default_book(), count=10),
                            engine_limits=SearchLimits(nodes=1000), out_dir="results/tournament", workers=2)
    print(result.ratings.table())   # also in results/tournament/ratings.txt, .json, .png

Entrants are `[NAME=]SPEC` texts (see `gamegpt.arena.specs`); without a name, the spec is the name (with
`path=`/`cmd=` values cut to their last path component).

Pairings. Round robin: every entrant plays every other. Gauntlet: each subject plays every other entrant
(the opponents), and each opponent also plays the next `neighbours` opponents in the order given, so that
a ladder is rated in the same fit as the subjects (a ladder is listed strongest first).

Games. Every pairing plays every opening twice, once with each colour. The opening's moves are part of
the game (the model reads the whole game from move 1); the players take over after them. Game `i` of the
schedule is always the same pairing, colours and opening, seeded by (seed, i); the schedule runs opening
by opening, so a tournament given more openings later (same seed and book order) keeps every game played.

Limits. `time_control=TimeControl.parse("10+0.1")` gives each side a clock, enforced by the arena
(the wall time of each move is taken off it; a side whose clock runs out loses, or draws when the opponent
has too little material to mate); UCI engines get `wtime/btime/winc/binc`. `engine_limits=SearchLimits(nodes=N)`
(or `movetime=MS`, `depth=D`) is added to every Stockfish/UCI spec that states no nodes, depth or movetime of
its own (`add_engine_limits`). Both may be combined. Without any, engines use their specs' limits
(Stockfish: nodes=1000).

Adjudication (no tablebases): the rules of chess end a game (mate, stalemate, insufficient material); a
draw that can be claimed is claimed at once for the player to move (threefold repetition, 50-move rule);
a game still running after `max_plies` plies (the opening's included) is a draw; an illegal move loses;
a fallen flag loses (draws against a lone king or too little mating material).

Files in `out_dir`: games.jsonl (one record per game, appended as games finish), games.pgn (every game,
with players, result, termination, opening and time control), tournament.json (settings, openings,
standings, pairing results), standings.txt, pairings.txt (each pairing's cutechess/fastchess lines: score
W - L - D, Elo difference with its 95 % margin, LOS, DrawRatio, and the pentanomial counts of its
colour-swapped pairs, see `gamegpt.eval.match_stats`), ratings.txt / ratings.json / ratings.png (the Elo fit,
see `gamegpt.eval.elo`). `on_pairing` hears each pairing's counts as soon as its last game is in.
Killed at any point, the same call continues: completed games are read back from games.jsonl, and only
the missing ones are played.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import chess.pgn

from gamegpt.atomic import write_text_atomic
from gamegpt.errors import PlayerSpecError, UserError
from gamegpt.arena.play import TimeControl, derive_seed, play_game
from gamegpt.eval.elo import EloFit, fit_elo, write_elo
from gamegpt.eval.match_stats import MatchStats, format_match, match_stats, stats_to_dict
from gamegpt.eval.openings import START_POSITION, Opening
from gamegpt.players.base import Player
from gamegpt.players.limits import SearchLimits
from gamegpt.arena.specs import PlayerSpec, make_player
from gamegpt.arena.records import GameRecord
from gamegpt.arena.runs import RunHooks, play_run

MODES = ("round-robin", "gauntlet")
DEFAULT_ANCHOR_ELO = 1350
MAX_PLAYERS_PER_WORKER = 6  # players (engine processes, models) a worker keeps; the least recently used go
ENGINE_PLAYERS = ("stockfish", "uci")
LIMIT_KEYS = ("nodes", "depth", "movetime")

LADDERS: dict[str, tuple[str, ...]] = {
    # Strongest first: Stockfish 15.1 at UCI_Elo 1700, 1500 and 1350 (the default anchor), then rungs below
    # 1350 for weak models: Skill Level 0 on 20 nodes with 10 %, 25 % and 50 % of its moves random, and
    # the random player. Plain Skill Level 0 is no rung of its own: Stockfish 15.1 picks a level-0 move
    # from a depth-1 MultiPV search at any node count, which is what UCI_Elo 1350 does too (measured
    # here, a 432-game round robin: Skill 0 at 1 and at 20 nodes rated 1383 and 1323 against UCI_Elo
    # 1350's anchor, intervals about +-135); random moves are what weaken it.
    "default": (
        "stockfish:elo=1700",
        "stockfish:elo=1500",
        "stockfish:elo=1350",
        "stockfish:skill=0,nodes=20,noise=0.1",
        "stockfish:skill=0,nodes=20,noise=0.25",
        "stockfish:skill=0,nodes=20,noise=0.5",
        "random",
    ),
}


@dataclass(frozen=True)
class Entrant:
    """A tournament player: a unique `name` (used in the PGN, the tables and as the anchor) and a spec."""

    name: str
    spec: str


def add_engine_limits(spec: str, limits: SearchLimits) -> str:
    """`spec` with the fixed limits of `limits` (nodes, depth, movetime) added when it is an engine spec that
    states no limit of its own."""
    parsed = PlayerSpec.parse(spec)
    if parsed.name not in ENGINE_PLAYERS or any(key in parsed.options for key in LIMIT_KEYS):
        return spec
    extra = limits.fixed.to_dict()
    return str(parsed.with_options(**extra)) if extra else spec


@dataclass(frozen=True)
class ScheduledGame:
    """Game `index` of a tournament: who has White and Black (entrant names) and which opening."""

    index: int
    white: str
    black: str
    opening: int


@dataclass
class TournamentResult:
    """What a tournament run left behind, with the Elo fit of all its games (`ratings`, written to
    `rating_paths`)."""

    out_dir: Path
    records_path: Path
    pgn_path: Path
    summary_path: Path
    games_total: int
    games_scheduled: int
    games_new: int
    standings: list[dict[str, Any]]
    ratings: EloFit | None = None
    rating_paths: list[Path] = field(default_factory=list)
    pairings: list[MatchStats] = field(default_factory=list)
    """Each pairing's head-to-head counts (`format_pairings` prints them)."""


# --------------------------------------------------------------------------- entrants and schedule
def default_name(spec: str) -> str:
    """The name an entrant gets from its spec: the spec, with `path=`/`cmd=` values cut to their last
    path component (`model:path=runs/x/model,temperature=0.1` → `model:path=model,temperature=0.1`)."""
    parsed = PlayerSpec.parse(spec)
    parts = []
    for key, value in parsed.options.items():
        if key in ("path", "cmd"):
            value = Path(value.split()[0] if value.split() else value).name or value
        parts.append(f"{key}={value}")
    return f"{parsed.name}:{','.join(parts)}" if parts else parsed.name


def parse_entrant(text: str | Entrant) -> Entrant:
    """`[NAME=]SPEC` → Entrant. A name comes before the spec's first `:`; `sf=stockfish:elo=1350` is named
    `sf`, `stockfish:elo=1350` is named after its spec."""
    if isinstance(text, Entrant):
        return text
    text = text.strip()
    head = text.split(":", 1)[0]
    if "=" in head:
        name, spec = (part.strip() for part in text.split("=", 1))
        if not name or not spec:
            raise PlayerSpecError(f"bad entrant {text!r}: expected NAME=SPEC or SPEC")
        return Entrant(name, spec)
    if not text:
        raise PlayerSpecError("empty player spec")
    return Entrant(default_name(text), text)


def ladder_entrants(name: str) -> list[Entrant]:
    """The entrants of a ladder preset (see LADDERS), strongest first; UserError for an unknown preset."""
    if name not in LADDERS:
        raise UserError(f"unknown ladder {name!r}; known: {', '.join(sorted(LADDERS))}")
    return [parse_entrant(spec) for spec in LADDERS[name]]


def stockfish_elo(spec: str) -> int | None:
    """The UCI_Elo of a noiseless `stockfish:elo=E` spec, else None."""
    parsed = PlayerSpec.parse(spec)
    options = parsed.options
    if parsed.name != "stockfish" or "elo" not in options:
        return None
    try:
        if float(options.get("noise", "0")) != 0:
            return None
        return int(options["elo"])
    except ValueError:
        return None


def resolve_anchor(entrants: Sequence[Entrant], anchor: str | None,
                   anchor_rating: float | None) -> tuple[str, float]:
    """The anchor's name and rating. Default name: the first noiseless Stockfish at UCI_Elo 1350, else the
    first entrant. Default rating: a noiseless Stockfish anchor's UCI_Elo, else 0. UserError for a name
    that is not an entrant."""
    names = [e.name for e in entrants]
    if anchor is None:
        at_1350 = [e.name for e in entrants if stockfish_elo(e.spec) == DEFAULT_ANCHOR_ELO]
        anchor = at_1350[0] if at_1350 else names[0]
    if anchor not in names:
        raise UserError(f"anchor {anchor!r} is not a player of this tournament (players: {', '.join(names)})")
    if anchor_rating is None:
        elo = stockfish_elo(next(e.spec for e in entrants if e.name == anchor))
        anchor_rating = float(elo) if elo is not None else 0.0
    return anchor, float(anchor_rating)


def make_pairings(names: Sequence[str], *, mode: str = "round-robin", subjects: Sequence[str] = (),
                  neighbours: int = 2) -> list[tuple[str, str]]:
    """The pairings of a tournament, each once (see the module docstring). UserError for an unknown mode,
    subjects that are not entrants, or a gauntlet without subjects or opponents."""
    if mode not in MODES:
        raise UserError(f"unknown tournament mode {mode!r}; choose one of {', '.join(MODES)}")
    if len(set(names)) != len(names):
        raise UserError(f"player names must be unique: {', '.join(n for n, c in Counter(names).items() if c > 1)} "
                        "twice (name them: NAME=SPEC)")
    if mode == "round-robin":
        return [(a, b) for k, a in enumerate(names) for b in names[k + 1:]]
    missing = [s for s in subjects if s not in names]
    if missing:
        raise UserError(f"gauntlet subject {missing[0]!r} is not a player (players: {', '.join(names)})")
    opponents = [n for n in names if n not in subjects]
    if not subjects or not opponents:
        raise UserError("a gauntlet needs at least one subject (--player) and one opponent (--opponent or --ladder)")
    if neighbours < 0:
        raise UserError(f"ladder neighbours must be >= 0, got {neighbours}")
    pairs = [(s, o) for s in subjects for o in opponents]
    pairs += [(opponents[k], opponents[k + d]) for d in range(1, neighbours + 1) for k in range(len(opponents) - d)]
    return pairs


def make_schedule(pairings: Sequence[tuple[str, str]], n_openings: int) -> list[ScheduledGame]:
    """Every pairing plays every opening with both colours; opening by opening, so the games of the first
    N openings keep their indices when more openings are added."""
    games: list[ScheduledGame] = []
    for opening in range(n_openings):
        for first, second in pairings:
            for white, black in ((first, second), (second, first)):
                games.append(ScheduledGame(len(games), white, black, opening))
    return games


# --------------------------------------------------------------------------- playing
@dataclass(frozen=True)
class _TournamentJob:
    """What a worker needs (pickled once per worker): the specs by name, the schedule and the openings."""

    specs: tuple[tuple[str, str], ...]
    schedule: tuple[ScheduledGame, ...]
    openings: tuple[Opening, ...]
    seed: int
    max_plies: int | None
    time_control: TimeControl | None
    torch_threads: int | None

    def open(self) -> "OrderedDict[str, Player]":
        if self.torch_threads and any(PlayerSpec.parse(spec).name == "model" for _, spec in self.specs):
            import torch

            torch.set_num_threads(self.torch_threads)
        return OrderedDict()

    def play(self, players: "OrderedDict[str, Player]", index: int) -> GameRecord:
        scheduled = self.schedule[index]
        specs = dict(self.specs)
        sides = []
        for name in (scheduled.white, scheduled.black):
            if name not in players:
                players[name] = make_player(specs[name], "chess")
            players.move_to_end(name)
            sides.append(players[name])
        while len(players) > MAX_PLAYERS_PER_WORKER:
            _, oldest = players.popitem(last=False)
            oldest.close()
        opening = self.openings[scheduled.opening]
        record = play_game(opening.new_game(claim_draws=True), sides, seed=derive_seed(self.seed, index),
                           index=index, max_plies=self.max_plies, time_control=self.time_control,
                           engine_failure_loses=True)
        record.extra["entrants"] = [scheduled.white, scheduled.black]
        record.extra["opening"] = {"index": scheduled.opening, "name": opening.name, "eco": opening.eco,
                                   "plies": len(opening.moves)}
        return record

    def close(self, players: "OrderedDict[str, Player]") -> None:
        for player in players.values():
            player.close()
        players.clear()


def check_specs(specs: dict[str, str]) -> None:
    """Build (and close) each named chess player, so that a bad spec fails now, before any game, as one
    `PlayerSpecError` naming the player; cheap, since engines start at their first game."""
    for name, spec in specs.items():
        try:
            make_player(spec, "chess").close()
        except PlayerSpecError as exc:
            raise PlayerSpecError(f"player {name!r}: {exc}") from None


def run_tournament(
    players: Sequence[str | Entrant],
    *,
    out_dir: str | Path,
    openings: Sequence[Opening] = (START_POSITION,),
    mode: str = "round-robin",
    subjects: Sequence[str] = (),
    neighbours: int = 2,
    time_control: TimeControl | None = None,
    engine_limits: SearchLimits = SearchLimits(),
    max_plies: int | None = 400,
    workers: int = 1,
    seed: int = 0,
    anchor: str | None = None,
    anchor_rating: float | None = None,
    confidence: float = 0.95,
    event: str = "gamegpt tournament",
    progress: bool = True,
    torch_threads: int | None = 1,
    on_pairing: Callable[[MatchStats], None] | None = None,
    games_at_once: int = 1,
    ray: str | None = None,
) -> TournamentResult:
    """Play the tournament's games not yet in `out_dir`, on `workers` processes, then rate everybody.

    `players` are entrants (`[NAME=]SPEC` or `Entrant`); `subjects` names the gauntlet's subjects (names
    or the texts given in `players`). `anchor`/`anchor_rating` as in `resolve_anchor`. `torch_threads`
    is set in each worker that plays a model (and in this process with one worker). `on_pairing`, when given,
    is called with a pairing's counts when this call plays its last game, unless that is the tournament's
    last game (the result's `pairings` has them all). Re-running with the
    same arguments continues an interrupted run (`games_at_once` and `ray` as in `gamegpt.arena.runs.play_run`:
    games at once per process with batched model moves, and a Ray cluster's actors playing them); more
    openings (a longer list starting with the same ones)
    extend it; other settings are refused (UserError). Raises UserError for bad specs, names, limits,
    or a worker that died. An engine that fails during a game (dies, hangs, breaks the protocol) loses that
    game (termination "engine_failure") and is restarted for its next; one that cannot be started or
    reset stops the run with its error, and the games finished so far are kept.
    """
    entrants = [parse_entrant(p) for p in players]
    if len(entrants) < 2:
        raise UserError("a tournament needs at least two players")
    if not openings:
        raise UserError("a tournament needs at least one opening (START_POSITION for none)")
    if max_plies is not None and max_plies < 1:
        raise UserError(f"max plies must be >= 1, got {max_plies}")
    if workers < 1:
        raise UserError(f"the worker count must be >= 1, got {workers}")
    if not 0.0 < confidence < 1.0:
        raise UserError(f"the interval confidence must be between 0 and 1, got {confidence:g}")
    by_text = {p if isinstance(p, str) else p.name: e.name for p, e in zip(players, entrants)}
    subject_names = [by_text.get(s.strip(), s.strip()) for s in subjects]
    names = [e.name for e in entrants]
    pairings = make_pairings(names, mode=mode, subjects=subject_names, neighbours=neighbours)
    anchor, anchor_value = resolve_anchor(entrants, anchor, anchor_rating)
    specs = {e.name: add_engine_limits(e.spec, engine_limits) for e in entrants}
    check_specs(specs)

    out = Path(out_dir)
    records_path, summary_path, pgn_path = out / "games.jsonl", out / "tournament.json", out / "games.pgn"
    settings: dict[str, Any] = {"players": specs, "mode": mode, "subjects": subject_names if mode == "gauntlet" else [],
                                "neighbours": neighbours if mode == "gauntlet" else None,
                                "time_control": None if time_control is None else str(time_control),
                                "nodes": engine_limits.nodes, "movetime": engine_limits.movetime,
                                "max_plies": max_plies, "seed": seed}
    schedule = make_schedule(pairings, len(openings))
    job = _TournamentJob(tuple(specs.items()), tuple(schedule), tuple(openings), seed, max_plies,
                         time_control, torch_threads)
    hooks = _TournamentHooks(records_path, pgn_path, event, specs, names, list(pairings), schedule,
                             [o.to_dict() for o in openings], on_pairing=on_pairing)
    outcome = play_run(job, hooks, records_path=records_path, summary_path=summary_path, settings=settings,
                       n_games=len(schedule), workers=workers, progress=progress, label="tournament",
                       run="tournament", games_at_once=games_at_once, ray=ray)
    records = hooks.records
    result = TournamentResult(out, records_path, pgn_path, summary_path, outcome.games_total, len(schedule),
                              outcome.games_new, standings(records.values(), names))
    result.ratings = rate_records(records.values(), anchor=anchor, anchor_rating=anchor_value,
                                  confidence=confidence, players=names)
    result.rating_paths = write_elo(result.ratings, out, title=f"{event}: Elo from {result.ratings.games} games")
    write_text_atomic(out / "standings.txt", format_standings(result.standings) + "\n")
    result.pairings = pairing_stats(records.values(), pairings)
    write_text_atomic(out / "pairings.txt", format_pairings(result.pairings) + "\n")
    return result


@dataclass
class _TournamentHooks(RunHooks):
    """A tournament's part of the run loop (`play_run`): its opening book and schedule checks, its summary
    (standings, pairing results) from the records it keeps, and its PGN headers."""

    summary_changes_on_resume = True  # more openings schedule more games

    records_path: Path
    pgn_path: Path
    event: str
    specs: dict[str, str]
    names: list[str]
    pairings: list[tuple[str, str]]
    schedule: list[ScheduledGame]
    book: list[dict[str, Any]]
    records: dict[int, GameRecord] = field(default_factory=dict)
    on_pairing: Callable[[MatchStats], None] | None = None
    existing: set[int] = field(default_factory=set)  # indices read back from the records file
    played: Counter[tuple[str, str]] = field(default_factory=Counter)  # games in per pairing

    def check_summary(self, previous: dict[str, Any]) -> None:
        """Refuse openings that differ from those of an earlier run (UserError); a longer or shorter list
        with the same start is fine (games of openings beyond a shorter list are caught by `check_record`)."""
        earlier = previous.get("openings") or []
        common = min(len(earlier), len(self.book))
        if earlier[:common] != self.book[:common]:
            first = next(k for k in range(common) if earlier[k] != self.book[k])
            raise UserError(f"{self.records_path.parent}: opening {first + 1} differs from the one its games were "
                            f"played with ({earlier[first].get('name')!r}, now {self.book[first].get('name')!r}); "
                            "use the same book, seed and order, or choose another --out")

    def check_record(self, record: GameRecord) -> None:
        """Refuse a game beyond the schedule (asking for the openings it needs) or not its scheduled pairing."""
        index = record.index
        assert index is not None  # checked by completed_indices
        if index >= len(self.schedule):
            openings = index // (2 * len(self.pairings)) + 1
            raise UserError(f"{self.records_path} holds games of {openings} openings; ask for at least {openings} "
                            "openings or choose another --out")
        expected = self.schedule[index]
        if record.extra.get("entrants") != [expected.white, expected.black]:
            raise UserError(f"{self.records_path}: game {index} was {record.extra.get('entrants')}, the schedule "
                            f"says {[expected.white, expected.black]}; not this tournament")
        self.existing.add(index)  # play_run checks the existing records, and only those

    def add(self, record: GameRecord) -> None:
        """Keep the record; tell `on_pairing` when a game played now completes its pairing."""
        assert record.index is not None
        self.records[record.index] = record
        if record.index >= len(self.schedule):
            return
        scheduled = self.schedule[record.index]
        pair = (scheduled.white, scheduled.black)
        pair = pair if pair in self.pairings else (scheduled.black, scheduled.white)
        self.played[pair] += 1
        complete = self.played[pair] == len(self.schedule) // len(self.pairings)  # each plays every opening twice
        if (complete and self.on_pairing is not None and record.index not in self.existing
                and len(self.records) < len(self.schedule)):
            self.on_pairing(match_stats(self.records.values(), *pair))

    def summary(self) -> dict[str, Any]:
        records = self.records.values()
        return {"event": self.event, "games_scheduled": len(self.schedule), "openings": self.book,
                "pairings": [list(p) for p in self.pairings], "standings": standings(records, self.names),
                "pairing_results": pairing_results(records, self.pairings),
                "terminations": dict(Counter(r.termination for r in records))}

    def export_pgn(self, created: str) -> Path | None:
        _export_pgn(self.records_path, self.pgn_path, created, self.event, self.specs)
        return self.pgn_path


# --------------------------------------------------------------------------- results
def score_of(result: str) -> float | None:
    """White's score for a PGN result; None for an unfinished game."""
    return {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}.get(result)


def record_games(records: Iterable[GameRecord]) -> list[tuple[str, str, float]]:
    """(white, black, white's score) of each finished tournament record (records with `extra["entrants"]`)."""
    games = []
    for record in records:
        entrants = record.extra.get("entrants")
        score = score_of(record.result)
        if isinstance(entrants, list) and len(entrants) == 2 and score is not None:
            games.append((str(entrants[0]), str(entrants[1]), score))
    return games


LEAD_PLIES = (40, 80, 120)
"""Plies at which `outcomes_by_opponent` reads the material balance."""
_PAWN_UNITS = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9}


def outcomes_by_opponent(records: Iterable[GameRecord], player: str) -> dict[str, dict[str, Any]]:
    """How `player`'s finished games against each opponent ended: {opponent: {"games", "won", "drawn", "lost",
    "draws": {termination: count}, "lead": {ply: [mean material lead in pawns (1/3/3/5/9), games that reached
    that ply]}}} for the plies of `LEAD_PLIES` (chess games only), opponents in the order first met. Shows what a
    rating hides: a model that wins material and then draws by repetition or stalemate, or one that is ahead
    at ply 40 and loses its pieces later."""
    outcomes: dict[str, dict[str, Any]] = {}
    for record in records:
        entrants = record.extra.get("entrants")
        score = score_of(record.result)
        if not (isinstance(entrants, list) and player in entrants and len(entrants) == 2) or score is None:
            continue
        own = score if entrants[0] == player else 1.0 - score
        row = outcomes.setdefault(str(entrants[1 - entrants.index(player)]),
                                  {"games": 0, "won": 0, "drawn": 0, "lost": 0, "draws": {},
                                   "lead": {ply: [0.0, 0] for ply in LEAD_PLIES}})
        row["games"] += 1
        row["won" if own == 1 else "lost" if own == 0 else "drawn"] += 1
        if own == 0.5:
            reason = record.termination or "unknown"
            row["draws"][reason] = row["draws"].get(reason, 0) + 1
        if record.game == "chess":
            for ply, lead in _material_leads(record, white=entrants[0] == player).items():
                row["lead"][ply][0] += lead
                row["lead"][ply][1] += 1
    for row in outcomes.values():
        row["lead"] = {ply: [total / count if count else None, count] for ply, (total, count) in row["lead"].items()}
    return outcomes


def _material_leads(record: GameRecord, *, white: bool) -> dict[int, int]:
    """White's (or Black's) material lead in pawns after each ply of `LEAD_PLIES` the game reached."""
    board = chess.Board(record.start) if record.start else chess.Board()
    leads: dict[int, int] = {}
    for ply, move in enumerate(record.moves[:max(LEAD_PLIES)], start=1):
        board.push_uci(move)
        if ply in LEAD_PLIES:
            balance = sum(value * (len(board.pieces(piece, chess.WHITE)) - len(board.pieces(piece, chess.BLACK)))
                          for piece, value in _PAWN_UNITS.items())
            leads[ply] = balance if white else -balance
    return leads


def format_outcomes(outcomes: dict[str, dict[str, Any]]) -> str:
    """`outcomes_by_opponent` as a table: the mean material lead at each ply of `LEAD_PLIES` (with the number
    of games that lasted that long), then draws by how they came (most frequent first)."""
    width = max([len(name) for name in outcomes] + [8])
    leads = "".join(f"  {f'lead@{ply}':>10}" for ply in LEAD_PLIES)
    lines = [f"{'opponent':<{width}}  games   won  drawn  lost{leads}  draws by"]
    for name, row in outcomes.items():
        reasons = ", ".join(f"{reason} {count}" for reason, count in
                            sorted(row["draws"].items(), key=lambda item: (-item[1], item[0])))
        lead = "".join(f"  {(f'{mean:+.1f} ({count})' if mean is not None else '-'):>10}"
                       for mean, count in (row["lead"][ply] for ply in LEAD_PLIES))
        lines.append(f"{name:<{width}}  {row['games']:>5}  {row['won']:>4}  {row['drawn']:>5}  {row['lost']:>4}"
                     f"{lead}  {reasons or '-'}")
    return "\n".join(lines)


def rate_records(records: Iterable[GameRecord], *, anchor: str, anchor_rating: float = 1350.0,
                 confidence: float = 0.95, players: Sequence[str] | None = None) -> EloFit:
    """The Elo fit (`gamegpt.eval.elo.fit_elo`) of tournament records."""
    return fit_elo(record_games(records), anchor=anchor, anchor_rating=anchor_rating, confidence=confidence,
                   players=players)


def standings(records: Iterable[GameRecord], names: Sequence[str]) -> list[dict[str, Any]]:
    """Per entrant: games, wins, draws, losses and points; the best score per game first (players meet
    different numbers of opponents in a gauntlet)."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in names}
    points: dict[str, float] = {name: 0.0 for name in names}
    for white, black, score in record_games(records):
        for name, own in ((white, score), (black, 1.0 - score)):
            row = counts.setdefault(name, Counter())
            row["games"] += 1
            row["wins" if own == 1 else "losses" if own == 0 else "draws"] += 1
            points[name] = points.get(name, 0.0) + own
    rows = [{"player": name, "games": row["games"], "wins": row["wins"], "draws": row["draws"],
             "losses": row["losses"], "points": points[name]} for name, row in counts.items()]
    return sorted(rows, key=lambda row: (-row["points"] / max(row["games"], 1), -row["points"], row["player"]))


def pairing_results(records: Iterable[GameRecord],
                    pairings: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Per pairing (a, b): games, a's wins, draws, b's wins, the pairs and pentanomial counts of its
    colour-swapped pairs, and the Elo line's numbers (`gamegpt.eval.match_stats.stats_to_dict`)."""
    return [stats_to_dict(stats) for stats in pairing_stats(records, pairings)]


def pairing_stats(records: Iterable[GameRecord], pairings: Sequence[tuple[str, str]]) -> list[MatchStats]:
    """Each pairing's head-to-head counts, from its first player's view (games 2k and 2k + 1 of the
    schedule are one opening with colours swapped: a pair)."""
    records = list(records)
    return [match_stats(records, first, second) for first, second in pairings]


def format_pairings(pairings: Sequence[MatchStats]) -> str:
    """Each pairing's cutechess/fastchess lines, a blank line between pairings."""
    return "\n\n".join(format_match(stats) for stats in pairings)


def format_standings(rows: Sequence[dict[str, Any]]) -> str:
    """The standings as a text table."""
    width = max([len(str(r["player"])) for r in rows] + [6])
    lines = [f"{'player':<{width}}  {'games':>5}  {'+':>4}  {'=':>4}  {'-':>4}  {'points':>6}  {'score':>6}"]
    for row in rows:
        share = f"{100 * row['points'] / row['games']:.1f}%" if row["games"] else "-"
        lines.append(f"{row['player']:<{width}}  {row['games']:>5}  {row['wins']:>4}  {row['draws']:>4}  "
                     f"{row['losses']:>4}  {row['points']:>6g}  {share:>6}")
    return "\n".join(lines)


def _export_pgn(records_path: Path, pgn_path: Path, created: str, event: str, specs: dict[str, str]) -> None:
    """Rebuild games.pgn with the tournament's headers: Event, White/Black (entrant names) and their specs,
    Opening/ECO, TimeControl, Termination; a comment marks where the book ends."""
    from gamegpt.arena.pgn_export import export_pgn

    def edit(record: GameRecord, game: chess.pgn.Game) -> None:
        headers = game.headers
        headers["Event"] = event
        headers["Site"] = "gamegpt"
        entrants = record.extra.get("entrants") or ["?", "?"]
        for side, name in zip(("White", "Black"), entrants):
            headers[side] = str(name)
            if name in specs:
                headers[f"{side}Spec"] = specs[name]
        opening = record.extra.get("opening") or {}
        if opening.get("name"):
            headers["Opening"] = str(opening["name"])
        if opening.get("eco"):
            headers["ECO"] = str(opening["eco"])
        clock = record.extra.get("clock")
        headers["TimeControl"] = str(clock["time_control"]) if isinstance(clock, dict) else "-"
        headers["PlyCount"] = str(len(record.moves))
        plies = int(opening.get("plies") or 0)
        node: chess.pgn.GameNode = game
        for _ in range(plies):
            if not node.variations:
                break
            node = node.variations[0]
        if plies and node is not game:
            node.comment = " ".join(filter(None, ["book", node.comment]))

    export_pgn(records_path, pgn_path, date=created[:10].replace("-", "."), edit=edit)
