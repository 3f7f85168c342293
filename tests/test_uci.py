"""The UCI engine: the protocol over real pipes (`gamegpt uci` as a subprocess, PYTHONUNBUFFERED unset, so a
missing flush would hang these tests), python-chess's engine client playing it against the real Stockfish
with time controls, and the decoding policies and context handling behind it."""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import chess
import chess.engine
import chess.pgn
import pytest
import torch

from gamegpt.core.model import GPT, GPTConfig
from gamegpt.engine.evaluation import score_after, static_evaluation
from gamegpt.engine.model_player import ModelPlayer, fit_context, load_model_player
from gamegpt.engine.settings import DecodingSettings
from gamegpt.engine.uci import Options, UciServer, think_time
from gamegpt.games.base import InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.games.chess_codecs import MoveTokenCodec, PgnCharCodec
from gamegpt.players.limits import SearchLimits
from gamegpt.players.stockfish import find_stockfish
from gamegpt.shared_data import shared_data_dir

GAMEGPT = [sys.executable, "-m", "gamegpt.cli", "uci"]
FISCHER = shared_data_dir() / "games" / "fischer.pgn"


class UciProcess:
    """`gamegpt uci` on real pipes; every stdout line lands in a queue read with timeouts."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        self.proc = subprocess.Popen([*GAMEGPT, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read_until(self, prefix: str, timeout: float = 30.0) -> list[str]:
        """Lines up to and including the first that starts with `prefix`; fails after `timeout` seconds."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line starting with {prefix!r} within {timeout}s; got {seen}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith(prefix):
                return seen

    def quiet(self, seconds: float) -> list[str]:
        """Lines that arrive within `seconds`."""
        time.sleep(seconds)
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        return out

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.send("quit")
            except BrokenPipeError:
                pass
        return self.proc.wait(timeout=20)


def bestmove(lines: list[str]) -> str:
    assert lines[-1].startswith("bestmove ")
    return lines[-1].split()[1]


def assert_info_before_bestmove(lines: list[str], board: chess.Board) -> chess.Move:
    """The line before `bestmove` is an info with integer depth and score and a pv that starts with the move."""
    move = chess.Move.from_uci(bestmove(lines))
    assert move in board.legal_moves, (move, board.fen())
    info = lines[-2].split()
    assert info[0] == "info" and "score" in info and "depth" in info
    assert int(info[info.index("depth") + 1]) >= 1
    kind = info[info.index("score") + 1]
    assert kind in ("cp", "mate") and int(info[info.index("score") + 2]) == score_after(board, move)[1]
    assert info[info.index("pv") + 1] == move.uci()
    return move


# --- the protocol over pipes ---------------------------------------------------------------------------------


def test_uci_answers_at_once_and_loads_the_model_only_at_isready() -> None:
    engine = UciProcess("--model", "/nonexistent/model")  # a bad model must not delay or break `uci`
    try:
        started = time.monotonic()
        engine.send("uci")
        lines = engine.read_until("uciok", timeout=10)
        assert time.monotonic() - started < 5
        assert lines[0].startswith("id name ") and lines[1].startswith("id author ")
        names = {line.split(" type ")[0][len("option name "):] for line in lines if line.startswith("option name")}
        assert {"Model", "Temperature", "Policy", "Seed", "Threads", "Move Overhead"} <= names
        assert not any("cannot load" in line for line in lines)
        engine.send("isready")
        lines = engine.read_until("readyok")
        assert any("cannot load model" in line for line in lines)
        engine.send("position startpos moves e2e4")
        engine.send("go movetime 200")
        move = bestmove(engine.read_until("bestmove"))
        board = chess.Board()
        board.push_uci("e2e4")
        assert chess.Move.from_uci(move) in board.legal_moves
    finally:
        assert engine.close() == 0


def test_garbage_unknown_commands_bad_options_and_bad_positions(untrained_chess_model: Path) -> None:
    engine = UciProcess("--model", str(untrained_chess_model))
    try:
        engine.send("uci")
        engine.read_until("uciok")
        for line in ("", "   ", "xyzzy", "go2", "\x00\x01garbage", "setoption", "setoption name Nope value 3",
                     "setoption name Temperature value hot", "setoption name Policy value greedy",
                     "position", "position sideways", "register later", "debug on"):
            engine.send(line)
        engine.send("setoption name Move Overhead value 30")  # an option name with a space
        engine.send("setoption name Policy value raw")
        engine.send("isready")
        lines = engine.read_until("readyok")
        messages = " ".join(lines)
        assert "unknown command: xyzzy" in messages and "unknown option: Nope" in messages
        assert "bad value for Temperature" in messages and "bad value for Policy" in messages

        # illegal move in the move list: the position is kept up to the move before
        engine.send("position startpos moves e2e4 e7e5 e1e3 d7d5")
        engine.send("go movetime 300")
        lines = engine.read_until("bestmove")
        assert any("illegal move e1e3 at move 3" in line for line in lines)
        board = chess.Board()
        board.push_uci("e2e4")
        board.push_uci("e7e5")
        assert_info_before_bestmove(lines, board)

        # broken FENs: one clear line each, then the start position
        for fen in ("8/8/8/8 w - - 0 1", "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR x KQkq - 0 1", "banana"):
            engine.send(f"position fen {fen}")
            engine.send("go movetime 300")
            lines = engine.read_until("bestmove")
            assert any("broken FEN" in line for line in lines)
            assert_info_before_bestmove(lines, chess.Board())

        # a checkmated side has no move: `bestmove (none)`, as Stockfish does
        engine.send("position startpos moves f2f3 e7e5 g2g4 d8h4")
        engine.send("go movetime 100")
        assert engine.read_until("bestmove")[-1] == "bestmove (none)"
    finally:
        assert engine.close() == 0


def test_stop_idle_isready_during_infinite_ponderhit_and_one_bestmove_per_go(untrained_chess_model: Path) -> None:
    engine = UciProcess("--model", str(untrained_chess_model))
    try:
        engine.send("uci")
        engine.send("isready")
        engine.read_until("readyok")
        engine.send("stop")  # idle: nothing happens
        engine.send("ponderhit")
        engine.send("isready")
        assert engine.read_until("readyok") == ["readyok"]

        engine.send("position startpos")
        engine.send("go infinite")
        time.sleep(1.0)  # far longer than the model needs: the bestmove must still wait for `stop`
        engine.send("isready")
        assert engine.read_until("readyok", timeout=5)[-1] == "readyok"
        assert not any(line.startswith("bestmove") for line in engine.quiet(0.5))
        engine.send("stop")
        lines = engine.read_until("bestmove", timeout=5)
        assert_info_before_bestmove(lines, chess.Board())

        # go ponder: held until ponderhit, then answered within the clock
        engine.send("position startpos moves d2d4")
        engine.send("go ponder wtime 5000 btime 5000")
        assert not any(line.startswith("bestmove") for line in engine.quiet(0.7))
        engine.send("ponderhit")
        board = chess.Board()
        board.push_uci("d2d4")
        assert_info_before_bestmove(engine.read_until("bestmove", timeout=5), board)

        # several go's in a row, some cut short by the next command: exactly one bestmove each
        for limits in ("movetime 50", "wtime 100 btime 100", "depth 2", "nodes 10", "wtime 3000 btime 3000 winc 100 binc 100 movestogo 5"):
            engine.send("position startpos moves e2e4")
            engine.send(f"go {limits}")
        engine.send("isready")
        lines = engine.read_until("readyok", timeout=20)
        lines += engine.quiet(1.0)
        assert sum(line.startswith("bestmove") for line in lines) == 5, lines
        assert not engine.quiet(0.5)
    finally:
        assert engine.close() == 0


def test_quit_during_infinite_search_exits_promptly(untrained_chess_model: Path) -> None:
    engine = UciProcess("--model", str(untrained_chess_model))
    engine.send("uci")
    engine.send("isready")
    engine.read_until("readyok")
    engine.send("position startpos")
    engine.send("go infinite")
    time.sleep(0.3)
    started = time.monotonic()
    engine.send("quit")
    assert engine.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5


def test_end_of_input_ends_the_engine(untrained_chess_model: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([*GAMEGPT, "--model", str(untrained_chess_model)], input="uci\nisready\ngo movetime 100\n",
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1].startswith("bestmove ")
    assert "Traceback" not in done.stderr


# --- in-process: positions, policies, seeds -------------------------------------------------------------------


def run_engine(options: Options, commands: list[str], wait: float = 0.0) -> list[str]:
    out = io.StringIO()
    engine = UciServer(out=out, options=options)
    for command in commands:
        engine.handle(command)
        if command.startswith("go"):
            engine._finish_search(stop=False)  # let each search finish on its own clock
    engine.run([])
    return out.getvalue().splitlines()


def test_start_fen_counts_as_startpos_and_other_fens_are_flagged(untrained_chess_model: Path) -> None:
    options = Options(model=str(untrained_chess_model), decoding=DecodingSettings(seed=7, temperature=1.0))
    as_fen = run_engine(options, [f"position fen {chess.STARTING_FEN} moves e2e4", "go movetime 5000"])
    as_startpos = run_engine(options, ["position startpos moves e2e4", "go movetime 5000"])
    assert as_fen[-1] == as_startpos[-1]  # same seed, same position: the same move
    assert not any("off its training distribution" in line for line in as_fen)
    other = run_engine(options, ["position fen 4k3/8/8/8/8/8/8/R3K3 w Q - 0 1", "go movetime 5000"])
    assert any("off its training distribution" in line for line in other)
    assert chess.Move.from_uci(other[-1].split()[1]) in chess.Board("4k3/8/8/8/8/8/8/R3K3 w Q - 0 1").legal_moves


def test_seed_makes_moves_reproducible(untrained_chess_model: Path) -> None:
    commands = []
    for moves in ("", "e2e4", "e2e4 e7e5", "d2d4", "g1f3 g8f6", "c2c4 c7c5"):
        commands += [f"position startpos moves {moves}".strip(), "go movetime 5000"]

    def moves_with(seed: int) -> list[str]:
        options = Options(model=str(untrained_chess_model), decoding=DecodingSettings(seed=seed, temperature=1.0))
        lines = run_engine(options, commands)
        return [line for line in lines if line.startswith("bestmove")]

    assert moves_with(1) == moves_with(1)
    assert moves_with(1) != moves_with(2)  # temperature 1 over a near-uniform model: seeds matter


def test_policies_raw_and_retry_fall_back_to_legal_moves(untrained_chess_model: Path) -> None:
    board = chess.Board()
    for policy, fallback in (("raw", "mask"), ("retry", "mask"), ("retry", "random"), ("mask", "mask")):
        lines = run_engine(Options(model=str(untrained_chess_model),
                                           decoding=DecodingSettings(policy=policy, fallback=fallback, temperature=1.0)),
                           ["position startpos", "go movetime 5000"])
        assert chess.Move.from_uci(lines[-1].split()[1]) in board.legal_moves
        notes = [line for line in lines if "not legal" in line]
        if policy == "mask":
            assert not notes
        else:
            assert notes and f"fallback {fallback}" in notes[0]
            if policy == "retry":
                assert "5 sample(s)" in notes[0]


def test_retry_policy_takes_karvonens_five_samples(untrained_chess_model: Path) -> None:
    player = load_model_player(str(untrained_chess_model), "chess", policy="retry", temperature=1.0)
    player.reset(0)
    move = player.choose(ChessGame())
    assert isinstance(move, InvalidMove) and player.last_samples == 5  # an untrained model never gets it right
    masked = player.choose_masked(ChessGame(), [chess.Move.from_uci("g1f3")])
    assert masked == chess.Move.from_uci("g1f3")


def test_searchmoves_restricts_the_choice(untrained_chess_model: Path) -> None:
    lines = run_engine(Options(model=str(untrained_chess_model), decoding=DecodingSettings(temperature=1.0)),
                       ["position startpos", "go movetime 5000 searchmoves a2a3 h2h4"])
    assert lines[-1] in ("bestmove a2a3", "bestmove h2h4")


def test_time_budget_and_go_parsing() -> None:
    words = "wtime 60000 btime 1000 winc 1000 binc 0 movestogo 20".split()
    white, black = (SearchLimits.from_go(words, white_to_move=turn) for turn in (True, False))
    assert (white.time_ms, white.opponent_time_ms, white.increment_ms, white.movestogo) == (60000, 1000, 1000, 20)
    assert white.go_words(white_to_move=True) == words and black.go_words(white_to_move=False) == words
    assert think_time(white, 100) == pytest.approx(60 / 20 + 0.75 - 0.1)
    assert think_time(black, 100) == pytest.approx(0.005)  # never more than the clock allows
    assert think_time(SearchLimits.from_go(["movetime", "500"], white_to_move=True), 100) == pytest.approx(0.4)
    assert think_time(SearchLimits.from_go(["infinite"], white_to_move=True), 100) is None
    assert think_time(SearchLimits.from_go(["depth", "5"], white_to_move=True), 100) is None
    odd = SearchLimits.from_go("wtime abc searchmoves e2e4 d2d4 btime 30 nodes 0".split(), white_to_move=True)
    assert odd.time_ms is None and odd.searchmoves == ("e2e4", "d2d4") and odd.opponent_time_ms == 30
    assert odd.nodes is None  # out of range: skipped, as an unreadable number is


def test_score_is_the_static_evaluation_after_the_move() -> None:
    assert static_evaluation(chess.Board(), chess.WHITE) == 0
    board = chess.Board("4k3/8/8/8/8/8/3q4/3QK3 w - - 0 1")
    assert score_after(board, chess.Move.from_uci("d1d2"))[1] > 800  # takes the queen
    mate = chess.Board("6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1")
    assert score_after(mate, chess.Move.from_uci("a1a8")) == ("mate", 1)


# --- long games and the context ------------------------------------------------------------------------------


def test_fit_context_keeps_the_header_and_moves_the_cut_in_steps() -> None:
    tokens = list(range(100))
    assert fit_context(tokens, 120, 1, range(1, 100, 2)) == tokens
    cuts = set()
    for length in range(41, 100):
        kept = fit_context(tokens[:length], 40, 1, range(1, length, 2))
        assert len(kept) <= 40 and kept[0] == 0 and kept[-1] == length - 1 and kept[1] % 2 == 1
        cuts.add(kept[1])
    assert len(cuts) <= 4  # the window moves a few times, not at every token

    codec = PgnCharCodec()
    tokens = codec.text_to_tokens(";1.e4 e5 2.Nf3 Nc6 3.Bb5 a6 4.")
    header, starts = codec.cut_points(tokens)
    assert header == 1 and [codec.tokens_to_text(tokens[s:s + 2]) for s in starts] == ["2.", "3.", "4."]
    moves = MoveTokenCodec(start_position=True)
    game = ChessGame("4k3/8/8/8/8/8/8/R3K3 w Q - 0 1")
    for uci in ("a1a2", "e8d8", "a2a3"):
        game.push(chess.Move.from_uci(uci))
    header, starts = moves.cut_points(moves.prefix_tokens(game))
    assert header == 73 and starts == [73, 75]


def test_long_game_cost_per_move_stays_bounded(tmp_path: Path) -> None:
    """A game three times the context: every move stays legal and reads at most one context of tokens;
    on average far less, because the cut moves only every half context."""
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=32, block_size=128, n_layer=1, n_head=2, n_embd=32))
    player = ModelPlayer(model, PgnCharCodec(), settings=DecodingSettings(temperature=1.0, policy="mask"))
    game = ChessGame()
    per_move = []
    codec = PgnCharCodec()
    while game.outcome() is None and len(game.history) < 120:
        full = codec.prefix_tokens(game)  # the whole text re-encoded: what the player builds move by move
        assert player.context(game) == fit_context(full, 128 - codec.max_move_tokens, *codec.cut_points(full))
        assert player.context(game) is player.context(game)  # asked again (a fallback), not built again
        before = player.tokens_read
        move = player.choose(game)
        per_move.append(player.tokens_read - before)
        game.push(move)
    assert len(codec.prefix_tokens(game)) > 3 * 128
    assert max(per_move) <= 128
    assert sum(per_move) / len(per_move) < 128 / 4


# --- whole games through python-chess's UCI client ----------------------------------------------------------


def play_timed_game(engine: chess.engine.SimpleEngine, stockfish: chess.engine.SimpleEngine, engine_color: chess.Color,
                    base: float, increment: float, max_plies: int = 200) -> tuple[chess.Board, float]:
    """A game in which our engine plays on a real clock (its thinking time measured by the wall clock, as a
    GUI does) and Stockfish at a fixed number of nodes (so that a loaded machine cannot make it lose on
    time). Returns the final board and the engine's clock."""
    engine.ping()  # a GUI waits for readyok (the model loads) before it starts the clock
    board = chess.Board()
    clocks = {chess.WHITE: base, chess.BLACK: base}
    while not board.is_game_over(claim_draw=True) and board.ply() < max_plies:
        if board.turn == engine_color:
            limit = chess.engine.Limit(white_clock=clocks[chess.WHITE], black_clock=clocks[chess.BLACK],
                                       white_inc=increment, black_inc=increment)
            started = time.monotonic()
            result = engine.play(board, limit, info=chess.engine.INFO_SCORE)
            clocks[board.turn] -= time.monotonic() - started
            assert clocks[board.turn] > 0, f"lost on time at ply {board.ply()}"
            clocks[board.turn] += increment
            assert result.info.get("score") is not None
        else:
            result = stockfish.play(board, chess.engine.Limit(nodes=200))
        assert result.move is not None and result.move in board.legal_moves
        board.push(result.move)
    return board, clocks[engine_color]


@pytest.mark.parametrize("engine_color", [chess.WHITE, chess.BLACK])
def test_shipped_model_plays_whole_games_against_stockfish_on_a_clock(engine_color: chess.Color) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    engine = chess.engine.SimpleEngine.popen_uci([*GAMEGPT, "--model", "chessgpt"], env=env, timeout=30)
    stockfish = chess.engine.SimpleEngine.popen_uci(find_stockfish())
    try:
        assert engine.id["name"].startswith("ChessGPT")
        engine.configure({"Seed": 3, "Temperature": "1.0", "Move Overhead": 50})
        stockfish.configure({"Skill Level": 0, "Threads": 1, "Hash": 16})
        board, clock = play_timed_game(engine, stockfish, engine_color, base=3.0, increment=0.05)
        assert board.ply() >= 10 and clock > 0
        pgn = chess.pgn.Game.from_board(board)
        assert chess.pgn.read_game(io.StringIO(str(pgn))).end().board().fen() == board.fen()
    finally:
        engine.quit()
        stockfish.quit()


def test_engine_answers_under_a_nearly_empty_clock() -> None:
    """With 30 ms left and a 100 ms move overhead, it still answers at once with a legal move."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    engine = chess.engine.SimpleEngine.popen_uci([*GAMEGPT, "--model", "chessgpt"], env=env, timeout=30)
    try:
        board = chess.Board()
        for uci in ("e2e4", "e7e5", "g1f3"):
            board.push_uci(uci)
        engine.ping()  # isready: the model loads here
        started = time.monotonic()
        result = engine.play(board, chess.engine.Limit(white_clock=0.03, black_clock=0.03))
        assert result.move in board.legal_moves
        assert time.monotonic() - started < 1.0
    finally:
        engine.quit()


# --- foreign checkpoints and the terminal ------------------------------------------------------------------------


def test_karvonen_nanogpt_checkpoint_plays_through_the_engine(tmp_path: Path) -> None:
    """A checkpoint in Karvonen's layout (written here: `_orig_mod.` keys, model_args, meta.pkl) is a UCI engine."""
    import pickle

    from gamegpt.games.chess_codecs import PGN_VOCABULARY

    torch.manual_seed(2)
    args = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 1024, "bias": False, "vocab_size": 32,
            "dropout": 0.0}
    model = GPT(GPTConfig(**args))
    torch.save({"model": {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}, "model_args": args,
                "iter_num": 600000, "best_val_loss": torch.tensor(0.9)}, tmp_path / "ckpt.pt")
    with open(tmp_path / "meta.pkl", "wb") as handle:
        pickle.dump({"vocab_size": 32, "itos": dict(enumerate(PGN_VOCABULARY)),
                     "stoi": {c: i for i, c in enumerate(PGN_VOCABULARY)}}, handle)
    lines = run_engine(Options(model=str(tmp_path / "ckpt.pt"), decoding=DecodingSettings(policy="retry")),
                       ["isready", "position startpos moves e2e4 c7c5", "go movetime 5000"])
    assert not any("cannot load" in line for line in lines)
    board = chess.Board()
    for uci in ("e2e4", "c7c5"):
        board.push_uci(uci)
    assert chess.Move.from_uci(lines[-1].split()[1]) in board.legal_moves


def test_play_chess_in_the_terminal(untrained_chess_model: Path) -> None:
    from click.testing import CliRunner

    from gamegpt.cli import main

    result = CliRunner().invoke(main, ["play", "chess", "--model", str(untrained_chess_model), "--seed", "1"],
                                input="e4\nzz9\ne1e3\nNf3\nquit\n")
    assert result.exit_code == 0, result.output
    assert "r n b q k b n r" in result.output and "a b c d e f g h" in result.output
    assert result.output.count("model plays") == 2
    assert "not a move" in result.output and "illegal here: e1e3" in result.output
    assert "you left the game" in result.output
    black = CliRunner().invoke(main, ["play", "chess", "--model", str(untrained_chess_model), "--as", "black"],
                               input="quit\n")
    assert black.exit_code == 0 and black.output.startswith("model plays")
    bad = CliRunner().invoke(main, ["play", "chess", "--model", str(untrained_chess_model), "--fen", "nonsense"])
    assert bad.exit_code == 2 and "bad FEN" in bad.output
