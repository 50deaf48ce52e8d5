"""Pre-emphasis of the decoder's signal and its inverse (LPCNet, Valin & Skoglund 2019).

The decoder models e[n] = x[n] − a·x[n−1] instead of x[n]; generation produces ê and the
output is the de-emphasised x̂[n] = ê[n] + a·x̂[n−1]. The 8-bit µ-law sampling noise of ê is
white, so after the de-emphasis filter (a low-pass, +~15 dB at DC for a = 0.85, −5 dB at the
Nyquist) it lies *under* speech's falling spectrum instead of filling the quiet highs with
hiss. a = 0 is the identity (the paper's plain µ-law).

Both directions work on (..., T) arrays: torch tensors (training) and numpy arrays
(generation's output); the filter state starts at zero, as at the start of every signal.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.signal import lfilter


def preemphasis(x, coef: float):
    """x (..., T) → e (..., T), e[n] = x[n] − coef·x[n−1] (x[−1] = 0). Torch or numpy."""
    if coef == 0:
        return x
    if isinstance(x, torch.Tensor):
        return torch.cat([x[..., :1], x[..., 1:] - coef * x[..., :-1]], dim=-1)
    x = np.asarray(x)
    out = x.copy()
    out[..., 1:] -= coef * x[..., :-1]
    return out


class Deemphasis:
    """`deemphasis` of one numpy signal handed in block by block: the filter state carries over,
    so the blocks' outputs concatenate to `deemphasis` of the whole (streamed generation)."""

    def __init__(self, coef: float):
        self.coef, self.state = coef, np.zeros(1)

    def __call__(self, e: np.ndarray) -> np.ndarray:
        if self.coef == 0:
            return e
        x, self.state = lfilter([1.0], [1.0, -self.coef], e.astype(np.float64), zi=self.state)
        return x.astype(e.dtype)


def deemphasis(e, coef: float):
    """The inverse of `preemphasis`: x[n] = e[n] + coef·x[n−1]. Torch (on the CPU) or numpy;
    the result has the input's dtype, computed in float64."""
    if coef == 0:
        return e
    if isinstance(e, torch.Tensor):
        x = lfilter([1.0], [1.0, -coef], e.detach().cpu().double().numpy(), axis=-1)
        return torch.from_numpy(x).to(e.dtype)
    e = np.asarray(e)
    return lfilter([1.0], [1.0, -coef], e.astype(np.float64), axis=-1).astype(e.dtype)
