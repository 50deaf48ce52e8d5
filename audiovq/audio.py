"""Audio in and out: load any soundfile-readable file as mono float32 at a chosen rate,
save atomically, resample, trim silence, and µ-law companding (256 levels, as in the paper).

All file reading goes through soundfile (torchaudio.load would need torchcodec). Problems a
user can cause raise `AudioError` with a one-line message naming the file.
"""
from __future__ import annotations

import math
import os
import pathlib
import warnings
from typing import NamedTuple

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .atomic import atomic_path
from .errors import AudioError

SILENCE_DBFS = -60.0  # a file whose peak is below this holds no speech
SUFFIXES = (".wav", ".flac", ".ogg")  # what folders of audio are searched for (soundfile reads them all)


class AudioInfo(NamedTuple):
    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _check_file(path: pathlib.Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, expected an audio file")


def info(path: str | os.PathLike) -> AudioInfo:
    """Sample rate, length and channel count of an audio file, without reading the samples."""
    path = pathlib.Path(path)
    _check_file(path)
    try:
        i = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{path}: not a readable audio file ({_short(e)})") from None
    return AudioInfo(int(i.samplerate), int(i.frames), int(i.channels))


def load(path: str | os.PathLike, sample_rate: int | None = None, *, require_speech: bool = False,
         start: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Read an audio file as mono float32 in [-1, 1], resampled to `sample_rate` if given.

    `start`/`duration` (seconds, at the file's rate) read only a window, so long files can be
    processed in chunks. Returns shape (T,). Raises AudioError for a missing, unreadable,
    empty or non-finite file, or (with `require_speech`) one that is all silence. Warns when
    the file's rate is below `sample_rate` (it is upsampled: no content above its Nyquist).
    """
    path = pathlib.Path(path)
    meta = info(path)
    sr = meta.sample_rate
    first = min(int(round(start * sr)), meta.frames)
    count = meta.frames - first if duration is None else min(int(round(duration * sr)), meta.frames - first)
    if count <= 0:
        raise AudioError(f"{path}: audio has zero length")
    new_sr = sr if sample_rate is None else sample_rate
    if sr < new_sr:
        warnings.warn(f"{path}: {sr} Hz is below the model rate {new_sr} Hz; upsampling", stacklevel=2)
    try:
        with sf.SoundFile(str(path)) as f:
            x = _read_resampled(f, path, first, count, new_sr)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"{path}: cannot decode audio ({_short(e)})") from None
    if require_speech and is_silent(x):
        raise AudioError(f"{path}: audio is silent (peak below {SILENCE_DBFS:.0f} dBFS)")
    return x


BLOCK_SECONDS = 30  # long files are read and resampled in blocks of this much audio


def _mono_block(f: sf.SoundFile, path: pathlib.Path, start: int, frames: int) -> np.ndarray:
    f.seek(start)
    x = f.read(frames, dtype="float32", always_2d=True)
    if x.shape[0] < frames:
        raise AudioError(f"{path}: cannot decode audio (file ends before its declared length)")
    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    if not np.isfinite(x).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    return x


def _read_resampled(f: sf.SoundFile, path: pathlib.Path, first: int, count: int, new_sr: int) -> np.ndarray:
    """Samples first … first+count of an open file, mono, at new_sr, clipped to [-1, 1].

    Read block by block into one float32 array at the new rate, so memory is that array plus
    a block (not several float64 copies of the file at its own rate). Each block is resampled
    with `context` samples of real signal on both sides, wider than the polyphase filter, and
    block starts fall on multiples of the rate ratio's denominator: the result equals
    resampling the whole signal at once, up to rounding.
    """
    sr = f.samplerate
    g = math.gcd(int(sr), int(new_sr))
    up, down = new_sr // g, sr // g
    out = np.empty(-(-count * up // down), np.float32)
    block = max(down, int(BLOCK_SECONDS * sr) // down * down)
    # 0.1 s of context: resample_poly's filter reaches 10·max(1, sr/new_sr) input samples, far less
    context = 0 if up == down else -(-(sr // 10) // down) * down
    for s in range(0, count, block):
        e = min(count, s + block)
        lo, hi = max(0, s - context), min(count, e + context)
        x = _mono_block(f, path, first + lo, hi - lo)
        y = resample(x, sr, new_sr) if up != down else x
        a = (s - lo) * up // down
        n = min(-(-e * up // down) - s * up // down, out.size - s * up // down)
        out[s * up // down: s * up // down + n] = y[a: a + n]
    return np.clip(out, -1.0, 1.0, out=out)


def save(path: str | os.PathLike, wav: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write mono audio (T,) atomically; the format follows the extension (.wav, .flac, .ogg)."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: refusing to write NaN or Inf samples")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(wav, -1.0, 1.0), sample_rate, subtype=subtype)


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited polyphase resampling of (..., T) along the last axis."""
    if orig_sr == new_sr:
        return x
    g = math.gcd(int(orig_sr), int(new_sr))
    y = resample_poly(x, new_sr // g, orig_sr // g, axis=-1)
    return y.astype(np.float32, copy=False)


def is_silent(x: np.ndarray, threshold_db: float = SILENCE_DBFS) -> bool:
    return x.size == 0 or max(float(x.max()), -float(x.min())) < 10 ** (threshold_db / 20)  # no |x| copy


class Trimmed(NamedTuple):
    audio: np.ndarray  # (T',)
    start: int         # first kept sample in the input
    end: int           # one past the last kept sample


def trim_silence(x: np.ndarray, top_db: float = 40.0, frame_length: int = 1024,
                 hop_length: int = 256, margin: int = 0) -> Trimmed:
    """Cut leading and trailing stretches quieter than `top_db` below the loudest frame.

    Frame RMS in dB relative to the peak frame, as librosa.effects.trim does; `margin`
    samples of context are kept on each side. Silent input comes back unchanged.
    """
    if x.size < frame_length or is_silent(x):
        return Trimmed(x, 0, x.size)
    pad = frame_length // 2
    padded = np.pad(x, pad)
    n = 1 + (padded.size - frame_length) // hop_length
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length][:n]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10) / max(rms.max(), 1e-10))
    loud = np.flatnonzero(db > -top_db)
    start = max(0, int(loud[0]) * hop_length - margin)
    end = min(x.size, (int(loud[-1]) + 1) * hop_length + margin)
    return Trimmed(x[start:end], start, end)


def mu_law_encode(x, levels: int = 256):
    """Waveform in [-1, 1] → integer bins 0..levels-1 (numpy array or torch tensor).

    Input is clipped first: resampled audio can exceed ±1 by a hair and would overflow the
    top bin.
    """
    mu = levels - 1
    if _is_torch(x):
        import torch
        x = x.clamp(-1.0, 1.0)
        y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
        return ((y + 1) / 2 * mu + 0.5).long()
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).astype(np.int64)


def mu_law_decode(q, levels: int = 256):
    """Integer bins 0..levels-1 → waveform in [-1, 1] (inverse of `mu_law_encode`)."""
    mu = levels - 1
    if _is_torch(q):
        import torch
        y = 2 * q.float() / mu - 1
        return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
    y = 2 * np.asarray(q, dtype=np.float64) / mu - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def loudness_db(x: np.ndarray) -> float:
    """RMS level in dBFS (used to keep a conversion as loud as its source)."""
    return 20 * math.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-10))


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _short(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
