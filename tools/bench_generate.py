"""Benchmark WaveNet decoder generation: the fast CPU path against plain PyTorch.

Builds the reference decoder (2 cycles of dilations 1…512, 64 residual / 128 gate / 128 skip
channels, 256-way µ-law output, cond_channels 128, speaker embedding, 16 kHz) with random
weights and measures samples/s and the real-time factor for batch 1 on one thread and batch
16 on two threads: the fast path and `generate(fast=False)` (the PyTorch backend: PyTorch ops with
fused weights), which runs a few hundred samples only.

    python tools/bench_generate.py [--seconds 2] [--upsample transposed|repeat] [--device cuda]

Then the fast path's weight precisions (float32, bf16, int8; generate's `precision`) at
batch 1 on one thread and batch 16 on two, run in turn several times in one run (the machine
is shared: the best of the rounds and the ratios to float32 are what count).

With --device cuda: the PyTorch path on the GPU, one step replayed from a CUDA graph
(audiovq/generate/cuda_graph.py) against the plain loop of kernel launches.

With --preset NAME: the decoder of that preset (configs/NAME.yaml) at its sample rate, with
random weights, instead of the reference decoder, e.g. `--preset sf-tiny` for the source-filter
decoder (its excitation WaveNet, linear prediction and sharpening; F0 from its F0 head).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from audiovq.config import load_config
from audiovq.generate import generate
from audiovq.generate.weights import PRECISIONS
from audiovq.nn.vqvae import AudioVQVAE

SR = 16000


def reference_decoder(upsample: str) -> AudioVQVAE:
    cfg = load_config("vqvae", ["model.decoder.residual_channels=64", "model.decoder.gate_channels=128",
                                "model.decoder.skip_channels=128", "model.decoder.layers_per_cycle=10",
                                "model.decoder.cycles=2", "model.decoder.cond_channels=128",
                                "model.decoder.speaker_dim=64", f"model.decoder.upsample={upsample}",
                                "model.decoder.output=categorical", "model.decoder.classes=256"])
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 8, SR).eval()
    with torch.no_grad():  # fresh init gives tiny logits; spread them like a trained model's
        model.decoder.network.head[-1].weight.mul_(4.0)
    return model


def preset_decoder(name: str) -> AudioVQVAE:
    cfg = load_config("vqvae", [f"preset={name}"])
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 8, cfg.data.sample_rate).eval()
    net = model.decoder.network
    with torch.no_grad():  # as `reference_decoder`
        getattr(net, "fast_wavenet", net).head[-1].weight.mul_(4.0)
    return model


def codes(model: AudioVQVAE, batch: int, samples: int):
    frames = -(-samples // model.hop)
    g = torch.Generator().manual_seed(1)
    indices = torch.randint(0, model.quantizer.num_codes, (batch, frames), generator=g)
    return indices, torch.arange(batch) % 8


def measure(model, batch: int, samples: int, fast: bool, threads: int,
            precision: str = "float32") -> tuple[float, float]:
    """(samples per wall second, samples per CPU second of this process)."""
    indices, speaker = codes(model, batch, samples)
    cpu = time.process_time()
    r = generate(model, indices, speaker, [samples] * batch, fast=fast, threads=threads, seed=0, precision=precision)
    return r.samples_per_s, batch * samples / (time.process_time() - cpu)


def precision_table(model, seconds: float, rounds: int) -> None:
    """Best samples/s of each precision over `rounds` alternating runs, and the ratio to float32."""
    precisions = PRECISIONS
    for precision in precisions:  # numba compiles each precision's kernel once
        measure(model, 1, 256, True, 1, precision)
        measure(model, 16, 64, True, 2, precision)
    print(f"\nweight precision (best of {rounds} alternating runs)")
    print(f"{'batch':>5} {'thr':>3} | " + " | ".join(f"{p:>8} S/s" for p in precisions) + " | "
          + " ".join(f"{p + '/f32':>9}" for p in precisions[1:]))
    for batch, threads in ((1, 1), (16, 2)):
        torch.set_num_threads(threads)
        n = int(seconds * model.sample_rate) if batch == 1 else int(seconds * model.sample_rate / 4)
        best = dict.fromkeys(precisions, 0.0)
        for _ in range(rounds):
            for precision in precisions:
                best[precision] = max(best[precision], measure(model, batch, n, True, threads, precision)[0])
        print(f"{batch:>5} {threads:>3} | " + " | ".join(f"{best[p]:>12.0f}" for p in precisions) + " | "
              + " ".join(f"{best[p] / best['float32']:>8.2f}x" for p in precisions[1:]))
    torch.set_num_threads(os.cpu_count() or 1)


def cuda_rate(model, batch: int, samples: int, graph: bool) -> float:
    """Samples/s of `generate` on the model's GPU, with the CUDA graph or the plain loop."""
    os.environ["AUDIOVQ_CUDA_GRAPH"] = "auto" if graph else "off"
    indices, speaker = codes(model, batch, samples)
    generate(model, indices, speaker, [min(300, samples)] * batch, seed=0)  # warm-up: capture, cuBLAS, allocator
    return generate(model, indices, speaker, [samples] * batch, seed=0).samples_per_s  # (results copied back)


def cuda_table(model, args) -> int:
    print(f"on {torch.cuda.get_device_name(next(model.parameters()).device)}, torch {torch.__version__}\n")
    print(f"{'batch':>5} | {'graph S/s':>9} {'RTF':>6} | {'plain S/s':>9} {'RTF':>6} | {'graph/plain':>11}")
    for batch in (1, 16):
        graph = cuda_rate(model, batch, int(args.seconds * model.sample_rate), True)
        plain = cuda_rate(model, batch, args.plain * 4, False)
        print(f"{batch:>5} | {graph:>9.0f} {model.sample_rate / graph:>6.3f} | {plain:>9.0f} {model.sample_rate / plain:>6.3f} | {graph / plain:>10.1f}x")
    print("\nRTF: wall time / duration of all the batch's audio (< 1: faster than real time)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="audio per item for the fast path, batch 1")
    ap.add_argument("--plain", type=int, default=300,
                    help="samples per item for the plain PyTorch paths (a third of it for batch 16)")
    ap.add_argument("--upsample", default="transposed", choices=["transposed", "repeat"])
    ap.add_argument("--device", default="cpu", help="cpu, or cuda: CUDA graph against the plain loop")
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs per weight precision")
    ap.add_argument("--preset", help="the decoder of this preset (configs/NAME.yaml) instead of the reference one")
    args = ap.parse_args(argv)
    model = preset_decoder(args.preset) if args.preset else reference_decoder(args.upsample)
    if args.device != "cpu":
        return cuda_table(model.to(args.device), args)
    params = sum(p.numel() for p in model.decoder.network.parameters())
    load = os.getloadavg()[0]
    what = (f"preset {args.preset} ({model.decoder.kind} decoder, {model.sample_rate} Hz)" if args.preset else
            f"reference decoder: 20 layers, R64 G128 S128, cond 128 ({args.upsample}), speaker 64")
    print(f"{what}, {params / 1e6:.2f} M parameters; load average {load:.2f} on {os.cpu_count()} CPUs")
    t = time.perf_counter()
    measure(model, 1, 512, True, 1)   # numba compile / cache load, not timed below
    measure(model, 16, 128, True, 2)
    print(f"warm-up (numba compile or cache load): {time.perf_counter() - t:.1f} s")

    rows = []
    for batch, threads in ((1, 1), (16, 2)):
        torch.set_num_threads(threads)
        n_fast = int(args.seconds * model.sample_rate) if batch == 1 else int(args.seconds * model.sample_rate / 4)
        n_plain = args.plain if batch == 1 else max(32, args.plain // 3)
        fast, fast_cpu = measure(model, batch, n_fast, True, threads)
        plain, _ = measure(model, batch, n_plain, False, threads)
        rows.append((batch, threads, fast, fast_cpu, plain))
    torch.set_num_threads(os.cpu_count() or 1)

    print(f"\n{'batch':>5} {'thr':>3} | {'fast S/s':>9} {'RTF':>6} {'S/CPU-s':>8} | {'torch S/s':>9} | "
          f"{'fast/torch':>10}")
    for batch, threads, fast, fast_cpu, plain in rows:
        print(f"{batch:>5} {threads:>3} | {fast:>9.0f} {model.sample_rate / fast:>6.3f} {fast_cpu:>8.0f} | {plain:>9.0f} | "
              f"{fast / plain:>9.1f}x")
    print(f"\nS/CPU-s: samples per CPU-second of this process (× threads ≈ the rate on idle cores). "
          f"torch: generate(fast=False), the PyTorch backend.\nload average after: "
          f"{os.getloadavg()[0]:.2f}; targets: batch 1 ≥ 22000 S/s, batch 16 ≥ 100000 S/s, ≥ 60x the plain path")
    precision_table(model, args.seconds, args.rounds)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
