#!/usr/bin/env python3
"""Benchmarks, one subcommand each, results written as JSON.

    python scripts/benchmark.py synthetic --count 10000 --size 128 --out benchmarks/synthetic.json

``synthetic``: images per second of the procedural fashion world (single process, single thread), rendering
In-shop-style person images on white as pose pairs (two poses per identity, person + pose + render timed
together, as a dataset writer does). Reports the median of several timed repeats after a warm-up, at the
requested size and at 64 and 128 px, plus 64 px product shots, shoes and bags.

    python scripts/benchmark.py demo --out benchmarks/demo_cpu.json

``demo``: the Gradio demo served by ``python app.py`` (a subprocess, stopped at the end even on errors) with the
bundled models: per tool, the latency of ``gradio_client`` calls of its named endpoint on the shipped example images
(warm-up calls, then ``--calls`` timed calls: median and p95, client side, end to end) next to the same model work
called in-process through :mod:`fashion_gans.pipelines`, so the HTTP/queue overhead shows; then a load run of
``--clients`` threads (one ``gradio_client.Client`` each) sending ``--requests`` requests across the tools: errors,
latency, throughput and the server's RSS (process + children) before and after. Targets: median under 300 ms per
call, zero errors, memory growth under 10% (each reported as pass/fail). The RSS "before" is taken after the
warm-up and timed calls, when every tool's model is loaded: loading is one-time, growth under load is not.
``--load-rounds N`` repeats the load run N times on the same server; the first round is the headline, and
``memory.later_rounds_growth_percent`` (RSS after the last round against after the first) shows whether memory
keeps growing with the number of requests or levels off (a quiet-machine run: ``--load-rounds 3``).

    python scripts/benchmark.py eval --count 10000 --out benchmarks/eval_cpu.json

``eval``: the evaluation pipeline at ``--count`` fake and real images. The fakes are generated in batches by
``--generator`` (default ``generation-fmnist``, the bundled StyleGAN2 on Fashion-MNIST; timed separately), or with
``--generator none`` are the first ``--count`` Fashion-MNIST training images; the reals are the Fashion-MNIST test
split (zero-padded to the generator's size, as it was trained). Reported: images/second of the shared feature pass
(one extractor pass per set, :func:`fashion_gans.metrics.extract_features`), the seconds of FID + KID + Inception
Score + precision/recall from those features, and end-to-end images/second (generation + features + all metrics),
against torchmetrics' ``FrechetInceptionDistance`` + ``KernelInceptionDistance`` + ``InceptionScore`` given the same
extractor (``fmnist-classifier``) as their ``feature`` network (each metric runs its own feature pass). The metric
values of both are recorded too (they should agree).

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
                   help="preset per task (default: the task's default small preset); repeatable")
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

    from fashion_gans.training.config import TASKS, TrainConfig

    if args.one:
        task, preset = args.one.split("=")
        print(json.dumps(_train_one(args, task, preset, args.work_dir)))
        return {}
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"--tasks: unknown {unknown}; choose from {sorted(TASKS)}")
    presets = {t: TrainConfig(task=t).preset_name for t in tasks}  # the task's default (small) preset
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
# demo
# ----------------------------------------------------------------------------------------------------------------

_EXAMPLES = _REPO / "fashion_gans" / "assets" / "examples"
#: The example images the demo benchmark sends (shipped in ``fashion_gans/assets/examples/``).
DEMO_EXAMPLES = {"person": "persons/person_0_front.png", "scene": "scenes/scene_0_tshirt.png",
                 "shoe": "shoes/shoe_0_pink.png", "bag": "bags/bag_0_pink.png",
                 "reference": "references/reference_walking.png", "flat": "flats/flat_navy_stripes_shirt.png"}
#: The bundled model each tool is measured with (the demo's default model of that tool).
DEMO_MODELS = {"pose": "pose-synthetic", "garment": "garment-synthetic", "style": "style-synthetic",
               "generation": "generation-synthetic", "edit": "fader-synthetic"}
DEMO_TOOLS = ("transfer_pose", "extract_garment", "match_style_shoe_to_bag", "match_style_bag_to_shoe",
              "generate_1", "generate_8", "style_mix", "interpolate", "detect_pose", "edit_attributes")
#: The edit the benchmark asks of the attribute editor (two attributes changed, one of them half-way).
DEMO_EDIT = ({"colour": "red", "pattern": "checks"}, {"pattern": 0.5})
DEMO_TARGETS = {"median_ms_per_call": 300.0, "load_errors": 0, "memory_growth_percent": 10.0}


def add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="Gradio demo latency per tool (HTTP and in-process) and a concurrent load run",
                       description="Start `python app.py` as a subprocess, call every tool's named endpoint with "
                                   "gradio_client on the shipped example images (warm-up calls, then --calls timed "
                                   "calls each: median/p95 latency, client side, end to end), time the same work "
                                   "through fashion_gans.pipelines in this process, then a load run: --clients "
                                   "threads, each with its own client, sending --requests requests in total across "
                                   "the tools (errors, latency, throughput, server RSS before/after).")
    p.add_argument("--calls", type=int, default=50, help="timed calls per tool, HTTP and in-process (default 50)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per tool first (default 3)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients of the load run (default 20)")
    p.add_argument("--requests", type=int, default=200, help="requests of the load run in total (default 200)")
    p.add_argument("--load-rounds", type=int, default=1,
                   help="load runs one after another; the first is the headline, later ones show whether the "
                        "server's memory keeps growing (default 1)")
    p.add_argument("--tools", default=",".join(DEMO_TOOLS), help="comma-separated subset of the tools")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--concurrency", type=int, default=None, help="passed to app.py --concurrency (default: app's)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for the server")
    p.add_argument("--no-pipelines", action="store_true", help="skip the in-process pipeline timings")
    p.add_argument("--out", type=Path, default=Path("benchmarks/demo_cpu.json"), help="JSON result file")
    p.set_defaults(func=run_demo)


def _latency_summary(ms: list[float]) -> dict:
    import numpy as np

    if not ms:
        return {"calls": 0, "median_ms": None, "p95_ms": None, "mean_ms": None, "min_ms": None, "max_ms": None}
    a = np.asarray(ms, dtype=float)
    return {"calls": len(ms), "median_ms": round(float(np.median(a)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2), "mean_ms": round(float(a.mean()), 2),
            "min_ms": round(float(a.min()), 2), "max_ms": round(float(a.max()), 2)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer:
    """``python app.py`` in a subprocess; :meth:`stop` (also registered with ``atexit``) always ends it."""

    def __init__(self, port: int, work: Path, concurrency: int | None = None) -> None:
        import atexit
        import subprocess

        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.log = work / "server.log"
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
                   PYTHONUNBUFFERED="1", GRADIO_TEMP_DIR=str(work / "gradio"),
                   PYTHONPATH=os.pathsep.join(p for p in (str(_REPO), os.environ.get("PYTHONPATH", "")) if p))
        cmd = [sys.executable, str(_REPO / "app.py"), "--port", str(port)]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        self.command = cmd
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(cmd, cwd=_REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        atexit.register(self.stop)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> float:
        """Seconds until the page answers 200; raises RuntimeError when the server dies or times out."""
        import urllib.request

        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"app.py did not serve within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.3)

    def rss_mib(self) -> float:
        """Resident memory of the server process and all its children, MiB."""
        import psutil

        proc = psutil.Process(self.process.pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return round(total / 2 ** 20, 1)

    def stop(self) -> None:
        import subprocess

        import psutil

        if self.process.poll() is not None:
            return
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            children = []
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass


def _demo_http_calls(keypoints: str) -> dict[str, Callable]:
    """Tool name -> ``fn(client, i)`` calling its named endpoint once (``i`` varies the seeds)."""
    from gradio_client import handle_file

    ex = {k: str(_EXAMPLES / v) for k, v in DEMO_EXAMPLES.items()}
    m = DEMO_MODELS
    return {
        "transfer_pose": lambda c, i: c.predict(handle_file(ex["person"]), keypoints, m["pose"], "pad",
                                                api_name="/transfer_pose"),
        "extract_garment": lambda c, i: c.predict(handle_file(ex["scene"]), m["garment"], "pad",
                                                  api_name="/extract_garment"),
        "match_style_shoe_to_bag": lambda c, i: c.predict(handle_file(ex["shoe"]), "shoe → handbag", m["style"],
                                                          "pad", "auto", 0, api_name="/match_style"),
        "match_style_bag_to_shoe": lambda c, i: c.predict(handle_file(ex["bag"]), "handbag → shoe", m["style"],
                                                          "pad", "auto", 0, api_name="/match_style"),
        "generate_1": lambda c, i: c.predict(42 + i, 1, 0.7, m["generation"], api_name="/generate"),
        "generate_8": lambda c, i: c.predict(42 + i, 8, 0.7, m["generation"], api_name="/generate"),
        "style_mix": lambda c, i: c.predict(1 + i, 2 + i, 2, 0.7, m["generation"], api_name="/style_mix"),
        "interpolate": lambda c, i: c.predict(1 + i, 2 + i, 16, 0.7, m["generation"], "gif",
                                              api_name="/interpolate"),
        "detect_pose": lambda c, i: c.predict(handle_file(ex["reference"]), True, api_name="/detect_pose"),
        "edit_attributes": lambda c, i: c.predict(handle_file(ex["flat"]), m["edit"], json.dumps(DEMO_EDIT[0]),
                                                  json.dumps(DEMO_EDIT[1]), api_name="/edit_attributes"),
    }


def _demo_pipeline_calls() -> dict[str, Callable]:
    """Tool name -> ``fn(i)`` doing the same model work through :mod:`fashion_gans.pipelines` (no server)."""
    from fashion_gans.pipelines import (AttributeEditPipeline, GarmentExtractionPipeline, GenerationPipeline,
                                        PoseTransferPipeline, StyleMatchingPipeline, estimate_pose)
    from fashion_gans.ui.app import EDIT_CANVAS

    ex = {k: str(_EXAMPLES / v) for k, v in DEMO_EXAMPLES.items()}
    pose = PoseTransferPipeline.from_pretrained(DEMO_MODELS["pose"], device="cpu")
    garment = GarmentExtractionPipeline.from_pretrained(DEMO_MODELS["garment"], device="cpu")
    style = StyleMatchingPipeline.from_pretrained(DEMO_MODELS["style"], device="cpu")
    gen = GenerationPipeline.from_pretrained(DEMO_MODELS["generation"], device="cpu")
    edit = AttributeEditPipeline.from_pretrained(DEMO_MODELS["edit"], device="cpu")
    return {
        "transfer_pose": lambda i: pose(ex["person"], "walking"),
        "extract_garment": lambda i: garment(ex["scene"]),
        "match_style_shoe_to_bag": lambda i: style(ex["shoe"], "shoe_to_bag"),
        "match_style_bag_to_shoe": lambda i: style(ex["bag"], "bag_to_shoe"),
        "generate_1": lambda i: gen(42 + i, 1, psi=0.7),
        "generate_8": lambda i: gen(42 + i, 8, psi=0.7),
        "style_mix": lambda i: gen.style_mix(1 + i, 2 + i, 2, psi=0.7),
        "interpolate": lambda i: gen.interpolate(1 + i, 2 + i, 16, psi=0.7),
        "detect_pose": lambda i: estimate_pose(ex["reference"], frame=EDIT_CANVAS),
        "edit_attributes": lambda i: edit(ex["flat"], *DEMO_EDIT),
    }


def _time_calls(fn: Callable[[int], object], calls: int, warmup: int) -> list[float]:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(warmup + i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def _load_run(url: str, calls: dict[str, Callable], tools: list[str], clients: int, requests: int,
              downloads: Path) -> dict:
    """``clients`` threads, each with its own client, take request numbers 0..requests-1 from a shared counter;
    request ``k`` calls tool ``k % len(tools)``."""
    import itertools
    import threading

    from gradio_client import Client

    counter = itertools.count()
    lock = threading.Lock()
    latencies: dict[str, list[float]] = {t: [] for t in tools}
    errors: list[str] = []
    connected = [Client(url, verbose=False, download_files=str(downloads), analytics_enabled=False)
                 for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def worker(client) -> None:
        start.wait()
        while True:
            with lock:
                k = next(counter)
            if k >= requests:
                return
            tool = tools[k % len(tools)]
            t0 = time.perf_counter()
            try:
                calls[tool](client, 1000 + k)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                with lock:
                    errors.append(f"{tool}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            ms = (time.perf_counter() - t0) * 1000.0
            with lock:
                latencies[tool].append(ms)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in connected]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in connected:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
    every = [ms for v in latencies.values() for ms in v]
    return {"clients": clients, "requests": requests, "completed": len(every), "errors": len(errors),
            "error_messages": errors[:10], "wall_seconds": round(wall, 2),
            "throughput_requests_per_second": round(len(every) / wall, 2) if wall > 0 else None,
            "latency": _latency_summary(every),
            "per_tool": {t: _latency_summary(v) for t, v in latencies.items()}}


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def run_demo(args: argparse.Namespace) -> dict:
    import tempfile

    import torch

    if args.calls < 1 or args.warmup < 0 or args.clients < 1 or args.requests < 0 or args.load_rounds < 1:
        raise SystemExit("--calls, --clients and --load-rounds must be >= 1, --warmup and --requests >= 0")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = sorted(set(tools) - set(DEMO_TOOLS))
    if unknown or not tools:
        raise SystemExit(f"--tools: unknown {unknown or tools}; choose from {', '.join(DEMO_TOOLS)}")
    missing = [str(_EXAMPLES / f) for f in DEMO_EXAMPLES.values() if not (_EXAMPLES / f).is_file()]
    if missing:
        raise SystemExit(f"example images missing: {missing}")
    machine = machine_info()
    command = "python scripts/benchmark.py " + " ".join(sys.argv[1:]) if sys.argv[1:] else "benchmark.py demo"
    from gradio_client import Client

    import signal

    if threading_main():  # SIGTERM ends the run through the `finally` below, which stops the server
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="fashion-gans-bench-demo-") as tmp:
        work = Path(tmp)
        server = DemoServer(args.port or _free_port(), work, args.concurrency)
        try:
            startup = server.wait_ready(args.startup_timeout)
            rss_idle = server.rss_mib()
            client = Client(server.url, verbose=False, download_files=str(work / "downloads"),
                            analytics_enabled=False)
            keypoints, _ = client.predict("walking", api_name="/gallery_pose")
            http_calls = _demo_http_calls(keypoints)
            http = {}
            for tool in tools:
                ms = _time_calls(lambda i, tool=tool: http_calls[tool](client, i), args.calls, args.warmup)
                http[tool] = _latency_summary(ms)
                print(f"http {tool}: median {http[tool]['median_ms']:.1f} ms, p95 {http[tool]['p95_ms']:.1f} ms",
                      flush=True)
            client.close()
            rss_before = server.rss_mib()
            load, rounds = None, []
            for _ in range(args.load_rounds if args.requests else 0):
                one = _load_run(server.url, http_calls, tools, args.clients, args.requests, work / "downloads")
                one["rss_after_mib"] = server.rss_mib()
                print(f"load: {one['completed']}/{args.requests} ok, {one['errors']} errors, "
                      f"{one['throughput_requests_per_second']} req/s, RSS {one['rss_after_mib']} MiB", flush=True)
                rounds.append(one)
            load = rounds[0] if rounds else None
            rss_after = rounds[0]["rss_after_mib"] if rounds else server.rss_mib()
        except Exception as exc:
            raise SystemExit(f"demo benchmark failed: {type(exc).__name__}: {exc}\nserver log:\n"
                             f"{server.log_tail()}") from exc
        finally:
            server.stop()

    pipelines = {}
    if not args.no_pipelines:
        pipe_calls = _demo_pipeline_calls()
        for tool in tools:
            pipelines[tool] = _latency_summary(_time_calls(pipe_calls[tool], args.calls, args.warmup))
            print(f"pipeline {tool}: median {pipelines[tool]['median_ms']:.1f} ms", flush=True)

    per_tool = {}
    for tool in tools:
        row = {"http": http[tool]}
        if tool in pipelines:
            row["pipeline"] = pipelines[tool]
            row["http_overhead_median_ms"] = round(http[tool]["median_ms"] - pipelines[tool]["median_ms"], 2)
        per_tool[tool] = row
    growth = round(100.0 * (rss_after - rss_before) / rss_before, 2) if rss_before else None
    slow = [t for t in tools if http[t]["median_ms"] >= DEMO_TARGETS["median_ms_per_call"]]
    targets = {
        "median_under_ms": {"target": DEMO_TARGETS["median_ms_per_call"], "passed": not slow,
                            "tools_over": slow},
        "zero_errors": {"target": 0, "errors": load["errors"] if load else None,
                        "passed": (load["errors"] == 0) if load else None},
        "memory_growth_under_percent": {"target": DEMO_TARGETS["memory_growth_percent"], "growth_percent": growth,
                                        "passed": (growth < DEMO_TARGETS["memory_growth_percent"]) if load else None},
    }
    import gradio
    import gradio_client

    result = {
        "benchmark": "demo",
        "description": ("Gradio demo (python app.py, bundled models) on this machine: per tool, latency of "
                        "gradio_client calls of its named endpoint measured client side end to end (upload, queue, "
                        "model, result encoding and download) against the same model work called in-process "
                        "through fashion_gans.pipelines; then a load run of concurrent clients (one "
                        "gradio_client.Client per thread) with the server's RSS (process + children) before and "
                        "after."),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "versions": {**versions(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                     "gradio": gradio.__version__, "gradio_client": gradio_client.__version__},
        "config": {"calls": args.calls, "warmup": args.warmup, "clients": args.clients, "requests": args.requests,
                   "tools": tools, "models": DEMO_MODELS, "examples": DEMO_EXAMPLES,
                   "server_command": " ".join(["python", "app.py"] + server.command[2:]),
                   "server_concurrency": args.concurrency if args.concurrency is not None else "app default"},
        "server_startup_seconds": round(startup, 2),
        "server_pid": server.process.pid,
        "server_exit_code": server.process.returncode,
        "per_tool": per_tool,
        "load": load,
        "later_load_rounds": [{k: r[k] for k in ("completed", "errors", "throughput_requests_per_second",
                                                 "rss_after_mib")} | {"median_ms": r["latency"]["median_ms"]}
                              for r in rounds[1:]],
        "memory": {"rss_idle_mib": rss_idle, "rss_before_load_mib": rss_before, "rss_after_load_mib": rss_after,
                   "rss_after_each_load_round_mib": [r["rss_after_mib"] for r in rounds],
                   "growth_percent": growth,
                   "later_rounds_growth_percent": (round(100.0 * (rounds[-1]["rss_after_mib"]
                                                                  - rounds[0]["rss_after_mib"])
                                                           / rounds[0]["rss_after_mib"], 2)
                                                   if len(rounds) > 1 else None),
                   "kind": "RSS of the server process and its children (psutil)"},
        "targets": targets,
        "all_targets_passed": all(t["passed"] for t in targets.values() if t["passed"] is not None),
    }
    write_json(result, args.out)
    print(f"demo -> {args.out}; targets: " + ", ".join(f"{k} {'pass' if v['passed'] else 'FAIL'}"
                                                        for k, v in targets.items() if v["passed"] is not None))
    return result


# ----------------------------------------------------------------------------------------------------------------
# eval
# ----------------------------------------------------------------------------------------------------------------


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluation throughput: generation + shared feature pass + FID/KID/IS/PR vs "
                                    "torchmetrics",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=10000, help="fake and real images each (default 10000)")
    p.add_argument("--generator", default="generation-fmnist",
                   help="generation model making the fake images: a bundled name, model/run/checkpoint folder or Hub "
                        "repo id of a one-channel model (default generation-fmnist); 'none' takes the first --count "
                        "Fashion-MNIST training images as the fakes")
    p.add_argument("--generation-batch-size", type=int, default=250, help="images per generator batch")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of the generated images (default 1: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator's latents (default 0)")
    p.add_argument("--extractor", default="fmnist-classifier")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of our pipeline (median reported)")
    p.add_argument("--no-torchmetrics", action="store_true", help="skip the torchmetrics comparison")
    p.add_argument("--out", type=Path, default=Path("benchmarks/eval_cpu.json"))
    p.set_defaults(func=run_eval)


def _generate_fakes(source: str, n: int, batch_size: int, psi: float, seed: int) -> tuple[object, dict]:
    """``n`` uint8 (N, C, H, W) images of the generation model ``source`` in batches, and the timing.

    Latents are standard normal from ``torch.Generator().manual_seed(seed)``; one untimed warm-up batch first."""
    import torch

    from fashion_gans.metrics import to_uint8
    from fashion_gans.pipelines import GenerationPipeline, PipelineError

    t0 = time.perf_counter()
    try:
        pipe = GenerationPipeline.from_pretrained(source, device="cpu")
    except (PipelineError, OSError, ValueError) as exc:
        raise SystemExit(f"--generator {source!r}: {exc}") from exc
    load_seconds = time.perf_counter() - t0
    g = pipe.generator.eval()
    z_dim = g.config.z_dim
    rng = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        warm = torch.randn(min(batch_size, n), z_dim, generator=torch.Generator().manual_seed(seed + 1))
        g.synthesis(g.mapping(warm, psi=psi), noise_mode="const")
        out = []
        t0 = time.perf_counter()
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), z_dim, generator=rng)
            out.append(to_uint8(g.synthesis(g.mapping(z, psi=psi), noise_mode="const").clamp(-1, 1)))
        seconds = time.perf_counter() - t0
    images = torch.cat(out)
    info = {"source": source, "resolution": pipe.resolution, "channels": pipe.channels, "psi": psi, "seed": seed,
            "batch_size": batch_size, "load_seconds": round(load_seconds, 3), "seconds": round(seconds, 3),
            "images_per_second": round(n / seconds, 1)}
    return images, info


def run_eval(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from fashion_gans.data.fashion_mnist import DEFAULT_ROOT, load_fashion_mnist
    from fashion_gans.metrics import (extract_features, fid_from_features, get_extractor, inception_score,
                                      kid_from_features, precision_recall)

    if args.count < 10:
        raise SystemExit("--count must be >= 10")
    if args.generation_batch_size < 1 or args.batch_size < 1:
        raise SystemExit("--batch-size and --generation-batch-size must be >= 1")
    torch.set_num_threads(int(args.threads))
    machine = machine_info()
    root = os.environ.get("FASHION_MNIST_DIR", DEFAULT_ROOT)
    real_np, _ = load_fashion_mnist(root, "test")
    use_generator = args.generator.lower() != "none"
    generation = None
    if use_generator:
        n = min(args.count, len(real_np))
        fake, generation = _generate_fakes(args.generator, n, args.generation_batch_size, args.psi, args.seed)
        if fake.shape[1] != 1:
            raise SystemExit(f"--generator {args.generator!r}: makes {fake.shape[1]}-channel images; the real set is "
                             "Fashion-MNIST (one channel), so pick a one-channel model such as generation-fmnist")
        real = torch.from_numpy(np.array(real_np[:n])).unsqueeze(1)
        dh, dw = fake.shape[2] - real.shape[2], fake.shape[3] - real.shape[3]
        if dh < 0 or dw < 0:
            raise SystemExit(f"--generator {args.generator!r}: {fake.shape[2]}x{fake.shape[3]} images are smaller "
                             f"than Fashion-MNIST's 28x28")
        if dh or dw:  # the generation models train on Fashion-MNIST zero-padded to their size: pad the reals alike
            real = F.pad(real, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        print(f"generation: {n} images in {generation['seconds']:.2f} s ({generation['images_per_second']} images/s)",
              flush=True)
    else:
        fake_np, _ = load_fashion_mnist(root, "train")
        n = min(args.count, len(real_np), len(fake_np))
        real = torch.from_numpy(np.array(real_np[:n])).unsqueeze(1)
        fake = torch.from_numpy(np.array(fake_np[:n])).unsqueeze(1)
    ext = get_extractor(args.extractor)
    if ext.num_classes is None:
        raise SystemExit(f"--extractor {args.extractor!r} has no class logits: the Inception Score needs them")
    kid_subset = min(1000, n)
    is_splits = min(10, n)

    ours = []
    values = {}
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        fr = extract_features(ext, real, batch_size=args.batch_size).features
        fake_set = extract_features(ext, fake, batch_size=args.batch_size)
        ff = fake_set.features
        t1 = time.perf_counter()
        values = {"fid": fid_from_features(fr, ff),
                  "kid_mean": kid_from_features(fr, ff, n_subsets=100, subset_size=kid_subset)["kid_mean"]}
        t2 = time.perf_counter()
        values["is_mean"] = inception_score(fake_set.logits, splits=is_splits)["is_mean"]
        t3 = time.perf_counter()
        pr = precision_recall(fr, ff, k=3)
        t4 = time.perf_counter()
        values.update(precision=pr["precision"], recall=pr["recall"])
        ours.append({"feature_seconds": t1 - t0, "fid_kid_seconds": t2 - t1, "is_seconds": t3 - t2,
                     "pr_seconds": t4 - t3, "total_seconds": t4 - t0})
    med = {k: statistics.median(r[k] for r in ours) for k in ours[0]}
    gen_seconds = generation["seconds"] if generation else 0.0
    result_ours = {
        "feature_pass_images_per_second": round(2 * n / med["feature_seconds"], 1),
        "fid_kid_from_features_seconds": round(med["fid_kid_seconds"], 3),
        "inception_score_seconds": round(med["is_seconds"], 4),
        "precision_recall_seconds": round(med["pr_seconds"], 3),
        "fid_kid_pr_total_seconds": round(med["total_seconds"] - med["is_seconds"], 3),
        "fid_kid_is_pr_total_seconds": round(med["total_seconds"], 3),
        "fid_kid_total_seconds": round(med["feature_seconds"] + med["fid_kid_seconds"], 3),
        "end_to_end_images_per_second_fid_kid_pr": round(2 * n / (med["total_seconds"] - med["is_seconds"]), 1),
        "end_to_end_seconds": round(gen_seconds + med["total_seconds"], 3),
        "end_to_end_images_per_second": round(n / (gen_seconds + med["total_seconds"]), 1),
        "repeats": [{k: round(v, 4) for k, v in r.items()} for r in ours],
        "values": {k: float(v) for k, v in values.items()},
    }
    print(f"fashion_gans: features + FID + KID + IS + PR {med['total_seconds']:.2f} s", flush=True)
    result: dict = {
        "benchmark": "eval",
        "description": ("Evaluation throughput on the CPU: the fake images generated in batches by the generation "
                        "model (timed separately; or Fashion-MNIST training images with --generator none), one "
                        "shared feature pass per image set, then FID, KID (100 subsets), Inception Score (10 "
                        "splits, from the extractor's class logits) and precision/recall (k=3) from the features; "
                        "torchmetrics FID + KID + InceptionScore with the same extractor as their feature network "
                        "(a separate feature pass per metric). end_to_end_images_per_second = fake images / "
                        "(generation + features of both sets + metrics); the real set has as many images."),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python scripts/benchmark.py " + " ".join(sys.argv[1:]) if sys.argv[1:] else "benchmark eval",
        "machine": machine,
        "versions": {**versions(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "config": {"count": n, "extractor": args.extractor, "batch_size": args.batch_size,
                   "real": "Fashion-MNIST test" + (f" (zero-padded to {real.shape[2]}x{real.shape[3]})"
                                                   if real.shape[2] != 28 else ""),
                   "fake": (f"generated by {args.generator}" if use_generator
                            else "Fashion-MNIST train (first count)"),
                   "generator": args.generator if use_generator else None,
                   "kid_subsets": 100, "kid_subset_size": kid_subset, "is_splits": is_splits,
                   "repeats": max(1, args.repeats)},
        "generation": generation,
        "fashion_gans": result_ours,
    }
    if not args.no_torchmetrics:
        import torchmetrics
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore
        from torchmetrics.image.kid import KernelInceptionDistance

        class Features(torch.nn.Module):
            def __init__(self, extractor, key: str) -> None:
                super().__init__()
                self.extractor = extractor
                self.key = key

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.extractor(x)[self.key]

        feat = Features(ext, "features")
        t0 = time.perf_counter()
        fid = FrechetInceptionDistance(feature=feat, normalize=False)
        kid = KernelInceptionDistance(feature=feat, subsets=100, subset_size=kid_subset, normalize=False)
        isc = InceptionScore(feature=Features(ext, "logits"), splits=is_splits, normalize=False)
        with torch.no_grad():
            for metric in (fid, kid):
                for start in range(0, n, args.batch_size):
                    metric.update(real[start:start + args.batch_size], real=True)
                    metric.update(fake[start:start + args.batch_size], real=False)
            for start in range(0, n, args.batch_size):
                isc.update(fake[start:start + args.batch_size])
        t1 = time.perf_counter()
        fid_v = float(fid.compute())
        kid_v = float(kid.compute()[0])
        is_v = float(isc.compute()[0])
        t2 = time.perf_counter()
        result["torchmetrics"] = {
            "version": torchmetrics.__version__,
            "update_seconds": round(t1 - t0, 3),
            "compute_seconds": round(t2 - t1, 3),
            "fid_kid_is_total_seconds": round(t2 - t0, 3),
            "end_to_end_seconds": round(gen_seconds + t2 - t0, 3),
            "end_to_end_images_per_second": round(n / (gen_seconds + t2 - t0), 1),
            "values": {"fid": fid_v, "kid_mean": kid_v, "is_mean": is_v},
            "note": "no precision/recall in torchmetrics",
        }
        result["speedup_end_to_end"] = round(result["torchmetrics"]["end_to_end_seconds"]
                                             / result_ours["end_to_end_seconds"], 2)
        print(f"torchmetrics: FID + KID + IS {t2 - t0:.2f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out)
    print(json.dumps(result, indent=2))
    return result


BENCHMARKS: dict[str, Callable] = {
    "synthetic": add_synthetic_parser,
    "train": add_train_parser,
    "demo": add_demo_parser,
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
