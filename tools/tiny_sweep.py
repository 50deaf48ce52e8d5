"""Search for the tiny preset: train candidate configurations for the same wall-clock budget
on the embedded corpus, one after another, and record what each reached.

    python tools/tiny_sweep.py --minutes 8 s16k_small s8k_hop32 s8k_hop64
    python tools/tiny_sweep.py --list

Each run goes to runs/sweep/<name> (re-running resumes it); one JSON line per finished run is
appended to runs/sweep/results.jsonl: steps, train and held-out NLL, the code gap (NLL with
another utterance's codes minus NLL with the right ones), perplexity and codebook usage.
"""
import argparse
import json
import pathlib
import time

from audiovq.config import load_config
from audiovq.speech import train_vqvae

BASE = ["preset=tiny", "train.val_every=100000", "train.ckpt_every=200", "train.log_every=20"]
CANDIDATES = {
    # the tiny preset as first written: 16 kHz, 64 residual / 128 gate / 128 skip, 10 layers
    "s16k_wide": [],
    # 16 kHz, a quarter of the decoder arithmetic per sample
    "s16k_small": ["model.decoder.residual_channels=32", "model.decoder.gate_channels=64",
                   "model.decoder.skip_channels=64", "model.quantizer.codebook_size=128", "train.lr=2e-3"],
    # 8 kHz, hop 32 (250 codes/s), small decoder, more segments per batch
    "s8k_hop32": ["data.sample_rate=8000", "model.encoder.layers=5", "data.segment=2048", "train.batch_size=16",
                  "model.decoder.residual_channels=32", "model.decoder.gate_channels=64",
                  "model.decoder.skip_channels=64", "model.quantizer.codebook_size=128", "train.lr=2e-3"],
    # 8 kHz, hop 64 (125 codes/s), the wide decoder with 8 layers
    "s8k_hop64": ["data.sample_rate=8000", "data.segment=2048", "train.batch_size=8",
                  "model.decoder.layers_per_cycle=8", "model.quantizer.codebook_size=128", "train.lr=2e-3"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*")
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--list", action="store_true")
    p.add_argument("--root", default="runs/sweep")
    a = p.parse_args()
    if a.list or not a.names:
        for k, v in CANDIDATES.items():
            print(f"{k:12} {' '.join(v)}")
        return
    for name in a.names:
        extra = CANDIDATES[name]
        cfg = load_config("vqvae", BASE + extra + [f"train.run_dir={a.root}/{name}", f"train.minutes={a.minutes}",
                                                    "train.steps=100000"])
        t = time.time()
        result = train_vqvae(cfg)
        # held-out numbers at the end, on the same validation segments for every candidate
        from audiovq.models import load_vqvae
        from audiovq.corpus import ensure_prepared
        from audiovq.data.datasets import SegmentSource
        from audiovq.speech import validate
        m = load_vqvae(result.checkpoint)
        manifest = ensure_prepared(cfg.data, progress=False)
        ids = [s["id"] for s in m.speakers]
        val = SegmentSource(manifest, "val", cfg.data.segment, ids, 0).fixed(64)
        v = validate(m.model, val, "cpu")
        v.pop("code_histogram", None)
        row = {"name": name, "overrides": extra, "minutes": a.minutes, "wall_s": round(time.time() - t),
               "steps": result.step, "train": result.scalars, "val": v}
        pathlib.Path(a.root).mkdir(parents=True, exist_ok=True)
        with open(pathlib.Path(a.root) / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
