"""Hugging Face Hub support for every model: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``.

Built on :class:`huggingface_hub.PyTorchModelHubMixin`.  A saved model is a folder (or Hub repo) with

* ``model.safetensors``: the weights;
* ``config.json``: ``{"model_class": ..., "library": "fashion-gans", "format_version": 1, "config": {...}}``,
  the typed configuration as a dict (see :mod:`fashion_gans.models.config`);
* ``README.md``: a model card stating the task, the training data and its licence, and metrics when given.

Loading differs from the mixin's defaults on purpose: only safetensors is read (the mixin falls back to
unpickling ``pytorch_model.bin``), the state dict is loaded strictly, and the config must name this very
class.  Any problem raises :class:`ModelFileError` naming the file and the mismatch.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData, PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
from torch import nn

from .config import ConfigError, ModelConfig

__all__ = ["ModelFileError", "HubModel", "CONFIG_NAME", "WEIGHTS_NAME", "FORMAT_VERSION", "eval_results",
           "card_front_matter", "TASK_PIPELINE_TAGS"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
LIBRARY_NAME = "fashion-gans"

DEEPFASHION_LICENSE = (
    "DeepFashion is released for non-commercial research purposes only; weights trained on it inherit that "
    "restriction"
)


def eval_results(metrics: dict[str, Any], *, task_type: str | None, dataset_name: str, dataset_type: str | None,
                 split: str = "test") -> list[EvalResult]:
    """The measured ``metrics`` (name -> value) as the Hub's ``model-index`` entries of a model card's metadata:
    one result per finite number, on ``dataset_name`` (``dataset_type``: a short id such as ``synthetic`` or
    ``fashion-mnist``; ``custom`` when not given), held-out ``split``.  Names that are not numbers (a step, a
    note) are left to the card's table."""
    results = []
    for name, value in sorted(metrics.items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        results.append(EvalResult(task_type=task_type or "other", dataset_type=dataset_type or "custom",
                                  dataset_name=dataset_name, dataset_split=split, metric_type=name,
                                  metric_name=name, metric_value=float(value)))
    return results


#: The Hub pipeline tag of each training task's published model.
TASK_PIPELINE_TAGS = {"pose": "image-to-image", "garment": "image-to-image", "style": "image-to-image",
                      "generation": "unconditional-image-generation", "fader": "image-to-image",
                      "icgan": "image-to-image"}


def card_front_matter(*, model_name: str, task: str | None, tags: list[str], metrics: dict[str, Any],
                      dataset_name: str, dataset_type: str | None, library_name: str = LIBRARY_NAME) -> str:
    """The YAML metadata block (``---`` ... ``---``) of a model card for a trained model of ``task``: library,
    tags, pipeline tag, and the held-out ``metrics`` with their values as the ``model-index``
    (:func:`eval_results`).  Used by the cards of a bundle and of a published training run."""
    pipeline_tag = TASK_PIPELINE_TAGS.get(task or "")
    results = eval_results(metrics, task_type=pipeline_tag, dataset_name=dataset_name, dataset_type=dataset_type)
    data = ModelCardData(library_name=library_name, tags=tags, pipeline_tag=pipeline_tag,
                         metrics=sorted(r.metric_type for r in results) or None,
                         model_name=model_name if results else None, eval_results=results or None)
    return f"---\n{data.to_yaml()}\n---\n"


class ModelFileError(ValueError):
    """A saved model (folder or Hub repo) is missing a file or does not match the class (names the file)."""


_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ task }}

Part of **fashion-gans**, a fashion image multi-tool of four GANs re-implementing the diploma thesis
"Using GANs for pose and style selection in fashion design applications" (A. Charisoudis, AUTh, 2021).

- Model class: `fashion_gans.models.{{ model_class }}` ({{ n_params }} parameters)
- Architecture: {{ architecture }}

## Training data

{{ dataset }}

**Data licence:** {{ data_license }}

## Metrics

{{ metrics_table }}

## Usage

```python
from fashion_gans.models import {{ model_class }}

model = {{ model_class }}.from_pretrained("{{ repo_id }}")  # a Hub repo id or a local folder
```

Weights are stored as safetensors; loading never unpickles.

## Configuration

```json
{{ config_json }}
```
"""


class HubModel(nn.Module, PyTorchModelHubMixin, library_name=LIBRARY_NAME, tags=["fashion", "gan"]):
    """Base class of every generator and discriminator.

    Subclasses set ``config_class`` and the model-card class attributes, take ``config`` (a dataclass, a
    dict or None for the class default) as their only constructor argument, and store the validated
    dataclass in ``self.config``.
    """

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    card_task: ClassVar[str] = ""
    card_architecture: ClassVar[str] = ""
    card_dataset: ClassVar[str] = ""
    card_data_license: ClassVar[str] = ""
    card_pipeline_tag: ClassVar[str | None] = None
    # Constructor arguments besides ``config`` (plain JSON values) saved in config.json["init_args"].
    extra_init_args: ClassVar[tuple[str, ...]] = ()

    config: ModelConfig

    @classmethod
    def _coerce_config(cls, config: ModelConfig | dict | None) -> ModelConfig:
        if config is None:
            return cls.config_class()
        if isinstance(config, dict):
            return cls.config_class.from_dict(config)
        if not isinstance(config, cls.config_class):
            raise ConfigError(f"{cls.__name__} needs a {cls.config_class.__name__}, got {type(config).__name__}")
        return config

    # ---------------------------------------------------------------------------------------- saving
    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        save_model(self, str(Path(save_directory) / WEIGHTS_NAME))
        meta = {
            "model_class": type(self).__name__,
            "library": LIBRARY_NAME,
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "init_args": {name: getattr(self, name) for name in self.extra_init_args},
        }
        (Path(save_directory) / CONFIG_NAME).write_text(json.dumps(meta, sort_keys=True, indent=2))

    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | Path,
        *,
        config: dict | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        dataset: str | None = None,
        data_license: str | None = None,
        dataset_type: str | None = None,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """Write model.safetensors, config.json and README.md to ``save_directory``.

        Files are written to a temporary folder first and moved in when complete, so an interrupted save
        leaves no half-written file.  ``metrics`` (name -> value, measured on held-out data), ``dataset``,
        ``dataset_type`` (a short id of the data, e.g. ``synthetic``) and ``data_license`` go into the model
        card: the metrics both as a table and, with their values, as the ``model-index`` of its metadata.
        ``config`` is accepted for API compatibility and ignored: the typed config is always the one saved.
        """
        card_kwargs = dict(model_card_kwargs or {})
        for key, value in (("metrics", metrics), ("dataset", dataset), ("data_license", data_license),
                           ("dataset_type", dataset_type), ("repo_id", repo_id)):
            if value is not None:
                card_kwargs.setdefault(key, value)
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".save-", dir=save_directory))
        try:
            super().save_pretrained(tmp, model_card_kwargs=card_kwargs)
            for item in tmp.iterdir():
                os.replace(item, save_directory / item.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if push_to_hub:
            return self.push_to_hub(repo_id or save_directory.name, model_card_kwargs=card_kwargs,
                                    **push_to_hub_kwargs)
        return None

    def push_to_hub(  # type: ignore[override]
        self,
        repo_id: str,
        *,
        metrics: dict[str, float] | None = None,
        dataset: str | None = None,
        data_license: str | None = None,
        dataset_type: str | None = None,
        model_card_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Upload weights, config and model card to the Hub repo ``repo_id`` (one commit)."""
        card_kwargs = dict(model_card_kwargs or {})
        for key, value in (("metrics", metrics), ("dataset", dataset), ("data_license", data_license),
                           ("dataset_type", dataset_type)):
            if value is not None:
                card_kwargs.setdefault(key, value)
        card_kwargs.setdefault("repo_id", repo_id)
        kwargs.pop("config", None)
        return super().push_to_hub(repo_id, model_card_kwargs=card_kwargs, **kwargs)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """Model card: task, data and its licence, metrics (when given: a table, and the ``model-index`` of
        the metadata with their values), usage and configuration."""
        metrics: dict[str, float] = dict(kwargs.get("metrics") or {})
        dataset = kwargs.get("dataset") or self.card_dataset
        data_license = kwargs.get("data_license") or self.card_data_license
        non_commercial = "non-commercial" in data_license.lower()
        info = self._hub_mixin_info.model_card_data
        title = f"fashion-gans {type(self).__name__}"
        results = eval_results(metrics, task_type=self.card_pipeline_tag, dataset_name=dataset,
                               dataset_type=kwargs.get("dataset_type"))
        card_data = ModelCardData(
            library_name=LIBRARY_NAME,
            license="other" if non_commercial else "mit",
            license_name="non-commercial-research" if non_commercial else None,
            pipeline_tag=self.card_pipeline_tag,
            tags=sorted(set(info.tags or [])),
            metrics=sorted(metrics) or None,
            model_name=(kwargs.get("model_name") or kwargs.get("repo_id") or title) if results else None,
            eval_results=results or None,
        )
        if metrics:
            rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |"
                             for k, v in sorted(metrics.items()))
            metrics_table = "| metric | value |\n|---|---|\n" + rows
        else:
            metrics_table = "No metrics were measured for these weights."
        return ModelCard.from_template(
            card_data,
            template_str=_CARD_TEMPLATE,
            title=title,
            task=self.card_task,
            model_class=type(self).__name__,
            n_params=f"{sum(p.numel() for p in self.parameters()):,}",
            architecture=self.card_architecture,
            dataset=dataset,
            data_license=data_license,
            metrics_table=metrics_table,
            repo_id=kwargs.get("repo_id") or "path/to/model",
            config_json=self.config.to_json(),
        )

    # ---------------------------------------------------------------------------------------- loading
    @classmethod
    def _resolve_file(cls, model_id: str, filename: str, *, revision: str | None, cache_dir: str | Path | None,
                      force_download: bool, token: str | bool | None, local_files_only: bool) -> str:
        if os.path.isdir(model_id):
            path = os.path.join(model_id, filename)
            if not os.path.isfile(path):
                raise ModelFileError(
                    f"{path}: missing (a {cls.__name__} folder needs {CONFIG_NAME} and {WEIGHTS_NAME})"
                )
            return path
        where = f"{model_id}@{revision or 'main'}"
        try:
            return hf_hub_download(repo_id=model_id, filename=filename, revision=revision, cache_dir=cache_dir,
                                   force_download=force_download, token=token, local_files_only=local_files_only)
        except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as e:
            raise ModelFileError(f"{where}/{filename}: cannot be found or downloaded ({type(e).__name__}: {e})") from e

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
        **config_overrides: Any,
    ) -> "HubModel":
        """Load from a local folder or a Hub repo id (``revision``: branch, tag or commit hash).

        ``config_overrides`` change config fields that do not affect the weights' shapes.  The model is
        returned in eval mode.
        """
        model_id = str(pretrained_model_name_or_path)
        common = dict(revision=revision, cache_dir=cache_dir, force_download=force_download, token=token,
                      local_files_only=local_files_only)
        config_file = cls._resolve_file(model_id, CONFIG_NAME, **common)
        try:
            meta = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{config_file}: not valid JSON ({e})") from e
        if not isinstance(meta, dict) or "model_class" not in meta or "config" not in meta:
            raise ModelFileError(f"{config_file}: not a fashion-gans config (needs 'model_class' and 'config')")
        if meta["model_class"] != cls.__name__:
            raise ModelFileError(
                f"{config_file}: holds a {meta['model_class']!r}, cannot load it as {cls.__name__!r}"
            )
        try:
            config = cls.config_class.from_dict({**meta["config"], **config_overrides})
        except (ConfigError, TypeError) as e:
            raise ModelFileError(f"{config_file}: invalid configuration: {e}") from e
        init_args = meta.get("init_args") or {}
        if not isinstance(init_args, dict) or set(init_args) - set(cls.extra_init_args):
            raise ModelFileError(f"{config_file}: unexpected init_args {init_args!r} for {cls.__name__}")
        try:
            model = cls(config=config, **init_args)
        except (ConfigError, ValueError, TypeError) as e:
            raise ModelFileError(f"{config_file}: cannot build {cls.__name__}: {e}") from e

        weights_file = cls._resolve_file(model_id, WEIGHTS_NAME, **common)
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(weights_file, device=str(map_location))
        except (SafetensorError, OSError, RuntimeError) as e:
            raise ModelFileError(f"{weights_file}: not a readable safetensors file ({e})") from e
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                 for k in expected if k in state and state[k].shape != expected[k].shape]
        problems = []
        if wrong:
            problems.append(f"{len(wrong)} tensor(s) with wrong shape ({'; '.join(wrong[:5])})")
        if strict and missing:
            problems.append(f"missing tensor(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if strict and unexpected:
            problems.append(f"unexpected tensor(s) {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if problems:
            raise ModelFileError(f"{weights_file}: does not match {cls.__name__} built from {config_file}: "
                                 + "; ".join(problems))
        model.load_state_dict(state, strict=strict)
        model.to(map_location)
        model.eval()
        return model
