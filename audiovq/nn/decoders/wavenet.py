"""The paper's decoder (section 4.3): a WaveNet over µ-law samples (or a logistic mixture),
locally conditioned on the codewords upsampled to the sample rate and globally on a learned
speaker embedding.

    loss = NLL(x | z_q, speaker)   with x pre-emphasised (LPCNet; 0 = off)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...audio import mu_law_encode
from ..distributions import Categorical, make_output
from ..emphasis import preemphasis
from ..wavenet import WaveNet
from . import register
from .base import Decoder, DecoderOutput, StepInputs
from .windows import WindowedCodes


class Conditioner(nn.Module):
    """Quantized codes (B, D, F) → local conditioning (B, C, F · hop) at the sample rate.

    A few convolutions at the code rate give each frame some context, then learned
    upsampling: a transposed convolution with kernel = stride = hop (each of the hop
    positions inside a frame gets its own projection), or plain repetition.
    """

    def __init__(self, dim: int, channels: int, hop: int, layers: int = 2, upsample: str = "transposed"):
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [nn.Conv1d(dim if i == 0 else channels, channels, 3, padding=1), nn.ReLU()]
        self.context = nn.Sequential(*blocks) if layers else nn.Conv1d(dim, channels, 1)
        self.hop, self.mode = hop, upsample
        self.upsample = nn.ConvTranspose1d(channels, channels, hop, stride=hop) if upsample == "transposed" else None

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.context(codes)
        if self.upsample is not None:
            return self.upsample(h)
        return h.repeat_interleave(self.hop, dim=-1)


@register
class WaveNetDecoder(Decoder):
    """`cfg` is the config's `model.decoder` (a DecoderConfig)."""

    kind = "wavenet"

    def __init__(self, cfg, code_dim: int, hop: int, num_speakers: int, sample_rate: int):
        super().__init__(hop, sample_rate, cfg.classes, cfg.preemphasis, cfg.input_noise)
        self.output = make_output(cfg.output, cfg.classes, cfg.mixtures)
        # (creation order as before the decoder seam: the same seed gives the same weights)
        self.conditioner = Conditioner(code_dim, cfg.cond_channels, hop, cfg.cond_layers, cfg.upsample)
        self.speakers = nn.Embedding(num_speakers, cfg.speaker_dim)
        self.network = WaveNet.from_config(cfg, cfg.classes, self.output.channels, cfg.cond_channels,
                                           cfg.speaker_dim)

    def forward(self, wav, codewords, speaker, noise=None, pitch=None) -> DecoderOutput:
        local, glob = self.conditioner(codewords), self.speakers(speaker)
        signal = preemphasis(wav, self.preemphasis)  # what the network models (emphasis.py)
        logits = self.network(self.inputs(signal, noise), local[..., : wav.shape[-1]], glob)
        target = mu_law_encode(signal, self.classes) if isinstance(self.output, Categorical) else signal.clamp(-1, 1)
        nll = self.output.nll(logits, target)
        return DecoderOutput(nll, nll, logits, {})

    def inputs(self, signal: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """µ-law bins of the previous sample of the (pre-emphasised) signal at each step:
        (B, T) int64, first = silence.

        In training, `input_noise` adds noise to them, never to the targets (`Decoder.noisy`).
        """
        return F.pad(self.noisy(mu_law_encode(signal, self.classes), noise)[:, :-1], (1, 0), value=self.first_input)

    def step_inputs(self, codebook, indices, speaker, frames, pitch=None) -> StepInputs:
        device = self.speakers.weight.device
        with torch.no_grad():
            glob = self.speakers(speaker.to(device))
        return StepInputs(WindowedCodes(self.conditioner, codebook, indices.to(device), frames), glob)

    def conditioning(self, codewords: torch.Tensor, speaker: torch.Tensor):
        """Whole-signal conditioning (local (B, C, F · hop), glob (B, G)) of codewords (B, D, F):
        what `forward` feeds the network (for tests and checks)."""
        return self.conditioner(codewords), self.speakers(speaker)
