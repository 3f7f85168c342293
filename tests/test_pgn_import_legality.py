"""PGN import on real files (fischer.pgn and a slice of TWIC when the optional data is there; our own edge
cases in tests/data/pgn): the serial import, the chunked parallel one (the same bytes), a killed import that
resumes; and the legality evaluation."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess.pgn
import pytest

from gamegpt.engine.model_player import load_model_player
from gamegpt.errors import RecordsError
from gamegpt.eval.legality import format_legality_table, legal_move_rate
from gamegpt.arena.records import read_records
from gamegpt.arena.pgn_import import ImportReport, _chunks, import_pgn, parts_dir_for
from gamegpt.errors import UserError
from gamegpt.selfplay.runner import run_selfplay
from shared_files import EDGE_CASES, shared
from processes import children_of, wait_gone

EDGE = EDGE_CASES  # written for these tests: tests/data/pgn/README.md
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@pytest.fixture(scope="module")
def fischer_serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImportReport]:
    """fischer.pgn imported the serial way (the reference), once for the module."""
    out = tmp_path_factory.mktemp("fischer") / "fischer.jsonl"
    return out, import_pgn([shared("games", "fischer.pgn")], out)


def test_fischer_games_import_exactly(fischer_serial: tuple[Path, ImportReport]) -> None:
    path, report = fischer_serial
    records = read_records(path)
    assert report.imported == len(records) == 827 and not report.skipped
    with open(shared("games", "fischer.pgn"), encoding="utf-8-sig") as handle:
        for record in records[:50]:
            game = chess.pgn.read_game(handle)
            assert record.moves == [m.uci() for m in game.mainline_moves()]
            assert record.result == game.headers["Result"]
            assert record.players[0]["name"] == game.headers["White"]


def test_edge_cases_skip_variants_and_broken_games(tmp_path: Path) -> None:
    report = import_pgn(sorted(EDGE.glob("*.pgn")), tmp_path / "edge.jsonl")
    records = read_records(tmp_path / "edge.jsonl")
    assert report.imported == len(records) == 6
    assert report.skipped["variant: Chess960"] == 2
    assert report.skipped["variant: Crazyhouse"] == 1 and report.skipped["variant: Antichess"] == 1
    assert report.skipped["broken: null move"] == 1 and report.skipped["no moves"] == 1
    assert [k for k in report.skipped if k.startswith("broken: illegal san: 'Ke3'")]
    assert report.read == 13
    by_white = {record.players[0]["name"]: record for record in records}
    opera = by_white["Morphy, Paul"]  # comments, NAGs and a variation around the main line
    assert len(opera.moves) == 33 and opera.moves[-1] == "d1d8" and opera.termination == "checkmate"
    assert by_white["Légal de Kermeur, François Antoine"].result == "1-0"  # after a byte-order mark
    assert by_white["engine log"].moves == ["e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6"]  # UCI notation
    assert by_white["A"].moves == ["f2f3", "e7e5", "g2g4", "d8h4"] and by_white["C"].result == "1-0"  # CRLF
    assert by_white["?"].start == "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"  # standard chess from a set-up position


def test_broken_and_truncated_pgn_never_stop_the_import(tmp_path: Path) -> None:
    good = (EDGE / "opera-game-1858.pgn").read_text()
    broken = tmp_path / "broken.pgn"
    broken.write_text(good + "\n\n[Event \"bad\"]\n\n1. e4 e5 2. Ke3 Nf6 *\n\n" + good + "\n[Event \"cut\"]\n\n1. e4 e5 2. Nf")
    report = import_pgn([broken], tmp_path / "out.jsonl")
    assert report.imported == 3, report.describe()  # both good games and the cut one's legal start
    assert sum(v for k, v in report.skipped.items() if k.startswith("broken")) == 1
    cut = read_records(tmp_path / "out.jsonl")[-1]
    assert cut.moves == ["e2e4", "e7e5"] and cut.result == "*"
    with pytest.raises(RecordsError, match="cannot read"):
        import_pgn([tmp_path / "missing.pgn"], tmp_path / "out2.jsonl")
    (tmp_path / "not-gzip.pgn.gz").write_text(good)
    for workers in (None, 1):
        with pytest.raises(RecordsError, match="cannot read PGN file .*not-gzip.pgn.gz"):
            import_pgn([tmp_path / "not-gzip.pgn.gz"], tmp_path / "out3.jsonl", workers=workers)


# --------------------------------------------------------------------------------- chunked, parallel, resumable
@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_import_writes_the_serial_bytes(workers: int, fischer_serial: tuple[Path, ImportReport],
                                                tmp_path: Path) -> None:
    serial_path, serial_report = fischer_serial
    report = import_pgn([shared("games", "fischer.pgn")], tmp_path / "fischer.jsonl", workers=workers, chunk_games=60)
    assert (tmp_path / "fischer.jsonl").read_bytes() == serial_path.read_bytes() and report == serial_report
    assert not parts_dir_for(tmp_path / "fischer.jsonl").exists()  # joined, then removed
    edge = sorted(EDGE.glob("*.pgn"))
    serial = import_pgn(edge, tmp_path / "edge-serial.jsonl")
    assert import_pgn(edge, tmp_path / "edge.jsonl", workers=workers, chunk_games=1) == serial
    assert (tmp_path / "edge.jsonl").read_bytes() == (tmp_path / "edge-serial.jsonl").read_bytes()
    limited = import_pgn(edge, tmp_path / "edge-9.jsonl", workers=workers, chunk_games=4, limit=9)
    assert limited == import_pgn(edge, tmp_path / "edge-9-serial.jsonl", limit=9) and limited.read == 9
    assert (tmp_path / "edge-9.jsonl").read_bytes() == (tmp_path / "edge-9-serial.jsonl").read_bytes()


def test_cuts_inside_a_game_are_joined_as_the_serial_import_reads_them(tmp_path: Path) -> None:
    good = (EDGE / "opera-game-1858.pgn").read_text()
    text = (good + "\n\n"
            '[Event "a comment holds a blank line and tags"]\n[Result "*"]\n\n'
            '1. e4 { see below\n\n[Event "not a game"]\n[Site "inside the comment"]\n\n} e5 2. Nf3 *\n\n'
            '[Event "tags with a blank line"]\n\n[White "Somebody"]\n[Result "1-0"]\n\n1. d4 d5 1-0\n\n'
            '[Event "bytes that are not UTF-8"]\n[White "M\u00fcller"]\n\n1. c4 *\n\n' + good)
    data = text.encode().replace("M\u00fcller".encode(), b"M\xfcller\xff").replace(b"\n", b"\r\n")
    data = b"\xef\xbb\xbf" + data  # a byte-order mark, Windows line ends, bytes that are not UTF-8
    plain, packed = tmp_path / "traps.pgn", tmp_path / "traps.pgn.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    assert any("{ see below" in chunk.text and "}" not in chunk.text for chunk in _chunks([plain], 1, None))
    serial = import_pgn([plain], tmp_path / "serial.jsonl")
    records = read_records(tmp_path / "serial.jsonl")
    assert serial.imported == len(records) == 5 and not serial.skipped
    assert records[1].moves == ["e2e4", "e7e5", "g1f3"] and records[2].players[0]["name"] == "Somebody"
    assert records[3].players[0]["name"] == "M\ufffdller\ufffd"
    expected = (tmp_path / "serial.jsonl").read_bytes()
    for workers in (None, 1, 2):
        assert import_pgn([packed], tmp_path / f"{workers}.jsonl", workers=workers, chunk_games=1) == serial
        assert (tmp_path / f"{workers}.jsonl").read_bytes() == expected


def test_an_import_resumes_from_its_parts_and_refuses_other_input(tmp_path: Path) -> None:
    fischer = shared("games", "fischer.pgn")
    fischer_text = fischer.read_text(encoding="utf-8-sig")
    first_games = tmp_path / "fischer-130.pgn"
    first_games.write_text("".join(chunk.text for chunk in _chunks([fischer], 10, 130)))
    truncated = tmp_path / "cut.pgn.gz"
    truncated.write_bytes(gzip.compress(fischer_text[:20000].encode())[:-100])
    out = tmp_path / "games.jsonl"
    with pytest.raises(RecordsError, match="cannot read PGN file .*cut.pgn.gz"):
        import_pgn([first_games, truncated], out, workers=1, chunk_games=50)
    parts = sorted(parts_dir_for(out).glob("chunk-*.jsonl"))
    assert [part.name for part in parts[:3]] == ["chunk-000000.jsonl", "chunk-000001.jsonl", "chunk-000002.jsonl"]
    written = {part: part.stat().st_mtime_ns for part in parts}
    with pytest.raises(RecordsError, match="cut.pgn.gz"):
        import_pgn([first_games, truncated], out, workers=1, chunk_games=50)
    assert {part: part.stat().st_mtime_ns for part in parts} == written  # finished chunks are not parsed again
    with pytest.raises(UserError, match="holds an unfinished import .* with other inputs"):
        import_pgn([first_games], out, workers=2, chunk_games=50)
    with pytest.raises(UserError, match="with other chunk games"):
        import_pgn([first_games, truncated], out, workers=1, chunk_games=40)
    assert not out.exists()


def slice_of_twic(path: Path, games: int) -> Path:
    """The first `games` games of the TWIC file, gzip-compressed as it is."""
    twic = shared("games", "twic-250k.pgn.gz")
    with gzip.open(twic, "rt", encoding="utf-8") as source, gzip.open(path, "wt", encoding="utf-8") as target:
        starts = 0
        for line in source:
            starts += line.startswith("[Event ")
            if starts > games:
                break
            target.write(line)
    return path


def test_a_killed_import_resumes_and_writes_what_a_straight_run_writes(tmp_path: Path) -> None:
    games = slice_of_twic(tmp_path / "twic-800.pgn.gz", 800)
    out = tmp_path / "twic.jsonl"
    parts_dir = parts_dir_for(out)
    command = [sys.executable, "-m", "gamegpt.cli", "data", "import-pgn", str(games), "--out", str(out),
               "--workers", "2", "--chunk-games", "80", "--no-progress"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and len(list(parts_dir.glob("chunk-*"))) < 3:
            time.sleep(0.02)
        workers = [pid for pid in children_of(process.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, "the import ended before it was killed"
    assert len(workers) == 2
    for pid in workers:  # orphans end themselves: they watch their parent
        wait_gone(pid, 15)
    finished = sorted(parts_dir.glob("chunk-*.jsonl"))
    assert 3 <= len(finished) < 10 and not out.exists()
    first_part = parts_dir / "chunk-000000.jsonl"
    marked = first_part.read_text().replace("89th Hastings Masters", "Kept from the first run")
    first_part.write_text(marked)  # a finished chunk is kept, not parsed again: its mark reaches the output

    other_chunks = [*command[:-2], "150", "--no-progress"]
    refused = subprocess.run(other_chunks, env=ENV, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "other chunk games" in refused.stderr

    resumed = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines() == [resumed.stdout.splitlines()[0], f"wrote {out}"]
    straight = import_pgn([games], tmp_path / "straight.jsonl")
    assert resumed.stdout.splitlines()[0] == straight.describe() and straight.read == 800
    after = out.read_bytes()
    assert b"Kept from the first run" in after and not parts_dir.exists()
    straight_bytes = (tmp_path / "straight.jsonl").read_bytes()
    assert after.replace(b"Kept from the first run", b"89th Hastings Masters") == straight_bytes


def test_legality_by_move_number(tiny_model: Path, tmp_path: Path) -> None:
    records_path = tmp_path / "held-out.jsonl"
    run_selfplay("tictactoe", ["newell-simon:noise=0.2", "random"], n_games=60, seed=99, out=records_path, progress=False)
    records = read_records(records_path)
    player = load_model_player(str(tiny_model), "tictactoe", temperature=1.0, policy="raw")
    result = legal_move_rate(player, records, move_numbers=(1, 3, 9), progress=False)
    assert result.positions[1] == 120  # White's and Black's first move of each game
    assert result.positions[9] == 0 and result.rate(9) is None  # tic-tac-toe has no 9th move pair
    assert 0.5 < result.rate(1) <= 1.0
    again = legal_move_rate(load_model_player(str(tiny_model), "tictactoe", temperature=1.0, policy="raw"),
                            records, move_numbers=(1, 3, 9), progress=False)
    assert again.to_dict() == result.to_dict()  # seeded: the same samples
    assert "move 3" in format_legality_table([result])
    json.dumps(result.to_dict())
