"""Structural similarity (Wang et al. 2004) for paired images.

Gaussian window 11, sigma 1.5, K1 = 0.01, K2 = 0.03, mean over channels and pixels per image. Borders:
``padding="reflect"`` (default) reflect-pads so that every pixel has a window, as torchmetrics does;
``padding="valid"`` keeps only full windows, as Wang et al.'s MATLAB code and skimage do.
Thesis erratum: the thesis computed SSIM on [-1, 1] images with the constants of a [0, 1] data range and zero
padding; here images are mapped to [0, 1] and ``data_range`` is explicit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "ssim", "to_unit"]


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps."""
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords / sigma) ** 2 / 2)
    return g / g.sum()


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (0..255) or float [-1, 1] images -> float64 [0, 1]."""
    if images.dtype == torch.uint8:
        return images.to(torch.float64) / 255.0
    if not torch.is_floating_point(images):
        raise TypeError(f"ssim: images must be uint8 or float in [-1, 1], got {images.dtype}")
    return ((images.to(torch.float64) + 1) / 2).clamp(0, 1)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float, window_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, padding: str = "reflect") -> torch.Tensor:
    """Per-image SSIM ``(N,)`` of float ``(N, C, H, W)`` pairs with the given ``data_range`` (e.g. 1.0 for
    [0, 1]); the mean over the batch is ``ssim(...).mean()``."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim: need two (N, C, H, W) tensors of the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if min(x.shape[-2:]) < window_size:
        raise ValueError(f"ssim: images of {tuple(x.shape[-2:])} are smaller than the {window_size}-tap window")
    if not data_range > 0:
        raise ValueError(f"ssim: data_range must be > 0, got {data_range}")
    if padding not in ("reflect", "valid"):
        raise ValueError(f"ssim: padding must be 'reflect' or 'valid', got {padding!r}")
    dtype = x.dtype if x.dtype == torch.float64 else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    c = x.shape[1]
    g = gaussian_window(window_size, sigma, dtype).to(x.device)
    w_h = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    w_w = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, w_h, groups=c), w_w, groups=c)

    if padding == "reflect":
        pad = window_size // 2
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    mu_x, mu_y = blur(x), blur(y)
    var_x = (blur(x * x) - mu_x ** 2).clamp(min=0)
    var_y = (blur(y * y) - mu_y ** 2).clamp(min=0)
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)
