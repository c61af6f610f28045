"""Improved precision and recall (Kynkäänniemi et al. 2019), F1, and density / coverage (Naeem et al. 2020).

Each set's manifold is the union of balls around its points with radius = distance to the point's k-th nearest
neighbour in the same set (self excluded). Precision = fraction of fake points inside the real manifold; recall =
fraction of real points inside the fake manifold. Distances are computed in blocks (``batch_size`` rows at a
time) so that memory stays ``batch_size x N``; squared Euclidean distances are compared (same ordering).
"""

from __future__ import annotations

import torch

__all__ = ["knn_radii", "manifold_membership", "precision_recall"]


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = (a.square().sum(1, keepdim=True) - 2 * a @ b.T + b.square().sum(1)[None, :])
    return d.clamp_(min=0)


def knn_radii(x: torch.Tensor, k: int = 3, batch_size: int = 1024) -> torch.Tensor:
    """Squared distance from each row of ``x`` to its k-th nearest neighbour in ``x`` (itself excluded)."""
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"knn_radii: need 1 <= k < N, got k={k}, N={x.shape[0]}")
    out = []
    for start in range(0, x.shape[0], batch_size):
        d = _sq_dists(x[start:start + batch_size], x)
        # Index 0 of the k+1 smallest is the point itself (distance 0), as in the reference implementation.
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


def manifold_membership(query: torch.Tensor, support: torch.Tensor, radii: torch.Tensor,
                        batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row: whether it lies in any ball ``B(support_i, radii_i)`` and how many balls contain it."""
    inside, counts = [], []
    for start in range(0, query.shape[0], batch_size):
        hit = _sq_dists(query[start:start + batch_size], support) <= radii[None, :]
        inside.append(hit.any(dim=1))
        counts.append(hit.sum(dim=1))
    return torch.cat(inside), torch.cat(counts)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3, batch_size: int = 1024,
                     dtype: torch.dtype = torch.float32, density_coverage: bool = True) -> dict[str, float]:
    """``{"precision", "recall", "f1"}`` (plus ``"density", "coverage"``) between ``(N, D)`` feature sets.

    ``dtype`` is the arithmetic type of the distance blocks (float32 default; the reference implementation of
    Kynkäänniemi et al., which the thesis ported, used float16)."""
    real, fake = torch.as_tensor(real).to(dtype), torch.as_tensor(fake).to(dtype)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"precision_recall: need (N, D) features of equal D, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    real_radii = knn_radii(real, k, batch_size)
    fake_radii = knn_radii(fake, k, batch_size)
    fake_in_real, fake_counts = manifold_membership(fake, real, real_radii, batch_size)
    real_in_fake, _ = manifold_membership(real, fake, fake_radii, batch_size)
    p = float(fake_in_real.double().mean())
    r = float(real_in_fake.double().mean())
    out = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0}
    if density_coverage:
        # Density: mean number of real balls containing a fake point, / k. Coverage: fraction of real points
        # whose nearest fake point lies inside their own ball.
        out["density"] = float(fake_counts.double().mean() / k)
        nearest_fake = torch.cat([_sq_dists(real[s:s + batch_size], fake).min(dim=1).values
                                  for s in range(0, real.shape[0], batch_size)])
        out["coverage"] = float((nearest_fake <= real_radii).double().mean())
    return out
