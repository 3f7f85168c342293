"""The model as a player: policies, temperature, seeds, and the prefix cache."""

from __future__ import annotations

from pathlib import Path

import torch

from gamegpt.core.model import GPT, GPTConfig
from gamegpt.engine.model_player import ModelPlayer, load_model_player
from gamegpt.engine.settings import DecodingSettings
from gamegpt.arena.play import play_game
from gamegpt.eval.tictactoe import evaluate
from gamegpt.games.base import InvalidMove
from gamegpt.games.tictactoe import TicTacToe, TicTacToeCodec
from gamegpt.players.base import RandomPlayer


def untrained_player(policy: str, temperature: float = 1.0) -> ModelPlayer:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=63, n_layer=1, n_head=2, n_embd=16)).eval()
    return ModelPlayer(model, TicTacToeCodec(), settings=DecodingSettings(policy=policy, temperature=temperature))


def test_mask_policy_plays_only_legal_moves_even_untrained() -> None:
    results = evaluate({"masked": untrained_player("mask")}, {"random": RandomPlayer()}, games=100, progress=False)
    assert sum(r.illegal_moves for r in results) == 0
    assert sum(r.subject_moves for r in results) > 500


def test_raw_policy_reports_illegal_samples() -> None:
    results = evaluate({"raw": untrained_player("raw")}, {"random": RandomPlayer()}, games=100, progress=False)
    illegal = sum(r.illegal_moves for r in results)
    assert illegal > 0  # an untrained model samples occupied cells and special tokens
    player = untrained_player("raw")
    player.reset(0)
    game = TicTacToe([4])
    seen = [player.choose(game) for _ in range(300)]
    assert any(isinstance(m, InvalidMove) or m == 4 for m in seen)


def test_same_seed_same_game_and_argmax_is_deterministic(tiny_model: Path) -> None:
    def moves(temperature: float, seed: int) -> list[str]:
        player = load_model_player(str(tiny_model), "tictactoe", temperature=temperature, policy="mask")
        return play_game(TicTacToe(), [player, RandomPlayer()], seed=seed).moves

    assert moves(1.0, 11) == moves(1.0, 11)
    first_moves = {moves(0.0, seed)[0] for seed in range(10)}
    assert len(first_moves) == 1


def test_cached_decoding_matches_a_fresh_player(tiny_model: Path) -> None:
    reused = load_model_player(str(tiny_model), "tictactoe", temperature=0.0, policy="raw")
    histories = [[], [4], [4, 0], [2, 4, 6], [4, 0], [8], [8, 4, 0, 2], []]
    for history in histories:
        fresh = load_model_player(str(tiny_model), "tictactoe", temperature=0.0, policy="raw")
        game = TicTacToe(history)
        tokens = TicTacToeCodec().prefix_tokens(game)
        assert torch.allclose(reused.next_token_logits(tokens), fresh.next_token_logits(tokens), atol=1e-5)
        assert reused.choose(game) == fresh.choose(game)


def test_trained_model_beats_random_and_rarely_errs(tiny_model: Path) -> None:
    player = load_model_player(str(tiny_model), "tictactoe", temperature=0.0, policy="raw")
    results = evaluate({"model": player}, {"random": RandomPlayer()}, games=100, progress=False)
    untrained = evaluate({"model": untrained_player("raw", 0.0)}, {"random": RandomPlayer()}, games=100,
                         progress=False)
    assert sum(r.score for r in results) > sum(r.score for r in untrained) + 0.3
    assert sum(r.illegal_moves for r in results) < sum(r.illegal_moves for r in untrained)


def test_shipped_model_never_loses_to_the_perfect_player() -> None:
    from gamegpt.eval.tictactoe import standard_opponents

    player = load_model_player("tictactoe", "tictactoe", temperature=0.0, policy="raw")
    perfect = {"newell-simon": standard_opponents()["newell-simon"]}
    results = evaluate({"shipped": player}, perfect, games=100, seed=123, progress=False)
    assert [r.side for r in results] == ["x", "o"]
    for r in results:
        assert r.losses == 0 and r.illegal_moves == 0, r
