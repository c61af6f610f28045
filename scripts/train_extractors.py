#!/usr/bin/env python3
"""Train the shipped domain feature extractors deterministically on the CPU and write their weights.

    python3 scripts/train_extractors.py                      # all three, into fashion_gans/assets/extractors/
    python3 scripts/train_extractors.py --only fmnist-classifier --epochs 3 --threads 2
    python3 scripts/train_extractors.py --out /tmp/ext --only synthetic-attributes

``fmnist-classifier``: Fashion-MNIST train split (60k), accuracy measured on the official 10k test set.
``synthetic-attributes``: rendered from ``SyntheticWorld(seed)`` (identities / styles 0..n-1); held-out
accuracy per head on a fresh world (``SyntheticWorld(seed + 1000)``: new identities, outfits and styles).
``synthetic-pose``: the keypoint detector of the pose-transfer metrics, trained on ``--pose-persons`` renders of
``SyntheticWorld(seed)`` with known keypoints; held-out error (mean distance / image height) and PCK@0.05 on a
fresh world (``SyntheticWorld(seed + 1000)``).

Each network is written atomically as ``<out>/<name>/model.safetensors`` + ``config.json`` (architecture,
training command, seed, threads, data, held-out accuracy, wall time).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

NAMES = ("fmnist-classifier", "synthetic-attributes", "synthetic-pose")


def parse_args(argv=None) -> argparse.Namespace:
    from fashion_gans.metrics.extractors.domain import ASSETS_DIR

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=NAMES, action="append", help="train only this network (repeatable)")
    p.add_argument("--out", type=Path, default=ASSETS_DIR, help="output folder (default: the package assets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (fixed for determinism)")
    p.add_argument("--epochs", type=int, default=None, help="override the per-network default")
    p.add_argument("--fmnist-root", default=os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--fmnist-limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--persons", type=int, default=4000, help="synthetic training persons")
    p.add_argument("--flats", type=int, default=6000, help="synthetic training flat shots")
    # Trained on lossless renders only, the reader got the colour of 99.8% of held-out product photos right but of
    # 93.5% once they went through a JPEG of quality 95 (navy with yellow checks read as black, orange with grey
    # stripes as grey): the dataset folders it scores hold JPEGs.
    p.add_argument("--jpeg-fraction", type=float, default=0.5,
                   help="synthetic-attributes: share of training and held-out images read back from a JPEG")
    p.add_argument("--accessories", type=int, default=1500, help="synthetic training styles (1 shoe + 1 bag)")
    p.add_argument("--pose-persons", type=int, default=3000, help="synthetic-pose training renders")
    p.add_argument("--heldout-scale", type=float, default=0.25, help="held-out set size / training set size")
    args = p.parse_args(argv)
    if not 0.0 <= args.jpeg_fraction <= 1.0:
        p.error(f"--jpeg-fraction must be in [0, 1], got {args.jpeg_fraction}")
    return args


def _meta(args, name: str, tc, data: dict, accuracy: dict, seconds: float, **extra) -> dict:
    import torch

    return {
        "name": name,
        "command": "python3 scripts/train_extractors.py " + shlex.join(sys.argv[1:]),
        "seed": args.seed,
        "train": tc.to_dict(),
        "data": data,
        "heldout_accuracy": accuracy,
        **extra,
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def train_fmnist(args) -> None:
    from fashion_gans.metrics.extractors.domain import fmnist_config
    from fashion_gans.metrics.extractors.train import TrainConfig, evaluate, fmnist_arrays, train_domain_net

    t0 = time.time()
    cfg = fmnist_config()
    tc = TrainConfig(seed=args.seed, epochs=args.epochs or 3, batch_size=128, lr=3e-3, threads=args.threads)
    x, y = fmnist_arrays(args.fmnist_root, "train", args.fmnist_limit)
    xt, yt = fmnist_arrays(args.fmnist_root, "test")
    ext = train_domain_net(cfg, x, y, tc)
    acc = evaluate(ext, xt, yt)
    print(f"[{cfg.name}] test accuracy {acc['class']['accuracy']:.4f} on {acc['class']['n']} images")
    data = {"train": f"Fashion-MNIST train ({x.shape[0]} images)", "heldout": "Fashion-MNIST test (10000 images)",
            "root": str(args.fmnist_root)}
    ext.save_pretrained(args.out / cfg.name, _meta(args, cfg.name, tc, data, acc, time.time() - t0))


def train_synthetic(args) -> None:
    from fashion_gans.metrics.extractors.domain import synthetic_attributes_config
    from fashion_gans.metrics.extractors.train import (TrainConfig, evaluate, evaluate_by_domain, predict,
                                                       render_synthetic, train_domain_net)

    t0 = time.time()
    cfg = synthetic_attributes_config()
    tc = TrainConfig(seed=args.seed, epochs=args.epochs or 6, batch_size=128, lr=3e-3, threads=args.threads)
    x, y = render_synthetic(cfg, args.seed, args.persons, args.flats, args.accessories, args.jpeg_fraction)
    s = args.heldout_scale
    held_seed = args.seed + 1000
    xh, yh = render_synthetic(cfg, held_seed, int(args.persons * s), int(args.flats * s), int(args.accessories * s),
                              args.jpeg_fraction)
    print(f"[{cfg.name}] rendered {x.shape[0]} training and {xh.shape[0]} held-out images "
          f"({time.time() - t0:.0f}s)")
    ext = train_domain_net(cfg, x, y, tc)
    preds = predict(ext, xh, yh)  # read once, scored overall and per domain
    acc = evaluate(ext, xh, yh, predictions=preds)
    for k, v in acc.items():
        print(f"[{cfg.name}] held-out {k}: {v['accuracy']:.4f} (n={v['n']})")
    by_domain = evaluate_by_domain(ext, xh, yh, predictions=preds)
    for d, heads in by_domain.items():
        print(f"[{cfg.name}] held-out {d}: " + ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in heads.items()))
    data = {"train": {"world_seed": args.seed, "persons": args.persons, "flats": args.flats,
                      "accessory_styles": args.accessories, "jpeg_fraction": args.jpeg_fraction,
                      "images": int(x.shape[0])},
            "heldout": {"world_seed": held_seed, "persons": int(args.persons * s), "flats": int(args.flats * s),
                        "accessory_styles": int(args.accessories * s), "jpeg_fraction": args.jpeg_fraction,
                        "images": int(xh.shape[0])}}
    ext.save_pretrained(args.out / cfg.name, _meta(args, cfg.name, tc, data, acc, time.time() - t0,
                                                   heldout_accuracy_by_domain=by_domain))


def train_pose(args) -> None:
    from fashion_gans.metrics.extractors.keypoints import KeypointNetConfig
    from fashion_gans.metrics.extractors.train import (TrainConfig, evaluate_keypoints, render_keypoint_set,
                                                       train_keypoint_net)

    t0 = time.time()
    cfg = KeypointNetConfig()
    tc = TrainConfig(seed=args.seed, epochs=args.epochs or 8, batch_size=64, lr=3e-3, threads=args.threads)
    held_seed = args.seed + 1000
    n_held = max(1, int(args.pose_persons * args.heldout_scale))
    x, k = render_keypoint_set(args.seed, args.pose_persons, cfg.image_size)
    xh, kh = render_keypoint_set(held_seed, n_held, cfg.image_size)
    print(f"[{cfg.name}] rendered {x.shape[0]} training and {xh.shape[0]} held-out images ({time.time() - t0:.0f}s)")
    det = train_keypoint_net(cfg, x, k, tc)
    acc = evaluate_keypoints(det, xh, kh)
    print(f"[{cfg.name}] held-out error {acc['error_height']:.4f} of the height, PCK@0.05 {acc['pck_0.05']:.4f} "
          f"(n={acc['n']})")
    data = {"train": {"world_seed": args.seed, "persons": args.pose_persons},
            "heldout": {"world_seed": held_seed, "persons": n_held}}
    det.save_pretrained(args.out / cfg.name, _meta(args, cfg.name, tc, data, {"keypoints": acc}, time.time() - t0))


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    for name in args.only or NAMES:
        {"fmnist-classifier": train_fmnist, "synthetic-attributes": train_synthetic,
         "synthetic-pose": train_pose}[name](args)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
