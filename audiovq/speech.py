"""Training the speech VQ-VAE from a config: corpus → speaker table → model → Trainer, with
validation that watches the codebook and whether the decoder uses the codes at all.
"""
from __future__ import annotations

import torch

from . import config as config_mod
from .corpus import ensure_prepared
from .errors import AudioVQError
from .data.datasets import AudioBatch, SegmentSource
from .data.perturb import perturb_batch, random_factors
from .data.manifest import Manifest
from .nn.vqvae import AudioVQVAE
from .train import Trainer, TrainResult, setup

COLLAPSE_GAP = 0.02  # nats: below this, decoding with the wrong codes is as good as the right ones


def speaker_table(manifest: Manifest) -> list[dict]:
    """The training speakers in embedding order, with what `audiovq speakers` shows."""
    return [{"id": s.id, "gender": s.gender, "age": s.age, "accent": s.accent, "region": s.region}
            for s in (manifest.speaker(i) for i in manifest.speaker_ids("train"))]


def build_model(cfg, num_speakers: int) -> AudioVQVAE:
    return AudioVQVAE(cfg.model, num_speakers, cfg.data.sample_rate)


@torch.no_grad()
def validate(model: AudioVQVAE, batch, device) -> dict:
    """NLL with the true codes and with another utterance's codes (the collapse guard),
    plus codebook statistics, on a fixed set of held-out segments."""
    wav, speaker = batch.wav.to(device), batch.speaker.to(device)
    pitch = None if batch.pitch is None else batch.pitch.to(device)
    out = model(wav, speaker, pitch=pitch)
    result = {"nll": float(out.nll), "perplexity": float(out.vq.perplexity), "usage": float(out.vq.usage),
              "bits": float(out.vq.entropy_bits)}
    if wav.shape[0] > 1:
        wrong = float(model.reconstruction(wav, model.held(out.vq.quantized.roll(1, dims=0)), speaker, pitch=pitch)[0])
        result["nll_wrong_codes"] = wrong
        result["code_gap"] = wrong - result["nll"]
    result["code_histogram"] = out.vq.indices.flatten().float().cpu()
    return result


def train_vqvae(cfg) -> TrainResult:
    """Train (or resume) the speech VQ-VAE described by a `vqvae` config."""
    d = setup(cfg.train.device, cfg.train.threads)
    manifest = ensure_prepared(cfg.data, progress=d.main)
    speakers = speaker_table(manifest)
    ids = [s["id"] for s in speakers]
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
    model = build_model(cfg, len(ids))
    pitch_hop, extra_pitch = None, {}
    if model.decoder.needs_pitch:  # F0 tracked once per corpus and frame size, kept beside it
        from .data.pitch import ensure_pitch
        from .filelock import folder_lock
        with folder_lock(manifest.root / f"pitch-{model.hop}"):
            tracked = ensure_pitch(manifest, model.hop, progress=d.main)
        missing = [s for s in ids if s not in tracked.speakers]
        if missing:
            raise AudioVQError(f"{manifest.root}: no voiced frames to measure the pitch of {', '.join(missing)}")
        model.decoder.set_pitch_stats([tracked.speakers[s] for s in ids])
        pitch_hop = model.hop
        extra_pitch = {"pitch": {s: tracked.speakers[s]._asdict() for s in ids}}
    source = SegmentSource(manifest, "train", cfg.data.segment, ids, cfg.data.cache_gb * 1e9, pitch_hop)
    val_batch = SegmentSource(manifest, "val", cfg.data.segment, ids, 0.2e9, pitch_hop).fixed(cfg.data.val_segments)

    listener = None
    if cfg.train.listen and cfg.train.val_every and d.main:
        from .listen import TrainingListener
        listener = TrainingListener(manifest, ids, cfg.data.sample_rate)

    def check(m, step):
        result = validate(m, val_batch, d.device)
        if listener is not None:  # hear it: audio, spectrogram and listener scores in TensorBoard
            media = []
            for clip in listener(m):
                media += [(f"listen/{clip.name}", "audio", clip.audio, cfg.data.sample_rate),
                          (f"listen/{clip.name}_mel", "image", clip.image, None)]
                result.update({f"{clip.name}_{k}": v for k, v in clip.scores.items()})
            result["media"] = media
        if "code_gap" in result and step >= 2 * cfg.train.val_every and result["code_gap"] < COLLAPSE_GAP:
            print(f"WARNING step {step}: the decoder is ignoring the codes (NLL with wrong codes "
                  f"{result['nll_wrong_codes']:.3f} vs right codes {result['nll']:.3f} nats)", flush=True)
        return result

    def next_batch(g: torch.Generator, part: slice) -> AudioBatch:
        batch = source.batch(cfg.train.batch_size, g, part)
        if cfg.data.perturb_semitones > 0:  # drawn for the global batch, so every rank agrees
            factors = random_factors(cfg.data.perturb_semitones, cfg.train.batch_size, g)[part]
            wav = batch.wav.to(d.device)  # the shift runs where the model does (a GPU, if any)
            batch = batch._replace(wav=wav, encoder_wav=perturb_batch(wav, factors, cfg.data.perturb_formants))
        if cfg.data.perturb_mel_bands > 0:  # a mel encoder's input warped by whole bands, per segment
            k = cfg.data.perturb_mel_bands
            shift = torch.randint(-k, k + 1, (cfg.train.batch_size,), generator=g)[part]
            batch = batch._replace(band_shift=shift)
        if cfg.model.decoder.input_noise > 0:  # likewise: the same draws whatever the process count
            noise = torch.randn(cfg.train.batch_size, cfg.data.segment, generator=g)[part]
            batch = batch._replace(decoder_noise=noise)
        return batch

    extra = {"speakers": speakers, "sample_rate": cfg.data.sample_rate, "code_rate": model.code_rate,
             "bottleneck_rate": model.bottleneck_rate, "hop": model.hop, "corpus": str(manifest.root), **extra_pitch}
    trainer = Trainer(cfg.train, model, kind="vqvae", config=config_mod.to_dict(cfg), extra=extra,
                      next_batch=next_batch,
                      scalars=lambda out: out.scalars(model.bottleneck_rate), validate=check,
                      show=("loss", "nll", "perplexity", "usage"), dist_info=d)
    if d.main:
        print(f"training {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters on "
              f"{len(ids)} speakers, {len(source.utterances)} utterances, device {d.device}, "
              f"{d.world} process(es); run dir {cfg.train.run_dir}", flush=True)
    return trainer.fit()
