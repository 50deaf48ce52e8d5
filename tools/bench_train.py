"""Training throughput (audio samples per second) of the tiny and paper presets on this
machine, measured in one run on random audio (no corpus needed).

    python tools/bench_train.py [--steps 5] [--threads N] [--batch B] [--device cuda]

Prints seconds per step and samples/s for each preset, and the tiny/paper ratio.
"""
import argparse
import time

import torch

from audiovq.config import load_config
from audiovq.nn.vqvae import AudioVQVAE


def measure(preset: str, steps: int, batch: int | None, device: torch.device) -> tuple[float, int]:
    cfg = load_config("vqvae", [f"preset={preset}"])
    b = batch or cfg.train.batch_size
    torch.manual_seed(0)
    model = AudioVQVAE(cfg.model, 12, cfg.data.sample_rate).to(device)
    opt = torch.optim.Adam(model.parameters(), cfg.train.lr)
    wav = ((torch.rand(b, cfg.data.segment) * 2 - 1) * 0.3).to(device)
    spk = torch.randint(12, (b,)).to(device)
    half = amp_dtype(device)
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=half or torch.float32, enabled=half is not None):
            out = model(wav, spk)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if device.type == "cuda":  # kernels run asynchronously: wait for them
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    per_step = sorted(times[1:])[len(times[1:]) // 2]  # median: robust to a noisy neighbour
    return per_step, b * cfg.data.segment


def amp_dtype(device: torch.device):
    """The Trainer's train.amp dtype on a GPU (bf16 where supported, else fp16; the loss scaler
    does not change the step's cost), none on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--batch", type=int, default=None, help="override the presets' batch size")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    device = torch.device(a.device)
    where = (f"{torch.cuda.get_device_name(device)}, AMP {amp_dtype(device) or 'off'}" if device.type == "cuda"
             else f"{torch.get_num_threads()} threads, CPU")
    print(f"torch {torch.__version__}, {where}")
    rates = {}
    print(f"{'preset':8} {'batch x segment':>16} {'s/step':>8} {'samples/s':>10} {'audio s/s':>9}")
    for preset in ("tiny", "paper"):
        sec, samples = measure(preset, a.steps, a.batch, device)
        cfg = load_config("vqvae", [f"preset={preset}"])
        rates[preset] = samples / sec
        print(f"{preset:8} {samples:>16} {sec:8.2f} {rates[preset]:10.0f} {rates[preset] / cfg.data.sample_rate:9.2f}")
    print(f"tiny / paper throughput ratio: {rates['tiny'] / rates['paper']:.1f}x")


if __name__ == "__main__":
    main()
