"""Hear a speech VQ-VAE while it trains: at each validation, a fixed held-out utterance is
resynthesised as its own speaker and converted to another training speaker, and both go to
TensorBoard as audio and log-mel spectrogram images (as r9y9's and ESPnet's recipes do), with
their word error rate and DNSMOS when the `eval` extra is installed.

Generation runs on a CPU copy of the model with the fast generator, so a GPU run pays a few
seconds per validation, not an incremental PyTorch loop on the GPU.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch

from .data.manifest import Manifest

SECONDS = 3.0  # at most this much of the utterance (generation cost grows with it)


class Clip(NamedTuple):
    name: str            # "reconstruction" or "conversion"
    audio: np.ndarray    # (T,) float32 in [-1, 1]
    image: np.ndarray    # (1, mels, frames) float32 in [0, 1]: log-mel spectrogram, low frequencies at the bottom
    scores: dict         # wer / dnsmos_ovrl when measured


def log_mel_image(wav: np.ndarray, sample_rate: int, mels: int = 64) -> np.ndarray:
    """wav (T,) → (1, mels, frames) in [0, 1]: 80 dB of log-mel range, for add_image."""
    import librosa

    m = librosa.feature.melspectrogram(y=wav.astype(np.float32), sr=sample_rate, n_fft=512,
                                       hop_length=sample_rate // 100, n_mels=mels, fmax=sample_rate / 2)
    db = librosa.power_to_db(m, ref=np.max(m) if m.max() > 0 else 1.0, top_db=80.0)
    return ((db + 80.0) / 80.0)[None, ::-1].astype(np.float32).copy()


class TrainingListener:
    """Picks the first held-out utterance of a training speaker (the first utterance if none
    is held out) and a conversion target of the other gender where there is one."""

    def __init__(self, manifest: Manifest, speaker_ids: list[str], sample_rate: int):
        from . import audio

        pool = [u for u in manifest.split("val") if u.speaker in speaker_ids] or \
               [u for u in manifest.utterances if u.speaker in speaker_ids]
        self.utterance = pool[0]
        wav = audio.load(manifest.audio_path(self.utterance), sample_rate)
        self.wav = wav[: int(SECONDS * sample_rate)]
        self.text = self.utterance.text if len(wav) <= len(self.wav) else None  # cut: the text no longer fits
        self.sample_rate = sample_rate
        genders = {s.id: s.gender for s in manifest.speakers}
        own = speaker_ids.index(self.utterance.speaker)
        others = [i for i, s in enumerate(speaker_ids) if i != own]
        unlike = [i for i in others if genders.get(speaker_ids[i]) != genders.get(self.utterance.speaker)]
        self.speakers = {"reconstruction": own, "conversion": (unlike or others or [own])[0]}
        from .evaluate.listener import Listener
        listener = Listener()  # without the eval extra: inactive, and clips carry no scores
        self.listener = listener if listener.active else None

    @torch.no_grad()
    def __call__(self, model) -> list[Clip]:
        from .generate import generate

        cpu = copy.deepcopy(model).cpu().eval() if next(model.parameters()).device.type != "cpu" else model
        codes = cpu.encode(torch.from_numpy(self.wav)[None])
        clips = []
        for name, speaker in self.speakers.items():
            out = generate(cpu, codes, torch.tensor([speaker]), lengths=[len(self.wav)], seed=0).audio[0]
            scores = {}
            if self.listener is not None:
                heard = self.listener(out, self.sample_rate, self.text)
                if heard.wer is not None:
                    scores["wer"] = heard.wer
                if heard.ovrl is not None:
                    scores["dnsmos_ovrl"] = heard.ovrl
            clips.append(Clip(name, out, log_mel_image(out, self.sample_rate), scores))
        return clips
