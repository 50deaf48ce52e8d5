"""The `network` renderer: the decoder's own sample-rate network, sampled step by step by the
generation engine (engine.py: the PyTorch path on any device, the numba kernels on the CPU).
For the WaveNet decoder that is the paper's WaveNet over the whole signal; for a
source-filter decoder, its excitation network (LPCNet): with s the pre-emphasised signal,
p[n] = −Σₘ aₘ s[n − m] its prediction by the frame's (interpolated) envelope, the network
samples the excitation e[n] and outputs s[n] = p[n] + e[n].

The excitation network's stepping (registered with networks.py) reads the frame records by
name: the conditioning (through the WaveNet's gates), the envelope of the frame and the next,
and the sharpening factor, packed into one float64 row per frame for the steps
(`ExcitationRows`: the only place that layout exists).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ...audio import mu_law_decode, mu_law_encode
from ...errors import AudioVQError
from ...nn.decoders.source_filter import ExcitationNet
from ...nn.lpc import interpolate, predict_next
from ...nn.sampling import mu_law_bins
from ..kernels import Prediction
from ..networks import Steps, WaveNetSteps, register_steps
from . import AudioBlock, Renderer, register


class ExcitationRows:
    """Per-frame rows for the excitation steps: the WaveNet's gate conditioning (L·G), the
    frame's and next frame's envelope (2M) and the sharpening factor (1): (I, r, L·G + 2M + 1)
    float64 (exact for the float32 gates); `records` the decoder's FrameRecords."""

    def __init__(self, gates, records):
        self.gates, self.hold, self.records = gates, gates.hold, records

    def rows(self, t0, n, items=None):
        items = list(range(len(self.records.lengths))) if items is None else items
        g = self.gates.rows(t0, n, items)  # (I, r, L, G)
        I, r = g.shape[:2]
        f0 = t0 // self.hold
        extra = []
        for b in items:
            rec = self.records.record(b, f0, f0 + r + 1)
            lpc = rec.envelope
            extra.append(torch.cat([lpc[:-1], lpc[1:], rec.sharpening[:-1, None].double()], -1))
        return torch.cat([g.reshape(I, r, -1).double(), torch.stack(extra)], -1)  # float64: see LAR_LIMIT


class ExcitationSteps:
    """The PyTorch step of an ExcitationNet for a batch: its WaveNet's `TorchStack`, the last M
    samples of each item's signal, and p[n] of the step being sampled."""

    def __init__(self, net: ExcitationNet, batch: int):
        from ..incremental import TorchStack
        self.bins = lambda x: mu_law_bins(x, net.classes)  # float64, as the fast kernel
        self.net, self.stack = net, TorchStack(net.wavenet, batch)
        self.device, self.outputs = self.stack.device, net.classes
        self.L = len(net.wavenet.layers)
        self.G = net.wavenet.layers[0].conv.out_channels
        self.history = torch.zeros(batch, net.order, device=self.device, dtype=torch.float64)
        silence = mu_law_encode(torch.zeros(1), net.classes).item()
        self.s_prev = torch.full((batch,), silence, dtype=torch.int64, device=self.device)
        self.p = torch.zeros(batch, device=self.device, dtype=torch.float64)

    def step(self, t: int, inputs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        LG, M = self.L * self.G, self.net.order
        gates = cond[:, :LG].float().view(-1, self.L, self.G)
        a = interpolate(cond[:, LG:LG + M], cond[:, LG + M:LG + 2 * M], (t % self.net.hop) / self.net.hop)
        self.p = predict_next(self.history, a).clamp(-1.0, 1.0)
        x = self.net.embedded(inputs, self.bins(self.p), self.s_prev)
        logits = self.stack.step_embedded(self.stack.slots[t % self.stack.period], x, gates)
        return logits * cond[:, LG + 2 * M, None].float()  # pitch-dependent sharpening

    def observe(self, classes: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """The sampled excitation classes (B,) → the signal s = p + e (B,) (what is output)."""
        s = (self.p + mu_law_decode(classes, self.net.classes).double()).clamp(-1.0, 1.0)
        self.history = torch.cat([self.history[:, 1:], s[:, None]], 1)
        self.s_prev = self.bins(s)
        return s.float()

    def state(self):
        return self.stack.state()


class ExcitationNetSteps(Steps):
    """How the engine steps an ExcitationNet: its WaveNet's gates with the envelope rows
    after them, the PyTorch step above, and the kernels' `Prediction` around the WaveNet."""

    def conditioning(self, network, local, glob, batch: int):
        return ExcitationRows(WaveNetSteps().conditioning(network.wavenet, local, None, batch), local)

    def incremental(self, network, batch: int):
        return ExcitationSteps(network, batch)

    def fast_wavenet(self, network):
        return network.wavenet

    def fast_prediction(self, network, lanes: int) -> Prediction:
        """The fast kernel's state for `lanes` lanes, as `ExcitationSteps` starts: silence
        before the first sample."""
        C = network.classes
        with torch.no_grad():
            table = lambda emb: np.ascontiguousarray(emb.weight.detach().cpu().float().numpy())
            decode = mu_law_decode(torch.arange(C), C).float().numpy()
        silence = int(mu_law_encode(torch.zeros(1), C).item())
        return Prediction(True, table(network.embed_p), table(network.embed_s), np.ascontiguousarray(decode),
                          np.zeros((lanes, network.order)), np.full(lanes, silence, np.int64), np.zeros(lanes),
                          int(network.hop))


register_steps(ExcitationNet, ExcitationNetSteps())


@register
class Network(Renderer):
    """The decoder's network through the engine, for the whole batch at once (`blocks`)."""

    name = "network"
    needs_envelope = False

    @classmethod
    def check(cls, decoder) -> None:
        if getattr(decoder, "network", None) is None:
            raise AudioVQError("renderer 'network' needs the decoder's excitation network; this model was trained "
                               "without one (model.decoder.network=false): use --renderer world or pulses")

    @classmethod
    def blocks(cls, decoder, records, lengths: list[int], block: int | None, seeds: list[int], *, glob=None,
               spec=None, fast: bool = True, threads: int | None = None, progress: bool = False,
               precision: str = "float32") -> Iterator[AudioBlock]:
        from ..engine import _decoded, _windows
        windows = _windows(decoder.network, lengths, records, glob, spec, decoder.first_input, seeds, fast,
                           threads, progress, block, precision=precision)
        return _decoded(decoder, windows, lengths, spec)
