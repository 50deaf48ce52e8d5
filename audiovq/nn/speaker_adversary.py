"""A speaker classifier on the codes, trained through gradient reversal (Ganin & Lempitsky
2015; as in speaker-adversarial voice conversion): it learns to name the speaker from the
quantized codes, while the encoder receives its gradient with the sign reversed and scaled
by `weight`, so the encoder learns to make codes from which the speaker cannot be named.
The decoder still gets the speaker from its embedding: what the codes lose is only what the
decoder can take from elsewhere.

Codewords reach it through the quantizer's straight-through estimator, so the reversed
gradient moves z_e (the encoder), not the codebook (which EMA updates).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x unchanged forwards; backwards the gradient is multiplied by −scale."""
    return _Reverse.apply(x, float(scale))


class AdversaryResult(NamedTuple):
    loss: torch.Tensor      # cross-entropy of the speaker classifier (nats), what the total loss adds
    accuracy: torch.Tensor  # share of segments whose speaker it names (no gradient)


class SpeakerAdversary(nn.Module):
    """Codewords (B, D, F) → speaker logits (B, S): two convolutions (kernel 3) over the code
    sequence, ReLU, mean over time, a linear layer. `weight` scales the reversed gradient
    the encoder receives; the classifier itself learns at full rate."""

    def __init__(self, dim: int, speakers: int, hidden: int = 128, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)
        self.net = nn.Sequential(nn.Conv1d(dim, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU())
        self.out = nn.Linear(hidden, speakers)

    def logits(self, codewords: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(codewords).mean(-1))

    def forward(self, codewords: torch.Tensor, speaker: torch.Tensor) -> AdversaryResult:
        """Codewords (B, D, F) (the straight-through quantized tensor), speakers (B,)."""
        logits = self.logits(reverse_gradient(codewords, self.weight))
        loss = F.cross_entropy(logits.float(), speaker)
        accuracy = (logits.detach().argmax(-1) == speaker).float().mean()
        return AdversaryResult(loss, accuracy)
