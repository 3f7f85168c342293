"""A GPT decoder in the style of nanoGPT, with a KV cache for fast move-by-move decoding.

The architecture is nanoGPT's (and so Karvonen's ChessGPT's): learned position embeddings, pre-LayerNorm
blocks, causal self-attention through `scaled_dot_product_attention`, a 4x GELU MLP, and the output layer
tied to the token embedding. `GPTConfig` describes a model completely; it is what checkpoints store.

Decoding with a cache: `cache = model.new_cache()`, then `model(prefix, cache=cache)` and afterwards
`model(new_tokens, cache=cache)` with only the tokens the cache has not seen. `cache.truncate(n)` keeps the
first n positions, so a caller that keeps the longest common prefix between two calls only feeds the rest.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gamegpt.errors import ConfigError

BOARD_SQUARES = 64
BOARD_CLASSES = 13
"""The board head's labels: `MoveTokenCodec.board_targets` (a square is empty or one of 12 pieces)."""


@dataclass(kw_only=True)
class ModelShape:
    """The part of a GPT's architecture that a training run chooses; the data fixes the rest (see GPTConfig).

    GPTConfig and the training config (gamegpt.core.train.TrainConfig) both inherit these fields, so an
    architecture option added here is at once a checkpoint field, a YAML train option and a `--set` key.
    It is checked by the config that inherits it (`check_shape`), not on its own.
    """

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    board_head: bool = False
    """A second output layer that reads the chess board (64 squares x `BOARD_CLASSES`) from the last hidden state,
    for an auxiliary loss (`GPT.forward`'s `board_targets`); move prediction never uses it."""

    def shape(self) -> dict[str, Any]:
        """The shape fields alone, as keyword arguments for GPTConfig."""
        return {f.name: getattr(self, f.name) for f in fields(ModelShape)}

    def check_shape(self, config_name: str) -> None:
        """Raise ConfigError ("<config_name>: ...", one line) if a shape value is out of range or of the wrong type."""
        for name in ("n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{config_name}: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ConfigError(f"{config_name}: n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{config_name}: dropout must be a number in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)
        for name in ("bias", "board_head"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{config_name}: {name} must be true or false, got {getattr(self, name)!r}")


@dataclass
class GPTConfig(ModelShape):
    """The architecture of a GPT. `block_size` is the longest sequence (context) the model reads.

    `vocab_size` and `block_size` may be given by position; the shape fields (ModelShape) by name only.
    """

    vocab_size: int
    block_size: int

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError (one line) if a value is out of range or of the wrong type."""
        for name in ("vocab_size", "block_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model config: {name} must be a positive integer, got {value!r}")
        self.check_shape("model config")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (vocab_size and block_size first); `GPTConfig.from_dict(c.to_dict()) == c`."""
        return {"vocab_size": self.vocab_size, "block_size": self.block_size, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> "GPTConfig":
        """Build a config from a dict; unknown keys, missing keys and bad values raise ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"model config: unknown key(s) {', '.join(map(str, unknown))}")
        missing = [name for name in ("vocab_size", "block_size") if name not in data]
        if missing:
            raise ConfigError(f"model config: missing key(s) {', '.join(missing)}")
        return cls(**data)


class KVCache:
    """Keys and values of the positions a model has already read, for each layer.

    Tensors are (batch, n_head, positions, head_dim), allocated on first use for the whole block_size
    (so appending never copies). `length` is the number of positions held. Create it with
    `GPT.new_cache(batch_size)`; a cache belongs to one model and one batch of sequences.
    """

    def __init__(self, config: GPTConfig, batch_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.config = config
        self.batch_size = batch_size
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self._length = 0

    @property
    def length(self) -> int:
        """How many positions (tokens) the cache holds."""
        return self._length

    def truncate(self, n: int) -> None:
        """Keep only the first `n` positions (0 <= n <= length); later positions are forgotten."""
        if not 0 <= n <= self._length:
            raise ValueError(f"cannot truncate a cache of length {self._length} to {n}")
        self._length = n

    def reset(self) -> None:
        """Forget every position (same as truncate(0))."""
        self._length = 0

    def _allocate(self, like: torch.Tensor) -> None:
        c = self.config
        shape = (self.batch_size, c.n_head, c.block_size, c.head_dim)
        self.keys = [torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(c.n_layer)]
        self.values = [torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(c.n_layer)]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, n_head, T, head_dim) after the held positions of `layer`; return all keys and values.

        Called by the attention layers during a forward pass; `length` grows only when the forward pass
        ends (`_advance`), so every layer writes at the same positions.
        """
        if not self.keys or self.keys[0].dtype != k.dtype or self.keys[0].device != k.device:
            if self._length:
                raise ValueError("the cache was filled with another dtype or device")
            self._allocate(k)
        start, end = self._length, self._length + k.shape[2]
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def _advance(self, n: int) -> None:
        self._length += n


class RaggedKVCache:
    """Keys and values of many independent sequences ("slots"), each with its own length, for decoding many
    games in one forward pass (`GPT.forward_ragged`): each pass feeds any subset of the slots a few new
    tokens each, as many as each needs.

    Tensors are (slots, n_head, block_size, head_dim), allocated on first use and grown (copied) when
    slots are added (`resize`). `lengths[s]` is the number of positions slot s holds.
    """

    def __init__(self, config: GPTConfig, slots: int = 0) -> None:
        self.config = config
        self.lengths: list[int] = [0] * slots
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    @property
    def slots(self) -> int:
        return len(self.lengths)

    def resize(self, slots: int) -> None:
        """Hold `slots` slots: new ones start empty, those beyond `slots` are dropped."""
        if slots < 0:
            raise ValueError(f"slots must be >= 0, got {slots}")
        self.lengths = self.lengths[:slots] + [0] * max(0, slots - len(self.lengths))
        if self.keys and self.keys[0].shape[0] < slots:
            capacity = max(slots, 2 * self.keys[0].shape[0])
            self.keys = [self._grown(t, capacity) for t in self.keys]
            self.values = [self._grown(t, capacity) for t in self.values]

    @staticmethod
    def _grown(tensor: torch.Tensor, capacity: int) -> torch.Tensor:
        grown = tensor.new_zeros((capacity, *tensor.shape[1:]))
        grown[:tensor.shape[0]] = tensor
        return grown

    def truncate(self, slot: int, n: int) -> None:
        """Keep only the first `n` positions of `slot` (0 <= n <= its length)."""
        if not 0 <= n <= self.lengths[slot]:
            raise ValueError(f"cannot truncate slot {slot} of length {self.lengths[slot]} to {n}")
        self.lengths[slot] = n

    def _allocate(self, dtype: torch.dtype, device: torch.device) -> None:
        c = self.config
        if self.keys and self.keys[0].dtype == dtype and self.keys[0].device == device:
            return
        if any(self.lengths):
            raise ValueError("the cache was filled with another dtype or device")
        shape = (max(1, self.slots), c.n_head, c.block_size, c.head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(c.n_layer)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(c.n_layer)]


class RaggedStep:
    """One forward pass of `GPT.forward_ragged`: which slots read how many new tokens, from which position.
    The attention layers hand it their queries, keys and values (`attend`)."""

    def __init__(self, cache: RaggedKVCache, slots: list[int], counts: list[int], device: torch.device) -> None:
        self.cache = cache
        starts = [cache.lengths[s] for s in slots]
        width = max(counts)
        self.span = max(start + count for start, count in zip(starts, counts))
        """Key positions any row reads: the longest slot after this pass."""
        self.leading = slots == list(range(len(slots)))  # the first slots in order: a view, no copy
        self.rows = torch.tensor(slots, dtype=torch.long, device=device)
        rows, times = zip(*[(row, t) for row, count in enumerate(counts) for t in range(count)])
        self.row_index = torch.tensor(rows, dtype=torch.long, device=device)
        self.time_index = torch.tensor(times, dtype=torch.long, device=device)
        self.slot_index = self.rows[self.row_index]
        start = torch.tensor(starts, dtype=torch.long, device=device)
        self.positions = start[:, None] + torch.arange(width, device=device)[None, :]  # (rows, width)
        self.write_positions = self.positions[self.row_index, self.time_index]
        key_positions = torch.arange(self.span, device=device)
        # query t of a row (absolute position start + t) sees keys 0..start + t of its own slot
        self.mask = (key_positions[None, None, None, :] <= self.positions[:, None, :, None])

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Store the real (not padding) new keys and values of `layer` in their slots, then attend."""
        keys, values = self.cache.keys[layer], self.cache.values[layer]
        keys[self.slot_index, :, self.write_positions] = k.transpose(1, 2)[self.row_index, self.time_index]
        values[self.slot_index, :, self.write_positions] = v.transpose(1, 2)[self.row_index, self.time_index]
        if self.leading:
            held_k, held_v = keys[:len(self.rows), :, :self.span], values[:len(self.rows), :, :self.span]
        else:
            held_k = keys[:, :, :self.span].index_select(0, self.rows)
            held_v = values[:, :, :self.span].index_select(0, self.rows)
        return F.scaled_dot_product_attention(q, held_k, held_v, attn_mask=self.mask)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; with a cache, new queries attend to cached keys too."""

    def __init__(self, config: GPTConfig, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: "KVCache | RaggedStep | None" = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if isinstance(cache, RaggedStep):  # many sequences of different lengths (GPT.forward_ragged)
            y = cache.attend(self.layer, q, k, v).transpose(1, 2).contiguous().view(B, T, C)
            ragged: torch.Tensor = self.c_proj(y)
            return ragged
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.append(self.layer, k, v)
        dropout_p = self.dropout if self.training else 0.0
        if past == 0:
            # Query i sees keys 0..i: SDPA's built-in (top-left aligned) causal mask is right.
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=T > 1)
        elif T == 1:
            # One new token sees every cached position and itself: no mask needed.
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:
            # Several new tokens onto a non-empty cache: query i (absolute position past+i) sees keys 0..past+i.
            # is_causal would align the mask top-left (query i sees keys 0..i), which is wrong here.
            key_pos = torch.arange(past + T, device=x.device)
            query_pos = torch.arange(past, past + T, device=x.device)
            mask = key_pos[None, :] <= query_pos[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        out: torch.Tensor = self.resid_dropout(self.c_proj(y))
        return out


class MLP(nn.Module):
    """The feed-forward part of a block: 4x wider, GELU."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.dropout(self.c_proj(self.gelu(self.c_fc(x))))
        return out


class Block(nn.Module):
    """A transformer block with LayerNorm before attention and before the MLP (pre-LN)."""

    def __init__(self, config: GPTConfig, layer: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: "KVCache | RaggedStep | None" = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    """The body of the GPT, named as in nanoGPT (so Karvonen's checkpoints map one to one)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config, layer) for layer in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)


def _scored_positions(x: torch.Tensor, targets: torch.Tensor, *labels: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]]:
    """The hidden states (N, C), targets (N,) and per-position label rows (N, ...) of each of `labels` given
    (B, T, ...; None passes through) of the positions whose target is not -1, in order.

    Every position scored (packed game text): views, no copy. Under torch.compile every position is kept
    (the loss ignores -1 targets anyway): a shape that depends on the data would break the graph.
    """
    x, targets = x.reshape(-1, x.size(-1)), targets.reshape(-1)
    rows = [label.reshape(-1, label.size(-1)) if label is not None else None for label in labels]
    if torch.compiler.is_compiling():
        return x, targets, rows
    scored = targets != -1
    if bool(scored.all()):
        return x, targets, rows
    return x[scored], targets[scored], [row[scored] if row is not None else None for row in rows]


def legal_mass_loss(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """Mean of -log(probability on the legal moves) over the rows of `legal` (N, n) that have a legal move;
    `logits` (N, vocab) with the n move tokens first. 0 (in the graph) when no row has one."""
    return legal_mass_loss_of_log_probs(F.log_softmax(logits.float(), dim=-1), legal)


def legal_mass_loss_of_log_probs(log_probs: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """`legal_mass_loss` from the rows' log-probabilities (N, vocab, float32), which training already computes
    for the next-token loss: a second log-sum-exp over 2,000 logits (forward and backward) cost more than the
    rest of the legal loss. Computed on the legal entries only (gather, index_add): a row has a few dozen of
    2,000, and a dense masked copy of the logits cost as much as the rest of a small model's step."""
    if legal.shape[0] != log_probs.shape[0] or legal.shape[1] > log_probs.shape[1]:
        raise ValueError(f"legal_targets rows {tuple(legal.shape)} do not match the logits {tuple(log_probs.shape)}")
    row_of, move_of = legal.nonzero(as_tuple=True)  # the legal moves, a few dozen a row: sparse work only
    if len(row_of) == 0:
        return log_probs.sum() * 0.0
    rows = torch.unique_consecutive(row_of)
    picked = log_probs[row_of, move_of]
    # log of each row's legal mass, shifted by the row's largest legal log-probability (a constant to autograd)
    shift = torch.zeros(log_probs.shape[0], device=log_probs.device)
    shift = shift.scatter_reduce(0, row_of, picked.detach(), "amax", include_self=False)
    sums = torch.zeros(log_probs.shape[0], device=log_probs.device).index_add(0, row_of,
                                                                           torch.exp(picked - shift[row_of]))
    return -(torch.log(sums[rows]) + shift[rows]).mean()


def soft_target_loss(logits: torch.Tensor, target_probabilities: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy -sum(q log p) against the distributions `target_probabilities` (N, n) over the n move
    tokens (first in the vocabulary), over the rows that hold one (sum above 0); `logits` (N, vocab).
    0 (in the graph) when no row does."""
    if target_probabilities.shape[0] != logits.shape[0] or target_probabilities.shape[1] > logits.shape[1]:
        raise ValueError(f"value_targets rows {tuple(target_probabilities.shape)} do not match the logits "
                         f"{tuple(logits.shape)}")
    targets = target_probabilities.float()
    rows = targets.sum(dim=-1) > 0
    if not bool(rows.any()):
        return logits.sum() * 0.0
    log_probabilities = F.log_softmax(logits[rows].float(), dim=-1)[:, :targets.shape[1]]
    return -(targets[rows] * log_probabilities).sum(dim=-1).mean()


def deepened_weights(weights: dict[str, torch.Tensor], layers: int, new_layers: int) -> dict[str, torch.Tensor]:
    """A GPT's `weights` of `layers` blocks made into `new_layers` (a multiple k of `layers`): block i becomes
    block i*k, followed by k - 1 copies of it whose output projections (attention's and the MLP's `c_proj`) are
    zero, so each copy adds nothing to the residual stream and the deeper model computes exactly what the
    shallower one did, while every copy gets gradients from the first step (the block expansion of LLaMA Pro,
    Wu et al. 2024, interleaved). The same dict for k = 1; ValueError otherwise."""
    if new_layers == layers:
        return weights
    if new_layers < layers or new_layers % layers:
        raise ValueError(f"cannot deepen {layers} layers to {new_layers}: need a multiple")
    factor = new_layers // layers
    prefix = "transformer.h."
    deeper = {name: tensor for name, tensor in weights.items() if not name.startswith(prefix)}
    for name, tensor in weights.items():
        if not name.startswith(prefix):
            continue
        layer, rest = name[len(prefix):].split(".", 1)
        for copy in range(factor):
            silent = copy > 0 and rest.split(".")[1:2] == ["c_proj"]
            deeper[f"{prefix}{int(layer) * factor + copy}.{rest}"] = (torch.zeros_like(tensor) if silent
                                                                      else tensor.clone())
    return deeper


class GPT(nn.Module):
    """The language model: token ids in, next-token logits out."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the output layer reads the token embedding matrix.
        self.lm_head.weight = self.transformer.wte.weight
        self.board_head = nn.Linear(config.n_embd, BOARD_SQUARES * BOARD_CLASSES) if config.board_head else None
        self.last_board_loss: torch.Tensor | None = None
        """The board loss of the last forward pass given `board_targets` (detached, for logging)."""
        self.last_legal_loss: torch.Tensor | None = None
        """The legal-move loss of the last forward pass given `legal_targets` (detached, for logging)."""
        self.last_value_loss: torch.Tensor | None = None
        """The distillation loss of the last forward pass given `value_targets` (detached, for logging)."""
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled down by the depth.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (tied weights counted once); by default without the position embeddings."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def new_cache(self, batch_size: int = 1) -> KVCache:
        """An empty KV cache for `batch_size` sequences decoded together."""
        return KVCache(self.config, batch_size)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
        all_positions: bool = False,
        board_targets: torch.Tensor | None = None,
        board_weight: float = 1.0,
        legal_targets: torch.Tensor | None = None,
        legal_weight: float = 1.0,
        value_targets: torch.Tensor | None = None,
        value_weight: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for token ids `idx` (B, T), and the mean cross-entropy if `targets` is given.

        Without `targets` (inference) only the last position goes through the output layer, as in nanoGPT:
        logits are (B, 1, vocab), the prediction of the next token. With `targets` (training), targets equal
        to -1 are ignored and only the scored positions go through the output layer: logits are (N, vocab),
        one row per target that is not -1, in (batch, time) order (under torch.compile: every position).
        With `all_positions=True` they are (B, T, vocab), one prediction per position (the loss, if any, is
        the same). With a `cache`, `idx` holds only the tokens the cache has not seen:
        their positions start at `cache.length`, and the cache grows by T. Raises ValueError when the
        sequence (cached + new) would be longer than `block_size`.

        `board_targets` (B, T, 64), training a model with a board head: the class of each square after each
        position's token (-1 ignored); the loss becomes the next-token loss + `board_weight` x the board
        head's mean cross-entropy (kept in `last_board_loss`). ValueError without a board head or targets.

        `legal_targets` (B, T, n) bool, the n move tokens first in the vocabulary (`MoveTokenCodec.legal_targets`):
        the legal moves where the target is a move (rows all False are skipped); the loss becomes the next-token
        loss + `legal_weight` x the mean of -log(probability on the legal moves) (`legal_mass_loss`, kept in
        `last_legal_loss`). ValueError without targets.

        `value_targets` (B, T, n) float, a teacher's distribution over the n move tokens where the target is a
        move (`MoveTokenCodec.value_targets`; rows of zeros are skipped): the loss adds `value_weight` x the mean
        cross-entropy against it (`soft_target_loss`, kept in `last_value_loss`): distillation. ValueError
        without targets.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, time), got shape {tuple(idx.shape)}")
        B, T = idx.shape
        past = 0
        if cache is not None:
            past = cache.length
            if cache.batch_size != B:
                raise ValueError(f"cache is for batch size {cache.batch_size}, idx has batch size {B}")
        if T == 0:
            raise ValueError("idx holds no tokens")
        if past + T > self.config.block_size:
            raise ValueError(
                f"sequence of {past + T} tokens ({past} cached + {T} new) exceeds block_size {self.config.block_size}"
            )
        pos = torch.arange(past, past + T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x, cache)
        x = self.transformer.ln_f(x)
        board_loss = self._board_loss(x, board_targets) if board_targets is not None else None
        for name, given in (("legal_targets", legal_targets), ("value_targets", value_targets)):
            if given is not None and (targets is None or all_positions):
                raise ValueError(f"{name} need targets (their loss is added to the next-token loss)")
        if not all_positions and targets is not None:
            # the output layer and loss skip the unscored positions
            x, targets, (legal_targets, value_targets) = _scored_positions(x, targets, legal_targets, value_targets)
        elif not all_positions:
            x = x[:, -1:, :]  # only the next token's prediction is needed: skip the others' output layer
        logits = self.lm_head(x)
        if cache is not None:
            cache._advance(T)
        loss = None
        log_probs = None
        if targets is not None:
            # one log-softmax serves the next-token loss and the legal-move loss
            log_probs = F.log_softmax(logits.reshape(-1, logits.size(-1)).float(), dim=-1)
            loss = F.nll_loss(log_probs, targets.reshape(-1), ignore_index=-1)
        if board_loss is not None:
            if loss is None:
                raise ValueError("board_targets need targets (the board loss is added to the next-token loss)")
            self.last_board_loss = board_loss.detach()
            loss = loss + board_weight * board_loss
        if legal_targets is not None:
            assert loss is not None and log_probs is not None
            legal_loss = legal_mass_loss_of_log_probs(log_probs, legal_targets.reshape(-1, legal_targets.size(-1)))
            self.last_legal_loss = legal_loss.detach()
            loss = loss + legal_weight * legal_loss
        if value_targets is not None:
            assert loss is not None
            value_loss = soft_target_loss(logits, value_targets)
            self.last_value_loss = value_loss.detach()
            loss = loss + value_weight * value_loss
        return logits, loss

    def _board_loss(self, hidden: torch.Tensor, board_targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the board head over the labelled squares of (B, T, C) hidden states (0 if none)."""
        if self.board_head is None:
            raise ValueError("this model has no board head (board_head: false); it takes no board_targets")
        if board_targets.shape != (*hidden.shape[:2], BOARD_SQUARES):
            raise ValueError(f"board_targets must be (batch, time, {BOARD_SQUARES}), got {tuple(board_targets.shape)}")
        logits = self.board_head(hidden).reshape(-1, BOARD_CLASSES).float()
        labels = board_targets.reshape(-1).long()
        if not bool((labels != -1).any()):
            return logits.sum() * 0.0  # keeps the head in the graph (DDP expects every parameter used)
        return F.cross_entropy(logits, labels, ignore_index=-1)

    @torch.no_grad()
    def forward_ragged(self, tokens: list[list[int]], slots: list[int], cache: RaggedKVCache) -> torch.Tensor:
        """Next-token logits (len(slots), vocab) for several sequences at once: `tokens[i]` (at least one)
        are the tokens slot `slots[i]` of `cache` has not seen; each slot grows by its count. Rows are
        padded to the longest; padding is neither stored nor seen by real tokens. Inference only (no
        dropout). Raises ValueError for a slot named twice, no tokens, or more than `block_size`."""
        if len(tokens) != len(slots) or not slots:
            raise ValueError("forward_ragged needs one token list per slot, and at least one slot")
        if len(set(slots)) != len(slots):
            raise ValueError("a slot is named twice in one forward pass")
        counts = [len(t) for t in tokens]
        for slot, count in zip(slots, counts):
            if count == 0:
                raise ValueError(f"slot {slot} is given no tokens")
            if cache.lengths[slot] + count > self.config.block_size:
                raise ValueError(f"slot {slot}: {cache.lengths[slot]} cached + {count} new tokens exceed "
                                 f"block_size {self.config.block_size}")
        weight = self.transformer.wte.weight
        cache._allocate(weight.dtype, weight.device)
        width = max(counts)
        idx = torch.zeros((len(slots), width), dtype=torch.long)
        for row, row_tokens in enumerate(tokens):
            idx[row, :len(row_tokens)] = torch.tensor(row_tokens, dtype=torch.long)
        idx = idx.to(weight.device)
        step = RaggedStep(cache, list(slots), counts, weight.device)
        positions = step.positions.clamp(max=self.config.block_size - 1)  # padding may run past the block
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)
        for block in self.transformer.h:
            x = block(x, step)
        last = torch.tensor(counts, device=weight.device) - 1
        x = self.transformer.ln_f(x[torch.arange(len(slots), device=weight.device), last])
        for slot, count in zip(slots, counts):
            cache.lengths[slot] += count
        logits: torch.Tensor = self.lm_head(x)
        return logits

    def configure_optimizer(
        self, weight_decay: float, lr: float, betas: tuple[float, float], device_type: str,
        fused: bool | None = None,
    ) -> torch.optim.AdamW:
        """AdamW with weight decay on 2-D parameters (matmul weights, embeddings) only.

        Group 0 holds the decayed parameters, group 1 the others (biases, LayerNorm weights). `fused=None`
        takes torch's fused kernel on CPU and CUDA where this torch has it (faster than foreach; see
        bench/bench_core.py), else the multi-tensor (foreach) one; `fused=False` forces foreach. Both make the
        same update up to float rounding. Loading a checkpoint's optimizer state also loads its implementation
        flags (torch's load_state_dict), so a resumed run keeps the implementation it started with.
        """
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        has_fused = device_type in ("cpu", "cuda") and "fused" in inspect.signature(torch.optim.AdamW).parameters
        use_fused = has_fused if fused is None else fused
        implementation: dict[str, Any] = {"fused": True} if use_fused else {"foreach": True}
        return torch.optim.AdamW(groups, lr=lr, betas=betas, **implementation)

    def state_dict_for_saving(self) -> dict[str, torch.Tensor]:
        """The weights to save: the state dict without `lm_head.weight` (tied to the token embedding)."""
        return {
            name: tensor.detach().contiguous()
            for name, tensor in self.state_dict().items()
            if name != "lm_head.weight"
        }
