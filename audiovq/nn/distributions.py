"""Output distributions of the WaveNet: a categorical over µ-law bins (the paper) and a
discretized mixture of logistics (PixelCNN++ / Parallel WaveNet) over 16-bit amplitudes.

Both expose the same three operations on logits (B, C, T): `nll` (mean per sample, nats),
`sample(logits_t, temperature)` for one time step (B, C) → (B,) values, and `to_waveform`.
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

    def sample(self, logits: torch.Tensor, temperature: float = 1.0, generator=None,
               top_k: int = 0) -> torch.Tensor:
        """logits (B, C) → (B,) int64; temperature 0 = argmax."""
        if temperature <= 0:
            return logits.argmax(-1)
        logits = logits.float() / temperature
        if top_k and top_k < logits.shape[-1]:
            kth = logits.topk(top_k, -1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)

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

    def sample(self, logits: torch.Tensor, temperature: float = 1.0, generator=None,
               top_k: int = 0) -> torch.Tensor:
        """logits (B, 3M) → (B,) floats in [-1, 1]; temperature scales the logistic spread
        (0 = the mean of the most likely component)."""
        w, mu, log_s = self._split(logits.unsqueeze(-1))
        w, mu, log_s = w[..., 0], mu[..., 0], log_s[..., 0]
        if temperature <= 0:
            k = w.argmax(-1, keepdim=True)
            return mu.gather(-1, k).squeeze(-1).clamp(-1, 1)
        k = torch.multinomial(w.softmax(-1), 1, generator=generator)
        u = torch.rand(k.shape, generator=generator, device=logits.device).clamp(1e-5, 1 - 1e-5)
        x = mu.gather(-1, k) + temperature * log_s.gather(-1, k).exp() * (torch.log(u) - torch.log1p(-u))
        return x.squeeze(-1).clamp(-1, 1)

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
