"""Linear prediction (audiovq/nn/lpc.py) against independent computations: the envelope of a
known all-pole signal, the normal equations solved with SciPy on the same windowed frame,
and the sample-by-sample generation recursion for the excitation filter."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter
from scipy.signal.windows import hann

from audiovq.nn.lpc import analyse, coefficients_at, excitation, from_parcor, predict_next, prediction, synthesis

HOP, ORDER = 32, 12


def ar_signal(a, n=16000, seed=0):
    e = np.random.default_rng(seed).standard_normal(n)
    return lfilter([1.0], np.concatenate([[1.0], a]), e), e


def test_the_envelope_of_a_known_all_pole_signal():
    a = np.array([-1.3, 0.8, -0.2])  # A(z) = 1 − 1.3 z⁻¹ + 0.8 z⁻² − 0.2 z⁻³, minimum phase
    s, e = ar_signal(a)
    env = analyse(torch.from_numpy(s)[None], HOP, 3, window=1024)
    inner = slice(20, -20)
    np.testing.assert_allclose(env.lpc[0, inner].mean(0).numpy(), a, atol=0.03)
    assert abs(float(env.gain[0, inner].mean()) - 1.0) < 0.05  # the excitation's RMS
    assert (env.parcor.abs() < 1).all()


def test_each_frame_solves_the_normal_equations_of_its_own_window():
    s, _ = ar_signal(np.array([-0.9, 0.4]), n=4000, seed=1)
    x = torch.from_numpy(s)[None]
    window = 80
    env = analyse(x, HOP, ORDER, window=window)
    assert env.lpc.shape == (1, -(-4000 // HOP), ORDER)
    w = hann(window, sym=True)
    w = w / np.sqrt(np.mean(w ** 2))
    for f in (3, 40, 100):
        centre = f * HOP + HOP // 2  # the middle of code frame f
        seg = s[centre - window // 2:centre + window // 2] * w
        r = np.array([seg[:window - k] @ seg[k:] for k in range(ORDER + 1)])
        a = solve_toeplitz(r[:ORDER], -r[1:])
        np.testing.assert_allclose(env.lpc[0, f].numpy(), a, rtol=1e-6, atol=1e-8)


def test_excitation_and_prediction_give_back_the_signal_and_generation_reproduces_it():
    torch.manual_seed(0)
    T = 50 * HOP + 7
    s = torch.from_numpy(ar_signal(np.array([-1.1, 0.5]), n=T, seed=2)[0])[None]
    env = analyse(s, HOP, ORDER)
    e = excitation(s, env.lpc, HOP)
    p = prediction(s, env.lpc, HOP)
    torch.testing.assert_close(p + e, s)
    torch.testing.assert_close(synthesis(e, env.lpc, HOP), s, rtol=1e-9, atol=1e-9)
    # generation: s[n] = e[n] + p[n], p from the samples generated so far and the sample's coefficients
    hist = torch.zeros(1, ORDER, dtype=torch.float64)
    out = torch.zeros(T, dtype=torch.float64)
    for n in range(T):
        pn = predict_next(hist, coefficients_at(env.lpc, n, HOP))
        out[n] = e[0, n] + pn[0]
        hist = torch.cat([hist[:, 1:], out[n].view(1, 1)], 1)
        assert abs(float(pn[0] - p[0, n])) < 1e-9
    torch.testing.assert_close(out, s[0], rtol=1e-9, atol=1e-9)


def test_reflection_coefficients_are_a_stable_form():
    env = analyse(torch.from_numpy(ar_signal(np.array([-1.3, 0.8]))[0])[None], HOP, ORDER)
    torch.testing.assert_close(from_parcor(env.parcor), env.lpc, rtol=1e-6, atol=1e-8)
    k = 0.97 * torch.tanh(torch.randn(200, ORDER, dtype=torch.float64) * 2)  # anything inside (−1, 1)
    a = from_parcor(k).numpy()
    roots = np.abs([np.roots(np.concatenate([[1.0], row])) for row in a])
    assert (roots < 1).all()
    k.requires_grad_(True)
    from_parcor(k).sum().backward()  # a network predicting k gets gradients
    assert torch.isfinite(k.grad).all()


@pytest.mark.parametrize("T", [HOP, 5 * HOP - 3])
def test_frame_count_is_that_of_the_codes(T):
    env = analyse(torch.randn(2, T, dtype=torch.float64), HOP, ORDER)
    assert env.lpc.shape == (2, -(-T // HOP), ORDER) and env.gain.shape == (2, -(-T // HOP))


def test_cepstrum_and_log_spectral_distance_match_the_fft_of_the_envelope():
    """The envelope's cepstrum against log|K / A(e^{jω})| sampled by a 4096-point FFT, and the
    log-spectral distance against the mean squared log-spectrum difference over frequency."""
    from audiovq.nn.lpc import cepstrum, log_spectral_distance

    a1 = torch.tensor([-1.2, 0.8, -0.2, 0.05], dtype=torch.float64)
    a2 = torch.tensor([-0.9, 0.3, 0.1, -0.02], dtype=torch.float64)
    k1, k2, n = 0.5, 0.8, 48

    def log_spectrum(a, k):
        return np.log(k) - np.log(np.abs(np.fft.rfft(np.r_[1.0, a.numpy()], 4096)))

    ref = np.fft.irfft(log_spectrum(a1, k1), 4096)[:n + 1]
    ref[1:] *= 2  # log|H| = c0 + sum_n c_n cos(n w)
    c1 = cepstrum(a1[None], torch.tensor([np.log(k1)], dtype=torch.float64), n)[0]
    np.testing.assert_allclose(c1.numpy(), ref, atol=1e-9)
    c2 = cepstrum(a2[None], torch.tensor([np.log(k2)], dtype=torch.float64), n)[0]
    d = log_spectrum(a1, k1) - log_spectrum(a2, k2)
    w = np.full(d.size, 2.0)
    w[[0, -1]] = 1.0  # rfft bins: the ends stand for one frequency, the others for two
    assert float(log_spectral_distance(c1, c2)) == pytest.approx((w * d ** 2).sum() / w.sum(), rel=1e-4)
