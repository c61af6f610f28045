"""One entry point: :func:`compute_metrics` runs the feature extractor ONCE over each image set and hands the
same features / logits to every requested metric (as torch-fidelity and NVlabs stylegan2-ada share features).

Metrics live in a registry (one file each): ``fid``, ``kid``, ``is``, ``pr``, ``ssim``. A metric function takes
``(real: RealStats | None, fake: FeatureSet, **options) -> dict[str, float]``; ``ssim`` is paired and computed on
the images themselves during the same pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from fashion_gans.metrics.features import (
    FeatureExtractor,
    FeatureSet,
    check_uint8_images,
    extract_features,
    get_extractor,
    iter_uint8_batches,
)
from fashion_gans.metrics.fid import frechet_distance, gaussian_stats
from fashion_gans.metrics.inception_score import inception_score
from fashion_gans.metrics.kid import kid_from_features
from fashion_gans.metrics.precision_recall import precision_recall
from fashion_gans.metrics.ssim import ssim, to_unit
from fashion_gans.metrics.stats import RealStats, load_stats

__all__ = ["MetricSpec", "register_metric", "list_metrics", "compute_metrics"]


@dataclass(frozen=True)
class MetricSpec:
    """``fn(real, fake, **options)``; ``needs_real``: uses the real set; ``needs_logits``: uses fake logits;
    ``paired``: computed on image pairs (not features)."""

    name: str
    fn: Callable[..., dict[str, float]] | None
    needs_real: bool = True
    needs_logits: bool = False
    paired: bool = False


_METRICS: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec, overwrite: bool = False) -> None:
    if spec.name in _METRICS and not overwrite:
        raise ValueError(f"metric {spec.name!r} is already registered")
    _METRICS[spec.name] = spec


def list_metrics() -> list[str]:
    return sorted(_METRICS)


def _fid(real: RealStats, fake: FeatureSet) -> dict[str, float]:
    return {"fid": frechet_distance(real.mu, real.sigma, *gaussian_stats(fake.features))}


def _kid(real: RealStats, fake: FeatureSet, **kw) -> dict[str, float]:
    return kid_from_features(real.features, fake.features, **kw)


def _is(real: RealStats | None, fake: FeatureSet, **kw) -> dict[str, float]:
    return inception_score(fake.logits, **kw)


def _pr(real: RealStats, fake: FeatureSet, **kw) -> dict[str, float]:
    return precision_recall(real.features, fake.features, **kw)


register_metric(MetricSpec("fid", _fid))
register_metric(MetricSpec("kid", _kid))
register_metric(MetricSpec("is", _is, needs_real=False, needs_logits=True))
register_metric(MetricSpec("pr", _pr))
register_metric(MetricSpec("ssim", None, paired=True))


class _Accumulator:
    def __init__(self, extractor: FeatureExtractor):
        self.extractor = extractor
        self.features: list[torch.Tensor] = []
        self.logits: list[torch.Tensor] = []

    def add(self, batch: torch.Tensor) -> None:
        out = self.extractor(batch)
        self.features.append(out["features"].detach().to("cpu", torch.float64))
        if out.get("logits") is not None:
            self.logits.append(out["logits"].detach().to("cpu", torch.float64))

    def result(self, what: str) -> FeatureSet:
        if not self.features:
            raise ValueError(f"compute_metrics: the {what} set gave no images")
        return FeatureSet(torch.cat(self.features), torch.cat(self.logits) if self.logits else None)


def _real_to_stats(feats: FeatureSet) -> RealStats:
    mu, sigma = gaussian_stats(feats.features)
    return RealStats(mu=mu, sigma=sigma, features=feats.features, num_images=len(feats))


@torch.no_grad()
def compute_metrics(fake: torch.Tensor | Iterable, real: torch.Tensor | Iterable | RealStats | str | Path | None,
                    extractor: str | FeatureExtractor = "pixels8", metrics: Iterable[str] = ("fid", "kid", "is", "pr"),
                    max_items: int | None = None, batch_size: int = 64, device: torch.device | str | None = None,
                    options: dict[str, dict] | None = None) -> dict[str, float]:
    """Compute ``metrics`` of the ``fake`` images against the ``real`` ones with one feature pass per set.

    ``fake``/``real``: a uint8 (N, C, H, W) tensor or float one in [-1, 1], or an iterable of such batches (or
    ``(images, ...)`` tuples / ``{"image": ...}`` dicts). ``real`` may instead be a :class:`RealStats` or the path
    of a statistics file (see :mod:`fashion_gans.metrics.stats`), in which case no real feature pass happens;
    it may be None when only real-free metrics (``is``) are asked for. ``max_items`` caps each set.
    ``options`` gives per-metric keyword arguments, e.g. ``{"kid": {"n_subsets": 50}, "pr": {"k": 5}}``.
    Returns a flat dict: ``fid``, ``kid_mean``, ``kid_std``, ``is_mean``, ``is_std``, ``precision``, ``recall``,
    ``f1``, ``density``, ``coverage``, ``ssim``, plus ``num_fake`` and ``num_real``.
    """
    metrics = tuple(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in _METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown or metrics}; available: {', '.join(list_metrics())}")
    specs = [_METRICS[m] for m in metrics]
    options = dict(options or {})
    extractor = get_extractor(extractor)
    if device is not None:
        extractor = extractor.to(device)
    if any(s.needs_logits for s in specs) and extractor.num_classes is None:
        raise ValueError(f"metrics {[s.name for s in specs if s.needs_logits]} need class logits, but extractor "
                         f"{extractor.name!r} has none")
    if isinstance(real, (str, Path)):
        real = load_stats(real)
    if isinstance(real, RealStats) and real.key is not None and real.key.extractor != extractor.name:
        raise ValueError(f"real statistics were made with extractor {real.key.extractor!r}, "
                         f"not {extractor.name!r}")
    if real is None and any(s.needs_real for s in specs):
        raise ValueError(f"metrics {[s.name for s in specs if s.needs_real]} need a real set")
    paired = any(s.paired for s in specs)
    if paired and (real is None or isinstance(real, RealStats)):
        raise ValueError("ssim compares image pairs: pass real images, not cached statistics")
    need_real_features = any(s.needs_real and not s.paired for s in specs) and not isinstance(real, RealStats)

    was_training = extractor.training
    extractor.eval()
    fake_acc, real_acc = _Accumulator(extractor), _Accumulator(extractor)
    ssim_values: list[torch.Tensor] = []
    n_fake = n_real = 0
    try:
        if paired:
            for f, r in zip(iter_uint8_batches(fake, batch_size), iter_uint8_batches(real, batch_size),
                            strict=False):
                if max_items is not None:
                    f, r = f[:max_items - n_fake], r[:max_items - n_fake]
                if f.shape != r.shape:
                    raise ValueError(f"ssim: paired batches differ in shape: fake {tuple(f.shape)}, "
                                     f"real {tuple(r.shape)}")
                if f.shape[0] == 0:
                    break
                check_uint8_images(f, "fake")
                ssim_values.append(ssim(to_unit(f), to_unit(r), data_range=1.0).cpu())
                fake_acc.add(f)
                if need_real_features:
                    real_acc.add(r)
                n_fake += f.shape[0]
                n_real += r.shape[0]
        else:
            fake_set = extract_features(extractor, fake, max_items, batch_size)
            fake_acc.features, fake_acc.logits = [fake_set.features], (
                [fake_set.logits] if fake_set.logits is not None else [])
            n_fake = len(fake_set)
            if need_real_features:
                real_set = extract_features(extractor, real, max_items, batch_size)
                real_acc.features = [real_set.features]
                n_real = len(real_set)
    finally:
        extractor.train(was_training)

    fake_set = fake_acc.result("fake")
    if isinstance(real, RealStats):
        real_stats: RealStats | None = real
        n_real = real.num_images
    elif need_real_features:
        real_stats = _real_to_stats(real_acc.result("real"))
    else:
        real_stats = None
    results: dict[str, float] = {}
    for spec in specs:
        if spec.paired:
            results["ssim"] = float(torch.cat(ssim_values).mean())
        else:
            results.update(spec.fn(real_stats, fake_set, **options.get(spec.name, {})))
    results["num_fake"] = n_fake
    results["num_real"] = n_real
    return results
