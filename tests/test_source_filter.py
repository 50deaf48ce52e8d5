"""The source-filter decoder (nn/decoders/source_filter.py): its PyTorch step against its
parallel training pass, the envelope loss reaching the encoder, stable envelopes whatever the
network outputs, and generation through the engine with given or predicted F0."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from audiovq.audio import mu_law_encode
from audiovq.config import load_config
from audiovq.errors import AudioVQError
from audiovq.generate import generate, stream
from audiovq.generate.networks import incremental, step_conditioning
from audiovq.nn.emphasis import preemphasis
from audiovq.nn.lpc import prediction
from audiovq.nn.vqvae import AudioVQVAE

SMALL = ["model.decoder.kind=source_filter", "model.encoder.channels=16", "model.encoder.layers=5",
         "model.quantizer.codebook_size=16", "model.quantizer.dim=8", "model.quantizer.warmup_steps=0",
         "model.quantizer.kmeans_iters=0", "model.decoder.residual_channels=8", "model.decoder.gate_channels=12",
         "model.decoder.skip_channels=10", "model.decoder.layers_per_cycle=3", "model.decoder.cycles=1",
         "model.decoder.cond_channels=8", "model.decoder.speaker_dim=4", "model.decoder.lpc_order=6",
         "model.decoder.preemphasis=0.85"]
SR, HOP = 8000, 32


def model(*extra):
    cfg = load_config("vqvae", SMALL + list(extra))
    torch.manual_seed(0)
    return AudioVQVAE(cfg.model, 3, SR)


def voiced(T=12 * HOP, f0=130.0, seed=0):
    t = torch.arange(T) / SR
    x = sum(torch.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12)) * 0.2
    return (x + 0.01 * torch.randn(T, generator=torch.Generator().manual_seed(seed))).clamp(-1, 1)[None]


def test_the_step_computes_what_the_parallel_pass_does():
    m = model().eval()
    d = m.decoder
    d.sharpen = False  # training has none: `test_sharpening_...` checks it against this step
    wav = voiced()
    T = wav.shape[-1]
    indices = m.encode(wav)
    f0 = torch.full(indices.shape, 130.0)
    with torch.no_grad():
        out = d(wav, m.quantizer.lookup(indices), torch.tensor([1]), pitch=f0)
        inputs = d.step_inputs(m.quantizer, indices, torch.tensor([1]), [indices.shape[1]], pitch=[f0[0].numpy()])
        rows = step_conditioning(d.network, inputs.local, None, 1).rows(0, T)
        steps = incremental(d.network, 1)
        # the true signal's classes, as the parallel pass reads them
        signal = preemphasis(wav, d.preemphasis)
        h, lar, _ = d.frames(m.quantizer.lookup(indices), torch.tensor([1]), f0)
        p = prediction(signal.double(), d.lpc_of(lar), HOP).float().clamp(-1, 1)
        e_cls = mu_law_encode((signal - p).clamp(-1, 1), d.classes)
        silence = d.first_input
        agree, close = 0, 0
        for t in range(T):
            e_prev = torch.tensor([silence if t == 0 else int(e_cls[0, t - 1])])
            logits = steps.step(t, e_prev, rows[:, t // HOP])
            same_p = int(mu_law_encode(steps.p, d.classes)) == int(mu_law_encode(p[0, t:t + 1], d.classes))
            agree += same_p
            if same_p:
                close += torch.allclose(logits[0], out.logits[0, :, t], atol=2e-4, rtol=1e-4)
            # carry on from the true signal (teacher forcing of the step's own state)
            steps.history = torch.cat([steps.history[:, 1:], signal[:, t:t + 1].double()], 1)
            steps.s_prev = mu_law_encode(signal[:, t], d.classes)
    assert agree >= 0.98 * T  # p in float32 one step at a time, float64 in parallel: rare bin flips
    assert close == agree


def test_the_envelope_loss_reaches_the_encoder_and_the_codebook_input():
    m = model()
    wav = torch.cat([voiced(seed=1), voiced(f0=210.0, seed=2)])
    f0 = torch.tensor([[130.0], [210.0]]).expand(2, wav.shape[-1] // HOP)
    vq = m.quantizer(m.encoder(wav))
    out = m.decoder(wav, vq.quantized, torch.tensor([0, 2]), pitch=f0)
    assert {"envelope", "f0_head"} <= set(out.scalars)
    h, lar, log_gain = m.decoder.frames(vq.quantized, torch.tensor([0, 2]), f0)
    (lar.square().mean() + log_gain.square().mean()).backward()
    grads = [p.grad for p in m.encoder.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_any_network_output_is_a_stable_envelope():
    from audiovq.nn.decoders.source_filter import LAR_LIMIT
    lar = (torch.randn(4, 6, 50) * 20).clamp(-LAR_LIMIT, LAR_LIMIT)  # what `frames` can output
    lar[0, :, 0] = LAR_LIMIT  # every reflection coefficient at the limit
    lar[1, :, 0] = torch.tensor([1.0, -1, 1, -1, 1, -1]) * LAR_LIMIT
    a = type(model().decoder).lpc_of(lar)  # float64, as the filters use it
    assert a.dtype == torch.float64
    # stable ⇔ every reflection coefficient of the step-down recursion is inside (−1, 1)
    # (Schur–Cohn; np.roots cannot tell a pole at 1 − 1e-7 from one on the circle)
    import diffsptk
    k = diffsptk.LinearPredictiveCoefficientsToParcorCoefficients(6)(
        torch.cat([torch.ones_like(a[..., :1]), a], -1))[..., 1:]
    assert (k.abs() < 1).all()
    torch.testing.assert_close(k, torch.tanh(lar.transpose(1, 2).double() / 2), atol=1e-3, rtol=0)  # ill-conditioned near ±1


def test_generation_through_the_engine_with_given_or_predicted_f0():
    m = model().eval()
    wav = voiced(T=10 * HOP)
    codes = m.encode(torch.cat([wav, voiced(T=10 * HOP, f0=180.0)]))
    lengths = [10 * HOP, 7 * HOP + 3]
    f0 = [np.full(10, 140.0, np.float32), np.full(10, 200.0, np.float32)]
    a = generate(m, codes, torch.tensor([0, 2]), lengths, seed=5, pitch=f0)
    assert [x.size for x in a.audio] == lengths and all(np.isfinite(x).all() for x in a.audio)
    alone = generate(m, codes[1:], torch.tensor([2]), lengths[1:], seed=6, pitch=f0[1:])
    np.testing.assert_allclose(alone.audio[0], a.audio[1], atol=1e-6)
    blocks = list(stream(m, codes, torch.tensor([0, 2]), lengths, seed=5, pitch=f0, block=HOP * 3))
    np.testing.assert_array_equal(np.concatenate([b.audio[0] for b in blocks]), a.audio[0])
    predicted = generate(m, codes, torch.tensor([0, 2]), lengths, seed=5)  # the F0 head's
    assert [x.size for x in predicted.audio] == lengths
    with pytest.raises(AudioVQError, match="2 F0 tracks for a batch of 1"):
        generate(m, codes[:1], torch.tensor([0]), seed=5, pitch=f0)


def test_sharpening_multiplies_voiced_logits_and_leaves_unvoiced_ones_as_they_are():
    """LPCNet's β = 1 + max(0, 1.5 c − 0.5): hand-worked values, then the step's logits with
    sharpening against the same step without it, frame by frame (voiced frames ×2, unvoiced
    ×1, so an unvoiced distribution is unchanged at every temperature)."""
    from audiovq.nn.decoders.source_filter import sharpening

    c = torch.tensor([0.0, 1 / 3, 0.5, 0.8, 1.0])
    assert torch.allclose(sharpening(c), torch.tensor([1.0, 1.0, 1.25, 1.7, 2.0]))
    m = model().eval()
    d = m.decoder
    wav = voiced()
    indices = m.encode(wav)
    f0 = torch.full(indices.shape, 130.0)
    f0[0, ::2] = 0.0  # every other frame unvoiced
    T = wav.shape[-1]
    logits = {}
    for sharpen in (False, True):
        d.sharpen = sharpen
        with torch.no_grad():
            inputs = d.step_inputs(m.quantizer, indices, torch.tensor([1]), [indices.shape[1]], pitch=[f0[0].numpy()])
            rows = step_conditioning(d.network, inputs.local, None, 1).rows(0, T)
            steps = incremental(d.network, 1)
            out = []
            for t in range(T):
                out.append(steps.step(t, torch.tensor([d.first_input]), rows[:, t // HOP]))
                steps.observe(torch.tensor([d.first_input]), None)
            logits[sharpen] = torch.stack(out, -1)[0]  # (O, T)
    beta = torch.where(f0[0] > 0, 2.0, 1.0).repeat_interleave(HOP)[:T]
    assert torch.allclose(logits[True], logits[False] * beta, rtol=1e-6, atol=1e-6)
    unvoiced = beta == 1
    assert torch.equal(logits[True][:, unvoiced], logits[False][:, unvoiced])


# ------------------------------------------------------------- the fast CPU path

def _two_items(frames=40, *extra):
    m = model(*extra).eval()
    codes = m.encode(torch.cat([voiced(T=frames * HOP), voiced(T=frames * HOP, f0=180.0)]))
    lengths = [frames * HOP, (frames - 7) * HOP + 5]
    f0 = [np.full(frames, 140.0, np.float32),
          np.r_[np.zeros(10), np.full(frames - 10, 200.0)].astype(np.float32)]  # unvoiced, then voiced
    return m, codes, lengths, f0


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_fast_and_torch_paths_generate_the_same_signal(temperature):
    """The numba kernel (linear prediction and its µ-law bins in exact float64, the excitation
    embeddings, sharpening, s = p + e) against the PyTorch step: the same samples."""
    m, codes, lengths, f0 = _two_items()
    a = generate(m, codes, torch.tensor([0, 2]), lengths, seed=5, pitch=f0, fast=False, temperature=temperature)
    b = generate(m, codes, torch.tensor([0, 2]), lengths, seed=5, pitch=f0, fast=True, temperature=temperature)
    for x, y, n in zip(a.audio, b.audio, lengths):
        assert x.shape == y.shape == (n,)
        np.testing.assert_array_equal(x, y)


def test_fast_path_batch_of_nine_in_lane_groups_and_threads_equals_alone():
    m = model().eval()
    frames = 12
    wavs = torch.cat([voiced(T=frames * HOP, f0=100.0 + 15 * i, seed=i) for i in range(9)])
    codes = m.encode(wavs)
    lengths = [frames * HOP - 9 * i for i in range(9)]
    f0 = [np.full(frames, 100.0 + 15 * i, np.float32) for i in range(9)]
    speaker = torch.arange(9) % 3
    one = generate(m, codes, speaker, lengths, seed=3, pitch=f0, threads=1)  # a group of eight + one
    two = generate(m, codes, speaker, lengths, seed=3, pitch=f0, threads=2)
    for b in (0, 4, 8):
        alone = generate(m, codes[b:b + 1], speaker[b:b + 1], lengths[b:b + 1], seed=3 + b, pitch=f0[b:b + 1])
        np.testing.assert_array_equal(alone.audio[0], two.audio[b])
    for x, y in zip(one.audio, two.audio):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("p", ["int8", "bf16"])
def test_reduced_precision_logits_within_the_wavenets_tolerance(p):
    """Teacher-forced excitation logits with rounded weights against float32: the WaveNet's
    rounding tolerances (tests/test_generate_precision.py) hold for the excitation network."""
    from test_generate_precision import TOLERANCE

    from audiovq.generate.engine import teacher_forced_logits
    m, codes, lengths, f0 = _two_items(frames=30)
    d = m.decoder
    inputs = d.step_inputs(m.quantizer, codes[:, :30], torch.tensor([0, 2]), [30, 30], pitch=[x[:30] for x in f0])
    forced = torch.randint(0, d.classes, (2, 30 * HOP), generator=torch.Generator().manual_seed(2))
    exact = teacher_forced_logits(d.network, forced, inputs.local)
    got = teacher_forced_logits(d.network, forced, inputs.local, precision=p)
    err, scale = got - exact, exact.std()
    rms, worst = TOLERANCE[p]
    assert err.pow(2).mean().sqrt() < rms * scale
    assert err.abs().max() < worst * scale
    slow = teacher_forced_logits(d.network, forced, inputs.local, fast=False)
    assert torch.allclose(exact, slow, atol=1e-5)


@pytest.mark.parametrize("extra", [(), ("model.decoder.cond_dilation=2", "model.decoder.cond_layers=4")],
                         ids=["plain", "dilated"])
def test_frames_computed_a_window_at_a_time_equal_the_whole(monkeypatch, extra):
    """The frame records (conditioning, envelope, gain, F0, voicing, sharpening) of a long file
    are made a window of frames at a time with a margin: windows of 8 frames give those of one
    window holding all 40, up to float rounding (as the WaveNet's windowed context), with given
    F0 and with the F0 head's; and past each item's end, no conditioning, its last frame's
    envelope, no gain, unvoiced. Also for a dilated frame network (±15 frames of context,
    wider than a window)."""
    from audiovq.nn.decoders.source_filter import FrameRecords

    m, codes, lengths, f0 = _two_items(40, *extra)
    d, frames = m.decoder, [-(-n // HOP) for n in lengths]
    fields = ("conditioning", "envelope", "gain", "f0", "voicing", "sharpening")
    for pitch in (f0, None):
        whole = FrameRecords(d, m.quantizer, codes, torch.tensor([0, 2]), frames, pitch)
        monkeypatch.setattr(FrameRecords, "WINDOW", 8)
        small = FrameRecords(d, m.quantizer, codes, torch.tensor([0, 2]), frames, pitch)
        monkeypatch.setattr(FrameRecords, "WINDOW", 1024)
        for f in range(0, 40, 7):
            a, b = whole.blocks(f, f + 7, [0, 1]), small.blocks(f, f + 7, [0, 1])
            assert (a - b).abs().max() < 1e-5
            for item in (0, 1):
                ra, rb = whole.record(item, f, f + 8), small.record(item, f, f + 8)
                assert ra.start == rb.start == f and len(ra) == len(rb) == 8
                for name in fields:
                    x, y = getattr(ra, name), getattr(rb, name)
                    assert x.shape == y.shape
                    assert torch.allclose(x, y, rtol=1e-4, atol=1e-5), name
        end = frames[1]
        assert small.blocks(end, 40, [1]).abs().max() == 0
        tail = small.record(1, end - 1, 40)
        assert torch.equal(tail.envelope[1:], tail.envelope[:1].expand(40 - end, -1))
        assert (tail.gain[1:] == 0).all() and (tail.f0[1:] == 0).all() and (tail.voicing[1:] == 0).all()
        assert (tail.sharpening[1:] == 1).all()


def test_lpcnet_probability_floor_is_the_default_of_the_sampling_rule():
    d = model().decoder
    assert d.sampler(1.0).floor == pytest.approx(0.002)
    assert d.sampler(1.0, floor=0.01).floor == pytest.approx(0.01)


@pytest.mark.parametrize("lpc,pitch", [(False, True), (True, False), (False, False)])
def test_ablations_without_linear_prediction_or_pitch(lpc, pitch):
    """Issue #20's ablation: without linear prediction p[n] = 0, so the excitation network's
    parallel pass reads the signal itself (e = s) and has no envelope head; without pitch there
    is no F0 input, head or sharpening. Each still trains (every parameter reaches the loss, as
    DDP needs), and its fast and PyTorch generation paths give the same samples."""
    m = model(f"model.decoder.lpc={lpc}", f"model.decoder.pitch={pitch}")
    d = m.decoder
    assert (d.envelope is not None) == lpc and (d.f0_net is not None) == pitch and d.needs_pitch == pitch
    wav = torch.cat([voiced(seed=1), voiced(f0=210.0, seed=2)])
    f0 = torch.tensor([[130.0], [210.0]]).expand(2, wav.shape[-1] // HOP) if pitch else None
    vq = m.quantizer(m.encoder(wav))
    out = d(wav, vq.quantized, torch.tensor([0, 2]), pitch=f0)
    assert ("envelope" in out.scalars) == lpc and ("f0_head" in out.scalars) == pitch
    out.loss.backward()
    assert all(p.grad is not None for p in d.parameters())
    if not lpc:  # by hand: the WaveNet over s, p's input the class of 0
        with torch.no_grad():
            s = mu_law_encode(preemphasis(wav, d.preemphasis).clamp(-1, 1), d.classes)
            prev = torch.nn.functional.pad(s[:, :-1], (1, 0), value=d.first_input)
            h, _, _ = d.frames(vq.quantized, torch.tensor([0, 2]), f0)
            local = h.repeat_interleave(HOP, -1)
            zero = torch.full_like(s, d.first_input)
            d.eval()
            torch.testing.assert_close(d(wav, vq.quantized, torch.tensor([0, 2]), pitch=f0).logits,
                                       d.network(prev, zero, prev, local))
    m.eval()
    codes = m.encode(wav)
    lengths = [wav.shape[-1], wav.shape[-1] - 40]
    track = [x.numpy() for x in f0] if pitch else None
    a = generate(m, codes, torch.tensor([0, 2]), lengths, seed=5, pitch=track, fast=False)
    b = generate(m, codes, torch.tensor([0, 2]), lengths, seed=5, pitch=track, fast=True)
    for x, y in zip(a.audio, b.audio):
        np.testing.assert_array_equal(x, y)


def test_dilated_frame_network_sees_the_context_it_claims():
    """cond_dilation=2, 4 layers: dilations 1, 2, 4, 8 → an input frame reaches exactly the
    output frames within ±15 of it (found by perturbing it), and generation's margin is 15
    frames of the frame network (+ the F0 head's 2)."""
    from audiovq.nn.decoders.source_filter import FrameRecords
    m = model("model.decoder.cond_dilation=2", "model.decoder.cond_layers=4").eval()
    net = m.decoder.frame_net
    x = torch.randn(1, net[0].in_channels, 64)
    y = x.clone()
    y[..., 30] += 1.0
    with torch.no_grad():
        changed = ((net(x) - net(y)).abs().amax(1)[0] > 0).nonzero().flatten().tolist()
    assert changed == list(range(15, 46))
    assert FrameRecords(m.decoder, m.quantizer, torch.zeros(1, 4, dtype=torch.long), torch.tensor([0]), [4]).reach == 17


def test_a_decoder_without_its_network_trains_the_frame_half_alone():
    """model.decoder.network=false: no excitation network; the loss is the full decoder's
    envelope and F0 losses (same frame weights), its `nll` the envelope's distance; the codes
    still get the gradient; generation renders with `world` by default and refuses `network`
    in one line; the config refuses it where nothing would be trained."""
    from audiovq.config import ConfigError
    full, alone = model(), model("model.decoder.network=false")
    assert alone.decoder.network is None
    assert not any("network" in name for name, _ in alone.named_parameters())
    missing = alone.load_state_dict(full.state_dict(), strict=False)
    assert not missing.missing_keys and all(k.startswith("decoder.network.") for k in missing.unexpected_keys)
    wav = torch.cat([voiced(seed=1), voiced(f0=210.0, seed=2)])
    f0 = torch.tensor([[130.0], [210.0]]).expand(2, wav.shape[-1] // HOP)
    torch.manual_seed(3)
    a = full(wav, torch.tensor([0, 2]), pitch=f0)
    torch.manual_seed(3)
    b = alone(wav, torch.tensor([0, 2]), pitch=f0)
    envelope, f0_head = a.decoder_scalars["envelope"], a.decoder_scalars["f0_head"]
    torch.testing.assert_close(b.loss, a.loss - a.nll)  # all of the full decoder's loss but the network's NLL
    torch.testing.assert_close(b.nll, envelope)
    torch.testing.assert_close(b.decoder_scalars["f0_head"], f0_head)
    b.loss.backward()
    assert sum(float(p.grad.abs().sum()) for p in alone.encoder.parameters() if p.grad is not None) > 0

    alone.eval()
    codes = alone.encode(wav[:1])
    pitch = [np.full(codes.shape[1], 140.0, np.float32)]
    default = generate(alone, codes, torch.tensor([0]), seed=1, pitch=pitch).audio[0]
    world = generate(alone, codes, torch.tensor([0]), seed=1, pitch=pitch, renderer="world").audio[0]
    np.testing.assert_array_equal(default, world)
    with pytest.raises(AudioVQError, match="network=false"):
        generate(alone, codes, torch.tensor([0]), pitch=pitch, renderer="network")
    with pytest.raises(AudioVQError, match="no network"):
        generate(alone, codes, torch.tensor([0]), pitch=pitch, renderer="world", precision="int8")
    for bad in (["model.decoder.kind=wavenet"], ["model.decoder.lpc=false"], ["model.decoder.envelope_weight=0"]):
        with pytest.raises(ConfigError, match="network=false"):
            load_config("vqvae", SMALL + ["model.decoder.network=false"] + bad)
