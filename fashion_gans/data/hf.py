"""Hugging Face ``datasets`` conversion: write a dataset as Hub-ready parquet shards, load it back, push it.

Layout written by :func:`write_hf_dataset` (the layout the Hub's dataset viewer and
``datasets.load_dataset(repo_id)`` understand)::

    <path>/
      README.md                                 dataset card; YAML front matter with configs, license,
                                                task categories and the features
      data/<split>-00000-of-0000N.parquet       one or more shards per split

Every source module (``fisb``, ``bags_shoes``, ``fashion_mnist``, ``inshop``, ``lookbook``) defines
``HF_FEATURES`` (a :class:`datasets.Features`) and ``iter_hf_records(...)`` (dicts matching those
features, images as ``uint8`` HWC arrays, stored losslessly as PNG), so that
``scripts/convert_to_hub.py`` converts any of them the same way, and a ``from_hf(...)`` class method on
each dataset class that reads the converted data back into the same item dicts as the original loader.

:func:`load_hf_split` accepts a local directory in that layout or a Hub repo id.  A repo id is resolved
through the local Hub cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``)
with ``huggingface_hub.snapshot_download``, which only needs the plain cache layout
``datasets--<owner>--<name>/snapshots/<commit>/`` plus ``refs/<revision>`` holding the commit hash.
``datasets.load_dataset(repo_id)`` itself cannot do that offline: with ``HF_HUB_OFFLINE=1`` it only
finds datasets it has already prepared into its own Arrow cache and otherwise raises ``ConnectionError``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .io import DataError, atomic_directory

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "write_hf_dataset",
    "load_hf_split",
    "hf_split_files",
    "resolve_hf_path",
    "push_hf_dataset",
    "hub_cache_dir",
    "lazy_hf_features",
]

DEFAULT_SHARD_SIZE = 2000
_SPLIT_RE = re.compile(r"^\w+(?:[-.]\w+)*$")
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TRUTHY = {"1", "true", "yes", "on"}


def lazy_hf_features(module_name: str, build):
    """A module-level ``__getattr__`` that builds the module's ``HF_FEATURES`` with ``build()`` on first access,
    so that importing a dataset module does not import `datasets`."""

    def __getattr__(name: str) -> Any:
        if name == "HF_FEATURES":
            return build()
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__


# --------------------------------------------------------------------------------------------- writing


def _front_matter(
    split_names: list[str],
    features,
    license: str,
    task_categories: Iterable[str],
    pretty_name: str | None,
    tags: Iterable[str],
    split_sizes: Mapping[str, int],
) -> str:
    import yaml

    meta: dict[str, Any] = {"license": license}
    task_categories = list(task_categories)
    if task_categories:
        meta["task_categories"] = task_categories
    tags = list(tags)
    if tags:
        meta["tags"] = tags
    if pretty_name:
        meta["pretty_name"] = pretty_name
    meta["configs"] = [
        {
            "config_name": "default",
            "data_files": [{"split": s, "path": f"data/{s}-*"} for s in split_names],
        }
    ]
    meta["dataset_info"] = {
        "features": features._to_yaml_list(),
        "splits": [{"name": s, "num_examples": int(split_sizes[s])} for s in split_names],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _write_shard(rows: list[dict], features, path: Path) -> None:
    import datasets

    columns = {name: [row[name] for row in rows] for name in features}
    try:
        ds = datasets.Dataset.from_dict(columns, features=features)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file it was meant for
        raise DataError(f"{path}: records do not match the features ({exc.__class__.__name__}: {exc})") from exc
    with _quiet_progress():
        ds.to_parquet(str(path))


@contextlib.contextmanager
def _quiet_progress():
    """Silence ``datasets`` progress bars for the duration of a call, restoring the previous state."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def write_hf_dataset(
    path: str | os.PathLike,
    splits: Mapping[str, Iterable[dict]],
    features,
    card: str,
    shard_size: int = DEFAULT_SHARD_SIZE,
    *,
    license: str = "other",
    task_categories: Iterable[str] = (),
    pretty_name: str | None = None,
    tags: Iterable[str] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``splits`` (split name -> iterable of records) as parquet shards plus a dataset card.

    ``features`` is a :class:`datasets.Features`; every record must have exactly its keys (extra keys
    are an error, so that nothing is silently dropped).  ``card`` is the Markdown body of the dataset
    card; the YAML front matter (configs, license, task categories, features, split sizes) is generated.
    The whole directory is built in a temporary directory next to ``path`` and renamed onto it, so an
    interrupted conversion leaves nothing behind.  An existing ``path`` is replaced only with
    ``overwrite=True``.
    """
    path = Path(path)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if not splits:
        raise ValueError("no splits given")
    for name in splits:
        if not _SPLIT_RE.match(name):
            raise ValueError(f"invalid split name {name!r} (letters, digits, '_' only)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace it)")
    if card.lstrip().startswith("---"):
        raise ValueError("card must be the Markdown body only; the YAML front matter is generated")

    expected = set(features)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        data_dir = tmp / "data"
        data_dir.mkdir()
        split_sizes: dict[str, int] = {}
        for split, records in splits.items():
            shard_paths: list[Path] = []
            rows: list[dict] = []
            count = 0

            def flush() -> None:
                shard = data_dir / f"{split}-{len(shard_paths):05d}.partial.parquet"
                _write_shard(rows, features, shard)
                shard_paths.append(shard)
                rows.clear()

            for record in records:
                keys = set(record)
                if keys != expected:
                    raise DataError(
                        f"{path}: split {split!r} record {count} has keys {sorted(keys)}, "
                        f"features expect {sorted(expected)}"
                    )
                rows.append(record)
                count += 1
                if len(rows) >= shard_size:
                    flush()
            if rows or not shard_paths:
                flush()
            n = len(shard_paths)
            for i, shard in enumerate(shard_paths):
                shard.rename(data_dir / f"{split}-{i:05d}-of-{n:05d}.parquet")
            split_sizes[split] = count

        readme = _front_matter(
            list(splits), features, license, task_categories, pretty_name, tags, split_sizes
        ) + "\n" + card.strip() + "\n"
        (tmp / "README.md").write_text(readme, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------- reading


def hub_cache_dir() -> Path:
    """The Hub cache directory, read from the environment at call time (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY


def resolve_hf_path(repo_id_or_path: str | os.PathLike, revision: str | None = None, token: str | None = None) -> Path:
    """A local dataset directory, or the snapshot directory of a Hub dataset repo.

    With ``HF_HUB_OFFLINE=1`` (as in tests and CI) a repo id must already be in the local Hub cache.
    """
    local = Path(repo_id_or_path).expanduser()
    if local.is_dir():
        return local
    repo_id = str(repo_id_or_path)
    if not _REPO_ID_RE.match(repo_id):
        raise DataError(f"{repo_id}: not a directory and not a Hub repo id of the form 'owner/name'")
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir()
    offline = _offline()
    try:
        snapshot = snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            cache_dir=str(cache),
            local_files_only=offline,
            token=token,
        )
    except Exception as exc:  # noqa: BLE001 - every failure here means "not available"
        where = cache / f"datasets--{repo_id.replace('/', '--')}"
        hint = (
            f"offline (HF_HUB_OFFLINE=1) and not in the local Hub cache; expected {where}/refs/"
            f"{revision or 'main'} and {where}/snapshots/<commit>/"
            if offline
            else "could not be downloaded"
        )
        raise DataError(f"{repo_id}: dataset repo {hint} ({exc.__class__.__name__}: {exc})") from exc
    return Path(snapshot)


def _card_split_patterns(root: Path) -> dict[str, list[str]]:
    """Split -> glob patterns from the README's ``configs`` (default config); empty if none."""
    readme = root / "README.md"
    if not readme.is_file():
        return {}
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        raise DataError(f"{readme}: YAML front matter is not closed with '---'")
    import yaml

    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{readme}: invalid YAML front matter ({exc})") from exc
    configs = meta.get("configs") or []
    config = next((c for c in configs if c.get("config_name", "default") == "default"), configs[0] if configs else None)
    if not config:
        return {}
    data_files = config.get("data_files") or []
    out: dict[str, list[str]] = {}
    if isinstance(data_files, list):
        for entry in data_files:
            paths = entry.get("path", [])
            out[str(entry.get("split", "train"))] = [paths] if isinstance(paths, str) else list(paths)
    return out


def hf_split_files(root: str | os.PathLike) -> dict[str, list[Path]]:
    """Split name -> sorted parquet files of a dataset directory (README ``configs`` first, else ``data/``)."""
    root = Path(root)
    patterns = _card_split_patterns(root)
    out: dict[str, list[Path]] = {}
    if patterns:
        for split, globs in patterns.items():
            files = sorted({p for g in globs for p in root.glob(g) if p.is_file()})
            out[split] = files
        return out
    for f in sorted((root / "data").glob("*.parquet")):
        split = re.sub(r"-\d{5}-of-\d{5}$", "", f.stem)
        out.setdefault(split, []).append(f)
    return out


def _check_parquet(files: list[Path]) -> None:
    import pyarrow.parquet as pq

    for f in files:
        try:
            pq.ParquetFile(f).metadata  # noqa: B018 - reading the footer is the check
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{f}: not a readable parquet file ({exc.__class__.__name__}: {exc})") from exc


def load_hf_split(
    repo_id_or_path: str | os.PathLike,
    split: str,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    token: str | None = None,
    required_columns: Iterable[str] | None = None,
):
    """Load one split as a :class:`datasets.Dataset` from a local directory or a Hub repo id.

    ``cache_dir`` is the ``datasets`` Arrow cache (default: its own).  ``required_columns`` (names, or a
    :class:`datasets.Features`) are the columns the caller reads: a split without one of them is not the
    dataset the caller expects.  A missing split, an empty split, a corrupt shard or missing columns
    raise :class:`DataError` naming the repo or directory (and the columns missing and found).
    """
    import datasets

    root = resolve_hf_path(repo_id_or_path, revision=revision, token=token)
    split_files = hf_split_files(root)
    if not split_files:
        raise DataError(f"{root}: no parquet data (expected README.md configs or data/<split>-*.parquet)")
    if split not in split_files:
        raise DataError(f"{root}: no split {split!r}; available splits: {sorted(split_files)}")
    files = split_files[split]
    if not files:
        raise DataError(f"{root}: split {split!r} has no parquet files")
    _check_parquet(files)
    try:
        with _quiet_progress():
            ds = datasets.load_dataset(
                "parquet",
                data_files={split: [str(f) for f in files]},
                split=split,
                cache_dir=None if cache_dir is None else str(cache_dir),
            )
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{root}: could not load split {split!r} ({exc.__class__.__name__}: {exc})") from exc
    if required_columns is not None:
        missing = [c for c in required_columns if c not in ds.column_names]
        if missing:
            name = repo_id_or_path if str(repo_id_or_path) == str(root) else f"{repo_id_or_path} ({root})"
            raise DataError(f"{name}: split {split!r} lacks the columns {missing}; columns found: "
                            f"{sorted(ds.column_names)} (not the dataset this loader reads)")
    return ds


# --------------------------------------------------------------------------------------------- pushing


def push_hf_dataset(
    path: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    *,
    commit_message: str | None = None,
    api=None,
) -> str:
    """Upload a directory written by :func:`write_hf_dataset` to the dataset repo ``repo_id``.

    The directory is checked first (card present, every split's shards readable), so nothing broken is
    pushed.  Returns the commit URL.  ``api`` is an ``huggingface_hub.HfApi`` (one is made from ``token``).
    """
    path = Path(path)
    if not (path / "README.md").is_file():
        raise DataError(f"{path}: README.md dataset card missing; write the dataset with write_hf_dataset first")
    split_files = hf_split_files(path)
    if not split_files or not any(split_files.values()):
        raise DataError(f"{path}: no parquet shards under data/")
    for files in split_files.values():
        _check_parquet(files)
    if not _REPO_ID_RE.match(repo_id):
        raise ValueError(f"invalid repo id {repo_id!r} (expected 'owner/name')")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(path),
        repo_type="dataset",
        commit_message=commit_message or f"Upload {path.name}",
        allow_patterns=["README.md", "data/*.parquet", "*.json"],
    )
    return str(getattr(info, "commit_url", info))
