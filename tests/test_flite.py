"""flite speakers in the embedded corpus: alignment tiers, the speaker order that holds out
slt, determinism, and the corpus still building (espeak-only) without flite."""
import shutil

import numpy as np
import pytest

from audiovq.config import load_config
from audiovq.corpus import embedded_paths, embedded_with_flite
from audiovq.data import flite
from audiovq.data.alignments import read_textgrid
from audiovq.data.phones import PHONES, SIL
from audiovq.data.synthetic import (SAMPLE_RATE, align_flite, corpus_speakers, heldout_speakers,
                                    synthesize_corpus)

needs_flite = pytest.mark.skipif(not flite.available(), reason="flite is not installed")
TEXT = "The birch canoe slid on the smooth planks."


def test_phone_times_parse_into_arpabet():
    out = "pau:0.184 dh:0.228 ax:0.258 b:0.339 er:0.454 pau:0.5 "
    assert flite._parse_phones(out) == [(SIL, 0.184), ("DH", 0.228), ("AH", 0.258), ("B", 0.339),
                                        ("ER", 0.454), (SIL, 0.5)]


def test_alignment_of_a_hand_made_synthesis():
    audio = np.zeros(16000, np.float32)  # 1 s at 16 kHz
    synth = flite.FliteSynthesis(audio, [(SIL, 0.25), ("HH", 0.3), ("AY", 0.5), (SIL, 0.9)])
    flite.word_phone_count.cache_clear()
    real = flite.word_phone_count
    try:
        flite.word_phone_count = lambda w: 2  # "hi": HH AY, without running flite
        a = align_flite("Hi!", synth, lead=1600)  # + 0.1 s of lead
    finally:
        flite.word_phone_count = real
    assert len(a.audio) == 11 * SAMPLE_RATE // 10
    phones = [(round(i.start, 3), round(i.end, 3), i.label) for i in a.tiers["phones"]]
    assert phones == [(0.0, 0.35, SIL), (0.35, 0.4, "HH"), (0.4, 0.6, "AY"), (0.6, 1.1, SIL)]
    words = [(round(i.start, 3), round(i.end, 3), i.label) for i in a.tiers["words"]]
    assert words == [(0.0, 0.35, ""), (0.35, 0.6, "hi"), (0.6, 1.1, "")]


def test_speaker_order_puts_the_heldout_voices_last():
    table = corpus_speakers(4, seed=0, with_flite=True)
    variants = flite.speaker_variants()
    n_slt = sum(v[0] == "slt" for v in variants)
    assert [s.id for s in table] == [f"p{225 + i}" for i in range(4 + len(variants))]
    assert heldout_speakers(True) == 1 + n_slt
    held = table[-heldout_speakers(True):]
    assert [getattr(s, "voice", None) for s in held[1:]] == ["slt"] * n_slt
    assert not isinstance(held[0], flite.FliteSpeaker)  # one unseen espeak voice too
    assert all(getattr(s, "voice", "") != "slt" for s in table[:-n_slt])
    # without flite: the espeak table exactly as before
    assert corpus_speakers(4, 0, False) == corpus_speakers(4, 0, True)[:3] + [corpus_speakers(4, 0, False)[3]]


def test_no_flite_means_an_espeak_only_corpus_in_its_own_folder(monkeypatch, capsys):
    data = load_config("vqvae", ["data.embedded_flite=true"]).data
    monkeypatch.setattr(flite, "available", lambda: False)
    assert embedded_with_flite(data) is False
    assert "flite is not installed" in capsys.readouterr().out
    assert embedded_paths(12, 60, 0, 8000, False)[0] != embedded_paths(12, 60, 0, 8000, True)[0]


@needs_flite
def test_flite_synthesis_is_deterministic_and_aligned():
    sp = flite.FliteSpeaker("p300", "slt", "F", 30, "American", "Pittsburgh", 200, 0.94)
    a, b = flite.synthesize(TEXT, sp), flite.synthesize(TEXT, sp)
    assert np.array_equal(a.audio, b.audio) and a.phones == b.phones
    aligned = align_flite(TEXT, a, lead=1000)
    labels = [i.label for i in aligned.tiers["words"] if i.label]
    assert labels == ["the", "birch", "canoe", "slid", "on", "the", "smooth", "planks"]
    assert {i.label for i in aligned.tiers["phones"]} <= set(PHONES)
    assert aligned.tiers["phones"][-1].end == pytest.approx(len(aligned.audio) / SAMPLE_RATE)


@needs_flite
@pytest.mark.slow
def test_corpus_with_flite_is_byte_identical_per_seed(tmp_path):
    one = synthesize_corpus(tmp_path / "a", 2, 2, seed=0, progress=False, workers=1, with_flite=True)
    synthesize_corpus(tmp_path / "b", 2, 2, seed=0, progress=False, workers=2, with_flite=True)
    assert one.speakers == 2 + len(flite.speaker_variants())
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    grid = read_textgrid(tmp_path / "a" / "alignments" / "p226" / "p226_001.TextGrid")
    assert any(i.label for i in grid["words"])
    shutil.rmtree(tmp_path)
