"""The one training loop, on Hugging Face Accelerate, for every task.

The loop owns devices, data order, mixed precision, checkpoints, logging, samples, evaluation, guards and
the final export; a task (:mod:`.tasks`) owns its networks, losses and update order.

Data order is the loop's own: each epoch is a permutation of the training set drawn from ``(seed, epoch)``,
sharded across processes, cut into batches with the last partial batch dropped.  Accelerate does not wrap
the DataLoader, so the data position (epoch, batch within epoch) is exact and a resumed run sees exactly the
batches the uninterrupted run would have.  Together with the checkpointed RNG states of every process and
the fixed-seed sampling/evaluation (run under ``torch.random.fork_rng``), resuming on CPU with deterministic
settings reproduces the uninterrupted run bit for bit.

Non-finite losses are checked every step: the step's non-finite flags are stacked into one tensor (summed over
processes when there are several, so every process stops together) and read back with a single ``.tolist()``.
That one host synchronisation per step is the price of naming the exact step.  The losses that drive the LR
schedulers (:mod:`.schedulers`; the thesis stepped its plateau schedulers on every batch loss) travel in the same
tensor, averaged over processes in the same all-reduce, so every process steps its schedulers on the same value
at no extra synchronisation.  All other scalars stay on the device until the next ``log_every`` step.

Precision and speed: ``mixed_precision`` runs the networks under Accelerate's autocast (bf16 works on the CPU
too; fp16 needs a CUDA GPU and its gradient scaler, and is refused on the CPU, where Accelerate would silently
train in fp32); gradient penalty and R1 always run in fp32 with autocast off.  ``channels_last`` converts the
networks and every 4-D image tensor of a batch; ``compile`` wraps the prepared networks in ``torch.compile``
(``compile_backend``).

Run folder (``TrainConfig.output_dir``)::

    config.json              TrainConfig + model config of the run
    checkpoints/step-*/      full training state (see :mod:`.checkpoint`)
    samples/step-*.png       fixed-seed sample grids
    logs/scalars.jsonl       every logged loss, learning rate, metric and the wall clock of each logged step; logs/<tracker files> (TensorBoard)
    plots/losses.png, plots/lr.png, plots/metric_<name>.png
    final/<name>/            exported networks (save_pretrained: safetensors + config.json + model card)

With ``hub_repo`` set, every checkpoint is uploaded in the background together with ``logs/`` (one commit), the
sample grids as they are written, and ``final/`` + ``plots/`` at the end (:mod:`.hub_sync`; ``file:/folder``
stands in for the Hub).  The repo is created when the run starts, so a target that cannot work fails at once.  The
upload of a checkpoint waits for the previous one, so the Hub is never more than one checkpoint behind the run
(the other processes wait at the checkpoint barrier meanwhile; the collective timeout is raised to
``HUB_PROCESS_GROUP_TIMEOUT_S`` for such runs).  ``resume="latest"`` in an empty output folder downloads the
newest Hub checkpoint and the logs, so the plots of a resumed run cover the whole run.

Pre-emption: on SIGTERM (what cloud schedulers and ``torchrun`` send before killing a process) every process
stops after the same step (the flag rides in the step's one synchronisation), a checkpoint of that step is
written and uploaded, and :class:`Preempted` is raised (``scripts/train.py`` exits with status 143): nothing is
lost.  A SIGKILL gives no such chance: the run resumes from its last checkpoint (on the Hub: at most one behind).

Test hooks (environment variables, read only by :meth:`Trainer.fit`): ``FASHION_GANS_KILL_AFTER_STEP=N``
makes the process SIGKILL itself right after checkpoint ``N`` is written; ``FASHION_GANS_DEBUG_DIR=DIR``
makes every process write ``DIR/weights-<rank>.json`` (a hash of its networks' weights) at the end;
``FASHION_GANS_WRITE_AUDIT=DIR`` makes every process record each file-system write it makes under the output
folder (and a ``file:`` Hub folder), through Python's audit hooks (``open`` for writing, ``mkdir``, ``rename``,
``copyfile``, ``rmtree``...), and write them to ``DIR/writes-<rank>.json`` at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .checkpoint import (
    CHECKPOINT_DIR,
    capture_rng_state,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    remove_stale,
    restore_rng_state,
    save_checkpoint,
)
from .config import TrainConfig, TrainingError

__all__ = ["Trainer", "EpochBatches", "Preempted", "MAX_ROLLBACKS", "RESUME_MUST_MATCH"]

#: Training options that define the run's data stream: a resume with any of them changed is refused.
RESUME_MUST_MATCH = ("task", "data", "data_options", "synthetic_size", "seed", "batch_size")

MAX_ROLLBACKS = 3
_SAMPLE_ROWS = 8
#: Collective timeout of a multi-process run with ``hub_repo`` set: the main process may wait for the previous
#: checkpoint's upload while the others wait at the checkpoint barrier (the default, 10 min for NCCL, is too short).
HUB_PROCESS_GROUP_TIMEOUT_S = 4 * 3600


def _accelerator_handlers(config: TrainConfig) -> list[Any]:
    """Accelerate kwargs handlers of a run: DDP with unused parameters, and a long collective timeout when
    checkpoints are uploaded."""
    from datetime import timedelta

    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    # GAN steps update one network group at a time, so some parameters see no gradient in a backward.
    handlers: list[Any] = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    if config.hub_repo:
        handlers.append(InitProcessGroupKwargs(timeout=timedelta(seconds=HUB_PROCESS_GROUP_TIMEOUT_S)))
    return handlers


class EpochBatches:
    """Deterministic, distributed-aware batches of indices: a permutation from ``(seed, epoch)``, sharded by
    process (rank ``r`` takes every ``num_replicas``-th index from ``r``), cut into ``batch_size`` batches,
    the last partial batch dropped."""

    def __init__(self, length: int, batch_size: int, *, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.per_replica = length // num_replicas
        self.batches_per_epoch = self.per_replica // batch_size

    def epoch(self, epoch: int, start: int = 0) -> list[list[int]]:
        """Batches ``start..`` of ``epoch`` for this process."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.length, generator=g)[: self.per_replica * self.num_replicas]
        mine = perm[self.rank :: self.num_replicas].tolist()
        return [mine[b * self.batch_size : (b + 1) * self.batch_size] for b in range(start, self.batches_per_epoch)]


class Preempted(TrainingError):
    """The run received SIGTERM (pre-emption): it saved a checkpoint at ``step`` (and uploaded it) and stopped."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"stopped by SIGTERM at step {step}; checkpoint {checkpoint} saved (and uploaded when "
                         "hub_repo is set): continue with resume='latest'")
        self.step, self.checkpoint = step, checkpoint


class _NonFinite(Exception):
    def __init__(self, name: str, step: int) -> None:
        super().__init__(name, step)
        self.name, self.step = name, step


def _to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """``batch`` on ``device``; with ``channels_last`` every 4-D floating tensor (an image batch) in that format."""
    if isinstance(batch, torch.Tensor):
        if channels_last and batch.ndim == 4 and batch.is_floating_point():
            return batch.to(device, memory_format=torch.channels_last, non_blocking=True)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device, channels_last) for v in batch)
    return batch


class _WriteAudit:
    """Records file-system writes under some folders, through a process-wide audit hook (test hook).

    Audit hooks cannot be removed, so one hook is installed per process and forwards to the active recorder.
    """

    _active: "_WriteAudit | None" = None
    _installed = False
    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    #: Event -> ((index of a written path, index of its ``dir_fd`` argument or None), ...).
    _PATH_EVENTS = {"os.mkdir": ((0, 2),), "os.rename": ((0, 2), (1, 3)), "os.remove": ((0, 1),),
                    "os.rmdir": ((0, 1),), "shutil.rmtree": ((0, 1),), "shutil.copyfile": ((1, None),),
                    "os.link": ((1, 3),), "os.symlink": ((1, 2),), "os.truncate": ((0, None),),
                    "os.chmod": ((0, 2),), "os.utime": ((0, 3),)}

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [os.path.abspath(os.path.expanduser(r)) for r in roots]
        self.writes: list[tuple[str, str]] = []

    def start(self) -> None:
        if not _WriteAudit._installed:
            sys.addaudithook(_WriteAudit._hook)
            _WriteAudit._installed = True
        _WriteAudit._active = self

    def stop(self) -> None:
        if _WriteAudit._active is self:
            _WriteAudit._active = None

    @staticmethod
    def _hook(event: str, args: tuple) -> None:
        audit = _WriteAudit._active
        if audit is None:
            return
        if event == "open":
            path, _mode, flags = args
            if isinstance(flags, int) and flags & _WriteAudit._WRITE_FLAGS:
                audit._record(event, path)
        elif event in _WriteAudit._PATH_EVENTS:
            for i, fd_index in _WriteAudit._PATH_EVENTS[event]:
                if i < len(args):
                    dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
                    audit._record(event, args[i], dir_fd)

    def _record(self, event: str, path: Any, dir_fd: Any = None) -> None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return  # a file descriptor
        text = os.fsdecode(path)
        if not os.path.isabs(text) and isinstance(dir_fd, int) and dir_fd >= 0:
            return  # relative to a directory descriptor (inside an rmtree already recorded)
        text = os.path.abspath(text)  # a relative path is relative to the working directory
        if any(text == r or text.startswith(r + os.sep) for r in self.roots):
            self.writes.append((event, text))


def _flat_hparams(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flat_hparams(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)):
            out[f"{prefix}{key}"] = value
        else:
            out[f"{prefix}{key}"] = json.dumps(value)
    return out


def _copy_weights(target: nn.Module, source: nn.Module, where: str) -> None:
    """Load ``source``'s weights into ``target``; a network of another shape is a :class:`TrainingError`
    "``where`` does not fit the configured model (...)"."""
    try:
        target.load_state_dict(source.state_dict())
    except RuntimeError as exc:
        raise TrainingError(f"{where} does not fit the configured model "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc


def weights_digest(models: dict[str, nn.Module]) -> str:
    """SHA-256 over every network's state dict (names, shapes and bytes), in role order."""
    h = hashlib.sha256()
    for role in sorted(models):
        for name, tensor in sorted(models[role].state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{role}.{name}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class Trainer:
    """Train ``config.task`` with one loop: ``Trainer(config).fit() -> final metrics``.

    ``task_class`` replaces the registered task class (tests); ``hub_api`` replaces ``huggingface_hub.HfApi``
    for uploads/downloads; ``step_callback(step)`` runs after every step (benchmarks).
    """

    def __init__(self, config: TrainConfig, *, task_class: type | None = None, hub_api: Any = None,
                 step_callback: Callable[[int], None] | None = None) -> None:
        from fashion_gans.models import get_preset

        self.config = config
        try:
            self.model_config = get_preset(config.preset_name).replace(**config.model_overrides)
        except (ValueError, TypeError) as exc:
            raise TrainingError(f"model config: {exc}") from exc
        if task_class is None:
            from .tasks import get_task_class

            task_class = get_task_class(config.task)
        self.task_class = task_class
        if config.mixed_precision == "fp16" and (config.cpu or not torch.cuda.is_available()):
            raise TrainingError("TrainConfig.mixed_precision: fp16 needs a CUDA GPU (on the CPU Accelerate runs "
                                "fp16 without autocast or a gradient scaler, i.e. plain fp32); use bf16 on the CPU")
        self.hub_api = hub_api
        self.step_callback = step_callback
        self.out = Path(config.output_dir)
        self.ckpt_dir = self.out / CHECKPOINT_DIR
        self.task = None

    # ============================================================================================ description
    def config_dict(self) -> dict[str, Any]:
        return {"train": self.config.to_dict(), "preset": self.config.preset_name, "model": self.model_config.to_dict(),
                "model_config_class": type(self.model_config).__name__}

    def build_data(self, task=None):
        """(train, test) datasets of the task, checked by every guard that needs no model."""
        from fashion_gans.data.io import DataError

        task = task or self.task_class(self.config, self.model_config)
        try:
            train = task.build_dataset("train")
            test = task.build_dataset("test")
        except DataError as exc:
            raise TrainingError(f"data {self.config.data!r} for task {self.config.task!r}: {exc}") from exc
        return train, test

    def check_data(self, task, train, test, num_processes: int = 1) -> None:
        """Guards, before any heavy work: no images, batch larger than the data, config contradicting the data."""
        n = len(train)
        if n == 0:
            raise TrainingError(f"data {self.config.data!r}: the training set of task {self.config.task!r} has no "
                                "images")
        if len(test) == 0:
            raise TrainingError(f"data {self.config.data!r}: the test set of task {self.config.task!r} has no images")
        per_process = n // num_processes
        if self.config.batch_size > per_process:
            raise TrainingError(
                f"batch_size {self.config.batch_size} is larger than the training set per process "
                f"({n} images / {num_processes} process(es) = {per_process}); the last partial batch is dropped, "
                "so no full batch would ever be trained: lower batch_size or use more data")
        task.check_data(train[0])

    def describe(self) -> dict[str, Any]:
        """Resolved configuration and dataset sizes (``--dry-run``)."""
        task = self.task_class(self.config, self.model_config)
        train, test = self.build_data(task)
        self.check_data(task, train, test)
        steps_per_epoch = len(train) // self.config.batch_size
        total = self.config.max_steps or self.config.epochs * steps_per_epoch
        return {**self.config_dict(), "data": {"train_size": len(train), "test_size": len(test),
                                               "steps_per_epoch": steps_per_epoch, "total_steps": total}}

    # ============================================================================================ fit
    def fit(self) -> dict[str, float]:
        """Train to ``max_steps`` (resuming when ``resume`` says so), export, and return the final metrics."""
        cfg = self.config
        audit_dir = os.environ.get("FASHION_GANS_WRITE_AUDIT")
        self._audit = None
        if audit_dir:
            from .config import hub_folder

            roots = [self.out] + ([Path(hub_folder(cfg.hub_repo))] if cfg.hub_repo and hub_folder(cfg.hub_repo)
                                  else [])
            self._audit = _WriteAudit(roots)
            self._audit.start()
        try:
            return self._fit()
        finally:
            if self._audit is not None:
                self._audit.stop()
                rank = getattr(getattr(self, "accelerator", None), "process_index", 0)
                Path(audit_dir).mkdir(parents=True, exist_ok=True)
                (Path(audit_dir) / f"writes-{rank}.json").write_text(json.dumps(
                    {"rank": rank, "writes": self._audit.writes}))

    def _setup(self, *, write_run: bool = True, init_weights: bool = True, find_resume: bool = False) -> str | None:
        """Accelerator, task, data (every guard), networks, optimisers, schedulers and the fixed sample /
        evaluation batches; with ``write_run`` also the output folder and its ``config.json``; with
        ``find_resume`` the checkpoint ``resume`` names is found (downloaded from the Hub where needed) before the
        networks are built, into ``self.resume_path``; with ``init_weights`` the networks start from ``init_from``
        where it is set and no checkpoint was found (a resumed run's weights are the checkpoint's, so the
        ``init_from`` source is not read and need not be reachable any more).  Returns the tracker name
        (``None``: no tracker)."""
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration, set_seed

        cfg = self.config
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        log_with = None if cfg.log_with in ("", "none") else cfg.log_with
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            # One process: forget the Accelerate state of an earlier run in this interpreter (a notebook, tests),
            # which would refuse another mixed precision or device.  A launched multi-process run keeps its state.
            from accelerate.state import AcceleratorState, GradientState

            AcceleratorState._reset_state(True)
            GradientState._reset_state()
        acc = Accelerator(
            cpu=cfg.cpu, mixed_precision=cfg.mixed_precision, log_with=log_with,
            project_config=ProjectConfiguration(project_dir=str(self.out), logging_dir=str(self.out / "logs")),
            kwargs_handlers=_accelerator_handlers(cfg),
        )
        self.accelerator = acc
        self.is_main = acc.is_main_process

        # ---- task and data; every guard before any heavy work
        set_seed(cfg.seed)
        task = self.task_class(cfg, self.model_config)
        self.task = task
        with acc.main_process_first():
            train, test = self.build_data(task)
        self.check_data(task, train, test, acc.num_processes)
        self.train_set, self.test_set = train, test
        self.batches = EpochBatches(len(train), cfg.batch_size, seed=cfg.seed, num_replicas=acc.num_processes,
                                    rank=acc.process_index)
        self.total_steps = self._run_steps(acc.num_processes)

        if self.is_main and write_run:
            self.out.mkdir(parents=True, exist_ok=True)
            remove_stale(self.ckpt_dir)
            self._write_json(self.out / "config.json",
                             {**self.config_dict(), "num_processes": acc.num_processes,
                              "train_size": len(train), "test_size": len(test)})

        self.resume_path = self._resolve_resume(cfg.resume) if find_resume and cfg.resume else None

        # ---- networks (under the seed) and optimisers
        set_seed(cfg.seed)
        models = task.build_models()
        if cfg.init_from and init_weights and self.resume_path is None:
            self._init_from(cfg.init_from, models)
        if cfg.channels_last:
            models = {k: m.to(memory_format=torch.channels_last) for k, m in models.items()}
        optimizers = task.build_optimizers(models)
        # Schedulers act on the bare optimisers (Accelerate's scheduler wrapper would step once per process).
        self.schedulers = task.build_schedulers(optimizers, total_steps=self.total_steps)
        monitored = task.scheduler_losses()
        self.scheduler_losses = {name: monitored[name] for name, s in self.schedulers.items()
                                 if getattr(s, "needs_loss", True)}
        self._monitored = sorted(set(self.scheduler_losses.values()))
        prepared_models = {k: acc.prepare_model(m) for k, m in models.items()}
        if cfg.compile:
            prepared_models = {k: torch.compile(m, backend=cfg.compile_backend) for k, m in prepared_models.items()}
        prepared_opts = {k: acc.prepare_optimizer(o) for k, o in optimizers.items()}
        task.bind(acc, prepared_models, prepared_opts)
        self.models, self.optimizers = prepared_models, prepared_opts

        # ---- fixed sample / evaluation batches: every process holds the same ones, so each measures the held-out
        # metrics of a one-process run (nothing to gather; Task.mean_metrics)
        rows = min(_SAMPLE_ROWS, len(test))
        self.sample_batch = self._collate([test[i] for i in range(rows)])
        self.eval_batches = []
        eb = min(cfg.batch_size, len(test))
        for b in range(min(cfg.eval_batches, max(1, len(test) // eb))):
            self.eval_batches.append(self._collate([test[i] for i in range(b * eb, (b + 1) * eb)]))
        return log_with

    def _init_from(self, source: str, models: dict[str, torch.nn.Module]) -> None:
        """Copy the weights of ``source``'s exported networks into the networks of the same name (``init_from``)."""
        from fashion_gans.models.hub import ModelFileError
        from fashion_gans.models.sources import load_networks

        try:
            loaded = load_networks(source)
        except (ModelFileError, OSError, ValueError) as exc:
            raise TrainingError(f"TrainConfig.init_from: {source!r}: {exc}") from exc
        task = loaded.meta.get("task")
        if task is not None and task != self.config.task:
            raise TrainingError(f"TrainConfig.init_from: {source!r} holds a {task!r} model; this run trains "
                                f"{self.config.task!r}")
        shared = sorted(set(loaded.networks) & set(models))
        if not shared:
            raise TrainingError(f"TrainConfig.init_from: {source!r} holds networks {sorted(loaded.networks)}, none of "
                                f"which this run trains ({sorted(models)})")
        for name in shared:
            _copy_weights(models[name], loaded.networks[name], f"TrainConfig.init_from: {source!r}: network {name!r}")
        if self.is_main:
            print(f"init_from {source}: {', '.join(shared)} loaded; "
                  f"{', '.join(sorted(set(models) - set(shared))) or 'nothing'} from initialisation", flush=True)

    def evaluate_exported(self, folder: str | os.PathLike, *, num_processes: int = 1) -> dict[str, float]:
        """The held-out metrics of exported networks (``folder/<name>/`` as a run's ``final/`` or a bundled model
        holds them), measured as a run measures them when it ends: the task's ``evaluate`` on the same fixed
        held-out batches of this configuration, with the metric networks installed now.  Re-scores a finished
        model after a metric network changed, without its checkpoints; nothing is written.  The configuration
        must be the run's (task, data, seed, batch size, eval batches), and ``num_processes`` the number of
        processes it trained on: where the evaluation depends on how far training got (StyleGAN v1's resolution
        level), the task is put at the end of the run's steps
        (:meth:`~fashion_gans.training.tasks.base.Task.assume_trained`).  The task's ``unexported_metrics`` (read
        by networks that are not exported) are left out."""
        from fashion_gans.models.sources import load_networks

        loaded = load_networks(folder)
        if loaded.task != self.config.task:
            raise TrainingError(f"{folder}: holds a {loaded.task!r} model; this configuration trains "
                                f"{self.config.task!r}")
        self._setup(write_run=False, init_weights=False)  # every scored network is replaced below
        self.task.assume_trained(self._run_steps(num_processes), num_processes)
        exported = self.task.export()
        missing = sorted(set(exported) - set(loaded.networks))
        if missing:
            raise TrainingError(f"{folder}: holds a {loaded.task!r} model with networks {sorted(loaded.networks)}; "
                                f"this configuration trains {self.config.task!r} and exports {sorted(exported)}")
        for name, module in exported.items():
            _copy_weights(self.accelerator.unwrap_model(module), loaded.networks[name], f"{folder}/{name}:")
        return {k: v for k, v in self._measure().items() if k not in self.task.unexported_metrics}

    def _run_steps(self, num_processes: int) -> int:
        """The run's total steps on ``num_processes`` processes: ``max_steps``, else ``epochs`` times the batches
        of one process's share of the training set."""
        cfg = self.config
        return cfg.max_steps or cfg.epochs * EpochBatches(len(self.train_set), cfg.batch_size, seed=cfg.seed,
                                                          num_replicas=num_processes).batches_per_epoch

    def _fit(self) -> dict[str, float]:
        from accelerate.utils import set_seed

        cfg = self.config
        log_with = self._setup(find_resume=True)
        acc = self.accelerator

        # ---- trackers, hub, resume
        if log_with is not None:
            acc.init_trackers("fashion_gans", config=_flat_hparams(self.config_dict()))
        self.hub = None
        if cfg.hub_repo:
            error = None
            if self.is_main:
                from .hub_sync import HubSync

                try:  # creates (or finds) the repo now: a target that cannot work fails before training
                    self.hub = HubSync(cfg.hub_repo, private=cfg.hub_private, api=self.hub_api,
                                       keep_checkpoints=cfg.keep_checkpoints)
                except Exception as exc:  # noqa: BLE001 - any failure is reported on every process
                    error = f"hub_repo {cfg.hub_repo!r}: {type(exc).__name__}: {exc}"
            self._raise_everywhere(error)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        # Rank-specific stream for in-step randomness (noise, latents); the data order is rank-aware already.
        set_seed(cfg.seed + 7919 * acc.process_index)
        path = self.resume_path
        if path is not None:
            self._restore(path)
            if self.is_main:
                self._truncate_log(self.step)
                print(f"resumed from {path} at step {self.step} (epoch {self.epoch}, batch {self.batch_in_epoch})",
                      flush=True)

        # Pre-emption: SIGTERM (sent by cloud schedulers and torchrun before a kill) stops the run after the
        # current step with a checkpoint, on every process at the same step (the flag rides in the step's sync).
        self._stop_requested, self._stop_now = False, False
        self._stop_flags = (torch.zeros(1, device=acc.device), torch.ones(1, device=acc.device))
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            metrics = self._train()
            acc.wait_for_everyone()
            final = self._finish(metrics)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if self.hub is not None:
                self.hub.close()
            if log_with is not None:
                acc.end_training()
        return final

    def _on_sigterm(self, signum, frame) -> None:
        self._stop_requested = True

    # ============================================================================================ loop
    def _train(self) -> dict[str, float]:
        from tqdm.auto import tqdm

        cfg, acc = self.config, self.accelerator
        self.rollbacks = 0
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self.pbar = tqdm(total=self.total_steps, initial=self.step, disable=not self.is_main, dynamic_ncols=True,
                         desc=f"{cfg.task}")
        self._pbar_pos = self.step
        metrics: dict[str, float] = {}
        while self.step < self.total_steps:
            try:
                metrics = self._run_epochs() or metrics
            except _NonFinite as bad:
                message = (f"non-finite loss {bad.name!r} at step {bad.step} (task {cfg.task!r}, "
                           f"data {cfg.data!r})")
                latest = latest_checkpoint(self.ckpt_dir)
                if cfg.on_nan != "rollback":
                    raise TrainingError(message + "; set on_nan='rollback' to resume from the last checkpoint") \
                        from None
                if latest is None:
                    raise TrainingError(message + "; no checkpoint to roll back to") from None
                if self.rollbacks >= MAX_ROLLBACKS:
                    raise TrainingError(message + f"; gave up after {MAX_ROLLBACKS} rollbacks") from None
                self.rollbacks += 1
                if self.is_main:
                    print(f"{message}: rolling back to {latest.name} ({self.rollbacks}/{MAX_ROLLBACKS})", flush=True)
                self._restore(latest)
                if self.is_main:
                    self._truncate_log(self.step)  # drop the records of the steps being replayed
                # Replaying the same RNG stream would reproduce the same failure: draw a fresh one.
                from accelerate.utils import set_seed

                set_seed(cfg.seed + 1_000_003 * self.rollbacks + 7919 * acc.process_index + self.step)
                self._sums, self._count = {}, 0
        self.pbar.close()
        return metrics

    def _run_epochs(self) -> dict[str, float]:
        cfg, acc = self.config, self.accelerator
        metrics: dict[str, float] = {}
        while self.step < self.total_steps:
            epoch = self.epoch
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            self.task.on_epoch_start(epoch)  # also on a mid-epoch resume: must be idempotent
            batches = self.batches.epoch(epoch, self.batch_in_epoch)
            loader = torch.utils.data.DataLoader(
                self.train_set, batch_sampler=batches, num_workers=cfg.num_workers,
                pin_memory=acc.device.type == "cuda",
                # Worker seeds come from this generator, not from the global RNG (which is checkpointed).
                generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch),
            )
            for batch in loader:
                batch = _to_device(batch, acc.device, cfg.channels_last)
                losses = self.task.training_step(batch, self.step)
                self.step += 1
                self.batch_in_epoch += 1
                monitored = self._check_finite(losses)
                for name, scheduler in self.schedulers.items():
                    loss_name = self.scheduler_losses.get(name)
                    scheduler.observe(monitored[loss_name] if loss_name is not None else None)
                self._accumulate(losses)
                step = self.step
                if step % cfg.log_every == 0 or step == self.total_steps:
                    self._log_losses()
                if step % cfg.sample_every == 0:
                    self._sample()
                if cfg.eval_every and step % cfg.eval_every == 0 and step != self.total_steps:
                    metrics = self._evaluate()
                if self.batch_in_epoch == self.batches.batches_per_epoch:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                if step % cfg.checkpoint_every == 0 or step == self.total_steps:
                    self._save()
                if self.step_callback is not None:
                    self.step_callback(step)
                if step >= self.total_steps:
                    return metrics
                if self._stop_now:
                    if step % cfg.checkpoint_every != 0:
                        self._save()
                    self.pbar.close()
                    if self.is_main:
                        print(f"SIGTERM: stopping at step {step} with a checkpoint", flush=True)
                    raise Preempted(step, latest_checkpoint(self.ckpt_dir))
            if self.batch_in_epoch != 0:  # loader ended early (cannot happen with drop_last); keep position sane
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        return metrics

    # ============================================================================================ guards, logs
    def _check_finite(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """Raise :class:`_NonFinite` naming the first non-finite loss (on every process); return the monitored
        losses (the schedulers' inputs) averaged over processes.  One device read for both."""
        if not losses:
            if self._monitored:
                raise TrainingError(f"task {self.config.task!r} returned no losses; its LR schedulers need "
                                    f"{self._monitored}")
            stop = self._stop_flags[int(self._stop_requested)]
            if self.accelerator.num_processes > 1:  # every process stops after the same step
                stop = self.accelerator.reduce(stop, reduction="sum")
            self._stop_now = stop.item() > 0
            return {}
        names = list(losses)
        missing = [n for n in self._monitored if n not in losses]
        if missing:
            raise TrainingError(f"task {self.config.task!r}: the LR schedulers are driven by loss(es) {missing}, "
                                f"which training_step does not return (it returns {sorted(losses)})")
        flags = torch.stack([(~torch.isfinite(losses[n].detach().float())).any() for n in names]).float()
        stop = self._stop_flags[int(self._stop_requested)].to(flags.device)  # cached: no host-to-device copy
        parts = [flags, stop]
        if self._monitored:
            values = torch.stack([losses[n].detach().float().reshape(()) for n in self._monitored])
            parts.append(values.to(flags.device))
        packed = torch.cat(parts)
        processes = self.accelerator.num_processes
        if processes > 1:
            packed = self.accelerator.reduce(packed, reduction="sum")
        host = packed.tolist()  # the one host synchronisation of the step
        if any(host[: len(names)]):
            first = next(n for n, b in zip(names, host) if b)
            raise _NonFinite(first, self.step)
        self._stop_now = host[len(names)] > 0
        return {n: v / processes for n, v in zip(self._monitored, host[len(names) + 1:])}

    def learning_rates(self) -> dict[str, float]:
        """Current learning rate of every optimiser (its first parameter group)."""
        return {name: float(opt.param_groups[0]["lr"]) for name, opt in self.optimizers.items()}

    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            v = value.detach().float()
            self._sums[name] = self._sums[name] + v if name in self._sums else v.clone()
        self._count += 1

    def _log_losses(self) -> None:
        if not self._sums:
            return
        names = sorted(self._sums)
        means = torch.stack([self._sums[n] for n in names]) / self._count
        if self.accelerator.num_processes > 1:
            means = self.accelerator.reduce(means, reduction="mean")
        values = dict(zip(names, means.tolist()))
        self._sums, self._count = {}, 0
        lrs = self.learning_rates()
        self.accelerator.log({**{f"loss/{k}": v for k, v in values.items()}, **{f"lr/{k}": v for k, v in lrs.items()}},
                             step=self.step)
        if self.is_main:
            self._append_log({"step": self.step, "kind": "loss", **values})
            self._append_log({"step": self.step, "kind": "lr", **lrs})
            # Wall clock of the logged step: seconds per step of a run (and of each resumed session) from the log.
            self._append_log({"step": self.step, "kind": "time", "unix": round(time.time(), 3)})
            self.pbar.update(self.step - self._pbar_pos)
            self._pbar_pos = self.step
            self.pbar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)

    def _append_log(self, record: dict[str, Any]) -> None:
        path = self.out / "logs" / "scalars.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _truncate_log(self, step: int) -> None:
        """Drop records written after ``step`` by a run that was killed after its last checkpoint."""
        from fashion_gans.data.io import atomic_path

        path = self.out / "logs" / "scalars.jsonl"
        if not path.is_file():
            return
        keep = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        from fashion_gans.data.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    # ============================================================================================ samples, eval
    def _collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return _to_device(torch.utils.data.default_collate(items), self.accelerator.device, self.config.channels_last)

    @contextlib.contextmanager
    def _fixed_rng(self) -> Iterator[None]:
        """Fixed-seed sampling/evaluation that leaves the training RNG streams untouched."""
        import random

        import numpy as np

        devices = [self.accelerator.device.index or 0] if self.accelerator.device.type == "cuda" else []
        py, npst = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.seed)
            try:
                yield
            finally:
                random.setstate(py)
                np.random.set_state(npst)

    def _sample(self) -> None:
        from torchvision.utils import make_grid

        from fashion_gans.data.io import save_image, tensor_to_array

        with self._fixed_rng(), torch.no_grad():
            images = self.task.sample(self.sample_batch)
        if not self.is_main:
            return
        images = images.detach().float().cpu().clamp(-1, 1)
        rows = len(next(iter(v for v in self.sample_batch.values() if isinstance(v, torch.Tensor))))
        n = images.shape[0]
        columns = n // rows if rows and n % rows == 0 else math.ceil(math.sqrt(n))
        grid = make_grid(images, nrow=columns, padding=2, pad_value=1.0)
        path = self.out / "samples" / f"step-{self.step:09d}.png"
        save_image(tensor_to_array(grid), path)
        if self.hub is not None:
            self.hub.upload(path, f"samples/{path.name}")

    def _sync_buffers(self) -> None:
        """Give every process the main process's buffers (BatchNorm running statistics).  Data-parallel training
        broadcasts them at the start of each forward, but every process then updates its copy with its own batch,
        so after a step they differ: the held-out evaluation (eval-mode BatchNorm reads them) and the networks
        kept at the end would otherwise differ between processes, while checkpoints hold the main process's.  The
        exported networks are included: a weight average the task keeps averages each process's statistics."""
        if getattr(self.accelerator, "num_processes", 1) <= 1:
            return
        modules = {id(m): m for m in [*self._bare_models().values(), *self.task.export().values()]}
        for module in modules.values():
            for buffer in module.buffers():
                torch.distributed.broadcast(buffer.data, src=0)

    def _measure(self) -> dict[str, float]:
        """The task's held-out metrics on the fixed evaluation batches, under the fixed evaluation seed."""
        self._sync_buffers()
        with self._fixed_rng(), torch.no_grad():
            return {k: float(v) for k, v in self.task.evaluate(self.eval_batches).items()}

    def _evaluate(self) -> dict[str, float]:
        metrics = self._measure()
        self.accelerator.log({f"metric/{k}": v for k, v in metrics.items()}, step=self.step)
        if self.is_main:
            self._append_log({"step": self.step, "kind": "metric", **metrics})
            self.pbar.write(f"step {self.step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        return metrics

    # ============================================================================================ checkpoints
    def _bare_models(self) -> dict[str, nn.Module]:
        return {k: self.accelerator.unwrap_model(m) for k, m in self.models.items()}

    def _save(self) -> None:
        acc = self.accelerator
        rng = capture_rng_state()
        if acc.num_processes > 1:
            from accelerate.utils import gather_object

            rngs = gather_object([rng])
        else:
            rngs = [rng]
        if self.is_main:
            scaler = acc.scaler.state_dict() if getattr(acc, "scaler", None) is not None else None
            path = save_checkpoint(
                self.ckpt_dir, self.step, models=self._bare_models(), optimizers=self.optimizers,
                epoch=self.epoch, batch_in_epoch=self.batch_in_epoch, rng=list(rngs), task=self.task.state_dict(),
                config=self.config_dict(), scaler=scaler, schedulers=self.schedulers,
            )
            prune_checkpoints(self.ckpt_dir, self.config.keep_checkpoints)
            if self.hub is not None:
                # At most one checkpoint in flight: the Hub is never more than one checkpoint behind.  The other
                # processes wait at the barrier meanwhile (hence the long collective timeout with hub_repo).
                self.hub.wait()
                self.hub.upload_checkpoint(path, self.out / "logs", f"Checkpoint at step {self.step}")
        acc.wait_for_everyone()
        kill_at = os.environ.get("FASHION_GANS_KILL_AFTER_STEP")
        if kill_at and int(kill_at) == self.step:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: a real kill, no clean-up runs

    def _resolve_resume(self, resume: str) -> Path | None:
        if resume != "latest":
            path = Path(resume)
            if not path.is_dir():
                raise TrainingError(f"resume: {path}: no such checkpoint folder")
            return path
        path = latest_checkpoint(self.ckpt_dir)
        if path is None and self.config.hub_repo:
            error = None
            if self.is_main:
                from .hub_sync import download_latest_checkpoint

                try:
                    download_latest_checkpoint(self.config.hub_repo, self.ckpt_dir, api=self.hub_api,
                                               logs_to=self.out / "logs")
                except Exception as exc:  # noqa: BLE001 - any failure is reported on every process
                    error = f"resume from hub_repo {self.config.hub_repo!r}: {type(exc).__name__}: {exc}"
            self._raise_everywhere(error)  # also the barrier before the other processes look for the download
            path = latest_checkpoint(self.ckpt_dir)
        if path is None and self.is_main:
            print("resume=latest: no checkpoint found, starting a fresh run", flush=True)
        return path

    def _raise_everywhere(self, error: str | None) -> None:
        """Raise :class:`TrainingError` ``error`` (known on the main process only) on every process, so that no
        process waits forever in a collective the failed one never reaches; a barrier when ``error`` is None."""
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            error = broadcast_object_list([error], from_process=0)[0]
        if error is not None:
            raise TrainingError(error)

    def _restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        saved_model = ckpt.config.get("model")
        if saved_model is not None and saved_model != json.loads(json.dumps(self.model_config.to_dict())):
            raise TrainingError(f"{path}: the checkpoint's model config differs from this run's "
                                f"(checkpoint: {saved_model}, run: {self.model_config.to_dict()})")
        saved_train = ckpt.config.get("train") or {}
        changed = {key: (saved_train[key], getattr(self.config, key)) for key in RESUME_MUST_MATCH
                   if key in saved_train and saved_train[key] != json.loads(json.dumps(getattr(self.config, key)))}
        if changed:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in changed.items())
            raise TrainingError(f"{path}: resuming with a different training setup would not continue the same run "
                                f"({detail}); start a new output_dir or restore these options")
        ckpt.load_models(self._bare_models())
        missing = sorted(set(self.optimizers) - set(ckpt.optimizers))
        if missing:
            raise TrainingError(f"{path}: no state for optimiser(s) {missing}")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(ckpt.optimizers[name])
        if ckpt.scaler is not None and getattr(self.accelerator, "scaler", None) is not None:
            self.accelerator.scaler.load_state_dict(ckpt.scaler)
        for name, scheduler in self.schedulers.items():
            if hasattr(scheduler, "set_step"):  # a schedule of the step count (linear decay)
                scheduler.set_step(ckpt.step)
            if name in ckpt.schedulers:
                scheduler.load_state_dict(ckpt.schedulers[name])
            elif self.is_main:  # e.g. lr_schedule switched on for a run saved without one
                print(f"{path}: no state for LR scheduler {name!r}; it starts afresh", flush=True)
        self.task.load_state_dict(ckpt.task)
        self.step, self.epoch, self.batch_in_epoch = ckpt.step, ckpt.epoch, ckpt.batch_in_epoch
        rank = self.accelerator.process_index
        if len(ckpt.rng) == self.accelerator.num_processes:
            restore_rng_state(ckpt.rng[rank])
        else:  # a different number of processes: reproducible, but not the same stream
            from accelerate.utils import set_seed

            set_seed(self.config.seed + 7919 * rank + self.step)

    # ============================================================================================ end
    def _finish(self, metrics: dict[str, float]) -> dict[str, float]:
        acc = self.accelerator
        self._sample()
        final = self._evaluate()
        if self.is_main:
            self._write_json(self.out / "final_metrics.json", {"step": self.step, **final})
            self._plot()
            exported = self.task.export()
            for name, module in exported.items():
                module = acc.unwrap_model(module)
                module.save_pretrained(self.out / "final" / name, metrics=final, dataset=self.config.data)
            if self.hub is not None:
                for folder in ("final", "plots", "logs"):
                    if (self.out / folder).is_dir():
                        self.hub.upload(self.out / folder, folder, f"Upload {folder}/", copy=folder == "logs")
        debug = os.environ.get("FASHION_GANS_DEBUG_DIR")
        if debug:
            Path(debug).mkdir(parents=True, exist_ok=True)
            (Path(debug) / f"weights-{acc.process_index}.json").write_text(json.dumps(
                {"rank": acc.process_index, "step": self.step,
                 "sha256": weights_digest({**self._bare_models(),
                                           **{f"export/{k}": m for k, m in self.task.export().items()}})}))
        acc.wait_for_everyone()
        return final

    def _plot(self) -> None:
        """The thesis' figures: one plot of every loss, one plot per metric (from logs/scalars.jsonl)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from fashion_gans.data.io import atomic_path

        path = self.out / "logs" / "scalars.jsonl"
        if not path.is_file():
            return
        series: dict[tuple[str, str], dict[int, float]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            for key, value in rec.items():
                if key not in ("step", "kind"):
                    series.setdefault((rec["kind"], key), {})[rec["step"]] = value  # last record of a step wins
        plots = self.out / "plots"
        plots.mkdir(parents=True, exist_ok=True)

        def save(fig, name: str) -> None:
            with atomic_path(plots / name) as tmp:
                fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
            plt.close(fig)

        def plot_kind(kind: str, file: str, height: float, **axes) -> None:
            """One figure with every series of ``kind`` (losses, learning rates), if there are any."""
            named = {k: v for (knd, k), v in series.items() if knd == kind}
            if not named:
                return
            fig, ax = plt.subplots(figsize=(8, height))
            for name, points in sorted(named.items()):
                steps = sorted(points)
                ax.plot(steps, [points[s] for s in steps], label=name)
            ax.set(xlabel="step", **axes)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
            save(fig, file)

        plot_kind("loss", "losses.png", 4.5, ylabel="loss", title=f"{self.config.task}: training losses")
        plot_kind("lr", "lr.png", 3.5, ylabel="learning rate", title=f"{self.config.task}: learning rates",
                  yscale="log")
        for (kind, name), points in sorted(series.items()):
            if kind != "metric":
                continue
            steps = sorted(points)
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.plot(steps, [points[s] for s in steps], marker="o")
            ax.set(xlabel="step", ylabel=name, title=f"{self.config.task}: held-out {name}")
            ax.grid(alpha=0.3)
            save(fig, f"metric_{name}.png")
