"""Task evaluation on ground truth: pose transfer, garment extraction, style matching and generation.

* :func:`evaluate_model` - one entry: a trained model (any source :func:`fashion_gans.models.sources.load_networks`
  takes) or a baseline (``copy``, ``mean``, ``nearest``) on held-out data -> :class:`EvaluationResult`.
* :func:`batch_metrics` - cheap per-batch task metrics for a training loop (networks cached per process).
* :func:`edit_metrics` - attribute editing (Fader Networks, IcGAN): edit success, attributes kept, reconstruction.
* :mod:`.task_metrics` - the per-image metric functions; :mod:`.perceptual` - LPIPS (local weights) and the
  offline domain perceptual distance.
"""

from .cache import cached_extractor, cached_keypoint_detector, clear_cache
from .data import TASKS, EvalData, EvaluationError, load_eval_data, resolve_data_kind
from .editing import AttributeReader, attribute_reader, copy_edit, edit_metrics
from .evaluate import (BASELINES, EvaluationResult, MetricRecord, evaluate_model, run_baseline, run_data_options,
                       score_outputs)
from .hooks import batch_metrics
from .perceptual import LPIPS, DomainPerceptualDistance, load_lpips

__all__ = [
    "AttributeReader", "BASELINES", "TASKS", "EvalData", "EvaluationError", "EvaluationResult", "MetricRecord",
    "LPIPS", "DomainPerceptualDistance", "attribute_reader", "batch_metrics", "cached_extractor",
    "cached_keypoint_detector", "clear_cache", "copy_edit", "edit_metrics", "evaluate_model", "load_eval_data",
    "load_lpips", "resolve_data_kind", "run_baseline", "run_data_options", "score_outputs",
]
