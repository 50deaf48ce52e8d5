"""Which torch device a command or recipe runs on: one check, one line of error for a device
this machine does not have (instead of a traceback from deep inside torch); and how many
CPU threads torch uses inside a block (`torch_threads`)."""
from __future__ import annotations

import contextlib

import torch

from .errors import AudioVQError


def torch_device(name: str | torch.device) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N' → a device that exists here."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise AudioVQError(f"device {name!r}: not a device (use cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise AudioVQError(f"device {name!r}: only cpu and cuda are supported")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise AudioVQError(f"device {name!r}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise AudioVQError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Use n intra-op threads inside the block (None: leave as is)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
