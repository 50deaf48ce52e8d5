"""A multi-speaker English corpus synthesized with espeak-ng (and flite), laid out like VCTK 0.92.

VCTK cannot be downloaded everywhere, so audiovq can make its own stand-in: each speaker is an
espeak-ng voice (accent + variant + pitch + range + rate; `espeak.py`) or, where the flite
program is installed and asked for, one of CMU flite's voices of real speakers (`flite.py`),
reading a seed-dependent selection of the built-in sentences (`sentences.txt`), with phone
and word alignments taken from the synthesizer's own phone timing. This module is the corpus
builder over the two engines. The tree is the one the VCTK preparation code reads::

    out_dir/
      README.txt                                   what this is, seed, voices, phone set
      speaker-info.txt                             VCTK 0.92 columns: ID AGE GENDER ACCENTS REGION
      wav48_silence_trimmed/p225/p225_001_mic1.flac   48 kHz 16-bit mono
      txt/p225/p225_001.txt                        the sentence
      alignments/p225/p225_001.TextGrid            "words" and "phones" tiers, ARPAbet + sil

Both engines are deterministic, so the corpus depends only on (seed, speakers, utterances,
flite or not), never on order or on worker processes.
"""
from __future__ import annotations

import bisect
import concurrent.futures
import math
import multiprocessing
import os
import pathlib
import shutil
import time
from importlib import resources
from typing import NamedTuple

import numpy as np

from .. import audio
from ..atomic import write_text
from ..errors import AudioVQError, ConfigError
from . import flite
from .alignments import Interval, text_words, write_textgrid
from .espeak import ESPEAK_RATE, Event, Synthesis, espeak_synthesize  # noqa: F401  (Event: re-exported)
from .phones import ESPEAK_TO_ARPABET, SIL, espeak_to_arpabet

SAMPLE_RATE = 48000        # rate of the written flac files, as VCTK
FIRST_SPEAKER = 225        # VCTK's first speaker ID is p225
MAX_SPEAKERS = 999 - FIRST_SPEAKER + 1
WAV_DIR, TXT_DIR, ALIGN_DIR = "wav48_silence_trimmed", "txt", "alignments"
README_MARK = "audiovq synthetic corpus"  # first line of README.txt: marks a folder we may rewrite

# (espeak-ng language voice, VCTK-style accent, region). Checked against espeak-ng-data/lang/gmw.
ACCENTS: tuple[tuple[str, str, str], ...] = (
    ("en", "English", "Southern England"),
    ("en-gb-x-rp", "English", "Oxford"),
    ("en-gb-x-gbclan", "English", "Lancashire"),
    ("en-gb-x-gbcwmd", "English", "West Midlands"),
    ("en-gb-scotland", "Scottish", "Edinburgh"),
    ("en-us", "American", "California"),
    ("en-us-nyc", "American", "New York"),
    ("en-029", "Caribbean", "Jamaica"),
)
# espeak-ng voice variants (espeak-ng-data/voices/!v) by the gender their file declares.
VARIANTS = {"F": ("f1", "f2", "f3", "f4", "f5"),
            "M": ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")}
# espeak parameters (0..100 for pitch and range, words per minute for rate) by gender: the
# variants already set a gendered base pitch; these ranges keep low and high voices far apart.
PITCH = {"F": (40, 70), "M": (30, 60)}
RANGE = (30, 80)
RATE = (150, 195)
AGE = (18, 38)
LEAD_SILENCE = (0.10, 0.30)  # seconds of silence put before espeak's own (~10 ms) onset
HELDOUT_FLITE_VOICE = "slt"  # with flite: never a training speaker (see corpus_speakers)


class Speaker(NamedTuple):
    id: str         # "p225"
    language: str   # espeak-ng language voice, e.g. "en-us"
    variant: str    # espeak-ng variant, e.g. "f3"
    gender: str     # "F" or "M"
    age: int
    accent: str     # VCTK-style, e.g. "American"
    region: str
    pitch: int      # espeakPITCH, 0..100
    range: int      # espeakRANGE, 0..100
    rate: int       # espeakRATE, words per minute

    @property
    def voice(self) -> str:
        return f"{self.language}+{self.variant}"


class SynthSummary(NamedTuple):
    out_dir: pathlib.Path
    speakers: int
    utterances: int      # in total
    seconds: float       # of audio written
    elapsed: float       # wall-clock seconds taken


def speaker_table(count: int, seed: int = 0) -> list[Speaker]:
    """Voices of speakers p225, p226, ...: speaker i is the same for a seed whatever `count` is.

    Genders alternate (which comes first depends on the seed); within a gender the speakers
    step through the (variant, accent) pairs so that none repeats before all have been used
    (40 female, 64 male) and neighbours differ in both; pitch, range, rate and age are drawn
    per speaker, so even a repeated pair sounds different.
    """
    _check_seed(seed)
    if not 1 <= count <= MAX_SPEAKERS:
        raise ConfigError(f"speakers must be between 1 and {MAX_SPEAKERS}, got {count}")
    order = np.random.default_rng([seed, 0])
    accents = [ACCENTS[j] for j in order.permutation(len(ACCENTS))]
    variants = {g: [v[j] for j in order.permutation(len(v))] for g, v in VARIANTS.items()}
    first = "FM"[int(order.integers(2))]
    table = []
    for i in range(count):
        gender = first if i % 2 == 0 else "FM"[first == "F"]
        k = i // 2
        vs = variants[gender]
        # variant k mod V with accent (variant + k div V): every pair once in the first V x A
        language, accent, region = accents[(k % len(vs) + k // len(vs) + (3 if gender == "M" else 0))
                                           % len(accents)]
        r = np.random.default_rng([seed, 1, i])
        table.append(Speaker(
            id=f"p{FIRST_SPEAKER + i}", language=language, variant=vs[k % len(vs)], gender=gender,
            age=int(r.integers(AGE[0], AGE[1] + 1)), accent=accent, region=region,
            pitch=int(r.integers(PITCH[gender][0], PITCH[gender][1] + 1)),
            range=int(r.integers(RANGE[0], RANGE[1] + 1)), rate=int(r.integers(RATE[0], RATE[1] + 1))))
    return table


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def load_sentences() -> list[str]:
    """The built-in sentence list (`audiovq/data/sentences.txt`), comments and blanks removed."""
    text = resources.files(__package__).joinpath("sentences.txt").read_text(encoding="utf-8")
    return [s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]


def select_sentences(n_sentences: int, speaker_index: int, utterances: int, seed: int = 0) -> list[int]:
    """Indices of the sentences a speaker reads, in reading order.

    Like VCTK, a common block comes first (a quarter of `utterances`, the same for every
    speaker of a seed), then sentences drawn for this speaker alone from the rest, so any two
    speakers share the block plus a few chance overlaps.
    """
    _check_seed(seed)
    if not 1 <= utterances <= n_sentences:
        raise ConfigError(f"utterances must be between 1 and {n_sentences} (the built-in "
                          f"sentences), got {utterances}")
    pool = np.random.default_rng([seed, 2]).permutation(n_sentences)
    shared = utterances // 4
    own = np.random.default_rng([seed, 3, speaker_index]).choice(
        pool[shared:], size=utterances - shared, replace=False)
    return [int(j) for j in pool[:shared]] + [int(j) for j in own]


# ----------------------------------------------------------------------------- alignment

class Aligned(NamedTuple):
    audio: np.ndarray                 # (T,) float32 at SAMPLE_RATE
    tiers: dict[str, list[Interval]]  # "words" and "phones", tiling [0, T / SAMPLE_RATE]


def align(text: str, synthesis: Synthesis, lead: int = 0) -> Aligned:
    """Resample to 48 kHz and turn espeak's events into contiguous words/phones tiers.

    `lead` zero samples (22050 Hz) are put in front. Each phoneme lasts until the next one
    starts (the last one until the end); zero-length phonemes are dropped, pauses and the
    stretch before the first phoneme are `sil` (merged when adjacent), and a word spans its
    first to last non-silent phone. Words that espeak spoke as one (its WORD event covers
    "of", the next event starts after "the") share out the phones in order, each taking as
    many as it has when said alone. Boundaries are snapped to the 48 kHz sample grid, and
    the audio is padded so the two rates' durations agree exactly.
    """
    up, down = SAMPLE_RATE // math.gcd(SAMPLE_RATE, ESPEAK_RATE), ESPEAK_RATE // math.gcd(SAMPLE_RATE, ESPEAK_RATE)
    n = lead + len(synthesis.audio)
    n += -n % down  # whole number of 48 kHz samples
    wav22 = np.zeros(n, np.float32)
    wav22[lead:lead + len(synthesis.audio)] = synthesis.audio.astype(np.float32) / 32768.0

    words = text_words(text)
    starts = [w.start for w in words]
    # (start sample, label, index of the word event it follows) per phoneme, in event order
    groups: list[int] = []  # first text word of each WORD event
    marks: list[tuple[int, str, int]] = [(0, SIL, -1)]
    last = 0
    for e in synthesis.events:
        if e.kind == "word":
            w = max(bisect.bisect_right(starts, e.text_position - 1) - 1, 0)
            if words and (not groups or w > groups[-1]):  # a second event in one word continues it
                groups.append(w)
        else:
            last = min(max(last, lead + e.sample), n)  # events never run backwards or past the end
            marks.append((last, espeak_to_arpabet(e.phoneme), len(groups) - 1))
    phones: list[tuple[int, int, str, int]] = []  # start, end, label, group
    for (start, label, group), (end, _, _) in zip(marks, marks[1:] + [(n, SIL, -1)]):
        if end <= start:
            continue  # zero-length event: the next one takes over at the same sample
        if label == SIL:
            group = -1
        if phones and label == SIL and phones[-1][2] == SIL:
            phones[-1] = (phones[-1][0], end, SIL, -1)
        else:
            phones.append((start, end, label, group))

    def seconds(s: int) -> float:  # a 22050 Hz boundary on the 48 kHz grid
        return round(s * up / down) / SAMPLE_RATE

    spans: list[tuple[int, int, str]] = []  # start, end (22050 Hz), label of each word
    for g, first in enumerate(groups):
        inside = [(s, e) for s, e, _, group in phones if group == g]
        members = list(range(first, groups[g + 1] if g + 1 < len(groups) else len(words)))
        for w, (i, j) in zip(members, _share(len(inside), [synthesis.word_phonemes[m] for m in members])):
            if j > i:
                spans.append((inside[i][0], inside[j - 1][1], words[w].label))
    word_tier = _word_tier([(seconds(a), seconds(b), label) for a, b, label in spans], seconds(n))
    phone_tier = [Interval(seconds(s), seconds(e), lab) for s, e, lab, _ in phones]
    wav48 = np.clip(audio.resample(wav22, ESPEAK_RATE, SAMPLE_RATE), -1.0, 1.0)
    assert len(wav48) == n * up // down
    return Aligned(wav48, {"words": word_tier, "phones": phone_tier})


def _word_tier(spans: list[tuple[float, float, str]], total: float) -> list[Interval]:
    """Word spans (start, end, label) in seconds → a tier tiling [0, total], gaps unlabelled."""
    tier: list[Interval] = []
    t = 0.0
    for start, end, label in spans:
        if start > t:
            tier.append(Interval(t, start, ""))
        tier.append(Interval(start, end, label))
        t = end
    if t < total:
        tier.append(Interval(t, total, ""))
    return tier


def align_flite(text: str, synthesis: "flite.FliteSynthesis", lead: int = 0) -> Aligned:
    """Resample flite's output to 48 kHz and turn its phone end times into words/phones tiers.

    `lead` zero samples (16 kHz) go in front. flite's pauses are `sil`; words take the non-
    silent phones in order, each as many as flite says it has alone (`flite.word_phone_count`).
    """
    up = SAMPLE_RATE // flite.FLITE_RATE
    n = lead + len(synthesis.audio)
    wav16 = np.zeros(n, np.float32)
    wav16[lead:] = synthesis.audio

    def seconds(t: float) -> float:  # a flite time on the 48 kHz grid, after the lead
        return min(round((lead + t * flite.FLITE_RATE) * up), n * up) / SAMPLE_RATE

    phones: list[tuple[float, float, str]] = []
    start = 0.0
    for label, end in synthesis.phones:
        a, b = (0.0 if not phones else start), seconds(end)
        start = b
        if b <= a:
            continue
        if phones and label == SIL and phones[-1][2] == SIL:
            phones[-1] = (phones[-1][0], b, SIL)
        else:
            phones.append((a, b, label))
    total = n * up / SAMPLE_RATE
    if phones and phones[-1][1] < total:  # flite's last phone ends before its last sample
        a, end, label = phones[-1]
        if label == SIL:
            phones[-1] = (a, total, SIL)
        else:
            phones.append((end, total, SIL))
    voiced = [p for p in phones if p[2] != SIL]
    words = text_words(text)
    spans = [(voiced[i][0], voiced[j - 1][1], w.label)
             for w, (i, j) in zip(words, _share(len(voiced), [flite.word_phone_count(w.label) for w in words]))
             if j > i]
    tiers = {"words": _word_tier(spans, total), "phones": [Interval(a, b, lab) for a, b, lab in phones]}
    wav48 = np.clip(audio.resample(wav16, flite.FLITE_RATE, SAMPLE_RATE), -1.0, 1.0)
    return Aligned(wav48, tiers)


def _share(total: int, wanted: list[int]) -> list[tuple[int, int]]:
    """Split `total` consecutive items among words wanting `wanted` each: (i, j) ranges in order.

    Each word gets at least one item when there are enough; the last word takes the rest.
    """
    ranges, i = [], 0
    for k, want in enumerate(wanted):
        left_for_others = len(wanted) - k - 1
        take = total - i if left_for_others == 0 else min(max(want, 1), max(total - i - left_for_others, 0))
        ranges.append((i, i + take))
        i += take
    return ranges


# ----------------------------------------------------------------------------- corpus

class _Job(NamedTuple):
    out_dir: str
    speaker: "Speaker | flite.FliteSpeaker"
    index: int        # position in the corpus's speaker list
    number: int       # 1-based utterance number
    text: str
    seed: int


def utterance_id(speaker_id: str, number: int) -> str:
    return f"{speaker_id}_{number:03d}"


def _make_utterance(job: _Job) -> float:
    """Synthesize, align and write one utterance; returns its duration in seconds."""
    sp = job.speaker
    r = np.random.default_rng([job.seed, 4, job.index, job.number])
    if isinstance(sp, flite.FliteSpeaker):
        lead = int(round(r.uniform(*LEAD_SILENCE) * flite.FLITE_RATE))
        aligned = align_flite(job.text, flite.synthesize(job.text, sp), lead)
    else:
        lead = int(round(r.uniform(*LEAD_SILENCE) * ESPEAK_RATE))
        synth = espeak_synthesize(job.text, sp.voice, rate=sp.rate, pitch=sp.pitch, pitch_range=sp.range,
                                  rand_seed=int(r.integers(2**31 - 1)))
        aligned = align(job.text, synth, lead)
    root, uid = pathlib.Path(job.out_dir), utterance_id(sp.id, job.number)
    duration = len(aligned.audio) / SAMPLE_RATE
    audio.save(root / WAV_DIR / sp.id / f"{uid}_mic1.flac", aligned.audio, SAMPLE_RATE, subtype="PCM_16")
    write_text(root / TXT_DIR / sp.id / f"{uid}.txt", job.text + "\n")
    write_textgrid(root / ALIGN_DIR / sp.id / f"{uid}.TextGrid", aligned.tiers, xmax=duration)
    return duration


def _prepare_out_dir(out: pathlib.Path) -> None:
    """Refuse a non-empty folder that is not ours; clear our old output from one that is."""
    if out.exists() and not out.is_dir():
        raise AudioVQError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        readme = out / "README.txt"
        if not readme.is_file() or not readme.read_text(errors="replace").startswith(README_MARK):
            raise AudioVQError(f"{out}: not empty and not an audiovq synthetic corpus; choose another folder")
        for sub in (WAV_DIR, TXT_DIR, ALIGN_DIR):  # a smaller re-run must not leave stale files
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "speaker-info.txt").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _describe(s) -> str:
    if isinstance(s, flite.FliteSpeaker):
        return s.describe()
    return f"espeak {s.voice:<22} pitch {s.pitch:3d}  range {s.range:3d}  rate {s.rate:3d} wpm"


def _readme(speakers: list, utterances: int, seed: int) -> str:
    rows = "\n".join(f"  {s.id}  {s.gender}  {_describe(s)}  ({s.accent}, {s.region})" for s in speakers)
    n_shared = utterances // 4
    shared = (f"utterances 001-{n_shared:03d} are the same sentences for every speaker, the rest are\n"
              f"drawn per speaker." if n_shared else "each speaker's are drawn separately.")
    return f"""{README_MARK}

A stand-in for VCTK 0.92 made by audiovq.data.synthetic: English speech from espeak-ng
(and CMU flite's voices of real speakers, where listed), {len(speakers)} speakers x {utterances} utterances, seed {seed}. The same seed gives the same bytes.
Speakers read sentences written for audiovq (audiovq/data/sentences.txt):
{shared}

Layout (as VCTK 0.92, plus alignments like Montreal Forced Aligner's):
  speaker-info.txt                                 ID AGE GENDER ACCENTS REGION
  wav48_silence_trimmed/pXXX/pXXX_NNN_mic1.flac    48 kHz, 16-bit, mono, with leading/trailing silence
  txt/pXXX/pXXX_NNN.txt                            the sentence
  alignments/pXXX/pXXX_NNN.TextGrid                Praat long text format, tiers "words" and "phones"

Phone set (phones tier): the 39 ARPAbet phones of CMUdict without stress digits
  {' '.join(p for p in sorted(set(ESPEAK_TO_ARPABET.values())) if p != SIL)}
plus "sil" for pauses and silence; empty labels in the words tier are silence. espeak-ng's
phoneme mnemonics are mapped by the table in audiovq/data/phones.py.

Voices (espeak-ng language+variant and parameters; flite voice, F0 target and rate):
{rows}
"""


def _speaker_info(speakers: list[Speaker]) -> str:
    lines = ["ID  AGE  GENDER  ACCENTS  REGION COMMENTS "]
    lines += [f"{s.id}  {s.age}  {s.gender}  {s.accent}  {s.region}" for s in speakers]
    return "\n".join(lines) + "\n"


def corpus_speakers(speakers: int, seed: int = 0, with_flite: bool = False) -> list:
    """The corpus's speakers in ID order: `speakers` espeak voices, plus, `with_flite`, every
    flite voice variant (`flite.speaker_variants()`).

    With flite, the order puts the speakers meant to be held out last (VCTK preparation holds
    out the last IDs): the last espeak voice, then flite's slt voice, a female American voice an
    ASR recognises well, which no model of this corpus hears in training (`heldout_speakers`).
    """
    table = speaker_table(speakers, seed)
    if not with_flite:
        return table
    variants = flite.speaker_variants()
    last = [v for v in variants if v[0] == HELDOUT_FLITE_VOICE]
    order = table[:-1] + [v for v in variants if v[0] != HELDOUT_FLITE_VOICE] + table[-1:] + last
    out = []
    for i, item in enumerate(order):
        sid = f"p{FIRST_SPEAKER + i}"
        if isinstance(item, Speaker):
            out.append(item._replace(id=sid))
        else:
            voice, f0, stretch = item
            gender, accent, region = flite.VOICES[voice]
            age = int(np.random.default_rng([seed, 5, i]).integers(AGE[0], AGE[1] + 1))
            out.append(flite.FliteSpeaker(sid, voice, gender, age, accent, region, f0, stretch))
    return out


def heldout_speakers(with_flite: bool) -> int | None:
    """How many of `corpus_speakers`' last IDs preparation holds out (None: its default)."""
    if not with_flite:
        return None
    return 1 + sum(1 for v in flite.speaker_variants() if v[0] == HELDOUT_FLITE_VOICE)


def synthesize_corpus(out_dir: str | os.PathLike, speakers: int = 12, utterances: int = 60, seed: int = 0,
                      progress: bool = True, workers: int | None = None, with_flite: bool = False) -> SynthSummary:
    """Write a VCTK-shaped corpus of `speakers` espeak voices (plus flite's, `with_flite`) x
    `utterances` to `out_dir` (see the module doc and `corpus_speakers`).

    `workers` processes share the work (default: one per core, at most 4; small corpora run in
    this process); the files are the same for any number of workers. Workers are spawned, so
    a script calling this needs the usual ``if __name__ == "__main__":`` guard. Re-running into
    an existing synthetic corpus replaces it. Raises ConfigError for a bad count or seed and
    AudioVQError for an `out_dir` holding something other than this corpus.
    """
    t0 = time.perf_counter()
    out = pathlib.Path(out_dir)
    if with_flite and not flite.available():
        raise AudioVQError("the corpus asks for flite voices but the flite program is not installed "
                           "(apt-get install flite)")
    table = corpus_speakers(speakers, seed, with_flite)
    sentences = load_sentences()
    jobs = [_Job(str(out), sp, i, number, sentences[j], seed)
            for i, sp in enumerate(table)
            for number, j in enumerate(select_sentences(len(sentences), i, utterances, seed), start=1)]
    _prepare_out_dir(out)
    write_text(out / "README.txt", _readme(table, utterances, seed))
    if workers is None:
        workers = 1 if len(jobs) < 48 else min(os.cpu_count() or 1, 4)
    from tqdm import tqdm
    bar = tqdm(total=len(jobs), desc="synthesizing", unit="utt", disable=not progress)
    seconds = 0.0
    try:
        if workers <= 1:
            for job in jobs:
                seconds += _make_utterance(job)
                bar.update()
        else:
            # Fresh interpreters: a forked copy of a process running torch threads can deadlock.
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                for duration in pool.map(_make_utterance, jobs, chunksize=8):
                    seconds += duration
                    bar.update()
    finally:
        bar.close()
    write_text(out / "speaker-info.txt", _speaker_info(table))  # written last: marks a complete corpus
    return SynthSummary(out, len(table), len(jobs), seconds, time.perf_counter() - t0)
