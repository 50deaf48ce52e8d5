"""Pre-emphasis / de-emphasis and input noise (LPCNet's levers in the decoder): the inverse
pair, where each applies (targets, inputs, generated output), and training-only noise."""
import numpy as np
import pytest
import torch

from audiovq.audio import mu_law_decode, mu_law_encode
from audiovq.generate.engine import generate
from audiovq.nn.emphasis import Deemphasis, deemphasis, preemphasis
from audiovq.nn.vqvae import AudioVQVAE

from test_model import small_cfg


@pytest.mark.parametrize("coef", [0.0, 0.5, 0.85, 0.97])
def test_deemphasis_inverts_preemphasis_to_float_precision(coef):
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4000)).astype(np.float32)
    np.testing.assert_allclose(deemphasis(preemphasis(x, coef), coef), x, atol=1e-5)
    t = torch.from_numpy(x)
    back = deemphasis(preemphasis(t, coef), coef)
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, t, atol=1e-5, rtol=0)


def test_preemphasis_by_hand():
    x = np.array([1.0, 2.0, -1.0, 0.5], np.float32)
    np.testing.assert_allclose(preemphasis(x, 0.5), [1.0, 1.5, -2.0, 1.0])  # e[n] = x[n] - 0.5 x[n-1]
    np.testing.assert_allclose(preemphasis(torch.from_numpy(x), 0.5).numpy(), [1.0, 1.5, -2.0, 1.0])


def test_preemphasis_tilts_the_spectrum_up():
    n = np.arange(8000)
    low, high = np.sin(2 * np.pi * 100 * n / 8000), np.sin(2 * np.pi * 3500 * n / 8000)
    # |1 - a e^{-jw}|: 0.15-ish at 100 Hz, 1.85-ish near Nyquist for a = 0.85
    assert np.std(preemphasis(low, 0.85)) < 0.2 * np.std(low)
    assert np.std(preemphasis(high, 0.85)) > 1.7 * np.std(high)


def model(*overrides):
    torch.manual_seed(0)
    cfg = small_cfg(*overrides)
    return AudioVQVAE(cfg.model, 2, cfg.data.sample_rate)


def test_the_decoder_models_the_preemphasised_signal():
    m = model("model.decoder.preemphasis=0.85").eval()
    wav = 0.3 * torch.randn(2, 1024).clamp(-3, 3) / 3
    signal = preemphasis(wav, 0.85)
    inputs = m.decoder.inputs(signal)
    assert torch.equal(inputs[:, 1:], mu_law_encode(signal, 256)[:, :-1])
    # the NLL is the cross-entropy against the pre-emphasised signal's bins
    vq = m.quantizer(m.encoder(wav))
    nll, logits = m.reconstruction(wav, vq.quantized, torch.tensor([0, 1]))
    expected = torch.nn.functional.cross_entropy(logits, mu_law_encode(signal, 256))
    torch.testing.assert_close(nll, expected)


def test_input_noise_only_in_training_and_only_on_inputs():
    m = model("model.decoder.input_noise=3")
    signal = 0.2 * torch.sin(torch.arange(4096) / 7.0).repeat(2, 1)
    clean = mu_law_encode(signal, 256)
    m.eval()
    assert torch.equal(m.decoder.inputs(signal)[:, 1:], clean[:, :-1])
    m.train()
    noisy = m.decoder.inputs(signal)[:, 1:]
    diff = (noisy - clean[:, :-1]).float()
    assert 2.0 < diff.std() < 4.0 and diff.abs().max() >= 5  # ~N(0, 3) bins, rounded
    assert noisy.min() >= 0 and noisy.max() <= 255
    # the target is the clean signal whatever the mode: the eval NLL ignores input_noise
    wav = signal.clone()
    m.eval()
    vq = m.quantizer(m.encoder(wav))
    a = m.reconstruction(wav, vq.quantized, torch.tensor([0, 1]))[0]
    b = model().eval().reconstruction(wav, vq.quantized, torch.tensor([0, 1]))[0]
    torch.testing.assert_close(a, b)  # same weights (same seed), noise off in eval


def test_generation_de_emphasises_its_output():
    m = model("model.decoder.preemphasis=0.85").eval()
    codes, speaker = torch.randint(0, 16, (1, 4)), torch.tensor([1])
    out = generate(m, codes, speaker, seed=3).audio[0]
    m.decoder.preemphasis = 0.0  # same weights, same seed, same sampled classes: only the output filter differs
    raw = generate(m, codes, speaker, seed=3).audio[0]
    classes = mu_law_encode(raw, 256)
    np.testing.assert_allclose(out, np.clip(deemphasis(mu_law_decode(classes, 256), 0.85), -1, 1), atol=1e-5)


def test_representation_limit():
    x = (0.3 * np.sin(np.arange(8000) / 5.0) * np.hanning(8000)).astype(np.float32)
    plain = model("model.decoder.preemphasis=0")
    np.testing.assert_allclose(plain.representation_limit(x), mu_law_decode(mu_law_encode(x, 256), 256), atol=1e-6)
    lim = model("model.decoder.preemphasis=0.85").representation_limit(x)
    assert np.sqrt(np.mean((lim - x) ** 2)) < 0.03 * np.sqrt(np.mean(x ** 2))


def test_given_noise_draws_are_used_in_training():
    m = model("model.decoder.input_noise=2").train()
    signal = 0.2 * torch.sin(torch.arange(512) / 7.0).repeat(2, 1)
    draws = torch.randn(2, 512, generator=torch.Generator().manual_seed(1))
    a, b = m.decoder.inputs(signal, draws), m.decoder.inputs(signal, draws)
    assert torch.equal(a, b)  # the same draws, the same inputs: the recipe can make ranks agree
    expected = (mu_law_encode(signal, 256) + (draws * 2).round().long()).clamp(0, 255)
    assert torch.equal(a[:, 1:], expected[:, :-1])


def test_deemphasis_block_by_block_equals_whole():
    e = np.random.default_rng(3).uniform(-1, 1, 1000).astype(np.float32)
    f = Deemphasis(0.85)
    blocks = np.concatenate([f(e[a:b]) for a, b in ((0, 1), (1, 300), (300, 301), (301, 1000))])
    np.testing.assert_array_equal(blocks, deemphasis(e, 0.85))
    assert Deemphasis(0.0)(e) is e
