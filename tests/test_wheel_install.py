"""The package as a user installs it: a wheel built from this tree, installed (without dependencies) into a
fresh virtual environment in an empty temporary directory, with no ../shared beside it and no source tree on
the path. There `gamegpt uci` answers a `go` with the shipped model's move, a small default tournament
plays from the shipped opening book, and `gamegpt play tictactoe` runs in a pseudo-terminal.

The virtual environment sees the system's packages (`--system-site-packages`: torch, chess, ... without a
download); the editable install of the development tree is there too, so every check first makes sure
that `gamegpt` is imported from the virtual environment."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import chess
import chess.engine
import pytest

REPO = Path(__file__).resolve().parents[1]
NOT_BUILT = {".git", ".ci", "build", "dist", "runs", "data", "results", "tests", "bench", ".pytest_cache",
             ".benchmarks", ".venv", "__pycache__"}
"""Top-level entries of the checkout that a wheel never reads (and could be large)."""

pytestmark = pytest.mark.slow


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    top = Path(directory).resolve() == REPO
    return {n for n in names if (top and n in NOT_BUILT) or n == "__pycache__" or n.endswith(".egg-info")}


def user_env() -> dict[str, str]:
    """The environment of a user who has never seen this repository."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONUNBUFFERED", "GAMEGPT_DATA", "GAMEGPT_MODELS", "VIRTUAL_ENV")}
    return env


class Installed:
    def __init__(self, work: Path, venv: Path) -> None:
        self.work = work
        self.venv = venv
        self.env = user_env()
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=stdin)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source, dist, work = root / "source", root / "dist", root / "user"
    shutil.copytree(REPO, source, ignore=_copy_ignore)  # never build inside the checkout
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(source)], capture_output=True, text=True, timeout=300,
                           env=user_env())
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("gamegpt-*.whl"))
    assert len(wheels) == 1, wheels
    work.mkdir()
    assert not (work.parent / "shared").exists() and not any(work.iterdir())
    venv = work / ".venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                          capture_output=True, text=True, timeout=120, env=user_env())
    assert made.returncode == 0, made.stderr
    user = Installed(work, venv)
    # pip of the system, run by the environment's python, installs into the environment
    done = user.run(user.bin("python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheels[0]),
                    timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return user


def test_the_package_and_its_data_come_from_the_environment(installed: Installed) -> None:
    probe = ("import json, gamegpt, gamegpt.resources as r, gamegpt.shared_data as s\n"
             "from gamegpt.eval.openings import default_book\n"
             "from gamegpt.engine.model_player import resolve_model_path\n"
             "print(json.dumps({'package': gamegpt.__file__, 'book': default_book(), 'names': r.model_names(),\n"
             "  'chessgpt': str(resolve_model_path('chessgpt')), 'old_spelling': str(resolve_model_path('models/tictactoe')),\n"
             "  'shared': s.shared_file('games', 'fischer.pgn')}))\n")
    done = installed.run(installed.bin("python"), "-c", probe)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    venv = str(installed.venv.resolve())
    for key in ("package", "book", "chessgpt", "old_spelling"):
        assert str(Path(found[key]).resolve()).startswith(venv), (key, found[key])
    assert {"chessgpt", "tictactoe"} <= set(found["names"])
    assert found["shared"] is None  # the optional corpora are not there, and nothing pretends they are


def test_uci_plays_the_shipped_model(installed: Installed) -> None:
    stderr_path = installed.work / "uci-stderr.txt"
    with open(stderr_path, "w") as stderr:
        engine = chess.engine.SimpleEngine.popen_uci([installed.bin("gamegpt"), "uci"], cwd=installed.work,
                                                     env=installed.env, stderr=stderr, timeout=60)
        try:
            assert engine.id["name"].startswith("ChessGPT")
            engine.ping()  # isready: the model loads here
            board = chess.Board()
            for limit in (chess.engine.Limit(nodes=1), chess.engine.Limit(time=2.0)):
                result = engine.play(board, limit, info=chess.engine.INFO_ALL)
                assert result.move is not None and result.move in board.legal_moves
                # decoded by the model (forward passes counted as nodes), not the random fallback
                assert result.info.get("nodes", 0) > 0, result.info
                assert "random" not in str(result.info.get("string", "")), result.info
                board.push(result.move)
            # go movetime 100: a legal move in time (the model's, or an emergency move if the machine is slow)
            result = engine.play(board, chess.engine.Limit(time=0.1))
            assert result.move is not None and result.move in board.legal_moves
        finally:
            engine.quit()
    assert "cannot load" not in stderr_path.read_text()


def test_a_small_default_tournament(installed: Installed) -> None:
    out = installed.work / "tournament"
    done = installed.run(installed.bin("gamegpt"), "tournament", "-p", "model=model:path=chessgpt", "-p", "random",
                         "--opening-count", "1", "--max-plies", "16", "--workers", "1", "--out", str(out),
                         "--no-progress", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 new games" in done.stdout, done.stdout
    records = [json.loads(line) for line in (out / "games.jsonl").read_text().splitlines() if line.strip()]
    assert len(records) == 2
    text = (out / "games.jsonl").read_text() + (out / "games.pgn").read_text()
    assert "2moves_v2" in text  # the opening came from the shipped book


def _read_until(fd: int, pattern: re.Pattern[str], seen: list[str], timeout: float = 60) -> re.Match[str] | None:
    """Read the terminal into `seen` until `pattern` matches the text after what was consumed; None at its end."""
    deadline = time.monotonic() + timeout
    while True:
        text = "".join(seen)
        match = pattern.search(text)
        if match:
            seen[:] = [text[match.end():]]
            return match
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {pattern.pattern!r}; terminal shows:\n{text}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other end closed (Linux: EIO)
            chunk = b""
        if not chunk:
            return None
        seen.append(chunk.decode("utf-8", "replace"))


def test_play_tictactoe_in_a_terminal(installed: Installed) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([installed.bin("gamegpt"), "play", "tictactoe", "--seed", "1"], cwd=installed.work,
                            env=installed.env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    taken: set[int] = set()
    seen: list[str] = []
    step = re.compile(r"model plays (\d)|your move: |you win|the model wins|draw")
    transcript = ""
    try:
        while True:
            match = _read_until(master, step, seen)
            assert match is not None, "the game ended without a result"
            transcript += match.group(0) + "\n"
            if match.group(1) is not None:
                taken.add(int(match.group(1)))
            elif match.group(0) == "your move: ":
                cell = min(set(range(9)) - taken)
                taken.add(cell)
                os.write(master, f"{cell}\n".encode())
            else:
                break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert "model plays" in transcript and transcript.count("your move: ") >= 2, transcript
