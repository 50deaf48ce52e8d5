"""The `world` renderer: WORLD's synthesis (Morise et al. 2016) of the frame records, streamed.
`--renderer world`.

WORLD places each pulse at the exact (fractional) time F0's phase completes a cycle and gives
it the minimum-phase response of the spectral envelope, with noise in proportion to the
aperiodicity. An all-pole envelope gain / A(z) is minimum phase already (nn/lpc.py: stable
by construction), so its minimum-phase response is the all-pole filter's impulse response;
this renderer therefore makes the same signal as a stream:

    F0, voicing ─► band-limited pulses at fractional times (kernels.fractional_pulses: a
                   Hann-windowed sinc of 2·TAPS/2 samples, √period high: unit power)
                   · √v where voiced, + white noise · √(1 − v) (v the voicing probability:
                   1 for a given F0, so voiced frames get no noise), · the gain
                 ─► the one all-pole filter (kernels.all_pole), coefficients interpolated
                   within each frame ─► de-emphasis (the driver's)

F0, voicing and gain are interpolated between frames as the coefficients are (kernels.lerp;
F0 only between two voiced frames, else held). What differs from pyworld.synthesize with the
same envelope as its spectrogram (`pyworld_reference`, compared in tests/test_renderers.py
and tools/bench_renderers.py): pyworld's response is the envelope of the pulse's own time
for the whole response (here the filter moves on within it), pyworld removes each pulse's DC
and draws its noise per pulse period.

Streaming: the pulse phase and position, the pulse tails reaching past a block (`carry`),
the noise generator and the filter's history carry over, and every pulse that reaches a
block is placed before it is output (TAPS/2 samples of look-ahead in F0), so an item's
blocks concatenate to its one-shot output exactly (tests/test_renderers.py). Memory: one
block.
"""
from __future__ import annotations

import numpy as np

from ..kernels import all_pole, fractional_pulses
from . import Renderer, interpolated, register

TAPS = 16  # taps of each band-limited pulse (8 each side of its time)


def per_sample_f0(f0: np.ndarray, hop: int, first: int, start: int, stop: int) -> np.ndarray:
    """Frame F0 (n,) Hz of frames first … → samples start … stop − 1: interpolated between two
    voiced frames (kernels.lerp's rule), else frame f's held (0 stays 0)."""
    t = np.arange(start, stop)
    f = t // hop - first
    both = (f0[f] > 0) & (f0[f + 1] > 0)
    return np.where(both, interpolated(f0, hop, first, start, stop), f0[f])


@register
class World(Renderer):
    """Per item: the pulse phase and position, the pulse tails carried into the next block,
    the noise generator and the all-pole filter's history."""

    name = "world"
    lookahead = TAPS // 2

    def __init__(self, decoder, seed: int):
        super().__init__(decoder, seed)
        self.phase, self.pos = np.zeros(1), np.zeros(1, np.int64)
        self.carry = np.zeros(TAPS)
        self.rng = np.random.default_rng(seed)
        self.history = np.zeros(decoder.order)

    def render(self, record, start: int, stop: int) -> np.ndarray:
        r, hop, L = record.numpy(), self.hop, self.lookahead
        f0 = per_sample_f0(r.f0, hop, r.start, start, stop + L)
        v = np.clip(interpolated(r.voicing, hop, r.start, start, stop + L), 0.0, 1.0)
        voiced = f0 > 0
        pulses = fractional_pulses(f0, np.where(voiced, np.sqrt(v), 0.0), start, self.pos, self.phase, TAPS,
                                   float(self.sample_rate), self.carry)
        n = stop - start
        noise = self.rng.standard_normal(n) * np.where(voiced[:n], np.sqrt(1.0 - v[:n]), 1.0)
        gain = interpolated(r.gain, hop, r.start, start, stop)
        return all_pole(gain * (pulses + noise), r.envelope, hop, start, self.history)


def envelope_spectrogram(envelope: np.ndarray, gain: np.ndarray, fft_size: int) -> np.ndarray:
    """The power spectrum |gain / A(e^jω)|² (n, fft_size / 2 + 1) of frames' LPC (n, M) and
    gain (n,): an all-pole envelope as WORLD's spectrogram."""
    taps = np.concatenate([np.ones((envelope.shape[0], 1)), envelope], 1)
    A = np.fft.rfft(taps, fft_size, axis=1)
    return np.ascontiguousarray(gain[:, None] ** 2 / np.maximum(np.abs(A) ** 2, 1e-12))


def pyworld_reference(arrays, hop: int, sample_rate: int, length: int) -> np.ndarray:
    """pyworld.synthesize of FrameArrays (frames 0 …): F0, the envelope as a spectrogram,
    aperiodicity 1 − voicing where voiced and 1 where not, one frame per hop → the pre-
    emphasised signal (length,) (one-shot; the reference `World` is compared with)."""
    import pyworld

    fft_size = pyworld.get_cheaptrick_fft_size(sample_rate)
    sp = envelope_spectrogram(arrays.envelope, np.maximum(arrays.gain, 1e-9), fft_size)
    voiced = arrays.f0 > 0
    ap = np.where(voiced, 1.0 - np.clip(arrays.voicing, 0.0, 1.0), 1.0)
    ap = np.ascontiguousarray(np.repeat(ap[:, None], sp.shape[1], 1))
    y = pyworld.synthesize(np.ascontiguousarray(arrays.f0, np.float64), sp, ap, sample_rate, 1000.0 * hop / sample_rate)
    return np.pad(y, (0, max(0, length - y.size)))[:length]
