"""Generation without the excitation network: the source-filter decoder's envelope, predicted
from the codes at the frame rate, over a model-free excitation (one pulse per period of F0
where voiced, white noise where not: LPC-10's), filtered by linear prediction as the network's
samples would be. `stream(…, excitation="pulses")`, `audiovq convert --excitation pulses`.

Why: it shows what the codes' envelope alone carries (the envelope half of the decoder,
without its excitation half), it is the field's classic vocoder, and it runs at a few
hundredths of real time. The benchmark's "env+pulses" row (evaluate/envelope_vocoder.py) is
the same excitation under the source's *own* envelope.

Block by block: the pulse phase, the noise generator, the all-pole filter's last M outputs
and the de-emphasis state carry over, so the blocks concatenate to the whole signal exactly.
The filter interpolates each frame's coefficients towards the next frame's within the frame,
in the order the excitation network's step does (p[n] = −Σₘ aₘ s[n − m], m = 1 … M).
"""
from __future__ import annotations

import time
from typing import Iterator

import numpy as np
from numba import njit


class PulseTrain:
    """A unit-power excitation handed out block by block: per sample, one pulse of height
    √period at each whole period of F0 (phase carried across samples and blocks) where F0 > 0,
    standard normal noise where F0 = 0."""

    def __init__(self, sample_rate: int, seed: int = 0):
        self.sample_rate, self.phase = sample_rate, 0.0
        self.rng = np.random.default_rng(seed)

    def __call__(self, f0: np.ndarray) -> np.ndarray:
        """F0 per sample (n,) Hz → excitation (n,) float64."""
        f0 = np.asarray(f0, np.float64)
        e = self.rng.standard_normal(f0.size)  # drawn for every sample: blocks = the whole
        voiced = f0 > 0
        # summed on from the carried phase in sample order, as over the whole signal (not
        # reduced mod 1: the rounding, and so each pulse's sample, must not depend on the blocks)
        phase = np.cumsum(np.concatenate([[self.phase], np.where(voiced, f0 / self.sample_rate, 0.0)]))
        pulse = voiced & (np.floor(phase[1:]) > np.floor(phase[:-1]))
        phase = phase[1:]
        if f0.size:
            self.phase = float(phase[-1])
        e[voiced] = 0.0
        e[pulse] = np.sqrt(self.sample_rate / f0[pulse])
        return e


@njit(cache=True)
def all_pole(e, lpc, hop, start, history):  # pragma: no cover (compiled)
    """s = e / A(z) over samples start … start + n − 1 of e (n,): lpc (F + 1, M) holds the
    coefficients of frames start // hop … (and the next one), history (M,) the last M outputs,
    oldest first (updated in place)."""
    n, M = e.size, history.size
    s = np.empty(n)
    f_first = start // hop
    for i in range(n):
        t = start + i
        f = t // hop - f_first
        j = (t % hop) / hop
        acc = 0.0
        for m in range(1, M + 1):
            a0, a1 = lpc[f, m - 1], lpc[f + 1, m - 1]
            a = a0 + j * (a1 - a0) if j < 0.5 else a1 - (a1 - a0) * (1.0 - j)  # torch.lerp's rule
            acc += a * history[M - m]
        s[i] = e[i] - acc
        for m in range(M - 1):
            history[m] = history[m + 1]
        history[M - 1] = s[i]
    return s


def pulse_blocks(decoder, frames, lengths: list[int], block: int | None, seeds: list[int]):
    """`stream`'s blocks (engine.AudioBlock) of a source-filter decoder's envelope under
    pulses: `frames` its `_Frames` (the predicted LPC, gain and the F0 used, per frame)."""
    from .engine import AudioBlock

    hop, sr = decoder.hop, decoder.sample_rate
    longest = max(lengths, default=0)
    block = max(hop, longest if block is None else hop * -(-block // hop))
    trains = [PulseTrain(sr, s) for s in seeds]
    histories = [np.zeros(decoder.order) for _ in lengths]
    filters = [decoder.waveform_filter() for _ in lengths]
    for start in range(0, longest, block):
        t = time.perf_counter()
        audio = []
        for b, n in enumerate(lengths):
            stop = min(n, start + block)
            if stop <= start:
                audio.append(np.zeros(0, np.float32))
                continue
            f0, f1 = start // hop, -(-stop // hop)
            lpc = frames.part(b, "lpc", f0, f1 + 1).cpu().numpy()
            per_sample = lambda x: np.repeat(x, hop)[start - f0 * hop:stop - f0 * hop]
            pitch = per_sample(frames.part(b, "f0", f0, f1).cpu().numpy())
            gain = per_sample(frames.part(b, "gain", f0, f1).cpu().numpy())
            s = all_pole(trains[b](pitch) * gain, lpc, hop, start, histories[b])
            audio.append(filters[b](s).astype(np.float32))
        yield AudioBlock(start, audio, time.perf_counter() - t)


def check_decoder(decoder) -> None:
    """One line (AudioVQError) unless the decoder has an envelope to impose."""
    from ..errors import AudioVQError
    if not getattr(decoder, "use_lpc", False):
        kind = decoder.kind + (" decoder without lpc" if decoder.kind == "source_filter" else " decoder")
        raise AudioVQError(f"excitation 'pulses' needs a decoder with linear prediction "
                           f"(model.decoder.kind=source_filter); this model has a {kind}")


def vocoded(decoder, frames, lengths: list[int], block: int | None, seeds: list[int]) -> Iterator:
    """`pulse_blocks`, after `check_decoder` (here, not at the first block)."""
    check_decoder(decoder)
    return pulse_blocks(decoder, frames, lengths, block, seeds)
