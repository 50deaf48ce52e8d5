"""What a right envelope alone carries: a waveform re-synthesised from its own all-pole
envelope (nn/lpc.py) under a model-free excitation, with no network at all. The conversion
benchmark (tools/eval_conversions.py) scores such rows for every source beside each
model's outputs:

- "noise": white noise at each frame's gain (a whisper): the words an envelope keeps;
- "pulses": a pulse train at the source's F0 (data/pitch.py) where it is voiced, noise where
  not (LPC-10 style): what a crude periodic excitation adds;
- "world": the source's envelope and F0 as a frame record, rendered by the `world` renderer
  (generate/renderers/world.py: pulses at exact times, WORLD's synthesis): what the renderer
  the model's rows can use makes of a right envelope.

The envelope is analysed at the model's code frames (hop, order, pre-emphasis), so the rows
show what the source-filter decoder could give if it predicted the envelope exactly.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import audio
from ..generate.renderers.pulses import PulseTrain
from ..nn.emphasis import deemphasis, preemphasis
from ..nn.lpc import analyse, synthesis

EXCITATIONS = ("noise", "pulses")  # model-free excitations (`excitation_signal`)
KINDS = EXCITATIONS + ("world",)     # what `resynthesize` renders an envelope with


def excitation_signal(kind: str, f0: np.ndarray, gain: np.ndarray, hop: int, sample_rate: int,
                      length: int, seed: int = 0) -> np.ndarray:
    """(length,) float64 unit-power excitation scaled by each frame's gain (F,): white noise,
    or ("pulses") one pulse per period of f0 (F,) Hz (phase carried across frames, amplitude
    √period so its power is 1) where f0 > 0 and noise where it is 0."""
    if kind not in EXCITATIONS:
        raise ValueError(f"excitation must be one of {', '.join(EXCITATIONS)}, not {kind!r}")
    per_sample = np.repeat(np.asarray(f0, np.float64), hop)[:length]
    per_sample = np.pad(per_sample, (0, length - per_sample.size))
    e = PulseTrain(sample_rate, seed)(per_sample if kind == "pulses" else np.zeros(length))
    g = np.repeat(np.asarray(gain, np.float64), hop)[:length]
    return e * np.pad(g, (0, length - g.size), mode="edge")


def resynthesize(wav: np.ndarray, sample_rate: int, hop: int, order: int, preemphasis_coef: float,
                 excitation: str, seed: int = 0) -> np.ndarray:
    """wav (T,) at sample_rate → (T,) float32: its own envelope (order `order`, one per `hop`
    samples) over the excitation `excitation` ("noise" | "pulses"), or rendered by the `world`
    renderer ("world"), at the source's loudness."""
    from ..data.pitch import track

    if excitation not in KINDS:
        raise ValueError(f"excitation must be one of {', '.join(KINDS)}, not {excitation!r}")
    x = np.asarray(wav, np.float32)
    s = preemphasis(torch.from_numpy(x)[None].double(), preemphasis_coef)
    env = analyse(s, hop, order)
    f0 = track(x, sample_rate, hop) if excitation != "noise" else np.zeros(env.gain.shape[1])
    if excitation == "world":
        y = render(env.lpc[0].double().numpy(), env.gain[0].double().numpy(), f0, hop, sample_rate, x.size, seed)
    else:
        e = excitation_signal(excitation, f0, env.gain[0].numpy(), hop, sample_rate, x.size, seed)
        y = synthesis(torch.from_numpy(e)[None], env.lpc.double(), hop)[0].numpy()
    y = deemphasis(y, preemphasis_coef)
    scale = 10 ** ((audio.loudness_db(x) - audio.loudness_db(y.astype(np.float32))) / 20)
    return np.clip(y * scale, -1.0, 1.0).astype(np.float32)


def render(lpc: np.ndarray, gain: np.ndarray, f0: np.ndarray, hop: int, sample_rate: int, length: int,
           seed: int = 0, name: str = "world", voicing: np.ndarray | None = None) -> np.ndarray:
    """Frames' own envelope (LPC (F, M), gain (F,)) and F0 (F,) Hz (voiced where > 0) as one
    frame record, rendered in one piece by the renderer `name` → the pre-emphasised signal
    (length,) float64. `voicing` (F,) the voicing probability where voiced (default 1)."""
    from ..generate.renderers import renderer_named
    from ..nn.decoders.frames import FrameRecord

    F, M = lpc.shape
    more = -(-(length + hop) // hop) + 2 - F  # frames the renderer reads past the last (unvoiced, silent)
    pad = lambda x, value: np.concatenate([x, np.full((max(more, 0),) + x.shape[1:], value)])
    f0 = np.pad(np.asarray(f0, np.float64)[:F], (0, max(0, F - len(f0))))
    v = (f0 > 0) * (1.0 if voicing is None else np.asarray(voicing, np.float64)[:F])
    as_t = lambda x: torch.from_numpy(np.ascontiguousarray(x, np.float64))
    envelope = np.concatenate([lpc, np.repeat(lpc[-1:], max(more, 0), 0)])
    record = FrameRecord(0, torch.zeros(0, envelope.shape[0]), as_t(envelope), as_t(pad(gain, 0.0)),
                         as_t(pad(f0, 0.0)), as_t(pad(v, 0.0)),
                         torch.ones(envelope.shape[0]))

    class _Envelope:  # what a renderer reads of a decoder
        def __init__(self):
            self.hop, self.sample_rate, self.order = hop, sample_rate, M

    return renderer_named(name)(_Envelope(), seed).render(record, 0, length)
