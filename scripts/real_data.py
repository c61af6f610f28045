#!/usr/bin/env python3
"""The exact commands that train each thesis preset (and the standard 256x176 pose-transfer preset) on the real
datasets, and their end-to-end verification on the synthetic world written in the real datasets' formats.

    python scripts/real_data.py commands [--root /data] [--hub-user USER]
    python scripts/real_data.py verify --work /tmp/real-data [--steps 2] [--only NAME] \\
        [--out benchmarks/real_data_commands.json]

``commands`` prints, per run, the dataset layout it expects under ``--root``, the command (``accelerate launch
scripts/train.py ...`` with the thesis' batch size, learning rates, betas, epochs and schedules, bf16 mixed
precision, checkpoints pushed to a Hub repo and ``--resume latest`` so a pre-empted notebook continues), the
thesis' reported training time and hardware, and -- once ``verify`` has run -- the step time measured here.

``verify`` renders the synthetic world in the real formats (``fashion_gans.data.prepare.prepare_synthetic``:
In-shop tree with PATN CSVs and ``_IUV.png``, LookBook ``ImgHQ``, ``bags_shoes/*_64.hdf5``, ``fisb/G2.h5``) at each
run's resolution, lays it out under ``<work>/data`` exactly as ``--root`` is expected to look, and runs every
command through ``accelerate launch`` as printed, with only these changes: ``--max-steps`` (``--steps``),
``--batch-size`` (``--batch``, default 2: the thesis batches of full-size models do not fit a small CPU's
memory), the Hub repo replaced by a local ``file:`` folder (no network here), checkpoint/sample/eval intervals set
to the step count, ``--cpu`` and ``--mixed-precision`` (``--precision``, default ``no``: bf16 autocast on a CPU
without native bf16 instructions runs these models about 30x slower than fp32).  Each run must exit 0 and leave a checkpoint, a sample grid, held-out metrics and
the exported networks (``final/<network>/model.safetensors`` + ``config.json``) that load back with
``from_pretrained``; its wall time and median step time go to ``--out`` with the machine and versions.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


@dataclass(frozen=True)
class RealRun:
    """One training run on a real dataset."""

    name: str
    task: str
    preset: str
    dataset: str  # what to download
    layout: str  # where it must sit under --root (relative), and what it holds
    data: str  # the --data argument, relative to --root
    args: tuple[str, ...]  # everything after --data (thesis hyper-parameters)
    thesis_time: str  # the thesis' reported wall time and hardware (or the protocol's, for pgpg_256x176)
    iterations: int  # optimiser steps of the full schedule (thesis tables)
    synthetic: dict = field(default_factory=dict)  # prepare_synthetic options for the verification world


RUNS: tuple[RealRun, ...] = (
    RealRun(
        name="pgpg_thesis", task="pose", preset="pgpg_thesis",
        dataset="DeepFashion In-shop Clothes Retrieval (img/ + the PATN pair/annotation CSVs; IUV maps from DensePose)",
        layout="DeepFashion/inshop/{img/<MEN|WOMEN>/<Category>/id_*/NN_K_<view>.jpg (+ _IUV.png), "
               "fasion-resize-{annotation,pairs}-{train,test}.csv, Eval/list_eval_partition.txt}",
        data="DeepFashion/inshop",
        args=("--batch-size", "48", "--lr-g", "1e-4", "--lr-d", "1e-4",
              "--betas", "0.9", "0.999", "--epochs", "93",
              "--schedule", '{"recon_epochs": [[0, 1], [37, 5], [66, 10]]}'),
        thesis_time="about 6 days on 16 GB GPUs (93 epochs, 162,533 iterations)", iterations=162533,
        synthetic={"datasets": ["inshop"], "identities": 24, "size": [128, 128]},
    ),
    RealRun(
        name="pgpg_256x176", task="pose", preset="pgpg_256x176",
        dataset="DeepFashion In-shop Clothes Retrieval with the PATN split (fasion-resize-*.csv, 256x176 images)",
        layout="DeepFashion/inshop/{img/..., fasion-resize-{annotation,pairs}-{train,test}.csv}",
        data="DeepFashion/inshop",
        args=("--batch-size", "32", "--lr-g", "2e-4",
              "--lr-d", "2e-4", "--betas", "0.5", "0.999", "--epochs", "60",
              "--schedule", '{"recon_epochs": [[0, 10]]}'),
        # Not a thesis run: 60 epochs of the 101,966 PATN training pairs at batch 32 (3,187 iterations per epoch).
        thesis_time="not in the thesis (the standard PATN protocol; 60 epochs is this project's choice)",
        iterations=191190,
        synthetic={"datasets": ["inshop"], "identities": 24, "size": [256, 176]},
    ),
    RealRun(
        name="pixeldtgan_thesis", task="garment", preset="pixeldtgan_thesis",
        dataset="LookBook (Yoo et al. 2016): ImgHQ/PID<pid>_CLEAN<0|1>_IID<iid>.jpg",
        layout="LookBook/ImgHQ/PID*_CLEAN*_IID*.jpg", data="LookBook",
        args=("--batch-size", "256", "--lr-g", "1e-4", "--lr-d", "1e-4", "--betas", "0.9", "0.999",
              "--epochs", "348"),
        thesis_time="about 12 days on 12 GB and 16 GB GPUs (348 epochs, 88,200 iterations)", iterations=88200,
        synthetic={"datasets": ["lookbook"], "identities": 24, "size": [64, 64]},
    ),
    RealRun(
        name="cyclegan_thesis", task="style", preset="cyclegan_thesis",
        dataset="iGAN handbags_64.hdf5 and Zappos50K shoes_64.hdf5 (key 'imgs')",
        layout="bags_shoes/{handbags_64.hdf5, shoes_64.hdf5}", data="bags_shoes",
        args=("--batch-size", "32", "--lr-g", "2e-4", "--lr-d", "2e-4", "--betas", "0.9", "0.999",
              "--epochs", "189", "--lr-schedule", "plateau", "--lr-plateau", '{"factor": 0.99, "cooldown": 200}'),
        thesis_time="about 3 days on a 24 GB GPU (189 epochs, 142,200 iterations)", iterations=142200,
        synthetic={"datasets": ["bags_shoes"], "identities": 24, "bags": 100, "shoes": 100, "bags_shoes_size": 64},
    ),
    RealRun(
        name="stylegan_thesis", task="generation", preset="stylegan_thesis",
        dataset="DeepFashion Fashion Synthesis benchmark G2.h5 ('ih', 'ih_mean')",
        layout="DeepFashion/fisb/G2.h5", data="DeepFashion/fisb/G2.h5",
        args=("--batch-size", "28", "--lr-g", "2e-4", "--lr-d", "1e-4", "--betas", "0.9", "0.999",
              "--epochs", "149", "--lr-schedule", "plateau", "--lr-plateau", '{"factor": 0.99, "cooldown": 100}',
              "--schedule", '{"alpha_curve": "sigmoid"}'),
        thesis_time="about 7 days on 24 GB GPUs (149 epochs, 186,750 iterations)", iterations=186750,
        synthetic={"datasets": ["fisb"], "identities": 24, "fisb_count": 64, "fisb_size": 128},
    ),
)
RUNS_BY_NAME = {r.name: r for r in RUNS}
#: Where ``prepare_synthetic`` writes each dataset, relative to its output (the verification maps it under --root).
_PREPARED = {"inshop": "inshop", "lookbook": "lookbook", "bags_shoes": "bags_shoes", "fisb": "fisb"}
_ROOT_PLACE = {"inshop": "DeepFashion/inshop", "lookbook": "LookBook", "bags_shoes": "bags_shoes",
               "fisb": "DeepFashion/fisb"}


def train_argv(run: RealRun, root: str, hub_repo: str, output_dir: str) -> list[str]:
    """``scripts/train.py`` arguments of ``run`` with its data under ``root`` (``--max-steps 0``: the epochs
    decide the length, the step cap defaults to 1000)."""
    return ["scripts/train.py", "--task", run.task, "--preset", run.preset, "--data", f"{root.rstrip('/')}/{run.data}",
            *run.args, "--max-steps", "0", "--mixed-precision", "bf16", "--output-dir", output_dir, "--hub-repo", hub_repo,
            "--resume", "latest"]


def command_line(run: RealRun, root: str = "/data", hub_user: str = "USER") -> str:
    argv = ["accelerate", "launch",
            *train_argv(run, root, f"{hub_user}/fashion-gans-{run.name.replace('_', '-')}", f"runs/{run.name}")]
    return " ".join(shlex.quote(a) for a in argv)


def _load_measured(path: Path) -> dict:
    try:
        return json.loads(path.read_text()).get("runs", {})
    except (OSError, ValueError):
        return {}


def cmd_commands(args: argparse.Namespace) -> int:
    measured = _load_measured(Path(args.measured))
    for run in RUNS:
        print(f"# {run.name}: {run.task} / preset {run.preset}")
        print(f"#   data: {run.dataset}")
        print(f"#   expected under {args.root}: {run.layout}")
        print(f"#   thesis: {run.thesis_time}")
        m = measured.get(run.name)
        if m and m.get("ok"):
            print(f"#   verified end to end on the synthetic world in this layout ({m['date'][:10]}): "
                  f"{m['seconds_per_step_median']} s/step at batch {m['batch_size']} on {m['device']}")
        print(command_line(run, args.root, args.hub_user))
        print()
    return 0


# ------------------------------------------------------------------------------------------------ verify
def _prepare(run: RealRun, data_root: Path) -> None:
    """Render the run's synthetic dataset(s) in the real format and place them where --root expects them."""
    from fashion_gans.data.prepare import prepare_synthetic

    options = dict(run.synthetic)
    key = json.dumps(options, sort_keys=True)
    import hashlib

    cache = data_root.parent / "prepared" / hashlib.sha256(key.encode()).hexdigest()[:12]
    if not cache.is_dir():
        prepare_synthetic(cache, seed=0, **options)
    for name in options["datasets"]:
        place = data_root / _ROOT_PLACE[name]
        if place.is_symlink():
            place.unlink()
        place.parent.mkdir(parents=True, exist_ok=True)
        place.symlink_to((cache / _PREPARED[name]).resolve(), target_is_directory=True)


def _step_times(run_dir: Path) -> list[float]:
    """Seconds between consecutive logged steps (the trainer logs the wall clock of each logged step)."""
    path = run_dir / "logs" / "scalars.jsonl"
    stamps: dict[int, float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("kind") == "time":
                stamps[int(rec["step"])] = float(rec["unix"])
    steps = sorted(stamps)
    return [stamps[b] - stamps[a] for a, b in zip(steps, steps[1:]) if b == a + 1]


def _check_outputs(run_dir: Path) -> list[str]:
    """Problems with a finished run folder (empty list = complete)."""
    from fashion_gans.models import MODEL_CLASSES

    problems = []
    if not list((run_dir / "checkpoints").glob("step-*")):
        problems.append("no checkpoint")
    if not list((run_dir / "samples").glob("*.png")):
        problems.append("no sample grid")
    finals = sorted(p for p in (run_dir / "final").glob("*") if p.is_dir())
    if not finals:
        problems.append("no exported network in final/")
    for folder in finals:
        try:
            meta = json.loads((folder / "config.json").read_text())
            MODEL_CLASSES[meta["model_class"]].from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            problems.append(f"final/{folder.name} does not load: {exc}")
    if not (run_dir / "final_metrics.json").is_file():
        problems.append("no held-out metrics (final_metrics.json)")
    return problems


def cmd_verify(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(_REPO / "scripts"))
    import accelerate
    import torch
    from benchmark import machine_info, versions, write_json  # type: ignore[import-not-found]

    work = Path(args.work).resolve()
    data_root = work / "data"
    names = [n for item in args.only for n in item.split(",") if n] or [r.name for r in RUNS]
    unknown = sorted(set(names) - set(RUNS_BY_NAME))
    if unknown:
        raise SystemExit(f"unknown run(s) {unknown}; known: {', '.join(RUNS_BY_NAME)}")
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    results = dict(previous.get("runs", {}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": f"{_REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    failed = 0
    for name in names:
        run = RUNS_BY_NAME[name]
        _prepare(run, data_root)
        run_dir = work / "runs" / name
        hub = work / "hub" / name
        # The commands resume (--resume latest): a run or Hub stand-in left by an earlier verification would be
        # resumed and its old outputs checked, so every verification starts from nothing.
        for stale in (run_dir, hub):
            shutil.rmtree(stale, ignore_errors=True)
        argv = ["accelerate", "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision",
                args.precision, "--dynamo_backend", "no",
                *train_argv(run, str(data_root), f"file:{hub}", str(run_dir)),
                "--cpu", "--mixed-precision", args.precision, "--batch-size", str(args.batch),
                "--max-steps", str(args.steps),
                "--checkpoint-every", str(args.steps), "--sample-every", str(args.steps),
                "--eval-every", str(args.steps), "--eval-batches", "1", "--log-every", "1", "--num-workers", "0"]
        print(f"[{name}] {' '.join(shlex.quote(a) for a in argv)}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=_REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        problems = [] if proc.returncode == 0 else [f"exit code {proc.returncode}: {proc.stderr[-2000:]}"]
        if proc.returncode == 0:
            problems = _check_outputs(run_dir)
        times = _step_times(run_dir)
        median = round(sorted(times)[len(times) // 2], 2) if times else None
        results[name] = {
            "ok": not problems, "problems": problems, "command": command_line(run),
            "verified_with": " ".join(shlex.quote(a) for a in argv).replace(str(work), "<work>"),
            "batch_size": args.batch, "steps": args.steps, "wall_seconds": round(wall, 1),
            "seconds_per_step_median": median, "device": "cpu", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(
                timespec="seconds"),
            "thesis_time": run.thesis_time, "iterations": run.iterations,
        }
        status = "ok" if not problems else "FAILED: " + "; ".join(p[:300] for p in problems)
        print(f"[{name}] {status} ({wall:.0f} s, median step {median} s)", flush=True)
        failed += bool(problems)
    write_json({
        "benchmark": "real_data_commands",
        "description": "Each real-dataset training command (scripts/real_data.py commands) run end to end through "
                       "accelerate launch on the synthetic world written in the real datasets' formats, with the "
                       "batch size, step count, intervals and Hub target changed as recorded in verified_with.",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python scripts/real_data.py verify " + " ".join(sys.argv[2:]),
        "machine": machine_info(), "versions": {**versions(), "torch": torch.__version__,
                                                "accelerate": accelerate.__version__}, "runs": results,
    }, out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("commands", help="print the real-data training commands")
    c.add_argument("--root", default="/data", help="folder holding the real datasets (default /data)")
    c.add_argument("--hub-user", default="USER", help="Hub user or organisation for the checkpoint repos")
    c.add_argument("--measured", default=str(_REPO / "benchmarks" / "real_data_commands.json"),
                   help="verification results to quote (written by `verify`)")
    c.set_defaults(fn=cmd_commands)
    v = sub.add_parser("verify", help="run every command end to end on the synthetic world in the real formats")
    v.add_argument("--work", required=True, help="scratch folder (data, runs, local Hub stand-in)")
    v.add_argument("--steps", type=int, default=2, help="training steps per run (default 2)")
    v.add_argument("--batch", type=int, default=2, help="batch size per run (default 2)")
    v.add_argument("--only", action="append", default=[], help="run(s) to verify (default: all)")
    v.add_argument("--precision", default="no", choices=("no", "bf16"),
                   help="mixed precision of the verification runs (default no: bf16 autocast on a CPU without native "
                        "bf16 runs the thesis models about 30x slower than fp32; the printed commands use bf16 on GPUs)")
    v.add_argument("--out", default=str(_REPO / "benchmarks" / "real_data_commands.json"))
    v.set_defaults(fn=cmd_verify)
    args = p.parse_args(argv)
    if getattr(args, "steps", 1) < 1 or getattr(args, "batch", 1) < 1:
        p.error("--steps and --batch must be >= 1")
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
