"""Training and scoring the prior over codes: extract (cached) codes with the VQ-VAE, train
the CodePrior with the shared Trainer, evaluate bits per code on held-out utterances beside
the unigram baseline and log2 K.
"""
from __future__ import annotations

import math
import pathlib
from typing import NamedTuple

import numpy as np
import torch

from . import config as config_mod
from .codes import CodeCorpus, extract_codes, file_digest
from .data.manifest import Manifest
from .errors import AudioVQError
from .models import load_vqvae
from .nn.prior import CodePrior
from .train import Trainer, TrainResult, setup


class CodeBatch(NamedTuple):
    codes: torch.Tensor    # (B, L) int64
    speaker: torch.Tensor  # (B,) int64
    mask: torch.Tensor     # (B, L) bool: real codes (False = padding)


class CodeWindows:
    """Random windows of `length` codes from the utterances of `split` of known speakers."""

    def __init__(self, corpus: CodeCorpus, split: str, length: int, speaker_ids: list[str]):
        index = {s: i for i, s in enumerate(speaker_ids)}
        keep = [i for i, (sp, sl) in enumerate(zip(corpus.speakers, corpus.splits)) if sl == split and sp in index]
        if not keep:
            raise AudioVQError(f"no {split!r} utterances of the model's speakers to train the prior on")
        self.codes = [corpus.codes[i] for i in keep]
        self.speaker = np.array([index[corpus.speakers[i]] for i in keep])
        sizes = np.array([c.size for c in self.codes], dtype=np.float64)
        self.weights = torch.from_numpy(sizes / sizes.sum())
        self.length = length

    def batch(self, batch_size: int, generator: torch.Generator, part: slice = slice(None)) -> CodeBatch:
        picks = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        offsets = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        picks, offsets = picks[part].tolist(), offsets[part].tolist()
        codes = np.zeros((len(picks), self.length), np.int64)
        mask = np.zeros((len(picks), self.length), bool)
        for row, (i, o) in enumerate(zip(picks, offsets)):
            c = self.codes[i]
            start = int(o * max(c.size - self.length, 0))
            w = c[start:start + self.length]
            codes[row, : w.size], mask[row, : w.size] = w, True
        return CodeBatch(torch.from_numpy(codes), torch.from_numpy(self.speaker[picks]).long(), torch.from_numpy(mask))


def unigram_bits(train: list[np.ndarray], test: list[np.ndarray], num_codes: int) -> float:
    """Cross-entropy (bits/code) of held-out codes under add-one-smoothed training frequencies."""
    counts = np.bincount(np.concatenate(train), minlength=num_codes) + 1.0
    p = counts / counts.sum()
    return float(-np.log2(p[np.concatenate(test)]).mean())


@torch.no_grad()
def heldout_bits(prior: CodePrior, windows: CodeWindows, device, batch_size: int = 16) -> float:
    """Teacher-forced NLL of whole held-out utterances, bits per code."""
    total, count = 0.0, 0
    for start in range(0, len(windows.codes), batch_size):
        chunk = windows.codes[start:start + batch_size]
        longest = max(c.size for c in chunk)
        codes = torch.zeros(len(chunk), longest, dtype=torch.long)
        mask = torch.zeros(len(chunk), longest, dtype=torch.bool)
        for row, c in enumerate(chunk):
            codes[row, : c.size], mask[row, : c.size] = torch.from_numpy(c), True
        spk = torch.from_numpy(windows.speaker[start:start + batch_size]).long()
        out = prior(codes.to(device), spk.to(device), mask.to(device))
        total += float(out.loss) * int(mask.sum())
        count += int(mask.sum())
    return total / count / math.log(2)


def train_prior(cfg) -> TrainResult:
    """Train (or resume) the prior of a `prior` config (cfg.vqvae names the VQ-VAE)."""
    d = setup(cfg.train.device, cfg.train.threads)
    vq = load_vqvae(cfg.vqvae, d.device)
    corpus_dir = vq.extra.get("corpus")
    if not corpus_dir:
        raise AudioVQError(f"{vq.path}: the checkpoint records no prepared corpus to extract codes from")
    manifest = Manifest.load(corpus_dir)
    cache = pathlib.Path(cfg.data.cache_dir or cfg.train.run_dir)
    corpus = extract_codes(vq.model, vq.path, manifest, cache, progress=d.main)
    ids = [s["id"] for s in vq.speakers]
    train = CodeWindows(corpus, "train", cfg.data.segment, ids)
    val = CodeWindows(corpus, "val", cfg.data.segment, ids)
    K = corpus.num_codes
    torch.manual_seed(cfg.train.seed)
    prior = CodePrior(cfg.model, K, len(ids))
    baseline = unigram_bits(train.codes, val.codes, K)

    def validate(model, step):
        return {"bits_per_code": heldout_bits(model, val, d.device), "unigram_bits": baseline,
                "uniform_bits": math.log2(K)}

    extra = {"vqvae": str(pathlib.Path(vq.path).resolve()), "vqvae_digest": file_digest(vq.path),
             "speakers": vq.speakers, "num_codes": K, "code_rate": corpus.code_rate}
    trainer = Trainer(cfg.train, prior, kind="prior", config=config_mod.to_dict(cfg), extra=extra,
                      next_batch=lambda g, part: train.batch(cfg.train.batch_size, g, part),
                      scalars=lambda out: out.scalars(), validate=validate,
                      show=("bits_per_code",), dist_info=d)
    if d.main:
        print(f"prior: {sum(p.numel() for p in prior.parameters()) / 1e6:.2f} M parameters, K={K}, "
              f"{len(train.codes)} train / {len(val.codes)} held-out utterances; unigram baseline "
              f"{baseline:.2f} bits/code, uniform {math.log2(K):.2f}", flush=True)
    return trainer.fit()


class LoadedPrior(NamedTuple):
    prior: CodePrior
    vqvae: object          # LoadedVQVAE the codes belong to
    speakers: list[dict]
    path: pathlib.Path
    step: int


def load_prior(path, device="cpu") -> LoadedPrior:
    """A trained prior and the VQ-VAE it models (named in its checkpoint)."""
    from . import checkpoint as ckpt_io
    from .errors import CheckpointError
    from .models import SHIPPED, default_prior

    found = {}

    def build(cfg, ckpt):
        """The prior, once its VQ-VAE is known to be here and unchanged."""
        extra = ckpt.extra
        vq_path = pathlib.Path(extra.get("vqvae", ""))
        if not vq_path.is_file() and SHIPPED.is_file() and file_digest(SHIPPED) == extra.get("vqvae_digest"):
            vq_path = SHIPPED  # a prior of the shipped model, trained where the package lived elsewhere
        if not vq_path.is_file():
            raise CheckpointError(f"its VQ-VAE checkpoint {vq_path} is gone; the prior cannot be decoded")
        if file_digest(vq_path) != extra.get("vqvae_digest"):
            raise CheckpointError(f"{vq_path} changed since the prior was trained on its codes")
        found["vqvae"] = vq_path
        return CodePrior(cfg.model, int(extra["num_codes"]), len(extra["speakers"]))

    m = ckpt_io.load_model(path, "prior", build, device, default=default_prior)
    vq = load_vqvae(found["vqvae"], device)
    return LoadedPrior(m.model, vq, m.checkpoint.extra["speakers"], m.checkpoint.path, m.checkpoint.step)


@torch.no_grad()
def sample_codes(prior: CodePrior, speaker: int, steps: int, n: int = 1, temperature: float = 1.0,
                 top_k: int = 0, seed: int = 0, fast: bool = True) -> torch.Tensor:
    """n code sequences (n, steps) for one speaker by cached incremental sampling (batched),
    with the sampling rule every generator uses (nn/sampling.py): sequence i draws from
    seed + i's stream, top-k included."""
    from .generate import generate_wavenet
    device = prior.speakers.weight.device
    glob = prior.speakers(torch.full((n,), speaker, dtype=torch.long, device=device))
    try:
        gen = generate_wavenet(prior.wavenet, steps, glob=glob, first_input=prior.start_token,
                               temperature=temperature, top_k=top_k, seed=seed, fast=fast)
    except ValueError as e:
        raise AudioVQError(str(e)) from None
    return torch.from_numpy(np.stack(gen.values)).long()
