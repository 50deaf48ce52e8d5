"""Intelligibility: the word error rate of a speech recogniser's transcript of a waveform.

The recogniser is pocketsphinx 5 (the `eval` extra; its wheel ships the CMU en-us acoustic
model and pronunciation dictionary). Its open en-us language model misses about three words in
four even on clean speech, which would drown the differences we want to see, so each utterance
is decoded with a grammar: any sequence (a word loop) over a small vocabulary — the
reference's own words plus a fixed set of `DISTRACTORS` other words. The recogniser then has to
tell which of ~110 words was said where; intelligible speech gets most right, noise or
mumbling gets few, and every wrong word is a substitution, deletion or insertion as usual.

The figure is a relative one: compare an output with its source and with its representation
limit, decoded the same way, not with published open-vocabulary WERs. The acoustic model knows
human and flite voices far better than espeak-ng's: on the embedded corpus, recordings of its
flite speakers score WER 0–0.2, of its espeak-ng speakers 0.4–1.0 (2 utterances each), so
intelligibility is best read on flite (or real) speakers.

Distractors: the `DISTRACTORS` (100) words evenly spaced through the alphabetically sorted
vocabulary of `audiovq/data/sentences.txt` (the sentences of the synthetic corpus) that the
dictionary knows. They are fixed — the same for every utterance, corpus and model — so figures
stay comparable; they are everyday words of the kind the references hold (function words
included), which is what a recogniser confuses real speech with.

Decoder settings: a fresh decoder per utterance, because cepstral mean normalisation carries
its running estimate from one utterance to the next and would make a score depend on what was
decoded before; the whole utterance handed over at once (`full_utt`: the mean comes from the
whole utterance); the dictionary cut down to the grammar's words, which makes a fresh decoder
cost ~0.01 s instead of loading 126k words; `bestpath` off (there is no language model to
rescore with); beams narrowed from pocketsphinx's 1e-48/7e-29/1e-48 (beam/wbeam/pbeam) to
`BEAMS`, and at most 10000 active HMMs per frame (default 30000), which bounds the time on
long noisy inputs.

Measured on 2 shared CPU cores, 20 flite sentences (5 texts × voices slt/awb/rms/kal16, 2.6–4.9 s),
mean s per utterance and pooled WER, `BEAMS` vs pocketsphinx's defaults:
clean 0.12 s, WER 0.079 (defaults 0.13 s, 0.079); 8 kHz µ-law copies 0.14 s, 0.241 (0.17 s,
0.237); white noise at 5 dB SNR 0.21 s, 0.91 (0.26 s, 0.91); 30 s of babble in noise 1.2 s
(1.7 s), WER 1.0. Beams of 1e-20/1e-15/1e-20 with 3000 HMMs were faster (0.09 s) but lost words
(0.10 clean, 0.30 µ-law). With 50 distractors WER was 0.066 clean / 0.20 µ-law, with 300
0.11 / 0.30: more distractors, harder test, same ranking.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from functools import lru_cache
from importlib import resources
from typing import NamedTuple, Sequence

import numpy as np

from .. import audio

SAMPLE_RATE = 16000  # the acoustic model's rate
DISTRACTORS = 100
BEAMS = {"beam": 1e-35, "wbeam": 1e-25, "pbeam": 1e-35, "maxhmmpf": 10000}


def words(text: str) -> list[str]:
    """Text → the words a recogniser's dictionary spells: lower case, punctuation removed
    (apostrophes inside words kept: "stella's"), hyphens split ("well-known" → 2 words)."""
    text = re.sub(r"[^a-z0-9']+", " ", text.lower())
    return [w.strip("'") for w in text.split() if w.strip("'")]


class WordErrors(NamedTuple):
    substitutions: int
    deletions: int
    insertions: int
    reference: int  # N: words in the reference

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """(S + D + I) / N; NaN for an empty reference. Insertions can take it above 1."""
        return self.errors / self.reference if self.reference else float("nan")


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> WordErrors:
    """Minimum-edit (Levenshtein) alignment of two word sequences, with its errors counted by
    kind. Among alignments of equal cost, the backtrace prefers a match or substitution, then a
    deletion, then an insertion."""
    n, m = len(reference), len(hypothesis)
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)  # cost[i, j]: reference[:i] vs hypothesis[:j]
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]),
                             cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    s = d = ins = 0
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            s += reference[i - 1] != hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            d, i = d + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return WordErrors(int(s), d, ins, n)


class Recognition(NamedTuple):
    hypothesis: str          # the recognised words, space-separated
    errors: WordErrors
    oov: tuple[str, ...]     # reference words the dictionary lacks (kept in the reference: errors)
    seconds: float           # decoding time

    @property
    def wer(self) -> float:
        return self.errors.wer


@lru_cache(maxsize=1)
def _pronunciations(path: str) -> dict[str, tuple[str, ...]]:
    """The CMU dictionary: word → its pronunciations (phone strings), in dictionary order."""
    pron: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                pron.setdefault(re.sub(r"\(\d+\)$", "", parts[0]), []).append(parts[1].strip())
    return {w: tuple(p) for w, p in pron.items()}


def distractors(known: set[str] | dict, count: int = DISTRACTORS) -> list[str]:
    """`count` words evenly spaced through the sorted vocabulary of the synthetic corpus's
    sentences that `known` holds (see the module docstring)."""
    text = resources.files("audiovq.data").joinpath("sentences.txt").read_text(encoding="utf-8")
    lines = [s for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
    vocab = sorted({w for s in lines for w in words(s) if w in known})
    count = min(count, len(vocab))
    return [vocab[i * len(vocab) // count] for i in range(count)]


class Recognizer:
    """pocketsphinx with a per-utterance word-loop grammar (module docstring). Raises
    ImportError when pocketsphinx is not installed."""

    def __init__(self, distractor_count: int = DISTRACTORS, beams: dict | None = None):
        import pocketsphinx
        self._ps = pocketsphinx
        self.hmm = pocketsphinx.get_model_path("en-us/en-us")
        self.pron = _pronunciations(pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"))
        self.distractors = distractors(self.pron, distractor_count)
        self.beams = dict(BEAMS if beams is None else beams)
        # what decides its output beside the package's version, for the listener's cache
        self.version = ("pocketsphinx", distractor_count, sorted(self.beams.items()))

    def __call__(self, wav: np.ndarray, sample_rate: int, reference: str) -> Recognition:
        """Decode wav (T,) and score it against the reference text."""
        t = time.perf_counter()
        ref = words(reference)
        oov = tuple(dict.fromkeys(w for w in ref if w not in self.pron))
        hyp = self.transcribe(wav, sample_rate, [w for w in ref if w in self.pron])
        return Recognition(" ".join(hyp), word_errors(ref, hyp), oov, time.perf_counter() - t)

    def transcribe(self, wav: np.ndarray, sample_rate: int, vocabulary: Sequence[str]) -> list[str]:
        """The words recognised in wav (T,), from `vocabulary` ∪ the distractors."""
        vocab = sorted(set(vocabulary) | set(self.distractors))
        x = np.clip(audio.resample(np.asarray(wav, np.float32), sample_rate, SAMPLE_RATE), -1, 1)
        pcm = (x * 32767).astype(np.int16).tobytes()
        with tempfile.TemporaryDirectory(prefix="audiovq-asr-") as tmp:
            lexicon = os.path.join(tmp, "words.dict")
            with open(lexicon, "w", encoding="utf-8") as f:
                for w in vocab:  # alternates as the CMU file spells them: word(2)
                    f.writelines(f"{w}{'' if k == 0 else f'({k + 1})'} {p}\n" for k, p in enumerate(self.pron[w]))
            # loglevel FATAL: a beam-pruned search that ends off the grammar's final state logs an
            # ERROR line, yet still returns its best partial path, which is what we score
            dec = self._ps.Decoder(hmm=self.hmm, dict=lexicon, lm=None, bestpath=False, loglevel="FATAL",
                                   **self.beams)
        dec.add_jsgf_string("loop", "#JSGF V1.0;\ngrammar loop;\npublic <s> = ("
                            + " | ".join(vocab) + ")*;\n")
        dec.activate_search("loop")
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        hyp = dec.hyp()
        return hyp.hypstr.split() if hyp is not None else []
