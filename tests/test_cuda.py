"""What runs on a GPU: AMP training, DDP over nccl, generation with a CUDA graph.

Tests marked `cuda` are skipped without a CUDA device (tools/gpu_check.sh runs them on one).
The unmarked ones run everywhere: the graph-ready step (`cuda_graph.StaticSteps`, static
buffers and device-side step counters) run eagerly against the plain `TorchStack.step`
loop, its fall-back when capture fails, and gpu_check.sh up to "no CUDA device".
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import warnings

import pytest
import torch

from audiovq.config import load_config
from audiovq.data.datasets import AudioBatch
from audiovq.errors import AudioVQError
from audiovq.generate import generate, generate_wavenet, teacher_forced_logits
from audiovq.generate.cuda_graph import StaticSteps
from audiovq.generate.incremental import TorchStack
from audiovq.nn.sampling import CATEGORICAL, SamplerSpec
from audiovq.nn.vqvae import AudioVQVAE
from test_generate import small_vqvae, small_wavenet

ROOT = pathlib.Path(__file__).resolve().parent.parent
T = 300  # more than one chunk of 256 steps, many ring-buffer wraps
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def graph_mode(monkeypatch, mode: str) -> None:
    monkeypatch.setenv("AUDIOVQ_CUDA_GRAPH", mode)


def wavenet_inputs(local=5, glob=3, B=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 40, (B, T), generator=g)
    loc = torch.randn(B, local, T, generator=g) if local else None
    glo = torch.randn(B, glob, generator=g) if glob else None
    return inputs, loc, glo


# ------------------------------------------------------- the graph-ready step on the CPU

@pytest.mark.parametrize("kernel", [2, 3])
def test_static_steps_give_the_plain_step_logits(kernel):
    """StaticSteps (positions looked up on the device from step counters, in chunks of 128
    steps) against TorchStack.step called with t, for 300 teacher-forced steps."""
    net = small_wavenet(local=5, glob=3, kernel=kernel)
    inputs, _, _ = wavenet_inputs()
    B, L, G = 3, len(net.layers), net.layers[0].conv.out_channels
    cond = torch.randn(B, T, L, G, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = TorchStack(net, B)
        want = torch.stack([plain.step(t, inputs[:, t], cond[:, t]) for t in range(T)], 1)
        static = StaticSteps(TorchStack(net, B), SamplerSpec(CATEGORICAL, 1.0), 0, forced=True, keep_logits=True)
        got = []
        for t0 in range(0, T, 128):
            n = min(128, T - t0)
            rows = torch.zeros(B, 128, L, G)
            rows[:, :n] = cond[:, t0:t0 + n]
            got.append(static.run(t0, n, rows, 1, torch.zeros(B, n, 1), inputs[:, t0:t0 + n]).logits.clone())
    assert torch.equal(torch.cat(got, 1), want)


@pytest.mark.parametrize("local,glob,kernel", [(0, 0, 2), (5, 3, 3)], ids=["none", "both-kernel3"])
def test_static_steps_match_the_plain_loop_and_forward(monkeypatch, local, glob, kernel):
    """The whole PyTorch path with the graph-ready step (eager here): the plain loop's
    logits exactly, the parallel forward's to float precision, and the same samples."""
    net = small_wavenet(local=local, glob=glob, kernel=kernel)
    inputs, loc, glo = wavenet_inputs(local, glob)
    out = {}
    for mode in ("off", "on"):
        graph_mode(monkeypatch, mode)
        out[mode] = (teacher_forced_logits(net, inputs, loc, glo, fast=False),
                     generate_wavenet(net, [T, 200, 7], loc, glo, seed=3, fast=False).values)
    assert torch.equal(out["on"][0], out["off"][0])
    with torch.no_grad():
        assert (out["on"][0] - net(inputs, loc, glo)).abs().max() < 1e-4
    for a, b in zip(*(out[m][1] for m in ("on", "off"))):
        assert (a == b).all()


@pytest.mark.parametrize("upsample,output", [("transposed", "categorical"), ("repeat", "logistic_mixture")])
def test_static_steps_decode_like_the_plain_loop(monkeypatch, upsample, output):
    """Decoder generation (per-sample or per-frame conditioning rows, both samplers)."""
    model = small_vqvae(upsample, output)
    indices = torch.randint(0, 16, (2, 40), generator=torch.Generator().manual_seed(4))
    lengths = [40 * model.hop, 33 * model.hop - 5]
    audio = {}
    for mode in ("off", "on"):
        graph_mode(monkeypatch, mode)
        audio[mode] = generate(model, indices, torch.tensor([0, 2]), lengths, fast=False, seed=4).audio
    for a, b in zip(audio["on"], audio["off"]):
        assert a.shape == b.shape and (a == b).all()


def test_failed_capture_falls_back_to_the_eager_step(monkeypatch):
    """A capture that raises warns once and computes what the eager steps compute."""
    net = small_wavenet()
    inputs, _, _ = wavenet_inputs(0, 0)
    spec = SamplerSpec(CATEGORICAL, 1.0)
    rows = net.layers[0].conv.bias.new_zeros(3, 1, len(net.layers), net.layers[0].conv.out_channels)
    u = torch.rand(3, 100, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eager = StaticSteps(TorchStack(net, 3), spec, 0, forced=False, keep_logits=True)
        want = eager.run(0, 100, rows, 1 << 62, u, None)
        failing = StaticSteps(TorchStack(net, 3), spec, 0, forced=False, keep_logits=True)
        failing.capture = True

        def refuse(*args, **kwargs):
            raise RuntimeError("no capture here")
        monkeypatch.setattr(torch.cuda, "Stream", refuse)
        with pytest.warns(UserWarning, match="CUDA graph capture failed"):
            got = failing.run(0, 100, rows, 1 << 62, u, None)
    assert failing.graph is None and not failing.capture
    assert torch.equal(got.logits, want.logits) and torch.equal(got.classes, want.classes)


@pytest.mark.parametrize("lengths", [[T, 200, 7], [2]], ids=["chunks", "shorter-than-warm-up"])
def test_capture_and_replay_logic_with_a_stand_in_graph(monkeypatch, lengths):
    """The capture sequence on the CPU, with stand-ins for the CUDA stream and graph (the
    warm-up runs steps for real, the "capture" runs one, "replay" runs `step`): the state
    they change is put back, so the samples are the plain loop's."""
    import contextlib
    from audiovq.generate import cuda_graph

    made = []

    class Stream:
        def __init__(self, *args, **kwargs):
            pass

        def wait_stream(self, other):
            pass

    class Graph:
        def replay(self):
            made[-1].step()

    class Steps(StaticSteps):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.capture = True
            made.append(self)

    for name, value in [("Stream", Stream), ("current_stream", lambda *a: Stream()), ("CUDAGraph", Graph),
                        ("stream", lambda s: contextlib.nullcontext()),
                        ("graph", lambda g: contextlib.nullcontext())]:
        monkeypatch.setattr(torch.cuda, name, value)
    monkeypatch.setattr(cuda_graph, "StaticSteps", Steps)
    monkeypatch.setattr("audiovq.generate.incremental.StaticSteps", Steps)
    net = small_wavenet(glob=3)
    glo = torch.randn(len(lengths), 3, generator=torch.Generator().manual_seed(1))
    out = {}
    for mode in ("off", "on"):
        graph_mode(monkeypatch, mode)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="CUDA graph capture failed")
            out[mode] = generate_wavenet(net, lengths, glob=glo, seed=3, fast=False).values
    assert made and all(isinstance(m.graph, Graph) for m in made)
    for a, b in zip(out["on"], out["off"]):
        assert (a == b).all()


def test_bad_graph_mode_is_refused(monkeypatch):
    graph_mode(monkeypatch, "sometimes")
    with pytest.raises(AudioVQError, match="AUDIOVQ_CUDA_GRAPH"):
        teacher_forced_logits(small_wavenet(), torch.zeros(1, 5, dtype=torch.int64), fast=False)


def test_gpu_check_says_no_cuda_device_and_exits_0():
    """tools/gpu_check.sh on a machine without CUDA (hidden from it where there is one)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHON=sys.executable)
    res = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "no CUDA device: nothing to check" in res.stdout
    assert f"torch {torch.__version__}" in res.stdout


# ------------------------------------------------------------------------ on a GPU

def tiny_config(tmp_path, *extra):
    return load_config("vqvae", [
        "model.encoder.layers=6", "model.encoder.channels=16", "model.quantizer.codebook_size=16",
        "model.quantizer.dim=8", "model.quantizer.kmeans_iters=0", "model.quantizer.restart_after=0",
        "model.decoder.residual_channels=8", "model.decoder.gate_channels=16", "model.decoder.skip_channels=16",
        "model.decoder.layers_per_cycle=3", "model.decoder.cond_channels=8", "model.decoder.speaker_dim=4",
        "data.sample_rate=16000", "data.segment=256", "train.batch_size=4", f"train.run_dir={tmp_path}/run",
        "train.ckpt_every=1000", "train.val_every=0", "train.log_every=1", "train.warmup=0", *extra])


def next_batch(g, part):
    wav = torch.sin(torch.rand(4, 1, generator=g) * 0.3 * torch.arange(256)) * torch.rand(4, 1, generator=g)
    return AudioBatch(wav[part], torch.randint(2, (4,), generator=g)[part])


AMP_RTOL = 0.02  # bf16 keeps 8 bits of mantissa (fp16 11): the loss of one step within 2 %


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("half", ["bf16", "fp16"])
def test_amp_training_step_matches_float32(tmp_path, monkeypatch, half):
    """The Trainer's first step under autocast (fp16: with the GradScaler) gives the float32
    loss within AMP_RTOL; four steps leave finite weights that moved (the GradScaler may
    skip its first steps while it finds its scale)."""
    from audiovq.train import Trainer, setup
    if half == "fp16":  # the Trainer takes bf16 where the GPU has it
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    losses = {}
    for amp in (False, True):
        cfg = tiny_config(tmp_path / f"amp{amp}", "train.steps=4", f"train.amp={str(amp).lower()}")
        torch.manual_seed(0)
        model = AudioVQVAE(cfg.model, 2, 16000)
        before = [p.detach().clone() for p in model.parameters()]
        losses[amp] = []

        def scalars(out, seen=losses[amp]):  # every step (train.log_every=1)
            seen.append(float(out.loss.detach()))
            return out.scalars(250.0)
        trainer = Trainer(cfg.train, model, kind="vqvae", config={}, extra={}, next_batch=next_batch,
                          scalars=scalars, dist_info=setup("cuda"))
        assert trainer.use_amp == amp and trainer.amp_dtype == (torch.bfloat16 if half == "bf16" else torch.float16)
        assert trainer.scaler.is_enabled() == (amp and half == "fp16")
        trainer.fit()
        after = list(model.parameters())
        assert all(torch.isfinite(p).all() for p in after)
        assert any(not torch.equal(a.cpu(), b) for a, b in zip(after, before))
    first = {amp: seen[0] for amp, seen in losses.items()}
    assert len(losses[True]) == 4 and abs(first[True] - first[False]) <= AMP_RTOL * abs(first[False]), losses


@pytest.mark.cuda
@cuda
def test_ddp_over_nccl_in_one_process(tmp_path):
    """DistributedDataParallel with nccl, world size 1: the gradients of one step are the
    bare model's (the all-reduce over one rank is the identity)."""
    import torch.distributed as dist
    cfg = tiny_config(tmp_path)
    batch = next_batch(torch.Generator().manual_seed(0), slice(0, 4))
    batch = AudioBatch(*(None if t is None else t.cuda() for t in batch))
    grads = {}
    for wrapped in (False, True):
        torch.manual_seed(0)
        model = AudioVQVAE(cfg.model, 2, 16000).cuda()
        net = model
        if wrapped:
            dist.init_process_group("nccl", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.cuda.current_device()],
                                                            broadcast_buffers=False)
        try:
            torch.manual_seed(1)
            net(*batch).loss.backward()
            grads[wrapped] = {k: p.grad.cpu() for k, p in model.named_parameters() if p.grad is not None}
            if wrapped:
                flag = torch.ones(1, device="cuda")
                dist.all_reduce(flag)
                assert flag.item() == 1.0 and dist.get_backend() == "nccl"
        finally:
            if wrapped:
                dist.destroy_process_group()
    assert grads[True].keys() == grads[False].keys() and grads[False]
    for k, v in grads[False].items():  # (cuDNN's backward may sum in another order)
        assert torch.allclose(grads[True][k], v, atol=1e-6, rtol=1e-4), k


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("upsample,output", [("transposed", "categorical"), ("repeat", "logistic_mixture")])
def test_cuda_teacher_forced_logits_equal_cpu(monkeypatch, upsample, output):
    """Decoder logits on CUDA, with the CUDA graph and the plain loop, equal the CPU's."""
    model = small_vqvae(upsample, output)
    g = torch.Generator().manual_seed(3)
    indices = torch.randint(0, 16, (2, T // model.hop + 1), generator=g)
    inputs = torch.randint(0, 64, (2, T), generator=g)
    speaker = torch.tensor([0, 2])

    with torch.no_grad():
        local, glob = model.decoder.conditioning(model.quantizer.lookup(indices), speaker)
    local = local[..., :T]
    cpu = teacher_forced_logits(model.decoder.network, inputs, local, glob, fast=False)
    decoder = model.decoder.network.cuda()
    graph_mode(monkeypatch, "auto")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="CUDA graph capture failed")
        graphed = teacher_forced_logits(decoder, inputs, local.cuda(), glob.cuda(), fast=False)
    graph_mode(monkeypatch, "off")
    plain = teacher_forced_logits(decoder, inputs, local.cuda(), glob.cuda(), fast=False)
    assert (graphed - cpu).abs().max() < 1e-4
    assert (plain - cpu).abs().max() < 1e-4


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("output", ["categorical", "logistic_mixture"])
def test_cuda_graph_samples_equal_the_plain_loop(monkeypatch, output):
    """Same seed, same samples: the replayed graph runs the plain loop's kernels."""
    model = small_vqvae("transposed", output).cuda()
    indices = torch.randint(0, 16, (3, 200), generator=torch.Generator().manual_seed(4))
    lengths = [200 * model.hop, 90 * model.hop, 300]  # several chunks, items of their own lengths
    audio = {}
    for mode in ("off", "auto"):
        graph_mode(monkeypatch, mode)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="CUDA graph capture failed")
            audio[mode] = generate(model, indices, torch.tensor([0, 1, 2]), lengths, fast=False, seed=7).audio
    for a, b in zip(audio["auto"], audio["off"]):
        assert a.shape == b.shape and (a == b).all()
