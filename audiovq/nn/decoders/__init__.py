"""Decoders of the speech VQ-VAE: one interface (`base.Decoder`), one module per kind, and the
registry of kinds that `model.decoder.kind` picks from (stored in every checkpoint; checkpoints
from before the key load as "wavenet").

A new decoder is a module here with a `Decoder` subclass decorated with `@register`; nothing
else changes (see base.py for what it must provide).
"""
from __future__ import annotations

from ...errors import ConfigError

KINDS: dict[str, type] = {}


def register(cls):
    """Class decorator: make a Decoder subclass available as `model.decoder.kind=<cls.kind>`."""
    if not getattr(cls, "kind", ""):
        raise TypeError(f"{cls.__name__} needs a `kind` name to be registered")
    KINDS[cls.kind] = cls
    return cls


def build_decoder(cfg, code_dim: int, hop: int, num_speakers: int, sample_rate: int):
    """The decoder of kind `cfg.kind` (a DecoderConfig) for codes of `code_dim` at one per `hop`
    samples of `sample_rate`."""
    kind = getattr(cfg, "kind", "wavenet")
    if kind not in KINDS:
        raise ConfigError(f"model.decoder.kind={kind!r}: unknown decoder (known: {', '.join(sorted(KINDS))})")
    return KINDS[kind](cfg, code_dim, hop, num_speakers, sample_rate)


from .base import Decoder, DecoderOutput, StepInputs  # noqa: E402
from .wavenet import WaveNetDecoder  # noqa: E402  (registers "wavenet")
from .source_filter import SourceFilterDecoder  # noqa: E402  (registers "source_filter")

__all__ = ["KINDS", "Decoder", "DecoderOutput", "SourceFilterDecoder", "StepInputs", "WaveNetDecoder",
           "build_decoder", "register"]
