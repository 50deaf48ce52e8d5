"""The prior over codes: causal, learns a known pattern down to its entropy, and the code
extraction cache is reused for an unchanged checkpoint and redone for a changed one."""
import math

import numpy as np
import torch

from audiovq import checkpoint as ckpt_io
from audiovq.codes import extract_codes
from audiovq.config import load_config
from audiovq.data.manifest import Manifest
from audiovq.nn.prior import CodePrior
from audiovq.nn.vqvae import AudioVQVAE
from audiovq.prior import unigram_bits


def small_prior(K=8, speakers=2):
    cfg = load_config("prior", ["vqvae=x", "model.residual_channels=16", "model.gate_channels=32",
                                "model.skip_channels=32", "model.layers_per_cycle=4", "model.cycles=1",
                                "model.speaker_dim=4"])
    return CodePrior(cfg.model, K, speakers)


def test_prior_is_causal():
    torch.manual_seed(0)
    prior = small_prior().eval()
    codes = torch.randint(8, (2, 40))
    spk = torch.tensor([0, 1])
    a = prior(codes, spk).logits
    changed = codes.clone()
    changed[:, 20:] = (codes[:, 20:] + 1) % 8
    b = prior(changed, spk).logits
    # logits at t predict code t from codes < t: unchanged through t = 20
    assert torch.allclose(a[..., :21], b[..., :21])
    assert not torch.allclose(a[..., 21:], b[..., 21:])


def test_prior_learns_a_known_pattern_down_to_its_entropy():
    """Codes follow c_t = c_{t-1} + 1 (mod K) with probability 0.9, else uniform over the
    other K − 1 codes: true entropy per code H = h(0.9) + 0.1 log2(K − 1) bits."""
    torch.manual_seed(0)
    K, L, B = 8, 64, 32
    rng = np.random.default_rng(0)

    def draw(n):
        c = np.zeros((n, L), np.int64)
        c[:, 0] = rng.integers(K, size=n)
        for t in range(1, L):
            nxt = (c[:, t - 1] + 1) % K
            other = (nxt + rng.integers(1, K, size=n)) % K
            c[:, t] = np.where(rng.random(n) < 0.9, nxt, other)
        return torch.from_numpy(c)

    h = -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1)) + 0.1 * math.log2(K - 1)
    prior = small_prior(K, 1)
    opt = torch.optim.Adam(prior.parameters(), 1e-2)
    spk = torch.zeros(B, dtype=torch.long)
    for _ in range(150):
        out = prior(draw(B), spk)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    with torch.no_grad():
        test = draw(64)
        bits = float(prior(test[:, 1:], torch.zeros(64, dtype=torch.long)).loss) / math.log(2)
    # the first position of each sequence has log2 K bits; the rest should approach h
    assert bits < h + 0.15, (bits, h)
    assert bits > h - 0.1  # cannot beat the true entropy (by more than sampling noise)


def test_unigram_baseline_hand_computed():
    # train counts (code 0: 3, code 1: 1, code 2: 0) + 1 → p = (4, 2, 1) / 7
    bits = unigram_bits([np.array([0, 0, 0, 1])], [np.array([0, 2])], 3)
    assert math.isclose(bits, -(math.log2(4 / 7) + math.log2(1 / 7)) / 2)


def _saved_vqvae(tmp_path, *overrides):
    """A small 16 kHz VQ-VAE (hop 64) with random weights, saved as tmp_path/m.pt."""
    cfg = load_config("vqvae", ["model.encoder.layers=6", "model.encoder.channels=8",
                                "model.quantizer.codebook_size=16", "model.quantizer.dim=4",
                                "model.decoder.layers_per_cycle=2", *overrides])
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 3, 16000).eval()
    return model, ckpt_io.save(tmp_path / "m.pt", ckpt_io.Checkpoint("vqvae", {}, model.state_dict()))


def test_code_extraction_is_cached_per_checkpoint(small_corpus, tmp_path):
    _, prepared = small_corpus
    manifest = Manifest.load(prepared)
    model, path = _saved_vqvae(tmp_path)
    first = extract_codes(model, path, manifest, tmp_path / "cache", progress=False)
    files = list((tmp_path / "cache").glob("codes-*.npz"))
    assert len(files) == 1 and len(first.codes) == len(manifest.utterances)
    assert first.codes[0].size == -(-manifest.utterances[0].num_samples // 64)
    mtime = files[0].stat().st_mtime_ns
    again = extract_codes(model, path, manifest, tmp_path / "cache", progress=False)
    assert files[0].stat().st_mtime_ns == mtime  # reused, not rewritten
    assert all(np.array_equal(a, b) for a, b in zip(first.codes, again.codes))
    with torch.no_grad():
        model.quantizer.codebook.mul_(-1)  # a changed model → a changed checkpoint
    ckpt_io.save(path, ckpt_io.Checkpoint("vqvae", {}, model.state_dict()))
    extract_codes(model, path, manifest, tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("codes-*.npz"))) == 2


def test_incremental_prior_logits_equal_the_parallel_forward():
    from audiovq.generate import teacher_forced_logits
    torch.manual_seed(0)
    prior = small_prior(K=8, speakers=2).eval()
    codes = torch.randint(8, (2, 50))
    spk = torch.tensor([1, 0])
    with torch.no_grad():
        parallel = prior(codes, spk).logits
        glob = prior.speakers(spk)
        for fast in (False, True):
            stepped = teacher_forced_logits(prior.wavenet, prior.inputs(codes), glob=glob, fast=fast)
            assert torch.allclose(stepped, parallel, atol=1e-4), fast


def test_a_prior_of_the_shipped_model_finds_it_wherever_the_package_lives(tmp_path):
    import pytest
    from audiovq.codes import file_digest
    from audiovq.config import to_dict
    from audiovq.errors import CheckpointError
    from audiovq.models import SHIPPED
    from audiovq.prior import load_prior

    cfg = load_config("prior", ["vqvae=/elsewhere/audiovq/assets/demo-vqvae.pt", "model.residual_channels=16",
                                "model.gate_channels=32", "model.skip_channels=32", "model.layers_per_cycle=4",
                                "model.cycles=1", "model.speaker_dim=4"])
    prior = CodePrior(cfg.model, 128, 2)
    extra = {"vqvae": "/elsewhere/audiovq/assets/demo-vqvae.pt", "vqvae_digest": file_digest(SHIPPED),
             "num_codes": 128, "speakers": ["p225", "p226"]}
    path = ckpt_io.save(tmp_path / "prior.pt", ckpt_io.Checkpoint("prior", to_dict(cfg), prior.state_dict(), 1,
                                                                  None, extra))
    assert load_prior(path).vqvae.path == SHIPPED  # the recorded path is gone; the digest matches the shipped model
    extra["vqvae_digest"] = "0" * 16
    other = ckpt_io.save(tmp_path / "other.pt", ckpt_io.Checkpoint("prior", to_dict(cfg), prior.state_dict(), 1,
                                                                   None, extra))
    with pytest.raises(CheckpointError, match="is gone"):
        load_prior(other)


def test_a_strided_models_prior_sees_its_distinct_codes(small_corpus, tmp_path):
    """With a code stride R the prior's corpus holds every R-th frame's code (the distinct
    ones), at the bottleneck rate; held over R frames again they are `encode`'s codes."""
    _, prepared = small_corpus
    manifest = Manifest.load(prepared)
    model, path = _saved_vqvae(tmp_path, "model.encoder.code_stride=2")
    corpus = extract_codes(model, path, manifest, tmp_path / "cache", progress=False)
    assert corpus.code_rate == 16000 / 128
    u = manifest.utterances[0]
    from audiovq import audio
    frames = model.encode(torch.from_numpy(audio.load(manifest.audio_path(u), 16000))[None])[0]
    assert corpus.codes[0].size == -(-frames.numel() // 2)
    assert torch.equal(model.held(torch.from_numpy(corpus.codes[0])[None])[0, :frames.numel()], frames)
