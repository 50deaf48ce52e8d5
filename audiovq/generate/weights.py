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


# ---------------------------------------------------------------- reduced-precision panels
# One step at batch 1 reads every weight once; in float32 that is ~2.5 MB for the reference
# decoder, more than a core's L2. The fast path can instead read int8 or bfloat16 weights in
# "panels": a matrix (O, I) becomes (⌈O / PANEL⌉, I, PANEL), so the kernels (kernels.py) keep
# PANEL outputs in vector registers and stream one contiguous PANEL-wide row per input,
# with no horizontal sums. int8 panels hold pairs of inputs side by side,
# (⌈O / PANEL⌉, ⌈I / 2⌉, PANEL, 2), for 16-bit pair multiply-adds (pmaddwd / vpdpwssd).
# Outputs are padded with zero rows to a multiple of PANEL (and int8 inputs with a zero
# column to an even count).

PANEL = 64  # outputs per panel: 4 accumulators of 16 float32 lanes (AVX-512; two of 8 on AVX2)
PRECISIONS = ("float32", "bf16", "int8")


class PanelWeights(NamedTuple):
    """The mat-vec weights of a StackWeights as panels and per-output scales. bfloat16:
    uint16 bits, W[o, i] ≈ data[o // P, i, o % P] (scales 1); int8: W[o, i] ≈ scale[o] ·
    data[o // P, i // 2, o % P, i % 2]. Shapes for bfloat16 (int8: (…, ⌈I/2⌉, P, 2)):"""
    conv: np.ndarray        # (L, ⌈G/P⌉, K·R, P)
    conv_scale: np.ndarray  # (L, ⌈G/P⌉·P)
    res: np.ndarray         # (L, ⌈R/P⌉, H, P)
    res_scale: np.ndarray   # (L, ⌈R/P⌉·P)
    skip: np.ndarray        # (⌈S/P⌉, L·H, P)
    skip_scale: np.ndarray  # (⌈S/P⌉·P,)
    head1: np.ndarray       # (⌈S/P⌉, S, P)
    head1_scale: np.ndarray
    head2: np.ndarray       # (⌈O/P⌉, S, P)
    head2_scale: np.ndarray


def quantize_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row: (q int8 (…, O, I) in −127 … 127, scale float32 (…, O)),
    |w − scale · q| ≤ scale / 2 = max|row| / 254."""
    peak = np.abs(w).max(-1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[..., None]), -127, 127).astype(np.int8)
    return q, scale


def to_bfloat16(w: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bits (uint16), rounded to nearest even: 8 significant bits,
    relative error ≤ 2⁻⁸."""
    u = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bfloat16(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def _panels(a: np.ndarray, pairs: bool = False) -> np.ndarray:
    """(…, O, I) → (…, ⌈O/PANEL⌉, I, PANEL), or with pairs (…, ⌈O/PANEL⌉, ⌈I/2⌉, PANEL, 2);
    zero rows (and a zero column) appended."""
    *lead, O, I = a.shape
    widths = [(0, 0)] * len(lead) + [(0, -O % PANEL), (0, I % 2 if pairs else 0)]
    a = np.pad(a, widths)
    P, I = a.shape[-2] // PANEL, a.shape[-1]
    if pairs:
        return np.ascontiguousarray(np.moveaxis(a.reshape(*lead, P, PANEL, I // 2, 2), -3, -2))
    return np.ascontiguousarray(a.reshape(*lead, P, PANEL, I).swapaxes(-1, -2))


def _pad_rows(s: np.ndarray) -> np.ndarray:
    pad = -s.shape[-1] % PANEL
    return np.ascontiguousarray(np.concatenate([s, np.ones((*s.shape[:-1], pad), s.dtype)], -1) if pad else s)


def pack_matrix(w: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """A float32 (…, O, I) matrix as (panels, scales) of the given precision."""
    if precision == "int8":
        q, scale = quantize_int8(w)
    elif precision == "bf16":
        q, scale = to_bfloat16(w), np.ones(w.shape[:-1], np.float32)
    else:
        raise ValueError(f"precision must be one of {PRECISIONS[1:]} for panels, got {precision!r}")
    return _panels(q, pairs=precision == "int8"), _pad_rows(scale)


def unpack_matrix(data: np.ndarray, scale: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The float32 (…, rows, cols) matrix that panels stand for (the inverse of `pack_matrix`
    up to rounding)."""
    if data.dtype == np.uint16:
        v = from_bfloat16(data)
    else:  # (…, n, I/2, P, 2) → (…, n, I, P)
        v = np.moveaxis(data, -2, -3).astype(np.float32)
        v = v.reshape(*v.shape[:-3], v.shape[-3], -1).swapaxes(-1, -2)
    *lead, n, I, P = v.shape
    full = v.swapaxes(-1, -2).reshape(*lead, n * P, I) * scale[..., None]
    return full[..., :rows, :cols]


def pack_stack(w: StackWeights, precision: str) -> PanelWeights:
    """The mat-vec weights of `stack_arrays` in reduced precision (biases, the embedding and
    the dilations stay in `w`)."""
    out = []
    for m in (w.conv, w.res, w.skip, w.head1, w.head2):
        out += pack_matrix(m, precision)
    return PanelWeights(*out)


def no_panels() -> PanelWeights:
    """Placeholder of the right types for the float32 path (which reads no panels)."""
    d4, d3, s2, s1 = np.zeros((1, 1, 1, PANEL), np.uint16), np.zeros((1, 1, PANEL), np.uint16), \
        np.ones((1, PANEL), np.float32), np.ones(PANEL, np.float32)
    return PanelWeights(d4, s2, d4, s2, d3, s1, d3, s1, d3, s1)
