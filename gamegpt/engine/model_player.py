"""The model as a player: reads the game as tokens and samples its next move.

Decoding policies:
  * `raw`  — the first sampled move, legal or not; an illegal or unreadable sample is returned as an
    `InvalidMove` (the arena scores it as illegal). For measuring legality.
  * `mask` — only tokens that continue some legal move can be sampled, so every move is legal.

Temperature 0 takes the most likely token (argmax); `top_k` keeps the k most likely tokens. The KV cache
of the longest common prefix with the previous call is kept, so a game's moves cost what is new only.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import torch

from gamegpt.core.checkpoint import load_model
from gamegpt.core.model import GPT
from gamegpt.errors import PlayerSpecError, UserError
from gamegpt.games import codec_from_spec
from gamegpt.games.base import Codec, Game, InvalidMove
from gamegpt.players.base import Player
from gamegpt.players.spec import option

POLICIES = ("raw", "mask")
MODELS_DIR = Path(os.environ.get("GAMEGPT_MODELS", Path(__file__).resolve().parents[2] / "models"))


def resolve_model_path(name_or_path: str) -> Path:
    """A checkpoint path, or the name of a shipped model under `models/` (e.g. "tictactoe")."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    shipped = MODELS_DIR / name_or_path
    if shipped.exists():
        return shipped
    raise UserError(f"model not found: {name_or_path} (neither a path nor a shipped model in {MODELS_DIR})")


@lru_cache(maxsize=8)
def _load(path: str, device: str) -> tuple[GPT, Codec, dict[str, Any]]:
    model, codec_spec, meta = load_model(path, device=device)
    model.eval()
    return model, codec_from_spec(codec_spec), meta


def sample_token(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> int:
    """One token from 1-D logits (already masked with -inf where forbidden)."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        threshold = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    probs = torch.softmax(logits - logits.max(), dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


class ModelPlayer(Player):
    """A trained model playing one side; see the module docstring for the policies."""

    def __init__(
        self,
        model: GPT,
        codec: Codec,
        *,
        temperature: float = 1.0,
        policy: str = "mask",
        top_k: int | None = None,
        label: str = "model",
    ) -> None:
        if policy not in POLICIES:
            raise UserError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
        if temperature < 0:
            raise UserError(f"temperature must be >= 0, got {temperature}")
        self.model = model
        self.codec = codec
        self.temperature = temperature
        self.policy = policy
        self.top_k = top_k
        self.label = label
        self.name = f"{label}@T={temperature:g}"
        self.device = next(model.parameters()).device
        self.generator = torch.Generator().manual_seed(0)
        self._cache = model.new_cache(1)
        self._cached_tokens: list[int] = []
        self._last_logits: torch.Tensor | None = None

    def reset(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.label, "temperature": self.temperature,
                "policy": self.policy, "top_k": self.top_k}

    @torch.no_grad()
    def next_token_logits(self, tokens: Sequence[int]) -> torch.Tensor:
        """Logits for the token after `tokens`, reusing the cache of the longest common prefix."""
        tokens = list(tokens)
        if tokens == self._cached_tokens and self._last_logits is not None:
            return self._last_logits
        common = 0
        limit = min(len(tokens), len(self._cached_tokens)) - (1 if len(tokens) <= len(self._cached_tokens) else 0)
        while common < limit and tokens[common] == self._cached_tokens[common]:
            common += 1
        self._cache.truncate(common)
        new = torch.tensor([tokens[common:]], dtype=torch.long, device=self.device)
        logits, _ = self.model(new, cache=self._cache)
        self._cached_tokens = tokens
        self._last_logits = logits[0, -1]
        return self._last_logits

    def _context(self, game: Game[Any]) -> list[int]:
        tokens = self.codec.prefix_tokens(game)
        room = self.model.config.block_size - self.codec.max_move_tokens
        if len(tokens) > room:
            # Longer than the model's context: keep the start token and the most recent history.
            tokens = tokens[:1] + tokens[len(tokens) - room + 1:]
        return tokens

    def choose(self, game: Game[Any]) -> Any:
        context = self._context(game)
        legal = self.codec.move_token_sequences(game) if self.policy == "mask" else {}
        generated: list[int] = []
        for _ in range(self.codec.max_move_tokens):
            logits = self.next_token_logits(context + generated)
            if self.policy == "mask":
                allowed = {seq[len(generated)] for seq in legal if seq[:len(generated)] == tuple(generated)}
                masked = torch.full_like(logits, float("-inf"))
                index = torch.tensor(sorted(allowed), device=logits.device)
                masked[index] = logits[index]
                logits = masked
            generated.append(sample_token(logits, self.temperature, self.top_k, self.generator))
            if self.policy == "mask" and tuple(generated) in legal:
                return legal[tuple(generated)]
            move, complete = self.codec.parse_move(game, generated)
            if complete:
                return move if move is not None else InvalidMove(self.codec.tokens_to_text(generated))
        return InvalidMove(self.codec.tokens_to_text(generated))


def load_model_player(path: str, game: str | None = None, *, device: str = "cpu", **options: Any) -> ModelPlayer:
    """A ModelPlayer for a checkpoint path or shipped model name; checks that it plays `game`."""
    resolved = resolve_model_path(path)
    model, codec, _ = _load(str(resolved.resolve()), device)
    played = codec.new_game().name
    if game is not None and played != game:
        raise UserError(f"model {path} plays {played}, not {game}")
    return ModelPlayer(model, codec, label=options.pop("label", resolved.name), **options)


def model_player_from_options(game: str, options: dict[str, str]) -> ModelPlayer:
    """Build from player-spec options: path (default: the shipped model of the game), temperature, policy,
    top_k, device."""
    options = dict(options)
    path = options.pop("path", game)
    temperature = option(options, "temperature", float, 1.0, "model")
    policy = option(options, "policy", str, "mask", "model")
    top_k = option(options, "top_k", int, None, "model")
    device = option(options, "device", str, "cpu", "model")
    if options:
        raise PlayerSpecError(f"player 'model' has no option {', '.join(sorted(options))}")
    return load_model_player(path, game, device=device, temperature=temperature, policy=policy, top_k=top_k)
