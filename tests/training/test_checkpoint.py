"""Checkpoints: complete or absent, pruned, loadable without unpickling; Hub upload and resume from the Hub."""

from __future__ import annotations

import fnmatch
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fashion_gans.training import checkpoint as ck
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.hub_sync import HubSync, download_latest_checkpoint, list_hub_checkpoints
from fashion_gans.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from dummy_task import DummyTask  # noqa: E402


def _save(folder, step, model, opt):
    return ck.save_checkpoint(folder, step, models={"net": model}, optimizers={"opt": opt}, epoch=1,
                              batch_in_epoch=2, rng=[ck.capture_rng_state()], task={"pool": torch.ones(3), "k": 4},
                              config={"train": {"seed": 0}})


def _model():
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_is_weights_only_and_exact(tmp_path):
    model, opt = _model()
    path = _save(tmp_path, 7, model, opt)
    assert path.name == "step-000000007"
    expected = (random.random(), float(np.random.rand()), torch.rand(2))
    loaded = ck.load_checkpoint(path)
    for f in ("state.pt", "optimizers.pt"):  # nothing in them needs unpickling
        torch.load(path / f, weights_only=True)
    assert (loaded.step, loaded.epoch, loaded.batch_in_epoch) == (7, 1, 2)
    assert loaded.task["k"] == 4 and torch.equal(loaded.task["pool"], torch.ones(3))
    fresh = nn.Linear(3, 2)
    loaded.load_models({"net": fresh})
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    opt2 = torch.optim.Adam(fresh.parameters())
    opt2.load_state_dict(loaded.optimizers["opt"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    ck.restore_rng_state(loaded.rng[0])
    again = (random.random(), float(np.random.rand()), torch.rand(2))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])
    with pytest.raises(TrainingError, match="does not match"):
        loaded.load_models({"net": nn.Linear(3, 5)})


def test_interrupted_save_leaves_nothing_and_pruning_keeps_newest(tmp_path, monkeypatch):
    model, opt = _model()
    for step in (1, 2, 3):
        _save(tmp_path, step, model, opt)
    assert ck.prune_checkpoints(tmp_path, 2) == [tmp_path / "step-000000001"]
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step-000000002", "step-000000003"]

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", boom)  # dies after the weights are written, before the state
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 4, model, opt)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000002", "step-000000003"]
    assert ck.latest_checkpoint(tmp_path).name == "step-000000003"
    # A hard kill can leave a hidden temporary folder: ignored by the listing, removed by remove_stale.
    (tmp_path / ".step-000000004.abc.tmp").mkdir()
    assert ck.latest_checkpoint(tmp_path).name == "step-000000003"
    ck.remove_stale(tmp_path)
    assert not (tmp_path / ".step-000000004.abc.tmp").exists()
    shutil.rmtree(tmp_path / "step-000000003" / "models")
    with pytest.raises(TrainingError, match="models is missing"):
        ck.load_checkpoint(tmp_path / "step-000000003")


class FakeHfApi:
    """An HfApi stand-in storing the repo as a local folder (no network)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, str]] = []

    def create_repo(self, repo_id, private=True, exist_ok=True):
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        self.calls.append(("create_repo", repo_id))

    def upload_folder(self, repo_id, folder_path, path_in_repo, commit_message=""):
        shutil.copytree(folder_path, self.root / repo_id / path_in_repo, dirs_exist_ok=True)
        self.calls.append(("upload_folder", path_in_repo))

    def upload_file(self, path_or_fileobj, path_in_repo, repo_id, commit_message=""):
        dst = self.root / repo_id / path_in_repo
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path_or_fileobj, dst)
        self.calls.append(("upload_file", path_in_repo))

    def delete_folder(self, path_in_repo, repo_id, commit_message=""):
        shutil.rmtree(self.root / repo_id / path_in_repo)
        self.calls.append(("delete_folder", path_in_repo))

    def list_repo_files(self, repo_id):
        base = self.root / repo_id
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def snapshot_download(self, repo_id, allow_patterns, local_dir):
        for name in self.list_repo_files(repo_id):
            if any(fnmatch.fnmatch(name, pat) for pat in allow_patterns):
                dst = Path(local_dir) / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.root / repo_id / name, dst)
        return local_dir


def _cfg(out, **kw):
    base = dict(task="style", output_dir=str(out), max_steps=8, batch_size=4, synthetic_size=16,
                checkpoint_every=4, sample_every=4, log_every=4, cpu=True, log_with="none", keep_checkpoints=1)
    base.update(kw)
    return TrainConfig(**base)


def test_hub_upload_and_resume_on_a_fresh_machine(tmp_path):
    api = FakeHfApi(tmp_path / "hub")
    Trainer(_cfg(tmp_path / "a", hub_repo="me/run"), task_class=DummyTask, hub_api=api).fit()
    repo = tmp_path / "hub" / "me" / "run"
    # Every checkpoint and sample grid was uploaded; old hub checkpoints pruned like the local ones.
    uploaded = {p for kind, p in api.calls if kind.startswith("upload")}
    assert {"checkpoints/step-000000004", "checkpoints/step-000000008", "samples/step-000000004.png",
            "samples/step-000000008.png", "plots"} <= uploaded
    assert list_hub_checkpoints("me/run", api=api) == ["step-000000008"]
    assert (repo / "checkpoints" / "step-000000008" / "state.pt").is_file()

    # A fresh machine (empty output folder) resumes from the Hub copy and continues to step 12.
    fresh = tmp_path / "b"
    got = download_latest_checkpoint("me/run", fresh / "checkpoints", api=api)
    assert got == fresh / "checkpoints" / "step-000000008"
    shutil.rmtree(fresh)
    t = Trainer(_cfg(fresh, hub_repo="me/run", resume="latest", max_steps=12), task_class=DummyTask, hub_api=api)
    t.fit()
    assert t.step == 12 and (fresh / "checkpoints" / "step-000000012").is_dir()
    # Resuming from the Hub copy gives the same weights as continuing the original run locally.
    Trainer(_cfg(tmp_path / "a", resume="latest", max_steps=12), task_class=DummyTask).fit()
    for role in ("generator", "discriminator"):
        a = (tmp_path / "a" / "checkpoints" / "step-000000012" / "models" / f"{role}.safetensors").read_bytes()
        b = (fresh / "checkpoints" / "step-000000012" / "models" / f"{role}.safetensors").read_bytes()
        assert a == b


def test_failed_upload_warns_and_does_not_stop(tmp_path):
    class Broken(FakeHfApi):
        def upload_file(self, *args, **kwargs):
            raise ConnectionError("no network")

    sync = HubSync("me/x", api=Broken(tmp_path / "hub"))
    (tmp_path / "f.png").write_bytes(b"png")
    with pytest.warns(RuntimeWarning, match="no network"):
        sync.upload(tmp_path / "f.png", "samples/f.png")
        sync.close()
    assert sync.errors and sync.uploaded == []
