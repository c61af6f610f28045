#!/usr/bin/env python3
"""Regenerate ``RESULTS.md``: every bundled model scored on held-out data next to the ``copy`` / ``mean`` /
``nearest`` baselines, the thesis' own numbers (a different dataset and protocol) and the project's quality bars.

    python scripts/make_results.py                                   # every bundle -> RESULTS.md + results/
    python scripts/make_results.py --only pose-synthetic --count 64  # one bundle, fewer samples
    python scripts/make_results.py --count 256 --fmnist-count 2000 --out /tmp/results

Held-out data: the synthetic bundles trained on the synthetic world of their training seed (``train.seed`` in each
``bundle.json``, 0); they are scored on the ``test`` split of a world of another seed (``--world-seed``), so every
person, product and shoe/handbag style is unseen. The world is rendered once into ``--world`` (default
``runs/results/world-seed<S>-<options hash>``) with enough items for ``--count`` held-out samples per task. The
Fashion-MNIST bundles are scored on the official test split (``--fmnist-count`` samples). The attribute-editing
bundles (``fader-synthetic``, ``icgan-synthetic``) are scored on synthetic product photos of the designs their
training seed held out (a flat's pixels depend on its design only, not on the world seed: another seed would
redraw training designs), against the editing baselines, in the section "Attribute editing: Fader Networks vs
IcGAN"; a missing editing bundle is reported there.

Every number comes from :func:`fashion_gans.evaluation.evaluate_model` (model and baselines on the same samples).
Written, each atomically: ``OUT/results/<bundle>.json`` (the model's and the baselines' full evaluations),
``OUT/results/<bundle>.png`` (sample grid: inputs | outputs | targets; editing: input | reconstruction | one
edit per attribute), ``OUT/results/summary.json`` (everything,
plus the quality bars, each model against each baseline on its task's metrics with a clear margin (section "Beating
the baselines"), the command, date, machine and counts) and ``OUT/RESULTS.md``, rendered from the summary.
With ``--only`` the page covers the chosen bundles only. When ``OUT`` is the repository (or with ``--cards DIR``)
each scored bundle's ``bundle.json`` (``results``) and model cards (text and ``model-index`` metadata) get the
same figures, so a card pulled from the Hub says what this page says (``--no-cards``: leave them).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

BASELINE_NAMES = ("copy", "mean", "nearest")
DEFAULT_WORLD_SEED = 9731
GRID_ROWS = 8
#: Attribute-editing tasks and the bundles the editing section compares (Fader Networks vs IcGAN).
EDIT_TASKS = ("fader", "icgan")
EDIT_BUNDLES = ("fader-synthetic", "icgan-synthetic")
EDIT_TITLES = {"fader": "Fader Networks", "icgan": "IcGAN"}

#: The thesis' final tables (test column where there is one), from ``thesis-spec.md`` §4.3 "Final result tables".
#: DeepFashion In-shop / LookBook / handbags2shoes / DeepFashion FISB at 10,000 samples with ImageNet Inception v3
#: features: a different dataset and protocol than this page's measurements, shown for orientation only.
THESIS = {
    "pose": {"table": "Table 8 (PoseGAN^GT, test)", "model": "PoseGAN^GT", "dataset": "DeepFashion In-shop",
             "values": {"fid": 26.50, "is": 2.96, "ssim": 0.769, "precision": 0.835, "recall": 0.864, "f1": 0.849}},
    "garment": {"table": "Table 11 (PixelDTGAN^GT, test)", "model": "PixelDTGAN^GT", "dataset": "LookBook",
                "values": {"fid": 36.04, "is": 4.04, "ssim": 0.381, "precision": 0.781, "recall": 0.814,
                           "f1": 0.798}},
    "style": {"table": "Table 14 (CycleGAN^GT, test)", "model": "CycleGAN^GT", "dataset": "handbags2shoes",
              "values": {"fid": 66.06, "is": 4.42, "ssim": 0.353, "precision": 0.607, "recall": 0.918, "f1": 0.730}},
    "generation": {"table": "Table 17 (StyleGAN^GT, test)", "model": "StyleGAN^GT", "dataset": "DeepFashion FISB",
                   "values": {"fid": 33.01, "is": 2.987, "ssim": 0.561, "precision": 0.779, "recall": 0.824,
                              "f1": 0.801}},
}
THESIS_SOURCE = "thesis-spec.md §4.3 (Final result tables)"
THESIS_COLUMNS = ("fid", "is", "ssim", "precision", "recall", "f1")


@dataclass(frozen=True)
class Bar:
    """A quality bar: ``metric`` of the models of ``task`` on ``data`` (``synthetic`` / ``fashion-mnist``) must be
    ``op`` (``>``, ``>=``, ``<``) ``threshold``; ``context`` metrics are quoted when it is missed."""

    key: str
    label: str
    task: str
    data: str
    metric: str
    op: str
    threshold: float
    percent: bool
    context: tuple[str, ...] = ()

    def passed(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return {">": value > self.threshold, ">=": value >= self.threshold,
                "<": value < self.threshold}[self.op]


BARS = (
    Bar("pose-ssim", "pose transfer: SSIM to the true target photo (thesis test SSIM 0.769)", "pose", "synthetic",
        "ssim", ">", 0.769, False, ("l1",)),
    Bar("pose-keypoints", "pose transfer: mean keypoint error / image height", "pose", "synthetic",
        "keypoint_error", "<", 0.05, True, ("pck_0.05", "keypoint_error_floor")),
    Bar("garment-colour", "garment extraction: garment colour kept on held-out people", "garment", "synthetic",
        "colour_kept", ">=", 0.90, True, ("pattern_kept", "garment_kept", "colour_kept_floor", "garment_kept_floor")),
    Bar("style-shoe2bag", "style matching shoes -> handbags: style (colour + pattern + domain) kept", "style",
        "synthetic", "shoe2bag/style_match", ">=", 0.80, True,
        ("shoe2bag/colour_match", "shoe2bag/pattern_match", "shoe2bag/domain_ok", "shoe2bag/style_match_floor")),
    Bar("style-bag2shoe", "style matching handbags -> shoes: style (colour + pattern + domain) kept", "style",
        "synthetic", "bag2shoe/style_match", ">=", 0.80, True,
        ("bag2shoe/colour_match", "bag2shoe/pattern_match", "bag2shoe/domain_ok", "bag2shoe/style_match_floor")),
    Bar("fmnist-precision", "Fashion-MNIST generation: precision (fmnist-classifier features)", "generation",
        "fashion-mnist", "precision", ">", 0.6, False, ("recall", "diversity", "coverage_class", "fid")),
    Bar("fmnist-recall", "Fashion-MNIST generation: recall (fmnist-classifier features)", "generation",
        "fashion-mnist", "recall", ">", 0.6, False, ("precision", "diversity", "coverage_class", "fid")),
    *(bar for task in EDIT_TASKS for bar in (
        Bar(f"{task}-edit-success", f"attribute editing ({EDIT_TITLES[task]}): requested value read on the edit",
            task, "synthetic", "edit_success", ">=", 0.80, True,
            ("edit_success_colour", "edit_success_pattern", "edit_success_kind", "reader_accuracy")),
        Bar(f"{task}-others-kept", f"attribute editing ({EDIT_TITLES[task]}): other attributes kept by an edit",
            task, "synthetic", "others_kept", ">=", 0.90, True,
            ("others_kept_colour", "others_kept_pattern", "others_kept_kind", "reader_accuracy")),
        Bar(f"{task}-recon-ssim", f"attribute editing ({EDIT_TITLES[task]}): reconstruction SSIM (no edit)",
            task, "synthetic", "recon_ssim", ">", 0.80, False, ("recon_l1", "recon_kept")))),
)

#: Table columns by (task, data kind): the metrics that answer the task's question first, then the distribution
#: metrics. Style metrics are per direction.
COLUMNS = {
    ("pose", "synthetic"): ("ssim", "l1", "keypoint_error", "pck_0.05", "fid", "precision", "recall"),
    ("garment", "synthetic"): ("ssim", "l1", "colour_kept", "pattern_kept", "garment_kept", "fid", "precision",
                               "recall"),
    ("style", "synthetic"): ("shoe2bag/style_match", "shoe2bag/colour_match", "shoe2bag/domain_ok",
                             "bag2shoe/style_match", "bag2shoe/colour_match", "bag2shoe/domain_ok", "shoe2bag/fid",
                             "bag2shoe/fid"),
    ("style", "fashion-mnist"): ("shoe2bag/target_class_rate", "bag2shoe/target_class_rate", "shoe2bag/fid",
                                 "bag2shoe/fid", "shoe2bag/diversity", "bag2shoe/diversity"),
    ("generation", "synthetic"): ("fid", "kid", "precision", "recall", "diversity", "coverage_colour",
                                  "coverage_kind"),
    ("generation", "fashion-mnist"): ("fid", "kid", "precision", "recall", "diversity", "coverage_class"),
}
#: The metrics that answer each task's question: "beats every baseline" is judged on these (RESULTS.md, section
#: "Beating the baselines"). Distribution metrics count for generation, whose question they are, and for Fashion-MNIST
#: style matching, which has no style labels to check.
TASK_METRICS = {
    ("pose", "synthetic"): ("ssim", "l1", "keypoint_error", "pck_0.05"),
    ("garment", "synthetic"): ("ssim", "l1", "colour_kept", "pattern_kept", "garment_kept"),
    ("style", "synthetic"): ("shoe2bag/style_match", "bag2shoe/style_match"),
    ("style", "fashion-mnist"): ("shoe2bag/target_class_rate", "bag2shoe/target_class_rate", "shoe2bag/fid",
                                 "bag2shoe/fid"),
    ("generation", "synthetic"): ("fid", "precision", "recall"),
    ("generation", "fashion-mnist"): ("fid", "precision", "recall"),
    **{(task, "synthetic"): ("edit_success", "others_kept", "recon_ssim") for task in EDIT_TASKS},
}
#: A clear margin: a higher-is-better score (all of them lie in [0, 1]) at least this far above the baseline's ...
MARGIN_POINTS = 0.02
#: ... and a lower-is-better error at least this fraction of the baseline's below it.
MARGIN_RELATIVE = 0.10
#: What a baseline that a model does not beat is: ``{(task, baseline): what}`` (quoted under the section's table).
BASELINE_NOTES = {
    ("generation", "copy"): "the training images themselves (a memorising generator), which every distribution "
                            "metric reads as real data: no generator can beat it by construction",
    ("generation", "mean"): "one image, the mean training image, drawn every time: it lies among the real images, "
                            "so precision reads it as real, while its recall is 0",
    **{(task, "copy"): "edits nothing, so it keeps the other attributes and the reconstruction perfectly by "
                       "construction (and succeeds on no edit)" for task in EDIT_TASKS},
    **{(task, "nearest"): "retrieves the training image with the requested attributes nearest to the input: a "
                          "retrieval system, not an editor, strong wherever the training set holds the combination"
       for task in EDIT_TASKS},
    ("style", "mean"): "the target domain's mean training image whatever the input, which the classifier reads as "
                       "the target class by construction (it keeps nothing of the input)",
    ("style", "nearest"): "retrieves the target-domain training item nearest to the input (in the attribute "
                          "reader's features on the synthetic world, in pixels on Fashion-MNIST): a retrieval "
                          "system, not a translator, which the same features then score",
}
#: Reference rows drawn from the model's own evaluation: ``{row label: {reference metric: table column}}``.
REFERENCES = {
    "true target images (what the metric reads on the truth)": {
        "keypoint_error_floor": "keypoint_error", "colour_kept_floor": "colour_kept",
        "pattern_kept_floor": "pattern_kept", "garment_kept_floor": "garment_kept",
        "shoe2bag/style_match_floor": "shoe2bag/style_match", "bag2shoe/style_match_floor": "bag2shoe/style_match"},
    "constant mid-grey output (a collapsed translator)": {
        "shoe2bag/target_class_rate_floor": "shoe2bag/target_class_rate",
        "bag2shoe/target_class_rate_floor": "bag2shoe/target_class_rate"},
}


# ------------------------------------------------------------------------------------------------ helpers
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_text(path: Path, text: str) -> None:
    from fashion_gans.data.io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _repo_relative(data: Any) -> Any:
    """``data`` with paths inside the repository written relative to it (the files are committed)."""
    prefix = str(_REPO) + os.sep
    if isinstance(data, dict):
        return {k: _repo_relative(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_repo_relative(v) for v in data]
    if isinstance(data, str) and prefix in data:
        return data.replace(prefix, "")
    return data


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(_repo_relative(data), indent=2, allow_nan=True) + "\n")


def machine_info() -> dict[str, Any]:
    """CPU model, core counts, platform and library versions of this machine."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": cpu, "logical_cores": os.cpu_count(), "usable_cores": usable,
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "gpu": torch.cuda.is_available()}


def world_options(count: int, seed: int) -> dict[str, Any]:
    """:func:`fashion_gans.data.prepare.prepare_synthetic` options of a world whose ``test`` splits hold at least
    ``count`` samples of every task (the In-shop split holds out 20% of the people, about 3.6 test pose pairs each;
    LookBook, bags/shoes and FISB hold out about 10% of their items by index hash), at the bundles' resolutions."""
    c = int(count)
    return {"datasets": ["inshop", "lookbook", "bags_shoes", "fisb"], "identities": max(10, math.ceil(c / 2.5)),
            "size": [64, 64], "seed": int(seed), "lookbook_products": max(12, math.ceil(c * 3)),
            "lookbook_size": [64, 64], "fisb_count": max(60, math.ceil(c * 17)), "fisb_size": 32,
            "bags": max(60, math.ceil(c * 13)), "shoes": max(60, math.ceil(c * 13)), "bags_shoes_size": 64}


def ensure_world(root: Path, count: int, seed: int) -> Path:
    """The held-out synthetic world in ``root``, rendered (atomically) when missing."""
    from fashion_gans.data.prepare import prepare_synthetic

    if root.is_dir():
        return root
    t0 = time.perf_counter()
    print(f"rendering the held-out synthetic world (seed {seed}) into {root}", flush=True)
    prepare_synthetic(root, **world_options(count, seed))
    print(f"  rendered in {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if percent:
        return f"{100 * value:.1f} %"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _values(evaluation: dict[str, Any]) -> dict[str, float]:
    return {m["metric"]: m["value"] for m in evaluation.get("metrics", [])}


# ------------------------------------------------------------------------------------------------ evaluation
def data_kind(meta: dict[str, Any]) -> str:
    """``synthetic`` or ``fashion-mnist``: what a bundle trained on (``data_source`` in its ``bundle.json``)."""
    source = meta.get("data_source") or meta.get("train", {}).get("data")
    if source in ("fashion-mnist", "fmnist"):
        return "fashion-mnist"
    if source == "synthetic":
        return "synthetic"
    raise SystemExit(f"bundle {meta.get('name')!r}: unknown data source {source!r} (synthetic or fashion-mnist)")


def bundle_data(meta: dict[str, Any], world: Path | None) -> tuple[str, str]:
    """``(data argument, data kind)`` of a bundle's held-out evaluation."""
    kind = data_kind(meta)
    if kind == "fashion-mnist":
        return "fashion-mnist", kind
    if meta.get("task") in EDIT_TASKS:
        return "synthetic", kind  # flats rendered in memory: the designs the training seed held out
    if world is None:
        raise ValueError("a synthetic bundle needs the held-out world")
    return str(world), kind


def evaluate_bundle(name: str, world: Path | None, world_seed: int, count: int, fmnist_count: int,
                    train_count: int, baseline_cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bundle's evaluation and the three baselines' on the same held-out samples. ``baseline_cache``
    (a dict kept across calls) scores the baselines once for bundles sharing samples (Fader and IcGAN)."""
    from fashion_gans.evaluation import EvaluationError, evaluate_model
    from fashion_gans.models.sources import load_networks

    loaded = load_networks(name)
    meta = loaded.meta
    data, kind = bundle_data(meta, world)
    if loaded.task in EDIT_TASKS:
        return _evaluate_editor_bundle(name, loaded, data, kind, count, fmnist_count, train_count,
                                       {} if baseline_cache is None else baseline_cache)
    if kind == "synthetic" and int(meta.get("train", {}).get("seed", 0)) == int(world_seed):
        raise SystemExit(f"{name}: trained on the synthetic world of seed {world_seed}; pick another --world-seed")
    n = fmnist_count if kind == "fashion-mnist" else count
    # The generation `copy` baseline cycles through the loaded training images: load at least as many as are
    # scored, or repeated images would shrink the precision/recall neighbourhoods to zero.
    train_count = max(int(train_count), n)
    from fashion_gans.evaluation.evaluate import model_inputs

    size = model_inputs(loaded.task, loaded.networks)["image_size"][0]
    t0 = time.perf_counter()
    model = evaluate_model(name, data, count=n, train_count=train_count)
    entry: dict[str, Any] = {
        "name": name, "task": loaded.task, "data_kind": kind, "data": data, "data_description": meta.get("data"),
        "preset": meta.get("preset"), "steps": meta.get("steps"), "train_wall_seconds": meta.get("wall_seconds"),
        "train_seed": meta.get("train", {}).get("seed"), "train_machine": meta.get("machine", {}),
        "count_requested": n, "count": model.count,
        "model": model.to_dict(), "baselines": {}, "baselines_skipped": {},
    }
    for b in BASELINE_NAMES:
        try:
            res = evaluate_model(None, data, task=loaded.task, baseline=b, count=n, image_size=int(size),
                                 train_count=train_count)
        except EvaluationError as exc:
            entry["baselines_skipped"][b] = str(exc)
            continue
        entry["baselines"][b] = res.to_dict()
    entry["seconds"] = round(time.perf_counter() - t0, 1)
    return entry


def _entry_head(name: str, loaded, kind: str, data: str, n: int, model) -> dict[str, Any]:
    meta = loaded.meta
    return {"name": name, "task": loaded.task, "data_kind": kind, "data": data, "data_description": meta.get("data"),
            "preset": meta.get("preset"), "steps": meta.get("steps"), "train_wall_seconds": meta.get("wall_seconds"),
            "train_seed": meta.get("train", {}).get("seed"), "train_machine": meta.get("machine", {}),
            "count_requested": n, "count": model.count, "model": model.to_dict(), "baselines": {},
            "baselines_skipped": {}}


def _evaluate_editor_bundle(name: str, loaded, data: str, kind: str, count: int, fmnist_count: int,
                            train_count: int, cache: dict[str, Any]) -> dict[str, Any]:
    """An editing bundle (Fader / IcGAN) and the editing baselines on the held-out images of its training seed;
    ``mean`` / ``nearest`` search as many labelled training images as the model trained on (at least
    ``train_count``)."""
    from fashion_gans.evaluation import EvaluationError, evaluate_model

    from fashion_gans.evaluation.evaluate import training_split

    meta = loaded.meta
    train = meta.get("train", {})
    # The held-out designs are those the training data held out: its data seed and test_fraction.
    seed, split_options = training_split(train)
    seed = 0 if seed is None else seed
    n = fmnist_count if kind == "fashion-mnist" else count
    if kind == "synthetic":
        train_count = max(int(train_count), int(train.get("synthetic_size") or 0))
    from fashion_gans.evaluation.evaluate import model_inputs

    spec = model_inputs(loaded.task, loaded.networks)
    attributes, size = spec["attributes"], int(spec["image_size"][0])
    t0 = time.perf_counter()
    model = evaluate_model(name, data, count=n, train_count=train_count, train_seed=seed,
                           data_options=split_options)
    entry = _entry_head(name, loaded, kind, data, n, model)
    entry["attributes"] = attributes
    entry["baseline_train_count"] = train_count
    key = json.dumps([data, attributes, seed, split_options, n, size, train_count], sort_keys=True)
    if key not in cache:
        cache[key] = ({}, {})
        for b in BASELINE_NAMES:
            try:
                res = evaluate_model(None, data, task=loaded.task, baseline=b, count=n, image_size=size,
                                     train_count=train_count, attributes=attributes, train_seed=seed,
                                     data_options=split_options)
            except EvaluationError as exc:
                cache[key][1][b] = str(exc)
                continue
            cache[key][0][b] = res.to_dict()
    entry["baselines"], entry["baselines_skipped"] = dict(cache[key][0]), dict(cache[key][1])
    entry["seconds"] = round(time.perf_counter() - t0, 1)
    return entry


def edit_grid(name: str, path: Path, rows: int = GRID_ROWS) -> tuple[list[str], list[str]]:
    """A PNG of ``rows`` held-out images of an editing bundle at ``path``, each row: input | reconstruction (its
    own attributes) | one edit per attribute (the value :func:`~fashion_gans.evaluation.editing.edit_targets`
    requests first). Returns the column names and, per row, the requested values (``"colour -> red, ..."``)."""
    import torch

    from fashion_gans.evaluation import load_eval_data
    from fashion_gans.evaluation.editing import edit_targets
    from fashion_gans.evaluation.evaluate import model_inputs, training_split
    from fashion_gans.models.attributes import attribute_code
    from fashion_gans.models.sources import load_networks
    from fashion_gans.pipelines.edit import AttributeEditPipeline

    loaded = load_networks(name)
    data, _ = bundle_data(loaded.meta, None)
    seed, split_options = training_split(loaded.meta.get("train", {}))
    ev = load_eval_data(loaded.task, data, count=rows, train_count=0, train_seed=0 if seed is None else seed,
                        data_options=split_options,
                        **model_inputs(loaded.task, loaded.networks))
    pipe = AttributeEditPipeline(loaded, "cpu")
    x, idx = ev.inputs["image"], ev.truth["attributes"]
    attrs = ev.truth["attribute_values"]
    names = list(attrs)
    with torch.no_grad():
        cols = [x, pipe.edit_tensor(x, attribute_code(idx, attrs))]
        edits = edit_targets(idx, attrs).view(len(names), x.shape[0], 3)
        for k in range(len(names)):
            want = idx.clone()
            want[:, k] = edits[k, :, 2]
            cols.append(pipe.edit_tensor(x, attribute_code(want, attrs)))
    labels = [", ".join(f"{a} {attrs[a][int(idx[i, k])]} -> {attrs[a][int(edits[k, i, 2])]}"
                        for k, a in enumerate(names)) for i in range(x.shape[0])]
    _save_grid(cols, path)
    return ["input", "reconstruction", *(f"edit {a}" for a in names)], labels


def _save_grid(cols: list, path: Path) -> None:
    """Columns of images in [-1, 1] side by side, one sample per row, 64 px cells at least."""
    import torch
    import torch.nn.functional as F

    from fashion_gans.data.io import save_image, tensor_to_array

    n = min(c.shape[0] for c in cols)
    side = max(64, max(int(c.shape[-1]) for c in cols))
    cols = [F.interpolate(_to_rgb(c[:n].float()), size=(side, side), mode="nearest") for c in cols]
    pad = 2
    canvas = torch.ones(3, n * (side + pad) + pad, len(cols) * (side + pad) + pad)
    for j, c in enumerate(cols):
        for i in range(n):
            y, x = pad + i * (side + pad), pad + j * (side + pad)
            canvas[:, y:y + side, x:x + side] = c[i].clamp(-1, 1)
    save_image(tensor_to_array(canvas), path)


def _to_rgb(x):
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x[:, :3]


def sample_grid(name: str, world: Path | None, path: Path, rows: int = GRID_ROWS) -> list[str]:
    """A PNG of ``rows`` held-out samples (each row: inputs | output | target) at ``path``; returns the column
    names. Style grids show shoes -> handbags rows, then handbags -> shoes rows; generation rows pair a generated
    image with a held-out real one (not its target: generation has none)."""
    import numpy as np
    import torch

    from fashion_gans.data.pose import draw_skeleton
    from fashion_gans.evaluation import load_eval_data
    from fashion_gans.evaluation.evaluate import model_inputs, _run_model
    from fashion_gans.models.sources import load_networks

    loaded = load_networks(name)
    data, _ = bundle_data(loaded.meta, world)
    for net in loaded.networks.values():
        net.eval()
    ev = load_eval_data(loaded.task, data, count=rows, train_count=0, **model_inputs(loaded.task, loaded.networks))
    out = _run_model(loaded.task, loaded.networks, ev, rows, "cpu", seed=0)
    blank = None
    if loaded.task == "pose":
        kp = ev.truth.get("target_keypoints")
        h, w = ev.targets["target_image"].shape[-2:]
        if kp is not None:
            pose = torch.stack([torch.from_numpy(draw_skeleton(k.numpy(), (h, w)).astype(np.float32)).permute(2, 0, 1)
                                / 127.5 - 1 for k in kp])
        else:
            pose = ev.inputs["target_pose"].amax(1, keepdim=True).clamp(0, 1) * 2 - 1
        columns = ["source photo", "target pose", "output", "true target"]
        cols = [ev.inputs["source_image"], pose, out["target_image"], ev.targets["target_image"]]
    elif loaded.task == "garment":
        columns = ["person photo", "output", "true product"]
        cols = [ev.inputs["person_image"], out["product_image"], ev.targets["product_image"]]
    elif loaded.task == "style":
        half = max(1, rows // 2)
        shoes, bags = ev.inputs["shoe"][:half], ev.inputs["bag"][:half]
        blank = torch.ones_like(shoes[:1])
        s_partner = ev.truth.get("shoe_partner")
        b_partner = ev.truth.get("bag_partner")
        s_t = s_partner[:half] if s_partner is not None and s_partner.shape[0] >= half else blank.expand_as(shoes)
        b_t = b_partner[:half] if b_partner is not None and b_partner.shape[0] >= half else blank.expand_as(bags)
        columns = ["input (shoes, then handbags)", "output",
                   "real item of the same style" if s_partner is not None else "(no paired target)"]
        cols = [torch.cat([shoes, bags]), torch.cat([out["bag"][:half], out["shoe"][:half]]), torch.cat([s_t, b_t])]
    else:
        columns = ["generated", "held-out real (unpaired)"]
        cols = [out["image"], ev.targets["image"]]
    _save_grid(cols, path)
    return columns


# ------------------------------------------------------------------------------------------------ quality bars
def check_bars(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every bar that applies to an evaluated model: the measured value, PASS/MISS and, for a MISS, a one-line
    reason built from the same evaluation (the context metrics, the best baseline, the training budget)."""
    out = []
    for bar in BARS:
        for e in entries:
            if bar.task != e["task"] or bar.data != e["data_kind"]:
                continue
            values = _values(e["model"])
            value = values.get(bar.metric, float("nan"))
            passed = bar.passed(value)
            out.append({"bar": bar.key, "label": bar.label, "model": e["name"], "metric": bar.metric,
                        "op": bar.op, "threshold": bar.threshold, "value": value, "percent": bar.percent,
                        "samples": e["count"], "result": "PASS" if passed else "MISS",
                        "why": "" if passed else miss_reason(bar, e, value)})
    return out


def compare_to_baseline(metric: str, model: float | None, baseline: float | None) -> str:
    """``beats`` (better by the clear margin), ``within margin``, ``loses`` or ``n/a`` (a value missing)."""
    from fashion_gans.evaluation.evaluate import _higher_is_better

    higher = _higher_is_better(metric)
    if higher is None or model is None or baseline is None or not (math.isfinite(model) and math.isfinite(baseline)):
        return "n/a"
    if higher:
        gain, margin = model - baseline, MARGIN_POINTS
    else:
        gain, margin = baseline - model, MARGIN_RELATIVE * abs(baseline)
    if gain >= margin:
        return "beats"
    return "within margin" if gain > -margin else "loses"


def check_baselines(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every evaluated model: each baseline on each of its task's metrics (:data:`TASK_METRICS`), judged by
    :func:`compare_to_baseline`; ``beats_all`` when it beats every baseline on every metric."""
    out = []
    for e in entries:
        metrics = TASK_METRICS.get((e["task"], e["data_kind"]), ())
        values = _values(e["model"])
        metrics = tuple(m for m in metrics if m in values)
        if not metrics:
            continue
        rows = []
        for b, res in e["baselines"].items():
            bv = _values(res)
            for m in metrics:
                verdict = compare_to_baseline(m, values[m], bv.get(m))
                if verdict != "n/a":
                    rows.append({"baseline": b, "metric": m, "model_value": values[m], "baseline_value": bv[m],
                                 "verdict": verdict})
        out.append({"model": e["name"], "task": e["task"], "metrics": list(metrics), "comparisons": rows,
                    "baselines": sorted({r["baseline"] for r in rows}),
                    "beats_all": bool(rows) and all(r["verdict"] == "beats" for r in rows)})
    return out


def _baseline_section(summary: dict[str, Any]) -> list[str]:
    checks = summary.get("baseline_check") or []
    if not checks:
        return []
    lines = ["## Beating the baselines", "",
             "Each model against every baseline on its task's own metrics, on the same held-out samples. A clear "
             f"margin: a score at least {100 * MARGIN_POINTS:.0f} points above the baseline's, an error (FID, L1, "
             f"keypoint error) at least {100 * MARGIN_RELATIVE:.0f} % below it.", "",
             "| model | task metrics | baselines | beats every baseline by the margin | where not |",
             "|---|---|---|:---:|---|"]
    for c in checks:
        short = [r for r in c["comparisons"] if r["verdict"] != "beats"]
        where = "; ".join(
            f"`{r['baseline']}` {r['verdict']} on {r['metric']}: {_fmt(r['model_value'], _percent_metric(r['metric']))}"
            f" vs {_fmt(r['baseline_value'], _percent_metric(r['metric']))}" for r in short)
        lines.append(f"| `{c['model']}` | {', '.join(c['metrics'])} | "
                     f"{', '.join(f'`{b}`' for b in c['baselines'])} | **{'yes' if c['beats_all'] else 'no'}** | "
                     f"{where or '—'} |")
    n = sum(c["beats_all"] for c in checks)
    lines += ["", f"{n} of {len(checks)} models beat every baseline on every task metric by the margin."]
    notes = []
    for c in checks:
        for b in sorted({r["baseline"] for r in c["comparisons"] if r["verdict"] != "beats"}):
            what = BASELINE_NOTES.get((c["task"], b))
            notes.append(f"- `{c['model']}` vs `{b}`" + (f": {what}." if what else "."))
    if notes:
        lines += ["", "Where a baseline is not beaten, what that baseline is:", ""] + notes
    return lines + [""]


def _best_baseline(bar: Bar, entry: dict[str, Any]) -> tuple[str, float] | None:
    best = None
    higher = bar.op != "<"
    for b, res in entry["baselines"].items():
        v = _values(res).get(bar.metric)
        if v is None or not math.isfinite(v):
            continue
        if best is None or (v > best[1] if higher else v < best[1]):
            best = (b, v)
    return best


def _context_name(metric: str) -> str:
    name = metric.rsplit("/", 1)[-1]
    return f"{name.removesuffix('_floor')} of the true images" if name.endswith("_floor") else name


def miss_reason(bar: Bar, entry: dict[str, Any], value: float) -> str:
    """One line on why ``entry`` misses ``bar``, from its own numbers."""
    values = _values(entry["model"])
    name = bar.metric.rsplit("/", 1)[-1]
    parts = [f"{name} {_fmt(value, bar.percent)} vs {bar.op} {_fmt(bar.threshold, bar.percent)}"]
    ctx = [(m, values[m]) for m in bar.context if m in values]
    if bar.task == "style" or (bar.task in EDIT_TASKS and bar.percent):
        parts_ctx = [(m, v) for m, v in ctx if not m.endswith("_floor") and not m.startswith("reader_accuracy")]
        if parts_ctx:
            weakest = min(parts_ctx, key=lambda mv: mv[1])
            what = "attribute" if bar.task in EDIT_TASKS else "part"
            parts.append(f"weakest {what}: {weakest[0].rsplit('/', 1)[-1]} {_fmt(weakest[1], True)}")
            ctx = [mv for mv in ctx if mv[0] != weakest[0]]
    elif bar.task == "generation" and "precision" in values and "recall" in values:
        p, r = values["precision"], values["recall"]
        if r <= bar.threshold < p:
            parts.append("the samples fall inside the real images' feature neighbourhoods but cover too few of "
                         "them (the generator misses part of the real images' variety)")
        elif p <= bar.threshold:
            parts.append("the samples fall outside the real images' feature neighbourhoods")
    parts += [f"{_context_name(m)} {_fmt(v, _percent_metric(m))}" for m, v in ctx]
    best = _best_baseline(bar, entry)
    if best is not None:
        parts.append(f"best baseline `{best[0]}` {_fmt(best[1], bar.percent)}")
    if entry.get("steps"):
        wall = entry.get("train_wall_seconds") or 0
        cores = (entry.get("train_machine") or {}).get("logical_cores")
        where = f"a {cores}-core CPU" if cores else "a CPU"
        parts.append(f"model trained {entry['steps']} steps ({wall / 60:.0f} min on {where})")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------ Markdown
def _arrow(metric: str) -> str:
    from fashion_gans.evaluation.evaluate import _higher_is_better

    return {True: " ↑", False: " ↓", None: ""}[_higher_is_better(metric)]


def _percent_metric(metric: str) -> bool:
    name = metric.rsplit("/", 1)[-1].removesuffix("_floor")
    return name.endswith(("_kept", "_match", "domain_ok", "pck_0.05", "target_class_rate")) or name.startswith(
        ("coverage", "edit_success", "others_kept", "reader_accuracy")) or name == "keypoint_error"


def _edit_section(summary: dict[str, Any]) -> list[str]:
    """The section "Attribute editing: Fader Networks vs IcGAN": per data kind one table of the editing
    bundles side by side with the editing baselines and the reader's accuracy (the ceiling), the sample grids,
    and a line for each expected editing bundle the run did not evaluate."""
    from fashion_gans.evaluation.evaluate import MEAN_MIN_IMAGES

    run = summary["run"]
    entries = [e for e in summary["models"] if e["task"] in EDIT_TASKS]
    lines = ["## Attribute editing: Fader Networks vs IcGAN", "",
             "Each held-out image is edited once per attribute (one attribute changed at a time; the requested "
             "values cycle over all the other values), and the domain network (`synthetic-attributes` for colour / "
             "pattern / kind, `fmnist-classifier` for the Fashion-MNIST class) reads the result: **edit success** "
             "= the requested value is read; **others kept** = every other attribute reads as on the input; "
             "**recon SSIM / L1** = the edit to the image's own attributes against the input; the last row is the "
             "reader on the unedited inputs, the ceiling of edit success. Synthetic images are 64 px product photos "
             "of the designs (kind, colour, pattern, pattern colour) the training seed held out, never a training "
             "image (a flat depends on its design only, so another world seed would redraw training designs). "
             "Baselines are editors on the same images: `copy` returns the input; `mean` the mean training image "
             "of the requested attributes (relaxed to the images sharing the most requested values when fewer "
             f"than {MEAN_MIN_IMAGES} have them all); `nearest` retrieves the training image with exactly the "
             "requested attributes that is nearest to the input in pixels (the non-generative competitor; where "
             "no training image has the combination, the nearest sharing the most requested values). A held-out "
             "solid design is a (colour, kind) pair no solid training flat has: retrieval cannot produce it, an "
             "editor that generalises can.", ""]
    done = {e["name"] for e in entries}
    for name in EDIT_BUNDLES:
        if name in done:
            continue
        if name in (run.get("bundled") or []):
            lines.append(f"- `{name}` was not evaluated in this run (`--only`).")
        else:
            lines.append(f"- `{name}` is not bundled yet (`scripts/train_bundled.py` makes it): no numbers.")
    if len(done) < len(EDIT_BUNDLES):
        lines.append("")
    for kind in sorted({e["data_kind"] for e in entries}):
        group = [e for e in entries if e["data_kind"] == kind]
        attrs: list[str] = []
        for e in group:
            attrs += [a for a in e.get("attributes", {}) if a not in attrs]
        cols = ["edit_success", "others_kept", "recon_ssim", "recon_l1"] + [f"edit_success_{a}" for a in attrs]
        heads = ["edit success", "others kept", "recon SSIM", "recon L1"] + [f"edit {a}" for a in attrs]
        first = group[0]
        names = ", ".join(f"`{e['name']}`" for e in group)
        lines += [f"### {kind}: {names}", "",
                  f"{first['count']} held-out images, "
                  f"{len(first.get('attributes', {}))} edit(s) each; `mean` / `nearest` search "
                  f"{first.get('baseline_train_count', '—')} labelled training images (as many as the models "
                  "trained on). ↑ higher is better, ↓ lower is better.", "",
                  "| | " + " | ".join(f"{h}{_arrow(c)}" for h, c in zip(heads, cols)) + " |",
                  "|---|" + "---:|" * len(cols)]
        for e in group:
            v = _values(e["model"])
            label = f"**{e['name']}** ({EDIT_TITLES.get(e['task'], e['task'])}, {e['steps']} steps)"
            lines.append(f"| {label} | " + " | ".join(_fmt(v.get(c), _percent_metric(c)) for c in cols) + " |")
        shown: list[str] = []
        for e in group:
            key = json.dumps({b: _values(r) for b, r in e["baselines"].items()}, sort_keys=True)
            if key in shown:
                continue
            shown.append(key)
            where = f" (samples of `{e['name']}`)" if len(group) > 1 and len(shown) > 1 else ""
            for b, res in e["baselines"].items():
                v = _values(res)
                lines.append(f"| baseline `{b}`{where} | " + " | ".join(
                    _fmt(v.get(c), _percent_metric(c)) for c in cols) + " |")
        v = _values(first["model"])
        ceiling = {"edit_success": v.get("reader_accuracy"),
                   **{f"edit_success_{a}": v.get(f"reader_accuracy_{a}") for a in attrs}}
        lines.append("| reader on the unedited inputs (the ceiling) | " + " | ".join(
            _fmt(ceiling[c], True) if c in ceiling else "" for c in cols) + " |")
        for e in group:
            for b, reason in e["baselines_skipped"].items():
                lines.append(f"\nBaseline `{b}` skipped for `{e['name']}`: {reason}.")
        lines.append("")
        for e in group:
            rows = e.get("grid_rows") or []
            lines += [f"![{e['name']} samples](results/{e['name']}.png)", "",
                      f"`{e['name']}` sample grid, columns: {' | '.join(e['grid_columns'])}; rows: "
                      + "; ".join(f"{i + 1}. {r}" for i, r in enumerate(rows)) + ".", ""]
    return lines


def render_markdown(summary: dict[str, Any]) -> str:
    """``RESULTS.md`` from the summary (every number on the page is read from it)."""
    run = summary["run"]
    seeds = ", ".join(sorted({str(e["train_seed"]) for e in summary["models"]
                              if e["data_kind"] == "synthetic" and e["task"] not in EDIT_TASKS}))
    lines = ["# Results", "",
             f"Generated by `{run['command']}` on {run['date']} ({run['machine']['cpu_model']}, "
             f"{run['machine']['usable_cores']} usable cores, torch {run['machine']['torch']}, "
             f"{run['seconds'] / 60:.1f} min). Do not edit by hand: rerun the command.", "",
             f"Held-out data: the synthetic bundles trained on the synthetic world of seed {seeds or '—'} and are "
             f"scored on the `test` split of the world of seed {run['world_seed']} (unseen people, "
             "products and shoe/handbag styles; "
             f"{run['count']} samples per task requested); the Fashion-MNIST bundles on the official test split "
             f"({run['fmnist_count']} requested). Model and baselines are scored on the same samples with "
             "`fashion_gans.evaluation.evaluate_model`; FID / KID / precision / recall use the domain extractor "
             "(`synthetic-attributes` or `fmnist-classifier`), so they are comparable within a table only; "
             "precision and recall are k-nearest-neighbour estimates that read lower the more images they compare, "
             "so they are comparable at equal sample counts only.", "",
             "## Quality bars", "",
             "| bar | model | measured | required | samples | result |", "|---|---|---:|---:|---:|:---:|"]
    for b in summary["bars"]:
        lines.append(f"| {b['label']} | `{b['model']}` | {_fmt(b['value'], b['percent'])} | {b['op']} "
                     f"{_fmt(b['threshold'], b['percent'])} | {b['samples']} | **{b['result']}** |")
    misses = [b for b in summary["bars"] if b["result"] == "MISS"]
    passes = sum(b["result"] == "PASS" for b in summary["bars"])
    lines += ["", f"{passes} of {len(summary['bars'])} bars met."]
    if misses:
        lines += ["", "Why each MISS:", ""] + [f"- `{b['bar']}` (`{b['model']}`): {b['why']}" for b in misses]
    lines += [""] + _baseline_section(summary)
    lines += ["## Models against the baselines", "",
              "`copy`: the input returned unchanged (generation: training images, i.e. a memorising generator); "
              "`mean`: the mean training target; `nearest`: the nearest training target (pixels, or attribute "
              "features for synthetic garments and styles). ↑ higher is better, ↓ lower is better.", ""]
    for e in summary["models"]:
        if e["task"] in EDIT_TASKS:
            continue  # their own section below
        cols = [c for c in COLUMNS.get((e["task"], e["data_kind"]), ()) if c in _values(e["model"])]
        lines += [f"### `{e['name']}` ({e['task']}, {e['data_kind']})", "",
                  f"{e['data_description']}. Preset `{e['preset']}`, {e['steps']} training steps. "
                  f"{e['count']} held-out samples ({e['seconds']:.0f} s to score).", "",
                  "| | " + " | ".join(f"{c}{_arrow(c)}" for c in cols) + " |",
                  "|---|" + "---:|" * len(cols)]
        rows = [(f"**{e['name']}**", e["model"])] + [(f"baseline `{b}`", r) for b, r in e["baselines"].items()]
        for label, res in rows:
            v = _values(res)
            lines.append(f"| {label} | " + " | ".join(_fmt(v.get(c), _percent_metric(c)) for c in cols) + " |")
        model_values = _values(e["model"])
        for label, refs in REFERENCES.items():
            by_col = {c: model_values[r] for r, c in refs.items() if r in model_values and c in cols}
            if by_col:
                lines.append(f"| {label} | " + " | ".join(
                    _fmt(by_col[c], _percent_metric(c)) if c in by_col else "" for c in cols) + " |")
        for b, reason in e["baselines_skipped"].items():
            lines.append(f"\nBaseline `{b}` skipped: {reason}.")
        lines += ["", f"![{e['name']} samples](results/{e['name']}.png)", "",
                  f"Sample grid, columns: {' | '.join(e['grid_columns'])}.", ""]
    if summary["run"].get("only") is None or any(e["task"] in EDIT_TASKS for e in summary["models"]):
        lines += _edit_section(summary)
    lines += ["## The thesis' numbers (different dataset and protocol)", "",
              f"From {THESIS_SOURCE}: real DeepFashion / LookBook / handbags2shoes photos at full resolution, "
              "10,000 samples, ImageNet Inception v3 features (FID, IS, precision/recall) and channel-mean SSIM. The "
              "rows \"this project\" repeat the bundled models' numbers from above (F1 = 2PR/(P+R); no IS: the "
              "domain extractors are not ImageNet classifiers). "
              "**Different dataset and protocol: not comparable** with the tables above (synthetic world and "
              "Fashion-MNIST at 32-64 px, the sample counts below, domain extractors). Shown for orientation only.", "",
              "| task | model (dataset) | source | FID ↓ | IS ↑ | SSIM ↑ | precision ↑ | recall ↑ | F1 ↑ |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for task in sorted({e["task"] for e in summary["models"] if e["task"] in THESIS}):
        t = THESIS[task]
        lines.append(f"| {task} | thesis: {t['model']} ({t['dataset']}) | {t['table']} | " + " | ".join(
            f"{t['values'][k]:g}" for k in THESIS_COLUMNS) + " |")
        for e in summary["models"]:
            if e["task"] != task:
                continue
            for prefix in (("shoe2bag/", "bag2shoe/") if task == "style" else ("",)):
                v = _values(e["model"])
                p, r = v.get(prefix + "precision"), v.get(prefix + "recall")
                ours = {"fid": v.get(prefix + "fid"), "ssim": v.get(prefix + "ssim"), "precision": p, "recall": r,
                        "f1": 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None}
                what = f"`{e['name']}`" + (f" {prefix.rstrip('/')}" if prefix else "")
                lines.append(f"| {task} | this project: {what} ({e['data_kind']}, {e['count']} samples) | "
                             "RESULTS above, domain extractor | " + " | ".join(
                                 _fmt(ours.get(k)) for k in THESIS_COLUMNS) + " |")
    lines += ["", "## Reproduce", "", "```bash", run["command"], "```", "",
              f"Machine: {run['machine']['cpu_model']}, {run['machine']['logical_cores']} logical cores "
              f"({run['machine']['usable_cores']} usable), {run['machine']['platform']}, Python "
              f"{run['machine']['python']}, torch {run['machine']['torch']}, OMP_NUM_THREADS="
              f"{run['machine']['omp_num_threads']}. Date {run['date']}. Counts: "
              + ", ".join(f"`{e['name']}` {e['count']}" for e in summary["models"])
              + ". Per-model evaluations (every metric, skipped metrics and notes): `results/<bundle>.json`; "
              "everything on this page: `results/summary.json`.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=256, help="held-out samples per synthetic task (default 256)")
    p.add_argument("--fmnist-count", type=int, default=2000,
                   help="held-out Fashion-MNIST test samples (default 2000)")
    p.add_argument("--only", nargs="+", default=None, metavar="BUNDLE", help="evaluate these bundles only")
    p.add_argument("--out", type=Path, default=_REPO, help="folder of RESULTS.md and results/ (default: the repo)")
    p.add_argument("--world", type=Path, default=None,
                   help="held-out synthetic world folder (rendered when missing; default "
                        "runs/results/world-seed<S>-<hash of the world options>)")
    p.add_argument("--world-seed", type=int, default=DEFAULT_WORLD_SEED,
                   help=f"seed of the held-out synthetic world (default {DEFAULT_WORLD_SEED}; must differ from "
                        "the training seed)")
    p.add_argument("--train-count", type=int, default=512,
                   help="training targets loaded for the baselines (default 512, at least the sample count)")
    cards = p.add_mutually_exclusive_group()
    cards.add_argument("--cards", type=Path, default=None, metavar="DIR",
                       help="bundle folders (DIR/<bundle>/) whose bundle.json and model cards get the published "
                            "figures (default: the bundled models when --out is the repository, else none)")
    cards.add_argument("--no-cards", action="store_true", help="leave every bundle's model cards as they are")
    return p


def card_results(entry: dict[str, Any], run: dict[str, Any], check: dict[str, Any] | None) -> dict[str, Any]:
    """What a bundle's ``bundle.json`` and model cards record of its ``RESULTS.md`` figures (the ``results`` of
    :func:`train_bundled.publish_results`): the protocol, the command and date, the model's and the baselines'
    values, and whether it beats every baseline by the margin."""
    split = entry["model"].get("split", "test")
    if entry["data_kind"] == "fashion-mnist":
        protocol = f"{entry['count']} held-out images of the Fashion-MNIST {split} split"
    elif entry["task"] in EDIT_TASKS:
        protocol = f"{entry['count']} held-out samples: product photos of the designs the training seed held out"
    else:
        protocol = (f"{entry['count']} held-out samples: the {split} split of the synthetic world of seed "
                    f"{run['world_seed']} (unseen people and items)")
    return {"name": entry["name"], "protocol": protocol, "command": run["command"], "date": run["date"],
            "steps": entry["steps"], "split": split, "count": entry["count"], "metrics": _values(entry["model"]),
            "baselines": {b: _values(res) for b, res in entry["baselines"].items()},
            "beats_all_baselines": None if check is None else bool(check["beats_all"])}


def _train_bundled():
    from fashion_gans.notebook import load_script

    return sys.modules.get("train_bundled") or load_script("train_bundled", "train_bundled")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1 or args.fmnist_count < 1 or args.train_count < 1:
        raise SystemExit("--count, --fmnist-count and --train-count must be >= 1")
    from fashion_gans.models.sources import list_bundled, load_networks

    bundled = list_bundled()
    names = args.only or bundled
    unknown = [n for n in names if n not in bundled]
    if unknown:
        raise SystemExit(f"unknown bundle(s) {unknown}; bundled: {', '.join(bundled)}")
    t0 = time.perf_counter()
    command = "python scripts/make_results.py" + "".join(f" {shlex.quote(a)}" for a in (
        argv if argv is not None else sys.argv[1:]))
    metas = {n: load_networks(n).meta for n in names}
    needs_world = any(data_kind(m) == "synthetic" and m.get("task") not in EDIT_TASKS for m in metas.values())
    world = None
    if needs_world:
        digest = hashlib.sha256(json.dumps(world_options(args.count, args.world_seed), sort_keys=True).encode())
        world = args.world or _REPO / "runs" / "results" / f"world-seed{args.world_seed}-{digest.hexdigest()[:12]}"
        world = ensure_world(world, args.count, args.world_seed)
    out_dir = args.out / "results"
    entries = []
    baseline_cache: dict[str, Any] = {}
    for name in names:
        print(f"[{name}] evaluating", flush=True)
        entry = evaluate_bundle(name, world, args.world_seed, args.count, args.fmnist_count, args.train_count,
                                baseline_cache)
        if entry["task"] in EDIT_TASKS:
            entry["grid_columns"], entry["grid_rows"] = edit_grid(name, out_dir / f"{name}.png")
        else:
            entry["grid_columns"] = sample_grid(name, world, out_dir / f"{name}.png")
        _write_json(out_dir / f"{name}.json", entry)
        print(f"[{name}] {entry['count']} samples in {entry['seconds']:.0f} s", flush=True)
        entries.append(entry)
    summary = {
        "run": {"command": command, "date": _now(), "machine": machine_info(), "seconds": time.perf_counter() - t0,
                "count": args.count, "fmnist_count": args.fmnist_count, "train_count": args.train_count,
                "world_seed": args.world_seed, "world": str(world) if world else None,
                "world_options": world_options(args.count, args.world_seed) if world else None,
                "bundled": bundled, "only": args.only},
        "thesis": {"source": THESIS_SOURCE, "note": "different dataset and protocol", "tables": THESIS},
        "models": entries,
        "bars": check_bars(entries),
        "baseline_check": check_baselines(entries),
    }
    _write_json(out_dir / "summary.json", summary)
    _write_text(args.out / "RESULTS.md", render_markdown(summary))
    for b in summary["bars"]:
        print(f"{b['result']}  {b['bar']} ({b['model']}): {_fmt(b['value'], b['percent'])} {b['op']} "
              f"{_fmt(b['threshold'], b['percent'])}", flush=True)
    for c in summary["baseline_check"]:
        print(f"{'BEATS' if c['beats_all'] else 'SHORT'}  every baseline ({c['model']})", flush=True)
    print(f"wrote {args.out / 'RESULTS.md'} and {out_dir}", flush=True)
    cards = args.cards  # None with --no-cards (the two options exclude each other)
    if cards is None and not args.no_cards and args.out.resolve() == _REPO.resolve():
        from fashion_gans.models.sources import BUNDLED_DIR

        cards = BUNDLED_DIR
    if cards is not None:
        publish = _train_bundled().publish_results
        checks = {c["model"]: c for c in summary["baseline_check"]}
        for entry in entries:
            publish(cards / entry["name"], card_results(entry, summary["run"], checks.get(entry["name"])))
        print(f"wrote the figures into the model cards of {', '.join(e['name'] for e in entries)} in {cards}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
