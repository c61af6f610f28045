"""Evaluation data: the held-out samples of each task with their ground truth, read from a prepared synthetic
world (``scripts/prepare_data.py`` output or a training run's ``data/`` folder) or from Fashion-MNIST.

Ground truth that the dataset items do not carry is read from the attribute files the synthetic writers record:
``lookbook/synthetic_attributes.json`` (each product photo's garment: colour, pattern, kind) and
``bags_shoes/bags_shoes_attributes.json`` (each shoe's / handbag's style id and the styles' colour, pattern and
material). Pose targets carry their keypoints in the dataset items (``target_keypoints``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fashion_gans.data.io import DataError

__all__ = ["TASKS", "EDIT_TASKS", "SPLIT_OPTIONS", "EvaluationError", "EvalData", "resolve_data_kind",
           "load_eval_data", "load_edit_data", "default_edit_attributes"]

#: Attribute-editing tasks (Fader Networks, IcGAN): inputs are labelled images, not a prepared world's datasets.
EDIT_TASKS = ("fader", "icgan")
TASKS = ("pose", "garment", "style", "generation") + EDIT_TASKS
#: The ``data`` argument of the editing tasks' synthetic flats (rendered in memory, no folder).
SYNTHETIC_NAME = "synthetic"
FMNIST_NAMES = ("fashion-mnist", "fmnist")
#: Files the synthetic renderer writes next to its datasets (in the root or one level down): their presence is
#: what tells the synthetic world (whose attributes and mannequins the shipped networks know) from real photos.
SYNTHETIC_MARKERS = ("synthetic_attributes.json", "bags_shoes_attributes.json")
#: Dataset options that decide which samples are held out (a training run's ``data_options`` may set them).
SPLIT_OPTIONS = ("test_percent", "test_fraction", "protocol")


class EvaluationError(ValueError):
    """Bad evaluation input: unknown task, data that does not fit the task, a count of 0, a bad baseline..."""


@dataclass
class EvalData:
    """Held-out samples of one task (tensors in [-1, 1], ``(N, C, H, W)``) plus ground truth.

    ``inputs``: the model inputs by name (pose: ``source_image``, ``target_pose``; garment: ``person_image``;
    style: ``shoe`` and ``bag`` (separate, unpaired sets); generation: none; editing: ``image``). ``targets``:
    the real images the results are compared with (pose: ``target_image``; garment: ``product_image``; style:
    ``bag`` and ``shoe``; generation and editing: ``image``). ``truth``: ground truth by name (pose: ``target_keypoints`` (N, 18, 2) pixels;
    garment: ``colour`` / ``pattern`` attribute names of each product; style: ``shoe_style`` / ``bag_style``
    dicts with colour/pattern/material, and ``shoe_partner`` / ``bag_partner``: a real image of the other domain
    with each source's style, with ``shoe_partner_style`` / ``bag_partner_style``; none of the attribute truth
    for real photos, kind ``other``; editing: ``attributes`` (N, n_attributes) value indices, ``attribute_values``
    the attribute -> values mapping, ``train_attributes`` the labels of the training images). ``train_targets``:
    training-split target images for the ``mean`` and ``nearest`` baselines (by the same names as ``targets``)."""

    task: str
    kind: str  # "synthetic" | "fashion-mnist" | "other" (real photos: no attribute / mannequin ground truth)
    location: str
    split: str
    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    truth: dict[str, Any] = field(default_factory=dict)
    train_targets: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def count(self) -> int:
        first = next(iter(self.targets.values()))
        return int(first.shape[0])


def resolve_data_kind(data: str | os.PathLike) -> tuple[str, Path | None]:
    """``("fashion-mnist", root)`` for ``fashion-mnist`` / a folder of the Fashion-MNIST files;
    ``("synthetic", folder)`` for a folder holding the synthetic renderer's attribute files
    (:data:`SYNTHETIC_MARKERS`, in the folder or one level down: a prepared world or one of its datasets);
    ``("other", folder)`` for any other folder (real photos: pixel metrics only)."""
    text = str(data)
    if text.lower() in FMNIST_NAMES:
        from fashion_gans.data.fashion_mnist import DEFAULT_ROOT

        return "fashion-mnist", Path(os.environ.get("FASHION_MNIST_DIR", DEFAULT_ROOT))
    path = Path(text).expanduser()
    if not path.is_dir():
        raise EvaluationError(f"data {text!r}: no such folder (give a prepared synthetic folder, a dataset root or "
                              "'fashion-mnist')")
    if any(path.glob("train-images-idx3-ubyte*")):
        return "fashion-mnist", path
    folders = [path, *sorted(c for c in path.iterdir() if c.is_dir())]
    if any((d / m).is_file() for d in folders for m in SYNTHETIC_MARKERS):
        return "synthetic", path
    return "other", path


def _sub(root: Path, name: str, marker: str, task: str) -> Path:
    """``root/name`` when it exists, else ``root`` itself if it holds ``marker``; an error naming the task."""
    if (root / name).is_dir():
        return root / name
    if (root / marker).exists():
        return root
    raise EvaluationError(f"data {root}: task {task!r} needs a {name}/ dataset (no {root / name} and no {marker} "
                          f"in {root}); render one with scripts/prepare_data.py")


def _stack(items: list[dict], key: str) -> torch.Tensor:
    return torch.stack([torch.as_tensor(it[key]) for it in items])


def _take(dataset, count: int, what: str) -> list[dict]:
    n = min(len(dataset), count)
    if n == 0:
        raise EvaluationError(f"{what}: the split has no samples")
    return [dataset[i] for i in range(n)]


def _spread(n_total: int, count: int) -> list[int]:
    """``min(count, n_total)`` indices spread evenly over ``range(n_total)`` (deterministic)."""
    n = min(count, n_total)
    if n <= 0:
        return []
    return sorted({int(i * n_total / n) for i in range(n)})


def load_eval_data(task: str, data: str | os.PathLike, *, split: str = "test", count: int = 256,
                   image_size: tuple[int, int] | None = None, channels: int | None = None,
                   pose_encoding: str = "heatmap", train_count: int = 512,
                   data_options: dict[str, Any] | None = None, attributes: dict[str, list[str]] | None = None,
                   train_seed: int = 0) -> EvalData:
    """The held-out samples of ``task`` from ``data`` (see :class:`EvalData`); ``image_size`` (H, W) is the
    model's resolution, ``channels`` its image channels (Fashion-MNIST: 1), ``pose_encoding`` ``heatmap`` or
    ``iuv`` (pose only). ``train_count`` training targets are loaded for the baselines (0: none).
    ``data_options``: the split options of the dataset classes (:data:`SPLIT_OPTIONS`, e.g. a training run's
    ``test_percent``) so that the held-out samples are the ones the model did not train on; options a dataset
    class does not take are ignored. Real photos (kind ``other``) carry no attribute ground truth. The editing
    tasks (``fader``, ``icgan``) go to :func:`load_edit_data` (``attributes``, ``train_seed``)."""
    if task not in TASKS:
        raise EvaluationError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if int(count) < 1:
        raise EvaluationError(f"count must be >= 1, got {count}")
    if task in EDIT_TASKS:
        return load_edit_data(task, data, split=split, count=count, image_size=image_size, channels=channels,
                              attributes=attributes, train_seed=train_seed, train_count=train_count,
                              data_options=data_options)
    kind, root = resolve_data_kind(data)
    try:
        if kind == "fashion-mnist":
            return _fmnist(task, root, split, count, channels or 1, train_count)
        ev = _synthetic(task, root, split, count, image_size, channels, pose_encoding, train_count,
                        _split_options(data_options), kind)
        ev.kind = kind
        return ev
    except EvaluationError:
        raise
    except (DataError, ValueError) as exc:
        raise EvaluationError(f"data {data}: {exc}") from exc


# --------------------------------------------------------------------------------------------- Fashion-MNIST
_FMNIST_CACHE: dict[tuple[str, str], tuple] = {}


def _load_fmnist(root: Path, split: str):
    """``load_fashion_mnist`` once per (root, split) and process (the gzip decode of 60k images is slow)."""
    from fashion_gans.data.fashion_mnist import load_fashion_mnist

    key = (str(root), split)
    if key not in _FMNIST_CACHE:
        if len(_FMNIST_CACHE) >= 4:
            _FMNIST_CACHE.clear()
        _FMNIST_CACHE[key] = load_fashion_mnist(root, split)
    return _FMNIST_CACHE[key]


def _fmnist(task: str, root: Path, split: str, count: int, channels: int, train_count: int) -> EvalData:
    import numpy as np

    from fashion_gans.data.fashion_mnist import BAG_CLASSES, SHOE_CLASSES, _to_tensor

    if task not in ("style", "generation"):
        raise EvaluationError(f"task {task!r} has no Fashion-MNIST data: Fashion-MNIST serves 'style' "
                              "(shoes <-> bags) and 'generation'")
    if split not in ("train", "test"):
        raise EvaluationError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")

    def tensors(images: np.ndarray, idx) -> torch.Tensor:
        return torch.stack([_to_tensor(images[i], 32, channels) for i in idx]) if len(idx) else \
            torch.empty(0, channels, 32, 32)

    images, labels = _load_fmnist(root, split)
    tr_images, tr_labels = (_load_fmnist(root, "train") if train_count else (images[:0], labels[:0]))
    if task == "generation":
        idx = _spread(len(labels), count)
        return EvalData(task, "fashion-mnist", str(root), split, {}, {"image": tensors(images, idx)},
                        {"label": torch.as_tensor(labels[idx])},
                        {"image": tensors(tr_images, _spread(len(tr_labels), train_count))} if train_count else {})
    shoes = np.flatnonzero(np.isin(labels, SHOE_CLASSES))
    bags = np.flatnonzero(np.isin(labels, BAG_CLASSES))
    s_idx, b_idx = shoes[_spread(len(shoes), count)], bags[_spread(len(bags), count)]
    inputs = {"shoe": tensors(images, s_idx), "bag": tensors(images, b_idx)}
    train: dict[str, torch.Tensor] = {}
    if train_count:
        ts = np.flatnonzero(np.isin(tr_labels, SHOE_CLASSES))
        tb = np.flatnonzero(np.isin(tr_labels, BAG_CLASSES))
        train = {"shoe": tensors(tr_images, ts[_spread(len(ts), train_count)]),
                 "bag": tensors(tr_images, tb[_spread(len(tb), train_count)])}
    truth = {"shoe_label": torch.as_tensor(labels[s_idx]), "bag_label": torch.as_tensor(labels[b_idx])}
    return EvalData(task, "fashion-mnist", str(root), split, inputs, dict(inputs), truth, train)


# --------------------------------------------------------------------------------------------- attribute editing
def default_edit_attributes(kind: str) -> dict[str, list[str]]:
    """The attributes of the editing presets: colour / pattern / kind of a synthetic flat, the Fashion-MNIST
    class."""
    from fashion_gans.models.config import FMNIST_EDIT_ATTRIBUTES, SYNTHETIC_EDIT_ATTRIBUTES

    src = FMNIST_EDIT_ATTRIBUTES if kind == "fashion-mnist" else SYNTHETIC_EDIT_ATTRIBUTES
    return {k: list(v) for k, v in src.items()}


def edit_data_kind(data: str | os.PathLike) -> tuple[str, Path | None]:
    """``("synthetic", None)`` for ``synthetic`` (flats rendered in memory) or ``("fashion-mnist", root)``: the
    data the editing tasks are evaluated on (an error naming both for anything else)."""
    text = str(data)
    if text.lower() == SYNTHETIC_NAME:
        return "synthetic", None
    if text.lower() in FMNIST_NAMES or (Path(text).expanduser().is_dir()
                                        and any(Path(text).expanduser().glob("train-images-idx3-ubyte*"))):
        return resolve_data_kind(text)
    raise EvaluationError(f"data {text!r}: attribute editing is evaluated on 'synthetic' (held-out product photos "
                          "rendered in memory) or 'fashion-mnist' (or a folder of the Fashion-MNIST files)")


def load_edit_data(task: str, data: str | os.PathLike, *, split: str = "test", count: int = 256,
                   image_size: tuple[int, int] | int | None = None, channels: int | None = None,
                   attributes: dict[str, list[str]] | None = None, train_seed: int = 0, train_count: int = 512,
                   data_options: dict[str, Any] | None = None) -> EvalData:
    """Labelled images for an attribute editor (``fader`` / ``icgan``): ``inputs["image"]`` (= ``targets``:
    an edit to the image's own attributes should give it back), ``truth["attributes"]`` value indices in the
    order of ``attributes`` (default: the presets' attributes), and ``train_count`` training images with their
    labels (``train_targets["image"]``, ``truth["train_attributes"]``) for the baselines.

    ``synthetic``: :class:`~fashion_gans.data.attributes.SyntheticAttributeDataset` of world seed ``train_seed``
    (the seed the model trained on). A flat is a pure function of its design (kind, colour, pattern, pattern
    colour): another world seed draws the same pixels for the same design, so held-out means *designs the
    training seed holds out* (the ``test`` split of that seed; ``test_fraction`` from ``data_options``), never a
    training image. ``fashion-mnist``: the official split, ``count`` images spread over it."""
    import numpy as np

    kind, root = edit_data_kind(data)
    if split not in ("train", "test"):
        raise EvaluationError(f"attribute-editing data has the splits 'train' and 'test', not {split!r}")
    size = image_size if image_size is not None else (32 if kind == "fashion-mnist" else 64)
    size = int(size[0]) if isinstance(size, (tuple, list)) else int(size)
    attrs = {k: list(v) for k, v in (attributes or default_edit_attributes(kind)).items()}
    if kind == "fashion-mnist":
        from fashion_gans.data.attributes import fmnist_edit_problem
        from fashion_gans.data.fashion_mnist import _to_tensor

        problem = fmnist_edit_problem(attrs, size)
        if problem:
            raise EvaluationError(problem)
        ch = channels or 1

        def take(which: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
            images, labels = _load_fmnist(root, which)
            idx = _spread(len(labels), n)
            x = torch.stack([_to_tensor(images[i], 32, ch) for i in idx]) if idx else torch.empty(0, ch, 32, 32)
            return x, torch.as_tensor(np.asarray(labels)[idx], dtype=torch.int64).view(-1, 1)

        x, y = take(split, count)
        tx, ty = take("train", train_count) if train_count else (x[:0], y[:0])
        location = str(root)
    else:
        from fashion_gans.data.attributes import SyntheticAttributeDataset, _uint8_to_signed

        if channels not in (None, 1, 3):
            raise EvaluationError(f"channels must be 1 or 3, got {channels}")
        opts = {k: v for k, v in _split_options(data_options).items() if k == "test_fraction"}

        def take(which: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
            ds = SyntheticAttributeDataset(n, which, size=size, seed=int(train_seed), attributes=attrs,
                                           channels=channels or 3, **opts)
            return _uint8_to_signed(ds.images), ds.labels.clone()

        try:
            x, y = take(split, count)
            tx, ty = take("train", train_count) if train_count else (x[:0], y[:0])
        except ValueError as exc:
            raise EvaluationError(f"synthetic attribute flats: {exc}") from exc
        location = f"synthetic flats (world seed {int(train_seed)}, {'held-out designs' if split == 'test' else split})"
    truth = {"attributes": y, "attribute_values": attrs, "train_attributes": ty}
    return EvalData(task, kind, location, split, {"image": x}, {"image": x}, truth,
                    {"image": tx} if train_count else {})


# --------------------------------------------------------------------------------------------- synthetic world
def _split_options(options: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (options or {}).items() if k in SPLIT_OPTIONS}


def _options_for(cls, options: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that ``cls.__init__`` takes as keyword arguments."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in options.items() if k in params}


def _synthetic(task: str, root: Path, split: str, count: int, image_size, channels, pose_encoding: str,
               train_count: int, options: dict[str, Any], kind: str = "synthetic") -> EvalData:
    if channels not in (None, 3):
        raise EvaluationError(f"the synthetic world is RGB; a model with {channels} channel(s) does not fit it")
    if task == "pose":
        return _pose(root, split, count, image_size or (64, 64), pose_encoding, train_count, options)
    if task == "garment":
        return _garment(root, split, count, image_size or (64, 64), train_count, options, kind == "synthetic")
    if task == "style":
        return _style(root, split, count, image_size or (64, 64), train_count, options, kind == "synthetic")
    return _generation(root, split, count, image_size or (32, 32), train_count, options)


def _pose(root: Path, split: str, count: int, size, encoding: str, train_count: int, options) -> EvalData:
    from fashion_gans.data.inshop import InShopPoseDataset

    folder = _sub(root, "inshop", "img", "pose")
    options = _options_for(InShopPoseDataset, options)
    ds = InShopPoseDataset(folder, split, encoding, tuple(size), **options)
    items = [ds[i] for i in _spread(len(ds), count)]
    if not items:
        raise EvaluationError(f"{folder}: the {split!r} split has no pose pairs")
    inputs = {"source_image": _stack(items, "source_image"), "target_pose": _stack(items, "target_pose")}
    targets = {"target_image": _stack(items, "target_image")}
    truth = {"target_keypoints": _stack(items, "target_keypoints").float(),
             "source_keypoints": _stack(items, "source_keypoints").float()}
    train = {}
    if train_count:
        tr = InShopPoseDataset(folder, "train", encoding, tuple(size), **options)
        train = {"target_image": _stack([tr[i] for i in _spread(len(tr), train_count)], "target_image")}
    return EvalData("pose", "synthetic", str(folder), split, inputs, targets, truth, train)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise EvaluationError(f"{path}: missing; the ground-truth attributes are written by the synthetic "
                              "renderer (scripts/prepare_data.py)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc})") from exc


def _garment(root: Path, split: str, count: int, size, train_count: int, options, attributes: bool = True,
             ) -> EvalData:
    from fashion_gans.data.lookbook import ATTRIBUTES_FILE, LookBookDataset

    folder = _sub(root, "lookbook", "ImgHQ", "garment")
    side = int(size[0])
    options = _options_for(LookBookDataset, options)
    ds = LookBookDataset(folder, split, side, **options)
    items = [ds[i] for i in _spread(len(ds), count)]
    if not items:
        raise EvaluationError(f"{folder}: the {split!r} split has no person/product pairs")
    records = _read_json(folder / ATTRIBUTES_FILE).get("images", {}) if attributes else {}
    colours, patterns = [], []
    for it in items if attributes else ():
        rec = records.get(Path(str(it["product_path"])).name)
        if rec is None or "garment" not in rec:
            raise EvaluationError(f"{folder / ATTRIBUTES_FILE}: no garment attributes for {it['product_path']}")
        colours.append(rec["garment"]["colour"])
        patterns.append(rec["garment"]["pattern"])
    inputs = {"person_image": _stack(items, "person_image")}
    targets = {"product_image": _stack(items, "product_image")}
    train = {}
    if train_count:
        tr = LookBookDataset(folder, "train", side, **options)
        train = {"product_image": _stack([tr[i] for i in _spread(len(tr), train_count)], "product_image")}
    return EvalData("garment", "synthetic", str(folder), split, inputs, targets,
                    {"colour": colours, "pattern": patterns} if attributes else {}, train)


def _style(root: Path, split: str, count: int, size, train_count: int, options, attributes: bool = True,
           ) -> EvalData:
    from fashion_gans.data.bags_shoes import ATTRIBUTES_FILE, BagsShoesDataset

    folder = _sub(root, "bags_shoes", ATTRIBUTES_FILE, "style")
    side = int(size[0])
    options = _options_for(BagsShoesDataset, options)
    meta = _read_json(folder / ATTRIBUTES_FILE) if attributes else {}

    def unique(ds) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        shoes: dict[int, torch.Tensor] = {}
        bags: dict[int, torch.Tensor] = {}
        for i in range(len(ds)):
            it = ds[i]
            shoes.setdefault(int(it["shoe_index"]), it["shoe"])
            bags.setdefault(int(it["bag_index"]), it["bag"])
        return shoes, bags

    shoes, bags = unique(BagsShoesDataset(folder, split, side, **options))
    s_keys = [sorted(shoes)[i] for i in _spread(len(shoes), count)]
    b_keys = [sorted(bags)[i] for i in _spread(len(bags), count)]
    inputs = {"shoe": torch.stack([shoes[k] for k in s_keys]), "bag": torch.stack([bags[k] for k in b_keys])}
    other_split: tuple[dict, dict] = ({}, {})
    if attributes:
        try:
            other_split = unique(BagsShoesDataset(folder, "test" if split == "train" else "train", side, **options))
        except DataError:  # an empty other split: partners come from this split only
            pass
    train = {}
    if train_count:
        tr_shoes, tr_bags = unique(BagsShoesDataset(folder, "train", side, **options)) if split != "train" \
            else (shoes, bags)
        train = {"shoe": torch.stack([tr_shoes[k] for k in sorted(tr_shoes)][:train_count]),
                 "bag": torch.stack([tr_bags[k] for k in sorted(tr_bags)][:train_count])}
    truth: dict[str, Any] = {}
    if attributes:
        try:
            styles = meta["styles"]
            shoe_ids = [int(meta["shoes"][k]["style_id"]) for k in s_keys]
            bag_ids = [int(meta["handbags"][k]["style_id"]) for k in b_keys]
            truth = {"shoe_style": [styles[str(i)] for i in shoe_ids], "bag_style": [styles[str(i)] for i in bag_ids]}
            # The real images of the other domain that share each source's style: what a perfect translator
            # would produce (the ceiling of style_match), from this split first, else from the other one.
            for src, ids, dst, meta_key, pools in (
                    ("shoe", shoe_ids, "bag", "handbags", (bags, other_split[1])),
                    ("bag", bag_ids, "shoe", "shoes", (shoes, other_split[0]))):
                by_style: dict[int, torch.Tensor] = {}
                for pool in pools:
                    for k in sorted(pool):
                        by_style.setdefault(int(meta[meta_key][k]["style_id"]), pool[k])
                found = [(by_style[i], styles[str(i)]) for i in ids if i in by_style]
                if found:
                    truth[f"{src}_partner"] = torch.stack([img for img, _ in found])
                    truth[f"{src}_partner_style"] = [st for _, st in found]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise EvaluationError(f"{folder / ATTRIBUTES_FILE}: malformed style records ({exc})") from exc
    return EvalData("style", "synthetic", str(folder), split, inputs, dict(inputs), truth, train)


def _generation(root: Path, split: str, count: int, size, train_count: int, options) -> EvalData:
    from fashion_gans.data.fisb import FISBDataset

    if (root / "fisb" / "G2.h5").is_file():
        path = root / "fisb" / "G2.h5"
    elif (root / "G2.h5").is_file():
        path = root / "G2.h5"
    else:
        raise EvaluationError(f"data {root}: task 'generation' needs fisb/G2.h5 (render it with "
                              "scripts/prepare_data.py)")
    side = int(size[0])
    options = _options_for(FISBDataset, options)
    ds = FISBDataset(path, split, side, **options)
    items = [ds[i] for i in _spread(len(ds), count)]
    if not items:
        raise EvaluationError(f"{path}: the {split!r} split has no images")
    train = {}
    if train_count:
        tr = FISBDataset(path, "train", side, **options)
        train = {"image": _stack([tr[i] for i in _spread(len(tr), train_count)], "image")}
    return EvalData("generation", "synthetic", str(path), split, {}, {"image": _stack(items, "image")}, {}, train)
