"""The audio VQ-VAE: waveform encoder → vector quantizer → WaveNet decoder conditioned on
the upsampled codes and a learned speaker embedding (paper, section 4.3).

loss = NLL(x | z_q, speaker) + ‖sg[z_e] − e‖² + β‖z_e − sg[e]‖²
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import mu_law_decode, mu_law_encode
from .distributions import Categorical, make_output
from .emphasis import Deemphasis, deemphasis, preemphasis
from .encoder import WaveformEncoder
from .quantizer import VectorQuantizer, VQResult
from .wavenet import WaveNet


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


ENCODE_CHUNK = 32_768  # samples `encode` codes at once (plus margins)


class EncodeWindow(NamedTuple):
    """One window of `AudioVQVAE.encode`: samples lo … hi − 1 are encoded, and the codes of
    samples start … stop − 1 (whole hops) are kept."""
    start: int
    stop: int
    lo: int
    hi: int


class VQVAEOutput(NamedTuple):
    loss: torch.Tensor       # total training loss
    nll: torch.Tensor        # decoder NLL per sample, nats
    vq: VQResult
    logits: torch.Tensor     # (B, C_out, T)

    def scalars(self, code_rate: float) -> dict[str, float]:
        """Numbers worth logging each step."""
        return {"loss": float(self.loss.detach()), "nll": float(self.nll.detach()),
                "commitment": float(self.vq.commitment), "codebook": float(self.vq.codebook_loss),
                "perplexity": float(self.vq.perplexity), "usage": float(self.vq.usage),
                "bits": float(self.vq.entropy_bits), "bitrate": float(self.vq.entropy_bits) * code_rate}


class AudioVQVAE(nn.Module):
    """Waveform (B, T) in [-1, 1] + speaker indices (B,) → VQVAEOutput.

    `model` is the config's `model` section (see audiovq/config.py); T must be a multiple of
    `hop`. `code_rate` (codes per second) follows from the sample rate and the encoder.
    """

    def __init__(self, model, num_speakers: int, sample_rate: int):
        super().__init__()
        e, q, d = model.encoder, model.quantizer, model.decoder
        self.encoder = WaveformEncoder(e.channels, q.dim, e.layers, e.stride, e.residual_layers)
        self.quantizer = VectorQuantizer(q.codebook_size, q.dim, q.beta, q.ema, q.decay, q.eps,
                                         q.warmup_steps, q.kmeans_iters, q.restart_after, q.window)
        self.output = make_output(d.output, d.classes, d.mixtures)
        self.conditioner = Conditioner(q.dim, d.cond_channels, self.encoder.hop, d.cond_layers, d.upsample)
        self.speakers = nn.Embedding(num_speakers, d.speaker_dim)
        self.decoder = WaveNet.from_config(d, d.classes, self.output.channels, d.cond_channels, d.speaker_dim)
        self.sample_rate, self.classes = sample_rate, d.classes
        self.preemphasis, self.input_noise = float(d.preemphasis), float(d.input_noise)
        self.hop = self.encoder.hop
        self.code_rate = sample_rate / self.hop

    def forward(self, wav: torch.Tensor, speaker: torch.Tensor, encoder_wav: torch.Tensor | None = None,
                decoder_noise: torch.Tensor | None = None) -> VQVAEOutput:
        """`encoder_wav` (B, T): a perturbed copy for the encoder; the decoder still models `wav`.
        `decoder_noise` (B, T): standard normal draws for the input noise (see `decoder_inputs`)."""
        vq = self.quantizer(self.encoder(wav if encoder_wav is None else encoder_wav))
        nll, logits = self.reconstruction(wav, vq.quantized, speaker, decoder_noise)
        return VQVAEOutput(nll + vq.loss, nll, vq, logits)

    def reconstruction(self, wav: torch.Tensor, quantized: torch.Tensor, speaker: torch.Tensor,
                       decoder_noise: torch.Tensor | None = None):
        """Teacher-forced decoder NLL (nats per sample) of wav (B, T) given codewords
        (B, D, T / hop) and speakers (B,); returns (nll, logits (B, C_out, T))."""
        local, glob = self.conditioner(quantized), self.speakers(speaker)
        signal = preemphasis(wav, self.preemphasis)  # what the decoder models (emphasis.py)
        logits = self.decoder(self.decoder_inputs(signal, decoder_noise), local[..., : wav.shape[-1]], glob)
        target = mu_law_encode(signal, self.classes) if isinstance(self.output, Categorical) else signal.clamp(-1, 1)
        return self.output.nll(logits, target), logits

    def decoder_inputs(self, signal: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """µ-law bins of the previous sample of the (pre-emphasised) signal at each step:
        (B, T) int64, first = silence.

        In training, `input_noise` > 0 adds Gaussian noise of that many µ-law bins (rounded)
        to these inputs, never to the targets (LPCNet): at generation the network reads back
        its own samples, which are off by the sampling noise, and learns to recover from it.
        `noise` (B, T) gives the standard normal draws (the recipe draws them for the global
        batch, so several processes train as one would); without it they are drawn here.
        """
        q = mu_law_encode(signal, self.classes)
        if self.training and self.input_noise > 0:
            if noise is None:
                noise = torch.randn(q.shape, device=q.device)
            q = (q + (noise.to(q.device) * self.input_noise).round().long()).clamp_(0, self.classes - 1)
        return F.pad(q[:, :-1], (1, 0), value=self.silence_class)

    def to_waveform(self, values: torch.Tensor | np.ndarray, filter: Deemphasis | None = None) -> np.ndarray:
        """Generated values (T,) (µ-law bins, or amplitudes for the mixture output) → the
        waveform (T,) float32: decoded, then de-emphasised (by `filter`, a `Deemphasis` of
        this model's coefficient, for a signal converted block by block)."""
        wav = np.asarray(self.output.to_waveform(values), dtype=np.float32)
        wav = filter(wav) if filter is not None else deemphasis(wav, self.preemphasis)
        return np.clip(wav, -1.0, 1.0)

    def representation_limit(self, wav: np.ndarray) -> np.ndarray:
        """A waveform (T,) at the model's rate passed through what the decoder models (pre-
        emphasis, µ-law bins) and back: the best a perfect decoder could output."""
        wav = np.asarray(wav, dtype=np.float32)
        signal = preemphasis(wav, self.preemphasis)
        if isinstance(self.output, Categorical):
            signal = mu_law_decode(mu_law_encode(signal, self.classes), self.classes)
        return np.clip(deemphasis(np.clip(signal, -1, 1).astype(np.float32), self.preemphasis), -1.0, 1.0)

    @property
    def silence_class(self) -> int:
        return int(mu_law_encode(torch.zeros(1), self.classes))

    @torch.no_grad()
    def encode_windows(self, length: int, chunk: int = ENCODE_CHUNK) -> list[EncodeWindow]:
        """The windows a (padded) input of `length` samples is encoded in: `chunk` samples
        each (whole hops), with a margin each side wider than the encoder's receptive field,
        so that each window's kept codes equal those of one pass over the whole signal."""
        hop = self.hop
        chunk = max(hop, chunk // hop * hop)
        margin = -(-self.encoder.receptive_field // hop) * hop
        return [EncodeWindow(start, min(start + chunk, length), max(0, start - margin),
                             min(length, start + chunk + margin)) for start in range(0, length, chunk)]

    def encode(self, wav: torch.Tensor, chunk: int = ENCODE_CHUNK) -> torch.Tensor:
        """Waveform (B, T) → code indices (B, ceil(T / hop)) (pads T up to a multiple of hop).

        Long inputs are encoded in windows of `chunk` samples with a margin on each side wider
        than the encoder's receptive field, so memory stays bounded and the codes equal those
        of one pass over the whole signal.
        """
        hop = self.hop
        pad = (-wav.shape[-1]) % hop  # applied per window: no padded copy of a long input
        T = wav.shape[-1] + pad
        if T <= max(hop, chunk // hop * hop):
            return self.quantizer(self.encoder(F.pad(wav, (0, pad)))).indices
        parts = []
        for w in self.encode_windows(T, chunk):
            window = wav[..., w.lo:w.hi]
            ind = self.quantizer(self.encoder(F.pad(window, (0, w.hi - w.lo - window.shape[-1])))).indices
            first = (w.start - w.lo) // hop
            parts.append(ind[:, first: first + (w.stop - w.start) // hop])
        return torch.cat(parts, dim=1)

    def conditioning(self, indices: torch.Tensor, speaker: torch.Tensor):
        """Codes (B, F) + speakers (B,) → (local (B, C, F · hop), glob (B, G)) for the decoder."""
        return self.conditioner(self.quantizer.lookup(indices)), self.speakers(speaker)
