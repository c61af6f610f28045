"""Which models the demo offers, and which model names a visitor may type.

The model box of every tab lists the bundled models of that tool (:func:`~fashion_gans.models.sources.list_bundled`)
plus any named folders the app was started with.  A visitor may also type a Hub repo id (``user/name``, optionally
``@revision``); a typed **local path** is accepted only inside the folders the operator allowed (``model_roots``),
so nothing a visitor sends makes the server read an arbitrary folder.

A tab is one *tool*; most tools run models of one training task, but attribute editing (tool ``edit``) runs both
Fader Networks (task ``fader``) and IcGAN (task ``icgan``) models: :data:`TOOL_TASKS`.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from fashion_gans.models.sources import (BUNDLE_FILE, BUNDLED_DIR, MODEL_CLASS_TASK, TASK_NETWORKS, list_bundled,
                                        resolve_source)

__all__ = ["ModelEntry", "ModelRegistry", "ModelChoiceError", "model_task", "parse_model_specs", "DEFAULT_BUNDLED",
           "MODELS_ENV", "MAX_MODEL_PARAMETERS", "TOOL_TASKS", "tool_tasks", "tool_title", "model_attributes"]

#: Environment variable with extra demo models: ``name=path[,name=path...]`` or a JSON object.
MODELS_ENV = "FASHION_GANS_DEMO_MODELS"
#: The preferred bundled model of each tool, when shipped.
DEFAULT_BUNDLED = {"pose": ("pose-synthetic",), "garment": ("garment-synthetic",),
                   "style": ("style-synthetic", "style-fmnist"),
                   "generation": ("generation-synthetic", "generation-fmnist"),
                   "edit": ("fader-synthetic", "icgan-synthetic")}
#: Tools whose tab runs models of several training tasks (one pipeline serves them all).
TOOL_TASKS = {"edit": ("fader", "icgan")}
_TOOL_TITLES = {"edit": "attribute editing"}
#: The network whose config holds an attribute-editing model's ``attributes``.
_ATTRIBUTE_NETWORKS = ("fader", "generator")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(@[A-Za-z0-9_./-]{1,100})?$")
#: Hub models larger than this are refused before their weights are downloaded.
MAX_MODEL_PARAMETERS = 50_000_000


class ModelChoiceError(ValueError):
    """A model name typed into the demo is not offered, not allowed, or not found."""


def tool_tasks(tool: str) -> tuple[str, ...]:
    """The training tasks whose models a tool's tab runs (``"edit"`` -> ``("fader", "icgan")``, ``"pose"`` ->
    ``("pose",)``)."""
    return TOOL_TASKS.get(tool, (tool,))


def tool_title(tool: str) -> str:
    """A tool or task in words, as visitors read it in messages."""
    from fashion_gans.pipelines.base import TASK_TITLES

    return _TOOL_TITLES.get(tool) or TASK_TITLES.get(tool, tool)


def _a(words: str) -> str:
    return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"


def model_attributes(folder: str | os.PathLike) -> dict[str, list[str]] | None:
    """The editable attributes (name -> values) of an attribute-editing model folder (or its training run's
    ``final/``), read from the network's ``config.json`` without loading weights; None when there is none (another
    tool's model, a run with only checkpoints, a broken folder)."""
    from fashion_gans.models import MODEL_CLASSES

    path = Path(folder)
    for base in (path, path / "final"):
        for name in _ATTRIBUTE_NETWORKS:
            try:
                meta = json.loads((base / name / "config.json").read_text(encoding="utf-8"))
                cls = MODEL_CLASSES[meta["model_class"]]
                if MODEL_CLASS_TASK.get(meta["model_class"]) not in TOOL_TASKS["edit"]:
                    continue
                attributes = cls.config_class.from_dict(meta["config"]).attributes
                return {str(k): [str(v) for v in values] for k, values in attributes.items()}
            except Exception:  # noqa: BLE001 - unknown here; loading the model tells what is wrong
                continue
    return None


def model_task(folder: str | os.PathLike) -> str | None:
    """The task of a model folder from its ``bundle.json`` or its networks' ``config.json``, or of a training run or
    checkpoint folder from its ``config.json`` (no weights read)."""
    path = Path(folder)
    for base in (path, path / "final"):
        meta = base / BUNDLE_FILE
        if meta.is_file():
            try:
                task = json.loads(meta.read_text(encoding="utf-8")).get("task")
                if task:
                    return str(task)
            except (OSError, ValueError, AttributeError):
                pass
        if base.is_dir():
            for cfg in sorted(base.glob("*/config.json")):
                try:
                    task = MODEL_CLASS_TASK.get(json.loads(cfg.read_text(encoding="utf-8")).get("model_class"))
                except (OSError, ValueError, AttributeError):
                    continue
                if task:
                    return task
    try:  # a training run with only checkpoints/, or a checkpoint folder: the task it was trained for
        task = json.loads((path / "config.json").read_text(encoding="utf-8"))["train"]["task"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(task) if task in TASK_NETWORKS else None


def parse_model_specs(text: str | None) -> dict[str, str]:
    """``"a=/path,b=/other"`` or ``'{"a": "/path"}'`` -> ``{name: path}``."""
    if not text or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{MODELS_ENV}: expected a JSON object of name -> folder")
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, path = part.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"model spec {part!r}: expected name=folder")
        out[name.strip()] = path.strip()
    return out


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str
    task: str
    bundled: bool


class ModelRegistry:
    """Bundled models + operator-named folders, and the rules for what a visitor may type."""

    def __init__(self, models: dict[str, str | os.PathLike] | None = None, *,
                 model_roots: list[str | os.PathLike] | None = None, allow_hub: bool = True,
                 include_bundled: bool = True, max_parameters: int | None = MAX_MODEL_PARAMETERS) -> None:
        self.entries: dict[str, ModelEntry] = {}
        self.max_parameters = max_parameters
        self._hub_paths: dict[tuple[str, str | None], str] = {}  # resolved Hub snapshots (one download per repo)
        self._hub_lock = threading.Lock()
        if include_bundled:
            for name in list_bundled():
                task = model_task(BUNDLED_DIR / name)
                if task:
                    # The full path, so a folder named like a bundled model in the working directory is never used.
                    self.entries[name] = ModelEntry(name, str(BUNDLED_DIR / name), task, True)
        for name, folder in (models or {}).items():
            task = model_task(folder)
            if task is None:
                raise ValueError(f"demo model {name!r}: {folder} holds no model (no bundle.json, no network "
                                 "folders with config.json)")
            self.entries[name] = ModelEntry(name, str(Path(folder).expanduser().resolve()), task, False)
        self.model_roots = [Path(r).expanduser().resolve() for r in (model_roots or [])]
        self.allow_hub = allow_hub

    def names(self, task: str) -> list[str]:
        """The offered models of a tool (``task``: a tool of :data:`TOOL_TASKS` or a training task)."""
        tasks = tool_tasks(task)
        return [e.name for e in self.entries.values() if e.task in tasks]

    def default(self, task: str) -> str | None:
        names = self.names(task)
        for preferred in DEFAULT_BUNDLED.get(task, ()):
            if preferred in names:
                return preferred
        return names[0] if names else None

    def resolve(self, text: str | None, task: str) -> tuple[str, str | None]:
        """A visitor's model choice -> ``(source for load_networks, revision)``; raises :class:`ModelChoiceError`."""
        name = (text or "").strip()
        title = tool_title(task)
        if not name:
            default = self.default(task)
            if default is None:
                hint = (" Type a Hub repo id (user/name) of a trained model into the model box." if self.allow_hub
                        else "")
                raise ModelChoiceError(f"No {title} model is available: none is bundled with this installation.{hint}")
            name = default
        entry = self.entries.get(name)
        if entry is not None:
            if entry.task not in tool_tasks(task):
                raise ModelChoiceError(f"model {name!r} is {_a(tool_title(entry.task))} model, not {_a(title)} "
                                       f"model; choose one of: {', '.join(self.names(task)) or 'none'}")
            return entry.source, None
        if name.startswith(("/", "~", ".")) or os.sep in name.strip("/") and not _REPO_ID.match(name):
            return self._local(name, task), None
        if _REPO_ID.match(name) and ".." not in name:
            if not self.allow_hub:
                raise ModelChoiceError(f"{name!r}: loading models from the Hub is switched off in this demo")
            repo, _, revision = name.partition("@")
            return self._snapshot(repo, revision or None), revision or None
        raise ModelChoiceError(f"{name!r}: not a model of this demo ({', '.join(self.names(task)) or 'none'}) "
                               "and not a Hub repo id (user/name)")

    def _local(self, name: str, task: str) -> str:
        path = Path(name).expanduser()
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            resolved = None
        allowed = resolved is not None and any(resolved == r or r in resolved.parents for r in self.model_roots)
        if not allowed:
            raise ModelChoiceError(f"{name!r}: local folders are accepted only inside the model folders this demo "
                                   "was started with (app.py --model-root DIR); use a listed model or a Hub repo id")
        return str(resolved)

    def _snapshot(self, repo: str, revision: str | None) -> str:
        from fashion_gans.models.hub import ModelFileError

        key = (repo, revision)
        with self._hub_lock:
            if key in self._hub_paths:
                return self._hub_paths[key]
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        try:
            path = str(resolve_source(repo, revision=revision, local_files_only=offline,
                                      max_parameters=self.max_parameters))
        except ModelFileError as exc:
            if "parameters is more than" in str(exc):
                raise ModelChoiceError(str(exc)) from exc
            hint = " (the demo runs offline: only models already in the Hub cache can be used)" if offline else ""
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "ModelFileError"
            raise ModelChoiceError(f"Hub model {repo}@{revision or 'main'} cannot be found or downloaded{hint}: "
                                   f"{cause}") from exc
        with self._hub_lock:
            if len(self._hub_paths) >= 256:
                self._hub_paths.pop(next(iter(self._hub_paths)))
            self._hub_paths[key] = path
        return path
