"""Output distributions of the WaveNet: a categorical over µ-law bins (the paper) and a
discretized mixture of logistics (PixelCNN++ / Parallel WaveNet) over 16-bit amplitudes.

Both expose `nll` on logits (B, C, T) (mean per sample, nats) and `to_waveform`; sampling from
either is the one rule of nn/sampling.py.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..audio import mu_law_decode


class Categorical:
    """Softmax over `classes` bins; targets and samples are bin indices (int64)."""

    def __init__(self, classes: int = 256, mu_law: bool = True):
        self.classes, self.mu_law = classes, mu_law
        self.channels = classes

    def nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (B, C, T), target (B, T) int64 → mean NLL in nats."""
        return F.cross_entropy(logits.float(), target)

    def to_waveform(self, values: torch.Tensor) -> torch.Tensor:
        return mu_law_decode(values, self.classes) if self.mu_law else values

    def input_class(self, values: torch.Tensor) -> torch.Tensor:
        """Sampled values → the input class fed back to the network."""
        return values


class LogisticMixture:
    """Discretized mixture of `mixtures` logistics over `bins` levels of x ∈ [-1, 1].

    Logit layout (B, 3M, T): mixture logits, means, log-scales. Sampled values are floats in
    [-1, 1]; they are fed back to the network as µ-law bins (`input_classes`).
    """

    def __init__(self, mixtures: int = 10, bins: int = 65536, input_classes: int = 256,
                 log_scale_min: float = -7.0):
        self.mixtures, self.bins, self.input_classes = mixtures, bins, input_classes
        self.log_scale_min = log_scale_min
        self.channels = 3 * mixtures

    def _split(self, logits: torch.Tensor):
        w, mu, log_s = logits.float().chunk(3, dim=1)
        return w, mu, log_s.clamp_min(self.log_scale_min)

    def nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (B, 3M, T), target (B, T) float in [-1, 1] → mean NLL in nats."""
        w, mu, log_s = self._split(logits)
        x = target.float().unsqueeze(1)  # (B, 1, T)
        half = 1.0 / (self.bins - 1)
        centered = x - mu
        inv_s = torch.exp(-log_s)
        cdf_plus = torch.sigmoid(inv_s * (centered + half))
        cdf_min = torch.sigmoid(inv_s * (centered - half))
        log_cdf_plus = (inv_s * (centered + half)) - F.softplus(inv_s * (centered + half))  # edge at -1
        log_one_minus_cdf_min = -F.softplus(inv_s * (centered - half))                      # edge at +1
        cdf_delta = cdf_plus - cdf_min
        mid = inv_s * centered
        log_pdf_mid = mid - log_s - 2.0 * F.softplus(mid)  # density approximation for tiny bins
        inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp_min(1e-12)),
                            log_pdf_mid - math.log((self.bins - 1) / 2))
        log_probs = torch.where(x < -0.999, log_cdf_plus,
                                torch.where(x > 0.999, log_one_minus_cdf_min, inner))
        log_probs = log_probs + F.log_softmax(w, dim=1)
        return -torch.logsumexp(log_probs, dim=1).mean()

    def to_waveform(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def input_class(self, values: torch.Tensor) -> torch.Tensor:
        from ..audio import mu_law_encode
        return mu_law_encode(values, self.input_classes)


def make_output(kind: str, classes: int = 256, mixtures: int = 10):
    if kind == "categorical":
        return Categorical(classes)
    if kind == "logistic_mixture":
        return LogisticMixture(mixtures, input_classes=classes)
    raise ValueError(f"unknown output distribution {kind!r}")
