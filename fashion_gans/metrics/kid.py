"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
``k(x, y) = (x·y / D + 1)^3``, averaged over random subsets (as NVlabs stylegan2-ada, torch-fidelity and
torchmetrics do). Reported as mean and (population) standard deviation over subsets."""

from __future__ import annotations

import torch

__all__ = ["polynomial_mmd2", "kid_from_features"]


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None,
                    coef: float = 1.0) -> torch.Tensor:
    """Unbiased MMD² between equally sized feature sets ``x`` and ``y`` (M, D) (diagonals of the
    within-set kernels excluded; the cross term keeps all M² pairs, as in the reference implementations)."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ValueError(f"polynomial_mmd2: need two sets of equal size >= 2, got {x.shape[0]} and {y.shape[0]}")
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (x @ x.T * gamma + coef) ** degree
    k_yy = (y @ y.T * gamma + coef) ** degree
    k_xy = (x @ y.T * gamma + coef) ** degree
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


def kid_from_features(real: torch.Tensor, fake: torch.Tensor, n_subsets: int = 100, subset_size: int = 1000,
                      degree: int = 3, gamma: float | None = None, coef: float = 1.0,
                      seed: int = 0) -> dict[str, float]:
    """``{"kid_mean", "kid_std"}`` over ``n_subsets`` random subsets of ``min(N_real, N_fake, subset_size)``
    samples each (drawn without replacement, reproducibly from ``seed``)."""
    real = torch.as_tensor(real).to(torch.float64)
    fake = torch.as_tensor(fake).to(torch.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"kid: need (N, D) features of equal D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if n_subsets < 1:
        raise ValueError(f"kid: n_subsets must be >= 1, got {n_subsets}")
    m = min(real.shape[0], fake.shape[0], subset_size)
    if m < 2:
        raise ValueError(f"kid: need at least 2 samples per set, got {real.shape[0]} real, {fake.shape[0]} fake")
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(n_subsets):
        r = real[torch.randperm(real.shape[0], generator=gen)[:m]]
        f = fake[torch.randperm(fake.shape[0], generator=gen)[:m]]
        scores.append(polynomial_mmd2(r, f, degree, gamma, coef))
    values = torch.stack(scores)
    return {"kid_mean": float(values.mean()), "kid_std": float(values.std(correction=0))}
