"""Train the image VQ-VAE (paper section 4.1), then evaluate it on the held-out split.

    python recipes/images/train.py                        # embedded digits, CPU preset (~3 min)
    python recipes/images/train.py train.steps=3000 train.run_dir=runs/images-long
    python recipes/images/train.py data.dataset=mnist data.root=/data/mnist
    python recipes/images/train.py data.dataset=cifar10 data.root=/data/cifar-10-batches-py \\
        model.hidden=256 model.residual_hidden=256 model.quantizer.codebook_size=512 \\
        train.batch_size=128 train.steps=100000 train.lr=2e-4 train.run_dir=runs/cifar10   # the paper's model

Any config key can be overridden as key=value (see audiovq/config.py and configs/images.yaml).
Re-running the same command resumes from the newest checkpoint in train.run_dir. Writes into
the run dir: reconstructions.png (originals, each row followed by its reconstructions) and
metrics.json (MSE, bits/dim, codebook usage).
"""
import sys

from audiovq.cli import run_guarded
from audiovq.config import load_config
from audiovq.images import report_vqvae, train_image_vqvae


def main(argv: list[str]) -> None:
    cfg = load_config("images", argv)
    result = train_image_vqvae(cfg)
    if result.checkpoint:
        print(f"stopped at step {result.step} ({result.stopped}); checkpoint: {result.checkpoint}")
        report_vqvae(result.checkpoint)


if __name__ == "__main__":
    run_guarded(main, sys.argv[1:])
