"""Whose voice is it? GE2E speaker embeddings and median F0 of a speaker's reference
utterances, and the pitch verdict on a conversion."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import audio
from ..data.manifest import Manifest
from ..errors import AudioVQError

REFERENCES = 5  # reference utterances per speaker
PITCH_APART = 2.0  # semitones: pairs whose speakers' median F0 differ less are not scored on pitch


class SpeakerEmbedder:
    """GE2E d-vectors via resemblyzer (optional dependency: the `eval` extra)."""

    def __init__(self):
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError:
            raise AudioVQError("speaker similarity needs resemblyzer: pip install -e '.[eval]'") from None
        self.encoder, self.preprocess = VoiceEncoder("cpu", verbose=False), preprocess_wav

    def __call__(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        x = self.preprocess(audio.resample(wav, sample_rate, 16000), 16000)
        if x.size < 1600:  # the VAD removed nearly everything: embed the raw audio
            x = audio.resample(wav, sample_rate, 16000)
        return self.encoder.embed_utterance(x)

    def mean(self, wavs: list[np.ndarray], sample_rate: int) -> np.ndarray:
        """Unit-norm mean d-vector of several utterances of one speaker."""
        e = np.mean([self(w, sample_rate) for w in wavs], axis=0)
        return e / np.linalg.norm(e)


class SpeakerProfile(NamedTuple):
    embedding: np.ndarray  # unit-norm mean d-vector of the speaker's reference utterances
    f0: float              # median over those references of their median F0 (Hz)


def reference_files(manifest: Manifest | None, speaker: str | None, exclude: set[str]) -> list[str]:
    """The audio files of up to REFERENCES utterances of `speaker`, training ones first, none
    whose id is in `exclude`."""
    if manifest is None or speaker is None:
        return []
    utts = [u for u in manifest.utterances if u.speaker == speaker and u.id not in exclude]
    utts = sorted(utts, key=lambda u: (u.split != "train", u.id))[:REFERENCES]
    return [str(manifest.audio_path(u)) for u in utts]


def references(manifest: Manifest | None, speaker: str | None, exclude: set[str], sr: int) -> list[np.ndarray]:
    """Up to REFERENCES utterances (T,) of `speaker` at rate sr (`reference_files`)."""
    return [audio.load(p, sr) for p in reference_files(manifest, speaker, exclude)]


def pitch_closer(f0_output: float, f0_target: float, f0_source: float) -> bool | None:
    """Is the output's median F0 nearer (in semitones) the target's than the source's? None when
    the two speakers' F0 are too close to tell apart."""
    f = np.array([f0_output, f0_target, f0_source])
    if not np.isfinite(f).all() or abs(12 * np.log2(f[1] / f[2])) < PITCH_APART:
        return None
    return bool(abs(np.log2(f[0] / f[1])) < abs(np.log2(f[0] / f[2])))
