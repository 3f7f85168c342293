"""PGN import on real files (fischer.pgn, python-chess's edge cases) and the legality evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import chess.pgn
import pytest

from gamegpt.engine.model_player import load_model_player
from gamegpt.errors import RecordsError
from gamegpt.eval.legality import format_legality_table, legal_move_rate
from gamegpt.arena.records import read_records
from gamegpt.arena.pgn_import import import_pgn
from gamegpt.selfplay.runner import run_selfplay
from gamegpt.shared_data import shared_data_dir

DATA = shared_data_dir()
EDGE = DATA / "games" / "edge-cases"


def test_fischer_games_import_exactly(tmp_path: Path) -> None:
    report = import_pgn([DATA / "games" / "fischer.pgn"], tmp_path / "fischer.jsonl")
    records = read_records(tmp_path / "fischer.jsonl")
    assert report.imported == len(records) == 827 and not report.skipped
    with open(DATA / "games" / "fischer.pgn", encoding="utf-8-sig") as handle:
        for record in records[:50]:
            game = chess.pgn.read_game(handle)
            assert record.moves == [m.uci() for m in game.mainline_moves()]
            assert record.result == game.headers["Result"]
            assert record.players[0]["name"] == game.headers["White"]


def test_edge_cases_skip_variants_and_broken_games(tmp_path: Path) -> None:
    report = import_pgn(sorted(EDGE.glob("*.pgn")), tmp_path / "edge.jsonl")
    assert report.imported == len(read_records(tmp_path / "edge.jsonl"))
    assert report.skipped["variant: fischerandom"] == 4
    assert report.skipped["variant: Crazyhouse"] == 2 and report.skipped["variant: Antichess"] == 2
    assert report.skipped["broken: null move"] == 1 and report.skipped["no moves"] == 2
    assert report.read == 22


def test_broken_and_truncated_pgn_never_stop_the_import(tmp_path: Path) -> None:
    good = (EDGE / "molinari-bordais-1979.pgn").read_text()
    broken = tmp_path / "broken.pgn"
    broken.write_text(good + "\n\n[Event \"bad\"]\n\n1. e4 e5 2. Ke3 Nf6 *\n\n" + good + "\n[Event \"cut\"]\n\n1. e4 e5 2. Nf")
    report = import_pgn([broken], tmp_path / "out.jsonl")
    assert report.imported == 3, report.describe()  # both good games and the cut one's legal start
    assert sum(v for k, v in report.skipped.items() if k.startswith("broken")) == 1
    cut = read_records(tmp_path / "out.jsonl")[-1]
    assert cut.moves == ["e2e4", "e7e5"] and cut.result == "*"
    with pytest.raises(RecordsError, match="cannot read"):
        import_pgn([tmp_path / "missing.pgn"], tmp_path / "out2.jsonl")


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
