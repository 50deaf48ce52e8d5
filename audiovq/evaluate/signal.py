"""Signal measures that need no model: median F0 and the log-mel distance after DTW."""
from __future__ import annotations

import numpy as np


def median_f0(wav: np.ndarray, sample_rate: int) -> float:
    """Median F0 (Hz, YIN, 60–450 Hz) over the frames within 10 dB of the loudest; NaN if none."""
    import librosa
    hop, frame = sample_rate // 64, sample_rate // 8  # 16 ms / 125 ms: two periods of 60 Hz in a frame
    if wav.size < frame:
        return float("nan")
    f0 = librosa.yin(wav, fmin=60, fmax=450, sr=sample_rate, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=wav, frame_length=frame, hop_length=hop)[0][: f0.size]
    voiced = f0[rms > rms.max() * 10 ** (-10 / 20)]
    return float(np.median(voiced)) if voiced.size else float("nan")


def mel_dtw_distance(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Mean Euclidean distance between 80-band log-mel frames (dB) along the DTW path."""
    import librosa
    def logmel(x):
        m = librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=1024, hop_length=256, n_mels=80)
        return librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=None)
    A, B = logmel(a), logmel(b)
    D, path = librosa.sequence.dtw(X=A, Y=B, metric="euclidean")
    return float(D[-1, -1] / len(path))
