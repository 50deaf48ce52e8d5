"""Training end to end on the embedded corpus: the loss falls, codes are used, resuming after
an interruption gives exactly the uninterrupted result, and a second run on the same
directory is refused."""
import pytest
import torch

from audiovq import checkpoint as ckpt_io
from audiovq.config import load_config
from audiovq.errors import AudioVQError
from audiovq.speech import train_vqvae
from audiovq.train import RunLock, lr_factor

SMALL = ["model.encoder.layers=6", "data.sample_rate=16000",  # the rate and hop these tests assume
         "model.encoder.channels=32", "model.quantizer.codebook_size=32", "model.quantizer.dim=16",
         "model.quantizer.warmup_steps=15", "model.quantizer.restart_after=10",
         "model.decoder.residual_channels=16", "model.decoder.gate_channels=32",
         "model.decoder.skip_channels=32", "model.decoder.layers_per_cycle=6", "model.decoder.cycles=1",
         "model.decoder.cond_channels=16", "model.decoder.speaker_dim=8", "data.segment=2048",
         "train.batch_size=4", "train.lr=3e-3", "train.warmup=10", "train.log_every=5", "train.threads=2",
         "train.listen=false"]


def cfg(corpus, run_dir, *extra):
    raw, prepared = corpus
    return load_config("vqvae", [f"data.root={raw}", f"data.prepared={prepared}",
                                 f"train.run_dir={run_dir}", *SMALL, *extra])


def test_short_run_lowers_the_loss_and_uses_the_codebook(small_corpus, tmp_path):
    result = train_vqvae(cfg(small_corpus, tmp_path, "train.steps=120", "train.val_every=120",
                             "train.ckpt_every=120"))
    assert result.step == 120 and result.checkpoint.exists()
    val = result.validation
    assert val["nll"] < 5.55 - 0.7, val          # held-out NLL from log(256) = 5.55 nats
    assert result.scalars["usage"] > 0.5, result.scalars  # a healthy share of K = 32 in use
    saved = ckpt_io.load(result.checkpoint, kind="vqvae")
    assert [s["id"] for s in saved.extra["speakers"]] == ["p225", "p226", "p227"]  # p228 held out
    assert saved.config["model"]["quantizer"]["codebook_size"] == 32
    assert (tmp_path / "tb").is_dir()


def test_resume_after_interruption_equals_an_uninterrupted_run(small_corpus, tmp_path):
    straight = train_vqvae(cfg(small_corpus, tmp_path / "a", "train.steps=24", "train.ckpt_every=12",
                               "train.val_every=0"))
    # "interrupted" after 12 steps: same config, but stop there; then re-run the full command
    train_vqvae(cfg(small_corpus, tmp_path / "b", "train.steps=24", "train.ckpt_every=12",
                    "train.val_every=0", "train.minutes=1e-9"))
    assert ckpt_io.latest(tmp_path / "b").name == "step-00000001.pt"
    resumed = train_vqvae(cfg(small_corpus, tmp_path / "b", "train.steps=24", "train.ckpt_every=12",
                              "train.val_every=0"))
    assert resumed.step == straight.step == 24
    a = ckpt_io.load(straight.checkpoint).model
    b = ckpt_io.load(resumed.checkpoint).model
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_second_run_on_the_same_directory_is_refused(tmp_path):
    lock = RunLock(tmp_path)
    with pytest.raises(AudioVQError, match="another training run"):
        RunLock(tmp_path)
    lock.release()
    RunLock(tmp_path).release()


def test_learning_rate_schedule():
    assert lr_factor(0, 100, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine", 0.1) == pytest.approx(0.55)   # half way: (1 + 0.1) / 2
    assert lr_factor(100, 100, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(50, 100, 10, "constant", 0.1) == 1.0


def test_training_with_speaker_perturbation_feeds_the_encoder_a_shifted_copy(small_corpus, tmp_path, monkeypatch):
    from audiovq.nn.vqvae import AudioVQVAE
    seen, noises = [], []
    forward = AudioVQVAE.forward

    def spy(self, wav, speaker, encoder_wav=None, decoder_noise=None, pitch=None, band_shift=None):
        seen.append((wav.clone(), None if encoder_wav is None else encoder_wav.clone()))
        noises.append(decoder_noise)
        return forward(self, wav, speaker, encoder_wav, decoder_noise, pitch, band_shift)

    monkeypatch.setattr(AudioVQVAE, "forward", spy)
    result = train_vqvae(cfg(small_corpus, tmp_path, "train.steps=3", "train.val_every=0",
                             "data.perturb_semitones=4"))
    assert result.step == 3 and torch.isfinite(torch.tensor(result.scalars["loss"]))
    train_calls = [(w, e) for w, e in seen if e is not None]
    assert len(train_calls) == 3
    for wav, enc in train_calls:  # same shape and timing, not the same samples (most rows shifted)
        assert enc.shape == wav.shape
        assert sum(not torch.equal(a, b) for a, b in zip(wav, enc)) >= 1
    # the preset's input noise comes with the batch, drawn for the global batch of each step
    drawn = [n for n in noises if n is not None]
    assert len(drawn) == 3 and drawn[0].shape == train_calls[0][0].shape and not torch.equal(drawn[0], drawn[1])


def test_pitch_only_perturbation_is_what_the_config_asks_for(small_corpus, tmp_path, monkeypatch):
    import audiovq.speech
    calls = []
    real = audiovq.speech.perturb_batch

    def spy(wav, factors, formants=True):
        calls.append(formants)
        return real(wav, factors, formants)

    monkeypatch.setattr(audiovq.speech, "perturb_batch", spy)
    train_vqvae(cfg(small_corpus, tmp_path, "train.steps=1", "train.val_every=0", "data.perturb_semitones=4",
                    "data.perturb_formants=false"))
    assert calls == [False]


def _trainer(*overrides):
    from audiovq.train import Trainer

    cfg = load_config("vqvae", ["train.device=cpu", "train.steps=1000", "train.warmup=10", "train.min_lr=0.1",
                                *overrides])
    return Trainer(cfg.train, torch.nn.Linear(1, 1), kind="vqvae", config={}, extra={},
                   next_batch=lambda g, part: None, scalars=lambda out: {})


def test_cosine_time_follows_the_clock_or_the_steps_whichever_is_further():
    t = _trainer("train.schedule=cosine_time", "train.minutes=10")
    factor = t.schedule.lr_lambdas[0]
    assert factor(5) == pytest.approx(0.6)             # warm-up as usual
    assert factor(505) == pytest.approx(0.55)          # no time spent: by steps, half way
    t.time_fraction = 0.505
    assert factor(20) == pytest.approx(0.55, abs=0.005)  # the clock is further: half way
    t.time_fraction = 1.2
    assert factor(20) == pytest.approx(0.1)              # over budget: the floor
    assert _trainer("train.schedule=cosine").schedule.lr_lambdas[0](20) > 0.99  # plain cosine ignores time


def test_cosine_time_needs_a_time_budget():
    from audiovq.errors import ConfigError

    with pytest.raises(ConfigError, match="train.minutes"):
        _trainer("train.schedule=cosine_time")


@pytest.mark.slow
def test_validation_logs_what_the_model_sounds_like(small_corpus, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train_vqvae(cfg(small_corpus, tmp_path, "train.steps=2", "train.val_every=2", "train.listen=true"))
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"audio": 0, "images": 0}).Reload()
    assert {"listen/reconstruction", "listen/conversion"} <= set(events.Tags()["audio"])
    assert {"listen/reconstruction_mel", "listen/conversion_mel"} <= set(events.Tags()["images"])
    clip = events.Audio("listen/conversion")[0]
    assert clip.step == 2 and clip.sample_rate == 16000
    pytest.importorskip("speechmos")
    assert 1 <= result.validation["conversion_dnsmos_ovrl"] <= 5


def test_a_run_stopped_by_its_time_budget_validates_at_its_last_step(tmp_path):
    from types import SimpleNamespace
    from typing import NamedTuple

    from omegaconf import OmegaConf

    from audiovq.config import TrainConfig
    from audiovq.train import Distributed, Trainer

    class Batch(NamedTuple):
        x: torch.Tensor

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, x):
            return SimpleNamespace(loss=self.lin(x).pow(2).mean())

    def run(name, steps, val_every, minutes):
        seen = []
        cfg = OmegaConf.structured(TrainConfig(run_dir=str(tmp_path / name), steps=steps, ckpt_every=1000,
                                               val_every=val_every, log_every=1, warmup=0, minutes=minutes))
        result = Trainer(cfg, Toy(), kind="toy", config={}, extra={},
                         next_batch=lambda g, part: Batch(torch.randn(4, 3, generator=g)),
                         scalars=lambda out: {"loss": out.loss.item()},
                         validate=lambda m, step: seen.append(step) or {"nll": 1.0}, dist_info=Distributed()).fit()
        return result, seen

    result, seen = run("short", 1000, 1000, 1e-9)  # stops after one step, long before step 1000
    assert (result.stopped, result.step, seen, result.validation) == ("time", 1, [1], {"nll": 1.0})
    assert run("every", 1000, 1, 1e-9)[1] == [1]     # just validated: not twice
    assert run("steps", 3, 1000, 0)[1] == []          # a run that ends by its steps: as before
