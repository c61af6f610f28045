"""Fréchet Inception Distance (Heusel et al. 2017) in float64 closed form.

``FID = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` with unbiased (1/(n-1)) covariances.
``tr((S_r S_g)^(1/2))`` is the sum of square roots of the eigenvalues of the symmetric PSD matrix
``S_r^(1/2) S_g S_r^(1/2)`` (same spectrum as ``S_r S_g``), which avoids ``scipy.linalg.sqrtm``'s complex
parts and its failure on singular products (the thesis took ``sqrtm(...).real`` with no such guard).
"""

from __future__ import annotations

import torch

__all__ = ["gaussian_stats", "frechet_distance", "fid_from_features"]


def _as_features(x: torch.Tensor, what: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{what}: need (N >= 2, D) features, got shape {tuple(x.shape)}")
    return x.to(torch.float64)


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, D)`` features -> float64 mean ``(D,)`` and unbiased covariance ``(D, D)``."""
    x = _as_features(features, "gaussian_stats")
    return x.mean(0), torch.cov(x.T, correction=1).reshape(x.shape[1], x.shape[1])


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (float64, symmetric)."""
    mu1, mu2 = torch.as_tensor(mu1, dtype=torch.float64), torch.as_tensor(mu2, dtype=torch.float64)
    s1, s2 = torch.as_tensor(sigma1, dtype=torch.float64), torch.as_tensor(sigma2, dtype=torch.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"frechet_distance: shapes do not match: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
                         f"sigma {tuple(s1.shape)}/{tuple(s2.shape)}")
    root = _sqrtm_psd(s1)
    cross = torch.linalg.eigvalsh(root @ s2 @ root).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross
    return float(value.clamp(min=0))


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two ``(N, D)`` feature sets."""
    real, fake = _as_features(real, "fid real"), _as_features(fake, "fid fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"fid: feature dims differ: real {real.shape[1]}, fake {fake.shape[1]}")
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
