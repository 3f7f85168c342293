"""Game records: one JSON object per line (JSONL), the format every arena writes and data reads.

A record holds the game name, the moves as text (tic-tac-toe: cells "0"-"8"; chess: UCI), the start
position if not standard, a description of both players, the result, how the game ended, and the seed
that reproduces it. Writers append one line per finished game and flush it, so a killed run loses at
most the games in flight; `read_records` then ignores a truncated last line.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from gamegpt.errors import RecordsError

RESULTS = ("1-0", "0-1", "1/2-1/2", "*")


@dataclass
class GameRecord:
    """One finished (or adjudicated) game."""

    game: str
    moves: list[str]
    players: list[dict[str, Any]]
    result: str
    termination: str
    seed: int | None = None
    index: int | None = None
    start: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def winner(self) -> int | None:
        """0 if the first side won, 1 if the second did, None for a draw or an unfinished game."""
        return {"1-0": 0, "0-1": 1}.get(self.result)

    def to_json(self) -> str:
        data = asdict(self)
        if not data["extra"]:
            del data["extra"]
        if data["start"] is None:
            del data["start"]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> "GameRecord":
        """Validate and build a record; raises ValueError naming the first problem."""
        if not isinstance(data, dict):
            raise ValueError("a record must be a JSON object")
        for key, kind in (("game", str), ("moves", list), ("result", str)):
            if not isinstance(data.get(key), kind):
                raise ValueError(f"field {key!r} is missing or not a {kind.__name__}")
        if not all(isinstance(m, str) for m in data["moves"]):
            raise ValueError("every move must be a string")
        if data["result"] not in RESULTS:
            raise ValueError(f"result {data['result']!r} is not one of {', '.join(RESULTS)}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(
            game=data["game"], moves=list(data["moves"]), result=data["result"],
            players=list(data.get("players") or []), termination=str(data.get("termination", "")),
            seed=data.get("seed"), index=data.get("index"), start=data.get("start"),
            extra={**data.get("extra", {}), **{k: v for k, v in data.items() if k not in known}},
        )


def iter_records(path: str | Path, *, allow_truncated_tail: bool = True) -> Iterator[GameRecord]:
    """Records of a JSONL file, in order. A malformed line raises RecordsError with its line number;
    a last line without a newline that does not parse (a write cut by a kill) is skipped when allowed."""
    path = Path(path)
    if not path.is_file():
        raise RecordsError(f"records file not found: {path}")
    try:
        with path.open("rb") as handle:
            lines = handle.read().split(b"\n")
    except OSError as exc:
        raise RecordsError(f"cannot read records file {path}: {exc.strerror}") from None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_tail = number == len(lines)  # no newline after it
        try:
            yield GameRecord.from_dict(json.loads(raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            if is_tail and allow_truncated_tail:
                return
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise RecordsError(f"{path}:{number}: malformed game record: {reason}") from None


def read_records(path: str | Path) -> list[GameRecord]:
    """All records of a JSONL file (see `iter_records`)."""
    return list(iter_records(path))


class RecordWriter:
    """Appends records to a JSONL file, one flushed line each. Opening an existing file first cuts off a
    truncated last line left by a killed writer, so appending continues a clean file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_truncated_tail(self.path)
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, record: GameRecord) -> None:
        self._handle.write(record.to_json() + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_truncated_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)
