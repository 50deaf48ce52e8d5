"""Any folder of audio as an in-memory corpus manifest (for `audiovq analyze --audio DIR`).

Two layouts, as Montreal Forced Aligner reads them:

* per-speaker: `DIR/<speaker>/<utt>.wav` — the folder name is the speaker;
* flat: `DIR/<utt>.wav` — no speaker labels (every utterance gets speaker `UNLABELLED`).

Files are `.wav`, `.flac` or `.ogg` (any case) at any sample rate: nothing is copied or resampled
here; the manifest's `root` is DIR itself, and loaders resample on read
(`audio.load(manifest.audio_path(u), rate)`). Every utterance is in split "test" and every
speaker in "train"; callers select them all with split "all".
"""
from __future__ import annotations

import os
import pathlib

import soundfile as sf

from .. import audio
from ..errors import AudioVQError
from .manifest import Manifest, Speaker, Utterance

UNLABELLED = "unlabelled"  # the one speaker id of a flat folder (its TextGrids: `<align>/<utt>.TextGrid`)


def _audio_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in audio.SUFFIXES)


def folder_manifest(audio_dir: str | os.PathLike, sample_rate: int) -> Manifest:
    """A Manifest over the wav/flac/ogg files of `audio_dir` (flat or one folder per speaker).

    `sample_rate` is the rate the files will be loaded at (the model's); durations and sample
    counts are the files' own. Raises AudioVQError (one line) for a missing folder, a folder
    with no audio, a mix of top-level files and speaker folders, two files with one name (the
    utterance id is the file stem) or an unreadable file.
    """
    root = pathlib.Path(audio_dir)
    if not root.is_dir():
        raise AudioVQError(f"{root}: no such audio folder")
    top = _audio_files(root)
    nested = {d.name: _audio_files(d) for d in sorted(root.iterdir())
              if d.is_dir() and not d.name.startswith(".")}
    nested = {k: v for k, v in nested.items() if v}
    if top and nested:
        raise AudioVQError(f"{root}: has audio files both at the top and in speaker folders "
                           f"({', '.join(sorted(nested)[:3])}); use one layout")
    if not top and not nested:
        raise AudioVQError(f"{root}: no .wav or .flac (or .ogg) files (in the folder or its speaker subfolders)")
    groups = nested if nested else {UNLABELLED: top}
    utterances, seen = [], {}
    for speaker, files in groups.items():
        for f in files:
            rel = f.relative_to(root).as_posix()
            if f.stem in seen:
                raise AudioVQError(f"{root}: two files give utterance id {f.stem!r} ({seen[f.stem]}, {rel})")
            seen[f.stem] = rel
            try:
                info = sf.info(str(f))
            except Exception as e:  # soundfile raises several types for unreadable files
                raise AudioVQError(f"{f}: not a readable audio file ({type(e).__name__})") from None
            utterances.append(Utterance(id=f.stem, speaker=speaker, path=rel, num_samples=int(info.frames),
                                        duration=float(info.frames) / info.samplerate, text="", split="test",
                                        trim_start=0.0, source=rel))
    speakers = [Speaker(id=s, gender="", age=None, accent="", region="", split="train") for s in groups]
    return Manifest(root, int(sample_rate), speakers, utterances, str(root),
                    {"layout": "per-speaker" if nested else "flat", "source": "audio folder"})
