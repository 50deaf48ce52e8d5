"""The Trainer under faults: non-finite losses are skipped and, if they persist, stop the run
with one clear message while the last good checkpoint stays."""
from types import SimpleNamespace
from typing import NamedTuple

import pytest
import torch
from omegaconf import OmegaConf

from audiovq import checkpoint as ckpt_io
from audiovq.config import TrainConfig
from audiovq.errors import AudioVQError, ConfigError
from audiovq.train import MAX_BAD_STEPS, Distributed, Trainer


class Batch(NamedTuple):
    x: torch.Tensor


class Toy(torch.nn.Module):
    """A linear model whose loss turns NaN on the steps listed in `bad`."""

    def __init__(self, bad):
        super().__init__()
        self.lin, self.bad, self.calls = torch.nn.Linear(3, 1), set(bad), 0

    def forward(self, x):
        loss = self.lin(x).pow(2).mean()
        if self.calls in self.bad:
            loss = loss * float("nan")
        self.calls += 1
        return SimpleNamespace(loss=loss)


def trainer(tmp_path, model, steps):
    cfg = OmegaConf.structured(TrainConfig(run_dir=str(tmp_path), steps=steps, ckpt_every=5, val_every=0,
                                           log_every=1, warmup=0))
    return Trainer(cfg, model, kind="toy", config={}, extra={},
                   next_batch=lambda g, part: Batch(torch.randn(4, 3, generator=g)),
                   scalars=lambda out: {"loss": out.loss.item()}, dist_info=Distributed())


def test_a_few_non_finite_losses_are_skipped(tmp_path):
    model = Toy(bad={3, 4})
    before = []
    t = trainer(tmp_path, model, 10)
    orig = t.optimizer.step

    def spy(*a, **k):
        before.append(model.calls)
        return orig(*a, **k)

    t.optimizer.step = spy
    result = t.fit()
    assert result.step == 10 and result.stopped == "steps"
    assert 4 not in before and 5 not in before  # no update after the NaN forward passes (calls 3, 4)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_persistent_non_finite_losses_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path):
    model = Toy(bad=set(range(7, 1000)))
    with pytest.raises(AudioVQError, match="non-finite"):
        trainer(tmp_path, model, 100).fit()
    assert model.calls == 7 + MAX_BAD_STEPS
    last = ckpt_io.load(ckpt_io.latest(tmp_path))
    assert last.step == 5 and all(torch.isfinite(v).all() for v in last.model.values())


def test_resume_from_a_weights_only_checkpoint_continues_the_schedule(tmp_path):
    model = Toy(bad=set())
    t = trainer(tmp_path, model, 10)
    t.step = 6
    ckpt_io.save(ckpt_io.step_path(tmp_path, 6), ckpt_io.Checkpoint("toy", {}, model.state_dict(), 6))
    t2 = trainer(tmp_path, Toy(bad=set()), 10)
    t2.resume()
    from audiovq.train import lr_factor
    assert t2.step == 6
    assert t2.optimizer.param_groups[0]["lr"] == pytest.approx(t2.cfg.lr * lr_factor(6, 10, 0, "cosine", 0.1))
    assert t2.fit().step == 10


def test_init_starts_a_new_run_from_another_runs_weights(tmp_path):
    src = Toy(bad=set())
    ckpt_io.save(tmp_path / "donor.pt", ckpt_io.Checkpoint("toy", {}, src.state_dict(), 40))
    cfg = OmegaConf.structured(TrainConfig(run_dir=str(tmp_path / "run"), steps=3, ckpt_every=5, val_every=0,
                                           init=str(tmp_path / "donor.pt")))
    model = Toy(bad=set())
    t = Trainer(cfg, model, kind="toy", config={}, extra={}, next_batch=lambda g, part: Batch(torch.zeros(4, 3)),
                scalars=lambda out: {"loss": out.loss.item()}, dist_info=Distributed())
    assert t.resume() is None and t.step == 0   # a new run: step, optimizer and schedule start afresh
    assert torch.equal(model.lin.weight, src.lin.weight)
    saved = ckpt_io.load(t.fit().checkpoint)
    assert saved.step == 3 and saved.extra["init_from"] == str(tmp_path / "donor.pt") and saved.extra["init_step"] == 40


def test_init_with_weights_of_another_shape_is_a_config_error(tmp_path):
    other = torch.nn.Module()
    other.lin = torch.nn.Linear(5, 1)
    ckpt_io.save(tmp_path / "donor.pt", ckpt_io.Checkpoint("toy", {}, other.state_dict(), 1))
    cfg = OmegaConf.structured(TrainConfig(run_dir=str(tmp_path / "run"), steps=3, init=str(tmp_path / "donor.pt")))
    t = Trainer(cfg, Toy(bad=set()), kind="toy", config={}, extra={}, next_batch=None,
                scalars=None, dist_info=Distributed())
    with pytest.raises(ConfigError, match="train.init=.*do not fit"):
        t.resume()
