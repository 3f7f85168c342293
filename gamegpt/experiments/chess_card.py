"""A chess model's card, written from measurements made here and now, so it never states a figure nobody ran.

`measure_chess_model` runs, each once (cached as JSON in `out_dir`, so a re-run continues):

- the raw policy's first-sample legal-move rate by move number on held-out game sets (e.g. human games and
  Stockfish self-play), at temperature 1 (the model's own distribution) and at the default 0.001;
- masked top-1 agreement with Stockfish's best move on held-out positions (`gamegpt.eval.agreement`);
- mate in one at the default decoding on each held-out game set, beside a random mover's rate
  (`gamegpt.eval.mates`);
- one gauntlet against the default ladder with the model at the default decoding (mask, temperature
  0.001), at temperatures 0.1 and 1, and with `avoid_repetition` (a decoding aid, reported beside the
  model's own rating, never instead of it);
- the rated-bucket table of the Lichess puzzles shipped in the package, at the default decoding; for a model
  that reads only whole games (no start-position encoding) the FEN-only puzzles are skipped and counted, and
  the card says so.

`chess_card_text` turns the measurements and the model's config into the card (Markdown).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gamegpt.arena.records import read_records
from gamegpt.arena.specs import PlayerSpec
from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.core.checkpoint import read_checkpoint_config
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.engine.model_player import load_model_player, resolve_model_path
from gamegpt.eval.agreement import format_agreement_table, label_positions, top1_agreement
from gamegpt.eval.legality import format_legality_table, format_reasons_table, legal_move_rate
from gamegpt.eval.mates import find_mate_positions, format_mate_table, mate_in_one_rate
from gamegpt.eval.openings import default_book, load_openings
from gamegpt.eval.puzzles import evaluate_puzzles, format_puzzle_table
from gamegpt.eval.tournament import Entrant, format_outcomes, outcomes_by_opponent, resolve_anchor, run_tournament
from gamegpt.experiments.chess_transcendence import ladder_of

CARD_MOVE_NUMBERS = (1, 2, 5, 10, 15, 20, 25, 30, 35, 40, 50, 60)
SWEEP = (  # (entrant name suffix, decoding options): the default first
    ("", {}),
    ("-T0.1", {"temperature": "0.1"}),
    ("-T1", {"temperature": "1"}),
    ("-avoid-repetition", {"avoid_repetition": "true"}),
)


@dataclass
class ChessCardConfig:
    """What to measure. `model`: a shipped name or a model directory (the card is written into it);
    `held_out`: a label (e.g. "human") -> records file of games never trained on;
    `agreement_from`: the label whose games give the agreement positions."""

    model: str
    name: str
    out_dir: str
    held_out: Mapping[str, str] = field(default_factory=dict)
    legality_games: int = 200
    agreement_from: str | None = None
    agreement_positions: int = 300
    agreement_nodes: int = 20_000
    mate_positions: int = 200
    opening_count: int = 10
    puzzle_limit: int | None = None
    ladder: str | Sequence[str] = "default"
    workers: int = 2
    seed: int = 0


def _cached(path: Path, make: Any) -> Any:
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    write_json_atomic(path, value)
    return value


def _legality(cfg: ChessCardConfig, label: str, records: str, temperature: float) -> dict[str, Any]:
    player = load_model_player(cfg.model, "chess", policy="raw", temperature=temperature)
    games = read_records(records)[:cfg.legality_games]
    result = legal_move_rate(player, games, move_numbers=CARD_MOVE_NUMBERS, seed=cfg.seed,
                             label=f"{cfg.name} on {label}", progress=False)
    return {**result.to_dict(), "table": format_legality_table([result]), "reasons_table": format_reasons_table(result)}


def _agreement(cfg: ChessCardConfig) -> dict[str, Any]:
    label = cfg.agreement_from or next(iter(cfg.held_out))
    positions = label_positions(read_records(cfg.held_out[label]), count=cfg.agreement_positions,
                                nodes=cfg.agreement_nodes, seed=cfg.seed)
    player = load_model_player(cfg.model, "chess")
    result = top1_agreement(player, positions, label=f"{cfg.name} (mask, T=0.001) on {label}", seed=cfg.seed)
    return {**result.to_dict(), "source": label, "nodes": cfg.agreement_nodes,
            "table": format_agreement_table([result])}


def _mates(cfg: ChessCardConfig, label: str, records: str) -> dict[str, Any]:
    positions = find_mate_positions(read_records(records), count=cfg.mate_positions)
    player = load_model_player(cfg.model, "chess")
    result = mate_in_one_rate(player, positions, label=f"{cfg.name} (mask, T=0.001) on {label}", seed=cfg.seed)
    return {**result.to_dict(), "table": format_mate_table([result])}


def _tournament(cfg: ChessCardConfig, out: Path) -> dict[str, Any]:
    subjects = [Entrant(cfg.name + suffix, str(PlayerSpec("model", {"path": cfg.model, **options})))
                for suffix, options in SWEEP]
    rungs = ladder_of(cfg.ladder)
    anchor, anchor_rating = resolve_anchor(rungs, None, None)
    openings = load_openings(default_book(), count=cfg.opening_count, seed=cfg.seed)
    result = run_tournament(subjects + rungs, out_dir=out / "tournament", openings=openings, mode="gauntlet",
                            subjects=[s.name for s in subjects], neighbours=2, workers=cfg.workers, seed=cfg.seed,
                            anchor=anchor, anchor_rating=anchor_rating, event=f"gamegpt {cfg.name} card",
                            progress=False)
    assert result.ratings is not None
    return {"ratings": result.ratings.to_dict(), "table": result.ratings.table(), "games": result.games_total,
            "openings": len(openings), "subjects": {s.name: s.spec for s in subjects}}


def _puzzles(cfg: ChessCardConfig) -> dict[str, Any]:
    from gamegpt.arena.puzzle_file import read_puzzles
    from gamegpt.resources import PUZZLE_SAMPLE, data_file

    puzzle_set = read_puzzles(str(data_file(*PUZZLE_SAMPLE)), limit=cfg.puzzle_limit)
    player = load_model_player(cfg.model, "chess")
    evaluation = evaluate_puzzles({cfg.name: player}, puzzle_set, seed=cfg.seed,
                                  settings={"policy": "mask", "temperature": 0.001}, progress=False)
    result = evaluation.results[0]
    return {"source": PUZZLE_SAMPLE[-1], "puzzles": len(puzzle_set.puzzles), "attempted": len(result.attempts),
            "skipped": dict(result.skip_counts()), "table": format_puzzle_table(evaluation)}


def measure_chess_model(cfg: ChessCardConfig) -> dict[str, Any]:
    """Every measurement of the card (see the module docstring), cached in `cfg.out_dir`."""
    out = Path(cfg.out_dir)
    legality = {f"{label} T={t:g}": _cached(out / f"legality-{label}-T{t:g}.json",
                                            lambda label=label, path=path, t=t: _legality(cfg, label, path, t))
                for label, path in cfg.held_out.items() for t in (1.0, 0.001)}
    agreement = _cached(out / "agreement.json", lambda: _agreement(cfg))
    mates = {label: _cached(out / f"mates-{label}.json", lambda label=label, path=path: _mates(cfg, label, path))
             for label, path in cfg.held_out.items()}
    puzzles = _cached(out / "puzzles.json", lambda: _puzzles(cfg))
    tournament = _cached(out / "tournament.json", lambda: _tournament(cfg, out))
    games = read_records(out / "tournament" / "games.jsonl")
    outcomes = {subject: outcomes_by_opponent(games, subject) for subject in tournament["subjects"]}
    return {"legality": legality, "agreement": agreement, "mates": mates, "puzzles": puzzles, "tournament": tournament,
            "outcomes": outcomes}


def min_legal_rate(result: Mapping[str, Any], up_to: int = 40) -> float | None:
    """The lowest legal rate over the measured move numbers up to `up_to`."""
    rates = [row["rate"] for number, row in result["by_move_number"].items()
             if int(number) <= up_to and row["rate"] is not None]
    return min(rates) if rates else None


def chess_card_text(model_dir: str | Path, name: str, measured: Mapping[str, Any], *, intro: str,
                    commands: Sequence[str], notes: Sequence[str] = ()) -> str:
    """The card: what the model is, how it was made (`commands`, verbatim), and every measurement."""
    config = read_checkpoint_config(resolve_model_path(str(model_dir)))
    model, meta = config["model"], config.get("meta", {})
    n_params = GPT(GPTConfig.from_dict(model)).num_params(non_embedding=False)
    cpu_hours = (meta.get("train_cpu_seconds") or 0) / 3600
    legality = "\n\n".join(f"**{key}** (lowest rate at moves 1-40: {min_legal_rate(value):.1%})\n\n```\n{value['table']}\n```"
                           + (f"\n\nWhy the illegal samples were illegal (share of them):\n\n```\n{value['reasons_table']}\n```"
                              if "reasons_table" in value else "")
                           for key, value in measured["legality"].items())
    ratings = {r["name"]: r for r in measured["tournament"]["ratings"]["players"]}
    subject_rows = "\n".join(
        f"| `{subject}` | {spec} | {_rating_text(ratings[subject])} | {ratings[subject]['score']:.1f} / {ratings[subject]['games']} |"
        for subject, spec in measured["tournament"]["subjects"].items())
    return f"""# {name}

{intro}

A {model['n_layer']}-layer, {model['n_head']}-head, {model['n_embd']}-wide decoder ({n_params / 1e6:.1f}M parameters),
codec `{config['codec']['name']}`, context {model['block_size']} tokens. Trained {meta.get('tokens_seen', 0) / 1e6:.1f}M tokens
(recorded training CPU time: {cpu_hours:.2f} CPU-hours{' since CPU time was first recorded' if meta.get('train_cpu_seconds') else ''});
final train loss {meta.get('train_loss', float('nan')):.3f}, held-out loss {meta.get('val_loss', float('nan')):.3f} nats per token.

## How it was made

```
{chr(10).join(commands)}
```

## Elo against the ladder

One gauntlet, {measured['tournament']['openings']} openings of the shipped book with both colours per pairing,
{measured['tournament']['games']} games; the anchor is Stockfish UCI_Elo 1350 = 1350. The model's own rating is the
first row (mask policy, temperature 0.001, the default); the other rows are the temperature sweep and the
repetition-avoiding decoding aid (`avoid_repetition=true`), whose rating is the aid's, not the model's.

| entrant | spec | Elo [95 % interval] | points / games |
|---|---|---|---|
{subject_rows}

```
{measured['tournament']['table']}
```

How each entrant's games ended, by opponent:

{chr(10).join(f"**{subject}**{chr(10)}{chr(10)}```{chr(10)}{format_outcomes(rows)}{chr(10)}```{chr(10)}"
              for subject, rows in measured['outcomes'].items())}

## Legal-move rate of the first sample (raw policy), by move number

{legality}

## Agreement with Stockfish

{measured['agreement']['positions']} held-out positions ({measured['agreement']['source']} games), Stockfish 15.1 at
{measured['agreement']['nodes']} nodes:

```
{measured['agreement']['table']}
```

## Mate in one

The first position of each held-out game where the side to move can mate at once, at the default decoding;
"a random mover" is the share of these positions a uniformly random legal move would mate in.

```
{chr(10).join(value['table'] for value in measured['mates'].values())}
```

## Lichess puzzles

{_puzzle_text(measured['puzzles'])}

## Notes

{chr(10).join(f'- {note}' for note in notes)}
"""


def _puzzle_text(puzzles: Mapping[str, Any]) -> str:
    head = (f"The {puzzles['puzzles']} Lichess puzzles shipped in the package (`{puzzles['source']}`), at the default "
            f"decoding (mask, temperature 0.001); solved = every solver move matches the solution (a mate counts).")
    if not puzzles["attempted"]:
        return (f"{head} This model reads only games from the start position and these puzzles give a FEN and no "
                f"game: all {puzzles['puzzles']} were skipped, so it has no puzzle rating.")
    return f"{head}\n\n```\n{puzzles['table']}\n```"


def _rating_text(rating: Mapping[str, Any]) -> str:
    def number(value: float | None) -> str:
        return "?" if value is None else f"{value:.0f}"
    if rating["rating"] is None:
        return f"({rating['kind']}) [{number(rating['lower'])}, {number(rating['upper'])}]"
    return f"{number(rating['rating'])} [{number(rating['lower'])}, {number(rating['upper'])}]"


def write_chess_card(cfg: ChessCardConfig, *, intro: str, commands: Sequence[str], notes: Sequence[str] = ()) -> Path:
    """Measure (or read the cached measurements) and write `README.md` into the model directory, with the
    measurements beside it (`measurements.json`)."""
    measured = measure_chess_model(cfg)
    text = chess_card_text(cfg.model, cfg.name, measured, intro=intro, commands=commands, notes=notes)
    model_dir = resolve_model_path(cfg.model)
    write_json_atomic(model_dir / "measurements.json", measured)
    write_text_atomic(model_dir / "README.md", text)
    return model_dir / "README.md"
