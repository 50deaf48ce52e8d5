"""Hear a code: runs found in hand-made code streams, clips that are exactly those samples with
silence between, and the phones listed beside a code."""
import numpy as np
import pytest

from audiovq.analysis import hear

HOP, SR = 4, 100  # tiny numbers: 4 samples a frame, 25 frames a second


def test_occurrences_are_the_runs_of_the_code_in_each_utterance():
    codes = [np.array([1, 1, 2, 1, 3, 3, 1]), np.array([2, 2, 2]), np.array([1])]
    assert hear.occurrences(codes, 1) == [(0, 0, 2), (0, 3, 4), (0, 6, 7), (2, 0, 1)]
    assert hear.occurrences(codes, 2) == [(0, 2, 3), (1, 0, 3)]
    assert hear.occurrences(codes, 9) == []


def test_longest_runs_first_ties_in_corpus_order_and_capped():
    runs = [hear.Occurrence(0, 0, 2), hear.Occurrence(0, 5, 6), hear.Occurrence(1, 0, 3), hear.Occurrence(2, 4, 6)]
    assert hear.longest(runs) == [runs[2], runs[0], runs[3], runs[1]]
    assert hear.longest(runs, 2) == [runs[2], runs[0]]


def test_a_clip_is_the_runs_samples_faded_and_joined_with_silence():
    wavs = [np.arange(1, 41, dtype=np.float32) / 100, -np.arange(1, 41, dtype=np.float32) / 100]
    codes = [np.array([0, 7, 7, 7, 0, 0, 0, 0, 7, 0]), np.array([7, 7, 0, 0, 0, 0, 0, 0, 0, 0])]
    clip = hear.code_clip(wavs, codes, 7, HOP, SR)
    assert clip.occurrences == [(0, 1, 4), (1, 0, 2), (0, 8, 9)] and clip.total == 3 and clip.frames == 6
    gap = int(hear.GAP_SECONDS * SR)  # 5 samples
    pieces = [wavs[0][4:16], wavs[1][0:8], wavs[0][32:36]]
    assert clip.audio.size == sum(p.size for p in pieces) + 2 * gap
    at = 0
    for p in pieces:
        got = clip.audio[at:at + p.size]
        assert np.allclose(got[1:-1], p[1:-1], atol=0.01)  # a fade of 2 ms here is 0 samples: exact
        assert np.all(clip.audio[at + p.size:at + p.size + gap] == 0)
        at += p.size + gap


def test_long_runs_keep_their_middle_and_fades_do_not_click():
    sr = 8000
    wav = np.ones(sr * 3, np.float32)  # one code for 3 s
    clip = hear.code_clip([wav], [np.zeros(3 * sr // 32, np.int64)], 0, 32, sr)
    assert clip.audio.size == int(hear.MAX_RUN_SECONDS * sr)
    fade = int(hear.FADE_SECONDS * sr)
    assert clip.audio[0] < 0.1 and clip.audio[-1] < 0.1 and clip.audio[fade:-fade].min() == 1.0
    assert hear.span(hear.Occurrence(0, 10, 40), 32, 1000, 10_000) == (320, 1000)  # padding frames have no samples


def test_no_occurrence_no_audio():
    clip = hear.code_clip([np.zeros(40, np.float32)], [np.zeros(10, np.int64)], 3, HOP, SR)
    assert clip.audio.size == 0 and clip.total == 0 and clip.occurrences == []


def test_most_used_codes_and_their_phones():
    table = np.array([[0, 0, 0], [5, 3, 2], [0, 1, 0], [0, 9, 0]])  # codes × phones
    assert hear.most_used(table, 2) == [1, 3]  # 10 frames, then 9
    assert hear.most_used(table, 10) == [1, 3, 2]  # unused code 0 never
    assert hear.top_phones(table, ["a", "b", "c"], 1) == [("a", 0.5), ("b", 0.3), ("c", 0.2)]
    assert hear.top_phones(table, ["a", "b", "c"], 1, top=1) == [("a", pytest.approx(0.5))]
    assert hear.top_phones(table, ["a", "b", "c"], 0) == []
