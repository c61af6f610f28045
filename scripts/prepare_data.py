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

from fashion_gans.data.prepare import DATASETS


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
    from fashion_gans.data.prepare import prepare_synthetic

    chosen = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(chosen) - set(DATASETS))
    if unknown or not chosen:
        print(f"error: unknown datasets {unknown}; choose from {','.join(DATASETS)}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    summary = prepare_synthetic(
        args.out, datasets=chosen, identities=args.identities, size=args.size, seed=args.seed, groups=args.groups,
        poses=args.poses, flat_fraction=args.flat_fraction, test_fraction=args.test_fraction,
        lookbook_products=args.lookbook_products, lookbook_persons=args.lookbook_persons,
        lookbook_size=args.lookbook_size, fisb_count=args.fisb_count, fisb_size=args.fisb_size, bags=args.bags,
        shoes=args.shoes, bags_shoes_size=args.bags_shoes_size, overwrite=args.overwrite,
    )
    elapsed = time.perf_counter() - start
    for name, text in summary.items():
        files, nbytes = _tree_size(args.out / name)
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
