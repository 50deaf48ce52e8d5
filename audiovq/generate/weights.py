"""A WaveNet's parameters in the fused layouts used to run it one step at a time.

Exported from the PyTorch module at every call (the module stays the one source of truth;
the export takes milliseconds, so there is no cache to go stale).

Shapes: L layers, R residual, G gate (H = G / 2 gated outputs), S skip, O outputs, K taps,
V input classes, C_l / C_g local / global conditioning channels.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from ..nn.wavenet import WaveNet


class StackWeights(NamedTuple):
    """The autoregressive part of a WaveNet (everything that runs once per step)."""
    embed: object       # (V, R)
    conv: object        # (L, G, K·R) dilated conv, taps oldest first
    res: object         # (L, R, H) residual projection × √½ (zeros for the last layer)
    res_bias: object    # (L, R) × √½
    skip: object        # (S, L·H) every layer's skip projection side by side: one mat-vec per step
    skip_bias: object   # (S,) summed over layers
    head1: object       # (S, S)
    head1_bias: object  # (S,)
    head2: object       # (O, S)
    head2_bias: object  # (O,)
    dilations: object   # (L,) int64


class GateWeights(NamedTuple):
    """The conditioning part: per-layer projections into the gates, stacked over layers."""
    local: torch.Tensor | None   # (L·G, C_l)
    glob: torch.Tensor | None    # (L·G, C_g)
    bias: torch.Tensor           # (L·G,) the dilated convs' biases (added with the conditioning)


def _stack(wavenet: WaveNet) -> StackWeights:
    layers = wavenet.layers
    R = wavenet.embed.weight.shape[1]
    H = layers[0].conv.out_channels // 2
    half = math.sqrt(0.5)
    conv = torch.stack([l.conv.weight.permute(0, 2, 1).reshape(l.conv.out_channels, -1) for l in layers])
    res = torch.stack([l.res.weight[:, :, 0] * half if l.res is not None
                       else conv.new_zeros(R, H) for l in layers])
    res_bias = torch.stack([l.res.bias * half if l.res is not None else conv.new_zeros(R) for l in layers])
    skip = torch.cat([l.skip.weight[:, :, 0] for l in layers], dim=1)
    skip_bias = torch.stack([l.skip.bias for l in layers]).sum(0)
    _, c1, _, c2 = wavenet.head
    return StackWeights(wavenet.embed.weight, conv, res, res_bias, skip, skip_bias,
                        c1.weight[:, :, 0], c1.bias, c2.weight[:, :, 0], c2.bias,
                        torch.tensor([l.dilation for l in layers], dtype=torch.int64))


def _gates(wavenet: WaveNet) -> GateWeights:
    layers = wavenet.layers
    local = torch.cat([l.local.weight[:, :, 0] for l in layers]) if layers[0].local is not None else None
    glob = torch.cat([l.glob.weight for l in layers]) if layers[0].glob is not None else None
    return GateWeights(local, glob, torch.cat([l.conv.bias for l in layers]))


@torch.no_grad()
def stack_weights(wavenet: WaveNet) -> StackWeights:
    """Torch tensors on the module's device (the PyTorch incremental path)."""
    return StackWeights(*(t.detach().contiguous() for t in _stack(wavenet)))


@torch.no_grad()
def stack_arrays(wavenet: WaveNet) -> StackWeights:
    """Contiguous float32 numpy arrays (int64 dilations) on the CPU (the fast path)."""
    out = []
    for t in _stack(wavenet):
        a = t.detach().cpu().numpy()
        out.append(np.ascontiguousarray(a if a.dtype == np.int64 else a.astype(np.float32)))
    return StackWeights(*out)


@torch.no_grad()
def gate_weights(wavenet: WaveNet) -> GateWeights:
    return GateWeights(*(None if t is None else t.detach().contiguous() for t in _gates(wavenet)))


def history_sizes(wavenet: WaveNet) -> list[int]:
    """Ring-buffer length per layer: a power of two > the layer's history, so t & (size - 1)
    indexes it and slots not yet written read as the zero left-padding of `forward`."""
    return [1 << max(1, math.ceil(math.log2(l.history + 1))) for l in wavenet.layers]
