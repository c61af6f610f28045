"""Where trained networks come from: one loader for every place a model can live.

:func:`load_networks` accepts

* a **bundled name** (``pose-synthetic``, ...): a folder under ``fashion_gans/assets/models/`` shipped with
  the package (:func:`list_bundled`);
* a **model folder**: one sub-folder per exported network (``generator/``, or ``gen_ab/`` + ``gen_ba/``), each
  written by ``save_pretrained`` (``config.json`` + ``model.safetensors``), optionally with a ``bundle.json``
  that says which tool/task/data it belongs to; a training run's ``final/`` folder is one;
* a **training run folder** (has ``final/``, or only ``checkpoints/``: the newest checkpoint is exported);
* a **checkpoint folder** (``checkpoints/step-*``): the task is rebuilt from the checkpoint's own config,
  restored, and exported exactly as the trainer would at the end (EMA generator for StyleGAN);
* a **Hub repo id** (``user/name``, with ``revision``): the same rules applied to its snapshot (a repo written by
  the trainer keeps its networks under ``final/``); ``file:/path`` names a local folder standing in for a repo.

Nothing is unpickled: weights are safetensors, checkpoint state loads with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .hub import CONFIG_NAME, WEIGHTS_NAME, ModelFileError

__all__ = ["BUNDLED_DIR", "BUNDLE_FILE", "HUB_PATTERNS", "LoadedNetworks", "list_bundled", "resolve_source",
           "load_networks", "count_parameters", "check_parameters", "export_checkpoint", "write_bundle_meta",
           "TASK_NETWORKS", "MODEL_CLASS_TASK"]

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
BUNDLE_FILE = "bundle.json"
#: What a Hub snapshot downloads (``huggingface_hub`` matches with ``fnmatch``, where ``*`` also matches ``/``):
#: the model card, ``bundle.json`` and each exported network's config and weights, nothing else.
HUB_PATTERNS = ["bundle.json", "README.md", "*/config.json", "*/model.safetensors", "final/*/config.json",
                "final/*/model.safetensors"]
_HUB_CONFIG_PATTERNS = ["bundle.json", "*/config.json", "final/*/config.json"]
#: Task -> model family -> the network names its export holds.
TASK_NETWORKS = {"pose": ("generator",), "garment": ("generator",), "style": ("gen_ab", "gen_ba"),
                 "generation": ("generator",), "fader": ("fader",), "icgan": ("generator", "encoder_z", "encoder_y")}
#: The task of a saved network's ``model_class`` (the class that runs a model; discriminators and encoders have none).
MODEL_CLASS_TASK = {"PGPGGenerator": "pose", "PixelDTGenerator": "garment", "CycleGANGenerator": "style",
                    "StyleGANGenerator": "generation", "StyleGAN2Generator": "generation",
                    "FaderNetwork": "fader", "IcGANGenerator": "icgan"}


@dataclass
class LoadedNetworks:
    """Networks (eval mode, on ``map_location``) by export name, the folder they came from, and the metadata of
    ``bundle.json`` (``task``, ``preset``, ``data``, ``metrics`` ...) or what could be inferred (``task``)."""

    networks: dict[str, nn.Module]
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.meta["task"]


def list_bundled() -> list[str]:
    """Names of the models shipped inside the package."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if p.is_dir() and _network_dirs(p))


def _network_dirs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and (p / CONFIG_NAME).is_file()
            and (p / WEIGHTS_NAME).is_file()} if folder.is_dir() else {}


def _looks_like_repo_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "/", "~")) and "\\" not in source


def resolve_source(source: str | os.PathLike, *, revision: str | None = None, cache_dir: str | Path | None = None,
                   local_files_only: bool | None = None, max_parameters: int | None = None) -> Path:
    """The local folder behind ``source`` (bundled name, folder or Hub repo id); raises :class:`ModelFileError`.

    For a Hub repo only :data:`HUB_PATTERNS` are downloaded; with ``max_parameters`` the networks' configs are
    fetched first and a repo with more parameters is refused before its weights are downloaded."""
    text = str(source)
    if text.startswith("file:"):  # a local folder standing in for a Hub repo (fashion_gans.training.hub_sync)
        from fashion_gans.training.config import TrainingError, hub_folder

        try:
            text = hub_folder(text)
        except TrainingError as exc:
            raise ModelFileError(f"{source}: {exc}") from exc
        if not Path(text).is_dir():
            raise ModelFileError(f"{source}: no such folder")
    if not text.strip():
        raise ModelFileError("model source is empty: give a bundled name, a folder or a Hub repo id")
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelFileError(f"{path}: is a file; a model source is a folder, a bundled name or a Hub repo id")
        return path
    if (BUNDLED_DIR / text).is_dir() and "/" not in text:
        return BUNDLED_DIR / text
    if not _looks_like_repo_id(text):
        raise ModelFileError(f"{text!r}: no such folder, not a bundled model ({', '.join(list_bundled()) or 'none'})"
                             " and not a Hub repo id (user/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
    try:
        if max_parameters is not None:  # sizes are checked on the configs before any weights are downloaded
            configs = Path(snapshot_download(text, revision=revision, cache_dir=cache_dir,
                                             local_files_only=local_files_only, allow_patterns=_HUB_CONFIG_PATTERNS))
            check_parameters(configs, max_parameters, name=text)
            if not local_files_only:
                _check_weight_sizes(text, revision, configs, max_parameters)
        return Path(snapshot_download(text, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                                      allow_patterns=HUB_PATTERNS))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{text}@{revision or 'main'}: cannot be found or downloaded "
                             f"({type(exc).__name__}: {exc})") from exc


def _check_weight_sizes(repo: str, revision: str | None, configs: Path, max_parameters: int) -> None:
    """Refuse weight files larger than ``max_parameters`` float32 values (asked of the Hub before downloading)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    paths = [str(p.parent.relative_to(configs) / WEIGHTS_NAME) for p in configs.glob(f"*/{CONFIG_NAME}")]
    paths += [str(p.parent.relative_to(configs) / WEIGHTS_NAME) for p in configs.glob(f"final/*/{CONFIG_NAME}")]
    try:
        infos = HfApi().get_paths_info(repo, paths, revision=revision) if paths else []
    except (HfHubHTTPError, OSError, ValueError):
        return  # the parameter count from the configs still holds
    total = sum(int(getattr(info, "size", 0) or 0) for info in infos)
    limit = 4 * max_parameters + (1 << 20) * max(1, len(paths))  # float32 values plus each file's header
    if total > limit:
        raise ModelFileError(f"{repo}: its weight files hold {total:,} bytes, more than {max_parameters:,} "
                             "parameters can take")


def count_parameters(folder: str | os.PathLike) -> dict[str, int]:
    """Parameters of every network under ``folder`` (or its ``final/``), counted by building each network from its
    ``config.json`` on the ``meta`` device: no weights are read and no memory is allocated."""
    import torch

    from . import MODEL_CLASSES

    folder = Path(folder)
    configs = {p.parent.name: p for p in sorted(folder.glob(f"*/{CONFIG_NAME}"))}
    if not configs:
        configs = {p.parent.name: p for p in sorted(folder.glob(f"final/*/{CONFIG_NAME}"))}
    counts = {}
    for name, cfg_file in configs.items():
        try:
            meta = json.loads(cfg_file.read_text(encoding="utf-8"))
            cls = MODEL_CLASSES[meta["model_class"]]
            config = cls.config_class.from_dict(meta["config"])
            with torch.device("meta"):
                net = cls(config=config, **(meta.get("init_args") or {}))
        except Exception as exc:  # noqa: BLE001 - any malformed config is one clear error
            raise ModelFileError(f"{cfg_file.parent.name}/{CONFIG_NAME}: not a buildable fashion-gans network "
                                 f"({type(exc).__name__}: {exc})") from exc
        counts[name] = sum(p.numel() for p in net.parameters())
    return counts


def check_parameters(folder: str | os.PathLike, max_parameters: int, *, name: str | None = None) -> int:
    """Raise :class:`ModelFileError` when the networks under ``folder`` hold more than ``max_parameters``."""
    total = sum(count_parameters(folder).values())
    if total > max_parameters:
        raise ModelFileError(f"{name or Path(folder).name}: {total:,} parameters is more than this installation "
                             f"accepts ({max_parameters:,})")
    return total


def export_checkpoint(checkpoint: str | os.PathLike, map_location: str = "cpu") -> LoadedNetworks:
    """Rebuild the task of a training checkpoint, restore it, and return what the trainer would export."""
    from fashion_gans.training.checkpoint import load_checkpoint
    from fashion_gans.training.config import TrainConfig, TrainingError
    from fashion_gans.training.tasks import get_task_class

    from . import get_preset

    ckpt_path = Path(checkpoint)
    try:
        ckpt = load_checkpoint(ckpt_path)
        train = TrainConfig.from_dict(ckpt.config["train"])
        model_config = get_preset(train.preset_name).replace(**train.model_overrides)
        saved = ckpt.config.get("model")
        if saved is not None and saved != json.loads(json.dumps(model_config.to_dict())):
            model_config = type(model_config).from_dict(saved)
        task = get_task_class(train.task)(train, model_config)
        models = task.build_models()
        ckpt.load_models(models)
        task.bind(None, models, {})
        task.load_state_dict(ckpt.task)
        networks = {name: m.to(map_location).eval() for name, m in task.export().items()}
    except (TrainingError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{ckpt_path}: cannot export the checkpoint ({exc})") from exc
    meta = {"task": train.task, "preset": train.preset_name, "data": train.data, "step": ckpt.step,
            "source": "checkpoint"}
    return LoadedNetworks(networks, ckpt_path, meta)


def load_networks(source: str | os.PathLike, *, revision: str | None = None, cache_dir: str | Path | None = None,
                  map_location: str = "cpu", local_files_only: bool | None = None,
                  max_parameters: int | None = None) -> LoadedNetworks:
    """Load every exported network of ``source`` (see the module docstring for what ``source`` may be).

    ``max_parameters``: refuse (:class:`ModelFileError` naming the count) a model whose networks hold more
    parameters, counted from their configs before any weights are read (or downloaded)."""
    from . import MODEL_CLASSES

    folder = resolve_source(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                            max_parameters=max_parameters)
    if (folder / "state.pt").is_file() and (folder / "models").is_dir():
        return export_checkpoint(folder, map_location)
    nets = _network_dirs(folder)
    if not nets and _network_dirs(folder / "final"):
        folder = folder / "final"
        nets = _network_dirs(folder)
    if not nets and (folder / "checkpoints").is_dir():
        from fashion_gans.training.checkpoint import latest_checkpoint

        latest = latest_checkpoint(folder / "checkpoints")
        if latest is not None:
            return export_checkpoint(latest, map_location)
    if not nets:
        raise ModelFileError(f"{folder}: holds no exported networks (expected sub-folders such as generator/ with "
                             f"{CONFIG_NAME} and {WEIGHTS_NAME}, a final/ folder, or checkpoints/)")
    if max_parameters is not None:
        check_parameters(folder, max_parameters, name=str(source))
    meta: dict[str, Any] = {}
    meta_file = folder / BUNDLE_FILE
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{meta_file}: not valid JSON ({exc})") from exc
    elif folder.name == "final" and (folder.parent / "config.json").is_file():  # a training run's export
        try:
            train = json.loads((folder.parent / "config.json").read_text(encoding="utf-8")).get("train", {})
            meta = {k: train[k] for k in ("task", "data") if k in train}
            meta["preset"] = train.get("preset") or None
        except (OSError, json.JSONDecodeError, AttributeError):
            meta = {}
    networks: dict[str, nn.Module] = {}
    for name, sub in nets.items():
        try:
            class_name = json.loads((sub / CONFIG_NAME).read_text(encoding="utf-8")).get("model_class")
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{sub / CONFIG_NAME}: not valid JSON ({exc})") from exc
        cls = MODEL_CLASSES.get(class_name)
        if cls is None:
            raise ModelFileError(f"{sub / CONFIG_NAME}: unknown model_class {class_name!r}")
        networks[name] = cls.from_pretrained(sub, map_location=map_location)
        if class_name in MODEL_CLASS_TASK:
            meta.setdefault("task", MODEL_CLASS_TASK[class_name])
    if meta.get("task") is None:
        raise ModelFileError(f"{folder}: holds only discriminators ({sorted(networks)}); nothing to run")
    missing = [n for n in TASK_NETWORKS[meta["task"]] if n not in networks]
    if missing:
        raise ModelFileError(f"{folder}: a {meta['task']!r} model needs network folder(s) {missing}, found "
                             f"{sorted(networks)}")
    return LoadedNetworks(networks, folder, meta)


def write_bundle_meta(folder: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write ``bundle.json`` (atomically) next to the network sub-folders of ``folder``."""
    from fashion_gans.data.io import atomic_path

    path = Path(folder) / BUNDLE_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
