"""Autoregressive WaveNet generation: batched, reproducible, with a fast CPU path.

    from audiovq.generate import generate, generate_wavenet
    result = generate(model, codes, speakers, lengths)  # → GenerationResult(audio, samples_per_s, rtf)

Modules: `engine` (the entry points), `conditioning` (per-chunk gate conditioning),
`sampling` (uniform streams, inverse-CDF rules), `incremental` (PyTorch path, any device),
`fast` (numba CPU kernel), `weights` (fused weight layouts exported from the module).
"""
from .engine import GenerationResult, Generated, generate, generate_wavenet, teacher_forced_logits

__all__ = ["GenerationResult", "Generated", "generate", "generate_wavenet", "teacher_forced_logits"]
