"""A fixed test set of voices that no model of the embedded corpus trained on.

The embedded corpus holds out only its last IDs (one espeak voice and flite's slt variants),
too few to say how conversion depends on where a source voice comes from. This module makes a
separate, versioned set instead, so that the training corpus (its speakers, splits and bytes)
never changes: 15 voices (`VOICES`) from three engines, each reading 8 sentences written for
this set (`SENTENCES`, none of them in the training corpus's `sentences.txt`):

- espeak-ng with *named* variants (Annie, anika, steph, Andy, Denis, travis). The corpus's
  espeak speakers only ever use the numbered variants f1-f5 and m1-m8 (`synthetic.VARIANTS`).
- flite with F0 targets and rates no corpus speaker uses: slt (a woman no training speaker
  is: the corpus holds slt out) and new variants of awb, rms and kal16, whose recordings
  *are* heard in training (`seen_speaker` says so).
- Festival, where installed: ked_diphone (a man no engine of the corpus has), slt's HTS
  voice, and kal_diphone (the same recordings as flite's kal16, so `seen_speaker` is set).

A voice is identified by (engine, voice, f0, rate); none equals a corpus speaker's
(`corpus_voice_key`, checked by tests/test_unseen_voices.py). IDs are "u01"… so they cannot
collide with the corpus's "p225"…; an ID always names the same voice (the table only grows,
and a changed voice gets a new ID or a new `VERSION`). Everything is deterministic: the same
voice table, sentences and sample rate give the same files. The set is built once per sample
rate into `<root>/prepared-<rate>/`, written as a temporary folder that is renamed into place,
and is a prepared corpus (`manifest.json`, every speaker "heldout", every utterance "test"),
so the tools that read the corpus's test split read it too. Voices whose engine is missing are
left out and named in `UnseenSet.skipped`; such a partial set goes to its own folder
(`prepared-<rate>-partial-<hash of its voice IDs>`), so a full set is never mixed with one.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import tempfile
import time
from typing import NamedTuple

import numpy as np

from .. import audio
from ..atomic import write_text
from ..errors import AudioVQError
from . import festival, flite
from .alignments import Interval, text_words, write_textgrid
from .espeak import espeak_synthesize
from .manifest import Manifest, Speaker, Utterance
from .phones import SIL

VERSION = "unseen-voices-v1"
DEFAULT_ROOT = f"data/{VERSION}"
UTTERANCES = 8       # per voice
TOP_DB = 30.0        # silence trimming as corpus preparation does (vctk.prepare's default)
TRIM_MARGIN = 0.02   # seconds kept around the speech (vctk.TRIM_MARGIN)
ENGINES = ("espeak", "flite", "festival")

# Written for this set; none is in sentences.txt. No digits, abbreviations or apostrophes, so
# every engine reads the same words and an ASR transcript compares with the text as written.
SENTENCES: tuple[str, ...] = (
    "The old ferry carried six bicycles across the river every morning.",
    "She folded the letter twice and hid it inside a winter glove.",
    "A sudden gust of wind scattered the leaves across the quiet square.",
    "Our teacher drew a map of the island on the blackboard.",
    "The farmer counted his sheep while the sun sank behind the hills.",
    "Nobody noticed the small crack in the kitchen window until spring.",
    "He poured fresh milk into a chipped blue mug for his sister.",
    "The museum closes early on the first Monday of each month.",
    "Two owls called to each other from the dark pine forest.",
    "Bring a warm coat, because the evening train is often late.",
    "The painter mixed green and yellow to match the shade of the moss.",
    "My uncle repaired the broken gate with a length of rope.",
    "A tall stranger asked the librarian for a book about volcanoes.",
    "The soup tasted of garlic, pepper and a little lemon.",
    "We rowed slowly past the lighthouse as the tide turned.",
    "Her brother keeps his stamps in a leather album under the bed.",
    "The orchestra tuned their instruments while the audience found their seats.",
    "Rain drummed on the tin roof of the garden shed all night.",
    "The baker lifted a tray of golden rolls out of the oven.",
    "Please write your name clearly at the top of every page.",
    "The puppy slept soundly beside the fire after its long walk.",
    "A narrow path winds between the cottages down to the beach.",
    "The students argued about the best way to solve the puzzle.",
    "Fresh snow covered the mountain road before the trucks arrived.",
)


class UnseenVoice(NamedTuple):
    id: str            # "u01"
    engine: str        # "espeak", "flite" or "festival"
    voice: str         # the engine's voice: "en-us+Annie", "slt", "ked_diphone"
    gender: str        # "F" or "M"
    f0: int            # espeak: pitch 0..100; flite/festival: F0 target mean in Hz, 0 = the voice's own
    rate: float        # espeak: words per minute; flite/festival: duration stretch, 1.0 = the voice's own
    pitch_range: int   # espeak: range 0..100; 0 for the other engines
    accent: str
    origin: str        # what the voice is made from
    seen_speaker: str  # "" when no training speaker shares its recordings; else which one does

    def key(self) -> tuple[str, str, float, float]:
        """(engine, voice, f0, rate): what makes two voices the same (`corpus_voice_key`)."""
        return (self.engine, self.voice, float(self.f0), float(self.rate))


def _espeak(id, voice, gender, pitch, range_, rate, accent):
    variant = voice.split("+")[1]
    return UnseenVoice(id, "espeak", voice, gender, pitch, float(rate), range_, accent,
                       f"espeak-ng formant synthesis, named variant {variant} (no corpus speaker uses it)", "")


_SLT = "recordings of a real speaker (CMU ARCTIC slt, an American woman; the corpus holds her out of training)"
_AWB_RMS_KAL = "recordings of a real speaker (CMU ARCTIC {who}); flite {voice} at other F0/rate than the corpus's"
VOICES: tuple[UnseenVoice, ...] = (
    # espeak: pitch, range and rate inside the corpus's ranges; only the variant is new
    _espeak("u01", "en-us+Annie", "F", 55, 60, 170, "American"),
    _espeak("u02", "en-gb-x-rp+anika", "F", 50, 55, 160, "English"),
    _espeak("u03", "en-gb-scotland+steph", "F", 60, 70, 180, "Scottish"),
    _espeak("u04", "en-us+Andy", "M", 45, 50, 175, "American"),
    _espeak("u05", "en+Denis", "M", 40, 60, 165, "English"),
    _espeak("u06", "en-029+travis", "M", 50, 45, 185, "Caribbean"),
    # flite: slt (unheard person) and other F0/rate of the voices the corpus trains on
    UnseenVoice("u07", "flite", "slt", "F", 165, 1.06, 0, "American", _SLT + "; flite clustergen voice", ""),
    UnseenVoice("u08", "flite", "slt", "F", 235, 0.97, 0, "American", _SLT + "; flite clustergen voice", ""),
    UnseenVoice("u09", "flite", "awb", "M", 130, 0.95, 0, "Scottish",
                _AWB_RMS_KAL.format(who="awb, a Scottish man", voice="awb"), "flite awb"),
    UnseenVoice("u10", "flite", "rms", "M", 0, 1.12, 0, "American",  # rms ignores F0 targets
                _AWB_RMS_KAL.format(who="rms, an American man", voice="rms"), "flite rms"),
    UnseenVoice("u11", "flite", "kal16", "M", 100, 0.94, 0, "American",
                _AWB_RMS_KAL.format(who="kal, Kevin Lenzo, an American man; diphones", voice="kal16"), "flite kal16"),
    # festival (Debian's English voices; rab_diphone is not packaged for bookworm)
    UnseenVoice("u12", "festival", "ked_diphone", "M", 0, 1.0, 0, "American",
                "recordings of a real speaker (Kurt, an American man; CSTR diphones, LPC synthesis)", ""),
    UnseenVoice("u13", "festival", "ked_diphone", "M", 130, 0.92, 0, "American",
                "recordings of a real speaker (Kurt, an American man; CSTR diphones, LPC synthesis)", ""),
    UnseenVoice("u14", "festival", "cmu_us_slt_arctic_hts", "F", 0, 1.0, 0, "American",
                _SLT + "; HTS statistical parametric voice trained on them", ""),
    UnseenVoice("u15", "festival", "kal_diphone", "M", 0, 1.0, 0, "American",
                "recordings of a real speaker (Kevin Lenzo, an American man; diphones, LPC synthesis)",
                "flite kal16 (the same diphone recordings)"),
)


class UnseenUtterance(NamedTuple):
    id: str                   # "u01_001" (speaker id, then the 1-based number of the reading)
    speaker: str              # "u01"
    gender: str               # "F" or "M"
    engine: str               # "espeak", "flite" or "festival"
    voice: str                # the engine's voice name (UnseenVoice.voice)
    path: pathlib.Path        # mono 16-bit WAV at the set's sample rate, silence-trimmed
    text: str                 # the sentence read (SENTENCES); the reference for WER
    alignment: pathlib.Path   # TextGrid ("words", "phones": ARPAbet + sil) on the untrimmed timeline
    trim_start: float         # seconds cut before `path` starts: subtract from alignment times
    seen_speaker: str         # "" for a voice no training speaker shares (see UnseenVoice)


class UnseenSet(NamedTuple):
    root: pathlib.Path                # the prepared folder: Manifest.load(root) reads it
    voices: list[UnseenVoice]         # the voices in it, in ID order
    utterances: list[UnseenUtterance]  # UTTERANCES per voice, in ID order
    skipped: list[str]                # one line per voice left out, and why (engine missing)


def sentence_indices(voice_index: int) -> list[int]:
    """Indices into SENTENCES that voice `voice_index` (0-based position in VOICES) reads.

    Blocks of UTTERANCES consecutive sentences in turn: voices 0, 3, 6… read the first block,
    so each block is read by voices of every engine.
    """
    return [(voice_index * UTTERANCES + j) % len(SENTENCES) for j in range(UTTERANCES)]


def corpus_voice_key(speaker) -> tuple[str, str, float, float]:
    """(engine, voice, f0, rate) of an embedded-corpus speaker (`synthetic.corpus_speakers`)."""
    if isinstance(speaker, flite.FliteSpeaker):
        return ("flite", speaker.voice, float(speaker.f0_mean), float(speaker.stretch))
    return ("espeak", speaker.voice, float(speaker.pitch), float(speaker.rate))


def _missing_reason(v: UnseenVoice) -> str:
    """Why voice `v` cannot be synthesized here ("" when it can)."""
    if v.engine == "flite" and not flite.available():
        return "flite is not installed (make flite, or apt-get install flite)"
    if v.engine == "festival":
        if not festival.available():
            return "festival is not installed (make festival)"
        if v.voice not in festival.installed_voices():
            return f"festival has no voice {v.voice} (apt-get install {festival.VOICES[v.voice][1]})"
    return ""


def available_voices() -> tuple[list[UnseenVoice], list[str]]:
    """(the voices this machine can synthesize, one line per voice it cannot and why)."""
    ok, skipped = [], []
    for v in VOICES:
        why = _missing_reason(v)
        if why:
            skipped.append(f"{v.id} ({v.engine} {v.voice}): {why}")
        else:
            ok.append(v)
    return ok, skipped


def folder_name(sample_rate: int, voices: list[UnseenVoice]) -> str:
    """`prepared-<rate>` for the full table, else `prepared-<rate>-partial-<hash of the IDs>`."""
    if [v.id for v in voices] == [v.id for v in VOICES]:
        return f"prepared-{sample_rate}"
    digest = hashlib.sha1(",".join(v.id for v in voices).encode()).hexdigest()[:8]
    return f"prepared-{sample_rate}-partial-{digest}"


# ----------------------------------------------------------------------------- synthesis

class _Spoken(NamedTuple):
    audio: np.ndarray                 # (T,) float32 at the set's sample rate, untrimmed
    tiers: dict[str, list[Interval]]  # "words" and "phones" in seconds on that timeline


def _festival_tiers(text: str, syn: "festival.FestivalSynthesis", total: float) -> dict[str, list[Interval]]:
    """Festival's phone end times and word spans → contiguous phones tier and a words tier."""
    phones: list[Interval] = []
    start = 0.0
    for label, end in syn.phones:
        end = min(end, total)
        if end <= start:
            continue
        if phones and label == SIL and phones[-1].label == SIL:
            phones[-1] = Interval(phones[-1].start, end, SIL)
        else:
            phones.append(Interval(start, end, label))
        start = end
    if start < total:  # the wave runs past festival's last segment
        if phones and phones[-1].label == SIL:
            phones[-1] = Interval(phones[-1].start, total, SIL)
        else:
            phones.append(Interval(start, total, SIL))
    # festival's words are the text's tokens when the text has no digits or abbreviations;
    # label them as the corpus does (lower case, punctuation stripped), else keep festival's
    labels = [w.label for w in text_words(text)]
    if len(labels) != len(syn.words):
        labels = [name.lower() for name, _, _ in syn.words]
    words, t = [], 0.0
    for label, (_, a, b) in zip(labels, syn.words):
        a, b = max(a, t), min(b, total)
        if b > a:
            words.append(Interval(a, b, label))
            t = b
    return {"words": words, "phones": phones}


def _at_rate(aligned_audio: np.ndarray, tiers: dict, from_rate: int, sample_rate: int) -> _Spoken:
    wav = np.clip(audio.resample(aligned_audio.astype(np.float32), from_rate, sample_rate), -1.0, 1.0)
    return _Spoken(wav, tiers)


def _speak(v: UnseenVoice, index: int, number: int, text: str, sample_rate: int) -> _Spoken:
    """Synthesize one reading; deterministic in (voice, number, text, sample_rate)."""
    from .synthetic import SAMPLE_RATE, align, align_flite  # the corpus's own alignment code
    if v.engine == "espeak":
        seed = int(np.random.default_rng([26, index, number]).integers(2**31 - 1))
        syn = espeak_synthesize(text, v.voice, rate=int(v.rate), pitch=v.f0, pitch_range=v.pitch_range,
                                rand_seed=seed)
        a = align(text, syn)
        return _at_rate(a.audio, a.tiers, SAMPLE_RATE, sample_rate)
    if v.engine == "flite":
        speaker = flite.FliteSpeaker(v.id, v.voice, v.gender, 0, v.accent, "", v.f0, v.rate)
        a = align_flite(text, flite.synthesize(text, speaker))
        return _at_rate(a.audio, a.tiers, SAMPLE_RATE, sample_rate)
    if v.engine == "festival":
        syn = festival.synthesize(text, v.voice, v.f0, v.rate)
        wav = np.clip(audio.resample(syn.audio, syn.rate, sample_rate), -1.0, 1.0)
        return _Spoken(wav, _festival_tiers(text, syn, len(wav) / sample_rate))
    raise AudioVQError(f"unknown engine {v.engine!r} for unseen voice {v.id}")


def _readme(voices: list[UnseenVoice], skipped: list[str], sample_rate: int) -> str:
    rows = "\n".join(f"  {v.id}  {v.gender}  {v.engine:<8} {v.voice:<22} f0 {v.f0:>3}  rate {v.rate:g}"
                     f"{'  (same person as training: ' + v.seen_speaker + ')' if v.seen_speaker else ''}"
                     for v in voices)
    left = "\n".join(f"  {s}" for s in skipped) or "  none"
    return f"""audiovq unseen voices ({VERSION}), made by audiovq.data.unseen

Test voices no model of the embedded corpus trained on, {UTTERANCES} sentences each, at {sample_rate} Hz.
Speaker IDs u01... never occur in the embedded corpus (p225...). See docs/unseen-voices.md.

Layout (a prepared corpus: every speaker "heldout", every utterance "test"):
  manifest.json                        speakers, utterances, texts, trim_start
  wav/uNN/uNN_MMM.wav                  mono 16-bit, silence-trimmed
  alignments/uNN/uNN_MMM.TextGrid      "words" and "phones" (ARPAbet + sil) on the untrimmed timeline

Voices (espeak: f0 = pitch 0..100, rate = words/min; flite/festival: F0 target Hz (0 = own), duration stretch):
{rows}

Left out on the machine that built this:
{left}
"""


def _build(out: pathlib.Path, voices: list[UnseenVoice], skipped: list[str], sample_rate: int,
           progress: bool) -> None:
    """Write the whole set into `out` (a fresh folder)."""
    from tqdm import tqdm
    frame = max(64, int(0.032 * sample_rate))  # 32 ms frames, 8 ms hop, as preparation trims
    speakers, utts = [], []
    jobs = [(v, VOICES.index(v), n, SENTENCES[j]) for v in voices
            for n, j in enumerate(sentence_indices(VOICES.index(v)), start=1)]
    for v, index, number, text in tqdm(jobs, desc="unseen voices", unit="utt", disable=not progress):
        spoken = _speak(v, index, number, text, sample_rate)
        if audio.is_silent(spoken.audio):
            raise AudioVQError(f"{v.engine} voice {v.voice} gave silence for {text[:40]!r}")
        trimmed = audio.trim_silence(spoken.audio, TOP_DB, frame_length=frame, hop_length=frame // 4,
                                     margin=int(TRIM_MARGIN * sample_rate))
        uid = f"{v.id}_{number:03d}"
        wav_rel, grid_rel = f"wav/{v.id}/{uid}.wav", f"alignments/{v.id}/{uid}.TextGrid"
        audio.save(out / wav_rel, trimmed.audio, sample_rate, subtype="PCM_16")
        write_textgrid(out / grid_rel, spoken.tiers, xmax=len(spoken.audio) / sample_rate)
        utts.append(Utterance(uid, v.id, wav_rel, int(trimmed.audio.size), trimmed.audio.size / sample_rate,
                              text, "test", trimmed.start / sample_rate, grid_rel))
    for v in voices:
        speakers.append(Speaker(v.id, v.gender, None, v.accent, f"{v.engine} {v.voice}", "heldout"))
    meta = {"corpus": VERSION, "layout": "audiovq-unseen-voices", "top_db": TOP_DB, "trim_margin": TRIM_MARGIN,
            "voices": {v.id: v._asdict() for v in voices}, "skipped": skipped}
    Manifest(out, sample_rate, speakers, utts, f"synthesized by audiovq.data.unseen ({VERSION})", meta).save()
    write_text(out / "README.txt", _readme(voices, skipped, sample_rate))


def _records(root: pathlib.Path, voices: list[UnseenVoice], skipped: list[str]) -> UnseenSet:
    manifest = Manifest.load(root)
    by_id = {v.id: v for v in voices}
    if sorted(by_id) != manifest.speaker_ids("all"):
        raise AudioVQError(f"{root}: holds speakers {', '.join(manifest.speaker_ids('all'))}, expected "
                           f"{', '.join(sorted(by_id))}; delete the folder to rebuild it")
    recs = []
    for u in manifest.split("test"):
        v = by_id[u.speaker]
        recs.append(UnseenUtterance(u.id, u.speaker, v.gender, v.engine, v.voice, root / u.path, u.text,
                                    root / u.source, u.trim_start, v.seen_speaker))
    return UnseenSet(root, voices, recs, skipped)


def ensure_unseen_voices(sample_rate: int = 8000, root: str | os.PathLike = DEFAULT_ROOT,
                         progress: bool = True) -> UnseenSet:
    """The unseen-voices test set at `sample_rate`, synthesized on first use and cached.

    Builds `<root>/prepared-<sample_rate>/` (or `...-partial-<hash>` when an engine or voice is
    missing here; see the module doc) once: the voices of `VOICES` this machine can speak, each
    reading its UTTERANCES sentences (`sentence_indices`), written into a temporary folder that
    is renamed into place, so a reader sees a complete set or none, and two processes building
    at once both end with the same folder. Later calls only read its manifest.

    Returns UnseenSet(root, voices, utterances, skipped): `utterances` is a list of
    UnseenUtterance(id, speaker, gender, engine, voice, path, text, alignment, trim_start,
    seen_speaker), UTTERANCES per voice in ID order; `path` is a mono 16-bit WAV at
    `sample_rate`; `text` is the sentence read. Use `seen_speaker == ""` to keep voices whose
    person no training speaker shares. `root` is also a prepared corpus for `Manifest.load`.
    About 2 CPU minutes at 8 kHz with every engine. Raises AudioVQError for a bad sample rate,
    an engine that fails, or a cached folder that does not hold the expected voices.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 4000 <= sample_rate <= 48000:
        raise AudioVQError(f"sample_rate must be an integer between 4000 and 48000 Hz, got {sample_rate!r}")
    voices, skipped = available_voices()
    base = pathlib.Path(root)
    out = base / folder_name(sample_rate, voices)
    if (out / "manifest.json").is_file():
        return _records(out, voices, skipped)
    if progress:
        for line in skipped:
            print(f"note: unseen voice left out: {line}")
    base.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=base))
    try:
        t0 = time.perf_counter()
        _build(tmp, voices, skipped, sample_rate, progress)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the usual permissions
        try:
            os.rename(tmp, out)
        except OSError:
            if not (out / "manifest.json").is_file():  # not a concurrent build that finished first
                raise AudioVQError(f"{out}: exists and is not a complete unseen-voices set; delete it") from None
        if progress:
            print(f"unseen voices: {len(voices)} voices x {UTTERANCES} utterances in {out} "
                  f"({time.perf_counter() - t0:.0f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _records(out, voices, skipped)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
