"""Streaming conversion: the decoder's output a block at a time equals the one-shot output
sample for sample; `convert` writes as it generates and equals the one-shot pipeline; an
interrupted batch (SIGINT/SIGTERM to a real process) keeps exactly its finished files, and a
re-run does only the rest."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from audiovq import audio
from audiovq.codes import encode_utterances
from audiovq.convert import convert, match_loudness
from audiovq.filelock import folder_lock
from audiovq.generate import generate
from audiovq.nn.decoders.windows import UpsampledCodes, WindowedCodes, codes_context
from audiovq.generate.engine import stream
from audiovq.models import load_vqvae

from test_cli import run_cli, untrained_checkpoint
from test_generate import small_vqvae

LENGTHS = {True: [3000, 970, 2100], False: [700, 250, 520]}  # fast path, PyTorch path (slow)


def streamed(model, indices, speaker, lengths, block, **kw):
    parts = [[] for _ in lengths]
    starts = []
    for b in stream(model, indices, speaker, lengths, block=block, **kw):
        starts.append(b.start)
        for p, a in zip(parts, b.audio):
            p.append(a)
    assert starts == sorted(set(starts)) and starts[0] == 0
    return [np.concatenate(p) for p in parts]


@pytest.mark.parametrize("upsample", ["transposed", "repeat"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "torch"])
def test_stream_equals_one_shot(monkeypatch, upsample, fast):
    """Blocks of several sizes (one not a multiple of the hop; they are rounded up to whole
    chunks of 256 steps), a batch of three lengths, windows of context smaller than a block."""
    monkeypatch.setattr(WindowedCodes, "WINDOW", 5)  # many context windows (reach: 2 frames)
    model = small_vqvae(upsample)
    g = torch.Generator().manual_seed(6)
    lengths = LENGTHS[fast]
    indices = torch.randint(0, 16, (3, -(-max(lengths) // model.hop)), generator=g)
    speaker = torch.tensor([2, 0, 1])
    one = generate(model, indices, speaker, lengths, temperature=0.8, seed=5, fast=fast)
    assert 301 % model.hop and 1001 % model.hop
    for block in (301, 1001, 4096) if fast else (1, 301):
        got = streamed(model, indices, speaker, lengths, block, temperature=0.8, seed=5, fast=fast)
        for b, n in enumerate(lengths):
            assert got[b].shape == (n,) and np.array_equal(got[b], one.audio[b]), (block, b)


@pytest.mark.parametrize("upsample", ["transposed", "repeat"])
def test_windowed_context_equals_whole_context(monkeypatch, upsample):
    """The context computed a window of frames at a time (with a margin) is the whole-file
    context of each item's own frames, up to float rounding."""
    monkeypatch.setattr(WindowedCodes, "WINDOW", 3)
    model = small_vqvae(upsample)
    g = torch.Generator().manual_seed(2)
    F, frames = 40, [40, 17, 29]
    indices = torch.randint(0, 16, (3, F), generator=g)
    with torch.no_grad():
        whole = UpsampledCodes(model.decoder.conditioner, codes_context(model.decoder.conditioner,
                                                                model.quantizer.lookup(indices), frames))
        windowed = WindowedCodes(model.decoder.conditioner, model.quantizer, indices, frames)
        n = F * model.hop // whole.hold
        for b0 in range(0, n, 37):
            a, w = whole.blocks(b0, b0 + 37, [0, 1, 2]), windowed.blocks(b0, b0 + 37, [0, 1, 2])
            assert a.shape == w.shape and (a - w).abs().max() < 1e-5


# ----------------------------------------------------------------- convert, files

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small untrained 16 kHz checkpoint and a folder of sources of different lengths."""
    d = tmp_path_factory.mktemp("stream")
    ckpt = untrained_checkpoint(d / "model.pt", ["p225", "p226", "p227"])
    rng = np.random.default_rng(0)
    (d / "src").mkdir()
    for k, seconds in enumerate([1.0, 2.0, 4.0, 16.0]):  # the last one leaves time to interrupt
        t = np.arange(int(seconds * 16000)) / 16000
        x = 0.3 * np.sin(2 * np.pi * (140 + 30 * k) * t) + 0.03 * rng.standard_normal(t.size)
        sf.write(d / "src" / f"u{k}.wav", x.astype(np.float32), 16000)
    return d, ckpt


def test_convert_equals_the_one_shot_pipeline(setup, tmp_path):
    """Streamed writing with the two-pass loudness match = generate the whole output, match
    its loudness, save: the same 16-bit samples (the level's sum of squares is added in
    another order, so at most one step of 16 bits apart)."""
    d, ckpt = setup
    m = load_vqvae(ckpt)
    src = d / "src" / "u2.wav"
    done, rtf = convert(m, [src], ["p226"], tmp_path / "out", seed=3, progress=False, block=5000)
    assert len(done) == 1 and rtf > 0 and not done[0].skipped
    wav = audio.load(src, 16000)
    codes = encode_utterances(m.model, [wav], progress=False)[0]
    res = generate(m.model, torch.from_numpy(codes)[None], torch.tensor([1]), [wav.size], seed=3)
    audio.save(tmp_path / "ref.wav", match_loudness(res.audio[0], wav), 16000)
    got, _ = sf.read(done[0].output, dtype="int16")
    ref, _ = sf.read(tmp_path / "ref.wav", dtype="int16")
    assert got.shape == ref.shape == (wav.size,)
    assert np.abs(got.astype(int) - ref).max() <= 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["conversions.json", "u2_to_p226.wav"]


def test_a_rerun_with_other_settings_redoes_the_outputs(setup, tmp_path):
    """Finished outputs are kept only for the same checkpoint, seed, temperature and weight
    precision; the listing records them."""
    d, ckpt = setup
    m = load_vqvae(ckpt)
    src, out = d / "src" / "u0.wav", tmp_path / "out"
    first, _ = convert(m, [src], ["p226"], out, seed=3, progress=False, precision="int8")
    again, _ = convert(m, [src], ["p226"], out, seed=3, progress=False, precision="int8")
    other, _ = convert(m, [src], ["p226"], out, seed=3, progress=False)
    assert [c.skipped for c in first + again + other] == [False, True, False]
    listing = json.loads((out / "conversions.json").read_text())
    assert (listing["precision"], listing["seed"], len(listing["items"])) == ("float32", 3, 1)


def test_temporary_files_of_a_killed_run_are_removed_and_a_live_ones_kept(setup, tmp_path):
    """A killed run's temporary output (no process holds its lock) goes on the next run; one
    another process is still writing stays."""
    d, ckpt = setup
    out = tmp_path / "out"
    out.mkdir()
    stale, live = out / ".u0_to_p226.dead.raw.tmp", out / ".u0_to_p226.live.raw.tmp"
    stale.write_bytes(b"\0" * 64)
    live.write_bytes(b"\0" * 64)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               f"f = open({str(live)!r}, 'rb+'); fcntl.lockf(f, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        done, _ = convert(load_vqvae(ckpt), [d / "src" / "u0.wav"], ["p226"], out, progress=False)
        assert not stale.exists() and live.exists() and done[0].output.is_file()
    finally:
        holder.kill()
        holder.wait()


def test_loudness_match_block_by_block_equals_whole():
    """`LoudnessMatch` from the whole output's level and peak, applied per block = applied to
    the whole (both the plain gain and the peak-limited case)."""
    from audiovq.convert import LoudnessMatch
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(10_000)).astype(np.float32)
    for reference in (0.05 * rng.standard_normal(8000), 2.0 * rng.standard_normal(8000)):
        whole = match_loudness(y, reference)
        scale = LoudnessMatch(audio.loudness_db(reference), audio.loudness_db(y), float(np.abs(y).max()))
        blocks = np.concatenate([scale(y[i:i + 777]) for i in range(0, y.size, 777)])
        assert np.array_equal(blocks, whole)
    assert np.abs(whole).max() <= 0.999  # the loud reference needed the peak limit


# ------------------------------------------------------------- interrupt, re-run

def run_convert(d, ckpt, out, *extra, **kw):
    cmd = [sys.executable, "-m", "audiovq.cli", "convert", "--src", str(d / "src"), "--speaker", "p225",
           "--checkpoint", str(ckpt), "--out", str(out), "-q", *extra]
    # a shell may start background jobs with SIGINT ignored: the child gets the default
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def listed(out):
    return sorted(os.path.basename(i["output"]) for i in json.loads((out / "conversions.json").read_text())["items"])


def interrupt_after_first_output(d, ckpt, out, signum):
    """Run `audiovq convert` on the four sources; signal it once the shortest is written."""
    proc = run_convert(d, ckpt, out)
    deadline = time.time() + 120
    while not (out / "u0_to_p225.wav").is_file():  # the 1 s source finishes first
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "audiovq: interrupted"
    names = sorted(p.name for p in out.iterdir())
    finished = [n for n in names if n.endswith(".wav")]
    assert names == ["conversions.json"] + finished  # no temporary or partial file
    assert listed(out) == finished and "u0_to_p225.wav" in finished and "u3_to_p225.wav" not in finished
    for n in finished:  # complete files: the source's length
        assert sf.info(str(out / n)).frames == sf.info(str(d / "src" / n.replace("_to_p225", ""))).frames
    return finished


def test_sigint_keeps_finished_files_and_rerun_does_the_rest(setup, tmp_path, capsys):
    """Ctrl-C in a real process; then the same command (in this process, to save a start-up)
    converts only the rest, and --overwrite redoes all."""
    d, ckpt = setup
    out = tmp_path / "out"
    finished = interrupt_after_first_output(d, ckpt, out, signal.SIGINT)
    stamps = {n: (out / n).stat().st_mtime_ns for n in finished}
    args = ["convert", "--src", d / "src", "--speaker", "p225", "--checkpoint", ckpt, "--out", out, "-q"]
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0, err
    assert f"{4 - len(finished)} conversion(s)" in stdout and f"{len(finished)} finished earlier, skipped" in stdout
    assert {n: (out / n).stat().st_mtime_ns for n in finished} == stamps  # not rewritten
    everything = [f"u{k}_to_p225.wav" for k in range(4)]
    assert listed(out) == everything and sorted(p.name for p in out.iterdir()) == ["conversions.json"] + everything
    code, stdout, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0 and "4 conversion(s)" in stdout and "skipped" not in stdout, err
    assert all((out / n).stat().st_mtime_ns > stamps[n] for n in finished) and listed(out) == everything


def test_a_second_run_into_the_folder_waits_then_does_the_rest(setup, tmp_path):
    """Two runs never write one folder at once: while another process holds the folder, a run
    waits (saying so), then converts only what the first did not finish; no lock file stays."""
    d, ckpt = setup
    out = tmp_path / "out"
    convert(load_vqvae(ckpt), [d / "src" / "u0.wav"], ["p225"], out, progress=False)  # "the first run"
    with folder_lock(out / ".conversions"):  # the first run, still holding the folder
        cmd = [sys.executable, "-m", "audiovq.cli", "convert", "--src", str(d / "src" / "u0.wav"), "--src",
               str(d / "src" / "u1.wav"), "--speaker", "p225", "--checkpoint", str(ckpt), "--out", str(out)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().startswith("waiting for another process to finish")
        assert not (out / "u1_to_p225.wav").exists()
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "1 conversion(s)" in stdout and "1 finished earlier, skipped" in stdout
    assert listed(out) == ["u0_to_p225.wav", "u1_to_p225.wav"]
    assert sorted(p.name for p in out.iterdir()) == ["conversions.json", "u0_to_p225.wav", "u1_to_p225.wav"]


@pytest.mark.slow
def test_sigterm_is_handled_as_sigint(setup, tmp_path):
    d, ckpt = setup
    interrupt_after_first_output(d, ckpt, tmp_path / "out", signal.SIGTERM)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_sources_are_encoded_a_window_at_a_time_as_whole(setup, tmp_path, rate):
    """Codes and level of a source read in windows = `encode_utterances` of the whole file
    loaded at once (resampled: the codes may differ where rounding moves a frame across a
    code boundary, which these signals do not hit)."""
    from audiovq.convert import _encode_source
    from audiovq.nn.vqvae import ENCODE_CHUNK
    d, ckpt = setup
    model = load_vqvae(ckpt).model
    rng = np.random.default_rng(3)
    x = 0.3 * np.sin(np.arange(int(5.3 * rate)) * 0.05) + 0.05 * rng.standard_normal(int(5.3 * rate))
    sf.write(tmp_path / "x.wav", x.astype(np.float32), rate)
    got = _encode_source(model, tmp_path / "x.wav")
    wav = audio.load(tmp_path / "x.wav", 16000)
    assert got.samples == wav.size > 2 * ENCODE_CHUNK
    assert np.array_equal(got.codes, encode_utterances(model, [wav], progress=False)[0])
    assert got.level_db == pytest.approx(audio.loudness_db(wav), abs=1e-9)
