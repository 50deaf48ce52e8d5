"""The unseen-voices test set: no voice of it is an embedded-corpus speaker, its sentences are
new, the build is deterministic and cached, and its records and manifest agree."""
import os
import re

import numpy as np
import pytest

from audiovq.data import festival, flite, unseen
from audiovq.data.alignments import read_textgrid, text_words
from audiovq.data.manifest import Manifest
from audiovq.data.phones import SIL
from audiovq.data.synthetic import HELDOUT_FLITE_VOICE, VARIANTS, corpus_speakers, load_sentences
from audiovq.errors import AudioVQError

needs_flite = pytest.mark.skipif(not flite.available(), reason="flite is not installed (make flite)")
needs_festival = pytest.mark.skipif(
    not set(festival.VOICES) <= festival.installed_voices(),
    reason="festival or one of its English voices is not installed (make festival)")


def test_no_unseen_voice_is_a_corpus_speaker():
    corpus = corpus_speakers(24, 0, with_flite=True)
    keys = {unseen.corpus_voice_key(s) for s in corpus}
    assert len(keys) == len(corpus)  # the key tells every corpus speaker apart
    assert not keys & {v.key() for v in unseen.VOICES}
    assert not {s.id for s in corpus} & {v.id for v in unseen.VOICES}


def test_voice_table_is_well_formed():
    ids = [v.id for v in unseen.VOICES]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"u\d\d", i) for i in ids)
    assert len({v.key() for v in unseen.VOICES}) == len(unseen.VOICES)
    for v in unseen.VOICES:
        assert v.engine in unseen.ENGINES and v.gender in ("F", "M") and v.origin
        if v.engine == "espeak":  # only variants no corpus speaker can have, whatever its size or seed
            assert v.voice.split("+")[1] not in {x for xs in VARIANTS.values() for x in xs}
        if v.engine == "flite":
            assert v.voice in flite.VOICES and (v.voice, v.f0, v.rate) not in flite.speaker_variants()
            # a voice whose recordings the corpus trains on must say so
            assert bool(v.seen_speaker) == (v.voice != HELDOUT_FLITE_VOICE)
        if v.engine == "festival":
            assert v.voice in festival.VOICES
            assert bool(v.seen_speaker) == (v.voice == "kal_diphone")  # kal16's recordings
    genders = [v.gender for v in unseen.VOICES if not v.seen_speaker]
    assert genders.count("F") >= 5 and genders.count("M") >= 5


def test_sentences_are_new_and_the_reading_plan_fixed():
    assert len(set(unseen.SENTENCES)) == len(unseen.SENTENCES)
    assert not set(unseen.SENTENCES) & set(load_sentences())
    for s in unseen.SENTENCES:
        assert not re.search(r"[0-9'&]", s), s  # every engine reads the words as written
    plans = [unseen.sentence_indices(i) for i in range(len(unseen.VOICES))]
    assert plans == [unseen.sentence_indices(i) for i in range(len(unseen.VOICES))]
    assert all(len(p) == len(set(p)) == unseen.UTTERANCES for p in plans)
    assert set().union(*plans) == set(range(len(unseen.SENTENCES)))  # every sentence is read


def test_missing_engines_give_a_partial_set_in_its_own_folder(monkeypatch):
    assert unseen.folder_name(8000, list(unseen.VOICES)) == "prepared-8000"
    monkeypatch.setattr(flite, "available", lambda: False)
    monkeypatch.setattr(festival, "available", lambda: False)
    voices, skipped = unseen.available_voices()
    assert {v.engine for v in voices} == {"espeak"}
    assert len(skipped) == len(unseen.VOICES) - len(voices)
    assert all("not installed" in line for line in skipped)
    name = unseen.folder_name(8000, voices)
    assert name.startswith("prepared-8000-partial-") and name == unseen.folder_name(8000, voices)


def test_festival_timing_becomes_tiers():
    syn = festival.FestivalSynthesis(np.zeros(16000, np.float32), 16000,
                                     [(SIL, 0.2), ("HH", 0.3), ("AY", 0.5), (SIL, 0.7), (SIL, 0.8)],
                                     [("Hi", 0.2, 0.5)])
    tiers = unseen._festival_tiers("Hi!", syn, 1.0)
    assert [tuple(i) for i in tiers["phones"]] == [(0.0, 0.2, SIL), (0.2, 0.3, "HH"), (0.3, 0.5, "AY"),
                                                   (0.5, 1.0, SIL)]
    assert [tuple(i) for i in tiers["words"]] == [(0.2, 0.5, "hi")]


def test_festival_script_quotes_the_text():
    script = festival._script('She said "no" \\ twice', "ked_diphone", "/tmp/x.wav", 130, 0.9)
    assert '"She said \\"no\\" \\\\ twice"' in script
    assert "(voice_ked_diphone)" in script and "target_f0_mean 130" in script and "0.9" in script


def test_bad_sample_rate_is_a_user_error(tmp_path):
    for rate in (0, 100, 8000.0, True, 96000):
        with pytest.raises(AudioVQError):
            unseen.ensure_unseen_voices(rate, tmp_path, progress=False)


def _espeak_only(monkeypatch, n_voices=2, utterances=2):
    """A small set: the first espeak voices, two readings each, without flite or festival."""
    monkeypatch.setattr(flite, "available", lambda: False)
    monkeypatch.setattr(festival, "available", lambda: False)
    monkeypatch.setattr(unseen, "UTTERANCES", utterances)
    wanted = [v for v in unseen.VOICES if v.engine == "espeak"][:n_voices]
    real = unseen.available_voices
    monkeypatch.setattr(unseen, "available_voices",
                        lambda: ([v for v in real()[0] if v in wanted], real()[1]))
    return wanted


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def test_build_is_deterministic_cached_and_described(monkeypatch, tmp_path):
    voices = _espeak_only(monkeypatch)
    a = unseen.ensure_unseen_voices(8000, tmp_path / "a", progress=False)
    b = unseen.ensure_unseen_voices(8000, tmp_path / "b", progress=False)
    assert _files(a.root) == _files(b.root)  # byte for byte
    assert a.root.name.startswith("prepared-8000-partial-") and a.voices == voices
    assert len(a.skipped) == len(unseen.VOICES) - len([v for v in unseen.VOICES if v.engine == "espeak"])
    assert os.listdir(tmp_path / "a") == [a.root.name]  # no temporary folder left behind

    def no_synthesis(*args):
        raise AssertionError("a cached set was synthesized again")
    monkeypatch.setattr(unseen, "_speak", no_synthesis)
    assert unseen.ensure_unseen_voices(8000, tmp_path / "a", progress=False) == a

    assert [u.id for u in a.utterances] == ["u01_001", "u01_002", "u02_001", "u02_002"]
    m = Manifest.load(a.root)
    assert m.sample_rate == 8000 and m.speaker_ids("heldout") == ["u01", "u02"] and m.speaker_ids("train") == []
    assert [u.id for u in m.split("test")] == [u.id for u in a.utterances]
    for u, mu, v in zip(a.utterances, m.split("test"), [voices[0]] * 2 + [voices[1]] * 2):
        assert (u.speaker, u.gender, u.engine, u.voice, u.seen_speaker) == (v.id, v.gender, "espeak", v.voice, "")
        assert u.text == mu.text in unseen.SENTENCES and u.trim_start == mu.trim_start
        assert u.path == m.audio_path(mu) and u.path.is_file() and u.alignment.is_file()
        grid = read_textgrid(u.alignment)
        assert [i.label for i in grid["words"] if i.label] == [w.label for w in text_words(u.text)]
        assert {i.label for i in grid["phones"]} - {SIL}


def _spoken_twice(v):
    i = unseen.VOICES.index(v)
    one = unseen._speak(v, i, 1, unseen.SENTENCES[0], 8000)
    two = unseen._speak(v, i, 1, unseen.SENTENCES[0], 8000)
    np.testing.assert_array_equal(one.audio, two.audio)
    assert one.tiers == two.tiers
    words = [iv.label for iv in one.tiers["words"] if iv.label]
    assert words == [w.label for w in text_words(unseen.SENTENCES[0])]
    assert 1.0 < len(one.audio) / 8000 < 10.0


@pytest.mark.slow
@needs_flite
@pytest.mark.parametrize("vid", [v.id for v in unseen.VOICES if v.engine == "flite"])
def test_flite_voices_speak_deterministically(vid):
    _spoken_twice(next(v for v in unseen.VOICES if v.id == vid))


@pytest.mark.slow
@needs_festival
@pytest.mark.parametrize("vid", [v.id for v in unseen.VOICES if v.engine == "festival"])
def test_festival_voices_speak_deterministically(vid):
    _spoken_twice(next(v for v in unseen.VOICES if v.id == vid))


@pytest.mark.slow
@needs_flite
@needs_festival
def test_the_full_set(tmp_path):
    s = unseen.ensure_unseen_voices(8000, tmp_path, progress=False)
    assert s.root.name == "prepared-8000" and s.skipped == [] and s.voices == list(unseen.VOICES)
    assert len(s.utterances) == len(unseen.VOICES) * unseen.UTTERANCES
    for u in s.utterances:
        grid = read_textgrid(u.alignment)
        assert [i.label for i in grid["words"] if i.label] == [w.label for w in text_words(u.text)], u.id
