"""`kill -9` during training never leaves a corrupt newest checkpoint, and re-running the same
command resumes from it (losing at most one checkpoint interval)."""
import random
import signal
import subprocess
import sys
import time

import pytest

from audiovq import checkpoint as ckpt_io

pytestmark = pytest.mark.slow

ARGS = ["model.encoder.layers=6", "data.sample_rate=16000",  # the rate and hop these tests assume
        "model.encoder.channels=16", "model.quantizer.codebook_size=16", "model.quantizer.dim=8",
        "model.quantizer.warmup_steps=2", "model.decoder.residual_channels=8", "model.decoder.gate_channels=16",
        "model.decoder.skip_channels=16", "model.decoder.layers_per_cycle=3", "model.decoder.cond_channels=8",
        "model.decoder.speaker_dim=4", "data.segment=1024", "train.batch_size=2", "train.ckpt_every=3",
        "train.val_every=0", "train.log_every=1", "train.threads=1"]


def command(corpus, run_dir, steps):
    raw, prepared = corpus
    return [sys.executable, "recipes/vctk/train.py", f"data.root={raw}", f"data.prepared={prepared}",
            f"train.run_dir={run_dir}", f"train.steps={steps}", *ARGS]


def test_kill_9_then_rerun_resumes(small_corpus, tmp_path):
    rng = random.Random(0)
    run = tmp_path / "run"
    for attempt in range(3):  # kill it a few times at random moments once checkpoints exist
        proc = subprocess.Popen(command(small_corpus, run, 400), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while ckpt_io.latest(run) is None or len(ckpt_io.list_checkpoints(run)) < attempt + 1:
            assert proc.poll() is None and time.time() < deadline, "training did not write a checkpoint"
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        newest = ckpt_io.latest(run)
        state = ckpt_io.load(newest, kind="vqvae")  # loads: never a half-written newest file
        assert state.step % 3 == 0 and state.step > 0
        leftovers = [p for p in (run / "checkpoints").iterdir() if not p.name.startswith("step-")]
        # a kill mid-save may leave a temp file; it is never mistaken for a checkpoint
        assert all(p.name.startswith(".") for p in leftovers)
    before = ckpt_io.load(ckpt_io.latest(run)).step
    target = before + 3
    res = subprocess.run(command(small_corpus, run, target), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resuming from" in res.stderr + res.stdout
    assert ckpt_io.load(ckpt_io.latest(run)).step == target
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []
