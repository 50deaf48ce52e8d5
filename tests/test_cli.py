"""The command line: a round trip on a small checkpoint, and every kind of bad input a user
can hand us → one line on stderr naming the problem, exit status 2, no partial output."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from audiovq import checkpoint as ckpt_io
from audiovq.cli import main
from audiovq.errors import AudioVQError
from audiovq.config import load_config, to_dict
from audiovq.data.manifest import Manifest
from audiovq.nn.vqvae import AudioVQVAE

SMALL = ["model.encoder.layers=6", "data.sample_rate=16000",  # the rate and hop these tests assume
         "model.encoder.channels=16", "model.quantizer.codebook_size=16", "model.quantizer.dim=8",
         "model.decoder.residual_channels=8", "model.decoder.gate_channels=16", "model.decoder.skip_channels=16",
         "model.decoder.layers_per_cycle=3", "model.decoder.cond_channels=8", "model.decoder.speaker_dim=4",
         "model.quantizer.kmeans_iters=0"]


@pytest.fixture(scope="module")
def files(small_corpus, tmp_path_factory):
    """A small (untrained) checkpoint of the small corpus, and good and bad input files."""
    raw, prepared = small_corpus
    d = tmp_path_factory.mktemp("cli")
    cfg = load_config("vqvae", SMALL + [f"data.prepared={prepared}"])
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 3, 16000)
    manifest = Manifest.load(prepared)
    speakers = [{"id": s, "gender": "F", "age": 20, "accent": "English", "region": ""}
                for s in manifest.speaker_ids("train")]
    ckpt = ckpt_io.save(d / "model.pt", ckpt_io.Checkpoint(
        "vqvae", to_dict(cfg), model.state_dict(), 1, extra={"speakers": speakers, "corpus": str(prepared)}))
    good = manifest.audio_path(manifest.split("test")[0])
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(d / "stereo.wav", np.stack([tone, tone * 0.5], 1), 16000)
    sf.write(d / "8k.wav", tone[::2], 8000)
    sf.write(d / "96k.flac", np.repeat(tone, 6), 96000)
    (d / "text.wav").write_text("this is not audio\n")
    sf.write(d / "full.flac", tone, 16000)
    (d / "truncated.flac").write_bytes((d / "full.flac").read_bytes()[:300])
    sf.write(d / "empty.wav", np.zeros(0, np.float32), 16000)
    nan = tone.copy()
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(d / "silent.wav", np.zeros(16000, np.float32), 16000)
    (d / "empty_dir").mkdir()
    (d / "corrupt.pt").write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    ckpt_io.save(d / "prior.pt", ckpt_io.Checkpoint("prior", {}, {}, 1))
    torch.save({"format": "audiovq-checkpoint", "version": 99, "kind": "vqvae"}, d / "future.pt")
    bad_cfg = to_dict(cfg)
    bad_cfg["model"]["quantizer"]["codebook_size"] = "many"
    ckpt_io.save(d / "badcfg.pt", ckpt_io.Checkpoint("vqvae", bad_cfg, model.state_dict(), 1,
                                                      extra={"speakers": speakers}))
    from audiovq.codes import file_digest
    from audiovq.nn.prior import CodePrior
    pcfg = load_config("prior", ["vqvae=x", "model.residual_channels=8", "model.gate_channels=16",
                                 "model.skip_channels=16", "model.layers_per_cycle=3", "model.speaker_dim=4"])
    ckpt_io.save(d / "good_prior.pt", ckpt_io.Checkpoint(
        "prior", to_dict(pcfg), CodePrior(pcfg.model, 16, 3).state_dict(), 1,
        extra={"vqvae": str(ckpt), "vqvae_digest": file_digest(ckpt), "speakers": speakers, "num_codes": 16}))
    ckpt_io.save(d / "orphan_prior.pt", ckpt_io.Checkpoint(
        "prior", to_dict(pcfg), {}, 1, extra={"vqvae": str(d / "gone.pt"), "speakers": speakers, "num_codes": 16}))
    np.save(d / "codes_oob.npy", np.array([1, 2, 99]))
    np.save(d / "codes_2d.npy", np.zeros((2, 3), np.int64))
    (d / "codes_junk.npy").write_text("junk")
    return d, ckpt, good, raw, prepared


def untrained_checkpoint(path, speaker_ids, sample_rate: int = 16000):
    """The SMALL model, untrained (seed 0), saved as a checkpoint with these speakers."""
    cfg = load_config("vqvae", SMALL + [f"data.sample_rate={sample_rate}"])
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, len(speaker_ids), sample_rate)
    speakers = [{"id": s, "gender": "", "age": None, "accent": "", "region": ""} for s in speaker_ids]
    return ckpt_io.save(path, ckpt_io.Checkpoint("vqvae", to_dict(cfg), model.state_dict(), 1,
                                                 extra={"speakers": speakers}))


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
        raise SystemExit(0)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_round_trip_convert_encode_decode_evaluate(files, capsys, tmp_path):
    d, ckpt, good, _, _ = files
    code, out, err = run_cli(capsys, "convert", "--src", good, "--speaker", "p225", "--speaker", "p227",
                             "--checkpoint", ckpt, "--out", tmp_path / "conv", "-q")
    assert code == 0, err
    listing = json.loads((tmp_path / "conv" / "conversions.json").read_text())
    assert [i["target"] for i in listing["items"]] == ["p225", "p227"]
    src = sf.info(str(good))
    for i in listing["items"]:
        info = sf.info(i["output"])
        assert info.frames == src.frames and info.samplerate == 16000
        assert i["source_speaker"] == "p228"
    code, out, err = run_cli(capsys, "encode", good, "--out", tmp_path / "c.npz", "--checkpoint", ckpt)
    assert code == 0, err
    with np.load(tmp_path / "c.npz") as z:
        assert z["codes"].size == -(-src.frames // 64)
    code, out, err = run_cli(capsys, "decode", tmp_path / "c.npz", "--speaker", "p226", "--out",
                             tmp_path / "d.wav", "--checkpoint", ckpt)
    assert code == 0, err
    assert sf.info(str(tmp_path / "d.wav")).frames == src.frames
    code, out, err = run_cli(capsys, "speakers", "--checkpoint", ckpt)
    assert code == 0 and "p225" in out and "p228" not in out
    for extra in ([], ["--top-k", "4"]):
        code, out, err = run_cli(capsys, "sample", "--prior", d / "good_prior.pt", "--speaker", "p226",
                                 "--seconds", "0.2", "-n", "2", "--out", tmp_path / "samples", *extra)
        assert code == 0, err
        for i in range(2):
            assert sf.info(str(tmp_path / "samples" / f"sample_p226_{i:02d}.wav")).frames == 50 * 64
            assert np.load(tmp_path / "samples" / f"sample_p226_{i:02d}.codes.npy").max() < 16


@pytest.mark.parametrize("name", ["stereo.wav", "8k.wav", "96k.flac"])
def test_other_channel_counts_and_rates_are_handled(files, capsys, tmp_path, name):
    d, ckpt, *_ = files
    code, out, err = run_cli(capsys, "encode", d / name, "--out", tmp_path / "c.npy", "--checkpoint", ckpt)
    assert code == 0, err
    assert np.load(tmp_path / "c.npy").size == 16000 // 64


BAD = [  # (arguments, words the one-line message must contain); {d} = fixture folder
    (["convert", "--src", "{d}/missing.wav", "--speaker", "p225"], "no such file"),
    (["convert", "--src", "{d}/empty_dir", "--speaker", "p225"], "holds no"),
    (["convert", "--src", "{d}/text.wav", "--speaker", "p225"], "not a readable audio file"),
    (["convert", "--src", "{d}/truncated.flac", "--speaker", "p225"], "truncated.flac"),
    (["convert", "--src", "{d}/empty.wav", "--speaker", "p225"], "zero length"),
    (["convert", "--src", "{d}/nan.wav", "--speaker", "p225"], "NaN"),
    (["convert", "--src", "{d}/silent.wav", "--speaker", "p225"], "silent"),
    (["convert", "--src", "{good}", "--speaker", "p999"], "unknown speaker 'p999'"),
    (["encode", "{d}"], "directory"),
    (["decode", "{d}/codes_oob.npy", "--speaker", "p225", "--out", "{out}/x.wav"], "outside 0…15"),
    (["decode", "{d}/codes_2d.npy", "--speaker", "p225", "--out", "{out}/x.wav"], "1-D"),
    (["decode", "{d}/codes_junk.npy", "--speaker", "p225", "--out", "{out}/x.wav"], "not a codes file"),
    (["speakers", "--checkpoint", "{d}/nope.pt"], "no such checkpoint"),
    (["speakers", "--checkpoint", "{d}/corrupt.pt"], "corrupt"),
    (["speakers", "--checkpoint", "{d}/prior.pt"], "expected 'vqvae'"),
    (["speakers", "--checkpoint", "{d}/future.pt"], "version 99"),
    (["speakers", "--checkpoint", "{d}/badcfg.pt"], "codebook_size"),
    (["corpus", "prepare", "{d}/missing", "{out}/prep"], "missing"),
    (["corpus", "prepare", "{d}/empty_dir", "{out}/prep"], "empty_dir"),
    (["corpus", "synth", "{out}/s", "--speakers", "0"], "at least 1"),
    (["analyze", "--data", "{prepared}", "--alignments", "{d}/nope"], "no such alignments"),
    (["analyze", "--data", "{prepared}", "--alignments", "{d}/empty_dir"], "no usable alignment"),
    (["evaluate", "{d}/empty_dir"], "no conversions list"),
    (["sample", "--prior", "{d}/model.pt", "--speaker", "p225", "--out", "{out}/s"], "expected 'prior'"),
    (["sample", "--prior", "{d}/orphan_prior.pt", "--speaker", "p225", "--out", "{out}/s"], "is gone"),
    (["sample", "--prior", "{d}/good_prior.pt", "--speaker", "p999", "--out", "{out}/s"], "unknown speaker"),
    (["sample", "--prior", "{d}/corrupt.pt", "--speaker", "p225", "--out", "{out}/s"], "corrupt"),
    (["sample", "--prior", "{d}/nope.pt", "--speaker", "p225", "--out", "{out}/s"], "no such checkpoint"),
    (["analyze", "--checkpoint", "{d}/prior.pt"], "expected 'vqvae'"),
    (["analyze", "--checkpoint", "{d}/corrupt.pt"], "corrupt"),
    (["analyze", "--data", "{d}/empty_dir"], "not a prepared corpus"),
    (["encode", "{d}/text.wav"], "not a readable audio file"),
    (["encode", "{d}/nan.wav"], "NaN"),
    (["decode", "{d}/codes_oob.npy", "--speaker", "p225", "--out", "{out}/x.wav", "--checkpoint", "{d}/prior.pt"],
     "expected 'vqvae'"),
    (["decode", "{d}/missing.npy", "--speaker", "p225", "--out", "{out}/x.wav"], "missing.npy"),
    (["evaluate", "{d}/text.wav"], "not a conversions list"),
    (["convert", "--src", "{good}", "--speaker", "p225", "--device", "mps"], "only cpu and cuda"),
    (["convert", "--src", "{good}", "--speaker", "p225", "--device", "gpu0"], "not a device"),
    (["convert", "--src", "{good}", "--speaker", "p225", "--slow", "--precision", "int8"], "fast CPU path"),
    (["sample", "--prior", "{d}/good_prior.pt", "--speaker", "p225", "--out", "{out}/s", "--device", "cuda:99"],
     "cuda:99"),
]


@pytest.mark.parametrize("args,words", BAD, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in enumerate(BAD)])
def test_bad_input_gives_one_line_and_exit_2(files, capsys, tmp_path, args, words):
    d, ckpt, good, raw, prepared = files
    args = [a.format(d=d, good=good, out=tmp_path, prepared=prepared) for a in args]
    if args[0] in ("convert", "encode", "decode", "analyze", "evaluate", "speakers") and "--checkpoint" not in args:
        args += ["--checkpoint", str(ckpt)]
    if args[0] == "convert":
        args += ["--out", str(tmp_path / "conv")]
    code, out, err = run_cli(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audiovq"), err
    assert words in lines[0], lines[0]
    assert "Traceback" not in err
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers  # nothing half-written


@pytest.mark.parametrize("recipe,override,words", [
    ("vctk/train.py", "model.quantizer.codebook_size=abc", "codebook_size"),
    ("vctk/train.py", "model.nope=1", "nope"),
    ("vctk/train.py", "train.lr=-1", "train.lr"),
    ("vctk/train.py", "data.perturb_semitones=30", "perturb_semitones"),
    ("vctk/train.py", "data.root=/no/such/vctk", "no such directory"),
    ("vctk/train.py", "preset=nosuch", "nosuch"),
    ("vctk/train.py", "train.device=cuda:99", "train.device"),
    ("vctk/train_prior.py", "vqvae=/no/such.pt", "no such"),
    ("images/train.py", "data.dataset=svhn", "data.dataset"),
])
def test_recipe_rejects_bad_config_in_one_line(recipe, override, words, tmp_path):
    res = subprocess.run([sys.executable, f"recipes/{recipe}", override, f"train.run_dir={tmp_path}/run"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr


def test_recipe_rejects_init_weights_that_do_not_fit(files, tmp_path):
    _, ckpt, _, raw, prepared = files  # a checkpoint with K = 16, a run with the tiny preset's K = 128
    res = subprocess.run([sys.executable, "recipes/vctk/train.py", f"train.init={ckpt}", f"data.root={raw}",
                          f"data.prepared={prepared}", "data.sample_rate=16000", f"train.run_dir={tmp_path}/run"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "train.init=" in res.stderr and "Traceback" not in res.stderr
    assert not list((tmp_path / "run").rglob("*.pt"))


def test_commands_default_to_the_shipped_demo_model(files, capsys, tmp_path):
    _, _, good, _, _ = files
    code, out, err = run_cli(capsys, "speakers")
    assert code == 0, err
    assert "demo-vqvae.pt" in out.splitlines()[0]
    assert [ln.split()[0] for ln in out.splitlines()[2:]] == [f"p{n}" for n in range(225, 254)]  # 29 training speakers
    code, out, err = run_cli(capsys, "encode", good, "--out", tmp_path / "c.npy")
    assert code == 0, err
    frames = sf.info(str(good)).frames  # 16 kHz file → the model's 8 kHz, hop 32
    assert np.load(tmp_path / "c.npy").size == -(-(frames // 2) // 32)


def test_a_missing_embedded_corpus_is_rebuilt_from_the_checkpoint_config(monkeypatch, tmp_path):
    from types import SimpleNamespace
    from audiovq.models import training_corpus
    monkeypatch.chdir(tmp_path)
    cfg = load_config("vqvae", ["data.embedded_speakers=2", "data.embedded_utterances=2", "data.sample_rate=8000",
                                "data.embedded_flite=false"])
    m = SimpleNamespace(extra={"corpus": "gone/prepared-8000"}, config=cfg, path=tmp_path / "m.pt")
    manifest = Manifest.load(training_corpus(m))
    assert manifest.sample_rate == 8000 and len(manifest.utterances) == 4
    cfg = load_config("vqvae", ["data.root=/somewhere/VCTK"])
    m = SimpleNamespace(extra={"corpus": "gone"}, config=cfg, path=tmp_path / "m.pt")
    with pytest.raises(AudioVQError, match="pass --data"):
        training_corpus(m)


def test_export_records_a_decoding_temperature_that_commands_use_by_default(files, capsys, tmp_path):
    _, ckpt, good, _, _ = files
    greedy = tmp_path / "greedy.pt"
    assert run_cli(capsys, "export", ckpt, greedy, "--temperature", "0")[0] == 0
    assert run_cli(capsys, "encode", good, "--checkpoint", greedy, "--out", tmp_path / "c.npy")[0] == 0
    outs = {}
    for name, extra in (("a", ["--seed", "1"]), ("b", ["--seed", "2"]), ("c", ["--seed", "2", "--temperature", "1"]),
                        ("d", ["--seed", "3", "--temperature", "1"])):
        code, _, err = run_cli(capsys, "decode", tmp_path / "c.npy", "--checkpoint", greedy, "--speaker", "p225",
                               "--out", tmp_path / f"{name}.wav", *extra)
        assert code == 0, err
        outs[name] = sf.read(str(tmp_path / f"{name}.wav"))[0]
    assert np.array_equal(outs["a"], outs["b"])      # the recorded temperature 0 (argmax) ignores the seed
    assert not np.array_equal(outs["c"], outs["d"])  # an explicit --temperature 1 samples
    code, _, err = run_cli(capsys, "export", ckpt, tmp_path / "bad.pt", "--temperature", "9")
    assert code == 2 and "temperature" in err and not (tmp_path / "bad.pt").exists()


def test_sample_works_out_of_the_box_with_the_shipped_prior(capsys, tmp_path):
    code, out, err = run_cli(capsys, "sample", "--speaker", "p250", "-n", "2", "--seconds", "0.5",
                             "--out", tmp_path)
    assert code == 0, err
    files = sorted(tmp_path.glob("sample_p250_*.wav"))
    assert len(files) == 2
    a, b = (sf.read(str(f))[0] for f in files)
    assert a.shape == b.shape == (4000,) and not np.array_equal(a, b)  # 0.5 s at 8 kHz, two different samples
    from audiovq.models import load_vqvae
    m = load_vqvae().model  # the shipped model: 62.5 distinct codes/s, each held over 4 frames, K = 512
    codes = np.load(tmp_path / "sample_p250_00.codes.npy")
    distinct = -(-125 // m.code_stride)  # enough for 0.5 s (the audio is cut to it)
    assert codes.shape == (distinct * m.code_stride,) and codes.max() < m.quantizer.num_codes
    assert (codes.reshape(distinct, m.code_stride) == codes[::m.code_stride, None]).all()


def test_analyze_reports_abx_for_codes_z_e_mfcc_and_random(files, capsys, tmp_path):
    _, ckpt, _, raw, prepared = files
    code, out, err = run_cli(capsys, "analyze", "--checkpoint", ckpt, "--data", prepared, "--out", tmp_path / "an",
                             "-q")
    assert code == 0, err
    methods = json.loads((tmp_path / "an" / "report.json").read_text())["methods"]
    for name in ("learned codes", "z_e (continuous)", "MFCC (continuous)", "random"):
        assert 0 <= methods[name]["abx_within"] <= 1 and methods[name]["abx_triplets"] > 0, name
        assert f"{name}: ABX within" in out
    assert abs(methods["random"]["abx_within"] - 0.5) < 0.15  # random codes: chance
    assert methods["MFCC (continuous)"]["abx_within"] < 0.35   # real features separate phones
    assert "ABXw%" in out.splitlines()[0]
