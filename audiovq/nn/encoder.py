"""Strided 1-D convolutional encoder on the raw waveform (paper, section 4.3: 6 layers,
kernel 4, stride 2 → 64× downsampling), optionally followed by residual layers at the code
rate and a 1 × 1 projection to the code dimension D.

`norm="batch"` puts batch normalisation before each strided layer's ReLU. Without it, Adam
(whose steps do not shrink with the gradient) pushes the biases of layers whose inputs are
small below every input within a few hundred steps, and those ReLUs never fire again: in the
shipped demo model 59–76 % of the channels of layers 2–5 are dead, in the first source-filter
runs 96–100 % of layer 2's (docs/source-filter.md), which starves the codes of content.
In evaluation the normalisation is a fixed per-channel affine map, so encoding a long file a
window at a time still gives the codes of the whole file.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class ResidualBlock1d(nn.Module):
    """x + Conv1x1(ReLU(Conv3(ReLU(x)))), the residual layer of the paper's encoders."""

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels
        self.body = nn.Sequential(nn.ReLU(), nn.Conv1d(channels, hidden, 3, padding=1),
                                  nn.ReLU(), nn.Conv1d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class WaveformEncoder(nn.Module):
    """Waveform (B, 1, T) → z_e (B, D, T / hop) with hop = stride ** layers.

    Each strided layer has kernel `2 * stride` and padding `stride // 2`, so a T that is a
    multiple of `hop` maps to exactly T / hop frames; frame i summarises samples around
    [i * hop, (i + 1) * hop).
    """

    def __init__(self, channels: int = 512, dim: int = 64, layers: int = 6, stride: int = 2,
                 residual_layers: int = 0, norm: str = "none"):
        super().__init__()
        if norm not in ("none", "batch"):
            raise ValueError(f"encoder norm must be none or batch, not {norm!r}")
        kernel, pad = 2 * stride, stride // 2
        convs: list[nn.Module] = []
        for i in range(layers):
            convs.append(nn.Conv1d(1 if i == 0 else channels, channels, kernel, stride, pad))
            if norm == "batch":
                convs.append(nn.BatchNorm1d(channels))
            convs.append(nn.ReLU())
        self.strided = nn.Sequential(*convs)
        self.residual = nn.Sequential(*[ResidualBlock1d(channels) for _ in range(residual_layers)])
        self.project = nn.Conv1d(channels, dim, 1)
        self.hop = stride ** layers
        # samples one output frame depends on: each strided layer widens it by (kernel-1)·jump
        self.receptive_field = 1 + sum((kernel - 1) * stride ** i for i in range(layers)) + \
            2 * residual_layers * self.hop  # the k=3 residual convs at the code rate

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        h = self.residual(self.strided(wav))
        if self.residual:
            h = torch.relu(h)
        return self.project(h)

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop)
