"""Fashion-MNIST (Xiao et al., 2017): 70,000 real 28x28 grey photos of clothes, shoes and bags.

Read from the idx files of the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/``: ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``; uncompressed copies without ``.gz`` are
accepted too).  It is the project's real-data benchmark for generation (:class:`FashionMNIST`) and for
shoes <-> bags (:class:`FashionMNISTShoesBags`: Sandal, Sneaker, Ankle boot <-> Bag).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .bags_shoes import UnpairedPartners
from .io import DataError
from .hf import lazy_hf_features

__all__ = [
    "CLASS_NAMES",
    "SHOE_CLASSES",
    "BAG_CLASSES",
    "DEFAULT_ROOT",
    "FILES",
    "HF_FEATURES",
    "read_idx",
    "load_fashion_mnist",
    "FashionMNIST",
    "FashionMNISTShoesBags",
    "iter_hf_records",
]

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SHOE_CLASSES: tuple[int, ...] = (5, 7, 9)  # Sandal, Sneaker, Ankle boot
BAG_CLASSES: tuple[int, ...] = (8,)  # Bag
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IMAGE_SIZE = 28


def _hf_features():
    import datasets

    return datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(CLASS_NAMES))})


__getattr__ = lazy_hf_features(__name__, _hf_features)  # HF_FEATURES, built on first access


# --------------------------------------------------------------------------------------------- files


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root / (stem + '.gz')}: Fashion-MNIST file not found (nor {stem} uncompressed)")


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an idx file (optionally gzip-compressed) of unsigned bytes into a ``uint8`` array.

    Checks the magic number, the dimensions and the data length; raises :class:`DataError` naming the
    file otherwise.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable or corrupt ({exc.__class__.__name__}: {exc})") from exc
    if len(raw) < 4:
        raise DataError(f"{path}: too short for an idx header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(f"{path}: magic number {magic:#010x}, expected {expected_magic:#010x}")
    if (magic >> 8) != 0x08:
        raise DataError(f"{path}: magic number {magic:#010x} is not an unsigned-byte idx file")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise DataError(f"{path}: truncated idx header ({ndim} dimensions, {len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise DataError(f"{path}: {len(raw) - header} data bytes for dimensions {dims} (expected {size})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(root: str | os.PathLike = DEFAULT_ROOT, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of the official ``split`` ("train" or "test")."""
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(FILES)}")
    root = Path(root)
    img_path, lbl_path = (_find(root, stem) for stem in FILES[split])
    images = read_idx(img_path, _IMAGE_MAGIC)
    labels = read_idx(lbl_path, _LABEL_MAGIC)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{img_path}: images of shape {images.shape[1:]}, expected (28, 28)")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{lbl_path}: {labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}")
    if labels.size and int(labels.max()) >= len(CLASS_NAMES):
        raise DataError(f"{lbl_path}: label {int(labels.max())} out of range 0..{len(CLASS_NAMES) - 1}")
    return images, labels.astype(np.int64)


# --------------------------------------------------------------------------------------------- datasets


def _to_tensor(image: np.ndarray, pad_to: int | None, channels: int) -> torch.Tensor:
    """``uint8 (28, 28)`` -> float ``(C, pad_to, pad_to)`` in [-1, 1]; padding is background (-1)."""
    t = torch.tensor(image, dtype=torch.float32).div_(127.5).sub_(1.0)
    if pad_to is not None and pad_to != t.shape[-1]:
        before = (pad_to - t.shape[-1]) // 2
        after = pad_to - t.shape[-1] - before
        t = torch.nn.functional.pad(t, (before, after, before, after), value=-1.0)
    t = t.unsqueeze(0)
    return t.expand(channels, -1, -1).clone() if channels > 1 else t


def _check_options(pad_to: int | None, channels: int) -> None:
    if pad_to is not None and pad_to < IMAGE_SIZE:
        raise ValueError(f"pad_to must be >= {IMAGE_SIZE} (or None), got {pad_to}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")


def _class_ids(classes: Iterable[int | str] | None) -> tuple[int, ...] | None:
    if classes is None:
        return None
    out = []
    for c in classes:
        if isinstance(c, str):
            if c not in CLASS_NAMES:
                raise ValueError(f"unknown Fashion-MNIST class {c!r}; classes: {CLASS_NAMES}")
            out.append(CLASS_NAMES.index(c))
        else:
            if not 0 <= int(c) < len(CLASS_NAMES):
                raise ValueError(f"class id {c} out of range 0..{len(CLASS_NAMES) - 1}")
            out.append(int(c))
    return tuple(sorted(set(out)))


def _hf_arrays(repo_id_or_path, split, revision, cache_dir) -> tuple[np.ndarray, np.ndarray]:
    from .hf import load_hf_split

    ds = load_hf_split(repo_id_or_path, split, revision=revision, cache_dir=cache_dir,
                       required_columns=("image", "label"))
    labels = np.asarray(ds.select_columns(["label"])[:]["label"], dtype=np.int64)
    images = np.stack([np.asarray(row["image"].convert("L"), dtype=np.uint8) for row in ds])
    return images, labels


class FashionMNIST(Dataset):
    """Fashion-MNIST images: ``{"image": (channels, pad_to, pad_to) in [-1, 1], "label": int}``.

    ``classes`` (ids or names from :data:`CLASS_NAMES`) keeps only those classes; labels keep their
    original ids.  ``pad_to=32`` pads the 28 px images with background (-1) to a power of two, as GAN
    generators need; ``None`` keeps 28 px.
    """

    def __init__(
        self,
        root: str | os.PathLike = DEFAULT_ROOT,
        split: str = "train",
        classes: Iterable[int | str] | None = None,
        pad_to: int | None = 32,
        channels: int = 1,
    ) -> None:
        images, labels = load_fashion_mnist(root, split)
        self._init(images, labels, split, classes, pad_to, channels)

    def _init(self, images, labels, split, classes, pad_to, channels) -> None:
        _check_options(pad_to, channels)
        self.classes = _class_ids(classes)
        if self.classes is not None:
            keep = np.isin(labels, self.classes)
            images, labels = images[keep], labels[keep]
        self.images, self.labels = images, labels
        self.split, self.pad_to, self.channels = split, pad_to, channels

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, split: str = "train", classes=None,
                    pad_to: int | None = 32, channels: int = 1) -> "FashionMNIST":
        self = cls.__new__(cls)
        self._init(np.asarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int64), split, classes, pad_to,
                   channels)
        return self

    @classmethod
    def from_hf(cls, repo_id_or_path: str | os.PathLike, split: str = "train", classes=None,
                pad_to: int | None = 32, channels: int = 1, *, revision: str | None = None,
                cache_dir: str | os.PathLike | None = None) -> "FashionMNIST":
        """The same dataset read from a Hugging Face dataset written from :func:`iter_hf_records`."""
        images, labels = _hf_arrays(repo_id_or_path, split, revision, cache_dir)
        return cls.from_arrays(images, labels, split, classes, pad_to, channels)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": _to_tensor(self.images[i], self.pad_to, self.channels), "label": int(self.labels[i])}


class FashionMNISTShoesBags(Dataset):
    """Unpaired shoes (Sandal, Sneaker, Ankle boot) and bags (Bag) of Fashion-MNIST.

    Same items as :class:`~fashion_gans.data.bags_shoes.BagsShoesDataset`: ``{"bag", "shoe", "bag_index",
    "shoe_index"}`` (indices into the official split) plus ``"shoe_label"``.  The length is the larger
    domain (shoes: 18,000 train, 3,000 test); bag partners are re-drawn every epoch (:meth:`set_epoch`).
    The official train/test split is used.
    """

    def __init__(
        self,
        root: str | os.PathLike = DEFAULT_ROOT,
        split: str = "train",
        pad_to: int | None = 32,
        channels: int = 1,
        *,
        seed: int = 0,
    ) -> None:
        images, labels = load_fashion_mnist(root, split)
        self._init(images, labels, split, pad_to, channels, seed)

    def _init(self, images, labels, split, pad_to, channels, seed) -> None:
        _check_options(pad_to, channels)
        self.images, self.labels = images, labels
        self.shoe_indices = np.flatnonzero(np.isin(labels, SHOE_CLASSES))
        self.bag_indices = np.flatnonzero(np.isin(labels, BAG_CLASSES))
        if len(self.shoe_indices) == 0 or len(self.bag_indices) == 0:
            raise DataError(f"Fashion-MNIST {split}: no shoes or no bags among {len(labels)} images")
        self.split, self.pad_to, self.channels, self.seed = split, pad_to, channels, seed
        self.partners = UnpairedPartners(len(self.bag_indices), len(self.shoe_indices), seed=seed)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, split: str = "train", pad_to: int | None = 32,
                    channels: int = 1, *, seed: int = 0) -> "FashionMNISTShoesBags":
        self = cls.__new__(cls)
        self._init(np.asarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int64), split, pad_to, channels,
                   seed)
        return self

    @classmethod
    def from_hf(cls, repo_id_or_path: str | os.PathLike, split: str = "train", pad_to: int | None = 32,
                channels: int = 1, *, seed: int = 0, revision: str | None = None,
                cache_dir: str | os.PathLike | None = None) -> "FashionMNISTShoesBags":
        """The same dataset read from a Hugging Face dataset written from :func:`iter_hf_records`."""
        images, labels = _hf_arrays(repo_id_or_path, split, revision, cache_dir)
        return cls.from_arrays(images, labels, split, pad_to, channels, seed=seed)

    def set_epoch(self, epoch: int) -> None:
        """Re-draw the bag partner of every shoe for ``epoch``."""
        self.partners.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.partners)

    def __getitem__(self, i: int) -> dict[str, Any]:
        a, b = self.partners[i]
        bag_index, shoe_index = int(self.bag_indices[a]), int(self.shoe_indices[b])
        return {
            "bag": _to_tensor(self.images[bag_index], self.pad_to, self.channels),
            "shoe": _to_tensor(self.images[shoe_index], self.pad_to, self.channels),
            "bag_index": bag_index,
            "shoe_index": shoe_index,
            "shoe_label": int(self.labels[shoe_index]),
        }


def iter_hf_records(root: str | os.PathLike = DEFAULT_ROOT, split: str = "train", *,
                    limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Records for :data:`HF_FEATURES` in file order: ``{"image": uint8 (28, 28), "label": int}``."""
    images, labels = load_fashion_mnist(root, split)
    n = len(labels) if limit is None else min(limit, len(labels))
    for i in range(n):
        yield {"image": images[i], "label": int(labels[i])}
