"""Images as a second modality: the 2-D VQ-VAE, the Gated PixelCNN prior, the image loaders
and the training glue (audiovq.images)."""
from __future__ import annotations

import gzip
import json
import math
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from audiovq import checkpoint as ckpt_io
from audiovq.config import load_config
from audiovq.data.images import (load_cifar10, load_digits, load_images, load_mnist, read_cifar_batch,
                                 read_idx, to_model_range, to_pixels)
from audiovq.errors import AudioVQError, CheckpointError, ConfigError
from audiovq.images import (evaluate_vqvae, load_image_vqvae, report_prior, report_vqvae, save_grid,
                            train_image_prior, train_image_vqvae)
from audiovq.nn.image_vqvae import ImageVQVAE, bits_per_dim
from audiovq.nn.pixelcnn import GatedLayer, GatedPixelCNN


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids thread hand-off stalls on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_model_cfg(**over):
    cfg = load_config("images", ["model.hidden=16", "model.residual_hidden=8", "model.quantizer.codebook_size=32",
                                 "model.quantizer.dim=8"] + [f"{k}={v}" for k, v in over.items()])
    return cfg


# ----------------------------------------------------------------------- VQ-VAE
@pytest.mark.parametrize("downsample,recon", [(2, "mse"), (1, "logistic")])
def test_vqvae_shapes_and_code_grid(downsample, recon):
    cfg = small_model_cfg(**{"model.downsample": downsample, "model.recon_loss": recon})
    model = ImageVQVAE(cfg.model, 3, 0.25)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model(x)
    side = 32 // 2 ** downsample
    assert out.vq.indices.shape == (2, side, side)
    assert model.latent_shape(32, 32) == (side, side)
    assert out.mean.shape == x.shape and out.loss.shape == ()
    assert model.encode(x).shape == (2, side, side)
    assert model.decode(model.encode(x)).shape == x.shape
    out.loss.backward()
    assert model.encoder.project.weight.grad.abs().sum() > 0


def test_discretized_likelihood_sums_to_one_over_256_levels():
    model = ImageVQVAE(small_model_cfg().model, 1, 0.25)
    levels = to_model_range(torch.arange(256, dtype=torch.uint8)).view(256, 1, 1, 1)
    for mean, log_scale in [(0.1, -3.0), (-0.97, -4.0), (0.99, -2.0)]:
        m = torch.full_like(levels, mean)
        with torch.no_grad():
            nll = torch.stack([model.nll(levels[k:k + 1], m[k:k + 1], torch.tensor(log_scale).view(1, 1, 1, 1))
                               for k in range(256)])
        assert float(torch.exp(-nll.double()).sum()) == pytest.approx(1.0, abs=1e-4)
        if mean == 0.1:  # away from the edges the most likely level is the one nearest the mean
            assert int(nll.argmin()) == int(to_pixels(torch.tensor(mean))) == 140
        if mean == -0.97:  # near an edge, the end bin (which absorbs the tail) wins
            assert int(nll.argmin()) == 0


def test_bits_per_dim_adds_the_uniform_prior_kl():
    # CIFAR-10 in the paper: 8 × 8 latents, K = 512, 3 × 32 × 32 dims → KL = 9 · 64 / 3072 bits/dim
    assert bits_per_dim(3 * math.log(2), 512, 64, 3072) == pytest.approx(3 + 0.1875)
    assert bits_per_dim(0.0, 2, 1, 1) == pytest.approx(1.0)


def test_mse_loss_is_normalised_by_the_data_variance():
    model = ImageVQVAE(small_model_cfg().model, 1, 0.5)
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        out = model(x)
    assert float(out.recon_loss) == pytest.approx(float(((out.mean - x) ** 2).mean()) / 0.5, rel=1e-5)
    # the reported MSE is that of the image decode() returns (clamped to the pixel range)
    assert float(out.mse) == pytest.approx(float(((out.mean.clamp(-1, 1) - x) ** 2).mean()), rel=1e-5)


# ---------------------------------------------------------------- PixelCNN
def _dependence(fn, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """(H, W) bool: which input positions out[:, :, i, j] depends on (non-zero gradient)."""
    x = x.clone().requires_grad_(True)
    out = fn(x)
    (g,) = torch.autograd.grad(out[:, :, i, j].sum(), x)
    return g.abs().sum((0, 1)) > 0


def _raster_past(h: int, w: int, i: int, j: int, include_current: bool = False) -> torch.Tensor:
    past = torch.zeros(h * w, dtype=torch.bool)
    past[: i * w + j + int(include_current)] = True
    return past.view(h, w)


def test_type_a_layer_never_sees_the_current_or_future_positions():
    torch.manual_seed(0)
    layer = GatedLayer(4, 6, kernel=5, first=True).double()
    x = torch.randn(1, 4, 6, 6, dtype=torch.double)
    for i, j in [(0, 0), (2, 3), (5, 5), (3, 0)]:
        seen = _dependence(lambda t: layer(t, t, None)[1], x, i, j)
        assert not (seen & ~_raster_past(6, 6, i, j)).any(), (i, j)  # never the present or the future
    seen = _dependence(lambda t: layer(t, t, None)[1], x, 2, 3)
    assert seen[2, 2] and seen[2, 1] and seen[1, 3] and seen[1, 5]  # left neighbours, above, above-right


def test_type_b_layer_sees_the_current_position_but_not_the_future():
    torch.manual_seed(0)
    layer = GatedLayer(6, 6, kernel=3, first=False).double()
    v = torch.randn(1, 6, 5, 5, dtype=torch.double)
    seen = _dependence(lambda h: layer(v, h, None)[1], torch.randn(1, 6, 5, 5, dtype=torch.double), 2, 2)
    assert torch.equal(seen, torch.zeros(5, 5, dtype=torch.bool).index_put_(
        (torch.tensor([2, 2]), torch.tensor([1, 2])), torch.tensor(True)))  # h sees (2,1) and itself
    seen_v = _dependence(lambda t: layer(t, torch.zeros_like(t), None)[1], v, 2, 2)
    assert not (seen_v & ~_raster_past(5, 5, 2, 2)).any()  # the vertical input only reaches rows above


@pytest.mark.parametrize("conditional", [False, True])
def test_stack_sees_exactly_the_past_no_blind_spot(conditional):
    torch.manual_seed(0)
    h = w = 5
    model = GatedPixelCNN(16, channels=8, layers=6, kernel=3, first_kernel=3, head=16,
                          num_classes=3 if conditional else 0).double()
    labels = torch.tensor([2])
    x = torch.randn(1, 8, h, w, dtype=torch.double)
    for i in range(h):
        for j in range(w):
            seen = _dependence(lambda t: model.logits_embedded(t, labels), x, i, j)
            assert torch.equal(seen, _raster_past(h, w, i, j)), (i, j)


def test_class_conditioning_changes_the_logits():
    torch.manual_seed(0)
    model = GatedPixelCNN(8, channels=8, layers=2, kernel=3, first_kernel=3, head=8, num_classes=3)
    codes = torch.randint(8, (1, 4, 4))
    a, b = model.logits(codes, torch.tensor([0])), model.logits(codes, torch.tensor([1]))
    assert not torch.allclose(a, b)
    assert model(codes, torch.tensor([0])).loss.shape == ()


@pytest.mark.parametrize("conditional,temperature", [(True, 1.0), (False, 0.7), (True, 0.0)])
def test_fast_sampling_equals_naive_sampling(conditional, temperature):
    torch.manual_seed(1)
    model = GatedPixelCNN(12, channels=8, layers=4, kernel=3, first_kernel=5, head=16,
                          num_classes=4 if conditional else 0).eval()
    labels = torch.tensor([0, 1, 2, 3, 1])
    fast = model.sample(5, 6, 7, labels, temperature, torch.Generator().manual_seed(5), fast=True)
    naive = model.sample(5, 6, 7, labels, temperature, torch.Generator().manual_seed(5), fast=False)
    assert fast.shape == (5, 6, 7)
    assert torch.equal(fast, naive)
    assert len(fast.unique()) > 1


def test_conditional_sampling_needs_labels():
    model = GatedPixelCNN(8, channels=4, layers=1, kernel=3, first_kernel=3, head=4, num_classes=2)
    with pytest.raises(ValueError):
        model.sample(2, 3, 3)


# --------------------------------------------------------------------- loaders
def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_mnist(folder, n_train=5, n_test=3, gz=True, sep="-"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for stem, n in [("train", n_train), ("t10k", n_test)]:
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        arrays[stem] = (images, labels)
        for kind, arr, dims in [("images", images, 3), ("labels", labels, 1)]:
            name = f"{stem}-{kind}{sep}idx{dims}-ubyte" + (".gz" if gz else "")
            data = _idx_bytes(arr)
            (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return arrays


@pytest.mark.parametrize("gz,sep", [(True, "-"), (False, "-"), (False, ".")])
def test_mnist_loader_reads_idx_files(tmp_path, gz, sep):
    arrays = _write_mnist(tmp_path / "mnist", gz=gz, sep=sep)
    splits = load_images("mnist", str(tmp_path / "mnist"))
    assert splits.train.images.shape == (5, 1, 28, 28) and splits.test.images.shape == (3, 1, 28, 28)
    assert np.array_equal(splits.train.images[:, 0].numpy(), arrays["train"][0])
    assert splits.test.labels.tolist() == arrays["t10k"][1].tolist()
    assert splits.train.labels.dtype == torch.int64


def test_mnist_loader_errors(tmp_path):
    folder = tmp_path / "m"
    _write_mnist(folder, gz=False)
    with pytest.raises(AudioVQError, match="no such folder"):
        load_images("mnist", str(tmp_path / "absent"))
    with pytest.raises(AudioVQError, match="needs data.root"):
        load_images("mnist", None)
    bad = folder / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-10])  # truncated
    with pytest.raises(AudioVQError, match="promises"):
        load_mnist(folder, "train")
    bad.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 20)
    with pytest.raises(AudioVQError, match="magic"):
        read_idx(bad)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(AudioVQError, match="3 images but"):
        load_mnist(folder, "test")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(AudioVQError, match="t10k-labels"):
        load_mnist(folder, "test")
    gzbad = tmp_path / "x-idx1-ubyte.gz"
    gzbad.write_bytes(b"not gzip at all")
    with pytest.raises(AudioVQError, match="cannot read"):
        read_idx(gzbad)


def _cifar_batch(n: int, seed: int, str_keys: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    keys = ("data", "labels", "batch_label") if str_keys else (b"data", b"labels", b"batch_label")
    return {keys[0]: data, keys[1]: labels, keys[2]: b"batch"}


def _write_cifar(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batches[name] = _cifar_batch(n, k, str_keys=(k == 2))
        raw = pickle.dumps(batches[name], protocol=2 if k == 4 else pickle.DEFAULT_PROTOCOL)
        if k == 4:  # as numpy 1.x wrote it (the real batches name numpy.core.multiarray)
            raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / name).write_bytes(raw)
    return batches


def test_cifar10_loader_reads_python_batches(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    splits = load_images("cifar10", str(tmp_path))  # the parent folder works too
    assert splits.train.images.shape == (20, 3, 32, 32) and splits.test.images.shape == (4, 3, 32, 32)
    first = batches["data_batch_1"][b"data"][0]
    # a row is 1024 red values, then green, then blue, each plane row by row
    assert int(splits.train.images[0, 0, 0, 1]) == first[1]
    assert int(splits.train.images[0, 1, 0, 0]) == first[1024]
    assert int(splits.train.images[0, 2, 31, 31]) == first[3071]
    assert splits.train.labels[8:12].tolist() == batches["data_batch_3"]["labels"]
    assert np.array_equal(splits.train.images[16:20].reshape(4, -1).numpy(), batches["data_batch_5"][b"data"])
    assert splits.test.labels.tolist() == batches["test_batch"][b"labels"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar10_loader_errors(tmp_path):
    folder = tmp_path / "c"
    _write_cifar(folder)
    (folder / "data_batch_4").unlink()
    with pytest.raises(AudioVQError, match="data_batch_4"):
        load_cifar10(folder, "train")
    bad = folder / "test_batch"
    with open(bad, "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(AudioVQError, match="expected a dict"):
        read_cifar_batch(bad)
    with open(bad, "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(AudioVQError, match="refused"):
        read_cifar_batch(bad)
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(AudioVQError, match="not a CIFAR-10 python batch"):
        read_cifar_batch(bad)
    with open(bad, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(AudioVQError, match="shape"):
        read_cifar_batch(bad)
    with open(bad, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, f)
    with pytest.raises(AudioVQError, match="2 images but 1 labels"):
        read_cifar_batch(bad)


def test_digits_default_needs_no_download():
    splits = load_digits(16)
    assert splits.train.images.shape[1:] == (1, 16, 16) and splits.train.images.dtype == torch.uint8
    assert len(splits.train.labels) + len(splits.test.labels) == 1797
    assert len(splits.test.labels) == 300
    assert set(splits.test.labels.tolist()) == set(range(10))
    assert int(splits.train.images.max()) == 255
    with pytest.raises(AudioVQError):
        load_images("svhn")


# ------------------------------------------------------------------------ config
def test_configs_load_and_validate():
    cfg = load_config("images")
    assert cfg.data.dataset == "digits" and cfg.model.downsample == 2
    assert load_config("images_prior", ["vqvae=runs/x"]).model.first_kernel % 2 == 1
    with pytest.raises(ConfigError, match="vqvae"):
        load_config("images_prior")
    with pytest.raises(ConfigError, match="data.dataset"):
        load_config("images", ["data.dataset=imagenet"])
    with pytest.raises(ConfigError, match="model.kernel"):
        load_config("images_prior", ["vqvae=x", "model.kernel=4"])
    with pytest.raises(ConfigError, match="model.nope"):
        load_config("images", ["model.nope=1"])


def test_save_grid_writes_the_pixels(tmp_path):
    import matplotlib.image as mpimg
    pixels = torch.arange(2 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4) * 7
    path = save_grid(tmp_path / "g.png", pixels, columns=2, scale=3, border=1)
    img = mpimg.imread(path)
    assert img.shape[:2] == (1 + 12 + 1, 1 + 2 * (12 + 1))
    # pixel (row 2, col 3) of image 1, enlarged 3×, lands at y = 1 + 2·3, x = 1 + 13 + 3·3
    assert round(float(img[1 + 6, 14 + 9, 0]) * 255) == int(pixels[1, 0, 2, 3])
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind


# --------------------------------------------------------------- training glue
def _tiny_train_overrides(run_dir) -> list[str]:
    return [f"train.run_dir={run_dir}", "train.batch_size=16", "train.warmup=5", "train.lr=3e-3",
            "train.log_every=5", "train.val_every=1000", "train.ckpt_every=1000", "train.threads=1"]


def test_short_cpu_runs_lower_the_losses_and_write_reports(tmp_path):
    vq_over = ["data.size=16", "data.val_images=64", "data.eval_images=100", "model.hidden=16",
               "model.residual_hidden=8", "model.quantizer.codebook_size=32", "model.quantizer.dim=8",
               "model.quantizer.warmup_steps=10", "train.steps=40"] + _tiny_train_overrides(tmp_path / "vq")
    cfg = load_config("images", vq_over)
    test_images = load_digits(16).test.images[:100]
    torch.manual_seed(cfg.train.seed)
    from audiovq.images import build_image_vqvae, data_variance
    splits = load_digits(16)
    initial = evaluate_vqvae(build_image_vqvae(cfg, splits.train, data_variance(splits.train.images)), test_images)

    result = train_image_vqvae(cfg)
    assert result.step == 40 and result.checkpoint.exists()
    metrics = report_vqvae(result.checkpoint)
    assert metrics["nmse"] < 0.6 * initial["nmse"]
    assert metrics["bits_per_dim"] < initial["bits_per_dim"]
    assert metrics["kl_bits_per_dim"] == pytest.approx(5 * 16 / 256)  # log2(32) · 4·4 latents / 16·16 dims
    assert metrics["codebook"]["used"] == sum(c > 0 for c in metrics["codebook"]["counts"]) > 1
    saved = json.loads((tmp_path / "vq" / "metrics.json").read_text())
    assert saved["codebook"]["used"] == metrics["codebook"]["used"]
    assert (tmp_path / "vq" / "reconstructions.png").stat().st_size > 0

    prior_over = [f"vqvae={tmp_path / 'vq'}", "model.channels=16", "model.layers=3", "model.head=32",
                  "sample.per_class=2", "data.val_images=64", "data.eval_images=100",
                  "train.steps=30"] + _tiny_train_overrides(tmp_path / "prior")
    pcfg = load_config("images_prior", prior_over)
    presult = train_image_prior(pcfg)
    pm = report_prior(presult.checkpoint)
    assert pm["prior_bits_per_code"] < pm["uniform_bits_per_code"]  # better than log2 K
    assert pm["bits_per_dim_with_prior"] < pm["bits_per_dim_uniform_prior"]
    assert pm["naive_equals_fast"] == 1.0 and pm["samples"] == 20
    assert (tmp_path / "prior" / "samples.png").stat().st_size > 0
    with pytest.raises(CheckpointError, match="expected 'image_vqvae'"):
        load_image_vqvae(presult.checkpoint)


def test_bad_vqvae_path_is_a_clear_error(tmp_path):
    cfg = load_config("images_prior", [f"vqvae={tmp_path / 'nothing.pt'}", f"train.run_dir={tmp_path / 'p'}"])
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        train_image_prior(cfg)
    (tmp_path / "empty").mkdir()
    cfg = load_config("images_prior", [f"vqvae={tmp_path / 'empty'}", f"train.run_dir={tmp_path / 'p'}"])
    with pytest.raises(CheckpointError, match="no checkpoints"):
        train_image_prior(cfg)


def test_downsample_must_divide_the_image_size():
    cfg = small_model_cfg(**{"model.downsample": 3, "data.size": 20})
    from audiovq.images import build_image_vqvae
    with pytest.raises(ConfigError, match="not divisible"):
        build_image_vqvae(cfg, load_digits(20).train, 0.3)
