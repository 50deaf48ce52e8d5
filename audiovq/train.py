"""The one Trainer for every recipe: optimisation loop, LR schedule, AMP on CUDA, gradient
clipping, DistributedDataParallel under torchrun, atomic checkpoints with auto-resume, a
run lock, progress bar and TensorBoard logging.

A recipe hands it a model whose forward returns an object with `.loss`, a function that
draws batch `part` of the global batch from a generator, and functions turning outputs
and validations into numbers. Batches depend only on (seed, step), so a resumed or a
multi-process run sees the data an uninterrupted single-process run would.
"""
from __future__ import annotations

import contextlib
import fcntl
import math
import os
import pathlib
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from . import checkpoint as ckpt_io
from .devices import torch_device
from .errors import AudioVQError, ConfigError

MAX_BAD_STEPS = 20  # consecutive non-finite losses before the run is stopped


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self, batch_size: int) -> slice:
        """This process's slice of a global batch."""
        if batch_size % self.world:
            raise AudioVQError(f"train.batch_size={batch_size} must be divisible by the {self.world} processes")
        n = batch_size // self.world
        return slice(self.rank * n, (self.rank + 1) * n)


def setup(device: str = "auto", threads: int = 0) -> Distributed:
    """Pick the device; join the process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    try:
        dev = torch_device(device)
    except AudioVQError as e:
        raise AudioVQError(f"train.device: {e}") from None
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    else:
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world))
        # Tiny activations early in training turn into denormals, which are ~20x slower on CPUs.
        torch.set_flush_denormal(True)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Distributed(rank, world, dev)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def lr_factor(step: int, total: int, warmup: int, schedule: str, floor: float) -> float:
    """Linear warm-up, then constant or cosine decay to `floor` × lr at `total` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    step: int
    scalars: dict
    checkpoint: pathlib.Path | None
    stopped: str  # "steps", "time" or "non-finite"
    validation: dict  # the last validation's numbers (empty if none ran)


class RunLock:
    """An exclusive lock on a run directory: a second run pointed at it refuses to start."""

    def __init__(self, run_dir: pathlib.Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(run_dir / ".lock", "w")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise AudioVQError(f"{run_dir}: another training run is using this directory") from None

    def release(self) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


class Trainer:
    """Train `model` as configured by a `train` config section (see audiovq.config.TrainConfig).

    Args:
        model: forward(*batch) → object with `.loss` (scalar tensor).
        kind, config, extra: stored in every checkpoint (model type, resolved config, speaker
            table and such) so later commands need only the checkpoint.
        next_batch: (generator, part) → batch tuple; `part` is this process's slice.
        scalars: model output → dict of numbers for the progress bar and TensorBoard.
        validate: (model, step) → dict of numbers (and tensors, logged as histograms).
        show: names of the scalars shown on the progress bar.
    """

    def __init__(self, cfg, model: nn.Module, *, kind: str, config: dict, extra: dict,
                 next_batch: Callable[[torch.Generator, slice], Any],
                 scalars: Callable[[Any], dict], validate: Callable[[nn.Module, int], dict] | None = None,
                 show: tuple[str, ...] = ("loss",), dist_info: Distributed | None = None):
        self.cfg, self.kind, self.config, self.extra = cfg, kind, config, extra
        self.next_batch, self.scalars, self.validate_fn, self.show = next_batch, scalars, validate, show
        self.dist = dist_info or setup(cfg.device, cfg.threads)
        self.run_dir = pathlib.Path(cfg.run_dir)
        self.model = model.to(self.dist.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        if cfg.schedule == "cosine_time" and not cfg.minutes:
            raise ConfigError("train.schedule=cosine_time decays over the time budget: set train.minutes too")
        # cosine_time: the cosine runs over the wall-clock budget (or the steps, if they end
        # first), so a run stopped by train.minutes still ends at the floor learning rate.
        self.time_fraction, self.seconds = 0.0, 0.0

        def factor(step: int) -> float:
            if cfg.schedule == "cosine_time":
                step = max(step, round(self.time_fraction * cfg.steps))
            return lr_factor(step, cfg.steps, cfg.warmup, "constant" if cfg.schedule == "constant" else "cosine",
                             cfg.min_lr)

        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        cuda = self.dist.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16)
        self.use_amp = bool(cfg.amp and cuda)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.wrapped = self.model
        if self.dist.world > 1:
            # Buffers (the EMA codebook) are kept identical by the quantizer's own all-reduces;
            # DDP's per-step broadcast from rank 0 would hide a drifting rank instead.
            self.wrapped = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.dist.device.index] if cuda else None, broadcast_buffers=False)
        self.step = 0
        self.validation: dict = {}

    # ---------------------------------------------------------------- checkpoints
    def resume(self) -> pathlib.Path | None:
        """Load the newest checkpoint of the run directory, if any; returns its path."""
        if self.dist.main:
            ckpt_io.remove_stale_temporaries(self.run_dir)
        path = ckpt_io.latest(self.run_dir)
        if path is None:
            init = getattr(self.cfg, "init", None)
            if init:  # fine-tuning: weights only; step, optimizer and schedule start afresh
                state = ckpt_io.load(init, kind=self.kind, map_location=self.dist.device)
                try:
                    self.model.load_state_dict(state.model)
                except RuntimeError as e:
                    first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
                    raise ConfigError(f"train.init={init}: its weights do not fit this model ({first})") from None
                self.extra = dict(self.extra, init_from=str(init), init_step=state.step)
            return None
        state = ckpt_io.load(path, kind=self.kind, map_location=self.dist.device)
        self.model.load_state_dict(state.model)
        self.step = state.step
        self.extra = dict(self.extra, **{k: state.extra[k] for k in ("init_from", "init_step") if k in state.extra})
        if state.optimizer:
            self.seconds = float(state.optimizer.get("seconds", 0.0))
            self.optimizer.load_state_dict(state.optimizer["adam"])
            self.schedule.load_state_dict(state.optimizer["schedule"])
            if state.optimizer.get("scaler"):
                self.scaler.load_state_dict(state.optimizer["scaler"])
        else:  # weights only (an exported checkpoint): fresh Adam moments, the schedule continues
            self.schedule.last_epoch = self.step
            for group, base in zip(self.optimizer.param_groups, self.schedule.base_lrs):
                group["lr"] = base * self.schedule.lr_lambdas[0](self.step)
        return path

    def save(self) -> pathlib.Path:
        opt = {"adam": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
               "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {}, "seconds": self.seconds}
        state = ckpt_io.Checkpoint(self.kind, self.config, self.model.state_dict(), self.step, opt, self.extra)
        path = ckpt_io.save(ckpt_io.step_path(self.run_dir, self.step), state)
        ckpt_io.prune(self.run_dir, self.cfg.keep)
        return path

    # ----------------------------------------------------------------------- loop
    def fit(self) -> TrainResult:
        cfg, d = self.cfg, self.dist
        lock = RunLock(self.run_dir) if d.main else None
        try:
            return self._fit(cfg, d)
        finally:
            if lock:
                lock.release()

    def _fit(self, cfg, d: Distributed) -> TrainResult:
        resumed = self.resume()
        writer = None
        if d.main:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step or None)
            if resumed:
                tqdm.write(f"resuming from {resumed} (step {self.step})")
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not d.main, dynamic_ncols=True,
                   unit="step", mininterval=1.0)
        part = d.part(cfg.batch_size)
        t0, bad, stopped, last = time.monotonic(), 0, "steps", {}
        seconds_before = self.seconds  # training time of earlier invocations (cosine_time)
        saved = resumed
        rate_t, rate_n = time.monotonic(), 0
        while self.step < cfg.steps:
            # Every random choice in a step (batch, restarts) follows from (seed, step).
            seed = cfg.seed * 1_000_003 + self.step
            torch.manual_seed(seed)
            batch = self.next_batch(torch.Generator().manual_seed(seed), part)
            batch = type(batch)(*(None if t is None else t.to(d.device, non_blocking=True) for t in batch))
            self.model.train()
            with torch.autocast(d.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                out = self.wrapped(*batch)
            loss = out.loss
            finite = torch.isfinite(loss.detach()).float()
            if d.world > 1:
                dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            self.optimizer.zero_grad(set_to_none=True)
            if finite.item() < 1:  # skip the update, keep the last good weights
                bad += 1
                if d.main:
                    tqdm.write(f"step {self.step}: non-finite loss, update skipped ({bad} in a row)")
                if bad >= MAX_BAD_STEPS:
                    stopped = "non-finite"
                    break
                self.step += 1
                continue
            bad = 0
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip or float("inf"))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.seconds = seconds_before + time.monotonic() - t0
            if cfg.minutes:
                self.time_fraction = self.seconds / (cfg.minutes * 60)
            self.schedule.step()
            self.step += 1
            rate_n += 1

            if d.main and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                last = self.scalars(out)
                last["lr"] = self.optimizer.param_groups[0]["lr"]
                last["grad_norm"] = float(grad_norm)
                now = time.monotonic()
                last["steps_per_s"] = rate_n / max(now - rate_t, 1e-9)
                rate_t, rate_n = now, 0
                for k, v in last.items():
                    writer.add_scalar(f"train/{k}", v, self.step)
                bar.set_postfix({k: _fmt(last[k]) for k in self.show + ("steps_per_s",) if k in last},
                                refresh=False)
            bar.update(1)

            budget_used = self.seconds if cfg.schedule == "cosine_time" else time.monotonic() - t0
            out_of_time = bool(cfg.minutes) and budget_used > cfg.minutes * 60
            if d.world > 1:
                flag = torch.tensor(float(out_of_time), device=d.device)
                dist.broadcast(flag, 0)
                out_of_time = bool(flag.item())
            # a run stopped by its time budget validates at its last step too (unless it just did),
            # so that even one shorter than val_every steps shows what it learned
            if self.validate_fn and cfg.val_every and (self.step % cfg.val_every == 0 or out_of_time):
                self._validate(writer)
            if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps or out_of_time:
                if d.main:
                    saved = self.save()
                if d.world > 1:
                    dist.barrier()
            if out_of_time:
                stopped = "time"
                break
        bar.close()
        if d.main and (saved is None or stopped == "non-finite"):
            saved = ckpt_io.latest(self.run_dir)
        if writer:
            writer.close()
        if stopped == "non-finite":
            raise AudioVQError(f"training stopped at step {self.step}: {MAX_BAD_STEPS} non-finite losses "
                               f"in a row; last good checkpoint: {saved}")
        return TrainResult(self.step, last, saved, stopped, self.validation)

    def _validate(self, writer) -> None:
        if not self.dist.main:
            if self.dist.world > 1:
                dist.barrier()
            return
        self.model.eval()
        with torch.no_grad():
            result = self.validate_fn(self.model, self.step)
        for tag, kind, data, rate in result.pop("media", []):  # what to hear and see
            if kind == "audio":
                writer.add_audio(tag, torch.as_tensor(data).reshape(1, -1), self.step, sample_rate=rate)
            else:
                writer.add_image(tag, data, self.step)
        for k, v in result.items():
            if torch.is_tensor(v):
                writer.add_histogram(f"val/{k}", v, self.step)
            else:
                writer.add_scalar(f"val/{k}", v, self.step)
        self.validation = {k: v for k, v in result.items() if not torch.is_tensor(v)}
        numbers = ", ".join(f"{k} {_fmt(v)}" for k, v in self.validation.items())
        tqdm.write(f"step {self.step} validation: {numbers}")
        if self.dist.world > 1:
            dist.barrier()


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
