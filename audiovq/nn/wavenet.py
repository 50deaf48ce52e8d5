"""The WaveNet stack (van den Oord et al. 2016): an input embedding, causal dilated
convolutions with gated tanh·sigmoid units, residual and skip connections, optional local
(per-time-step) and global (per-sequence) conditioning, and a 1 × 1 output head.

One class serves the VQ-VAE decoder (input: previous µ-law sample, local conditioning: the
upsampled codes, global: the speaker) and the prior over codes (input: previous code,
global: the speaker). `forward` is the parallel, teacher-forced pass used in training.
Generation runs the same arithmetic one step at a time from one description of the weights
(generate/weights.py), on two backends: PyTorch ops on any device (`incremental`,
generate/incremental.py) and a numba kernel on the CPU (generate/kernels.py).
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn


class GatedLayer(nn.Module):
    """One residual layer: dilated causal conv → (+ conditioning) → tanh ⊙ sigmoid → res, skip."""

    def __init__(self, residual: int, gate: int, skip: int, dilation: int, kernel_size: int,
                 local_channels: int, global_channels: int, last: bool):
        super().__init__()
        self.dilation, self.kernel_size = dilation, kernel_size
        self.conv = nn.Conv1d(residual, gate, kernel_size, dilation=dilation)
        self.local = nn.Conv1d(local_channels, gate, 1, bias=False) if local_channels else None
        self.glob = nn.Linear(global_channels, gate, bias=False) if global_channels else None
        self.skip = nn.Conv1d(gate // 2, skip, 1)
        self.res = None if last else nn.Conv1d(gate // 2, residual, 1)  # last layer feeds skip only

    @property
    def history(self) -> int:
        """How many past inputs the layer's causal convolution looks at."""
        return (self.kernel_size - 1) * self.dilation

    def conditioning(self, local: torch.Tensor | None, glob: torch.Tensor | None):
        """Gate-sized conditioning term: (B, gate, T) or (B, gate, 1), or None."""
        c = None
        if self.local is not None:
            c = self.local(local)
        if self.glob is not None:
            g = self.glob(glob).unsqueeze(-1)
            c = g if c is None else c + g
        return c

    def gated(self, pre: torch.Tensor, cond: torch.Tensor | None):
        if cond is not None:
            pre = pre + cond
        a, b = pre.chunk(2, dim=1)
        h = torch.tanh(a) * torch.sigmoid(b)
        return h

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None):
        h = self.gated(self.conv(F.pad(x, (self.history, 0))), cond)
        res = None if self.res is None else (x + self.res(h)) * math.sqrt(0.5)
        return res, self.skip(h)


class WaveNet(nn.Module):
    """Input classes (B, T) int64 → logits (B, out_channels, T), causal in T.

    The input at t must be the *previous* value (callers shift targets right by one), so the
    output at t depends only on inputs ≤ t, i.e. values < t.

    Args:
        in_classes: size of the input vocabulary (256 µ-law bins, or K codes for the prior).
        out_channels: logits per step (256, K, or 3 × mixtures).
        dilations: one entry per layer, e.g. [1, 2, …, 512] × cycles.
        local_channels: channels of the per-step conditioning (0 = none).
        global_channels: size of the per-sequence conditioning vector (0 = none).
    """

    def __init__(self, in_classes: int, out_channels: int, dilations: list[int],
                 residual_channels: int = 64, gate_channels: int = 128, skip_channels: int = 128,
                 kernel_size: int = 2, local_channels: int = 0, global_channels: int = 0):
        super().__init__()
        self.embed = nn.Embedding(in_classes, residual_channels)
        self.layers = nn.ModuleList(
            GatedLayer(residual_channels, gate_channels, skip_channels, d, kernel_size,
                       local_channels, global_channels, last=(i == len(dilations) - 1))
            for i, d in enumerate(dilations))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, out_channels, 1))
        self.receptive_field = 1 + sum(layer.history for layer in self.layers)

    @classmethod
    def from_config(cls, stack, in_classes: int, out_channels: int, local_channels: int = 0,
                    global_channels: int = 0) -> "WaveNet":
        """Build from a `WaveNetStackConfig` (cycles of dilations 1 … 2^(layers_per_cycle − 1))."""
        dilations = [2 ** i for i in range(stack.layers_per_cycle)] * stack.cycles
        return cls(in_classes, out_channels, dilations, stack.residual_channels, stack.gate_channels,
                   stack.skip_channels, stack.kernel_size, local_channels, global_channels)

    def forward(self, inputs: torch.Tensor | None, local: torch.Tensor | None = None,
                glob: torch.Tensor | None = None, embedded: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (B, T) int64; local (B, C_l, T); glob (B, C_g) → logits (B, out, T).
        `embedded` (B, T, R) replaces the input embedding (a caller that embeds several inputs)."""
        x = (self.embed(inputs) if embedded is None else embedded).transpose(1, 2)
        skips = 0
        for layer in self.layers:
            x, s = layer(x, layer.conditioning(local, glob))
            skips = skips + s
        return self.head(skips)

    # ------------------------------------------------------------ generation (its stepping: generate/networks.py)
    @property
    def input_classes(self) -> int:
        return self.embed.num_embeddings

    @property
    def output_channels(self) -> int:
        return self.head[-1].out_channels
