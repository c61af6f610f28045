"""What every pipeline shares: loading a model from any source once per (source, device), and the task check."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from fashion_gans.models.sources import BUNDLED_DIR, LoadedNetworks, load_networks

__all__ = ["PipelineError", "Pipeline", "resolve_device", "clear_model_cache", "cached_networks"]

_CACHE: OrderedDict[tuple, LoadedNetworks] = OrderedDict()  # least recently used first
_LOCK = threading.Lock()
_LOADING: dict[tuple, threading.Lock] = {}  # one lock per key being loaded: concurrent requests load it once
_CACHE_SIZE = 8

TASK_TITLES = {"pose": "pose transfer", "garment": "garment extraction", "style": "style matching",
               "generation": "generation", "fader": "attribute editing (Fader Networks)",
               "icgan": "attribute editing (IcGAN)"}


class PipelineError(ValueError):
    """A pipeline cannot run: wrong kind of model, unsupported model configuration, or bad arguments."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` -> CUDA when available, else CPU; anything else as ``torch.device``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise PipelineError(f"device {device!r}: not a torch device ({exc})") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"device {device!r}: CUDA is not available on this machine")
    return dev


def _version_of(source: str) -> tuple:
    """A cheap fingerprint of a local model folder (weights' mtimes, the newest checkpoint's name), so re-exported
    weights and new checkpoints are picked up."""
    path = Path(source).expanduser()
    if not path.is_dir():
        path = BUNDLED_DIR / source if "/" not in source else path
    if not path.is_dir():
        return ()
    stamps = []
    for weights in sorted(path.glob("*/model.safetensors")) + sorted(path.glob("final/*/model.safetensors")):
        try:
            stamps.append((weights.parent.name, weights.stat().st_mtime_ns))
        except OSError:
            pass
    if not stamps and (path / "checkpoints").is_dir():  # a run folder without final/: its newest checkpoint
        from fashion_gans.training.checkpoint import latest_checkpoint

        latest = latest_checkpoint(path / "checkpoints")
        if latest is not None:
            stamps.append(("checkpoint", Path(latest).name))
    return tuple(stamps)


def cached_networks(source: str | os.PathLike, device: torch.device, revision: str | None = None, *,
                    max_parameters: int | None = None) -> LoadedNetworks:
    """:func:`~fashion_gans.models.sources.load_networks` once per (source, device, revision, weights' mtimes).

    At most ``_CACHE_SIZE`` models stay loaded, the least recently used is dropped first; requests for a model
    that is being loaded wait for that load instead of loading it again."""
    text = str(source)
    key = (str(Path(text).expanduser().resolve()) if Path(text).expanduser().exists() else text, str(device),
           revision, _version_of(text))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
        loading = _LOADING.setdefault(key, threading.Lock())
    with loading:
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
        try:
            loaded = load_networks(source, revision=revision, map_location=str(device), max_parameters=max_parameters)
            for net in loaded.networks.values():
                net.eval().requires_grad_(False)
            with _LOCK:
                while len(_CACHE) >= _CACHE_SIZE:
                    _CACHE.popitem(last=False)
                _CACHE[key] = loaded
        finally:
            with _LOCK:
                _LOADING.pop(key, None)
    return loaded


def clear_model_cache() -> None:
    """Forget every cached model (frees memory; the next ``from_pretrained`` loads again)."""
    with _LOCK:
        _CACHE.clear()


class Pipeline:
    """Base class: ``from_pretrained(source, device=...)`` loads a model of this pipeline's ``task``."""

    task: ClassVar[str] = ""

    def __init__(self, loaded: LoadedNetworks, device: torch.device | str = "cpu") -> None:
        if loaded.meta.get("task") != self.task:
            raise PipelineError(f"{loaded.path}: is a {loaded.meta.get('task')!r} model "
                                f"({TASK_TITLES.get(str(loaded.meta.get('task')), 'unknown tool')}); "
                                f"{type(self).__name__} needs a {self.task!r} model")
        self.loaded = loaded
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, *, device: str | torch.device | None = "auto",
                        revision: str | None = None, max_parameters: int | None = None):
        """Load from a bundled model name (:func:`~fashion_gans.models.sources.list_bundled`), a model, run or
        checkpoint folder, or a Hub repo id; models are cached once per (source, device).  ``max_parameters``
        refuses larger models before their weights are read."""
        dev = resolve_device(device)
        return cls(cached_networks(source, dev, revision, max_parameters=max_parameters), dev)

    @property
    def meta(self) -> dict[str, Any]:
        """``bundle.json`` of the model (task, preset, data, metrics ...) or what was inferred."""
        return self.loaded.meta

    def network(self, name: str) -> nn.Module:
        return self.loaded.networks[name]

    def describe(self) -> str:
        """One line: the model class, its size, preset and training data."""
        parts = []
        for name, net in self.loaded.networks.items():
            n = sum(p.numel() for p in net.parameters())
            parts.append(f"{name}: {type(net).__name__} ({n / 1e6:.2f}M parameters)")
        extra = [f"{k} {self.meta[k]}" for k in ("preset", "data") if self.meta.get(k)]
        return "; ".join(parts + extra)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.loaded.path)!r}, device={str(self.device)!r})"
