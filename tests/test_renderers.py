"""The renderer seam (generate/renderers/): a renderer written only against it — a toy one in
this file — renders a source-filter decoder's frame records through `stream`; the `world`
renderer streamed (blocks = one-shot), at the F0 it is given, against pyworld's synthesis of
the same envelope; the one all-pole filter against diffsptk's; and the two behaviours of
issue #27: a predicted F0's voicing probability kept through a shift, and the F0 head run a
window at a time."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from audiovq.generate import generate, stream
from audiovq.generate.kernels import all_pole
from audiovq.generate.renderers import RENDERERS, Renderer, register
from audiovq.nn.decoders.source_filter import FrameRecords
from audiovq.nn.emphasis import deemphasis
from audiovq.nn.lpc import from_parcor, synthesis

from test_source_filter import HOP, SR, model, voiced


# ----------------------------------------------------------------------------- a toy renderer
@register
class Sines(Renderer):
    """A sine at each frame's F0 (phase carried), at the frame's gain; silence where unvoiced."""

    name = "test_sines"

    def __init__(self, decoder, seed):
        super().__init__(decoder, seed)
        self.phase = 0.0

    def render(self, record, start, stop):
        r = record.numpy()
        f0 = np.repeat(r.f0, self.hop)[start - r.start * self.hop:stop - r.start * self.hop]
        gain = np.repeat(r.gain, self.hop)[start - r.start * self.hop:stop - r.start * self.hop]
        phase = self.phase + np.cumsum(f0 / self.sample_rate)
        self.phase = float(phase[-1])
        return gain * np.sin(2 * np.pi * phase)


def _codes(m, frames=40):
    wavs = torch.cat([voiced(T=frames * HOP, f0=120.0, seed=1), voiced(T=frames * HOP, f0=220.0, seed=2)])
    return m.encode(wavs), [frames * HOP, frames * HOP - 45]


def test_a_renderer_written_against_the_seam_renders_through_stream():
    m = model().eval()
    d = m.decoder
    codes, lengths = _codes(m)
    f0 = [np.r_[np.zeros(8), np.full(32, 150.0)].astype(np.float32), np.full(40, 210.0, np.float32)]
    assert RENDERERS["test_sines"] is Sines
    whole = generate(m, codes, torch.tensor([0, 2]), lengths, pitch=f0, renderer="test_sines").audio
    parts = [[], []]
    for blk in stream(m, codes, torch.tensor([0, 2]), lengths, pitch=f0, renderer="test_sines", block=HOP * 3):
        for p, a in zip(parts, blk.audio):
            p.append(a)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(np.concatenate(parts[b]), whole[b])
        # by hand, from the decoder's frame half run on the item's own frames at once
        fb = -(-n // HOP)
        with torch.no_grad():
            _, _, log_gain = d.frames(m.quantizer.lookup(codes[b:b + 1, :fb]), torch.tensor([[0, 2][b]]),
                                      torch.from_numpy(f0[b][:fb])[None])
        hz = np.repeat(f0[b][:fb].astype(np.float64), HOP)[:n]
        s = np.repeat(np.exp(log_gain[0].double().numpy()), HOP)[:n] * np.sin(2 * np.pi * np.cumsum(hz / SR))
        np.testing.assert_allclose(whole[b], deemphasis(s, d.preemphasis), rtol=1e-4, atol=1e-5 * np.abs(s).max())


# ----------------------------------------------------------------------------- world
@pytest.mark.parametrize("given", [True, False])
def test_world_blocks_concatenate_to_the_one_shot_output(given):
    m = model().eval()
    codes, lengths = _codes(m)
    f0 = [np.r_[np.zeros(8), np.full(20, 150.0), np.zeros(3), np.full(9, 97.0)].astype(np.float32),
          np.full(40, 210.0, np.float32)] if given else None
    whole = generate(m, codes, torch.tensor([0, 2]), lengths, seed=[3, 8], pitch=f0, renderer="world").audio
    for block in (HOP, HOP * 3, HOP * 7):
        parts = [[], []]
        for blk in stream(m, codes, torch.tensor([0, 2]), lengths, seed=[3, 8], pitch=f0, renderer="world",
                          block=block):
            for p, a in zip(parts, blk.audio):
                p.append(a)
        for p, w, n in zip(parts, whole, lengths):
            assert w.shape == (n,) and np.isfinite(w).all()
            np.testing.assert_array_equal(np.concatenate(p), w)  # exactly: every state is carried


def _steady(f0_hz, frames=250, seed=0):
    """Frames of one fixed two-formant envelope (LPC of order 4) and F0 (0: unvoiced)."""
    from audiovq.evaluate.envelope_vocoder import render
    a = np.convolve([1, -1.3, 0.8], [1, 0.4, 0.5])[1:]
    lpc = np.repeat(a[None], frames, 0)
    gain = np.full(frames, 0.05)
    f0 = np.full(frames, float(f0_hz))
    return lpc, gain, f0, render(lpc, gain, f0, HOP, SR, frames * HOP, seed)


@pytest.mark.parametrize("hz", [97.0, 143.5, 230.0])
def test_world_output_is_at_the_f0_it_is_given(hz):
    """F0 tracked by pyworld (harvest) on the rendered signal, against the F0 given: within 1 %
    (pulses at fractional times: no rounding of the period to whole samples)."""
    import pyworld
    *_, y = _steady(hz)
    track, _ = pyworld.harvest(y, SR, f0_floor=60.0, f0_ceil=400.0, frame_period=10.0)
    voiced = track[10:-10]
    assert (voiced > 0).all()
    assert np.median(voiced) == pytest.approx(hz, rel=0.01)
    assert np.abs(voiced / hz - 1).max() < 0.03


def test_world_matches_pyworlds_synthesis_of_the_same_envelope():
    """The same frames through pyworld.synthesize (envelope as its spectrogram, aperiodicity
    0): after aligning, the waveforms correlate ≥ 0.99, their levels within 0.5 dB, their
    spectra (averaged over frames) within 1.5 dB rms over 0.5–3 kHz. (pyworld also removes
    each response's DC, which this renderer does not.)"""
    from audiovq.generate.renderers.world import pyworld_reference
    from audiovq.nn.decoders.frames import FrameArrays
    lpc, gain, f0, y = _steady(120.0)
    ref = pyworld_reference(FrameArrays(0, lpc, gain, f0, np.ones_like(f0)), HOP, SR, y.size)
    a, b = y[400:-400], ref[400:-400]
    lags = range(-80, 81)
    corr = [np.dot(a[80:-80], np.roll(b, k)[80:-80]) for k in lags]
    k = list(lags)[int(np.argmax(corr))]
    b = np.roll(b, k)[80:-80]
    a = a[80:-80]
    assert np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)) >= 0.99
    assert 20 * np.log10(np.std(a) / np.std(b)) == pytest.approx(0, abs=0.5)
    spec = lambda x: 10 * np.log10(np.mean(np.abs(np.fft.rfft(x.reshape(-1, 256) * np.hanning(256), axis=1)) ** 2, 0))
    n = (a.size // 256) * 256
    diff = (spec(a[:n]) - spec(b[:n]))[16:96]  # bins of 31.25 Hz
    assert np.sqrt(np.mean(diff ** 2)) < 1.5


def test_the_minimum_phase_response_of_an_all_pole_envelope_is_its_filters_response():
    """world.minimum_phase of |g / A|² against scipy's impulse response of g / A(z)."""
    from scipy.signal import lfilter
    from audiovq.generate.renderers.world import envelope_spectrogram, minimum_phase
    a = np.convolve([1, -1.3, 0.8], [1, 0.4, 0.5])[1:]
    power = envelope_spectrogram(a[None], np.array([0.3]), 512)
    h = np.fft.irfft(minimum_phase(power, 512), 512)[0]
    impulse = np.zeros(512)
    impulse[0] = 1.0
    np.testing.assert_allclose(h, lfilter([0.3], np.r_[1.0, a], impulse), atol=1e-9)


@pytest.mark.parametrize("period", [64, 50])
def test_world_of_a_steady_vowel_is_a_pulse_train_through_its_filter(period):
    """Steady envelope, F0 = rate / period with a whole period: every pulse lands on a whole
    sample, so the output is √period-high pulses every period samples through g / A(z)
    (scipy, the whole signal at once), except where the phase's rounding puts a pulse a hair
    off its sample (sinc leakage ≤ 1e-6 of the level)."""
    from scipy.signal import lfilter
    lpc, gain, f0, y = _steady(SR / period, frames=120)
    e = np.zeros(y.size)
    phase, ph = np.cumsum(np.full(y.size, 1.0 / period)), 0
    e[period - 1::period] = np.sqrt(period)  # the phase completes its first cycle at sample period − 1
    ref = lfilter([gain[0]], np.r_[1.0, lpc[0]], e)
    np.testing.assert_allclose(y[:-600], ref[:-600], atol=1e-5 * np.abs(ref).max())


def test_world_voicing_probability_splits_the_power_between_pulses_and_noise():
    """v = ½ on a steady vowel: the output's power equals v = 1's (unit-power excitation either
    way, within 5 %), and the share of it at the harmonics of F0 falls from ≥ 0.97 to ½ ± 0.05."""
    from audiovq.evaluate.envelope_vocoder import render
    lpc, gain, f0, full = _steady(125.0, frames=1000)

    def harmonic_share(x):  # in 1-Hz bins of 1-s segments: 125 Hz's multiples against all
        P = np.mean(np.abs(np.fft.rfft(x[:x.size // SR * SR].reshape(-1, SR), axis=1)) ** 2, 0)
        return P[125::125].sum() / P.sum()

    half = render(lpc, gain, f0, HOP, SR, full.size, voicing=np.full(f0.size, 0.5))
    assert np.var(half[400:]) == pytest.approx(np.var(full[400:]), rel=0.05)
    assert harmonic_share(full) >= 0.97  # 0.986: the segments' own leakage
    assert harmonic_share(half) == pytest.approx(0.5, abs=0.05)


# ----------------------------------------------------------------------------- the one all-pole filter
def test_the_all_pole_filter_in_blocks_equals_diffsptks():
    """kernels.all_pole (every renderer's filter), run in uneven blocks with its history
    carried, against diffsptk's time-varying all-pole filter (nn/lpc.synthesis) on the whole
    signal: the same coefficients interpolated within each frame."""
    rng = np.random.default_rng(0)
    frames, M = 30, 8
    lpc = from_parcor(torch.from_numpy(rng.uniform(-0.9, 0.9, (1, frames, M))))
    e = rng.standard_normal(frames * HOP - 7)
    want = synthesis(torch.from_numpy(e)[None], lpc, HOP)[0].numpy()
    coeffs = np.concatenate([lpc[0].numpy(), lpc[0, -1:].numpy()])  # the last frame's held
    history, got, start = np.zeros(M), [], 0
    for n in (5, 64, 1, 200, 333, 10_000):
        stop = min(e.size, start + n)
        got.append(all_pole(e[start:stop], coeffs[start // HOP:], HOP, start, history))
        start = stop
    np.testing.assert_allclose(np.concatenate(got), want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


# ----------------------------------------------------------------------------- issue #27's two behaviours
def test_a_shifted_predicted_f0_keeps_its_voicing_probability():
    """--f0 predicted with --f0-shift 0.01: the F0 head's F0 × 2^(0.01/12), the same voicing
    probability and so the same sharpening as with no shift (it once became a hard F0 > 0)."""
    m = model().eval()
    codes, lengths = _codes(m)
    frames = [-(-n // HOP) for n in lengths]
    plain = FrameRecords(m.decoder, m.quantizer, codes, torch.tensor([0, 2]), frames, None)
    shifted = FrameRecords(m.decoder, m.quantizer, codes, torch.tensor([0, 2]), frames, None, 2 ** (0.01 / 12))
    for b in (0, 1):
        p, s = plain.record(b, 0, frames[b]), shifted.record(b, 0, frames[b])
        assert ((p.voicing > 0) & (p.voicing < 1)).any()  # a probability, not 0/1
        torch.testing.assert_close(s.voicing, p.voicing, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(s.sharpening, p.sharpening, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(s.f0, p.f0 * 2 ** (0.01 / 12), rtol=1e-6, atol=1e-6)
    # through the engine: a shift of 0 and of 0.01 semitones sample nearly the same signal
    a = generate(m, codes, torch.tensor([0, 2]), lengths, seed=2, f0_shift=0.0, fast=False).audio
    b = generate(m, codes, torch.tensor([0, 2]), lengths, seed=2, f0_shift=0.01, fast=False).audio
    for x, y in zip(a, b):
        assert np.corrcoef(x, y)[0, 1] > 0.9


def test_a_predicted_f0_is_made_a_window_at_a_time(monkeypatch):
    """With a shift (which once ran the F0 head over the whole file in convert), the F0 head
    sees a window of frames and its margin at a time, never the whole file."""
    m = model().eval()
    d = m.decoder
    codes, lengths = _codes(m)
    seen = []
    real = type(d).predicted_pitch

    def spy(self, codewords, speaker):
        seen.append(codewords.shape[-1])
        return real(self, codewords, speaker)

    monkeypatch.setattr(type(d), "predicted_pitch", spy)
    monkeypatch.setattr(FrameRecords, "WINDOW", 8)
    for renderer in ("world", "network"):
        seen.clear()
        list(stream(m, codes, torch.tensor([0, 2]), lengths, f0_shift=2.0, renderer=renderer, block=HOP * 5))
        reach = FrameRecords(d, m.quantizer, codes, torch.tensor([0, 2]), [40, 40]).reach
        assert seen and max(seen) <= 8 + 2 * reach < 40


def test_convert_passes_a_predicted_f0_shift_to_the_decoder_not_a_track():
    from audiovq.convert import _Source, source_f0
    m = model().eval()
    src = _Source(np.zeros(10, np.int64), 10 * HOP, -20.0, None)
    assert source_f0(m, src, 1, "predicted", 0.0) is None
    assert source_f0(m, src, 1, "predicted", 3.0) is None  # shifted by stream(f0_shift=…), windowed
