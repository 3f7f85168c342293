"""Benchmark of the inference engine: per-move latency at moves 10, 40 and 80 of a real game, incremental
(the KV cache of the common prefix kept, as the UCI engine does) against recomputing the whole prefix; and
the game text the model reads, built from the new moves only against re-encoded from the start every move.

    python bench/bench_engine.py [--quick] [--threads N] [--model chessgpt]

Both ways go through the engine's own `ModelPlayer.choose` (char-PGN, masked decoding at temperature 0)
on the same positions of the longest game of fischer.pgn:
  - incremental: the player has just answered the position before the opponent's last move, so only the
    opponent's move and its own move's characters are new;
  - recompute: the cache is emptied before the move, so the whole game text is read again.
For the shipped model and for Karvonen's 8-layer, 512-wide shape (random weights: the cost does not depend
on them). Printed as ms per move and the ratio recompute / incremental, measured in the same run.

Then the game text, with the shipped model at moves 10, 40, 80, 150 and 190 of a long real game (the first of
twic-250k.pgn.gz that reaches move 190; the longest of fischer.pgn without it):
  - re-encoded: `codec.prefix_tokens(game)` every move, which writes the whole game in SAN again (as the
    engine did before);
  - incremental: the player's `PrefixEncoder` writes only the moves new since its last move.
Printed: the ms to build the context alone, and the ms per move (`choose`, KV cache warm as in play) of
each way (medians; the two ways take turns), with the ratio re-encoded / incremental, measured in the same run.
"""

from __future__ import annotations

import argparse
import gzip
import io
import itertools
import re
import statistics
import sys
import time
from pathlib import Path

import chess
import chess.pgn
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.core.model import GPT, GPTConfig  # noqa: E402
from gamegpt.engine.model_player import ModelPlayer, fit_context, load_model_player  # noqa: E402
from gamegpt.engine.settings import DecodingSettings  # noqa: E402
from gamegpt.games.base import Game  # noqa: E402
from gamegpt.games.chess import ChessGame  # noqa: E402
from gamegpt.games.chess_codecs import PgnCharCodec  # noqa: E402
from gamegpt.shared_data import shared_data_dir  # noqa: E402

FISCHER = shared_data_dir() / "games" / "fischer.pgn"
TWIC = shared_data_dir() / "games" / "twic-250k.pgn.gz"
MOVE_NUMBERS = (10, 40, 80)
LONG_GAME_MOVE_NUMBERS = (10, 40, 80, 150, 190)


def longest_game() -> list[chess.Move]:
    longest: list[chess.Move] = []
    if not FISCHER.exists():
        raise SystemExit(f"bench_engine needs the optional games/fischer.pgn (or twic-250k.pgn.gz): not found in "
                         f"{shared_data_dir()}; set GAMEGPT_DATA to the data directory")
    with open(FISCHER, encoding="utf-8", errors="replace") as handle:
        while (game := chess.pgn.read_game(handle)) is not None:
            moves = list(game.mainline_moves())
            if len(moves) > len(longest):
                longest = moves
    return longest


def long_game(move_number: int) -> tuple[str, list[chess.Move]]:
    """The first game of twic-250k.pgn.gz that reaches White's move `move_number` (its movetext is scanned
    for the number before python-chess reads it), or the longest of fischer.pgn without that file."""
    if TWIC.exists():
        number = re.compile(rf"(?:^|\s){move_number}\.")
        with gzip.open(TWIC, "rt", encoding="utf-8", errors="replace") as handle:
            lines: list[str] = []
            for line in itertools.chain(handle, ["[Event end]\n"]):  # the end closes the last game
                if line.startswith("[Event ") and lines:
                    text = "".join(lines)
                    game = chess.pgn.read_game(io.StringIO(text)) if number.search(text) else None
                    if game is not None and not game.errors:
                        names = f"{game.headers.get('White', '?')} - {game.headers.get('Black', '?')}"
                        return f"{names}, {game.headers.get('Date', '?')} (twic-250k)", list(game.mainline_moves())
                    lines = []
                lines.append(line)
    return "the longest of fischer.pgn", longest_game()


class ReencodingPlayer(ModelPlayer):
    """The model player as it was: the game text written from the start (`codec.prefix_tokens`) every move."""

    def context(self, game: Game[chess.Move]) -> list[int]:
        tokens = self.codec.prefix_tokens(game)
        room = self.model.config.block_size - self.codec.max_move_tokens
        return fit_context(tokens, room, *self.codec.cut_points(tokens))


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
        player.clear_cache()
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


def context_seconds(player: ModelPlayer, moves: list[chess.Move], ply: int, repeats: int) -> float:
    """Median seconds to build the context at `ply` right after building it at the ply before."""
    before, now = game_at(moves, ply - 1), game_at(moves, ply)
    times = []
    for _ in range(repeats):
        player.context(before)
        started = time.perf_counter()
        player.context(now)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_game_text(name: str, path: str, moves: list[chess.Move], repeats: int) -> None:
    """Per-move time with the game text re-encoded every move against built incrementally."""
    settings = DecodingSettings(temperature=0.0, policy="mask")
    incremental = load_model_player(path, "chess", settings=settings)
    reencoding = ReencodingPlayer(incremental.model, incremental.codec, settings=settings)
    print(f"\ngame text, shipped model {path}: re-encoded every move (before) vs incremental (now); "
          f"game: {name}, {len(moves)} plies")
    print(f"{'move':>5} {'chars':>6} {'context before ms':>18} {'now ms':>7} {'ratio':>6} "
          f"{'per move before ms':>19} {'now ms':>7} {'ratio':>6}")
    codec = incremental.codec
    for number in LONG_GAME_MOVE_NUMBERS:
        ply = 2 * (number - 1)  # White's move `number`
        if ply >= len(moves):
            continue
        chars = len(codec.prefix_tokens(game_at(moves, ply)))
        times: dict[str, list[float]] = {"text before": [], "text now": [], "move before": [], "move now": []}
        for _ in range(repeats):  # the two ways take turns, so that a load on the machine hits both alike
            for way, player in (("before", reencoding), ("now", incremental)):
                times[f"text {way}"].append(context_seconds(player, moves, ply, 1))
                times[f"move {way}"].append(per_move_seconds(player, moves, ply, True, 1))
        text_before, text_now, move_before, move_now = (statistics.median(t) for t in times.values())
        print(f"{number:>5} {chars:>6} {text_before * 1000:>18.2f} {text_now * 1000:>7.2f} "
              f"{text_before / text_now:>6.0f} {move_before * 1000:>19.1f} {move_now * 1000:>7.1f} "
              f"{move_before / move_now:>6.2f}")


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
    name, long_moves = long_game(LONG_GAME_MOVE_NUMBERS[-1])
    bench_game_text(name, args.model, long_moves, repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
