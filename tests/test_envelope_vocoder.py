"""The model-free rows of the conversion benchmark (audiovq/evaluate/envelope_vocoder.py):
pulses where they belong, unit power, and the envelope carried over to the output."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from audiovq.evaluate.envelope_vocoder import excitation_signal, resynthesize
from audiovq.nn.emphasis import preemphasis
from audiovq.nn.lpc import analyse, cepstrum, log_spectral_distance

SR, HOP = 8000, 32


def test_pulses_every_period_and_noise_where_unvoiced():
    f0 = np.r_[np.full(10, 100.0), np.zeros(10)]  # 100 Hz: one pulse per 80 samples, then unvoiced
    e = excitation_signal("pulses", f0, np.ones(20), HOP, SR, 20 * HOP)
    voiced = e[:10 * HOP]
    spikes = np.nonzero(voiced)[0]
    assert np.all(np.abs(np.diff(spikes) - 80) <= 1) and len(spikes) == 4  # phase summed in float64
    assert np.allclose(voiced[spikes], np.sqrt(80))  # unit power over a period
    assert np.count_nonzero(e[10 * HOP:]) == 10 * HOP  # noise
    g = np.full(20, 3.0)
    n = excitation_signal("noise", f0, g, HOP, SR, 200 * HOP, seed=1)
    assert np.mean(n ** 2) == pytest.approx(9.0, rel=0.1)
    with pytest.raises(ValueError, match="excitation must be"):
        excitation_signal("sine", f0, g, HOP, SR, 10)


@pytest.mark.parametrize("kind", ["noise", "pulses"])
def test_resynthesis_keeps_the_envelope_and_the_loudness(kind):
    """A 120 Hz pulse train through a fixed two-formant all-pole filter: the resynthesis's
    envelope, analysed the same way and averaged over frames (one frame's envelope depends on
    where the pulses fall in its 10 ms window), within 2 dB (log-spectral distance of the
    shape, c₀ aside) of the source's."""
    a = np.convolve([1, -1.3, 0.8], [1, 0.4, 0.5])  # poles well inside the unit circle
    e = np.zeros(SR)
    e[::SR // 120] = 1.0
    x = (lfilter([1.0], a, e) * 0.05).astype(np.float32)
    y = resynthesize(x, SR, HOP, 8, 0.85, kind)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 20 * np.log10(np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(x ** 2))) == pytest.approx(0, abs=0.5)

    def cep(w):
        env = analyse(preemphasis(torch.from_numpy(w)[None].double(), 0.85), HOP, 8)
        c = cepstrum(env.lpc[0], torch.log(env.gain[0]), 32)[10:-10].mean(0)
        return c[1:]  # the shape; the level is checked above

    lsd = (20 / np.log(10)) * log_spectral_distance(torch.cat([torch.zeros(1), cep(x)]),
                                                    torch.cat([torch.zeros(1), cep(y)])).sqrt()
    assert lsd < 2.0, lsd
