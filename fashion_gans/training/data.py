"""Where a training run's data comes from: ``TrainConfig.data`` parsed, and the synthetic world rendered once.

``resolve_data(config)`` turns ``config.data`` into ``(kind, location)``:

* ``synthetic``                 -> ``("synthetic", "")``
* ``fashion-mnist[:DIR]``       -> ``("fashion-mnist", DIR)`` (default: the Debian package's folder)
* ``hf:REPO_ID_OR_PATH``        -> ``("hf", REPO_ID_OR_PATH)``
* anything else (a path)        -> ``("folder", PATH)`` (must exist)

``synthetic_root(config, datasets)`` renders the synthetic world for a run once into
``<output_dir>/../data-cache/synthetic-<hash>/`` (shared by every run next to it; the hash covers every
rendering option, so a different seed or size renders a new world) and returns that folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .config import TrainConfig, TrainingError

__all__ = ["resolve_data", "data_kind", "synthetic_root", "synthetic_options", "FASHION_MNIST_DEFAULT"]

FASHION_MNIST_DEFAULT = "/usr/share/datasets/fashion-mnist"


def data_kind(data: str) -> tuple[str, str]:
    """``(kind, location)`` of a ``TrainConfig.data`` string by its form alone (nothing is checked on disk):
    ``synthetic``, ``fashion-mnist`` (its folder), ``hf`` (the repo id or path), ``folder`` (the path), or
    ``("", "")`` for an empty string."""
    data = (data or "").strip()
    if data == "synthetic":
        return "synthetic", ""
    if data == "fashion-mnist" or data.startswith("fashion-mnist:"):
        return "fashion-mnist", data.partition(":")[2] or FASHION_MNIST_DEFAULT
    if data.startswith("hf:"):
        return "hf", data[3:]
    return ("folder", data) if data else ("", "")


def resolve_data(config: TrainConfig) -> tuple[str, str]:
    kind, location = data_kind(config.data)
    if kind in ("synthetic", "fashion-mnist"):
        return kind, location
    if kind == "hf":
        if not location:
            raise TrainingError("TrainConfig.data: 'hf:' needs a repo id or a local path, e.g. hf:user/dataset")
        return "hf", location
    if not kind:
        raise TrainingError("TrainConfig.data is empty; use synthetic, fashion-mnist[:DIR], hf:REPO or a folder")
    if not Path(location).exists():
        raise TrainingError(f"TrainConfig.data: {location}: no such file or folder (expected synthetic, "
                            "fashion-mnist[:DIR], hf:REPO_ID_OR_PATH or a prepared data folder)")
    return "folder", location


def _model_size(config: TrainConfig) -> tuple[int, int]:
    from fashion_gans.models import get_preset

    model = get_preset(config.preset_name).replace(**config.model_overrides)
    size = getattr(model, "image_size", None)
    if size is None:
        res = int(getattr(model, "resolution", 64))
        return res, res
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def synthetic_options(config: TrainConfig, datasets: tuple[str, ...]) -> dict[str, Any]:
    """Keyword arguments of :func:`fashion_gans.data.prepare.prepare_synthetic` for this run.

    Images are rendered at the model resolution (or ``data_options["size"]`` when given), ``synthetic_size``
    identities / products / images / bags / shoes, from ``config.seed``.
    """
    from fashion_gans.data.prepare import DATASETS

    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown or not datasets:
        raise TrainingError(f"synthetic data: unknown dataset(s) {unknown}; choose from {list(DATASETS)}")
    size = config.data_options.get("size")
    if size is None:
        h, w = _model_size(config)
    elif isinstance(size, int):
        h, w = size, size
    else:
        h, w = int(size[0]), int(size[1])
    n = int(config.synthetic_size)
    if n < 1:
        raise TrainingError(f"TrainConfig.synthetic_size: must be >= 1, got {n}")
    return {
        "datasets": sorted(set(datasets)),
        "identities": n,
        "size": [h, w],
        "seed": int(config.seed),
        "lookbook_products": n,
        "lookbook_size": [h, h],
        "fisb_count": n,
        "fisb_size": max(h, 16),
        "bags": n,
        "shoes": n,
        "bags_shoes_size": max(h, 16),
    }


def synthetic_root(config: TrainConfig, datasets: tuple[str, ...]) -> Path:
    """Render (once, atomically) and return the synthetic data folder of this run's options."""
    from fashion_gans.data.prepare import prepare_synthetic

    options = synthetic_options(config, tuple(datasets))
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(config.output_dir).resolve().parent / "data-cache" / f"synthetic-{digest}"
    if root.is_dir():
        return root
    try:
        prepare_synthetic(root, **options)
    except (FileExistsError, OSError):
        # Another process of the same launch finished rendering the same world first: use it.
        if not root.is_dir():
            raise
    return root
