"""The contract between the training loop and a model's task class.

A task owns what is particular to one model: its networks and optimisers, its losses and the order of its
updates, its held-out metric, and any state beyond the networks (image pools, EMA copies, progressive-growing
stage, loss-weight schedules).  The loop (:class:`fashion_gans.training.trainer.Trainer`) owns everything else:
devices, data order, mixed precision, checkpoints, logging, samples and guards.  Adding a model means adding
its model file, its task class and a preset, and nothing else.

Life cycle::

    task = TaskClass(train_config, model_config)
    models = task.build_models()                      # dict role -> nn.Module (seeded by the loop)
    optimizers = task.build_optimizers(models)        # dict name -> torch.optim.Optimizer
    ... the loop prepares models/optimizers with Accelerate ...
    task.bind(accelerator, prepared_models, prepared_optimizers)
    for each epoch: task.on_epoch_start(epoch)
        for each batch: losses = task.training_step(batch, step)  # dict name -> 0-dim tensor (detached)
    task.sample(batch) / task.evaluate(batches) / task.export()
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

import torch
from torch import nn

from ..config import TrainConfig, TrainingError

__all__ = ["Task", "TASK_REGISTRY", "register_task", "get_task_class"]

TASK_REGISTRY: dict[str, type["Task"]] = {}


def register_task(cls: type["Task"]) -> type["Task"]:
    """Class decorator: make a task available to the loop under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a non-empty `name`")
    TASK_REGISTRY[cls.name] = cls
    return cls


def get_task_class(name: str) -> type["Task"]:
    from . import _load_all  # noqa: F401  (imports every task module once, on demand)

    _load_all()
    try:
        return TASK_REGISTRY[name]
    except KeyError:
        raise TrainingError(f"unknown task {name!r}; available: {sorted(TASK_REGISTRY)}") from None


class Task:
    #: Task name used on the command line (``--task``).
    name: ClassVar[str] = ""
    #: Keys of ``TrainConfig.loss_weights`` this task reads, with their defaults (documented per task).
    default_loss_weights: ClassVar[dict[str, float]] = {}

    def __init__(self, config: TrainConfig, model_config: Any) -> None:
        self.config = config
        self.model_config = model_config
        unknown = sorted(set(config.loss_weights) - set(self.default_loss_weights))
        if unknown:
            raise TrainingError(
                f"task {self.name!r}: unknown loss weight(s) {unknown}; known: {sorted(self.default_loss_weights)}"
            )
        self.loss_weights = {**self.default_loss_weights, **config.loss_weights}
        self.accelerator = None
        self.models: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.epoch = 0

    # ----------------------------------------------------------------------------------------------- building
    def build_models(self) -> dict[str, nn.Module]:
        """Every network, by role (``generator``, ``discriminator``, ...). Called under the run's seed."""
        raise NotImplementedError

    def build_optimizers(self, models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per update group (e.g. ``g`` and ``d``)."""
        raise NotImplementedError

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        """The dataset of ``split`` (``train`` or ``test``) for ``self.config.data``; items are dicts of tensors."""
        raise NotImplementedError

    def check_data(self, item: dict[str, torch.Tensor]) -> None:
        """Fail fast (:class:`TrainingError`) if one dataset item contradicts the model config
        (resolution, channels, pose encoding)."""

    def bind(self, accelerator, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Receive the Accelerate-prepared networks and optimisers the training step must use."""
        self.accelerator = accelerator
        self.models = models
        self.optimizers = optimizers

    # ----------------------------------------------------------------------------------------------- training
    def on_epoch_start(self, epoch: int) -> None:
        """Called before each epoch (loss-weight schedules, progressive-growing stage...)."""
        self.epoch = epoch

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Do every update of one batch (e.g. D then G) and return the losses as detached 0-dim tensors.

        Never call ``.item()`` here: the loop decides when to synchronise with the device.
        """
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------------- results
    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images for the fixed-seed sample grid, ``(rows * columns, 3, H, W)`` in ``[-1, 1]``; for a
        conditional task the columns are e.g. input | condition | target | output."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Held-out metric(s) on a few test batches (lower or higher is better: name says, e.g. ``l1``)."""
        raise NotImplementedError

    def export(self) -> dict[str, nn.Module]:
        """The networks to publish (``save_pretrained``), by name: usually the generator(s) and, where kept,
        the EMA generator instead of the raw one."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Task state beyond networks and optimisers (pools, EMA weights, stage, schedule position)."""
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state.get("epoch", 0))

    # ----------------------------------------------------------------------------------------------- helpers
    def mean_metrics(self, parts: dict[str, list[torch.Tensor]]) -> dict[str, float]:
        """Per-sample metric values (lists of ``(N,)`` tensors, one per batch) -> their mean over every sample
        of every process (``gather_for_metrics`` drops the padding of an uneven last batch)."""
        if not parts or not any(parts.values()):
            raise TrainingError(f"task {self.name!r}: evaluate() got no batches")
        result = {}
        for key, values in parts.items():
            values = torch.cat(values)
            if self.accelerator is not None:
                values = self.accelerator.gather_for_metrics(values)
            result[key] = float(values.float().mean())
        return result

    def unwrap(self, role: str) -> nn.Module:
        """The bare module of a prepared network (no DDP / compile wrapper)."""
        model = self.models[role]
        return self.accelerator.unwrap_model(model) if self.accelerator is not None else model
