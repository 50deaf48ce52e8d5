"""Linear prediction at the code rate, with diffsptk (differentiable SPTK in PyTorch): the
spectral envelope of each code frame as all-pole coefficients, the prediction p[n] of a
sample from the past ones, and the excitation e[n] = s[n] − p[n] that is left.

Conventions (SPTK's): A(z) = 1 + Σₘ aₘ z⁻ᵐ, m = 1 … M; the envelope is K / A(z) with gain K;
p[n] = −Σₘ aₘ s[n − m], so e = A(z) s and s = e / A(z). Frame f is the code frame of samples
f·hop … (f + 1)·hop − 1: its envelope is analysed over a Hann window of `window` samples
centred on the frame. Sample f·hop + j is filtered with the coefficients interpolated
linearly from frame f's towards frame f + 1's by j / hop (diffsptk's time-varying filters;
the last frame's are held): `coefficients_at` gives them to a generator one sample at a time. Reflection (PARCOR)
coefficients, each in (−1, 1) exactly when A(z) is minimum phase, are the stable form a
network predicts (`from_parcor`).

Why diffsptk: the analysis and filters run on batches on the training device, inside the
training step (the frame-level target is analysed from each batch's audio) and are
differentiable where the loss needs them; pysptk works on one NumPy frame at a time on the
CPU. (The choice and the alternatives: docs/benchmarks.md.)
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class Envelope(NamedTuple):
    gain: torch.Tensor    # (B, F) K, the excitation's RMS the envelope predicts
    lpc: torch.Tensor     # (B, F, M) a₁ … a_M
    parcor: torch.Tensor  # (B, F, M) reflection coefficients, in (−1, 1)


def analyse(signal: torch.Tensor, hop: int, order: int, window: int | None = None) -> Envelope:
    """The all-pole envelope of each code frame of signal (B, T): F = ceil(T / hop) frames.
    `window` defaults to 2.5 hops rounded up to an even number, at least order + 2 samples."""
    import diffsptk

    B, T = signal.shape
    frames = -(-T // hop)
    window = window or max(order + 2, 2 * -(-5 * hop // 4))
    x = signal.double()
    # diffsptk's frame f is centred on sample f·hop; ours on f·hop + hop / 2
    x = F.pad(x[:, hop // 2:], (0, frames * hop - (T - hop // 2)))
    framed = diffsptk.Frame(window, hop, center=True)(x)[:, :frames]
    if framed.shape[1] < frames:
        framed = F.pad(framed, (0, 0, 0, frames - framed.shape[1]))
    windowed = diffsptk.Window(window, window="hanning", norm="power")(framed)
    # eps: a floor on the autocorrelation matrix, so silent frames (all zeros) give a flat envelope
    coeffs = diffsptk.LinearPredictiveCodingAnalysis(window, order, eps=1e-9, dtype=torch.float64)(windowed)
    gain, lpc = coeffs[..., 0], coeffs[..., 1:]
    parcor = diffsptk.LinearPredictiveCoefficientsToParcorCoefficients(order)(coeffs)[..., 1:]
    dtype = signal.dtype
    return Envelope(gain.to(dtype), lpc.to(dtype), parcor.to(dtype))


def from_parcor(parcor: torch.Tensor) -> torch.Tensor:
    """Reflection coefficients (…, M) → LPC a₁ … a_M (…, M) (differentiable)."""
    import diffsptk

    M = parcor.shape[-1]
    k = torch.cat([torch.ones_like(parcor[..., :1]), parcor], -1)
    return diffsptk.ParcorCoefficientsToLinearPredictiveCoefficients(M)(k)[..., 1:]


def _coefficients(lpc: torch.Tensor) -> torch.Tensor:
    """(B, F, M) → A(z)'s taps (B, F, M + 1): 1, a₁ … a_M."""
    return torch.cat([torch.ones_like(lpc[..., :1]), lpc], -1)


def excitation(signal: torch.Tensor, lpc: torch.Tensor, hop: int) -> torch.Tensor:
    """e = A(z) s: signal (B, T), frame coefficients (B, F, M) held over hop samples → (B, T)."""
    import diffsptk

    T = signal.shape[-1]
    frames = lpc.shape[1]
    x = F.pad(signal, (0, frames * hop - T))
    e = diffsptk.AllZeroDigitalFilter(lpc.shape[-1], hop)(x, _coefficients(lpc).to(x.dtype))
    return e[..., :T]


def prediction(signal: torch.Tensor, lpc: torch.Tensor, hop: int) -> torch.Tensor:
    """p[n] = −Σₘ aₘ s[n − m] (B, T) from the past samples of signal (B, T) (zeros before
    the start): the teacher-forced input of an excitation model, s − A(z) s."""
    return signal - excitation(signal, lpc, hop)


def synthesis(excitation_signal: torch.Tensor, lpc: torch.Tensor, hop: int) -> torch.Tensor:
    """s = e / A(z): the all-pole filter of excitation (B, T) by frame coefficients (B, F, M)."""
    import diffsptk

    T = excitation_signal.shape[-1]
    frames = lpc.shape[1]
    e = F.pad(excitation_signal, (0, frames * hop - T))
    gain_one = _coefficients(lpc).to(e.dtype).clone()
    gain_one[..., 0] = 1.0  # diffsptk's all-pole filter reads K from the first entry
    return diffsptk.AllPoleDigitalFilter(lpc.shape[-1], hop)(e, gain_one)[..., :T]


def interpolate(a0: torch.Tensor, a1: torch.Tensor, frac: float) -> torch.Tensor:
    """a0 moved towards a1 by frac ∈ [0, 1) (any shapes alike): torch.lerp's rule written out
    unfused, so it rounds as the numba kernels' `kernels.lerp` does (the package's one
    coefficient interpolation, in PyTorch)."""
    return a0 + frac * (a1 - a0) if frac < 0.5 else a1 - (a1 - a0) * (1.0 - frac)


def coefficients_at(lpc: torch.Tensor, n: int, hop: int) -> torch.Tensor:
    """a₁ … a_M (B, M) that filter sample n, from frame coefficients (B, F, M): frame n // hop's
    moved towards the next frame's by (n mod hop) / hop (`interpolate`), as the filters above do."""
    f, j = divmod(n, hop)
    nxt = min(f + 1, lpc.shape[1] - 1)
    return interpolate(lpc[:, f], lpc[:, nxt], j / hop)


def predict_next(history: torch.Tensor, lpc: torch.Tensor) -> torch.Tensor:
    """One step of generation: p (B,) from the last M samples history (B, M), oldest first,
    and the sample's a₁ … a_M (B, M) (`coefficients_at`). Summed m = 1 … M in that order
    (a cumulative sum), as the fast kernel does, so both give the same p."""
    return -(lpc * history.flip(-1)).cumsum(-1)[..., -1]


def cepstrum(lpc: torch.Tensor, log_gain: torch.Tensor, length: int) -> torch.Tensor:
    """The cepstrum c₀ … c_N of the envelope K / A(z), N = `length` (differentiable): lpc
    (…, M) and log K (…) → (…, N + 1), with log|H(e^{jω})| = c₀ + Σₙ cₙ cos nω."""
    import diffsptk

    M = lpc.shape[-1]
    # SPTK's generalized cepstrum with γ = −1 and its coefficients given multiplied by γ is
    # exactly (K, a₁ … a_M); the gain enters as log K afterwards (c₀), so K = 1 here.
    x = torch.cat([torch.ones_like(lpc[..., :1]), lpc], -1)
    c = diffsptk.MelGeneralizedCepstrumToMelGeneralizedCepstrum(
        M, length, in_gamma=-1, out_gamma=0, in_norm=True, in_mul=True)(x)
    return torch.cat([log_gain[..., None].to(c.dtype), c[..., 1:]], -1)


def log_spectral_distance(c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """The mean over frequency of (log|H₁| − log|H₂|)² in nepers² from cepstra (…, N + 1):
    Δc₀² + ½ Σₙ Δcₙ² (Parseval; exact up to the truncation at N) → (…)."""
    d = c1 - c2
    return d[..., 0] ** 2 + 0.5 * (d[..., 1:] ** 2).sum(-1)
