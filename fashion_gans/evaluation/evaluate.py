"""One evaluation entry: :func:`evaluate_model` runs a trained model (or a baseline) on held-out data of its task
and returns every metric that applies, as :class:`MetricRecord` rows of an :class:`EvaluationResult`.

Baselines (same data, same metrics, so a table can show what a model adds):

``copy``
    return the input unchanged: the source image (pose), the person photo (garment), the input shoe / bag
    (style); for generation (no input) the training images themselves (a generator that memorised its data).
``mean``
    the mean training target image (pose: the mean target photo; garment: the mean product photo; style: the
    mean image of the target domain; generation: the mean training image) for every input.
``nearest``
    the training target image nearest to the input: pixel space (16x16 area-downsampled) for pose and
    Fashion-MNIST, ``synthetic-attributes`` features for garment and synthetic style (a person photo and a
    product photo are far apart in pixels). Generation has no input: skipped.

For attribute editing (``fader``, ``icgan``) a baseline is an *editor* (:func:`edit_baseline`), scored with
:func:`fashion_gans.evaluation.editing.edit_metrics` like the model:

``copy``
    the input unchanged (perfect reconstruction and ``others_kept``, no edit lands).
``mean``
    the mean training image of the requested attribute combination; a combination with fewer than
    :data:`MEAN_MIN_IMAGES` training images takes the mean of the images sharing the most requested values.
``nearest``
    retrieval, the obvious non-generative competitor: the training image with exactly the requested attributes
    nearest to the input in pixels (16x16 area-downsampled); where no training image has that combination, the
    nearest among those sharing the most requested values.

Which metrics apply (and the result says which were skipped and why): SSIM / L1 only where a ground-truth
target exists (pose, garment); editing: edit success, attributes kept, reconstruction SSIM / L1 and the
reader's accuracy (the ceiling) on held-out labelled images (synthetic flats of designs the training seed held
out, or the Fashion-MNIST test split), read by the domain network; keypoint error (pose) and attribute metrics
only on the synthetic world (a folder with the renderer's attribute files; other folders are real photos that
neither network knows); target-class rate (with a constant mid-grey reference, ``target_class_rate_floor``)
only on Fashion-MNIST; per-direction ``diversity`` for style; FID / KID / precision / recall with the domain extractor (``synthetic-attributes`` or
``fmnist-classifier``, or the ``extractor`` given). Baselines run on the held-out ``test`` split only.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fashion_gans.metrics.features import to_uint8

from . import task_metrics as tm
from .cache import cached_extractor
from .data import (EDIT_TASKS, TASKS, EvalData, EvaluationError, default_edit_attributes, edit_data_kind,
                   load_eval_data, resolve_data_kind)

__all__ = ["BASELINES", "MetricRecord", "EvaluationResult", "evaluate_model", "run_baseline", "edit_baseline",
           "score_outputs", "score_edits", "distribution_metrics", "mean_pairwise_ratio", "run_data_options",
           "recorded_train_config", "training_split", "model_inputs",
           "run_train_config"]

BASELINES = ("copy", "mean", "nearest")
#: The ``mean`` editing baseline averages at least this many training images (fewer: it relaxes the match).
MEAN_MIN_IMAGES = 3
#: Editing metrics whose name ends in ``_<attribute>`` (their direction is the base metric's).
_PER_ATTRIBUTE = ("edit_success_", "others_kept_", "reader_accuracy_")

#: Whether a higher value is better, by metric name (the part after the last "/").
HIGHER_IS_BETTER = {
    "ssim": True, "l1": False, "keypoint_error": False, "keypoint_error_floor": False, "pck_0.05": True,
    "colour_kept": True, "pattern_kept": True, "garment_kept": True, "garment_kept_floor": True,
    "colour_kept_floor": True, "pattern_kept_floor": True,
    "colour_match": True, "pattern_match": True, "style_match_floor": True, "target_class_rate_floor": True,
    "material_match": True, "style_match": True, "domain_ok": True, "target_class_rate": True, "fid": False,
    "kid": False, "precision": True, "recall": True, "diversity": True, "lpips": False, "coverage": True,
    "entropy": True,
    "domain_perceptual_distance": False,
    "edit_success": True, "others_kept": True, "recon_ssim": True, "recon_l1": False, "recon_kept": True,
    "reader_accuracy": True,
}


@dataclass
class MetricRecord:
    """One measured number and how it was measured."""

    metric: str
    value: float
    extractor: str | None
    samples: int
    split: str
    date: str
    model: str
    task: str
    data: str
    higher_is_better: bool | None = None
    note: str = ""


@dataclass
class EvaluationResult:
    """Every metric of one evaluation, plus the metrics that were skipped (``{metric: reason}``)."""

    task: str
    model: str
    data: str
    split: str
    count: int
    date: str
    records: list[MetricRecord] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def held_out(self) -> bool:
        """Whether the samples are held out from training (the ``test`` split); ``train`` / ``all`` are not."""
        return self.split == "test"

    @property
    def values(self) -> dict[str, float]:
        """``{metric: value}``."""
        return {r.metric: r.value for r in self.records}

    def __getitem__(self, metric: str) -> float:
        for r in self.records:
            if r.metric == metric:
                return r.value
        raise KeyError(f"no metric {metric!r}; measured: {', '.join(r.metric for r in self.records)}")

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "data": self.data, "split": self.split,
                "held_out": self.held_out, "count": self.count, "date": self.date,
                "metrics": [asdict(r) for r in self.records],
                "skipped": [{"metric": k, "reason": v} for k, v in self.skipped.items()], "notes": list(self.notes)}

    def to_markdown(self) -> str:
        split = f"{self.split} split, held out" if self.held_out else \
            f"{self.split} split, NOT held out: the model may have trained on these samples"
        lines = [f"# Evaluation: {self.task}", "",
                 f"model `{self.model}` · data `{self.data}` ({split}, {self.count} samples) · {self.date}", "",
                 "| metric | value | better | extractor | samples |", "|---|---:|:---:|---|---:|"]
        for r in self.records:
            better = {True: "↑", False: "↓", None: ""}[r.higher_is_better]
            value = "nan" if not math.isfinite(r.value) else f"{r.value:.4g}"
            lines.append(f"| {r.metric} | {value} | {better} | {r.extractor or '—'} | {r.samples} |")
        if self.skipped:
            lines += ["", "Skipped:", ""] + [f"- `{k}`: {v}" for k, v in self.skipped.items()]
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``metrics.json`` and ``metrics.md`` into ``out_dir`` atomically (each a temp file renamed)."""
        from fashion_gans.data.io import atomic_path

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = out / "metrics.json", out / "metrics.md"
        with atomic_path(paths[0]) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n", encoding="utf-8")
        with atomic_path(paths[1]) as tmp:
            Path(tmp).write_text(self.to_markdown(), encoding="utf-8")
        return paths


def _higher_is_better(metric: str) -> bool | None:
    name = metric.rsplit("/", 1)[-1]
    if name.startswith(("coverage_", "entropy_")):
        name = name.split("_", 1)[0]
    for prefix in _PER_ATTRIBUTE:
        if name.startswith(prefix):
            name = prefix[:-1]
    return HIGHER_IS_BETTER.get(name)


class _Recorder:
    def __init__(self, result: EvaluationResult) -> None:
        self.result = result

    def add(self, metric: str, value: float | torch.Tensor, samples: int, extractor: str | None = None,
            note: str = "") -> None:
        if isinstance(value, torch.Tensor):
            value = float(value.float().nanmean()) if value.numel() else float("nan")
        r = self.result
        self.result.records.append(MetricRecord(
            metric, float(value), extractor, int(samples), r.split, r.date, r.model, r.task, r.data,
            _higher_is_better(metric), note))

    def skip(self, metric: str, reason: str) -> None:
        self.result.skipped[metric] = reason


# --------------------------------------------------------------------------------------------- running models
def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


@torch.no_grad()
def _run_model(task: str, nets: dict[str, torch.nn.Module], data: EvalData, batch_size: int, device, seed: int,
               ) -> dict[str, torch.Tensor]:
    """The model's outputs on ``data``: ``{name: (N, C, H, W) float in [-1, 1], CPU}`` (names as ``targets``)."""
    outs: dict[str, list[torch.Tensor]] = {}

    def put(name: str, t: torch.Tensor) -> None:
        outs.setdefault(name, []).append(t.detach().float().clamp(-1, 1).cpu())

    if task == "pose":
        g = nets["generator"]
        for s in _batches(data.count, batch_size):
            put("target_image", g(data.inputs["source_image"][s].to(device),
                                  data.inputs["target_pose"][s].to(device)).refined)
    elif task == "garment":
        g = nets["generator"]
        for s in _batches(data.count, batch_size):
            put("product_image", g(data.inputs["person_image"][s].to(device)))
    elif task == "style":
        for src, dst, net in (("shoe", "bag", "gen_ab"), ("bag", "shoe", "gen_ba")):
            x = data.inputs[src]
            for s in _batches(x.shape[0], batch_size):
                put(dst, nets[net](x[s].to(device)))
    else:
        g = nets["generator"]
        gen = torch.Generator().manual_seed(int(seed))
        z_dim = int(g.config.z_dim)
        # The per-layer noise is drawn anew for every image, as in training and in StyleGAN2's own metrics (the
        # fixed noise buffers of noise_mode="const", which the demo uses so that a seed gives one image, give every
        # sample the same fine detail); under a seeded, forked RNG, so a rerun scores the same images.
        cuda = torch.device(device).type == "cuda"
        with torch.random.fork_rng(devices=[torch.device(device)] if cuda else []):
            torch.manual_seed(int(seed))
            for s in _batches(data.count, batch_size):
                z = torch.randn(s.stop - s.start, z_dim, generator=gen).to(device)
                img = g(z, noise_mode="random")
                res = data.targets["image"].shape[-1]
                if img.shape[-1] != res:
                    img = F.interpolate(img.float(), size=(res, res), mode="bilinear", align_corners=False)
                put("image", img)
    return {k: torch.cat(v) for k, v in outs.items()}


def _small(x: torch.Tensor) -> torch.Tensor:
    """16x16 area-downsampled pixels, flattened (the pixel space of the ``nearest`` baseline)."""
    return F.adaptive_avg_pool2d(x.float(), (16, 16)).flatten(1)


def _features(x: torch.Tensor, extractor: str) -> torch.Tensor:
    ext = cached_extractor(extractor)
    u = to_uint8(x)
    return torch.cat([ext(u[i:i + 256])["features"].double().cpu() for i in range(0, u.shape[0], 256)])


def run_baseline(name: str, data: EvalData) -> dict[str, torch.Tensor]:
    """The outputs of baseline ``name`` (``copy``, ``mean``, ``nearest``) on ``data``, named as ``data.targets``.
    Raises :class:`EvaluationError` where a baseline does not apply (``nearest`` for generation)."""
    if name not in BASELINES:
        raise EvaluationError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    task = data.task
    if task in EDIT_TASKS:
        raise EvaluationError(f"a {task!r} baseline is an editor, not a set of outputs: use edit_baseline()")
    if name == "copy":
        if task == "pose":
            return {"target_image": data.inputs["source_image"].clone()}
        if task == "garment":
            return {"product_image": data.inputs["person_image"].clone()}
        if task == "style":
            return {"bag": data.inputs["shoe"].clone(), "shoe": data.inputs["bag"].clone()}
        train = data.train_targets.get("image")
        if train is None or train.shape[0] == 0:
            raise EvaluationError("baseline 'copy' for generation needs training images")
        idx = torch.arange(data.count) % train.shape[0]
        return {"image": train[idx].clone()}
    # mean / nearest need training targets
    inputs_for = {"pose": {"target_image": "source_image"}, "garment": {"product_image": "person_image"},
                  "style": {"bag": "shoe", "shoe": "bag"}, "generation": {"image": None}}[task]
    out = {}
    for target, src in inputs_for.items():
        train = data.train_targets.get(target)
        if train is None or train.shape[0] == 0:
            raise EvaluationError(f"baseline {name!r} needs training {target} images; none were loaded")
        n = data.inputs[src].shape[0] if src is not None else data.count
        if name == "mean":
            out[target] = train.float().mean(0, keepdim=True).expand(n, -1, -1, -1).clone()
            continue
        if src is None:
            raise EvaluationError("baseline 'nearest' needs an input image; generation has none")
        x = data.inputs[src]
        if data.kind == "synthetic" and task in ("garment", "style"):
            q, db = _features(x, tm.ATTRIBUTE_EXTRACTOR), _features(train, tm.ATTRIBUTE_EXTRACTOR)
        else:
            q, db = _small(x).double(), _small(train).double()
        nearest = torch.cdist(q, db).argmin(1)
        out[target] = train[nearest].clone()
    return out


def _relaxed_match(train_idx: torch.Tensor, want: torch.Tensor, min_images: int) -> torch.Tensor:
    """Rows of ``train_idx`` (M, K) sharing the most values with ``want`` (K,): every value if at least
    ``min_images`` rows do, else K - 1 values, and so on (a bool mask; never empty when M > 0)."""
    hits = (train_idx == want).sum(1)
    for level in range(train_idx.shape[1], -1, -1):
        mask = hits >= level
        if int(mask.sum()) >= min_images or level == 0:
            return mask
    return hits >= 0


def edit_baseline(name: str, data: EvalData):
    """Baseline ``name`` (``copy``, ``mean``, ``nearest``) of an editing task as an ``edit_fn(images, code) ->
    images`` for :func:`~fashion_gans.evaluation.editing.edit_metrics` (see the module docstring); ``mean`` and
    ``nearest`` search ``data``'s training images and their labels."""
    from fashion_gans.models.attributes import code_to_indices

    from .editing import copy_edit

    if name not in BASELINES:
        raise EvaluationError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if data.task not in EDIT_TASKS:
        raise EvaluationError(f"edit_baseline is for the editing tasks {EDIT_TASKS}, not {data.task!r}")
    if name == "copy":
        return copy_edit
    train = data.train_targets.get("image")
    train_idx = data.truth.get("train_attributes")
    if train is None or train.shape[0] == 0 or train_idx is None:
        raise EvaluationError(f"baseline {name!r} needs labelled training images; none were loaded")
    attrs = data.truth["attribute_values"]
    train_small = _small(train).double()
    means: dict[tuple[int, ...], torch.Tensor] = {}

    def edit(images: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        want = code_to_indices(code.float().cpu(), attrs)
        out = torch.empty_like(images)
        if name == "nearest":
            q = _small(images.cpu()).double()
        for i in range(images.shape[0]):
            key = tuple(int(v) for v in want[i])
            if name == "mean":
                if key not in means:
                    means[key] = train[_relaxed_match(train_idx, want[i], MEAN_MIN_IMAGES)].float().mean(0)
                out[i] = means[key].to(out)
            else:
                rows = torch.nonzero(_relaxed_match(train_idx, want[i], 1)).flatten()
                d = torch.cdist(q[i:i + 1], train_small[rows])[0]
                out[i] = train[rows[int(d.argmin())]].to(out)
        return out

    return edit


# --------------------------------------------------------------------------------------------- metrics
def distribution_metrics(fake: torch.Tensor, real: torch.Tensor, extractor: str,
                         kid_subset: int = 1000) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """FID, KID (mean), precision and recall (k=3) of ``fake`` vs ``real`` with one feature pass each; also
    returns the two feature sets. Needs at least 2 images each (precision/recall at least 5)."""
    from fashion_gans.metrics import fid_from_features, kid_from_features, precision_recall

    ff, fr = _features(fake, extractor), _features(real, extractor)
    out = {"fid": float(fid_from_features(fr, ff)) if min(len(ff), len(fr)) >= 2 else float("nan")}
    if min(len(ff), len(fr)) >= 2:
        out["kid"] = kid_from_features(fr, ff, n_subsets=50, subset_size=min(kid_subset, len(ff), len(fr)))[
            "kid_mean"]
    if min(len(ff), len(fr)) >= 5:
        pr = precision_recall(fr, ff, k=3)
        out["precision"], out["recall"] = pr["precision"], pr["recall"]
    return out, ff, fr


def _dist(rec: _Recorder, prefix: str, fake: torch.Tensor, real: torch.Tensor, extractor: str,
          ) -> tuple[torch.Tensor, torch.Tensor]:
    values, ff, fr = distribution_metrics(fake, real, extractor)
    for k in ("fid", "kid", "precision", "recall"):
        if k in values:
            rec.add(prefix + k, values[k], len(ff), extractor)
        else:
            rec.skip(prefix + k, f"needs at least {2 if k != 'precision' and k != 'recall' else 5} samples")
    return ff, fr


_REAL_PHOTOS = "the data is not the synthetic world (no synthetic renderer attribute files): "


def _task_metrics(rec: _Recorder, data: EvalData, outputs: dict[str, torch.Tensor], extractor: str | None,
                  device) -> None:
    task, n = data.task, data.count
    synthetic = data.kind == "synthetic"
    other = data.kind == "other"
    dom = extractor or (tm.FMNIST_EXTRACTOR if data.kind == "fashion-mnist" else tm.ATTRIBUTE_EXTRACTOR)
    if other and extractor is None:
        rec.result.notes.append("FID/KID/precision/recall use synthetic-attributes features, learnt on the synthetic "
                                "world; pass another extractor for real photos")
    if task == "pose":
        fake, real = outputs["target_image"], data.targets["target_image"]
        for k, v in tm.ssim_l1(fake, real).items():
            rec.add(k, v, n)
        if synthetic:
            kp = data.truth["target_keypoints"]
            for k, v in tm.keypoint_metrics(fake, kp, device).items():
                rec.add(k, v, n, "synthetic-pose")
            rec.add("keypoint_error_floor", tm.keypoint_metrics(real, kp, device)["keypoint_error"], n,
                    "synthetic-pose", note="the detector's own error on the true target images")
        else:
            for k in ("keypoint_error", "pck_0.05", "keypoint_error_floor"):
                rec.skip(k, _REAL_PHOTOS + "the synthetic-pose detector only knows the synthetic mannequins")
        _dist(rec, "", fake, real, dom)
        rec.skip("colour_kept", "pose transfer keeps the whole person; judged by SSIM/L1 against the true target")
    elif task == "garment":
        fake, real = outputs["product_image"], data.targets["product_image"]
        for k, v in tm.ssim_l1(fake, real).items():
            rec.add(k, v, n)
        if synthetic:
            truth = {"colour": data.truth["colour"], "pattern": data.truth["pattern"]}
            for k, v in tm.attributes_kept(fake, truth, device).items():
                rec.add(k, v, n, tm.ATTRIBUTE_EXTRACTOR)
            floor = tm.attributes_kept(real, truth, device)
            for k in ("colour_kept", "pattern_kept", "garment_kept"):
                rec.add(f"{k}_floor", floor[k], n, tm.ATTRIBUTE_EXTRACTOR,
                        note=f"the attribute network's reading of the true product images (the ceiling of {k})")
        else:
            for k in ("colour_kept", "pattern_kept", "domain_ok", "garment_kept", "colour_kept_floor",
                      "pattern_kept_floor", "garment_kept_floor"):
                rec.skip(k, _REAL_PHOTOS + "no recorded garment attributes, and the attribute network only knows "
                         "synthetic renders")
        _dist(rec, "", fake, real, dom)
    elif task == "style":
        rec.skip("ssim", "no pixel target: a handbag of the same style as a shoe is not one image")
        rec.skip("l1", "no pixel target: a handbag of the same style as a shoe is not one image")
        for direction, src, dst in ((tm.SHOE_TO_BAG, "shoe", "bag"), (tm.BAG_TO_SHOE, "bag", "shoe")):
            fake, real = outputs[dst], data.targets[dst]
            m = fake.shape[0]
            if synthetic:
                styles = data.truth[f"{src}_style"]
                truth = {h: [s[h] for s in styles] for h in tm.STYLE_HEADS}
                for k, v in tm.style_match(fake, truth, dst, device).items():
                    rec.add(f"{direction}/{k}", v, m, tm.ATTRIBUTE_EXTRACTOR)
                partners = data.truth.get(f"{src}_partner")
                if partners is not None:
                    p_truth = {h: [s[h] for s in data.truth[f"{src}_partner_style"]] for h in tm.STYLE_MATCH_HEADS}
                    rec.add(f"{direction}/style_match_floor",
                            tm.style_match(partners, p_truth, dst, device)["style_match"], partners.shape[0],
                            tm.ATTRIBUTE_EXTRACTOR, note=f"the attribute network's reading of real {dst} images "
                            "sharing each source's style (what a perfect translator scores)")
                else:
                    rec.skip(f"{direction}/style_match_floor", f"no real {dst} shares a style with the sources")
            elif not other:
                rec.add(f"{direction}/target_class_rate", tm.target_class_rate(fake, direction, device), m,
                        tm.FMNIST_EXTRACTOR, note=f"softmax of the target class(es) >= "
                        f"{tm.TARGET_CLASS_CONFIDENCE} on an image with contrast")
                grey = torch.zeros_like(fake[:1])
                rec.add(f"{direction}/target_class_rate_floor", tm.target_class_rate(grey, direction, device), 1,
                        tm.FMNIST_EXTRACTOR, note="the same rate of a constant mid-grey output (a collapsed "
                        "translator)")
            else:
                for k in ("style_match", "target_class_rate"):
                    rec.skip(f"{direction}/{k}", _REAL_PHOTOS + "no recorded styles or class labels")
            ff, fr = _dist(rec, f"{direction}/", fake, real, dom)
            rec.add(f"{direction}/diversity", mean_pairwise_ratio(ff, fr), m, dom,
                    note=f"mean pairwise feature distance of the results / of the real {dst} images")
        if synthetic:
            rec.result.notes.append("material is read by the attribute network at about 68% held-out accuracy "
                                    "(4 classes), so style_match requires colour, pattern and the domain only; "
                                    "colour and pattern are read at about 98%")
    else:
        fake, real = outputs["image"], data.targets["image"]
        ff, fr = _dist(rec, "", fake, real, dom)
        rec.add("diversity", mean_pairwise_ratio(ff, fr), n, dom,
                note="mean pairwise feature distance of the fakes / of the reals")
        if synthetic:
            pf, pr = tm.read_attributes(fake, tm.PERSON_HEADS, device), tm.read_attributes(real, tm.PERSON_HEADS,
                                                                                            device)
            names = cached_extractor(tm.ATTRIBUTE_EXTRACTOR).class_names
            for h in tm.PERSON_HEADS:
                c = tm.attribute_coverage(pf[h], pr[h], len(names[h]))
                rec.add(f"coverage_{h}", c["coverage"], n, tm.ATTRIBUTE_EXTRACTOR)
                rec.add(f"entropy_{h}", c["entropy"], n, tm.ATTRIBUTE_EXTRACTOR,
                        note=f"real: {c['entropy_real']:.3f}")
        elif other:
            rec.skip("coverage", _REAL_PHOTOS + "the attribute network only knows synthetic renders")
        else:
            ext = cached_extractor(tm.FMNIST_EXTRACTOR)
            pf = torch.cat([ext(to_uint8(fake[i:i + 512]))["logits"].argmax(1) for i in range(0, n, 512)])
            pr = torch.cat([ext(to_uint8(real[i:i + 512]))["logits"].argmax(1) for i in range(0, n, 512)])
            c = tm.attribute_coverage(pf, pr, 10)
            rec.add("coverage_class", c["coverage"], n, tm.FMNIST_EXTRACTOR)
            rec.add("entropy_class", c["entropy"], n, tm.FMNIST_EXTRACTOR, note=f"real: {c['entropy_real']:.3f}")
        rec.skip("ssim", "generation has no paired target")


def mean_pairwise_ratio(fake_features: torch.Tensor, real_features: torch.Tensor) -> float:
    """Mean pairwise feature distance of the fakes divided by that of the reals (1 = as diverse as the data,
    0 = every fake identical)."""
    real = tm.mean_pairwise_distance(real_features)
    return tm.mean_pairwise_distance(fake_features) / real if real > 0 else float("nan")


_EDIT_COUNTS = ("n_images", "n_edits")


def score_edits(data: EvalData, edit_fn, *, model: str = "editor", reader=None, targets_per_image: int = 1,
                batch_size: int = 64, device: str | torch.device = "cpu") -> EvaluationResult:
    """Every editing metric of ``edit_fn(images, code) -> images`` on ``data`` (an editing task's
    :func:`~fashion_gans.evaluation.load_eval_data`), via :func:`~fashion_gans.evaluation.editing.edit_metrics`
    with ``reader`` (default: the domain network of the attributes, ``synthetic-attributes`` or
    ``fmnist-classifier``). Edit metrics count edits as samples, reconstruction and reader metrics images."""
    from .editing import attribute_reader, edit_metrics

    if data.task not in EDIT_TASKS:
        raise EvaluationError(f"score_edits is for the editing tasks {EDIT_TASKS}, not {data.task!r}")
    attrs = data.truth["attribute_values"]
    extractor = None
    if reader is None:
        try:
            reader = attribute_reader(attrs, device)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from exc
        extractor = reader.extractor.name
    try:
        values = edit_metrics(edit_fn, data.inputs["image"], data.truth["attributes"], attrs, reader,
                              targets_per_image=targets_per_image, batch_size=batch_size)
    except ValueError as exc:
        raise EvaluationError(f"editing metrics: {exc}") from exc
    result = _new_result(data.task, model, data.location, data.split, data.count)
    rec = _Recorder(result)
    n_images, n_edits = int(values["n_images"]), int(values["n_edits"])
    for k, v in values.items():
        if k in _EDIT_COUNTS:
            continue
        if k in ("edit_success", "others_kept"):
            samples = n_edits
        elif k.startswith(("edit_success_", "others_kept_")):
            samples = n_edits // len(attrs)  # the edits of that attribute
        else:
            samples = n_images
        note = ""
        if k == "reader_accuracy":
            note = "the reader on the unedited inputs: the ceiling of edit_success"
        elif k == "edit_success":
            note = f"{targets_per_image} edit(s) per image and attribute, one attribute changed at a time"
        elif k == "recon_ssim":
            note = "the edit to the image's own attributes, against the input"
        rec.add(k, v, samples, None if k in ("recon_ssim", "recon_l1") else extractor, note=note)
    if len(attrs) == 1:
        rec.skip("others_kept", f"one attribute ({next(iter(attrs))}): nothing else to keep")
    rec.skip("fid", "edits are judged by the attribute reader and the reconstruction, not by a distribution")
    return result


def _new_result(task: str, model: str, data: str, split: str, count: int) -> EvaluationResult:
    return EvaluationResult(task=task, model=model, data=data, split=split, count=count,
                            date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def score_outputs(data: EvalData, outputs: dict[str, torch.Tensor], *, model: str = "outputs",
                  extractor: str | None = None, device: str | torch.device = "cpu") -> EvaluationResult:
    """Every metric of ``outputs`` (images in [-1, 1] named as ``data.targets``: pose ``target_image``, garment
    ``product_image``, style ``bag`` (from the shoes) and ``shoe`` (from the bags), generation ``image``) on
    ``data`` (:func:`fashion_gans.evaluation.load_eval_data`). :func:`evaluate_model` calls this with the model's
    or a baseline's outputs; call it directly to score images made elsewhere."""
    if data.task in EDIT_TASKS:
        raise EvaluationError(f"a {data.task!r} model is scored as an editor: use score_edits()")
    missing = [k for k in data.targets if k not in outputs]
    if missing:
        raise EvaluationError(f"outputs lack {missing} (task {data.task!r} needs {sorted(data.targets)})")
    for k, v in outputs.items():
        want = data.inputs.get({"bag": "shoe", "shoe": "bag"}.get(k, ""), data.targets[k]) \
            if data.task == "style" else data.targets[k]
        if tuple(v.shape) != tuple(want.shape):
            raise EvaluationError(f"outputs[{k!r}] is {tuple(v.shape)}, expected {tuple(want.shape)}")
    result = _new_result(data.task, model, data.location, data.split, data.count)
    _task_metrics(_Recorder(result), data, outputs, extractor, device)
    return result


# --------------------------------------------------------------------------------------------- the entry
def model_inputs(task: str, nets: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """What the data must look like for this model: image size, channels, pose encoding."""
    cfg = next(iter(nets.values())).config
    if task in EDIT_TASKS:
        cfg = (nets.get("fader") or nets.get("generator") or next(iter(nets.values()))).config
        return {"image_size": (int(cfg.image_size), int(cfg.image_size)), "channels": int(cfg.image_channels),
                "attributes": {k: list(v) for k, v in cfg.attributes.items()}}
    if task == "generation":
        return {"image_size": (cfg.resolution, cfg.resolution), "channels": cfg.image_channels}
    if task == "style":
        if cfg.channels_a != cfg.channels_b:
            raise EvaluationError(f"style model with {cfg.channels_a} -> {cfg.channels_b} channels is not "
                                  "supported")
        return {"image_size": tuple(cfg.image_size), "channels": cfg.channels_a}
    out = {"image_size": tuple(cfg.image_size), "channels": cfg.image_channels}
    if task == "pose":
        out["pose_encoding"] = "iuv" if cfg.pose_encoding == "iuv" else "heatmap"
    return out


def evaluate_model(source: str | os.PathLike | None, data: str | os.PathLike, *, task: str | None = None,
                   split: str = "test", count: int = 256, extractor: str | None = None, baseline: str | None = None,
                   batch_size: int = 32, image_size: int | tuple[int, int] | None = None,
                   device: str | torch.device = "cpu", seed: int = 0, train_count: int = 512,
                   data_options: dict[str, Any] | None = None, attributes: dict[str, list[str]] | None = None,
                   train_seed: int | None = None) -> EvaluationResult:
    """Evaluate ``source`` (anything :func:`fashion_gans.models.sources.load_networks` takes) or ``baseline``
    (``copy`` / ``mean`` / ``nearest``; ``source`` may then be None and ``task`` must be given) on ``count``
    samples of ``split`` of ``data`` (a prepared synthetic folder, a dataset root or ``fashion-mnist``).

    ``extractor``: the feature extractor of FID / KID / precision / recall (default: the domain extractor,
    ``synthetic-attributes`` or ``fmnist-classifier``). ``image_size``: the data resolution for a baseline
    (default 64; a model uses its own). ``split``: ``test`` (held out; the default), or ``train`` / ``all``
    (not held out, labelled so in the result; baselines need ``test``: ``mean`` / ``nearest`` search the
    training targets, which would then hold the scored samples). ``data_options``: the dataset split options
    (``test_percent``, ``test_fraction``, ``protocol``); default: those of the training run when ``source`` is
    a run folder (or its ``final/`` / a checkpoint in it), so the held-out samples are the run's own.

    Attribute editing (``fader`` / ``icgan``): ``data`` is ``synthetic`` (flats rendered in memory: the designs
    that world seed ``train_seed`` holds out, never a training image; a flat's pixels do not depend on the world
    seed, so another seed would not be unseen data) or ``fashion-mnist``; ``train_seed`` defaults to the data seed
    recorded with the model (``train.data_options["seed"]``, else ``train.seed``, of its ``bundle.json`` / the
    run's ``config.json``: :func:`training_split`; 0 for a baseline) and on synthetic data must match it;
    ``data_options`` defaults to the recorded ones too (the same ``test_fraction``, so the same held-out designs);
    ``attributes`` (baselines only; a model uses its own) defaults to the presets' attributes; ``count`` is the
    number of images (each edited once per attribute); ``train_count`` labelled training images serve the
    ``mean`` and ``nearest`` baselines.
    Raises :class:`EvaluationError` (a ``ValueError``) on bad input and
    :class:`fashion_gans.models.hub.ModelFileError` for a source that cannot be loaded.
    """
    if int(count) < 1:
        raise EvaluationError(f"count must be >= 1, got {count}")
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be >= 1, got {batch_size}")
    if baseline is not None and baseline not in BASELINES:
        raise EvaluationError(f"unknown baseline {baseline!r}; choose from {', '.join(BASELINES)}")
    if source is None and baseline is None:
        raise EvaluationError("give a model source or a baseline")
    if baseline is not None and split != "test":
        raise EvaluationError(f"baselines are scored on the held-out 'test' split only, not {split!r} (the mean and "
                              "nearest baselines search the training targets, which would hold the scored samples)")
    if extractor is not None:
        from fashion_gans.metrics import list_extractors

        if extractor not in list_extractors():
            raise EvaluationError(f"unknown extractor {extractor!r}; registered: {', '.join(list_extractors())}")
    nets: dict[str, torch.nn.Module] = {}
    model_name = f"baseline:{baseline}" if baseline else str(source)
    loaded = None
    if source is not None and baseline is None:
        from fashion_gans.models.sources import load_networks

        loaded = load_networks(source, map_location=str(device))
        nets = loaded.networks
        if task is not None and task != loaded.task:
            raise EvaluationError(f"model {source} is a {loaded.task!r} model, not {task!r}")
        task = loaded.task
    if task not in TASKS:
        raise EvaluationError(f"task must be one of {', '.join(TASKS)} (a baseline needs it), got {task!r}")
    if task in EDIT_TASKS:
        return _evaluate_editor(task, source, loaded, data, baseline=baseline, split=split, count=int(count),
                                batch_size=batch_size, image_size=image_size, device=device,
                                train_count=train_count, data_options=data_options, attributes=attributes,
                                train_seed=train_seed, extractor=extractor)
    kind, _ = resolve_data_kind(data)
    if nets:
        spec = model_inputs(task, nets)
    else:
        size = image_size if image_size is not None else (32 if kind == "fashion-mnist" else 64)
        size = (size, size) if isinstance(size, int) else tuple(size)
        spec = {"image_size": size, "channels": 1 if kind == "fashion-mnist" else 3}
    if kind == "fashion-mnist" and tuple(spec["image_size"]) != (32, 32):
        raise EvaluationError(f"Fashion-MNIST is served at 32x32; the model works at {spec['image_size']}")
    needs_train = baseline in ("mean", "nearest") or (baseline == "copy" and task == "generation")
    if baseline == "copy" and task == "generation":
        # The "memorising generator" returns distinct training images: cycling through fewer than ``count`` would
        # repeat samples and shrink the precision/recall neighbourhoods.
        train_count = max(int(train_count), int(count))
    if data_options is None and source is not None and baseline is None:
        data_options = run_data_options(source)
    ev = load_eval_data(task, data, split=split, count=count, train_count=train_count if needs_train else 0,
                        data_options=data_options, **spec)
    if baseline is not None:
        outputs = run_baseline(baseline, ev)
    else:
        for net in nets.values():
            net.to(device).eval()
        outputs = _run_model(task, nets, ev, batch_size, device, seed)
    result = score_outputs(ev, outputs, model=model_name, extractor=extractor, device=device)
    result.data = str(data)
    if ev.count < int(count):
        result.notes.insert(0, f"asked for {count} samples; the {split} split has {ev.count}")
    if not result.held_out:
        result.notes.insert(0, f"the {split} split is not held out: the model may have trained on these samples")
    if data_options:
        result.notes.append(f"dataset split options: {json.dumps(_split_only(data_options), sort_keys=True)}")
    return result


def _evaluate_editor(task: str, source, loaded, data, *, baseline: str | None, split: str, count: int,
                     batch_size: int, image_size, device, train_count: int, data_options: dict[str, Any] | None,
                     attributes: dict[str, list[str]] | None, train_seed: int | None,
                     extractor: str | None = None) -> EvaluationResult:
    """:func:`evaluate_model` for ``fader`` / ``icgan``: the model (through
    :class:`~fashion_gans.pipelines.edit.AttributeEditPipeline`) or a baseline editor on held-out labelled
    images."""
    kind, _ = edit_data_kind(data)
    recorded, recorded_options = (training_split(recorded_train_config(source, loaded)) if loaded is not None
                                  else (None, {}))
    # The seed picks the held-out synthetic designs; Fashion-MNIST's split is fixed, so it does not matter there.
    if (kind == "synthetic" and train_seed is not None and recorded is not None
            and int(train_seed) != int(recorded)):
        raise EvaluationError(f"model {source} trained on the synthetic world of seed {recorded}, not {train_seed}: "
                              "its held-out designs are those of its own seed")
    seed = int(train_seed if train_seed is not None else (recorded if recorded is not None else 0))
    if loaded is not None:
        spec = model_inputs(task, loaded.networks)
        if attributes is not None and {k: list(v) for k, v in attributes.items()} != spec["attributes"]:
            raise EvaluationError(f"model {source} edits {spec['attributes']}; attributes= is for baselines only")
        if data_options is None:
            data_options = recorded_options or None
    else:
        size = image_size if image_size is not None else (32 if kind == "fashion-mnist" else 64)
        size = size[0] if isinstance(size, (tuple, list)) else size
        spec = {"image_size": (int(size), int(size)), "channels": 1 if kind == "fashion-mnist" else 3,
                "attributes": {k: list(v) for k, v in (attributes or default_edit_attributes(kind)).items()}}
    needs_train = baseline in ("mean", "nearest")
    ev = load_eval_data(task, data, split=split, count=count, train_count=int(train_count) if needs_train else 0,
                        data_options=data_options, train_seed=seed, **spec)
    if baseline is not None:
        edit_fn = edit_baseline(baseline, ev)
        name = f"baseline:{baseline}"
    else:
        from fashion_gans.pipelines.edit import AttributeEditPipeline

        for net in loaded.networks.values():
            net.to(device).eval()
        edit_fn = AttributeEditPipeline(loaded, device).edit_tensor
        name = str(source)
    result = score_edits(ev, edit_fn, model=name, batch_size=batch_size, device=device)
    result.data = str(data)
    if ev.count < count:
        result.notes.insert(0, f"asked for {count} samples; the {split} split has {ev.count}")
    if not result.held_out:
        result.notes.insert(0, f"the {split} split is not held out: the model may have trained on these samples")
    if kind == "synthetic":
        result.notes.append(f"synthetic flats of world seed {seed} (the training seed); "
                            + ("the test split holds designs (kind, colour, pattern, pattern colour) that seed "
                               "holds out, so no test image is a training image" if split == "test" else
                               f"the {split} split"))
    if needs_train:
        result.notes.append(f"{ev.train_targets['image'].shape[0]} labelled training images searched")
    if extractor is not None:
        result.notes.append(f"extractor {extractor!r} not used: edits are read by the attribute reader")
    if data_options:
        result.notes.append(f"dataset split options: {json.dumps(_split_only(data_options), sort_keys=True)}")
    return result


def _split_only(options: dict[str, Any]) -> dict[str, Any]:
    from .data import SPLIT_OPTIONS

    return {k: v for k, v in options.items() if k in SPLIT_OPTIONS}


def run_data_options(source: str | os.PathLike) -> dict[str, Any] | None:
    """The split options (``test_percent``, ``test_fraction``, ``protocol``) of the training run ``source``
    belongs to: ``train.data_options`` of the ``config.json`` in ``source``, its parent (``final/``) or its
    grandparent (``checkpoints/<step>``); None when ``source`` is no run (a model folder, a Hub id...)."""
    train = run_train_config(source)
    if train is not None and isinstance(train.get("data_options"), dict):
        return _split_only(train["data_options"])
    return None


def recorded_train_config(source: str | os.PathLike | None, loaded: Any = None) -> dict[str, Any]:
    """The training settings recorded with a model (a TrainConfig as a dict, ``{}`` when none is known): the
    ``train`` section of its ``bundle.json`` (bundled and Hub models; ``loaded.meta``) over that of the training
    run ``source`` belongs to (:func:`run_train_config`)."""
    train = dict(run_train_config(source) or {})
    meta_train = (getattr(loaded, "meta", None) or {}).get("train")
    if isinstance(meta_train, dict):
        train.update(meta_train)
    return train


def training_split(train: dict[str, Any] | None) -> tuple[int | None, dict[str, Any]]:
    """The world seed and split options (``test_fraction``, ...) that chose a training run's held-out data, from
    its recorded ``train`` settings (:func:`recorded_train_config`).  The training datasets are built with
    ``{"seed": train.seed, **train.data_options}``, so a ``data_options`` seed wins over the run's seed; the seed
    is None when nothing is recorded."""
    train = train or {}
    options = train.get("data_options") if isinstance(train.get("data_options"), dict) else {}
    seed = options.get("seed", train.get("seed"))
    return (None if seed is None else int(seed)), _split_only(options)


def run_train_config(source: str | os.PathLike | None) -> dict[str, Any] | None:
    """The ``train`` section (a TrainConfig as a dict) of the training run ``source`` belongs to: the
    ``config.json`` in ``source``, its parent (``final/``) or its grandparent (``checkpoints/<step>``); None
    when ``source`` is no run."""
    if source is None:
        return None
    path = Path(source)
    if not path.is_dir():
        return None
    for folder in (path, path.parent, path.parent.parent):
        cfg = folder / "config.json"
        if not cfg.is_file():
            continue
        try:
            train = json.loads(cfg.read_text(encoding="utf-8")).get("train")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(train, dict):
            return train
    return None
