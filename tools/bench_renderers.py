"""Real-time factors and memory of the renderers (generate/renderers/) at batch 1, on the
shipped model's frame records (or --checkpoint's), plus pyworld's one-shot synthesis of the
same records for comparison.

    python tools/bench_renderers.py [--seconds 30] [--hour-minutes 60] [--checkpoint PATH]

Prints, per renderer, the RTF of `stream` (frame half included) over --seconds of codes
(random codes, an F0 track of 120 Hz with an unvoiced gap every second: the renderers' cost
does not depend on what is said); for `world` and pyworld also the RTF of rendering alone, and
how close the two are (correlation after alignment of a steady vowel); then the peak memory of
streaming --hour-minutes of audio with `world` against --seconds of it (memory must stay flat
with the length: the bar is +0.5 GB for an hour).
"""
from __future__ import annotations

import argparse
import pathlib
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audiovq.generate import stream  # noqa: E402
from audiovq.models import load_vqvae  # noqa: E402


def inputs(model, seconds: float, seed: int = 0):
    frames = int(seconds * model.code_rate)
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, model.quantizer.num_codes, (1, frames), generator=g)
    f0 = np.full(frames, 120.0, np.float32)
    f0[(np.arange(frames) % int(model.code_rate)) < int(model.code_rate) // 5] = 0.0  # 0.2 s unvoiced a second
    return codes, [f0]


def rtf(model, renderer: str, seconds: float) -> float:
    codes, f0 = inputs(model, seconds)
    t = time.perf_counter()
    n = 0
    for b in stream(model, codes, torch.tensor([0]), pitch=f0, renderer=renderer):
        n += b.audio[0].size
    return (time.perf_counter() - t) * model.sample_rate / n


def render_only(model, seconds: float) -> tuple[float, float, float]:
    """(RTF of the world renderer alone, RTF of pyworld.synthesize alone, their correlation on
    a steady vowel) on the same frame records."""
    from audiovq.generate.renderers.world import World, pyworld_reference
    d = model.decoder
    codes, f0 = inputs(model, seconds)
    frames = codes.shape[1]
    records = d.step_inputs(model.quantizer, codes, torch.tensor([0]), [frames], f0).local
    rec = records.record(0, 0, frames + 4)
    T = (frames - 1) * model.hop
    t = time.perf_counter()
    World(d, 0).render(rec, 0, T)
    ours = (time.perf_counter() - t) * model.sample_rate / T
    t = time.perf_counter()
    pyworld_reference(rec.numpy(), model.hop, model.sample_rate, T)
    theirs = (time.perf_counter() - t) * model.sample_rate / T
    # closeness: one frame's envelope held, 120 Hz, no noise
    steady = rec.numpy()
    k = int(np.argmax(steady.gain))
    for name in ("envelope", "gain"):
        setattr(steady, name, np.repeat(getattr(steady, name)[k:k + 1], 400, 0))
    steady.f0, steady.voicing, steady.start = np.full(400, 120.0), np.ones(400), 0
    from audiovq.evaluate.envelope_vocoder import render
    a = render(steady.envelope, steady.gain, steady.f0, model.hop, model.sample_rate, 390 * model.hop)
    b = pyworld_reference(steady, model.hop, model.sample_rate, a.size)
    a, b = a[800:-800], b[800:-800]
    best = max(np.dot(a[100:-100], np.roll(b, j)[100:-100]) / np.sqrt(np.dot(a[100:-100], a[100:-100])
                                                                         * np.dot(np.roll(b, j)[100:-100], np.roll(b, j)[100:-100]))
               for j in range(-100, 101))
    return ours, theirs, float(best)


def peak_memory(model, seconds: float) -> float:
    """Peak RSS growth (GB) while streaming `seconds` with the world renderer."""
    codes, f0 = inputs(model, seconds)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    for _ in stream(model, codes, torch.tensor([0]), pitch=f0, renderer="world"):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6 - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--hour-minutes", type=float, default=60.0, help="length of the memory run (0: skip)")
    ap.add_argument("--network", action="store_true", help="also time the excitation network (slow)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    m = load_vqvae(a.checkpoint)
    model = m.model
    for r in ("world", "pulses") + (("network",) if a.network else ()):
        rtf(model, r, 2.0)  # compile / warm up
        print(f"{r:>8}: RTF {rtf(model, r, a.seconds):.4f} (stream, frame half included, batch 1, {a.seconds:g} s)")
    ours, theirs, corr = render_only(model, a.seconds)
    print(f"   world renderer alone: RTF {ours:.4f}; pyworld.synthesize (one-shot) alone: RTF {theirs:.4f}; "
          f"correlation of the two on a steady vowel: {corr:.4f}")
    if a.hour_minutes:
        base = peak_memory(model, a.seconds)
        long = peak_memory(model, a.hour_minutes * 60)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"peak memory growth streaming world: {a.seconds:g} s {base:.3f} GB, then {a.hour_minutes:g} min "
              f"{long:.3f} GB more (growth of the process's peak RSS, {peak:.2f} GB in all)")


if __name__ == "__main__":
    main()
