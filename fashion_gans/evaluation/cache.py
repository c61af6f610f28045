"""Loaded evaluation networks, kept once per process (a trainer calling the metrics every N steps must not reload
weights each time). Every cached network is in eval mode with frozen parameters; :func:`clear_cache` drops them."""

from __future__ import annotations

import threading

import torch

__all__ = ["cached_extractor", "cached_keypoint_detector", "clear_cache"]

_LOCK = threading.Lock()
_CACHE: dict[tuple, torch.nn.Module] = {}


def _device_key(device) -> str:
    return str(torch.device(device)) if device is not None else "cpu"


def cached_extractor(name: str, device: torch.device | str | None = None):
    """The registered feature extractor ``name`` (:func:`fashion_gans.metrics.get_extractor`), loaded once per
    ``(name, device)``."""
    from fashion_gans.metrics import get_extractor

    key = ("extractor", name, _device_key(device))
    with _LOCK:
        ext = _CACHE.get(key)
        if ext is None:
            ext = get_extractor(name).to(_device_key(device)).eval()
            for p in ext.parameters():
                p.requires_grad_(False)
            _CACHE[key] = ext
    return ext


def cached_keypoint_detector(device: torch.device | str | None = None):
    """The shipped ``synthetic-pose`` keypoint detector, loaded once per device."""
    from fashion_gans.metrics.extractors.keypoints import load_keypoint_detector

    key = ("keypoints", "synthetic-pose", _device_key(device))
    with _LOCK:
        det = _CACHE.get(key)
        if det is None:
            det = load_keypoint_detector().to(_device_key(device)).eval()
            _CACHE[key] = det
    return det


def clear_cache() -> None:
    """Forget every cached network."""
    with _LOCK:
        _CACHE.clear()
