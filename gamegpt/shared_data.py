"""Where the shared reference data (games, openings, puzzles) lives: `$GAMEGPT_DATA` if set, else
`../shared/data` beside the project checkout. Nothing is downloaded or copied into the project."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The data directory (it may not exist: callers that need it check)."""
    override = os.environ.get("GAMEGPT_DATA")
    return Path(override).expanduser() if override else PROJECT_ROOT.parent / "shared" / "data"


def shared_file(*parts: str) -> Path | None:
    """A file under the data directory, or None if it is not there."""
    path = shared_data_dir().joinpath(*parts)
    return path if path.exists() else None
