"""FID: float64 closed form vs scipy, vs torchmetrics with the same extractor, and behaviour on Fashion-MNIST."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from fashion_gans.metrics import PixelExtractor, compute_metrics, extract_features, fid_from_features
from fashion_gans.metrics.fid import frechet_distance, gaussian_stats


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_scipy_closed_form():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(300, 16, generator=gen, dtype=torch.float64)
    y = torch.randn(250, 16, generator=gen, dtype=torch.float64) @ torch.randn(16, 16, generator=gen,
                                                                                 dtype=torch.float64) * 0.5 + 0.3
    ours = fid_from_features(x, y)
    ref = scipy_fid(x.numpy(), y.numpy())
    assert ours == pytest.approx(ref, rel=1e-6)
    assert fid_from_features(y, x) == pytest.approx(ours, rel=1e-9)  # symmetric
    mu, sigma = gaussian_stats(x)
    assert np.allclose(sigma.numpy(), np.cov(x.numpy(), rowvar=False))  # unbiased covariance
    assert frechet_distance(mu, sigma, *gaussian_stats(y)) == pytest.approx(ours, rel=1e-12)


def test_fid_shift_adds_squared_norm_and_self_is_zero():
    x = torch.randn(200, 8, dtype=torch.float64)
    delta = torch.linspace(-1, 1, 8, dtype=torch.float64)
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-9)
    assert fid_from_features(x, x + delta) == pytest.approx(float(delta.square().sum()), rel=1e-9)


class _FeaturesOnly(nn.Module):
    """torchmetrics' custom ``feature=`` network: uint8 images -> (N, D) float64 features."""

    def __init__(self, extractor):
        super().__init__()
        self.extractor = extractor
        self.num_features = extractor.feature_dim

    def forward(self, x):
        return self.extractor(x)["features"].double()


def test_fid_matches_torchmetrics_with_same_extractor():
    from torchmetrics.image.fid import FrechetInceptionDistance

    gen = torch.Generator().manual_seed(2)
    real = torch.randint(0, 256, (120, 3, 16, 16), generator=gen, dtype=torch.uint8)
    fake = (real.float() * 0.7 + 40).clamp(0, 255).to(torch.uint8)
    extractor = PixelExtractor(size=4)
    tm = FrechetInceptionDistance(feature=_FeaturesOnly(extractor))
    tm.update(real, real=True)
    tm.update(fake, real=False)
    ref = float(tm.compute())
    ours = compute_metrics(fake, real, extractor, metrics=("fid",), batch_size=50)["fid"]
    assert ref > 1e-3
    assert ours == pytest.approx(ref, rel=1e-6)


def _noisy(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=gen) * sigma
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def test_fid_real_split_small_and_monotone_in_noise(fashion_mnist_images):
    images = fashion_mnist_images  # (2000, 1, 28, 28) uint8
    a, b = images[:1000], images[1000:]
    extractor = PixelExtractor(size=8, channels=1)
    fa = extract_features(extractor, a).features
    fids = [fid_from_features(fa, extract_features(extractor, _noisy(b, s, seed=3)).features)
            for s in (0.0, 20.0, 50.0, 100.0)]
    noise = torch.randint(0, 256, b.shape, generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    fid_noise = fid_from_features(fa, extract_features(extractor, noise).features)
    assert fids[0] < 0.02 * fid_noise
    assert all(lo < hi for lo, hi in zip(fids, fids[1:])), fids
