"""Training data drawn from a prepared corpus: fixed-length random waveform segments with
their speaker index, chosen deterministically from (seed, step) so that a resumed run and
a multi-process run see exactly the batches an uninterrupted single-process run would.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import soundfile as sf
import torch

from ..errors import AudioVQError
from .manifest import Manifest, Utterance


class AudioBatch(NamedTuple):
    wav: torch.Tensor      # (B, T) float32 in [-1, 1]
    speaker: torch.Tensor  # (B,) int64 index into the speaker table
    encoder_wav: torch.Tensor | None = None  # (B, T) what the encoder sees, when not `wav` (perturbation)
    decoder_noise: torch.Tensor | None = None  # (B, T) N(0, 1) for the decoder's input noise, drawn per global batch
    pitch: torch.Tensor | None = None  # (B, T / hop) F0 in Hz per code frame (0 = unvoiced), for a decoder that needs it
    band_shift: torch.Tensor | None = None  # (B,) int64: mel bands a mel encoder's input is moved by (perturbation)


class SegmentSource:
    """Random segments of `segment` samples from one split of a prepared corpus.

    speakers: the speaker table (ids in embedding order); utterances of other speakers are
    ignored. Utterances are drawn with probability proportional to their length (every
    sample equally likely); shorter ones are zero-padded. Decoded audio is kept in memory
    as int16 up to `cache_bytes`; beyond that, segments are read from disk.
    """

    def __init__(self, manifest: Manifest, split: str, segment: int, speakers: list[str],
                 cache_bytes: float = 2e9, pitch_hop: int | None = None):
        """pitch_hop: also hand out each segment's F0 per frame of this many samples, from the
        tracks `data.pitch.ensure_pitch` cached beside the corpus (segments then start on a
        frame; utterances without a track are left out)."""
        self.manifest, self.segment, self.pitch_hop = manifest, segment, pitch_hop
        index = {s: i for i, s in enumerate(speakers)}
        self.utterances: list[Utterance] = [u for u in manifest.split(split) if u.speaker in index]
        self.tracks: dict[int, np.ndarray] = {}
        if pitch_hop:
            from .pitch import pitch_dir
            folder = pitch_dir(manifest.root, pitch_hop)
            self.utterances = [u for u in self.utterances if (folder / u.speaker / f"{u.id}.npy").is_file()]
            self.tracks = {i: np.load(folder / u.speaker / f"{u.id}.npy") for i, u in enumerate(self.utterances)}
        if not self.utterances:
            raise AudioVQError(f"{manifest.root}: no {split!r} utterances of the model's speakers")
        self.speaker_index = np.array([index[u.speaker] for u in self.utterances])
        lengths = np.array([u.num_samples for u in self.utterances], dtype=np.float64)
        self.weights = torch.from_numpy(lengths / lengths.sum())
        self.cache: dict[int, np.ndarray] = {}
        self.cache_left = cache_bytes

    def _read(self, i: int, start: int, length: int) -> np.ndarray:
        audio = self.cache.get(i)
        if audio is None:
            path = self.manifest.audio_path(self.utterances[i])
            try:
                if self.cache_left > 0:
                    audio = sf.read(str(path), dtype="int16")[0]
                    self.cache[i] = audio
                    self.cache_left -= audio.nbytes
                else:
                    return sf.read(str(path), start=start, frames=length, dtype="float32")[0]
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioVQError(f"{path}: cannot read prepared audio ({e})") from None
        return audio[start:start + length].astype(np.float32) / 32768.0

    def _start(self, i: int, offset_fraction: float) -> int:
        start = int(offset_fraction * max(self.utterances[i].num_samples - self.segment, 0))
        return start - start % self.pitch_hop if self.pitch_hop else start

    def _segment(self, i: int, offset_fraction: float) -> np.ndarray:
        x = self._read(i, self._start(i, offset_fraction), self.segment)
        return np.pad(x, (0, self.segment - x.shape[0]))

    def _pitch(self, picks: list[int], offsets: list[float]) -> torch.Tensor | None:
        if not self.pitch_hop:
            return None
        frames = self.segment // self.pitch_hop
        out = np.zeros((len(picks), frames), np.float32)
        for row, (i, o) in enumerate(zip(picks, offsets)):
            f = self.tracks[i][self._start(i, o) // self.pitch_hop:][:frames]
            out[row, :f.size] = f
        return torch.from_numpy(out)

    def batch(self, batch_size: int, generator: torch.Generator, part: slice = slice(None)) -> AudioBatch:
        """Draw a batch plan of `batch_size` segments from `generator`; load only `part` of it
        (the slice of the global batch that belongs to this process)."""
        picks = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        offsets = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        picks, offsets = picks[part].tolist(), offsets[part].tolist()
        wav = np.stack([self._segment(i, o) for i, o in zip(picks, offsets)])
        return AudioBatch(torch.from_numpy(wav), torch.from_numpy(self.speaker_index[picks]).long(),
                          pitch=self._pitch(picks, offsets))

    def fixed(self, count: int) -> AudioBatch:
        """A deterministic set of segments (the middle of up to `count` utterances spread over
        the split) for validation: the same every time it is asked for."""
        chosen = np.unique(np.linspace(0, len(self.utterances) - 1, min(count, len(self.utterances))).astype(int))
        wav = np.stack([self._segment(int(i), 0.5) for i in chosen])
        return AudioBatch(torch.from_numpy(wav), torch.from_numpy(self.speaker_index[chosen]).long(),
                          pitch=self._pitch([int(i) for i in chosen], [0.5] * len(chosen)))
