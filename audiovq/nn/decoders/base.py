"""The decoder interface: what the Trainer, the generation engine (PyTorch and fast CPU paths,
one-shot and streamed, CUDA graph), convert, decode, sample and listen use of a decoder, and
nothing else.

    codes (B, F), speaker (B,) ──step_inputs()──► StepInputs(local, glob)      frame rate, once
                                                   │ (per window of frames)
    x_{<t} ──network (one step at a time)──► logits ──sampler() rule──► x_t    sample rate
    x ──to_waveform()──► waveform

A decoder provides:
- `forward(wav, codewords, speaker, noise)` → DecoderOutput: the teacher-forced training loss
  (its gradient reaches the codewords, hence the encoder and codebook);
- `step_inputs(codebook, indices, speaker, frames)` → StepInputs: the conditioning of the
  autoregressive network, computed at the frame rate a window at a time (a `LocalSource`,
  nn/decoders/windows.py) and a per-sequence vector;
- `network`: the autoregressive network the engine steps (`input_classes`,
  `output_channels`). The engine knows how to step nn's own networks (generate/networks.py:
  the WaveNet, with its numba kernel and CUDA-graph-ready step, and the source-filter
  decoder's excitation network); any other network offers `step_conditioning(local, glob,
  batch)` (rows of per-step conditioning, see generate/conditioning.GateConditioning for the
  contract) and `incremental(batch)` (the PyTorch step: `step(t, inputs (B,), cond (B, …)) →
  logits (B, O)`);
- a frame half for renderers (a source-filter decoder: `step_inputs` gives its frame records,
  nn/decoders/frames.py, which generate/renderers/ turn into samples);
- `output`: the distribution of the logits (nn/distributions.py), from which `sampler()`
  makes the one sampling rule (nn/sampling.py), and `first_input` (step 0's input);
- `to_waveform(values, filter)` and `representation_limit(wav)`.

The base class implements the sample-domain parts that every decoder of µ-law (or mixture)
values with LPCNet's pre-emphasis shares.
"""
from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from ...audio import mu_law_decode, mu_law_encode
from ..distributions import Categorical
from ..emphasis import Deemphasis, deemphasis, preemphasis


class DecoderOutput(NamedTuple):
    loss: torch.Tensor     # what the decoder adds to the training loss (NLL + any auxiliary loss)
    nll: torch.Tensor      # NLL per sample of the waveform, nats
    logits: torch.Tensor   # (B, C_out, T)
    scalars: dict          # further numbers worth logging (name → float)


class StepInputs(NamedTuple):
    local: object                # a LocalSource (per-step conditioning in blocks) or None
    glob: torch.Tensor | None    # (B, C_g) per-sequence conditioning, or None


class Decoder(nn.Module):
    """Base of every decoder kind (see the module doc for the contract).

    Subclasses set `kind`, and in __init__ `output` (a distribution), `speakers` (an
    nn.Embedding) and `network`; `classes` µ-law bins; `preemphasis` coefficient.
    """

    kind: ClassVar[str] = ""
    needs_pitch: ClassVar[bool] = False  # trained and run with F0 per code frame (data/pitch.py)

    def __init__(self, hop: int, sample_rate: int, classes: int, preemphasis: float, input_noise: float = 0.0):
        super().__init__()
        self.hop, self.sample_rate, self.classes = hop, sample_rate, classes
        self.preemphasis, self.input_noise = float(preemphasis), float(input_noise)

    def noisy(self, classes: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Input classes (B, T) with, in training, Gaussian noise of `input_noise` µ-law bins
        (rounded; LPCNet): at generation the network reads back its own samples, which are off
        by the sampling noise, and learns to recover from it. Never applied to targets.
        `noise` (B, T) gives the standard normal draws (the recipe draws them for the global
        batch, so several processes train as one would); without it they are drawn here."""
        if not (self.training and self.input_noise > 0):
            return classes
        if noise is None:
            noise = torch.randn(classes.shape, device=classes.device)
        return (classes + (noise.to(classes.device) * self.input_noise).round().long()).clamp_(0, self.classes - 1)

    # ------------------------------------------------------------ training
    def forward(self, wav: torch.Tensor, codewords: torch.Tensor, speaker: torch.Tensor,
                noise: torch.Tensor | None = None, pitch: torch.Tensor | None = None) -> DecoderOutput:
        """Teacher-forced loss of wav (B, T) given codewords (B, D, T / hop) and speakers (B,);
        `noise` (B, T): standard normal draws for any training-time input noise; `pitch`
        (B, T / hop): F0 in Hz per code frame (0 = unvoiced), for a decoder that `needs_pitch`."""
        raise NotImplementedError

    # ------------------------------------------------------------ generation
    def step_inputs(self, codebook, indices: torch.Tensor, speaker: torch.Tensor, frames: list[int],
                    pitch: list | None = None) -> StepInputs:
        """Conditioning of the network for codes (B, F) int64 (looked up in `codebook`, a
        VectorQuantizer), speakers (B,) and each item's frame count, computed at the frame
        rate (a window at a time where the decoder can, so a long file's conditioning never
        exists whole); `pitch`: per item, F0 (F_b,) Hz per code frame, or None (a decoder
        that uses pitch then predicts it)."""
        raise NotImplementedError

    @property
    def num_speakers(self) -> int:
        return self.speakers.num_embeddings

    @property
    def first_input(self) -> int:
        """The network's input at step 0: silence."""
        return int(mu_law_encode(torch.zeros(1), self.classes))

    def sampler(self, temperature: float, top_k: int = 0, floor: float = 0.0):
        """The sampling rule of this decoder's output at these settings (nn/sampling.py)."""
        from ..sampling import sampler_for
        return sampler_for(self.output, temperature, top_k, floor)

    def generated(self, classes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Which of the engine's outputs (B, W) `to_waveform` reads: the sampled classes of a
        categorical, the amplitudes of a mixture (or, for a network with an `observe` step,
        what that returned)."""
        return classes if isinstance(self.output, Categorical) else values

    def to_waveform(self, values: torch.Tensor | np.ndarray, filter: Deemphasis | None = None) -> np.ndarray:
        """Generated values (T,) (µ-law bins, or amplitudes for the mixture output) → the
        waveform (T,) float32: decoded, then de-emphasised (by `filter`, a `Deemphasis` of
        this decoder's coefficient, for a signal produced block by block)."""
        wav = np.asarray(self.output.to_waveform(values), dtype=np.float32)
        wav = filter(wav) if filter is not None else deemphasis(wav, self.preemphasis)
        return np.clip(wav, -1.0, 1.0)

    def waveform_filter(self) -> Deemphasis:
        """A fresh block-by-block de-emphasis for one output (see `to_waveform`)."""
        return Deemphasis(self.preemphasis)

    def representation_limit(self, wav: np.ndarray) -> np.ndarray:
        """A waveform (T,) at the model's rate passed through what the decoder models (pre-
        emphasis, µ-law bins) and back: the best a perfect decoder could output."""
        wav = np.asarray(wav, dtype=np.float32)
        signal = preemphasis(wav, self.preemphasis)
        if isinstance(self.output, Categorical):
            signal = mu_law_decode(mu_law_encode(signal, self.classes), self.classes)
        return np.clip(deemphasis(np.clip(signal, -1, 1).astype(np.float32), self.preemphasis), -1.0, 1.0)
