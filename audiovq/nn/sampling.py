"""The one sampling rule of every generator (decoders, the prior over codes, the PixelCNN):
reproducible draws by inverse CDF of pre-drawn uniforms.

Every item has its own stream of uniforms (a `torch.Generator` seeded per item, drawn in
fixed blocks), so an item's samples depend only on its seed — not on the batch it is in,
the chunking, or the backend (PyTorch here, or the numba kernel, which implements the same
rule step by step in exact arithmetic: `kernels._sample`).

- Categorical: z = logits / temperature; with top-k, classes whose z is below the k-th
  largest are dropped (ties kept); w = exp(z − max z); with a probability floor f (LPCNet),
  w ← max(w − f · Σw, 0) (probabilities under f are dropped, the rest lowered by f, and if
  none is left the likeliest class is kept); the sample is the first class whose float64
  running sum of w exceeds u · Σw. Temperature 0 = argmax.
- Logistic mixture: the component by inverse CDF of softmax(mixture logits) with u₀; the
  value µ + temperature · s · logit(u₁), u₁ clipped to [1e-5, 1 − 1e-5], clipped to [-1, 1];
  fed back as its µ-law bin. Temperature 0 = the mean of the most likely component.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .distributions import Categorical, LogisticMixture

CATEGORICAL, MIXTURE = 0, 1
U_CLIP = 1e-5


class SamplerSpec(NamedTuple):
    kind: int                 # CATEGORICAL or MIXTURE
    temperature: float
    mixtures: int = 0
    log_scale_min: float = -7.0
    mu_law_levels: int = 256  # mixture values are fed back as µ-law bins of this many levels
    top_k: int = 0            # categorical: sample among the k likeliest classes (0 = all)
    floor: float = 0.0        # categorical: probability floor (LPCNet; 0 = none)

    @property
    def uniforms_per_step(self) -> int:
        return 1 if self.kind == CATEGORICAL else 2


def sampler_for(output, temperature: float, top_k: int = 0, floor: float = 0.0) -> SamplerSpec:
    """SamplerSpec for an output distribution of `audiovq.nn.distributions`."""
    if temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number ≥ 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top-k must be ≥ 0 (0 = all classes), got {top_k}")
    if not 0 <= floor < 1:
        raise ValueError(f"the probability floor must be in [0, 1), got {floor}")
    if isinstance(output, LogisticMixture):
        if top_k or floor:
            raise ValueError("top-k and the probability floor apply to a categorical output, not a mixture")
        return SamplerSpec(MIXTURE, float(temperature), output.mixtures, output.log_scale_min,
                           output.input_classes)
    if isinstance(output, Categorical):
        top_k = 0 if top_k >= output.channels else int(top_k)
        return SamplerSpec(CATEGORICAL, float(temperature), top_k=top_k, floor=float(floor))
    raise TypeError(f"cannot sample from {type(output).__name__}")


class UniformStream:
    """One item's uniforms in [0, 1): (n, per_step) float32 at a time, drawn in fixed blocks
    so the values do not depend on how they are asked for."""

    def __init__(self, seed: int, per_step: int, block: int = 4096):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.per_step, self.block = per_step, block
        self.buffer = torch.empty(0, per_step)

    def take(self, n: int) -> torch.Tensor:
        while self.buffer.shape[0] < n:
            fresh = torch.rand(self.block, self.per_step, generator=self.generator)
            self.buffer = torch.cat([self.buffer, fresh])
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


def inverse_cdf(logits: torch.Tensor, u: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """Classes from unnormalised log-probabilities (B, C) and uniforms (B,): (B,) int64
    (with a probability floor: see the module doc)."""
    p = torch.exp(logits - logits.max(-1, keepdim=True).values).double()
    if floor > 0:
        kept = (p - floor * p.sum(-1, keepdim=True)).clamp_min(0)
        none = kept.sum(-1, keepdim=True) == 0  # only where every class fell under the floor
        p = torch.where(none, (p == 1).double(), kept)
    c = torch.cumsum(p, -1)
    k = torch.searchsorted(c, (u.double() * c[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    return k.clamp_max(logits.shape[-1] - 1)


def top_k_logits(z: torch.Tensor, k: int) -> torch.Tensor:
    """z (B, C) with the entries below each row's k-th largest set to −inf (ties kept)."""
    if not k or k >= z.shape[-1]:
        return z
    kth = z.topk(k, -1).values[..., -1:]
    return z.masked_fill(z < kth, float("-inf"))


def mu_law_bins(x: torch.Tensor, levels: int) -> torch.Tensor:
    """µ-law bins of values in [-1, 1] (`audio.mu_law_encode`), in float64 so that the fast
    kernel's libm and torch agree on every bin boundary."""
    mu = levels - 1
    x = x.double()
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).long()


def sample(spec: SamplerSpec, logits: torch.Tensor, u: torch.Tensor):
    """One step: logits (B, O), uniforms (B, U) → (next input classes (B,) int64, values (B,)
    float32: the class for a categorical, the amplitude for a mixture)."""
    logits = logits.float()
    if spec.kind == CATEGORICAL:
        if spec.temperature == 0:
            k = logits.argmax(-1)
        else:
            k = inverse_cdf(top_k_logits(logits / spec.temperature, spec.top_k), u[:, 0], spec.floor)
        return k, k.float()
    M = spec.mixtures
    w, mu, log_s = logits[:, :M], logits[:, M:2 * M], logits[:, 2 * M:3 * M].clamp_min(spec.log_scale_min)
    if spec.temperature == 0:
        k = w.argmax(-1, keepdim=True)
        x = mu.gather(-1, k)[:, 0]
    else:
        k = inverse_cdf(w, u[:, 0]).unsqueeze(-1)
        v = u[:, 1].clamp(U_CLIP, 1 - U_CLIP)
        x = mu.gather(-1, k)[:, 0] + spec.temperature * torch.exp(log_s.gather(-1, k)[:, 0]) * (
            torch.log(v) - torch.log1p(-v))
    x = x.clamp(-1.0, 1.0)
    return mu_law_bins(x, spec.mu_law_levels), x
