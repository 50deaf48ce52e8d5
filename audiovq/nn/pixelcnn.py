"""A Gated PixelCNN prior over the 2-D grid of VQ-VAE codes (van den Oord et al. 2016,
"Conditional Image Generation with PixelCNN Decoders"), with a K-way softmax per position.

Two stacks per layer, no blind spot:
- the vertical stack sees the rows above and the current row: a (k//2 + 1) × k convolution
  padded only on top. It never feeds the output directly, only through
- the link: the vertical pre-activation shifted down one row (so row i receives rows < i),
  through a 1 × 1 convolution, is added to the horizontal pre-activation;
- the horizontal stack sees the current row to the left: a 1 × (k//2 + 1) convolution padded
  only on the left. The first layer is mask type A: its input is shifted right by one column,
  so position (i, j) never sees code (i, j) itself, and it has no residual connection. Later
  layers are type B (they see position j of the previous layer, which itself only saw the
  past) with a residual 1 × 1 connection.
Each stack's pre-activation (2p channels) is gated: tanh(a) · sigmoid(b). With class
conditioning, a learned per-class bias is added to both pre-activations in every layer.
Masking is done by padding and shifting rather than by zeroed kernel entries.

Sampling is in raster order. The fast path (`sample(..., fast=True)`) exploits the structure:
- the horizontal stack of row i depends only on row i (left of the current column) and on
  the link from the vertical stack's row i − 1, so at position (i, j) only row i, columns
  0..j, is run through the horizontal stack (a 1 × (j+1) strip per layer instead of H × W);
- the vertical stack is advanced once per finished row, one output row per layer, from a
  per-layer cache of its input rows.
Per position that is ≈ (j+1)/(H·W) of a full forward; the naive path (`fast=False`) reruns
the whole network on the whole grid for every position and gives the same codes under the
same generator (up to float rounding in the logits).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .distributions import Categorical


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _shift_down(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W): row i ← row i − 1, zeros in row 0."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def _shift_right(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W): column j ← column j − 1, zeros in column 0."""
    return F.pad(x, (1, 0))[..., :-1]


class GatedLayer(nn.Module):
    """One gated layer with vertical and horizontal stacks (mask type A if `first`)."""

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool, num_classes: int = 0):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel size must be odd, got {kernel}")
        self.first, self.channels = first, channels
        self.rows = kernel // 2 + 1        # vertical kernel height (rows i − k//2 … i)
        self.width = kernel // 2 + 1       # horizontal kernel width (columns j − k//2 … j)
        self.v_conv = nn.Conv2d(in_channels, 2 * channels, (self.rows, kernel), padding=(0, kernel // 2))
        self.h_conv = nn.Conv2d(in_channels, 2 * channels, (1, self.width))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.cond = nn.Embedding(num_classes, 4 * channels) if num_classes else None

    def bias(self, labels: torch.Tensor | None):
        """Class biases for the (vertical, horizontal) pre-activations, (B, 2p, 1, 1) each, or None."""
        if self.cond is None or labels is None:
            return None
        cv, ch = self.cond(labels)[:, :, None, None].chunk(2, dim=1)
        return cv, ch

    def vertical(self, window: torch.Tensor) -> torch.Tensor:
        """Vertical pre-activation (raw, no class bias). window (B, C, R + rows − 1, W): the
        input rows with rows − 1 rows of context (zeros above the image) on top → (B, 2p, R, W)."""
        return self.v_conv(window)

    def vertical_output(self, pre: torch.Tensor, bias) -> torch.Tensor:
        """Gated vertical output from its pre-activation (B, 2p, R, W) → (B, p, R, W)."""
        return _gate(pre if bias is None else pre + bias[0])

    def horizontal(self, h: torch.Tensor, link_in: torch.Tensor, bias) -> torch.Tensor:
        """h (B, C, R, W'), link_in = vertical pre-activation of the row above each row
        (B, 2p, R, W') → new h (B, p, R, W'). Causal along W': column j sees columns ≤ j
        (< j in the first layer)."""
        x = _shift_right(h) if self.first else h
        pre = self.h_conv(F.pad(x, (self.width - 1, 0))) + self.link(link_in)
        if bias is not None:
            pre = pre + bias[1]
        out = self.h_out(_gate(pre))
        return out if self.first else h + out

    def forward(self, v: torch.Tensor, h: torch.Tensor, bias) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole grid: v, h (B, C, H, W) → (v, h) (B, p, H, W)."""
        pre = self.vertical(F.pad(v, (0, 0, self.rows - 1, 0)))
        return self.vertical_output(pre, bias), self.horizontal(h, _shift_down(pre), bias)


class PriorOutput(NamedTuple):
    loss: torch.Tensor    # mean NLL, nats per code
    nll: torch.Tensor     # same, detached
    logits: torch.Tensor  # (B, K, H, W)

    def scalars(self) -> dict[str, float]:
        nll = float(self.nll)
        return {"loss": float(self.loss.detach()), "nll": nll, "bits_per_code": nll / math.log(2)}


class GatedPixelCNN(nn.Module):
    """Autoregressive prior p(z) = Π p(z_ij | z_<ij [, class]) over code grids (B, H, W).

    Args:
        num_codes: K (vocabulary = the VQ-VAE codebook). channels: p, the width of both stacks.
        layers: gated layers (the first is type A). kernel: size of the type-B layers;
        first_kernel: size of the type-A layer. head: hidden channels of the 1 × 1 output head.
        num_classes: 0 = unconditional; else labels (B,) in [0, num_classes) condition every layer.
    """

    def __init__(self, num_codes: int, channels: int = 64, layers: int = 8, kernel: int = 3,
                 first_kernel: int = 7, head: int = 256, num_classes: int = 0):
        super().__init__()
        self.num_codes, self.num_classes = num_codes, num_classes
        self.embed = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(
            [GatedLayer(channels, channels, first_kernel, True, num_classes)]
            + [GatedLayer(channels, channels, kernel, False, num_classes) for _ in range(layers - 1)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, head, 1), nn.ReLU(), nn.Conv2d(head, num_codes, 1))
        self.output = Categorical(num_codes, mu_law=False)

    def _embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.embed(codes).permute(0, 3, 1, 2)  # (B, H, W) → (B, C, H, W)

    def _labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        return labels if self.num_classes else None

    def logits_embedded(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Embedded codes (B, C, H, W) → logits (B, K, H, W); exposed for receptive-field checks."""
        labels = self._labels(labels)
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h, layer.bias(labels))
        return self.head(h)

    def logits(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (B, H, W) int64 → logits (B, K, H, W); position (i, j) depends only on codes
        before it in raster order."""
        return self.logits_embedded(self._embed(codes), labels)

    def forward(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> PriorOutput:
        logits = self.logits(codes, labels)
        nll = F.cross_entropy(logits.float(), codes)
        return PriorOutput(nll, nll.detach(), logits)

    # ------------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, count: int, height: int, width: int, labels: torch.Tensor | None = None,
               temperature: float = 1.0, generator: torch.Generator | None = None,
               fast: bool = True) -> torch.Tensor:
        """Draw `count` code grids (count, height, width) in raster order.

        labels: (count,) class of each sample (required when the prior is class-conditional).
        temperature: softmax temperature (0 = argmax). The generator decides every draw, so
        the fast and the naive path give the same codes for the same generator state.
        """
        if self.num_classes and labels is None:
            raise ValueError("this prior is class-conditional: pass labels")
        device = self.embed.weight.device
        if labels is not None:
            labels = labels.to(device)
        codes = torch.zeros(count, height, width, dtype=torch.long, device=device)
        step = self._sample_fast if fast else self._sample_naive
        return step(codes, self._labels(labels), temperature, generator)

    def _draw(self, logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
        """One code per sample by the sampling rule of every generator (nn/sampling.py),
        from uniforms of `generator`."""
        from .sampling import CATEGORICAL, SamplerSpec, sample
        u = torch.rand(logits.shape[0], 1, generator=generator, device=generator.device if generator else None)
        return sample(SamplerSpec(CATEGORICAL, float(temperature)), logits, u.to(logits.device))[0]

    def _sample_naive(self, codes, labels, temperature, generator):
        _, height, width = codes.shape
        for i in range(height):
            for j in range(width):
                codes[:, i, j] = self._draw(self.logits(codes, labels)[:, :, i, j], temperature, generator)
        return codes

    def _sample_fast(self, codes, labels, temperature, generator):
        n, height, width = codes.shape
        biases = [layer.bias(labels) for layer in self.layers]
        dev = codes.device
        # v_in[l]: the rows fed to layer l's vertical conv so far; above_pre[l]: layer l's raw
        # vertical pre-activation of the previous row (zeros above the image, as in forward).
        v_in = [torch.zeros(n, layer.v_conv.in_channels, height, width, device=dev) for layer in self.layers]
        above_pre = [torch.zeros(n, 2 * layer.channels, 1, width, device=dev) for layer in self.layers]
        for i in range(height):
            for j in range(width):
                h = self._embed(codes[:, i:i + 1, : j + 1])  # (n, C, 1, j+1)
                for layer, pre, bias in zip(self.layers, above_pre, biases):
                    h = layer.horizontal(h, pre[..., : j + 1], bias)
                codes[:, i, j] = self._draw(self.head(h)[:, :, 0, j], temperature, generator)
            # Row i is complete: advance every vertical stack by one row.
            v = self._embed(codes[:, i:i + 1])
            for k, (layer, bias) in enumerate(zip(self.layers, biases)):
                v_in[k][:, :, i] = v[:, :, 0]
                top = i - layer.rows + 1
                window = v_in[k][:, :, max(top, 0): i + 1]
                if top < 0:
                    window = F.pad(window, (0, 0, -top, 0))
                pre = layer.vertical(window)  # (n, 2p, 1, W)
                above_pre[k] = pre
                v = layer.vertical_output(pre, bias)
        return codes
