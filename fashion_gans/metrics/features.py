"""Feature extractors shared by every metric, their registry, and the single feature pass.

Contract (every extractor, built-in or in :mod:`fashion_gans.metrics.extractors`):

* a subclass of :class:`FeatureExtractor` (an ``nn.Module``) with
  ``name`` (str, the statistics-cache key), ``feature_dim`` (int), ``num_classes`` (int or None: whether
  ``logits`` are returned, for IS / classification) and ``input_range`` ("uint8", "unit" = [0, 1] or
  "signed" = [-1, 1]: what the network itself consumes; :meth:`FeatureExtractor.convert_input` maps to it);
* ``forward(images)`` takes **uint8** ``(N, C, H, W)`` images in 0..255 (the extractor owns its resize and
  normalisation, as torch-fidelity and the NVlabs metrics do) and returns
  ``{"features": (N, D) float, "logits": (N, K) float}`` (``logits`` only when ``num_classes`` is set).

Generator output in [-1, 1] is quantised to uint8 by :func:`to_uint8` before any extractor sees it (as
NVlabs stylegan2-ada does with ``img * 127.5 + 128``), so real and generated images take the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "INPUT_RANGES",
    "FeatureExtractor",
    "PixelExtractor",
    "FeatureSet",
    "to_uint8",
    "check_uint8_images",
    "iter_uint8_batches",
    "extract_features",
    "register_extractor",
    "get_extractor",
    "list_extractors",
]

INPUT_RANGES = ("uint8", "unit", "signed")


# --------------------------------------------------------------------------------------------- image ranges
def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images to uint8 ``(N, C, H, W)``: uint8 passes through; float images are taken to be in [-1, 1]
    (the project's convention) and quantised with round-to-nearest, ``x * 127.5 + 127.5``, clamped."""
    if images.dtype == torch.uint8:
        return images
    if not torch.is_floating_point(images):
        raise TypeError(f"images must be uint8 or float in [-1, 1], got dtype {images.dtype}")
    return (images.detach().float() * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8)


def check_uint8_images(images: torch.Tensor, where: str = "images") -> torch.Tensor:
    """Raise a clear error unless ``images`` is a uint8 ``(N, C, H, W)`` tensor with 1 or 3 channels."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        dtype = getattr(images, "dtype", type(images).__name__)
        raise TypeError(f"{where}: feature extractors take uint8 images in 0..255, got {dtype} "
                        "(convert with fashion_gans.metrics.to_uint8)")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{where}: expected (N, C, H, W) with C in (1, 3), got shape {tuple(images.shape)}")
    return images


def iter_uint8_batches(images: torch.Tensor | Iterable, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """Yield uint8 ``(N, C, H, W)`` batches from a tensor (split into ``batch_size`` chunks) or from an
    iterable of tensors / ``(images, ...)`` tuples / ``{"image": ...}`` dicts (uint8, or float in [-1, 1])."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images.unsqueeze(0)
        for start in range(0, images.shape[0], batch_size):
            yield to_uint8(images[start:start + batch_size])
        return
    for batch in images:
        if isinstance(batch, dict):
            for key in ("image", "images", "target"):
                if key in batch:
                    batch = batch[key]
                    break
            else:
                raise ValueError(f"batch dict has no 'image'/'images'/'target' entry (keys {sorted(batch)})")
        elif isinstance(batch, (tuple, list)):
            batch = batch[0]
        if not isinstance(batch, torch.Tensor):
            raise TypeError(f"batches must be tensors, got {type(batch).__name__}")
        if batch.ndim == 3:
            batch = batch.unsqueeze(0)
        yield to_uint8(batch)


# --------------------------------------------------------------------------------------------- extractors
class FeatureExtractor(nn.Module):
    """Base class: uint8 ``(N, C, H, W)`` images -> ``{"features": (N, D), "logits": (N, K)?}``."""

    name: str = ""
    feature_dim: int = 0
    num_classes: int | None = None
    input_range: str = "uint8"

    def convert_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32 in this extractor's ``input_range`` (on the module's device)."""
        check_uint8_images(images, f"extractor {self.name!r}")
        device = next((p.device for p in self.parameters()), None) or next(
            (b.device for b in self.buffers()), images.device)
        x = images.to(device=device, dtype=torch.float32)
        if self.input_range == "unit":
            return x / 255.0
        if self.input_range == "signed":
            return x / 127.5 - 1.0
        if self.input_range == "uint8":
            return x
        raise ValueError(f"extractor {self.name!r}: input_range must be one of {INPUT_RANGES}, "
                         f"got {self.input_range!r}")

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class PixelExtractor(FeatureExtractor):
    """Area-downsampled pixels in [0, 1] (``size x size`` per channel; no logits). Cheap, deterministic,
    weight-free: for tests and for quick training-curve "pixel Fréchet distance" numbers."""

    input_range = "unit"

    def __init__(self, size: int = 8, channels: int = 3):
        super().__init__()
        if size < 1 or channels not in (1, 3):
            raise ValueError(f"PixelExtractor: need size >= 1 and channels in (1, 3), got {size}, {channels}")
        self.size = int(size)
        self.channels = int(channels)
        self.feature_dim = self.channels * self.size * self.size

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"pixels{self.size}" + ("" if self.channels == 3 else f"-c{self.channels}")

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.convert_input(images)
        if x.shape[1] != self.channels:
            if x.shape[1] == 1:
                x = x.expand(-1, self.channels, -1, -1)  # grey -> RGB
            else:
                x = x.mean(1, keepdim=True)  # RGB -> grey
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="area")
        return {"features": x.flatten(1)}


# --------------------------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Callable[..., FeatureExtractor]] = {}


def register_extractor(name: str, factory: Callable[..., FeatureExtractor], overwrite: bool = False) -> None:
    """Register ``factory(**kw) -> FeatureExtractor`` under ``name`` (ValueError on a duplicate name)."""
    if not name or not isinstance(name, str):
        raise ValueError(f"extractor name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not overwrite and _REGISTRY[name] is not factory:
        raise ValueError(f"extractor {name!r} is already registered")
    _REGISTRY[name] = factory


def _load_plugins() -> None:
    try:  # the extractor package registers its networks on import
        import fashion_gans.metrics.extractors  # noqa: F401
    except ImportError:
        pass


def get_extractor(name: str | FeatureExtractor, **kwargs) -> FeatureExtractor:
    """An extractor instance by registered name (an instance passes through), in eval mode."""
    if isinstance(name, FeatureExtractor):
        return name
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown feature extractor {name!r}; registered: {', '.join(list_extractors())}")
    extractor = _REGISTRY[name](**kwargs)
    if not isinstance(extractor, FeatureExtractor):
        raise TypeError(f"extractor factory {name!r} returned {type(extractor).__name__}, "
                        "not a FeatureExtractor")
    return extractor.eval()


def list_extractors() -> list[str]:
    """Registered extractor names, sorted."""
    _load_plugins()
    return sorted(_REGISTRY)


register_extractor("pixels8", lambda **kw: PixelExtractor(size=8, **kw))


# --------------------------------------------------------------------------------------------- the feature pass
@dataclass
class FeatureSet:
    """Output of one feature pass: ``features`` (N, D) float64 on CPU, ``logits`` (N, K) or None."""

    features: torch.Tensor
    logits: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.features.shape[0])


@torch.no_grad()
def extract_features(extractor: FeatureExtractor, images: torch.Tensor | Iterable, max_items: int | None = None,
                     batch_size: int = 64, device: torch.device | str | None = None) -> FeatureSet:
    """Run ``extractor`` once over ``images`` (see :func:`iter_uint8_batches`), keeping at most ``max_items``.

    Features and logits are collected in float64 on the CPU (FID/KID precision, as torchmetrics recommends).
    """
    if device is not None:
        extractor = extractor.to(device)
    was_training = extractor.training
    extractor.eval()
    feats: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []
    count = 0
    try:
        for batch in iter_uint8_batches(images, batch_size):
            if max_items is not None:
                if count >= max_items:
                    break
                batch = batch[:max_items - count]
            if batch.shape[0] == 0:
                continue
            out = extractor(batch)
            f = out["features"]
            if f.ndim != 2 or f.shape[0] != batch.shape[0]:
                raise ValueError(f"extractor {extractor.name!r} returned features of shape {tuple(f.shape)} "
                                 f"for {batch.shape[0]} images")
            feats.append(f.detach().to("cpu", torch.float64))
            if out.get("logits") is not None:
                logits.append(out["logits"].detach().to("cpu", torch.float64))
            count += batch.shape[0]
    finally:
        extractor.train(was_training)
    if not feats:
        raise ValueError(f"extract_features: no images to run extractor {extractor.name!r} on")
    return FeatureSet(torch.cat(feats), torch.cat(logits) if logits else None)
