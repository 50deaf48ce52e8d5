"""Perceived quality: DNSMOS P.835 (Reddy et al. 2022), a network trained to predict the mean
opinion scores (1–5) listeners give a clip — SIG (the speech itself: distortion, buzz,
muffling), BAK (background: noise, hiss) and OVRL (overall) — plus the older P.808 overall
score. It needs no reference, so it scores a conversion as a listener would: by how it sounds.

Through `speechmos` (the `eval` extra; it ships Microsoft's ONNX models). Its `dnsmos.run`
keeps the two ONNX sessions in a module global once built, so they load once per process.
DNSMOS works on 9.01-s windows at 16 kHz; shorter clips are repeated until they fill one.

Measured on 20 flite sentences (2 shared CPU cores, 0.3–2 s per clip, ~1 s on average; the ONNX
runtime's thread count made no difference): OVRL/SIG/BAK/P.808 2.98/3.22/4.04/3.49 clean,
2.94/3.18/4.06/2.92 as 8 kHz µ-law copies, 1.78/3.18/1.70/2.38 in white noise at 5 dB SNR.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from .. import audio

SAMPLE_RATE = 16000  # the only rate DNSMOS accepts
MIN_SECONDS = 0.25   # shorter (or silent) clips are not scored: repeating them says nothing


class Quality(NamedTuple):
    ovrl: float     # overall MOS (1–5)
    sig: float      # speech signal MOS
    bak: float      # background MOS (higher: less noise)
    p808: float     # P.808 overall MOS
    seconds: float  # time taken

    @classmethod
    def unscored(cls) -> "Quality":
        nan = float("nan")
        return cls(nan, nan, nan, nan, 0.0)


class DNSMOS:
    """wav (T,) at any rate → Quality. Raises ImportError when speechmos or onnxruntime is missing."""

    def __init__(self):
        from speechmos import dnsmos  # imports onnxruntime and requests
        self._run = dnsmos.run
        self.version = ("speechmos", MIN_SECONDS)  # package and settings, for the listener's cache

    def __call__(self, wav: np.ndarray, sample_rate: int) -> Quality:
        t = time.perf_counter()
        x = audio.resample(np.asarray(wav, np.float32), sample_rate, SAMPLE_RATE)
        # speechmos refuses samples outside [-1, 1], which resampling can produce by a hair
        x = np.clip(x, -1.0, 1.0).astype(np.float32)
        if x.size < MIN_SECONDS * SAMPLE_RATE or audio.is_silent(x):
            return Quality.unscored()  # (an empty clip would also loop forever in its tiling)
        r = self._run(x, sr=SAMPLE_RATE)
        return Quality(float(r["ovrl_mos"]), float(r["sig_mos"]), float(r["bak_mos"]),
                       float(r.get("p808_mos", float("nan"))), time.perf_counter() - t)
