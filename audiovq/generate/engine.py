"""Autoregressive generation: any WaveNet (`generate_wavenet`, e.g. the prior over codes) and
the VQ-VAE decoder from codes + speaker (`generate`, a thin use of it).

Per chunk of steps: the gate conditioning of every layer is computed (`conditioning.py`),
each item's uniforms are drawn from its own stream (`sampling.py`), and a path runs the
steps — the numba kernel for a model on the CPU (`fast.py`), else plain PyTorch ops on the
model's device (`incremental.py`). Both paths sample the same values from the same
uniforms, and an item's samples depend only on its seed, not on the batch.
"""
from __future__ import annotations

import time
from typing import NamedTuple, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..errors import AudioVQError
from ..nn.distributions import Categorical
from ..nn.vqvae import AudioVQVAE
from ..nn.wavenet import WaveNet
from .conditioning import CONSTANT, GateConditioning, LocalSource, UpsampledCodes, codes_context
from .fast import FastPath
from .incremental import TorchPath, torch_threads
from .sampling import CATEGORICAL, SamplerSpec, UniformStream, sampler_for
from .weights import gate_weights

CHUNK = 256  # steps per chunk of conditioning (a multiple of `hold` is used)


class Generated(NamedTuple):
    """Output of `generate_wavenet`."""
    values: list[np.ndarray]  # per item (T_b,): int64 classes (categorical) or float32 amplitudes (mixture)
    seconds: float            # wall time, conditioning included
    steps: int                # Σ T_b

    @property
    def steps_per_s(self) -> float:
        return self.steps / max(self.seconds, 1e-9)


class GenerationResult(NamedTuple):
    """Output of `generate`."""
    audio: list[np.ndarray]  # per item (T_b,) float32 waveform in [-1, 1]
    samples_per_s: float     # generated samples per second of wall time, summed over items
    rtf: float               # wall time / duration of all generated audio (< 1: faster than real time)
    seconds: float


def _lengths(steps, batch: int | None) -> list[int]:
    if isinstance(steps, torch.Tensor):
        steps = steps.tolist()
    if isinstance(steps, (int, np.integer)):
        lengths = [int(steps)] * (batch or 1)
    else:
        lengths = [int(s) for s in steps]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"every item needs at least one step, got lengths {lengths}")
    if batch is not None and len(lengths) != batch:
        raise ValueError(f"{len(lengths)} lengths for a batch of {batch}")
    return lengths


def _seeds(seed, batch: int) -> list[int]:
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + b for b in range(batch)]
    seeds = [int(s) for s in seed]
    if len(seeds) != batch:
        raise ValueError(f"{len(seeds)} seeds for a batch of {batch}")
    return seeds


def _run(wavenet: WaveNet, lengths: list[int], local, glob, spec: SamplerSpec, first_input: int,
         seeds: list[int], fast: bool, threads: int | None, progress: bool,
         forced: torch.Tensor | None = None, keep_logits: bool = False):
    B, T = len(lengths), max(lengths)
    if isinstance(local, torch.Tensor) and local.shape[-1] < T:
        raise ValueError(f"local conditioning has {local.shape[-1]} steps, {T} are generated")
    threads = threads or torch.get_num_threads()
    cond = GateConditioning(gate_weights(wavenet), len(wavenet.layers), B, local, glob)
    chunk = CHUNK if cond.hold == CONSTANT else cond.hold * -(-CHUNK // cond.hold)
    on_cpu = wavenet.embed.weight.device.type == "cpu"
    if fast and on_cpu:
        path = FastPath(wavenet, lengths, spec, first_input, forced, keep_logits, threads)
        n_torch = max(1, threads // path.threads)  # each worker makes its own conditioning
    else:
        path = TorchPath(wavenet, lengths, spec, first_input, forced, keep_logits)
        n_torch = threads
    streams = [UniformStream(s, spec.uniforms_per_step) for s in seeds]
    try:
        with torch_threads(n_torch), torch.no_grad(), tqdm(total=T, disable=not progress,
                                                           unit="step", desc="generate") as bar:
            for t0 in range(0, T, chunk):
                n = min(chunk, T - t0)
                uniforms = torch.stack([s.take(n) for s in streams])
                path.run(t0, n, cond, chunk, uniforms)
                bar.update(n)
        return path.results()
    finally:
        path.close()


def generate_wavenet(wavenet: WaveNet, steps: int | Sequence[int] | torch.Tensor,
                     local: torch.Tensor | LocalSource | None = None, glob: torch.Tensor | None = None,
                     output=None, *, first_input: int = 0, temperature: float = 1.0,
                     seed: int | Sequence[int] = 0, fast: bool = True, threads: int | None = None,
                     progress: bool = False) -> Generated:
    """Sample from any WaveNet autoregressively.

    steps: one length for every item, or per-item lengths (B,) (each item stops at its own);
    local (B, C_l, ≥ T) or a LocalSource; glob (B, C_g); output: the distribution of the
    logits (default a categorical over out_channels classes, fed back as is); first_input:
    the input class of step 0. temperature 0 = argmax. seed: item b uses seed + b (or
    seed[b]), so batch and one-by-one generation agree. fast: use the numba kernel when
    the model is on the CPU (other devices always run the PyTorch path). threads: CPU
    threads (default torch's).
    """
    batch = None
    for c in (local, glob):
        if isinstance(c, torch.Tensor):
            batch = c.shape[0]
    if isinstance(local, UpsampledCodes):
        batch = local.context.shape[0]
    lengths = _lengths(steps, batch)
    if output is None:
        output = Categorical(wavenet.head[-1].out_channels, mu_law=False)
    spec = sampler_for(output, temperature)
    fed_back = output.channels if spec.kind == CATEGORICAL else spec.mu_law_levels
    if fed_back > wavenet.embed.num_embeddings or not 0 <= first_input < wavenet.embed.num_embeddings:
        raise ValueError(f"samples ({fed_back} classes) and first_input {first_input} must be input classes "
                         f"of the WaveNet (0 … {wavenet.embed.num_embeddings - 1})")
    t = time.perf_counter()
    classes, values, _ = _run(wavenet, lengths, local, glob, spec, first_input,
                              _seeds(seed, len(lengths)), fast, threads, progress)
    seconds = time.perf_counter() - t
    picked = classes if spec.kind == CATEGORICAL else values
    return Generated([picked[b, :n].copy() for b, n in enumerate(lengths)], seconds, sum(lengths))


def teacher_forced_logits(wavenet: WaveNet, inputs: torch.Tensor,
                          local: torch.Tensor | LocalSource | None = None, glob: torch.Tensor | None = None,
                          fast: bool = True, threads: int | None = None) -> torch.Tensor:
    """The incremental paths fed given inputs (B, T) int64: logits (B, O, T), as `forward`
    (for tests and checks; the fast path when `fast` and the model is on the CPU)."""
    B, T = inputs.shape
    if inputs.min() < 0 or inputs.max() >= wavenet.embed.num_embeddings:
        raise ValueError(f"inputs must be input classes of the WaveNet (0 … {wavenet.embed.num_embeddings - 1})")
    spec = SamplerSpec(CATEGORICAL, 0.0)
    _, _, logits = _run(wavenet, [T] * B, local, glob, spec, 0, list(range(B)), fast, threads, False,
                        forced=inputs, keep_logits=True)
    return torch.from_numpy(logits).transpose(1, 2)


def generate(model: AudioVQVAE, indices: torch.Tensor, speaker: torch.Tensor,
             lengths: Sequence[int] | torch.Tensor | None = None, temperature: float = 1.0,
             seed: int | Sequence[int] = 0, fast: bool = True, progress: bool = False,
             threads: int | None = None) -> GenerationResult:
    """Decode codes to waveforms with the VQ-VAE's WaveNet decoder.

    indices (B, F) int64 codes (padded), speaker (B,) int64, lengths (B,) samples to generate
    per item (default F · hop; at most F · hop). Each item's conditioning is computed from its
    own frames, so an item comes out the same alone or in any batch (same seed).
    """
    indices = torch.as_tensor(indices, dtype=torch.int64)
    speaker = torch.as_tensor(speaker, dtype=torch.int64)
    if indices.dim() != 2 or speaker.shape != (indices.shape[0],):
        raise AudioVQError(f"expected codes (B, F) and speakers (B,), got {tuple(indices.shape)} "
                           f"and {tuple(speaker.shape)}")
    B, F = indices.shape
    hop = model.hop
    try:
        lengths = _lengths(F * hop if lengths is None else lengths, B)
        seeds = _seeds(seed, B)
        spec = sampler_for(model.output, temperature)
    except ValueError as e:
        raise AudioVQError(str(e)) from None
    if max(lengths) > F * hop:
        raise AudioVQError(f"lengths up to {max(lengths)} samples need more than the {F} code frames given "
                           f"({F * hop} samples)")
    codes, speakers = model.quantizer.num_codes, model.speakers.num_embeddings
    if indices.numel() and not 0 <= int(indices.min()) <= int(indices.max()) < codes:
        raise AudioVQError(f"codes must be in 0 … {codes - 1}, got {int(indices.min())} … {int(indices.max())}")
    if not 0 <= int(speaker.min()) <= int(speaker.max()) < speakers:
        raise AudioVQError(f"speakers must be in 0 … {speakers - 1}, got {speaker.tolist()}")
    device = model.speakers.weight.device
    t = time.perf_counter()
    with torch.no_grad():
        codewords = model.quantizer.lookup(indices.to(device))
        context = codes_context(model.conditioner, codewords, [-(-n // hop) for n in lengths])
        glob = model.speakers(speaker.to(device))
    classes, values, _ = _run(model.decoder, lengths, UpsampledCodes(model.conditioner, context), glob,
                              spec, model.silence_class, seeds, fast, threads, progress)
    seconds = time.perf_counter() - t
    out = classes if spec.kind == CATEGORICAL else values
    audio = [model.to_waveform(out[b, :n]) for b, n in enumerate(lengths)]
    total = sum(lengths)
    return GenerationResult(audio, total / seconds, seconds * model.sample_rate / total, seconds)
