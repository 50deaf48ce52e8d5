"""How sure the analysis figures are: bootstrap intervals against a brute-force bootstrap (the
resampled corpus rebuilt frame by frame, or cell by cell, and scored by the plain metrics),
and the wording of figures that rest on too few comparisons."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from audiovq.analysis import abx as A
from audiovq.analysis import confidence as C
from audiovq.analysis import metrics, report


def corpus(seed=0, utterances=12, frames=80, K=10, P=5, noise=0.3):
    """Codes that follow the phones with some noise; utterance ids not in order (as a corpus may be)."""
    rng = np.random.default_rng(seed)
    phones = np.repeat(rng.integers(0, P, utterances * frames // 4), 4)
    codes = 2 * phones % K
    flip = rng.random(phones.size) < noise
    codes[flip] = rng.integers(0, K, flip.sum())
    groups = np.repeat(rng.permutation(utterances) * 7 + 3, frames)
    return codes, phones, groups, K, P


def basic(estimate, values, level=C.LEVEL):
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return max(0.0, 2 * estimate - hi), min(1.0, 2 * estimate - lo)


def test_cluster_scores_equal_the_metrics():
    codes, phones, _, K, P = corpus()
    q = metrics.cluster_quality(codes, phones)  # scikit-learn's mutual information
    pp, cp, pnmi = C.cluster_scores(metrics.contingency(codes, phones, K, P))
    assert (pp, cp, pnmi) == pytest.approx((q.phone_purity, q.cluster_purity, q.pnmi), abs=1e-12)


def test_cluster_quality_intervals_match_a_brute_force_bootstrap_over_utterances():
    codes, phones, groups, K, P = corpus()
    resamples = 40
    ids = np.unique(groups)
    weights = C.draws(ids.size, resamples, seed=3)
    brute = {"phone_purity": [], "cluster_purity": [], "pnmi": []}
    for w in weights:  # the resampled corpus: each utterance's frames repeated as often as it was drawn
        keep = np.concatenate([np.flatnonzero(groups == u) for u, n in zip(ids, w) for _ in range(n)])
        q = metrics.cluster_quality(codes[keep], phones[keep])
        for k in brute:
            brute[k].append(getattr(q, k))
    got = C.cluster_quality_intervals(codes, phones, groups, K, P, resamples=resamples, seed=3)
    q = metrics.cluster_quality(codes, phones)
    for k, values in brute.items():
        assert got[k] == pytest.approx(basic(getattr(q, k), values), abs=1e-9), k


def test_draws_are_seeded_resamples_of_every_unit_count():
    w = C.draws(7, 50, seed=1)
    assert w.shape == (50, 7) and (w.sum(1) == 7).all()
    assert np.array_equal(w, C.draws(7, 50, seed=1)) and not np.array_equal(w, C.draws(7, 50, seed=2))


def test_intervals_narrow_with_more_utterances_and_need_two():
    wide = C.cluster_quality_intervals(*corpus(utterances=6)[:3], 10, 5)["pnmi"]
    narrow = C.cluster_quality_intervals(*corpus(utterances=96)[:3], 10, 5)["pnmi"]
    assert narrow.high - narrow.low < 0.5 * (wide.high - wide.low)
    codes, phones, _, K, P = corpus()
    assert C.cluster_quality_intervals(codes, phones, np.zeros_like(codes), K, P) == dict.fromkeys(
        ("phone_purity", "cluster_purity", "pnmi"))


def test_basic_interval_takes_off_the_bias_of_random_codes():
    # random codes: PNMI is truly 0 and its plug-in estimate is all bias; the interval says so
    rng = np.random.default_rng(4)
    phones, codes = rng.integers(0, 6, 6000), rng.integers(0, 40, 6000)
    groups = np.repeat(np.arange(30), 200)
    pnmi = metrics.cluster_quality(codes, phones).pnmi
    ci = C.cluster_quality_intervals(codes, phones, groups, 40, 6)["pnmi"]
    assert ci.low == 0.0 and ci.high < pnmi


def cells(seed=0, speakers=5, pairs=3, contexts=4):
    rng = np.random.default_rng(seed)
    rows = [(s, p, p + 1, rng.random()) for s, p, _ in itertools.product(range(speakers), range(pairs),
                                                                          range(contexts)) if rng.random() < 0.8]
    s, p, q, e = map(np.array, zip(*rows))
    return e, s * 3 + 1, p, q  # speaker ids not 0..S-1


def test_abx_interval_matches_average_cells_over_resampled_speakers():
    errors, speaker, p, q = cells()
    names = np.unique(speaker)
    resamples = 30
    weights = C.draws(names.size, resamples, seed=5)
    brute = []
    for w in weights:  # each drawn copy of a speaker becomes a speaker of its own
        copies = [(k, j) for k, n in enumerate(w) for j in range(n)]
        e, s, pp, qq = [], [], [], []
        for c, (k, _) in enumerate(copies):
            mine = speaker == names[k]
            e.append(errors[mine]), s.append(np.full(mine.sum(), c)), pp.append(p[mine]), qq.append(q[mine])
        brute.append(A.average_cells(*map(np.concatenate, (e, s, pp, qq))))
    estimate = A.average_cells(errors, speaker, p, q)
    got = C.abx_interval(errors, speaker, p, q, resamples=resamples, seed=5)
    assert got == pytest.approx(basic(estimate, brute), abs=1e-12)
    assert C.abx_interval(errors, np.zeros_like(speaker), p, q) is None  # one speaker: no interval


def test_abx_carries_intervals_over_speakers():
    rng = np.random.default_rng(3)
    feats, ivs, spks = [], [], []
    for s, ph, _ in itertools.product(range(4), "PQ", range(5)):
        t = np.radians(rng.uniform(0, 180))
        f = np.array([[0.3, 0.7], [np.cos(t), np.sin(t)], [0.3, 0.7]])
        feats.append(f), ivs.append([(0.0, 0.1, "L"), (0.1, 0.2, ph), (0.2, 0.3, "R")]), spks.append(s)
    r = A.abx(feats, ivs, spks, 10.0)
    for value, ci in ((r.within, r.within_ci), (r.across, r.across_ci)):
        assert ci is not None and 0 <= ci[0] <= ci[1] <= 1
        assert ci[0] - 0.2 < value < ci[1] + 0.2
    assert A.abx(feats, ivs, spks, 10.0, resamples=0).within_ci is None
    one = A.abx(feats[:10], ivs[:10], spks[:10], 10.0)  # one speaker: no interval, no across
    assert one.within_ci is None and one.across_ci is None


def test_too_few_comparisons_are_said_not_hidden():
    assert not C.enough(12, 6) and C.enough(C.MIN_TRIPLETS, C.MIN_CELLS)
    assert C.describe_percent(0.25, (0.1, 0.4), 12, 6) == "25.0% (12 triplets in 6 cells: too few to mean anything)"
    assert C.describe_percent(0.373, (0.331, 0.434), 350, 310) == "37.3% [33.1–43.4]"
    assert C.describe_percent(None, None, 0, 0) == "n/a"
    assert C.describe_number(0.2047, (0.177, 0.199)) == "0.205 [0.177–0.199]"
    r = A.ABXResult(0.25, 0.373, 6, 310, 362, 0.1, triplets_within=12, triplets_across=350,
                    within_ci=(0.1, 0.4), across_ci=(0.331, 0.434))
    assert A.described_line(r, 1658.2) == ("ABX within 25.0% (12 triplets in 6 cells: too few to mean anything) "
                                           "/ across 37.3% [33.1–43.4], bitrate 1658 bits/s")


def test_the_table_puts_a_too_thin_abx_in_parentheses_with_a_note():
    row = {"abx_within": 0.25, "abx_across": 0.373, "abx_triplets_within": 12, "abx_cells_within": 6,
           "abx_triplets_across": 350, "abx_cells_across": 310}
    lines = report.format_table({"learned codes": row}).splitlines()
    assert lines[2].split()[-2:] == ["(25.0)", "37.3"]
    assert "too few to mean anything" in lines[-1]
    enough = report.format_table({"x": dict(row, abx_triplets_within=500, abx_cells_within=40)}).splitlines()
    assert len(enough) == 3 and enough[2].split()[-2:] == ["25.0", "37.3"]
