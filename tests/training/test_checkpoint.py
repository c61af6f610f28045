"""Checkpoints: complete or absent, pruned, loadable without unpickling; Hub upload and resume from the Hub."""

from __future__ import annotations

import inspect
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fashion_gans.training import checkpoint as ck
from fashion_gans.training.config import TrainConfig, TrainingError, hub_folder
from fashion_gans.training.hub_sync import (
    HubSync,
    LocalFolderApi,
    download_latest_checkpoint,
    list_hub_checkpoints,
    publish_run,
)
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


class CheckedApi(LocalFolderApi):
    """The ``file:`` folder API, with every call first bound to the signature of the real ``HfApi`` method, so
    the training kit's calls are ones huggingface.co would accept."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def _checked(self, name, *args, **kwargs):
        from huggingface_hub import HfApi

        inspect.signature(getattr(HfApi, name)).bind(None, *args, **kwargs)  # raises TypeError on a bad call
        self.calls.append((name, kwargs.get("path_in_repo")))
        return getattr(super(), name)(*args, **kwargs)

    def create_repo(self, *a, **k):
        return self._checked("create_repo", *a, **k)

    def upload_folder(self, *a, **k):
        return self._checked("upload_folder", *a, **k)

    def upload_file(self, *a, **k):
        return self._checked("upload_file", *a, **k)

    def delete_folder(self, *a, **k):
        return self._checked("delete_folder", *a, **k)

    def list_repo_files(self, *a, **k):
        return self._checked("list_repo_files", *a, **k)

    def snapshot_download(self, *a, **k):
        return self._checked("snapshot_download", *a, **k)


def _cfg(out, **kw):
    base = dict(task="style", output_dir=str(out), max_steps=8, batch_size=4, synthetic_size=16,
                checkpoint_every=4, sample_every=4, log_every=4, cpu=True, log_with="none", keep_checkpoints=1)
    base.update(kw)
    return TrainConfig(**base)


def test_hub_upload_and_resume_on_a_fresh_machine(tmp_path):
    """A ``file:`` folder stands in for the Hub: checkpoints + logs in one commit, samples, final/, plots/;
    a fresh machine (empty output folder) resumes from it with the whole run's logs; publish_run."""
    hub = tmp_path / "hub"
    repo = f"file:{hub}"
    api = CheckedApi()
    Trainer(_cfg(tmp_path / "a", hub_repo=repo), task_class=DummyTask, hub_api=api).fit()
    uploaded = [p for kind, p in api.calls if kind.startswith("upload")]
    assert {"samples/step-000000004.png", "samples/step-000000008.png", "plots", "logs"} <= set(uploaded)
    assert uploaded.count(None) == 2  # one commit (repo root) per checkpoint: checkpoints/step-*/ + logs/
    # Old hub checkpoints are pruned like the local ones; the logs sit next to the newest checkpoint.
    assert list_hub_checkpoints(repo) == ["step-000000008"]
    assert sorted(p.name for p in (hub / "checkpoints").iterdir()) == ["step-000000008"]
    assert (hub / "checkpoints/step-000000008/state.pt").is_file() and (hub / "plots/losses.png").is_file()
    hub_log = [json.loads(x) for x in (hub / "logs/scalars.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in hub_log) == 8

    scratch = tmp_path / "scratch"
    got = download_latest_checkpoint(repo, scratch / "checkpoints", logs_to=scratch / "logs")
    assert got == scratch / "checkpoints/step-000000008" and (got / "state.pt").is_file()
    assert (scratch / "logs/scalars.jsonl").read_text() == (hub / "logs/scalars.jsonl").read_text()

    # A fresh machine (empty output folder, default API for file: repos) resumes from the Hub copy to step 12.
    fresh = tmp_path / "b"
    t = Trainer(_cfg(fresh, hub_repo=repo, resume="latest", max_steps=12), task_class=DummyTask)
    t.fit()
    assert t.step == 12 and (fresh / "checkpoints" / "step-000000012").is_dir()
    # Its log (hence its plots) covers the whole run, from step 4 of the first machine on.
    steps = [json.loads(x)["step"] for x in (fresh / "logs/scalars.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == [4, 8, 12]
    # Resuming from the Hub copy gives the same weights as continuing the original run locally.
    Trainer(_cfg(tmp_path / "a", resume="latest", max_steps=12), task_class=DummyTask).fit()
    for role in ("generator", "discriminator"):
        a = (tmp_path / "a" / "checkpoints" / "step-000000012" / "models" / f"{role}.safetensors").read_bytes()
        b = (fresh / "checkpoints" / "step-000000012" / "models" / f"{role}.safetensors").read_bytes()
        assert a == b

    # No exported networks (the dummy task exports none): publishing is refused with a clear error.
    with pytest.raises(TrainingError, match="no exported networks in final/"):
        publish_run(fresh, f"file:{tmp_path / 'published'}")


def test_sigterm_saves_uploads_and_resumes_without_loss(tmp_path, monkeypatch, capsys):
    """SIGTERM (a pre-emption notice) mid-run: the step's checkpoint is written and uploaded, Preempted is raised
    (scripts/train.py exits 143), and a fresh machine resumes from the Hub at exactly that step."""
    import os
    import signal

    from fashion_gans.training.trainer import Preempted

    hub = tmp_path / "hub"
    before = signal.getsignal(signal.SIGTERM)

    def pre_empt(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # seen in the next step's synchronisation: the run stops after 4

    cfg = _cfg(tmp_path / "a", hub_repo=f"file:{hub}", max_steps=100, checkpoint_every=50)
    with pytest.raises(Preempted, match="stopped by SIGTERM at step 4"):
        Trainer(cfg, task_class=DummyTask, step_callback=pre_empt).fit()
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the run's only
    assert [p.name for p in ck.list_checkpoints(hub / "checkpoints")] == ["step-000000004"]
    fresh = tmp_path / "b"
    capsys.readouterr()
    t = Trainer(_cfg(fresh, hub_repo=f"file:{hub}", resume="latest", max_steps=6), task_class=DummyTask)
    t.fit()
    out = capsys.readouterr().out
    assert "step-000000004 at step 4 " in out and "resumed from" in out  # resumed where it stopped: no step lost
    assert t.step == 6

    # The script reports a pre-emption with the status of a process ended by SIGTERM.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    try:
        import train
    finally:
        sys.path.pop(0)

    def preempted_fit(self):
        raise Preempted(7, None)

    monkeypatch.setattr(Trainer, "fit", preempted_fit)
    assert train.main(["--task", "style", "--output-dir", str(tmp_path / "c")]) == 143


def test_publish_run_loads_back(tmp_path):
    """publish_run: final/ + model cards + README + plots in one commit, loadable by models.sources."""
    from fashion_gans.models import CycleGANConfig
    from fashion_gans.models.sources import load_networks
    from fashion_gans.models import build_models

    run = tmp_path / "run"
    nets = build_models(CycleGANConfig(image_size=(16, 16), g_base_channels=4, g_residual_blocks=1,
                                       d_base_channels=4, d_blocks=2))
    for name in ("gen_ab", "gen_ba"):
        nets[name].save_pretrained(run / "final" / name, metrics={"cycle_l1_a": 0.25}, dataset="synthetic")
    # As the trainer writes it: train.preset empty (the task default), the resolved preset name at the top level.
    (run / "config.json").write_text(json.dumps({"train": {"task": "style", "data": "synthetic", "preset": ""},
                                                 "preset": "cyclegan_small", "model": {"family": "cyclegan"}}))
    (run / "final_metrics.json").write_text(json.dumps({"step": 40, "cycle_l1_a": 0.25}))
    (run / "samples").mkdir()
    for step in (20, 40):
        (run / "samples" / f"step-{step:09d}.png").write_bytes(b"png")
    api = CheckedApi()
    target = f"file:{tmp_path / 'hub' / 'me-style'}"
    assert publish_run(run, target, api=api) == target
    hub = tmp_path / "hub" / "me-style"
    assert [k for k, _ in api.calls].count("upload_folder") == 1
    assert (hub / "final/gen_ab/model.safetensors").is_file() and (hub / "final/gen_ab/README.md").is_file()
    assert sorted(p.name for p in (hub / "samples").iterdir()) == ["step-000000040.png"]
    card = (hub / "README.md").read_text()
    assert "shoes <-> handbags" in card and "| cycle_l1_a | 0.25 |" in card and "final/gen_ba/" in card
    assert "| preset | `cyclegan_small` |" in card
    from huggingface_hub import ModelCard

    meta = ModelCard.load(hub / "README.md").data  # the metrics' values in the metadata's model-index
    assert [(r.metric_type, r.metric_value, r.dataset_type) for r in meta.eval_results] == [
        ("cycle_l1_a", 0.25, "synthetic")]
    assert meta.library_name == "fashion-gans" and meta.pipeline_tag == "image-to-image"
    from fashion_gans.training.hub_sync import _dataset_type

    # A local data folder names a path on the training machine, not a dataset: the card says "custom".
    assert [_dataset_type({"data": d}) for d in ("fashion-mnist:/x/y", "hf:someone/looks", str(tmp_path), "")] == [
        "fashion-mnist", "someone/looks", None, None]
    loaded = load_networks(target)
    assert sorted(loaded.networks) == ["gen_ab", "gen_ba"] and loaded.task == "style"
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.equal(loaded.networks["gen_ab"](x), nets["gen_ab"].eval()(x))


def test_local_folder_api_is_atomic_and_validated(tmp_path, monkeypatch):
    api = LocalFolderApi()
    repo = f"file://{tmp_path / 'hub'}"  # file:///abs works as well as file:/abs
    api.create_repo(repo)
    src = tmp_path / "src" / "checkpoints" / "step-000000001"
    src.mkdir(parents=True)
    (src / "state.pt").write_bytes(b"1")
    # A half-written upload (hidden temporary folder) is never listed.
    (tmp_path / "hub" / "checkpoints").mkdir()
    (tmp_path / "hub" / "checkpoints" / ".step-000000002.x.tmp").mkdir()
    (tmp_path / "hub" / "checkpoints" / ".step-000000002.x.tmp" / "state.pt").write_bytes(b"2")
    api.upload_folder(repo_id=repo, folder_path=str(tmp_path / "src"), path_in_repo=None)
    assert api.list_repo_files(repo) == ["checkpoints/step-000000001/state.pt"]
    assert list_hub_checkpoints(repo, api=api) == ["step-000000001"]
    # Uploading a checkpoint the repo already has replaces it whole: no stale file, never half-replaced.
    (tmp_path / "hub" / "checkpoints" / "step-000000001" / "stale.bin").write_bytes(b"old")
    (src / "state.pt").write_bytes(b"new")
    (src / "models.bin").write_bytes(b"new")
    copies = []

    def failing_copy(a, b, **kw):
        copies.append(b)
        if len(copies) == 2:
            raise OSError("disk full")
        return real_copy(a, b, **kw)

    real_copy = shutil.copyfile
    with monkeypatch.context() as patch:
        patch.setattr(shutil, "copyfile", failing_copy)
        with pytest.raises(OSError, match="disk full"):
            api.upload_folder(repo_id=repo, folder_path=str(tmp_path / "src"), path_in_repo=None)
    ckpt = tmp_path / "hub" / "checkpoints" / "step-000000001"
    assert sorted(p.name for p in ckpt.iterdir()) == ["stale.bin", "state.pt"] and (ckpt / "state.pt").read_bytes() \
        == b"1"  # the failed upload changed nothing
    api.upload_folder(repo_id=repo, folder_path=str(tmp_path / "src"), path_in_repo=None)
    assert api.list_repo_files(repo) == ["checkpoints/step-000000001/models.bin", "checkpoints/step-000000001/state.pt"]
    assert (ckpt / "state.pt").read_bytes() == b"new"
    api.delete_folder(path_in_repo="checkpoints/step-000000001", repo_id=repo)
    assert api.list_repo_files(repo) == []
    assert hub_folder(f"file://localhost{tmp_path}") == str(tmp_path) == hub_folder(f"file://{tmp_path}")
    with pytest.raises(TrainingError, match="hub_repo: 'file://tmp/hub' names host 'tmp'"):
        TrainConfig(hub_repo="file://tmp/hub")  # not the relative folder tmp/hub
    with pytest.raises(TrainingError, match="hub_repo.*file:"):
        TrainConfig(hub_repo="file:")
    with pytest.raises(TrainingError, match="hub_repo.*user/name"):
        TrainConfig(hub_repo="not a repo")


def test_failed_upload_warns_and_does_not_stop(tmp_path):
    class Broken(LocalFolderApi):
        def upload_file(self, *args, **kwargs):
            raise ConnectionError("no network")

    sync = HubSync(f"file:{tmp_path / 'hub'}", api=Broken())
    (tmp_path / "f.png").write_bytes(b"png")
    with pytest.warns(RuntimeWarning, match="no network"):
        sync.upload(tmp_path / "f.png", "samples/f.png")
        sync.close()
    assert sync.errors and sync.uploaded == []


def test_a_hub_target_that_cannot_work_fails_before_training(tmp_path):
    """The repo is created when the run starts: a bad target is a TrainingError naming it, not a warning later."""
    not_a_folder = tmp_path / "hub-file"
    not_a_folder.write_text("x")
    with pytest.raises(TrainingError, match="hub_repo .*hub-file.*NotADirectoryError"):
        Trainer(_cfg(tmp_path / "a", hub_repo=f"file:{not_a_folder}"), task_class=DummyTask).fit()
    assert not (tmp_path / "a" / "checkpoints").exists()
    with pytest.raises(NotADirectoryError):
        HubSync(f"file:{not_a_folder}")
