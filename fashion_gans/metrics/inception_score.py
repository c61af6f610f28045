"""Inception Score (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` from classifier logits.

The marginal ``p(y)`` is taken per split and the score is reported as mean and (population) standard
deviation over ``splits`` splits, as in Salimans et al. and torch-fidelity. (The thesis used a single split; pass
``splits=1`` for its number.) Thesis erratum: its eq. 3.35 omits the sum over classes inside the KL.
"""

from __future__ import annotations

import math

import torch

__all__ = ["inception_score"]


def inception_score(logits: torch.Tensor, splits: int = 10, shuffle_seed: int | None = None) -> dict[str, float]:
    """``{"is_mean", "is_std"}`` from ``(N, K)`` logits (softmax taken here; log-space for stability).

    Splits are contiguous chunks (``torch.chunk``) of the given order, or of a permutation from
    ``shuffle_seed``."""
    logits = torch.as_tensor(logits).to(torch.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"inception_score: need (N, K >= 2) logits, got shape {tuple(logits.shape)}")
    if not 1 <= splits <= logits.shape[0]:
        raise ValueError(f"inception_score: splits must be in 1..N={logits.shape[0]}, got {splits}")
    if shuffle_seed is not None:
        logits = logits[torch.randperm(logits.shape[0], generator=torch.Generator().manual_seed(shuffle_seed))]
    scores = []
    for chunk in logits.chunk(splits, dim=0):
        log_p = chunk.log_softmax(dim=1)
        log_marginal = torch.logsumexp(log_p, dim=0) - math.log(chunk.shape[0])
        kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1)
        scores.append(kl.mean().exp())
    values = torch.stack(scores)
    return {"is_mean": float(values.mean()), "is_std": float(values.std(correction=0))}
