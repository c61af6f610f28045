"""Typed training configuration, saved with every checkpoint and pushed with the weights.

Every option is documented where it is declared.  ``TrainConfig.validate()`` runs when the object is built, so a
bad value fails before any data is read or any GPU time is spent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig", "TrainingError", "TASKS", "MIXED_PRECISION"]

#: Task name -> model family it trains.
TASKS = {"pose": "pgpg", "garment": "pixeldtgan", "style": "cyclegan", "generation": "stylegan"}
MIXED_PRECISION = ("no", "fp16", "bf16")


class TrainingError(RuntimeError):
    """A training run cannot start or continue; the message says why (config, data, or a non-finite loss)."""


@dataclass
class TrainConfig:
    # --- what to train -------------------------------------------------------------------------------------
    task: str = "style"
    """One of ``pose``, ``garment``, ``style``, ``generation``."""
    preset: str = ""
    """Model preset name from :func:`fashion_gans.models.get_preset` (default: the task's ``*_small`` preset)."""
    model_overrides: dict[str, Any] = field(default_factory=dict)
    """Fields of the model config to change on top of the preset (e.g. ``{"image_size": 32}``)."""
    data: str = "synthetic"
    """Where the data comes from: ``synthetic`` (rendered into ``output_dir/data`` on first use), a prepared
    folder (``scripts/prepare_data.py`` output or a real dataset root/file), ``fashion-mnist[:DIR]``, or
    ``hf:REPO_ID_OR_PATH`` for a Hugging Face dataset."""
    data_options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the dataset class (e.g. ``{"pose_encoding": "iuv"}``)."""
    synthetic_size: int = 200
    """Identities / products / images rendered when ``data == "synthetic"``."""

    # --- optimisation --------------------------------------------------------------------------------------
    batch_size: int = 16
    """Per-process batch size."""
    lr_g: float = 2e-4
    """Generator learning rate (Adam)."""
    lr_d: float = 2e-4
    """Discriminator learning rate (Adam)."""
    betas: tuple[float, float] = (0.5, 0.999)
    """Adam betas (the thesis used (0.9, 0.999) for every model)."""
    max_steps: int = 1000
    """Training steps (one step = one batch = every update of that batch). Overrides ``epochs`` when > 0."""
    epochs: int = 0
    """Epochs to train when ``max_steps`` is 0."""
    loss_weights: dict[str, float] = field(default_factory=dict)
    """Task loss weights (each task documents its keys and defaults), e.g. ``{"cycle": 10, "identity": 5}``."""
    schedule: dict[str, Any] = field(default_factory=dict)
    """Task schedules, e.g. PGPG ``{"recon_epochs": [[0, 1], [37, 5], [66, 10]]}``."""

    # --- precision and speed -------------------------------------------------------------------------------
    mixed_precision: str = "no"
    """``no``, ``fp16`` or ``bf16``; gradient penalties and R1 always run in fp32."""
    compile: bool = False
    """``torch.compile`` the networks."""
    channels_last: bool = False
    """Use channels_last memory format (on GPU)."""
    num_workers: int = 0
    """DataLoader worker processes."""
    cpu: bool = False
    """Force the CPU even when a GPU is present."""

    # --- reproducibility -----------------------------------------------------------------------------------
    seed: int = 0
    """Seed of models, data order and sampling."""
    deterministic: bool = False
    """``torch.use_deterministic_algorithms(True)``: bit-exact resume, slower on GPU."""

    # --- outputs -------------------------------------------------------------------------------------------
    output_dir: str = "runs/default"
    """Run folder: checkpoints/, samples/, logs/, plots/, config.json, final/ (exported weights)."""
    checkpoint_every: int = 500
    """Steps between full training-state checkpoints."""
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep."""
    sample_every: int = 500
    """Steps between fixed-seed sample grids."""
    eval_every: int = 0
    """Steps between held-out evaluations (0: only at the end)."""
    log_every: int = 50
    """Steps between tracker logs and progress-bar updates."""
    eval_batches: int = 4
    """Held-out batches used by each evaluation."""
    log_with: str = "tensorboard"
    """Accelerate tracker (``tensorboard``, ``wandb``, ... or ``none``)."""
    resume: str = ""
    """``latest`` (newest local checkpoint, else the Hub repo's), a checkpoint folder, or empty for a fresh run."""
    hub_repo: str = ""
    """Hub model repo that receives checkpoints and samples in the background (empty: no upload)."""
    hub_private: bool = True
    """Create the Hub repo private."""
    on_nan: str = "stop"
    """What a NaN/Inf loss does: ``stop`` (raise, naming the loss) or ``rollback`` (reload the last checkpoint
    and continue, at most 3 times)."""

    def __post_init__(self) -> None:
        self._check_types()
        # torch's Adam rejects a mix of int and float betas, e.g. (0, 0.99) from a JSON file.
        self.betas = tuple(float(b) for b in self.betas)
        self.validate()

    def _check_types(self) -> None:
        """Each field has its declared type (ints are accepted for floats), e.g. from ``--set key=value``."""
        expected = {"str": str, "int": int, "float": (int, float), "bool": bool}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = str(f.type).split("[")[0]
            if kind in expected:
                ok = isinstance(value, expected[kind]) and (kind == "bool" or not isinstance(value, bool))
            elif kind == "dict":
                ok = isinstance(value, dict)
            elif kind == "tuple":
                ok = isinstance(value, (tuple, list)) and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            else:  # pragma: no cover - every field has one of the kinds above
                ok = True
            if not ok:
                raise TrainingError(f"TrainConfig.{f.name}: expected {f.type}, got {value!r}")

    def validate(self) -> None:
        def bad(name: str, problem: str) -> None:
            raise TrainingError(f"TrainConfig.{name}: {problem}")

        if self.task not in TASKS:
            bad("task", f"unknown task {self.task!r}; choose one of {sorted(TASKS)}")
        if self.batch_size < 1:
            bad("batch_size", f"must be >= 1, got {self.batch_size}")
        if self.max_steps < 0 or self.epochs < 0 or (self.max_steps == 0 and self.epochs == 0):
            bad("max_steps", "set max_steps > 0 or epochs > 0")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                bad(name, f"must be > 0, got {getattr(self, name)}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            bad("betas", f"need two values in [0, 1), got {self.betas}")
        if self.mixed_precision not in MIXED_PRECISION:
            bad("mixed_precision", f"choose one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        for name in ("checkpoint_every", "sample_every", "log_every", "keep_checkpoints", "eval_batches"):
            if getattr(self, name) < 1:
                bad(name, f"must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0:
            bad("eval_every", f"must be >= 0, got {self.eval_every}")
        if self.on_nan not in ("stop", "rollback"):
            bad("on_nan", f"choose 'stop' or 'rollback', got {self.on_nan!r}")
        if self.num_workers < 0:
            bad("num_workers", f"must be >= 0, got {self.num_workers}")

    @property
    def preset_name(self) -> str:
        return self.preset or f"{TASKS[self.task]}_small"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"TrainConfig: unknown option(s) {unknown}")
        return cls(**data)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
