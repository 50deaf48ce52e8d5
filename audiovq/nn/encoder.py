"""The encoders: waveform or log-mel spectrogram (B, T) → z_e (B, D, T / code_hop).

`WaveformEncoder` is the paper's (section 4.3: strided convolutions, kernel 4, stride 2, on
the raw waveform); `MelEncoder` reads a log-mel spectrogram at the frame rate, as bshall's
ZeroSpeech VQ-VAE, VQMIVC and AutoVC do. Both make frames every `hop` samples (the decoder's
frame rate) and can then take `code_stride` frames into one code (`code_hop = hop ·
code_stride`): a narrower bottleneck (issue #26; bshall quantises at 50 Hz with K = 512).

Normalisation (`norm`) before each ReLU:
- "batch": without it, Adam (whose steps do not shrink with the gradient) pushes the biases
  of layers whose inputs are small below every input within a few hundred steps, and those
  ReLUs never fire again (docs/source-filter.md). In evaluation a fixed affine map, so a long
  file encoded a window at a time gets the codes of the whole file.
- "instance": each channel normalised over the time of the utterance (AdaIN-VC, VQVC+), no
  affine: what is constant over an utterance (the voice: its formant positions, its level)
  is divided out before quantisation. The statistics are those of what is encoded at once: a
  training segment, or one window of `AudioVQVAE.encode` (a file longer than a window gets
  statistics per window). The mel encoder also normalises its input features this way, so a
  per-band gain of the input (an offset of the log-mel per band) changes no code.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .logmel import LogMel, shift_bands

NORMS = ("none", "batch", "instance")
INPUTS = ("waveform", "mel")


def _norm(kind: str, channels: int) -> list[nn.Module]:
    if kind not in NORMS:
        raise ValueError(f"encoder norm must be one of {', '.join(NORMS)}, not {kind!r}")
    if kind == "batch":
        return [nn.BatchNorm1d(channels)]
    if kind == "instance":
        return [nn.InstanceNorm1d(channels, affine=False, track_running_stats=False)]
    return []


class ResidualBlock1d(nn.Module):
    """x + Conv1x1(ReLU(Conv3(ReLU(x)))), the residual layer of the paper's encoders."""

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels
        self.body = nn.Sequential(nn.ReLU(), nn.Conv1d(channels, hidden, 3, padding=1),
                                  nn.ReLU(), nn.Conv1d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Encoder(nn.Module):
    """What both encoders do after their frame layers: `code_stride` frames into one code (a
    strided convolution over exactly those frames, so code j summarises frames j·r … j·r + r − 1),
    residual layers at the code rate, a 1 × 1 projection to D. (Attribute names `residual` and
    `project` as before code strides existed: old checkpoints load unchanged.)"""

    def _code_layers(self, channels: int, dim: int, code_stride: int, residual_layers: int, norm: str) -> None:
        self.pool = (nn.Sequential(nn.Conv1d(channels, channels, code_stride, code_stride),
                                   *_norm(norm, channels), nn.ReLU()) if code_stride > 1 else nn.Identity())
        self.residual = nn.Sequential(*[ResidualBlock1d(channels) for _ in range(residual_layers)])
        self.project = nn.Conv1d(channels, dim, 1)

    def _to_codes(self, h: torch.Tensor) -> torch.Tensor:
        """Frames (B, C, F) → z_e (B, D, F / code_stride)."""
        h = self.residual(self.pool(h))
        if len(self.residual):
            h = torch.relu(h)
        return self.project(h)

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop)


class WaveformEncoder(_Encoder):
    """Waveform (B, T) or (B, 1, T) → z_e (B, D, T / code_hop), frames every hop = stride **
    layers samples, `code_stride` frames to a code.

    Each strided layer has kernel `2 * stride` and padding `stride // 2`, so a T that is a
    multiple of `code_hop` maps to exactly T / code_hop codes; frame i summarises samples around
    [i * hop, (i + 1) * hop).
    """

    def __init__(self, channels: int = 512, dim: int = 64, layers: int = 6, stride: int = 2,
                 residual_layers: int = 0, norm: str = "none", code_stride: int = 1):
        super().__init__()
        kernel, pad = 2 * stride, stride // 2
        convs: list[nn.Module] = []
        for i in range(layers):
            convs.append(nn.Conv1d(1 if i == 0 else channels, channels, kernel, stride, pad))
            convs += _norm(norm, channels)
            convs.append(nn.ReLU())
        self.strided = nn.Sequential(*convs)
        self._code_layers(channels, dim, code_stride, residual_layers, norm)
        self.hop, self.code_stride = stride ** layers, code_stride
        self.code_hop = self.hop * code_stride
        # samples one code depends on: each strided layer widens it by (kernel-1)·jump
        self.receptive_field = 1 + sum((kernel - 1) * stride ** i for i in range(layers)) + \
            (code_stride - 1) * self.hop + 2 * residual_layers * self.code_hop  # pooling, k=3 residual convs

    def forward(self, wav: torch.Tensor, band_shift: torch.Tensor | None = None) -> torch.Tensor:
        if band_shift is not None:
            raise ValueError("a band shift perturbs a mel encoder's input; this encoder reads the waveform")
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        return self._to_codes(self.strided(wav))


class MelEncoder(_Encoder):
    """Waveform (B, T) → log-mel (B, M, T / hop) → `layers` convolutions (kernel 3) at the frame
    rate → z_e (B, D, T / code_hop).

    `band_shift` (B,) int64 (training only): each item's log-mel moved up by that many bands
    (edge bands repeated; logmel.shift_bands) before the encoder reads it, a random warp of the
    spectrum that makes formant positions (the voice) unreliable in the codes.
    """

    def __init__(self, sample_rate: int, hop: int, channels: int = 256, dim: int = 64, layers: int = 3,
                 mels: int = 80, residual_layers: int = 0, norm: str = "none", code_stride: int = 1):
        super().__init__()
        self.features = LogMel(sample_rate, hop, mels)
        self.input_norm = nn.Sequential(*_norm("instance", mels)) if norm == "instance" else nn.Identity()
        convs: list[nn.Module] = []
        for i in range(layers):
            convs.append(nn.Conv1d(mels if i == 0 else channels, channels, 3, padding=1))
            convs += _norm(norm, channels)
            convs.append(nn.ReLU())
        self.convs = nn.Sequential(*convs)
        self._code_layers(channels, dim, code_stride, residual_layers, norm)
        self.hop, self.code_stride = hop, code_stride
        self.code_hop = hop * code_stride
        self.receptive_field = self.features.n_fft + 2 * layers * hop + (code_stride - 1) * hop + \
            2 * residual_layers * self.code_hop

    def encode_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, M, F) → z_e (B, D, F / code_stride)."""
        return self._to_codes(self.convs(self.input_norm(feats)))

    def forward(self, wav: torch.Tensor, band_shift: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.features(wav.squeeze(1) if wav.dim() == 3 else wav)
        if band_shift is not None:
            feats = shift_bands(feats, band_shift)
        return self.encode_features(feats)


def build_encoder(e, dim: int, sample_rate: int) -> nn.Module:
    """The encoder a config's `model.encoder` section names (`input`: waveform | mel); keys a
    checkpoint saved before they existed take the defaults (the paper's waveform encoder)."""
    kind = getattr(e, "input", "waveform")
    norm, stride = getattr(e, "norm", "none"), int(getattr(e, "code_stride", 1))
    if kind == "waveform":
        return WaveformEncoder(e.channels, dim, e.layers, e.stride, e.residual_layers, norm, stride)
    if kind == "mel":
        return MelEncoder(sample_rate, e.stride ** e.layers, e.channels, dim, int(getattr(e, "mel_layers", 3)),
                          int(getattr(e, "mels", 80)), e.residual_layers, norm, stride)
    raise ValueError(f"encoder input must be one of {', '.join(INPUTS)}, not {kind!r}")
