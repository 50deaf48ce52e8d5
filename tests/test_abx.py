"""Triphone ABX (audiovq.analysis.abx): DTW, frame distance, items, cells, averaging, subsampling.

Expected values are hand-worked in the comments; a brute-force reference built from the small
public pieces (item_distance, cell_error, average_*) checks the fast path on a random corpus.
"""
from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import pytest

from audiovq.analysis import abx as A
from audiovq.analysis.labels import frame_labels
from audiovq.errors import ConfigError


class Interval(NamedTuple):  # the shape of audiovq.data.alignments.Interval
    start: float
    end: float
    label: str


def angle(deg: float) -> np.ndarray:
    r = math.radians(deg)
    return np.array([math.cos(r), math.sin(r)], np.float32)


def one_frame_utterance(phones, centre_vec, other=(0.3, 0.7)):
    """Utterance `sil L C R sil` at 10 frames/s, one frame per interval; the centre frame gets
    `centre_vec`, the others a fixed vector."""
    labels = ["sil", *phones, "sil"]
    ivs = [(0.1 * k, 0.1 * (k + 1), lab) for k, lab in enumerate(labels)]
    feats = np.tile(np.array(other, np.float32), (len(labels), 1))
    feats[2] = centre_vec
    return feats, ivs


# ---------------------------------------------------------------- DTW and frame distance

def test_dtw_hand_worked_2x3():
    # cumulative cost: row 0: 1, 3, 6; row 1: 5, 1+1=2, min(3, 6, 2)+1=3 along
    # (0,0) (1,1) (1,2): cost 3 over 3 cells
    d = np.array([[1, 2, 3], [4, 1, 1]], float)
    assert A.dtw_distance(d) == pytest.approx(1.0)


def test_dtw_hand_worked_3x3_longer_path_wins():
    # the diagonal costs 1+9+1 = 11 over 3 cells; (0,0) (0,1) (1,2) (2,2) costs 1+0+0+1 = 2
    # over 4 cells: the cheapest total is normalised by its own length → 0.5
    d = np.array([[1, 0, 9], [9, 9, 0], [9, 9, 1]], float)
    assert A.dtw_distance(d) == pytest.approx(0.5)
    assert A.dtw_distance(d.T) == pytest.approx(0.5)


def test_dtw_edges():
    assert A.dtw_distance(np.array([[0.25]])) == 0.25
    assert A.dtw_distance(np.array([[1.0, 2.0, 3.0]])) == pytest.approx(2.0)  # only path: the row
    with pytest.raises(ConfigError):
        A.dtw_distance(np.zeros((0, 3)))


def test_frame_distance_angles():
    x = np.array([[1.0, 2.0, 3.0]])
    assert A.frame_distance(x, x)[0, 0] == 0.0
    assert A.frame_distance(x, 5 * x)[0, 0] == 0.0          # scale does not matter
    assert A.frame_distance(x, -x)[0, 0] == pytest.approx(1.0)
    assert A.frame_distance(angle(0), angle(90))[0, 0] == pytest.approx(0.5)
    assert A.frame_distance(angle(0), angle(45))[0, 0] == pytest.approx(0.25)
    z = np.zeros((1, 2))
    assert A.frame_distance(z, z)[0, 0] == 0.0 and A.frame_distance(z, angle(10))[0, 0] == 0.5


def test_item_distance_of_identical_items_is_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 5))
    assert A.item_distance(x, x) == 0.0


# ---------------------------------------------------------------- items

def test_triphone_items_from_hand_written_alignments():
    u0 = [(0.0, 0.1, "sil"), (0.1, 0.2, "K"), (0.2, 0.35, "AE"), (0.35, 0.5, "T"), (0.5, 0.6, "S"),
          (0.6, 0.7, "sp"), (0.7, 0.8, "IH"), (0.8, 0.9, "Z")]
    # objects with .start/.end/.label work too; unsorted and empty intervals are tolerated;
    # a hole between 0.3 and 0.4 is silence
    u1 = [Interval(0.2, 0.3, "B"), Interval(0.0, 0.1, "A"), Interval(0.1, 0.2, "C"),
          Interval(0.2, 0.2, "X"), Interval(0.4, 0.5, "D"), Interval(0.5, 0.6, "E"), Interval(0.6, 0.7, "F")]
    items = A.triphone_items([u0, u1], ["spk1", 2])
    assert items == [
        A.Item(0, 0.2, 0.35, "AE", "K", "T", "spk1"),
        A.Item(0, 0.35, 0.5, "T", "AE", "S", "spk1"),
        # K: silence before; S: "sp" after; IH: "sp" before; Z: utterance end
        A.Item(1, 0.1, 0.2, "C", "A", "B", "2"),
        # B: hole after; D: hole before; A, F: utterance edges
        A.Item(1, 0.5, 0.6, "E", "D", "F", "2"),
    ]


@pytest.mark.parametrize("silence", ["sil", "", "SIL", "spn", "pau"])
def test_any_silence_spelling_is_a_boundary(silence):
    u = [(0.0, 0.1, "A"), (0.1, 0.2, silence), (0.2, 0.3, "B"), (0.3, 0.4, "C"), (0.4, 0.5, "D")]
    assert [(it.prev, it.phone, it.next) for it in A.triphone_items([u], ["s"])] == [("B", "C", "D")]


def test_item_frames_follow_frame_labels():
    rng = np.random.default_rng(1)
    bounds = np.concatenate([[0.0], np.cumsum(rng.uniform(0.002, 0.09, 40))])
    phones = [f"P{k % 5}" for k in range(40)]
    ivs = [Interval(float(a), float(b), p) for a, b, p in zip(bounds[:-1], bounds[1:], phones)]
    rate, offset, n = 93.0, 0.013, int(bounds[-1] * 93.0) - 2
    items = A.triphone_items([ivs], ["s"])
    starts, stops = A.item_frames(items, [n], rate, [offset])
    lab = frame_labels(ivs, n, rate, offset=offset)
    covered = np.zeros(n, int)
    for it, a, b in zip(items, starts, stops):
        assert all(lab.labels[a:b] == it.phone)
        inside = (lab.times >= it.onset) & (lab.times < it.offset)
        assert np.flatnonzero(inside).tolist() == list(range(a, b))
        covered[a:b] += 1
    assert covered.max() == 1 and (stops == starts).any()  # some phones are shorter than a frame


def test_item_frames_include_centres_on_both_boundaries():
    # 10 frames/s, centres 0.05, 0.15, 0.25, 0.35, 0.45: B = [0.15, 0.35] holds frames 1, 2, 3
    # (both ends included, as ZeroSpeech 2021 / fastabx slice); A = [0.05, 0.15] frames 0, 1
    ivs = [Interval(0.0, 0.05, "sil"), Interval(0.05, 0.15, "A"), Interval(0.15, 0.35, "B"),
           Interval(0.35, 0.5, "C"), Interval(0.5, 0.6, "D")]
    items = A.triphone_items([ivs], ["s"])
    assert [it.phone for it in items] == ["B", "C"]
    starts, stops = A.item_frames(items, [6], 10.0)
    assert list(zip(starts, stops)) == [(1, 4), (3, 5)]
    # 100 frames/s shifted by 0.148 s: frame 183 is centred at 1.983 s, which float arithmetic
    # computes as 1.98299999...; it still lies on the onset 1.983, and frame 185 (2.003) on the offset
    ivs = [Interval(1.9, 1.983, "A"), Interval(1.983, 2.003, "B"), Interval(2.003, 2.1, "C")]
    assert (183 + 0.5) / 100 + 0.148 < 1.983
    starts, stops = A.item_frames(A.triphone_items([ivs], ["s"]), [300], 100.0, [0.148])
    assert (starts[0], stops[0]) == (183, 186)


# ---------------------------------------------------------------- cells and averaging

def test_cell_error_hand_worked():
    # A = X = {0°, 20°, 100°}, B = {50°}; distances in degrees / 180:
    # (a, x) = (0, 20): 20 < 30 → 0; (20, 0): 20 < 50 → 0; (0, 100): 100 > 50 → 1;
    # (100, 0): 100 > 50 → 1; (20, 100): 80 > 50 → 1; (100, 20): 80 > 30 → 1 → 4/6
    pts = np.array([0, 20, 100]) / 180
    d_ax = np.abs(pts[:, None] - pts[None, :])
    d_bx = np.abs(50 / 180 - pts)[None, :]
    err, n = A.cell_error(d_ax, d_bx, np.eye(3, dtype=bool))
    assert n == 6 and err == pytest.approx(4 / 6)
    # d(a, x) = 0.2, 0.3 for x0, x1; b0: 0.2 (tie, 0.5), 0.1 (1); b1: 0.1 (1), 0.3 (tie, 0.5)
    err, n = A.cell_error(np.array([[0.2, 0.3]]), np.array([[0.2, 0.1], [0.1, 0.3]]))
    assert n == 4 and err == pytest.approx((0.5 + 1 + 1 + 0.5) / 4)


def test_averaging_order_contexts_then_speakers_then_pairs():
    # speaker s1 has two contexts (errors 0, 0), s2 one (error 1): contexts first → s1 0, s2 1
    # → 0.5 (pooling the cells would give 1/3); a second (p, q) pair with error 0 → 0.25
    err = [0.0, 0.0, 1.0, 0.0]
    spk, p, q, ctx = [0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0], [0, 1, 0, 0]
    assert A.average_cells(err, spk, p, q) == pytest.approx(0.25)
    # across: the (context, X speaker) cells of an A speaker together (ZeroSpeech 2021, fastabx):
    # s=0 has (c0, s'=1) 0, (c0, s'=2) 1, (c1, s'=2) 1 → 2/3; s=1 has (c0, s'=0) 0 → 0; pair mean
    # 1/3 (averaging s' after the contexts would give s=0 (0 + 1) / 2 and 1/4)
    err = [0.0, 1.0, 1.0, 0.0]
    s, sx, ctx = [0, 0, 0, 1], [1, 2, 2, 0], [0, 0, 1, 0]
    assert A.average_cells(err, s, [0] * 4, [1] * 4) == pytest.approx(1 / 3)


def test_abx_hand_worked_within():
    # one speaker, context L _ R: P items at 0°, 20°, 100°; Q items at 50°, 170°.
    # cell (P, Q): B = 50° → 4/6 (test_cell_error_hand_worked); B = 170°: d(b, x) = 170, 150, 70
    #   for x = 0, 20, 100: (0,20) 20<150 0; (20,0) 20<170 0; (0,100) 100>70 1; (100,0) 100<170 0;
    #   (20,100) 80>70 1; (100,20) 80<150 0 → 2/6; the cell: 6/12 = 1/2
    # cell (Q, P): A = X = {50, 170}, B = {0, 20, 100}: (a=50, x=170): d = 120 vs 170, 150, 70 → 1;
    #   (a=170, x=50): 120 vs 50, 30, 50 → 3; the cell: 4/6 = 2/3
    # mean over the (p, q) pairs: (1/2 + 2/3) / 2 = 7/12
    utts = [one_frame_utterance(["L", "P", "R"], angle(t)) for t in (0, 20, 100)]
    utts += [one_frame_utterance(["L", "Q", "R"], angle(t)) for t in (50, 170)]
    feats, ivs = zip(*utts)
    r = A.abx(list(feats), list(ivs), ["s"] * 5, 10.0)
    assert r.within == pytest.approx(7 / 12)
    assert (r.cells_within, r.triplets_within, r.items, r.items_total) == (2, 12 + 6, 5, 5)
    assert r.across is None and "one speaker" in r.reason and r.cells_across == 0


def test_abx_hand_worked_across():
    # s1: P 0°, Q 50°; s2: P 20°, Q 170° (context L _ R). Across cells (A, B from s, X from s'):
    # s1→s2 (P,Q): d(0,20)=20 < d(50,20)=30 → 0     s1→s2 (Q,P): d(50,170)=120 < d(0,170)=170 → 0
    # s2→s1 (P,Q): d(20,0)=20 < d(170,0)=170 → 0    s2→s1 (Q,P): d(170,50)=120 > d(20,50)=30 → 1
    # per (p, q) over speakers: (P,Q) 0, (Q,P) 1/2 → 1/4. Within: no category has two items.
    spec = [("s1", "P", 0), ("s1", "Q", 50), ("s2", "P", 20), ("s2", "Q", 170)]
    utts = [one_frame_utterance(["L", p, "R"], angle(t)) for _, p, t in spec]
    feats, ivs = zip(*utts)
    r = A.abx(list(feats), list(ivs), [s for s, _, _ in spec], 10.0)
    assert r.across == pytest.approx(0.25)
    assert (r.cells_across, r.triplets_across) == (4, 4)
    assert math.isnan(r.within) and r.cells_within == 0 and "within" in r.reason


def synthetic_corpus(seed, phone_vectors, speakers=3, utts_per_speaker=6, phones=("A", "B", "C"),
                     noise=0.05, rate=100.0):
    """Utterances of random phone strings (short silences inside); each frame = its phone's vector
    (phone_vectors(name) → vector) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    feats, ivs, spks = [], [], []
    for s in range(speakers):
        for _ in range(utts_per_speaker):
            t, iv = 0.0, [(0.0, 0.05, "sil")]
            t = 0.05
            for _ in range(25):
                d = float(rng.uniform(0.03, 0.08))
                lab = "sil" if rng.random() < 0.1 else phones[rng.integers(len(phones))]
                iv.append((t, t + d, lab))
                t += d
            n = int(t * rate)
            times = (np.arange(n) + 0.5) / rate
            lab = frame_labels([Interval(*x) for x in iv], n, rate).labels
            vec = np.stack([phone_vectors(str(x)) for x in lab]) + noise * rng.standard_normal((n, 6))
            feats.append((vec * rng.uniform(0.5, 2.0)).astype(np.float32))
            ivs.append(iv)
            spks.append(f"spk{s}")
            assert times.size == n
    return feats, ivs, spks


def one_hot(name, dim=6):
    v = np.zeros(dim)
    v[{"A": 0, "B": 1, "C": 2}.get(name, 5)] = 1.0
    return v


def test_separable_phones_score_zero():
    feats, ivs, spks = synthetic_corpus(0, one_hot)
    r = A.abx(feats, ivs, spks, 100.0, max_per_category=None)
    assert r.cells_within > 10 and r.cells_across > 10
    assert r.within == 0.0 and r.across == 0.0


def test_identical_features_score_half():
    feats, ivs, spks = synthetic_corpus(1, lambda name: one_hot("A"), noise=0.0)
    r = A.abx(feats, ivs, spks, 100.0)
    assert r.within == 0.5 and r.across == 0.5


def brute_force(feats, ivs, spks, rate):
    """ABX from the definitions, by loops over the small public pieces."""
    items = A.triphone_items(ivs, spks)
    starts, stops = A.item_frames(items, [len(f) for f in feats], rate)
    cats = {}
    for it, a, b in zip(items, starts, stops):
        if b > a:
            cats.setdefault((it.prev, it.next, it.speaker, it.phone), []).append(feats[it.utterance][a:b])

    def d(xs, ys):
        return np.array([[A.item_distance(x, y) for y in ys] for x in xs])

    within, across = [], []
    for (l, r, s, p), a_items in cats.items():
        for (l2, r2, s2, q), b_items in cats.items():
            if (l2, r2, s2) != (l, r, s) or q == p:
                continue
            if len(a_items) > 1:
                e, _ = A.cell_error(d(a_items, a_items), d(b_items, a_items), np.eye(len(a_items), dtype=bool))
                within.append((e, s, p, q, (l, r)))
            for (l3, r3, s3, p3), x_items in cats.items():
                if (l3, r3, p3) == (l, r, p) and s3 != s:
                    e, _ = A.cell_error(d(a_items, x_items), d(b_items, x_items))
                    across.append((e, s, s3, p, q, (l, r)))

    def codes(col):
        return np.unique(np.array(col, dtype=object).astype(str), return_inverse=True)[1]

    w = list(zip(*within))
    x = list(zip(*across))
    return (A.average_cells(np.array(w[0]), *[codes(c) for c in w[1:4]]),
            A.average_cells(np.array(x[0]), codes(x[1]), codes(x[3]), codes(x[4])), len(within), len(across))


def test_fast_path_matches_brute_force():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((6, 6))
    feats, ivs, spks = synthetic_corpus(2, lambda name: centres[ord(name[0]) % 6], noise=0.8,
                                        utts_per_speaker=4)
    within, across, n_within, n_across = brute_force(feats, ivs, spks, 100.0)
    r = A.abx(feats, ivs, spks, 100.0, max_per_category=None, max_x_speakers=None)
    assert (r.cells_within, r.cells_across) == (n_within, n_across)
    assert 0.0 < r.within < 0.5 and 0.0 < r.across < 0.5
    assert r.within == pytest.approx(within, abs=1e-9) and r.across == pytest.approx(across, abs=1e-9)


# ---------------------------------------------------------------- subsampling

def test_select_items_cap_and_seed():
    cats = np.repeat(np.arange(4), [1, 5, 12, 3])
    kept = A.select_items(cats, 3, seed=0)
    assert np.bincount(cats[kept]).tolist() == [1, 3, 3, 3]
    assert np.array_equal(kept, A.select_items(cats, 3, seed=0))
    assert any(not np.array_equal(kept, A.select_items(cats, 3, seed=s)) for s in range(1, 5))
    assert np.array_equal(A.select_items(cats, None), np.arange(cats.size))


def test_abx_subsampling_counts():
    # 4 speakers, context L _ R, 5 P and 5 Q items each (random 2-D directions)
    rng = np.random.default_rng(3)
    feats, ivs, spks = [], [], []
    for s, p, _ in itertools.product(range(4), "PQ", range(5)):
        f, iv = one_frame_utterance(["L", p, "R"], angle(float(rng.uniform(0, 180))))
        feats.append(f), ivs.append(iv), spks.append(s)
    r = A.abx(feats, ivs, spks, 10.0, max_per_category=None, max_x_speakers=None)
    # within: 4 speakers × 2 cells × (5·4 a,x) × 5 b; across: 4 × 2 × 3 X speakers, 5·5·5 each
    assert (r.items, r.cells_within, r.triplets_within) == (40, 8, 8 * 100)
    assert (r.cells_across, r.triplets_across) == (24, 24 * 125)
    r2 = A.abx(feats, ivs, spks, 10.0, max_per_category=2, max_x_speakers=1, seed=7)
    assert (r2.items, r2.items_total, r2.cells_within, r2.triplets_within) == (16, 40, 8, 8 * 4)
    assert (r2.cells_across, r2.triplets_across) == (8, 8 * 8)
    assert r2.triplets == r2.triplets_within + r2.triplets_across
    assert A.abx(feats, ivs, spks, 10.0, max_per_category=2, max_x_speakers=1, seed=7) == r2._replace(
        seconds=pytest.approx(r2.seconds, abs=1e9))


def test_abx_input_errors_and_summary():
    f, iv = one_frame_utterance(["L", "P", "R"], angle(0))
    with pytest.raises(ConfigError):
        A.abx([f], [iv, iv], ["s", "s"], 10.0)
    with pytest.raises(ConfigError, match="codeword"):
        A.abx([np.zeros(5)], [iv], ["s"], 10.0)
    r = A.abx([f], [iv], ["s"], 10.0)
    assert math.isnan(r.within) and r.across is None
    line = A.summary_line(r._replace(within=0.081, across=0.1034), bitrate=412.4)
    assert line == "ABX within 8.1% / across 10.3%, bitrate 412 bits/s"
    assert A.summary_line(r) == "ABX within n/a / across n/a"
