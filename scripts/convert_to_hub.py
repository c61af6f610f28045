#!/usr/bin/env python3
"""Convert a prepared dataset to a Hugging Face dataset (parquet shards + card) and optionally push it.

    python scripts/convert_to_hub.py fashion_mnist --root /usr/share/datasets/fashion-mnist --out out/fmnist
    python scripts/convert_to_hub.py fisb --root data/fisb/G2.h5 --out out/fisb --push-to owner/deepfashion-fisb

Every source module (``fashion_gans.data.<module>``) provides ``HF_FEATURES`` and
``iter_hf_records(root, split, ...)``; the converted data loads back with the dataset classes'
``from_hf(repo_id_or_path, split)``.  Pushing needs a token (``--token`` or ``HF_TOKEN``) and network.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceSpec:
    module: str
    title: str
    description: str
    license: str
    task_categories: tuple[str, ...]


SOURCES: dict[str, SourceSpec] = {
    "inshop": SourceSpec(
        "inshop", "DeepFashion In-shop (pose transfer)",
        "Person images with 18 OpenPose keypoints (x, y pixels) and the images each one is paired with for "
        "pose transfer, from the DeepFashion In-shop Clothes Retrieval Benchmark layout (or the project's "
        "synthetic rendering of it). Load with `InShopPoseDataset.from_hf`.",
        "other", ("image-to-image",)),
    "lookbook": SourceSpec(
        "lookbook", "LookBook (garment extraction)",
        "Photos of dressed people and the product photo of the worn garment, grouped by product id, in the "
        "LookBook layout (or the project's synthetic rendering of it). Load with `LookBookDataset.from_hf`.",
        "other", ("image-to-image",)),
    "fisb": SourceSpec(
        "fisb", "DeepFashion Fashion Synthesis (FISB)",
        "Full-body fashion photos decoded from FISB's G2.h5 (128 px, uncropped) with the per-image crop "
        "bounds and background colour of the FISB scraper, so that the light-background filter and the "
        "crop can be applied on load. Load with `FISBDataset.from_hf`.",
        "other", ("unconditional-image-generation",)),
    "bags_shoes": SourceSpec(
        "bags_shoes", "Handbags and shoes (style matching)",
        "Unpaired 64 px handbags and shoes in one table (`domain` column) from the iGAN hdf5 files "
        "(or the project's synthetic rendering with shared styles, `style_id`; -1 where unknown). Load "
        "with `BagsShoesDataset.from_hf`.",
        "other", ("image-to-image",)),
    "fashion_mnist": SourceSpec(
        "fashion_mnist", "Fashion-MNIST",
        "The 70,000 28x28 grey Fashion-MNIST images (Xiao, Rasul and Vollgraf, 2017) with their 10 classes, "
        "in the official train/test split. Load with `FashionMNIST.from_hf` or `FashionMNISTShoesBags.from_hf`.",
        "mit", ("image-classification", "unconditional-image-generation")),
}


def build_card(spec: SourceSpec, splits: list[str]) -> str:
    return (
        f"# {spec.title}\n\n{spec.description}\n\n"
        f"Splits: {', '.join(splits)}. Written by `scripts/convert_to_hub.py {spec.module}` of fashion-gans.\n\n"
        "```python\nfrom fashion_gans.data.hf import load_hf_split\n"
        f"ds = load_hf_split(\"<repo id or directory>\", \"{splits[0]}\")\n```\n"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", choices=sorted(SOURCES), help="which dataset to convert")
    p.add_argument("--root", required=True, help="the prepared dataset (directory, or the .h5 file for fisb)")
    p.add_argument("--out", required=True, type=Path, help="output directory (parquet shards + README.md)")
    p.add_argument("--splits", default="train,test", help="comma-separated splits (default: train,test)")
    p.add_argument("--shard-size", type=int, default=2000, help="rows per parquet shard")
    p.add_argument("--limit", type=int, default=None, help="at most this many records per split (for trials)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    p.add_argument("--push-to", default=None, metavar="REPO_ID", help="also upload to this Hub dataset repo")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fashion_gans.data.hf import push_hf_dataset, write_hf_dataset

    spec = SOURCES[args.source]
    module = importlib.import_module(f"fashion_gans.data.{spec.module}")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not splits:
        print("error: no splits given", file=sys.stderr)
        return 2

    def records(split: str):
        it = module.iter_hf_records(args.root, split)
        return itertools.islice(it, args.limit) if args.limit is not None else it

    out = write_hf_dataset(
        args.out,
        {split: records(split) for split in splits},
        module.HF_FEATURES,
        build_card(spec, splits),
        shard_size=args.shard_size,
        license=spec.license,
        task_categories=spec.task_categories,
        pretty_name=spec.title,
        overwrite=args.overwrite,
    )
    print(f"wrote {out}")
    if args.push_to:
        url = push_hf_dataset(out, args.push_to, token=args.token or os.environ.get("HF_TOKEN"),
                              private=args.private)
        print(f"pushed to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
