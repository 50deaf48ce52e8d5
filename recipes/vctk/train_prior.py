"""Train the WaveNet prior over the codes of a trained speech VQ-VAE.

    python recipes/vctk/train_prior.py vqvae=runs/demo [overrides]

Codes are extracted once with the VQ-VAE (cached in the run directory, keyed on the
checkpoint's content); re-running resumes. Sample from it with `audiovq sample --prior …`.
"""
import sys

from audiovq.cli import run_guarded
from audiovq.config import load_config
from audiovq.prior import train_prior


def main(argv: list[str]) -> None:
    result = train_prior(load_config("prior", argv))
    v = result.validation
    if v:
        print(f"held-out {v['bits_per_code']:.3f} bits/code (unigram {v['unigram_bits']:.3f}, "
              f"uniform {v['uniform_bits']:.3f})")
    print(f"stopped at step {result.step} ({result.stopped}); checkpoint: {result.checkpoint}")


if __name__ == "__main__":
    run_guarded(main, sys.argv[1:])
