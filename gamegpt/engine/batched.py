"""Batched model inference: many games, each in its own thread, decoded by one forward pass per step.

Each `BatchedModelPlayer` keeps its own slot (its game's KV cache) in the `RaggedKVCache` of a
`BatchedDecoder` shared by every player of that model in the process. A player asking for logits waits
until every thread now choosing a model move has asked too (or has finished its move); then one thread
runs a single `GPT.forward_ragged` over all of them (each slot reading only its own new tokens) and
wakes the others. A thread that is doing something else (an engine's move, the game's rules) is not
waited for. The moves are those of the one-at-a-time `ModelPlayer` with the same seeds (the logits agree
to float rounding; the tests compare whole games with mask and raw policies), since each player keeps
its own random generator, prefix encoder and cache.

Open a scope with `batched_decoding()` in the process that plays the games; inside it,
`load_model_player` (and so every `model:` spec) returns a `BatchedModelPlayer` sharing one decoder per
loaded model. Outside a scope nothing changes: plain `ModelPlayer`s.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch

from gamegpt.core.model import GPT, RaggedKVCache
from gamegpt.engine.model_player import ModelPlayer
from gamegpt.engine.settings import DecodingSettings
from gamegpt.games.base import Codec, Game

STALL_SECONDS = 600.0
"""A request unanswered this long means a bug (a thread that never asks nor leaves): raise, don't hang."""


class _Request:
    __slots__ = ("slot", "keep", "tokens", "logits", "error")

    def __init__(self, slot: int, keep: int, tokens: list[int]) -> None:
        self.slot, self.keep, self.tokens = slot, keep, tokens
        self.logits: torch.Tensor | None = None
        self.error: BaseException | None = None


class BatchedDecoder:
    """One model decoding for many players at once (see the module docstring). Thread-safe."""

    def __init__(self, model: GPT) -> None:
        self.model = model
        self.cache = RaggedKVCache(model.config)
        self._free: list[int] = []
        self._condition = threading.Condition()
        self._pending: list[_Request] = []
        self._choosing = 0  # threads now inside a model move
        self._local = threading.local()
        self.forward_passes = 0
        """Batched forward passes so far."""
        self.rows_decoded = 0
        """Requests answered so far (rows of those passes): rows / passes is the mean batch size."""

    def open_slot(self) -> int:
        """A slot for one player's game (an empty cache of its own)."""
        with self._condition:
            if self._free:
                slot = self._free.pop()
            else:
                slot = self.cache.slots
                self.cache.resize(slot + 1)
            self.cache.lengths[slot] = 0
            return slot

    def close_slot(self, slot: int) -> None:
        with self._condition:
            self.cache.lengths[slot] = 0
            self._free.append(slot)

    @contextmanager
    def choosing(self) -> Iterator[None]:
        """Mark this thread as inside a model move for the block: batches wait for its requests."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        if depth == 0:
            with self._condition:
                self._choosing += 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._condition:
                    self._choosing -= 1
                    if self._pending and len(self._pending) >= self._choosing:
                        self._run()

    def logits(self, slot: int, keep: int, tokens: list[int]) -> torch.Tensor:
        """The next token's logits (1-D) for `slot` after keeping its first `keep` positions and reading
        `tokens`, computed in one forward pass with every other thread's waiting request."""
        with self.choosing():
            request = _Request(slot, keep, list(tokens))
            deadline = time.monotonic() + STALL_SECONDS
            with self._condition:
                self._pending.append(request)
                if len(self._pending) >= self._choosing:
                    self._run()
                while request.logits is None and request.error is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise RuntimeError("batched decoding stalled: a request waited 600 s for its batch")
                    self._condition.wait(timeout=min(left, 1.0))
            if request.error is not None:
                raise request.error
            assert request.logits is not None
            return request.logits

    def _run(self) -> None:
        """Answer every pending request in one forward pass (the condition's lock is held)."""
        batch, self._pending = self._pending, []
        try:
            for request in batch:
                self.cache.truncate(request.slot, request.keep)
            with torch.no_grad():
                logits = self.model.forward_ragged([r.tokens for r in batch], [r.slot for r in batch], self.cache)
            for row, request in enumerate(batch):
                request.logits = logits[row]
            self.forward_passes += 1
            self.rows_decoded += len(batch)
        except BaseException as exc:  # noqa: BLE001 - each waiting thread raises it
            for request in batch:
                request.error = exc
        finally:
            self._condition.notify_all()


class BatchedModelPlayer(ModelPlayer):
    """A ModelPlayer whose forward passes go through a shared `BatchedDecoder` (its own slot there), so
    that games played at once in threads are decoded together. Same moves as a ModelPlayer."""

    def __init__(self, decoder: BatchedDecoder, codec: Codec, *, settings: DecodingSettings = DecodingSettings(),
                 label: str = "model") -> None:
        super().__init__(decoder.model, codec, settings=settings, label=label)
        self.decoder = decoder
        self._slot: int | None = decoder.open_slot()

    def choose(self, game: Game[Any], among: Sequence[Any] | None = None) -> Any:
        with self.decoder.choosing():
            return super().choose(game, among)

    def _read(self, keep: int, new_tokens: list[int]) -> torch.Tensor:
        if self._slot is None:
            raise RuntimeError("this model player is closed")
        return self.decoder.logits(self._slot, keep, new_tokens)

    def close(self) -> None:
        if self._slot is not None:
            self.decoder.close_slot(self._slot)
            self._slot = None
        super().close()


_scopes = 0
_decoders: dict[int, BatchedDecoder] = {}
_scope_lock = threading.Lock()


@contextmanager
def batched_decoding() -> Iterator[None]:
    """While open (in this process), model players from `load_model_player` share one `BatchedDecoder` per
    loaded model. Nestable; the decoders are dropped when the outermost scope closes."""
    global _scopes
    with _scope_lock:
        _scopes += 1
    try:
        yield
    finally:
        with _scope_lock:
            _scopes -= 1
            if _scopes == 0:
                _decoders.clear()


def shared_decoder(model: GPT) -> BatchedDecoder | None:
    """The process's decoder for `model` inside a `batched_decoding` scope, else None."""
    with _scope_lock:
        if _scopes == 0:
            return None
        decoder = _decoders.get(id(model))
        if decoder is None or decoder.model is not model:
            decoder = _decoders[id(model)] = BatchedDecoder(model)
        return decoder
