"""DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020).

The same differentiable augmentation is applied to real and generated images before every discriminator call
(in the discriminator *and* the generator step), so the discriminator cannot overfit a small dataset while
the generator still receives gradients through the augmentation.  Three policies, as in the paper:

* ``color``: random brightness (+-0.5), saturation (x[0, 2]) and contrast (x[0.5, 1.5]) per image;
* ``translation``: random integer shift of up to 1/8 of the image size per image, zero padded;
* ``cutout``: one zeroed square of half the image size at a random position per image.

Images are ``(N, C, H, W)`` in ``[-1, 1]``; grey (``C == 1``) images work (saturation is then a no-op).
All randomness comes from torch's global RNG on the images' device, so a seeded, checkpointed run replays it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["POLICIES", "parse_policy", "diff_augment", "rand_color", "rand_translation", "rand_cutout"]


def rand_color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast per image."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean
    return x


def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in each direction, filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, size=(n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, size=(n, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device),
        indexing="ij",
    )
    gy = torch.clamp(gy + ty + 1, 0, h + 1)
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gb, gy, gx].permute(0, 3, 1, 2).contiguous()


def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` times the image size at a random position per image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), size=(n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), size=(n, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gy = torch.clamp(gy + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx + ox - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


#: Policy name -> augmentation, applied in this order.
POLICIES = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> its names (``""``/``None``: no augmentation); unknown names raise."""
    if not policy:
        return ()
    names = tuple(p.strip() for p in str(policy).split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown}; choose from {sorted(POLICIES)}")
    return names


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...] | None = "color,translation,cutout") -> torch.Tensor:
    """Apply the DiffAugment ``policy`` (comma-separated names or a tuple of names) to ``x``."""
    names = parse_policy(policy) if isinstance(policy, (str, type(None))) else tuple(policy)
    for name in names:
        x = POLICIES[name](x)
    return x
