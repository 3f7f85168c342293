"""What ships inside the package, found the same way from a clone and from an installed wheel
(`importlib.resources`):

  * `gamegpt/models/<name>/`: the default models (`chessgpt`, `tictactoe`, ...), each with its card;
    a model name given to any command (`--model tictactoe`, `model:path=chessgpt`) is looked up here,
    after `$GAMEGPT_MODELS` if that is set.
  * `gamegpt/data_files/`: small data read at run time (the default opening book, the named openings, a
    Lichess puzzle sample); `gamegpt/data_files/README.md` names each file's source and licence.

The large corpora (TWIC games, Stockfish self-play) do not ship: see `gamegpt.shared_data`.
This module imports nothing of the package, so every layer may use it.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

MODELS_ENV = "GAMEGPT_MODELS"
"""An extra directory of named models, searched before the shipped ones."""

OPENING_BOOK = ("openings", "2moves_v2.pgn")
NAMED_OPENINGS = ("openings", "lichess_openings.tsv")
PUZZLE_SAMPLE = ("puzzles", "lichess_puzzles_1000.csv")


def package_dir() -> Path:
    """The installed `gamegpt` package directory. The package must be installed as files (not zipped):
    models are read by path."""
    root = resources.files("gamegpt")
    if not isinstance(root, Path):
        raise RuntimeError(f"gamegpt is not installed as files on disk ({root!r}); its models cannot be read")
    return root


def shipped_models_dir() -> Path:
    """The package's own model directory, `gamegpt/models`."""
    return package_dir() / "models"


def model_dirs() -> list[Path]:
    """Where model names are looked up, in order: `$GAMEGPT_MODELS` if set, then the shipped models."""
    extra = os.environ.get(MODELS_ENV)
    return ([Path(extra).expanduser()] if extra else []) + [shipped_models_dir()]


def install_dir() -> Path:
    """Where a recipe's `--install` puts a model: `$GAMEGPT_MODELS` if set, else the package's models."""
    return model_dirs()[0]


def model_names() -> list[str]:
    """The names of the models found in `model_dirs()` (a directory with a config.json or a ckpt.pt)."""
    names: set[str] = set()
    for directory in model_dirs():
        if directory.is_dir():
            names.update(p.name for p in directory.iterdir()
                         if p.is_dir() and ((p / "config.json").exists() or (p / "ckpt.pt").exists()))
    return sorted(names)


def find_model(name: str) -> Path | None:
    """The directory of the model called `name` (first of `model_dirs()`), or None. A leading `models/`
    is allowed (`models/tictactoe`), as the models lived at the top of the repository before."""
    parts = Path(name).parts
    if len(parts) == 2 and parts[0] == "models":
        parts = parts[1:]
    if len(parts) != 1 or parts[0] in (".", ".."):
        return None
    for directory in model_dirs():
        candidate = directory / parts[0]
        if candidate.is_dir():
            return candidate
    return None


def data_file(*parts: str) -> Path:
    """A file of `gamegpt/data_files` (e.g. `data_file(*OPENING_BOOK)`); it always ships with the package."""
    return package_dir().joinpath("data_files", *parts)
