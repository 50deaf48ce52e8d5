"""Image data sets for the image VQ-VAE: an embedded default that needs no download
(scikit-learn's 8 × 8 handwritten digits, upscaled) and loaders for MNIST (idx files, gzipped
or not) and CIFAR-10 (the "python version" pickle batches) from a local folder.

Every loader returns an `ImageSet` of uint8 pixels (N, C, H, W) and int64 labels (N,).
Missing folders and malformed files raise AudioVQError with a one-line message naming the
file. CIFAR-10 pickles are read with an unpickler that only resolves the few numpy names an
array needs, so a crafted file cannot run code while it is being loaded.
"""
from __future__ import annotations

import functools
import gzip
import io
import pathlib
import pickle
import struct
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import AudioVQError

DATASETS = ("digits", "mnist", "cifar10")
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
CIFAR_SIDE = 32
DIGITS_TEST_FRACTION = 1 / 6  # of the 1797 digits, ~300 are held out (a fixed permutation)


class ImageSet(NamedTuple):
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    name: str             # e.g. "digits/train"


class ImageSplits(NamedTuple):
    train: ImageSet
    test: ImageSet
    classes: int          # number of label values (10 for all three sets)


def load_images(dataset: str, root: str | None = None, size: int = 32) -> ImageSplits:
    """The train and held-out splits of `dataset` (digits | mnist | cifar10).

    root: folder with the MNIST idx files or the CIFAR-10 batches (ignored for digits).
    size: side of the upscaled digits (ignored for the other sets).
    """
    if dataset == "digits":
        return load_digits(size)
    if dataset not in DATASETS:
        raise AudioVQError(f"data.dataset={dataset!r}: must be one of {', '.join(DATASETS)}")
    if not root:
        raise AudioVQError(f"data.dataset={dataset} needs data.root (a local folder; nothing is downloaded)")
    folder = pathlib.Path(root).expanduser()
    if not folder.is_dir():
        raise AudioVQError(f"data.root={root}: no such folder")
    loader = load_mnist if dataset == "mnist" else load_cifar10
    return ImageSplits(loader(folder, "train"), loader(folder, "test"), 10)


# --------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=4)  # training and both reports ask for the same set; treat as read-only
def load_digits(size: int = 32) -> ImageSplits:
    """scikit-learn's 1797 handwritten digits (8 × 8, 17 grey levels) upscaled bilinearly
    to size × size, 1 channel; a fixed ~1/6 of them is the held-out split."""
    if size < 8:
        raise AudioVQError(f"data.size={size}: the digits are 8 × 8; choose at least 8")
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise AudioVQError("the embedded digits need scikit-learn (installed with librosa)") from None
    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8) in [0, 1]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_test = round(len(labels) * DIGITS_TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return ImageSplits(ImageSet(images[train], labels[train], "digits/train"),
                       ImageSet(images[test], labels[test], "digits/test"), 10)


# ---------------------------------------------------------------------------- MNIST
_MNIST_FILES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}


def _find_mnist_file(folder: pathlib.Path, stem: str, kind: str) -> pathlib.Path:
    # Distributions name them train-images-idx3-ubyte or train-images.idx3-ubyte, gzipped or not.
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            path = folder / f"{stem}{sep}{kind}-ubyte{suffix}"
            if path.is_file():
                return path
    raise AudioVQError(f"{folder}: no {stem}-{kind}-ubyte[.gz] file (MNIST idx format expected)")


def read_idx(path: str | pathlib.Path) -> np.ndarray:
    """An idx file (the MNIST format: magic 0x0000 TT NN, NN big-endian uint32 sizes, data)
    as a numpy array; only the unsigned-byte type (TT = 0x08) is accepted."""
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise AudioVQError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise AudioVQError(f"{path}: not an idx file (bad magic number)")
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise AudioVQError(f"{path}: idx data type 0x{dtype:02x} is not unsigned byte (0x08)")
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise AudioVQError(f"{path}: truncated or malformed idx header")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    expected = int(np.prod(shape))
    data = raw[4 + 4 * ndim:]
    if len(data) != expected:
        raise AudioVQError(f"{path}: idx header promises {expected} bytes of data, file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def load_mnist(folder: str | pathlib.Path, split: str) -> ImageSet:
    """MNIST (or any idx-format digit set, e.g. Fashion-MNIST) split 'train' or 'test'."""
    folder = pathlib.Path(folder)
    image_stem, label_stem = _MNIST_FILES[split]
    image_path = _find_mnist_file(folder, image_stem, "idx3")
    label_path = _find_mnist_file(folder, label_stem, "idx1")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3:
        raise AudioVQError(f"{image_path}: expected 3 dimensions (N, H, W), found {images.ndim}")
    if labels.ndim != 1:
        raise AudioVQError(f"{label_path}: expected 1 dimension (N,), found {labels.ndim}")
    if len(images) != len(labels):
        raise AudioVQError(f"{image_path}: {len(images)} images but {label_path.name} has {len(labels)} labels")
    if len(images) == 0:
        raise AudioVQError(f"{image_path}: no images")
    if labels.max() > 9:
        raise AudioVQError(f"{label_path}: label {int(labels.max())} outside 0..9")
    return ImageSet(torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)),
                    f"mnist/{split}")


# ------------------------------------------------------------------------- CIFAR-10
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves only what a pickled numpy array needs; any other global is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how Python 3 writes bytes at pickle protocol ≤ 2

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _key(d: dict, name: str):
    """CIFAR batches pickled under Python 2 have bytes keys; accept str keys too."""
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    return None


def read_cifar_batch(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch → (images (N, 3, 32, 32) uint8, labels (N,) int64)."""
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AudioVQError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        content = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        if "refused global" in str(e):
            raise AudioVQError(f"{path}: refused: the pickle contains objects other than arrays "
                               f"and plain data ({e})") from None
        raise AudioVQError(f"{path}: not a CIFAR-10 python batch (corrupt pickle: {e})") from None
    except Exception as e:  # a malformed pickle can fail in many ways (EOF, bad opcode, …)
        raise AudioVQError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(content, dict):
        raise AudioVQError(f"{path}: expected a dict with data and labels, found {type(content).__name__}")
    data, labels = _key(content, "data"), _key(content, "labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise AudioVQError(f"{path}: a CIFAR-10 batch needs a 'data' array and 'labels'")
    side = CIFAR_SIDE * CIFAR_SIDE * 3
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != side:
        raise AudioVQError(f"{path}: 'data' must be uint8 of shape (N, {side}), found "
                           f"{data.dtype} {tuple(data.shape)}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise AudioVQError(f"{path}: 'labels' is not a list of integers") from None
    if labels.shape != (data.shape[0],):
        raise AudioVQError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise AudioVQError(f"{path}: labels outside 0..9")
    # Rows are stored channel-major: 1024 red, 1024 green, 1024 blue values, each row by row.
    return data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE), labels


def load_cifar10(folder: str | pathlib.Path, split: str) -> ImageSet:
    """CIFAR-10 split 'train' (data_batch_1..5) or 'test' (test_batch) from `folder` or its
    cifar-10-batches-py subfolder."""
    folder = pathlib.Path(folder)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = CIFAR_TRAIN if split == "train" else (CIFAR_TEST,)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise AudioVQError(f"{folder}: missing CIFAR-10 batch file {missing[0]} (python version expected)")
    parts = [read_cifar_batch(folder / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if len(images) == 0:
        raise AudioVQError(f"{folder}: the CIFAR-10 {split} batches hold no images")
    return ImageSet(torch.from_numpy(images.copy()), torch.from_numpy(labels), f"cifar10/{split}")


# ------------------------------------------------------------------------- batching
def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float in [-1, 1] (the models' input and output scale)."""
    return images.float() / 127.5 - 1.0


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Float in [-1, 1] → uint8 pixels (rounded to the nearest of the 256 levels)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
