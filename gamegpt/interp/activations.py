"""A model run over games with forward hooks: the residual stream after each layer and each MLP's output, at
the probe positions, cached to disk.

Probe positions: where the model is about to write a move. For tic-tac-toe and one token per move, every
position before a move (the last token read: bos or the previous move); for Karvonen's character PGN, the
`.` after each move number (White to move), as he probes. The board labelled is the one on which the next
move is played.

Sites: `resid` layer 0 is the embeddings (token + position), layer l (1..n_layer) the residual stream after
block l; `mlp` layer l (1..n_layer) the output of block l's MLP (what it adds to the stream).

The cache is a directory: `resid.npy` (n_layer+1, N, d) and `mlp.npy` (n_layer, N, d) float32 arrays read as
memmaps, `labels.json` (games, positions and labels), and `meta.json` (written last, with the shapes and a
fingerprint of the model and games). It is written atomically; a cache whose fingerprint matches is reused.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from gamegpt.atomic import atomic_directory, fsync_directory
from gamegpt.core.model import GPT
from gamegpt.errors import UserError
from gamegpt.games.base import Codec, Game
from gamegpt.games.chess_codecs import PgnCharCodec
from gamegpt.interp.labels import BoardSpec, position_labels

CACHE_VERSION = 1


class ActivationCacheError(UserError):
    """An activation cache directory is missing files, or its files do not match its meta.json."""


@dataclass
class StudiedModel:
    """A model under study: the network, its codec, the game it plays, a label and a fingerprint."""

    model: GPT
    codec: Codec
    game: str
    label: str
    fingerprint: str

    @property
    def n_layer(self) -> int:
        return self.model.config.n_layer

    @property
    def width(self) -> int:
        return self.model.config.n_embd


def _game_name(codec: Codec) -> str:
    return codec.new_game().name


def load_studied_model(name_or_path: str, game: str | None = None, label: str | None = None) -> StudiedModel:
    """A checkpoint path or shipped model name; UserError if it does not exist or plays another game, or if
    its codec has no probe positions (the position-then-move codec)."""
    from gamegpt.engine.model_player import load_model_player, resolve_model_path

    player = load_model_player(name_or_path, game)
    if not player.codec.prefix_is_game_text:
        raise UserError(f"model {name_or_path}: codec {player.codec.name} writes positions, not game text; "
                        "probing it is not supported")
    path = resolve_model_path(name_or_path)
    digest = hashlib.sha256()
    files = sorted(p for p in (path.iterdir() if path.is_dir() else [path]) if p.is_file())
    for file in files:
        if file.suffix in (".safetensors", ".json", ".pt"):
            digest.update(file.name.encode())
            stat = file.stat()
            digest.update(f"{stat.st_size}:{int(stat.st_mtime)}".encode())
    return StudiedModel(player.model, player.codec, _game_name(player.codec), label or path.name,
                        digest.hexdigest()[:16])


def random_init_like(studied: StudiedModel, seed: int) -> StudiedModel:
    """The control: an untrained GPT of the same shape and codec (weights from `seed`)."""
    torch.manual_seed(seed)
    model = GPT(studied.model.config).eval()
    return StudiedModel(model, studied.codec, studied.game, f"{studied.label} (random init)",
                        f"random-init:{json.dumps(studied.model.config.to_dict(), sort_keys=True)}:{seed}")


# --- hooks -------------------------------------------------------------------------------------------------

Edit = Callable[[torch.Tensor], torch.Tensor]
"""A function from a site's activations (B, T, d) to new ones (an intervention or an SAE splice)."""


@contextmanager
def hooked(model: GPT, record: dict[tuple[str, int], torch.Tensor] | None = None,
           edits: dict[tuple[str, int], Edit] | None = None) -> Iterator[None]:
    """Within the block, each forward pass stores the activations of every site in `record` (after any edit)
    and replaces a site's activations by `edits[site](activations)`. Sites: ("resid", 0..n_layer),
    ("mlp", 1..n_layer). The model's code is not changed: these are torch forward hooks, removed after."""
    edits = edits or {}
    n_layer = model.config.n_layer
    for kind, layer in edits:
        low = 0 if kind == "resid" else 1
        if kind not in ("resid", "mlp") or not low <= layer <= n_layer:
            raise UserError(f"no site {kind} layer {layer}: this model has layers {low}-{n_layer}")

    def hook_for(site: tuple[str, int]) -> Callable[..., torch.Tensor]:
        def hook(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
            if site in edits:
                output = edits[site](output)
            if record is not None:
                record[site] = output.detach()
            return output
        return hook

    modules: list[tuple[tuple[str, int], torch.nn.Module]] = [(("resid", 0), model.transformer.drop)]
    for i, block in enumerate(model.transformer.h):
        modules += [(("resid", i + 1), block), (("mlp", i + 1), block.mlp)]
    handles = [module.register_forward_hook(hook_for(site)) for site, module in modules
               if record is not None or site in edits]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def logits_all(model: GPT, tokens: Sequence[int], edits: dict[tuple[str, int], Edit] | None = None,
               record: dict[tuple[str, int], torch.Tensor] | None = None) -> torch.Tensor:
    """Next-token logits (T, vocab) at every position of one token sequence, with optional edits."""
    device = next(model.parameters()).device
    idx = torch.tensor([list(tokens)], dtype=torch.long, device=device)
    with hooked(model, record, edits):
        logits, _ = model(idx, all_positions=True)
    return logits[0].float()


# --- probe positions ------------------------------------------------------------------------------------------

def probe_positions(codec: Codec, game: Game[Any], moves: Sequence[Any], block_size: int
                    ) -> tuple[list[int], list[tuple[int, int]]]:
    """The tokens of the game (cut to the model's context) and its probe positions as (ply, token index):
    ply k is the position after the first k moves, read at the last token of `prefix_tokens`."""
    tokens = codec.encode_game(list(moves), game.start, finished=True)
    positions = []
    replay = codec.new_game(game.start)
    every_ply = not isinstance(codec, PgnCharCodec)
    for ply, move in enumerate(moves):
        if every_ply or replay.to_move == 0:
            prefix = codec.prefix_tokens(replay)
            index = len(prefix) - 1
            if index >= block_size or tokens[:len(prefix)] != prefix:
                break
            positions.append((ply, index))
        replay.push(move)
    return tokens[:block_size], positions


def _replay(codec: Codec, moves: Sequence[str]) -> tuple[Game[Any], list[Any]]:
    game = codec.new_game()
    parsed = []
    scratch = game.copy()
    for text in moves:
        move = scratch.move_from_str(text)
        parsed.append(move)
        scratch.push(move)
    return game, parsed


# --- the cache -----------------------------------------------------------------------------------------------

class ActivationCache:
    """A cache directory, opened read-only: `resid` (n_layer+1, N, d), `mlp` (n_layer, N, d) memmaps, and
    per-position arrays `game_index`, `ply`, `token_index`, `board` (N, squares), `board_relative`,
    `side_to_move`, `check` or `value`; `games` (the games' moves and kinds) and `meta`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise ActivationCacheError(f"activation cache {self.path}: no meta.json (not a cache, or unfinished)")
        try:
            self.meta = json.loads(meta_path.read_text())
            labels = json.loads((self.path / "labels.json").read_text())
        except (OSError, ValueError) as exc:
            raise ActivationCacheError(f"activation cache {self.path} is corrupt: {exc}") from None
        try:
            n, layers, width = self.meta["positions"], self.meta["n_layer"], self.meta["width"]
            self.resid = np.load(self.path / "resid.npy", mmap_mode="r")
            self.mlp = np.load(self.path / "mlp.npy", mmap_mode="r")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ActivationCacheError(f"activation cache {self.path} is corrupt: {exc!s:.200}") from None
        if self.resid.shape != (layers + 1, n, width) or self.mlp.shape != (layers, n, width):
            raise ActivationCacheError(f"activation cache {self.path} is corrupt: arrays of shape {self.resid.shape} "
                                       f"and {self.mlp.shape}, meta.json says {n} positions, {layers} layers, width {width}")
        self.games: list[dict[str, Any]] = labels.get("games", [])
        self.labels: dict[str, np.ndarray] = {}
        for key, values in labels.get("positions", {}).items():
            array = np.asarray(values)
            if len(array) != n:
                raise ActivationCacheError(f"activation cache {self.path} is corrupt: label {key} has {len(array)} "
                                           f"rows, not {n}")
            self.labels[key] = array
        for key in ("game_index", "ply", "board", "board_relative", "side_to_move"):
            if key not in self.labels:
                raise ActivationCacheError(f"activation cache {self.path} is corrupt: no label {key}")
        self.board_spec = BoardSpec(self.meta["game"])

    @property
    def n_layer(self) -> int:
        return int(self.meta["n_layer"])

    def __len__(self) -> int:
        return int(self.meta["positions"])

    def site(self, kind: str, layer: int) -> np.ndarray:
        """The (N, d) activations of one site, checked: UserError for a layer out of range."""
        if kind == "resid":
            if not 0 <= layer <= self.n_layer:
                raise UserError(f"layer {layer} is out of range: resid layers are 0-{self.n_layer} for this model")
            return np.asarray(self.resid[layer])
        if kind == "mlp":
            if not 1 <= layer <= self.n_layer:
                raise UserError(f"layer {layer} is out of range: mlp layers are 1-{self.n_layer} for this model")
            return np.asarray(self.mlp[layer - 1])
        raise UserError(f"unknown site {kind!r}: resid or mlp")

    def kinds(self) -> np.ndarray:
        """'expert' or 'random' per position."""
        return np.array([self.games[g]["kind"] for g in self.labels["game_index"]])


def _fingerprint(studied: StudiedModel, games: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256(json.dumps({"model": studied.fingerprint, "codec": studied.codec.spec(),
                                        "games": games, "version": CACHE_VERSION}, sort_keys=True).encode())
    return digest.hexdigest()[:20]


def build_cache(studied: StudiedModel, games: list[dict[str, Any]], out: str | Path, *,
                progress: bool = False) -> ActivationCache:
    """Run `studied` over `games` and write the cache at `out`, or open the one there if it was made from the
    same model and games (a differing one is replaced). Returns the opened cache."""
    out = Path(out)
    fingerprint = _fingerprint(studied, games)
    if (out / "meta.json").is_file():
        try:
            existing = json.loads((out / "meta.json").read_text())
        except ValueError:
            raise ActivationCacheError(f"activation cache {out} is corrupt: meta.json is not JSON") from None
        if existing.get("fingerprint") == fingerprint:
            return ActivationCache(out)
    from tqdm import tqdm

    model, codec = studied.model, studied.codec
    block = model.config.block_size
    plans = []
    for index, record in enumerate(games):
        game, moves = _replay(codec, record["moves"])
        tokens, positions = probe_positions(codec, game, moves, block)
        if positions:
            plans.append((index, game, moves, tokens, positions))
    n = sum(len(p[4]) for p in plans)
    if n == 0:
        raise UserError("no probe positions in these games")
    layers, width = studied.n_layer, studied.width
    columns: dict[str, list[Any]] = {"game_index": [], "ply": [], "token_index": []}
    with atomic_directory(out) as tmp:
        resid = np.lib.format.open_memmap(tmp / "resid.npy", mode="w+", dtype=np.float32, shape=(layers + 1, n, width))
        mlp = np.lib.format.open_memmap(tmp / "mlp.npy", mode="w+", dtype=np.float32, shape=(layers, n, width))
        row = 0
        for index, game, moves, tokens, positions in tqdm(plans, disable=not progress, desc=f"activations {studied.label}",
                                                          unit="game"):
            record: dict[tuple[str, int], torch.Tensor] = {}
            logits_all(model, tokens, record=record)
            where = torch.tensor([p[1] for p in positions])
            for layer in range(layers + 1):
                resid[layer, row:row + len(positions)] = record[("resid", layer)][0, where].cpu().numpy()
            for layer in range(1, layers + 1):
                mlp[layer - 1, row:row + len(positions)] = record[("mlp", layer)][0, where].cpu().numpy()
            replay = codec.new_game(game.start)
            next_ply = 0
            for ply, token_index in positions:
                while next_ply < ply:
                    replay.push(moves[next_ply])
                    next_ply += 1
                for key, value in position_labels(replay).items():
                    columns.setdefault(key, []).append(value)
                columns["game_index"].append(index)
                columns["ply"].append(ply)
                columns["token_index"].append(token_index)
            row += len(positions)
        resid.flush()
        mlp.flush()
        del resid, mlp
        (tmp / "labels.json").write_text(json.dumps({"games": games, "positions": columns}, separators=(",", ":")))
        meta = {"version": CACHE_VERSION, "fingerprint": fingerprint, "model": studied.label,
                "model_fingerprint": studied.fingerprint, "game": studied.game, "codec": studied.codec.spec(),
                "model_config": model.config.to_dict(), "n_layer": layers, "width": width, "positions": n,
                "games": len(games)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        fsync_directory(tmp)
    return ActivationCache(out)
