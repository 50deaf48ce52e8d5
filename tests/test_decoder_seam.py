"""The decoder seam (nn/decoders/base.py): a decoder written only against the interface —
here a tiny linear one, in this file and the registry of kinds — trains with the Trainer and
generates through the engine's PyTorch path; the registry, the config key and old
checkpoints; one sampling rule (top-k, floor) in both backends and the prior."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from audiovq.config import TrainConfig, load_config
from audiovq.data.datasets import AudioBatch
from audiovq.errors import AudioVQError, ConfigError
from audiovq.generate import generate, generate_wavenet, stream
from audiovq.generate.conditioning import TensorLocal
from audiovq.nn.sampling import CATEGORICAL, SamplerSpec, sample
from audiovq.nn.decoders import KINDS, Decoder, DecoderOutput, StepInputs, register
from audiovq.nn.distributions import Categorical
from audiovq.nn.vqvae import AudioVQVAE
from audiovq.nn.wavenet import WaveNet
from audiovq.train import Distributed, Trainer


# ----------------------------------------------------------------------------- a toy decoder
class _Rows:
    def __init__(self, local: TensorLocal, glob: torch.Tensor):
        self.local, self.glob, self.hold = local, glob, local.hold

    def rows(self, t0, n, items=None):
        items = list(range(self.glob.shape[0])) if items is None else items
        b0 = t0 // self.hold
        return self.local.blocks(b0, b0 + -(-n // self.hold), items).transpose(1, 2) + self.glob[items, None]


class _Steps:
    def __init__(self, net, batch):
        self.net, self.device, self.outputs = net, net.prev.weight.device, net.prev.num_embeddings

    def step(self, t, inputs, cond):
        return self.net.prev(inputs) + cond


class LinearNet(nn.Module):
    """logits[t] = A[x_{t-1}] + frame term + speaker term: an autoregressive net of one table."""

    def __init__(self, classes):
        super().__init__()
        self.prev = nn.Embedding(classes, classes)

    def step_conditioning(self, local, glob, batch):
        return _Rows(local, glob)

    def incremental(self, batch):
        return _Steps(self, batch)


@register
class LinearDecoder(Decoder):
    kind = "test_linear"

    def __init__(self, cfg, code_dim, hop, num_speakers, sample_rate):
        super().__init__(hop, sample_rate, cfg.classes, cfg.preemphasis)
        self.output = Categorical(cfg.classes)
        self.frame = nn.Linear(code_dim, cfg.classes)
        self.speakers = nn.Embedding(num_speakers, cfg.classes)
        self.network = LinearNet(cfg.classes)

    def forward(self, wav, codewords, speaker, noise=None, pitch=None):
        from audiovq.audio import mu_law_encode
        target = mu_law_encode(wav, self.classes)
        inputs = F.pad(target[:, :-1], (1, 0), value=self.first_input)
        frames = self.frame(codewords.transpose(1, 2)).repeat_interleave(self.hop, 1)[:, : wav.shape[-1]]
        logits = (self.network.prev(inputs) + frames + self.speakers(speaker)[:, None]).transpose(1, 2)
        nll = F.cross_entropy(logits, target)
        return DecoderOutput(nll, nll, logits, {"frame_norm": self.frame.weight.norm()})

    def step_inputs(self, codebook, indices, speaker, frames, pitch=None):
        with torch.no_grad():
            features = self.frame(codebook.lookup(indices).transpose(1, 2)).transpose(1, 2)
            return StepInputs(TensorLocal(features, self.hop), self.speakers(speaker))


SMALL = ["model.encoder.channels=8", "model.encoder.layers=2", "model.quantizer.codebook_size=8",
         "model.quantizer.dim=4", "model.quantizer.warmup_steps=0", "model.quantizer.kmeans_iters=0",
         "model.decoder.classes=16", "model.decoder.residual_channels=8", "model.decoder.gate_channels=8",
         "model.decoder.skip_channels=8", "model.decoder.layers_per_cycle=2", "model.decoder.cycles=1",
         "model.decoder.cond_channels=4", "model.decoder.speaker_dim=3"]


def toy_model():
    cfg = load_config("vqvae", SMALL + ["model.decoder.kind=test_linear"])
    torch.manual_seed(0)
    return AudioVQVAE(cfg.model, 3, 8000)


def test_a_decoder_written_against_the_interface_trains_a_step_with_the_trainer(tmp_path):
    model = toy_model()
    assert isinstance(model.decoder, LinearDecoder) and KINDS["test_linear"] is LinearDecoder
    cfg = OmegaConf.structured(TrainConfig(run_dir=str(tmp_path), steps=1, ckpt_every=1, val_every=0, warmup=0))
    before = model.decoder.frame.weight.detach().clone()
    wav = 0.3 * torch.sin(torch.arange(2 * 256) * 0.05).view(2, 256)
    trainer = Trainer(cfg, model, kind="vqvae", config={}, extra={},
                      next_batch=lambda g, part: AudioBatch(wav, torch.tensor([0, 2])),
                      scalars=lambda out: out.scalars(model.code_rate), dist_info=Distributed())
    result = trainer.fit()
    assert result.step == 1
    assert not torch.equal(before, model.decoder.frame.weight)  # the decoder's loss reached its weights
    out = model(wav, torch.tensor([0, 2]))
    assert "frame_norm" in out.scalars(model.code_rate)  # the decoder's own numbers are logged


def test_a_decoder_written_against_the_interface_generates_through_the_engine():
    model = toy_model().eval()
    hop = model.hop
    codes = torch.randint(0, 8, (2, 5), generator=torch.Generator().manual_seed(1))
    lengths = [5 * hop, 3 * hop + 1]
    a = generate(model, codes, torch.tensor([0, 1]), lengths, seed=4, fast=True)  # no fast kernel: PyTorch
    assert [x.size for x in a.audio] == lengths
    alone = generate(model, codes[1:], torch.tensor([1]), lengths[1:], seed=5)
    np.testing.assert_array_equal(alone.audio[0], a.audio[1])  # item 1 of a batch = alone (seed + 1)
    blocks = list(stream(model, codes, torch.tensor([0, 1]), lengths, seed=4, block=hop))
    np.testing.assert_array_equal(np.concatenate([b.audio[0] for b in blocks]), a.audio[0])
    # by hand: the first sample is drawn from A[silence] + frame 0 + speaker, by the one rule
    d = model.decoder
    with torch.no_grad():
        logits = (d.network.prev.weight[d.first_input] + d.frame(model.quantizer.lookup(codes[:1, :1])[0, :, 0])
                  + d.speakers.weight[0])
    from audiovq.nn.sampling import UniformStream
    u = UniformStream(4, 1).take(1)
    k, _ = sample(SamplerSpec(CATEGORICAL, 1.0), logits[None], u)
    assert np.isclose(a.audio[0][0], d.to_waveform(np.array([int(k)]))[0])
    with pytest.raises(AudioVQError, match="fast CPU path"):
        generate(model, codes, torch.tensor([0, 1]), lengths, precision="int8")


def test_unknown_decoder_kind_is_one_line():
    cfg = load_config("vqvae", SMALL + ["model.decoder.kind=nope"])
    with pytest.raises(ConfigError, match="model.decoder.kind='nope': unknown decoder"):
        AudioVQVAE(cfg.model, 2, 8000)


def test_weights_saved_before_the_seam_load_into_the_wavenet_decoder():
    cfg = load_config("vqvae", SMALL)
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 2, 8000)
    old = {}
    for key, value in model.state_dict().items():  # the layout before nn/decoders/
        for new, was in (("decoder.conditioner.", "conditioner."), ("decoder.speakers.", "speakers."),
                         ("decoder.network.", "decoder.")):
            if key.startswith(new):
                key = was + key[len(new):]
                break
        old[key] = value.clone()
    fresh = AudioVQVAE(cfg.model, 2, 8000)
    fresh.load_state_dict(old)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


# ----------------------------------------------------------------------------- one sampling rule
def test_top_k_and_floor_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    u = torch.tensor([[0.9]])
    # plain: cumulative 0.5, 0.8, 0.95 → u = 0.9 falls in class 2
    assert int(sample(SamplerSpec(CATEGORICAL, 1.0), logits, u)[0]) == 2
    # top-2: 0.5/0.8, 0.3/0.8 → cumulative 0.625, 1.0 → class 1
    assert int(sample(SamplerSpec(CATEGORICAL, 1.0, top_k=2), logits, u)[0]) == 1
    # floor 0.1: 0.4, 0.2, 0.05, 0 → cumulative /0.65: 0.615, 0.923 → u = 0.9 → class 1
    assert int(sample(SamplerSpec(CATEGORICAL, 1.0, floor=0.1), logits, u)[0]) == 1
    assert int(sample(SamplerSpec(CATEGORICAL, 1.0, floor=0.1), logits, torch.tensor([[0.95]]))[0]) == 2
    # a floor above every probability keeps the likeliest class
    assert int(sample(SamplerSpec(CATEGORICAL, 1.0, floor=0.6), logits, u)[0]) == 0


@pytest.mark.parametrize("top_k,floor", [(5, 0.0), (0, 0.02), (7, 0.01)])
def test_both_backends_sample_by_the_same_rule(top_k, floor):
    torch.manual_seed(0)
    net = WaveNet(32, 32, [1, 2, 4], 8, 8, 8, global_channels=3).eval()
    with torch.no_grad():
        net.head[-1].weight.mul_(8.0)
    glob = torch.randn(3, 3)
    a = generate_wavenet(net, 80, glob=glob, temperature=0.9, top_k=top_k, floor=floor, seed=2, fast=True)
    b = generate_wavenet(net, 80, glob=glob, temperature=0.9, top_k=top_k, floor=floor, seed=2, fast=False)
    for x, y in zip(a.values, b.values):
        assert (x == y).mean() > 0.97  # logits agree to ~1e-7: a flip needs a uniform on a boundary
    if top_k:  # never outside the top k of the step's logits (teacher-forced with the sampled inputs)
        from audiovq.generate import teacher_forced_logits
        seq = torch.from_numpy(np.stack(b.values))
        inputs = F.pad(seq[:, :-1], (1, 0), value=0)
        logits = teacher_forced_logits(net, inputs, glob=glob, fast=False) / 0.9
        kth = logits.topk(top_k, 1).values[:, -1]
        picked = logits.gather(1, seq[:, None])[:, 0]
        assert (picked >= kth - 1e-5).all()


def test_the_prior_samples_top_k_with_the_same_rule_fast_and_torch():
    from audiovq.nn.prior import CodePrior
    from audiovq.prior import sample_codes
    cfg = load_config("prior", ["vqvae=x", "model.residual_channels=8", "model.gate_channels=8",
                                "model.skip_channels=8", "model.layers_per_cycle=3", "model.cycles=1",
                                "model.speaker_dim=4"])
    torch.manual_seed(0)
    prior = CodePrior(cfg.model, 12, 2).eval()
    fast = sample_codes(prior, 1, 40, 3, 1.0, top_k=4, seed=9)
    torch_path = sample_codes(prior, 1, 40, 3, 1.0, top_k=4, seed=9, fast=False)
    assert fast.shape == (3, 40) and (fast == torch_path).float().mean() > 0.97
    # sequence i draws from seed + i: the second sequence alone
    alone = sample_codes(prior, 1, 40, 1, 1.0, top_k=4, seed=10)
    assert torch.equal(alone[0], fast[1])
