"""The autoregressive prior over codes (paper, section 4.3): the same WaveNet stack as the
decoder, over code indices instead of µ-law samples, conditioned on the speaker.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .wavenet import WaveNet


class PriorOutput(NamedTuple):
    loss: torch.Tensor    # mean NLL per code, nats
    logits: torch.Tensor  # (B, K, L)

    def scalars(self) -> dict[str, float]:
        nats = float(self.loss.detach())
        return {"loss": nats, "bits_per_code": nats / 0.6931471805599453}


class CodePrior(nn.Module):
    """p(c_t | c_<t, speaker) for code sequences (B, L) with values in [0, K).

    The input at step t is c_{t-1}; step 0 sees a start token (index K), so the embedding
    has K + 1 rows and the output K.
    """

    def __init__(self, model, num_codes: int, num_speakers: int):
        super().__init__()
        self.num_codes = num_codes
        self.speakers = nn.Embedding(num_speakers, model.speaker_dim)
        self.wavenet = WaveNet.from_config(model, num_codes + 1, num_codes, 0, model.speaker_dim)

    @property
    def start_token(self) -> int:
        return self.num_codes

    def inputs(self, codes: torch.Tensor) -> torch.Tensor:
        return F.pad(codes[:, :-1], (1, 0), value=self.start_token)

    def forward(self, codes: torch.Tensor, speaker: torch.Tensor, mask: torch.Tensor | None = None) -> PriorOutput:
        """codes (B, L) int64, speaker (B,), mask (B, L) bool of real (unpadded) codes."""
        logits = self.wavenet(self.inputs(codes), None, self.speakers(speaker))
        nll = F.cross_entropy(logits.float(), codes, reduction="none")
        loss = nll.mean() if mask is None else (nll * mask).sum() / mask.sum().clamp_min(1)
        return PriorOutput(loss, logits)
