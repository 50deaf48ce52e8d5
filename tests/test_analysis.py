"""Code analysis against phone labels: labels, metrics, baselines and the report.

Expected values come from hand-worked small cases (worked in the comments), brute-force
loops, and brute-force nearest centroids for the k-means baseline.
"""
from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np
import pytest

from audiovq.analysis import baselines, labels, metrics, report
from audiovq.analysis.labels import OUTSIDE, frame_labels, normalize_phone
from audiovq.errors import AudioVQError, ConfigError


class Interval(NamedTuple):  # the shape of audiovq.data.alignments.Interval
    start: float
    end: float
    label: str


# ---------------------------------------------------------------- labels

@pytest.mark.parametrize("raw, expected", [
    ("AH0", "AH"), ("AH1", "AH"), ("ah2", "AH"), ("IY", "IY"), ("k", "K"), ("ax-h", "AX-H"),
    ("aː", "A"), ("a", "A"), ("ˈaː", "A"), ("tʃ", "tʃ"), ("ɑː", "ɑ"), (" EH1 ", "EH"),
    ("", "sil"), ("sil", "sil"), ("SIL", "sil"), ("sp", "sil"), ("spn", "sil"), ("<eps>", "sil"),
    ("pau", "sil"), ("h#", "sil"), ("_", "sil"), ("  ", "sil"),
])
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


def test_normalize_phone_keeps_case_when_asked_and_applies_mapping():
    assert normalize_phone("aː", upper=False) == "a"
    assert normalize_phone("AH0", upper=False) == "AH"
    mapping = {"AO": "AA", "ZH": "SH"}
    assert normalize_phone("AO1", mapping) == "AA"
    assert normalize_phone("zh", mapping) == "SH"
    assert normalize_phone("IY0", mapping) == "IY"  # not in the table: kept
    assert normalize_phone("sp", mapping) == "sil"


def test_load_phone_mapping(tmp_path):
    path = tmp_path / "fold.txt"
    path.write_text("# TIMIT-style folding, lower case\nao aa\n\nax-h ah   # comment\npau sil\nAH0 AH\n")
    m = labels.load_phone_mapping(path)
    assert m == {"AO": "AA", "AX-H": "AH", "sil": "sil", "AH": "AH"}
    assert normalize_phone("ax-h", m) == "AH"

    (tmp_path / "bad.txt").write_text("ao aa\nzh sh x\n")
    with pytest.raises(ConfigError, match=r"bad.txt:2: expected two columns"):
        labels.load_phone_mapping(tmp_path / "bad.txt")
    (tmp_path / "clash.txt").write_text("ao aa\nAO1 ah\n")
    with pytest.raises(ConfigError, match="mapped to both"):
        labels.load_phone_mapping(tmp_path / "clash.txt")
    with pytest.raises(ConfigError, match="not found"):
        labels.load_phone_mapping(tmp_path / "missing.txt")


TIER = [Interval(0.0, 0.005, "a"), Interval(0.005, 0.013, "b"), Interval(0.013, 0.020, "c")]


@pytest.mark.parametrize("rate, n, offset, expected, outside", [
    # 250 Hz: centres 0.002 0.006 0.010 0.014 0.018 0.022 → a b b c c |outside
    (250.0, 6, 0.0, ["a", "b", "b", "c", "c", OUTSIDE], 1),
    # 50 Hz: centres 0.010 | 0.030 → b | outside
    (50.0, 2, 0.0, ["b", OUTSIDE], 1),
    # 100/3 Hz (30 ms): centres 0.015 → c, 0.045 → outside
    (100 / 3, 2, 0.0, ["c", OUTSIDE], 1),
    # 250 Hz, audio trimmed 4 ms: centres +0.004 → 0.006 0.010 0.014 0.018 → b b c c
    (250.0, 4, 0.004, ["b", "b", "c", "c"], 0),
    # 500 Hz with a negative offset: centres 0.001-0.002=-0.001 (outside), 0.003-0.002=0.001 → a
    (500.0, 2, -0.002, [OUTSIDE, "a"], 1),
])
def test_frame_labels_at_frame_centres(rate, n, offset, expected, outside):
    lf = frame_labels(TIER, n, rate, offset)
    assert list(lf.labels) == expected
    assert lf.num_outside == outside and lf.num_gap == 0
    np.testing.assert_allclose(lf.times, (np.arange(n) + 0.5) / rate + offset)
    assert list(lf.inside) == [x != OUTSIDE for x in expected]


def test_frame_labels_boundaries_gaps_and_order():
    # 4 Hz: centres 0.125 0.375 0.625 0.875 1.125 (exact in binary). A centre exactly on a
    # boundary (0.375) belongs to the later interval; 0.625 lies in a hole → silence; 1.125 is past the end.
    tier = [Interval(0.375, 0.5, "y"), Interval(0.0, 0.375, "x"), Interval(0.75, 1.0, "z")]  # unsorted
    lf = frame_labels(tier, 5, 4.0, silence="sil")
    assert list(lf.labels) == ["x", "y", "sil", "z", OUTSIDE]
    assert (lf.num_outside, lf.num_gap) == (1, 1)
    assert frame_labels([], 3, 50.0).num_outside == 3
    with pytest.raises(ConfigError):
        frame_labels(tier, 5, 0.0)


def test_normalize_intervals_and_encode_phones():
    tier = labels.normalize_intervals([Interval(0, 1, "AH0"), Interval(1, 2, "sp"), Interval(2, 3, "ah1")])
    assert [iv.label for iv in tier] == ["AH", "sil", "AH"]
    assert isinstance(tier[0], Interval)
    enc = labels.encode_phones(np.array(["B", OUTSIDE, "A", "sil", "B"], dtype=object))
    assert enc.names == ["A", "B", "sil"]
    assert enc.ids.tolist() == [1, -1, 0, 2, 1]
    assert labels.encode_phones(["A"], names=["sil", "A"]).ids.tolist() == [1]
    with pytest.raises(AudioVQError, match="'C' is not in the phone set"):
        labels.encode_phones(["C"], names=["A"])


def test_phone_tier_choice():
    assert labels.phone_tier({"words": [1], "phones": [2]}) == [2]
    assert labels.phone_tier({"p225 - words": [1], "p225 - phones": [2]}) == [2]
    assert labels.phone_tier({"only": [3]}) == [3]
    with pytest.raises(AudioVQError, match="tiers: a, b"):
        labels.phone_tier({"a": [], "b": []}, "x.TextGrid")


def test_frame_labels_from_a_textgrid_file(tmp_path):
    alignments = pytest.importorskip("audiovq.data.alignments")
    path = tmp_path / "u.TextGrid"
    path.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 0.06\n'
                    'tiers? <exists>\nsize = 1\nitem []:\n    item [1]:\n        class = "IntervalTier"\n'
                    '        name = "phones"\n        xmin = 0\n        xmax = 0.06\n'
                    '        intervals: size = 3\n'
                    '        intervals [1]:\n            xmin = 0\n            xmax = 0.02\n            text = ""\n'
                    '        intervals [2]:\n            xmin = 0.02\n            xmax = 0.05\n            text = "AH0"\n'
                    '        intervals [3]:\n            xmin = 0.05\n            xmax = 0.06\n            text = "T"\n')
    tier = labels.normalize_intervals(labels.phone_tier(alignments.read_textgrid(path)))
    # 100 Hz: centres 0.005 … 0.065 → sil sil AH AH AH T | outside
    assert list(frame_labels(tier, 7, 100.0).labels) == ["sil", "sil", "AH", "AH", "AH", "T", OUTSIDE]


# ---------------------------------------------------------------- metrics

# Hand-worked case: 8 frames, 3 codes, 3 phones.
#   codes  0 0 0 1 1 1 2 2
#   phones 0 0 1 1 1 0 2 2
# Contingency (rows codes, columns phones):     p0 p1 p2 | n
#                                        c0      2  1  0 | 3
#                                        c1      1  2  0 | 3
#                                        c2      0  0  2 | 2
#                                        n       3  3  2 | 8
# phone purity   = (2 + 2 + 2) / 8 = 0.75 (row maxima);  cluster purity = (2 + 2 + 2) / 8 = 0.75 (column maxima)
# H(phone) = H(code) = 2·(3/8)log2(8/3) + (2/8)log2 4 = 2.75 − 0.75·log2 3 bits
# I = 2·(2/8)log2[(2/8)/(3/8·3/8)] + 2·(1/8)log2[(1/8)/(3/8·3/8)] + (2/8)log2[(2/8)/(2/8·2/8)]
#   = (2 − log2 3) + (0.75 − 0.5·log2 3) + 0.5 = 3.25 − 1.5·log2 3 bits
# PNMI = I / H(phone);  NMI = I / ((H(code) + H(phone)) / 2) = the same number here
# ARI: Σ C(n_ij,2) = 1+0+0+1+1 = 3; Σ C(a_i,2) = 3+3+1 = 7 = Σ C(b_j,2); C(8,2) = 28
#      E = 7·7/28 = 1.75; max = 7; ARI = (3 − 1.75)/(7 − 1.75) = 5/21
HAND_CODES = np.array([0, 0, 0, 1, 1, 1, 2, 2])
HAND_PHONES = np.array([0, 0, 1, 1, 1, 0, 2, 2])
L3 = math.log2(3)
HAND_I = 3.25 - 1.5 * L3
HAND_H = 2.75 - 0.75 * L3


def test_hand_worked_cluster_metrics():
    assert metrics.contingency(HAND_CODES, HAND_PHONES).tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 2]]
    q = metrics.cluster_quality(HAND_CODES, HAND_PHONES)
    assert q.phone_purity == pytest.approx(0.75, abs=1e-9)
    assert q.cluster_purity == pytest.approx(0.75, abs=1e-9)
    assert q.mutual_info_bits == pytest.approx(HAND_I, abs=1e-9)
    assert q.phone_entropy_bits == pytest.approx(HAND_H, abs=1e-9)
    assert q.pnmi == pytest.approx(HAND_I / HAND_H, abs=1e-6)
    assert HAND_I / HAND_H == pytest.approx(0.558874, abs=1e-6)
    # ARI and NMI are scikit-learn's: check that the report passes them the right arrays
    row = report.evaluate_codes(HAND_CODES, HAND_PHONES, [0, 0, 0, 0, 1, 1, 1, 1], None, 50.0, 3, ["a", "b", "c"])
    assert row["nmi"] == pytest.approx(HAND_I / HAND_H, abs=1e-6)
    assert row["ari"] == pytest.approx(5 / 21, abs=1e-6)


def test_purities_differ_when_the_table_is_asymmetric():
    # codes 0 1 2 2 ; phones 0 0 0 1 → table (rows codes) [[1,0],[1,0],[1,1]]
    # phone purity   = (row maxima 1 + 1 + 1) / 4 = 3/4
    # cluster purity = (column maxima 1 + 1) / 4 = 1/2
    q = metrics.cluster_quality([0, 1, 2, 2], [0, 0, 0, 1])
    assert (q.phone_purity, q.cluster_purity) == pytest.approx((0.75, 0.5))


def test_perfect_codes_score_one():
    rng = np.random.default_rng(1)
    phones = rng.integers(0, 6, 3000)
    bijective = (phones * 5 + 3) % 6          # a relabelling of the phones
    q = metrics.cluster_quality(bijective, phones)
    assert (q.phone_purity, q.cluster_purity, q.pnmi) == pytest.approx((1.0, 1.0, 1.0))
    groups = np.repeat(np.arange(30), 100)
    acc = metrics.mapping_accuracy(bijective, phones, groups)
    assert acc.accuracy == 1.0 and acc.unseen_fraction == 0.0
    # Two codes per phone: still pure and fully informative (PNMI 1), but each phone is split.
    split = phones * 2 + rng.integers(0, 2, phones.size)
    q = metrics.cluster_quality(split, phones)
    assert q.phone_purity == 1.0 and q.pnmi == pytest.approx(1.0)
    assert 0.45 < q.cluster_purity < 0.6
    assert metrics.mapping_accuracy(split, phones, groups).accuracy == 1.0


def test_random_codes_score_zero():
    rng = np.random.default_rng(2)
    phones = rng.integers(0, 8, 200_000)
    codes = rng.integers(0, 16, 200_000)
    assert metrics.cluster_quality(codes, phones).pnmi < 0.002
    acc = metrics.mapping_accuracy(codes, phones, np.repeat(np.arange(200), 1000))
    assert abs(acc.accuracy - acc.majority_accuracy) < 0.01


def test_mapping_accuracy_hand_worked():
    # Sorted utterance ids 10 11 12 13 alternate: 10 and 12 fit the mapping, 11 and 13 are scored.
    #   fit:   u10 codes 0 0 1 / phones 0 0 1;  u12 codes 1 1 / phones 1 0
    #          code 0 → phone 0 (2:0); code 1 → phone 1 (2:1); majority phone 0 (3 of 5 frames)
    #   score: u11 codes 0 1 / phones 0 1;  u13 codes 2 1 / phones 1 1
    #          predictions 0 1 | 0 (code 2 unseen → majority) 1  → right, right, wrong, right = 3/4
    #          majority baseline predicts 0 → 1/4; unseen share 1/4
    codes = np.array([0, 1, 0, 0, 1, 2, 1, 1, 1])
    phones = np.array([0, 1, 0, 0, 1, 1, 1, 1, 0])
    groups = np.array([11, 11, 10, 10, 10, 13, 13, 12, 12])
    acc = metrics.mapping_accuracy(codes, phones, groups)
    assert acc == metrics.MappingAccuracy(0.75, 0.25, 0.25, 5, 4)
    with pytest.raises(AudioVQError, match="at least 2 utterances"):
        metrics.mapping_accuracy(codes, phones, np.zeros(9, int))


def test_code_usage_and_bitrate_hand_worked():
    # codes 0 0 1 2 | 2 2 (two utterances), K = 8, 50 Hz.
    # counts 2,1,3 of 6 → H = (1/3)log2 3 + (1/6)log2 6 + (1/2)log2 2 bits; perplexity 2^H; bitrate 50·H.
    # Runs (broken at the utterance boundary): [0 0][1][2] | [2 2] → symbols 0 1 2 2 over 6/50 s
    #   → 4 / 0.12 s = 33.33 symbols/s, H(0,1,2,2) = 1.5 bits → 50 bit/s.
    codes, groups = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 0, 0, 0, 1, 1])
    u = metrics.code_usage(codes, 8, 50.0, groups)
    h = math.log2(3) / 3 + math.log2(6) / 6 + 0.5
    assert (u.used, u.usage) == (3, 3 / 8)
    assert u.entropy_bits == pytest.approx(h, abs=1e-12)
    assert u.perplexity == pytest.approx(2 ** h) and u.perplexity == pytest.approx(math.exp(h * math.log(2)))
    assert u.bitrate == pytest.approx(50 * h)
    assert u.dedup_bitrate == pytest.approx(1.5 * 4 / 0.12)
    with pytest.raises(AudioVQError, match="out of range"):
        metrics.code_usage(codes, 2, 50.0)



def test_held_codes_bitrate_counts_one_symbol_per_hold():
    # A code-stride-4 model's frame-rate stream repeats each code 4 times: at 250 frames/s it
    # emits 62.5 symbols/s, so its bitrate is that of the un-repeated stream at 62.5 Hz.
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 16, 40)
    held = np.repeat(distinct, 4)
    assert metrics.code_usage(held, 16, 250.0, hold=4).bitrate == pytest.approx(
        metrics.code_usage(distinct, 16, 62.5).bitrate)
    assert metrics.code_usage(held, 16, 250.0).bitrate == pytest.approx(
        4 * metrics.code_usage(distinct, 16, 62.5).bitrate)
    with pytest.raises(AudioVQError, match="hold"):
        metrics.code_usage(held, 16, 250.0, hold=0)

def test_run_lengths_hand_worked():
    # codes  5 5 5 7 | 7 7   → runs 3,1 | 2 → 3 runs over 6 frames = 2 frames = 40 ms at 50 Hz
    # phones 1 1 2 2 | 2 3   → runs 2,2 | 1,1 → 4 runs → 1.5 frames = 30 ms
    r = metrics.run_lengths([5, 5, 5, 7, 7, 7], [1, 1, 2, 2, 2, 3], [0, 0, 0, 0, 1, 1], 50.0)
    assert r == pytest.approx(metrics.RunLengths(2.0, 0.04, 1.5, 0.03))


def _loo_nearest_centroid(codes, groups, speakers, k):
    """Brute force: per held-out utterance, mean histograms of the other utterances per speaker, cosine."""
    utts = sorted(set(groups.tolist()))
    hist = {u: np.bincount(codes[groups == u], minlength=k) / (groups == u).sum() for u in utts}
    spk = {u: speakers[groups == u][0] for u in utts}
    names = sorted(set(spk.values()))
    right = 0
    for u in utts:
        best, best_sim = None, -np.inf
        for s in names:
            others = [hist[v] for v in utts if v != u and spk[v] == s]
            if not others:
                continue
            c = np.mean(others, 0)
            sim = hist[u] @ c / (np.linalg.norm(hist[u]) * np.linalg.norm(c))
            if sim > best_sim + 1e-12:
                best, best_sim = s, sim
        right += best == spk[u]
    return right / len(utts)


def _utterances(rng, speakers, per_speaker, frames, code_of):
    codes, groups, spk = [], [], []
    for s in range(speakers):
        for i in range(per_speaker):
            codes.append(code_of(s, frames))
            groups.append(np.full(frames, s * 100 + i))
            spk.append(np.full(frames, s))
    return np.concatenate(codes), np.concatenate(groups), np.concatenate(spk)


def test_speaker_leakage_perfect_and_none():
    rng = np.random.default_rng(4)
    # Each speaker draws from its own 4 codes → fully predictable.
    codes, groups, spk = _utterances(rng, 3, 6, 50, lambda s, n: 4 * s + rng.integers(0, 4, n))
    leak = metrics.speaker_leakage(codes, groups, spk, 12)
    assert leak.accuracy == 1.0 and leak.chance == pytest.approx(1 / 3) and leak.num_utterances == 18
    # All speakers draw from one distribution → about chance.
    codes, groups, spk = _utterances(rng, 4, 15, 200, lambda s, n: rng.integers(0, 16, n))
    leak = metrics.speaker_leakage(codes, groups, spk, 16)
    assert leak.accuracy <= 0.45 and leak.chance == 0.25 and leak.majority == 0.25
    # The vectorised leave-one-out equals a brute-force loop, on partly predictable data.
    p = np.linspace(1, 2, 10)
    codes, groups, spk = _utterances(rng, 3, 4, 30, lambda s, n: rng.choice(10, n, p=np.roll(p, s) / p.sum()))
    assert metrics.speaker_leakage(codes, groups, spk, 10).accuracy == pytest.approx(
        _loo_nearest_centroid(codes, groups, spk, 10))
    with pytest.raises(AudioVQError, match="more than one speaker"):
        metrics.speaker_leakage([0, 1, 2], [0, 0, 1], [0, 1, 1], 3)


def test_sample_utterances_is_a_seeded_subset_within_the_minutes():
    from audiovq.analysis.pipeline import sample_utterances
    from audiovq.data.manifest import Utterance

    utts = [Utterance(f"u{i}", "s", "", 0, float(d), "", "test", 0.0, "") for i, d in enumerate([30, 60, 90, 45, 20])]
    sample = sample_utterances(utts, 2.0)                          # 120 s of the 245 s
    ids = [u.id for u in sample]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)      # in the given order, no repeats
    assert sum(u.duration for u in sample) <= 120
    # drawn in the order of a seeded permutation, stopping before the first that would not fit
    order = np.random.default_rng(0).permutation(5)
    total = np.cumsum([utts[i].duration for i in order])
    assert set(ids) == {f"u{i}" for i in order[total <= 120]}
    assert sample_utterances(utts, 2.0) == sample and sample_utterances(utts, 10.0) == utts
    assert len(sample_utterances(utts, 0.01)) == 1                 # never empty
    with pytest.raises(AudioVQError, match="positive"):
        sample_utterances(utts, 0.0)


# ---------------------------------------------------------------- baselines

def test_mfcc_kmeans_codes_fit_a_subsample_and_assign_every_frame():
    rng = np.random.default_rng(6)
    truth = np.repeat(np.arange(8), 50)
    means = rng.normal(size=(8, 39)) * 10
    feats = means[truth] + rng.normal(size=(400, 39))
    codes = baselines.mfcc_kmeans_codes(feats, 8, seed=1, max_fit=200)
    assert codes.shape == (400,) and codes.dtype == np.int64
    # the codes are a relabelling of the true clusters: one code per cluster, one cluster per code
    table = metrics.contingency(codes, truth)
    assert ((table > 0).sum(0) == 1).all() and ((table > 0).sum(1) == 1).all()
    # every frame, fitted or not, is given the nearest centroid (brute force in the standardised
    # space; with clusters this far apart each fitted centroid is its code's mean)
    z = (feats - feats.mean(0)) / feats.std(0)
    centroids = np.stack([z[codes == c].mean(0) for c in range(8)])
    assert (np.linalg.norm(z[:, None] - centroids[None], axis=2).argmin(1) == codes).all()
    assert (baselines.mfcc_kmeans_codes(feats, 8, seed=1, max_fit=200) == codes).all()  # seeded
    assert np.unique(baselines.mfcc_kmeans_codes(feats[:5], 8)).size == 5  # k capped at the frames
    with pytest.raises(AudioVQError, match="non-empty"):
        baselines.mfcc_kmeans_codes(np.zeros((0, 39)), 8)


@pytest.mark.parametrize("seconds, rate, frames", [
    (1.0, 50.0, 50), (1.0, 100 / 3, 33), (1.0, 250.0, 250), (0.3, 30.0, 9), (0.51, 100 / 3, 17),
])
def test_mfcc_frame_count_matches_code_frames(seconds, rate, frames):
    sr = 16000
    wav = np.random.default_rng(7).normal(scale=0.1, size=int(round(seconds * sr))).astype(np.float32)
    assert baselines.code_frame_count(wav.size, sr, rate) == frames
    feats = baselines.mfcc_frames(wav, sr, rate)
    assert feats.shape == (frames, 39) and np.isfinite(feats).all()
    assert baselines.mfcc_frames(wav, sr, rate, num_frames=frames + 1).shape == (frames + 1, 39)


@pytest.mark.parametrize("rate, frame", [(50.0, 25), (100 / 3, 10), (30.0, 7)])  # 30 Hz: hop 533.3 samples
def test_mfcc_frames_are_centred_on_code_frames(rate, frame):
    # A click at the centre of code frame `frame` lies inside that frame's 25 ms window and
    # outside both neighbours' (their centres are >= 20 ms away, beyond the 12.5 ms half-window),
    # so c0 (overall log energy) peaks there. Frames centred at i·hop instead (librosa's
    # default) would put the click half a frame off-centre in two windows with equal weight.
    sr = 16000
    wav = np.zeros(sr, dtype=np.float32)
    wav[int(round((frame + 0.5) * sr / rate))] = 1.0
    c0 = baselines.mfcc_frames(wav, sr, rate)[:, 0]
    assert int(c0.argmax()) == frame
    assert c0[frame] - max(c0[frame - 1], c0[frame + 1]) > 100


# ---------------------------------------------------------------- report

def _synthetic_corpus(seed=8, P=6, K=12, utts=8, frames=60):
    """Codes that mostly follow a known code→phone map (2 codes per phone), 2 speakers."""
    rng = np.random.default_rng(seed)
    phones = np.repeat(rng.integers(0, P, utts * frames // 4), 4)
    codes = 2 * phones + rng.integers(0, 2, phones.size)
    noisy = rng.random(phones.size) < 0.1
    codes[noisy] = rng.integers(0, K, noisy.sum())
    groups = np.repeat(np.arange(utts), frames)
    return codes, phones, groups, groups % 2, [f"P{i}" for i in range(P - 1)] + ["sil"]


def test_evaluate_codes_and_report_files(tmp_path):
    codes, phones, groups, speakers, names = _synthetic_corpus()
    mfcc = np.random.default_rng(9).normal(size=(codes.size, 39)) + phones[:, None]
    rows = report.compare_methods(codes, phones, groups, speakers, 50.0, 12, names, mfcc=mfcc)
    assert list(rows) == [report.LEARNED, report.MFCC_KMEANS, report.RANDOM, report.MAJORITY]
    learned = rows[report.LEARNED]
    q = metrics.cluster_quality(codes, phones)
    assert learned["pnmi"] == q.pnmi and learned["phone_purity"] == q.phone_purity
    assert learned["accuracy"] == metrics.mapping_accuracy(codes, phones, groups).accuracy
    assert learned["accuracy"] > 0.85 > 0.4 > rows[report.RANDOM]["accuracy"]
    assert rows[report.MAJORITY]["accuracy"] == rows[report.MAJORITY]["majority_accuracy"]
    assert rows[report.MAJORITY]["pnmi"] == 0.0 and rows[report.MAJORITY]["codes_used"] == 1
    assert learned["bitrate"] == pytest.approx(50 * learned["entropy_bits"])
    assert learned["speakers"] == 2 and learned["speaker_chance"] == 0.5
    assert np.asarray(learned["contingency"]).sum() == codes.size

    table = report.format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + 4 and lines[0].split()[:2] == ["method", "acc%"]
    assert lines[2].startswith("learned codes") and f"{100 * learned['accuracy']:.1f}" in lines[2]

    no_speakers = report.evaluate_codes(codes, phones, groups, None, 50.0, 12, names)
    paths = report.write_report(tmp_path / "out", {"learned codes": no_speakers}, meta={"checkpoint": "x.pt"})
    doc = json.loads((tmp_path / "out" / "report.json").read_text())  # strict JSON: NaN became null
    assert doc["meta"] == {"checkpoint": "x.pt"}
    assert doc["methods"]["learned codes"]["speaker_accuracy"] is None
    assert doc["methods"]["learned codes"]["pnmi"] == pytest.approx(q.pnmi)
    names_out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names_out == ["code_usage_learned_codes.png", "cooccurrence_learned_codes.png", "report.html", "report.json",
                         "table.txt"]
    assert sorted(p.name for p in paths) == names_out
    for png in (tmp_path / "out").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_codes_sorted_by_dominant_phone():
    # rows = codes: code 0 → phone 2 (0.9), code 1 unused, code 2 → phone 0 (0.6), code 3 → phone 0 (1.0),
    # code 4 → phone 1  ⇒ order: phone 0 (code 3 then 2), phone 1 (code 4), phone 2 (code 0)
    table = np.array([[1, 0, 9], [0, 0, 0], [6, 4, 0], [5, 0, 0], [0, 3, 0]])
    assert report.sort_codes_by_phone(table).tolist() == [3, 2, 4, 0]


def test_evaluate_codes_rejects_bad_input():
    codes, phones, groups, speakers, names = _synthetic_corpus()
    with pytest.raises(AudioVQError, match="out of range for K=4"):
        report.evaluate_codes(codes, phones, groups, speakers, 50.0, 4, names)
    with pytest.raises(AudioVQError, match="negative id"):
        report.evaluate_codes(codes, np.where(phones == 0, -1, phones), groups, speakers, 50.0, 12, names)
    with pytest.raises(AudioVQError, match="differ in length"):
        report.evaluate_codes(codes, phones, groups[:-1], speakers, 50.0, 12, names)
