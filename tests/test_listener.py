"""What a listener hears (audiovq/evaluate: asr, quality, listener): word error rate on hand-worked
alignments, a recogniser that hears clean speech and not noise, DNSMOS that prefers clean speech
to noisy, the representation limit, transcripts, summaries, the benchmark tool's read-offs, and
`evaluate` end to end. Tests needing pocketsphinx, speechmos or flite skip without them."""
import importlib.util
import math
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from audiovq import audio
from audiovq.evaluate import (Conversion, Heard, Listener, evaluate, format_report, summarize, transcript,
                              word_errors, words, write_json)

SENTENCES = ["The boy measured the beige garage before lunch.",
             "My neighbour keeps a jar of copper coins beside the door."]


# ------------------------------------------------------------------------ word error rate
@pytest.mark.parametrize("hyp, s, d, i", [
    ("the cat sat on the mat", 0, 0, 0),
    ("the bat sat on the mat", 1, 0, 0),            # cat → bat
    ("the cat on the mat", 0, 1, 0),                # sat dropped
    ("the cat sat down on the mat", 0, 0, 1),       # down added
    ("cat sat on a mat today", 1, 1, 1),            # the dropped, the → a, today added
    ("", 0, 6, 0),                                  # nothing heard: every word deleted
])
def test_word_errors_hand_worked(hyp, s, d, i):
    ref = "the cat sat on the mat".split()
    e = word_errors(ref, hyp.split())
    assert (e.substitutions, e.deletions, e.insertions, e.reference) == (s, d, i, 6)
    assert e.wer == pytest.approx((s + d + i) / 6)


def test_word_error_rate_can_exceed_one_and_is_nan_without_reference():
    e = word_errors(["yes"], "no no no".split())
    assert (e.substitutions, e.insertions, e.wer) == (1, 2, 3.0)
    assert math.isnan(word_errors([], ["a"]).wer)


def test_words_are_lowercased_without_punctuation():
    assert words("Please call Stella's well-known friend, Mr. Brown: 42!") == \
        ["please", "call", "stella's", "well", "known", "friend", "mr", "brown", "42"]
    assert words(" 'Quoted' — text… ") == ["quoted", "text"]


# ------------------------------------------------------------------------ real listeners
def flite(path: pathlib.Path, text: str, voice: str = "slt") -> np.ndarray:
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    return audio.load(path, 16000)


def with_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    n = np.random.default_rng(seed).normal(size=x.size)
    n *= np.sqrt(np.mean(x ** 2) / np.mean(n ** 2)) / 10 ** (snr_db / 20)
    return np.clip(x + n, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def recognizer():
    pytest.importorskip("pocketsphinx")
    from audiovq.evaluate import Recognizer
    return Recognizer()


@pytest.fixture(scope="module")
def dnsmos():
    pytest.importorskip("speechmos")
    pytest.importorskip("onnxruntime")
    from audiovq.evaluate import DNSMOS
    return DNSMOS()


def test_recogniser_hears_clean_speech_and_not_noise(recognizer, tmp_path):
    for k, text in enumerate(SENTENCES):
        x = flite(tmp_path / f"{k}.wav", text)
        r = recognizer(x, 16000, text)
        assert r.wer <= 0.2, r.hypothesis
        assert r.oov == ()
    noise = 0.1 * np.random.default_rng(0).normal(size=3 * 16000).astype(np.float32)
    assert recognizer(noise, 16000, SENTENCES[0]).wer >= 0.9


def test_recogniser_keeps_unknown_words_as_errors_and_resamples(recognizer, tmp_path):
    x = flite(tmp_path / "s.wav", SENTENCES[0])
    r = recognizer(audio.resample(x, 16000, 22050), 22050, SENTENCES[0] + " Zorblax")
    assert r.oov == ("zorblax",)
    assert r.errors.reference == 9 and r.errors.deletions >= 1  # the unknown word can never be heard


def test_dnsmos_prefers_clean_speech_to_speech_in_white_noise(dnsmos, tmp_path):
    x = flite(tmp_path / "s.wav", SENTENCES[1])
    clean, noisy = dnsmos(x, 16000), dnsmos(with_noise(x, 5.0), 16000)
    assert clean.ovrl > noisy.ovrl + 0.5 and clean.bak > noisy.bak + 1.0
    assert all(1 <= v <= 5 for v in clean[:4])
    assert dnsmos(3 * x, 16000).ovrl > 1  # out-of-range samples are clipped, not refused
    assert math.isnan(dnsmos(np.zeros(16000, np.float32), 16000).ovrl)  # silence is not scored


# ------------------------------------------------------------------------ representation limit
SMALL = ["model.encoder.layers=6", "data.sample_rate=16000", "model.encoder.channels=16",
         "model.quantizer.codebook_size=16", "model.quantizer.dim=8", "model.decoder.residual_channels=8",
         "model.decoder.gate_channels=16", "model.decoder.skip_channels=16", "model.decoder.layers_per_cycle=3",
         "model.decoder.cond_channels=8", "model.decoder.speaker_dim=4", "model.quantizer.kmeans_iters=0"]


def small_model(preemphasis: float = 0.0):
    from audiovq.config import load_config
    from audiovq.nn.vqvae import AudioVQVAE
    return AudioVQVAE(load_config("vqvae", SMALL + [f"model.decoder.preemphasis={preemphasis}"]).model, 3, 16000)


def voiced(seconds=1.0, f0=150.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))).astype(np.float32)


def test_representation_limit_is_the_mu_law_round_trip_without_preemphasis():
    x = voiced()
    y = small_model(0.0).representation_limit(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(y, audio.mu_law_decode(audio.mu_law_encode(x)))


def test_representation_limit_with_preemphasis_stays_close():
    x = voiced()
    y = small_model(0.85).representation_limit(x)
    assert y.shape == x.shape
    assert np.sqrt(np.mean((y - x) ** 2) / np.mean(x ** 2)) < 0.03  # 8-bit µ-law: ~1 % RMS


# ------------------------------------------------------------------------ transcripts, summaries
def test_transcript_from_manifest_text_else_a_txt_beside_the_source(tmp_path):
    src = tmp_path / "clip.wav"
    assert transcript(str(src), None, {}) is None
    (tmp_path / "clip.txt").write_text("Hello there.\n")
    assert transcript(str(src), None, {}) == "Hello there."
    assert transcript(str(src), "p225_001", {"p225_001": "From the corpus."}) == "From the corpus."
    assert transcript(str(src), "p225_001", {"p225_001": ""}) == "Hello there."  # corpus without text


def heard(wer=None, words=0, ovrl=None):
    return Heard(wer=wer, words=words, errors=round(wer * words) if wer is not None else 0, ovrl=ovrl,
                 sig=ovrl, bak=ovrl, p808=ovrl)


def test_summary_pools_word_errors_and_hears_each_source_once():
    a = {"output": heard(0.5, 10, 2.0), "source": heard(0.0, 10, 3.0), "limit": heard(0.1, 10, 2.9)}
    b = {"output": heard(1.0, 2, 1.0), "source": heard(0.0, 10, 3.0), "limit": heard(0.1, 10, 2.9)}
    c = {"output": heard(None, 0, 1.5), "source": heard(None, 0, 4.0), "limit": heard(None, 0, 3.5)}
    items = [{"source": "a.wav", "heard": a}, {"source": "a.wav", "heard": b}, {"source": "c.wav", "heard": c}]
    from dataclasses import asdict
    items = [{"source": i["source"], "heard": {k: asdict(v) for k, v in i["heard"].items()}} for i in items]
    s = summarize(items)
    assert s["wer_output"] == pytest.approx((5 + 2) / 12)       # pooled, not the mean of 0.5 and 1.0
    assert s["wer_source"] == 0.0 and s["wer_limit"] == pytest.approx(0.1)  # a.wav counted once
    assert s["dnsmos_ovrl_output"] == pytest.approx(1.5)
    assert s["dnsmos_ovrl_source"] == pytest.approx(3.5)         # a.wav once, c.wav once
    assert (s["wer_scored"], s["wer_unscored"]) == (2, 1)


def test_missing_eval_extra_is_one_line_not_a_traceback(monkeypatch):
    for name in ("pocketsphinx", "speechmos"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    listener = Listener()
    assert not listener.active
    assert listener.skipped.count("\n") == 0
    assert "pocketsphinx" in listener.skipped and "speechmos" in listener.skipped
    assert listener(np.zeros(16000, np.float32), 16000, "some words") == Heard()


class _CountingJudges:
    """Stand-ins for the recogniser and DNSMOS: deterministic figures from the waveform, and a
    count of how often each judge was asked."""

    def __init__(self, version="v1"):
        self.calls = 0
        self.version = ("no-such-package", version)

    def __call__(self, wav, sample_rate, reference=None):
        from types import SimpleNamespace
        self.calls += 1
        level = float(np.abs(wav).mean())
        if reference is None:  # DNSMOS's call
            return SimpleNamespace(ovrl=1 + level, sig=2.0, bak=3.0, p808=float("nan"), seconds=0.1)
        errors = SimpleNamespace(reference=len(words(reference)), errors=1)
        return SimpleNamespace(seconds=0.1, errors=errors, wer=1 / errors.reference, hypothesis="x", oov=())


def _listener_with(judges, cache):
    listener = Listener(asr=False, quality=False, cache=cache)
    listener.recognizer, listener.dnsmos = judges, judges
    return listener


def test_the_cache_of_heard_utterances_hears_each_waveform_and_text_once(tmp_path):
    """A second Listener with the same cache folder hears nothing again and returns what the
    first heard; another text, another waveform or another judge version is heard anew."""
    wav = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)
    first = _CountingJudges()
    a = _listener_with(first, tmp_path)(wav, 8000, "the cat sat")
    assert first.calls == 2  # ASR and DNSMOS once each
    again = _CountingJudges()
    listener = _listener_with(again, tmp_path)
    assert listener(wav, 8000, "the cat sat") == a and again.calls == 0 and listener.cache_hits == 1
    assert a.wer == pytest.approx(1 / 3) and a.p808 is None  # NaN → None survives the round trip
    listener(wav, 8000, "the cat sat down")
    listener(wav * 0.5, 8000, "the cat sat")
    assert again.calls == 4
    newer = _CountingJudges("v2")
    _listener_with(newer, tmp_path)(wav, 8000, "the cat sat")
    assert newer.calls == 2
    uncached = _CountingJudges()
    _listener_with(uncached, None)(wav, 8000, "the cat sat")
    assert uncached.calls == 2


def test_benchmark_tool_reads_off_the_bars():
    spec = importlib.util.spec_from_file_location(
        "eval_conversions", pathlib.Path(__file__).resolve().parents[1] / "tools" / "eval_conversions.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    from dataclasses import asdict

    def item(src, spk, out_wer, out_ovrl):
        h = {"output": heard(out_wer, 10, out_ovrl), "source": heard(0.05, 10, 3.2), "limit": heard(0.1, 10, 3.0)}
        return {"source": src, "source_speaker": spk, "heard": {k: asdict(v) for k, v in h.items()}}
    conv = [item("a.wav", "p225", 0.3, 2.0), item("b.wav", "p999", 0.1, 2.6)]
    resyn = [item("a.wav", "p225", 0.1, 2.8)]
    g = tool.listener_groups(conv, resyn, {"p225"})
    assert set(g) == {"all", "training speakers", "held-out speakers"}
    seen, unseen = g["training speakers"]["checks"], g["held-out speakers"]["checks"]
    assert seen == {"resynthesis_wer_le_conversion": True, "resynthesis_ovrl_ge_conversion": True,
                    "conversion_wer_le_limit_plus_margin": False, "conversion_ovrl_ge_min": False}
    assert unseen["conversion_wer_le_limit_plus_margin"] is True and unseen["conversion_ovrl_ge_min"] is True
    assert unseen["resynthesis_wer_le_conversion"] is None  # no resyntheses of held-out speakers
    assert g["all"]["conversion"]["wer"] == pytest.approx(0.2)
    assert "held-out speakers (1 pairs)" in tool.format_groups(g)


# ------------------------------------------------------------------------ end to end
def test_evaluate_reports_what_a_listener_hears(small_corpus, tmp_path):
    pytest.importorskip("resemblyzer")
    from audiovq.data.manifest import Manifest
    _, prepared = small_corpus
    manifest = Manifest.load(prepared)
    utt = manifest.split("test")[0]
    src = manifest.audio_path(utt)
    out = tmp_path / "out.wav"
    x = audio.load(src, 16000)
    audio.save(out, with_noise(x, 10.0), 16000)  # a stand-in "conversion": the source in noise
    user_src = tmp_path / "mine.wav"             # a user's file with its transcript beside it
    audio.save(user_src, x, 16000)
    (tmp_path / "mine.txt").write_text(utt.text)
    items = [Conversion(str(src), "p225", str(out), utt.speaker, utt.id),
             Conversion(str(user_src), "p226", str(out), None, None)]
    model = small_model(0.85)
    report = evaluate(model, items, manifest)
    s = report["summary"]
    listener = Listener()
    if not listener.active:
        assert "listener measures skipped" in s["listener_skipped"]
        return
    for kind in ("output", "source", "limit"):
        assert f"dnsmos_ovrl_{kind}" in s and f"wer_{kind}" in s
        assert set(report["items"][0]["heard"][kind]) >= {"wer", "words", "hypothesis", "ovrl", "sig", "bak"}
    if listener.recognizer is not None:
        assert s["wer_scored"] == 2 and report["items"][1]["heard"]["output"]["words"] == len(words(utt.text))
    table = format_report(report)
    assert "WER" in table and "DNSMOS OVRL" in table
    write_json(tmp_path / "evaluation.json", report)
    assert "NaN" not in (tmp_path / "evaluation.json").read_text()


def test_transcripts_come_from_the_manifest_a_side_file_or_the_vctk_layout(tmp_path):
    from audiovq.evaluate.listener import transcript

    wav = tmp_path / "vctk" / "wav48_silence_trimmed" / "p248" / "p248_003_mic1.flac"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"")
    (tmp_path / "vctk" / "txt" / "p248").mkdir(parents=True)
    (tmp_path / "vctk" / "txt" / "p248" / "p248_003.txt").write_text("Please call Stella.\n")
    assert transcript(str(wav), "p248_003", {"p248_003": "From the manifest."}) == "From the manifest."
    assert transcript(str(wav), None, {}) == "Please call Stella."          # VCTK's txt/ tree
    wav.with_suffix(".txt").write_text("Beside the file.")
    assert transcript(str(wav), None, {}) == "Beside the file."            # a .txt beside wins over txt/
    assert transcript(str(tmp_path / "elsewhere.wav"), None, {}) is None
