"""Renderers: what turns a decoder's frame records (nn/decoders/frames.py) into samples,
block by block with their state carried across blocks, so that an item's blocks
concatenate to its one-shot output whatever the block size.

    decoder's frame half ──FrameRecord per item and span──► renderer ──► samples (a block)

- `world`   harmonic pulses at fractional times with the envelope's minimum-phase response,
            noise where unvoiced (WORLD's synthesis, streamed: world.py)
- `pulses`  one pulse per period on whole samples + the all-pole filter (LPC-10: pulses.py)
- `network` the decoder's own sample-rate network through the generation engine (the
            excitation WaveNet of a source-filter decoder, or the WaveNet decoder itself:
            network.py)

A renderer is a `Renderer` subclass registered with `@register`. A model-free one renders one
item at a time: `render(record, start, stop)` gets the frames that cover samples start … stop
− 1 (and `lookahead` samples more, plus the next frame for interpolation) and returns the
pre-emphasised signal of those samples; `blocks` (the base class's) runs it over a batch
and de-emphasises. A renderer that needs the whole batch at once (the network) overrides
`blocks`. "excitation" in this package means one thing: the signal that drives the filter.
"""
from __future__ import annotations

import time
from typing import ClassVar, Iterator, NamedTuple

import numpy as np

from ...errors import AudioVQError

RENDERERS: dict[str, type] = {}


def register(cls):
    """Class decorator: make a Renderer subclass available as `--renderer <cls.name>`."""
    if not getattr(cls, "name", ""):
        raise TypeError(f"{cls.__name__} needs a `name` to be registered")
    RENDERERS[cls.name] = cls
    return cls


class AudioBlock(NamedTuple):
    """A block of `stream`'s output."""
    start: int               # index of the block's first sample
    audio: list[np.ndarray]  # per item (n_b,) float32: its samples start … start + n_b − 1 (none once it has ended)
    seconds: float           # wall time of the block


class Renderer:
    """One item's renderer (see the module doc); `decoder` the model's decoder, `seed` the item's."""

    name: ClassVar[str] = ""
    lookahead: ClassVar[int] = 0  # samples past a block's end whose frames `render` reads
    needs_envelope: ClassVar[bool] = True  # renders the frame records' envelope (linear prediction)

    def __init__(self, decoder, seed: int):
        self.decoder, self.seed = decoder, seed
        self.hop, self.sample_rate = decoder.hop, decoder.sample_rate

    def render(self, record, start: int, stop: int) -> np.ndarray:
        """Pre-emphasised samples start … stop − 1 (float64) from `record`, a FrameRecord of
        frames start // hop … ⌈(stop + lookahead) / hop⌉ (one more than the last they reach)."""
        raise NotImplementedError

    @classmethod
    def check(cls, decoder) -> None:
        """One line (AudioVQError) unless this renderer can render this decoder's records."""
        if cls.needs_envelope and not getattr(decoder, "use_lpc", False):
            kind = decoder.kind + (" decoder without lpc" if decoder.kind == "source_filter" else " decoder")
            raise AudioVQError(f"renderer {cls.name!r} needs a decoder with linear prediction "
                               f"(model.decoder.kind=source_filter); this model has a {kind}")

    @classmethod
    def blocks(cls, decoder, records, lengths: list[int], block: int | None, seeds: list[int],
               **options) -> Iterator[AudioBlock]:
        """The waveform blocks of a batch: `records` the decoder's frame records (with a
        `record(b, f0, f1)`), lengths (B,) samples, `block` samples per block (rounded up to
        whole frames; None: one block). `options` are the network renderer's (ignored here)."""
        hop = decoder.hop
        longest = max(lengths, default=0)
        block = max(hop, longest if block is None else hop * -(-block // hop))
        items = [cls(decoder, s) for s in seeds]
        filters = [decoder.waveform_filter() for _ in lengths]
        for start in range(0, longest, block):
            t = time.perf_counter()
            audio = []
            for b, n in enumerate(lengths):
                stop = min(n, start + block)
                if stop <= start:
                    audio.append(np.zeros(0, np.float32))
                    continue
                f1 = -(-(stop + cls.lookahead) // hop) + 1  # + the next frame: coefficients are interpolated
                s = items[b].render(records.record(b, start // hop, f1), start, stop)
                audio.append(filters[b](s).astype(np.float32))
            yield AudioBlock(start, audio, time.perf_counter() - t)


def renderer_named(name: str) -> type:
    """The Renderer class called `name` (AudioVQError listing the known ones)."""
    from . import network, pulses, world  # noqa: F401  (register themselves)
    if name not in RENDERERS:
        raise AudioVQError(f"renderer must be one of {', '.join(sorted(RENDERERS))}, not {name!r}")
    return RENDERERS[name]


def per_sample(values: np.ndarray, hop: int, first: int, start: int, stop: int) -> np.ndarray:
    """Frame values (n, …) of frames first, first + 1, … held over hop samples → samples
    start … stop − 1 (start ≥ first · hop)."""
    return np.repeat(values, hop, axis=0)[start - first * hop:stop - first * hop]


def interpolated(values: np.ndarray, hop: int, first: int, start: int, stop: int) -> np.ndarray:
    """Frame values (n,) of frames first, first + 1, … → samples start … stop − 1, each sample
    f·hop + j frame f's moved towards frame f + 1's by j / hop (the coefficients' rule,
    kernels.lerp; the record holds the frame after the last sample's)."""
    t = np.arange(start, stop)
    f, frac = t // hop - first, (t % hop) / hop
    a0, a1 = values[f], values[f + 1]
    return np.where(frac < 0.5, a0 + frac * (a1 - a0), a1 - (a1 - a0) * (1.0 - frac))
