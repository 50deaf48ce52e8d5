"""The fast CPU path around the numba kernels (kernels.py): lane planning, per-thread state
and the thread pool, for a WaveNet (the network of the "wavenet" decoder and of the prior)
or a network that runs one with an `Prediction` around it (networks.py: `fast_wavenet`,
`fast_prediction`; the source-filter decoder's excitation network).

Items ("lanes") run alone (mat-vecs), or eight at a time sharing every weight load when a
thread has more than four of them; threads each take a share of the items, make their gate
conditioning and run their lanes.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch

from ..errors import AudioVQError
from ..nn.wavenet import WaveNet
from .networks import steps_of
from .kernels import GROUP, Lanes, Outputs, no_prediction, run_lanes
from ..nn.sampling import SamplerSpec
from .weights import PRECISIONS, history_sizes, no_panels, pack_stack, stack_arrays


class LanePlan(NamedTuple):
    lane_item: np.ndarray   # (lanes,) batch item of each lane
    lane_len: np.ndarray    # (lanes,) steps to generate (0 = padding lane)
    lane_row: np.ndarray    # (lanes,) index of the lane's item in its thread's `items`
    items: list[list[int]]  # per thread: its batch items
    units: list[list[tuple[int, int]]]  # per thread: (first lane, width) to run in turn


def plan_lanes(lengths: list[int], threads: int) -> LanePlan:
    """Split items over threads, and each thread's items into eight-lane groups (when more
    than half a group is left) or single lanes."""
    threads = max(1, min(threads, len(lengths)))
    order = sorted(range(len(lengths)), key=lambda b: -lengths[b])  # similar lengths share a group
    lane_item, lane_len, lane_row, items, units = [], [], [], [], []
    for k in range(threads):
        share = order[k::threads]
        items.append(share)
        units.append([])
        i = 0
        while i < len(share):
            width = GROUP if len(share) - i > GROUP // 2 else 1
            take = share[i:i + width]
            pad = width - len(take)
            units[-1].append((len(lane_item), width))
            lane_item += take + [take[0]] * pad
            lane_len += [lengths[b] for b in take] + [0] * pad
            lane_row += list(range(i, i + len(take))) + [i] * pad
            i += len(take)
    as_array = lambda v: np.array(v, dtype=np.int64)
    return LanePlan(as_array(lane_item), as_array(lane_len), as_array(lane_row), items, units)


class FastPath:
    """Generation (or teacher forcing) over chunks of steps with the numba kernel
    (`kernels.run_lanes`). Each thread computes the gate conditioning of its own items, then
    runs their lanes (the kernel releases the GIL).

    precision: the mat-vec weights as "float32" (the module's own), "bf16" or "int8" (panels
    of `weights.pack_stack`; see kernels.py, "reduced-precision panels", for the arithmetic)."""

    def __init__(self, network, lengths: list[int], spec: SamplerSpec, first_input: int,
                 forced: torch.Tensor | None = None, keep_logits: bool = False, threads: int = 1,
                 window: int | None = None, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise AudioVQError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        wavenet = fast_wavenet(network)
        self.w = stack_arrays(wavenet)
        self.packed = precision != "float32"
        self.panels = pack_stack(self.w, precision) if self.packed else no_panels()
        sizes = history_sizes(wavenet)
        self.plan = plan_lanes(lengths, threads)
        n_lanes, R = len(self.plan.lane_item), self.w.embed.shape[1]
        self.lanes = Lanes(self.plan.lane_item, self.plan.lane_len, self.plan.lane_row,
                           np.full(n_lanes, int(first_input), np.int64),
                           np.zeros((n_lanes, sum(sizes), R), np.float32),
                           np.cumsum([0] + sizes[:-1]).astype(np.int64), np.array(sizes, dtype=np.int64) - 1)
        # outputs of a window of steps base … base + W − 1 (default all steps)
        B, W, O = len(lengths), window or max(lengths), self.w.head2.shape[0]
        self.spec, self.base = spec, 0
        self.out = Outputs(np.zeros((B, W), np.int64), np.zeros((B, W), np.float32),
                           np.zeros((B, W, O) if keep_logits else (1, 1, 1), np.float32))
        self.forced = (np.zeros((1, 1), np.int64) if forced is None
                       else np.ascontiguousarray(forced.cpu().numpy().astype(np.int64)))
        self.keep_logits, self.use_forced = keep_logits, forced is not None
        exc = steps_of(network).fast_prediction(network, n_lanes)
        self.exc = no_prediction(n_lanes) if exc is None else exc
        self.gate_width = len(wavenet.layers) * wavenet.layers[0].conv.out_channels  # L·G columns of a row
        self.threads = len(self.plan.units)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def _thread(self, k: int, t0: int, n: int, cond, chunk: int, uniforms: np.ndarray) -> None:
        rows = cond.rows(t0, chunk, self.plan.items[k]).cpu()
        if self.exc.on:  # gates (float32) and the float64 columns after them
            extra = np.ascontiguousarray(rows[..., self.gate_width:].numpy(), dtype=np.float64)
            I, r = rows.shape[:2]
            L = len(self.w.dilations)
            rows = rows[..., :self.gate_width].reshape(I, r, L, -1)
        else:
            extra = np.zeros((1, 1, 1))
        rows = np.ascontiguousarray(rows.numpy(), dtype=np.float32)
        for lane0, width in self.plan.units[k]:
            run_lanes(lane0, width, t0, n, self.w, self.panels, self.packed, self.lanes, rows, cond.hold, uniforms,
                      self.spec, self.forced, self.use_forced, self.out, self.base, self.keep_logits, self.exc, extra)

    def run(self, t0: int, n: int, cond, chunk: int, uniforms: torch.Tensor) -> None:
        """Steps t0 … t0 + n − 1 with conditioning `cond` (a GateConditioning, asked for
        `chunk` steps) and uniforms (B, n, U)."""
        uniforms = np.ascontiguousarray(uniforms.numpy(), dtype=np.float32)
        if self.pool is None:
            self._thread(0, t0, n, cond, chunk, uniforms)
            return
        jobs = [self.pool.submit(self._thread, k, t0, n, cond, chunk, uniforms) for k in range(self.threads)]
        for job in jobs:
            job.result()

    def results(self):
        """(classes, values, logits or None) of the window: (B, W) int64, (B, W) float32, (B, W, O)."""
        return self.out.classes, self.out.values, (self.out.logits if self.keep_logits else None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None


def fast_wavenet(network) -> WaveNet | None:
    """The WaveNet the kernels run for `network`: itself, or the one inside it (networks.py;
    None: no fast path)."""
    inner = steps_of(network).fast_wavenet(network)
    return inner if isinstance(inner, WaveNet) else None
