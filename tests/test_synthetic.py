"""The espeak-ng synthetic corpus: layout, determinism, distinct voices, alignments, phone set."""
import hashlib
import string

import librosa
import numpy as np
import pytest
import soundfile as sf

from audiovq.data import synthetic
from audiovq.data.alignments import read_textgrid
from audiovq.data.phones import ARPABET, ESPEAK_TO_ARPABET, PHONES, SIL, STRESS_MARKS, espeak_to_arpabet
from audiovq.data.synthetic import (ACCENTS, Event, Synthesis, align, espeak_synthesize, load_sentences,
                                    select_sentences, speaker_table, synthesize_corpus)
from audiovq.errors import AudioVQError, ConfigError

SPEAKERS, UTTERANCES = 3, 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = synthesize_corpus(out, SPEAKERS, UTTERANCES, seed=0, progress=False, workers=1)
    return out, summary


def tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def utterances(root):
    for tg in sorted((root / "alignments").glob("*/*.TextGrid")):
        spk, uid = tg.parent.name, tg.stem
        yield uid, root / "wav48_silence_trimmed" / spk / f"{uid}_mic1.flac", root / "txt" / spk / f"{uid}.txt", tg


def test_layout(corpus):
    root, summary = corpus
    ids = [f"p{225 + i}" for i in range(SPEAKERS)]
    expected = {"README.txt", "speaker-info.txt"}
    for s in ids:
        for n in range(1, UTTERANCES + 1):
            expected |= {f"wav48_silence_trimmed/{s}/{s}_{n:03d}_mic1.flac", f"txt/{s}/{s}_{n:03d}.txt",
                         f"alignments/{s}/{s}_{n:03d}.TextGrid"}
    assert set(tree_digest(root)) == expected
    assert summary.speakers == SPEAKERS and summary.utterances == SPEAKERS * UTTERANCES

    total = 0.0
    sentences = set(load_sentences())
    for _, flac, txt, _ in utterances(root):
        info = sf.info(str(flac))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (48000, 1, "PCM_16", "FLAC")
        assert 1.0 < info.duration < 10.0
        total += info.frames / 48000
        assert txt.read_text().strip() in sentences
    assert summary.seconds == pytest.approx(total)

    lines = (root / "speaker-info.txt").read_text().splitlines()
    assert lines[0].split() == ["ID", "AGE", "GENDER", "ACCENTS", "REGION", "COMMENTS"]
    rows = [line.split(maxsplit=4) for line in lines[1:]]
    table = speaker_table(SPEAKERS, 0)
    assert [r[0] for r in rows] == ids
    for row, sp in zip(rows, table):
        assert row == [sp.id, str(sp.age), sp.gender, sp.accent, sp.region]
        assert 18 <= int(row[1]) <= 38 and row[2] in ("F", "M")
    readme = (root / "README.txt").read_text()
    assert "seed 0" in readme and " ".join(ARPABET) in readme and '"sil"' in readme


def test_same_seed_same_bytes_any_worker_count(corpus, tmp_path):
    root, _ = corpus
    again = synthesize_corpus(tmp_path / "again", SPEAKERS, UTTERANCES, seed=0, progress=False, workers=2)
    assert tree_digest(tmp_path / "again") == tree_digest(root)
    assert again.seconds == pytest.approx(corpus[1].seconds)


def test_other_seed_other_corpus(corpus, tmp_path):
    root, _ = corpus
    synthesize_corpus(tmp_path / "other", SPEAKERS, UTTERANCES, seed=1, progress=False)
    a, b = tree_digest(root), tree_digest(tmp_path / "other")
    assert set(a) == set(b)
    flacs = [k for k in a if k.endswith(".flac")]
    assert all(a[k] != b[k] for k in flacs)
    assert speaker_table(SPEAKERS, 1) != speaker_table(SPEAKERS, 0)


def test_espeak_output_does_not_depend_on_history():
    # espeak-ng keeps state between utterances; a fresh instance per call must hide that.
    a = ("She wrapped the present in shiny purple paper.", "en+f2")
    b = ("The storm brought down several branches.", "en-us+m1")
    first = espeak_synthesize(*a, pitch=70, rand_seed=3)
    espeak_synthesize(*b, rate=190, pitch=20, pitch_range=90, rand_seed=4)
    second = espeak_synthesize(*a, pitch=70, rand_seed=3)
    assert np.array_equal(first.audio, second.audio) and first.events == second.events
    # parameters are applied on every call, not inherited from the previous voice
    assert not np.array_equal(espeak_synthesize(*a, pitch=30, rand_seed=3).audio, first.audio)


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(AudioVQError, match="en-gb-nowhere"):
        espeak_synthesize("Hello there.", "en-gb-nowhere")


def test_speaker_table_is_stable_and_distinct():
    big = speaker_table(60, seed=5)
    assert speaker_table(7, seed=5) == big[:7]  # speaker i does not depend on the count
    assert [s.id for s in big[:3]] == ["p225", "p226", "p227"]
    assert len({(s.voice, s.pitch, s.rate, s.range) for s in big}) == 60
    assert len({s.voice for s in big}) == 60
    first12 = big[:12]
    assert {s.gender for s in first12} == {"F", "M"} and sum(s.gender == "F" for s in first12) == 6
    assert len({s.accent for s in first12}) >= 3 and len({s.language for s in first12}) >= 6
    for s in big:
        assert s.variant.startswith(s.gender.lower())  # gender follows the espeak variant
        assert s.language in {a[0] for a in ACCENTS}
    with pytest.raises(ConfigError):
        speaker_table(0)


def test_sentence_selection_overlaps_partially():
    n = len(load_sentences())
    picks = [select_sentences(n, i, 60, seed=0) for i in range(12)]
    for p in picks:
        assert len(p) == len(set(p)) == 60 and all(0 <= j < n for j in p)
    assert all(p[:15] == picks[0][:15] for p in picks)  # the shared block
    overlaps = [len(set(picks[i]) & set(picks[j])) for i in range(12) for j in range(i + 1, 12)]
    assert min(overlaps) >= 15 and max(overlaps) < 45
    assert select_sentences(n, 0, 60, seed=1) != picks[0]
    with pytest.raises(ConfigError):
        select_sentences(n, 0, n + 1)


def test_sentences_are_well_formed():
    sentences = load_sentences()
    assert 280 <= len(sentences) <= 330 and len(set(sentences)) == len(sentences)
    for s in sentences:
        assert 5 <= len(s.split()) <= 15, s
        assert not any(c.isdigit() for c in s), s


def median_f0(path):
    x, sr = sf.read(str(path), dtype="float32")
    f0 = librosa.yin(x, fmin=50, fmax=500, sr=sr, frame_length=2048, hop_length=512)
    rms = librosa.feature.rms(y=x, frame_length=2048, hop_length=512)[0][: len(f0)]
    return float(np.median(f0[rms > 0.1 * rms.max()]))  # voiced, loud frames only


def test_low_and_high_voices_differ_in_f0(corpus):
    root, _ = corpus
    table = speaker_table(SPEAKERS, 0)
    # utterance 001 is the shared sentence: same text, different speakers
    f0 = {s.id: median_f0(root / "wav48_silence_trimmed" / s.id / f"{s.id}_001_mic1.flac") for s in table}
    female = [f0[s.id] for s in table if s.gender == "F"]
    male = [f0[s.id] for s in table if s.gender == "M"]
    assert female and male
    assert min(female) > 1.5 * max(male), f0
    assert 60 < min(male) and max(female) < 350


def test_alignments_tile_the_audio_and_match_it(corpus):
    root, _ = corpus
    for uid, flac, txt, tg in utterances(root):
        frames = sf.info(str(flac)).frames
        duration = frames / 48000
        tiers = read_textgrid(tg)
        assert list(tiers) == ["words", "phones"]
        for name, tier in tiers.items():
            assert tier[0].start == 0.0 and tier[-1].end == duration, (uid, name)
            assert all(a.end == b.start for a, b in zip(tier, tier[1:])), (uid, name)
            assert all(iv.end > iv.start for iv in tier)
        phones, words = tiers["phones"], tiers["words"]
        assert all(p.label in PHONES for p in phones)
        assert phones[0].label == SIL and phones[-1].label == SIL
        assert all(not (a.label == SIL == b.label) for a, b in zip(phones, phones[1:]))  # merged
        expected = [w.strip(string.punctuation).lower() for w in txt.read_text().split()]
        assert [w.label for w in words if w.label] == expected
        bounds = {p.start for p in phones} | {phones[-1].end}
        assert all(w.start in bounds and w.end in bounds for w in words)  # words are made of phones

        x, _ = sf.read(str(flac), dtype="float64")

        def rms(ivs):
            seg = np.concatenate([x[round(iv.start * 48000):round(iv.end * 48000)] for iv in ivs])
            return float(np.sqrt(np.mean(seg ** 2)))

        speech = rms([p for p in phones if p.label != SIL])
        assert rms([phones[0]]) < 0.01 * speech, uid  # before espeak's onset: silence
        assert rms([phones[-1]]) < 0.1 * speech, uid  # after the last phone: at most an echo tail
        assert phones[0].end >= 0.1  # the leading silence the corpus adds
        # the stretch a trimmer would cut starts where the first phone does, give or take
        first_loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())[0] / 48000
        assert abs(first_loud - phones[0].end) < 0.03, uid


def test_align_hand_made_events():
    # 294 samples of espeak audio after a lead of 147 (22050 Hz) -> 441 -> 960 samples at 48 kHz
    text = "Of the cat!"
    ev = [Event("word", 0, 1, 2, ""), Event("phoneme", 0, 0, 0, "0"), Event("phoneme", 20, 0, 0, "v"),
          Event("phoneme", 40, 0, 0, "D"), Event("phoneme", 80, 0, 0, "@"),
          Event("phoneme", 100, 0, 0, "_"),  # zero length: the next event starts at the same sample
          Event("phoneme", 100, 0, 0, "_:"), Event("phoneme", 120, 0, 0, "_"),  # two pauses: one sil
          Event("word", 120, 8, 3, ""), Event("phoneme", 140, 0, 0, "k"),
          Event("phoneme", 200, 0, 0, "'a"), Event("phoneme", 250, 0, 0, "t"),
          Event("phoneme", 294, 0, 0, "_")]  # at the very end: zero length
    synth = Synthesis(np.full(294, 1000, np.int16), ev, [2, 2, 3])
    a = align(text, synth, lead=147)
    assert a.audio.shape == (960,)
    # 22050 Hz boundaries + 147, times 320/147, rounded: 147->320, 167->364, 187->407, 227->494,
    # 247->538, 287->625, 347->755, 397->864, 441->960
    p = [(round(iv.start * 48000), round(iv.end * 48000), iv.label) for iv in a.tiers["phones"]]
    assert p == [(0, 320, "sil"), (320, 364, "AA"), (364, 407, "V"), (407, 494, "DH"), (494, 538, "AH"),
                 (538, 625, "sil"), (625, 755, "K"), (755, 864, "AE"), (864, 960, "T")]
    assert a.tiers["phones"][2].end == 407 / 48000 and a.tiers["phones"][-1].end == 960 / 48000
    # "of the" came as one WORD event: split by the phones each word has alone (2 and 2)
    assert [(w.label, round(w.start * 48000), round(w.end * 48000)) for w in a.tiers["words"]] == [
        ("", 0, 320), ("of", 320, 407), ("the", 407, 538), ("", 538, 625), ("cat", 625, 960)]
    assert np.all(a.audio[:250] == 0) and abs(float(np.median(a.audio[400:900])) - 1000 / 32768) < 1e-4


def test_phone_map_never_fails():
    assert espeak_to_arpabet("'aI@") == "AY" and espeak_to_arpabet(",3:") == "ER"
    assert espeak_to_arpabet("_:") == SIL and espeak_to_arpabet("_^_") == SIL
    assert espeak_to_arpabet("aI@3x") == "AY"  # unknown modifier: longest known prefix
    assert espeak_to_arpabet("Q~") in PHONES and espeak_to_arpabet("") == SIL
    assert set(ESPEAK_TO_ARPABET.values()) == set(PHONES) and len(ARPABET) == 39


def test_sentence_list_covers_all_phones_and_every_phoneme_is_listed():
    sentences = load_sentences()
    # The whole list in one General American reading must contain all 39 phones.
    whole = espeak_synthesize(" ".join(sentences), "en-us")
    seen = {espeak_to_arpabet(e.phoneme) for e in whole.events if e.kind == "phoneme"}
    assert seen == set(PHONES)
    # Every mnemonic emitted for the list, across all the corpus's accents (each sentence read
    # by one accent in turn), is in the explicit table rather than left to the fallback.
    emitted = {e.phoneme.lstrip(STRESS_MARKS) for e in whole.events if e.kind == "phoneme"}
    for i, s in enumerate(sentences):
        synth = espeak_synthesize(s, ACCENTS[i % len(ACCENTS)][0])
        emitted |= {e.phoneme.lstrip(STRESS_MARKS) for e in synth.events if e.kind == "phoneme"}
    assert emitted - set(ESPEAK_TO_ARPABET) == set()


@pytest.mark.slow
def test_every_accent_reads_the_whole_list_with_listed_phonemes():
    text = " ".join(load_sentences())
    for language, _, _ in ACCENTS:
        synth = espeak_synthesize(text, language)
        names = {e.phoneme.lstrip(STRESS_MARKS) for e in synth.events if e.kind == "phoneme"}
        assert names - set(ESPEAK_TO_ARPABET) == set(), language


def test_out_dir_rules(corpus, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(AudioVQError, match="not an audiovq synthetic corpus"):
        synthesize_corpus(foreign, 1, 1, progress=False)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    ours = tmp_path / "ours"
    synthesize_corpus(ours, 2, 2, progress=False)
    synthesize_corpus(ours, 1, 1, progress=False)  # smaller re-run: no stale speakers left
    assert sorted(p.name for p in (ours / "wav48_silence_trimmed").iterdir()) == ["p225"]
    assert sorted(p.name for p in (ours / "txt" / "p225").iterdir()) == ["p225_001.txt"]
    with pytest.raises(ConfigError):
        synthesize_corpus(tmp_path / "x", 1, 0, progress=False)
    assert synthetic.MAX_SPEAKERS == 775


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ConfigError, match="seed"):
        speaker_table(3, seed)
