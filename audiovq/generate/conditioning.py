"""The gate conditioning of every layer, produced a chunk of steps at a time.

Each WaveNet layer adds `W_local · local[t] + W_glob · glob + conv bias` to its gate
pre-activations. Stacked over layers that is an (L·G)-vector per step; for a long file the
whole (T, L·G) tensor would be gigabytes, so it is made per chunk of steps, one matrix
product per item (the same shapes whatever the batch, so an item's numbers do not depend
on the batch it is generated in).

Local conditioning comes from a `LocalSource`: a plain (B, C_l, T) tensor, or the VQ-VAE's
upsampled codes (`UpsampledCodes`), whose code-rate context is computed once and upsampled
per chunk. With "repeat" upsampling the local values are constant over `hold` = hop steps,
and the projection is done per code frame rather than per sample.
"""
from __future__ import annotations

import sys
from typing import Protocol

import torch
import torch.nn.functional as F

from ..nn.vqvae import Conditioner
from .weights import GateWeights

CONSTANT = sys.maxsize  # `hold` of conditioning that never changes along time


class LocalSource(Protocol):
    """Per-step conditioning, delivered in pieces."""
    hold: int  # values are constant over aligned blocks of `hold` steps

    def blocks(self, b0: int, b1: int) -> torch.Tensor:
        """The distinct values of blocks b0..b1-1: (B, C_l, b1 - b0)."""


class TensorLocal:
    """A (B, C_l, T) tensor already at the step rate."""
    hold = 1

    def __init__(self, local: torch.Tensor):
        self.local = local

    def blocks(self, b0: int, b1: int) -> torch.Tensor:
        return self.local[..., b0:b1]


class UpsampledCodes:
    """The decoder's local conditioning: `Conditioner` context computed once (B, C, F) at the
    code rate, upsampled to the sample rate a chunk at a time."""

    def __init__(self, conditioner: Conditioner, context: torch.Tensor):
        self.conditioner, self.context = conditioner, context
        self.hop = conditioner.hop
        self.hold = 1 if conditioner.upsample is not None else self.hop

    def blocks(self, b0: int, b1: int) -> torch.Tensor:
        up = self.conditioner.upsample
        if up is None:  # repeat: one block per code frame
            return self.context[..., b0:b1]
        # kernel = stride = hop: output sample f·hop + j depends on frame f only, so frames
        # can be upsampled on their own; per item, as each item's numbers must not depend
        # on the batch: (1, C_in, n) → (1, C_out, n · hop)
        f0, f1 = b0 // self.hop, -(-b1 // self.hop)
        w = up.weight.flatten(1)  # (C_in, C_out · hop)
        out = []
        for h in self.context[..., f0:f1]:  # (C_in, n)
            out.append((h.T @ w).view(h.shape[1], -1, self.hop).permute(1, 0, 2).flatten(1))
        out = torch.stack(out) + up.bias[:, None]
        return out[..., b0 - f0 * self.hop: b1 - f0 * self.hop]


def codes_context(conditioner: Conditioner, codewords: torch.Tensor, frames: list[int]) -> torch.Tensor:
    """Conditioner context (B, C, F) of codewords (B, D, F), each item computed on its own
    first `frames[b]` frames (as if generated alone) and zero beyond."""
    out = []
    for b, n in enumerate(frames):
        h = conditioner.context(codewords[b:b + 1, :, :n])
        out.append(F.pad(h, (0, codewords.shape[-1] - n)))
    return torch.cat(out)


class GateConditioning:
    """Rows of per-layer gate conditioning: `rows(t0, n)` → (B, ceil(n / hold), L, G).

    Row r applies to steps t0 + r·hold … t0 + (r + 1)·hold − 1 (t0 must be a multiple of
    `hold`); without local conditioning there is a single row for all steps.
    """

    def __init__(self, gates: GateWeights, layers: int, batch: int,
                 local: LocalSource | torch.Tensor | None = None, glob: torch.Tensor | None = None):
        if isinstance(local, torch.Tensor):
            local = TensorLocal(local)
        if (local is None) != (gates.local is None):
            raise ValueError("local conditioning must be given exactly when the WaveNet has local_channels")
        if (glob is None) != (gates.glob is None):
            raise ValueError("global conditioning must be given exactly when the WaveNet has global_channels")
        self.local, self.layers = local, layers
        self.weight = gates.local
        const = gates.bias.expand(batch, -1)
        if glob is not None:
            const = const + glob.to(gates.glob.dtype) @ gates.glob.T
        self.const = const.contiguous()  # (B, L·G)
        self.hold = CONSTANT if local is None else local.hold

    def rows(self, t0: int, n: int) -> torch.Tensor:
        """Conditioning for steps t0 … t0 + n − 1. Local values past the end of the source
        count as zero (those steps are never used), so every chunk is one product shape."""
        B = self.const.shape[0]
        if self.local is None:
            return self.const.view(B, 1, self.layers, -1)
        b0, r = t0 // self.hold, -(-n // self.hold)
        values = self.local.blocks(b0, b0 + r).to(self.weight.dtype)  # (B, C_l, ≤ r)
        if values.shape[-1] < r:
            values = F.pad(values, (0, r - values.shape[-1]))
        out = self.const.new_empty(B, r, self.const.shape[1])
        for b in range(B):
            torch.addmm(self.const[b], values[b].T, self.weight.T, out=out[b])
        return out.view(B, r, self.layers, -1)
