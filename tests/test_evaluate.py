"""`audiovq evaluate`'s signal measures against hand-made signals: the median F0 of known
harmonic tones, the pitch verdict on hand-worked cases, and the DTW distance."""
import math

import numpy as np
import pytest

from audiovq.evaluate import Score, _pitch_closer, median_f0, mel_dtw_distance

SR = 8000


def voiced(f0, seconds=1.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    return (0.2 * x).astype(np.float32)


@pytest.mark.parametrize("f0", [90.0, 150.0, 260.0])
def test_median_f0_of_a_harmonic_tone_between_silences(f0):
    x = np.concatenate([np.zeros(SR // 2, np.float32), voiced(f0), 1e-4 * np.ones(SR // 2, np.float32)])
    assert median_f0(x, SR) == pytest.approx(f0, rel=0.02)  # the quiet stretches are not voiced frames


def test_median_f0_of_too_short_audio_is_nan():
    assert math.isnan(median_f0(np.zeros(100, np.float32), SR))


def score(out, tgt, src):
    return Score("o.wav", "p225", "p226", 0.5, 0.5, False, 0.0, 0.0, 0.0, out, tgt, src)


def test_pitch_verdict():
    assert _pitch_closer(score(250, 260, 120)) is True
    assert _pitch_closer(score(125, 260, 120)) is False
    assert _pitch_closer(score(180, 250, 125)) is True       # 5.7 semitones below 250, 6.3 above 125
    assert _pitch_closer(score(175, 250, 125)) is False      # 6.2 below 250, 5.8 above 125
    assert _pitch_closer(score(200, 200, 190)) is None       # speakers < 2 semitones apart
    assert _pitch_closer(score(float("nan"), 200, 100)) is None


def test_mel_dtw_distance_is_zero_for_the_same_signal_and_small_for_a_retimed_copy():
    x = np.concatenate([voiced(120, 0.5), voiced(240, 0.5)])
    retimed = np.concatenate([voiced(120, 0.7), voiced(240, 0.3)])  # same sounds, other durations
    other = np.concatenate([voiced(80, 0.5), voiced(330, 0.5)])
    assert mel_dtw_distance(x, x, SR) == pytest.approx(0, abs=1e-6)
    assert mel_dtw_distance(x, retimed, SR) < 0.25 * mel_dtw_distance(x, other, SR)
