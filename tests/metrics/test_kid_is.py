"""KID and Inception Score against direct computations and torchmetrics with the same features / logits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fashion_gans.metrics import inception_score, kid_from_features


class _Lookup(nn.Module):
    """torchmetrics' custom ``feature=`` network that returns precomputed rows: "images" are row indices."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table
        self.num_features = table.shape[1]

    def forward(self, x):
        return self.table[x.long().flatten()]


def _brute_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(float(k(x[i], x[j])) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(float(k(y[i], y[j])) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(float(k(x[i], y[j])) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_brute_force_and_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance

    gen = torch.Generator().manual_seed(5)
    real = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    fake = torch.randn(40, 6, generator=gen, dtype=torch.float64) * 1.3 + 0.4
    ours = kid_from_features(real, fake, n_subsets=1, subset_size=1000)
    assert ours["kid_mean"] == pytest.approx(_brute_mmd2(real, fake), rel=1e-9)
    # One subset of all samples: torchmetrics' random permutation does not change the value.
    table = torch.cat([real, fake])
    tm = KernelInceptionDistance(feature=_Lookup(table), subsets=1, subset_size=40)
    tm.update(torch.arange(40), real=True)
    tm.update(torch.arange(40, 80), real=False)
    tm_mean, _ = tm.compute()
    assert ours["kid_mean"] > 0
    assert ours["kid_mean"] == pytest.approx(float(tm_mean), rel=1e-9)


def test_kid_subsets_reproducible_and_distribution_sensitive():
    gen = torch.Generator().manual_seed(6)
    real = torch.randn(300, 8, generator=gen, dtype=torch.float64)
    same = torch.randn(300, 8, generator=gen, dtype=torch.float64)
    shifted = same + 1.0
    a = kid_from_features(real, same, n_subsets=20, subset_size=100, seed=1)
    assert a == kid_from_features(real, same, n_subsets=20, subset_size=100, seed=1)
    assert a["kid_std"] > 0  # subsets differ
    b = kid_from_features(real, shifted, n_subsets=20, subset_size=100, seed=1)
    assert abs(a["kid_mean"]) < 0.1 * b["kid_mean"]
    with pytest.raises(ValueError, match="equal D"):
        kid_from_features(real, shifted[:, :4])


def _direct_is(logits: torch.Tensor) -> float:
    p = torch.softmax(logits.double(), dim=1)
    marginal = p.mean(0)
    kl = (p * (p.log() - marginal.log())).sum(1)
    return math.exp(float(kl.mean()))


def test_inception_score_direct_kl_and_bounds():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(7)) * 3
    assert inception_score(logits, splits=1)["is_mean"] == pytest.approx(_direct_is(logits), rel=1e-10)
    direct_splits = torch.tensor([_direct_is(c) for c in logits.chunk(10)], dtype=torch.float64)
    res = inception_score(logits, splits=10)
    assert res["is_mean"] == pytest.approx(float(direct_splits.mean()), rel=1e-10)
    assert res["is_std"] == pytest.approx(float(direct_splits.std(correction=0)), rel=1e-8)
    assert inception_score(torch.zeros(50, 10), splits=1)["is_mean"] == pytest.approx(1.0)
    one_hot = torch.eye(10).repeat(5, 1) * 100  # confident, uniform marginal
    assert inception_score(one_hot, splits=1)["is_mean"] == pytest.approx(10.0, rel=1e-6)
    perm = torch.randperm(500)
    assert inception_score(logits[perm], splits=1)["is_mean"] == pytest.approx(
        inception_score(logits, splits=1)["is_mean"], rel=1e-10)


def test_inception_score_matches_torchmetrics_same_logits():
    from torchmetrics.image.inception import InceptionScore

    logits = torch.randn(200, 12, generator=torch.Generator().manual_seed(8), dtype=torch.float64) * 2
    tm = InceptionScore(feature=_Lookup(logits), splits=10)
    tm.update(torch.arange(200))
    torch.manual_seed(123)
    tm_mean, tm_std = tm.compute()
    torch.manual_seed(123)
    perm = torch.randperm(200)  # the permutation torchmetrics drew
    ours = inception_score(logits[perm], splits=10)
    assert ours["is_mean"] == pytest.approx(float(tm_mean), rel=1e-9)
    # torchmetrics reports the sample (n-1) std, Salimans et al. / torch-fidelity the population std.
    assert ours["is_std"] * math.sqrt(10 / 9) == pytest.approx(float(tm_std), rel=1e-9)
