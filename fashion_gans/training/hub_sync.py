"""Background upload of a training run to a Hugging Face Hub model repo, resume from it, and publishing.

Repo layout (the same for a Hub repo and a ``file:`` folder)::

    checkpoints/step-*/    full training state, the newest ``keep_checkpoints`` (uploaded with logs/)
    logs/                  scalars.jsonl and tracker files, as of the newest checkpoint
    samples/step-*.png     sample grids
    final/<name>/          exported networks with model cards; plots/; config.json; final_metrics.json; README.md

:class:`HubSync` owns one worker thread and a queue.  :meth:`HubSync.upload` snapshots a folder or file
(hard links, so a checkpoint pruned locally meanwhile still uploads whole; files that are still being appended
to, the logs, are copied) and returns at once; the thread calls ``HfApi.upload_folder`` / ``upload_file``.
:meth:`HubSync.upload_checkpoint` sends a checkpoint and the logs in one commit.  An upload failure never stops
training: it is reported as a warning and kept in :attr:`HubSync.errors`.  :func:`download_latest_checkpoint`
fetches the newest ``checkpoints/step-*`` folder of the repo (and ``logs/``), so that a fresh machine resumes
where the last one stopped.  :func:`publish_run` uploads a finished run (``final/`` with model cards, plots,
metrics and a repo README).

``file:/some/folder`` (also ``file:///abs`` or ``file:relative``) names a local folder standing in for a repo:
:class:`LocalFolderApi` implements the few ``HfApi`` methods used here on it, with the same layout, writing every
new folder atomically (a checkpoint appears complete or not at all) and every file by rename.  Use it to try the
Hub workflow offline (``--hub-repo file:/tmp/hub``, then ``--resume latest`` in a new, empty output folder), or
to keep the run on a mounted drive.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

__all__ = ["HubSync", "LocalFolderApi", "hub_api_for", "download_latest_checkpoint", "list_hub_checkpoints",
           "publish_run"]

_CKPT_RE = re.compile(r"^checkpoints/(step-\d{9,})/")


def hub_api_for(repo_id: str) -> Any:
    """The API object for ``repo_id``: :class:`LocalFolderApi` for ``file:`` repos, else ``huggingface_hub.HfApi``."""
    if repo_id.startswith("file:"):
        return LocalFolderApi()
    from huggingface_hub import HfApi

    return HfApi()


def _copy_file_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _merge_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` onto ``dst``: a folder ``dst`` lacks appears in one rename; existing files are replaced by
    rename; files only in ``dst`` stay (as an upload to the Hub leaves other files alone).  An existing checkpoint
    folder (``checkpoints/step-*``) is replaced whole in one rename: never half-replaced, no stale files left."""
    if src.is_file():
        _copy_file_atomic(src, dst)
        return
    if dst.is_dir() and dst.parent.name == "checkpoints" and _CKPT_RE.match(f"checkpoints/{dst.name}/"):
        from fashion_gans.data.io import atomic_directory

        with atomic_directory(dst, overwrite=True) as tmp:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
        return
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
        try:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
            os.replace(tmp, dst)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    for child in sorted(src.iterdir()):
        _merge_tree(child, dst / child.name)


class LocalFolderApi:
    """The ``HfApi`` methods the training kit uses, on a local folder named by a ``file:`` repo id.

    ``private`` and commit messages are accepted and ignored.  Hidden entries (names starting with ``.``: the
    temporary files and folders of an unfinished write) are never listed or downloaded.
    """

    @staticmethod
    def folder(repo_id: str) -> Path:
        from .config import hub_folder

        path = hub_folder(repo_id)
        if path is None or not path.strip():
            raise ValueError(f"{repo_id!r} is not a file: repo (expected file:/some/folder)")
        return Path(path).expanduser()

    def create_repo(self, repo_id: str, private: bool = True, exist_ok: bool = True, **_: Any) -> str:
        folder = self.folder(repo_id)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder}: exists and is not a folder")
        if folder.is_dir() and not exist_ok:
            raise FileExistsError(f"{folder}: already exists")
        folder.mkdir(parents=True, exist_ok=True)
        return repo_id

    def upload_folder(self, *, repo_id: str, folder_path: str, path_in_repo: str | None = None,
                      commit_message: str = "", **_: Any) -> str:
        root = self.folder(repo_id)
        src = Path(folder_path)
        target = root / path_in_repo if path_in_repo else root
        for child in sorted(src.iterdir()):
            _merge_tree(child, target / child.name)
        return str(target)

    def upload_file(self, *, path_or_fileobj: str, path_in_repo: str, repo_id: str, commit_message: str = "",
                    **_: Any) -> str:
        dst = self.folder(repo_id) / path_in_repo
        _copy_file_atomic(Path(path_or_fileobj), dst)
        return str(dst)

    def delete_folder(self, *, path_in_repo: str, repo_id: str, commit_message: str = "", **_: Any) -> None:
        target = self.folder(repo_id) / path_in_repo
        if not target.is_dir():
            raise FileNotFoundError(f"{target}: no such folder in the repo")
        doomed = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, doomed / target.name)  # gone from the listing in one rename
        shutil.rmtree(doomed, ignore_errors=True)

    def list_repo_files(self, repo_id: str, **_: Any) -> list[str]:
        root = self.folder(repo_id)
        if not root.exists():
            return []  # a repo not created yet is empty (the first upload creates it)
        if not root.is_dir():
            raise NotADirectoryError(f"{root}: is not a folder (file: repo {repo_id!r})")
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(root)
            out += [(rel / f).as_posix() for f in filenames if not f.startswith(".")]
        return sorted(out)

    def snapshot_download(self, *, repo_id: str, allow_patterns: list[str] | None = None,
                          local_dir: str | None = None, **_: Any) -> str:
        import fnmatch

        root = self.folder(repo_id)
        if local_dir is None:
            return str(root)
        for name in self.list_repo_files(repo_id):
            if allow_patterns is None or any(fnmatch.fnmatch(name, pat) for pat in allow_patterns):
                _copy_file_atomic(root / name, Path(local_dir) / name)
        return str(local_dir)


def _default_api():
    from huggingface_hub import HfApi

    return HfApi()


def _snapshot(src: Path, dst: Path, copy: bool = False) -> None:
    """Copy ``src`` (file or folder) to ``dst`` with hard links where possible (``copy``: always copy, for files
    that are still being written to)."""

    def link(a, b):
        if copy:
            shutil.copy2(a, b)
            return
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if src.is_dir():
        shutil.copytree(src, dst, copy_function=link)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        link(src, dst)


class HubSync:
    """Uploads to ``repo_id`` in a background thread (``api``: an ``HfApi`` or an object with the same
    ``create_repo`` / ``upload_folder`` / ``upload_file`` / ``delete_folder`` methods).

    The repo is created (or found) here, synchronously, so a target that cannot work (bad id, no access, a
    ``file:`` path that is a file) fails at once with the API's exception instead of as a warning later."""

    def __init__(self, repo_id: str, *, private: bool = True, api: Any = None, keep_checkpoints: int = 0) -> None:
        self.repo_id = repo_id
        self.private = private
        self.api = api if api is not None else hub_api_for(repo_id)
        self.api.create_repo(repo_id, private=private, exist_ok=True)
        self.keep_checkpoints = keep_checkpoints
        self.errors: list[str] = []
        self.uploaded: list[str] = []
        self._staging = Path(tempfile.mkdtemp(prefix="fashion-gans-hub-"))
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="hub-sync", daemon=True)
        self._repo_ready = True
        self._counter = 0
        self._thread.start()

    # ------------------------------------------------------------------------------------------------ public
    def upload(self, local: str | Path, path_in_repo: str, message: str | None = None, *, copy: bool = False) -> None:
        """Queue ``local`` (a file or folder) for upload to ``path_in_repo``; returns immediately.  ``copy``
        snapshots by copying instead of hard links (for files that may still be appended to, such as logs)."""
        local = Path(local)
        self._counter += 1
        snap = self._staging / f"{self._counter:06d}" / local.name
        _snapshot(local, snap, copy=copy)
        self._queue.put((snap, path_in_repo, message or f"Upload {path_in_repo}"))

    def upload_checkpoint(self, checkpoint: str | Path, logs: str | Path | None = None,
                          message: str | None = None) -> None:
        """Queue checkpoint folder ``checkpoint`` (-> ``checkpoints/<name>/``) and the ``logs`` folder (-> ``logs/``,
        copied now, so it matches the checkpoint) as one commit; older Hub checkpoints are pruned after it."""
        checkpoint = Path(checkpoint)
        self._counter += 1
        stage = self._staging / f"{self._counter:06d}" / "commit"
        _snapshot(checkpoint, stage / "checkpoints" / checkpoint.name)
        if logs is not None and Path(logs).is_dir():
            _snapshot(Path(logs), stage / "logs", copy=True)
        self._queue.put((stage, "", message or f"Upload checkpoints/{checkpoint.name}"))

    def wait(self) -> None:
        """Block until every queued upload is done (or failed)."""
        self._queue.join()

    def close(self) -> None:
        self.wait()
        self._queue.put(None)
        self._thread.join(timeout=60)
        shutil.rmtree(self._staging, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------ worker
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                snap, path_in_repo, message = job
                try:
                    self._upload(snap, path_in_repo, message)
                    self.uploaded.append(path_in_repo)
                except Exception as exc:  # network / auth problems must not stop training
                    what = path_in_repo or message
                    text = f"upload of {what} to {self.repo_id} failed: {type(exc).__name__}: {exc}"
                    self.errors.append(text)
                    warnings.warn(text, RuntimeWarning, stacklevel=1)
                finally:
                    shutil.rmtree(snap.parent, ignore_errors=True)
            finally:
                self._queue.task_done()

    def _upload(self, snap: Path, path_in_repo: str, message: str) -> None:
        if not self._repo_ready:
            self.api.create_repo(self.repo_id, private=self.private, exist_ok=True)
            self._repo_ready = True
        if snap.is_dir():
            self.api.upload_folder(repo_id=self.repo_id, folder_path=str(snap), path_in_repo=path_in_repo or None,
                                   commit_message=message)
        else:
            self.api.upload_file(path_or_fileobj=str(snap), path_in_repo=path_in_repo, repo_id=self.repo_id,
                                 commit_message=message)
        is_checkpoint = _CKPT_RE.match(path_in_repo.rstrip("/") + "/") or (
            not path_in_repo and (snap / "checkpoints").is_dir())
        if self.keep_checkpoints and is_checkpoint:
            names = list_hub_checkpoints(self.repo_id, api=self.api)
            for name in names[:-self.keep_checkpoints]:
                self.api.delete_folder(path_in_repo=f"checkpoints/{name}", repo_id=self.repo_id,
                                       commit_message=f"Prune checkpoints/{name}")


def list_hub_checkpoints(repo_id: str, *, api: Any = None) -> list[str]:
    """Names of the repo's complete checkpoint folders (``step-*`` holding ``state.pt``), oldest first."""
    api = api if api is not None else hub_api_for(repo_id)
    files = api.list_repo_files(repo_id)
    names = {m.group(1) for f in files if (m := _CKPT_RE.match(f)) and f.endswith("/state.pt")}
    return sorted(names)


def download_latest_checkpoint(repo_id: str, local_checkpoints: str | Path, *, api: Any = None,
                               logs_to: str | Path | None = None) -> Path | None:
    """Download the repo's newest checkpoint into ``local_checkpoints/step-*`` (atomically); None if none.

    With ``logs_to`` and no ``scalars.jsonl`` there yet, the repo's ``logs/`` are downloaded there too (the
    trainer then drops records past the checkpoint), so the plots of a resumed run cover the whole run.
    """
    from fashion_gans.data.io import atomic_directory

    api = api if api is not None else hub_api_for(repo_id)
    names = list_hub_checkpoints(repo_id, api=api)
    if not names:
        return None
    name = names[-1]
    target = Path(local_checkpoints) / name
    want_logs = logs_to is not None and not (Path(logs_to) / "scalars.jsonl").is_file()
    if target.is_dir() and not want_logs:
        return target
    patterns = [f"checkpoints/{name}/*"] + (["logs/*"] if want_logs else [])
    with tempfile.TemporaryDirectory() as download:
        api.snapshot_download(repo_id=repo_id, allow_patterns=patterns, local_dir=download)
        if not target.is_dir():
            with atomic_directory(target) as tmp:
                shutil.copytree(Path(download) / "checkpoints" / name, tmp, dirs_exist_ok=True)
        if want_logs and (Path(download) / "logs").is_dir():
            Path(logs_to).mkdir(parents=True, exist_ok=True)
            for child in sorted((Path(download) / "logs").iterdir()):
                _merge_tree(child, Path(logs_to) / child.name)
    return target


_TASK_TITLES = {"pose": "pose transfer (PGPG)", "garment": "garment extraction (PixelDTGAN)",
                "style": "shoes <-> handbags style matching (CycleGAN)",
                "generation": "fashion image generation (StyleGAN)"}


def _dataset_type(train: dict) -> str | None:
    """The model-index dataset type of a run's ``data``: ``synthetic`` / ``fashion-mnist``, the Hub dataset of
    ``hf:REPO``, or None (``custom``) for a local folder, whose path names this machine, not a dataset."""
    from .data import data_kind

    kind, location = data_kind(str(train.get("data") or ""))
    if kind in ("synthetic", "fashion-mnist"):
        return kind
    return location if kind == "hf" and not Path(location).exists() else None


def _run_card(run: Path, repo_id: str, networks: list[str], sample: Path | None) -> str:
    """README.md of a published run: what was trained, on what, the held-out metrics (also as the metadata's
    ``model-index``) and how to load it."""
    import json

    from ..models.hub import card_front_matter

    config = json.loads((run / "config.json").read_text(encoding="utf-8")) if (run / "config.json").is_file() else {}
    train, model = config.get("train", {}), config.get("model", {})
    metrics = {}
    if (run / "final_metrics.json").is_file():
        metrics = json.loads((run / "final_metrics.json").read_text(encoding="utf-8"))
    task = train.get("task", "")
    family = model.get("family", "")
    name = Path(repo_id).name if repo_id.startswith("file:") else repo_id.split("/")[-1]
    tags = ["gan", "fashion", "fashion-gans"] + ([family] if family else [])
    front = card_front_matter(model_name=name, task=task, tags=tags,
                              metrics={k: v for k, v in metrics.items() if k != "step"},
                              dataset_name=str(train.get("data") or "unknown"), dataset_type=_dataset_type(train))
    lines = [front, f"# {name}", ""]
    lines += [f"A {_TASK_TITLES.get(task, task or 'GAN')} model trained with the fashion-gans training kit "
              f"(`scripts/train.py`).", ""]
    lines += ["| | |", "|---|---|"]
    preset = config.get("preset") or train.get("preset") or "(task default)"  # top level: the resolved name
    for label, value in (("task", task), ("preset", preset),
                         ("data", train.get("data")), ("steps", metrics.get("step", train.get("max_steps"))),
                         ("batch size per process", train.get("batch_size")),
                         ("processes", config.get("num_processes")),
                         ("mixed precision", train.get("mixed_precision")),
                         ("LR schedule", train.get("lr_schedule")), ("seed", train.get("seed"))):
        if value not in (None, ""):
            lines.append(f"| {label} | `{value}` |")
    lines += ["", "## Networks", ""]
    lines += [f"- `final/{name}/` (safetensors + config.json + model card)" for name in networks]
    if metrics:
        lines += ["", f"## Held-out metrics (step {metrics.get('step', '?')})", "", "| metric | value |",
                  "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())
                  if k != "step" and isinstance(v, (int, float))]
        lines += ["", "The metrics are the task's own held-out measures (see `fashion_gans/training/tasks/`); "
                  "they are not the Inception FID of the literature."]
    lines += ["", "## Use", "", "```python", "from fashion_gans.models.sources import load_networks", "",
              f"loaded = load_networks({repo_id!r})", "networks = loaded.networks  # " + ", ".join(networks),
              "```", ""]
    if sample is not None:
        lines += ["## Samples", "", f"![samples](samples/{sample.name})", ""]
    if (run / "plots" / "losses.png").is_file():
        lines += ["## Training curves", "", "![losses](plots/losses.png)", ""]
    return "\n".join(lines)


def publish_run(run_dir: str | Path, repo_id: str, *, private: bool = False, api: Any = None,
                message: str | None = None) -> str:
    """Upload a finished training run to ``repo_id`` (a Hub repo id or a ``file:`` folder) in one commit:
    ``final/`` (every exported network with its model card), ``config.json``, ``final_metrics.json``,
    ``plots/``, the newest sample grid and a README model card.  Returns ``repo_id``.

    The repo then loads with :func:`fashion_gans.models.sources.load_networks`.  Raises
    :class:`~fashion_gans.training.config.TrainingError` when the run has no exported networks.
    """
    from .config import TrainingError

    run = Path(run_dir)
    final = run / "final"
    networks = sorted(p.name for p in final.iterdir() if p.is_dir() and (p / "model.safetensors").is_file()) \
        if final.is_dir() else []
    if not networks:
        raise TrainingError(f"{run}: no exported networks in final/ (is the training run finished?)")
    api = api if api is not None else hub_api_for(repo_id)
    samples = sorted((run / "samples").glob("step-*.png")) if (run / "samples").is_dir() else []
    sample = samples[-1] if samples else None
    with tempfile.TemporaryDirectory(prefix="fashion-gans-publish-") as tmp:
        stage = Path(tmp) / "repo"
        stage.mkdir()
        shutil.copytree(final, stage / "final")
        if (run / "plots").is_dir():
            shutil.copytree(run / "plots", stage / "plots")
        for name in ("config.json", "final_metrics.json"):
            if (run / name).is_file():
                shutil.copy2(run / name, stage / name)
        if sample is not None:
            (stage / "samples").mkdir()
            shutil.copy2(sample, stage / "samples" / sample.name)
        (stage / "README.md").write_text(_run_card(run, repo_id, networks, sample), encoding="utf-8")
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(stage), path_in_repo=None,
                          commit_message=message or f"Publish {run.name}")
    return repo_id
