"""The auxiliary board loss: the codec's board labels are python-chess's boards, a model with a board head
learns to read the board from real games, still plays through UCI, and misuse is one line with exit code 2;
and `init_from`, which starts a run from another model (adding a board head, or deepening it)."""

from __future__ import annotations

import json
from pathlib import Path

import chess
import chess.engine
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.core.checkpoint import load_model
from gamegpt.core.data import open_split
from gamegpt.core.model import GPT, GPTConfig, deepened_weights
from gamegpt.core.train import TrainConfig, train
from gamegpt.games import MoveTokenCodec, PositionMoveCodec
from gamegpt.selfplay.dataset import records_to_shards
from gamegpt.selfplay.runner import run_selfplay

CODEC = MoveTokenCodec(start_position=True)
OPERA = "e2e4 e7e5 g1f3 d7d6 d2d4 c8g4 d4e5 g4f3 d1f3 d6e5 f1c4 g8f6 f3b3 d8e7".split()


def classes(board: chess.Board) -> list[int]:
    symbols = ".PNBRQKpnbrqk"
    return [symbols.index(board.piece_at(sq).symbol()) if board.piece_at(sq) else 0 for sq in chess.SQUARES]


def test_labels_are_the_boards_after_each_token() -> None:
    moves = [chess.Move.from_uci(m) for m in OPERA]
    first = CODEC.encode_game(moves, finished=True)  # bos, 14 moves, eos
    start = chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
    second = CODEC.encode_game([chess.Move.from_uci("f1b5")], start=start.fen(), finished=False)
    block = first + second + [CODEC.bos, CODEC.move_token(chess.Move.from_uci("e2e4"))]  # packed, the last cut
    labels = CODEC.board_targets(np.array(block, dtype=np.uint16))
    assert labels.shape == (len(block), 64) and labels.dtype == np.int8

    board = chess.Board()
    assert labels[0].tolist() == classes(board)  # after <bos>: the start position
    for at, move in enumerate(moves, start=1):
        board.push(move)
        assert labels[at].tolist() == classes(board)
    assert (labels[len(moves) + 1] == -1).all()  # <eos>
    second_at = len(first)
    assert (labels[second_at:second_at + 72] == -1).all()  # its <bos> and the position block, before <moves>
    assert labels[second_at + 72].tolist() == classes(start)  # <moves>: the block's board
    start.push_uci("f1b5")
    assert labels[second_at + 73].tolist() == classes(start)
    after_e4 = chess.Board()
    after_e4.push_uci("e2e4")
    assert labels[-1].tolist() == classes(after_e4)


def test_corrupt_text_costs_labels_not_an_exception() -> None:
    e2e4, e7e5 = CODEC.move_token(chess.Move.from_uci("e2e4")), CODEC.move_token(chess.Move.from_uci("e7e5"))
    labels = CODEC.board_targets([CODEC.bos, e2e4, e2e4, e7e5, CODEC.bos, e2e4, CODEC.position_token, e2e4])
    assert (labels[1] >= 0).all() and (labels[2:4] == -1).all()  # an illegal move: no board until <bos>
    assert (labels[4:6] >= 0).all() and (labels[6:] == -1).all()  # an unfinished block: none either


def test_forward_adds_the_weighted_board_loss() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=CODEC.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16, board_head=True))
    tokens = CODEC.encode_game([chess.Move.from_uci(m) for m in OPERA[:9]], finished=False)
    x, y = torch.tensor([tokens[:-1]]), torch.tensor([tokens[1:]])
    boards = torch.from_numpy(CODEC.board_targets(tokens)[:-1].astype(np.int64))[None]
    _, plain = model(x, y)
    _, with_board = model(x, y, board_targets=boards, board_weight=0.5)
    assert plain is not None and with_board is not None and model.last_board_loss is not None
    assert float(model.last_board_loss) == pytest.approx(np.log(13), rel=0.2)  # untrained: near uniform
    assert with_board.item() == pytest.approx(plain.item() + 0.5 * model.last_board_loss.item(), rel=1e-5)
    headless = GPT(GPTConfig(vocab_size=CODEC.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="no board head"):
        headless(x, y, board_targets=boards)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("board-head")
    records = folder / "games.jsonl"
    spec = "stockfish:nodes=10,noise=0.3"  # Skill 20 at a node budget: the same games every run (seeded noise)
    run_selfplay("chess", [spec, spec], n_games=30, seed=4, out=records, max_plies=80, progress=False)
    records_to_shards([records], folder / "shards", game="chess", codec_name="chess-uci-moves", block_len=64)
    return folder / "shards"


def test_a_board_head_learns_the_board_and_the_model_still_plays(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = TrainConfig(data_dir=str(shards), out_dir=str(run), n_layer=1, n_head=2, n_embd=32, board_head=True,
                      batch_size=8, max_steps=120, learning_rate=3e-3, min_lr=3e-4, warmup_steps=5,
                      eval_interval=60, eval_batches=2, checkpoint_interval=60, log_interval=10, seed=0, threads=1)
    train(cfg, progress=False)
    events = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    board_losses = [e["board_loss"] for e in events if e["event"] == "train"]
    assert len(board_losses) == 12
    assert board_losses[-1] < 0.6 * board_losses[0]  # it reads the board far better than at the start (~ln 13)

    result = CliRunner().invoke(main, ["model", "export", str(run), str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "model" / "config.json").read_text())["model"]["board_head"] is True
    with chess.engine.SimpleEngine.popen_uci(["gamegpt", "uci", "--model", str(tmp_path / "model")]) as engine:
        board = chess.Board()
        for _ in range(6):
            move = engine.play(board, chess.engine.Limit(time=1)).move
            assert move in board.legal_moves
            board.push(move)


def test_board_head_misuse_is_one_line(shards: Path, tmp_path: Path) -> None:
    args = ["train", "--data", str(shards), "--out", str(tmp_path / "run"), "--set", "n_layer=1", "--set", "n_head=2",
            "--set", "n_embd=16", "--set", "batch_size=2", "--set", "max_steps=2", "--no-progress"]
    assert CliRunner().invoke(main, args).exit_code == 0
    for extra, message in (
        (["--resume", "--set", "board_head=true", "--set", "max_steps=4"], "another architecture"),
        (["--set", "board_head=maybe"], "board_head"),
        (["--set", "board_head=true", "--set", "board_loss_weight=-1"], "board_loss_weight"),
    ):
        result = CliRunner().invoke(main, args + extra)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_board_head_needs_board_labels(tictactoe_shards: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--data", str(tictactoe_shards), "--out", str(tmp_path / "run"),
                                       "--set", "board_head=true", "--set", "max_steps=1", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "board_head needs data whose codec labels boards" in result.output and "Traceback" not in result.output


def test_init_from_starts_a_new_run_with_another_models_weights(shards: Path, tmp_path: Path) -> None:
    """A board head can be added to a trained model: the new run starts from its weights, the head untrained."""
    common = dict(data_dir=str(shards), n_layer=1, n_head=2, n_embd=16, batch_size=4, eval_batches=1, seed=0, threads=1)
    train(TrainConfig(out_dir=str(tmp_path / "first"), max_steps=30, learning_rate=3e-3, min_lr=3e-4, **common),
          progress=False)
    first, _, _ = load_model(tmp_path / "first")
    frozen = dict(learning_rate=1e-12, min_lr=0.0, warmup_steps=0, weight_decay=0.0)  # one step that moves nothing
    train(TrainConfig(out_dir=str(tmp_path / "second"), max_steps=1, board_head=True, init_from=str(tmp_path / "first"),
                      **frozen, **common), progress=False)
    second, _, _ = load_model(tmp_path / "second")
    assert second.board_head is not None
    for name, tensor in first.state_dict().items():
        assert torch.allclose(tensor, second.state_dict()[name], atol=1e-6), name

    for changes, message in ((dict(n_embd=32), "another architecture"), (dict(init_from=str(tmp_path / "none")), "init_from")):
        args = ["train", "--data", str(shards), "--out", str(tmp_path / f"bad-{len(message)}"), "--no-progress",
                "--set", f"init_from={tmp_path / 'first'}"]
        args += [item for key, value in {**common, "max_steps": 1, **changes}.items() if key != "data_dir"
                 for item in ("--set", f"{key}={value}")]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_init_from_a_shallower_model_deepens_it_without_changing_what_it_computes(shards: Path,
                                                                                tmp_path: Path) -> None:
    """n_layer twice the source's: each block is followed by a copy whose output projections are zero, so the
    deeper model's first predictions are the shallower one's; the copies then learn (their projections move)."""
    common = dict(data_dir=str(shards), n_head=2, n_embd=16, batch_size=4, eval_batches=1, seed=0, threads=1)
    train(TrainConfig(out_dir=str(tmp_path / "first"), n_layer=1, max_steps=30, learning_rate=3e-3, min_lr=3e-4,
                      **common), progress=False)
    frozen = dict(learning_rate=1e-12, min_lr=0.0, warmup_steps=0, weight_decay=0.0)
    train(TrainConfig(out_dir=str(tmp_path / "deeper"), n_layer=2, max_steps=1, init_from=str(tmp_path / "first"),
                      **frozen, **common), progress=False)
    train(TrainConfig(out_dir=str(tmp_path / "learning"), n_layer=2, max_steps=5, init_from=str(tmp_path / "first"),
                      learning_rate=3e-3, min_lr=3e-4, **common), progress=False)
    (first, _, _), (deeper, _, _), (learning, _, _) = (load_model(tmp_path / name)
                                                       for name in ("first", "deeper", "learning"))
    assert deeper.config.n_layer == 2
    tokens = torch.from_numpy(np.asarray(open_split(str(shards), "val"))[:2, :40].astype(np.int64))
    with torch.no_grad():
        expected, _ = first(tokens, all_positions=True)
        got, _ = deeper(tokens, all_positions=True)
    assert torch.allclose(expected, got, atol=1e-4)
    assert deeper.transformer.h[1].mlp.c_proj.weight.detach().abs().max().item() < 1e-6  # the copy starts silent...
    assert learning.transformer.h[1].mlp.c_proj.weight.detach().abs().max().item() > 1e-4  # ...and learns
    with pytest.raises(ValueError, match="multiple"):
        deepened_weights(first.state_dict(), 2, 3)

    result = CliRunner().invoke(main, ["train", "--data", str(shards), "--out", str(tmp_path / "bad"),
                                       "--no-progress", "--set", f"init_from={tmp_path / 'deeper'}", "--set", "n_layer=3",
                                       "--set", "n_head=2", "--set", "n_embd=16", "--set", "max_steps=1"])
    assert result.exit_code == 2, result.output
    assert "deepening needs a multiple" in result.output and "Traceback" not in result.output


def test_position_move_samples_are_labelled_from_their_position_block() -> None:
    codec = PositionMoveCodec()
    moves = [chess.Move.from_uci(m) for m in OPERA[:3]]
    tokens = codec.encode_game(moves)  # one 74-token sample per move: <bos>, the block, the move
    labels = codec.board_targets(tokens)
    board = chess.Board()
    for number, move in enumerate(moves):
        at = number * codec.sample_len
        assert (labels[at:at + 72] == -1).all()  # <bos> and the block up to <moves>
        assert labels[at + 72].tolist() == classes(board)  # <moves>: the sample's position
        board.push(move)
        assert labels[at + 73].tolist() == classes(board)  # its move played
