"""Drive a task through its API without the training loop: bind it to a fresh CPU Accelerator."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState


def bind_task(task, seed: int = 0, mixed_precision: str = "no") -> Accelerator:
    """Build the task's networks and optimisers under ``seed``, prepare them on a new CPU Accelerator, bind."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    acc = Accelerator(cpu=True, mixed_precision=mixed_precision)
    torch.manual_seed(seed)
    models = task.build_models()
    opts = task.build_optimizers(models)
    task.bind(acc, {k: acc.prepare_model(m) for k, m in models.items()},
              {k: acc.prepare_optimizer(o) for k, o in opts.items()})
    return acc


def first_batch(dataset, n: int = 4) -> dict:
    """The first ``n`` items of ``dataset``, collated, in order."""
    return next(iter(DataLoader(dataset, batch_size=n, shuffle=False)))
