"""Recipes that make the shipped default models, end to end, from one command each.

`tictactoe_default` plays the training games, packs them, trains, exports the model, evaluates it, and
writes the model card from the measured numbers, so the card never states a figure nobody measured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gamegpt.core.checkpoint import read_checkpoint_config
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.core.train import TrainConfig
from gamegpt.engine.model_player import load_model_player
from gamegpt.eval.tictactoe import SettingResult, evaluate, format_table, plot_results
from gamegpt.experiments.pipeline import train_model_on_records
from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.selfplay.runner import run_selfplay

TICTACTOE_MATCHUPS = (
    ("newell-simon", "random"),
    ("random", "newell-simon"),
    ("newell-simon", "newell-simon:noise=0.3"),
    ("newell-simon:noise=0.3", "newell-simon"),
)
TICTACTOE_TRAIN = dict(
    n_layer=3, n_head=4, n_embd=96, batch_size=64, max_steps=2500, learning_rate=2e-3, min_lr=2e-4,
    warmup_steps=100, weight_decay=0.1, eval_interval=500, eval_batches=20, checkpoint_interval=500,
    keep_checkpoints=2,
)


def tictactoe_default(out_dir: str | Path, *, games_per_matchup: int = 5000, eval_games: int = 500,
                      seed: int = 0, install_to: str | Path | None = None, progress: bool = True,
                      train_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Make the default tic-tac-toe model in `out_dir` (resumable step by step); optionally copy it,
    with its card, to `install_to` (e.g. gamegpt/models/tictactoe). Returns the evaluation summary."""
    out = Path(out_dir)
    run_dir = out / "run"
    cfg = TrainConfig.from_dict({**TICTACTOE_TRAIN, **(train_overrides or {}), "data_dir": str(out / "data"),
                                 "out_dir": str(run_dir), "seed": seed})  # checked before the self-play
    records = []
    for number, (first, second) in enumerate(TICTACTOE_MATCHUPS):
        path = out / "selfplay" / f"{number}.jsonl"
        run_selfplay("tictactoe", [first, second], n_games=games_per_matchup, seed=seed + number, out=path,
                     progress=progress)
        records.append(path)
    model_dir = out / "model"
    train_model_on_records(records, cfg, model_dir, game="tictactoe", seed=seed, progress=progress)
    subjects = {f"T={t:g}": load_model_player(str(model_dir), "tictactoe", temperature=t, policy="raw")
                for t in (0.0, 1.0)}
    results = evaluate(subjects, games=eval_games, seed=seed, progress=progress)
    summary = {"policy": "raw", "games_per_setting": eval_games, "results": [r.to_dict() for r in results]}
    write_json_atomic(model_dir / "eval.json", summary)
    plot_results(results, model_dir / "eval.png", title="shipped tic-tac-toe model (raw policy)")
    card = model_card(read_checkpoint_config(model_dir), results, games_per_matchup, eval_games, seed,
                      training_minutes=_training_minutes(run_dir / "train_log.jsonl"))
    write_text_atomic(model_dir / "README.md", card)
    _install(model_dir, install_to)
    return summary


def _install(model_dir: Path, install_to: str | Path | None) -> None:
    """Replace `install_to` (e.g. gamegpt/models/chessgpt-pgn) with a copy of `model_dir`; nothing for None."""
    if install_to is None:
        return
    target = Path(install_to)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(model_dir, target)


def _training_minutes(log_path: Path) -> float | None:
    """Wall-clock minutes from the first to the last event of a training log (None if unreadable)."""
    try:
        times = [json.loads(line)["time"] for line in log_path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError, KeyError):
        return None
    return (max(times) - min(times)) / 60 if len(times) > 1 else None


def model_card(config: dict[str, Any], results: list[SettingResult], games_per_matchup: int, eval_games: int,
               seed: int, training_minutes: float | None = None) -> str:
    """The model card: what the model is, how it was made (the one command), and what it measured."""
    model = config["model"]
    meta = config.get("meta", {})
    n_params = GPT(GPTConfig.from_dict(model)).num_params(non_embedding=False)
    matchups = "\n".join(f"- {first} (X) vs {second} (O): {games_per_matchup} games" for first, second in TICTACTOE_MATCHUPS)
    took = f" in {training_minutes:.0f} minutes" if training_minutes else ""
    return f"""# tictactoe: the default tic-tac-toe model

A {model['n_layer']}-layer, {model['n_head']}-head, {model['n_embd']}-wide decoder ({n_params / 1e3:.0f}k parameters),
codec `{config['codec']['name']}` (one token per cell 0-8, `;` starts a game, `.` ends it),
context {model['block_size']} tokens. It learned tic-tac-toe only from game transcripts.

## Recipe (one command)

    gamegpt recipe tictactoe --out runs/tictactoe-default --install

Training games (self-play, seed {seed}; `noise=P`: a random legal move with probability P):
{matchups}

Training: {json.dumps(TICTACTOE_TRAIN)}, on CPU{took}.
Final train loss {meta.get('train_loss', float('nan')):.4f}, held-out loss {meta.get('val_loss', float('nan')):.4f}
(per token; the uniform-random side of the games puts a floor under it).

## Measured results

`gamegpt eval tictactoe --model tictactoe --policy raw --temperatures 0,1 --games {eval_games} --seed {seed}`
(raw policy: the first sampled move counts, an illegal one loses the game; `mask` makes every move legal).
Score: win 1, draw 1/2; 0.5 against the perfect player is the best anyone can do.

```
{format_table(results)}
```
"""


CHESS_WHITE = "stockfish:nodes=300"
CHESS_BLACK = "stockfish:skill=0-9,nodes=300"
CHESS_TRAIN = dict(
    n_layer=4, n_head=4, n_embd=256, batch_size=8, max_steps=1200, learning_rate=1e-3, min_lr=1e-4,
    warmup_steps=100, weight_decay=0.1, eval_interval=200, eval_batches=8, checkpoint_interval=100,
    keep_checkpoints=2,
)
CHESS_MOVE_NUMBERS = (1, 2, 10, 20, 40, 50, 60)


def chess_default(out_dir: str | Path, *, games: int = 8000, held_out_games: int = 200, workers: int = 2,
                  seed: int = 0, fischer_pgn: str | Path | None = None, install_to: str | Path | None = None,
                  progress: bool = True, train_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Make the Karvonen-format ChessGPT (shipped as chessgpt-pgn) in `out_dir` (resumable step by step):
    Karvonen-style Stockfish self-play
    (full-strength White against a Black of random Skill Level 0-9), character-PGN shards, training, export,
    and legal-move rates on held-out self-play games and on real games (`fischer_pgn`); the model card is
    written from those measurements. Optionally copied to `install_to` (e.g. gamegpt/models/chessgpt-pgn)."""
    from gamegpt.eval.legality import format_legality_table, legal_move_rate, plot_legality
    from gamegpt.arena.records import read_records
    from gamegpt.arena.pgn_import import import_pgn

    out = Path(out_dir)
    run_dir = out / "run"
    cfg = TrainConfig.from_dict({**CHESS_TRAIN, **(train_overrides or {}), "data_dir": str(out / "data"),
                                 "out_dir": str(run_dir), "seed": seed})  # checked before the self-play
    records = out / "selfplay" / "train.jsonl"
    held_out = out / "selfplay" / "held-out.jsonl"
    run_selfplay("chess", [CHESS_WHITE, CHESS_BLACK], n_games=games, seed=seed, out=records,
                 workers=workers, max_plies=400, progress=progress)
    run_selfplay("chess", [CHESS_WHITE, CHESS_BLACK], n_games=held_out_games, seed=seed + 1_000_003,
                 out=held_out, workers=workers, max_plies=400, progress=progress)
    model_dir = out / "model"
    train_model_on_records([records], cfg, model_dir, game="chess", codec_name="chess-pgn-chars", block_len=1024,
                           seed=seed, progress=progress)
    sources = {"Stockfish held-out": read_records(held_out)}
    if fischer_pgn is not None:
        import_pgn([fischer_pgn], out / "fischer.jsonl")
        sources["fischer.pgn"] = read_records(out / "fischer.jsonl")
    tables = {}
    summary: dict[str, Any] = {}
    player = load_model_player(str(model_dir), "chess", temperature=1.0, policy="raw")  # reseeded every game
    for name, games_list in sources.items():
        result = legal_move_rate(player, games_list, move_numbers=CHESS_MOVE_NUMBERS, seed=seed,
                                 label=f"chessgpt-pgn on {name}", progress=progress)
        tables[name] = format_legality_table([result])
        summary[name] = result.to_dict()
        plot_legality([result], model_dir / f"legality-{'fischer' if 'fischer' in name else 'stockfish'}.png",
                      title=f"legal first samples, T=1, {name}")
    write_json_atomic(model_dir / "legality.json", summary)
    card = _chess_card(read_checkpoint_config(model_dir), tables, games, held_out_games, seed,
                       _training_minutes(run_dir / "train_log.jsonl"))
    write_text_atomic(model_dir / "README.md", card)
    _install(model_dir, install_to)
    return summary


def _chess_card(config: dict[str, Any], tables: dict[str, str], games: int, held_out_games: int, seed: int,
                training_minutes: float | None) -> str:
    model = config["model"]
    meta = config.get("meta", {})
    n_params = GPT(GPTConfig.from_dict(model)).num_params(non_embedding=False)
    took = f" in {training_minutes:.0f} minutes" if training_minutes else ""
    sections = "\n\n".join(f"On {name} (`gamegpt eval legality --model chessgpt-pgn "
                            f"{'--pgn $GAMEGPT_DATA/games/fischer.pgn' if 'fischer' in name else '--records HELD_OUT.jsonl'}"
                            f" --temperature 1 --seed {seed}`):\n\n```\n{table}\n```" for name, table in tables.items())
    return f"""# chessgpt-pgn: ChessGPT in Karvonen's character PGN

A {model['n_layer']}-layer, {model['n_head']}-head, {model['n_embd']}-wide decoder ({n_params / 1e6:.1f}M parameters)
reading chess as Karvonen's character PGN (`;1.e4 e5 2.Nf3 ...`, 32-character vocabulary, codec
`{config['codec']['name']}`), context {model['block_size']} characters. Trained on a 2-core CPU{took}; no GPU was lent
to this task.

## Recipe (one command)

    gamegpt recipe chess --out runs/chessgpt-pgn --install

Data: {games} Stockfish 15.1 self-play games, Karvonen's recipe at CPU-friendly limits: White `{CHESS_WHITE}`
(Skill Level 20), Black `{CHESS_BLACK}` (a Skill Level drawn per game from 0-9), at most 400 plies, seed {seed};
held-out: {held_out_games} more games from another seed. Training: {json.dumps(CHESS_TRAIN)}.
Final train loss {meta.get('train_loss', float('nan')):.4f}, held-out loss {meta.get('val_loss', float('nan')):.4f}
(nats per character).

## Legal-move rate of the first sample (raw policy, temperature 1), by move number

{sections}

Stockfish below Skill Level 20 is not seedable, so a re-run of the recipe makes other (equally distributed)
games; the figures above are those of the shipped weights.
"""
