"""Train a Gated PixelCNN prior over the codes of a trained image VQ-VAE, then evaluate it and
draw samples decoded to images.

    python recipes/images/train_prior.py vqvae=runs/images                 # run dir or checkpoint file
    python recipes/images/train_prior.py vqvae=runs/images model.class_conditional=false

Any config key can be overridden as key=value (see audiovq/config.py and configs/images_prior.yaml).
Re-running the same command resumes from the newest checkpoint in train.run_dir. Writes into
the run dir: samples.png (one row per class when class-conditional) and prior_metrics.json
(held-out NLL per code, bits/dim with the prior, sampling time of the fast and naive samplers).
"""
import sys

from audiovq.cli import run_guarded
from audiovq.config import load_config
from audiovq.images import report_prior, train_image_prior


def main(argv: list[str]) -> None:
    cfg = load_config("images_prior", argv)
    result = train_image_prior(cfg)
    if result.checkpoint:
        print(f"stopped at step {result.step} ({result.stopped}); checkpoint: {result.checkpoint}")
        report_prior(result.checkpoint)


if __name__ == "__main__":
    run_guarded(main, sys.argv[1:])
