"""Images as a second modality: training and evaluating the image VQ-VAE and the Gated
PixelCNN prior over its codes (the paper's section 4.1), from an "images" or "images_prior"
config (see audiovq/config.py), through the one Trainer.

    train_image_vqvae(cfg)  → TrainResult          (kind "image_vqvae")
    report_vqvae(path)      → metrics dict; writes reconstructions.png and metrics.json
    train_image_prior(cfg)  → TrainResult          (kind "pixelcnn")
    report_prior(path)      → metrics dict; writes samples.png and prior_metrics.json

Metrics on the held-out split: reconstruction MSE (pixels in [0, 1]) and MSE ÷ data variance,
bits/dim = discretized-logistic NLL + log2(K)·latents/dims (see audiovq.nn.image_vqvae), codebook
usage (codes used, perplexity, per-code counts); for the prior: NLL per code and the bits/dim
with the prior's cross-entropy in place of log2 K, and the time to sample (fast and naive).
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import time
from typing import NamedTuple

import numpy as np
import torch

from . import checkpoint as ckpt_io
from . import config as config_mod
from .atomic import atomic_path, write_text
from .data.images import ImageSet, ImageSplits, load_images, to_model_range, to_pixels
from .errors import ConfigError
from .nn.image_vqvae import ImageVQVAE, bits_per_dim
from .nn.pixelcnn import GatedPixelCNN
from .train import Trainer, TrainResult, setup

EVAL_BATCH = 256
GRID_IMAGES = 32  # originals shown in the reconstruction grid (each followed by its reconstruction)


class ImageBatch(NamedTuple):
    images: torch.Tensor  # (B, C, H, W) float in [-1, 1]


class CodeBatch(NamedTuple):
    codes: torch.Tensor   # (B, h, w) int64
    labels: torch.Tensor  # (B,) int64


def _draw(n: int, batch_size: int, generator: torch.Generator, part: slice) -> torch.Tensor:
    """The global batch plan (indices into a set of n) from the generator; this process's part."""
    return torch.randint(n, (batch_size,), generator=generator)[part]


def data_variance(images: torch.Tensor) -> float:
    """Variance of the pixels (uint8 (N, C, H, W)) in the models' [-1, 1] units."""
    x = images.double() / 127.5 - 1.0
    return float(x.var())


# ------------------------------------------------------------------------ VQ-VAE
def build_image_vqvae(cfg, images: ImageSet, variance: float) -> ImageVQVAE:
    _, c, h, w = images.images.shape
    f = 2 ** cfg.model.downsample
    if h % f or w % f:
        raise ConfigError(f"model.downsample={cfg.model.downsample}: the {h} × {w} images of "
                          f"{images.name} are not divisible by {f}")
    return ImageVQVAE(cfg.model, c, variance)


@torch.no_grad()
def evaluate_vqvae(model: ImageVQVAE, images: torch.Tensor, batch: int = EVAL_BATCH) -> dict:
    """Held-out metrics of images (N, C, H, W) uint8; see the module docstring."""
    model.eval()
    device = next(model.parameters()).device
    n, c, h, w = images.shape
    lh, lw = model.latent_shape(h, w)
    sq_err = nll = 0.0
    counts = torch.zeros(model.num_codes, dtype=torch.long)
    for start in range(0, n, batch):
        x = to_model_range(images[start:start + batch]).to(device)
        out = model(x)
        k = x.shape[0]
        sq_err += float(out.mse) * k
        nll += float(out.nll) * k
        counts += torch.bincount(out.vq.indices.flatten().cpu(), minlength=model.num_codes)
    mse, nll = sq_err / n, nll / n
    p = counts.double() / counts.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    dims, latents = c * h * w, lh * lw
    kl = math.log2(model.num_codes) * latents / dims
    return {
        "images": n, "mse": mse / 4.0, "nmse": mse / float(model.data_variance),
        "nll_bits_per_dim": nll / math.log(2), "kl_bits_per_dim": kl,
        "bits_per_dim": bits_per_dim(nll, model.num_codes, latents, dims),
        "latent_shape": [lh, lw], "dims": dims,
        "codebook": {"size": model.num_codes, "used": int((counts > 0).sum()),
                     "usage": float((counts > 0).double().mean()), "perplexity": math.exp(entropy),
                     "entropy_bits": entropy / math.log(2), "counts": counts.tolist()},
    }


def train_image_vqvae(cfg) -> TrainResult:
    """Train (or resume) the image VQ-VAE described by an `images` config."""
    d = setup(cfg.train.device, cfg.train.threads)
    splits = load_images(cfg.data.dataset, cfg.data.root, cfg.data.size)
    train_images = splits.train.images
    variance = data_variance(train_images)
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
    model = build_image_vqvae(cfg, splits.train, variance)
    val_images = splits.test.images[: cfg.data.val_images]

    def next_batch(g: torch.Generator, part: slice) -> ImageBatch:
        return ImageBatch(to_model_range(train_images[_draw(len(train_images), cfg.train.batch_size, g, part)]))

    def check(m: ImageVQVAE, step: int) -> dict:
        r = evaluate_vqvae(m, val_images)
        return {"mse": r["mse"], "nmse": r["nmse"], "bits_per_dim": r["bits_per_dim"],
                "usage": r["codebook"]["usage"], "perplexity": r["codebook"]["perplexity"]}

    _, c, h, w = train_images.shape
    extra = {"channels": c, "height": h, "width": w, "classes": splits.classes,
             "data_variance": variance, "dataset": splits.train.name.split("/")[0],
             "latent_shape": list(model.latent_shape(h, w))}
    trainer = Trainer(cfg.train, model, kind="image_vqvae", config=config_mod.to_dict(cfg), extra=extra,
                      next_batch=next_batch, scalars=lambda out: out.scalars(variance), validate=check,
                      show=("loss", "nmse", "perplexity", "usage"), dist_info=d)
    if d.main:
        lh, lw = model.latent_shape(h, w)
        print(f"training the image VQ-VAE: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
              f"parameters, {len(train_images)} {splits.train.name} images {c}×{h}×{w} → {lh}×{lw} codes "
              f"(K={model.num_codes}), device {d.device}; run dir {cfg.train.run_dir}", flush=True)
    return trainer.fit()


def load_image_vqvae(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """→ (model in eval mode, its config, the Checkpoint)."""
    m = ckpt_io.load_model(path, "image_vqvae", lambda cfg, ckpt: ImageVQVAE(
        cfg.model, int(ckpt.extra["channels"]), float(ckpt.extra["data_variance"])), device)
    return m.model, m.config, m.checkpoint


def _splits_of(cfg) -> ImageSplits:
    return load_images(cfg.data.dataset, cfg.data.root, cfg.data.size)


def _subset(images: torch.Tensor, count: int) -> torch.Tensor:
    return images if count <= 0 else images[:count]


def report_vqvae(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> dict:
    """Evaluate an image VQ-VAE checkpoint on the held-out split; write reconstructions.png
    (rows of originals, each followed by a row of their reconstructions) and metrics.json
    into out_dir (default: the run directory)."""
    model, cfg, ckpt = load_image_vqvae(path)
    out = pathlib.Path(out_dir) if out_dir else ckpt.path.parent.parent
    test = _splits_of(cfg).test.images
    metrics = evaluate_vqvae(model, _subset(test, cfg.data.eval_images))
    metrics.update({"checkpoint": str(ckpt.path), "step": ckpt.step, "dataset": ckpt.extra.get("dataset")})
    shown = test[:GRID_IMAGES]
    with torch.no_grad():
        recon = to_pixels(model.decode(model.encode(to_model_range(shown))))
    cols = 8
    rows = [t for i in range(0, len(shown), cols) for t in (shown[i:i + cols], recon[i:i + cols])]
    metrics["reconstructions_png"] = str(save_grid(out / "reconstructions.png", torch.cat(rows), cols))
    write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    cb = metrics["codebook"]
    print(f"held-out ({metrics['images']} images): MSE {metrics['mse']:.5f} (pixels in [0, 1]), "
          f"MSE/variance {metrics['nmse']:.4f}, bits/dim {metrics['bits_per_dim']:.3f} "
          f"(NLL {metrics['nll_bits_per_dim']:.3f} + KL {metrics['kl_bits_per_dim']:.3f})")
    print(f"codebook: {cb['used']}/{cb['size']} codes used ({100 * cb['usage']:.1f}%), "
          f"perplexity {cb['perplexity']:.1f}, {cb['entropy_bits']:.2f} bits per code")
    print(f"wrote {out / 'reconstructions.png'} and {out / 'metrics.json'}")
    return metrics


# ------------------------------------------------------------------------- prior
@torch.no_grad()
def encode_images(model: ImageVQVAE, images: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    """uint8 images (N, C, H, W) → code grids (N, h, w) int64 on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.encode(to_model_range(images[i:i + batch]).to(device)).cpu()
                      for i in range(0, len(images), batch)])


def build_prior(cfg, num_codes: int, classes: int) -> GatedPixelCNN:
    m = cfg.model
    return GatedPixelCNN(num_codes, m.channels, m.layers, m.kernel, m.first_kernel, m.head,
                         classes if m.class_conditional else 0)


@torch.no_grad()
def prior_nll(prior: GatedPixelCNN, codes: torch.Tensor, labels: torch.Tensor, batch: int = EVAL_BATCH) -> float:
    """Mean NLL of code grids (N, h, w) under the prior, nats per code."""
    prior.eval()
    device = next(prior.parameters()).device
    total = 0.0
    for i in range(0, len(codes), batch):
        out = prior(codes[i:i + batch].to(device), labels[i:i + batch].to(device))
        total += float(out.nll) * len(codes[i:i + batch])
    return total / len(codes)


def train_image_prior(cfg) -> TrainResult:
    """Train (or resume) a Gated PixelCNN on the codes of a trained image VQ-VAE."""
    d = setup(cfg.train.device, cfg.train.threads)
    vq_path = ckpt_io.resolve(cfg.vqvae)
    vqvae, vq_cfg, vq_ckpt = load_image_vqvae(vq_path, d.device)
    splits = _splits_of(vq_cfg)
    codes = encode_images(vqvae, splits.train.images)
    labels = splits.train.labels
    val_codes = encode_images(vqvae, splits.test.images[: cfg.data.val_images])
    val_labels = splits.test.labels[: cfg.data.val_images]
    torch.manual_seed(cfg.train.seed)
    prior = build_prior(cfg, vqvae.num_codes, splits.classes)

    def next_batch(g: torch.Generator, part: slice) -> CodeBatch:
        idx = _draw(len(codes), cfg.train.batch_size, g, part)
        return CodeBatch(codes[idx], labels[idx])

    def check(m: GatedPixelCNN, step: int) -> dict:
        nll = prior_nll(m, val_codes, val_labels)
        return {"nll": nll, "bits_per_code": nll / math.log(2)}

    extra = {"vqvae": str(vq_path.resolve()), "num_codes": vqvae.num_codes, "classes": splits.classes,
             "latent_shape": list(codes.shape[1:]), "dataset": vq_ckpt.extra.get("dataset")}
    trainer = Trainer(cfg.train, prior, kind="pixelcnn", config=config_mod.to_dict(cfg), extra=extra,
                      next_batch=next_batch, scalars=lambda out: out.scalars(), validate=check,
                      show=("loss", "bits_per_code"), dist_info=d)
    if d.main:
        print(f"training the PixelCNN prior: {sum(p.numel() for p in prior.parameters()) / 1e6:.2f} M "
              f"parameters on {len(codes)} code grids {tuple(codes.shape[1:])} (K={vqvae.num_codes}"
              f"{', class-conditional' if prior.num_classes else ''}) from {vq_path}; "
              f"run dir {cfg.train.run_dir}", flush=True)
    return trainer.fit()


def load_image_prior(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """→ (prior in eval mode, its config, the Checkpoint)."""
    m = ckpt_io.load_model(path, "pixelcnn", lambda cfg, ckpt: build_prior(
        cfg, int(ckpt.extra["num_codes"]), int(ckpt.extra["classes"])), device)
    return m.model, m.config, m.checkpoint


def sample_labels(prior: GatedPixelCNN, per_class: int, count: int) -> tuple[torch.Tensor, int]:
    """Labels of the samples to draw and the grid width: one row per class when conditional."""
    if prior.num_classes:
        return torch.arange(prior.num_classes).repeat_interleave(per_class), per_class
    return torch.zeros(count, dtype=torch.long), min(count, 8)


def report_prior(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> dict:
    """Evaluate a PixelCNN prior checkpoint: held-out NLL, bits/dim with the prior, samples
    decoded by its VQ-VAE (samples.png), sampling time of the fast and the naive sampler."""
    prior, cfg, ckpt = load_image_prior(path)
    out = pathlib.Path(out_dir) if out_dir else ckpt.path.parent.parent
    vqvae, vq_cfg, vq_ckpt = load_image_vqvae(ckpt.extra["vqvae"])
    test = _splits_of(vq_cfg).test
    images, labels = _subset(test.images, cfg.data.eval_images), _subset(test.labels, cfg.data.eval_images)
    codes = encode_images(vqvae, images)
    nll = prior_nll(prior, codes, labels)
    recon = evaluate_vqvae(vqvae, images)
    lh, lw = codes.shape[1:]
    dims, latents = recon["dims"], lh * lw
    metrics = {
        "checkpoint": str(ckpt.path), "step": ckpt.step, "vqvae": ckpt.extra["vqvae"], "images": len(codes),
        "prior_nll_nats_per_code": nll, "prior_bits_per_code": nll / math.log(2),
        "uniform_bits_per_code": math.log2(vqvae.num_codes),
        "bits_per_dim_uniform_prior": recon["bits_per_dim"],
        "bits_per_dim_with_prior": recon["nll_bits_per_dim"] + nll / math.log(2) * latents / dims,
    }
    s = cfg.sample
    labels, cols = sample_labels(prior, s.per_class, s.count)
    t0 = time.perf_counter()
    sampled = prior.sample(len(labels), lh, lw, labels, s.temperature, torch.Generator().manual_seed(s.seed))
    metrics["sample_seconds_fast"] = time.perf_counter() - t0
    metrics["samples"] = len(labels)
    if s.compare_naive:
        t0 = time.perf_counter()
        naive = prior.sample(len(labels), lh, lw, labels, s.temperature,
                             torch.Generator().manual_seed(s.seed), fast=False)
        metrics["sample_seconds_naive"] = time.perf_counter() - t0
        metrics["naive_equals_fast"] = float((naive == sampled).float().mean())  # fraction of equal codes
    pixels = to_pixels(vqvae.decode(sampled))
    metrics["samples_png"] = str(save_grid(out / "samples.png", pixels, cols))
    write_text(out / "prior_metrics.json", json.dumps(metrics, indent=1) + "\n")
    print(f"prior on held-out codes ({len(codes)} grids {lh}×{lw}): {metrics['prior_bits_per_code']:.3f} "
          f"bits per code (uniform: {metrics['uniform_bits_per_code']:.3f}); bits/dim "
          f"{metrics['bits_per_dim_with_prior']:.3f} with the prior, "
          f"{metrics['bits_per_dim_uniform_prior']:.3f} with the uniform prior")
    timing = f"sampled {len(labels)} grids in {metrics['sample_seconds_fast']:.2f} s"
    if s.compare_naive:
        timing += (f" (naive full recompute: {metrics['sample_seconds_naive']:.2f} s, "
                   f"{100 * metrics['naive_equals_fast']:.1f}% identical codes)")
    print(timing)
    print(f"wrote {out / 'samples.png'} and {out / 'prior_metrics.json'}")
    return metrics


# ------------------------------------------------------------------------- grids
def save_grid(path: str | os.PathLike, pixels: torch.Tensor, columns: int, scale: int = 0,
              border: int = 1) -> pathlib.Path:
    """Write uint8 images (N, C, H, W) (C = 1 or 3) as one PNG grid, `columns` per row,
    each enlarged `scale` times (0 = to at least 64 pixels) with a grey border; atomic."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    n, c, h, w = pixels.shape
    scale = scale or max(1, math.ceil(64 / max(h, w)))
    x = pixels.repeat_interleave(scale, 2).repeat_interleave(scale, 3).permute(0, 2, 3, 1).numpy()
    h, w = h * scale, w * scale
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + border) + border, columns * (w + border) + border, c), 128, np.uint8)
    for k in range(n):
        r, q = divmod(k, columns)
        y0, x0 = border + r * (h + border), border + q * (w + border)
        grid[y0:y0 + h, x0:x0 + w] = x[k]
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        if c == 1:
            mpimg.imsave(tmp, grid[..., 0], cmap="gray", vmin=0, vmax=255)
        else:
            mpimg.imsave(tmp, grid)
    return path
