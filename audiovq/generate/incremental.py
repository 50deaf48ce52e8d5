"""The PyTorch incremental path: a network one step at a time with plain tensor ops.

`TorchPath` runs any network's PyTorch step (`networks.incremental(network, batch)`: an object
with `device`, `outputs` and `step(t, inputs, cond) → logits`; nn/decoders/base.py). `TorchStack`
is the WaveNet's: device-agnostic (it is the path used on CUDA) and the reference the numba
kernels are tested against. Per layer, a ring buffer holds the last inputs (a power-of-two
length larger than the layer's history; never-written slots are the zero left-padding of
the parallel `forward`), the taps are gathered from it, and the gate conditioning of the
step comes precomputed from `GateConditioning`. It also offers `step_at` (the step as a
function of device tensors only), which the CUDA graph captures.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..devices import torch_threads  # noqa: F401  (the engine's, from here)
from ..nn.wavenet import WaveNet
from .cuda_graph import StaticSteps, wanted
from ..nn.sampling import SamplerSpec, sample
from .weights import history_sizes, stack_weights


class TorchStack:
    """Incremental state and arithmetic of one WaveNet for a batch of B items."""

    def __init__(self, wavenet: WaveNet, batch: int):
        self.w = stack_weights(wavenet)
        self.sizes = history_sizes(wavenet)
        self.kernel = wavenet.layers[0].kernel_size
        self.dilations = [layer.dilation for layer in wavenet.layers]
        R = self.w.embed.shape[1]
        self.rings = [self.w.embed.new_zeros(batch, size, R) for size in self.sizes]
        # Ring slots of the K taps of every layer at step t: row t mod `period` of a
        # (period, L, K) table on the device (every size divides the period). Looked up by a
        # device tensor, it lets one CUDA graph of a step serve every t (cuda_graph.py).
        self.period = max(self.sizes)
        back = torch.arange(self.kernel - 1, -1, -1)  # steps back of tap k (the last tap is step t)
        t = torch.arange(self.period)[:, None]
        self.slots = torch.stack([(t - back * d) % size for size, d in zip(self.sizes, self.dilations)], 1)
        self.slots = self.slots.to(self.w.embed.device)
        self.device, self.outputs = self.w.embed.device, self.w.head2.shape[0]

    def state(self) -> list[torch.Tensor]:
        """The tensors a step changes (what a CUDA graph's warm-up must put back)."""
        return list(self.rings)

    def step(self, t: int, inputs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Step t: input classes (B,) int64 and gate conditioning (B, L, G) → logits (B, O)."""
        return self.step_at(self.slots[t % self.period], inputs, cond)

    def step_at(self, slots: torch.Tensor, inputs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One step given the ring slots of every layer's taps (L, K) int64 (a row of `slots`;
        the last tap is this step's slot): inputs (B,) int64, cond (B, L, G) → logits (B, O)."""
        return self.step_embedded(slots, self.w.embed.index_select(0, inputs), cond)

    def step_embedded(self, slots: torch.Tensor, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """`step_at` from the embedded input x (B, R) (a caller that embeds several inputs)."""
        w = self.w
        half = math.sqrt(0.5)
        hs = []
        last = len(self.rings) - 1
        for l, (ring, slot) in enumerate(zip(self.rings, slots)):
            ring.index_copy_(1, slot[-1:], x.unsqueeze(1))
            taps = ring.index_select(1, slot).flatten(1)  # (B, K·R), oldest first
            pre = torch.addmm(cond[:, l], taps, w.conv[l].T)
            a, b = pre.chunk(2, dim=-1)
            h = torch.tanh(a) * torch.sigmoid(b)
            hs.append(h)
            if l < last:
                x = torch.addmm(w.res_bias[l], h, w.res[l].T).add_(x, alpha=half)
        skip = F.relu(torch.addmm(w.skip_bias, torch.cat(hs, -1), w.skip.T))
        z = F.relu(torch.addmm(w.head1_bias, skip, w.head1.T))
        return torch.addmm(w.head2_bias, z, w.head2.T)


class TorchPath:
    """Generation (or teacher forcing) over chunks of steps with a network's PyTorch step."""

    def __init__(self, network, lengths: list[int], spec: SamplerSpec, first_input: int,
                 forced: torch.Tensor | None = None, keep_logits: bool = False, window: int | None = None):
        # outputs of a window of steps base … base + T − 1 (default all steps)
        B, T = len(lengths), window or max(lengths)
        from .networks import incremental
        self.stack = incremental(network, B)
        self.observe = getattr(self.stack, "observe", None)
        self.spec, self.lengths, self.base = spec, lengths, 0
        device = self.stack.device
        self.forced = None if forced is None else forced.to(device)
        self.prev = torch.full((B,), int(first_input), dtype=torch.int64, device=device)
        self.classes = torch.zeros(B, T, dtype=torch.int64, device=device)
        self.values = torch.zeros(B, T, dtype=torch.float32, device=device)
        self.logits = torch.zeros(B, T, self.stack.outputs, device=device) if keep_logits else None
        # on CUDA: one step captured in a CUDA graph, replayed per step (cuda_graph.py)
        self.static = (StaticSteps(self.stack, spec, first_input, forced is not None, keep_logits)
                       if wanted(device) and hasattr(self.stack, "step_at") and self.observe is None else None)

    @torch.no_grad()
    def run(self, t0: int, n: int, cond, chunk: int, uniforms: torch.Tensor) -> None:
        """Steps t0 … t0 + n − 1 with conditioning `cond` (a GateConditioning, asked for
        `chunk` steps) and uniforms (B, n, U)."""
        device = self.prev.device
        rows = cond.rows(t0, chunk)
        hold = cond.hold
        uniforms = uniforms.to(device)
        # per-step ops are far too small to share between CPU threads
        with torch_threads(1 if device.type == "cpu" else None):
            self._steps(t0, n, rows, hold, uniforms)

    def _steps(self, t0: int, n: int, rows: torch.Tensor, hold: int, uniforms: torch.Tensor) -> None:
        if self.static is not None:
            forced = None if self.forced is None else self.forced[:, t0:t0 + n]
            out = self.static.run(t0, n, rows, hold, uniforms, forced)
            w0 = t0 - self.base
            self.classes[:, w0:w0 + n], self.values[:, w0:w0 + n] = out.classes, out.values
            if self.logits is not None:
                self.logits[:, w0:w0 + n] = out.logits
            return
        for j in range(n):
            t = t0 + j
            inputs = self.prev if self.forced is None else self.forced[:, t]
            logits = self.stack.step(t, inputs, rows[:, j // hold])
            if self.logits is not None:
                self.logits[:, t - self.base] = logits
            if self.forced is None:
                self.prev, values = sample(self.spec, logits, uniforms[:, j])
                if self.observe is not None:  # a network that makes its output from the sample
                    values = self.observe(self.prev, values)
                self.classes[:, t - self.base] = self.prev
                self.values[:, t - self.base] = values

    def results(self):
        """(classes, values, logits or None) as numpy: (B, T) int64, (B, T) float32, (B, T, O)."""
        logits = None if self.logits is None else self.logits.cpu().numpy()
        return self.classes.cpu().numpy(), self.values.cpu().numpy(), logits

    def close(self) -> None:
        pass
