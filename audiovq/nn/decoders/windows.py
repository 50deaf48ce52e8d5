"""Frame-rate outputs of generation made a window of frames at a time, for any decoder: a
long file's (B, C, F) conditioning (or frame records) never exists whole. Each window is
computed with a margin of real frames wider than the frame-rate convolutions' reach, so it
equals the whole signal's up to float rounding; each item's frames are those of its own first
frames, as if generated alone.

A `LocalSource` hands out per-step conditioning in blocks of `hold` steps (what the
generation engine reads); `UpsampledCodes` / `WindowedCodes` are the WaveNet decoder's (its
`Conditioner` context, upsampled to the sample rate); the source-filter decoder's frame
records (source_filter.FrameRecords) keep their windows with `stitch` too.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .wavenet import Conditioner


class LocalSource(Protocol):
    """Per-step conditioning, delivered in pieces."""
    hold: int  # values are constant over aligned blocks of `hold` steps

    def blocks(self, b0: int, b1: int, items: list[int]) -> torch.Tensor:
        """The values of blocks b0 … b1 − 1 for the given batch items: (len(items), C_l,
        b1 − b0), zero past the end of the source."""


def fit(x: torch.Tensor, n: int) -> torch.Tensor:
    """Zero-pad the last axis to n (every chunk keeps one shape: an item's numbers must not
    depend on how much of the chunk is real, nor on the batch)."""
    return F.pad(x, (0, n - x.shape[-1])) if x.shape[-1] < n else x


class UpsampledCodes:
    """The decoder's local conditioning: `Conditioner` context computed once (B, C, F) at the
    code rate, upsampled to the sample rate a span of frames at a time."""

    SPAN = 32  # frames upsampled together: the (C, C · hop) weight is read once per span

    def __init__(self, conditioner: Conditioner, context: torch.Tensor | None):
        self.conditioner, self.context = conditioner, context
        self.batch = None if context is None else context.shape[0]
        self.hop = conditioner.hop
        self.hold = 1 if conditioner.upsample is not None else self.hop
        # item → {span index: (C_out, SPAN · hop)}, the last two spans only; per item, as
        # each item belongs to one worker thread of the fast path
        self._spans: dict[int, dict[int, torch.Tensor]] = {}

    def _span(self, b: int, k: int) -> torch.Tensor:
        spans = self._spans.setdefault(b, {})
        if k not in spans:
            up = self.conditioner.upsample
            # kernel = stride = hop: output sample f·hop + j depends on frame f only, so
            # frames can be upsampled on their own, item by item: (C_in, n) → (C_out, n · hop)
            h = self.frames([b], k * self.SPAN, (k + 1) * self.SPAN)[0]
            out = (h.T @ up.weight.flatten(1)).view(self.SPAN, -1, self.hop)
            for old in [kk for kk in spans if kk < k - 1]:
                del spans[old]
            spans[k] = out.permute(1, 0, 2).flatten(1) + up.bias[:, None]
        return spans[k]

    def blocks(self, b0: int, b1: int, items: list[int]) -> torch.Tensor:
        if self.conditioner.upsample is None:  # repeat: one block per code frame
            return self.frames(items, b0, b1)
        width = self.SPAN * self.hop
        return torch.stack([stitch(lambda k: self._span(b, k), b0, b1, width) for b in items])

    def frames(self, items: list[int], f0: int, f1: int) -> torch.Tensor:
        """Context of frames f0 … f1 − 1 of the given items (len(items), C, f1 − f0), zero past the end."""
        return fit(self.context[items, :, f0:f1], f1 - f0)


class WindowedCodes(UpsampledCodes):
    """`UpsampledCodes` whose context is computed from the codes a window of frames at a time,
    with a margin of real frames wider than the context convolutions' reach, so that the
    (B, D, F) codewords and (B, C, F) context of a long file never exist whole. Each item's
    context is that of its own first `frames[b]` frames (zero beyond), as in `codes_context`.
    """

    WINDOW = 1024  # frames per window (a multiple of SPAN)

    def __init__(self, conditioner: Conditioner, quantizer, indices: torch.Tensor, frames: list[int]):
        super().__init__(conditioner, None)
        self.quantizer, self.indices, self.lengths = quantizer, indices, frames
        self.batch = indices.shape[0]
        # frames each side that an output frame of the context convolutions depends on
        convs = [m for m in conditioner.context.modules() if isinstance(m, torch.nn.Conv1d)]
        self.reach, self.last = sum(m.padding[0] for m in convs), convs[-1]
        self._windows: dict[int, dict[int, torch.Tensor]] = {}  # item → {window: (C, WINDOW)}, the last two

    def _window(self, b: int, w: int) -> torch.Tensor:
        windows = self._windows.setdefault(b, {})
        if w not in windows:
            W = self.WINDOW
            lo, hi = max(0, w * W - self.reach), min(self.lengths[b], (w + 1) * W + self.reach)
            if lo < hi:
                h = self.conditioner.context(self.quantizer.lookup(self.indices[b:b + 1, lo:hi]))[0]
                h = fit(h[:, w * W - lo:][:, :W], W)
            else:  # past the item's end
                h = self.last.weight.new_zeros(self.last.out_channels, W)
            for old in [ww for ww in windows if ww < w - 1]:
                del windows[old]
            windows[w] = h
        return windows[w]

    def frames(self, items: list[int], f0: int, f1: int) -> torch.Tensor:
        return torch.stack([stitch(lambda w: self._window(b, w), f0, f1, self.WINDOW) for b in items])


def stitch(piece, lo: int, hi: int, width: int) -> torch.Tensor:
    """Columns lo … hi − 1 of a sequence kept as pieces of `width` columns (`piece(k)` (C, width)
    holds columns k·width …): (C, hi − lo)."""
    parts = [piece(k) for k in range(lo // width, -(-hi // width))]
    cat = parts[0] if len(parts) == 1 else torch.cat(parts, -1)
    return cat[:, lo - (lo // width) * width:][:, :hi - lo]


def codes_context(conditioner: Conditioner, codewords: torch.Tensor, frames: list[int]) -> torch.Tensor:
    """Conditioner context (B, C, F) of codewords (B, D, F), each item computed on its own
    first `frames[b]` frames (as if generated alone) and zero beyond."""
    out = []
    for b, n in enumerate(frames):
        h = conditioner.context(codewords[b:b + 1, :, :n])
        out.append(F.pad(h, (0, codewords.shape[-1] - n)))
    return torch.cat(out)
