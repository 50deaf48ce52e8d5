"""The `pulses` renderer: the frame records' envelope over LPC-10's excitation (one pulse per
period of F0 on whole samples where voiced, white noise where not), through the one all-pole
filter (kernels.all_pole). `--renderer pulses`.

Why: it shows what the codes' envelope alone carries with the field's classic vocoder, at a
few hundredths of real time. The benchmark's "env+pulses" row (evaluate/envelope_vocoder.py)
is the same excitation under the source's *own* envelope.

Block by block: the pulse phase, the noise generator, the filter's last M outputs and the
de-emphasis state carry over, so the blocks concatenate to the whole signal exactly.
"""
from __future__ import annotations

import numpy as np

from ..kernels import all_pole
from . import Renderer, per_sample, register


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


@register
class Pulses(Renderer):
    """Per item: its PulseTrain (F0 and gain held over each frame) and all-pole filter state."""

    name = "pulses"

    def __init__(self, decoder, seed: int):
        super().__init__(decoder, seed)
        self.train = PulseTrain(self.sample_rate, seed)
        self.history = np.zeros(decoder.order)

    def render(self, record, start: int, stop: int) -> np.ndarray:
        r, hop = record.numpy(), self.hop
        held = lambda x: per_sample(x, hop, r.start, start, stop)
        e = self.train(held(r.f0)) * held(r.gain)
        return all_pole(e, r.envelope, hop, start, self.history)
