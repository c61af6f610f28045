"""Small pieces shared by the task classes: the LSGAN loss and context managers for networks."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["lsgan_loss", "frozen", "eval_mode", "schedule_steps"]


def lsgan_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al.): mean of ``(scores - target)²`` on the raw scores, in fp32.

    Discriminator targets are 1 for real and 0 for fake; the generator's target for its fakes is 1.
    """
    scores = scores.float()
    return F.mse_loss(scores, torch.full_like(scores, target))


def schedule_steps(task: str, schedule: dict, key: str, default: int = 0) -> int:
    """A step count from a task's ``TrainConfig.schedule`` (``colour_from_step``, ``lambda_e_ramp_steps``...):
    an integer >= 0 (a whole float from JSON is accepted), else a ``TrainingError`` naming the task and key."""
    from ..config import TrainingError

    value = schedule.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or int(value) != value:
        raise TrainingError(f"task {task!r}: schedule[{key!r}] must be an integer >= 0, got {value!r}")
    return int(value)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Switch off ``requires_grad`` of every parameter of ``modules`` (restored afterwards)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode (their training flags restored afterwards)."""
    flags = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, flag in zip(modules, flags):
            m.train(flag)
