"""The model as a player: reads the game as tokens and samples its next move.

Decoding follows a `DecodingSettings` (`gamegpt.engine.settings`: one default and one check per setting):
  * `raw`   — the first sampled move, legal or not; an illegal or unreadable sample is returned as an
    `InvalidMove` (the arena scores it as illegal). For measuring legality.
  * `retry` — Karvonen's evaluation rule: up to 5 samples at temperatures 0.001, 0.2, 0.4, 0.5, 0.5 (the
    player's own temperature is not used); the first legal one is played, else an `InvalidMove`.
  * `mask`  — constrained decoding: only tokens that continue some legal move can be sampled, so every
    move is legal in one pass.

Temperature 0 takes the most likely token (argmax); `top_k` keeps the k most likely tokens (0: all).

Incremental inference: the game's tokens are built from the moves new since the last call (a
`PrefixEncoder` per player), and the KV cache of the longest common prefix with the previous call is kept,
so a game's moves cost what is new only; at inference the model computes the logits of the last position
only. A game longer than the model's context is cut deliberately (see
`fit_context`): the header (bos, start-position block) stays, then the most recent whole moves, from a
cut point the codec allows (chess text: before a White move number). The cut moves forward in steps of
half the context, so the cache is rebuilt once every half-context of tokens, not at every move: the cost
of a move stays bounded however long the game. The model then reads a game that seems to start at a
later move, which it never saw in training: expect more illegal samples there (`mask` stays legal).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import torch

from gamegpt.core.checkpoint import load_model
from gamegpt.core.foreign import find_nanogpt_checkpoint, load_nanogpt_checkpoint
from gamegpt.core.model import GPT
from gamegpt.engine.decide import moves_avoiding_repetition
from gamegpt.engine.settings import RETRY_TEMPERATURES, DecodingSettings
from gamegpt.errors import UserError
from gamegpt.games import codec_from_spec
from gamegpt.games.base import Codec, Game, InvalidMove, PrefixEncoder
from gamegpt.players.base import Player
from gamegpt.resources import find_model, install_dir, model_dirs, model_names


MODELS_DIR = install_dir()
"""Where a recipe's `--install` puts a model (`gamegpt.resources.install_dir`)."""


def resolve_model_path(name_or_path: str) -> Path:
    """The one place a model is found: a checkpoint path (ours, or a nanoGPT `ckpt.pt` or its folder), or
    the name of a model in `$GAMEGPT_MODELS` or shipped in the package's `gamegpt/models/` (e.g.
    "tictactoe", also written "models/tictactoe"; `gamegpt.resources.find_model`)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    named = find_model(name_or_path)
    if named is not None:
        return named
    names = ", ".join(model_names()) or "none"
    raise UserError(f"model not found: {name_or_path} (neither a path nor a model name; names: {names}, "
                    f"looked up in {', '.join(str(d) for d in model_dirs())})")


_LOADING = threading.Lock()  # threads playing games at once load a model once, not once each


@lru_cache(maxsize=8)
def _load(path: str, device: str) -> tuple[GPT, Codec, dict[str, Any]]:
    """Our checkpoints (safetensors + JSON), or Karvonen's nanoGPT `ckpt.pt` + `meta.pkl` (read without
    running pickled code)."""
    foreign = find_nanogpt_checkpoint(path)
    if foreign is not None:
        model, codec_spec, meta = load_nanogpt_checkpoint(*foreign, device=device)
    else:
        model, codec_spec, meta = load_model(path, device=device)
    model.eval()
    return model, codec_from_spec(codec_spec), meta


def sample_token(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> int:
    """One token from 1-D logits (already masked with -inf where forbidden); `top_k` 0 keeps all."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    logits = logits.float() / temperature
    if 0 < top_k < logits.numel():
        threshold = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    probs = torch.softmax(logits - logits.max(), dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


class ModelPlayer(Player):
    """A trained model playing one side, decoding by `settings` (its policy, temperature and top_k; see
    the module docstring)."""

    def __init__(self, model: GPT, codec: Codec, *, settings: DecodingSettings = DecodingSettings(),
                 label: str = "model") -> None:
        self.model = model
        self.codec = codec
        self.settings = settings
        self.label = label
        self.name = f"{label}@T={settings.temperature:g}"
        self.device = next(model.parameters()).device
        self.generator = torch.Generator().manual_seed(0)
        self._cache = model.new_cache(1)
        self._cached_tokens: list[int] = []
        self._last_logits: torch.Tensor | None = None
        self._prefix = PrefixEncoder(codec)
        self._context_prefix: list[int] | None = None
        """The prefix tokens `_context_tokens` was fitted from (the PrefixEncoder's list, compared by identity)."""
        self._context_tokens: list[int] = []
        self.last_samples = 0
        """How many moves the last `choose` sampled (retry policy: up to 5)."""
        self.forward_passes = 0
        """Forward passes of the model so far (one per decoded token; a cache rebuild counts once)."""
        self.tokens_read = 0
        """Tokens fed through the model so far: what is new since the cached prefix, so it shows the cost."""

    @property
    def policy(self) -> str:
        return self.settings.policy

    @property
    def temperature(self) -> float:
        return self.settings.temperature

    @property
    def top_k(self) -> int:
        return self.settings.top_k

    def reset(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.label, "temperature": self.temperature,
                "policy": self.policy, "top_k": self.top_k or None}

    def clear_cache(self) -> None:
        """Forget the cached tokens and game text: the next move reads and encodes its whole context again."""
        self._cache.reset()
        self._cached_tokens, self._last_logits = [], None
        self._prefix = PrefixEncoder(self.codec)
        self._context_prefix, self._context_tokens = None, []

    @torch.no_grad()
    def next_token_logits(self, tokens: Sequence[int]) -> torch.Tensor:
        """Logits for the token after `tokens`, reusing the cache of the longest common prefix."""
        tokens = list(tokens)
        if tokens == self._cached_tokens and self._last_logits is not None:
            return self._last_logits
        common = self._common_prefix_length(tokens)
        self._last_logits = self._read(common, tokens[common:])
        self.forward_passes += 1
        self.tokens_read += len(tokens) - common
        self._cached_tokens = tokens
        return self._last_logits

    def _read(self, keep: int, new_tokens: list[int]) -> torch.Tensor:
        """Keep the first `keep` cached positions, feed `new_tokens`, return the next token's logits (1-D)."""
        self._cache.truncate(keep)
        new = torch.tensor([new_tokens], dtype=torch.long, device=self.device)
        logits, _ = self.model(new, cache=self._cache)
        return logits[0, -1]

    def _common_prefix_length(self, tokens: list[int]) -> int:
        """How many leading tokens the cache can keep for `tokens`: the common prefix with the cached
        tokens, less one if that would leave nothing to feed (the model must read a token to predict)."""
        cached = self._cached_tokens
        if len(tokens) > len(cached) and tokens[:len(cached)] == cached:
            return len(cached)  # the usual case, one more token or move: compared at C speed
        common = 0
        limit = min(len(tokens), len(cached)) - (1 if len(tokens) <= len(cached) else 0)
        while common < limit and tokens[common] == cached[common]:
            common += 1
        return common

    def context(self, game: Game[Any]) -> list[int]:
        """The tokens the model reads before its move in `game`: `codec.prefix_tokens(game)` cut by
        `fit_context` to leave room for a move in the model's context (do not change the list).

        Built from the moves that are new since the last call (see PrefixEncoder), not from the whole game
        again; asked again for the same game (a fallback after an illegal sample), it is not built again."""
        prefix = self._prefix.prefix_tokens(game)
        if prefix is not self._context_prefix:
            room = self.model.config.block_size - self.codec.max_move_tokens
            fitted = prefix if len(prefix) <= room else fit_context(prefix, room, *self.codec.cut_points(prefix))
            self._context_prefix, self._context_tokens = prefix, fitted
        return self._context_tokens

    def choose(self, game: Game[Any], among: Sequence[Any] | None = None) -> Any:
        """The move by the player's policy; with `among` (some legal moves), masked decoding over those.
        With `avoid_repetition` set and the model ahead in material, moves that draw by repetition or
        stalemate are left out of `among` (`gamegpt.engine.decide.moves_avoiding_repetition`)."""
        if self.settings.avoid_repetition:
            fresh = moves_avoiding_repetition(game)
            if fresh is not None:
                among = fresh if among is None else [move for move in among if move in fresh] or among
        if self.policy == "mask" or among is not None:
            return self.choose_masked(game, among)
        context = self.context(game)
        self.last_samples = 0
        temperatures = RETRY_TEMPERATURES if self.policy == "retry" else (self.temperature,)
        move: Any = None
        for temperature in temperatures:
            move = self._sample_move(game, context, temperature, None)
            if not isinstance(move, InvalidMove):
                return move
        return move

    def choose_masked(self, game: Game[Any], among: Sequence[Any] | None = None) -> Any:
        """A move sampled with the legality mask (at the player's temperature), from `among` if given."""
        legal = self.codec.move_token_sequences(game)
        if among is not None:
            wanted = set(among)
            legal = {tokens: move for tokens, move in legal.items() if move in wanted}
        if not legal:
            raise ValueError("no legal move to choose from")
        self.last_samples = 0
        return self._sample_move(game, self.context(game), self.temperature, legal)

    def _sample_move(self, game: Game[Any], context: list[int], temperature: float,
                     legal: dict[tuple[int, ...], Any] | None) -> Any:
        """One sampled move; with `legal` (the codec's move token sequences) only legal moves can come out."""
        self.last_samples += 1
        generated: list[int] = []
        for _ in range(self.codec.max_move_tokens):
            logits = self.next_token_logits(context + generated)
            if legal is not None:
                allowed = {seq[len(generated)] for seq in legal if seq[:len(generated)] == tuple(generated)}
                masked = torch.full_like(logits, float("-inf"))
                index = torch.tensor(sorted(allowed), device=logits.device)
                masked[index] = logits[index]
                logits = masked
            generated.append(sample_token(logits, temperature, self.top_k, self.generator))
            if legal is not None and tuple(generated) in legal:
                return legal[tuple(generated)]
            move, complete = self.codec.parse_move(game, generated)
            if complete:
                return move if move is not None else InvalidMove(self.codec.tokens_to_text(generated))
        return InvalidMove(self.codec.tokens_to_text(generated))


def fit_context(tokens: list[int], room: int, header: int, starts: Sequence[int]) -> list[int]:
    """`tokens` if at most `room` long, else the first `header` tokens and a recent tail that starts at one
    of `starts` (a cut point of the codec) and fits in `room`.

    The cut is the first cut point at or after `header + k * step` (step = half the room after the
    header, k the smallest that fits), so it moves only every `step` tokens and the KV cache of the
    kept prefix stays valid in between. Without a usable cut point the tail is cut at the exact length.
    """
    if len(tokens) <= room:
        return tokens
    step = max(1, (room - header) // 2)
    earliest = header + ((len(tokens) - room) // step + 1) * step
    cut = next((s for s in starts if s >= earliest), None)
    if cut is None:
        cut = len(tokens) - (room - header)
    return tokens[:header] + tokens[cut:]


def load_model_player(path: str, game: str | None = None, *, device: str = "cpu", label: str | None = None,
                      settings: DecodingSettings | None = None, **changes: Any) -> ModelPlayer:
    """A ModelPlayer for a checkpoint path or shipped model name; checks that it plays `game`. It decodes
    by `settings` (default: `DecodingSettings()`) with `changes` to its fields (`temperature=0.1`), checked
    there (ConfigError for a bad value)."""
    resolved = resolve_model_path(path)
    decoding = (settings or DecodingSettings()).replace(**changes)
    with _LOADING:
        model, codec, _ = _load(str(resolved.resolve()), device)
    played = codec.new_game().name
    if game is not None and played != game:
        raise UserError(f"model {path} plays {played}, not {game}")
    from gamegpt.engine.batched import BatchedModelPlayer, shared_decoder

    decoder = shared_decoder(model)  # None unless this process decodes games in batches (batched_decoding)
    if decoder is not None:
        return BatchedModelPlayer(decoder, codec, settings=decoding, label=label or resolved.name)
    return ModelPlayer(model, codec, settings=decoding, label=label or resolved.name)
