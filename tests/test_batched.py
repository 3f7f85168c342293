"""Batched model inference: many games' model moves in one forward pass, the same moves as one at a time."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from gamegpt.arena.records import read_records
from gamegpt.core.model import GPT, GPTConfig, RaggedKVCache
from gamegpt.engine import batched
from gamegpt.engine.model_player import ModelPlayer, load_model_player
from gamegpt.selfplay.runner import run_selfplay


def test_ragged_forward_matches_one_sequence_at_a_time() -> None:
    """Slots fed different numbers of tokens per pass, some slots left out, one cut back (a takeback):
    each row's logits are those of the whole sequence read alone."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=40, n_layer=2, n_head=2, n_embd=16)).eval()
    rng = random.Random(1)
    sequences = [[rng.randrange(20) for _ in range(rng.randrange(8, 30))] for _ in range(5)]
    cache = RaggedKVCache(model.config)
    cache.resize(3)
    cache.resize(5)  # grown after creation: slots 3 and 4 start empty
    read = [0] * 5
    checked = 0
    for step in range(40):
        open_slots = [s for s in range(5) if read[s] < len(sequences[s])]
        if not open_slots:
            break
        slots = [s for s in open_slots if rng.random() < 0.7] or open_slots[:1]
        if step == 6:
            cache.truncate(slots[0], 1)  # forget all but the first token: it is read again
            read[slots[0]] = 1
        chunks = [sequences[s][read[s]:read[s] + rng.randint(1, 4)] for s in slots]
        logits = model.forward_ragged(chunks, slots, cache)
        for row, slot in enumerate(slots):
            read[slot] += len(chunks[row])
            alone, _ = model(torch.tensor([sequences[slot][:read[slot]]]))
            assert torch.allclose(logits[row], alone[0, -1], atol=1e-5), (step, slot)
            checked += 1
    assert checked > 30 and cache.lengths == [len(s) for s in sequences]
    with pytest.raises(ValueError, match="block_size"):
        model.forward_ragged([[1] * 41], [0], RaggedKVCache(model.config, 1))
    with pytest.raises(ValueError, match="twice"):
        model.forward_ragged([[1], [2]], [0, 0], cache)


def _records(path: Path) -> list[str]:
    return sorted(record.to_json() for record in read_records(path))


@pytest.mark.parametrize("policy", ["mask", "raw"])
def test_batched_games_are_the_games_played_one_at_a_time(tmp_path: Path, policy: str) -> None:
    """The shipped tic-tac-toe model against itself and against random, sampled at temperature 1: the
    same records from 8 games at once (batched) as from one game at a time, and batches of several rows."""
    specs = [f"model:path=tictactoe,temperature=1,policy={policy}", f"model:path=tictactoe,temperature=1.5,policy={policy}"]
    for number, pair in enumerate((specs, [specs[0], "random"])):
        alone = run_selfplay("tictactoe", pair, n_games=40, seed=7, out=tmp_path / f"alone{number}.jsonl",
                             progress=False)
        rows: list[int] = []
        original = batched.BatchedDecoder._run

        def counting(self: batched.BatchedDecoder) -> None:
            rows.append(len(self._pending))
            original(self)

        batched.BatchedDecoder._run = counting  # type: ignore[method-assign]
        try:
            together = run_selfplay("tictactoe", pair, n_games=40, seed=7, out=tmp_path / f"batched{number}.jsonl",
                                    progress=False, games_at_once=8)
        finally:
            batched.BatchedDecoder._run = original  # type: ignore[method-assign]
        assert _records(alone.records_path) == _records(together.records_path)
        assert alone.results == together.results
        assert max(rows) > 4 and sum(rows) / len(rows) > 2, rows  # the moves really were batched


def test_batched_chess_moves_of_several_tokens(tmp_path: Path, untrained_chess_model: Path) -> None:
    """Char-PGN chess: a move is several tokens and each player reads the opponent's move first, so the
    rows of a pass have different lengths (padding); raw samples are mostly illegal, so games also end
    early while others go on. Same records as one game at a time."""
    for policy in ("mask", "raw"):
        pair = [f"model:path={untrained_chess_model},temperature=1,policy={policy}", "random"]
        kwargs = dict(n_games=6, seed=1, max_plies=16, progress=False, game_options={"claim_draws": True})
        alone = run_selfplay("chess", pair, out=tmp_path / f"alone-{policy}.jsonl", **kwargs)  # type: ignore[arg-type]
        together = run_selfplay("chess", pair, out=tmp_path / f"batched-{policy}.jsonl", games_at_once=6,
                                **kwargs)  # type: ignore[arg-type]
        assert _records(alone.records_path) == _records(together.records_path)


def test_model_players_are_plain_outside_a_batched_scope() -> None:
    plain = load_model_player("tictactoe", "tictactoe")
    assert type(plain) is ModelPlayer
    with batched.batched_decoding():
        first = load_model_player("tictactoe", "tictactoe")
        second = load_model_player("tictactoe", "tictactoe", temperature=0.5)
        assert isinstance(first, batched.BatchedModelPlayer) and first.decoder is second.decoder
        first.close()
        second.close()
        assert sorted(first.decoder._free) == [0, 1]  # slots handed back for the next players
    assert type(load_model_player("tictactoe", "tictactoe")) is ModelPlayer
