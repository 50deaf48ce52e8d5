"""Speaker named from the codes, for trained-on and unseen speakers (audiovq/analysis/speakers.py),
on synthetic code streams whose answer is known."""
import math

import numpy as np
import pytest

from audiovq.analysis import confidence, speakers


def streams(rng, names, per_speaker, frames, draw):
    """Each speaker's utterances: codes (frames,) drawn by draw(speaker index, n)."""
    codes, who = [], []
    for s, name in enumerate(names):
        for _ in range(per_speaker):
            codes.append(draw(s, frames))
            who.append(name)
    return codes, who


def loop_naming(codes, who, K):
    """Leave-one-utterance-out nearest centroid, one utterance at a time."""
    hist = [np.bincount(c, minlength=K) / len(c) for c in codes]
    right = 0
    for u in range(len(codes)):
        best, best_cos = None, -np.inf
        for name in sorted(set(who)):
            others = [hist[v] for v in range(len(codes)) if v != u and who[v] == name]
            if not others:
                continue
            c = np.sum(others, 0)
            cos = c @ hist[u] / (np.linalg.norm(c) * np.linalg.norm(hist[u]))
            if cos > best_cos:
                best, best_cos = name, cos
        right += best == who[u]
    return right / len(codes)


def test_disjoint_code_sets_name_every_speaker_seen_or_not():
    rng = np.random.default_rng(0)
    seen_names, unseen_names = ["p225", "p226", "p227", "p228"], ["u01", "u02", "u03"]
    # every speaker has its own 3 codes
    codes, who = streams(rng, seen_names + unseen_names, 5, 40, lambda s, n: 3 * s + rng.integers(0, 3, n))
    r = speakers.speaker_naming(codes, who, set(seen_names), 21)
    assert r["seen"]["accuracy"] == 1.0 and r["seen"]["speakers"] == 4 and r["seen"]["utterances"] == 20
    assert r["unseen"]["accuracy"] == 1.0 and r["unseen"]["speakers"] == 3 and r["unseen"]["utterances"] == 15
    assert r["unseen"]["chance"] == pytest.approx(1 / 3) and r["seen"]["chance"] == 0.25
    assert r["matched"] == {"speakers": 3, "per_speaker": 5, "seen": 1.0, "unseen": 1.0,
                            "chance": pytest.approx(1 / 3), "draws": speakers.MATCHED_DRAWS}
    lines = speakers.format_naming(r)
    assert "100.0% [100.0–100.0] of 15 utterances of 3 speakers (chance 33.3%)" in lines[2]


def test_one_distribution_for_all_speakers_is_about_chance():
    rng = np.random.default_rng(1)
    names = [f"u{k:02d}" for k in range(4)]
    codes, who = streams(rng, names, 30, 300, lambda s, n: rng.integers(0, 16, n))
    r = speakers.naming(speakers.histograms(codes, 16), who)
    assert r.chance == 0.25 and r.utterances == 120
    assert r.accuracy < 0.45  # chance 0.25; a leave-one-out nearest centroid sits at or below it
    assert r.interval.low <= r.accuracy <= r.interval.high


def test_naming_equals_a_plain_loop_and_its_interval_the_shared_bootstrap():
    rng = np.random.default_rng(2)
    p = np.linspace(1, 2, 10)
    codes, who = streams(rng, ["a", "b", "c"], 6, 30, lambda s, n: rng.choice(10, n, p=np.roll(p, s) / p.sum()))
    r = speakers.naming(speakers.histograms(codes, 10), who, seed=5)
    assert r.accuracy == pytest.approx(loop_naming(codes, who, 10))
    # the interval is share_interval's over the utterances' outcomes (each utterance a unit, in order)
    from audiovq.analysis import metrics
    _, spk = np.unique(who, return_inverse=True)
    correct = (metrics.nearest_centroid_loo(speakers.histograms(codes, 10), spk, 3) == spk).astype(int)
    assert correct.mean() == r.accuracy
    assert tuple(r.interval) == pytest.approx(tuple(confidence.share_interval(correct, np.ones(correct.size), seed=5)))
    assert speakers.naming(speakers.histograms(codes, 10), who, seed=5) == r  # seeded


def test_too_few_unseen_speakers_say_so():
    rng = np.random.default_rng(3)
    codes, who = streams(rng, ["p225", "p226", "u01"], 3, 20, lambda s, n: rng.integers(0, 8, n))
    r = speakers.speaker_naming(codes, who, {"p225", "p226"}, 8)
    assert r["unseen"] is None and r["matched"] is None and r["seen"]["speakers"] == 2
    assert "n/a" in speakers.format_naming(r)[2]
    h = speakers.histograms(codes, 8)
    assert math.isnan(speakers.matched_accuracy(h, who, 4, 3))  # only 3 speakers
    assert math.isnan(speakers.matched_accuracy(h, who, 2, 1))  # one utterance: no centroid of its own


def test_equal_terms_use_as_many_speakers_and_utterances_on_both_sides():
    rng = np.random.default_rng(4)
    # trained-on speakers: 6, 3 utterances each, one shared distribution (codes carry no voice);
    # unseen: 2 speakers, 20 utterances each, disjoint code sets (codes carry the voice fully)
    seen_codes, seen_who = streams(rng, [f"p{k}" for k in range(6)], 3, 200, lambda s, n: rng.integers(0, 12, n))
    unseen_codes, unseen_who = streams(rng, ["u1", "u2"], 20, 60, lambda s, n: 12 + 4 * s + rng.integers(0, 4, n))
    r = speakers.speaker_naming(seen_codes + unseen_codes, seen_who + unseen_who, {f"p{k}" for k in range(6)}, 20)
    m = r["matched"]
    assert (m["speakers"], m["per_speaker"], m["chance"]) == (2, 3, 0.5)  # the smaller side's count and median
    assert m["unseen"] == 1.0 and m["seen"] < 0.75
    assert r["unseen"]["utterances"] == 40 and r["seen"]["utterances"] == 18
    again = speakers.speaker_naming(seen_codes + unseen_codes, seen_who + unseen_who, {f"p{k}" for k in range(6)}, 20)
    assert again["matched"] == m  # seeded draws


def test_histograms_are_normalised_and_an_empty_utterance_is_zero():
    h = speakers.histograms([np.array([0, 0, 2]), np.array([], np.int64)], 4)
    assert h.tolist() == [[2 / 3, 0, 1 / 3, 0], [0, 0, 0, 0]]
