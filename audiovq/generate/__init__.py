"""Autoregressive WaveNet generation: batched, reproducible, with a fast CPU path.

    from audiovq.generate import generate, generate_wavenet, stream
    result = generate(model, codes, speakers, lengths)  # → GenerationResult(audio, samples_per_s, rtf)
    for block in stream(model, codes, speakers, lengths):  # the same samples, a block at a time
        ...

Modules: `engine` (the entry points), `conditioning` (per-chunk gate conditioning),
`sampling` (uniform streams, inverse-CDF rules), `incremental` (PyTorch path, any device),
`fast` (numba CPU kernel, float32 or reduced-precision weights), `weights` (fused and packed
weight layouts exported from the module), `cuda_graph` (one step captured as a CUDA graph).
"""
from .engine import GenerationResult, Generated, generate, generate_wavenet, stream, teacher_forced_logits

__all__ = ["GenerationResult", "Generated", "generate", "generate_wavenet", "stream", "teacher_forced_logits"]
