"""Chess through the whole pipeline at toy size: real games → shards in either codec → training →
a model that plays (mask: only legal moves) and is measured by the legality evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gamegpt.core.data import read_meta
from gamegpt.core.train import TrainConfig, train
from gamegpt.engine.model_player import load_model_player
from gamegpt.arena.play import play_game
from gamegpt.eval.legality import legal_move_rate
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import RandomPlayer
from gamegpt.arena.records import read_records
from gamegpt.selfplay.dataset import records_to_shards
from gamegpt.arena.pgn_import import import_pgn
from shared_files import shared


@pytest.fixture(scope="module")
def fischer_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fischer") / "fischer.jsonl"
    import_pgn([shared("games", "fischer.pgn")], path)
    return path


@pytest.mark.parametrize("codec,block_len", [("chess-pgn-chars", 1024), ("chess-uci-moves", 256)])
def test_train_and_play_chess_with_each_codec(fischer_records: Path, tmp_path: Path, codec: str, block_len: int) -> None:
    data = tmp_path / "data"
    meta = records_to_shards([fischer_records], data, game="chess", codec_name=codec, block_len=block_len)
    assert read_meta(data)["codec"]["name"] == codec
    assert meta["dtype"] == ("uint8" if codec == "chess-pgn-chars" else "uint16")
    cfg = TrainConfig(data_dir=str(data), out_dir=str(tmp_path / "run"), n_layer=1, n_head=2, n_embd=32,
                      batch_size=4, max_steps=20, learning_rate=3e-3, min_lr=3e-4, warmup_steps=2,
                      eval_interval=10, eval_batches=2, checkpoint_interval=10, seed=0)
    result = train(cfg, progress=False)
    assert result.val_loss is not None and result.val_loss < math.log(meta["vocab_size"])  # better than uniform

    masked = load_model_player(str(tmp_path / "run"), "chess", temperature=1.0, policy="mask")
    record = play_game(ChessGame(claim_draws=True), [masked, RandomPlayer()], seed=3, max_plies=40)
    assert record.termination != "illegal_move" and len(record.moves) >= 20

    raw = load_model_player(str(tmp_path / "run"), "chess", temperature=1.0, policy="raw")
    legality = legal_move_rate(raw, read_records(fischer_records)[:5], move_numbers=(1, 10), progress=False)
    assert legality.positions == {1: 10, 10: 10}
    assert legality.rate(1) is not None and 0.0 <= legality.rate(1) <= 1.0


def test_shards_leave_out_the_games_of_a_held_out_file(fischer_records: Path, tmp_path: Path) -> None:
    lines = fischer_records.read_text().splitlines()
    held_out = tmp_path / "held-out.jsonl"
    held_out.write_text("\n".join(lines[:5]) + "\n")
    # the same games again under other players and results still count as the held-out games
    renamed = [json.loads(line) | {"players": [{"name": "x"}, {"name": "y"}], "result": "*"} for line in lines[:2]]
    training = tmp_path / "train.jsonl"
    training.write_text("\n".join(lines + [json.dumps(r) for r in renamed]) + "\n")
    meta = records_to_shards([training], tmp_path / "data", game="chess", codec_name="chess-uci-moves",
                             block_len=256, exclude=[held_out])
    assert meta["excluded"] == {"files": [str(held_out)], "games_skipped": 7}
    assert sum(meta["n_games_read"].values()) == len(lines) - 5
    assert read_meta(tmp_path / "data")["excluded"]["games_skipped"] == 7
    plain = records_to_shards([training], tmp_path / "plain", game="chess", codec_name="chess-uci-moves",
                              block_len=256)
    assert "excluded" not in plain and sum(plain["n_games_read"].values()) == len(lines) + 2


def test_shipped_chessgpt_plays_legal_chess() -> None:
    masked = load_model_player("chessgpt", "chess", temperature=1.0, policy="mask")
    record = play_game(ChessGame(claim_draws=True), [masked, RandomPlayer()], seed=5, max_plies=60)
    assert record.termination != "illegal_move"
    raw = load_model_player("chessgpt", "chess", temperature=0.0, policy="raw")
    opening = ChessGame()
    assert opening.is_legal(raw.choose(opening))  # its favourite first move is a legal one
