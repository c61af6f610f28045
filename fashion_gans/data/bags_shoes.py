"""Handbags <-> shoes (style matching data): the iGAN ``*_64.hdf5`` files, and a synthetic version of them.

Real files (thesis §2.5): ``handbags_64.hdf5`` (iGAN, ~137K Amazon handbags) and ``shoes_64.hdf5``
(UT-Zappos50K, 50,025 shoes), each with one dataset ``imgs`` of ``uint8`` images shaped ``(N, 64, 64, 3)``
(HWC), centred on white.

The two domains are unpaired.  The thesis paired item ``i`` with ``(handbag[i % Nh], shoe[i % Ns])``,
so every handbag kept the same shoe forever and, with length ``min(Nh, Ns)``, about 87K handbags were
never seen.  Here the dataset is as long as the larger domain, the smaller domain's partner of every
item is re-drawn each epoch (:meth:`BagsShoesDataset.set_epoch`) from whole permutations, so over one
epoch every image of both domains is seen.

:func:`write_synthetic_bags_shoes` renders handbags and shoes from the synthetic world with styles
(colour, pattern, material) shared across the two domains and writes them in the iGAN format, plus a
side-car ``bags_shoes_attributes.json`` recording which handbags and shoes share a style: the known
correspondence that no real dataset has, used to score whether a translated shoe kept its style.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from .io import DataError, array_to_tensor, atomic_path
from .hf import lazy_hf_features
from .sources import HubImageRows, LazyH5Array
from .splits import hash_split

__all__ = [
    "BAGS_FILE",
    "SHOES_FILE",
    "ATTRIBUTES_FILE",
    "DOMAINS",
    "HF_FEATURES",
    "UnpairedPartners",
    "read_imgs_file",
    "write_synthetic_bags_shoes",
    "load_bags_shoes_attributes",
    "BagsShoesDataset",
    "iter_hf_records",
]

BAGS_FILE = "handbags_64.hdf5"
SHOES_FILE = "shoes_64.hdf5"
ATTRIBUTES_FILE = "bags_shoes_attributes.json"
H5_KEY = "imgs"
DOMAINS = ("handbag", "shoe")


def _hf_features():
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "domain": datasets.ClassLabel(names=list(DOMAINS)),
            "index": datasets.Value("int64"),
            "style_id": datasets.Value("int64"),
        }
    )


__getattr__ = lazy_hf_features(__name__, _hf_features)  # HF_FEATURES, built on first access


# --------------------------------------------------------------------------------------------- pairing


class UnpairedPartners:
    """Per-epoch pairing of two unpaired domains of sizes ``n_a`` and ``n_b``.

    The pairing is ``L = max(n_a, n_b)`` long.  The first domain is visited in index order when it is the
    larger one (the data loader shuffles); the second domain, and a smaller first domain, through
    concatenated random permutations drawn from ``(seed, epoch)``, so each of their images appears
    ``floor`` or ``ceil`` of ``L / n`` times per epoch and the partners change between epochs, also when
    both domains have the same size.  Deterministic in ``(seed, epoch)``.

    Thesis erratum: the thesis paired item ``i`` with ``(a[i % n_a], b[i % n_b])``, so every image kept
    the same partner in every epoch.
    """

    def __init__(self, n_a: int, n_b: int, seed: int = 0) -> None:
        if n_a < 1 or n_b < 1:
            raise ValueError(f"both domains need at least one image, got {n_a} and {n_b}")
        self.n_a, self.n_b, self.seed = int(n_a), int(n_b), int(seed)
        self.length = max(self.n_a, self.n_b)
        self._epoch: int | None = None
        self._a = self._b = np.empty(0, dtype=np.int64)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        epoch = int(epoch)
        if epoch == self._epoch:
            return
        rng = np.random.default_rng([self.seed, epoch, 0x5B1E])
        self._a = self._cover(self.n_a, rng, in_order=True)
        # The second domain is always drawn, also when it is as large as the first (equal sizes would
        # otherwise pair a[i] with b[i] in every epoch).
        self._b = self._cover(self.n_b, rng, in_order=False)
        self._epoch = epoch

    @property
    def epoch(self) -> int:
        return int(self._epoch or 0)

    def _cover(self, n: int, rng: np.random.Generator, in_order: bool) -> np.ndarray:
        if in_order and n == self.length:
            return np.arange(n, dtype=np.int64)
        reps = -(-self.length // n)
        return np.concatenate([rng.permutation(n) for _ in range(reps)])[: self.length]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[int, int]:
        if not -self.length <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} pairs")
        return int(self._a[i]), int(self._b[i])


# --------------------------------------------------------------------------------------------- files


def read_imgs_file(path: str | os.PathLike, *, in_memory: bool = False):
    """Open an iGAN-style hdf5 file and validate its ``imgs`` dataset (uint8, ``(N, H, W, 3)``, square).

    Returns ``(h5py.File or None, array-like)``: with ``in_memory`` the file is closed and a numpy array
    returned.  Raises :class:`DataError` naming the file for anything else.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: hdf5 file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable hdf5 file ({exc})") from exc
    try:
        if H5_KEY not in f:
            raise DataError(f"{path}: missing key {H5_KEY!r}; keys found: {sorted(f.keys())}")
        ds = f[H5_KEY]
        if not isinstance(ds, h5py.Dataset):
            raise DataError(f"{path}: {H5_KEY!r} is a group, expected an image array")
        if ds.dtype != np.uint8:
            raise DataError(f"{path}: {H5_KEY!r} has dtype {ds.dtype}, expected uint8 images")
        if ds.ndim != 4 or ds.shape[3] != 3 or ds.shape[1] != ds.shape[2] or ds.shape[0] == 0:
            raise DataError(
                f"{path}: {H5_KEY!r} has shape {ds.shape}, expected (N, S, S, 3) uint8 HWC images with N > 0"
            )
        if in_memory:
            arr = ds[()]
            f.close()
            return None, arr
        return f, ds
    except BaseException:
        f.close()
        raise


def _write_imgs(path: Path, images: np.ndarray) -> None:
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            n, h, w, _ = images.shape
            f.create_dataset(H5_KEY, data=images, chunks=(min(n, 64), h, w, 3))


def _assign_styles(n: int, n_styles: int, rng: np.random.Generator) -> np.ndarray:
    """Style id per image: every style used (when n >= n_styles), then shuffled."""
    ids = np.arange(n) % n_styles
    return rng.permutation(ids)


def write_synthetic_bags_shoes(
    root: str | os.PathLike,
    world,
    n_bags: int,
    n_shoes: int,
    size: int = 64,
    seed: int = 0,
    *,
    n_styles: int | None = None,
    n_variants: int = 4,
) -> tuple[Path, Path]:
    """Render ``n_bags`` handbags and ``n_shoes`` shoes from ``world`` and write the iGAN files.

    Writes ``root/handbags_64.hdf5`` and ``root/shoes_64.hdf5`` (key ``imgs``, ``uint8 (N, size, size, 3)``;
    the names keep ``_64`` whatever ``size`` is, as the loaders look for them) and
    ``root/bags_shoes_attributes.json``.  Styles ``0 .. n_styles-1`` are shared by both domains, each drawn
    in several shapes (``world``'s ``ACCESSORY_SHAPES``) and variants.  Every file is written atomically.
    Returns ``(bags_path, shoes_path)``.
    """
    from . import synthetic

    if n_bags < 1 or n_shoes < 1:
        raise ValueError(f"need at least one handbag and one shoe, got {n_bags} and {n_shoes}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if n_styles is None:
        n_styles = max(1, min(32, min(n_bags, n_shoes) // 4))
    rng = np.random.default_rng([seed, 0xBA65])
    styles = [world.accessory_style(j) for j in range(n_styles)]
    shapes = {kind: tuple(synthetic.ACCESSORY_SHAPES[kind]) for kind in ("bag", "shoe")}

    records: dict[str, list[dict[str, Any]]] = {}
    arrays: dict[str, np.ndarray] = {}
    for kind, n in (("bag", n_bags), ("shoe", n_shoes)):
        style_ids = _assign_styles(n, n_styles, rng)
        shape_ids = rng.integers(len(shapes[kind]), size=n)
        variants = rng.integers(n_variants, size=n)
        images = np.empty((n, size, size, 3), dtype=np.uint8)
        render = world.render_bag if kind == "bag" else world.render_shoe
        recs = []
        for i in range(n):
            shape = shapes[kind][int(shape_ids[i])]
            img = np.asarray(
                render(styles[int(style_ids[i])], shape, (size, size), variant=int(variants[i])), dtype=np.uint8
            )
            if img.shape != (size, size, 3):
                raise DataError(f"synthetic world rendered a {kind} of shape {img.shape}, expected {(size, size, 3)}")
            images[i] = img
            recs.append({"style_id": int(style_ids[i]), "shape": shape, "variant": int(variants[i])})
        records[kind] = recs
        arrays[kind] = images

    bags_path, shoes_path = root / BAGS_FILE, root / SHOES_FILE
    _write_imgs(bags_path, arrays["bag"])
    _write_imgs(shoes_path, arrays["shoe"])

    correspondence = {
        str(j): {
            "handbags": [i for i, r in enumerate(records["bag"]) if r["style_id"] == j],
            "shoes": [i for i, r in enumerate(records["shoe"]) if r["style_id"] == j],
        }
        for j in range(n_styles)
    }
    meta = {
        "format": "synthetic iGAN handbags/shoes",
        "seed": int(seed),
        "size": int(size),
        "files": {"handbags": BAGS_FILE, "shoes": SHOES_FILE},
        "styles": {str(j): styles[j].attributes() for j in range(n_styles)},
        "handbags": records["bag"],
        "shoes": records["shoe"],
        "correspondence": correspondence,
    }
    with atomic_path(root / ATTRIBUTES_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return bags_path, shoes_path


def load_bags_shoes_attributes(root: str | os.PathLike) -> dict[str, Any]:
    """Read ``bags_shoes_attributes.json`` (synthetic data only) with keys ``styles``, ``handbags``,
    ``shoes`` (one ``{style_id, shape, variant}`` per image) and ``correspondence``
    (style id -> ``{"handbags": [...], "shoes": [...]}``)."""
    path = Path(root) / ATTRIBUTES_FILE
    if not path.is_file():
        raise DataError(f"{path}: attributes file not found (only synthetic data has one)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON ({exc})") from exc
    for key in ("styles", "handbags", "shoes", "correspondence"):
        if key not in meta:
            raise DataError(f"{path}: missing key {key!r}; keys found: {sorted(meta)}")
    return meta


# --------------------------------------------------------------------------------------------- dataset


def _resolve_paths(root_or_paths) -> tuple[Path, Path]:
    if isinstance(root_or_paths, (tuple, list)):
        if len(root_or_paths) != 2:
            raise ValueError("expected a root directory or a (handbags_path, shoes_path) pair")
        return Path(root_or_paths[0]), Path(root_or_paths[1])
    root = Path(root_or_paths)
    return root / BAGS_FILE, root / SHOES_FILE


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.array(Image.fromarray(img).resize((size, size), Image.BICUBIC))


class _H5Images:
    """The images of one validated ``imgs`` array (fork-safe, see :class:`LazyH5Array`); ``get(k)`` reads
    the ``k``-th image of ``indices``."""

    def __init__(self, path: Path, indices: np.ndarray, in_memory: bool) -> None:
        self.path = path
        f, arr = read_imgs_file(path, in_memory=in_memory)
        self.total = int(arr.shape[0])
        self.image_size = int(arr.shape[1])
        if f is not None:
            f.close()
        self._imgs = LazyH5Array(path, H5_KEY, arr if f is None else None)
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def get(self, k: int) -> tuple[np.ndarray, int]:
        index = int(self.indices[k])
        return self._imgs[index], index


class BagsShoesDataset(Dataset):
    """Unpaired handbags and shoes.

    Item ``i`` is ``{"bag": (3, size, size), "shoe": (3, size, size), "bag_index": int, "shoe_index": int}``
    with images in ``[-1, 1]`` and indices into the hdf5 files.  The length is the larger domain's
    split size; the smaller domain's partners are re-drawn every epoch (call :meth:`set_epoch` at the
    start of each epoch; with ``persistent_workers=True`` in a ``DataLoader`` the workers keep the epoch
    they were started with, so leave that off).  Splits are deterministic hashes of each image's index,
    separate per domain and disjoint (no identities exist to group by).
    """

    def __init__(
        self,
        root: str | os.PathLike | tuple[str | os.PathLike, str | os.PathLike],
        split: str = "train",
        size: int = 64,
        *,
        seed: int = 0,
        test_fraction: float = 0.1,
        in_memory: bool = False,
    ) -> None:
        bags_path, shoes_path = _resolve_paths(root)
        # Validate both files up front, so a wrong file fails at construction naming itself.
        n_bags = _count(bags_path)
        n_shoes = _count(shoes_path)
        bag_idx = np.flatnonzero(hash_split(n_bags, split, test_fraction, salt="handbags"))
        shoe_idx = np.flatnonzero(hash_split(n_shoes, split, test_fraction, salt="shoes"))
        self._init(
            _H5Images(bags_path, bag_idx, in_memory), _H5Images(shoes_path, shoe_idx, in_memory), split, size, seed
        )

    def _init(self, bags, shoes, split: str, size: int, seed: int) -> None:
        if len(bags) == 0 or len(shoes) == 0:
            raise DataError(f"split {split!r} is empty: {len(bags)} handbags, {len(shoes)} shoes")
        self.bags, self.shoes = bags, shoes
        self.split, self.size, self.seed = split, int(size), int(seed)
        self.partners = UnpairedPartners(len(bags), len(shoes), seed=seed)

    @classmethod
    def from_hf(
        cls,
        repo_id_or_path: str | os.PathLike,
        split: str = "train",
        size: int = 64,
        *,
        seed: int = 0,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> "BagsShoesDataset":
        """The same dataset read from a Hugging Face dataset written from :func:`iter_hf_records`."""
        from .hf import load_hf_split

        ds = load_hf_split(repo_id_or_path, split, revision=revision, cache_dir=cache_dir,
                           required_columns=_hf_features())
        cols = ds.select_columns(["domain", "index"])[:]
        domains = np.asarray(cols["domain"])
        indices = np.asarray(cols["index"], dtype=np.int64)
        parts = []
        for d in range(len(DOMAINS)):
            rows = np.flatnonzero(domains == d)
            rows = rows[np.argsort(indices[rows], kind="stable")]
            parts.append(HubImageRows(ds, rows, indices[rows]))
        self = cls.__new__(cls)
        self._init(parts[0], parts[1], split, size, seed)
        return self

    def set_epoch(self, epoch: int) -> None:
        """Re-draw the partners of the smaller domain for ``epoch``."""
        self.partners.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.partners)

    def __getitem__(self, i: int) -> dict[str, Any]:
        a, b = self.partners[i]
        bag, bag_index = self.bags.get(a)
        shoe, shoe_index = self.shoes.get(b)
        return {
            "bag": array_to_tensor(_resize(np.asarray(bag), self.size)),
            "shoe": array_to_tensor(_resize(np.asarray(shoe), self.size)),
            "bag_index": bag_index,
            "shoe_index": shoe_index,
        }


def _count(path: Path) -> int:
    f, ds = read_imgs_file(path)
    try:
        return int(ds.shape[0])
    finally:
        f.close()


def iter_hf_records(
    root: str | os.PathLike | tuple[str | os.PathLike, str | os.PathLike],
    split: str = "train",
    *,
    test_fraction: float = 0.1,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Records for :data:`HF_FEATURES`: every handbag of ``split`` then every shoe, in file order.

    ``style_id`` comes from the synthetic side-car when present, else -1.  ``limit`` caps each domain.
    """
    bags_path, shoes_path = _resolve_paths(root)
    styles: dict[str, list[int]] = {}
    side = bags_path.parent / ATTRIBUTES_FILE
    if side.is_file():
        meta = load_bags_shoes_attributes(bags_path.parent)
        styles = {"handbag": [r["style_id"] for r in meta["handbags"]], "shoe": [r["style_id"] for r in meta["shoes"]]}
    for d, (domain, path, salt) in enumerate((("handbag", bags_path, "handbags"), ("shoe", shoes_path, "shoes"))):
        f, data = read_imgs_file(path)
        try:
            idx = np.flatnonzero(hash_split(int(data.shape[0]), split, test_fraction, salt=salt))
            if limit is not None:
                idx = idx[:limit]
            for i in idx:
                sid = styles.get(domain)
                yield {
                    "image": np.asarray(data[int(i)]),
                    "domain": d,
                    "index": int(i),
                    "style_id": int(sid[i]) if sid is not None and i < len(sid) else -1,
                }
        finally:
            f.close()
