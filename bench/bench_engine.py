"""Benchmark of the inference engine: per-move latency at moves 10, 40 and 80 of a real game, incremental
(the KV cache of the common prefix kept, as the UCI engine does) against recomputing the whole prefix.

    python bench/bench_engine.py [--quick] [--threads N] [--model chessgpt]

Both ways go through the engine's own `ModelPlayer.choose` (char-PGN, masked decoding at temperature 0)
on the same positions of the longest game of fischer.pgn:
  - incremental: the player has just answered the position before the opponent's last move, so only the
    opponent's move and its own move's characters are new;
  - recompute: the cache is emptied before the move, so the whole game text is read again.
For the shipped model and for Karvonen's 8-layer, 512-wide shape (random weights: the cost does not depend
on them). Printed as ms per move and the ratio recompute / incremental, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import chess
import chess.pgn
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.core.model import GPT, GPTConfig  # noqa: E402
from gamegpt.engine.model_player import ModelPlayer, load_model_player  # noqa: E402
from gamegpt.engine.settings import DecodingSettings  # noqa: E402
from gamegpt.games.chess import ChessGame  # noqa: E402
from gamegpt.games.chess_codecs import PgnCharCodec  # noqa: E402
from gamegpt.shared_data import shared_data_dir  # noqa: E402

FISCHER = shared_data_dir() / "games" / "fischer.pgn"
MOVE_NUMBERS = (10, 40, 80)


def longest_game() -> list[chess.Move]:
    longest: list[chess.Move] = []
    with open(FISCHER, encoding="utf-8", errors="replace") as handle:
        while (game := chess.pgn.read_game(handle)) is not None:
            moves = list(game.mainline_moves())
            if len(moves) > len(longest):
                longest = moves
    return longest


def game_at(moves: list[chess.Move], plies: int) -> ChessGame:
    game = ChessGame()
    for move in moves[:plies]:
        game.push(move)
    return game


def per_move_seconds(player: ModelPlayer, moves: list[chess.Move], ply: int, incremental: bool, repeats: int) -> float:
    """Median seconds of the move at `ply`, with the cache warm up to the ply before (incremental) or empty."""
    before, now = game_at(moves, ply - 1), game_at(moves, ply)
    times = []
    for _ in range(repeats):
        player._cache.reset()
        player._cached_tokens, player._last_logits = [], None
        if incremental:
            player.choose(before)  # the engine's previous move: the cache holds the game up to there
        started = time.perf_counter()
        player.choose(now)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(name: str, player: ModelPlayer, moves: list[chess.Move], repeats: int) -> None:
    print(f"\n{name}: {player.model.num_params(non_embedding=False) / 1e6:.1f}M parameters, "
          f"context {player.model.config.block_size}")
    print(f"{'move':>5} {'chars':>6} {'incremental ms':>15} {'recompute ms':>13} {'ratio':>6}")
    codec = PgnCharCodec()
    for number in MOVE_NUMBERS:
        ply = 2 * (number - 1)  # White's move `number`
        if ply >= len(moves):
            continue
        chars = len(codec.prefix_tokens(game_at(moves, ply)))
        warm = per_move_seconds(player, moves, ply, True, repeats)
        cold = per_move_seconds(player, moves, ply, False, repeats)
        print(f"{number:>5} {chars:>6} {warm * 1000:>15.1f} {cold * 1000:>13.1f} {cold / warm:>6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="chessgpt", help="shipped model name or checkpoint path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 7
    moves = longest_game()
    print(f"game: the longest of fischer.pgn, {len(moves)} plies; torch threads {args.threads}")
    shipped = load_model_player(args.model, "chess", temperature=0.0, policy="mask")
    bench(f"shipped model {args.model}", shipped, moves, repeats)
    torch.manual_seed(0)
    karvonen = GPT(GPTConfig(vocab_size=32, block_size=1024, n_layer=8, n_head=8, n_embd=512)).eval()
    bench("Karvonen's 8x512 shape", ModelPlayer(karvonen, PgnCharCodec(), settings=DecodingSettings(temperature=0.0, policy="mask")), moves,
          repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
