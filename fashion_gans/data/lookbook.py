"""LookBook (Yoo et al., "Pixel-Level Domain Transfer", ECCV 2016), optionally augmented with DeepFashion In-shop
flat items: writer and garment-extraction loader (PixelDTGAN data).

On-disk format of the original release: one flat folder (``<root>/ImgHQ/``; ``<root>/`` itself and ``Img/``,
``data/`` are searched too) of ``PID<pid 6 digits>_CLEAN<0|1>_IID<iid 6 digits>.jpg``. ``CLEAN1`` is the product
photo of garment ``pid`` alone on white, ``CLEAN0`` a photo of a person wearing it; ``iid`` numbers the images.
Real person photos are often not square. The thesis' processed layout ``Img/id_XXXXXXXX/{0,1,...}.jpg`` +
``flat.jpg`` is read too. The synthetic writer adds ``synthetic_attributes.json`` (what each image shows).

The In-shop augmentation (thesis §2.4) adds every In-shop product group that has ``*_flat.jpg`` shots and posed
images of people wearing it: each posed image pairs with the group's flat shot(s).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from .inshop import (
    PARTITION_FILE,
    TRAINING_VIEWS,
    _img_dir,
    _scan_images,
    _to_jsonable,
    inshop_product_splits,
    read_partition,
    resize_crop,
)
from .io import (
    IMAGE_CHECKS,
    DataError,
    array_to_tensor,
    atomic_directory,
    find_unreadable_images,
    load_image,
    save_image,
)
from .hf import lazy_hf_features
from .splits import product_split

__all__ = [
    "ATTRIBUTES_FILE",
    "LOOKBOOK_NAME_RE",
    "LookBookWriteConfig",
    "LookBookWriteSummary",
    "LookBookDataset",
    "HF_FEATURES",
    "iter_hf_records",
    "lookbook_name",
    "lookbook_product_splits",
    "parse_lookbook_name",
    "squarify",
    "write_synthetic_lookbook",
]

ATTRIBUTES_FILE = "synthetic_attributes.json"
LOOKBOOK_NAME_RE = re.compile(r"^PID(?P<pid>\d{6})_CLEAN(?P<clean>[01])_IID(?P<iid>\d{6})\.jpg$")
SPLITS = ("train", "test")
_IMAGE_DIRS = ("ImgHQ", "Img", "data", ".")


def lookbook_name(pid: int, clean: bool, iid: int) -> str:
    """``PID000012_CLEAN1_IID000345.jpg``; ``clean`` marks the product photo."""
    return f"PID{pid:06d}_CLEAN{int(bool(clean))}_IID{iid:06d}.jpg"


def parse_lookbook_name(name: str) -> tuple[int, bool, int]:
    """``PID000012_CLEAN1_IID000345.jpg`` -> (12, True, 345)."""
    m = LOOKBOOK_NAME_RE.match(name)
    if m is None:
        raise DataError(f"{name}: not a LookBook file name (PID<6 digits>_CLEAN<0|1>_IID<6 digits>.jpg)")
    return int(m["pid"]), m["clean"] == "1", int(m["iid"])


def squarify(image: Image.Image, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Pad ``image`` centred onto a square white canvas (its larger side).

    The thesis' scraper did this to the dataset files in place; here it is a load-time transform and the
    dataset is never modified.
    """
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image.convert("RGB"), ((side - w) // 2, (side - h) // 2))
    return canvas


# ----------------------------------------------------------------------------------------------------------------
# Writer


@dataclass(frozen=True)
class LookBookWriteConfig:
    """What :func:`write_synthetic_lookbook` renders.

    products: number of garments (upper-body tops of world persons, dresses skipped as in LookBook).
    persons_per_product: CLEAN0 photos per product, each a different person in a different pose on a "scene"
        background (LookBook has about 8).
    size: (H, W) of flat shots and square person photos.
    nonsquare_fraction: share of person photos rendered portrait (W = 3/4 H), as many real ones are.
    first_identity: world identities used from here on (keep clear of the In-shop ones).
    """

    products: int = 20
    persons_per_product: int = 4
    size: tuple[int, int] = (256, 256)
    nonsquare_fraction: float = 0.25
    first_identity: int = 100_000
    jpeg_quality: int = 95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.products < 2:
            raise ValueError(f"products must be >= 2, got {self.products}")
        if self.persons_per_product < 1:
            raise ValueError(f"persons_per_product must be >= 1, got {self.persons_per_product}")
        if len(self.size) != 2 or min(self.size) < 16:
            raise ValueError(f"size must be (H, W) with both >= 16, got {self.size}")
        if not 0.0 <= self.nonsquare_fraction <= 1.0:
            raise ValueError(f"nonsquare_fraction must be in [0, 1], got {self.nonsquare_fraction}")


@dataclass
class LookBookWriteSummary:
    root: Path
    products: int
    person_images: int
    product_images: int

    def __str__(self) -> str:
        return (f"LookBook: {self.products} products, {self.person_images} person + {self.product_images} product "
                f"images -> {self.root}")


def write_synthetic_lookbook(
    root: str | os.PathLike, world: Any, config: LookBookWriteConfig | None = None, *, overwrite: bool = False
) -> LookBookWriteSummary:
    """Render the synthetic world as a LookBook release under ``root/ImgHQ`` (atomically)."""
    cfg = config or LookBookWriteConfig()
    size = (int(cfg.size[0]), int(cfg.size[1]))
    portrait = (size[0], max(16, int(round(size[1] * 0.75))))
    rng = np.random.default_rng([cfg.seed & 0xFFFFFFFF, 0x100C])
    attributes: dict[str, dict] = {}
    iid = 0
    n_person = 0
    with atomic_directory(root, overwrite=overwrite) as tmp:
        folder = tmp / "ImgHQ"
        folder.mkdir()
        candidate = cfg.first_identity
        wearer = cfg.first_identity + 1_000_000
        for pid in range(cfg.products):
            # The product: the top of the next world person not wearing a dress (LookBook has upper-body garments).
            while True:
                base = world.person(candidate)
                candidate += 1
                if base.bottom is not None and base.top.kind != "dress":
                    break
            garment = base.top
            name = lookbook_name(pid, True, iid)
            save_image(world.render_flat(garment, size), folder / name, quality=cfg.jpeg_quality)
            attributes[name] = {"pid": pid, "clean": 1, "iid": iid, "product_identity": base.identity,
                                "garment": _to_jsonable(garment.attributes())}
            iid += 1
            for j in range(cfg.persons_per_product):
                person = world.person(wearer)
                wearer_id = wearer
                wearer += 1
                bottom = person.bottom if person.bottom is not None else base.bottom
                person = dataclasses.replace(person, top=garment, bottom=bottom)
                pose = world.pose(wearer_id, j)
                hw = portrait if rng.random() < cfg.nonsquare_fraction else size
                render = world.render_person(person, pose, hw, background="scene", background_seed=iid)
                name = lookbook_name(pid, False, iid)
                save_image(render.image, folder / name, quality=cfg.jpeg_quality)
                attributes[name] = {"pid": pid, "clean": 0, "iid": iid, "product_identity": base.identity,
                                    "wearer_identity": wearer_id, "pose": pose.name, "view": pose.view,
                                    "size": list(hw), "keypoints": np.asarray(render.keypoints).round(2).tolist(),
                                    "person": _to_jsonable(person.attributes()),
                                    "garment": _to_jsonable(garment.attributes())}
                iid += 1
                n_person += 1
        meta = {"dataset": "synthetic LookBook", "world_seed": int(getattr(world, "seed", 0)),
                "config": _to_jsonable(dataclasses.asdict(cfg)), "images": attributes}
        (tmp / ATTRIBUTES_FILE).write_text(json.dumps(meta, indent=1))
    return LookBookWriteSummary(root=Path(root), products=cfg.products, person_images=n_person,
                                product_images=cfg.products)


# ----------------------------------------------------------------------------------------------------------------
# Loader


@dataclass
class _Product:
    product_id: str
    source: str  # "lookbook" | "inshop"
    persons: list[str]  # keys (paths relative to their root, prefixed by the source)
    flats: list[str]


def lookbook_product_splits(product_ids: Sequence[str], test_percent: float) -> dict[str, str]:
    """Product id -> "train"/"test": exactly ``round(test_percent / 100 * n)`` of the ``n`` LookBook products, chosen
    by a seeded hash of the product id; with ``n >= 4`` each split gets at least two products, as the unassociated
    negatives need a second product in the split."""
    return product_split(product_ids, test_percent / 100.0, salt="lookbook", min_per_split=2)


def _scan_lookbook(root: Path) -> dict[str, _Product]:
    """Products of a LookBook root, in either the original flat layout or the thesis' ``Img/id_*`` layout."""
    products: dict[str, _Product] = {}
    for sub in _IMAGE_DIRS:
        folder = root / sub if sub != "." else root
        if not folder.is_dir():
            continue
        for name in sorted(os.listdir(folder)):
            m = LOOKBOOK_NAME_RE.match(name)
            if m is None:
                continue
            pid = f"lookbook:PID{m['pid']}"
            prod = products.setdefault(pid, _Product(pid, "lookbook", [], []))
            key = str((folder / name).relative_to(root).as_posix())
            (prod.flats if m["clean"] == "1" else prod.persons).append(key)
        if products:
            return products
    img = root / "Img"
    if img.is_dir():  # thesis layout: Img/id_XXXXXXXX/{0..n}.jpg + flat.jpg
        for item in sorted(p for p in img.iterdir() if p.is_dir() and p.name.startswith("id_")):
            names = sorted(os.listdir(item))
            flats = [f"Img/{item.name}/{n}" for n in names if n == "flat.jpg"]
            persons = [f"Img/{item.name}/{n}" for n in names if re.fullmatch(r"\d+\.jpg", n)]
            products[f"lookbook:{item.name}"] = _Product(f"lookbook:{item.name}", "lookbook", persons, flats)
    return products


def _scan_inshop_flats(root: Path, views: Sequence[str], test_percent: float) -> dict[str, tuple[_Product, str]]:
    """In-shop product groups with ``*_flat.jpg`` shots and posed images -> (product, split)."""
    part_path = root / PARTITION_FILE
    partition = read_partition(part_path) if part_path.is_file() else None
    groups: dict[tuple[str, str], _Product] = {}
    splits: dict[tuple[str, str], str] = {}
    images = _scan_images(root)
    # The split is over every product of the release, as in InShopPoseDataset, so both loaders agree.
    split_of = None if partition is not None else inshop_product_splits(
        {p.item_id for p in images.values()}, test_percent)
    for key, p in images.items():
        if p.view != "flat" and p.view not in views:
            continue
        if partition is not None:
            if key not in partition:
                continue
            split = "train" if partition[key][1] == "train" else "test"
        else:
            split = split_of[p.item_id]
        pid = f"inshop:{p.item_id}/{p.group}"
        prod = groups.setdefault(p.product_group, _Product(pid, "inshop", [], []))
        splits[p.product_group] = split
        (prod.flats if p.view == "flat" else prod.persons).append("inshop/" + key)
    return {g.product_id: (g, splits[k]) for k, g in groups.items() if g.flats and g.persons}


class LookBookDataset(torch.utils.data.Dataset):
    """Garment-extraction pairs (person photo -> product photo) for PixelDTGAN.

    Every person photo of a product pairs with each of its product photos. ``inshop_root`` adds the In-shop
    groups that have ``*_flat.jpg`` shots (thesis §2.4). The split is by product: LookBook products by an exact
    ``test_percent`` share chosen by a seeded hash of the product id (:func:`lookbook_product_splits`; at least two
    test products when there are four or more), In-shop products by ``Eval/list_eval_partition.txt`` (else the same
    product-id hash as :class:`~fashion_gans.data.inshop.InShopPoseDataset`), so no garment is in both splits.

    Items: ``person_image``, ``product_image``, ``unassociated_product_image`` (3,S,S) in [-1,1]; ``product_id``,
    ``unassociated_product_id``, ``person_path``, ``product_path``, ``unassociated_product_path``, ``source``.
    The unassociated product (the negative for PixelDTGAN's D_A) is a product photo of a *different* product of
    the same split, drawn from (``seed``, epoch, index); call :meth:`set_epoch` each epoch to draw new ones.
    The thesis took the previous batch's targets instead, which can contain the very garment of the current pair.

    Non-square photos are padded onto a white square at load time (``squarify``), not rewritten on disk.
    Unreadable images are found when the dataset is built (``check_images="header"``, which also finds truncated
    JPEG/PNG files, or ``"decode"``, a full decode): their pairs are dropped,
    counted (``n_corrupt_images``, ``n_skipped_pairs``) and one warning gives the count.
    """

    def __init__(
        self,
        root: str | os.PathLike | None,
        split: str = "train",
        size: int = 64,
        inshop_root: str | os.PathLike | None = None,
        *,
        test_percent: float = 10.0,
        seed: int = 0,
        squarify: bool = True,
        inshop_views: Sequence[str] = TRAINING_VIEWS,
        check_images: str = "header",
        max_corrupt_fraction: float = 0.05,
        _hf_dataset: Any = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if check_images not in IMAGE_CHECKS:
            raise ValueError(f"check_images must be one of {IMAGE_CHECKS}, got {check_images!r}")
        self.split = split
        self.size = int(size)
        self.seed = int(seed)
        self.squarify = squarify
        self.epoch = 0
        self.n_corrupt_images = 0
        self.n_skipped_pairs = 0
        self.corrupt_images: list[str] = []
        self._hf = _hf_dataset
        self._hf_rows: dict[str, int] = {}
        self.root = None if root is None else Path(root)
        self.inshop_root = None if inshop_root is None else Path(inshop_root)
        products: list[_Product] = []
        if _hf_dataset is not None:
            products = self._index_hf(_hf_dataset)
        else:
            if self.root is None and self.inshop_root is None:
                raise ValueError("give a LookBook root, an In-shop root or both")
            if self.root is not None:
                if not self.root.is_dir():
                    raise DataError(f"{self.root}: LookBook root folder not found")
                found = _scan_lookbook(self.root)
                if not found:
                    raise DataError(f"{self.root}: no LookBook images (PID<6 digits>_CLEAN<0|1>_IID<6 digits>.jpg "
                                    "in ImgHQ/, or Img/id_*/flat.jpg)")
                split_of = lookbook_product_splits(list(found), test_percent)
                products += [p for p in found.values() if split_of[p.product_id] == split]
            if self.inshop_root is not None:
                if not self.inshop_root.is_dir():
                    raise DataError(f"{self.inshop_root}: In-shop root folder not found")
                _img_dir(self.inshop_root)
                products += [p for p, s in _scan_inshop_flats(self.inshop_root, inshop_views, test_percent).values()
                             if s == split]
        # Thesis scraper rule: a product needs its product photo and at least one person photo.
        products = [p for p in products if p.flats and p.persons]
        if check_images != "none" and _hf_dataset is None:
            products = self._drop_corrupt(products, check_images, max_corrupt_fraction)
        if len(products) < 2:
            raise DataError(f"{self.root or self.inshop_root} ({split}): {len(products)} usable products; "
                            "unassociated negatives need at least 2")
        self.products = products
        self.pairs: list[tuple[int, str, str]] = [
            (k, person, flat) for k, p in enumerate(products) for person in p.persons for flat in p.flats
        ]

    # -- indexing ------------------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        if key.startswith("inshop/"):
            return self.inshop_root / key[len("inshop/"):]
        return self.root / key

    def _drop_corrupt(self, products: list[_Product], check: str, max_fraction: float) -> list[_Product]:
        keys = [key for p in products for key in p.persons + p.flats]
        found = find_unreadable_images({key: (self._path(key),) for key in keys}, check=check,
                                       max_fraction=max_fraction, where=self.root or self.inshop_root)
        if not found:
            return products
        bad = found.bad
        before = sum(len(p.persons) * len(p.flats) for p in products)
        kept = [_Product(p.product_id, p.source, [k for k in p.persons if k not in bad],
                         [k for k in p.flats if k not in bad]) for p in products]
        kept = [p for p in kept if p.persons and p.flats]
        self.n_corrupt_images = len(bad)
        self.corrupt_images = list(found.problems)
        self.n_skipped_pairs = before - sum(len(p.persons) * len(p.flats) for p in kept)
        found.warn(f"LookBook ({self.split})", self.n_skipped_pairs, stacklevel=3)
        return kept

    def _index_hf(self, ds: Any) -> list[_Product]:
        meta = ds.select_columns(["path", "role", "product_id", "source"])
        products: dict[str, _Product] = {}
        for row, item in enumerate(meta):
            prod = products.setdefault(item["product_id"], _Product(item["product_id"], item["source"], [], []))
            (prod.flats if item["role"] == "product" else prod.persons).append(item["path"])
            self._hf_rows[item["path"]] = row
        return list(products.values())

    @classmethod
    def from_hf(cls, repo_id_or_path: str | os.PathLike, split: str = "train", *, revision: str | None = None,
                **kwargs: Any) -> "LookBookDataset":
        """Load from a Hub dataset written from :func:`iter_hf_records` (same items as from the files)."""
        from .hf import load_hf_split

        ds = load_hf_split(str(repo_id_or_path), split, revision=revision, required_columns=_hf_features())
        kwargs.pop("check_images", None)
        return cls(None, split, _hf_dataset=ds, check_images="none", **kwargs)

    # -- items ---------------------------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Draw new unassociated negatives (they depend on ``(seed, epoch, index)``)."""
        self.epoch = int(epoch)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        sources = sorted({p.source for p in self.products})
        return (f"{type(self).__name__}(split={self.split!r}, products={len(self.products)}, pairs={len(self.pairs)}, "
                f"sources={sources}, size={self.size}, skipped_pairs={self.n_skipped_pairs})")

    def _load(self, key: str) -> torch.Tensor:
        if self._hf is not None:
            img = self._hf[self._hf_rows[key]]["image"]
            if img is None:
                raise DataError(f"{key}: Hub dataset row has no image")
            img = img.convert("RGB")
        else:
            img = load_image(self._path(key), "RGB")
        if self.squarify:
            img = squarify(img).resize((self.size, self.size), Image.BILINEAR)
        else:
            img = resize_crop(img, (self.size, self.size), Image.BILINEAR)
        return array_to_tensor(np.array(img))

    def unassociated(self, index: int) -> tuple[int, str]:
        """(product index, product photo key) of the negative for pair ``index`` in the current epoch."""
        k = self.pairs[index][0]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch & 0xFFFFFFFF, index])
        other = int(rng.integers(len(self.products) - 1))
        other += other >= k  # any product but this pair's own
        flats = self.products[other].flats
        return other, flats[int(rng.integers(len(flats)))]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self.pairs) <= index < len(self.pairs):
            raise IndexError(index)
        index %= len(self.pairs)
        k, person, flat = self.pairs[index]
        other, neg = self.unassociated(index)
        return {
            "person_image": self._load(person),
            "product_image": self._load(flat),
            "unassociated_product_image": self._load(neg),
            "product_id": self.products[k].product_id,
            "unassociated_product_id": self.products[other].product_id,
            "person_path": person,
            "product_path": flat,
            "unassociated_product_path": neg,
            "source": self.products[k].source,
        }


# ----------------------------------------------------------------------------------------------------------------
# Hub dataset records


def _hf_features() -> Any:
    import datasets

    return datasets.Features({
        "image": datasets.Image(),
        "role": datasets.Value("string"),  # "person" | "product"
        "product_id": datasets.Value("string"),
        "path": datasets.Value("string"),
        "source": datasets.Value("string"),  # "lookbook" | "inshop"
    })


__getattr__ = lazy_hf_features(__name__, _hf_features)  # HF_FEATURES, built on first access


def iter_hf_records(root: str | os.PathLike | None, split: str = "train", **kwargs: Any) -> Iterator[dict]:
    """One record per image of ``split`` (person photos and product photos), grouped by ``product_id``.

    ``kwargs`` go to :class:`LookBookDataset` (``inshop_root``, ``test_percent``, ...). Images are stored as
    they are on disk (not squarified or resized).
    """
    ds = LookBookDataset(root, split, **kwargs)
    for prod in ds.products:
        for role, keys in (("product", prod.flats), ("person", prod.persons)):
            for key in keys:
                yield {"image": np.asarray(load_image(ds._path(key), "RGB")), "role": role,
                       "product_id": prod.product_id, "path": key, "source": prod.source}
