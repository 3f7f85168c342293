"""The auxiliary legal-move loss: the codec's labels are python-chess's legal moves, the loss is
-log(probability on them), a model trained with it puts its probability on legal moves, and misuse is one
line with exit code 2."""

from __future__ import annotations

import math
from pathlib import Path

import chess
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.core.checkpoint import load_model
from gamegpt.core.data import open_split
from gamegpt.core.model import GPT, GPTConfig, legal_mass_loss
from gamegpt.games import MoveTokenCodec, PositionMoveCodec
from gamegpt.selfplay.dataset import records_to_shards
from gamegpt.selfplay.runner import run_selfplay
from tiny_training import train_tiny

CODEC = MoveTokenCodec(start_position=True)
N_MOVES = MoveTokenCodec.N_MOVES
OPERA = [chess.Move.from_uci(m) for m in "e2e4 e7e5 g1f3 d7d6 d2d4 c8g4 d4e5 g4f3 d1f3 d6e5 f1c4 g8f6".split()]


def legal_row(board: chess.Board) -> list[bool]:
    row = [False] * N_MOVES
    for move in board.legal_moves:
        row[CODEC.move_token(move)] = True
    return row


def test_labels_are_the_legal_moves_before_each_move_of_game_text() -> None:
    tokens = CODEC.encode_game(OPERA, finished=True)  # bos, 12 moves, eos
    labels = CODEC.legal_targets(np.array(tokens, dtype=np.uint16))
    assert labels.shape == (len(tokens), N_MOVES) and labels.dtype == np.bool_
    board = chess.Board()
    for at, move in enumerate(OPERA):  # row `at` reads tokens[:at+1]; its target is move `at`
        assert labels[at].tolist() == legal_row(board)
        assert labels[at, CODEC.move_token(move)]
        board.push(move)
    assert not labels[len(OPERA)].any()  # the target is <eos>: not a move
    assert not labels[-1].any()  # nothing follows the last token


def test_labels_of_position_samples_are_at_moves_only() -> None:
    codec = PositionMoveCodec()
    start = chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
    sample = codec.encode_game([chess.Move.from_uci("f1b5")], start=start.fen())
    labels = codec.legal_targets(sample)
    assert len(sample) == 74 and labels[:72].sum() == 0 and not labels[73].any()
    assert labels[72].tolist() == legal_row(start)  # at <moves>: the position's 30 legal moves


def test_corrupt_text_costs_labels_not_an_exception() -> None:
    e2e4, e7e5 = CODEC.move_token(chess.Move.from_uci("e2e4")), CODEC.move_token(chess.Move.from_uci("e7e5"))
    labels = CODEC.legal_targets([CODEC.bos, e2e4, e2e4, e7e5, CODEC.bos, CODEC.position_token, e2e4, e2e4])
    assert labels[0].any() and labels[1].any()  # before e2e4, and before the (illegal) second e2e4
    assert not labels[2:].any()  # after an illegal move and inside a malformed block: no board


def test_legal_mass_loss_is_minus_log_the_probability_on_the_legal_set() -> None:
    logits = torch.zeros(3, 10)
    legal = torch.zeros(3, 8, dtype=torch.bool)
    legal[0, :2] = True  # uniform logits: 2 of 10 tokens
    legal[1, 5] = True
    logits[1, 5] = 50.0  # all the mass on its one legal move
    assert legal_mass_loss(logits, legal).item() == pytest.approx((math.log(5) + 0.0) / 2)  # row 2: no legal move
    assert legal_mass_loss(logits, torch.zeros(3, 8, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError, match="do not match"):
        legal_mass_loss(logits, torch.zeros(2, 8, dtype=torch.bool))


def test_legal_mass_loss_matches_the_dense_formula_and_its_gradient() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(64, 40, generator=generator)).requires_grad_()
    legal = torch.rand(64, 32, generator=generator) < 0.2
    legal[5] = False  # a row without a legal move counts for nothing
    legal[7, :] = False
    legal[7, 3] = True
    with torch.no_grad():
        logits[7, 3] = -200.0  # far below the row's best: exp underflows unless shifted
    rows = legal.any(-1)
    dense = logits[rows, :32].masked_fill(~legal[rows], float("-inf"))
    expected = (torch.logsumexp(logits[rows], -1) - torch.logsumexp(dense, -1)).mean()
    (expected_grad,) = torch.autograd.grad(expected, logits)
    loss = legal_mass_loss(logits, legal)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(grad, expected_grad, atol=1e-6)


def test_forward_adds_the_weighted_legal_loss() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=CODEC.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    tokens = CODEC.encode_game(OPERA[:8], finished=True)
    x, y = torch.tensor([tokens[:-1]]), torch.tensor([tokens[1:]])
    legal = torch.from_numpy(CODEC.legal_targets(tokens)[:-1])[None]
    _, plain = model(x, y)
    _, with_legal = model(x, y, legal_targets=legal, legal_weight=0.5)
    assert plain is not None and with_legal is not None and model.last_legal_loss is not None
    assert float(model.last_legal_loss) == pytest.approx(math.log(CODEC.vocab_size / 20), rel=0.1)  # untrained
    assert with_legal.item() == pytest.approx(plain.item() + 0.5 * model.last_legal_loss.item(), rel=1e-5)
    with pytest.raises(ValueError, match="need targets"):
        model(x, legal_targets=legal)


@pytest.fixture(scope="module")
def position_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("legal-loss")
    records = folder / "games.jsonl"
    run_selfplay("chess", ["random", "random"], n_games=30, seed=4, out=records, max_plies=60, progress=False)
    records_to_shards([records], folder / "shards", game="chess", codec_name="chess-position-move",
                      val_fraction=0.1)
    return folder / "shards"


def _mass_on_legal_moves(run: Path, shards: Path) -> float:
    """The mean probability the run's model puts on the legal moves, over its val samples."""
    model, _, _ = load_model(run)
    codec = PositionMoveCodec()
    blocks = np.asarray(open_split(str(shards), "val"))
    x = torch.from_numpy(blocks[:, :-1].astype(np.int64))
    legal = torch.from_numpy(np.stack([codec.legal_targets(block)[:-1] for block in blocks]))
    with torch.no_grad():
        logits, _ = model(x, all_positions=True)
    probabilities = logits.softmax(-1)
    rows = legal.any(-1)
    return float((probabilities[..., :MoveTokenCodec.N_MOVES] * legal)[rows].sum(-1).mean())


def test_training_with_the_legal_loss_puts_more_probability_on_legal_moves(position_shards: Path,
                                                                           tmp_path: Path) -> None:
    mass = {}
    for weight in (0.0, 1.0):
        run = tmp_path / f"run-{weight}"
        events = train_tiny(position_shards, run, steps=120, batch_size=16, legal_loss_weight=weight)
        legal_losses = [e["legal_loss"] for e in events if "legal_loss" in e]
        assert len(legal_losses) == (12 if weight else 0)
        mass[weight] = _mass_on_legal_moves(run, position_shards)
    # the same steps on the same samples: the legal set's share of the probability is clearly larger with the loss
    assert mass[1.0] > 1.5 * mass[0.0], mass


def test_legal_loss_misuse_is_one_line(position_shards: Path, tictactoe_shards: Path, tmp_path: Path) -> None:
    args = ["train", "--data", str(position_shards), "--out", str(tmp_path / "run"), "--set", "n_layer=1",
            "--set", "n_head=2", "--set", "n_embd=16", "--set", "batch_size=2", "--set", "max_steps=1", "--no-progress"]
    result = CliRunner().invoke(main, args + ["--set", "legal_loss_weight=-1"])
    assert result.exit_code == 2 and "legal_loss_weight" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1

    result = CliRunner().invoke(main, ["train", "--data", str(tictactoe_shards), "--out", str(tmp_path / "ttt"),
                                       "--set", "legal_loss_weight=1", "--set", "max_steps=1", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "legal_loss_weight needs data of one token per move" in result.output and "Traceback" not in result.output
