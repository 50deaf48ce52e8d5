"""Reference code streams to put learned codes in context: majority, random, and k-means on MFCCs.

The MFCC baseline is computed at the codes' own frame rate with frames centred where the code
frames are centred ((i + 0.5) / frame_rate seconds), so both streams label the same instants
and are scored against the same phone labels.
"""
from __future__ import annotations

import math
from typing import NamedTuple

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
    return np.concatenate([mfcc, d1, d2]).T.astype(np.float32)


class KMeans(NamedTuple):
    centroids: np.ndarray    # (k, D) float32
    assignments: np.ndarray  # (N,) int64 nearest centroid of each row of x


def nearest(x: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(N,) index of and (N,) squared distance to the nearest centroid, in chunks of rows."""
    x = np.asarray(x, dtype=np.float32)
    c = np.asarray(centroids, dtype=np.float32)
    c_sq = (c * c).sum(1)
    index = np.empty(x.shape[0], dtype=np.int64)
    dist = np.empty(x.shape[0], dtype=np.float64)
    for lo in range(0, x.shape[0], chunk):
        xb = x[lo:lo + chunk]
        d = c_sq[None, :] - 2.0 * (xb @ c.T)            # ||x||² is constant per row
        j = d.argmin(1)
        index[lo:lo + chunk] = j
        dist[lo:lo + chunk] = np.maximum(d[np.arange(j.size), j] + (xb * xb).sum(1), 0.0)
    return index, dist


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each new centre drawn ∝ D(x)²."""
    centres = np.empty((k, x.shape[1]), dtype=np.float32)
    x_sq = (x * x).sum(1, dtype=np.float64)
    j = int(rng.integers(x.shape[0]))
    d2 = np.full(x.shape[0], np.inf)
    for i in range(k):
        centres[i] = x[j]
        c = centres[i]
        d2 = np.minimum(d2, np.maximum(x_sq - 2.0 * (x @ c) + float(c @ c), 0.0))
        cumulative = np.cumsum(d2)
        total = cumulative[-1]
        # draw the next centre with probability ∝ d2 (uniformly once every point is a centre)
        j = int(np.searchsorted(cumulative, rng.random() * total, side="right")) if total > 0 \
            else int(rng.integers(x.shape[0]))
        j = min(j, x.shape[0] - 1)
    return centres


def kmeans(x: np.ndarray, k: int, iters: int = 50, seed: int = 0, tol: float = 1e-6) -> KMeans:
    """Lloyd's k-means with k-means++ initialisation on the rows of x (N, D).

    Stops after `iters` iterations or when the inertia improves by less than `tol` relative.
    An emptied cluster is re-seeded with the point currently farthest from its centroid.
    Deterministic for a given seed.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise AudioVQError(f"k-means needs a non-empty (N, D) array, got shape {x.shape}")
    if not 1 <= k <= x.shape[0]:
        raise ConfigError(f"k-means needs 1 <= k <= number of points ({x.shape[0]}), got k={k}")
    rng = np.random.default_rng(seed)
    centroids = _kmeans_pp(x, k, rng)
    assign, dist = nearest(x, centroids)
    inertia = float(dist.sum())
    for _ in range(iters):
        counts = np.bincount(assign, minlength=k)
        sums = np.stack([np.bincount(assign, weights=x[:, d], minlength=k) for d in range(x.shape[1])], 1)
        centroids = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids)
        for empty in np.flatnonzero(counts == 0):
            far = int(dist.argmax())
            centroids[empty] = x[far]
            dist[far] = 0.0
        centroids = centroids.astype(np.float32)
        assign, dist = nearest(x, centroids)
        new = float(dist.sum())  # inertia: sum of squared distances to the assigned centroids
        if inertia - new <= tol * max(inertia, 1e-12):
            break
        inertia = new
    return KMeans(centroids, assign)


def standardize(x: np.ndarray) -> np.ndarray:
    """(N, D) with each column at zero mean and unit variance (constant columns left at zero)."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(0)
    return ((x - x.mean(0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def mfcc_kmeans_codes(features: np.ndarray, k: int, iters: int = 30, seed: int = 0,
                      max_fit: int = 100_000) -> np.ndarray:
    """(N,) k-means codes of standardised MFCC frames (N, 39) — the learned codes' baseline.

    The centroids are fitted on at most `max_fit` randomly chosen frames (k-means is
    O(N·k·D) per iteration) and every frame is then assigned to its nearest centroid.
    """
    z = standardize(features)
    rng = np.random.default_rng(seed)
    fit = z if z.shape[0] <= max_fit else z[np.sort(rng.choice(z.shape[0], max_fit, replace=False))]
    model = kmeans(fit, min(k, fit.shape[0]), iters=iters, seed=seed)
    return nearest(z, model.centroids)[0]
