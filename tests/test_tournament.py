"""Tournaments with the real Stockfish, a real (random-weight) model, the random player and the real opening
books in ../shared/data/openings: schedule, openings, clocks and adjudication, PGN that python-chess reads
back, ratings, and a tournament killed by SIGKILL that resumes without replaying or losing a game.

Small on purpose (Stockfish at 20-50 nodes, games of at most 40-60 plies, 2 workers): the file runs in
well under a minute on a busy 2-core machine; every wait is bounded.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import chess
import chess.pgn
import pytest

from gamegpt.errors import EngineError, UserError
from gamegpt.arena.play import TimeControl, play_game
from gamegpt.eval.openings import START_POSITION, Opening, load_openings, openings_from_book
from gamegpt.eval.tournament import (
    LADDERS,
    Entrant,
    add_engine_limits,
    format_outcomes,
    ladder_entrants,
    make_pairings,
    make_schedule,
    outcomes_by_opponent,
    parse_entrant,
    resolve_anchor,
    run_tournament,
)
from gamegpt.games.base import Game
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import Noisy, Player, RandomPlayer
from gamegpt.players.limits import SearchLimits
from gamegpt.players.uci import UciPlayer, find_stockfish
from gamegpt.arena.records import GameRecord, iter_records, read_records
from gamegpt.eval import tournament
from gamegpt.resources import NAMED_OPENINGS, OPENING_BOOK, data_file
from processes import children_of, wait_gone

STOCKFISH = find_stockfish()  # setup.sh installs it; without it these tests fail with that one line

BOOK_PGN = data_file(*OPENING_BOOK)
BOOK_TSV = data_file(*NAMED_OPENINGS)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


# --------------------------------------------------------------------------- entrants, schedule, openings
def test_entrants_names_limits_and_the_default_anchor() -> None:
    assert parse_entrant("stockfish:elo=1350") == Entrant("stockfish:elo=1350", "stockfish:elo=1350")
    assert parse_entrant("sf=stockfish:elo=1350") == Entrant("sf", "stockfish:elo=1350")
    assert parse_entrant("rnd=random") == Entrant("rnd", "random")
    assert parse_entrant("model:path=/a/b/run7,temperature=0.1").name == "model:path=run7,temperature=0.1"
    limits = SearchLimits(nodes=300)
    assert add_engine_limits("stockfish:elo=1500", limits) == "stockfish:elo=1500,nodes=300"
    assert add_engine_limits("stockfish", limits) == "stockfish:nodes=300"
    assert add_engine_limits("stockfish:skill=0,nodes=20,noise=0.5", limits) == "stockfish:skill=0,nodes=20,noise=0.5"
    assert add_engine_limits("random", limits) == "random"
    assert add_engine_limits("uci:cmd=x", SearchLimits(movetime=50)) == "uci:cmd=x,movetime=50"
    with pytest.raises(UserError, match="nodes must be at least 1"):
        SearchLimits(nodes=0)

    ladder = ladder_entrants("default")
    assert [e.spec for e in ladder] == list(LADDERS["default"])
    assert resolve_anchor(ladder, None, None) == ("stockfish:elo=1350", 1350.0)
    assert resolve_anchor(ladder, "stockfish:elo=1700", None) == ("stockfish:elo=1700", 1700.0)
    plain = [parse_entrant("random"), parse_entrant("sf=stockfish:skill=3")]
    assert resolve_anchor(plain, None, None) == ("random", 0.0)  # no Stockfish at UCI_Elo: the first, at 0
    assert resolve_anchor(plain, "sf", 800) == ("sf", 800.0)
    with pytest.raises(UserError, match="not a player"):
        resolve_anchor(plain, "nobody", None)
    with pytest.raises(UserError, match="unknown ladder"):
        ladder_entrants("steep")


def test_pairings_and_a_schedule_that_grows_by_openings() -> None:
    names = ["m", "a", "b", "c", "d"]
    assert len(make_pairings(names, mode="round-robin")) == 10
    gauntlet = make_pairings(names, mode="gauntlet", subjects=["m"], neighbours=2)
    assert gauntlet == [("m", "a"), ("m", "b"), ("m", "c"), ("m", "d"), ("a", "b"), ("b", "c"), ("c", "d"),
                        ("a", "c"), ("b", "d")]
    assert make_pairings(names, mode="gauntlet", subjects=["m"], neighbours=0) == gauntlet[:4]
    for bad, message in (({"subjects": []}, "at least one subject"), ({"subjects": ["x"]}, "not a player"),
                         ({"mode": "swiss"}, "unknown tournament mode")):
        kwargs: dict[str, Any] = {"mode": "gauntlet", "subjects": ["m"], **bad}
        with pytest.raises(UserError, match=message):
            make_pairings(names, **kwargs)
    with pytest.raises(UserError, match="unique"):
        make_pairings(["a", "a"])

    schedule = make_schedule(gauntlet, 3)
    assert len(schedule) == 9 * 2 * 3 and [g.index for g in schedule] == list(range(54))
    colours = Counter((g.white, g.black, g.opening) for g in schedule)
    for first, second in gauntlet:  # every opening with both colours
        for opening in range(3):
            assert colours[(first, second, opening)] == colours[(second, first, opening)] == 1
    assert make_schedule(gauntlet, 5)[:54] == schedule  # more openings: the first games keep their indices


def test_opening_books_pgn_and_tsv() -> None:
    first = load_openings(BOOK_PGN, count=5, seed=3)
    more = load_openings(BOOK_PGN, count=9, seed=3)
    assert len(first) == 5 and more[:5] == first  # prefix-stable
    assert load_openings(BOOK_PGN, count=5, seed=4) != first
    in_order = load_openings(BOOK_PGN, count=2, order="sequential")
    assert in_order[0].san() == "1. f4 e6 2. b4 Be7" and in_order[0].name == "2moves_v2 #1"
    named = load_openings(BOOK_TSV, count=40, seed=0)
    assert len({o.name for o in named}) == 40 and all(o.eco and o.eco[0] in "ABCDE" for o in named)
    for opening in first + named:
        board = chess.Board()
        for move in opening.moves:
            assert chess.Move.from_uci(move) in board.legal_moves
            board.push_uci(move)
        assert opening.new_game().board == board
    everything = load_openings(BOOK_TSV, order="sequential")
    assert len(everything) == 3807 and everything[0].name == "Amar Opening" and everything[0].moves == ("g1h3",)
    cut = load_openings(BOOK_TSV, order="sequential", max_plies=3)
    assert max(len(o.moves) for o in cut) == 3 and any("(first 3 plies)" in o.name for o in cut)


def test_bad_opening_books_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.tsv").write_text("eco\tname\tpgn\nA00\tNonsense\t1. e5 e4\n")
    (tmp_path / "nopgn.tsv").write_text("eco\tname\nA00\tx\n")
    (tmp_path / "book.epd").write_text("x")
    for path, message in ((tmp_path / "missing.pgn", "not found"), (tmp_path / "broken.tsv", "no usable opening"),
                          (tmp_path / "nopgn.tsv", "'pgn' column"), (tmp_path / "book.epd", "unknown opening book")):
        with pytest.raises(UserError, match=message):
            load_openings(path)


def test_openings_from_book_option_and_time_control_option() -> None:
    assert openings_from_book(None, count=3, seed=5) == load_openings(BOOK_PGN, count=3, seed=5)
    assert openings_from_book("NONE", count=3) == [START_POSITION]
    assert openings_from_book(str(BOOK_TSV), count=2, order="sequential")[0].name == "Amar Opening"
    with pytest.raises(UserError, match="not found"):
        openings_from_book("/nonexistent/book.pgn")
    assert TimeControl.from_option(None) is None and TimeControl.from_option("") is None
    assert TimeControl.from_option("5+0.1") == TimeControl(5000, 100)
    with pytest.raises(UserError, match="^--tc: bad time control"):
        TimeControl.from_option("5 minutes")


# --------------------------------------------------------------------------- clocks and adjudication
class SlowPlayer(Player):
    """Plays its first legal move after sleeping `delay` seconds."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def choose(self, game: Game[Any]) -> Any:
        time.sleep(self.delay)
        return game.legal_moves()[0]


ROOK_ENDING = "4k3/8/8/8/8/8/8/R3K3 w - - 0 1"  # White can mate, Black (a lone king) never can


def test_a_fallen_flag_loses_unless_the_opponent_cannot_mate() -> None:
    clock = TimeControl.parse("0.2+0")
    flagged = play_game(ChessGame(ROOK_ENDING), [SlowPlayer(0.3), RandomPlayer()], seed=1, time_control=clock)
    assert (flagged.termination, flagged.result) == ("time_forfeit", "1/2-1/2")  # a lone king cannot win
    assert flagged.extra["time_forfeit"]["side"] == 0 and not flagged.extra["time_forfeit"]["opponent_can_win"]
    assert flagged.moves == []  # the move that came too late is not played
    lost = play_game(ChessGame(ROOK_ENDING), [RandomPlayer(), SlowPlayer(0.3)], seed=1, time_control=clock)
    assert (lost.termination, lost.result) == ("time_forfeit", "1-0") and len(lost.moves) == 1
    relaxed = play_game(ChessGame(claim_draws=True), [RandomPlayer(), RandomPlayer()], seed=2, max_plies=20,
                        time_control=TimeControl.parse("5+0.25"))
    clock_info = relaxed.extra["clock"]
    assert relaxed.termination != "time_forfeit" and clock_info["time_control"] == "5+0.25"
    assert len(clock_info["move_ms"]) == len(relaxed.moves)
    assert all(5000 < ms <= 5000 + 10 * 250 for ms in clock_info["remaining_ms"])  # increments were added


FAKE_ENGINE = """
import sys
import chess
log = open(sys.argv[1], "a")
crash_at = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # exit (code 3) at this `go`, as a crashing engine
gos = 0
board = chess.Board()
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "uci":
        print("id name Clockwatcher")
        print("uciok", flush=True)
    elif words[0] == "isready":
        print("readyok", flush=True)
    elif words[0] == "position":
        board = chess.Board()
        for move in words[words.index("moves") + 1:] if "moves" in words else []:
            board.push_uci(move)
    elif words[0] == "go":
        log.write(line)
        log.flush()
        gos += 1
        if gos == crash_at:
            sys.exit(3)
        move = min(m.uci() for m in board.legal_moves)
        print(f"info depth 1 score cp 0 pv {move}")
        print(f"bestmove {move}", flush=True)
    elif words[0] == "quit":
        break
"""


def test_uci_engines_get_the_clock_and_only_their_stated_limits(tmp_path: Path) -> None:
    script, log = tmp_path / "engine.py", tmp_path / "go.log"
    script.write_text(FAKE_ENGINE)
    engine = UciPlayer([sys.executable, str(script), str(log)])  # its default limit: nodes=1000
    try:
        timed = play_game(ChessGame(claim_draws=True), [RandomPlayer(), Noisy(engine, 0.0)], seed=0, max_plies=6,
                          time_control=TimeControl.parse("30+0.5"))  # the noise wrapper passes the clock on
        lines = log.read_text().splitlines()
        assert len(lines) == 3 and all("wtime" in line and "btime" in line and "winc 500" in line and "binc 500"
                                       in line and "nodes" not in line for line in lines)
        assert timed.players[1] == {"name": "uci@noise=0", "engine": "Clockwatcher", "noise": 0.0}  # no nodes
        log.write_text("")
        untimed = play_game(ChessGame(claim_draws=True), [engine, RandomPlayer()], seed=0, max_plies=6)
        assert log.read_text().splitlines() == ["go nodes 1000"] * 3 and "clock" not in untimed.extra
    finally:
        engine.close()


def test_an_engine_that_crashes_mid_game_loses_it_and_the_tournament_goes_on(tmp_path: Path) -> None:
    script, log = tmp_path / "engine.py", tmp_path / "go.log"
    script.write_text(FAKE_ENGINE)
    crasher = f"crasher=uci:cmd={sys.executable} {script} {log} 3,nodes=1"  # every process dies at its 3rd go
    result = run_tournament([crasher, "random"], out_dir=tmp_path / "t", openings=[START_POSITION], max_plies=40,
                            workers=1, anchor="random", anchor_rating=0, progress=False)
    records = read_records(result.records_path)
    assert len(records) == 2 and {r.termination for r in records} == {"engine_failure"}
    for record in records:
        side = record.extra["entrants"].index("crasher")
        failure = record.extra["engine_failure"]
        assert failure["side"] == side and record.result == ("0-1" if side == 0 else "1-0")
        assert failure["ply"] == 4 + side and "exited with code 3" in failure["error"]
    assert len(log.read_text().splitlines()) == 6  # 3 gos in each game: the engine was restarted for game 2
    assert result.standings[0]["player"] == "random" and result.standings[0]["points"] == 2.0
    games = chess.pgn.read_game(io.StringIO(result.pgn_path.read_text()))
    assert games is not None and games.headers["Result"] in ("1-0", "0-1")
    engine = UciPlayer([sys.executable, str(script), str(log), "3"])
    try:  # outside a tournament (self-play, whose records are training data) the failure is an error, no record
        with pytest.raises(EngineError, match="exited with code 3"):
            play_game(ChessGame(), [engine, RandomPlayer()], seed=0, max_plies=40)
    finally:
        engine.close()


def test_stockfish_plays_on_a_clock_without_flagging() -> None:
    from gamegpt.arena.specs import make_player

    stockfish = make_player("stockfish:elo=1350", "chess")
    try:
        record = play_game(ChessGame(claim_draws=True), [stockfish, RandomPlayer()], seed=3, max_plies=30,
                           time_control=TimeControl.parse("3+0.05"))
    finally:
        stockfish.close()
    assert record.termination != "time_forfeit" and record.players[0]["elo"] == 1350
    assert "nodes" not in record.players[0] and min(record.extra["clock"]["remaining_ms"]) > 0


# --------------------------------------------------------------------------- real tournaments
def test_a_tournament_of_a_model_stockfish_and_the_random_player(tmp_path: Path, untrained_chess_model: Path) -> None:
    model = f"model:path={untrained_chess_model},policy=mask"
    openings = load_openings(BOOK_TSV, count=2, seed=5, max_plies=6)
    result = run_tournament([model, "stockfish:elo=1350", "random"], out_dir=tmp_path, openings=openings,
                            engine_limits=SearchLimits(nodes=50), max_plies=40, workers=2, seed=1, progress=False)
    names = ["model:path=model,policy=mask", "stockfish:elo=1350", "random"]
    assert result.games_total == result.games_scheduled == result.games_new == 3 * 2 * 2
    records = sorted(read_records(tmp_path / "games.jsonl"), key=lambda r: r.index)  # type: ignore[arg-type, return-value]
    assert [r.index for r in records] == list(range(12))
    summary = json.loads((tmp_path / "tournament.json").read_text())
    assert summary["settings"]["players"]["stockfish:elo=1350"] == "stockfish:elo=1350,nodes=50"
    assert summary["games"] == 12 and sum(summary["terminations"].values()) == 12

    games = []
    with (tmp_path / "games.pgn").open() as handle:
        for _ in range(20):  # bounded: 12 games expected
            game = chess.pgn.read_game(handle)
            if game is None:
                break
            games.append(game)
    assert len(games) == 12
    for record, game in zip(records, games):
        assert not game.errors
        headers = game.headers
        white, black = record.extra["entrants"]
        assert (headers["White"], headers["Black"], headers["Result"]) == (white, black, record.result)
        assert headers["Termination"] == record.termination and headers["Round"] == str(record.index)
        opening = openings[record.extra["opening"]["index"]]
        assert headers["Opening"] == opening.name and headers["ECO"] == opening.eco
        assert headers["WhiteSpec"].startswith(white.split(":")[0]) and headers["TimeControl"] == "-"
        moves = [m.uci() for m in game.mainline_moves()]
        assert moves == record.moves and tuple(moves[:len(opening.moves)]) == opening.moves
        book_end = list(game.mainline())[len(opening.moves) - 1]
        assert book_end.comment.startswith("book")
        if record.termination == "checkmate":
            assert game.end().board().is_checkmate()
        assert record.termination != "illegal_move"  # the model plays with the legality mask
        model_side = [white, black].index(names[0]) if names[0] in (white, black) else None
        if model_side is not None:
            assert record.players[model_side]["policy"] == "mask"
    pairs = Counter(frozenset(r.extra["entrants"]) for r in records)
    assert set(pairs.values()) == {4} and len(pairs) == 3

    ratings = result.ratings
    assert ratings is not None and {r.name for r in ratings.ratings} == set(names)
    assert ratings.anchor == "stockfish:elo=1350" and ratings.rating_of("stockfish:elo=1350").rating == 1350
    for path in result.rating_paths:
        assert path.exists() and path.stat().st_size > 0
    points = {row["player"]: row["points"] for row in result.standings}
    assert sum(points.values()) == 12 and set(points) == set(names)

    outcomes = outcomes_by_opponent(records, "random")
    assert set(outcomes) == set(names) - {"random"}
    for opponent, row in outcomes.items():
        games_between = [r for r in records if set(r.extra["entrants"]) == {"random", opponent}]
        draws = [r for r in games_between if r.result == "1/2-1/2"]
        assert row["games"] == len(games_between) == 4 and row["won"] + row["drawn"] + row["lost"] == 4
        assert row["drawn"] == len(draws) == sum(row["draws"].values())
        assert row["draws"] == dict(Counter(r.termination for r in draws))
        assert row["lead"][40][1] == sum(len(r.moves) >= 40 for r in games_between)
    own_points = sum(row["won"] + row["drawn"] / 2 for row in outcomes.values())
    assert own_points == points["random"]
    table = format_outcomes(outcomes)
    assert len(table.splitlines()) == 3 and "stockfish:elo=1350" in table and "lead@40" in table


def test_outcomes_read_the_material_lead_of_each_side(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tournament, "LEAD_PLIES", (3, 4, 9))
    record = GameRecord(game="chess", moves="e2e4 d7d5 e4d5 d8d5".split(), players=[{}, {}], result="0-1",
                        termination="resignation", extra={"entrants": ["a", "b"]})
    white, black = outcomes_by_opponent([record], "a")["b"], outcomes_by_opponent([record], "b")["a"]
    assert white["lead"] == {3: [1.0, 1], 4: [0.0, 1], 9: [None, 0]} and white["lost"] == 1
    assert black["lead"] == {3: [-1.0, 1], 4: [0.0, 1], 9: [None, 0]} and black["won"] == 1
    assert "+1.0 (1)" in format_outcomes({"b": white}) and "-1.0 (1)" in format_outcomes({"a": black})


def test_more_openings_extend_a_tournament_and_other_settings_are_refused(tmp_path: Path) -> None:
    players = ["random", "sf=stockfish:skill=0,nodes=20"]
    book = load_openings(BOOK_PGN, count=2, seed=9)
    first = run_tournament(players, out_dir=tmp_path, openings=book[:1], max_plies=30, progress=False)
    assert first.games_new == 2 and first.games_total == 2
    before = (tmp_path / "games.jsonl").read_bytes()
    second = run_tournament(players, out_dir=tmp_path, openings=book, max_plies=30, progress=False)
    assert second.games_new == 2 and second.games_total == 4
    assert (tmp_path / "games.jsonl").read_bytes().startswith(before)
    again = run_tournament(players, out_dir=tmp_path, openings=book, max_plies=30, progress=False)
    assert again.games_new == 0 and again.games_total == 4
    with pytest.raises(UserError, match="other settings"):
        run_tournament(players, out_dir=tmp_path, openings=book, max_plies=31, progress=False)
    with pytest.raises(UserError, match="opening 1 differs"):
        run_tournament(players, out_dir=tmp_path, openings=load_openings(BOOK_PGN, count=2, seed=10), max_plies=30,
                       progress=False)
    with pytest.raises(UserError, match="holds games of 2 openings"):
        run_tournament(players, out_dir=tmp_path, openings=book[:1], max_plies=30, progress=False)
    with pytest.raises(UserError, match="no option"):
        run_tournament(["random", "stockfish:depht=3"], out_dir=tmp_path / "bad", openings=[START_POSITION])


def tournament_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gamegpt.cli", "tournament", *args]


def test_a_killed_tournament_resumes_without_replaying_or_losing_a_game(tmp_path: Path) -> None:
    out = tmp_path / "t"
    records_path = out / "games.jsonl"
    args = ["-p", "random", "-p", "stockfish:skill=0,nodes=20,noise=0.5", "-p", "sf=stockfish:nodes=30",
            "--openings", str(BOOK_PGN), "--opening-count", "8", "--max-plies", "60", "--workers", "2",
            "--out", str(out), "--no-progress"]
    process = subprocess.Popen(tournament_command(*args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    engines: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None and (
                not records_path.exists() or records_path.read_bytes().count(b"\n") < 4):
            time.sleep(0.05)
        children = children_of(process.pid)  # the workers, and multiprocessing's resource tracker
        workers = [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        engines = [pid for worker in workers for pid in children_of(worker)]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, "the tournament ended before it was killed"
    assert len(workers) == 2 and engines, (workers, engines)
    for pid in workers + engines:  # orphans end themselves: workers watch their parent, engines read EOF
        wait_gone(pid, 15)
    before = records_path.read_bytes()
    complete = before[:before.rfind(b"\n") + 1]  # a line cut by the kill is not a game
    played = {r.index for r in iter_records(records_path)}
    assert 4 <= len(played) < 48

    result = subprocess.run(tournament_command(*args), env=ENV, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert f"{48 - len(played)} new games, 48 of 48 in all" in result.stdout
    after = records_path.read_bytes()
    assert after.startswith(complete)  # every game finished before the kill is kept as it was
    indices = Counter(r.index for r in iter_records(records_path, allow_truncated_tail=False))
    assert set(indices) == set(range(48)) and max(indices.values()) == 1
    with (out / "games.pgn").open() as handle:
        headers = list(iter(lambda: chess.pgn.read_headers(handle), None))
    assert len(headers) == 48 and sorted(int(h["Round"]) for h in headers) == list(range(48))
    assert "anchor: random = 0" in result.stdout and f"wrote {records_path}" in result.stdout

    rerun = subprocess.run(tournament_command(*args), env=ENV, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0 and "0 new games, 48 of 48" in rerun.stdout
    assert records_path.read_bytes() == after


def test_command_user_errors_are_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamegpt.cli import main

    out = str(tmp_path / "t")
    cases = ((["-p", "random", "-p", "stockfish:elo=1000"], "1350..2850"),
             (["-p", "random", "--ladder", "steep"], "unknown ladder"),
             (["-p", "random", "-p", "random"], "unique"),
             (["-p", "me=random", "--ladder", "default", "--tc", "fast"], "--tc"),
             (["--ladder", "default"], "needs at least one --player"),
             (["-p", "me=random", "--ladder", "default", "--anchor", "nobody"], "not a player"),
             (["-p", "random", "--ladder", "default"], "random twice"),
             (["-p", "me=random", "--ladder", "default", "--confidence", "95"], "between 0 and 1"),
             (["-p", "random", "-p", "r2=random", "--openings", str(tmp_path / "none.pgn")], "not found"))
    for args, needle in cases:
        result = CliRunner().invoke(main, ["tournament", *args, "--out", out, "--no-progress"])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and needle in lines[0], (args, result.output)


def test_pgn_of_an_opening_from_a_position_keeps_its_fen(tmp_path: Path) -> None:
    opening = Opening("rook ending", ("a1a7",), None, ROOK_ENDING)
    result = run_tournament(["random", "r2=random"], out_dir=tmp_path, openings=[opening], max_plies=12,
                            progress=False)
    assert result.games_total == 2
    text = (tmp_path / "games.pgn").read_text()
    game = chess.pgn.read_game(io.StringIO(text))
    assert game is not None and game.headers["FEN"] == ROOK_ENDING and game.headers["Opening"] == "rook ending"
    assert next(iter(game.mainline_moves())).uci() == "a1a7"
