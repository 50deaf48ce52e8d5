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
