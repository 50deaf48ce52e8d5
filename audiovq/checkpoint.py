"""Checkpoints: written atomically, loaded safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts — so it loads
with `torch.load(weights_only=True)`, which refuses anything that would run code while
unpickling. It carries everything later commands need: the model kind, the resolved config,
the speaker table and the weights (plus optimizer state and step for resuming).
"""
from __future__ import annotations

import os
import pathlib
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import torch

from .atomic import atomic_path
from .errors import CheckpointError

FORMAT = "audiovq-checkpoint"
VERSION = 1
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


@dataclass
class Checkpoint:
    kind: str                     # "vqvae", "prior", "image_vqvae", "pixelcnn"
    config: dict                  # the run's resolved config (see audiovq.config)
    model: dict                   # model state_dict
    step: int = 0
    optimizer: dict | None = None
    extra: dict = field(default_factory=dict)  # speakers, code rate, parent checkpoint, …
    path: pathlib.Path | None = None


def save(path: str | os.PathLike, ckpt: Checkpoint) -> pathlib.Path:
    """Write atomically: a crash mid-write never leaves a truncated file under `path`."""
    payload = {"format": FORMAT, "version": VERSION, "kind": ckpt.kind, "config": ckpt.config,
               "model": ckpt.model, "step": ckpt.step, "optimizer": ckpt.optimizer, "extra": ckpt.extra}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return pathlib.Path(path)


def load(path: str | os.PathLike, kind: str | None = None, map_location: Any = "cpu") -> Checkpoint:
    """Load and check a checkpoint; `kind` is the model type the caller expects."""
    path = pathlib.Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(f"{path}: refused: it contains objects other than tensors and "
                                  "plain data (possibly code); not loading it") from None
        raise CheckpointError(f"{path}: corrupt checkpoint ({str(e).splitlines()[0][:100]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt or not a checkpoint ({str(e).splitlines()[0][:100]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an audiovq checkpoint")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {data.get('version')} is not "
                              f"supported by this audiovq (expects {VERSION})")
    if kind is not None and data.get("kind") != kind:
        raise CheckpointError(f"{path}: is a {data.get('kind')!r} checkpoint, expected {kind!r}")
    return Checkpoint(data["kind"], data["config"], data["model"], int(data.get("step", 0)),
                      data.get("optimizer"), data.get("extra") or {}, path)


def step_path(run_dir: str | os.PathLike, step: int) -> pathlib.Path:
    return pathlib.Path(run_dir) / "checkpoints" / f"step-{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[pathlib.Path]:
    """A run's checkpoints, oldest first."""
    folder = pathlib.Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest(run_dir: str | os.PathLike) -> pathlib.Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def remove_stale_temporaries(run_dir: str | os.PathLike) -> None:
    """Delete half-written checkpoints left by a process killed while saving."""
    folder = pathlib.Path(run_dir) / "checkpoints"
    for tmp in folder.glob(".step-*.tmp*") if folder.is_dir() else []:
        tmp.unlink(missing_ok=True)


def prune(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints of a run."""
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


# ----------------------------------------------------------------------- models
CONFIG_KINDS = {"vqvae": "vqvae", "prior": "prior", "image_vqvae": "images", "pixelcnn": "images_prior"}


class LoadedModel(NamedTuple):
    model: Any           # the nn.Module, in eval mode, on the requested device
    config: Any          # the run's validated config (DictConfig)
    checkpoint: Checkpoint


def resolve(path: str | os.PathLike | None, default: Callable[[], pathlib.Path] | None = None) -> pathlib.Path:
    """A checkpoint file: as given, the newest of a run directory, or `default()` for None."""
    if path is None or str(path) == "":
        if default is None:
            raise CheckpointError("no checkpoint given")
        return default()
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        found = latest(path)
        if found is None:
            raise CheckpointError(f"{path}: run directory has no checkpoints")
        return found
    return path


def load_model(path: str | os.PathLike | None, kind: str, build: Callable[[Any, Checkpoint], Any],
               device: Any = "cpu", default: Callable[[], pathlib.Path] | None = None) -> LoadedModel:
    """The one loader of every model kind: resolve the path (file, run directory, or the
    default), load safely with the format, version and kind checks of `load`, validate the
    stored config, `build(config, checkpoint)` the module and load its weights. Whatever is
    wrong is one CheckpointError naming the file."""
    from .config import from_dict
    from .devices import torch_device
    from .errors import AudioVQError
    device = torch_device(device)  # a missing GPU fails before the checkpoint is read
    path = resolve(path, default)
    ckpt = load(path, kind=kind)
    try:
        cfg = from_dict(CONFIG_KINDS[kind], ckpt.config)
        model = build(cfg, ckpt)
    except AudioVQError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: incomplete {kind} checkpoint ({type(e).__name__}: {e})") from None
    try:
        model.load_state_dict(ckpt.model)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model its config describes "
                              f"({str(e).splitlines()[0][:120]})") from None
    return LoadedModel(model.to(device).eval(), cfg, ckpt)
