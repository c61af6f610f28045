"""One small task class per model: its losses and update order (see :mod:`.base`)."""

from __future__ import annotations

import importlib

from .base import TASK_REGISTRY, Task, get_task_class, register_task

__all__ = ["Task", "TASK_REGISTRY", "get_task_class", "register_task"]

_TASK_MODULES = ("pose", "garment", "style", "generation", "fader", "icgan")


def _load_all() -> None:
    """Import every task module (each registers its class)."""
    for module in _TASK_MODULES:
        importlib.import_module(f"{__name__}.{module}")
