"""The audio VQ-VAE: encoder (waveform or log-mel: nn/encoder.py) → vector quantizer → a
decoder of the kind the config names (`model.decoder.kind`; the paper's WaveNet conditioned on
the upsampled codes and a learned speaker embedding by default: nn/decoders/).

loss = decoder loss (NLL(x | z_q, speaker), + any auxiliary loss) + ‖sg[z_e] − e‖² + β‖z_e − sg[e]‖²
       (+ the speaker adversary's cross-entropy, its gradient reversed into the encoder)

Rates: the decoder works in frames of `hop` samples. With `model.encoder.code_stride` r > 1
the encoder makes one code per r frames (`code_hop` = r · hop: a narrower bottleneck) and each
code is held over its r frames for the decoder; `encode` returns the codes at the frame rate
(each repeated r times), so everything downstream of it (conversion, analysis, code files)
works in frames, and `bottleneck_rate` = sample_rate / code_hop counts distinct codes.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .decoders import Decoder, build_decoder
from .emphasis import Deemphasis
from .encoder import build_encoder
from .quantizer import VectorQuantizer, VQResult
from .speaker_adversary import SpeakerAdversary


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
    decoder_scalars: dict = {}  # the decoder's own numbers (auxiliary losses, …)

    def scalars(self, code_rate: float) -> dict[str, float]:
        """Numbers worth logging each step."""
        return {"loss": float(self.loss.detach()), "nll": float(self.nll.detach()),
                "commitment": float(self.vq.commitment), "codebook": float(self.vq.codebook_loss),
                "perplexity": float(self.vq.perplexity), "usage": float(self.vq.usage),
                "bits": float(self.vq.entropy_bits), "bitrate": float(self.vq.entropy_bits) * code_rate,
                **{k: float(v.detach() if isinstance(v, torch.Tensor) else v) for k, v in self.decoder_scalars.items()}}


def _upgrade_state(module, state_dict, prefix, *args) -> None:
    """Weights saved before the decoder seam kept the WaveNet decoder's parts at the top level
    (conditioner.*, speakers.*, decoder.* = the WaveNet); now they live in the decoder module."""
    if f"{prefix}decoder.embed.weight" not in state_dict:
        return
    moves = {"conditioner.": "decoder.conditioner.", "speakers.": "decoder.speakers.",
             "decoder.": "decoder.network."}
    for key in list(state_dict):
        rest = key[len(prefix):] if key.startswith(prefix) else None
        for old, new in moves.items():
            if rest is not None and rest.startswith(old):
                state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)
                break


class AudioVQVAE(nn.Module):
    """Waveform (B, T) in [-1, 1] + speaker indices (B,) → VQVAEOutput.

    `model` is the config's `model` section (see audiovq/config.py); T must be a multiple of
    `hop`. `code_rate` (codes per second) follows from the sample rate and the encoder. The
    decoder is reached only through its interface (nn/decoders/base.py).
    """

    def __init__(self, model, num_speakers: int, sample_rate: int):
        super().__init__()
        e, q = model.encoder, model.quantizer
        self.encoder = build_encoder(e, q.dim, sample_rate)
        self.quantizer = VectorQuantizer(q.codebook_size, q.dim, q.beta, q.ema, q.decay, q.eps,
                                         q.warmup_steps, q.kmeans_iters, q.restart_after, q.window)
        self.hop, self.code_stride, self.code_hop = self.encoder.hop, self.encoder.code_stride, self.encoder.code_hop
        self.decoder: Decoder = build_decoder(model.decoder, q.dim, self.hop, num_speakers, sample_rate)
        adv = getattr(model, "adversary", None)
        self.adversary = (SpeakerAdversary(q.dim, num_speakers, int(adv.hidden), float(adv.weight))
                          if adv is not None and float(adv.weight) > 0 else None)
        self.sample_rate = sample_rate
        self.code_rate = sample_rate / self.hop  # of the sequences `encode` returns (frames)
        self.bottleneck_rate = sample_rate / self.code_hop  # distinct codes per second
        self._register_load_state_dict_pre_hook(_upgrade_state, with_module=True)

    def forward(self, wav: torch.Tensor, speaker: torch.Tensor, encoder_wav: torch.Tensor | None = None,
                decoder_noise: torch.Tensor | None = None, pitch: torch.Tensor | None = None,
                band_shift: torch.Tensor | None = None) -> VQVAEOutput:
        """`encoder_wav` (B, T): a perturbed copy for the encoder; the decoder still models `wav`.
        `decoder_noise` (B, T): standard normal draws for the decoder's input noise. `pitch`
        (B, T / hop): F0 per code frame, for a decoder that needs it. `band_shift` (B,) int64:
        a mel encoder's input moved by that many mel bands (training perturbation)."""
        vq = self.quantizer(self.encoder(wav if encoder_wav is None else encoder_wav, band_shift))
        out = self.decoder(wav, self.held(vq.quantized), speaker, decoder_noise, pitch)
        loss, scalars = out.loss + vq.loss, out.scalars
        if self.adversary is not None:
            adv = self.adversary(vq.quantized, speaker)
            loss = loss + adv.loss
            scalars = {**scalars, "adversary": adv.loss.detach(), "adversary_accuracy": adv.accuracy}
        return VQVAEOutput(loss, out.nll, vq, out.logits, scalars)

    def held(self, x: torch.Tensor) -> torch.Tensor:
        """Code-rate values (B, …, F / code_stride) → frame rate (B, …, F): each held over its
        `code_stride` frames (the identity without a code stride)."""
        return x if self.code_stride == 1 else x.repeat_interleave(self.code_stride, -1)

    def reconstruction(self, wav: torch.Tensor, quantized: torch.Tensor, speaker: torch.Tensor,
                       decoder_noise: torch.Tensor | None = None, pitch: torch.Tensor | None = None):
        """Teacher-forced decoder NLL (nats per sample) of wav (B, T) given codewords
        (B, D, T / hop) and speakers (B,); returns (nll, logits (B, C_out, T))."""
        out = self.decoder(wav, quantized, speaker, decoder_noise, pitch)
        return out.nll, out.logits

    def to_waveform(self, values: torch.Tensor | np.ndarray, filter: Deemphasis | None = None) -> np.ndarray:
        """The decoder's generated values (T,) → waveform (T,) float32 (Decoder.to_waveform)."""
        return self.decoder.to_waveform(values, filter)

    def representation_limit(self, wav: np.ndarray) -> np.ndarray:
        """The best the decoder could give back of wav (T,) (Decoder.representation_limit)."""
        return self.decoder.representation_limit(wav)

    @property
    def num_speakers(self) -> int:
        return self.decoder.num_speakers

    @torch.no_grad()
    def encode_windows(self, length: int, chunk: int = ENCODE_CHUNK) -> list[EncodeWindow]:
        """The windows a (padded) input of `length` samples is encoded in: `chunk` samples
        each (whole code hops), with a margin each side wider than the encoder's receptive field,
        so that each window's kept codes equal those of one pass over the whole signal (with
        an instance-normalised encoder: statistics per window, see nn/encoder.py)."""
        hop = self.code_hop
        chunk = max(hop, chunk // hop * hop)
        margin = -(-self.encoder.receptive_field // hop) * hop
        return [EncodeWindow(start, min(start + chunk, length), max(0, start - margin),
                             min(length, start + chunk + margin)) for start in range(0, length, chunk)]

    def encode(self, wav: torch.Tensor, chunk: int = ENCODE_CHUNK) -> torch.Tensor:
        """Waveform (B, T) → code indices (B, ceil(T / hop)) at the frame rate (pads T up to a
        multiple of code_hop; with a code stride each code is repeated over its frames).

        Long inputs are encoded in windows of `chunk` samples with a margin on each side wider
        than the encoder's receptive field, so memory stays bounded and the codes equal those
        of one pass over the whole signal.
        """
        return self.encode_latents(wav, chunk, latents=False)[0]

    def encode_latents(self, wav: torch.Tensor, chunk: int = ENCODE_CHUNK, latents: bool = True):
        """Waveform (B, T) → (indices (B, F), z_e (B, D, F) or None) at the frame rate,
        F = ceil(T / hop), encoded a window at a time as `encode`."""
        hop, frames = self.code_hop, -(-wav.shape[-1] // self.hop)
        pad = (-wav.shape[-1]) % hop  # applied per window: no padded copy of a long input
        T = wav.shape[-1] + pad
        if T <= max(hop, chunk // hop * hop):
            windows = [EncodeWindow(0, T, 0, T)]
        else:
            windows = self.encode_windows(T, chunk)
        ind_parts, z_parts = [], []
        for w in windows:
            window = wav[..., w.lo:w.hi]
            z = self.encoder(F.pad(window, (0, w.hi - w.lo - window.shape[-1])))
            first, count = (w.start - w.lo) // hop, (w.stop - w.start) // hop
            ind_parts.append(self.quantizer(z).indices[:, first:first + count])
            if latents:
                z_parts.append(z[..., first:first + count])
        ind = self.held(torch.cat(ind_parts, 1))[:, :frames]
        z = self.held(torch.cat(z_parts, -1))[..., :frames] if latents else None
        return ind, z
