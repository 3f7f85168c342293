"""Sparse autoencoders on one site's activations, trained from an activation cache.

Two kinds: "relu" (ReLU encoder, L1 penalty on the codes, decoder rows kept at unit norm so the penalty cannot
be dodged by shrinking codes) and "topk" (only the k largest pre-activations survive; no penalty). Inputs are
scaled by one number so the mean squared norm is the width (`input_scale`, stored with the weights).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from gamegpt.atomic import atomic_path, write_json_atomic
from gamegpt.errors import UserError


@dataclass
class SAEConfig:
    width: int
    latents: int
    kind: str = "topk"
    k: int = 8
    l1: float = 1e-3
    lr: float = 1e-3
    steps: int = 3000
    batch_size: int = 512
    seed: int = 0

    def check(self) -> None:
        if self.kind not in ("relu", "topk"):
            raise UserError(f"SAE kind must be relu or topk, got {self.kind!r}")
        if self.latents < 1 or self.width < 1 or self.steps < 1 or self.batch_size < 1:
            raise UserError("SAE latents, steps and batch size must be positive")
        if self.kind == "topk" and not 1 <= self.k <= self.latents:
            raise UserError(f"topk: k must be in 1..{self.latents}, got {self.k}")


class SAE(nn.Module):
    def __init__(self, config: SAEConfig) -> None:
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(config.seed)
        decoder = torch.randn(config.latents, config.width, generator=generator)
        decoder /= decoder.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(decoder)
        self.W_enc = nn.Parameter(decoder.t().clone())
        self.b_enc = nn.Parameter(torch.zeros(config.latents))
        self.b_dec = nn.Parameter(torch.zeros(config.width))
        self.register_buffer("input_scale", torch.ones(()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (N, latents) of raw activations (N, width)."""
        pre = (x * self.input_scale - self.b_dec) @ self.W_enc + self.b_enc
        codes = torch.relu(pre)
        if self.config.kind == "topk":
            top = torch.topk(codes, self.config.k, dim=-1)
            codes = torch.zeros_like(codes).scatter_(-1, top.indices, top.values)
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Raw activations back from codes."""
        return (codes @ self.W_dec + self.b_dec) / self.input_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self.encode(x)
        return self.decode(codes), codes

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _checkpoint_paths(out: Path) -> tuple[Path, Path]:
    return out / "sae.safetensors", out / "sae-state.json"


def save_sae(sae: SAE, optimizer: torch.optim.Optimizer | None, step: int, out: Path, extra: dict[str, Any]) -> None:
    weights, state = _checkpoint_paths(out)
    tensors = {name: t.detach().contiguous() for name, t in sae.state_dict().items()}
    if optimizer is not None:
        for i, param in enumerate(optimizer.param_groups[0]["params"]):
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{i}.{key}"] = value.detach().contiguous().reshape(value.shape)
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(state, {"config": asdict(sae.config), "step": step, **extra})


def load_sae(out: str | Path) -> tuple[SAE, dict[str, Any]]:
    """The SAE saved in `out` and its state JSON (config, step, site, ...). UserError if missing or corrupt."""
    weights, state_path = _checkpoint_paths(Path(out))
    if not weights.is_file() or not state_path.is_file():
        raise UserError(f"no SAE in {out}: run `gamegpt sae train` first")
    try:
        state = json.loads(state_path.read_text())
        sae = SAE(SAEConfig(**state["config"]))
        tensors = load_file(str(weights))
        sae.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optimizer.")})
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise UserError(f"SAE in {out} is corrupt: {exc!s:.200}") from None
    return sae, state


def train_sae(x: np.ndarray, config: SAEConfig, out: str | Path | None = None, *, extra: dict[str, Any] | None = None,
              checkpoint_every: int = 500, progress: bool = False) -> SAE:
    """Train on activations `x` (N, width). With `out`, checkpoints every `checkpoint_every` steps and resumes
    from a checkpoint there made with the same config (a finished one is returned as is)."""
    from tqdm import tqdm

    config.check()
    if x.ndim != 2 or x.shape[1] != config.width:
        raise UserError(f"SAE of width {config.width} cannot read activations of shape {x.shape}")
    torch.manual_seed(config.seed)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    sae = SAE(config)
    optimizer = torch.optim.Adam(sae.parameters(), lr=config.lr)
    start = 0
    out_path = Path(out) if out is not None else None
    extra = extra or {}
    if out_path is not None and _checkpoint_paths(out_path)[1].is_file():
        saved_state = json.loads(_checkpoint_paths(out_path)[1].read_text())
        if saved_state.get("config") == asdict(config):
            tensors = load_file(str(_checkpoint_paths(out_path)[0]))
            sae.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optimizer.")})
            start = int(saved_state["step"])
            if start >= config.steps:
                return sae
            if any(k.startswith("optimizer.") for k in tensors):
                optimizer.step()  # create the state, then overwrite it
                for i, param in enumerate(optimizer.param_groups[0]["params"]):
                    for key in list(optimizer.state[param]):
                        name = f"optimizer.{i}.{key}"
                        if name in tensors:
                            optimizer.state[param][key] = tensors[name]
    if start == 0:
        with torch.no_grad():
            scale = (config.width / data.pow(2).sum(1).mean()).sqrt()
            sae.input_scale.fill_(float(scale))
            sae.b_dec.copy_((data * scale).mean(0))
    generator = torch.Generator().manual_seed(config.seed + start)
    bar = tqdm(range(start, config.steps), disable=not progress, desc="sae", unit="step")
    for step in bar:
        rows = torch.randint(0, len(data), (min(config.batch_size, len(data)),), generator=generator)
        xb = data[rows]
        recon, codes = sae(xb)
        scaled = (xb - recon) * sae.input_scale
        mse = scaled.pow(2).sum(-1).mean()
        loss = mse + (config.l1 * codes.sum(-1).mean() * config.width if config.kind == "relu" else 0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sae.normalise_decoder()
        if out_path is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == config.steps):
            save_sae(sae, optimizer, step + 1, out_path, extra)
    return sae


@torch.no_grad()
def encode_all(sae: SAE, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    out = [sae.encode(torch.from_numpy(np.array(x[i:i + batch], dtype=np.float32))).numpy()
           for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, sae.config.latents), np.float32)


@torch.no_grad()
def reconstruction_metrics(sae: SAE, x: np.ndarray) -> dict[str, float]:
    """L0 (mean active latents), fraction of variance explained, dead latents (never active here)."""
    codes = encode_all(sae, x)
    recon = sae.decode(torch.from_numpy(codes)).numpy()
    x = np.asarray(x, dtype=np.float32)
    residual = ((x - recon) ** 2).sum()
    total = ((x - x.mean(0)) ** 2).sum()
    active = codes > 0
    return {"l0": float(active.sum(1).mean()), "variance_explained": float(1 - residual / total),
            "dead_latents": int((~active.any(0)).sum()), "dead_fraction": float((~active.any(0)).mean()),
            "latents": int(codes.shape[1])}
