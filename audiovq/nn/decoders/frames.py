"""The frame record: what a decoder's frame half hands a renderer (generate/renderers/), one
named record per item and span of code frames, so renderers read fields by name instead of
agreeing on a packed row layout.

    codes, speaker, F0 ──decoder's frame half──► FrameRecord (frames f … f + n − 1)
                                                  │
                        renderer (block by block) ◄┘ ──► samples

Envelope conventions are nn/lpc.py's (SPTK's): the envelope of frame f is gain / A(z) with
A(z) = 1 + Σₘ aₘ z⁻ᵐ, applied to the pre-emphasised signal; sample f·hop + j is filtered with
the coefficients interpolated from frame f's towards frame f + 1's by j / hop, so a renderer
of frames f … f + n − 2 reads one frame more than it renders.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class FrameRecord:
    """Frames start … start + n − 1 of one item (past the item's end: no conditioning, its last
    frame's envelope, gain 0, unvoiced)."""
    start: int                  # index of the first frame
    conditioning: torch.Tensor  # (C, n) float32: the sample-rate network's conditioning
    envelope: torch.Tensor      # (n, M) float64: LPC a₁ … a_M (0 without linear prediction)
    gain: torch.Tensor          # (n,) float64: the envelope's gain K (the excitation's RMS)
    f0: torch.Tensor            # (n,) float64: Hz, 0 = unvoiced (0 for a decoder without pitch)
    voicing: torch.Tensor       # (n,) float64: probability of voicing (1 / 0 for a given F0)
    sharpening: torch.Tensor    # (n,) float32: LPCNet's β for the excitation network's logits

    def __len__(self) -> int:
        return int(self.gain.shape[0])

    def numpy(self) -> "FrameArrays":
        """The fields a model-free renderer reads, as float64 numpy arrays on the CPU."""
        as_np = lambda x: np.ascontiguousarray(x.detach().cpu().double().numpy())
        return FrameArrays(self.start, as_np(self.envelope), as_np(self.gain), as_np(self.f0),
                           as_np(self.voicing))


@dataclass
class FrameArrays:
    """A FrameRecord's envelope, gain, F0 and voicing as numpy float64 arrays ((n, M), (n,)…)."""
    start: int
    envelope: np.ndarray
    gain: np.ndarray
    f0: np.ndarray
    voicing: np.ndarray
