"""The levers that keep the speaker out of the codes (issue #26): instance normalisation, the
log-mel input and its band shift, a code stride (narrower bottleneck) and the speaker
adversary's gradient reversal; each against an independent computation."""
import numpy as np
import pytest
import torch

from audiovq import checkpoint as ckpt_io
from audiovq.config import load_config, to_dict
from audiovq.errors import ConfigError
from audiovq.nn.encoder import MelEncoder, WaveformEncoder
from audiovq.nn.logmel import LogMel, shift_bands
from audiovq.nn.speaker_adversary import SpeakerAdversary, reverse_gradient
from audiovq.models import load_vqvae
from audiovq.nn.vqvae import AudioVQVAE


# every lever off, whatever the preset ships with; a test turns on the ones it checks
LEVERS_OFF = ("model.encoder.input=waveform", "model.encoder.norm=batch", "model.encoder.code_stride=1",
              "data.perturb_mel_bands=0", "model.adversary.weight=0", "model.decoder.cond_dilation=1")


def sf_cfg(*overrides):
    return load_config("vqvae", ["preset=sf-tiny", *LEVERS_OFF, "model.encoder.channels=16", "model.quantizer.codebook_size=16",
                                 "model.quantizer.dim=8", "model.quantizer.warmup_steps=0",
                                 "model.decoder.residual_channels=8", "model.decoder.gate_channels=16",
                                 "model.decoder.skip_channels=16", "model.decoder.layers_per_cycle=3",
                                 "model.decoder.cond_channels=16", "model.decoder.speaker_dim=4", *overrides])


def test_instance_norm_mel_encoder_ignores_a_gain_per_band():
    """A per-band gain of the input (the log-mel scaled and offset per channel) gives the same z_e:
    the voice's constant spectral colouring is divided out."""
    torch.manual_seed(0)
    enc = MelEncoder(8000, 32, channels=16, dim=8, norm="instance").eval()
    feats = torch.randn(2, 80, 50)
    a, b = torch.rand(1, 80, 1) * 2 + 0.5, torch.randn(1, 80, 1) * 3
    assert torch.allclose(enc.encode_features(feats), enc.encode_features(a * feats + b), atol=1e-4)
    plain = MelEncoder(8000, 32, channels=16, dim=8, norm="batch").eval()
    assert not torch.allclose(plain.encode_features(feats), plain.encode_features(a * feats + b), atol=1e-2)


def test_instance_norm_waveform_encoder_ignores_the_level():
    torch.manual_seed(0)
    enc = WaveformEncoder(channels=16, dim=8, layers=3, norm="instance").eval()
    wav = torch.randn(2, 1024) * 0.5
    # a louder recording: the same z_e up to IN's eps (1e-5 against the channels' variances)
    moved = (enc(wav) - enc(2.0 * wav)).abs().max()
    assert moved < 1e-3
    none = WaveformEncoder(channels=16, dim=8, layers=3, norm="none").eval()
    assert (none(wav) - none(2.0 * wav)).abs().max() > 10 * moved


def test_logmel_matches_a_direct_computation():
    """Frame i is the mel power of the Hann-windowed 25 ms centred on sample i·hop + hop/2."""
    sr, hop = 8000, 32
    lm = LogMel(sr, hop, 40)
    wav = torch.randn(1, 3200) * 0.2 + torch.sin(torch.arange(3200) * 0.3) * 0.5
    got = lm(wav)[0].numpy()
    assert got.shape == (40, 100)
    x = wav[0].double().numpy()
    fb = lm.fbank.double().numpy()
    w = np.hanning(lm.win + 1)[:-1]  # periodic Hann, as torch.hann_window
    for i in (0, 17, 99):
        centre = i * hop + hop // 2
        lo = centre - lm.win // 2 - (lm.n_fft - lm.win) // 2  # torch.stft centres a short window in its FFT
        frame = np.zeros(lm.n_fft)
        for k in range(lm.n_fft):
            if 0 <= lo + k < x.size:
                frame[k] = x[lo + k]
        win = np.zeros(lm.n_fft)
        win[(lm.n_fft - lm.win) // 2:(lm.n_fft - lm.win) // 2 + lm.win] = w
        power = np.abs(np.fft.rfft(frame * win)) ** 2
        expected = np.log(np.maximum(power @ fb, 1e-5))
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-4, atol=1e-3)


def test_band_shift_by_hand():
    feats = torch.arange(12.0).view(1, 6, 2).repeat(3, 1, 1)  # band m holds 2m, 2m + 1
    out = shift_bands(feats, torch.tensor([0, 2, -1]))
    assert torch.equal(out[0], feats[0])
    assert out[1, :, 0].tolist() == [0, 0, 0, 2, 4, 6]     # up by 2, the lowest band repeated
    assert out[2, :, 0].tolist() == [2, 4, 6, 8, 10, 10]   # down by 1, the highest repeated


def test_gradient_reversal_sends_the_opposite_of_the_classifiers_own_gradient():
    torch.manual_seed(0)
    adv = SpeakerAdversary(8, 5, hidden=16, weight=0.7)
    codes = torch.randn(4, 8, 20, requires_grad=True)
    speaker = torch.tensor([0, 1, 4, 2])
    adv(codes, speaker).loss.backward()
    reversed_grad = codes.grad.clone()
    own = codes.detach().clone().requires_grad_(True)  # the classifier's own gradient on its input
    torch.nn.functional.cross_entropy(adv.logits(own), speaker).backward()
    assert torch.allclose(reversed_grad, -0.7 * own.grad, atol=1e-7)
    assert reversed_grad.abs().sum() > 0
    x = torch.ones(3, requires_grad=True)
    (reverse_gradient(x, 2.0) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [-2.0, -4.0, -6.0]


def test_adversary_trains_the_classifier_against_the_encoder():
    """One backward pass: the classifier's weights get the usual gradient; the encoder gets the
    reversed one, which is absent without the adversary."""
    torch.manual_seed(0)
    cfg = sf_cfg("model.adversary.weight=1.0", "model.quantizer.ema=false")
    model = AudioVQVAE(cfg.model, 3, 8000)
    out = model(torch.rand(2, 2048) * 0.4 - 0.2, torch.tensor([0, 2]), pitch=torch.full((2, 64), 120.0))
    assert {"adversary", "adversary_accuracy"} <= set(out.decoder_scalars)
    out.loss.backward()
    assert model.adversary.out.weight.grad.abs().sum() > 0
    assert AudioVQVAE(sf_cfg().model, 3, 8000).adversary is None


def test_code_stride_holds_each_code_over_its_frames_and_windows_agree():
    torch.manual_seed(0)
    cfg = sf_cfg("model.encoder.code_stride=4", "model.encoder.norm=batch")
    model = AudioVQVAE(cfg.model, 3, 8000).eval()
    assert (model.hop, model.code_hop, model.code_rate, model.bottleneck_rate) == (32, 128, 250.0, 62.5)
    wav = torch.randn(1, 20000) * 0.2
    whole = model.encode(wav, chunk=1 << 20)
    assert whole.shape == (1, -(-20000 // 32))
    held = whole[0, : 156 * 4].view(-1, 4)
    assert (held == held[:, :1]).all()  # each code repeated over its 4 frames
    assert torch.equal(model.encode(wav, chunk=2048), whole)  # a window at a time, same codes
    # what the decoder is given in training: the quantized codes held over the frames
    z = model.encoder(wav[:, :2048])
    q = model.held(model.quantizer(z).quantized)
    assert q.shape[-1] == 64
    assert torch.allclose(q, model.quantizer.lookup(model.encode(wav[:, :2048])), atol=1e-6)


def test_mel_encoder_windows_agree_and_band_shift_reaches_it():
    torch.manual_seed(0)
    cfg = sf_cfg("model.encoder.input=mel", "model.encoder.norm=batch", "data.perturb_mel_bands=3")
    model = AudioVQVAE(cfg.model, 3, 8000).eval()
    wav = torch.randn(1, 12000) * 0.2
    assert torch.equal(model.encode(wav, chunk=2048), model.encode(wav, chunk=1 << 20))
    z0 = model.encoder(wav[:, :2048])
    assert torch.equal(model.encoder(wav[:, :2048], torch.tensor([0])), z0)
    assert not torch.allclose(model.encoder(wav[:, :2048], torch.tensor([2])), z0)


def test_lever_options_are_validated_and_saved(tmp_path):
    with pytest.raises(ConfigError, match="perturb_mel_bands"):
        sf_cfg("data.perturb_mel_bands=3")  # a waveform encoder has no mel bands
    with pytest.raises(ConfigError, match="code hop"):
        sf_cfg("model.encoder.code_stride=5")  # 2048 is not a multiple of 160
    with pytest.raises(ConfigError, match="model.encoder.norm"):
        sf_cfg("model.encoder.norm=layer")
    cfg = sf_cfg("model.encoder.input=mel", "model.encoder.norm=instance", "model.encoder.code_stride=2",
                 "model.adversary.weight=0.5", "data.perturb_mel_bands=2")
    model = AudioVQVAE(cfg.model, 3, 8000)
    path = tmp_path / "m.pt"
    speakers = [{"id": f"p{i}", "gender": "F"} for i in range(3)]
    ckpt_io.save(path, ckpt_io.Checkpoint("vqvae", to_dict(cfg), model.state_dict(), extra={"speakers": speakers}))
    loaded = load_vqvae(path)
    e = loaded.config.model.encoder
    assert (e.input, e.norm, e.code_stride, loaded.config.model.adversary.weight) == ("mel", "instance", 2, 0.5)
    assert loaded.model.code_stride == 2 and loaded.model.adversary is not None
    wav = torch.randn(1, 4096) * 0.2
    assert torch.equal(loaded.model.encode(wav), model.eval().encode(wav))
