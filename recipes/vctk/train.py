"""Train the speech VQ-VAE on VCTK (or, with no data.root, the embedded synthetic corpus).

    python recipes/vctk/train.py                                  # tiny preset, embedded corpus
    python recipes/vctk/train.py preset=paper data.root=/data/VCTK-Corpus-0.92
    torchrun --standalone --nproc_per_node=2 recipes/vctk/train.py train.batch_size=8

Any config key can be overridden as key=value (see audiovq/config.py and configs/*.yaml).
Re-running the same command resumes from the newest checkpoint in train.run_dir.
"""
import sys

from audiovq.cli import run_guarded
from audiovq.config import load_config
from audiovq.speech import train_vqvae


def main(argv: list[str]) -> None:
    cfg = load_config("vqvae", argv)
    result = train_vqvae(cfg)
    if result.checkpoint:
        print(f"stopped at step {result.step} ({result.stopped}); checkpoint: {result.checkpoint}")


if __name__ == "__main__":
    run_guarded(main, sys.argv[1:])
