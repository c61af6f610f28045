#!/usr/bin/env python3
"""Evaluate a trained model (or a baseline) on held-out data of its task; write metrics.json and metrics.md.

    python3 scripts/evaluate.py --model runs/pose --data runs/pose/data --count 256 --out results/pose
    python3 scripts/evaluate.py --baseline copy --task pose --data data/synthetic --out results/pose-copy
    python3 scripts/evaluate.py --model user/style-fmnist --data fashion-mnist --out results/style-fmnist
    python3 scripts/evaluate.py --model fader-synthetic --data synthetic --out results/fader
    python3 scripts/evaluate.py --baseline nearest --task fader --data synthetic --train-count 3000 --out results/n

``--model``: a bundled name, a model folder, a training run folder, a checkpoint folder or a Hub repo id.
``--data``: a prepared synthetic folder (``scripts/prepare_data.py``; a training run's ``data/``), one dataset's
root, or ``fashion-mnist``; attribute editing (``fader``, ``icgan``): ``synthetic`` (product photos of the designs
the training seed held out, rendered in memory) or ``fashion-mnist``, scored by edit success, attributes kept and
reconstruction, the baselines being editors (``copy``: the input; ``mean``: the mean training image of the
requested attributes; ``nearest``: the training image with the requested attributes nearest to the input).
``metrics.json`` holds one record per metric (metric, value, extractor, sample
count, split, date, model source, task, data) and the skipped metrics with the reason; ``metrics.md`` the same
as a Markdown table. Both are written atomically. A training run folder's split options (``data_options``:
``test_percent`` / ``test_fraction``) are used, so its held-out samples are the ones it did not train on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="model source: bundled name, folder, run, checkpoint or Hub repo id")
    who.add_argument("--baseline", choices=("copy", "mean", "nearest"), help="evaluate a baseline instead")
    p.add_argument("--task", choices=("pose", "garment", "style", "generation", "fader", "icgan"),
                   help="the task (required with --baseline; checked against the model's otherwise)")
    p.add_argument("--data", required=True, help="synthetic data folder, dataset root or 'fashion-mnist'")
    p.add_argument("--split", default="test", choices=("train", "test", "all"),
                   help="test (held out, default); train/all are not held out and are labelled so; baselines need "
                        "test")
    p.add_argument("--count", type=int, default=256, help="held-out samples to evaluate (default 256)")
    p.add_argument("--extractor", default=None, help="feature extractor of FID/KID/PR (default: the domain one)")
    p.add_argument("--image-size", type=int, default=None, help="data resolution for a baseline (default 64)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="latent seed (generation)")
    p.add_argument("--train-count", type=int, default=512,
                   help="training images loaded for the mean / nearest baselines (default 512)")
    p.add_argument("--train-seed", type=int, default=None,
                   help="editing on synthetic flats: the world seed the model trained on (default: recorded with "
                        "the model, 0 for a baseline); its held-out designs are scored")
    p.add_argument("--out", type=Path, required=True, help="output folder for metrics.json and metrics.md")
    args = p.parse_args(argv)
    if args.baseline and not args.task:
        p.error("--baseline needs --task")
    if args.count < 1:
        p.error(f"--count must be >= 1, got {args.count}")
    if args.train_count < 1:
        p.error(f"--train-count must be >= 1, got {args.train_count}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from fashion_gans.evaluation import EvaluationError, evaluate_model
    from fashion_gans.models.hub import ModelFileError

    try:
        result = evaluate_model(args.model, args.data, task=args.task, split=args.split, count=args.count,
                                extractor=args.extractor, baseline=args.baseline, batch_size=args.batch_size,
                                image_size=args.image_size, device=args.device, seed=args.seed,
                                train_count=args.train_count, train_seed=args.train_seed)
    except (EvaluationError, ModelFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    json_path, md_path = result.save(args.out)
    print(result.to_markdown())
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
