"""Full training-state checkpoints: one folder per step, complete or absent.

A checkpoint is ``<run>/checkpoints/step-000000123/`` with

* ``models/<role>.safetensors``  every network's weights (safetensors);
* ``optimizers.pt``              every optimiser's state dict;
* ``state.pt``                   global step, data position (epoch, batch within the epoch), schedulers, grad
                                 scaler, task state, and the RNG states of every process (python, numpy,
                                 torch CPU, CUDA);
* ``config.json``                the run's TrainConfig and model config.

The ``.pt`` files hold only tensors and plain Python containers, so they load with
``torch.load(weights_only=True)`` (nothing is unpickled).  A checkpoint is written into a hidden temporary
folder and renamed into place when complete (:func:`fashion_gans.data.io.atomic_directory`); a run killed
while writing leaves at most a hidden ``.step-*.tmp`` folder, which :func:`list_checkpoints` ignores and
:func:`remove_stale` deletes.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fashion_gans.data.io import atomic_directory

from .config import TrainingError

__all__ = [
    "CHECKPOINT_DIR", "Checkpoint", "checkpoint_name", "list_checkpoints", "latest_checkpoint", "save_checkpoint",
    "load_checkpoint", "prune_checkpoints", "remove_stale", "capture_rng_state", "restore_rng_state",
]

CHECKPOINT_DIR = "checkpoints"
_NAME_RE = re.compile(r"^step-(\d{9,})$")
_FORMAT_VERSION = 1


def checkpoint_name(step: int) -> str:
    return f"step-{step:09d}"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints in ``folder`` (a ``checkpoints/`` folder), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _NAME_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def prune_checkpoints(folder: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoints; returns the deleted folders."""
    found = list_checkpoints(folder)
    doomed = found[:-keep] if keep > 0 else found
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def remove_stale(folder: str | Path) -> None:
    """Delete temporary folders left by a run killed while writing a checkpoint."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".step-") and p.name.endswith((".tmp", ".old")):
                shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ RNG states
def capture_rng_state() -> dict[str, Any]:
    """RNG states of this process as tensors / plain Python (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),  # (version, tuple of ints, gauss) — plain Python
        "numpy": {"name": np_state[0], "key": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------------ save / load
@dataclass
class Checkpoint:
    """A loaded checkpoint (weights stay on disk until :meth:`load_models`)."""

    path: Path
    step: int
    epoch: int
    batch_in_epoch: int
    optimizers: dict[str, Any]
    schedulers: dict[str, Any]
    scaler: dict[str, Any] | None
    task: dict[str, Any]
    rng: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)

    def load_models(self, models: dict[str, nn.Module]) -> None:
        """Load every network's weights (strict) into the bare modules ``models``."""
        from safetensors.torch import load_model

        for role, model in models.items():
            file = self.path / "models" / f"{role}.safetensors"
            if not file.is_file():
                raise TrainingError(f"{file}: missing from the checkpoint (networks in it: "
                                    f"{sorted(p.stem for p in (self.path / 'models').glob('*.safetensors'))})")
            try:
                load_model(model, str(file), strict=True, device=str(next(model.parameters()).device))
            except RuntimeError as exc:
                raise TrainingError(f"{file}: does not match the {role} network: {exc}") from exc


def save_checkpoint(
    folder: str | Path,
    step: int,
    *,
    models: dict[str, nn.Module],
    optimizers: dict[str, Any],
    epoch: int,
    batch_in_epoch: int,
    rng: list[dict[str, Any]],
    task: dict[str, Any],
    config: dict[str, Any],
    schedulers: dict[str, Any] | None = None,
    scaler: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``step`` under ``folder`` atomically and return its path.

    ``models`` are bare (unwrapped) modules; ``rng`` is one :func:`capture_rng_state` per process.
    """
    from safetensors.torch import save_model

    path = Path(folder) / checkpoint_name(step)
    with atomic_directory(path, overwrite=True) as tmp:
        (tmp / "models").mkdir()
        for role, model in models.items():
            save_model(model, str(tmp / "models" / f"{role}.safetensors"))
        torch.save({name: opt.state_dict() for name, opt in optimizers.items()}, tmp / "optimizers.pt")
        torch.save({
            "format_version": _FORMAT_VERSION,
            "step": int(step), "epoch": int(epoch), "batch_in_epoch": int(batch_in_epoch),
            "schedulers": {name: s.state_dict() for name, s in (schedulers or {}).items()},
            "scaler": scaler, "task": task, "rng": rng,
        }, tmp / "state.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder (never unpickles: ``weights_only=True``)."""
    path = Path(path)
    for name in ("models", "optimizers.pt", "state.pt", "config.json"):
        if not (path / name).exists():
            raise TrainingError(f"{path}: not a complete checkpoint ({name} is missing)")
    try:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        optimizers = torch.load(path / "optimizers.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or a pickled object we refuse to load
        raise TrainingError(f"{path}: unreadable checkpoint file: {exc}") from exc
    if state.get("format_version") != _FORMAT_VERSION:
        raise TrainingError(f"{path / 'state.pt'}: format_version {state.get('format_version')!r}, "
                            f"expected {_FORMAT_VERSION}")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return Checkpoint(path=path, step=state["step"], epoch=state["epoch"], batch_in_epoch=state["batch_in_epoch"],
                      optimizers=optimizers, schedulers=state["schedulers"], scaler=state["scaler"],
                      task=state["task"], rng=state["rng"], config=config)
