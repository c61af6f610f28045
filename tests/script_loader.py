"""Import a file of ``scripts/`` as a module (the scripts are not a package)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from fashion_gans.notebook import load_script as _load_script


def load_script(filename: str, module_name: str | None = None) -> ModuleType:
    """``scripts/<filename>`` executed as module ``module_name`` (default: the file's stem), registered in
    ``sys.modules`` first: dataclasses resolve their annotations through the module."""
    stem = Path(filename).stem
    return _load_script(stem, module_name or stem)
