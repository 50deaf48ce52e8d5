""""Closer to target" by kind of pair, with bootstrap intervals (audiovq/evaluate/closer.py and
confidence.share_interval), checked against hand counts and a plain-loop bootstrap."""
import math

import numpy as np
import pytest

from audiovq.analysis import confidence
from audiovq.evaluate import closer
from audiovq.evaluate.report import format_summary


def loop_bootstrap(successes, trials, resamples=confidence.RESAMPLES, seed=0, level=confidence.LEVEL):
    """The basic bootstrap interval of a pooled share, one resample at a time (same seeding)."""
    s, t = np.asarray(successes, float), np.asarray(trials, float)
    picks = np.random.default_rng([seed, s.size]).integers(0, s.size, size=(resamples, s.size))
    values = np.array([s[p].sum() / t[p].sum() for p in picks])
    est = s.sum() / t.sum()
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return max(0.0, 2 * est - hi), min(1.0, 2 * est - lo)


def item(source, speaker, target, landed):
    return {"source": source, "source_speaker": speaker, "target": target, "closer_to_target": landed}


def test_share_of_ten_pairs_and_its_interval():
    outcomes = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1]  # 7 of 10 closer, each pair its own source utterance
    items = [item(f"u{k}.wav", f"s{k}", "p225", bool(o)) for k, o in enumerate(outcomes)]
    s = closer.closer_share(items)
    assert (s.pairs, s.closer, s.share) == (10, 7, 0.7)
    assert s.units == "source speakers" and s.unit_count == 10  # 10 voices: resampled by speaker
    assert s.interval == pytest.approx(loop_bootstrap(outcomes, [1] * 10))
    assert s.interval.low <= 0.7 <= s.interval.high
    assert closer.closer_share(items) == s  # seeded: the same interval again
    assert closer.closer_share(items, seed=3).interval == pytest.approx(loop_bootstrap(outcomes, [1] * 10, seed=3))
    # ten times the pairs at the same share: a narrower interval
    many = [item(f"u{k}.wav", f"s{k}", "p225", bool(outcomes[k % 10])) for k in range(100)]
    wide, narrow = s.interval, closer.closer_share(many).interval
    assert closer.closer_share(many).share == 0.7
    assert narrow.high - narrow.low < 0.6 * (wide.high - wide.low)
    assert narrow.low <= 0.7 <= narrow.high


def test_few_voices_resample_utterances_keeping_each_utterances_targets_together():
    # 2 source speakers, 4 utterances, 2 targets each: too few voices, so utterances are the units
    landed = {"a1": (1, 1), "a2": (1, 0), "b1": (0, 0), "b2": (1, 0)}
    items = [item(f"{u}.wav", u[0], t, bool(x)) for u, xs in landed.items() for t, x in zip(("p225", "p226"), xs)]
    s = closer.closer_share(items)
    assert (s.pairs, s.closer, s.units, s.unit_count) == (8, 4, "source utterances", 4)
    assert s.interval == pytest.approx(loop_bootstrap([2, 1, 0, 1], [2, 2, 2, 2]))
    assert closer.closer_share(items[:2]).interval is None or closer.closer_share(items[:2]).unit_count == 1
    assert closer.closer_share([]).pairs == 0 and np.isnan(closer.closer_share([]).share)


def test_all_agree_gives_a_point_interval():
    items = [item(f"u{k}.wav", "x", "p225", True) for k in range(5)]
    s = closer.closer_share(items)
    assert s.share == 1.0 and tuple(s.interval) == (1.0, 1.0)
    assert "every pair agrees" in closer.describe(s._asdict())


def test_groups_by_seen_source_and_gender_pairing():
    model = {"p225", "p226", "p227"}
    genders = closer.speaker_genders(model_speakers=[{"id": "p225", "gender": "F"}, {"id": "p226", "gender": "M"},
                                                     {"id": "p227", "gender": "female"}, {"id": "p254", "gender": "M"},
                                                     {"id": "p255", "gender": ""}])
    assert genders == {"p225": "F", "p226": "M", "p227": "F", "p254": "M"}
    rows = [  # source speaker, target, closer
        ("p254", "p225", True), ("p254", "p226", False), ("p254", "p227", True),   # unseen male
        ("p255", "p225", False), ("p255", "p226", True),                           # unseen, gender unknown
        (None, "p225", True),                                                      # a file of unknown speaker
        ("p226", "p225", True), ("p226", "p227", True), ("p225", "p227", False),   # seen
    ]
    items = [item(f"{k}.wav", spk, tgt, c) for k, (spk, tgt, c) in enumerate(rows)]
    closer.annotate(items, model, genders)
    assert [i["source_seen"] for i in items] == [False] * 6 + [True] * 3
    assert [i["gender_pairing"] for i in items] == [
        closer.CROSS, closer.SAME, closer.CROSS, closer.UNKNOWN, closer.UNKNOWN, closer.UNKNOWN,
        closer.CROSS, closer.CROSS, closer.SAME]
    groups = closer.closer_by_kind(items)
    counts = {name: (g["pairs"], g["closer"]) for name, g in groups.items()}
    assert counts == {"unseen sources": (6, 4), "seen sources": (3, 2), "all": (9, 6),
                      "same-gender": (2, 0), "cross-gender": (4, 4), "unknown gender": (3, 2),
                      "unseen, same-gender": (1, 0), "unseen, cross-gender": (2, 2),
                      "unseen, unknown gender": (3, 2)}
    assert list(groups)[0] == closer.HEADLINE
    assert groups["all"]["share"] == pytest.approx(6 / 9)
    # no speaker table: nothing said about seen or unseen
    closer.annotate(items, None, genders)
    assert closer.HEADLINE not in closer.closer_by_kind(items)
    assert "seen sources" not in closer.closer_by_kind(items)


def test_headline_comes_first_in_the_printed_summary():
    items = [item(f"u{k}.wav", "p254" if k < 6 else "p225", "p226", k % 3 != 0) for k in range(9)]
    closer.annotate(items, {"p225", "p226"}, {"p225": "F", "p226": "M", "p254": "M"})
    summary = {"conversions": 9, "closer_to_target": 6 / 9, "sim_target": 0.7, "sim_source": 0.6,
               "code_agreement": 0.2, "closer": closer.closer_by_kind(items)}
    lines = format_summary({"summary": summary, "items": items})
    assert lines[0].startswith("closer to the target than to the source, sources the model never heard: 66.7% [")
    assert "of 6 pairs (4 closer; interval over 6 source utterances)" in lines[0]
    assert any(ln.strip().startswith("seen sources") for ln in lines)
    # an old report without the breakdown still prints
    del summary["closer"]
    assert format_summary({"summary": summary, "items": items})[0].startswith("closer to target speaker")


def test_share_interval_rejects_impossible_counts():
    with pytest.raises(ValueError):
        confidence.share_interval([2, 1], [1, 1])
    with pytest.raises(ValueError):
        confidence.share_interval([0, 1], [0, 1])
    assert confidence.share_interval([1], [1]) is None


def test_benchmark_adds_unseen_voices_as_sources(tmp_path):
    import importlib.util
    import pathlib

    from audiovq.data.manifest import Manifest, Speaker, Utterance
    spec = importlib.util.spec_from_file_location(
        "eval_conversions", pathlib.Path(__file__).resolve().parents[1] / "tools" / "eval_conversions.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    def utt(uid, spk, split):
        return Utterance(uid, spk, f"wav/{spk}/{uid}.wav", 8000, 1.0, "words", split, 0.0, "")
    corpus = Manifest(tmp_path / "corpus", 8000,
                      [Speaker("p225", "F", None, "", "", "train"), Speaker("p226", "M", None, "", "", "train"),
                       Speaker("p254", "M", None, "", "", "heldout")],
                      [utt("p225_001", "p225", "val"), utt("p226_001", "p226", "val"),
                       utt("p254_001", "p254", "test"), utt("p254_002", "p254", "test")], "corpus")
    unseen = Manifest(tmp_path / "unseen", 8000,
                      [Speaker("u01", "F", None, "", "", "heldout"), Speaker("u09", "M", None, "", "", "heldout")],
                      [utt(f"u{v}_{k:03d}", f"u{v}", "test") for v in ("01", "09") for k in (1, 2, 3)], "unseen")
    merged, extra = tool.with_unseen_voices(corpus, unseen, 2, heard_persons={"u09"})
    assert [u.id for u in extra] == ["u01_001", "u01_002"]  # u09: a training speaker's person, left out
    assert {s.id for s in merged.speakers} == {"p225", "p226", "p254", "u01"}
    assert merged.audio_path(extra[0]) == (tmp_path / "unseen" / "wav/u01/u01_001.wav").resolve()
    todo = tool.pairs(merged, ["p225", "p226"], 1, 1, None, extra)
    # corpus sources first (val, then 1 per held-out speaker), then the unseen voices' N each
    assert [u.id for u, _ in todo] == ["p225_001", "p226_001", "p254_001", "u01_001", "u01_002"]
    assert all(t != u.speaker for u, t in todo)
    # fixed targets (issue #26's test): every source to each of them but its own speaker
    fixed = tool.pairs(merged, ["p225", "p226"], 1, 1, None, extra, to=["p225", "p226"])
    assert [(u.id, t) for u, t in fixed] == [("p225_001", "p226"), ("p226_001", "p225"), ("p254_001", "p225"),
                                           ("p254_001", "p226"), ("u01_001", "p225"), ("u01_001", "p226"),
                                           ("u01_002", "p225"), ("u01_002", "p226")]
    with pytest.raises(Exception, match="IDs of corpus speakers"):
        tool.with_unseen_voices(corpus, corpus, 1)


def test_by_target_hand_worked():
    # two conversions to A (0.7/0.5 closer, 0.4/0.6 not), one to B (0.6/0.3 closer); A's own
    # resyntheses 0.8 and 0.6, B has none
    items = [{"target": "A", "sim_target": 0.7, "sim_source": 0.5, "closer_to_target": True},
             {"target": "A", "sim_target": 0.4, "sim_source": 0.6, "closer_to_target": False},
             {"target": "B", "sim_target": 0.6, "sim_source": 0.3, "closer_to_target": True}]
    ceilings = [{"target": "A", "sim_target": 0.8}, {"target": "A", "sim_target": 0.6}]
    a, b = closer.by_target(items, ceilings)
    assert a == pytest.approx(closer.TargetRow("A", 0.7, 2, 0.55, 0.55, 2, 0.5))
    assert (b.target, b.resyntheses, b.pairs, b.closer) == ("B", 0, 1, 1.0) and math.isnan(b.ceiling)
    lines = closer.format_targets([a, b])
    assert "ceiling  0.700 (2)" in lines[1] and "closer 50% of 2" in lines[1] and "ceiling      -" in lines[2]
