"""The chess-position-move codec (the position written out, then the move) on real games and puzzles: round
trips, prefixes that depend on the position only, shards of one block per position with the loss on the move
only, and a tiny model trained on them that plays legal chess through ModelPlayer, the UCI server from a FEN,
and FEN-only Lichess puzzles."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gamegpt.arena.play import play_game
from gamegpt.arena.puzzle_file import read_puzzles
from gamegpt.arena.records import GameRecord, RecordWriter
from gamegpt.core.data import get_batch, open_split, read_meta
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.core.train import TrainConfig, train
from gamegpt.engine.model_player import ModelPlayer, load_model_player
from gamegpt.engine.settings import DecodingSettings
from gamegpt.engine.uci import Options, UciServer
from gamegpt.errors import UserError
from gamegpt.eval.puzzles import solve_puzzles
from gamegpt.games import codec_from_spec
from gamegpt.games.base import InvalidMove, PrefixEncoder
from gamegpt.games.chess import ChessGame
from gamegpt.games.chess_codecs import MoveTokenCodec, PositionMoveCodec
from gamegpt.players.base import RandomPlayer
from gamegpt.selfplay.dataset import records_to_shards
from gamegpt.resources import PUZZLE_SAMPLE, data_file
from shared_files import shared

LICHESS = data_file(*PUZZLE_SAMPLE)
SAMPLE = 74  # <bos>, the 72-token position block, the move


def fischer_games(count: int) -> list[list[chess.Move]]:
    """The moves of the first `count` standard games of fischer.pgn that parse cleanly."""
    games: list[list[chess.Move]] = []
    with open(shared("games", "fischer.pgn"), encoding="utf-8", errors="replace") as handle:
        while len(games) < count and (pgn := chess.pgn.read_game(handle)) is not None:
            if not pgn.errors and "FEN" not in pgn.headers and pgn.headers.get("Variant", "Standard") == "Standard":
                games.append(list(pgn.mainline_moves()))
    return games


def lichess_puzzles(count: int) -> list[tuple[str, list[chess.Move]]]:
    """(FEN, moves) of the first `count` Lichess puzzles: FEN only, no game before them."""
    with open(LICHESS, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [(row["FEN"], [chess.Move.from_uci(uci) for uci in row["Moves"].split()]) for row in rows]


def without_counters(fen: str) -> str:
    return " ".join(fen.split()[:4])


@pytest.fixture(scope="module")
def codec() -> PositionMoveCodec:
    return PositionMoveCodec()


def test_same_vocabulary_as_chess_uci_moves_and_a_readable_spec(codec: PositionMoveCodec) -> None:
    moves = MoveTokenCodec()
    assert codec.token_names == moves.token_names and codec.vocab_size == moves.vocab_size == 2001
    assert (codec.bos, codec.position_token, codec.moves_token) == (moves.bos, moves.position_token, moves.moves_token)
    assert codec.eos is None and codec.max_move_tokens == 1 and codec.sample_len == SAMPLE
    assert codec.spec() == {"name": "chess-position-move", "vocab_size": 2001, "start_position": True}
    assert isinstance(codec_from_spec(codec.spec()), PositionMoveCodec)
    assert isinstance(codec_from_spec("chess-position-move"), PositionMoveCodec)
    with pytest.raises(ValueError, match="start_position"):
        PositionMoveCodec(start_position=False)
    assert codec.scored_targets() == {"after": moves.moves_token, "below": 1968}
    assert MoveTokenCodec().scored_targets() is None and MoveTokenCodec().sample_len is None


def test_fischer_games_round_trip_one_sample_per_position(codec: PositionMoveCodec) -> None:
    games = fischer_games(60)
    for moves in games:
        tokens = codec.encode_game(moves)
        assert len(tokens) == SAMPLE * len(moves)
        assert codec.decode_game(tokens) == (None, moves)
        game = ChessGame()
        for ply, move in enumerate(moves):
            sample = tokens[ply * SAMPLE:(ply + 1) * SAMPLE]
            assert sample == codec.prefix_tokens(game) + [codec.move_token(move)]
            assert codec.move_token_sequences(game)[(sample[-1],)] == move
            assert codec.parse_move(game, sample[-1:]) == (move, True)
            game.push(move)
        start, none = codec.decode_game(codec.prefix_tokens(game))  # a prefix: the position, no moves
        assert start is not None and without_counters(start) == without_counters(game.board.fen()) and none == []
    assert sum(map(len, games)) > 4000


def test_the_prefix_is_the_position_whatever_led_there(codec: PositionMoveCodec) -> None:
    for moves in fischer_games(20):
        played = ChessGame()
        for ply, move in enumerate(moves):
            played.push(move)
            if ply % 7 == 3:
                from_fen = ChessGame(played.board.fen())  # the same position, no history
                assert codec.prefix_tokens(from_fen) == codec.prefix_tokens(played)
                assert len(codec.prefix_tokens(played)) == SAMPLE - 1
                assert codec.cut_points(codec.prefix_tokens(played)) == (SAMPLE - 1, [])
    # a transposition: two move orders, one prefix
    one, other = ChessGame(), ChessGame()
    for uci in ("g1f3", "g8f6", "d2d4"):
        one.push(chess.Move.from_uci(uci))
    for uci in ("d2d4", "g8f6", "g1f3"):
        other.push(chess.Move.from_uci(uci))
    assert codec.prefix_tokens(one) == codec.prefix_tokens(other)


def test_lichess_puzzles_from_fen_round_trip(codec: PositionMoveCodec) -> None:
    puzzles = lichess_puzzles(150)
    for fen, moves in puzzles:
        tokens = codec.encode_game(moves, fen)
        assert len(tokens) == SAMPLE * len(moves)
        start, decoded = codec.decode_game(tokens)
        assert start is not None and without_counters(start) == without_counters(chess.Board(fen).fen())
        assert decoded == moves
        assert codec.prefix_tokens(ChessGame(fen)) == tokens[:SAMPLE - 1]
    assert any(chess.Board(fen).has_legal_en_passant() or chess.Board(fen).castling_rights for fen, _ in puzzles)


def test_decode_refuses_what_is_not_a_text_of_samples(codec: PositionMoveCodec) -> None:
    moves = fischer_games(1)[0][:6]
    tokens = codec.encode_game(moves)
    with pytest.raises(ValueError, match="samples of 74"):
        codec.decode_game(tokens[:-2])
    with pytest.raises(ValueError, match="samples of 74"):
        codec.decode_game([])
    skipped = tokens[:SAMPLE] + tokens[2 * SAMPLE:]  # the second position left out
    with pytest.raises(ValueError, match="sample 2's position"):
        codec.decode_game(skipped)
    illegal = list(tokens)
    illegal[SAMPLE - 1] = codec.move_token(chess.Move.from_uci("e2e5"))
    with pytest.raises(ValueError, match="illegal move e2e5"):
        codec.decode_game(illegal)
    with pytest.raises(ValueError, match="illegal move"):
        codec.encode_game([chess.Move.from_uci("e2e5")])
    assert codec.encode_game([]) == []


def test_prefix_encoder_encodes_each_position_in_full(codec: PositionMoveCodec) -> None:
    encoder = PrefixEncoder(codec)
    game = ChessGame()
    calls = 0
    for ply, move in enumerate(fischer_games(1)[0][:40]):
        prefix = encoder.prefix_tokens(game)
        assert prefix == codec.prefix_tokens(game) and encoder.prefix_tokens(game) is prefix  # unchanged: same list
        calls += 1
        game.push(move)
        if ply % 9 == 8:  # the position after the move, a takeback, and the move again
            for step in ("push", "pop"):
                if step == "pop":
                    game.pop()
                assert encoder.prefix_tokens(game) == codec.prefix_tokens(game)
                calls += 1
            game.push(move)
    assert encoder.full_encodings == calls
    with pytest.raises(NotImplementedError):
        codec.recent_moves_tokens(game, 1)


def write_records(path: Path, games: list[list[chess.Move]], puzzles: list[tuple[str, list[chess.Move]]]) -> None:
    with RecordWriter(path) as writer:
        for moves in games:
            writer.write(GameRecord("chess", [m.uci() for m in moves], [], "1/2-1/2", "import"))
        for fen, moves in puzzles:
            writer.write(GameRecord("chess", [m.uci() for m in moves], [], "*", "puzzle", start=fen))


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[chess.Move]], int]:
    """Shards of 12 Fischer games and 40 FEN-only puzzles (about 1000 positions), and the total positions."""
    root = tmp_path_factory.mktemp("position-shards")
    games, puzzles = fischer_games(12), lichess_puzzles(40)
    write_records(root / "games.jsonl", games, puzzles)
    records_to_shards([root / "games.jsonl"], root / "data", game="chess", codec_name="chess-position-move",
                      val_fraction=0.25, seed=1)
    return root / "data", games, sum(map(len, games)) + sum(len(m) for _, m in puzzles)


def test_shards_hold_one_block_per_position_scored_on_the_move_only(
        codec: PositionMoveCodec, shards: tuple[Path, list[list[chess.Move]], int]) -> None:
    data, games, positions = shards
    meta = read_meta(data)
    assert meta["codec"] == codec.spec() and meta["block_len"] == meta["sample_len"] == SAMPLE
    assert meta["scored_targets"] == codec.scored_targets()
    assert meta["n_blocks"]["train"] + meta["n_blocks"]["val"] == positions
    assert meta["n_games"]["train"] + meta["n_games"]["val"] == len(games) + 40  # split by game, not by position
    blocks = np.concatenate([open_split(data, "train"), open_split(data, "val")])
    assert all(codec.decode_game(block.tolist())[1] == [codec.token_move(int(block[-1]))] for block in blocks)

    x, y = get_batch(open_split(data, "train"), np.arange(8), "cpu", meta["scored_targets"])
    assert x.shape == y.shape == (8, SAMPLE - 1)
    assert ((y != -1).sum(dim=1) == 1).all() and (y[:, :-1] == -1).all()  # the move, the last target, only
    assert (x[:, -1] == codec.moves_token).all() and (y[:, -1] < codec.N_MOVES).all()
    x_all, y_all = get_batch(open_split(data, "train"), np.arange(8), "cpu")  # without: every target, as before
    assert torch.equal(x_all, x) and torch.equal(y_all[:, -1], y[:, -1]) and (y_all >= 0).all()

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=codec.vocab_size, block_size=SAMPLE - 1, n_layer=1, n_head=2, n_embd=32))
    logits, loss = model(x, y, all_positions=True)
    assert loss is not None
    assert torch.allclose(loss, F.cross_entropy(logits[:, -1], y[:, -1]))  # the loss is the moves' loss


def test_shards_of_other_codecs_are_unchanged_and_block_len_must_fit(
        tmp_path: Path, shards: tuple[Path, list[list[chess.Move]], int]) -> None:
    records = shards[0].parent / "games.jsonl"
    meta = records_to_shards([records], tmp_path / "moves", game="chess", codec_name="chess-uci-moves",
                             block_len=64, val_fraction=0.25, seed=1)
    assert "sample_len" not in meta and "scored_targets" not in meta
    assert "sample_len" not in (tmp_path / "moves" / "meta.json").read_text()
    with pytest.raises(UserError, match="block_len must be 74"):
        records_to_shards([records], tmp_path / "bad", game="chess", codec_name="chess-position-move", block_len=128)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shards: tuple[Path, list[list[chess.Move]], int]) -> Path:
    out = tmp_path_factory.mktemp("position-run")
    cfg = TrainConfig(data_dir=str(shards[0]), out_dir=str(out), n_layer=1, n_head=2, n_embd=32, batch_size=32,
                      max_steps=60, learning_rate=1e-2, min_lr=1e-3, warmup_steps=2, eval_interval=60,
                      eval_batches=4, checkpoint_interval=60, log_interval=5, seed=0)
    train(cfg, progress=False)
    return out


def test_a_tiny_training_run_lowers_the_move_loss(trained: Path) -> None:
    """60 steps on ~1000 positions (seconds): the loss falls, and it is the moves' loss only (counting every
    target, the easy square tokens included, it falls near 1 within these steps; a move costs about 6 nats)."""
    events = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "train"]
    val_loss = [e for e in events if e["event"] == "eval"][-1]["val_loss"]
    assert sum(losses[:2]) / 2 > sum(losses[-2:]) / 2 + 0.6, losses
    assert losses[0] < math.log(2001) + 0.5 and min(losses) > 4.0 and val_loss > 4.0, (losses, val_loss)


def test_the_model_plays_legal_chess_from_the_start_and_from_a_fen(trained: Path) -> None:
    masked = load_model_player(str(trained), "chess", temperature=1.0, policy="mask")
    assert isinstance(masked.codec, PositionMoveCodec) and masked.model.config.block_size == SAMPLE - 1
    record = play_game(ChessGame(claim_draws=True), [masked, RandomPlayer()], seed=3, max_plies=40)
    assert record.termination != "illegal_move" and len(record.moves) >= 20
    fen = lichess_puzzles(1)[0][0]
    record = play_game(ChessGame(fen, claim_draws=True), [RandomPlayer(), masked], seed=4, max_plies=30)
    assert record.termination != "illegal_move" and record.start == ChessGame(fen).start

    for policy in ("raw", "retry"):
        player = ModelPlayer(masked.model, masked.codec, settings=DecodingSettings(temperature=1.0, policy=policy))
        game = ChessGame(fen)
        move = player.choose(game)
        assert isinstance(move, InvalidMove) or game.is_legal(move)


def test_the_uci_engine_reads_a_fen_with_no_off_distribution_note(trained: Path) -> None:
    fen = lichess_puzzles(2)[1][0]
    out = io.StringIO()
    engine = UciServer(out=out, options=Options(model=str(trained), decoding=DecodingSettings(temperature=1.0)))
    for line in ("uci", "isready", f"position fen {fen}", "go movetime 20000"):
        engine.handle(line)
    deadline = time.monotonic() + 30
    while "bestmove" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    engine.run([])
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("bestmove "), lines
    assert chess.Move.from_uci(lines[-1].split()[1]) in chess.Board(fen).legal_moves
    assert not any("off its training distribution" in line or "random legal move" in line for line in lines), lines


def test_fen_only_puzzles_are_attempted(trained: Path) -> None:
    puzzles = read_puzzles(LICHESS, limit=25).puzzles
    assert all(puzzle.history is None for puzzle in puzzles)
    player = load_model_player(str(trained), "chess", temperature=0.0, policy="mask")
    result = solve_puzzles(player, puzzles, progress=False)
    assert len(result.attempts) == 25 and not result.skipped
    assert result.player["start_position"] is True
    assert all(attempt.failure != "illegal move" for attempt in result.attempts)
