"""DeepFashion In-shop Clothes Retrieval Benchmark (the thesis' "ICRB"): writer and pose-transfer loader.

On-disk format (the real release's, so the same loader reads real data)::

    <root>/img/<MEN|WOMEN>/<Category>/id_XXXXXXXX/NN_K_<view>.jpg   NN: outfit group, K: running index,
                                                                    view: front|side|back|full|additional|flat
    <root>/img/.../NN_K_<view>_IUV.png        DensePose IUV next to each posed JPEG (channel 0 = part index I,
                                              channels 1, 2 = U, V); also looked up under "Anno/dense pose/img"
    <root>/Eval/list_eval_partition.txt       count line, header "image_name item_id evaluation_status",
                                              rows "img/.../02_1_front.jpg id_00000002 train|query|gallery"
    <root>/fasion-resize-annotation-{train,test}.csv   PATN protocol: "name:keypoints_y:keypoints_x", lists of 18
                                              OpenPose joints in the 256x176 frame, -1 for a missing joint
    <root>/fasion-resize-pairs-{train,test}.csv        PATN protocol: header "from,to", flattened names
    <root>/synthetic_attributes.json          only for the synthetic world: what each image shows

The PATN flattened name of ``img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg`` is
``fashionWOMENBlouses_Shirtsid0000000102_1front.jpg``; the 256x176 frame is the 256x256 image with 40 columns
cut from each side (in general: scaled to height 256, centred, cropped to width 176).

Splits are always disjoint by product id. The thesis split its pair list at random (90/10, seed 42), so the same
product appeared in training and test; that is not reproduced here. Without the partition file an exact share of the
products (``test_percent``) is chosen by a seeded hash of the product id (:func:`inshop_product_splits`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

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
from .pose import keypoints_to_body_mask, keypoints_to_heatmaps, scale_keypoints, visible_joints
from .splits import product_split

__all__ = [
    "PATN_SIZE",
    "POSABLE_VIEWS",
    "TRAINING_VIEWS",
    "ANNOTATION_FILES",
    "PAIR_FILES",
    "PARTITION_FILE",
    "ATTRIBUTES_FILE",
    "InShopImagePath",
    "InShopWriteConfig",
    "InShopWriteSummary",
    "InShopPoseDataset",
    "InShopImageDataset",
    "HF_FEATURES",
    "iter_hf_records",
    "parse_inshop_path",
    "patn_name",
    "read_partition",
    "read_patn_annotations",
    "read_patn_pairs",
    "write_synthetic_inshop",
    "atomic_directory",
    "resize_crop",
    "map_keypoints",
    "unmap_keypoints",
    "inshop_product_splits",
]

#: (H, W) of the PATN protocol images, in whose pixel frame the annotation CSVs give keypoints.
PATN_SIZE: tuple[int, int] = (256, 176)
#: Views the thesis' scraper accepts as posed images (with an IUV map); ``flat`` is a garment-only shot.
POSABLE_VIEWS: tuple[str, ...] = ("front", "side", "back", "full", "additional")
#: Views used for training: ``additional`` images mostly show details or the garment alone (thesis §2.2).
TRAINING_VIEWS: tuple[str, ...] = ("front", "side", "back", "full")
ALL_VIEWS: tuple[str, ...] = POSABLE_VIEWS + ("flat",)
ANNOTATION_FILES = {"train": "fasion-resize-annotation-train.csv", "test": "fasion-resize-annotation-test.csv"}
PAIR_FILES = {"train": "fasion-resize-pairs-train.csv", "test": "fasion-resize-pairs-test.csv"}
PARTITION_FILE = "Eval/list_eval_partition.txt"
ATTRIBUTES_FILE = "synthetic_attributes.json"
N_JOINTS = 18
SPLITS = ("train", "test")

_FILE_RE = re.compile(r"^(?P<group>\d+)_(?P<index>\d+)_(?P<view>[A-Za-z]+)\.jpg$")
_ID_RE = re.compile(r"^id_\d{8}$")


# ----------------------------------------------------------------------------------------------------------------
# Paths and names


@dataclass(frozen=True)
class InShopImagePath:
    """One In-shop image path, e.g. ``img/WOMEN/Dresses/id_00000002/02_1_front.jpg``, split into its parts."""

    key: str  # the path relative to the dataset root, always starting with "img/"
    gender: str
    category: str
    item_id: str
    group: str
    index: int
    view: str

    @property
    def product_group(self) -> tuple[str, str]:
        """The unit of pairing: same product AND same group (colour/size variant)."""
        return (self.item_id, self.group)

    @property
    def iuv_key(self) -> str:
        return self.key[: -len(".jpg")] + "_IUV.png"

    @property
    def patn_name(self) -> str:
        return patn_name(self.key)


def parse_inshop_path(key: str) -> InShopImagePath:
    """Parse ``img/<MEN|WOMEN>/<Category>/id_XXXXXXXX/NN_K_<view>.jpg`` (``Img/`` is accepted too)."""
    parts = key.replace("\\", "/").split("/")
    if len(parts) != 5 or parts[0].lower() != "img":
        raise DataError(f"{key}: not an In-shop image path (img/<gender>/<category>/id_XXXXXXXX/NN_K_<view>.jpg)")
    _, gender, category, item_id, fname = parts
    m = _FILE_RE.match(fname)
    if m is None or not _ID_RE.match(item_id):
        raise DataError(f"{key}: not an In-shop image path (img/<gender>/<category>/id_XXXXXXXX/NN_K_<view>.jpg)")
    return InShopImagePath(
        key="/".join(["img", gender, category, item_id, fname]),
        gender=gender,
        category=category,
        item_id=item_id,
        group=m["group"],
        index=int(m["index"]),
        view=m["view"].lower(),
    )


def patn_name(key: str) -> str:
    """Flattened PATN name: ``img/WOMEN/Dresses/id_00000002/02_1_front.jpg`` -> ``fashionWOMENDressesid0000000202_1front.jpg``."""
    parts = key.replace("\\", "/").split("/")
    if len(parts) != 5:
        raise DataError(f"{key}: not an In-shop image path")
    _, gender, category, item_id, fname = parts
    head, _, rest = fname.partition("_")
    return "fashion" + gender + category + item_id.replace("_", "") + head + "_" + rest.replace("_", "")


def _img_dir(root: Path) -> Path:
    for name in ("img", "Img"):
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: no img/ folder (expected <root>/img/<MEN|WOMEN>/<Category>/id_XXXXXXXX/*.jpg)")


def _scan_images(root: Path) -> dict[str, InShopImagePath]:
    """All In-shop JPEGs under ``root/img`` by key, in sorted order. Files that don't follow the naming are ignored."""
    img_dir = _img_dir(root)
    out: dict[str, InShopImagePath] = {}
    for dirpath, dirnames, filenames in os.walk(img_dir):
        dirnames.sort()
        rel = Path(dirpath).relative_to(img_dir).parts
        if len(rel) != 3:
            continue
        for fname in sorted(filenames):
            if not fname.endswith(".jpg"):
                continue
            try:
                p = parse_inshop_path("/".join(("img",) + rel + (fname,)))
            except DataError:
                continue
            out[p.key] = p
    return out


# ----------------------------------------------------------------------------------------------------------------
# Annotation files


def read_partition(path: str | os.PathLike) -> dict[str, tuple[str, str]]:
    """``Eval/list_eval_partition.txt`` -> {image key: (item_id, status)}, status in train|query|gallery."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: partition file not found")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a header line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{path}, line 1: expected the number of images, got {lines[0]!r}") from None
    if lines[1].split() != ["image_name", "item_id", "evaluation_status"]:
        raise DataError(f"{path}, line 2: expected header 'image_name item_id evaluation_status', got {lines[1]!r}")
    out: dict[str, tuple[str, str]] = {}
    for lineno, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3 or fields[2] not in ("train", "query", "gallery"):
            raise DataError(f"{path}, line {lineno}: expected 'image_name item_id train|query|gallery', got {line!r}")
        out[fields[0]] = (fields[1], fields[2])
    if len(out) != count:
        raise DataError(f"{path}: the count line says {count} images but {len(out)} rows follow")
    return out


def _parse_coords(text: str, path: Path, lineno: int, what: str) -> list[float]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        raise DataError(f"{path}, line {lineno}: {what} is not a list of numbers: {text.strip()!r}") from None
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
        raise DataError(f"{path}, line {lineno}: {what} is not a list of numbers: {text.strip()!r}")
    if len(values) != N_JOINTS:
        raise DataError(f"{path}, line {lineno}: {what} has {len(values)} keypoints, expected {N_JOINTS}")
    return [float(v) for v in values]


def read_patn_annotations(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``fasion-resize-annotation-*.csv`` -> {flattened name: (18, 2) float32 (x, y) in the 256x176 frame}.

    Missing joints (-1 in either coordinate) are (-1, -1). Any other coordinate outside the 256x176 frame
    (negative, or beyond its last row/column) is a :class:`DataError` naming the file, line and joint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    lines = path.read_text().splitlines()
    if not lines or [f.strip() for f in lines[0].split(":")] != ["name", "keypoints_y", "keypoints_x"]:
        raise DataError(f"{path}, line 1: expected header 'name:keypoints_y:keypoints_x'")
    out: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(":")
        if len(fields) != 3:
            raise DataError(f"{path}, line {lineno}: expected 3 ':'-separated fields, got {len(fields)}: {line!r}")
        name = fields[0].strip()
        if not name.endswith(".jpg"):
            raise DataError(f"{path}, line {lineno}: image name {name!r} does not end in .jpg")
        ys = _parse_coords(fields[1], path, lineno, "keypoints_y")
        xs = _parse_coords(fields[2], path, lineno, "keypoints_x")
        kp = np.stack([np.asarray(xs, np.float32), np.asarray(ys, np.float32)], axis=1)
        missing = kp == -1.0
        limit = np.array([PATN_SIZE[1] - 1, PATN_SIZE[0] - 1], np.float32)  # (x, y) of the last column/row
        outside = ~missing & ((kp < 0) | (kp > limit))
        if outside.any():
            j = int(np.flatnonzero(outside.any(axis=1))[0])
            raise DataError(f"{path}, line {lineno}: joint {j} of {name} at (x, y) = {kp[j].tolist()} lies outside "
                            f"the {PATN_SIZE[0]}x{PATN_SIZE[1]} PATN frame (-1 marks a missing joint)")
        kp[missing.any(axis=1)] = -1.0
        out[name] = kp
    return out


def read_patn_pairs(path: str | os.PathLike) -> list[tuple[str, str, int]]:
    """``fasion-resize-pairs-*.csv`` -> [(from, to, line number)]; header ``from,to`` or ``,from,to``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pairs file not found")
    lines = path.read_text().splitlines()
    header = [f.strip() for f in lines[0].split(",")] if lines else []
    if header == ["from", "to"]:
        indexed = False
    elif header == ["", "from", "to"]:
        indexed = True
    else:
        raise DataError(f"{path}, line 1: expected header 'from,to' (or ',from,to'), got {lines[0] if lines else ''!r}")
    out = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != (3 if indexed else 2):
            raise DataError(f"{path}, line {lineno}: expected {3 if indexed else 2} ','-separated fields: {line!r}")
        src, tgt = fields[-2:]
        if not (src.endswith(".jpg") and tgt.endswith(".jpg")):
            raise DataError(f"{path}, line {lineno}: image names must end in .jpg: {line!r}")
        out.append((src, tgt, lineno))
    return out


def _format_coords(values: Iterable[float]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


# ----------------------------------------------------------------------------------------------------------------
# Geometry: resize-to-cover + centre crop for images, label maps and keypoints alike


def _cover(src_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    (H, W), (h, w) = src_hw, out_hw
    s = max(h / H, w / W)
    rh, rw = max(h, int(round(H * s))), max(w, int(round(W * s)))
    return (rh, rw), ((rh - h) // 2, (rw - w) // 2)


def resize_crop(image: Image.Image, out_hw: tuple[int, int], resample: int = Image.BILINEAR) -> Image.Image:
    """Scale ``image`` to cover ``out_hw`` (keeping its aspect ratio) and crop the centre.

    Use ``Image.NEAREST`` for label maps (IUV, masks): interpolating part indices invents parts at the borders.
    PIL's bilinear resize widens its kernel when shrinking, so images are antialiased.
    """
    h, w = out_hw
    (rh, rw), (top, left) = _cover((image.height, image.width), out_hw)
    if (rh, rw) != (image.height, image.width):
        image = image.resize((rw, rh), resample)
    if (rh, rw) != (h, w):
        image = image.crop((left, top, left + w, top + h))
    return image


def map_keypoints(kp: np.ndarray, src_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Keypoints (18, 2) (x, y) of an image of ``src_hw`` -> the frame of :func:`resize_crop` to ``out_hw``.

    The resize follows :func:`~fashion_gans.data.pose.scale_keypoints` (pixel centres aligned), then the crop
    offset is subtracted. Joints that are missing or fall outside the crop become (-1, -1).
    """
    kp = np.asarray(kp, np.float32)
    h, w = out_hw
    (rh, rw), (top, left) = _cover(src_hw, out_hw)
    out = scale_keypoints(kp, src_hw, (rh, rw)) - np.array([left, top], np.float32)
    bad = ~visible_joints(kp) | (out[:, 0] < -0.5) | (out[:, 1] < -0.5) | (out[:, 0] > w - 0.5) | (out[:, 1] > h - 0.5)
    out = np.clip(out, 0, [w - 1, h - 1]).astype(np.float32)
    out[bad] = -1.0
    return out


def unmap_keypoints(kp: np.ndarray, src_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`map_keypoints`: keypoints in the ``out_hw`` crop -> the frame of the ``src_hw`` image."""
    kp = np.asarray(kp, np.float32)
    (rh, rw), (top, left) = _cover(src_hw, out_hw)
    vis = visible_joints(kp)
    uncropped = np.where(vis[:, None], kp + np.array([left, top], np.float32), -1.0).astype(np.float32)
    out = scale_keypoints(uncropped, (rh, rw), src_hw).astype(np.float32)
    out[~vis] = -1.0
    return out


# ----------------------------------------------------------------------------------------------------------------
# Writer


@dataclass(frozen=True)
class InShopWriteConfig:
    """What :func:`write_synthetic_inshop` renders.

    identities: number of products (one synthetic person each, identities ``first_identity ...``).
    size: (H, W) of every image; 256x256 is the thesis' release, 256x176 the PATN protocol's frame.
    max_groups: each product gets 1..max_groups outfit groups (colour variants of its top).
    poses_per_group: posed images per group (views follow the world's poses).
    flat_fraction: share of products that also get a ``*_flat.jpg`` product shot per group.
    unposed_fraction: share of posed images written without their ``_IUV.png`` (as in the real release).
    test_fraction: share of products in the test split (query + gallery); splits are disjoint by product.
    """

    identities: int = 20
    size: tuple[int, int] = (256, 256)
    max_groups: int = 2
    poses_per_group: int = 4
    flat_fraction: float = 0.5
    unposed_fraction: float = 0.0
    test_fraction: float = 0.2
    first_identity: int = 0
    jpeg_quality: int = 95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.identities < 2:
            raise ValueError(f"identities must be >= 2 (train and test need a product each), got {self.identities}")
        if len(self.size) != 2 or min(self.size) < 16:
            raise ValueError(f"size must be (H, W) with both >= 16, got {self.size}")
        if self.max_groups < 1 or self.poses_per_group < 2:
            raise ValueError("max_groups must be >= 1 and poses_per_group >= 2 (a pair needs two poses)")
        for name in ("flat_fraction", "unposed_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass
class InShopWriteSummary:
    root: Path
    products: int
    images: int
    posed_images: int
    iuv_maps: int
    flat_images: int
    train_products: int
    test_products: int
    train_pairs: int
    test_pairs: int

    def __str__(self) -> str:
        return (f"In-shop: {self.products} products ({self.train_products} train / {self.test_products} test), "
                f"{self.images} images ({self.posed_images} posed, {self.iuv_maps} IUV, {self.flat_images} flat), "
                f"PATN pairs {self.train_pairs} train / {self.test_pairs} test -> {self.root}")


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])


def choose_test_products(ids: Sequence[int], fraction: float, seed: int) -> set[int]:
    """A deterministic product-level test set: ``round(fraction * n)`` ids (at least one, and never all)."""
    ids = sorted(ids)
    n_test = min(len(ids) - 1, max(1, int(round(fraction * len(ids))))) if fraction > 0 else 0
    order = _rng(seed, 0x5EED).permutation(len(ids))
    return {ids[i] for i in order[:n_test]}


def _variant_garment(person: Any, group: int, palette: dict[str, tuple[int, int, int]],
                     colours: dict[str, tuple[int, int, int]]) -> Any:
    """Group 1 is the product as the world made it; later groups recolour the top (a colour variant).

    The new colour is far (in RGB) from the outfit, skin, hair, shoes and outlines, so the variants
    are told apart by eye (and by a pixel count).
    """
    garment = person.top
    if group == 1:
        return garment
    outfit = [garment.colour, garment.pattern_colour]
    if person.bottom is not None:
        outfit += [person.bottom.colour, person.bottom.pattern_colour]
    taken = [colours[c] for c in outfit]
    taken += [tuple(getattr(person, a)) for a in ("skin_rgb", "hair_rgb") if hasattr(person, a)]
    taken += [colours.get(getattr(person, "shoe_colour", "black"), (0, 0, 0)), (30, 30, 30)]  # shoes, outlines
    taken = np.array(taken, np.float32)
    gap = {c: float(np.linalg.norm(taken - np.array(palette[c], np.float32), axis=1).min()) for c in palette}
    ranked = sorted(palette, key=lambda c: (-gap[c], c))[:3]  # the colours farthest from all of those
    return dataclasses.replace(garment, colour=ranked[(group - 2) % len(ranked)])


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj


def write_synthetic_inshop(
    root: str | os.PathLike, world: Any, config: InShopWriteConfig | None = None, *, overwrite: bool = False
) -> InShopWriteSummary:
    """Render the synthetic world as a DeepFashion In-shop release (see the module docstring) under ``root``.

    The folder appears atomically: everything is written to a temporary folder that is renamed at the end.
    """
    from .synthetic import COLOURS

    cfg = config or InShopWriteConfig()
    size = (int(cfg.size[0]), int(cfg.size[1]))
    palette = {c: tuple(rgb) for c, rgb in COLOURS.items() if c != "white"}  # white vanishes on the studio white
    identities = list(range(cfg.first_identity, cfg.first_identity + cfg.identities))
    test_ids = choose_test_products(identities, cfg.test_fraction, cfg.seed)
    attributes: dict[str, dict] = {}
    partition: list[tuple[str, str, str]] = []
    annotations: dict[str, list[tuple[str, np.ndarray]]] = {"train": [], "test": []}
    pairs: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    counts = defaultdict(int)

    with atomic_directory(root, overwrite=overwrite) as tmp:
        for identity in identities:
            split = "test" if identity in test_ids else "train"
            person = world.person(identity)
            rng = _rng(cfg.seed, identity, 0x1A5)
            n_groups = int(rng.integers(1, cfg.max_groups + 1))
            has_flat = bool(rng.random() < cfg.flat_fraction)
            item_id = f"id_{identity + 1:08d}"
            folder = Path("img") / person.gender / person.category / item_id
            (tmp / folder).mkdir(parents=True, exist_ok=True)
            counts["products"] += 1
            for g in range(1, n_groups + 1):
                top = _variant_garment(person, g, palette, COLOURS)
                dressed = person if top is person.top else dataclasses.replace(person, top=top)
                posed: list[str] = []
                for j in range(cfg.poses_per_group):
                    k = (g - 1) * cfg.poses_per_group + j
                    pose = world.pose(identity, k)
                    render = world.render_person(dressed, pose, size, background="white", background_seed=k)
                    key = (folder / f"{g:02d}_{j + 1}_{pose.view}.jpg").as_posix()
                    save_image(render.image, tmp / key, quality=cfg.jpeg_quality)
                    with_iuv = not (rng.random() < cfg.unposed_fraction)
                    if with_iuv:
                        save_image(np.ascontiguousarray(render.iuv), tmp / (key[:-4] + "_IUV.png"))
                        counts["iuv"] += 1
                        posed.append(key)
                    counts["images"] += 1
                    counts["posed"] += 1
                    status = split if split == "train" else ("query" if j == 0 else "gallery")
                    partition.append((key, item_id, status))
                    kp = np.asarray(render.keypoints, np.float32)
                    annotations[split].append((key, map_keypoints(kp, size, PATN_SIZE)))
                    attributes[key] = {
                        "identity": int(identity),
                        "item_id": item_id,
                        "group": f"{g:02d}",
                        "split": split,
                        "view": pose.view,
                        "pose": pose.name,
                        "pose_index": int(k),
                        "size": list(size),
                        "keypoints": kp.round(2).tolist(),
                        "has_iuv": with_iuv,
                        "person": _to_jsonable(person.attributes()),
                        "top": _to_jsonable(top.attributes()),
                    }
                for a in posed:
                    for b in posed:
                        if a != b:
                            pairs[split].append((a, b))
                if has_flat:
                    key = (folder / f"{g:02d}_{cfg.poses_per_group + 1}_flat.jpg").as_posix()
                    save_image(world.render_flat(top, size), tmp / key, quality=cfg.jpeg_quality)
                    status = split if split == "train" else "gallery"
                    partition.append((key, item_id, status))
                    attributes[key] = {
                        "identity": int(identity),
                        "item_id": item_id,
                        "group": f"{g:02d}",
                        "split": split,
                        "view": "flat",
                        "size": list(size),
                        "top": _to_jsonable(top.attributes()),
                    }
                    counts["images"] += 1
                    counts["flat"] += 1

        width = max(len(k) for k, _, _ in partition) + 2
        lines = [str(len(partition)), "image_name item_id evaluation_status"]
        lines += [f"{k:<{width}}{i} {s}" for k, i, s in partition]
        (tmp / "Eval").mkdir()
        (tmp / PARTITION_FILE).write_text("\n".join(lines) + "\n")
        for split in SPLITS:
            rows = ["name:keypoints_y:keypoints_x"]
            for key, kp in annotations[split]:
                kp = np.where(kp < 0, -1, np.round(kp))
                rows.append(f"{patn_name(key)}: {_format_coords(kp[:, 1])}: {_format_coords(kp[:, 0])}")
            (tmp / ANNOTATION_FILES[split]).write_text("\n".join(rows) + "\n")
            rows = ["from,to"] + [f"{patn_name(a)},{patn_name(b)}" for a, b in pairs[split]]
            (tmp / PAIR_FILES[split]).write_text("\n".join(rows) + "\n")
        meta = {
            "dataset": "synthetic DeepFashion In-shop",
            "world_seed": int(getattr(world, "seed", 0)),
            "config": _to_jsonable(dataclasses.asdict(cfg)),
            "keypoints": "OpenPose-18 (x, y) pixels of the image, (-1, -1) missing",
            "images": attributes,
        }
        (tmp / ATTRIBUTES_FILE).write_text(json.dumps(meta, indent=1))

    return InShopWriteSummary(
        root=Path(root),
        products=counts["products"],
        images=counts["images"],
        posed_images=counts["posed"],
        iuv_maps=counts["iuv"],
        flat_images=counts["flat"],
        train_products=len(identities) - len(test_ids),
        test_products=len(test_ids),
        train_pairs=len(pairs["train"]),
        test_pairs=len(pairs["test"]),
    )


# ----------------------------------------------------------------------------------------------------------------
# Loader


@dataclass
class _Record:
    """One image the loader may serve: where its pixels come from and what is known about it."""

    key: str
    item_id: str
    group: str
    view: str
    path: Path | None = None  # file source
    iuv_path: Path | None = None
    row: int | None = None  # Hub-dataset source
    keypoints: np.ndarray | None = None
    keypoints_frame: str = "image"  # "image": pixels of this image; "patn": the 256x176 frame


def inshop_product_splits(item_ids: Iterable[str], test_percent: float) -> dict[str, str]:
    """Product id -> "train"/"test" for a release without ``Eval/list_eval_partition.txt``: exactly
    ``round(test_percent / 100 * n)`` of the ``n`` products (at least one in each split when ``n >= 2``),
    chosen by a seeded hash of the product id. Pass every product id of the release, so that every loader
    (pose pairs, single images, the LookBook augmentation) agrees."""
    return product_split(item_ids, test_percent / 100.0, salt="deepfashion-inshop")


class _PoseRecords:
    """Shared image preparation for the In-shop datasets."""

    size: tuple[int, int]
    pose_encoding: str
    heatmap_sigma: float
    _hf: Any = None

    def _read_image(self, rec: _Record) -> Image.Image:
        if rec.row is not None:
            img = self._hf[rec.row]["image"]
            if img is None:
                raise DataError(f"{rec.key}: Hub dataset row {rec.row} has no image")
            return img.convert("RGB")
        return load_image(rec.path, "RGB")

    def _read_iuv(self, rec: _Record) -> np.ndarray | None:
        if rec.row is not None:
            img = self._hf[rec.row]["iuv"]
            return None if img is None else np.asarray(img.convert("RGB"))
        if rec.iuv_path is None:
            return None
        return np.asarray(load_image(rec.iuv_path, "RGB"))

    def _prepare(self, rec: _Record) -> dict[str, Any]:
        image = self._read_image(rec)
        src_hw = (image.height, image.width)
        h, w = self.size
        out: dict[str, Any] = {"image": array_to_tensor(np.array(resize_crop(image, self.size, Image.BILINEAR)))}
        if rec.keypoints is None:
            if self.pose_encoding == "heatmap":
                raise DataError(f"{rec.key}: no keypoints for the heatmap pose encoding (no row in "
                                f"{ANNOTATION_FILES['train']} / {ANNOTATION_FILES['test']} or {ATTRIBUTES_FILE})")
            kp = np.full((N_JOINTS, 2), -1.0, np.float32)
        else:
            kp_img = rec.keypoints
            if rec.keypoints_frame == "patn":
                kp_img = unmap_keypoints(kp_img, src_hw, PATN_SIZE)
            kp = map_keypoints(kp_img, src_hw, self.size)
        out["keypoints"] = torch.from_numpy(kp)
        iuv = self._read_iuv(rec)
        if iuv is not None:
            if iuv.shape[:2] != src_hw:
                raise DataError(f"{rec.iuv_path or rec.key}: IUV map is {iuv.shape[:2]}, its image is {src_hw}")
            # Thesis code bug: the IUV map was resized bilinearly, which blends the discrete part index I at part
            # borders into parts that do not exist. Label maps are resized with NEAREST here.
            iuv = np.array(resize_crop(Image.fromarray(iuv), self.size, Image.NEAREST))
            out["mask"] = torch.from_numpy((iuv[:, :, 0] > 0).astype(np.float32))[None]
        elif rec.keypoints is not None and (kp >= 0).all(axis=1).sum() >= 2:
            out["mask"] = torch.from_numpy(keypoints_to_body_mask(kp, self.size).astype(np.float32))[None]
        else:
            raise DataError(f"{rec.key}: neither an IUV map nor keypoints to build the body mask from")
        if self.pose_encoding == "iuv":
            if iuv is None:
                raise DataError(f"{rec.key}: pose_encoding='iuv' but the image has no _IUV.png")
            # IUV as uint8/255 in [0, 1] (channel 0: part index I, 1-2: U, V), like heatmaps a non-image condition.
            out["pose"] = torch.from_numpy(np.ascontiguousarray(iuv)).permute(2, 0, 1).float().div_(255.0)
        else:
            out["pose"] = torch.from_numpy(
                np.ascontiguousarray(keypoints_to_heatmaps(kp, (h, w), sigma=self.heatmap_sigma), np.float32)
            )
        return out


def _load_attribute_keypoints(root: Path) -> dict[str, np.ndarray]:
    path = root / ATTRIBUTES_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    out = {}
    for key, attrs in meta.get("images", {}).items():
        if "keypoints" in attrs:
            kp = np.asarray(attrs["keypoints"], np.float32)
            if kp.shape != (N_JOINTS, 2):
                raise DataError(f"{path}: {key} has keypoints of shape {kp.shape}, expected ({N_JOINTS}, 2)")
            out[key] = kp
    return out


class InShopPoseDataset(torch.utils.data.Dataset, _PoseRecords):
    """Pose-transfer pairs from DeepFashion In-shop: the same product and outfit group in two poses.

    Pairs come from the PATN protocol files (``fasion-resize-pairs-{train,test}.csv``, keypoints from
    ``fasion-resize-annotation-*.csv``) when they are present (``protocol="auto"`` or ``"patn"``). Otherwise
    (``protocol="thesis"``) they are built like the thesis' scraper: all unordered pairs of posed images (views in
    ``views`` with an ``_IUV.png``) within the same product AND group, served in both directions. The split is then
    by product: ``Eval/list_eval_partition.txt`` (train vs query+gallery, product-disjoint in the release) when
    present, else a fixed hash of the product id (``test_percent``).

    Items: ``source_image``/``target_image`` (3,H,W) in [-1,1]; ``source_pose``/``target_pose`` (18,H,W) keypoint
    heatmaps in [0,1] or (3,H,W) IUV in [0,1]; ``target_mask``/``source_mask`` (1,H,W) in {0,1} (IUV ``I > 0``, or a
    body shape drawn from the keypoints); ``source_keypoints``/``target_keypoints`` (18,2) (x, y) pixels at the
    output size, -1 missing; ``source_path``/``target_path``; ``item_id``. Heatmap sigma defaults to 6 px at
    height 256 (the PATN value), scaled with the output height. ``views`` leaves out ``additional`` by default:
    most of those images show details or the garment alone (thesis §2.2).

    Images that cannot be opened are found when the dataset is built (``check_images="header"``: header, structure
    and the end-of-file marker, so truncated JPEG/PNG files are found without decoding; ``"decode"``: a full
    decode; ``"none"`` skips the check): pairs that use them are dropped, counted in ``n_corrupt_images``/``n_skipped_pairs`` and one
    warning gives the count. More than ``max_corrupt_fraction`` of the images bad is a :class:`DataError`. An image
    that still fails to decode when read raises :class:`DataError` naming it; a wrong tensor is never returned.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        pose_encoding: str = "heatmap",
        size: tuple[int, int] | int = (128, 128),
        *,
        protocol: str = "auto",
        views: Sequence[str] = TRAINING_VIEWS,
        test_percent: float = 10.0,
        heatmap_sigma: float | None = None,
        check_images: str = "header",
        max_corrupt_fraction: float = 0.05,
        _hf_dataset: Any = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if pose_encoding not in ("heatmap", "iuv"):
            raise ValueError(f"pose_encoding must be 'heatmap' or 'iuv', got {pose_encoding!r}")
        if protocol not in ("auto", "patn", "thesis"):
            raise ValueError(f"protocol must be 'auto', 'patn' or 'thesis', got {protocol!r}")
        if check_images not in IMAGE_CHECKS:
            raise ValueError(f"check_images must be one of {IMAGE_CHECKS}, got {check_images!r}")
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.split = split
        self.pose_encoding = pose_encoding
        self.heatmap_sigma = float(heatmap_sigma) if heatmap_sigma else max(1.0, 6.0 * self.size[0] / 256.0)
        self.views = tuple(views)
        self.n_corrupt_images = 0
        self.n_skipped_pairs = 0
        self.corrupt_images: list[str] = []
        if _hf_dataset is not None:
            self.root = None
            self._hf = _hf_dataset
            self.protocol = "hub"
            self._records, pairs = self._index_hf(_hf_dataset)
        else:
            self.root = Path(root)
            if not self.root.is_dir():
                raise DataError(f"{self.root}: In-shop root folder not found")
            _img_dir(self.root)
            patn_present = all((self.root / PAIR_FILES[s]).is_file() for s in SPLITS)
            if protocol == "patn" and not patn_present:
                raise DataError(f"{self.root}: protocol='patn' needs {PAIR_FILES['train']} and {PAIR_FILES['test']}")
            self.protocol = "patn" if protocol == "patn" or (protocol == "auto" and patn_present) else "thesis"
            if self.protocol == "patn":
                self._records, pairs = self._index_patn()
            else:
                self._records, pairs = self._index_thesis(test_percent)
            if check_images != "none":
                pairs = self._drop_corrupt(pairs, check_images, max_corrupt_fraction)
        self.pairs: list[tuple[int, int]] = pairs

    # -- indexing ------------------------------------------------------------------------------------------------

    def _iuv_path(self, p: InShopImagePath) -> Path | None:
        img_dir = _img_dir(self.root)
        rest = p.iuv_key.split("/", 1)[1]
        for cand in (img_dir / rest, self.root / "Anno" / "dense pose" / "img" / rest,
                     self.root / "Anno" / "dense pose" / "Img" / rest):
            if cand.is_file():
                return cand
        return None

    def _make_record(self, p: InShopImagePath) -> _Record:
        return _Record(key=p.key, item_id=p.item_id, group=p.group, view=p.view,
                       path=_img_dir(self.root) / p.key.split("/", 1)[1], iuv_path=self._iuv_path(p))

    def _index_patn(self) -> tuple[list[_Record], list[tuple[int, int]]]:
        images = _scan_images(self.root)
        by_name = {p.patn_name: p for p in images.values()}
        annotations: dict[str, np.ndarray] = {}
        for s in SPLITS:
            path = self.root / ANNOTATION_FILES[s]
            if path.is_file():
                annotations.update(read_patn_annotations(path))
        records: list[_Record] = []
        index: dict[str, int] = {}
        pairs: list[tuple[int, int]] = []
        pair_file = self.root / PAIR_FILES[self.split]
        for src, tgt, lineno in read_patn_pairs(pair_file):
            ids = []
            for name in (src, tgt):
                if name not in index:
                    p = by_name.get(name)
                    if p is None:
                        raise DataError(f"{pair_file}, line {lineno}: image {name} is not in {_img_dir(self.root)}")
                    if name not in annotations:
                        # Checked here, not when the item is read: the PATN protocol annotates every paired image.
                        raise DataError(f"{pair_file}, line {lineno}: image {name} has no keypoint row in "
                                        f"{self.root / ANNOTATION_FILES['train']} or "
                                        f"{self.root / ANNOTATION_FILES['test']}")
                    rec = self._make_record(p)
                    rec.keypoints, rec.keypoints_frame = annotations[name], "patn"
                    index[name] = len(records)
                    records.append(rec)
                ids.append(index[name])
            pairs.append((ids[0], ids[1]))
        return records, pairs

    def _index_thesis(self, test_percent: float) -> tuple[list[_Record], list[tuple[int, int]]]:
        images = _scan_images(self.root)
        part_path = self.root / PARTITION_FILE
        partition = read_partition(part_path) if part_path.is_file() else None
        keypoints = _load_attribute_keypoints(self.root)
        split_of = None if partition is not None else inshop_product_splits(
            {p.item_id for p in images.values()}, test_percent)
        annotations: dict[str, np.ndarray] = {}
        for s in SPLITS:
            if (self.root / ANNOTATION_FILES[s]).is_file():
                annotations.update(read_patn_annotations(self.root / ANNOTATION_FILES[s]))
        groups: dict[tuple[str, str], list[_Record]] = defaultdict(list)
        for key, p in images.items():
            if p.view not in self.views:
                continue
            if partition is not None:
                if key not in partition:
                    continue
                split = "train" if partition[key][1] == "train" else "test"
            else:
                split = split_of[p.item_id]
            if split != self.split:
                continue
            rec = self._make_record(p)
            if rec.iuv_path is None:  # not posable: the release has no pose map for it
                continue
            if p.patn_name in annotations:
                rec.keypoints, rec.keypoints_frame = annotations[p.patn_name], "patn"
            elif key in keypoints:
                rec.keypoints = keypoints[key]
            if self.pose_encoding == "heatmap" and rec.keypoints is None:
                continue
            groups[p.product_group].append(rec)
        records: list[_Record] = []
        forward: list[tuple[int, int]] = []
        for _, recs in sorted(groups.items()):
            if len(recs) < 2:
                continue
            base = len(records)
            records.extend(recs)
            forward += [(base + i, base + j) for i in range(len(recs)) for j in range(i + 1, len(recs))]
        # Every unordered pair in both directions: the first half forward, the second half reversed.
        return records, forward + [(b, a) for a, b in forward]

    def _index_hf(self, ds: Any) -> tuple[list[_Record], list[tuple[int, int]]]:
        records: list[_Record] = []
        index: dict[str, int] = {}
        meta = ds.select_columns([c for c in ds.column_names if c not in ("image", "iuv")])
        for row, item in enumerate(meta):
            kp = item.get("keypoints")
            rec = _Record(key=item["path"], item_id=item["item_id"], group=item["group"], view=item["view"], row=row,
                          keypoints=None if kp is None else np.asarray(kp, np.float32).reshape(N_JOINTS, 2))
            index[rec.key] = len(records)
            records.append(rec)
        pairs = []
        for item in meta:
            for tgt in item["targets"]:
                if tgt not in index:
                    raise DataError(f"Hub dataset: pair target {tgt} of {item['path']} is not in the split")
                pairs.append((index[item["path"]], index[tgt]))
        return records, pairs

    def _drop_corrupt(self, pairs: list[tuple[int, int]], check: str, max_fraction: float) -> list[tuple[int, int]]:
        used = sorted({i for pair in pairs for i in pair})
        found = find_unreadable_images({i: (self._records[i].path, self._records[i].iuv_path) for i in used},
                                       check=check, max_fraction=max_fraction, where=self.root)
        if not found:
            return pairs
        self.n_corrupt_images = len(found.bad)
        self.corrupt_images = list(found.problems)
        kept = [(a, b) for a, b in pairs if a not in found.bad and b not in found.bad]
        self.n_skipped_pairs = len(pairs) - len(kept)
        found.warn(f"In-shop {self.root} ({self.split})", self.n_skipped_pairs, stacklevel=3)
        return kept

    # -- Hub -----------------------------------------------------------------------------------------------------

    @classmethod
    def from_hf(cls, repo_id_or_path: str | os.PathLike, split: str = "train", *, revision: str | None = None,
                **kwargs: Any) -> "InShopPoseDataset":
        """Load from a Hub dataset written from :func:`iter_hf_records` (same items as from the files)."""
        from .hf import load_hf_split

        ds = load_hf_split(str(repo_id_or_path), split, revision=revision, required_columns=_hf_features())
        kwargs.pop("check_images", None)
        return cls(repo_id_or_path, split, _hf_dataset=ds, check_images="none", **kwargs)

    # -- items ---------------------------------------------------------------------------------------------------

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def item_ids(self) -> set[str]:
        return {self._records[i].item_id for pair in self.pairs for i in pair}

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, protocol={self.protocol!r}, "
                f"pairs={len(self.pairs)}, products={len(self.item_ids)}, size={self.size}, "
                f"pose_encoding={self.pose_encoding!r}, skipped_pairs={self.n_skipped_pairs})")

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self.pairs) <= index < len(self.pairs):
            raise IndexError(index)
        a, b = self.pairs[index]
        src, tgt = self._records[a], self._records[b]
        s, t = self._prepare(src), self._prepare(tgt)
        return {
            "source_image": s["image"],
            "target_image": t["image"],
            "source_pose": s["pose"],
            "target_pose": t["pose"],
            "source_mask": s["mask"],
            "target_mask": t["mask"],
            "source_keypoints": s["keypoints"],
            "target_keypoints": t["keypoints"],
            "source_path": src.key,
            "target_path": tgt.key,
            "item_id": src.item_id,
        }


class InShopImageDataset(torch.utils.data.Dataset, _PoseRecords):
    """Single In-shop images of one split (``views`` selects e.g. ``("flat",)`` product shots).

    Items: ``image`` (3,H,W) in [-1,1], ``path``, ``item_id``, ``group``, ``view``. The split is by product, as in
    :class:`InShopPoseDataset` (partition file, else the product-id hash).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", size: tuple[int, int] | int = (128, 128), *,
                 views: Sequence[str] = ALL_VIEWS, test_percent: float = 10.0) -> None:
        if split not in SPLITS + ("all",):
            raise ValueError(f"split must be one of {SPLITS + ('all',)}, got {split!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: In-shop root folder not found")
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        part_path = self.root / PARTITION_FILE
        partition = read_partition(part_path) if part_path.is_file() else None
        self._records = []
        images = _scan_images(self.root)
        split_of = None if partition is not None else inshop_product_splits(
            {p.item_id for p in images.values()}, test_percent)
        for key, p in images.items():
            if p.view not in views:
                continue
            if partition is not None:
                if key not in partition:
                    continue
                s = "train" if partition[key][1] == "train" else "test"
            else:
                s = split_of[p.item_id]
            if split in ("all", s):
                self._records.append(_Record(key=key, item_id=p.item_id, group=p.group, view=p.view,
                                             path=_img_dir(self.root) / key.split("/", 1)[1]))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self._records[index]
        image = resize_crop(self._read_image(rec), self.size, Image.BILINEAR)
        return {"image": array_to_tensor(np.array(image)), "path": rec.key, "item_id": rec.item_id,
                "group": rec.group, "view": rec.view}


# ----------------------------------------------------------------------------------------------------------------
# Hub dataset records


def _hf_features() -> Any:
    import datasets

    return datasets.Features({
        "image": datasets.Image(),
        "iuv": datasets.Image(),
        "keypoints": datasets.Sequence(datasets.Sequence(datasets.Value("float32"), length=2), length=N_JOINTS),
        "path": datasets.Value("string"),
        "item_id": datasets.Value("string"),
        "group": datasets.Value("string"),
        "view": datasets.Value("string"),
        "gender": datasets.Value("string"),
        "category": datasets.Value("string"),
        "targets": datasets.Sequence(datasets.Value("string")),
    })


__getattr__ = lazy_hf_features(__name__, _hf_features)  # HF_FEATURES, built on first access


def iter_hf_records(root: str | os.PathLike, split: str = "train", **kwargs: Any) -> Iterator[dict]:
    """One record per image of ``split`` that takes part in a pair (columns: :data:`HF_FEATURES`).

    ``targets`` lists the images each one is paired to, so the pair list (PATN or thesis-style) survives the
    conversion. Keypoints are (x, y) pixels of the stored image; the IUV map is None where there is none.
    ``kwargs`` go to :class:`InShopPoseDataset` (``protocol``, ``views``, ...).
    """
    kwargs.setdefault("pose_encoding", "iuv")  # the most inclusive: keeps posed images without keypoints
    ds = InShopPoseDataset(root, split, **kwargs)
    targets: dict[int, list[str]] = defaultdict(list)
    for a, b in ds.pairs:
        targets[a].append(ds._records[b].key)
    used = sorted({i for pair in ds.pairs for i in pair})
    for i in used:
        rec = ds._records[i]
        p = parse_inshop_path(rec.key)
        image = np.asarray(load_image(rec.path, "RGB"))
        kp = None
        if rec.keypoints is not None:
            kp = rec.keypoints
            if rec.keypoints_frame == "patn":
                kp = unmap_keypoints(kp, image.shape[:2], PATN_SIZE)
            kp = kp.tolist()
        yield {
            "image": image,
            "iuv": None if rec.iuv_path is None else np.asarray(load_image(rec.iuv_path, "RGB")),
            "keypoints": kp,
            "path": rec.key,
            "item_id": rec.item_id,
            "group": rec.group,
            "view": rec.view,
            "gender": p.gender,
            "category": p.category,
            "targets": targets.get(i, []),
        }
