"""Data shared by the attribute-editing tasks (Fader Networks, IcGAN): which attribute dataset a run trains on,
and the check that its items fit the model config.

Items are ``{"image": (C, H, W) in [-1, 1], "attributes": int64 (n_attributes,)}`` with the value indices in the
order of the model config's ``attributes`` (:mod:`fashion_gans.data.attributes`).  By ``TrainConfig.data``:

* ``synthetic`` - :class:`~fashion_gans.data.attributes.SyntheticAttributeDataset`: ``synthetic_size`` product
  photos for training and a quarter of that (at least 64) of held-out designs for testing, rendered in memory at
  the model's size from ``TrainConfig.seed`` or a ``data_options`` ``seed`` (no data folder: rendering a few
  thousand flats takes a second; evaluation rebuilds the held-out designs from the same recorded seed and
  ``test_fraction``, :func:`fashion_gans.evaluation.evaluate.training_split`).
* ``fashion-mnist[:DIR]`` - :class:`~fashion_gans.data.attributes.FashionMNISTAttributes` (class as the one
  attribute); the model's attributes must be exactly ``{"class": CLASS_NAMES}``.
* a folder - :class:`~fashion_gans.data.attributes.AttributeFolderDataset` (images + ``attributes.csv``).
* ``hf:`` - not supported (a Hub dataset has no agreed attribute columns).

``TrainConfig.data_options`` reaches the dataset class where it accepts the key (e.g. ``test_fraction``,
``limit``); an option contradicting the model config (size, channels, attributes) is an error.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import TrainingError
from .pose import data_folder, dataset_kwargs, resolve

__all__ = ["build_attribute_dataset", "check_attribute_item", "eval_images", "synthetic_test_count"]

#: Subfolder of a prepared data folder holding the attribute images (a folder given directly works too).
FOLDER_NAME = "attributes"


def synthetic_test_count(train_count: int) -> int:
    """Size of the synthetic test split: a quarter of the training split, at least 64 images."""
    return max(64, int(train_count) // 4)


def build_attribute_dataset(task: Any, split: str) -> torch.utils.data.Dataset:
    """The attribute dataset of ``task`` (its ``config``: a TrainConfig, ``model_config``: a Fader or IcGAN
    config) for ``split`` ("train" or "test")."""
    from fashion_gans.data import attributes as ad
    from fashion_gans.data.io import DataError

    name = getattr(task, "name", "editing")
    cfg, mc = task.config, task.model_config
    size, channels = int(mc.image_size), int(mc.image_channels)
    kind, location = resolve(cfg)
    options = {"seed": cfg.seed, **cfg.data_options}
    try:
        if kind == "synthetic":
            n = int(cfg.synthetic_size)
            if n < 1:
                raise TrainingError(f"TrainConfig.synthetic_size: must be >= 1, got {n}")
            fixed = {"size": size, "channels": channels, "attributes": dict(mc.attributes),
                     "count": n if split == "train" else synthetic_test_count(n)}
            return ad.SyntheticAttributeDataset(
                split=split, **dataset_kwargs(ad.SyntheticAttributeDataset, options, fixed, name))
        if kind == "fashion-mnist":
            problem = ad.fmnist_edit_problem(mc.attributes, size)
            if problem:
                raise TrainingError(f"task {name!r}: {problem} (use the preset '{name}_fmnist')")
            fixed = {"pad_to": 32, "channels": channels}
            return ad.FashionMNISTAttributes(
                location, split, **dataset_kwargs(ad.FashionMNISTAttributes, options, fixed, name))
        if kind == "folder":
            fixed = {"size": size, "channels": channels, "attributes": dict(mc.attributes)}
            return ad.AttributeFolderDataset(
                data_folder(location, FOLDER_NAME), split=split,
                **dataset_kwargs(ad.AttributeFolderDataset, options, fixed, name))
        if kind == "hf":
            raise TrainingError(
                f"task {name!r}: Hugging Face datasets (hf:{location}) are not supported for attribute editing; "
                f"use synthetic, fashion-mnist or a folder of images with {ad.CSV_NAME}")
    except (DataError, ValueError, TypeError) as exc:
        if isinstance(exc, TrainingError):
            raise
        raise TrainingError(f"task {name!r}: cannot build the {split} attribute dataset from {cfg.data!r}: "
                            f"{exc}") from exc
    raise TrainingError(f"task {name!r} cannot train on data kind {kind!r} ({cfg.data!r})")


def check_attribute_item(task: Any, item: dict[str, torch.Tensor]) -> None:
    """A :class:`TrainingError` when a dataset item does not fit the model config: missing keys, an image that
    is not ``(image_channels, image_size, image_size)``, or an attribute vector of the wrong length or with a
    value index out of range."""
    name = getattr(task, "name", "editing")
    mc = task.model_config
    for key in ("image", "attributes"):
        if key not in item:
            raise TrainingError(f"task {name!r}: dataset items have no {key!r} (keys: {sorted(item)})")
    want = (int(mc.image_channels), int(mc.image_size), int(mc.image_size))
    got = tuple(item["image"].shape)
    if got != want:
        raise TrainingError(f"task {name!r}: dataset images are {got} (C, H, W) but the model config "
                            f"{type(mc).__name__} expects {want}; set model_overrides (image_size, image_channels)")
    attrs = torch.as_tensor(item["attributes"])
    names = list(mc.attributes)
    if attrs.dim() != 1 or attrs.numel() != len(names):
        raise TrainingError(f"task {name!r}: dataset attribute vectors have shape {tuple(attrs.shape)} but the "
                            f"model config has {len(names)} attribute(s) {names}")
    for k, attr in enumerate(names):
        v, n = int(attrs[k]), len(mc.attributes[attr])
        if not 0 <= v < n:
            raise TrainingError(f"task {name!r}: attribute {attr!r} has value index {v}, outside 0..{n - 1}")


def eval_images(images: list[torch.Tensor], labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out images and labels a task evaluated (lists of ``(n, C, H, W)`` / ``(n, n_attributes)``
    batches) as one batch each, labels on the CPU and images where they were.  Every process holds the whole
    held-out set (see :meth:`~fashion_gans.training.tasks.base.Task.mean_metrics`), so the edit metrics, whose
    edits depend on each image's position, are those of a one-process run."""
    return torch.cat(images), torch.cat(labels).cpu()
