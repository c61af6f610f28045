"""Import a file of ``scripts/`` as a module (the scripts are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(filename: str, module_name: str | None = None) -> ModuleType:
    """``scripts/<filename>`` executed as module ``module_name`` (default: the file's stem), registered in
    ``sys.modules`` first: dataclasses resolve their annotations through the module."""
    path = SCRIPTS / filename
    spec = importlib.util.spec_from_file_location(module_name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
