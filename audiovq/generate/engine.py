"""Autoregressive generation: any autoregressive network (`generate_wavenet`, e.g. the prior
over codes) and a VQ-VAE's decoder from codes + speaker (`generate`, `stream`), through the
decoder interface only (nn/decoders/base.py).

Per chunk of steps: the network's per-step conditioning is computed (its
`step_conditioning`, e.g. `conditioning.GateConditioning`), each item's uniforms are drawn
from its own stream (`nn/sampling.py`), and a path runs the steps — the numba kernels for a
WaveNet on the CPU (`fast.py`), else the network's PyTorch step on its device
(`incremental.py`). Both paths sample by the same rule from the same uniforms, and an item's
samples depend only on its seed, not on the batch.

Outputs are kept for a window of steps at a time (`_windows`): all of them for `generate`,
a block at a time for `stream`, which hands out each block of waveform as it is made, so a
long file's conversion needs memory for one block, not for the whole output.
"""
from __future__ import annotations

import time
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..errors import AudioVQError
from ..nn.distributions import Categorical
from ..nn.vqvae import AudioVQVAE
from ..nn.wavenet import WaveNet
from ..nn.decoders.windows import LocalSource, UpsampledCodes
from .conditioning import CONSTANT
from .fast import FastPath, fast_wavenet
from .incremental import TorchPath, torch_threads
from .networks import step_conditioning
from .renderers import AudioBlock, renderer_named
from ..nn.sampling import CATEGORICAL, SamplerSpec, UniformStream, sampler_for
from .weights import PRECISIONS

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


class Window(NamedTuple):
    """Outputs of steps start … start + W − 1 (`_windows`)."""
    start: int
    classes: np.ndarray        # (B, W) int64
    values: np.ndarray         # (B, W) float32
    logits: np.ndarray | None  # (B, W, O) when asked for


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


def _device(network) -> torch.device:
    return next(network.parameters()).device


def has_fast_path(network) -> bool:
    """Whether the numba kernels can run this network (a WaveNet, or one around a WaveNet
    that `fast.fast_wavenet` knows, on the CPU)."""
    return fast_wavenet(network) is not None and _device(network).type == "cpu"


def check_precision(network, fast: bool, precision: str) -> None:
    """Refuse a weight precision the path that would run cannot use (AudioVQError)."""
    if precision not in PRECISIONS:
        raise AudioVQError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "float32" and network is None:
        raise AudioVQError(f"precision {precision} is an option of the excitation network's fast CPU path; this "
                           "model has no network (model.decoder.network=false)")
    if precision != "float32" and not (fast and has_fast_path(network)):
        device = _device(network).type
        why = "--slow" if device == "cpu" and fast_wavenet(network) is not None else (
            device if device != "cpu" else "this decoder has no fast kernel")
        raise AudioVQError(f"precision {precision} is an option of the fast CPU path; the PyTorch path "
                           f"({why}) computes in float32")


def _windows(network, lengths: list[int], local, glob, spec: SamplerSpec, first_input: int,
             seeds: list[int], fast: bool, threads: int | None, progress: bool, window: int | None = None,
             forced: torch.Tensor | None = None, keep_logits: bool = False,
             precision: str = "float32") -> Iterator[Window]:
    """Run the steps a window at a time (`window` steps, rounded up to whole chunks; default
    all): each window's outputs are handed out, then overwritten by the next. The path keeps
    its state (rings, last samples, uniform streams) from one window to the next, so the
    outputs do not depend on the window size."""
    B, T = len(lengths), max(lengths)
    if isinstance(local, torch.Tensor) and local.shape[-1] < T:
        raise ValueError(f"local conditioning has {local.shape[-1]} steps, {T} are generated")
    threads = threads or torch.get_num_threads()
    cond = step_conditioning(network, local, glob, B)
    chunk = CHUNK if cond.hold == CONSTANT else cond.hold * -(-CHUNK // cond.hold)
    window = T if window is None else chunk * -(-window // chunk)
    check_precision(network, fast, precision)
    if fast and has_fast_path(network):
        path = FastPath(network, lengths, spec, first_input, forced, keep_logits, threads, window=min(window, T),
                        precision=precision)
        n_torch = max(1, threads // path.threads)  # each worker makes its own conditioning
    else:
        path = TorchPath(network, lengths, spec, first_input, forced, keep_logits, window=min(window, T))
        n_torch = threads
    streams = [UniformStream(s, spec.uniforms_per_step) for s in seeds]
    bar = tqdm(total=T, disable=not progress, unit="step", desc="generate")
    try:
        for w0 in range(0, T, window):
            n_w = min(window, T - w0)
            with torch_threads(n_torch), torch.no_grad():  # not held across the yield
                for t0 in range(w0, w0 + n_w, chunk):
                    n = min(chunk, w0 + n_w - t0)
                    uniforms = torch.stack([s.take(n) for s in streams])
                    path.run(t0, n, cond, chunk, uniforms)
                    bar.update(n)
            classes, values, logits = path.results()  # views of the window, overwritten by the next
            path.base += n_w
            yield Window(w0, classes[:, :n_w], values[:, :n_w], None if logits is None else logits[:, :n_w])
    finally:
        bar.close()
        path.close()


def _run(*args, **kwargs) -> Window:
    """All steps in one window (arguments of `_windows`)."""
    windows = _windows(*args, **kwargs)
    try:
        return next(windows)
    finally:
        windows.close()


def generate_wavenet(wavenet: WaveNet, steps: int | Sequence[int] | torch.Tensor,
                     local: torch.Tensor | LocalSource | None = None, glob: torch.Tensor | None = None,
                     output=None, *, first_input: int = 0, temperature: float = 1.0, top_k: int = 0,
                     floor: float = 0.0, seed: int | Sequence[int] = 0, fast: bool = True,
                     threads: int | None = None, progress: bool = False, precision: str = "float32") -> Generated:
    """Sample from any autoregressive network (a WaveNet, or a network with the same step
    interface: nn/decoders/base.py).

    steps: one length for every item, or per-item lengths (B,) (each item stops at its own);
    local (B, C_l, ≥ T) or a LocalSource; glob (B, C_g); output: the distribution of the
    logits (default a categorical over out_channels classes, fed back as is); first_input:
    the input class of step 0. temperature 0 = argmax; top_k, floor: the sampling rule's
    (sampling.py). seed: item b uses seed + b (or
    seed[b]), so batch and one-by-one generation agree. fast: use the numba kernel when
    the model is on the CPU (other devices always run the PyTorch path). threads: CPU
    threads (default torch's). precision: the fast path's mat-vec weights, "float32",
    "bf16" or "int8" (faster at batch 1, logits within ~1% rms; see `kernels.py`).
    """
    batch = None
    for c in (local, glob):
        if isinstance(c, torch.Tensor):
            batch = c.shape[0]
    if isinstance(local, UpsampledCodes):
        batch = local.batch
    lengths = _lengths(steps, batch)
    if output is None:
        output = Categorical(wavenet.output_channels, mu_law=False)
    spec = sampler_for(output, temperature, top_k, floor)
    fed_back = output.channels if spec.kind == CATEGORICAL else spec.mu_law_levels
    if fed_back > wavenet.input_classes or not 0 <= first_input < wavenet.input_classes:
        raise ValueError(f"samples ({fed_back} classes) and first_input {first_input} must be input classes "
                         f"of the network (0 … {wavenet.input_classes - 1})")
    t = time.perf_counter()
    r = _run(wavenet, lengths, local, glob, spec, first_input, _seeds(seed, len(lengths)), fast, threads, progress,
             precision=precision)
    seconds = time.perf_counter() - t
    picked = r.classes if spec.kind == CATEGORICAL else r.values
    return Generated([picked[b, :n].copy() for b, n in enumerate(lengths)], seconds, sum(lengths))


def teacher_forced_logits(wavenet: WaveNet, inputs: torch.Tensor,
                          local: torch.Tensor | LocalSource | None = None, glob: torch.Tensor | None = None,
                          fast: bool = True, threads: int | None = None, precision: str = "float32") -> torch.Tensor:
    """The incremental paths of a network fed given inputs (B, T) int64: logits (B, O, T), as
    `forward` (for tests and checks; the fast path when `fast` and the model is on the CPU,
    with its weights at `precision`)."""
    B, T = inputs.shape
    if inputs.min() < 0 or inputs.max() >= wavenet.input_classes:
        raise ValueError(f"inputs must be input classes of the network (0 … {wavenet.input_classes - 1})")
    spec = SamplerSpec(CATEGORICAL, 0.0)
    r = _run(wavenet, [T] * B, local, glob, spec, 0, list(range(B)), fast, threads, False,
             forced=inputs, keep_logits=True, precision=precision)
    return torch.from_numpy(r.logits).transpose(1, 2)


def generate(model: AudioVQVAE, indices: torch.Tensor, speaker: torch.Tensor,
             lengths: Sequence[int] | torch.Tensor | None = None, temperature: float = 1.0,
             seed: int | Sequence[int] = 0, fast: bool = True, progress: bool = False,
             threads: int | None = None, precision: str = "float32", top_k: int = 0,
             floor: float = 0.0, pitch: list | None = None, renderer: str | None = None,
             f0_shift: float = 0.0) -> GenerationResult:
    """Decode codes to waveforms with the VQ-VAE's decoder.

    indices (B, F) int64 codes (padded), speaker (B,) int64, lengths (B,) samples to generate
    per item (default F · hop; at most F · hop). Each item's conditioning is computed from its
    own frames, so an item comes out the same alone or in any batch (same seed). The whole
    output in one piece: `stream` gives the same samples a block at a time.
    """
    t = time.perf_counter()
    blocks = stream(model, indices, speaker, lengths, temperature, seed, fast, threads, block=None,
                    progress=progress, precision=precision, top_k=top_k, floor=floor, pitch=pitch,
                    renderer=renderer, f0_shift=f0_shift)
    audio = [np.concatenate(parts) for parts in zip(*(b.audio for b in blocks))]
    seconds = time.perf_counter() - t
    total = sum(a.size for a in audio)
    return GenerationResult(audio, total / seconds, seconds * model.sample_rate / total, seconds)


BLOCK = 1 << 15  # samples per block of `stream` (2 s at 16 kHz)


def default_renderer(decoder) -> str:
    """"network" for a decoder with a network of its own, else "world" (a source-filter
    decoder trained without its excitation network: model.decoder.network=false)."""
    return "network" if getattr(decoder, "network", None) is not None else "world"


RENDERERS = ("network", "pulses", "world")  # what turns the frame records into samples (renderers/)


def stream(model: AudioVQVAE, indices: torch.Tensor, speaker: torch.Tensor,
           lengths: Sequence[int] | torch.Tensor | None = None, temperature: float = 1.0,
           seed: int | Sequence[int] = 0, fast: bool = True, threads: int | None = None,
           block: int | None = BLOCK, progress: bool = False, precision: str = "float32", top_k: int = 0,
           floor: float = 0.0, pitch: list | None = None, renderer: str | None = None,
           f0_shift: float = 0.0) -> Iterator[AudioBlock]:
    """`generate`, a block of `block` samples at a time (rounded up to whole chunks of steps,
    `CHUNK` or the next multiple of the hop; None: all in one block; an item's blocks are
    empty once it has ended).

    Concatenating an item's blocks gives `generate`'s waveform sample for sample (same seed),
    whatever the block size: the generator's state and the de-emphasis filter's carry over
    from block to block. Memory: one block of output and a window of code-rate context per
    item, whatever the length. Bad requests raise AudioVQError here, before any block.

    `renderer` (renderers/): "network" samples the decoder's own network; "pulses" and
    "world" render a source-filter decoder's frame records (envelope, gain, F0, voicing)
    with no network (temperature, precision and `fast` then have nothing to act on); None:
    `default_renderer`.
    `pitch`: per item, F0 (F_b,) Hz per code frame, or None: a decoder with an F0 head
    predicts it, `f0_shift` semitones higher (its voicing probability kept).
    """
    render = renderer_named(renderer or default_renderer(model.decoder))
    render.check(model.decoder)
    indices = torch.as_tensor(indices, dtype=torch.int64)
    speaker = torch.as_tensor(speaker, dtype=torch.int64)
    if indices.dim() != 2 or speaker.shape != (indices.shape[0],):
        raise AudioVQError(f"expected codes (B, F) and speakers (B,), got {tuple(indices.shape)} "
                           f"and {tuple(speaker.shape)}")
    B, F = indices.shape
    hop, decoder = model.hop, model.decoder
    try:
        lengths = _lengths(F * hop if lengths is None else lengths, B)
        seeds = _seeds(seed, B)
        spec = decoder.sampler(temperature, top_k, floor)
    except ValueError as e:
        raise AudioVQError(str(e)) from None
    if max(lengths) > F * hop:
        raise AudioVQError(f"lengths up to {max(lengths)} samples need more than the {F} code frames given "
                           f"({F * hop} samples)")
    codes, speakers = model.quantizer.num_codes, decoder.num_speakers
    if indices.numel() and not 0 <= int(indices.min()) <= int(indices.max()) < codes:
        raise AudioVQError(f"codes must be in 0 … {codes - 1}, got {int(indices.min())} … {int(indices.max())}")
    if not 0 <= int(speaker.min()) <= int(speaker.max()) < speakers:
        raise AudioVQError(f"speakers must be in 0 … {speakers - 1}, got {speaker.tolist()}")
    check_precision(decoder.network, fast, precision)
    if pitch is not None and len(pitch) != B:
        raise AudioVQError(f"{len(pitch)} F0 tracks for a batch of {B}")
    frames = [-(-n // hop) for n in lengths]
    if f0_shift and pitch is None:  # the F0 head's prediction, shifted
        inputs = decoder.step_inputs(model.quantizer, indices, speaker, frames, pitch, f0_scale=2 ** (f0_shift / 12))
    else:
        inputs = decoder.step_inputs(model.quantizer, indices, speaker, frames, pitch)
    return render.blocks(decoder, inputs.local, lengths, block, seeds, glob=inputs.glob, spec=spec, fast=fast,
                         threads=threads, progress=progress, precision=precision)


def _decoded(decoder, windows: Iterator[Window], lengths: list[int], spec: SamplerSpec) -> Iterator[AudioBlock]:
    """Generated windows → waveform blocks, as `Decoder.to_waveform` on each whole item."""
    filters = [decoder.waveform_filter() for _ in lengths]
    t = time.perf_counter()
    for w in windows:
        out = decoder.generated(w.classes, w.values)
        audio = []
        for b, n in enumerate(lengths):
            audio.append(decoder.to_waveform(out[b, :max(0, min(n - w.start, out.shape[1]))], filters[b]))
        now = time.perf_counter()
        yield AudioBlock(w.start, audio, now - t)
        t = time.perf_counter()
