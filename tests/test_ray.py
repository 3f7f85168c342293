"""Runs on Ray: the records of a local run, from actors of a local Ray instance that the tests start
(2 CPUs, loopback only); a killed actor loses and duplicates no game; a killed driver resumes; without
--ray Ray is never imported, and without Ray installed --ray is one line and exit code 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from gamegpt.arena.records import read_records
from gamegpt.eval.tournament import run_tournament
from gamegpt.selfplay.runner import run_selfplay

ROOT = Path(__file__).resolve().parents[1]
MODEL = "model:path=tictactoe,temperature=1,policy=mask"
CLI = "import sys; from gamegpt.cli import main; sys.argv = ['gamegpt'] + sys.argv[1:]; main()"


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A Ray instance of 2 CPUs for this module, on 127.0.0.1 (Ray binds the machine's address unless
    told it is no cluster: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read when ray is imported)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    # Ray runs its workers at nice 15: on a busy machine they (and their Stockfish) starve and time out;
    # the local workers they are compared with run at the tests' own priority
    os.environ["RAY_worker_niceness"] = "0"
    ray = pytest.importorskip("ray", reason="the ray extra (pip install 'gamegpt[ray]'; setup.sh installs it)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address
    try:
        yield address
    finally:
        ray.shutdown()


def _records(path: Path) -> list[str]:
    lines = sorted(record.to_json() for record in read_records(path))
    indices = [record.index for record in read_records(path)]
    assert len(indices) == len(set(indices)), "a game is in the file twice"
    return lines


def test_selfplay_on_ray_writes_the_local_records(tmp_path: Path, ray_address: str) -> None:
    specs = [MODEL, "random"]
    local = run_selfplay("tictactoe", specs, n_games=24, seed=5, out=tmp_path / "local.jsonl", progress=False)
    on_ray = run_selfplay("tictactoe", specs, n_games=24, seed=5, out=tmp_path / "ray.jsonl", progress=False,
                          workers=2, ray=ray_address)
    assert _records(on_ray.records_path) == _records(local.records_path)
    assert on_ray.results == local.results and on_ray.games_new == 24
    # each actor playing 3 games at once, model moves batched: the same records again
    batched = run_selfplay("tictactoe", specs, n_games=24, seed=5, out=tmp_path / "batched.jsonl", progress=False,
                           workers=2, games_at_once=3, ray="auto")
    assert _records(batched.records_path) == _records(local.records_path)


def test_tournament_on_ray_writes_the_local_records(tmp_path: Path, ray_address: str) -> None:
    players = ["sf1=stockfish:nodes=1", "sf20=stockfish:nodes=20", "random"]
    kwargs: dict[str, Any] = dict(max_plies=40, seed=3, progress=False)
    local = run_tournament(players, out_dir=tmp_path / "local", workers=1, **kwargs)
    on_ray = run_tournament(players, out_dir=tmp_path / "ray", workers=2, ray=ray_address, **kwargs)
    assert on_ray.games_total == local.games_total == 6
    assert _records(on_ray.records_path) == _records(local.records_path)
    assert on_ray.standings == local.standings


def _actor_pids() -> list[int]:
    """The Ray actor processes playing games, among this process's descendants (our Ray instance)."""
    children: dict[int, list[int]] = {}
    titles: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            titles[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        if titles.get(pid, "").startswith("ray::GameActor"):
            found.append(pid)
        todo += children.get(pid, [])
    return found


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_killed_actor_loses_no_game_and_duplicates_none(tmp_path: Path, ray_address: str) -> None:
    specs = [MODEL, MODEL]
    n_games = 160
    local = run_selfplay("tictactoe", specs, n_games=n_games, seed=9, out=tmp_path / "local.jsonl", progress=False)
    out = tmp_path / "ray.jsonl"
    killed: list[tuple[int, int]] = []

    def kill_one_actor() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _lines(out) < 8:
            time.sleep(0.02)
        pids = _actor_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append((pids[0], _lines(out)))

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    result = run_selfplay("tictactoe", specs, n_games=n_games, seed=9, out=out, progress=False, workers=2,
                          ray=ray_address)
    killer.join(timeout=10)
    assert killed and killed[0][1] < n_games, f"no actor was killed mid-run: {killed}"
    assert result.games_total == n_games
    assert _records(out) == _records(local.records_path)


def test_a_killed_driver_resumes(tmp_path: Path, ray_address: str) -> None:
    """A `gamegpt selfplay --ray` driver killed (SIGKILL) mid-run; its actors die with it (Ray ends a dead
    driver's actors); the same run called again plays exactly the games its file lacks."""
    n_games = 150
    out = tmp_path / "games.jsonl"
    command = [sys.executable, "-c", CLI, "selfplay", "tictactoe", "--x", MODEL, "--o", MODEL, "--games",
               str(n_games), "--seed", "4", "--out", str(out), "--workers", "2", "--ray", ray_address, "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _lines(out) < 10 and driver.poll() is None:
            time.sleep(0.02)
        assert driver.poll() is None, driver.communicate()
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    kept = _lines(out)
    assert 10 <= kept < n_games
    kept = len(list(read_records(out)))  # a line cut by the kill is not a record
    resumed = run_selfplay("tictactoe", [MODEL, MODEL], n_games=n_games, seed=4, out=out, progress=False, workers=2,
                           ray=ray_address)
    assert (resumed.games_new, resumed.games_total) == (n_games - kept, n_games)
    local = run_selfplay("tictactoe", [MODEL, MODEL], n_games=n_games, seed=4, out=tmp_path / "local.jsonl",
                         progress=False)
    assert _records(out) == _records(local.records_path)


def test_without_ray_option_ray_is_never_imported(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from gamegpt.cli import main\n"
        f"main(['selfplay', 'tictactoe', '--x', '{MODEL}', '--games', '4', '--games-at-once', '2', "
        f"'--out', {str(tmp_path / 'g.jsonl')!r}, '--no-progress'], standalone_mode=False)\n"
        "import gamegpt.arena.runs, gamegpt.eval.tournament, gamegpt.cli.tournament\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "print('no ray')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "no ray" in done.stdout and (tmp_path / "g.jsonl").exists()


@pytest.mark.parametrize("command", [["selfplay", "tictactoe", "--games", "2"],
                                     ["selfplay", "chess", "--games", "2"],
                                     ["tournament", "-p", "random", "-p", "stockfish:nodes=1"]])
def test_ray_option_without_ray_installed_is_one_line_exit_2(tmp_path: Path, command: list[str]) -> None:
    out = ["--out", str(tmp_path / ("games.jsonl" if command[0] == "selfplay" else "tournament"))]
    script = "import sys; sys.modules['ray'] = None\n" + CLI  # `import ray` now raises ImportError
    done = subprocess.run([sys.executable, "-c", script, *command, *out, "--ray", "auto"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: --ray needs Ray, an optional extra: pip install 'gamegpt[ray]'"
    assert not any(tmp_path.iterdir()), "nothing may be written"
