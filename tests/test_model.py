"""Encoder rate, decoder causality, the assembled VQ-VAE, config and checkpoints."""
import pytest
import torch

from audiovq import checkpoint as ckpt_io
from audiovq.config import load_config
from audiovq.errors import CheckpointError, ConfigError
from audiovq.nn.encoder import WaveformEncoder
from audiovq.nn.vqvae import AudioVQVAE


def small_cfg(*overrides):
    return load_config("vqvae", ["model.encoder.layers=6", "data.sample_rate=16000",  # rate and hop assumed here
                                 "model.encoder.channels=16", "model.quantizer.codebook_size=16",
                                 "model.quantizer.dim=8", "model.decoder.residual_channels=8",
                                 "model.decoder.gate_channels=16", "model.decoder.skip_channels=16",
                                 "model.decoder.layers_per_cycle=4", "model.decoder.cond_channels=8",
                                 "model.decoder.speaker_dim=4", "model.quantizer.warmup_steps=0",
                                 *overrides])


def test_paper_encoder_downsamples_64x():
    enc = WaveformEncoder(channels=8, dim=4)
    assert enc.hop == 64
    assert enc(torch.zeros(2, 16000 * 64 // 64)).shape == (2, 4, 250)  # 1 s at 16 kHz → 250 codes
    assert enc(torch.zeros(1, 1, 4096)).shape == (1, 4, 64)


def test_code_rate_follows_the_config():
    cfg = small_cfg("model.encoder.layers=5", "data.sample_rate=8000", "data.segment=2048")
    model = AudioVQVAE(cfg.model, 3, cfg.data.sample_rate)
    assert model.hop == 32 and model.code_rate == 250.0
    assert model.encode(torch.zeros(1, 2048 + 5)).shape == (1, 65)


@pytest.mark.parametrize("upsample", ["transposed", "repeat"])
@pytest.mark.parametrize("output", ["categorical", "logistic_mixture"])
def test_decoder_is_causal_given_the_codes(upsample, output):
    torch.manual_seed(0)
    cfg = small_cfg(f"model.decoder.upsample={upsample}", f"model.decoder.output={output}")
    model = AudioVQVAE(cfg.model, 3, 16000).eval()
    wav = torch.rand(2, 512) * 2 - 1
    codes = model.quantizer(model.encoder(wav)).quantized
    spk = torch.tensor([0, 2])
    _, logits = model.reconstruction(wav, codes, spk)
    t = 300
    wav2 = wav.clone()
    wav2[:, t:] = torch.rand(2, 512 - t) * 2 - 1  # change samples from t on, keep the codes
    _, logits2 = model.reconstruction(wav2, codes, spk)
    # the output at t predicts sample t from samples < t: unchanged up to and including t
    assert torch.allclose(logits[..., : t + 1], logits2[..., : t + 1], atol=1e-6)
    assert not torch.allclose(logits[..., t + 1:], logits2[..., t + 1:])


def test_forward_loss_is_nll_plus_vq_terms_and_backpropagates():
    torch.manual_seed(0)
    cfg = small_cfg("model.quantizer.ema=false")
    model = AudioVQVAE(cfg.model, 2, 16000)
    out = model(torch.rand(2, 256) * 2 - 1, torch.tensor([0, 1]))
    assert torch.allclose(out.loss, out.nll + out.vq.loss)
    assert 4.0 < out.nll.item() < 7.0  # near log(256) = 5.55 at initialisation
    out.loss.backward()
    assert model.encoder.project.weight.grad.abs().sum() > 0
    assert model.quantizer.codebook.grad.abs().sum() > 0
    assert model.decoder.speakers.weight.grad.abs().sum() > 0


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="model.quantizer.nope"):
        load_config("vqvae", ["model.quantizer.nope=1"])
    with pytest.raises(ConfigError, match="codebook_size"):
        load_config("vqvae", ["model.quantizer.codebook_size=many"])
    with pytest.raises(ConfigError, match="must be positive"):
        load_config("vqvae", ["train.lr=0"])
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config("vqvae", ["preset=huge"])
    assert load_config("vqvae", ["preset=paper"]).model.quantizer.codebook_size == 512


def test_checkpoint_round_trip_and_errors(tmp_path):
    cfg = small_cfg()
    model = AudioVQVAE(cfg.model, 2, 16000)
    path = ckpt_io.save(tmp_path / "a.pt", ckpt_io.Checkpoint("vqvae", {"x": 1}, model.state_dict(), 7,
                                                              extra={"speakers": [{"id": "p225"}]}))
    back = ckpt_io.load(path, kind="vqvae")
    assert back.step == 7 and back.extra["speakers"][0]["id"] == "p225"
    assert all(torch.equal(back.model[k], v) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="expected 'prior'"):
        ckpt_io.load(path, kind="prior")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt_io.load(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt_io.load(tmp_path / "bad.pt")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "audiovq-checkpoint", "version": 1, "kind": "vqvae", "model": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        ckpt_io.load(path)


def test_long_input_is_encoded_in_chunks_with_the_same_codes():
    torch.manual_seed(0)
    cfg = small_cfg("model.quantizer.kmeans_iters=0")
    model = AudioVQVAE(cfg.model, 2, 16000).eval()
    wav = torch.randn(1, 64 * 500 + 17) * 0.3
    whole = model.encode(wav, chunk=10 ** 9)
    chunked = model.encode(wav, chunk=64 * 37)
    assert whole.shape == chunked.shape == (1, 501)
    assert torch.equal(whole, chunked)


def test_slim_export_loads_to_the_same_model(tmp_path):
    from audiovq.config import to_dict
    from audiovq.models import export, load_vqvae
    cfg = small_cfg()
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 2, 16000)
    full = ckpt_io.save(tmp_path / "full.pt", ckpt_io.Checkpoint(
        "vqvae", to_dict(cfg), model.state_dict(), 5, {"adam": {"state": {}}}, {"speakers": [{"id": "a"}, {"id": "b"}]}))
    slim = export(full, tmp_path / "slim.pt")
    assert slim.stat().st_size < full.stat().st_size
    a, b = load_vqvae(full), load_vqvae(slim)
    wav = torch.randn(1, 1024) * 0.3
    assert torch.equal(a.model.encode(wav), b.model.encode(wav))
    assert b.step == 5 and b.speakers == a.speakers


def test_encoding_with_z_e_gives_the_same_codes_and_the_encoder_output():
    from audiovq.codes import encode_utterances

    torch.manual_seed(0)
    cfg = small_cfg()
    model = AudioVQVAE(cfg.model, 2, 16000).eval()
    rng = torch.Generator().manual_seed(1)
    wavs = [(0.1 * torch.randn(n, generator=rng)).numpy() for n in (1000, 40_000, 70_001, 5_000)]
    plain = encode_utterances(model, wavs, batch_size=2, progress=False)  # windowed above 32k samples
    z_e: list = []
    with_z = encode_utterances(model, wavs, batch_size=2, progress=False, z_e=z_e)
    for a, b, z, w in zip(plain, with_z, z_e, wavs):
        assert (a == b).all() and z.shape == (a.size, 8)
        with torch.no_grad():  # z_e of the utterance alone, unpadded by other batch rows
            alone = model.encoder(torch.nn.functional.pad(torch.from_numpy(w)[None], (0, (-w.size) % 64)))[0].T
        assert torch.equal(model.quantizer(alone.T[None]).indices[0], torch.from_numpy(a))
        torch.testing.assert_close(torch.from_numpy(z[:-4]), alone[:-4], atol=1e-5, rtol=1e-4)  # batch padding
