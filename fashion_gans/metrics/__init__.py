"""Evaluation metrics: FID, KID, Inception Score, improved precision/recall, SSIM; one shared feature pass
(:mod:`.features`), cached real-set statistics (:mod:`.stats`) and the single entry :func:`compute_metrics`."""

from fashion_gans.metrics.features import (
    FeatureExtractor,
    FeatureSet,
    PixelExtractor,
    extract_features,
    get_extractor,
    list_extractors,
    register_extractor,
    to_uint8,
)

__all__ = [
    "FeatureExtractor",
    "FeatureSet",
    "PixelExtractor",
    "extract_features",
    "get_extractor",
    "list_extractors",
    "register_extractor",
    "to_uint8",
]
from fashion_gans.metrics.evaluate import MetricSpec, compute_metrics, list_metrics, register_metric  # noqa: E402
from fashion_gans.metrics.fid import fid_from_features, frechet_distance, gaussian_stats  # noqa: E402
from fashion_gans.metrics.inception_score import inception_score  # noqa: E402
from fashion_gans.metrics.kid import kid_from_features  # noqa: E402
from fashion_gans.metrics.precision_recall import precision_recall  # noqa: E402
from fashion_gans.metrics.ssim import ssim  # noqa: E402
from fashion_gans.metrics.stats import (  # noqa: E402
    RealStats,
    StatsCacheError,
    StatsKey,
    compute_real_stats,
    get_real_stats,
    load_stats,
    save_stats,
)

__all__ += [
    "MetricSpec", "compute_metrics", "list_metrics", "register_metric", "fid_from_features", "frechet_distance",
    "gaussian_stats", "inception_score", "kid_from_features", "precision_recall", "ssim", "RealStats",
    "StatsCacheError", "StatsKey", "compute_real_stats", "get_real_stats", "load_stats", "save_stats",
]
