"""Speech from the Festival Speech Synthesis System's English voices, with phone and word timing.

Festival's Debian voices are built from recordings of real speakers: `kal_diphone` (Kevin
Lenzo's diphones, the same recordings as flite's kal16), `ked_diphone` (Kurt's diphones,
package festvox-kdlpc16k) and `cmu_us_slt_arctic_hts` (an HTS statistical voice trained on
CMU ARCTIC's slt). They serve as test voices that no model of the embedded corpus trained on
(`unseen.py`). The `festival` program runs one Scheme script per utterance that synthesizes,
saves the wave, and prints each segment (radio phone set) and each word with their times, so
no second pass is needed to align. Festival is deterministic: the same text, voice and
settings give the same samples. The Makefile installs it where it can (root with apt-get);
without it `available()` is False and callers leave its voices out.
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
from .flite import TO_ARPABET  # festival's radio phone set is flite's (both CMU's US English)

# Voice → (gender, Debian package): the English voices Debian ships (bookworm has no rab_diphone)
VOICES = {"kal_diphone": ("M", "festvox-kallpc16k"), "ked_diphone": ("M", "festvox-kdlpc16k"),
          "cmu_us_slt_arctic_hts": ("F", "festvox-us-slt-hts")}


class FestivalSynthesis(NamedTuple):
    audio: np.ndarray                        # (T,) float32 at `rate`
    rate: int                                # Hz: 16000 for the diphone voices, 32000 for slt's HTS voice
    phones: list[tuple[str, float]]          # (ARPAbet label or sil, end time in seconds), in order
    words: list[tuple[str, float, float]]    # (festival's word name, start, end in seconds), in order


def available() -> bool:
    """Whether the `festival` program is installed (its voices: `installed_voices()`)."""
    return shutil.which("festival") is not None


@functools.lru_cache(maxsize=1)
def installed_voices() -> frozenset:
    """Names of the installed Festival voices (empty without festival)."""
    if not available():
        return frozenset()
    try:
        out = subprocess.run(["festival", "--batch", "(print (voice.list))"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(out.strip().strip("()").split())


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _script(text: str, voice: str, wav: str, f0_mean: int, stretch: float) -> str:
    """The Scheme run for one utterance; prints `P phone end` and `W word start end` lines."""
    lines = [f"(voice_{voice})"]
    if f0_mean:  # the diphone voices' linear-regression intonation maps onto this target mean
        lines.append(f"(set! int_lr_params (cons (list 'target_f0_mean {int(f0_mean)}) int_lr_params))")
    if stretch != 1.0:  # relative to the voice's own stretch (ked's is 1.1)
        lines.append("(Parameter.set 'Duration_Stretch (* (if (Parameter.get 'Duration_Stretch) "
                     f"(Parameter.get 'Duration_Stretch) 1.0) {float(stretch)!r}))")
    lines += [
        f"(set! utt (utt.synth (Utterance Text {_scheme_string(text)})))",
        f"(utt.save.wave utt {_scheme_string(wav)} 'riff)",
        "(mapcar (lambda (s) (format t \"P %s %f\\n\" (item.name s) (item.feat s \"end\")))"
        " (utt.relation.items utt 'Segment))",
        # a word's segments hang below its syllables in the SylStructure relation
        "(mapcar (lambda (w) (let ((segs (apply append (mapcar item.daughters"
        " (item.daughters (item.relation w 'SylStructure))))))"
        " (if segs (format t \"W %s %f %f\\n\" (item.name w) (item.feat (car segs) \"segment_start\")"
        " (item.feat (car (last segs)) \"end\")))))"
        " (utt.relation.items utt 'Word))",
    ]
    return "\n".join(lines) + "\n"


def _parse(out: str) -> tuple[list[tuple[str, float]], list[tuple[str, float, float]]]:
    phones, words = [], []
    for line in out.splitlines():
        parts = line.split()
        try:
            if len(parts) == 3 and parts[0] == "P":
                phones.append((TO_ARPABET.get(parts[1], parts[1].upper()), float(parts[2])))
            elif len(parts) == 4 and parts[0] == "W":
                words.append((parts[1], float(parts[2]), float(parts[3])))
        except ValueError:
            continue  # a line of festival's own chatter
    return phones, words


def synthesize(text: str, voice: str, f0_mean: int = 0, stretch: float = 1.0) -> FestivalSynthesis:
    """Speak `text` with Festival voice `voice`: samples, phone end times and word spans.

    `f0_mean` (Hz, 0 = the voice's own) sets the diphone voices' intonation target mean;
    `stretch` multiplies the voice's own duration stretch (> 1: slower). Raises AudioVQError
    when festival is missing, lacks the voice, or fails.
    """
    if not available():
        raise AudioVQError("festival is not installed (apt-get install festival festvox-kdlpc16k ...)")
    if voice not in installed_voices():
        raise AudioVQError(f"festival has no voice {voice!r} (installed: {', '.join(sorted(installed_voices())) or 'none'})")
    with tempfile.TemporaryDirectory(prefix="audiovq-festival-") as tmp:
        wav, script = os.path.join(tmp, "out.wav"), os.path.join(tmp, "utt.scm")
        with open(script, "w", encoding="utf-8") as f:
            f.write(_script(text, voice, wav, f0_mean, stretch))
        try:
            done = subprocess.run(["festival", "--batch", script], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AudioVQError(f"festival failed on {text[:40]!r} ({e})") from None
        if done.returncode != 0 or not os.path.isfile(wav):
            raise AudioVQError(f"festival ({voice}) failed on {text[:40]!r}: {done.stderr.strip()[:200]}")
        audio, rate = sf.read(wav, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    phones, words = _parse(done.stdout)
    if not phones:
        raise AudioVQError(f"festival ({voice}) printed no segments for {text[:40]!r}")
    return FestivalSynthesis(audio, int(rate), phones, words)

