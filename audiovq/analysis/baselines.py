"""Reference code streams to put learned codes in context: majority, random, and k-means on MFCCs.

The MFCC baseline is computed at the codes' own frame rate with frames centred where the code
frames are centred ((i + 0.5) / frame_rate seconds), so both streams label the same instants
and are scored against the same phone labels.
"""
from __future__ import annotations

import math
import numpy as np

from ..errors import AudioVQError, ConfigError


def constant_codes(num_frames: int) -> np.ndarray:
    """(N,) all zeros: the 'majority' method (one code, so the mapping predicts the majority phone)."""
    return np.zeros(num_frames, dtype=np.int64)


def random_codes(num_frames: int, num_codes: int, seed: int = 0) -> np.ndarray:
    """(N,) codes drawn uniformly and independently from [0, K)."""
    return np.random.default_rng(seed).integers(0, num_codes, size=num_frames, dtype=np.int64)


def code_frame_count(num_samples: int, sample_rate: int, frame_rate: float) -> int:
    """Whole code frames in `num_samples`: floor(duration × frame_rate), tolerant of rounding
    (16000 samples at 100/3 Hz → 33, not 33.333…; 16000 at 50 Hz → 50, not 49.999…)."""
    exact = num_samples * frame_rate / sample_rate
    return int(math.floor(exact + 1e-6))


def mfcc_frames(wav: np.ndarray, sample_rate: int, frame_rate: float, num_frames: int | None = None,
                *, n_mfcc: int = 13, n_mels: int = 40, window_ms: float = 25.0) -> np.ndarray:
    """(T, 3·n_mfcc) MFCCs with Δ and ΔΔ, one row per code frame.

    Row i is computed from a Hann window of `window_ms` centred on sample (i + 0.5) ·
    sample_rate / frame_rate — the centre of code frame i — so any frame rate works, including
    ones whose hop is not a whole number of samples. `num_frames` defaults to
    `code_frame_count(len(wav), ...)`; pass the number of codes to match an encoder exactly.
    Log-mel (librosa mel filters, `power_to_db`) → DCT-II (`librosa.feature.mfcc`) →
    `librosa.feature.delta` (width 9, or nearest-padding for utterances shorter than that).
    """
    import librosa  # slow to import; only this baseline needs it

    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if not frame_rate > 0 or sample_rate <= 0:
        raise ConfigError(f"sample rate and frame rate must be positive, got {sample_rate} and {frame_rate}")
    if num_frames is None:
        num_frames = code_frame_count(wav.size, sample_rate, frame_rate)
    if num_frames <= 0:
        raise AudioVQError(f"audio of {wav.size} samples is shorter than one frame at {frame_rate:g} Hz")
    win = max(int(round(window_ms * sample_rate / 1000)), 16)
    n_fft = 1 << (win - 1).bit_length()
    centres = np.rint((np.arange(num_frames) + 0.5) * sample_rate / frame_rate).astype(np.int64)
    right = max(win, int(centres[-1]) + win - wav.size)
    padded = np.pad(wav, (win, right))  # zeros beyond the ends: frames past the audio see silence
    index = centres[:, None] - win // 2 + win + np.arange(win)[None, :]
    frames = padded[index] * np.hanning(win + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2             # (T, n_fft/2+1)
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=20.0)
    log_mel = librosa.power_to_db(mel @ power.T, ref=1.0, amin=1e-10, top_db=80.0)  # (n_mels, T)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc)                            # (n_mfcc, T)
    width, mode = (9, "interp") if num_frames >= 9 else (max(3, num_frames | 1), "nearest")
    d1 = librosa.feature.delta(mfcc, width=width, order=1, mode=mode)
    d2 = librosa.feature.delta(mfcc, width=width, order=2, mode=mode)
    return np.ascontiguousarray(np.concatenate([mfcc, d1, d2]).T, dtype=np.float32)  # rows contiguous


def mfcc_kmeans_codes(features: np.ndarray, k: int, iters: int = 30, seed: int = 0,
                      max_fit: int = 100_000) -> np.ndarray:
    """(N,) k-means codes of standardised MFCC frames (N, 39) — the learned codes' baseline.

    scikit-learn's Lloyd k-means (one k-means++ start, at most `iters` iterations, seeded) is
    fitted on at most `max_fit` randomly chosen frames (a k-means iteration costs N·k·D) and
    every frame is then assigned to its nearest centroid.
    """
    from sklearn.cluster import KMeans  # slow to import; only this baseline needs it
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] == 0:
        raise AudioVQError(f"k-means needs a non-empty (N, D) array, got shape {features.shape}")
    z = StandardScaler().fit_transform(features).astype(np.float32)  # constant columns stay at 0
    rng = np.random.default_rng(seed)
    fit = z if z.shape[0] <= max_fit else z[np.sort(rng.choice(z.shape[0], max_fit, replace=False))]
    model = KMeans(min(k, fit.shape[0]), n_init=1, max_iter=iters, random_state=seed).fit(fit)
    return model.predict(z).astype(np.int64)
