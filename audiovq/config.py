"""Configuration: typed defaults (dataclasses below) ← a YAML preset from configs/ ←
`key=value` overrides from the command line, validated before anything runs.

    cfg = load_config("vqvae", ["preset=tiny", "model.quantizer.codebook_size=256"])

Unknown keys, values of the wrong type and values out of range raise ConfigError with a
one-line message. Every run stores its resolved config in its checkpoints.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"


# ----------------------------------------------------------------- the audio VQ-VAE
@dataclass
class EncoderConfig:
    channels: int = 512
    layers: int = 6          # strided layers: hop = stride ** layers
    stride: int = 2
    residual_layers: int = 0
    norm: str = "none"       # "batch": batch norm before each strided ReLU (keeps the channels alive);
                             # "instance": per-utterance instance norm (divides out what is constant: the voice)
    input: str = "waveform"  # what the encoder reads: "waveform" (the paper) or "mel" (log-mel, bshall/VQMIVC)
    mels: int = 80           # mel input: bands
    mel_layers: int = 3      # mel input: convolutions (kernel 3) at the frame rate
    code_stride: int = 1     # frames (of stride ** layers samples) per code: >1 narrows the bottleneck


@dataclass
class QuantizerConfig:
    codebook_size: int = 512  # K
    dim: int = 64             # D
    beta: float = 0.25
    ema: bool = True
    decay: float = 0.99
    eps: float = 1e-5
    warmup_steps: int = 0     # steps without bottleneck before k-means initialisation
    kmeans_iters: int = 10
    restart_after: int = 20   # steps a code may stay unused before it is re-seeded (0 = never)
    window: int = 50          # steps over which codebook usage is measured


@dataclass
class WaveNetStackConfig:
    """The WaveNet stack's shape; shared by the decoder and the prior (audiovq.nn.wavenet)."""
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 128
    kernel_size: int = 2
    layers_per_cycle: int = 10   # dilations 1, 2, …, 2^(n-1)
    cycles: int = 2


@dataclass
class DecoderConfig(WaveNetStackConfig):
    kind: str = "wavenet"        # which decoder (audiovq/nn/decoders/; checkpoints without it: wavenet)
    output: str = "categorical"  # or logistic_mixture
    classes: int = 256           # µ-law bins (input, and output for categorical)
    mixtures: int = 10
    cond_channels: int = 128
    cond_layers: int = 2
    upsample: str = "transposed"  # or repeat
    speaker_dim: int = 64
    preemphasis: float = 0.0     # the decoder models x[n] − a·x[n−1] (LPCNet uses 0.85; 0 = off)
    input_noise: float = 0.0     # training only: Gaussian noise (std, µ-law bins) on the decoder's inputs
    lpc_order: int = 12          # source_filter: all-pole envelope order
    envelope_weight: float = 1.0  # source_filter: weight of the frame-level envelope loss
    envelope_loss: str = "cepstrum"  # source_filter: "cepstrum" (log-spectral distance) or "lar"
    lpc: bool = True             # source_filter: linear prediction imposes the envelope (false: the
                                 # WaveNet models the signal itself, no envelope loss; an ablation)
    pitch: bool = True           # source_filter: conditioned on F0 and sharpened by voicing (false: neither)
    cond_dilation: int = 1       # source_filter: >1 dilates the frame network's layer i by this ** i (residual
                                 # layers): 2 with cond_layers=6 sees ±63 frames (issue #27: a sharper envelope)
    network: bool = True         # source_filter: the excitation WaveNet (false: the frame half alone, trained on
                                 # the envelope and F0 losses, ~4.5x the steps per CPU hour; rendered by world/pulses)


@dataclass
class AdversaryConfig:
    weight: float = 0.0      # speaker classifier on the codes, its gradient reversed into the encoder
                             # × this (0 = no classifier; nn/speaker_adversary.py)
    hidden: int = 128


@dataclass
class VQVAEModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    adversary: AdversaryConfig = field(default_factory=AdversaryConfig)


@dataclass
class DataConfig:
    root: Optional[str] = None      # a VCTK tree; None = the embedded synthetic corpus
    prepared: Optional[str] = None  # where the prepared corpus goes (default under data/)
    sample_rate: int = 16000
    segment: int = 4096             # training segment length in samples (multiple of hop)
    mic: str = "mic1"
    embedded_speakers: int = 12     # espeak voices
    embedded_flite: bool = False    # also flite's voices of real speakers, when flite is installed
    embedded_utterances: int = 60
    embedded_seed: int = 0
    cache_gb: float = 2.0           # audio kept in memory; the rest is read from disk
    val_segments: int = 32
    perturb_semitones: float = 0.0  # random pitch+formant shift of the encoder's input, ± this (0 = off)
    perturb_formants: bool = True   # false: the pitch alone is shifted, the envelope kept (data/perturb.py)
    perturb_mel_bands: int = 0      # mel encoder: its log-mel moved by a random whole number of bands in
                                    # ± this per segment (a spectral warp of what the encoder sees; 0 = off)


@dataclass
class TrainConfig:
    run_dir: str = "runs/tiny"
    steps: int = 20000
    minutes: float = 0.0            # wall-clock budget (0 = none); a checkpoint is written at the end
    batch_size: int = 8
    lr: float = 4e-4
    schedule: str = "cosine"        # cosine | constant | cosine_time (cosine over train.minutes)
    warmup: int = 100               # linear learning-rate warm-up steps
    min_lr: float = 0.1             # cosine floor as a fraction of lr
    grad_clip: float = 1.0
    amp: bool = True                # bf16/fp16 autocast on CUDA; ignored on CPU
    seed: int = 0
    init: Optional[str] = None      # start a new run from this checkpoint's weights (fine-tuning)
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    threads: int = 0                # torch threads on CPU (0 = all cores of this process)
    log_every: int = 10
    val_every: int = 250
    listen: bool = True             # speech: at each validation, log a resynthesis and a conversion (audio,
                                    # spectrogram, and WER/DNSMOS with the eval extra) to TensorBoard
    ckpt_every: int = 250
    keep: int = 3


@dataclass
class VQVAEConfig:
    model: VQVAEModelConfig = field(default_factory=VQVAEModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ------------------------------------------------------------- the prior over codes
@dataclass
class CodePriorModelConfig(WaveNetStackConfig):
    layers_per_cycle: int = 8    # dilations 1 … 128 codes: ~1 s of context per cycle at 250 codes/s
    speaker_dim: int = 32


@dataclass
class CodePriorDataConfig:
    segment: int = 256           # training window in codes
    cache_dir: Optional[str] = None  # extracted codes (default: the run directory)


@dataclass
class CodePriorConfig:
    vqvae: Optional[str] = None  # the trained VQ-VAE checkpoint (or run dir) whose codes are modelled
    model: CodePriorModelConfig = field(default_factory=CodePriorModelConfig)
    data: CodePriorDataConfig = field(default_factory=CodePriorDataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(run_dir="runs/prior", steps=3000,
                                                                   batch_size=16, lr=1e-3, val_every=250))


SCHEMAS: dict[str, type] = {"vqvae": VQVAEConfig, "prior": CodePriorConfig}
DEFAULT_PRESET = {"vqvae": "tiny", "prior": "prior"}

# (path, predicate, message) range checks beyond what the types enforce
RULES: dict[str, list[tuple[str, Any, str]]] = {
    "vqvae": [
        ("model.quantizer.codebook_size", lambda v: v >= 2, "must be at least 2"),
        ("model.quantizer.dim", lambda v: v >= 1, "must be positive"),
        ("model.quantizer.beta", lambda v: v >= 0, "must be non-negative"),
        ("model.quantizer.decay", lambda v: 0 < v < 1, "must be in (0, 1)"),
        ("model.encoder.layers", lambda v: v >= 1, "must be at least 1"),
        ("model.encoder.stride", lambda v: v >= 2 and v % 2 == 0, "must be an even number ≥ 2"),
        ("model.decoder.output", lambda v: v in ("categorical", "logistic_mixture"),
         "must be categorical or logistic_mixture"),
        ("model.decoder.upsample", lambda v: v in ("transposed", "repeat"), "must be transposed or repeat"),
        ("model.decoder.gate_channels", lambda v: v >= 2 and v % 2 == 0, "must be even"),
        ("model.decoder.classes", lambda v: v >= 2, "must be at least 2"),
        ("model.decoder.preemphasis", lambda v: 0 <= v < 1, "must be in [0, 1)"),
        ("model.decoder.input_noise", lambda v: 0 <= v <= 16, "must be between 0 and 16 (µ-law bins)"),
        ("model.decoder.lpc_order", lambda v: 1 <= v <= 48, "must be between 1 and 48"),
        ("model.decoder.envelope_weight", lambda v: v >= 0, "must be non-negative"),
        ("model.decoder.cond_dilation", lambda v: 1 <= v <= 4, "must be between 1 and 4"),
        ("model.encoder.norm", lambda v: v in ("none", "batch", "instance"), "must be none, batch or instance"),
        ("model.encoder.input", lambda v: v in ("waveform", "mel"), "must be waveform or mel"),
        ("model.encoder.mels", lambda v: 8 <= v <= 256, "must be between 8 and 256"),
        ("model.encoder.mel_layers", lambda v: v >= 1, "must be at least 1"),
        ("model.encoder.code_stride", lambda v: 1 <= v <= 64, "must be between 1 and 64"),
        ("model.adversary.weight", lambda v: v >= 0, "must be non-negative"),
        ("model.adversary.hidden", lambda v: v >= 1, "must be positive"),
        ("data.perturb_mel_bands", lambda v: 0 <= v <= 16, "must be between 0 and 16"),
        ("model.decoder.envelope_loss", lambda v: v in ("cepstrum", "lar"), "must be cepstrum or lar"),
        ("data.sample_rate", lambda v: 4000 <= v <= 48000, "must be between 4000 and 48000"),
        ("data.segment", lambda v: v > 0, "must be positive"),
        ("data.perturb_semitones", lambda v: 0 <= v <= 12, "must be between 0 and 12"),
        ("train.steps", lambda v: v >= 1, "must be at least 1"),
        ("train.batch_size", lambda v: v >= 1, "must be at least 1"),
        ("train.lr", lambda v: v > 0, "must be positive"),
        ("train.schedule", lambda v: v in ("cosine", "constant", "cosine_time"),
         "must be cosine, constant or cosine_time"),
        ("train.ckpt_every", lambda v: v >= 1, "must be at least 1"),
        ("train.keep", lambda v: v >= 1, "must be at least 1"),
    ],
    "prior": [
        ("vqvae", lambda v: bool(v), "must name the VQ-VAE checkpoint: vqvae=PATH"),
        ("model.gate_channels", lambda v: v >= 2 and v % 2 == 0, "must be even"),
        ("data.segment", lambda v: v >= 2, "must be at least 2"),
        ("train.steps", lambda v: v >= 1, "must be at least 1"),
        ("train.batch_size", lambda v: v >= 1, "must be at least 1"),
        ("train.lr", lambda v: v > 0, "must be positive"),
    ],
}


def preset_path(name: str) -> pathlib.Path:
    path = pathlib.Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        return path
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown preset {name!r} (known: {known})")
    return path


def load_config(kind: str, overrides: list[str] | None = None) -> DictConfig:
    """Defaults ← preset (`preset=NAME` or `config=FILE.yaml`, first) ← `key=value` overrides."""
    overrides = list(overrides or [])
    preset = DEFAULT_PRESET.get(kind)
    for item in list(overrides):
        key = item.split("=", 1)[0]
        if key in ("preset", "config"):
            preset = item.split("=", 1)[1]
            overrides.remove(item)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        cfg = OmegaConf.structured(SCHEMAS[kind])
        if preset:
            cfg = OmegaConf.merge(cfg, _strip_meta(OmegaConf.load(preset_path(preset))))
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as e:
        raise ConfigError(_one_line(e)) from None
    validate(kind, cfg)
    return cfg


def from_dict(kind: str, data: dict) -> DictConfig:
    """Rebuild and validate a config stored in a checkpoint."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(SCHEMAS[kind]), OmegaConf.create(data))
    except OmegaConfBaseException as e:
        raise ConfigError(f"checkpoint config: {_one_line(e)}") from None
    validate(kind, cfg)
    return cfg


def to_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def validate(kind: str, cfg: DictConfig) -> None:
    for path, ok, message in RULES.get(kind, []):
        value = OmegaConf.select(cfg, path)
        if not ok(value):
            raise ConfigError(f"{path}={value!r}: {message}")
    if kind == "vqvae":
        e = cfg.model.encoder
        hop = e.stride ** e.layers * e.code_stride
        if cfg.data.segment % hop:
            raise ConfigError(f"data.segment={cfg.data.segment} must be a multiple of the encoder's code hop {hop}")
        if cfg.data.perturb_mel_bands and e.input != "mel":
            raise ConfigError("data.perturb_mel_bands needs a mel encoder (model.encoder.input=mel)")
        if cfg.data.perturb_mel_bands >= e.mels:
            raise ConfigError(f"data.perturb_mel_bands={cfg.data.perturb_mel_bands} must be under model.encoder.mels={e.mels}")
        d = cfg.model.decoder
        if not d.network and (d.kind != "source_filter" or not d.lpc or d.envelope_weight <= 0):
            raise ConfigError("model.decoder.network=false needs the source-filter decoder with its envelope "
                              "(model.decoder.kind=source_filter model.decoder.lpc=true, envelope_weight > 0): nothing else would be trained")


def _strip_meta(node: DictConfig) -> DictConfig:
    """Presets may carry a free-text `description:` for humans; it is not a config key."""
    if "description" in node:
        node.pop("description")
    return node


def _one_line(e: Exception) -> str:
    msg = str(e).strip().splitlines()
    text = msg[0] if msg else type(e).__name__
    key = getattr(e, "full_key", None)
    if key and key not in text:
        text = f"{key}: {text}"
    return text


# =====================================================================================
# Images (issue #7) — appended section: the image VQ-VAE ("images") and the Gated PixelCNN
# prior over its codes ("images_prior"); see audiovq/images.py, configs/images.yaml and
# configs/images_prior.yaml. The dataclass defaults are the paper's CIFAR-10 model; the
# presets are CPU-sized.
# =====================================================================================
@dataclass
class ImageDataConfig:
    dataset: str = "digits"         # digits (embedded, no download) | mnist | cifar10
    root: Optional[str] = None      # folder with the MNIST idx files / CIFAR-10 python batches
    size: int = 32                  # digits only: side of the upscaled 8 × 8 digits
    val_images: int = 256           # held-out images checked at every validation
    eval_images: int = 0            # held-out images in the final evaluation (0 = all)


@dataclass
class ImageModelConfig:
    hidden: int = 256               # channels of the conv layers and residual blocks
    residual_hidden: int = 256      # inner channels of a residual block
    residual_blocks: int = 2
    downsample: int = 2             # stride-2 4×4 convs: latents are (H / 2^n) × (W / 2^n)
    recon_loss: str = "mse"         # mse (÷ data variance) | logistic (discretized, 256 levels)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)


@dataclass
class ImagesConfig:
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class PixelCNNConfig:
    channels: int = 128             # width of the vertical and horizontal stacks
    layers: int = 12                # gated layers (the first is mask type A)
    kernel: int = 3                 # odd kernel size of the type-B layers
    first_kernel: int = 7           # odd kernel size of the type-A layer
    head: int = 512                 # hidden channels of the 1×1 output head
    class_conditional: bool = True  # condition every layer on the image label


@dataclass
class PriorDataConfig:
    val_images: int = 256           # held-out code grids checked at every validation
    eval_images: int = 0            # held-out code grids in the final evaluation (0 = all)


@dataclass
class ImageSampleConfig:
    per_class: int = 8              # samples per class (class-conditional prior)
    count: int = 64                 # samples (unconditional prior)
    temperature: float = 1.0        # softmax temperature (0 = argmax)
    seed: int = 0
    compare_naive: bool = True      # also run the naive sampler (same seed): time it, check equality


@dataclass
class ImagesPriorConfig:
    vqvae: Optional[str] = None     # the image VQ-VAE: checkpoint file or its run directory
    model: PixelCNNConfig = field(default_factory=PixelCNNConfig)
    data: PriorDataConfig = field(default_factory=PriorDataConfig)
    sample: ImageSampleConfig = field(default_factory=ImageSampleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _odd(v) -> bool:
    return v >= 1 and v % 2 == 1


SCHEMAS["images"] = ImagesConfig
SCHEMAS["images_prior"] = ImagesPriorConfig
DEFAULT_PRESET["images"] = "images"
DEFAULT_PRESET["images_prior"] = "images_prior"
_TRAIN_RULES = [r for r in RULES["vqvae"] if r[0].startswith("train.")]
RULES["images"] = [
    ("data.dataset", lambda v: v in ("digits", "mnist", "cifar10"), "must be digits, mnist or cifar10"),
    ("data.size", lambda v: v >= 8, "must be at least 8"),
    ("data.val_images", lambda v: v >= 1, "must be at least 1"),
    ("data.eval_images", lambda v: v >= 0, "must be non-negative"),
    ("model.hidden", lambda v: v >= 2 and v % 2 == 0, "must be an even number ≥ 2"),
    ("model.residual_hidden", lambda v: v >= 1, "must be positive"),
    ("model.residual_blocks", lambda v: v >= 0, "must be non-negative"),
    ("model.downsample", lambda v: 1 <= v <= 5, "must be between 1 and 5"),
    ("model.recon_loss", lambda v: v in ("mse", "logistic"), "must be mse or logistic"),
    ("model.quantizer.codebook_size", lambda v: v >= 2, "must be at least 2"),
    ("model.quantizer.dim", lambda v: v >= 1, "must be positive"),
    ("model.quantizer.beta", lambda v: v >= 0, "must be non-negative"),
    ("model.quantizer.decay", lambda v: 0 < v < 1, "must be in (0, 1)"),
] + _TRAIN_RULES
RULES["images_prior"] = [
    ("vqvae", lambda v: bool(v), "is required: vqvae=PATH (an image VQ-VAE checkpoint or its run dir)"),
    ("model.channels", lambda v: v >= 1, "must be positive"),
    ("model.layers", lambda v: v >= 1, "must be at least 1"),
    ("model.kernel", _odd, "must be an odd number ≥ 1"),
    ("model.first_kernel", _odd, "must be an odd number ≥ 1"),
    ("model.head", lambda v: v >= 1, "must be positive"),
    ("data.val_images", lambda v: v >= 1, "must be at least 1"),
    ("data.eval_images", lambda v: v >= 0, "must be non-negative"),
    ("sample.per_class", lambda v: v >= 1, "must be at least 1"),
    ("sample.count", lambda v: v >= 1, "must be at least 1"),
    ("sample.temperature", lambda v: v >= 0, "must be non-negative"),
] + _TRAIN_RULES
# ============================================================ end of the images section
