"""Real-set statistics (FID mean/covariance plus a capped sample of features for KID and precision/recall),
cached on disk as one safetensors file whose header carries the JSON metadata (the cache key).

The key names dataset, split, resolution, image count and extractor; a file whose key differs from the
requested one, or that cannot be read, raises :class:`StatsCacheError` naming the file and the problem.
Files are written atomically (temporary file + rename), so an interrupted run leaves no half-written cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from fashion_gans.data.io import DataError, atomic_path
from fashion_gans.metrics.features import FeatureExtractor, extract_features
from fashion_gans.metrics.fid import gaussian_stats

__all__ = ["StatsKey", "RealStats", "StatsCacheError", "stats_path", "save_stats", "load_stats",
           "compute_real_stats", "get_real_stats"]

FORMAT_VERSION = 1
_META_KEY = "fashion_gans.metrics.stats"


class StatsCacheError(DataError):
    """A statistics cache file is corrupt, or was made for another key."""


@dataclass(frozen=True)
class StatsKey:
    """What a statistics file describes. ``count`` is the number of real images requested (None: all)."""

    dataset: str
    split: str
    resolution: int
    extractor: str
    count: int | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def filename(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.dataset}_{self.split}_{self.resolution}_{self.extractor}_"
                      f"{'all' if self.count is None else self.count}")
        return f"{slug}_{hashlib.sha1(text.encode()).hexdigest()[:10]}.safetensors"


@dataclass
class RealStats:
    """Gaussian statistics of ``num_images`` real images and up to ``max_features`` of their features."""

    mu: torch.Tensor  # (D,) float64
    sigma: torch.Tensor  # (D, D) float64
    features: torch.Tensor  # (M, D) float32, M <= num_images
    num_images: int
    key: StatsKey | None = None


def stats_path(cache_dir: str | Path, key: StatsKey) -> Path:
    return Path(cache_dir) / key.filename()


def save_stats(stats: RealStats, path: str | Path) -> Path:
    """Write ``stats`` to ``path`` atomically."""
    path = Path(path)
    meta = {"format": FORMAT_VERSION, "num_images": int(stats.num_images),
            "key": stats.key.as_dict() if stats.key is not None else None}
    tensors = {"mu": stats.mu.to(torch.float64).contiguous(), "sigma": stats.sigma.to(torch.float64).contiguous(),
               "features": stats.features.to(torch.float32).contiguous()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(meta, sort_keys=True)})
    return path


def load_stats(path: str | Path, expected_key: StatsKey | None = None) -> RealStats:
    """Read a statistics file; :class:`StatsCacheError` if it is unreadable, malformed or for another key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: statistics file not found")
    try:
        tensors = load_file(str(path))

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        meta = json.loads(header[_META_KEY])
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise StatsCacheError(f"{path}: corrupt statistics cache ({type(exc).__name__}: {exc}); delete it to "
                              "recompute") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise StatsCacheError(f"{path}: statistics format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    missing = {"mu", "sigma", "features"} - set(tensors)
    if missing:
        raise StatsCacheError(f"{path}: corrupt statistics cache, missing tensors {sorted(missing)}")
    mu, sigma, feats = tensors["mu"], tensors["sigma"], tensors["features"]
    d = mu.shape[0] if mu.ndim == 1 else -1
    if d < 1 or sigma.shape != (d, d) or feats.ndim != 2 or feats.shape[1] != d:
        raise StatsCacheError(f"{path}: corrupt statistics cache, inconsistent shapes mu {tuple(mu.shape)}, "
                              f"sigma {tuple(sigma.shape)}, features {tuple(feats.shape)}")
    key = StatsKey(**meta["key"]) if meta.get("key") is not None else None
    if expected_key is not None and key != expected_key:
        raise StatsCacheError(f"{path}: statistics were made for {key}, not for the requested {expected_key}")
    return RealStats(mu=mu, sigma=sigma, features=feats, num_images=int(meta["num_images"]), key=key)


def compute_real_stats(images: torch.Tensor | Iterable, extractor: FeatureExtractor, key: StatsKey | None = None,
                       max_features: int = 10_000, batch_size: int = 64,
                       device: torch.device | str | None = None) -> RealStats:
    """One feature pass over (at most ``key.count``) real images -> :class:`RealStats`."""
    if key is not None and key.extractor != extractor.name:
        raise ValueError(f"stats key names extractor {key.extractor!r} but the extractor is {extractor.name!r}")
    feats = extract_features(extractor, images, max_items=key.count if key else None, batch_size=batch_size,
                             device=device).features
    mu, sigma = gaussian_stats(feats)
    return RealStats(mu=mu, sigma=sigma, features=feats[:max_features].to(torch.float32),
                     num_images=int(feats.shape[0]), key=key)


def get_real_stats(key: StatsKey, images: torch.Tensor | Iterable | Callable[[], Iterable],
                   extractor: FeatureExtractor, cache_dir: str | Path | None, max_features: int = 10_000,
                   batch_size: int = 64, device: torch.device | str | None = None) -> tuple[RealStats, bool]:
    """``(stats, cache_hit)``: the cached statistics for ``key`` if present, else computed (one feature pass
    over ``images``; a zero-argument callable is only called on a miss) and written to ``cache_dir``."""
    path = stats_path(cache_dir, key) if cache_dir is not None else None
    if path is not None and path.is_file():
        return load_stats(path, expected_key=key), True
    stats = compute_real_stats(images() if callable(images) else images, extractor, key, max_features,
                               batch_size, device)
    if path is not None:
        save_stats(stats, path)
    return stats, False
