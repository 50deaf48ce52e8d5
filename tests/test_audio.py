"""audiovq.audio: file round trips, resampling, mono mixdown, µ-law, trimming and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from audiovq import audio
from audiovq.errors import AudioError, AudioVQError


def sine(freq, sr, seconds, amp=0.5, phase=0.0):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spec) * sr / x.size


def assert_one_line_naming(err, path):
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_pcm16_round_trip(tmp_path, ext):
    x = sine(440, 16000, 0.5)
    path = tmp_path / f"a.{ext}"
    audio.save(path, x, 16000)
    i = audio.info(path)
    assert (i.sample_rate, i.frames, i.channels) == (16000, 8000, 1) and i.duration == 0.5
    y = audio.load(path)
    assert y.dtype == np.float32 and y.shape == (8000,)
    assert np.max(np.abs(y - x)) <= 1 / 32768 + 1e-7  # one 16-bit quantisation step (half, rounded)


def test_float_wav_round_trip_is_exact(tmp_path):
    x = sine(440, 16000, 0.25, amp=0.9)
    audio.save(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    assert np.array_equal(audio.load(tmp_path / "f.wav"), x)


def test_ogg_round_trip_keeps_the_tone(tmp_path):
    x = sine(500, 16000, 1.0)
    audio.save(tmp_path / "a.ogg", x, 16000)
    y = audio.load(tmp_path / "a.ogg")
    assert abs(y.size - x.size) <= 16000 // 100  # lossy codec: length within 10 ms
    assert peak_hz(y, 16000) == pytest.approx(500, abs=2)
    n = min(x.size, y.size)
    assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.99


def test_save_creates_folders_and_refuses_non_finite(tmp_path):
    audio.save(tmp_path / "deep" / "er" / "a.wav", np.zeros(10), 16000)
    assert (tmp_path / "deep" / "er" / "a.wav").is_file()
    with pytest.raises(AudioError):
        audio.save(tmp_path / "bad.wav", np.array([0.0, np.nan]), 16000)
    assert list(tmp_path.glob("*bad*")) == []  # nothing half-written


def test_load_window(tmp_path):
    x = np.arange(16000, dtype=np.float32) / 16000 - 0.5
    audio.save(tmp_path / "ramp.wav", x, 16000, subtype="FLOAT")
    y = audio.load(tmp_path / "ramp.wav", start=0.25, duration=0.125)
    assert np.array_equal(y, x[4000:6000])


# ---------------------------------------------------------------- resampling and mixdown

@pytest.mark.parametrize("orig, new, freq", [(48000, 16000, 1000), (22050, 16000, 3000), (8000, 16000, 700)])
def test_resample_keeps_frequency_and_length_ratio(orig, new, freq):
    x = sine(freq, orig, 1.0)
    y = audio.resample(x, orig, new)
    assert y.dtype == np.float32
    assert abs(y.size - x.size * new / orig) < 1
    assert peak_hz(y, new) == pytest.approx(freq, abs=1.5)
    # same amplitude away from the edges
    mid = y[y.size // 4: 3 * y.size // 4]
    assert np.max(np.abs(mid)) == pytest.approx(0.5, abs=0.01)


def test_resample_is_band_limited_and_works_along_last_axis():
    above = sine(10000, 48000, 0.5)  # above the 8 kHz Nyquist of 16 kHz: must not alias to 6 kHz
    assert np.max(np.abs(audio.resample(above, 48000, 16000)[800:-800])) < 0.01
    batch = np.stack([sine(1000, 48000, 0.1), sine(2000, 48000, 0.1)])
    y = audio.resample(batch, 48000, 16000)
    assert y.shape == (2, 1600)
    assert np.allclose(y[1], audio.resample(batch[1], 48000, 16000))
    x = sine(100, 16000, 0.1)
    assert audio.resample(x, 16000, 16000) is x


def test_load_resamples_from_file(tmp_path):
    sf.write(tmp_path / "a.wav", sine(1000, 48000, 0.5), 48000)
    y = audio.load(tmp_path / "a.wav", 16000)
    assert y.shape == (8000,) and peak_hz(y, 16000) == pytest.approx(1000, abs=2)


def test_multichannel_is_mixed_to_mono(tmp_path):
    left, right = sine(300, 16000, 0.2, 0.4), sine(500, 16000, 0.2, 0.2)
    third = np.full_like(left, 0.3)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    sf.write(tmp_path / "3ch.flac", np.stack([left, right, third], axis=1), 16000)
    assert np.allclose(audio.load(tmp_path / "st.wav"), (left + right) / 2, atol=1e-7)
    assert audio.info(tmp_path / "3ch.flac").channels == 3
    assert np.allclose(audio.load(tmp_path / "3ch.flac"), (left + right + third) / 3, atol=1e-4)


# ---------------------------------------------------------------- µ-law

def test_mu_law_hand_computed_values():
    # bin = floor((sign(x) ln(1 + 255|x|) / ln 256 + 1) / 2 * 255 + 0.5), worked by hand
    x = np.array([0.0, 1.0, -1.0, 0.5, -0.5, 0.01, -0.01, 0.1])
    assert audio.mu_law_encode(x).tolist() == [128, 255, 0, 239, 16, 157, 98, 203]
    # x = sign(y) (256^|y| - 1) / 255 with y = 2q/255 - 1
    q = np.array([0, 255, 128, 127, 200])
    expect = [-1.0, 1.0, (256 ** (1 / 255) - 1) / 255, -(256 ** (1 / 255) - 1) / 255, (256 ** (145 / 255) - 1) / 255]
    assert np.allclose(audio.mu_law_decode(q), expect, rtol=1e-6, atol=0)
    assert audio.mu_law_decode(q).dtype == np.float32


def test_mu_law_round_trip_error_bound_and_monotonic():
    x = np.linspace(-1, 1, 200001)
    q = audio.mu_law_encode(x)
    assert q.min() == 0 and q.max() == 255 and np.all(np.diff(q) >= 0)
    assert len(np.unique(q)) == 256
    err = np.abs(audio.mu_law_decode(q) - x)
    # half a bin in the companded domain (1/255) times the slope dx/dy = ln(256)/255 * (1 + 255|x|)
    bound = (1 / 255) * math.log(256) / 255 * (1 + 255 * np.abs(x)) * 1.05
    assert np.all(err <= bound)
    assert err.max() < 0.023 and err[np.abs(x) < 0.01].max() < 4e-4  # fine near zero, coarse at full scale


def test_mu_law_clips_overshoot_into_the_end_bins():
    x = np.array([1.5, 1.0000001, 7.0, -1.2, -np.inf, np.inf])
    assert audio.mu_law_encode(x).tolist() == [255, 255, 255, 0, 0, 255]


def test_mu_law_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    x = np.linspace(-1.3, 1.3, 1001)
    qt = audio.mu_law_encode(torch.from_numpy(x))
    assert qt.dtype == torch.int64
    assert qt.numpy().tolist() == audio.mu_law_encode(x).tolist()
    q = np.arange(256)
    assert np.allclose(audio.mu_law_decode(torch.from_numpy(q)).numpy(), audio.mu_law_decode(q), atol=1e-6)


# ---------------------------------------------------------------- trimming and levels

def test_trim_silence_on_padded_tone_matches_librosa():
    librosa = pytest.importorskip("librosa")
    sr = 16000
    tone = sine(300, sr, 0.5)
    x = np.concatenate([np.zeros(5000, np.float32), tone, np.zeros(7000, np.float32)])
    s0, s1 = 5000, 5000 + tone.size
    t = audio.trim_silence(x, top_db=40)
    _, (ls, le) = librosa.effects.trim(x, top_db=40, frame_length=1024, hop_length=256)
    assert (t.start, t.end) == (ls, le)
    assert t.start <= s0 and t.end >= s1  # nothing of the tone is lost ...
    assert s0 - t.start <= 1024 and t.end - s1 <= 1024 + 256  # ... and the silence is mostly gone
    assert np.array_equal(t.audio, x[t.start:t.end])
    m = audio.trim_silence(x, top_db=40, margin=300)
    assert (m.start, m.end) == (t.start - 300, t.end + 300)
    edge = audio.trim_silence(tone, top_db=40, margin=10_000)  # margins are clamped to the signal
    assert (edge.start, edge.end) == (0, tone.size)


def test_trim_silence_leaves_silent_or_short_input_alone():
    z = np.zeros(5000, np.float32)
    t = audio.trim_silence(z)
    assert t.audio is z and (t.start, t.end) == (0, 5000)
    short = sine(300, 16000, 0.01)  # 160 samples < one frame
    assert audio.trim_silence(short)[1:] == (0, short.size)


def test_levels():
    assert audio.loudness_db(sine(100, 16000, 1.0, amp=0.5)) == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.01)
    assert audio.is_silent(np.full(10, 10 ** (-61 / 20))) and not audio.is_silent(np.full(10, 10 ** (-59 / 20)))
    assert audio.is_silent(np.zeros(0))


# ---------------------------------------------------------------- bad input

def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="no such file") as e:
        audio.load(tmp_path / "nope.wav")
    assert_one_line_naming(e, tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="directory") as e:
        audio.load(tmp_path)
    assert_one_line_naming(e, tmp_path)
    assert issubclass(AudioError, AudioVQError)


def test_text_file_named_wav(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio\n" * 10)
    with pytest.raises(AudioError, match="not a readable audio file") as e:
        audio.load(p)
    assert_one_line_naming(e, p)
    with pytest.raises(AudioError):
        audio.info(p)


@pytest.mark.parametrize("keep", [0.5, 0.01])
def test_truncated_flac(tmp_path, keep):
    full = tmp_path / "full.flac"
    sf.write(full, sine(440, 16000, 2.0), 16000)
    data = full.read_bytes()
    p = tmp_path / "cut.flac"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AudioError) as e:
        audio.load(p)
    assert_one_line_naming(e, p)


def test_zero_length_wav(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="zero length") as e:
        audio.load(p)
    assert_one_line_naming(e, p)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    p = tmp_path / "nan.wav"
    x = sine(440, 16000, 0.1)
    x[100] = bad
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf") as e:
        audio.load(p)
    assert_one_line_naming(e, p)


def test_silence_rejected_only_when_speech_required(tmp_path):
    p = tmp_path / "quiet.wav"
    sf.write(p, np.full(1600, 1e-4, np.float32), 16000, subtype="FLOAT")  # -80 dBFS
    assert audio.load(p).shape == (1600,)
    with pytest.raises(AudioError, match="silent") as e:
        audio.load(p, require_speech=True)
    assert_one_line_naming(e, p)


def test_low_rate_file_warns_and_upsamples(tmp_path):
    p = tmp_path / "phone.wav"
    sf.write(p, sine(700, 8000, 0.5), 8000)
    with pytest.warns(UserWarning, match="upsampling"):
        y = audio.load(p, 16000)
    assert y.shape == (8000,) and peak_hz(y, 16000) == pytest.approx(700, abs=2)


@pytest.mark.parametrize("rates", [(48000, 16000), (44100, 8000), (8000, 16000), (16000, 16000)])
def test_blockwise_loading_equals_whole_signal_resampling(tmp_path, monkeypatch, rates):
    sr, new_sr = rates
    x = (np.random.default_rng(0).normal(scale=0.2, size=int(2.3 * sr))).clip(-1, 1).astype(np.float32)
    sf.write(tmp_path / "x.wav", np.stack([x, -x * 0.5], 1), sr, subtype="FLOAT")
    whole = audio.resample(np.stack([x, -x * 0.5], 1).mean(1), sr, new_sr)
    monkeypatch.setattr(audio, "BLOCK_SECONDS", 0.3)  # many blocks
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = audio.load(tmp_path / "x.wav", new_sr)
        part = audio.load(tmp_path / "x.wav", new_sr, start=0.5, duration=1.0)
    assert y.shape == whole.shape
    np.testing.assert_allclose(y, whole.clip(-1, 1), atol=1e-5)
    assert part.size == new_sr  # a window: what resampling that window alone gives
    np.testing.assert_allclose(part, audio.resample(np.stack([x, -x * 0.5], 1).mean(1)[sr // 2: sr // 2 + sr],
                                                    sr, new_sr).clip(-1, 1), atol=1e-5)
