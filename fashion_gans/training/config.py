"""Typed training configuration, saved with every checkpoint and pushed with the weights.

Every option is documented where it is declared.  ``TrainConfig.validate()`` runs when the object is built, so a
bad value fails before any data is read or any GPU time is spent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig", "TrainingError", "TASKS", "MIXED_PRECISION", "LR_SCHEDULES", "PLATEAU_KEYS",
           "COMPILE_BACKENDS", "hub_folder"]

#: Task name -> model family it trains.
TASKS = {"pose": "pgpg", "garment": "pixeldtgan", "style": "cyclegan", "generation": "stylegan",
         "fader": "fader", "icgan": "icgan"}
MIXED_PRECISION = ("no", "fp16", "bf16")
#: ``default`` = the task's own setting (thesis: plateau for style and generation, none for pose and garment).
LR_SCHEDULES = ("default", "none", "plateau", "linear")
#: Keys of ``TrainConfig.lr_plateau`` (see :mod:`fashion_gans.training.schedulers`).
PLATEAU_KEYS = ("factor", "patience", "cooldown", "min_lr", "threshold", "threshold_mode", "every")
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
#: Model family -> the default preset for ``data="fashion-mnist"`` (1 channel, 32 px).
FMNIST_PRESETS = {"cyclegan": "cyclegan_fmnist", "stylegan": "stylegan_fmnist", "fader": "fader_fmnist",
                  "icgan": "icgan_fmnist"}
#: Model family -> its default preset for other data where it has no ``*_small`` preset.
DEFAULT_PRESETS = {"fader": "fader_synthetic", "icgan": "icgan_synthetic"}


def hub_folder(repo: str) -> str | None:
    """The local folder of a ``file:`` Hub repo (``file:/abs``, ``file:///abs``, ``file://localhost/abs`` or
    ``file:relative``), else None.  ``file://HOST/...`` with another host is a :class:`TrainingError` (it would
    otherwise be read as the relative folder ``HOST/...``)."""
    if not repo.startswith("file:"):
        return None
    path = repo[len("file:"):]
    if not path.startswith("//"):
        return path
    host, slash, rest = path[2:].partition("/")
    if host not in ("", "localhost"):
        raise TrainingError(f"TrainConfig.hub_repo: {repo!r} names host {host!r}; a file: repo is a local folder: "
                            "file:/abs/folder, file:///abs/folder, file://localhost/abs/folder or file:relative")
    return slash + rest


class TrainingError(RuntimeError):
    """A training run cannot start or continue; the message says why (config, data, or a non-finite loss)."""


@dataclass
class TrainConfig:
    # --- what to train -------------------------------------------------------------------------------------
    task: str = "style"
    """One of ``pose``, ``garment``, ``style``, ``generation``, ``fader``, ``icgan``."""
    preset: str = ""
    """Model preset name from :func:`fashion_gans.models.get_preset` (default: the task's ``*_small`` preset, or its
    ``*_fmnist`` preset (1 channel, 32 px) when ``data`` is ``fashion-mnist``)."""
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
    lr_schedule: str = "default"
    """Learning-rate schedule: ``none``, ``plateau`` (ReduceLROnPlateau on each optimiser, fed the training loss
    the task names for it, stepped every step), ``linear`` (constant, then a linear decay towards zero over the
    steps after ``lr_decay_start``: pix2pix and CycleGAN) or ``default``: the thesis setting of the task,
    ``plateau`` for style (cooldown 200) and generation (cooldown 100), ``none`` for pose and garment."""
    lr_decay_start: float = 0.5
    """``linear`` schedule: the share of the run's steps trained at the full learning rate (pix2pix and CycleGAN:
    the first half); every optimiser's rate then falls linearly, reaching ``1 / decay steps`` of it at the last
    step."""
    lr_plateau: dict[str, Any] = field(default_factory=dict)
    """Plateau settings on top of the task's (thesis: ``factor`` 0.99, ``patience`` 10, ``cooldown`` 200/100,
    ``min_lr`` 5e-6, ``threshold`` 1e-4, ``threshold_mode`` "rel", ``every`` 1 = step on every batch loss; ``every``
    N steps on the mean loss of N steps, and patience/cooldown then count those N-step windows)."""

    # --- precision and speed -------------------------------------------------------------------------------
    mixed_precision: str = "no"
    """``no``, ``fp16`` or ``bf16``; gradient penalties and R1 always run in fp32."""
    compile: bool = False
    """``torch.compile`` the networks (first steps are slow while it compiles)."""
    compile_backend: str = "inductor"
    """``torch.compile`` backend: ``inductor`` (generated kernels; on the CPU it needs a C++ compiler),
    ``aot_eager`` (traces without code generation: checks that the networks compile, no speed-up) or ``eager``."""
    channels_last: bool = False
    """Use the channels_last memory format for networks and image batches (faster convolutions on recent GPUs
    with mixed precision; accepted on the CPU)."""
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
    init_from: str = ""
    """Start from trained weights (fine-tuning): a bundled model name, a model or run folder, a checkpoint folder or a
    Hub repo id (anything :func:`fashion_gans.models.load_networks` reads) of the same task.  Its exported networks
    initialise the networks of the same name (for StyleGAN the exported EMA generator becomes the generator and
    its average); the others (a discriminator that was not exported) start fresh, as do the optimisers and the
    step count.  A resumed run takes its weights from the checkpoint instead and does not read the source.  Empty:
    every network starts from its initialisation."""
    hub_repo: str = ""
    """Hub model repo (``user/name``) that receives checkpoints, logs and samples in the background, and that
    ``resume="latest"`` falls back to in an empty output_dir; ``file:/some/folder`` uses a local folder with the same
    layout instead of huggingface.co (empty: no upload)."""
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
        if self.lr_schedule not in LR_SCHEDULES:
            bad("lr_schedule", f"choose one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.lr_decay_start < 1.0:
            bad("lr_decay_start", f"must be in [0, 1) (a share of the run's steps), got {self.lr_decay_start}")
        self._validate_plateau(bad)
        if self.compile_backend not in COMPILE_BACKENDS:
            bad("compile_backend", f"choose one of {COMPILE_BACKENDS}, got {self.compile_backend!r}")
        if self.hub_repo:
            folder = hub_folder(self.hub_repo)
            if folder is not None:
                if not folder.strip():
                    bad("hub_repo", "'file:' needs a folder, e.g. file:/tmp/hub")
            elif len(self.hub_repo.split("/")) != 2 or not all(self.hub_repo.split("/")) or " " in self.hub_repo:
                bad("hub_repo", f"expected a Hub repo id 'user/name' or file:/some/folder, got {self.hub_repo!r}")

    def _validate_plateau(self, bad) -> None:
        p = self.lr_plateau
        unknown = sorted(set(p) - set(PLATEAU_KEYS))
        if unknown:
            bad("lr_plateau", f"unknown key(s) {unknown}; known: {list(PLATEAU_KEYS)}")

        def number(key: str) -> float | None:
            if key not in p:
                return None
            value = p[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                bad("lr_plateau", f"{key!r} must be a number, got {value!r}")
            return value

        factor = number("factor")
        if factor is not None and not 0 < factor < 1:
            bad("lr_plateau", f"'factor' must be in (0, 1), got {factor}")
        for key in ("patience", "cooldown"):
            value = number(key)
            if value is not None and (value < 0 or int(value) != value):
                bad("lr_plateau", f"{key!r} must be an integer >= 0, got {value}")
        every = number("every")
        if every is not None and (every < 1 or int(every) != every):
            bad("lr_plateau", f"'every' must be an integer >= 1, got {every}")
        for key in ("min_lr", "threshold"):
            value = number(key)
            if value is not None and value < 0:
                bad("lr_plateau", f"{key!r} must be >= 0, got {value}")
        if p.get("threshold_mode", "rel") not in ("rel", "abs"):
            bad("lr_plateau", f"'threshold_mode' must be 'rel' or 'abs', got {p['threshold_mode']!r}")

    @property
    def preset_name(self) -> str:
        """``preset``, else the task's small preset for the data: ``*_fmnist`` (1 channel, 32 px) for Fashion-MNIST
        data, ``*_small`` otherwise."""
        if self.preset:
            return self.preset
        family = TASKS[self.task]
        if self.data.strip().startswith("fashion-mnist") and family in FMNIST_PRESETS:
            return FMNIST_PRESETS[family]
        return DEFAULT_PRESETS.get(family, f"{family}_small")

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
