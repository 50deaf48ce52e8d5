"""Speaker perturbation of the encoder's input: a random joint pitch + formant shift, or a
pitch shift alone.

Why: with few training speakers a speaker is trivially identifiable from its pitch and
formants, and a WaveNet decoder trained on reconstruction then reads the speaker from the
codes and ignores its speaker embedding — conversion does nothing. Shifting the encoder's
input by a random factor per segment (the decoder still reconstructs the original) makes
absolute pitch and formant positions unreliable in the codes, so the decoder has to take
them from the speaker embedding (the information-perturbation idea of Choi et al. 2021,
"Neural Analysis and Synthesis", reduced to its cheapest form). Training only: the encoder
sees clean audio at conversion time.

The shift by f = p/q keeps duration (so codes stay aligned with the decoder's target):
a phase-vocoder time stretch to f·T samples, then resampling by q/p back to T samples,
which scales every frequency by f.

The pitch-only shift (`formants=False`; issue #20 asks whether a decoder given F0 explicitly
still needs the formant part) shifts the linear-prediction residual that way and filters it
again by the original frames' all-pole envelopes: the harmonics move, the formants stay.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import torch
import torchaudio.functional as AF

N_FFT, HOP = 256, 64  # 32 ms / 8 ms at 8 kHz; short enough for 2048-sample segments
LPC_ORDER, LPC_HOP, LPC_WINDOW = 12, 40, 200  # 5 ms frames, 25 ms windows at 8 kHz: longer than a
# pitch period, so the envelope holds the formants and the residual the harmonics


@lru_cache(maxsize=None)
def ratios(max_semitones: float, step: float = 0.5) -> tuple[Fraction, ...]:
    """Frequency factors for shifts of −max … +max semitones in `step`s, as fractions with
    small terms (resampling by p/q costs O(max(p, q))), within 0.1% of the exact factor."""
    n = int(max_semitones / step + 1e-9)
    return tuple(Fraction(2 ** (k * step / 12)).limit_denominator(40) for k in range(-n, n + 1))


def _stretch_and_resample(wav: torch.Tensor, factor: Fraction) -> torch.Tensor:
    T = wav.shape[-1]
    window = torch.hann_window(N_FFT, device=wav.device)
    spec = torch.stft(wav, N_FFT, HOP, window=window, return_complex=True)
    advance = torch.linspace(0, math.pi * HOP, spec.shape[-2], device=wav.device)[:, None]
    stretched = AF.phase_vocoder(spec, float(1 / factor), advance)
    y = torch.istft(stretched, N_FFT, HOP, window=window, length=round(T * float(factor)))
    return AF.resample(y, factor.numerator, factor.denominator)


@lru_cache(maxsize=None)
def _delay(factor: Fraction) -> int:
    """Samples by which the phase vocoder moves events for this factor (a few ms, consistent
    per factor): measured once on a tone burst so `shift` can take it back out."""
    n, burst = 4096, 1000
    x = torch.zeros(n)
    x[(n - burst) // 2:(n + burst) // 2] = torch.sin(0.24 * torch.arange(burst)) * torch.hann_window(burst)
    energy = _stretch_and_resample(x, factor)[:n].pow(2)
    return round(float((energy * torch.arange(energy.numel())).sum() / energy.sum()) - (n - 1) / 2)


def shift(wav: torch.Tensor, factor: Fraction) -> torch.Tensor:
    """wav (..., T) → (..., T) with all frequencies scaled by `factor`, timing kept."""
    if factor == 1:
        return wav
    T = wav.shape[-1]
    y = _stretch_and_resample(wav, factor)
    d = _delay(factor)
    y = y[..., d:] if d > 0 else torch.nn.functional.pad(y, (-d, 0))
    if y.shape[-1] < T:
        y = torch.nn.functional.pad(y, (0, T - y.shape[-1]))
    return y[..., :T].clamp(-1, 1)


def shift_pitch(wav: torch.Tensor, factors: list[Fraction]) -> torch.Tensor:
    """wav (B, T) → (B, T) with row i's pitch scaled by factors[i] and every spectral envelope
    kept: the all-pole residual of each frame is shifted (`shift`, rows sharing a factor
    together) and filtered again by the same frame's envelope. The analysis and the filter run
    once over the whole batch: a filter call per factor group costs a new shape each time."""
    from ..nn.lpc import analyse, excitation, synthesis

    x = wav.double()
    env = analyse(x, LPC_HOP, LPC_ORDER, LPC_WINDOW)
    residual = excitation(x, env.lpc, LPC_HOP)
    shifted = residual.clone()
    for f, idx in _groups(factors).items():
        if f != 1:
            index = torch.tensor(idx, device=wav.device)
            shifted[index] = shift(residual[index], f)
    return synthesis(shifted, env.lpc, LPC_HOP).to(wav.dtype).clamp(-1, 1)


def _groups(factors: list[Fraction]) -> dict[Fraction, list[int]]:
    rows: dict[Fraction, list[int]] = {}
    for i, f in enumerate(factors):
        rows.setdefault(f, []).append(i)
    return rows


def random_factors(max_semitones: float, n: int, generator: torch.Generator) -> list[Fraction]:
    """n factors drawn uniformly from `ratios(max_semitones)`."""
    table = ratios(max_semitones)
    return [table[k] for k in torch.randint(len(table), (n,), generator=generator).tolist()]


def perturb_batch(wav: torch.Tensor, factors: list[Fraction], formants: bool = True) -> torch.Tensor:
    """wav (B, T) → (B, T), row i shifted by factors[i] (pitch and formants, or with
    `formants` False the pitch alone). Rows that share a factor are shifted together (one STFT
    for all of them): on a GPU, launches per batch rather than per row."""
    if not formants:
        return shift_pitch(wav, factors)
    out = torch.empty_like(wav)
    for f, idx in _groups(factors).items():
        index = torch.tensor(idx, device=wav.device)
        out[index] = shift(wav[index], f)
    return out
