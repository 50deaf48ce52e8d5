"""The encoder-input perturbation: a duration-preserving frequency shift, checked on pure
tones and tone bursts against the factor it should apply."""
import math
from fractions import Fraction

import pytest
import torch

from audiovq.data.perturb import perturb_batch, random_factors, ratios, shift

SR = 8000


def tone(hz, n=8000):
    return torch.sin(2 * math.pi * hz * torch.arange(n) / SR)


def peak_hz(x):
    spec = torch.fft.rfft(x * torch.hann_window(x.numel())).abs()
    return spec.argmax().item() * SR / x.numel()


@pytest.mark.parametrize("factor", [Fraction(4, 3), Fraction(3, 4), Fraction(9, 8), Fraction(5, 6)])
def test_shift_scales_the_frequency_and_keeps_the_length(factor):
    y = shift(tone(300), factor)
    assert y.shape == (8000,)
    assert peak_hz(y) == pytest.approx(300 * float(factor), abs=2)


@pytest.mark.parametrize("start", [300, 1500, 2700])
def test_shift_keeps_the_timing_of_events(start):
    x = torch.zeros(4096)
    x[start:start + 800] = tone(420, 800) * torch.hann_window(800)  # a 100 ms burst
    for factor in (Fraction(4, 3), Fraction(3, 4), Fraction(17, 12), Fraction(9, 8)):
        energy = shift(x, factor).pow(2)
        centre = float((energy * torch.arange(4096)).sum() / energy.sum())
        assert centre == pytest.approx(start + 400, abs=24), factor  # within 3 ms: under one code (4 ms)


def test_factor_one_is_the_identity_and_the_table_is_symmetric():
    x = torch.randn(2048)
    assert torch.equal(shift(x, Fraction(1)), x)
    table = ratios(6)
    assert len(table) == 25 and Fraction(1) in table
    assert len(set(table)) == len(table)
    for k in range(len(table)):  # k-th from below ≈ 1 / k-th from above
        assert float(table[k]) * float(table[-1 - k]) == pytest.approx(1, rel=0.003)
    assert float(table[-1]) == pytest.approx(2 ** 0.5, rel=0.01)


def test_random_factors_follow_the_generator():
    a = random_factors(6, 16, torch.Generator().manual_seed(3))
    b = random_factors(6, 16, torch.Generator().manual_seed(3))
    assert a == b and len(set(a)) > 4
    wav = torch.stack([tone(200, 2048), tone(400, 2048)])
    out = perturb_batch(wav, [Fraction(1), Fraction(5, 4)])
    assert torch.equal(out[0], wav[0]) and peak_hz(out[1]) == pytest.approx(500, abs=8)


def test_a_batch_shifted_by_shared_factors_equals_row_by_row():
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(12, 2048, generator=g) * 0.1
    factors = random_factors(6, 12, g)
    factors[3] = factors[7] = Fraction(5, 4)  # at least one factor shared by two rows
    rows = torch.stack([shift(row, f) for row, f in zip(wav, factors)])
    torch.testing.assert_close(perturb_batch(wav, factors), rows, atol=1e-5, rtol=0)
    alone = torch.cat([perturb_batch(row[None], [f], formants=False) for row, f in zip(wav, factors)])
    torch.testing.assert_close(perturb_batch(wav, factors, formants=False), alone, atol=1e-5, rtol=0)


def _vowel(f0, n=4000, seed=0):
    """A pulse train at f0 through a fixed two-formant all-pole filter (700 Hz and 1800 Hz):
    a hand-made vowel whose envelope is known."""
    import numpy as np
    from scipy.signal import lfilter
    x = np.zeros(n)
    x[::round(SR / f0)] = 1.0
    a = np.array([1.0])
    for hz, bw in ((700, 80), (1800, 120)):
        r, w = math.exp(-math.pi * bw / SR), 2 * math.pi * hz / SR
        a = np.convolve(a, [1, -2 * r * math.cos(w), r * r])
    y = lfilter([1.0], a, x) + 1e-4 * np.random.default_rng(seed).standard_normal(n)
    return torch.tensor(y / np.abs(y).max() * 0.5, dtype=torch.float32)[None]


def _envelope_db(x):
    """The order-12 all-pole envelope (dB, 256 bins) of x (1, T) as one frame."""
    from audiovq.nn.lpc import analyse
    a = analyse(x.double(), x.shape[-1], 12, x.shape[-1]).lpc[0, 0]
    spectrum = torch.fft.rfft(torch.cat([torch.ones(1, dtype=a.dtype), a]), 510).abs()
    return -20 * torch.log10(spectrum)


def _f0_hz(x):
    """F0 of x (1, T) by the autocorrelation's highest peak within 60–400 Hz."""
    x = x[0] - x[0].mean()
    r = torch.fft.irfft(torch.fft.rfft(x, 2 * x.numel()).abs() ** 2)[:x.numel()]
    lo, hi = SR // 400, SR // 60
    return SR / (lo + int(r[lo:hi].argmax()))


@pytest.mark.parametrize("factor", [Fraction(6, 5), Fraction(5, 6)])
def test_pitch_only_shift_moves_the_harmonics_and_keeps_the_formants(factor):
    x = _vowel(125.0)
    joint = perturb_batch(x, [factor])
    alone = perturb_batch(x, [factor], formants=False)
    assert alone.shape == x.shape and torch.isfinite(alone).all()
    for y in (joint, alone):
        assert _f0_hz(y[:, 400:-400]) == pytest.approx(_f0_hz(x) * float(factor), rel=0.04)
    env, env_joint, env_alone = (_envelope_db(y[:, 400:-400]) for y in (x, joint, alone))
    peak = lambda e: int(e[:128].argmax()) * SR / 2 / 255  # the first formant's bin, in Hz
    assert peak(env_alone) == pytest.approx(peak(env), abs=60)
    assert peak(env_joint) == pytest.approx(peak(env) * float(factor), rel=0.08)
    # the envelopes' shapes (level removed) below 3 kHz: a downward shift leaves the residual's
    # top band empty whatever keeps the formants
    shape = lambda e: e[:192] - e[:192].mean()
    assert (shape(env_alone) - shape(env)).abs().mean() < 0.5 * (shape(env_joint) - shape(env)).abs().mean()
