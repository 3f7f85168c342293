"""What ships inside the package (gamegpt/models, gamegpt/data_files) is there, documented and found; what
does not ship is optional. The installed-wheel check is tests/test_wheel_install.py."""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gamegpt import resources
from gamegpt.arena.puzzle_file import read_puzzles
from gamegpt.engine.model_player import resolve_model_path
from gamegpt.errors import UserError
from gamegpt.eval.openings import default_book, load_openings

REPO = Path(__file__).resolve().parents[1]
MAX_SHIPPED_MODEL_BYTES = 100 * 1024 * 1024


def test_shipped_models_live_in_the_package_and_stay_small() -> None:
    models = resources.shipped_models_dir()
    assert models == Path(resources.__file__).parent / "models"
    assert not (REPO / "models").exists(), ("shipped models live in gamegpt/models/ (package data, in the wheel); "
                                            "move models/<name> there with git mv")
    names = [p.name for p in sorted(models.iterdir()) if p.is_dir()]
    assert {"chessgpt", "tictactoe"} <= set(names)
    for name in names:
        for part in ("config.json", "README.md"):
            assert (models / name / part).is_file(), f"gamegpt/models/{name} has no {part}"
    total = sum(p.stat().st_size for p in models.rglob("*") if p.is_file())
    assert total < MAX_SHIPPED_MODEL_BYTES, f"shipped models take {total / 2**20:.1f} MB (limit 100 MB)"


def test_the_wheel_declares_the_package_data_and_a_licence() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    package_data = config["options.package_data"]["gamegpt"].split()
    assert "models/**/*" in package_data and "data_files/**/*" in package_data
    assert config["metadata"]["license"] == "MIT" and (REPO / config["metadata"]["license_files"]).is_file()
    assert "MIT License" in (REPO / "LICENSE").read_text()
    torch = [r for r in config["options"]["install_requires"].split("\n") if r.strip().startswith("torch")]
    assert torch == ["torch>=2.5"], torch  # a lower bound: a CUDA build or a later torch installs beside it
    assert 'pip install -q "torch==2.13.0"' in (REPO / "setup.sh").read_text()  # setup.sh pins the CPU build


def test_every_data_file_is_listed_with_its_source_licence_and_hash() -> None:
    data = resources.data_file()
    readme = (data / "README.md").read_text()
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file() and p.name != "README.md")
    assert files == sorted(["openings/2moves_v2.pgn", "openings/lichess_openings.tsv",
                            "puzzles/lichess_puzzles_1000.csv"])
    for name in files:
        row = next((line for line in readme.splitlines() if line.startswith(f"| {name} |")), None)
        assert row is not None, f"{name} is not in gamegpt/data_files/README.md"
        assert "CC0" in row
        digest = hashlib.sha256((data / name).read_bytes()).hexdigest()
        assert digest in row, f"{name}: the README's sha256 is not the file's ({digest})"


def test_defaults_read_the_shipped_data() -> None:
    book = Path(default_book() or "")
    assert book == resources.data_file(*resources.OPENING_BOOK) and book.is_file()
    openings = load_openings(book, count=3, seed=0)
    assert len(openings) == 3 and all(len(o.moves) == 4 for o in openings)  # 2 moves each side
    assert len(load_openings(resources.data_file(*resources.NAMED_OPENINGS), order="sequential")) > 3000
    assert read_puzzles(resources.data_file(*resources.PUZZLE_SAMPLE)).rows == 1000


def test_one_resolver_for_model_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(resources.MODELS_ENV, raising=False)
    shipped = resources.shipped_models_dir()
    assert resolve_model_path("tictactoe") == shipped / "tictactoe"
    assert resolve_model_path("models/tictactoe") == shipped / "tictactoe"  # the spelling of before the move
    assert resolve_model_path(str(shipped / "chessgpt")) == shipped / "chessgpt"
    with pytest.raises(UserError, match=r"model not found: nope .*names: .*chessgpt, .*tictactoe") as error:
        resolve_model_path("nope")
    assert "\n" not in str(error.value)
    for not_a_name in ("../tictactoe", "models/../tictactoe", "a/b/c"):
        assert resources.find_model(not_a_name) is None
    # $GAMEGPT_MODELS is searched first, and a recipe's --install writes there
    extra = tmp_path / "more-models"
    (extra / "tictactoe").mkdir(parents=True)
    (extra / "tictactoe" / "config.json").write_text("{}")
    monkeypatch.setenv(resources.MODELS_ENV, str(extra))
    assert resolve_model_path("tictactoe") == extra / "tictactoe"
    assert resolve_model_path("chessgpt") == shipped / "chessgpt"
    assert resources.install_dir() == extra and "tictactoe" in resources.model_names()


def test_an_engine_that_cannot_load_its_model_says_so_on_stderr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-m", "gamegpt.cli", "uci", "--model", str(tmp_path / "missing")],
                          input="uci\nisready\nposition startpos\ngo nodes 1\nisready\nquit\n", capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0
    assert re.search(r"^info string cannot load model .*missing", done.stdout, re.M), done.stdout
    assert re.search(r"^bestmove [a-h][1-8][a-h][1-8]", done.stdout, re.M)  # a legal move anyway
    lines = [line for line in done.stderr.splitlines() if "cannot load model" in line]
    assert len(lines) == 1 and "missing" in lines[0] and "random legal moves" in lines[0], done.stderr
