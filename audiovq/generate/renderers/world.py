"""The `world` renderer: WORLD's synthesis (Morise et al. 2016) of the frame records, streamed.
`--renderer world`.

Like WORLD's synthesis, it overlap-adds one response per pulse:

    F0, voicing ─► pulse times: the phase of F0 (of 500 Hz where unvoiced, WORLD's default)
                   passing a whole cycle, at fractional times (kernels.pulse_times)
    per pulse τ ─► the envelope's power spectrum at τ (frames' |gain / A|², interpolated
                   linearly in power between the two frames around τ) ─► its minimum-phase
                   response H (by the folded cepstrum, `minimum_phase`)
                ─► H · (√period · √v  +  zero-mean noise of one period · √(1 − v)), delayed to τ
                   (a linear phase: the fraction of a sample is kept), v the voicing
                   probability (0 where unvoiced) ─► overlap-added; de-emphasis (the driver's)

Each pulse's response is fixed by the envelope at its own time, as in WORLD: measured on the
fixed test's sources with their own envelope (docs/renderers.md, session 11), this scores
0.3–0.4 DNSMOS above filtering a pulse train through a time-varying all-pole filter (the
`pulses` renderer's way and this renderer's own before session 11), mostly on voiced
speech, and above pyworld.synthesize of the same envelope. What differs from pyworld
(`pyworld_reference`, compared in tests/test_renderers.py): no DC is removed from each
response (measured no better), the voicing decision is F0 > 0 of the frames as given
(`per_sample_f0`: no threshold of an interpolated decision), a pulse's noise lasts its own
period rather than the distance to the next pulse (so no pulse waits for the next), and
the response length is a power of two ≥ 64 ms.

Streaming: the phase and the next sample to advance it from, the responses' tails reaching
past a block (`tail`) and the noise generator carry over, and every pulse whose response
starts in a block (τ < stop + LEAD) is placed before the block is output, so an item's
blocks concatenate to its one-shot output exactly (tests/test_renderers.py). Memory: one
block plus CHUNK responses.
"""
from __future__ import annotations

import math

import numpy as np

from ..kernels import pulse_times
from . import Renderer, interpolated, register

LEAD = 8          # samples each response starts before its pulse (the fractional delay's sinc)
UNVOICED_HZ = 500.0  # where unvoiced, noise is drawn in segments of 1 / 500 s, each shaped at its own time
CHUNK = 2048      # pulses whose responses are computed at once (bounds the memory of one block)


def response_size(sample_rate: int) -> int:
    """Samples of each pulse's response: the power of two ≥ 64 ms (512 at 8 kHz)."""
    return 1 << math.ceil(math.log2(0.064 * sample_rate))


def per_sample_f0(f0: np.ndarray, hop: int, first: int, start: int, stop: int) -> np.ndarray:
    """Frame F0 (n,) Hz of frames first … → samples start … stop − 1: interpolated between two
    voiced frames (kernels.lerp's rule), else frame f's held (0 stays 0)."""
    t = np.arange(start, stop)
    f = t // hop - first
    both = (f0[f] > 0) & (f0[f + 1] > 0)
    return np.where(both, interpolated(f0, hop, first, start, stop), f0[f])


def minimum_phase(power: np.ndarray, size: int) -> np.ndarray:
    """Power spectra (P, size / 2 + 1) → the spectra (P, size / 2 + 1) complex of their
    minimum-phase square roots, by folding the real cepstrum onto positive quefrencies. For
    an all-pole envelope it is the all-pole filter's own response (tests/test_renderers.py)."""
    c = np.fft.irfft(0.5 * np.log(np.maximum(power, 1e-30)), size, axis=-1)
    c[:, 1:size // 2] *= 2.0
    c[:, size // 2 + 1:] = 0.0
    return np.exp(np.fft.rfft(c, size, axis=-1))


@register
class World(Renderer):
    """Per item: the phase and the next sample to advance it from, the responses' tails
    carried into the next block and the noise generator."""

    name = "world"
    lookahead = LEAD

    def __init__(self, decoder, seed: int):
        super().__init__(decoder, seed)
        self.size = response_size(self.sample_rate)
        self.phase, self.pos = np.zeros(1), np.zeros(1, np.int64)
        self.tail = np.zeros(self.size)
        self.rng = np.random.default_rng(seed)
        self.omega = 2.0 * np.pi * np.arange(self.size // 2 + 1) / self.size

    def render(self, record, start: int, stop: int) -> np.ndarray:
        r, hop, L, N = record.numpy(), self.hop, LEAD, self.size
        n = stop - start
        f0 = per_sample_f0(r.f0, hop, r.start, start, stop + L)
        v = np.clip(interpolated(r.voicing, hop, r.start, start, stop + L), 0.0, 1.0)
        voiced = f0 > 0
        rate = np.where(voiced, f0, UNVOICED_HZ)
        times, at = pulse_times(rate, start, self.pos, self.phase, float(self.sample_rate))
        # buf[L + i] is sample start + i; the L before only catch the first block's first pulses
        buf = np.zeros(L + n + N)
        buf[L:L + N] = self.tail
        for c in range(0, times.size, CHUNK):
            self._add(buf, r, times[c:c + CHUNK], at[c:c + CHUNK] - start, rate, voiced, v, start)
        self.tail = buf[L + n:].copy()
        return buf[L:L + n].copy()

    def _add(self, buf, r, times, i, rate, voiced, v, start):
        """Overlap-add the responses of pulses at `times`, found at block samples i, to buf."""
        N, hop = self.size, self.hop
        nf = r.gain.size
        pos = np.clip(times / hop - r.start, 0.0, nf - 1.0)
        lo = np.minimum(np.floor(pos).astype(np.int64), nf - 2)
        w = (pos - lo)[:, None]
        first, last = lo.min(), lo.max() + 2  # the frames these pulses fall between
        spectra = envelope_spectrogram(r.envelope[first:last], np.maximum(r.gain[first:last], 1e-9), N)
        power = (1.0 - w) * spectra[lo - first] + w * spectra[lo + 1 - first]
        H = minimum_phase(power, N) * np.exp(-1j * self.omega[None] * (times - (start + i - LEAD))[:, None])
        vo, vp = voiced[i], v[i]
        period = self.sample_rate / rate[i]
        periodic = np.where(vo, np.sqrt(period * vp), 0.0)
        noisy = np.where(vo, np.sqrt(1.0 - vp), 1.0)
        noise = np.zeros((times.size, N))
        for k in np.nonzero(noisy > 0)[0]:  # in time order: the generator's draws match any blocking
            e = self.rng.standard_normal(max(1, int(round(period[k]))))
            noise[k, :e.size] = (e - e.mean()) * noisy[k]
        responses = np.fft.irfft(H * (periodic[:, None] + np.fft.rfft(noise, N, axis=1)), N, axis=1)
        for k, j in enumerate(i):  # response k starts LEAD samples before its pulse's sample
            buf[j:j + N] += responses[k]


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
