"""Render the synthetic fashion world to disk in the real datasets' formats (library behind
``scripts/prepare_data.py`` and the training kit's ``data="synthetic"``).

Layout under ``out``::

    inshop/      DeepFashion In-shop layout: img/<MEN|WOMEN>/<Category>/id_*/NN_K_<view>.jpg (+ _IUV.png),
                 Eval/list_eval_partition.txt, fasion-resize-{annotation,pairs}-{train,test}.csv
    lookbook/    LookBook: ImgHQ/PID<pid>_CLEAN<0|1>_IID<iid>.jpg
    fisb/G2.h5   DeepFashion Fashion Synthesis (FISB) h5
    bags_shoes/  handbags_64.hdf5, shoes_64.hdf5 (key "imgs")

The whole tree is built in a temporary folder next to ``out`` and renamed at the end, so an interrupted run
leaves nothing behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .io import atomic_directory

__all__ = ["DATASETS", "prepare_synthetic"]

DATASETS = ("inshop", "lookbook", "fisb", "bags_shoes")


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = (int(s) for s in size)
    return h, w


def prepare_synthetic(
    out: str | os.PathLike,
    *,
    datasets: Sequence[str] = DATASETS,
    identities: int = 200,
    size: int | Sequence[int] = (256, 256),
    seed: int = 0,
    groups: int = 2,
    poses: int = 4,
    flat_fraction: float = 0.5,
    test_fraction: float = 0.2,
    lookbook_products: int | None = None,
    lookbook_persons: int = 4,
    lookbook_size: int | Sequence[int] | None = None,
    fisb_count: int | None = None,
    fisb_size: int = 128,
    bags: int | None = None,
    shoes: int | None = None,
    bags_shoes_size: int = 64,
    overwrite: bool = False,
) -> dict[str, str]:
    """Render ``datasets`` (subset of :data:`DATASETS`) of the world of ``seed`` atomically into ``out``.

    ``identities`` In-shop products (one synthetic person each) at ``size`` (N or (H, W)); LookBook
    ``lookbook_products`` (default ``identities``) with ``lookbook_persons`` photos each; FISB ``fisb_count``
    images (default ``4 * identities``); ``bags`` handbags (default ``2 * identities``) and ``shoes`` shoes
    (default ``identities``).  Returns ``{dataset: one-line summary}``.  Raises ``ValueError`` for unknown
    datasets and ``FileExistsError`` if ``out`` exists and ``overwrite`` is false.
    """
    from .inshop import InShopWriteConfig, write_synthetic_inshop
    from .lookbook import LookBookWriteConfig, write_synthetic_lookbook
    from .synthetic import SyntheticWorld

    chosen = [d.strip() for d in datasets if d.strip()]
    unknown = sorted(set(chosen) - set(DATASETS))
    if unknown or not chosen:
        raise ValueError(f"unknown datasets {unknown}; choose from {','.join(DATASETS)}")
    out = Path(out)
    size = _pair(size)
    n = identities
    world = SyntheticWorld(seed=seed)
    summary: dict[str, str] = {}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        if "inshop" in chosen:
            cfg = InShopWriteConfig(identities=n, size=size, max_groups=groups, poses_per_group=poses,
                                    flat_fraction=flat_fraction, test_fraction=test_fraction, seed=seed)
            summary["inshop"] = str(write_synthetic_inshop(tmp / "inshop", world, cfg))
        if "lookbook" in chosen:
            cfg = LookBookWriteConfig(products=lookbook_products or n, persons_per_product=lookbook_persons,
                                      size=_pair(lookbook_size) if lookbook_size else (size[0], size[0]), seed=seed)
            summary["lookbook"] = str(write_synthetic_lookbook(tmp / "lookbook", world, cfg))
        if "fisb" in chosen:
            from .fisb import write_synthetic_fisb

            count = fisb_count or 4 * n
            path = write_synthetic_fisb(tmp / "fisb" / "G2.h5", world, count, size=fisb_size, seed=seed)
            summary["fisb"] = f"FISB: {count} images at {fisb_size}px -> {path.name}"
        if "bags_shoes" in chosen:
            from .bags_shoes import write_synthetic_bags_shoes

            n_bags, n_shoes = bags or 2 * n, shoes or n
            write_synthetic_bags_shoes(tmp / "bags_shoes", world, n_bags, n_shoes, size=bags_shoes_size, seed=seed)
            summary["bags_shoes"] = f"bags/shoes: {n_bags} handbags, {n_shoes} shoes at {bags_shoes_size}px"
    return summary
