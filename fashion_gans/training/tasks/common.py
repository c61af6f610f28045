"""Small pieces shared by the task classes: the LSGAN loss, the generator EMA and context managers for
networks."""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["lsgan_loss", "frozen", "eval_mode", "schedule_steps", "update_ema", "ema_decay", "ModelAverage"]


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


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float, *, buffers: str = "copy") -> None:
    """``ema = beta * ema + (1 - beta) * model`` for parameters.

    Buffers are copied (``buffers="copy"``: StyleGAN's tracked ``w_avg`` and noise) or, with
    ``buffers="average"``, floating-point buffers are averaged like the parameters (BatchNorm running statistics:
    the averaged weights see activations of the averaged statistics, not of the last step's) and integer ones
    (``num_batches_tracked``) copied.
    """
    if buffers not in ("copy", "average"):
        raise ValueError(f"buffers must be 'copy' or 'average', got {buffers!r}")
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p.detach().to(pe.dtype), 1.0 - beta)
    for be, b in zip(ema.buffers(), model.buffers()):
        if buffers == "average" and be.is_floating_point():
            be.lerp_(b.detach().to(be.dtype), 1.0 - beta)
        else:
            be.copy_(b)


def ema_decay(beta: float, updates: int) -> float:
    """The EMA decay after ``updates`` updates, warmed up as ``min(beta, (1 + n) / (10 + n))`` so that a short
    run's average follows the network instead of its initialisation."""
    return min(beta, (1 + updates) / (10 + updates))


class ModelAverage:
    """The exponential moving average of a network's weights that a task keeps (the G EMA of ProGAN / StyleGAN,
    the garment task's ``ema_beta``): a frozen eval-mode copy made when the task is bound (:meth:`bind`), moved
    towards the network by :func:`update_ema` at the warmed-up decay :func:`ema_decay`, and a checkpoint state that
    may arrive before the copy exists (the trainer restores a task before binding it)."""

    def __init__(self, beta: float, *, buffers: str = "copy") -> None:
        if buffers not in ("copy", "average"):
            raise ValueError(f"buffers must be 'copy' or 'average', got {buffers!r}")
        self.beta = float(beta)
        self.buffers = buffers
        self.module: nn.Module | None = None
        self._pending: dict[str, torch.Tensor] | None = None

    def bind(self, model: nn.Module) -> nn.Module:
        """Start the average as a copy of ``model`` (or at a state loaded earlier); returns the copy."""
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        if self._pending is not None:
            self.module.load_state_dict(self._pending)
        self._pending = None
        return self.module

    def update(self, model: nn.Module, updates: int) -> None:
        """One step towards ``model``, the ``updates``-th of the warm-up (:func:`ema_decay`)."""
        if self.module is None:
            raise RuntimeError("ModelAverage.update before bind")
        update_ema(self.module, model, ema_decay(self.beta, updates), buffers=self.buffers)

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """The averaged weights and buffers on the CPU (a state waiting for :meth:`bind` as it is); ``None``
        before either exists."""
        state = self.module.state_dict() if self.module is not None else self._pending
        return {k: v.detach().cpu().clone() for k, v in state.items()} if state is not None else None

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.module is not None:
            self.module.load_state_dict(state)
        else:
            self._pending = state
