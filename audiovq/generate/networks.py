"""How the generation engine steps each autoregressive network: its per-step conditioning
(`step_conditioning`, rows of what each step adds), its PyTorch step (`incremental`), and what
the fast CPU path runs (`fast_wavenet`, `fast_prediction`).

The WaveNet's are here (conditioning.GateConditioning, incremental.TorchStack, the numba
kernels). A network with its own stepping registers it (`register_steps`: the source-filter
decoder's excitation network, generate/renderers/network.py). Any other network brings its own
`step_conditioning(local, glob, batch)` and `incremental(batch)` methods (the contract in
nn/decoders/base.py), so a new decoder needs nothing here. nn/ imports nothing from generate/:
the stepping of nn's networks lives on this side.
"""
from __future__ import annotations

from ..nn.wavenet import WaveNet


class Steps:
    """A network's own stepping methods (the default for a network nothing is registered for)."""

    def conditioning(self, network, local, glob, batch: int):
        return network.step_conditioning(local, glob, batch)

    def incremental(self, network, batch: int):
        return network.incremental(batch)

    def fast_wavenet(self, network) -> WaveNet | None:
        """The WaveNet the numba kernels run for this network (None: no fast path)."""
        return None

    def fast_prediction(self, network, lanes: int):
        """The kernels' `Prediction` state around that WaveNet for `lanes` lanes (None: none)."""
        return None


class WaveNetSteps(Steps):
    def conditioning(self, network, local, glob, batch: int):
        """Per-step gate conditioning of every layer, a chunk of steps at a time, for `local`
        (a LocalSource or (B, C_l, T) tensor) and `glob` (B, C_g) (conditioning.py)."""
        from .conditioning import GateConditioning
        from .weights import gate_weights
        return GateConditioning(gate_weights(network), len(network.layers), batch, local, glob)

    def incremental(self, network, batch: int):
        from .incremental import TorchStack
        return TorchStack(network, batch)

    def fast_wavenet(self, network) -> WaveNet:
        return network


_STEPS: dict[type, Steps] = {WaveNet: WaveNetSteps()}


def register_steps(cls: type, steps: Steps) -> None:
    """How the engine steps networks of class `cls`."""
    _STEPS[cls] = steps


def steps_of(network) -> Steps:
    from .renderers import network as _  # noqa: F401  (registers the excitation network's steps)
    for cls in type(network).__mro__:
        if cls in _STEPS:
            return _STEPS[cls]
    return Steps()


def step_conditioning(network, local, glob, batch: int):
    """The rows of per-step conditioning of `network` (an object with `hold` and `rows(t0, n,
    items)`: conditioning.GateConditioning's contract)."""
    return steps_of(network).conditioning(network, local, glob, batch)


def incremental(network, batch: int):
    """The PyTorch step of `network` for `batch` sequences (`step(t, inputs, cond) → logits`)."""
    return steps_of(network).incremental(network, batch)
