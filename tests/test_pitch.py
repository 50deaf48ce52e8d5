"""Pitch (audiovq/data/pitch.py): the tracker on signals of known F0, the log-F0 statistics and
features, the F0 mapping on a hand-worked pair of speakers, bad input, and the corpus cache."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.signal import lfilter

from audiovq.data.pitch import PitchStats, ensure_pitch, features, load_stats, map_f0, stats, track
from audiovq.errors import AudioError

SR, HOP = 8000, 32


def vowel(f0_hz, seconds=1.0, noise_from=None):
    """Pulses at f0 (a number or a per-sample array) through two formant resonators; white
    noise instead of pulses from sample `noise_from` on."""
    n = int(seconds * SR)
    f0 = np.broadcast_to(np.asarray(f0_hz, dtype=np.float64), (n,))
    phase = np.cumsum(f0 / SR)
    x = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    x = lfilter([1.0], [1.0, -0.9], x)
    if noise_from is not None:
        x[noise_from:] = 0.2 * np.random.default_rng(0).standard_normal(n - noise_from)
    for formant, bw in ((700, 90), (1200, 110)):
        r = math.exp(-math.pi * bw / SR)
        x = lfilter([1 - r], [1, -2 * r * math.cos(2 * math.pi * formant / SR), r * r], x)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def test_a_steady_vowel_is_tracked_at_its_f0_then_noise_is_unvoiced():
    x = vowel(125.0, 1.0, noise_from=SR // 2)
    f0 = track(x, SR, HOP)
    assert f0.shape == (SR // HOP,)
    voiced_part = f0[10:(SR // 2) // HOP - 10]  # away from the edges and the boundary
    assert (voiced_part > 0).all() and np.allclose(voiced_part, 125.0, rtol=0.02)
    assert (f0[(SR // 2) // HOP + 10:-5] == 0).mean() > 0.9


def test_a_glide_is_followed_frame_by_frame():
    n = SR
    f0_true = np.geomspace(100, 200, n)  # one octave up in a second
    f0 = track(vowel(f0_true), SR, HOP)
    centres = ((np.arange(f0.size) + 0.5) * HOP).astype(int)
    inner = slice(10, -10)
    assert np.allclose(f0[inner], f0_true[centres][inner], rtol=0.03)


def test_frame_count_follows_the_hop():
    assert track(vowel(150.0, 0.5)[:1000], SR, HOP).shape == (-(-1000 // HOP),)


@pytest.mark.parametrize("wav,words", [
    (np.zeros(4000, np.float32), "silent"),
    (vowel(120.0)[:20], "shorter than one frame"),
    (np.where(np.arange(4000) == 7, np.nan, vowel(120.0, 0.5)).astype(np.float32), "NaN"),
])
def test_bad_input_is_one_line(wav, words):
    with pytest.raises(AudioError) as e:
        track(wav, SR, HOP, name="x.wav")
    assert words in str(e.value) and str(e.value).startswith("x.wav: ") and "\n" not in str(e.value)


def test_stats_and_features_by_hand():
    a = np.array([100.0, 0.0, 200.0, 0.0], np.float32)
    s = stats([a, np.array([0.0], np.float32)])
    mean = (math.log(100) + math.log(200)) / 2
    assert s.frames == 2 and math.isclose(s.mean, mean) and math.isclose(s.std, math.log(2) / 2)
    assert math.isclose(s.median_hz, math.sqrt(100 * 200), rel_tol=1e-9)
    z, voiced = features(a, s)
    np.testing.assert_allclose(z, [-1, 0, 1, 0], atol=1e-6)
    np.testing.assert_array_equal(voiced, [1, 0, 1, 0])
    with pytest.raises(AudioError, match="too few voiced frames"):
        stats([np.zeros(5, np.float32)])


def test_f0_mapping_on_a_hand_worked_pair_of_speakers():
    # source: median 100 Hz, std 0.1 (log); target: median 200 Hz, std 0.2
    src = PitchStats(math.log(100), 0.1, 50)
    tgt = PitchStats(math.log(200), 0.2, 50)
    f0 = np.array([100 * math.exp(0.1), 0.0, 100.0, 100 * math.exp(-0.2)])
    out = map_f0(f0, src, tgt)
    np.testing.assert_allclose(out, [200 * math.exp(0.2), 0.0, 200.0, 200 * math.exp(-0.4)], rtol=1e-5)
    # a shift of 12 semitones doubles it
    np.testing.assert_allclose(map_f0(f0, src, tgt, 12.0), 2 * out, rtol=1e-5)
    # mapping a speaker onto itself changes nothing
    np.testing.assert_allclose(map_f0(f0, src, src), f0, rtol=1e-5)


def test_the_corpus_gets_its_tracks_once_added_to_an_existing_preparation(tmp_path):
    from audiovq.data.manifest import Manifest, Speaker, Utterance
    import soundfile as sf
    utts = []
    for spk, f in (("p1", 110.0), ("p2", 220.0)):
        for i in range(2):
            path = tmp_path / "wav" / spk / f"{spk}_{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, vowel(f * (1 + 0.05 * i), 0.5), SR)
            utts.append(Utterance(f"{spk}_{i}", spk, f"wav/{spk}/{spk}_{i}.wav", 4000, 0.5, "", "train", 0.0, ""))
    sf.write(tmp_path / "wav" / "p2" / "p2_bad.wav", np.zeros(4000, np.float32), SR)
    utts.append(Utterance("p2_bad", "p2", "wav/p2/p2_bad.wav", 4000, 0.5, "", "train", 0.0, ""))
    manifest = Manifest(tmp_path, SR, [Speaker(s, "", None, "", "", "train") for s in ("p1", "p2")], utts, str(tmp_path))
    first = ensure_pitch(manifest, HOP)
    assert first.computed == 4 and list(first.skipped) == ["p2_bad"] and "silent" in first.skipped["p2_bad"]
    assert not (first.folder / "p2" / "p2_bad.npy").exists()  # nothing written for bad input
    stamp = (first.folder / "p1" / "p1_0.npy").stat().st_mtime_ns
    again = ensure_pitch(manifest, HOP)
    assert again.computed == 0 and (first.folder / "p1" / "p1_0.npy").stat().st_mtime_ns == stamp
    st = load_stats(tmp_path, HOP)
    assert st["p1"].median_hz == pytest.approx(110 * math.sqrt(1.05), rel=0.03)
    assert st["p2"].median_hz == pytest.approx(220 * math.sqrt(1.05), rel=0.03)
    assert json.loads((first.folder / "stats.json").read_text())["hop"] == HOP
