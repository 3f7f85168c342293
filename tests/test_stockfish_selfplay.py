"""The UCI client, Stockfish players and parallel, resumable chess self-play, with the real Stockfish binary.

Small on purpose (nodes 30-200, games of at most 40-60 plies, 2 workers): the whole file runs in well under
90 s on a busy 2-core machine.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import chess
import chess.pgn
import pytest

from gamegpt.errors import EngineError, PlayerSpecError, RecordsError, UserError
from gamegpt.arena.play import derive_seed, play_game
from gamegpt.games.base import InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.players import uci as uci_module
from gamegpt.players.base import Noisy
from gamegpt.arena.specs import make_player
from gamegpt.players.limits import SearchLimits
from gamegpt.players.stockfish import StockfishPlayer
from gamegpt.players.uci import UciEngineProcess, UciPlayer, find_stockfish
from gamegpt.arena.records import GameRecord, iter_records, read_records
from gamegpt.arena.pgn_export import export_pgn
from gamegpt.selfplay.runner import run_selfplay
from processes import children_of, wait_gone

STOCKFISH = find_stockfish()  # setup.sh installs it; without it these tests fail with that one line

CHESS = {"claim_draws": True}
SPECS = ["stockfish:nodes=60,noise=0.2", "stockfish:nodes=30,noise=0.2"]

FAKE_ENGINE = """
import sys
answer = sys.argv[1]
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "uci":
        print("id name Fake")
        print("option name Hash type spin default 16 min 1 max 64")
        print("uciok", flush=True)
    elif words[0] == "isready":
        print("readyok", flush=True)
    elif words[0] == "go":
        sys.stdout.buffer.write(b"info string \\xff\\xfe not utf-8\\n")
        print(answer, flush=True)
    elif words[0] == "quit":
        break
"""


def command_line(*args: str) -> list[str]:
    """The chess self-play command as a user runs it."""
    return [sys.executable, "-m", "gamegpt.cli", "selfplay", "chess", *args]


def run_command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(command_line(*args), capture_output=True, text=True, timeout=timeout, env=env)


def games_of(path: Path) -> set[tuple[int, tuple[str, ...]]]:
    return {(r.index, tuple(r.moves)) for r in read_records(path)}  # type: ignore[misc]


# --------------------------------------------------------------------------- the UCI client
def test_uci_handshake_options_and_a_bestmove() -> None:
    with UciEngineProcess(STOCKFISH) as engine:
        assert engine.id_name and engine.id_name.startswith("Stockfish")
        skill = engine.options["skill level"]
        assert (skill.type, skill.min, skill.max) == ("spin", 0, 20)
        engine.set_option("Hash", 8)
        engine.new_game()
        engine.position(moves=["e2e4", "e7e5"])
        answer = engine.go(SearchLimits(nodes=200))
        board = chess.Board()
        board.push_uci("e2e4")
        board.push_uci("e7e5")
        assert answer.move() in board.legal_moves and answer.info.startswith("info")
        with pytest.raises(EngineError, match="must be in 0..20"):
            engine.set_option("Skill Level", 25)  # Stockfish would ignore it silently
        with pytest.raises(EngineError, match="no option 'Contempt'"):
            engine.set_option("Contempt", 10)
        with pytest.raises(ValueError, match="bad FEN"):  # never reaches Stockfish, which crashes on it
            engine.position(fen="8/8/8/8/8/8/8/8 w - - 0 1")
        engine.position(fen="6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1")  # back-rank mate in one
        mate = engine.go(SearchLimits(depth=3))
        assert mate.text == "a1a8" and " mate 1 " in mate.info
        engine.is_ready()


@pytest.mark.parametrize("command, message", [
    (["cat"], "did not answer 'uci'"),  # echoes, never says uciok
    (["sleep", "100"], "did not answer 'uci'"),
    (["true"], "exited with code 0"),
    (["/nonexistent/engine"], "engine not found"),
])
def test_engines_that_hang_die_or_are_missing_give_engine_errors(command: list[str], message: str) -> None:
    start = time.monotonic()
    with pytest.raises(EngineError, match=message):
        UciEngineProcess(command, handshake_timeout=0.5)
    assert time.monotonic() - start < 5


def test_a_search_past_its_timeout_or_a_killed_engine_give_engine_errors() -> None:
    engine = UciEngineProcess(STOCKFISH)
    engine.position()
    start = time.monotonic()
    with pytest.raises(EngineError, match="did not answer 'go depth 60'"):
        engine.go(SearchLimits(depth=60), timeout=0.3)
    assert time.monotonic() - start < 5 and not engine.alive
    engine = UciEngineProcess(STOCKFISH)
    os.kill(engine.pid, signal.SIGKILL)
    with pytest.raises(EngineError, match="exited with code -9"):
        engine.position()
        engine.go(SearchLimits(nodes=10))
    engine.close()


def test_find_stockfish(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert find_stockfish(STOCKFISH) == STOCKFISH
    with pytest.raises(EngineError, match="Stockfish not found at /nope/stockfish"):
        find_stockfish("/nope/stockfish")
    monkeypatch.delenv("GAMEGPT_STOCKFISH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(uci_module, "DEBIAN_STOCKFISH", str(tmp_path / "stockfish"))
    with pytest.raises(EngineError, match=r"apt-get install stockfish"):
        find_stockfish()


def test_a_uci_player_that_answers_an_illegal_move_loses(tmp_path: Path) -> None:
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)
    for answer, text in (("bestmove e2e5", "e2e5"), ("bestmove (none)", "(none)"), ("bestmove", "(none)")):
        player = UciPlayer([sys.executable, str(script), answer], options={"Hash": 32})
        try:
            player.reset(0)
            assert player.choose(ChessGame()) == InvalidMove(text)
            record = play_game(ChessGame(), [player, make_player("stockfish:nodes=10", "chess")], seed=0)
        finally:
            player.close()
        assert record.termination == "illegal_move" and record.result == "0-1" and record.moves == []
    generic = make_player(f"uci:cmd={STOCKFISH},nodes=50,opt_skill_level=3", "chess")
    try:
        generic.reset(1)
        assert generic.choose(ChessGame()) in chess.Board().legal_moves
        assert generic.describe()["engine"].startswith("Stockfish")
    finally:
        generic.close()


# --------------------------------------------------------------------------- Stockfish players
@pytest.mark.parametrize("spec, message", [
    ("stockfish:elo=1000", r"1350\.\.2850"),
    ("stockfish:elo=2900", r"1350\.\.2850"),
    ("stockfish:skill=21", r"0\.\.20"),
    ("stockfish:skill=7-3", r"0\.\.20"),
    ("stockfish:skill=3,elo=1500", "not both"),
    ("stockfish:nodes=0", "at least 1"),
    ("stockfish:ponder=1", "no option ponder"),
    ("stockfish:skill=lots", "bad value 'lots'"),
    ("uci:nodes=5", "needs cmd="),
])
def test_bad_stockfish_specs_are_rejected(spec: str, message: str) -> None:
    with pytest.raises(PlayerSpecError, match=message):
        make_player(spec, "chess")
    with pytest.raises(PlayerSpecError, match="plays chess"):
        make_player("stockfish", "tictactoe")


def test_stockfish_strength_options_play_legal_moves() -> None:
    game = ChessGame()
    game.push(chess.Move.from_uci("e2e4"))
    for spec in ("stockfish:elo=1500,movetime=20", "stockfish:skill=0,depth=2", "stockfish:nodes=100,noise=0.5"):
        player = make_player(spec, "chess")
        try:
            player.reset(3)
            assert player.choose(game) in game.board.legal_moves
        finally:
            player.close()
    noisy = make_player("stockfish:skill=3,nodes=1000,noise=0.1", "chess")
    assert isinstance(noisy, Noisy) and isinstance(noisy.player, StockfishPlayer)
    assert noisy.describe() == {"name": "stockfish@noise=0.1", "skill": 3, "nodes": 1000, "threads": 1, "hash": 16,
                                "noise": 0.1}


def test_stockfish_is_deterministic_at_fixed_nodes_and_one_thread() -> None:
    """The premise of comparing a resumed run with a straight one: same seed, same game, whatever ran before."""
    players = [make_player(SPECS[0], "chess"), make_player(SPECS[1], "chess")]
    try:
        seeds = [derive_seed(4, i) for i in range(3)]
        first = [play_game(ChessGame(claim_draws=True), players, seed=s, max_plies=60).moves for s in seeds]
        again = [play_game(ChessGame(claim_draws=True), players, seed=s, max_plies=60).moves for s in reversed(seeds)]
    finally:
        for player in players:
            player.close()
    assert first == again[::-1] and len({tuple(m) for m in first}) == 3


# --------------------------------------------------------------------------- self-play: parallel, resumable, PGN
def test_parallel_selfplay_resumes_to_the_games_of_a_straight_run(tmp_path: Path) -> None:
    straight = tmp_path / "straight" / "games.jsonl"
    result = run_selfplay("chess", SPECS, n_games=6, seed=11, out=straight, max_plies=40, progress=False,
                          workers=2, game_options=CHESS)
    assert result.games_new == 6 and result.pgn_path == straight.with_suffix(".pgn")
    resumed = tmp_path / "resumed" / "games.jsonl"
    run_selfplay("chess", SPECS, n_games=3, seed=11, out=resumed, max_plies=40, progress=False, workers=2,
                 game_options=CHESS)
    result = run_selfplay("chess", SPECS, n_games=6, seed=11, out=resumed, max_plies=40, progress=False,
                          workers=2, game_options=CHESS)
    assert (result.games_new, result.games_total) == (3, 6)
    assert games_of(resumed) == games_of(straight) and {i for i, _ in games_of(straight)} == set(range(6))
    one_worker = tmp_path / "one" / "games.jsonl"
    run_selfplay("chess", SPECS, n_games=6, seed=11, out=one_worker, max_plies=40, progress=False,
                 game_options=CHESS)
    assert games_of(one_worker) == games_of(straight)
    summary = json.loads(straight.with_name("games.summary.json").read_text())
    assert summary["games"] == 6 and summary["settings"]["game_options"] == CHESS
    assert sum(summary["results"].values()) == 6

    # PGN export: read back with python-chess, the same moves and results as the records, in index order
    records = sorted(read_records(resumed), key=lambda r: r.index)  # type: ignore[arg-type, return-value]
    with resumed.with_suffix(".pgn").open() as handle:
        games = [chess.pgn.read_game(handle) for _ in range(7)]
    assert games[-1] is None
    for record, game in zip(records, games):
        assert game is not None and not game.errors
        assert [m.uci() for m in game.mainline_moves()] == record.moves
        headers = game.headers
        assert (headers["Result"], headers["Round"], headers["Termination"]) == (
            record.result, str(record.index), record.termination)
        assert headers["White"] == "stockfish:skill=20,nodes=60,threads=1,hash=16,noise=0.2"
        assert headers["WhiteNoise"] == "0.2" and headers["GameSeed"] == str(record.seed)
        assert headers["Site"] == "gamegpt self-play" and len(headers["Date"]) == 10
    assert {r.termination for r in records} <= {"max_plies", "checkmate", "stalemate", "threefold_repetition",
                                                "fifty_moves", "insufficient_material"}
    assert export_pgn(resumed, tmp_path / "again.pgn") == 6
    assert (tmp_path / "again.pgn").read_text() == resumed.with_suffix(".pgn").read_text()

    with pytest.raises(UserError, match="other settings"):
        run_selfplay("chess", SPECS, n_games=6, seed=12, out=resumed, max_plies=40, progress=False,
                     game_options=CHESS)
    with pytest.raises(UserError, match="already holds game 5"):
        run_selfplay("chess", SPECS, n_games=4, seed=11, out=resumed, max_plies=40, progress=False,
                     game_options=CHESS)
    lines = resumed.read_text().splitlines()
    resumed.write_text("\n".join(lines + lines[:1]) + "\n")
    with pytest.raises(UserError, match="in the file 2 times"):
        run_selfplay("chess", SPECS, n_games=6, seed=11, out=resumed, max_plies=40, progress=False,
                     game_options=CHESS)


def test_pgn_export_of_a_game_from_a_fen_and_one_lost_by_an_illegal_move(tmp_path: Path) -> None:
    fen = "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"
    players = [make_player("stockfish:nodes=100", "chess"), make_player("stockfish:depth=1", "chess")]
    try:
        mate = play_game(ChessGame(fen), players, seed=0, index=0)
    finally:
        for player in players:
            player.close()
    illegal = GameRecord("chess", ["e2e4"], [{"name": "model"}, {"name": "random"}], "1-0", "illegal_move",
                         seed=5, index=1, extra={"illegal": {"side": 1, "ply": 1, "text": "e7e4"}})
    records = tmp_path / "games.jsonl"
    records.write_text(illegal.to_json() + "\n" + mate.to_json() + "\n")
    assert export_pgn(records, tmp_path / "games.pgn") == 2
    with (tmp_path / "games.pgn").open() as handle:
        first, second = chess.pgn.read_game(handle), chess.pgn.read_game(handle)
    assert first is not None and second is not None
    assert first.headers["FEN"] == fen and first.headers["SetUp"] == "1" and first.headers["Round"] == "0"
    assert [m.uci() for m in first.mainline_moves()] == ["a1a8"] and first.end().board().is_checkmate()
    assert first.headers["Result"] == "1-0" and first.headers["Termination"] == "checkmate"
    assert second.headers["White"] == "model" and second.headers["Termination"] == "illegal_move"
    assert "illegal move: 'e7e4'" in second.end().comment
    records.write_text(GameRecord("tictactoe", ["4"], [], "*", "").to_json() + "\n")
    with pytest.raises(RecordsError, match="not chess"):
        export_pgn(records, tmp_path / "t.pgn")


def test_killed_selfplay_resumes_without_duplicates_or_truncated_records(tmp_path: Path) -> None:
    out = tmp_path / "games.jsonl"
    args = ["--white", "stockfish:nodes=200", "--black", "stockfish:nodes=100", "--noise", "0.1", "--max-plies",
            "60", "--seed", "3", "--workers", "2", "--out", str(out), "--no-progress"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(command_line(*args, "--games", "200"), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    engines: list[int] = []
    try:  # a snapshot of the tree may catch a worker between engines: look again until the deadline
        while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 3
                                               or len(workers) < 2 or len(engines) < 4):
            time.sleep(0.05)
            workers = children_of(process.pid)
            engines = [pid for worker in workers for pid in children_of(worker)]
    finally:
        process.kill()
        process.wait()
    assert out.read_bytes().count(b"\n") >= 3, "no records within 60 s"
    assert len(workers) >= 2 and len(engines) >= 4  # 2 workers, one Stockfish per side each
    for pid in workers + engines:  # orphans end themselves: workers watch their parent, engines read EOF
        wait_gone(pid, 10)
    assert json.loads(out.with_name("games.summary.json").read_text())["settings"]["max_plies"] == 60
    before = {r.index for r in iter_records(out)}  # a record cut by the kill is not read
    wanted = max(12, max(before) + 4)  # type: ignore[type-var, operator]
    result = run_command(*args, "--games", str(wanted))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}, {out.with_suffix('.pgn')}" in result.stdout
    records = list(iter_records(out, allow_truncated_tail=False))
    indices = Counter(r.index for r in records)
    assert len(records) == wanted and set(indices) == set(range(wanted)) and max(indices.values()) == 1
    assert before <= set(indices)
    with out.with_suffix(".pgn").open() as handle:
        assert sum(1 for _ in iter(lambda: chess.pgn.read_headers(handle), None)) == wanted


def test_a_worker_killed_mid_run_stops_the_run_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "games.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(command_line("--games", "200", "--workers", "2", "--max-plies", "40", "--out", str(out),
                                            "--no-progress"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 2):
            time.sleep(0.05)
        workers = [pid for pid in children_of(process.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)  # no hang waiting for the lost game
    finally:
        process.kill()
        process.wait()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert process.returncode == 2 and len(lines) == 1 and "died (exit code -9)" in lines[0], stderr
    assert len(read_records(out)) >= 2 and out.with_suffix(".pgn").exists()


def test_karvonen_preset_records_the_drawn_skill_level(tmp_path: Path) -> None:
    out = tmp_path / "karvonen.jsonl"
    result = run_command("--preset", "karvonen", "--games", "3", "--workers", "2", "--max-plies", "12",
                         "--seed", "7", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    records = sorted(read_records(out), key=lambda r: r.index)  # type: ignore[arg-type, return-value]
    assert len(records) == 3
    for record in records:
        white, black = record.players
        assert white["skill"] == 20 and white["nodes"] == 20000 and "noise" not in white
        assert black["skill_range"] == [0, 9] and black["nodes"] == 5000
        game_seed = derive_seed(7, record.index)  # type: ignore[arg-type]
        assert black["skill"] == random.Random(derive_seed(game_seed, 1) ^ 0x5C111).randint(0, 9)
    pgn = out.with_suffix(".pgn").read_text()
    assert f'[Black "stockfish:skill={records[0].players[1]["skill"]},skill_range=0-9' in pgn


def test_command_user_errors_are_one_line(tmp_path: Path) -> None:
    out = str(tmp_path / "g.jsonl")
    for args, needle in ((["--stockfish", "/nope/stockfish"], "Stockfish not found at /nope/stockfish"),
                         (["--white", "stockfish:elo=1000"], "1350..2850"),
                         (["--preset", "karvonen", "--black", "random"], "not both")):
        result = run_command(*args, "--games", "1", "--out", out)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
