"""Background upload of checkpoints and samples to a Hugging Face Hub model repo, and resume from it.

:class:`HubSync` owns one worker thread and a queue.  :meth:`HubSync.upload` snapshots a folder or file
(hard links, so a checkpoint pruned locally meanwhile still uploads whole) and returns at once; the thread
calls ``HfApi.upload_folder`` / ``upload_file``.  An upload failure never stops training: it is reported as a
warning and kept in :attr:`HubSync.errors`.  :func:`download_latest_checkpoint` fetches the newest
``checkpoints/step-*`` folder of the repo (``snapshot_download`` restricted to that folder) so that a fresh
machine resumes where the last one stopped.
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

__all__ = ["HubSync", "download_latest_checkpoint", "list_hub_checkpoints"]

_CKPT_RE = re.compile(r"^checkpoints/(step-\d{9,})/")


def _default_api():
    from huggingface_hub import HfApi

    return HfApi()


def _snapshot(src: Path, dst: Path) -> None:
    """Copy ``src`` (file or folder) to ``dst`` with hard links where possible."""

    def link(a, b):
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
    ``create_repo`` / ``upload_folder`` / ``upload_file`` / ``delete_folder`` methods)."""

    def __init__(self, repo_id: str, *, private: bool = True, api: Any = None, keep_checkpoints: int = 0) -> None:
        self.repo_id = repo_id
        self.private = private
        self.api = api if api is not None else _default_api()
        self.keep_checkpoints = keep_checkpoints
        self.errors: list[str] = []
        self.uploaded: list[str] = []
        self._staging = Path(tempfile.mkdtemp(prefix="fashion-gans-hub-"))
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="hub-sync", daemon=True)
        self._repo_ready = False
        self._counter = 0
        self._thread.start()

    # ------------------------------------------------------------------------------------------------ public
    def upload(self, local: str | Path, path_in_repo: str, message: str | None = None) -> None:
        """Queue ``local`` (a file or folder) for upload to ``path_in_repo``; returns immediately."""
        local = Path(local)
        self._counter += 1
        snap = self._staging / f"{self._counter:06d}" / local.name
        _snapshot(local, snap)
        self._queue.put((snap, path_in_repo, message or f"Upload {path_in_repo}"))

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
                    text = f"upload of {path_in_repo} to {self.repo_id} failed: {type(exc).__name__}: {exc}"
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
            self.api.upload_folder(repo_id=self.repo_id, folder_path=str(snap), path_in_repo=path_in_repo,
                                   commit_message=message)
        else:
            self.api.upload_file(path_or_fileobj=str(snap), path_in_repo=path_in_repo, repo_id=self.repo_id,
                                 commit_message=message)
        if self.keep_checkpoints and _CKPT_RE.match(path_in_repo.rstrip("/") + "/"):
            names = list_hub_checkpoints(self.repo_id, api=self.api)
            for name in names[:-self.keep_checkpoints]:
                self.api.delete_folder(path_in_repo=f"checkpoints/{name}", repo_id=self.repo_id,
                                       commit_message=f"Prune checkpoints/{name}")


def list_hub_checkpoints(repo_id: str, *, api: Any = None) -> list[str]:
    """Names of the repo's complete checkpoint folders (``step-*`` holding ``state.pt``), oldest first."""
    api = api if api is not None else _default_api()
    files = api.list_repo_files(repo_id)
    names = {m.group(1) for f in files if (m := _CKPT_RE.match(f)) and f.endswith("/state.pt")}
    return sorted(names)


def download_latest_checkpoint(repo_id: str, local_checkpoints: str | Path, *, api: Any = None) -> Path | None:
    """Download the repo's newest checkpoint into ``local_checkpoints/step-*`` (atomically); None if none."""
    from fashion_gans.data.io import atomic_directory

    api = api if api is not None else _default_api()
    names = list_hub_checkpoints(repo_id, api=api)
    if not names:
        return None
    name = names[-1]
    target = Path(local_checkpoints) / name
    if target.is_dir():
        return target
    with tempfile.TemporaryDirectory() as download:
        api.snapshot_download(repo_id=repo_id, allow_patterns=[f"checkpoints/{name}/*"], local_dir=download)
        with atomic_directory(target) as tmp:
            shutil.copytree(Path(download) / "checkpoints" / name, tmp, dirs_exist_ok=True)
    return target
