#!/usr/bin/env python3
"""Render the synthetic fashion world to disk in the real datasets' formats.

    python scripts/prepare_data.py synthetic --out data/synthetic --identities 200 --size 256

writes, under ``--out``::

    inshop/      DeepFashion In-shop layout: img/<MEN|WOMEN>/<Category>/id_*/NN_K_<view>.jpg (+ _IUV.png),
                 Eval/list_eval_partition.txt, fasion-resize-{annotation,pairs}-{train,test}.csv
    lookbook/    LookBook: ImgHQ/PID<pid>_CLEAN<0|1>_IID<iid>.jpg
    fisb/G2.h5   DeepFashion Fashion Synthesis (FISB) h5
    bags_shoes/  handbags_64.hdf5, shoes_64.hdf5 (key "imgs")

each with its ``synthetic_attributes.json`` (or the module's own attribute file). The whole tree is built in a
temporary folder next to ``--out`` and renamed at the end, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DATASETS = ("inshop", "lookbook", "fisb", "bags_shoes")


def parse_size(text: str) -> tuple[int, int]:
    """``256`` -> (256, 256); ``256x176`` -> (256, 176) (height x width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16:
        raise argparse.ArgumentTypeError(f"size must be N or HxW with sides >= 16, got {text!r}")
    return parts[0], parts[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synthetic", help="render the synthetic world in the real datasets' formats")
    p.add_argument("--out", type=Path, required=True, help="output folder (created atomically)")
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated subset of {','.join(DATASETS)} (default: all)")
    p.add_argument("--seed", type=int, default=0, help="world seed (same seed, same pixels)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    g = p.add_argument_group("In-shop (pose transfer)")
    g.add_argument("--identities", type=int, default=200, help="In-shop products (one synthetic person each)")
    g.add_argument("--size", type=parse_size, default=(256, 256),
                   help="In-shop image size, N or HxW: 256 (thesis release) or 256x176 (PATN protocol)")
    g.add_argument("--groups", type=int, default=2, help="max outfit groups (colour variants) per product")
    g.add_argument("--poses", type=int, default=4, help="posed images per group")
    g.add_argument("--flat-fraction", type=float, default=0.5, help="share of products with *_flat.jpg shots")
    g.add_argument("--test-fraction", type=float, default=0.2, help="share of products in the test split")
    g = p.add_argument_group("LookBook (garment extraction)")
    g.add_argument("--lookbook-products", type=int, default=None, help="products (default: --identities)")
    g.add_argument("--lookbook-persons", type=int, default=4, help="person photos per product")
    g.add_argument("--lookbook-size", type=parse_size, default=None,
                   help="N or HxW (default: square, the height of --size)")
    g = p.add_argument_group("FISB (generation)")
    g.add_argument("--fisb-count", type=int, default=None, help="images (default: 4 x --identities)")
    g.add_argument("--fisb-size", type=int, default=128)
    g = p.add_argument_group("bags <-> shoes (style matching)")
    g.add_argument("--bags", type=int, default=None, help="handbags (default: 2 x --identities)")
    g.add_argument("--shoes", type=int, default=None, help="shoes (default: --identities)")
    g.add_argument("--bags-shoes-size", type=int, default=64)
    return parser


def _tree_size(path: Path) -> tuple[int, int]:
    files = [f for f in path.rglob("*") if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files)


def _human(nbytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return ""  # pragma: no cover


def run_synthetic(args: argparse.Namespace) -> int:
    from fashion_gans.data.inshop import InShopWriteConfig, write_synthetic_inshop
    from fashion_gans.data.io import atomic_directory
    from fashion_gans.data.lookbook import LookBookWriteConfig, write_synthetic_lookbook
    from fashion_gans.data.synthetic import SyntheticWorld

    chosen = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(chosen) - set(DATASETS))
    if unknown or not chosen:
        print(f"error: unknown datasets {unknown}; choose from {','.join(DATASETS)}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2
    n = args.identities
    world = SyntheticWorld(seed=args.seed)
    lines = []
    start = time.perf_counter()
    with atomic_directory(args.out, overwrite=args.overwrite) as tmp:
        if "inshop" in chosen:
            cfg = InShopWriteConfig(identities=n, size=args.size, max_groups=args.groups, poses_per_group=args.poses,
                                    flat_fraction=args.flat_fraction, test_fraction=args.test_fraction,
                                    seed=args.seed)
            lines.append(("inshop", str(write_synthetic_inshop(tmp / "inshop", world, cfg))))
        if "lookbook" in chosen:
            cfg = LookBookWriteConfig(products=args.lookbook_products or n, persons_per_product=args.lookbook_persons,
                                      size=args.lookbook_size or (args.size[0], args.size[0]), seed=args.seed)
            lines.append(("lookbook", str(write_synthetic_lookbook(tmp / "lookbook", world, cfg))))
        if "fisb" in chosen:
            from fashion_gans.data.fisb import write_synthetic_fisb

            count = args.fisb_count or 4 * n
            path = write_synthetic_fisb(tmp / "fisb" / "G2.h5", world, count, size=args.fisb_size, seed=args.seed)
            lines.append(("fisb", f"FISB: {count} images at {args.fisb_size}px -> {path.name}"))
        if "bags_shoes" in chosen:
            from fashion_gans.data.bags_shoes import write_synthetic_bags_shoes

            n_bags, n_shoes = args.bags or 2 * n, args.shoes or n
            write_synthetic_bags_shoes(tmp / "bags_shoes", world, n_bags, n_shoes, size=args.bags_shoes_size,
                                       seed=args.seed)
            lines.append(("bags_shoes", f"bags/shoes: {n_bags} handbags, {n_shoes} shoes at {args.bags_shoes_size}px"))
        sizes = {name: _tree_size(tmp / name) for name, _ in lines}
    elapsed = time.perf_counter() - start
    for name, text in lines:
        files, nbytes = sizes[name]
        print(f"{args.out / name}: {text.split(' -> ')[0]} ({files} files, {_human(nbytes)})")
    print(f"wrote {args.out} in {elapsed:.1f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "synthetic":
        return run_synthetic(args)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
