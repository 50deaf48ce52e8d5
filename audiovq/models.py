"""Trained models back from their checkpoints, and which checkpoint a command uses by default.

Everything a model needs is in its checkpoint (config, speaker table, weights), so commands
take only a path. Without one they use the demo model shipped with the package
(audiovq/assets/demo-vqvae.pt; how it was trained: docs/tiny-preset.md).
"""
from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

import torch

from . import checkpoint as ckpt_io
from .errors import AudioVQError, CheckpointError, ConfigError
from .nn.vqvae import AudioVQVAE

SHIPPED = pathlib.Path(__file__).resolve().parent / "assets" / "demo-vqvae.pt"
SHIPPED_PRIOR = SHIPPED.with_name("demo-prior.pt")  # a prior over the shipped model's codes


class LoadedVQVAE(NamedTuple):
    model: AudioVQVAE      # in eval mode, on the requested device
    config: object         # the run's validated config (DictConfig)
    speakers: list[dict]   # training speakers in embedding order: id, gender, accent, …
    path: pathlib.Path
    step: int
    extra: dict            # what the run recorded: corpus, code rate, …

    @property
    def temperature(self) -> float:
        """The decoder sampling temperature recorded at export (default 1)."""
        return float(self.extra.get("temperature", 1.0))

    @property
    def renderer(self) -> str:
        """What renders the decoder's frames by default, recorded at export ("network", the
        default, "pulses" or "world": generate/renderers/; models exported before the name
        recorded it as "excitation"); "world" for a decoder without a network of its own."""
        from .generate.engine import default_renderer
        return str(self.extra.get("renderer", self.extra.get("excitation", default_renderer(self.model.decoder))))

    def speaker_index(self, speaker_id: str) -> int:
        ids = [s["id"] for s in self.speakers]
        if speaker_id not in ids:
            raise AudioVQError(f"unknown speaker {speaker_id!r}; this model knows: {', '.join(ids)}")
        return ids.index(speaker_id)


def default_checkpoint() -> pathlib.Path:
    """The shipped demo model (a short `make demo` run does not convert yet; this one was
    trained for hours)."""
    if SHIPPED.is_file():
        return SHIPPED
    raise CheckpointError(f"no checkpoint given and the shipped demo model {SHIPPED} is missing "
                          "(a damaged install?): pass --checkpoint PATH")


def default_prior() -> pathlib.Path:
    """The shipped prior over the shipped demo model's codes."""
    if SHIPPED_PRIOR.is_file():
        return SHIPPED_PRIOR
    raise CheckpointError(f"no prior given and the shipped prior {SHIPPED_PRIOR} is missing: pass --prior PATH")


POOL = "quantizer.pool"  # recent encoder outputs kept for codebook restarts: training state only
# (the quantizer accepts an empty one when loading: see VectorQuantizer._load_from_state_dict)


RENDERERS = ("network", "pulses", "world")  # generate.engine.RENDERERS (not imported: it loads numba)


def export(path: str | os.PathLike, out: str | os.PathLike, temperature: float | None = None,
           renderer: str | None = None) -> pathlib.Path:
    """A slim copy of a speech VQ-VAE (or prior) checkpoint for sharing and inference: weights,
    config and speaker table, without optimizer state and the quantizer's reservoir. `temperature`
    records the decoder sampling temperature this model is best heard at (measured, e.g. by
    tools/eval_conversions.py); commands use it when none is given; `renderer` likewise records
    how a source-filter decoder is best heard ("network", "pulses" or "world")."""
    ckpt = ckpt_io.load(path)
    if ckpt.kind not in ("vqvae", "prior"):
        raise CheckpointError(f"{path}: a {ckpt.kind} checkpoint; export takes a speech VQ-VAE or its prior")
    state = dict(ckpt.model)
    if POOL in state:
        state[POOL] = state[POOL][:0].clone()
    extra = dict(ckpt.extra, exported_from=str(path))
    if temperature is not None:
        if ckpt.kind != "vqvae":
            raise ConfigError("--temperature is the decoder's: it applies to a VQ-VAE checkpoint")
        if not 0 <= temperature <= 2:
            raise ConfigError(f"temperature={temperature}: must be between 0 and 2")
        extra["temperature"] = float(temperature)
    if renderer is not None:
        decoder = (ckpt.config.get("model") or {}).get("decoder") or {}
        if renderer not in RENDERERS:
            raise ConfigError(f"renderer={renderer!r}: must be one of {', '.join(RENDERERS)}")
        if renderer != "network" and not (decoder.get("kind") == "source_filter" and decoder.get("lpc", True)):
            raise ConfigError(f"--renderer {renderer} needs a source_filter decoder with linear prediction")
        if renderer == "network" and not decoder.get("network", True):
            raise ConfigError("--renderer network needs the decoder's excitation network; this model was "
                              "trained without one (model.decoder.network=false)")
        extra.pop("excitation", None)  # (the key's old name)
        extra["renderer"] = renderer
    slim = ckpt_io.Checkpoint(ckpt.kind, ckpt.config, state, ckpt.step, None, extra)
    return ckpt_io.save(out, slim)


def load_vqvae(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LoadedVQVAE:
    """Rebuild the speech VQ-VAE of a checkpoint (a file, or a run directory → its newest;
    default: the shipped model). Checkpoints from before `model.decoder.kind` load as the
    WaveNet decoder, their weights moved to its module (nn/vqvae.py)."""
    def build(cfg, ckpt):
        speakers = ckpt.extra.get("speakers") or []
        if not speakers:
            raise CheckpointError("checkpoint has no speaker table")
        return AudioVQVAE(cfg.model, len(speakers), cfg.data.sample_rate)

    m = ckpt_io.load_model(path, "vqvae", build, device, default=default_checkpoint)
    return LoadedVQVAE(m.model, m.config, m.checkpoint.extra["speakers"], m.checkpoint.path, m.checkpoint.step,
                       m.checkpoint.extra)


def training_corpus(m: LoadedVQVAE) -> str:
    """The prepared corpus a model was trained on. The embedded corpus is rebuilt from the
    checkpoint's data config when it is not here (it is deterministic per seed)."""
    corpus = m.extra.get("corpus")
    if corpus and pathlib.Path(corpus, "manifest.json").is_file():
        return corpus
    if m.config.data.root is None:
        from .corpus import ensure_prepared
        from .data import flite
        if "+flite" in str(corpus) and not flite.available():
            raise AudioVQError(f"{m.path}: its corpus has flite voices; install flite (apt-get install flite) "
                               "to rebuild it, or pass --data PREPARED_DIR")
        return str(ensure_prepared(m.config.data).root)
    raise AudioVQError(f"{m.path}: its corpus {corpus or '(not recorded)'} is not here; pass --data PREPARED_DIR")
