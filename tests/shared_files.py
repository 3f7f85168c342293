"""The optional reference data that does not ship with the package (Fischer's games, the TWIC corpus):
read from `$GAMEGPT_DATA` or `../shared/data` (`gamegpt.shared_data`). A test or fixture that needs a file
calls `shared(...)` and is skipped, saying which file, when the file is not there. What ships (the opening
books, the puzzle sample: `gamegpt.resources`) and `tests/data/` are always there: tests read those directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamegpt.shared_data import shared_data_dir

TEST_DATA = Path(__file__).resolve().parent / "data"
EDGE_CASES = TEST_DATA / "pgn"
"""Small PGN files written for these tests (see its README.md)."""


def shared(*parts: str) -> Path:
    """The path of an optional shared data file; skips the calling test when it is not there."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the optional data file {'/'.join(parts)}, not found in {shared_data_dir()} "
                    "(keep the checkout beside ../shared or set GAMEGPT_DATA)")
    return path
