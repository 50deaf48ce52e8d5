"""The gate conditioning of every layer, produced a chunk of steps at a time.

Each WaveNet layer adds `W_local · local[t] + W_glob · glob + conv bias` to its gate
pre-activations. Stacked over layers that is an (L·G)-vector per step; for a long file the
whole (T, L·G) tensor would be gigabytes, so it is made per chunk of steps, one matrix
product per item (the same shapes whatever the batch, so an item's numbers do not depend
on the batch it is generated in).

Local conditioning comes from a `LocalSource` (nn/decoders/windows.py): a plain (B, C_l, T)
tensor (`TensorLocal`), or what a decoder's frame half makes a window of frames at a time
(the WaveNet decoder's upsampled codes, the source-filter decoder's frame records). With
values constant over `hold` = hop steps, the projection is done per code frame rather than
per sample.
"""
from __future__ import annotations

import sys

import torch

from ..nn.decoders.windows import LocalSource, fit
from .weights import GateWeights

CONSTANT = sys.maxsize  # `hold` of conditioning that never changes along time


class TensorLocal:
    """A (B, C_l, T / hold) tensor: one value per block of `hold` steps (1: at the step rate)."""

    def __init__(self, local: torch.Tensor, hold: int = 1):
        self.local, self.hold = local, hold

    def blocks(self, b0: int, b1: int, items: list[int]) -> torch.Tensor:
        return fit(self.local[items, :, b0:b1], b1 - b0)


class GateConditioning:
    """Rows of per-layer gate conditioning: `rows(t0, n, items)` → (len(items), ceil(n / hold), L, G).

    (What a network's `step_conditioning` returns: an object with `hold` and `rows`.)

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
        glob = None if glob is None else glob.detach()
        if glob is None:
            const = gates.bias.expand(batch, -1)
        else:  # item by item (a matrix-vector product), as alone
            glob = glob.to(gates.glob.dtype)
            const = torch.stack([torch.addmv(gates.bias, gates.glob, glob[b]) for b in range(batch)])
        self.const = const.contiguous()  # (B, L·G)
        self.hold = CONSTANT if local is None else local.hold
        self._buffers: dict = {}

    @torch.no_grad()  # (no_grad is per thread: the fast path's workers call this too)
    def rows(self, t0: int, n: int, items: list[int] | None = None) -> torch.Tensor:
        """Conditioning of steps t0 … t0 + n − 1 for the given items (default all). The
        result is overwritten by the next call for the same items."""
        items = list(range(self.const.shape[0])) if items is None else items
        if self.local is None:
            return self.const[items].view(len(items), 1, self.layers, -1)
        b0, r = t0 // self.hold, -(-n // self.hold)
        values = self.local.blocks(b0, b0 + r, items).to(self.weight.dtype)  # (I, C_l, r)
        key = (tuple(items), r)  # one buffer per caller (thread), reused: no fresh pages per chunk
        out = self._buffers.get(key)
        if out is None:
            out = self._buffers[key] = self.const.new_empty(len(items), r, self.const.shape[1])
        for i, b in enumerate(items):
            torch.addmm(self.const[b], values[i].T, self.weight.T, out=out[i])
        return out.view(len(items), r, self.layers, -1)
