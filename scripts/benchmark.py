#!/usr/bin/env python3
"""Benchmarks, one subcommand each, results written as JSON.

    python scripts/benchmark.py synthetic --count 10000 --size 128 --out benchmarks/synthetic.json

``synthetic``: images per second of the procedural fashion world (single process, single thread), rendering
In-shop-style person images on white as pose pairs (two poses per identity, person + pose + render timed
together, as a dataset writer does). Reports the median of several timed repeats after a warm-up, at the
requested size and at 64 and 128 px, plus 64 px product shots, shoes and bags.

    python scripts/benchmark.py eval --count 10000 --out benchmarks/eval_cpu.json

``eval``: the evaluation pipeline at ``--count`` fake and real images: images/second of the shared feature pass
(one extractor pass per set, :func:`fashion_gans.metrics.extract_features`) and the seconds of FID + KID +
precision/recall from those features, against torchmetrics' ``FrechetInceptionDistance`` +
``KernelInceptionDistance`` given the same extractor as their ``feature`` network (each metric runs its own
feature pass). Images: the Fashion-MNIST test split (real) and the first ``--count`` training images (fake),
extractor ``fmnist-classifier``. The FID/KID values of both are recorded too (they should agree).

Adding a benchmark = one ``add_<name>_parser`` function registered in ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


# ----------------------------------------------------------------------------------------------------------------
# Machine description
# ----------------------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _physical_cores() -> int | None:
    try:
        cores = set()
        phys = core = None
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":", 1)[1].strip()
                elif not line.strip():
                    if core is not None:
                        cores.add((phys, core))
                    phys = core = None
        return len(cores) or None
    except OSError:
        return None


def machine_info() -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "usable_cores": affinity,
        "load_average_1min_at_start": load,
        "platform": platform.platform(),
    }


def versions() -> dict:
    import numpy
    import PIL

    out = {"python": platform.python_version(), "numpy": numpy.__version__, "pillow": PIL.__version__}
    try:
        from importlib.metadata import version

        out["fashion_gans"] = version("fashion-gans")
    except Exception:  # not installed as a distribution: running from the source tree
        out["fashion_gans"] = None
    return out


def write_json(result: dict, out: Path) -> None:
    from fashion_gans.data.io import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def timed_rate(fn: Callable[[int], None], count: int, repeats: int, warmup: int) -> dict:
    """Run ``fn(i)`` for ``i in range(count)`` ``repeats`` times after ``warmup`` calls; images/second."""
    for i in range(warmup):
        fn(i)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(count):
            fn(i)
        rates.append(count / (time.perf_counter() - t0))
    return {
        "images_per_second": round(statistics.median(rates), 1),
        "repeats_images_per_second": [round(r, 1) for r in rates],
        "ms_per_image": round(1000.0 / statistics.median(rates), 4),
        "count_per_repeat": count,
    }


# ----------------------------------------------------------------------------------------------------------------
# synthetic
# ----------------------------------------------------------------------------------------------------------------


def add_synthetic_parser(sub) -> None:
    p = sub.add_parser("synthetic", help="images/second of the procedural fashion world",
                       description="Render In-shop-style person images (white background, pose pairs).")
    p.add_argument("--count", type=int, default=10000, help="person images per timed repeat (default 10000)")
    p.add_argument("--size", type=int, default=128, help="headline image size in pixels, square (default 128)")
    p.add_argument("--sizes", type=str, default="64,128", help="comma-separated extra sizes (default 64,128)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported (default 3)")
    p.add_argument("--warmup", type=int, default=200, help="untimed renders before timing (default 200)")
    p.add_argument("--other-count", type=int, default=2000,
                   help="images per repeat for the 64 px flat/shoe/bag numbers (0 to skip; default 2000)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/synthetic.json"), help="JSON result file")
    p.set_defaults(func=run_synthetic)


def run_synthetic(args: argparse.Namespace) -> dict:
    from fashion_gans.data.synthetic import ACCESSORY_SHAPES, SyntheticWorld

    if args.count < 1 or args.repeats < 1 or args.warmup < 0 or args.other_count < 0:
        raise SystemExit("--count and --repeats must be >= 1, --warmup and --other-count >= 0")
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()} | {int(args.size)})
    except ValueError:
        raise SystemExit(f"--sizes: expected comma-separated integers, got {args.sizes!r}") from None
    if min(sizes) < 16:
        raise SystemExit(f"sizes must be at least 16 pixels, got {sizes}")
    world = SyntheticWorld(args.seed)
    machine = machine_info()

    per_size = {}
    for size in sizes:
        cache: dict = {}

        def render_pair_member(i: int, size=size, cache=cache) -> None:
            identity, k = divmod(i, 2)  # two poses per identity: a pose-transfer pair
            if k == 0:
                cache.clear()
                cache["person"] = world.person(identity)
            world.render_person(cache["person"], world.pose(identity, k), (size, size))

        per_size[str(size)] = timed_rate(render_pair_member, args.count, args.repeats, args.warmup)

    other = {}
    if args.other_count:
        people = [world.person(i) for i in range(64)]
        styles = [world.accessory_style(j) for j in range(64)]
        shoes, bags = ACCESSORY_SHAPES["shoe"], ACCESSORY_SHAPES["bag"]
        kinds = {
            "flat_product_shot": lambda i: world.render_flat(people[i % 64].top, (64, 64)),
            "shoe": lambda i: world.render_shoe(styles[i % 64], shoes[i % len(shoes)], (64, 64), variant=i % 3),
            "bag": lambda i: world.render_bag(styles[i % 64], bags[i % len(bags)], (64, 64), variant=i % 3),
            "person_scene_background": lambda i: world.render_person(
                people[i % 64], world.pose(i % 64, i % 7), (64, 64), background="scene", background_seed=i % 32),
        }
        for name, fn in kinds.items():
            other[name] = timed_rate(fn, args.other_count, args.repeats, min(args.warmup, 50))

    result = {
        "benchmark": "synthetic",
        "description": ("Procedural fashion world, person images on white rendered as pose pairs (two poses per "
                        "identity; person, pose and render timed together), single process and thread; "
                        "median of the timed repeats after a warm-up."),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions(),
        "config": {"count": args.count, "size": args.size, "sizes": sizes, "repeats": args.repeats,
                   "warmup": args.warmup, "other_count": args.other_count, "seed": args.seed,
                   "background": "white", "threads": 1},
        "images_per_second": per_size[str(args.size)]["images_per_second"],
        "per_size": per_size,
        "other_kinds_64px": other,
    }
    write_json(result, args.out)
    extra = ", ".join(f"{s} px: {per_size[str(s)]['images_per_second']:.0f}" for s in sizes if s != args.size)
    print(f"synthetic: {result['images_per_second']:.0f} person images/s at {args.size}x{args.size}"
          f"{' (' + extra + ')' if extra else ''} on {machine['cpu_model']} "
          f"({machine['logical_cores']} logical cores, 1 used) -> {args.out}")
    return result


# ----------------------------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------------------------


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="training images/second and peak memory per task and preset",
                       description="Train each task on synthetic data through the training loop; report the median "
                                   "images/second of timed windows after a warm-up (device-synchronised) and the "
                                   "peak memory (CPU: process max RSS; CUDA: max_memory_allocated). Each task runs "
                                   "in its own process so the peak memories do not mix.")
    p.add_argument("--tasks", default="pose,garment,style,generation", help="comma-separated tasks")
    p.add_argument("--preset", action="append", default=[], metavar="TASK=PRESET",
                   help="preset per task (default: the task's *_small preset); repeatable")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (default 3)")
    p.add_argument("--window", type=int, default=5, help="steps per timed window (default 5)")
    p.add_argument("--windows", type=int, default=3, help="timed windows; the median is reported (default 3)")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--synthetic-size", type=int, default=64)
    p.add_argument("--work-dir", type=Path, default=None, help="run folders (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/train_cpu.json"), help="JSON result file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: TASK=PRESET, in a child process
    p.set_defaults(func=run_train)


def _train_one(args: argparse.Namespace, task: str, preset: str, work: Path) -> dict:
    import resource

    import torch

    from fashion_gans.training.config import TrainConfig
    from fashion_gans.training.trainer import Trainer

    steps = args.warmup + args.window * args.windows
    config = TrainConfig(task=task, preset=preset, batch_size=args.batch_size, max_steps=steps,
                         synthetic_size=args.synthetic_size, cpu=args.device == "cpu",
                         mixed_precision=args.mixed_precision, compile=args.compile, log_with="none",
                         output_dir=str(work / f"{task}-{preset}"), checkpoint_every=10 ** 9,
                         sample_every=10 ** 9, log_every=10 ** 9, eval_batches=1)
    cuda = args.device == "cuda"
    marks: dict[int, float] = {}

    def on_step(step: int) -> None:
        if step >= args.warmup and (step - args.warmup) % args.window == 0:
            if cuda:
                torch.cuda.synchronize()
            marks[step] = time.perf_counter()

    trainer = Trainer(config, step_callback=on_step)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit()
    ticks = [marks[s] for s in sorted(marks)]
    rates = [args.window * args.batch_size / (b - a) for a, b in zip(ticks, ticks[1:])]
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    from fashion_gans.models import count_parameters

    return {"task": task, "preset": preset, "images_per_second": round(statistics.median(rates), 2),
            "windows_images_per_second": [round(r, 2) for r in rates],
            "peak_memory_mib": round(peak, 1), "memory_kind": "cuda_max_allocated" if cuda else "process_max_rss",
            "parameters": {k: count_parameters(trainer.accelerator.unwrap_model(m)) for k, m in trainer.models.items()}}


def run_train(args: argparse.Namespace) -> dict:
    import subprocess
    import tempfile

    from fashion_gans.training.config import TASKS

    if args.one:
        task, preset = args.one.split("=")
        print(json.dumps(_train_one(args, task, preset, args.work_dir)))
        return {}
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"--tasks: unknown {unknown}; choose from {sorted(TASKS)}")
    presets = {t: f"{TASKS[t]}_small" for t in tasks}
    for item in args.preset:
        t, _, name = item.partition("=")
        presets[t] = name
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        for task in tasks:
            cmd = [sys.executable, str(Path(__file__).resolve()), "train", "--one", f"{task}={presets[task]}",
                   "--work-dir", str(work), "--device", args.device, "--batch-size", str(args.batch_size),
                   "--warmup", str(args.warmup), "--window", str(args.window), "--windows", str(args.windows),
                   "--mixed-precision", args.mixed_precision, "--synthetic-size", str(args.synthetic_size)]
            if args.compile:
                cmd.append("--compile")
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"train benchmark of {task} failed:\n{res.stderr[-3000:]}")
            results.append(json.loads(res.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"{task} ({presets[task]}): {r['images_per_second']} images/s, peak {r['peak_memory_mib']} MiB")
    import torch

    result = {
        "benchmark": "train",
        "description": ("Training images/second through the fashion-gans training loop on synthetic data (median of "
                        "timed windows after a warm-up, device-synchronised) and peak memory, one process per task."),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {**versions(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                   if k not in ("func", "one", "work_dir")},
        "results": results,
    }
    write_json(result, args.out)
    return result


# ----------------------------------------------------------------------------------------------------------------




# ----------------------------------------------------------------------------------------------------------------
# eval
# ----------------------------------------------------------------------------------------------------------------


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluation throughput: shared feature pass + FID/KID/PR vs torchmetrics",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=10000, help="fake and real images each (default 10000)")
    p.add_argument("--extractor", default="fmnist-classifier")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of our pipeline (median reported)")
    p.add_argument("--no-torchmetrics", action="store_true", help="skip the torchmetrics comparison")
    p.add_argument("--out", type=Path, default=Path("benchmarks/eval_cpu.json"))
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from fashion_gans.data.fashion_mnist import DEFAULT_ROOT, load_fashion_mnist
    from fashion_gans.metrics import (extract_features, fid_from_features, get_extractor, kid_from_features,
                                      precision_recall)

    if args.count < 10:
        raise SystemExit("--count must be >= 10")
    torch.set_num_threads(int(args.threads))
    root = os.environ.get("FASHION_MNIST_DIR", DEFAULT_ROOT)
    real_np, _ = load_fashion_mnist(root, "test")
    fake_np, _ = load_fashion_mnist(root, "train")
    n = min(args.count, len(real_np), len(fake_np))
    real = torch.from_numpy(np.array(real_np[:n])).unsqueeze(1)
    fake = torch.from_numpy(np.array(fake_np[:n])).unsqueeze(1)
    ext = get_extractor(args.extractor)
    machine = machine_info()
    kid_subset = min(1000, n)

    ours = []
    values = {}
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        fr = extract_features(ext, real, batch_size=args.batch_size).features
        ff = extract_features(ext, fake, batch_size=args.batch_size).features
        t1 = time.perf_counter()
        values = {"fid": fid_from_features(fr, ff),
                  "kid_mean": kid_from_features(fr, ff, n_subsets=100, subset_size=kid_subset)["kid_mean"]}
        t2 = time.perf_counter()
        pr = precision_recall(fr, ff, k=3)
        t3 = time.perf_counter()
        values.update(precision=pr["precision"], recall=pr["recall"])
        ours.append({"feature_seconds": t1 - t0, "fid_kid_seconds": t2 - t1, "pr_seconds": t3 - t2,
                     "total_seconds": t3 - t0})
    med = {k: statistics.median(r[k] for r in ours) for k in ours[0]}
    result_ours = {
        "feature_pass_images_per_second": round(2 * n / med["feature_seconds"], 1),
        "fid_kid_from_features_seconds": round(med["fid_kid_seconds"], 3),
        "precision_recall_seconds": round(med["pr_seconds"], 3),
        "fid_kid_pr_total_seconds": round(med["total_seconds"], 3),
        "fid_kid_total_seconds": round(med["feature_seconds"] + med["fid_kid_seconds"], 3),
        "end_to_end_images_per_second_fid_kid_pr": round(2 * n / med["total_seconds"], 1),
        "repeats": [{k: round(v, 3) for k, v in r.items()} for r in ours],
        "values": {k: float(v) for k, v in values.items()},
    }
    result: dict = {
        "benchmark": "eval",
        "description": "Evaluation throughput on the CPU: one shared feature pass per image set, then FID, KID "
                       "(100 subsets) and precision/recall (k=3) from the features; torchmetrics FID + KID with "
                       "the same extractor as their feature network (a separate feature pass per metric).",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python scripts/benchmark.py " + " ".join(sys.argv[1:]) if sys.argv[1:] else "benchmark eval",
        "machine": machine,
        "versions": {**versions(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "config": {"count": n, "extractor": args.extractor, "batch_size": args.batch_size,
                   "real": "Fashion-MNIST test", "fake": "Fashion-MNIST train (first count)",
                   "kid_subsets": 100, "kid_subset_size": kid_subset},
        "fashion_gans": result_ours,
    }
    if not args.no_torchmetrics:
        import torchmetrics
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        class Features(torch.nn.Module):
            def __init__(self, extractor) -> None:
                super().__init__()
                self.extractor = extractor

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.extractor(x)["features"]

        feat = Features(ext)
        t0 = time.perf_counter()
        fid = FrechetInceptionDistance(feature=feat, normalize=False)
        kid = KernelInceptionDistance(feature=feat, subsets=100, subset_size=kid_subset, normalize=False)
        with torch.no_grad():
            for metric in (fid, kid):
                for start in range(0, n, args.batch_size):
                    metric.update(real[start:start + args.batch_size], real=True)
                    metric.update(fake[start:start + args.batch_size], real=False)
        t1 = time.perf_counter()
        fid_v = float(fid.compute())
        kid_v = float(kid.compute()[0])
        t2 = time.perf_counter()
        result["torchmetrics"] = {
            "version": torchmetrics.__version__,
            "update_seconds": round(t1 - t0, 3),
            "compute_seconds": round(t2 - t1, 3),
            "fid_kid_total_seconds": round(t2 - t0, 3),
            "end_to_end_images_per_second_fid_kid": round(2 * n / (t2 - t0), 1),
            "values": {"fid": fid_v, "kid_mean": kid_v},
        }
        result["speedup_fid_kid"] = round((t2 - t0) / result_ours["fid_kid_total_seconds"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out)
    print(json.dumps(result, indent=2))
    return result


BENCHMARKS: dict[str, Callable] = {
    "synthetic": add_synthetic_parser,
    "train": add_train_parser,
    "eval": add_eval_parser,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="BENCHMARK")
    for add in BENCHMARKS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
