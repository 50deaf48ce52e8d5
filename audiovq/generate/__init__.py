"""Generation: codes + speaker → waveform through a decoder's frame half and a renderer,
batched, reproducible, streamed block by block, with a fast CPU path.

    from audiovq.generate import generate, generate_wavenet, stream
    result = generate(model, codes, speakers, lengths)  # → GenerationResult(audio, samples_per_s, rtf)
    for block in stream(model, codes, speakers, lengths, renderer="world"):  # a block at a time
        ...

Modules: `engine` (the entry points; decoders are reached through nn/decoders/base.py only),
`renderers/` (frame records → samples: world, pulses, network), `networks` (how each network
is stepped), `conditioning` (per-chunk gate conditioning), `incremental` (the PyTorch backend,
any device), `cuda_graph` (one step captured as a CUDA graph), `fast` (the numba backend's
lanes and threads) over `kernels` (all numba and LLVM-IR code: the WaveNet step in float32 or
reduced precision, the all-pole filter, fractional pulses), `weights` (fused and packed weight
layouts exported from the module: the one description both backends run). The one sampling
rule and its uniform streams are nn/sampling.py, where the decoders and the PixelCNN reach them.
"""
from .engine import GenerationResult, Generated, generate, generate_wavenet, stream, teacher_forced_logits

__all__ = ["GenerationResult", "Generated", "generate", "generate_wavenet", "stream", "teacher_forced_logits"]
