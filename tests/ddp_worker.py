"""Worker for tests/test_distributed.py: train a small VQ-VAE on random audio with the
Trainer, once per process, and save what each rank ends with.

    torchrun --nproc_per_node=2 tests/ddp_worker.py OUT_DIR STEPS [quantizer overrides…]
"""
import sys

import torch

from audiovq.config import load_config
from audiovq.data.datasets import AudioBatch
from audiovq.nn.vqvae import AudioVQVAE
from audiovq.train import Trainer, setup

out_dir, steps, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cfg = load_config("vqvae", [
    "model.encoder.layers=6", "data.sample_rate=16000",
    "model.encoder.channels=16", "model.quantizer.codebook_size=16", "model.quantizer.dim=8",
    "model.decoder.residual_channels=8", "model.decoder.gate_channels=16", "model.decoder.skip_channels=16",
    "model.decoder.layers_per_cycle=3", "model.decoder.cond_channels=8", "model.decoder.speaker_dim=4",
    "data.segment=256", f"train.steps={steps}", "train.batch_size=4", f"train.run_dir={out_dir}/run",
    "train.ckpt_every=1000", "train.val_every=0", "train.log_every=1", "train.threads=1", "train.warmup=0",
    *extra])
d = setup("cpu", 1)
torch.manual_seed(0)
model = AudioVQVAE(cfg.model, 2, 16000)


def next_batch(g, part):
    wav = torch.sin(torch.rand(4, 1, generator=g) * 0.3 * torch.arange(256)) * torch.rand(4, 1, generator=g)
    speaker = torch.randint(2, (4,), generator=g)
    noise = torch.randn(4, 256, generator=g)  # the decoder's input noise, drawn for the global batch
    return AudioBatch(wav[part], speaker[part], None, noise[part])


trainer = Trainer(cfg.train, model, kind="vqvae", config={}, extra={}, next_batch=next_batch,
                  scalars=lambda out: out.scalars(250.0), dist_info=d)
trainer.fit()
torch.save({k: v.clone() for k, v in model.state_dict().items()}, f"{out_dir}/rank{d.rank}.pt")
