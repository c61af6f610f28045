"""Improved precision/recall, F1, density/coverage against a brute-force k-NN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from fashion_gans.metrics import precision_recall


def brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    def radii(x):
        d = cdist(x, x)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    r_real, r_fake = radii(real), radii(fake)
    d_fr = cdist(fake, real)  # (n_fake, n_real)
    precision = np.mean([(d_fr[j] <= r_real).any() for j in range(len(fake))])
    recall = np.mean([(d_fr[:, i] <= r_fake).any() for i in range(len(real))])
    density = (d_fr <= r_real[None, :]).sum() / (k * len(fake))
    coverage = np.mean(d_fr.min(axis=0) <= r_real)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_brute_force_knn(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(150, 10))
    fake = rng.normal(size=(120, 10)) * 1.4 + 0.3
    ours = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k, batch_size=32,
                            dtype=torch.float64)
    ref = brute_force(real, fake, k)
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key
    assert 0 < ours["precision"] < 1 and ours["recall"] > 0
    p, r = ref["precision"], ref["recall"]
    assert ours["f1"] == pytest.approx(2 * p * r / (p + r))
    ours32 = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k, batch_size=32)
    assert ours32["precision"] == pytest.approx(ref["precision"], abs=1 / 120)


def test_identical_separated_and_subset_cases():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 5, generator=gen)
    same = precision_recall(x, x.clone())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = precision_recall(x, x + 100.0)
    assert far["precision"] == far["recall"] == far["f1"] == 0.0
    # Fake covers only one half of the real set: precise but not diverse.
    half = x[x[:, 0] > 0]
    sub = precision_recall(x, half)
    assert sub["precision"] == 1.0 and sub["recall"] < 0.9
