"""VCTK preparation on small fake 0.92 / 0.80 trees, and the manifest it writes."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil

import numpy as np
import pytest
import soundfile as sf

from audiovq.data import vctk
from audiovq.data.manifest import Manifest, Speaker, Utterance
from audiovq.errors import AudioVQError, ConfigError

SR_IN, SR_OUT = 48000, 16000
AMP = 0.5

INFO_092 = """ID  AGE  GENDER  ACCENTS  REGION COMMENTS
p225  23  F    English    Southern  England
p226  22  M    English    Surrey
p280  25  F    France    Paris (mic2 files unavailable)
p315  23  M    American    Connecticut (Text missing)
"""
INFO_080 = """ID  AGE  GENDER  ACCENTS  REGION
225  23  F    English    Southern  England
226  22  M    English    Surrey
227  38  M    English    Cumbria
"""


def tone_clip(k: int, rng) -> tuple[np.ndarray, float, float]:
    """A tone of known length padded with near-silence: (audio at 48 kHz, lead s, tone s)."""
    lead, dur, tail = 0.15 + 0.04 * (k % 4), 0.3 + 0.05 * (k % 3), 0.2
    t = np.arange(int(round(dur * SR_IN))) / SR_IN
    tone = AMP * np.sin(2 * np.pi * (180 + 40 * (k % 5)) * t)
    x = np.concatenate([np.zeros(int(round(lead * SR_IN))), tone, np.zeros(int(round(tail * SR_IN)))])
    x += 1e-4 * rng.standard_normal(x.size)  # -80 dB floor, far below the 30 dB threshold
    return x.astype(np.float32), lead, dur


def make_092(root, speakers=("p225", "p226", "p280", "p315"), n_utts=4):
    """0.92 tree. Defects: p225_004_mic1 is text bytes, p226_003 has no mic1 (mic2 only),
    p280 has no mic2, p315 has no transcripts. Returns {utt_id: (lead, dur)}."""
    rng = np.random.default_rng(0)
    truth = {}
    (root / "speaker-info.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "speaker-info.txt").write_text(INFO_092)
    for si, spk in enumerate(speakers):
        wav_dir = root / "wav48_silence_trimmed" / spk
        wav_dir.mkdir(parents=True)
        if spk != "p315":
            (root / "txt" / spk).mkdir(parents=True)
        for j in range(1, n_utts + 1):
            utt = f"{spk}_{j:03d}"
            x, lead, dur = tone_clip(si * n_utts + j, rng)
            truth[utt] = (lead, dur)
            for mic in ("mic1", "mic2"):
                if (spk, mic) == ("p280", "mic2") or (utt, mic) == ("p226_003", "mic1"):
                    continue
                sf.write(wav_dir / f"{utt}_{mic}.flac", x, SR_IN, subtype="PCM_16")
            if spk != "p315":
                (root / "txt" / spk / f"{utt}.txt").write_text(f"Sentence {j} of {spk}.\n")
    if "p225" in speakers and n_utts >= 4:
        (root / "wav48_silence_trimmed" / "p225" / "p225_004_mic1.flac").write_text("not audio at all\n")
    return truth


def make_080(root):
    rng = np.random.default_rng(1)
    truth = {}
    (root / "speaker-info.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "speaker-info.txt").write_text(INFO_080)
    for si, spk in enumerate(("p225", "p226", "p227")):
        (root / "wav48" / spk).mkdir(parents=True)
        (root / "txt" / spk).mkdir(parents=True)
        for j in range(1, 5):
            utt = f"{spk}_{j:03d}"
            x, lead, dur = tone_clip(si * 4 + j, rng)
            truth[utt] = (lead, dur)
            sf.write(root / "wav48" / spk / f"{utt}.wav", x, SR_IN, subtype="PCM_16")
            (root / "txt" / spk / f"{utt}.txt").write_text(f"Words {j}.")
    return truth


@pytest.fixture(scope="module")
def corpus092(tmp_path_factory):
    root = tmp_path_factory.mktemp("vctk092") / "VCTK-Corpus-0.92"
    truth = make_092(root)
    out = root.parent / "prepared"
    summary = vctk.prepare(root, out, workers=1, progress=False)
    return root, out, truth, summary


# ---------------------------------------------------------------- speaker-info and layout

def test_parse_speaker_info_both_releases():
    text = INFO_092 + "p362  29  F    American\ns5  22  F\nnonsense\n"
    info = vctk.parse_speaker_info(text)
    assert info["p225"] == vctk.SpeakerInfo("F", 23, "English", "Southern England")
    assert info["p280"] == vctk.SpeakerInfo("F", 25, "France", "Paris")  # comment dropped
    assert info["p315"].region == "Connecticut"
    assert info["p362"] == vctk.SpeakerInfo("F", 29, "American", "")
    assert info["s5"] == vctk.SpeakerInfo("F", 22, "", "")
    assert "nonsense" not in info and "ID" not in info
    old = vctk.parse_speaker_info(INFO_080 + "248  23  female  Indian  \n")
    assert sorted(old) == ["p225", "p226", "p227", "p248"]  # "p" added to bare 0.80 ids
    assert old["p227"] == vctk.SpeakerInfo("M", 38, "English", "Cumbria")
    assert old["p248"] == vctk.SpeakerInfo("F", 23, "Indian", "")


def test_speaker_order_is_numeric_then_prefix():
    ids = ["s5", "p376", "p225", "p99"]
    assert sorted(ids, key=vctk.speaker_key) == ["p99", "p225", "p376", "s5"]


def test_detect_layout(tmp_path):
    (tmp_path / "a" / "wav48_silence_trimmed").mkdir(parents=True)
    (tmp_path / "b" / "wav48").mkdir(parents=True)
    assert vctk.detect_layout(tmp_path / "a").version == "0.92"
    assert vctk.detect_layout(tmp_path / "b").version == "0.80"


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_bad_root_is_one_line_error(tmp_path, kind):
    root = tmp_path / "corpus"
    if kind == "empty":
        root.mkdir()
    elif kind == "file":
        root.write_text("x")
    with pytest.raises(AudioVQError) as e:
        vctk.prepare(root, tmp_path / "out", workers=1, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "wav48_silence_trimmed" in msg and "wav48/" in msg
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_bad_arguments(tmp_path):
    root = tmp_path / "c"
    make_092(root, speakers=("p225", "p226"), n_utts=2)
    for kw in ({"mic": "mic3"}, {"workers": 0}, {"val_fraction": 1.0}, {"heldout_speakers": 2},
               {"sample_rate": 16000.0}):
        with pytest.raises(ConfigError):
            vctk.prepare(root, tmp_path / "out", progress=False, **kw)


# ---------------------------------------------------------------- the 0.92 preparation

def test_summary_counts(corpus092):
    _, out, _, s = corpus092
    # 16 utterances: p226_003 has no mic1 (missing), p225_004_mic1 is not audio (unreadable)
    assert (s.prepared, s.already_prepared, s.utterances) == (14, 0, 14)
    assert s.skipped == {"unreadable": 1, "missing": 1, "silent": 0}
    assert s.speakers == 4 and s.no_text == 4  # p315's four utterances
    assert s.manifest == out / "manifest.json"
    line = str(s)
    assert "\n" not in line and "prepared 14 utterances" in line and "1 unreadable, 1 missing" in line
    assert any("p225_004" in w for w in s.warnings) and any("p226_003" in w for w in s.warnings)


def test_outputs_are_16k_pcm16_and_trimmed(corpus092):
    root, out, truth, _ = corpus092
    m = Manifest.load(out)
    assert m.sample_rate == SR_OUT and len(m.utterances) == 14
    for u in m.utterances:
        path = m.audio_path(u)
        i = sf.info(path)
        assert (i.samplerate, i.channels, i.subtype, i.frames) == (SR_OUT, 1, "PCM_16", u.num_samples)
        assert u.duration == pytest.approx(u.num_samples / SR_OUT)
        lead, dur = truth[u.id]
        # only silence is cut: a few tens of ms of context are kept on each side
        assert lead - 0.07 < u.trim_start <= lead, u.id
        assert dur < u.duration < dur + 0.14, u.id
        # the tone onset in the output sits where the source onset minus trim_start says
        x, _ = sf.read(path)
        onset = np.flatnonzero(np.abs(x) > 0.2 * AMP)[0] / SR_OUT
        assert onset == pytest.approx(lead - u.trim_start, abs=0.002), u.id
        # and the source file is where `source` says
        assert (root / u.source).is_file() and u.source.endswith("_mic1.flac")


def test_manifest_content(corpus092):
    root, out, _, _ = corpus092
    m = Manifest.load(out)
    assert m.source_root == str(root.resolve())
    assert m.meta["corpus"] == "VCTK-0.92" and m.meta["mic"] == "mic1"
    assert [s.id for s in m.speakers] == ["p225", "p226", "p280", "p315"]
    assert m.speaker("p226") == Speaker("p226", "M", 22, "English", "Surrey", "train")
    assert m.speaker("p280").region == "Paris"
    ids = [u.id for u in m.utterances]
    assert ids == sorted(ids) and "p225_004" not in ids and "p226_003" not in ids
    by_id = {u.id: u for u in m.utterances}
    assert by_id["p225_002"].text == "Sentence 2 of p225."
    assert by_id["p225_002"].path == "wav/p225/p225_002.wav"
    assert by_id["p225_002"].source == "wav48_silence_trimmed/p225/p225_002_mic1.flac"
    assert all(by_id[f"p315_{j:03d}"].text == "" for j in range(1, 5))  # audio kept without text
    with pytest.raises(AudioVQError):
        m.speaker("p999")


def test_split_rules(corpus092):
    _, out, _, _ = corpus092
    m = Manifest.load(out)
    # 4 speakers: round(0.05 * 4) = 0 -> at least 1 held out, the last in id order
    assert m.speaker_ids("heldout") == ["p315"] and m.speaker_ids() == ["p225", "p226", "p280"]
    assert m.speaker_ids("all") == ["p225", "p226", "p280", "p315"]
    assert {u.speaker for u in m.split("test")} == {"p315"} and len(m.split("test")) == 4
    for spk in m.speaker_ids("train"):
        utts = [u for u in m.utterances if u.speaker == spk]
        val = [u for u in utts if u.split == "val"]
        assert 1 <= len(val) < len(utts), spk
        # with so few utterances, no sha1 falls in the 5 % bucket: val is the lowest-hash one
        lowest = min(utts, key=lambda u: int(hashlib.sha1(u.id.encode()).hexdigest()[:12], 16))
        assert [u.id for u in val] == [lowest.id]
    assert len(m.split("train")) + len(m.split("val")) + len(m.split("test")) == 14
    with pytest.raises(AudioVQError):
        m.split("dev")


def test_rerun_skips_everything_and_gives_identical_manifest(corpus092, tmp_path, monkeypatch):
    root, out, _, _ = corpus092
    monkeypatch.setattr(vctk, "_prepare_one", lambda task: pytest.fail(f"{task.utt_id} redone"))
    copy = tmp_path / "prepared"
    shutil.copytree(out, copy)
    before = (copy / "manifest.json").read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in (copy / "wav").rglob("*.wav")}
    s = vctk.prepare(root, copy, workers=1, progress=False)
    assert (s.prepared, s.already_prepared) == (0, 14)
    assert s.skipped == {"unreadable": 1, "missing": 1, "silent": 0}  # a bad file stays bad
    assert (copy / "manifest.json").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in (copy / "wav").rglob("*.wav")} == mtimes


def test_changed_source_or_lost_output_is_redone(tmp_path):
    root = tmp_path / "c"
    make_092(root, speakers=("p225", "p226"), n_utts=3)
    out = tmp_path / "out"
    vctk.prepare(root, out, workers=1, progress=False)
    src = root / "wav48_silence_trimmed" / "p226" / "p226_001_mic1.flac"
    x, sr = sf.read(src)
    sf.write(src, np.concatenate([np.zeros(sr // 2), x]), sr)  # half a second more lead silence
    (out / "wav" / "p226" / "p226_002.wav").unlink()
    s = vctk.prepare(root, out, workers=1, progress=False)
    assert (s.prepared, s.already_prepared) == (2, 3)
    m = Manifest.load(out)
    u = next(u for u in m.utterances if u.id == "p226_001")
    assert u.trim_start > 0.5  # the new lead silence is reflected
    assert m.audio_path(next(u for u in m.utterances if u.id == "p226_002")).is_file()


def test_interrupted_run_leaves_no_manifest_and_resumes(tmp_path, monkeypatch):
    root = tmp_path / "c"
    make_092(root, speakers=("p225", "p226"), n_utts=3)
    out = tmp_path / "out"
    real, calls = vctk._prepare_one, []

    def dies_on_third(task):
        calls.append(task.utt_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(vctk, "_prepare_one", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        vctk.prepare(root, out, workers=1, progress=False)
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(vctk, "_prepare_one", real)
    s = vctk.prepare(root, out, workers=1, progress=False)
    # 5 files (p226_003 has no mic1); the two finished before the interrupt are kept
    assert s.already_prepared == 2 and s.utterances == 5
    assert Manifest.load(out).utterances[0].id == "p225_001"


def test_pool_gives_same_result_as_one_process(corpus092, tmp_path):
    root, out, _, _ = corpus092
    s = vctk.prepare(root, tmp_path / "pool", workers=2, progress=False)
    assert s.prepared == 14
    assert (tmp_path / "pool" / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    for f in (out / "wav").rglob("*.wav"):
        assert (tmp_path / "pool" / f.relative_to(out)).read_bytes() == f.read_bytes()


def test_mic2_and_missing_speaker_logged(corpus092, tmp_path, caplog):
    root, _, _, _ = corpus092
    with caplog.at_level(logging.WARNING, logger="audiovq.data.vctk"):
        s = vctk.prepare(root, tmp_path / "m2", mic="mic2", workers=1, progress=False)
    # p280 has no mic2 at all (its 4 transcripts are missing); p225_004 and p226_003 are fine on mic2
    assert s.skipped == {"unreadable": 0, "missing": 4, "silent": 0}
    assert s.utterances == 12 and s.speakers == 3
    assert any("p280" in r.getMessage() and "mic2" in r.getMessage() for r in caplog.records)
    m = Manifest.load(tmp_path / "m2")
    assert m.speaker_ids("all") == ["p225", "p226", "p315"] and m.meta["mic"] == "mic2"


def test_split_is_stable_when_other_files_change(tmp_path):
    root = tmp_path / "c"
    make_092(root, speakers=("p225", "p226", "p280", "p315"), n_utts=12)
    a = vctk.prepare(root, tmp_path / "a", workers=1, progress=False, val_fraction=0.5)
    shutil.rmtree(root / "wav48_silence_trimmed" / "p226")
    (root / "wav48_silence_trimmed" / "p280" / "p280_012_mic1.flac").unlink()
    b = vctk.prepare(root, tmp_path / "b", workers=1, progress=False, val_fraction=0.5)
    ma, mb = Manifest.load(a.manifest.parent), Manifest.load(b.manifest.parent)

    def val(m, spk):
        return {u.id for u in m.utterances if u.speaker == spk and u.split == "val"}

    def h(i):
        return int(hashlib.sha1(i.encode()).hexdigest()[:12], 16) / 16 ** 12

    def expected(spk, js):  # the documented rule, recomputed: ids whose sha1 is in the 50 % bucket
        ids = [f"{spk}_{j:03d}" for j in js]
        chosen = {i for i in ids if h(i) < 0.5}
        return chosen or {min(ids, key=h)}

    assert val(ma, "p225") == val(mb, "p225") == expected("p225", [1, 2, 3] + list(range(5, 13)))
    assert val(ma, "p280") == expected("p280", range(1, 13))
    assert val(mb, "p280") == expected("p280", range(1, 12))
    assert len(val(ma, "p280")) >= 2  # the hash bucket itself, not the at-least-one fallback
    assert ma.speaker_ids("heldout") == mb.speaker_ids("heldout") == ["p315"]
    # with a tiny fraction every training speaker still gets one (its lowest-hash utterance)
    c = Manifest.load(vctk.prepare(root, tmp_path / "c0", workers=1, progress=False,
                                   val_fraction=0.0).manifest.parent)
    assert val(c, "p225") == {min([f"p225_{j:03d}" for j in range(1, 13) if j != 4], key=h)}


def test_heldout_count(corpus092, tmp_path):
    root, _, _, _ = corpus092
    s = vctk.prepare(root, tmp_path / "h", workers=1, progress=False, heldout_speakers=2)
    m = Manifest.load(s.manifest.parent)
    assert m.speaker_ids("heldout") == ["p280", "p315"] and m.speaker_ids() == ["p225", "p226"]
    assert {u.split for u in m.utterances if u.speaker in ("p280", "p315")} == {"test"}


# ---------------------------------------------------------------- the 0.80 layout

def test_prepare_080(tmp_path):
    root = tmp_path / "VCTK-Corpus"
    truth = make_080(root)
    s = vctk.prepare(root, tmp_path / "out", workers=1, progress=False)
    assert (s.prepared, s.skipped["missing"], s.skipped["unreadable"]) == (12, 0, 0)
    m = Manifest.load(tmp_path / "out")
    assert m.meta["corpus"] == "VCTK-0.80"
    assert m.speaker("p227") == Speaker("p227", "M", 38, "English", "Cumbria", "heldout")
    u = m.split("train")[0]
    assert u.source == f"wav48/{u.speaker}/{u.id}.wav" and u.text.startswith("Words")
    lead, dur = truth[u.id]
    assert lead - 0.07 < u.trim_start <= lead and dur < u.duration < dur + 0.14
    with pytest.raises(ConfigError):
        vctk.prepare(root, tmp_path / "out2", mic="mic2", workers=1, progress=False)


# ---------------------------------------------------------------- the manifest file itself

def test_manifest_roundtrip_and_errors(tmp_path):
    m = Manifest(tmp_path, 16000, [Speaker("p1", "F", None, "", "", "train")],
                 [Utterance("p1_001", "p1", "wav/p1/p1_001.wav", 160, 0.01, "ünïcode \"quoted\"", "train",
                            0.25, "wav48/p1/p1_001.wav")], "/corpus", {"k": 1})
    path = m.save()
    data = json.loads(path.read_text())
    assert data["format"] == "audiovq-manifest/1" and len(data["utterances"]) == 1
    back = Manifest.load(tmp_path)
    assert (back.speakers, back.utterances, back.sample_rate, back.source_root, back.meta) == \
        (m.speakers, m.utterances, 16000, "/corpus", {"k": 1})
    assert Manifest.load(path).utterances == m.utterances  # the file itself is accepted too

    with pytest.raises(AudioVQError, match="no such"):
        Manifest.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioVQError, match="no manifest.json"):
        Manifest.load(tmp_path / "empty")
    path.write_text("{ truncated")
    with pytest.raises(AudioVQError, match="not a readable manifest"):
        Manifest.load(tmp_path)
    path.write_text(json.dumps({**data, "format": "audiovq-manifest/0"}))
    with pytest.raises(AudioVQError, match="format"):
        Manifest.load(tmp_path)
    path.write_text(json.dumps({**data, "utterances": [{**data["utterances"][0], "speaker": "p9"}]}))
    with pytest.raises(AudioVQError, match="unknown speaker"):
        Manifest.load(tmp_path)
    path.write_text(json.dumps({**data, "speakers": [{"id": "p1"}]}))
    with pytest.raises(AudioVQError, match="malformed"):
        Manifest.load(tmp_path)
