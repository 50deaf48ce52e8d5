"""One generation step captured in a CUDA graph and replayed for every step.

On a GPU the PyTorch incremental loop is bound by kernel launches: a step is ~10 small
kernels per layer plus sampling, each launched from Python. Here the whole step — pick the
step's conditioning row, uniforms or forced input, `TorchStack.step_at`, sampling, storing
the outputs, advancing the step counters — reads and writes only tensors that live as long
as the generation (static buffers), and every index that changes with the step (the ring
slots of the taps, the position in the chunk) is looked up on the device from counter
tensors that the step itself advances. So one captured graph is valid for every step and a
chunk of n steps is n `replay()` calls, with one copy in and out per chunk.

The same `StaticSteps.step` runs eagerly where no graph is captured (the CPU, or when
capture fails on a GPU: a warning, then the eager loop), which is how the CPU tests check
it against the plain loop. `AUDIOVQ_CUDA_GRAPH` chooses: `auto` (default: on CUDA devices),
`off` (the plain `TorchStack.step` loop everywhere), `on` (static steps on every device,
captured on CUDA, eager elsewhere: for tests).
"""
from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, NamedTuple

import torch

from ..errors import AudioVQError
from ..nn.sampling import SamplerSpec, sample

if TYPE_CHECKING:
    from .incremental import TorchStack

MODES = ("auto", "on", "off")


def wanted(device: torch.device) -> bool:
    """Whether generation on `device` runs `StaticSteps` (see the module doc)."""
    mode = os.environ.get("AUDIOVQ_CUDA_GRAPH", "auto").lower()
    if mode not in MODES:
        raise AudioVQError(f"AUDIOVQ_CUDA_GRAPH={mode}: expected one of {', '.join(MODES)}")
    return mode == "on" or (mode == "auto" and device.type == "cuda")


class ChunkOut(NamedTuple):
    """Outputs of n steps (views of static buffers: copy them before the next chunk)."""
    classes: torch.Tensor          # (B, n) int64: the fed-back classes
    values: torch.Tensor           # (B, n) float32: classes (categorical) or amplitudes (mixture)
    logits: torch.Tensor | None    # (B, n, O) when kept


class StaticSteps:
    """Steps of a `TorchStack` over static buffers, replayed from a CUDA graph when possible.

    run(t0, n, rows, hold, uniforms, forced) takes what `TorchPath` has per chunk: rows
    (B, r, L, G) of gate conditioning (row j // hold for step t0 + j; always the same shape),
    uniforms (B, n, U), forced inputs (B, n) int64 or None (sampling); chunks come in order
    of t0 and the rows must be asked for the same chunk length every time.
    """

    def __init__(self, stack: TorchStack, spec: SamplerSpec, first_input: int, forced: bool,
                 keep_logits: bool):
        self.stack, self.spec, self.forced, self.keep_logits = stack, spec, forced, keep_logits
        self.device = stack.device
        B = stack.rings[0].shape[0]
        new = dict(dtype=torch.int64, device=self.device)
        self.prev = torch.full((B,), int(first_input), **new)  # the last sampled classes
        self.phase = torch.zeros(1, **new)  # t mod stack.period: the row of the tap tables
        self.j = torch.zeros(1, **new)      # position in the chunk
        self.shape = None                   # (rows shape, chunk length) the buffers are for
        self.graph = None
        self.capture = self.device.type == "cuda"

    def _buffers(self, rows: torch.Tensor, hold: int, n: int) -> None:
        B, r = rows.shape[:2]
        n = max(n, self.shape[1] if self.shape else 0)
        self.shape, self.graph = (rows.shape, n), None
        new = dict(device=self.device)
        self.rows = torch.zeros(rows.shape, dtype=rows.dtype, **new)
        self.row_of = (torch.arange(n) // hold).clamp_max(r - 1).to(self.device)  # step j → row
        self.u = torch.zeros(B, n, self.spec.uniforms_per_step, **new)
        self.inputs = torch.zeros(B, n, dtype=torch.int64, **new)
        self.classes = torch.zeros(B, n, dtype=torch.int64, **new)
        self.values = torch.zeros(B, n, **new)
        self.logits = torch.zeros(B, n, self.stack.outputs, **new) if self.keep_logits else None

    def step(self) -> None:
        """One step, from and to the static buffers only (what the graph captures)."""
        j = self.j
        cond = self.rows.index_select(1, self.row_of.index_select(0, j))[:, 0]  # (B, L, G)
        inputs = self.inputs.index_select(1, j)[:, 0] if self.forced else self.prev
        slots = self.stack.slots.index_select(0, self.phase)[0]  # (L, K)
        logits = self.stack.step_at(slots, inputs, cond)
        if self.logits is not None:
            self.logits.index_copy_(1, j, logits.unsqueeze(1))
        if not self.forced:
            k, values = sample(self.spec, logits, self.u.index_select(1, j)[:, 0])
            self.prev.copy_(k)
            self.classes.index_copy_(1, j, k.unsqueeze(1))
            self.values.index_copy_(1, j, values.float().unsqueeze(1))
        j.add_(1)
        self.phase.add_(1).remainder_(self.stack.period)

    def _capture(self) -> None:
        """Record `step` in a CUDA graph (warm-up on a side stream first, as capture needs);
        the state the warm-up changes is put back. On failure: warn, stay eager."""
        state = [t.clone() for t in self._state()]
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.j.zero_()  # stay inside the buffers, however short the chunk
                    self.step()
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.step()
            self.graph = graph
        except Exception as e:  # any capture problem: the eager loop computes the same
            warnings.warn(f"CUDA graph capture failed ({type(e).__name__}: {e}); generating step by step")
            self.capture = False
        for t, saved in zip(self._state(), state):
            t.copy_(saved)

    def _state(self) -> list[torch.Tensor]:
        return [*self.stack.state(), self.prev, self.phase, self.j]

    @torch.no_grad()
    def run(self, t0: int, n: int, rows: torch.Tensor, hold: int, uniforms: torch.Tensor,
            forced: torch.Tensor | None) -> ChunkOut:
        if self.shape is None or rows.shape != self.shape[0] or n > self.shape[1]:
            self._buffers(rows, hold, n)
        self.rows.copy_(rows)
        if self.forced:
            self.inputs[:, :n].copy_(forced)
        else:
            self.u[:, :n].copy_(uniforms)
        self.j.zero_()
        self.phase.fill_(t0 % self.stack.period)
        if self.capture and self.graph is None:
            self._capture()
        for _ in range(n):
            if self.graph is not None:
                self.graph.replay()
            else:
                self.step()
        logits = None if self.logits is None else self.logits[:, :n]
        return ChunkOut(self.classes[:, :n], self.values[:, :n], logits)
