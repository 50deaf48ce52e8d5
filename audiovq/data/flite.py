"""Speakers from CMU flite's English voices, for the embedded corpus.

espeak-ng's formant voices are easy to make in any number, but an ASR recognises them
poorly and they are all one synthesizer. flite's voices awb, rms, slt and kal16 are built
from recordings of real speakers (unit selection; kal16: diphones), an ASR recognises them
well, and `flite -psdur` prints each phone's end time in the CMU phone set the corpus uses.
The Debian package `flite` provides the `flite` program (the Makefile installs it where it
can); without it the corpus simply has no flite speakers (`available()`).

A flite speaker is a voice plus an F0 target and a speaking-rate factor, so one recorded
voice gives several distinct speakers. flite is deterministic: the same arguments give the
same samples.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from typing import NamedTuple

import numpy as np
import soundfile as sf

from ..errors import AudioVQError
from .phones import SIL

FLITE_RATE = 16000  # the rate of awb, rms, slt and kal16
# (voice, gender, accent, region): the real speakers behind the voices
VOICES = {"awb": ("M", "Scottish", "Edinburgh"), "rms": ("M", "American", "Pennsylvania"),
          "kal16": ("M", "American", "Pittsburgh"), "slt": ("F", "American", "Pittsburgh")}
# Variants per voice: (F0 target mean in Hz, 0 = the voice's own; duration stretch). rms's
# unit-selection prosody ignores the F0 target, so its second variant differs in rate only.
VARIANTS = {"awb": ((0, 1.0), (105, 1.12)), "rms": ((0, 1.0), (0, 0.88)),
            "kal16": ((0, 1.0), (125, 1.08)), "slt": ((0, 1.0), (200, 0.94))}
# flite's phone set → the corpus's 39 ARPAbet classes (the rest are the same names, upper case)
TO_ARPABET = {"pau": SIL, "h#": SIL, "ax": "AH", "axr": "ER", "dx": "T", "el": "L", "em": "M",
              "en": "N", "nx": "N", "hv": "HH"}


class FliteSpeaker(NamedTuple):
    id: str
    voice: str       # flite voice name
    gender: str
    age: int
    accent: str
    region: str
    f0_mean: int     # Hz; 0 = the voice's own
    stretch: float   # duration factor (> 1: slower)

    def describe(self) -> str:
        f0 = f"F0 {self.f0_mean} Hz" if self.f0_mean else "own F0"
        return f"flite {self.voice:<6} {f0}, duration x{self.stretch:.2f}"


class FliteSynthesis(NamedTuple):
    audio: np.ndarray                  # (T,) float32 at FLITE_RATE
    phones: list[tuple[str, float]]    # (ARPAbet label or sil, end time in seconds), in order


def available() -> bool:
    """Whether the `flite` program with the voices in VOICES is installed."""
    return bool(_voices()) and set(VOICES) <= _voices()


@functools.lru_cache(maxsize=1)
def _voices() -> frozenset:
    exe = shutil.which("flite")
    if exe is None:
        return frozenset()
    out = subprocess.run([exe, "-lv"], capture_output=True, text=True, timeout=30).stdout
    return frozenset(out.split(":", 1)[-1].split())


def speaker_variants() -> list[tuple[str, int, float]]:
    """Every (voice, F0 target, stretch), voice by voice, slt last."""
    return [(voice, f0, stretch) for voice in VOICES for f0, stretch in VARIANTS[voice]]


def _run(args: list[str], what: str) -> str:
    try:
        done = subprocess.run(["flite", *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AudioVQError(f"flite failed on {what} ({e})") from None
    if done.returncode != 0:
        raise AudioVQError(f"flite failed on {what}: {done.stderr.strip()[:200]}")
    return done.stdout


def _parse_phones(text: str) -> list[tuple[str, float]]:
    phones = []
    for token in text.split():
        name, _, end = token.rpartition(":")
        try:
            phones.append((TO_ARPABET.get(name, name.upper()), float(end)))
        except ValueError:
            continue  # anything that is not "phone:time"
    return phones


def synthesize(text: str, speaker: FliteSpeaker) -> FliteSynthesis:
    """Speak `text` with a flite speaker: samples and phone end times."""
    args = ["-voice", speaker.voice]
    if speaker.f0_mean:
        args += ["--setf", f"int_f0_target_mean={speaker.f0_mean}"]
    if speaker.stretch != 1.0:
        args += ["--setf", f"duration_stretch={speaker.stretch}"]
    fd, path = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        out = _run(args + ["-psdur", "-t", text, "-o", path], f"{text[:40]!r}")
        audio, rate = sf.read(path, dtype="float32")
    finally:
        os.unlink(path)
    if rate != FLITE_RATE:
        raise AudioVQError(f"flite voice {speaker.voice} speaks at {rate} Hz, expected {FLITE_RATE}")
    return FliteSynthesis(audio, _parse_phones(out))


@functools.lru_cache(maxsize=4096)
def word_phone_count(word: str) -> int:
    """How many phones flite says `word` has on its own (its lexicon is shared by the voices)."""
    return sum(1 for label, _ in _parse_phones(_run(["-voice", "kal", "-psdur", "-t", word, "-o", "none"],
                                                    repr(word))) if label != SIL)
