"""One process builds and prepares the embedded corpus when several want it at once: torchrun
ranks (real runs from an empty data folder), a run finding a folder another still writes, and
a run finding the leftovers of a preparer killed with SIGKILL (compared with a clean build)."""
import os
import signal
import subprocess
import sys

import pytest

from audiovq.data.manifest import Manifest
from audiovq.data.vctk import prepare
from audiovq.filelock import folder_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDING, PREPARING, WAITING = "building the embedded corpus", "preparing ", "waiting for another process"

# Calls ensure_prepared as train_vqvae does (progress on rank 0 only). With KILL_AT=stage:n it
# SIGKILLs itself after n utterances of "synthesis" or n journalled files of "preparation",
# first printing the ids of its pool workers (orphans the test ends).
WORKER = '''
import multiprocessing, os, signal, sys
from audiovq.config import load_config
from audiovq.corpus import ensure_prepared
from audiovq.data import synthetic, vctk

def killing(f, n):
    done = [0]
    def wrapped(*args):
        result = f(*args)
        done[0] += 1
        if done[0] == n:
            print("children", *[c.pid for c in multiprocessing.active_children()], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

if os.environ.get("KILL_AT"):
    stage, n = os.environ["KILL_AT"].split(":")
    if stage == "synthesis":
        synthetic._make_utterance = killing(synthetic._make_utterance, int(n))
    else:
        vctk._Journal.record = killing(vctk._Journal.record, int(n))
print("ready", flush=True)
m = ensure_prepared(load_config("vqvae", sys.argv[1:]).data, progress=os.environ.get("RANK", "0") == "0")
missing = [u.id for u in m.utterances if not m.audio_path(u).is_file()]
print(f"loaded {len(m.utterances)} utterances from {m.root}; missing {len(missing)}", flush=True)
'''
TINY = ["data.embedded_flite=false", "data.embedded_speakers=2", "data.embedded_utterances=2", "data.sample_rate=8000"]
SMALL = ["data.embedded_flite=false", "data.embedded_speakers=4", "data.embedded_utterances=8", "data.sample_rate=16000"]  # = small_corpus


@pytest.fixture
def worker(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return path


def env(data_home, **extra):
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "KILL_AT")}
    e.update(AUDIOVQ_DATA=str(data_home), PYTHONPATH=REPO, **extra)
    return e


def torchrun(script, data_home, *args, timeout=180):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(data_home), cwd=REPO)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res.stdout


def run_worker(worker, data_home, *args, **extra):
    res = subprocess.run([sys.executable, str(worker), *args], capture_output=True, text=True, timeout=180,
                         env=env(data_home, **extra), cwd=REPO)
    return res


def same_corpus(prepared, reference):
    """Same utterances, lengths, splits and audio bytes as the reference preparation."""
    a, b = Manifest.load(prepared), Manifest.load(reference)
    assert [(u.id, u.num_samples, u.split) for u in a.utterances] == \
           [(u.id, u.num_samples, u.split) for u in b.utterances]
    for u in a.utterances:
        assert a.audio_path(u).read_bytes() == b.audio_path(u).read_bytes(), u.id


@pytest.mark.parametrize("attempt", [0, pytest.param(1, marks=pytest.mark.slow),
                                     pytest.param(2, marks=pytest.mark.slow)])  # the race was intermittent
def test_two_torchrun_ranks_build_an_empty_data_folder_once(tmp_path, worker, attempt):
    out = torchrun(worker, tmp_path / "data", *TINY)
    assert out.count(BUILDING) == 1 and out.count(PREPARING) == 1, out
    assert WAITING not in out, out  # rank 1 waits silently; rank 0 is the one that builds
    assert out.count("loaded 4 utterances") == 2 and "missing 0" in out, out


@pytest.mark.slow
def test_the_recipe_under_torchrun_prepares_once(tmp_path):
    """The issue's command: recipes/vctk/train.py on 2 ranks from an empty folder, three times."""
    model = ["model.encoder.layers=3", "model.encoder.channels=8", "model.quantizer.codebook_size=8",
             "model.quantizer.dim=4", "model.decoder.residual_channels=4", "model.decoder.gate_channels=8",
             "model.decoder.skip_channels=8", "model.decoder.layers_per_cycle=2", "model.decoder.cycles=1",
             "model.decoder.cond_channels=4", "model.decoder.speaker_dim=2"]
    for attempt in range(3):
        train = ["data.segment=256", "data.val_segments=2", "train.steps=1", "train.batch_size=2",
                 "train.val_every=0", "train.listen=false", "train.device=cpu", "train.threads=1",
                 "train.warmup=0", f"train.run_dir={tmp_path / f'run{attempt}'}"]
        out = torchrun("recipes/vctk/train.py", tmp_path / f"data{attempt}", *TINY, *model, *train)
        assert out.count(BUILDING) == 1 and out.count(PREPARING) == 1, out
        assert "stopped at step 1" in out, out


def test_a_run_waits_for_a_folder_another_process_is_writing(tmp_path, worker, small_corpus):
    corpus, reference = small_corpus
    prepared = tmp_path / "prepared"
    args = [f"data.root={corpus}", f"data.prepared={prepared}", "data.sample_rate=16000"]
    with folder_lock(prepared):  # this test is the other run, still writing
        p = subprocess.Popen([sys.executable, str(worker), *args], stdout=subprocess.PIPE, text=True,
                             env=env(tmp_path), cwd=REPO)
        try:
            assert p.stdout.readline() == "ready\n"
            assert p.stdout.readline().startswith(WAITING)  # blocked on the lock; now finish the folder
            prepare(corpus, prepared, sample_rate=16000, workers=1, progress=False)
        except BaseException:
            p.kill()
            raise
    rest = p.stdout.read()
    assert p.wait(timeout=120) == 0
    assert rest == f"loaded 32 utterances from {prepared}; missing 0\n"  # read, not prepared again
    same_corpus(prepared, reference)


def test_a_torchrun_rank_that_is_not_the_builder_waits_for_the_manifest(tmp_path, worker, small_corpus):
    corpus, reference = small_corpus
    prepared = tmp_path / "prepared"
    args = [f"data.root={corpus}", f"data.prepared={prepared}", "data.sample_rate=16000"]
    p = subprocess.Popen([sys.executable, str(worker), *args], stdout=subprocess.PIPE, text=True,
                         env=env(tmp_path, RANK="1", LOCAL_RANK="1"), cwd=REPO)
    try:
        assert p.stdout.readline() == "ready\n"
        prepare(corpus, prepared, sample_rate=16000, workers=1, progress=False)  # as its local rank 0
    except BaseException:
        p.kill()
        raise
    assert p.wait(timeout=120) == 0
    assert p.stdout.read() == f"loaded 32 utterances from {prepared}; missing 0\n"


@pytest.mark.parametrize("kill_at", ["synthesis:5", "preparation:5"])
def test_leftovers_of_a_killed_builder_are_rebuilt_not_read(tmp_path, worker, small_corpus, kill_at):
    home = tmp_path / "data"
    killed = run_worker(worker, home, *SMALL, KILL_AT=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    orphans = [int(pid) for line in killed.stdout.splitlines() if line.startswith("children")
               for pid in line.split()[1:]]
    try:  # the killed run's pool workers may outlive it; they must not keep the lock
        again = run_worker(worker, home, *SMALL)
    finally:
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count(BUILDING) == (kill_at.startswith("synthesis"))
    assert again.stdout.count(PREPARING) == 1 and "loaded 32 utterances" in again.stdout, again.stdout
    same_corpus(home / "embedded-4x8-seed0" / "prepared-16000", small_corpus[1])
