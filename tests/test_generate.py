"""audiovq.generate: incremental WaveNet paths against the parallel forward, the fast CPU
kernel against the PyTorch path, reproducible sampling, batch = one by one."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiovq.audio import mu_law_decode
from audiovq.nn.emphasis import deemphasis
from audiovq.config import load_config
from audiovq.errors import AudioVQError
from audiovq.generate import generate, generate_wavenet, teacher_forced_logits
from audiovq.nn.decoders.windows import UpsampledCodes, codes_context
from audiovq.nn.sampling import CATEGORICAL, MIXTURE, SamplerSpec, UniformStream, sample
from audiovq.nn.distributions import LogisticMixture
from audiovq.nn.vqvae import AudioVQVAE
from audiovq.nn.wavenet import WaveNet

T = 300  # more than one chunk of 256 steps, many ring-buffer wraps


def small_wavenet(out=40, local=0, glob=0, kernel=2, seed=0):
    torch.manual_seed(seed)
    net = WaveNet(40, out, [1, 2, 4, 8, 1, 2], residual_channels=8, gate_channels=12, skip_channels=10,
                  kernel_size=kernel, local_channels=local, global_channels=glob).eval()
    with torch.no_grad():  # spread the logits so that sampling has real choices to get wrong
        net.head[-1].weight.mul_(3.0)
    return net


def small_vqvae(upsample="transposed", output="categorical", speakers=3):
    cfg = load_config("vqvae", [
        "model.encoder.channels=16", "model.encoder.layers=2", "model.quantizer.codebook_size=16",
        "model.quantizer.dim=8", "model.decoder.residual_channels=8", "model.decoder.gate_channels=12",
        "model.decoder.skip_channels=10", "model.decoder.layers_per_cycle=4", "model.decoder.cycles=2",
        "model.decoder.cond_channels=6", "model.decoder.speaker_dim=5", "model.decoder.mixtures=3",
        f"model.decoder.upsample={upsample}", f"model.decoder.output={output}", "model.decoder.classes=64"])
    torch.manual_seed(1)
    return AudioVQVAE(cfg.model, speakers, 16000).eval()


def forward_logits(net, inputs, local=None, glob=None):
    with torch.no_grad():
        return net(inputs, local, glob)


# ------------------------------------------------------------- teacher-forced logits

@pytest.mark.parametrize("local,glob,kernel", [(0, 0, 2), (0, 3, 2), (5, 0, 2), (5, 3, 2), (5, 3, 3)],
                         ids=["none", "global", "local", "both", "both-kernel3"])
def test_teacher_forced_logits_match_forward(local, glob, kernel):
    net = small_wavenet(local=local, glob=glob, kernel=kernel)
    g = torch.Generator().manual_seed(2)
    B = 3
    inputs = torch.randint(0, 40, (B, T), generator=g)
    loc = torch.randn(B, local, T, generator=g) if local else None
    glo = torch.randn(B, glob, generator=g) if glob else None
    ref = forward_logits(net, inputs, loc, glo)
    torch_path = teacher_forced_logits(net, inputs, loc, glo, fast=False)
    fast_path = teacher_forced_logits(net, inputs, loc, glo, fast=True)
    assert torch_path.shape == fast_path.shape == ref.shape == (B, 40, T)
    assert (torch_path - ref).abs().max() < 1e-4
    assert (fast_path - ref).abs().max() < 1e-4
    assert (fast_path - torch_path).abs().max() < 1e-5


@pytest.mark.parametrize("upsample,output", [("transposed", "categorical"), ("repeat", "categorical"),
                                             ("transposed", "logistic_mixture")])
def test_decoder_teacher_forced_logits_match_forward(upsample, output):
    """The decoder's conditioning made a chunk at a time (upsampled per chunk, or per code
    frame for repeat) gives the logits of the parallel pass on the full conditioning."""
    model = small_vqvae(upsample, output)
    g = torch.Generator().manual_seed(3)
    B, F = 2, T // model.hop + 1
    indices = torch.randint(0, 16, (B, F), generator=g)
    speaker = torch.tensor([0, 2])
    inputs = torch.randint(0, 64, (B, T), generator=g)
    with torch.no_grad():
        local, glob = model.decoder.conditioning(model.quantizer.lookup(indices), speaker)
        ref = model.decoder.network(inputs, local[..., :T], glob)
        source = UpsampledCodes(model.decoder.conditioner, codes_context(model.decoder.conditioner,
                                                                 model.quantizer.lookup(indices), [F, F]))
    assert source.hold == (1 if upsample == "transposed" else model.hop)
    for fast in (False, True):
        got = teacher_forced_logits(model.decoder.network, inputs, source, glob, fast=fast)
        assert (got - ref).abs().max() < 1e-4, fast


# ------------------------------------------------------------------- sampling rules

def test_inverse_cdf_sampling_by_hand():
    # p = [0.25, 0.75]: u < 0.25 → class 0, else class 1; temperature 0 → argmax
    logits = torch.tensor([[0.0, math.log(3.0)]] * 4)
    u = torch.tensor([[0.1], [0.24], [0.26], [0.99]])
    k, _ = sample(SamplerSpec(CATEGORICAL, 1.0), logits, u)
    assert k.tolist() == [0, 0, 1, 1]
    # temperature 2 flattens to p ∝ [1, √3]: boundary at 1 / (1 + √3) = 0.366
    k, _ = sample(SamplerSpec(CATEGORICAL, 2.0), logits, torch.tensor([[0.36], [0.37], [0.0], [0.5]]))
    assert k.tolist() == [0, 1, 0, 1]
    assert sample(SamplerSpec(CATEGORICAL, 0.0), logits, u)[0].tolist() == [1, 1, 1, 1]


def test_mixture_sampling_by_hand():
    # one dominant component (µ = 0.1, s = e^-2): x = µ + T·s·logit(u₁)
    M = 2
    logits = torch.tensor([[20.0, 0.0, 0.1, -0.5, -2.0, -1.0]])
    for temperature, u1 in [(1.0, 0.5), (1.0, 0.8), (0.5, 0.3)]:
        cls, x = sample(SamplerSpec(MIXTURE, temperature, M, -7.0, 256), logits, torch.tensor([[0.5, u1]]))
        want = 0.1 + temperature * math.exp(-2.0) * math.log(u1 / (1 - u1))
        assert x.item() == pytest.approx(want, abs=1e-6)
        y = math.copysign(math.log1p(255 * abs(want)) / math.log1p(255), want)
        assert cls.item() == int((y + 1) / 2 * 255 + 0.5)
    _, x = sample(SamplerSpec(MIXTURE, 0.0, M, -7.0, 256), logits, torch.tensor([[0.9, 0.9]]))
    assert x.item() == pytest.approx(0.1)


def test_uniform_stream_does_not_depend_on_how_it_is_read():
    a = UniformStream(7, 2, block=16)
    b = UniformStream(7, 2, block=16)
    whole = a.take(50)
    pieces = torch.cat([b.take(n) for n in (3, 20, 1, 26)])
    assert torch.equal(whole, pieces) and whole.shape == (50, 2)
    assert (whole >= 0).all() and (whole < 1).all()


def test_generated_classes_follow_the_output_distribution():
    """A WaveNet whose logits do not depend on its input (only the head bias is non-zero)
    generates i.i.d. samples of softmax(bias / temperature)."""
    net = small_wavenet(out=6)
    with torch.no_grad():
        net.head[-1].weight.zero_()
        net.head[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5, 1.5]))
    n = 6000
    for temperature in (1.0, 0.5):
        p = torch.softmax(net.head[-1].bias.detach() / temperature, 0).numpy()
        values = generate_wavenet(net, n, temperature=temperature, seed=3).values[0]
        freq = np.bincount(values, minlength=6) / n
        assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3), (freq, p)


# ---------------------------------------------------------------- fast == PyTorch

@pytest.mark.parametrize("temperature", [0.0, 1.0, 0.7])
def test_fast_and_torch_paths_sample_the_same(temperature):
    net = small_wavenet(local=5, glob=3)
    g = torch.Generator().manual_seed(4)
    loc, glo = torch.randn(3, 5, T, generator=g), torch.randn(3, 3, generator=g)
    lengths = [T, 123, 257]
    a = generate_wavenet(net, lengths, loc, glo, temperature=temperature, seed=11, fast=False)
    b = generate_wavenet(net, lengths, loc, glo, temperature=temperature, seed=11, fast=True)
    for x, y, n in zip(a.values, b.values, lengths):
        assert x.shape == y.shape == (n,) and x.dtype == y.dtype == np.int64
        assert np.array_equal(x, y)
    if temperature > 0:  # the seed matters
        c = generate_wavenet(net, lengths, loc, glo, temperature=temperature, seed=12, fast=True)
        assert not np.array_equal(b.values[0], c.values[0])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_mixture_fast_and_torch_paths_sample_the_same(temperature):
    net = small_wavenet(out=9, glob=3)
    glo = torch.randn(2, 3, generator=torch.Generator().manual_seed(5))
    out = LogisticMixture(3, input_classes=32)
    a = generate_wavenet(net, [T, 200], glob=glo, output=out, temperature=temperature, fast=False)
    b = generate_wavenet(net, [T, 200], glob=glo, output=out, temperature=temperature, fast=True)
    for x, y in zip(a.values, b.values):
        assert x.dtype == np.float32 and np.all(np.abs(x) <= 1)
        np.testing.assert_allclose(x, y, atol=1e-5)


# ------------------------------------------------------------- the decoder entry

def test_decoder_batch_equals_one_by_one():
    """Padded codes, different lengths: each item as generated alone from its own codes,
    with seed + its index."""
    model = small_vqvae()
    g = torch.Generator().manual_seed(6)
    lengths = [T, 97, 180]
    F = -(-T // model.hop)
    indices = torch.randint(0, 16, (3, F), generator=g)
    speaker = torch.tensor([2, 0, 1])
    for fast in (True, False):
        batch = generate(model, indices, speaker, lengths, temperature=1.0, seed=5, fast=fast)
        for b, n in enumerate(lengths):
            frames = -(-n // model.hop)
            alone = generate(model, indices[b:b + 1, :frames], speaker[b:b + 1], [n], seed=5 + b, fast=fast)
            assert batch.audio[b].shape == (n,) and batch.audio[b].dtype == np.float32
            assert np.array_equal(batch.audio[b], alone.audio[0])
    assert batch.samples_per_s > 0 and batch.rtf == pytest.approx(16000 / batch.samples_per_s)


def test_eight_lane_groups_and_threads_agree_with_single_lanes():
    """Nine items on one thread run as a group of eight lanes sharing weight loads plus one
    single lane; on two threads as singles. The group sums dot products in another order
    (differences ~1e-7), so equal samples are expected but not guaranteed for every seed."""
    model = small_vqvae("repeat")
    g = torch.Generator().manual_seed(7)
    lengths = [T, 40, 260, 299, 1, 100, T, 64, 65]
    indices = torch.randint(0, 16, (9, -(-T // model.hop)), generator=g)
    speaker = torch.arange(9) % 3
    one = generate(model, indices, speaker, lengths, seed=1, threads=1)
    two = generate(model, indices, speaker, lengths, seed=1, threads=2)
    for x, y, n in zip(one.audio, two.audio, lengths):
        assert x.shape == (n,) and np.array_equal(x, y)


def test_decoder_is_the_generic_wavenet_generation_decoded():
    """`generate` = `generate_wavenet` on the decoder, started from silence, conditioned on
    the upsampled codes and the speaker, with µ-law bins decoded to amplitudes and
    de-emphasised (the preset's decoder models the pre-emphasised signal)."""
    model = small_vqvae()
    indices = torch.randint(0, 16, (1, 10), generator=torch.Generator().manual_seed(8))
    speaker = torch.tensor([1])
    r = generate(model, indices, speaker, temperature=0.7, seed=4)
    with torch.no_grad():
        context = codes_context(model.decoder.conditioner, model.quantizer.lookup(indices), [10])
        glob = model.decoder.speakers(speaker)
    g = generate_wavenet(model.decoder.network, 10 * model.hop, UpsampledCodes(model.decoder.conditioner, context), glob,
                         model.decoder.output, first_input=model.decoder.first_input, temperature=0.7, seed=4)
    assert r.audio[0].shape == (10 * model.hop,) and g.values[0].dtype == np.int64
    assert model.decoder.preemphasis == 0.85
    np.testing.assert_allclose(r.audio[0], np.clip(deemphasis(mu_law_decode(g.values[0], 64), 0.85), -1, 1),
                               atol=1e-6)
    assert model.decoder.first_input == 32 and len(np.unique(g.values[0])) > 5


def test_decoder_mixture_generates_amplitudes():
    model = small_vqvae(output="logistic_mixture")
    indices = torch.randint(0, 16, (2, 5), generator=torch.Generator().manual_seed(9))
    for fast in (True, False):
        r = generate(model, indices, torch.tensor([0, 1]), [20, 13], fast=fast)
        assert [a.shape for a in r.audio] == [(20,), (13,)]
        assert all(a.dtype == np.float32 and np.all(np.abs(a) <= 1) for a in r.audio)


def test_inputs_outside_the_vocabulary_are_refused():
    net = small_wavenet(out=41)  # 41 output classes fed back into 40 input classes
    with pytest.raises(ValueError, match="input classes"):
        generate_wavenet(net, 5)
    with pytest.raises(ValueError, match="input classes"):
        teacher_forced_logits(small_wavenet(), torch.full((1, 5), 40))


def test_decoder_rejects_bad_requests_with_one_line_errors():
    model = small_vqvae()
    indices = torch.zeros(1, 3, dtype=torch.int64)
    speaker = torch.tensor([0])
    for kwargs, match in [(dict(lengths=[3 * model.hop + 1]), "code frames"), (dict(lengths=[0]), "at least one"),
                          (dict(temperature=-1.0), "temperature"), (dict(seed=[1, 2]), "seeds")]:
        with pytest.raises(AudioVQError, match=match) as err:
            generate(model, indices, speaker, **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(AudioVQError, match="codes must be"):
        generate(model, indices + 16, speaker)
    with pytest.raises(AudioVQError, match="speakers must be"):
        generate(model, indices, torch.tensor([3]))
