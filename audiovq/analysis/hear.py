"""Hear a code: its occurrences cut from the corpus audio and joined with short gaps, beside
the phones it co-occurs with most, so that a listener can judge what a code stands for.

Code frame i of an utterance covers samples [i·hop, (i+1)·hop) of the audio it was encoded
from. An occurrence is a run of consecutive frames with the code. The longest runs are played
first (one 4-ms frame is a click, a run is a sound): at most `MAX_OCCURRENCES` of them,
`GAP_SECONDS` of silence apart, each faded in and out so that the cuts do not click, and of
each at most its middle `MAX_RUN_SECONDS` (a code that lasts whole utterances, as silence's
may, would otherwise make a clip of minutes).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

GAP_SECONDS = 0.05     # silence between two occurrences
MAX_OCCURRENCES = 20   # occurrences per clip
MAX_RUN_SECONDS = 0.5  # of a longer occurrence, its middle this long
FADE_SECONDS = 0.002   # fade in and out of each occurrence (at most a quarter of it)
TOP_CODES = 8          # the most used codes are heard by default
TOP_PHONES = 3         # phones listed beside each code


class Occurrence(NamedTuple):
    utterance: int  # index into the corpus lists
    start: int      # first frame of the run
    stop: int       # one past its last frame


class CodeClip(NamedTuple):
    code: int
    audio: np.ndarray               # (T,) float32: the occurrences joined with gaps ((0,) if none)
    occurrences: list[Occurrence]   # those in the clip, in the order heard
    total: int                      # runs of the code in the corpus
    frames: int                     # frames with the code in the corpus


def occurrences(codes: Sequence[np.ndarray], code: int) -> list[Occurrence]:
    """Every run of `code` in each utterance's codes (frames_u,), in corpus order."""
    runs = []
    for u, c in enumerate(codes):
        hit = np.concatenate([[False], np.asarray(c) == code, [False]])
        edges = np.flatnonzero(hit[1:] != hit[:-1])  # run starts and stops, alternating
        runs += [Occurrence(u, int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
    return runs


def longest(runs: list[Occurrence], limit: int = MAX_OCCURRENCES) -> list[Occurrence]:
    """The `limit` longest runs, longest first (ties in corpus order)."""
    order = sorted(range(len(runs)), key=lambda i: (-(runs[i].stop - runs[i].start), i))
    return [runs[i] for i in order[:limit]]


def span(run: Occurrence, hop: int, samples: int, max_samples: int) -> tuple[int, int]:
    """[start, stop) samples of a run in an utterance of `samples` samples: at most its middle
    `max_samples` (frames past the end, the encoder's padding, have none)."""
    start, stop = run.start * hop, min(run.stop * hop, samples)
    if stop - start > max_samples:
        start += (stop - start - max_samples) // 2
        stop = start + max_samples
    return start, max(start, stop)


def join(wavs: Sequence[np.ndarray], runs: list[Occurrence], hop: int, sample_rate: int,
         gap: float = GAP_SECONDS, max_run: float = MAX_RUN_SECONDS) -> np.ndarray:
    """The runs' audio (wavs[u] (T_u,) at sample_rate; `span` of each) joined with `gap`
    seconds of silence, each faded in and out. (0,) when there is none."""
    silence = np.zeros(int(round(gap * sample_rate)), np.float32)
    parts = []
    for r in runs:
        start, stop = span(r, hop, len(wavs[r.utterance]), int(round(max_run * sample_rate)))
        piece = np.array(wavs[r.utterance][start:stop], np.float32)
        if piece.size == 0:
            continue
        fade = min(int(FADE_SECONDS * sample_rate), piece.size // 4)
        if fade:
            ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
            piece[:fade] *= ramp
            piece[-fade:] *= ramp[::-1]
        parts += [silence, piece] if parts else [piece]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def code_clip(wavs: Sequence[np.ndarray], codes: Sequence[np.ndarray], code: int, hop: int, sample_rate: int,
              limit: int = MAX_OCCURRENCES) -> CodeClip:
    """What `code` sounds like in this corpus: wavs[u] (T_u,) and codes[u] (frames_u,)."""
    runs = occurrences(codes, code)
    chosen = longest(runs, limit)
    return CodeClip(code, join(wavs, chosen, hop, sample_rate), chosen, len(runs),
                    sum(r.stop - r.start for r in runs))


def most_used(table: np.ndarray, top: int = TOP_CODES) -> list[int]:
    """The `top` codes with the most frames in a (K, P) code × phone table, most used first."""
    counts = np.asarray(table).sum(1)
    order = np.argsort(-counts, kind="stable")
    return [int(k) for k in order[:top] if counts[k] > 0]


def top_phones(table: np.ndarray, phone_names: Sequence[str], code: int,
               top: int = TOP_PHONES) -> list[tuple[str, float]]:
    """The phones `code` co-occurs with most: (phone, p(phone | code)), most frequent first."""
    row = np.asarray(table, np.float64)[code]
    if row.sum() == 0:
        return []
    order = np.argsort(-row, kind="stable")
    return [(str(phone_names[p]), float(row[p] / row.sum())) for p in order[:top] if row[p] > 0]
