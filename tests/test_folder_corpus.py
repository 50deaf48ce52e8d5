"""`audiovq analyze --audio DIR [--alignments DIR]`: any folder of wav/flac plus MFA TextGrids
(per-speaker, flat or beside the audio), read in place at any sample rate."""
import json

import numpy as np
import pytest
import soundfile as sf

from audiovq.data.alignments import Interval, write_textgrid
from audiovq.data.folder import UNLABELLED, folder_manifest
from audiovq.errors import AudioVQError

from test_cli import run_cli, untrained_checkpoint


PHONES = ["sil", "AH0", "T", "IY1", "spn", "AH1", "T", ""]


def write_utt(audio: str, grid, seconds: float, rate: int, seed: int) -> None:
    """A tone-plus-noise file and its MFA-style TextGrid (stress-marked ARPAbet phones)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * (150 + 40 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    audio.parent.mkdir(parents=True, exist_ok=True)
    sf.write(audio, x.astype(np.float32), rate)
    edges = np.linspace(0.0, seconds, len(PHONES) + 1)
    phones = [Interval(float(a), float(b), p) for a, b, p in zip(edges[:-1], edges[1:], PHONES) if p]
    words = [Interval(float(edges[1]), float(edges[4]), "tea"), Interval(float(edges[5]), float(edges[7]), "tee")]
    grid.parent.mkdir(parents=True, exist_ok=True)
    write_textgrid(grid, {"words": words, "phones": phones}, xmax=seconds)


def make_folder(root, layout: str, speakers=("spk1", "spk2"), per_speaker=2):
    """Audio in `root/audio`; layout "speaker" (alignments/<spk>/<utt>), "flat" (flat audio
    and alignments), "beside" (TextGrids next to per-speaker audio). Returns (audio, align)."""
    audio, align = root / "audio", root / "align"
    n = 0
    for s in (speakers if layout != "flat" else [None]):
        for i in range(per_speaker if s else 3):
            n += 1
            utt = f"{s or 'utt'}_{i:03d}"
            rate = 16000 if n % 2 else 22050
            sub = f"{s}/" if s else ""
            ext = "wav" if n % 3 else "flac"
            grid = {"speaker": align / sub, "flat": align, "beside": audio / sub}[layout] / f"{utt}.TextGrid"
            write_utt(audio / sub / f"{utt}.{ext}", grid, 1.0 + 0.25 * (n % 3), rate, n)
    return audio, (audio if layout == "beside" else align)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return untrained_checkpoint(tmp_path_factory.mktemp("folder_ckpt") / "model.pt", ["a", "b"])


def test_manifest_per_speaker_folder(tmp_path):
    audio, _ = make_folder(tmp_path, "speaker")
    m = folder_manifest(audio, 16000)
    assert m.root == audio and m.sample_rate == 16000
    assert [s.id for s in m.speakers] == ["spk1", "spk2"]
    assert all(s.split == "train" and s.gender == "" and s.age is None for s in m.speakers)
    assert [u.id for u in m.utterances] == ["spk1_000", "spk1_001", "spk2_000", "spk2_001"]
    assert [u.speaker for u in m.utterances] == ["spk1", "spk1", "spk2", "spk2"]
    assert [u.path for u in m.utterances] == ["spk1/spk1_000.wav", "spk1/spk1_001.wav",
                                              "spk2/spk2_000.flac", "spk2/spk2_001.wav"]
    for u in m.utterances:
        info = sf.info(str(m.audio_path(u)))
        assert u.num_samples == info.frames and u.duration == pytest.approx(info.frames / info.samplerate)
        assert u.trim_start == 0.0 and u.split == "test" and u.text == ""
    assert [round(u.duration, 3) for u in m.utterances] == [1.25, 1.5, 1.0, 1.25]
    assert {sf.info(str(m.audio_path(u))).samplerate for u in m.utterances} == {16000, 22050}
    assert len(m.utterances) == len(m.split("test"))  # nothing copied: files are read in place


def test_manifest_flat_folder(tmp_path):
    audio, _ = make_folder(tmp_path, "flat")
    m = folder_manifest(audio, 24000)
    assert [s.id for s in m.speakers] == [UNLABELLED]
    assert [u.id for u in m.utterances] == ["utt_000", "utt_001", "utt_002"]
    assert [u.path for u in m.utterances] == ["utt_000.wav", "utt_001.wav", "utt_002.flac"]


def test_manifest_refuses_bad_folders(tmp_path):
    with pytest.raises(AudioVQError, match="no such audio folder"):
        folder_manifest(tmp_path / "gone", 16000)
    (tmp_path / "empty" / "spk").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(AudioVQError, match="no .wav or .flac"):
        folder_manifest(tmp_path / "empty", 16000)
    audio, _ = make_folder(tmp_path / "mixed", "speaker")
    sf.write(audio / "loose.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(AudioVQError, match="both at the top and in speaker folders"):
        folder_manifest(audio, 16000)
    audio, _ = make_folder(tmp_path / "dupe", "speaker")
    sf.write(audio / "spk2" / "spk1_000.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(AudioVQError, match="two files give utterance id 'spk1_000'"):
        folder_manifest(audio, 16000)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.wav").write_text("not audio")
    with pytest.raises(AudioVQError, match="not a readable audio file"):
        folder_manifest(tmp_path / "junk", 16000)


@pytest.mark.parametrize("layout", ["speaker", "beside"])
def test_analyze_folder_with_speakers(ckpt, tmp_path, capsys, layout):
    audio, align = make_folder(tmp_path, layout)
    args = ["analyze", "--checkpoint", ckpt, "--audio", audio, "--out", tmp_path / "out", "-q", "--no-mfcc", "--no-abx"]
    if layout != "beside":
        args += ["--alignments", align]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "no speaker labels" not in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["meta"]["utterances"] == 4
    assert report["meta"]["alignments"] == str(align)
    names = report["methods"]["learned codes"]["phone_names"]
    assert {"AH", "T", "IY", "sil"} <= set(names)
    assert not any(ch.isdigit() for n in names for ch in n) and "spn" not in names
    assert any(m.get("speakers") == 2 and m.get("speaker_accuracy") is not None
               for m in report["methods"].values())


def test_analyze_flat_folder_says_no_speaker_labels(ckpt, tmp_path, capsys):
    audio, align = make_folder(tmp_path, "flat")
    code, out, err = run_cli(capsys, "analyze", "--checkpoint", ckpt, "--audio", audio, "--alignments", align,
                             "--out", tmp_path / "out", "-q", "--no-mfcc")
    assert code == 0, err
    lines = [l for l in out.splitlines() if "no speaker labels" in l]
    assert len(lines) == 1 and "speaker leakage" in lines[0] and "across-speaker ABX" in lines[0]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["meta"]["utterances"] == 3
    assert all(m.get("speaker_accuracy") is None for m in report["methods"].values())
    assert all(m.get("abx_across") is None for m in report["methods"].values() if "abx_within" in m)
    names = report["methods"]["learned codes"]["phone_names"]
    assert {"AH", "T", "IY"} <= set(names) and "AH0" not in names
    # the ABX lines say how much was scored, and the report keeps the counts
    learned = report["methods"]["learned codes"]
    line = next(l for l in out.splitlines() if l.startswith("learned codes: ABX within"))
    assert f"{learned['abx_items']:,} of {learned['abx_items_total']:,} items" in line
    assert learned["abx_triplets"] == learned["abx_triplets_within"] + learned["abx_triplets_across"]
    assert learned["abx_cells_across"] == 0 and learned["abx_items"] <= learned["abx_items_total"]


def test_analyze_a_sample_of_minutes(ckpt, tmp_path, capsys):
    audio, align = make_folder(tmp_path, "speaker")  # 4 files of 1 to 1.5 s, 5 s in all
    code, out, err = run_cli(capsys, "analyze", "--checkpoint", ckpt, "--audio", audio, "--alignments", align,
                             "--out", tmp_path / "out", "-q", "--no-abx", "--minutes", "0.05")
    assert code == 0, err
    meta = json.loads((tmp_path / "out" / "report.json").read_text())["meta"]
    assert meta["utterances"] == 2 and meta["minutes"] <= 0.05  # at most 3 s
    # hear: cutting the most used codes from the audio for the report page
    assert set(meta["seconds"]) == set(meta["cpu_seconds"]) == {"read", "encode", "mfcc", "speaker naming", "metrics",
                                                                "hear"}


def test_analyze_folder_bad_inputs(ckpt, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    audio, align = make_folder(tmp_path / "ok", "flat")
    cases = [(["--audio", tmp_path / "gone"], "no such audio folder"),
             (["--audio", tmp_path / "empty"], "no .wav or .flac"),
             (["--audio", audio, "--data", tmp_path], "not both"),
             (["--audio", audio, "--alignments", tmp_path / "noalign"], "no such alignments directory"),
             (["--audio", audio, "--split", "train"], "has no splits")]
    for extra, message in cases:
        code, out, err = run_cli(capsys, "analyze", "--checkpoint", ckpt, *extra, "--out", tmp_path / "out",
                                 "-q", "--no-mfcc", "--no-abx")
        assert code == 2, (extra, out, err)
        assert err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "out").exists()
