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
    schedulers = task.build_schedulers(optimizers)    # dict name -> LR scheduler, fed task.scheduler_losses()
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
    #: Optimiser name -> the loss (a key of :meth:`training_step`'s result) that drives its plateau scheduler.
    lr_monitor: ClassVar[dict[str, str]] = {}
    #: Metrics of :meth:`evaluate` that read networks :meth:`export` leaves out (a critic): a finished model cannot be
    #: scored on them again (:meth:`~fashion_gans.training.trainer.Trainer.evaluate_exported` leaves them out).
    unexported_metrics: ClassVar[tuple[str, ...]] = ()
    #: LR schedule used when ``TrainConfig.lr_schedule == "default"`` (``"none"`` or ``"plateau"``).
    default_lr_schedule: ClassVar[str] = "none"
    #: The task's plateau settings on top of :data:`~fashion_gans.training.schedulers.PLATEAU_DEFAULTS`.
    default_plateau: ClassVar[dict[str, Any]] = {}

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

    def lr_schedule(self) -> tuple[str, dict[str, Any]]:
        """``(kind, settings)`` of this run: ``TrainConfig.lr_schedule`` with ``default`` resolved to the task's,
        and the plateau settings (thesis defaults, then the task's, then ``TrainConfig.lr_plateau``)."""
        from ..schedulers import PLATEAU_DEFAULTS

        kind = self.config.lr_schedule
        if kind == "default":
            kind = self.default_lr_schedule
        return kind, {**PLATEAU_DEFAULTS, **self.default_plateau, **self.config.lr_plateau}

    def build_schedulers(self, optimizers: dict[str, torch.optim.Optimizer],
                         total_steps: int | None = None) -> dict[str, Any]:
        """LR schedulers by name: a :class:`~fashion_gans.training.schedulers.PlateauScheduler` per optimiser of
        :attr:`lr_monitor` when the schedule is ``plateau`` (the loop feeds scheduler ``name`` the loss
        :meth:`scheduler_losses` names for it, after every step); a
        :class:`~fashion_gans.training.schedulers.LinearDecayScheduler` per optimiser when it is ``linear``
        (``total_steps``: the run's length, default ``max_steps``); none otherwise."""
        from ..schedulers import LinearDecayScheduler, PlateauScheduler

        kind, settings = self.lr_schedule()
        if kind == "none":
            return {}
        if kind == "linear":
            total = int(total_steps if total_steps is not None else self.config.max_steps)
            if total < 1:
                raise TrainingError("a linear LR schedule needs the run's length: pass total_steps or set max_steps")
            start = min(int(self.config.lr_decay_start * total), total - 1)
            return {name: LinearDecayScheduler(opt, total_steps=total, start=start)
                    for name, opt in optimizers.items()}
        if not self.lr_monitor:
            raise TrainingError(f"task {self.name!r} names no loss to drive a plateau LR schedule; "
                                "set lr_schedule='none'")
        missing = sorted(set(self.lr_monitor) - set(optimizers))
        if missing:
            raise TrainingError(f"task {self.name!r}: lr_monitor names unknown optimiser(s) {missing}")
        return {name: PlateauScheduler(optimizers[name], **settings) for name in self.lr_monitor}

    def scheduler_losses(self) -> dict[str, str]:
        """Scheduler name -> the training loss that drives it."""
        return dict(self.lr_monitor)

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

    def assume_trained(self, steps: int, num_processes: int = 1) -> None:
        """Put the task where a run of ``steps`` steps on ``num_processes`` processes ended, as far as
        :meth:`evaluate` depends on it (StyleGAN v1's resolution level), to score exported networks without the
        run's checkpoint.  Nothing to do for most tasks."""

    # ----------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Task state beyond networks and optimisers (pools, EMA weights, stage, schedule position)."""
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state.get("epoch", 0))

    # ----------------------------------------------------------------------------------------------- helpers
    def check_setup(self, config_class: type | None = None, schedule_keys: Iterable[str] = (), *,
                    non_negative_weights: bool = False) -> None:
        """Fail fast (:class:`TrainingError`) when the model config is not a ``config_class``,
        ``TrainConfig.schedule`` has keys this task does not read (a typo would silently be ignored), or, with
        ``non_negative_weights``, a loss weight is negative (or NaN)."""
        if config_class is not None and not isinstance(self.model_config, config_class):
            raise TrainingError(f"task {self.name!r} trains a {config_class.__name__}, got "
                                f"{type(self.model_config).__name__}")
        known = sorted(schedule_keys)
        unknown = sorted(set(self.config.schedule) - set(known))
        if unknown:
            raise TrainingError(f"task {self.name!r}: unknown schedule key(s) {unknown}; known: {known}")
        if non_negative_weights:
            for key, value in self.loss_weights.items():
                if not value >= 0:
                    raise TrainingError(f"task {self.name!r}: loss weight {key!r} must be >= 0, got {value}")

    def mean_metrics(self, parts: dict[str, list[torch.Tensor]]) -> dict[str, float]:
        """Per-sample metric values (lists of ``(N,)`` tensors, one per batch) -> their mean over every sample.

        Nothing is gathered across processes: the trainer gives every process the whole fixed held-out set (a
        few batches), so each measures the same values, those of a one-process run.  (Gathering would count every
        sample once per process, and change the metrics that depend on the order of the images.)"""
        if not parts or not any(parts.values()):
            raise TrainingError(f"task {self.name!r}: evaluate() got no batches")
        return {key: float(torch.cat(values).float().mean()) for key, values in parts.items()}

    def evaluation_domain(self) -> str:
        """Which ground truth the data has: ``fashion-mnist``, ``synthetic`` (the synthetic world, whose
        attributes the shipped attribute and keypoint networks know) or ``other`` (real photos: pixel and
        keypoint metrics only)."""
        from pathlib import Path

        data = str(self.config.data)
        if data.startswith("fashion-mnist"):
            return "fashion-mnist"
        if data == "synthetic":
            return "synthetic"
        root = Path(data)
        if root.is_file():
            root = root.parent
        markers = ("synthetic_attributes.json", "bags_shoes_attributes.json")
        if root.is_dir() and any((d / m).is_file() for d in (root, *[c for c in root.iterdir() if c.is_dir()])
                                 for m in markers):
            return "synthetic"
        return "other"

    def ground_truth_metrics(self, batch: dict[str, torch.Tensor], outputs: Any) -> dict[str, float]:
        """The task metrics of :func:`fashion_gans.evaluation.batch_metrics` on one held-out batch (the same
        code ``scripts/evaluate.py`` uses), with ``/`` in names replaced by ``_`` (names become file names)."""
        from fashion_gans.evaluation import batch_metrics

        if not hasattr(self, "_eval_domain"):
            self._eval_domain = self.evaluation_domain()
        values = batch_metrics(self.name, batch, outputs, domain=self._eval_domain)
        return {k.replace("/", "_"): float(v) for k, v in values.items()}

    @staticmethod
    def merge_metrics(base: dict[str, float], per_batch: list[dict[str, float]]) -> dict[str, float]:
        """``base`` plus the mean over batches of every key of ``per_batch`` not already in ``base``."""
        import math

        out = dict(base)
        for key in dict.fromkeys(k for d in per_batch for k in d):
            if key in out:
                continue
            values = [d[key] for d in per_batch if key in d and not math.isnan(d[key])]
            out[key] = sum(values) / len(values) if values else float("nan")
        return out

    def unwrap(self, role: str) -> nn.Module:
        """The bare module of a prepared network (no DDP / compile wrapper)."""
        model = self.models[role]
        return self.accelerator.unwrap_model(model) if self.accelerator is not None else model
