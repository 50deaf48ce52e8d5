"""The image VQ-VAE of the paper's CIFAR-10 experiments (section 4.1): a 2-D convolutional
encoder → the shared VectorQuantizer over an h × w grid of D-dim vectors → a mirrored decoder.

Encoder: `downsample` stride-2 4 × 4 convolutions (hidden/2, …, hidden channels, ReLU), a 3 × 3
convolution, `residual_blocks` residual blocks (ReLU, 3 × 3 conv, ReLU, 1 × 1 conv), then a
1 × 1 projection to D. Decoder: 3 × 3 conv from D, the residual blocks, `downsample`
transposed 4 × 4 stride-2 convolutions. The paper's CIFAR model is downsample = 2,
hidden = 256, residual_blocks = 2, K = 512 (32 × 32 → 8 × 8 latents).

Images are floats in [-1, 1] (uint8 pixels p ↦ p / 127.5 − 1).

Reconstruction loss (`recon_loss`):
- "mse" (default, as the reference Sonnet notebook): ‖x̂ − x‖² / Var(data), i.e. the
  mean-squared error normalised by the variance of the training pixels, so 1.0 means "no
  better than predicting the data mean".
- "logistic": the NLL of a discretized logistic (below) with a per-subpixel mean and
  log-scale predicted by the decoder (2C output channels).

Likelihood for bits/dim: each subpixel is a discretized logistic on 256 levels (bins of width
2/255 in [-1, 1], the end bins absorbing the tails; audiovq.nn.distributions.LogisticMixture
with one component). Its mean is the decoder output. Its scale is
- with "mse": one learned log-scale per channel (a parameter), trained by the NLL of the
  *detached* mean — the NLL term moves only the scale, so the decoder is trained by the MSE
  alone exactly as in the reference, while the likelihood stays fitted to the current
  reconstruction error;
- with "logistic": predicted per subpixel by the decoder. This buys bits/dim at the price of
  MSE: where the data sit on the end level (black digit backgrounds) any location below it
  with a small scale is nearly free, so the location (what decode() shows) drifts there.

bits/dim (the paper's Table/section 4.1 figure) is the negative ELBO per dimension:
    bits/dim = NLL(x | z_q) / (ln 2 · dims) + KL / (ln 2 · dims),
with dims = C · H · W. With a uniform prior over the K codes and a deterministic (one-hot)
posterior, KL = h · w · ln K, so the second term is log2(K) · latents / dims (latents = h · w);
e.g. 0.1875 bits/dim for CIFAR's 8 × 8 latents and K = 512. A trained prior replaces log2 K by
its held-out cross-entropy in bits per code (see audiovq.images).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .distributions import LogisticMixture
from .quantizer import VectorQuantizer, VQResult

LEVELS = 256
RECON_LOSSES = ("mse", "logistic")


class ResidualStack(nn.Module):
    """`blocks` × [x + 1×1(ReLU(3×3(ReLU(x))))] then ReLU. (B, C, H, W) → same shape."""

    def __init__(self, channels: int, hidden: int, blocks: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(hidden, channels, 1))
            for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return F.relu(x)


class ImageEncoder(nn.Module):
    """(B, C, H, W) → z_e (B, D, H / 2^downsample, W / 2^downsample)."""

    def __init__(self, in_channels: int, hidden: int, residual_hidden: int, residual_blocks: int,
                 downsample: int, dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for i in range(downsample):
            out = hidden if i == downsample - 1 else hidden // 2
            layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.ReLU()]
            ch = out
        layers.append(nn.Conv2d(ch, hidden, 3, padding=1))
        self.body = nn.Sequential(*layers, ResidualStack(hidden, residual_hidden, residual_blocks))
        self.project = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.body(x))


class ImageDecoder(nn.Module):
    """z_q (B, D, h, w) → (B, out_channels, h · 2^upsample, w · 2^upsample)."""

    def __init__(self, dim: int, hidden: int, residual_hidden: int, residual_blocks: int,
                 upsample: int, out_channels: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(dim, hidden, 3, padding=1),
                                   ResidualStack(hidden, residual_hidden, residual_blocks)]
        ch = hidden
        for i in range(upsample):
            last = i == upsample - 1
            out = out_channels if last else hidden // 2
            layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU())
            ch = out
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class ImageVQVAEOutput(NamedTuple):
    loss: torch.Tensor        # training loss
    recon_loss: torch.Tensor  # the reconstruction term of the loss (MSE / Var or NLL)
    mse: torch.Tensor         # MSE of the clamped reconstruction, [-1, 1] units (÷ 4 for [0, 1] units)
    nll: torch.Tensor         # discretized-logistic NLL, nats per subpixel
    vq: VQResult
    mean: torch.Tensor        # (B, C, H, W) reconstruction (decoder mean)

    def scalars(self, variance: float) -> dict[str, float]:
        return {"loss": float(self.loss.detach()), "recon": float(self.recon_loss.detach()),
                "nmse": float(self.mse.detach()) / variance, "nll_bits": float(self.nll.detach()) / math.log(2),
                "commitment": float(self.vq.commitment), "codebook": float(self.vq.codebook_loss),
                "perplexity": float(self.vq.perplexity), "usage": float(self.vq.usage)}


def bits_per_dim(nll_nats_per_dim: float, num_codes: int, latents: int, dims: int) -> float:
    """The paper's bits/dim: reconstruction NLL plus the uniform-prior KL log2(K)·latents/dims."""
    return nll_nats_per_dim / math.log(2) + math.log2(num_codes) * latents / dims


class ImageVQVAE(nn.Module):
    """Images (B, C, H, W) in [-1, 1] → ImageVQVAEOutput; H and W divisible by 2^downsample.

    `model` is the config's `model` section (see ImageModelConfig in audiovq/config.py);
    `data_variance` is the variance of the training pixels in [-1, 1] units (stored as a
    buffer, so a checkpoint carries it).
    """

    def __init__(self, model, channels: int, data_variance: float):
        super().__init__()
        q = model.quantizer
        if model.recon_loss not in RECON_LOSSES:
            raise ValueError(f"unknown recon_loss {model.recon_loss!r}")
        self.channels, self.downsample, self.recon = channels, model.downsample, model.recon_loss
        self.encoder = ImageEncoder(channels, model.hidden, model.residual_hidden, model.residual_blocks,
                                    model.downsample, q.dim)
        self.quantizer = VectorQuantizer(q.codebook_size, q.dim, q.beta, q.ema, q.decay, q.eps,
                                         q.warmup_steps, q.kmeans_iters, q.restart_after, q.window)
        out = 2 * channels if self.recon == "logistic" else channels
        self.decoder = ImageDecoder(q.dim, model.hidden, model.residual_hidden, model.residual_blocks,
                                    model.downsample, out)
        # Per-channel log-scale of the likelihood in "mse" mode; start near the scale of a
        # poor reconstruction (an error of ~0.3 in [-1, 1] units).
        if self.recon == "mse":
            self.log_scale = nn.Parameter(torch.full((channels,), -1.5))
        else:  # predicted by the decoder; no unused parameter (DDP would complain)
            self.register_parameter("log_scale", None)
        self.register_buffer("data_variance", torch.tensor(float(data_variance)))
        self.likelihood = LogisticMixture(mixtures=1, bins=LEVELS)

    @property
    def num_codes(self) -> int:
        return self.quantizer.num_codes

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        f = 2 ** self.downsample
        return height // f, width // f

    def forward(self, images: torch.Tensor) -> ImageVQVAEOutput:
        vq = self.quantizer(self.encoder(images))
        mean, log_scale = self._decode(vq.quantized)
        mse = F.mse_loss(mean.detach().clamp(-1, 1), images)  # of the image decode() returns
        if self.recon == "mse":
            nll = self.nll(images, mean.detach(), log_scale)
            recon = F.mse_loss(mean, images) / self.data_variance
            loss = recon + vq.loss + nll  # nll only reaches log_scale (the mean is detached)
        else:
            nll = self.nll(images, mean, log_scale)
            recon = nll
            loss = recon + vq.loss
        return ImageVQVAEOutput(loss, recon, mse, nll, vq, mean)

    def _decode(self, quantized: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder → (mean (B, C, H, W), log-scale broadcastable to it)."""
        out = self.decoder(quantized)
        if self.recon == "logistic":
            return out[:, : self.channels], out[:, self.channels:]
        return out, self.log_scale.view(1, -1, 1, 1)

    def nll(self, images: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        """Discretized-logistic NLL of images (B, C, H, W), nats per subpixel (mean)."""
        b, c, h, w = images.shape
        log_scale = log_scale.expand(b, c, h, w)
        logits = torch.stack([torch.zeros_like(mean), mean, log_scale], dim=2)  # (B, C, 3, H, W)
        return self.likelihood.nll(logits.reshape(b * c, 3, h * w), images.reshape(b * c, h * w))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) → code indices (B, h, w)."""
        return self.quantizer(self.encoder(images)).indices

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Code indices (B, h, w) → reconstructed images (B, C, H, W) clamped to [-1, 1]."""
        return self._decode(self.quantizer.lookup(indices))[0].clamp(-1, 1)

    @torch.no_grad()
    def reconstruction_nll(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """NLL (nats per subpixel) of images (B, C, H, W) given their codes (B, h, w)."""
        mean, log_scale = self._decode(self.quantizer.lookup(indices))
        return self.nll(images, mean, log_scale)
