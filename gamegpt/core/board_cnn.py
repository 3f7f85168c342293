"""A small convolutional network that reads a picture of a board and predicts the next move.

The image counterpart of the GPT for the platonic study: where the GPT reads the moves so far as tokens,
`BoardCNN` reads the position as pixels (`gamegpt.games.tictactoe_image.render_board`) and gives one logit
per cell. Two 3x3 convolutions (each ReLU, then 2x2 max-pooling), a hidden fully connected layer, and the
output layer. `features(images)` returns the activations of every layer, flattened, for comparing
representations layer by layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gamegpt.errors import ConfigError


@dataclass
class BoardCNNConfig:
    """The architecture: input pictures of `image_pixels` square, `channels` per convolution, `hidden` units,
    `n_moves` outputs."""

    image_pixels: int = 32
    channels: tuple[int, int] = (16, 32)
    hidden: int = 128
    n_moves: int = 9

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)  # type: ignore[assignment]
        values = [self.image_pixels, *self.channels, self.hidden, self.n_moves]
        if len(self.channels) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise ConfigError(f"board CNN config: sizes must be positive integers (two channel counts), got {self}")
        if self.image_pixels % 4:
            raise ConfigError(f"board CNN config: image_pixels must be a multiple of 4, got {self.image_pixels}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}


class BoardCNN(nn.Module):
    """Pictures (B, 1, H, W) in, next-move logits (B, n_moves) out."""

    layer_names = ("conv1", "conv2", "hidden", "logits")

    def __init__(self, config: BoardCNNConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.conv1 = nn.Conv2d(1, c1, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=3, padding=1)
        flat = c2 * (config.image_pixels // 4) ** 2
        self.fc = nn.Linear(flat, config.hidden)
        self.head = nn.Linear(config.hidden, config.n_moves)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The activations of each layer in `layer_names`, each flattened to (B, features)."""
        x = F.max_pool2d(F.relu(self.conv1(images)), 2)
        conv1 = x.flatten(1)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        conv2 = x.flatten(1)
        hidden = F.relu(self.fc(conv2))
        return [conv1, conv2, hidden, self.head(hidden)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be (batch, 1, height, width), got shape {tuple(images.shape)}")
        logits: torch.Tensor = self.features(images)[-1]
        return logits
