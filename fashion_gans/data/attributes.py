"""Images with attribute labels, for attribute editing (Fader Networks, IcGAN).

Every dataset here yields ``{"image": float32 (C, H, W) in [-1, 1], "attributes": int64 (n_attributes,)}``:
one value index per attribute, in the order of the model config's ``attributes`` mapping (attribute name ->
list of value names, see :mod:`fashion_gans.models.attributes`).  Three sources:

* :class:`SyntheticAttributeDataset` - product photos ("flats") of :class:`~fashion_gans.data.synthetic.Garment`
  drawn by the synthetic world, with colour, pattern and kind drawn uniformly (balanced labels; the world's own
  person outfits favour solid garments and some kinds).  A flat has no pose or background variation: the image
  is a pure function of (kind, colour, pattern, pattern colour), so the test split holds out whole *designs*
  (that tuple), chosen by a seeded hash, rather than item indices -- a test image is never a training image.
* :class:`FashionMNISTAttributes` - Fashion-MNIST with its class as the one attribute (28 px padded to 32).
* :class:`AttributeFolderDataset` - a folder of images plus ``attributes.csv``
  (``file,<attribute>,<attribute>...``; one row per image, values spelled as in the model config).
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from . import synthetic as sw
from .io import DataError, array_to_tensor, load_image
from .splits import choose_test_ids

__all__ = [
    "SPLITS",
    "SYNTHETIC_ATTRIBUTE_VALUES",
    "CSV_NAME",
    "SyntheticAttributeDataset",
    "FashionMNISTAttributes",
    "AttributeFolderDataset",
    "check_attribute_values",
    "fmnist_edit_problem",
]

SPLITS = ("train", "test")
CSV_NAME = "attributes.csv"

#: What a synthetic flat records and can be edited: every value the world draws for each attribute.  The
#: sleeve length is not listed: on a flat it is fixed by the kind (``render_flat`` draws the kind's sleeves).
SYNTHETIC_ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "colour": sw.GARMENT_COLOURS,
    "pattern": sw.PATTERNS,
    "kind": sw.GARMENT_KINDS,
}

_TAG_ATTRIBUTE_FLATS = 11  # random-stream tag; the world itself uses 1..5
_SPLIT_TAGS = {"train": 0, "test": 1}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return int(channels)


def check_attribute_values(attributes: Mapping[str, Sequence[str]], known: Mapping[str, Sequence[str]],
                           where: str) -> dict[str, list[str]]:
    """``attributes`` as a plain dict after checking every name and value against ``known`` (what the data
    source records); the error names the attribute or value and lists the valid ones."""
    if not isinstance(attributes, Mapping) or not attributes:
        raise ValueError(f"{where}: attributes must be a non-empty mapping name -> list of values, got {attributes!r}")
    out: dict[str, list[str]] = {}
    for name, values in attributes.items():
        if name not in known:
            raise ValueError(f"{where}: unknown attribute {name!r}; this data records {list(known)}")
        values = list(values)
        bad = [v for v in values if v not in known[name]]
        if bad:
            raise ValueError(f"{where}: attribute {name!r} has unknown value(s) {bad}; valid: {list(known[name])}")
        if len(values) < 2 or len(set(values)) != len(values):
            raise ValueError(f"{where}: attribute {name!r} needs at least 2 distinct values, got {values}")
        out[name] = values
    return out


def fmnist_edit_problem(attributes: Mapping[str, Sequence[str]], image_size: int) -> str | None:
    """Why an attribute editor with these ``attributes`` and square ``image_size`` cannot work on Fashion-MNIST
    (one attribute, ``class``, with the ten class names in label order; 28 px padded to 32), or ``None``."""
    from .fashion_mnist import CLASS_NAMES

    want = {"class": list(CLASS_NAMES)}
    got = {k: list(v) for k, v in attributes.items()}
    if got != want:
        return (f"Fashion-MNIST has one attribute, 'class', with the values {list(CLASS_NAMES)}; the model's "
                f"attributes are {got}")
    if int(image_size) != 32:
        return f"Fashion-MNIST images are 28 px padded to 32; the model works at {image_size} px"
    return None


def _to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> ``(N, channels, H, W)`` (grey is the ITU-R 601 luma, as PIL's ``"L"``)."""
    if channels == 3:
        return images
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def _uint8_to_signed(image: torch.Tensor) -> torch.Tensor:
    return image.float().div_(127.5).sub_(1.0)


# --------------------------------------------------------------------------------------------------- synthetic


class SyntheticAttributeDataset(Dataset):
    """Synthetic product photos with balanced attribute labels, rendered once into memory.

    Item ``i`` of ``split`` is drawn from ``np.random.default_rng([seed, 11, split_tag, i])``: a uniform value
    of every attribute in ``attributes`` (a subset of :data:`SYNTHETIC_ATTRIBUTE_VALUES`, e.g. a model config's
    ``attributes``), the remaining ones (colour / pattern / kind not listed) uniform over the world's values,
    and a pattern colour uniform over the colours that contrast with the main colour (as the world picks it).
    A draw whose design belongs to the other split is redrawn from the same stream, so the splits are
    disjoint and each is deterministic.  ``test_fraction`` of the designs (a hash of ``seed`` and the design)
    are held out.

    ``self.garments[i]`` is the :class:`~fashion_gans.data.synthetic.Garment` of item ``i`` (to re-render it
    with other attributes, e.g. as the ground truth of an edit).
    """

    def __init__(self, count: int, split: str = "train", *, size: int = 64, seed: int = 0,
                 attributes: Mapping[str, Sequence[str]] | None = None, channels: int = 3,
                 test_fraction: float = 0.2) -> None:
        self.split = _check_split(split)
        self.count = int(count)
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.size = int(size)
        self.seed = int(seed)
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.channels = _check_channels(channels)
        self.test_fraction = float(test_fraction)
        self.attributes = check_attribute_values(
            attributes if attributes is not None else SYNTHETIC_ATTRIBUTE_VALUES, SYNTHETIC_ATTRIBUTE_VALUES,
            "SyntheticAttributeDataset")
        self.world = sw.SyntheticWorld(self.seed)
        self.garments: list[sw.Garment] = [self._draw(i) for i in range(self.count)]
        names = list(self.attributes)
        self.labels = torch.tensor(
            [[self.attributes[a].index(getattr(g, a)) for a in names] for g in self.garments], dtype=torch.int64
        ).view(self.count, len(names))
        self.images = self._render_all()  # uint8 (N, C, S, S)

    # A flat of a solid garment does not show its pattern colour: solid designs ignore it.
    @staticmethod
    def design(garment: sw.Garment) -> tuple[str, str, str, str]:
        """The tuple that fixes a flat's pixels: (kind, colour, pattern, pattern colour or "" when solid)."""
        return (garment.kind, garment.colour, garment.pattern,
                "" if garment.pattern == "solid" else garment.pattern_colour)

    def is_test_design(self, garment: sw.Garment) -> bool:
        """Whether ``garment``'s design is held out (belongs to the test split) for this seed."""
        key = "\0".join((str(self.seed), *self.design(garment))).encode()
        u = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0 ** 64
        return u < self.test_fraction

    def _draw(self, i: int) -> sw.Garment:
        rng = np.random.default_rng([self.seed, _TAG_ATTRIBUTE_FLATS, _SPLIT_TAGS[self.split], i])
        want_test = self.split == "test"
        for _ in range(10_000):
            values = {}
            for name, world_values in SYNTHETIC_ATTRIBUTE_VALUES.items():
                choices = self.attributes.get(name, world_values)
                values[name] = choices[int(rng.integers(len(choices)))]
            options = sw._CONTRASTING[values["colour"]]
            pattern_colour = options[int(rng.integers(len(options)))]
            garment = sw.Garment(values["kind"], values["colour"], values["pattern"], pattern_colour)
            if self.is_test_design(garment) == want_test:
                return garment
        raise DataError(f"synthetic attribute flats: no {self.split} design among the allowed attribute values "
                        f"{self.attributes} (seed {self.seed}, test_fraction {self.test_fraction})")

    def _render_all(self) -> torch.Tensor:
        cache: dict[tuple, np.ndarray] = {}
        out = torch.empty((self.count, 3, self.size, self.size), dtype=torch.uint8)
        for i, g in enumerate(self.garments):
            key = self.design(g)
            if key not in cache:
                cache[key] = self.world.render_flat(g, (self.size, self.size))
            out[i] = torch.from_numpy(cache[key]).permute(2, 0, 1)
        return _to_channels(out, self.channels)

    def render(self, garment: sw.Garment) -> torch.Tensor:
        """A garment's flat as this dataset renders it: float32 ``(C, S, S)`` in [-1, 1]."""
        image = torch.from_numpy(self.world.render_flat(garment, (self.size, self.size))).permute(2, 0, 1)
        return _uint8_to_signed(_to_channels(image[None], self.channels)[0])

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": _uint8_to_signed(self.images[i]), "attributes": self.labels[i].clone()}


# ------------------------------------------------------------------------------------------------ Fashion-MNIST


class FashionMNISTAttributes(Dataset):
    """Fashion-MNIST with the class as the one attribute: ``attributes = {"class": CLASS_NAMES}``.

    Images as :class:`fashion_gans.data.fashion_mnist.FashionMNIST` gives them (28 px padded with background
    to ``pad_to``); the official train/test split.  ``limit`` keeps the first ``limit`` images (for quick runs).
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", *, pad_to: int | None = 32,
                 channels: int = 1, limit: int | None = None, _base: Any = None) -> None:
        from .fashion_mnist import CLASS_NAMES, DEFAULT_ROOT, FashionMNIST

        self.split = _check_split(split)
        self.base = _base if _base is not None else FashionMNIST(root or DEFAULT_ROOT, split, pad_to=pad_to,
                                                                 channels=_check_channels(channels))
        self.attributes = {"class": list(CLASS_NAMES)}
        n = len(self.base)
        if limit is not None:
            if int(limit) < 1:
                raise ValueError(f"limit must be >= 1 (or None), got {limit}")
            n = min(n, int(limit))
        self.count = n
        self.labels = torch.as_tensor(np.asarray(self.base.labels[:n]), dtype=torch.int64).view(n, 1)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, split: str = "train", *, pad_to: int | None = 32,
                    channels: int = 1, limit: int | None = None) -> "FashionMNISTAttributes":
        """From in-memory ``uint8 (N, 28, 28)`` images and class ids (tests, other copies of the data)."""
        from .fashion_mnist import FashionMNIST

        base = FashionMNIST.from_arrays(images, labels, split, pad_to=pad_to, channels=_check_channels(channels))
        return cls(split=split, pad_to=pad_to, channels=channels, limit=limit, _base=base)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -self.count <= i < self.count:
            raise IndexError(f"index {i} out of range for {self.count} items")
        return {"image": self.base[i % self.count]["image"], "attributes": self.labels[i].clone()}


# ------------------------------------------------------------------------------------------------------- folder


class AttributeFolderDataset(Dataset):
    """A folder of images described by ``<root>/attributes.csv``.

    The CSV's header is ``file`` followed by one column per attribute of ``attributes`` (any order); each row
    names an image (a path relative to ``root``) and its value of every attribute, spelled as in
    ``attributes``.  Every row is checked when the dataset is built: an unknown value, a missing image file, a
    missing or unexpected column, an empty or repeated file name is a :class:`~fashion_gans.data.io.DataError`
    naming the CSV row.  ``test_fraction`` of the files (a seeded hash of the file name, at least one per split)
    form the test split.  Images are read on access, padded to a square on white and resized to ``size``.
    """

    def __init__(self, root: str | os.PathLike, attributes: Mapping[str, Sequence[str]], split: str = "train", *,
                 size: int = 64, channels: int = 3, test_fraction: float = 0.1, seed: int = 0) -> None:
        self.root = Path(root)
        self.split = _check_split(split)
        self.size = int(size)
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.channels = _check_channels(channels)
        if not isinstance(attributes, Mapping) or not attributes:
            raise ValueError(f"attributes must be a non-empty mapping name -> list of values, got {attributes!r}")
        self.attributes = {str(k): [str(v) for v in vs] for k, vs in attributes.items()}
        csv_path = self.root / CSV_NAME
        if not self.root.is_dir():
            raise DataError(f"{self.root}: attribute image folder not found")
        if not csv_path.is_file():
            raise DataError(f"{csv_path}: not found; an attribute folder needs {CSV_NAME} with the header "
                            f"file,{','.join(self.attributes)}")
        files, labels = self._read_csv(csv_path)
        test = choose_test_ids(files, test_fraction, salt=f"attributes:{seed}")
        keep = [k for k, f in enumerate(files) if (f in test) == (self.split == "test")]
        if not keep:
            raise DataError(f"{csv_path}: no images in the {self.split} split ({len(files)} rows, "
                            f"test_fraction {test_fraction})")
        self.files = [files[k] for k in keep]
        self.labels = torch.tensor([labels[k] for k in keep], dtype=torch.int64).view(len(keep), len(self.attributes))

    def _read_csv(self, csv_path: Path) -> tuple[list[str], list[list[int]]]:
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{csv_path}: unreadable ({exc.__class__.__name__}: {exc})") from exc
        if not rows:
            raise DataError(f"{csv_path}: empty; expected the header file,{','.join(self.attributes)}")
        header = [h.strip() for h in rows[0]]
        expected = ["file", *self.attributes]
        if not header or header[0] != "file":
            raise DataError(f"{csv_path}: the first column must be 'file', got header {header}; expected "
                            f"{','.join(expected)}")
        columns = header[1:]
        missing = [a for a in self.attributes if a not in columns]
        extra = [c for c in columns if c not in self.attributes]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if missing or extra or repeated:
            parts = [f"missing column(s) {missing}" if missing else "",
                     f"unexpected column(s) {extra}" if extra else "",
                     f"repeated column(s) {repeated}" if repeated else ""]
            raise DataError(f"{csv_path}: header {header}: {'; '.join(p for p in parts if p)}; the model's "
                            f"attributes need the header {','.join(expected)}")
        order = [columns.index(a) + 1 for a in self.attributes]
        files: list[str] = []
        labels: list[list[int]] = []
        seen: dict[str, int] = {}
        for line, row in enumerate(rows[1:], start=2):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{csv_path}, row {line}"
            if len(row) != len(header):
                raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}")
            name = row[0].strip()
            if not name:
                raise DataError(f"{where}: empty file name")
            if name in seen:
                raise DataError(f"{where}: file {name!r} is listed again (first on row {seen[name]})")
            seen[name] = line
            path = self.root / name
            # The CSV names files of this folder only: an absolute path or ``..`` could read any image on disk.
            # The check is on the written path (normalised), so a symlink the folder's owner put inside it works.
            rel = os.path.normpath(name)
            if Path(name).is_absolute() or Path(name).drive or rel == ".." or rel.startswith(".." + os.sep):
                raise DataError(f"{where}: file {name!r} is outside the data folder {self.root} (give a path "
                                "relative to it, without '..')")
            if not path.is_file():
                raise DataError(f"{where}: image file {name!r} not found in {self.root}")
            if path.suffix.lower() not in _IMAGE_SUFFIXES:
                raise DataError(f"{where}: {name!r} is not an image file name (expected one of {_IMAGE_SUFFIXES})")
            index = []
            for attr, col in zip(self.attributes, order):
                value = row[col].strip()
                values = self.attributes[attr]
                if value not in values:
                    raise DataError(f"{where}: file {name!r}: unknown {attr!r} value {value!r}; valid values: "
                                    f"{values}")
                index.append(values.index(value))
            files.append(name)
            labels.append(index)
        if not files:
            raise DataError(f"{csv_path}: no image rows under the header")
        return files, labels

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as float32 ``(C, size, size)`` in [-1, 1]."""
        from .lookbook import squarify

        image = load_image(self.root / self.files[i], "RGB")
        image = squarify(image)
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.LANCZOS)
        if self.channels == 1:
            image = image.convert("L")
        return array_to_tensor(np.asarray(image))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.load(i), "attributes": self.labels[i].clone()}
