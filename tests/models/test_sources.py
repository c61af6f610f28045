"""fashion_gans.models.sources: one loader for bundled names, model folders, run folders, checkpoints, Hub repos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fashion_gans.models import ModelFileError, build_models
from fashion_gans.models import sources
from fashion_gans.models.sources import load_networks, write_bundle_meta


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _style_folder(root: Path) -> tuple[Path, dict]:
    nets = build_models("cyclegan_small")
    for name in ("gen_ab", "gen_ba"):
        nets[name].save_pretrained(root / name)
    nets["disc_a"].save_pretrained(root / "disc_a")
    return root, nets


def test_model_folder_with_bundle_meta(tmp_path):
    folder, nets = _style_folder(tmp_path / "style")
    write_bundle_meta(folder, {"task": "style", "preset": "cyclegan_small", "data": "synthetic"})
    loaded = load_networks(folder)
    assert loaded.task == "style" and loaded.meta["preset"] == "cyclegan_small"
    assert set(loaded.networks) == {"gen_ab", "gen_ba", "disc_a"}
    assert _same(loaded.networks["gen_ab"], nets["gen_ab"]) and _same(loaded.networks["gen_ba"], nets["gen_ba"])
    assert not loaded.networks["gen_ab"].training  # eval mode


def test_bundled_name_resolves_inside_the_package(tmp_path, monkeypatch):
    folder, nets = _style_folder(tmp_path / "models" / "style-test")
    monkeypatch.setattr(sources, "BUNDLED_DIR", tmp_path / "models")
    assert sources.list_bundled() == ["style-test"]
    loaded = load_networks("style-test")
    assert loaded.path == folder and _same(loaded.networks["gen_ba"], nets["gen_ba"])


def test_task_is_inferred_and_incomplete_models_are_refused(tmp_path):
    folder, _ = _style_folder(tmp_path / "style")
    assert load_networks(folder).task == "style"  # no bundle.json: inferred from the generator class
    shutil.rmtree(folder / "gen_ba")
    with pytest.raises(ModelFileError, match=r"needs network folder\(s\) \['gen_ba'\]"):
        load_networks(folder)
    shutil.rmtree(folder / "gen_ab")
    with pytest.raises(ModelFileError, match="only discriminators"):
        load_networks(folder)


def test_bad_sources_name_the_problem(tmp_path):
    with pytest.raises(ModelFileError, match="empty"):
        load_networks("  ")
    with pytest.raises(ModelFileError, match="not a bundled model"):
        load_networks("no-such-model")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelFileError, match="is a file"):
        load_networks(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="holds no exported networks"):
        load_networks(tmp_path / "empty")
    with pytest.raises(ModelFileError, match="no such folder"):
        load_networks("file:/definitely/not/here")
    bad = tmp_path / "bad"
    build_models("pgpg_small")["generator"].save_pretrained(bad / "generator")
    (bad / "bundle.json").write_text("{not json")
    with pytest.raises(ModelFileError, match=r"bundle\.json: not valid JSON"):
        load_networks(bad)


def test_offline_hub_repo_and_file_stand_in(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    folder, nets = _style_folder(tmp_path / "repo" / "final")  # the trainer uploads final/<name>/
    cache = tmp_path / "hub" / "models--owner--style"
    commit = "a" * 40
    shutil.copytree(tmp_path / "repo", cache / "snapshots" / commit)
    (cache / "refs").mkdir(parents=True)
    (cache / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = load_networks("owner/style")
    assert loaded.path.name == "final" and _same(loaded.networks["gen_ab"], nets["gen_ab"])
    with pytest.raises(ModelFileError, match=r"owner/missing@main: cannot be found"):
        load_networks("owner/missing")
    assert _same(load_networks(f"file:{tmp_path / 'repo'}").networks["gen_ba"], nets["gen_ba"])
    assert _same(load_networks(f"file://{tmp_path / 'repo'}").networks["gen_ab"], nets["gen_ab"])  # file:///abs
    with pytest.raises(ModelFileError, match="names host 'elsewhere'"):
        load_networks("file://elsewhere/repo")
    # A size cap is checked on the configs alone: a repo whose weights are not even there is refused by its size.
    total = sum(p.numel() for k in ("gen_ab", "gen_ba", "disc_a") for p in nets[k].parameters())
    for weights in (cache / "snapshots" / commit).glob("final/*/model.safetensors"):
        weights.unlink()
    with pytest.raises(ModelFileError, match=f"owner/style: {total:,} parameters is more than"):
        load_networks("owner/style", max_parameters=total - 1)


def test_online_hub_weights_are_sized_before_download(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.hf_api import RepoFile

    folder, nets = _style_folder(tmp_path / "repo")
    downloads = []

    def fake_snapshot(repo, allow_patterns, **kwargs):
        downloads.append(allow_patterns)
        return str(folder)

    sizes = {"gen_ab/model.safetensors": 10_000, "gen_ba/model.safetensors": 10_000, "disc_a/model.safetensors": 0}
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(huggingface_hub.HfApi, "get_paths_info", lambda self, repo, paths, revision=None: [
        RepoFile(path=p, size=sizes[p], oid="x") for p in paths])
    cap = sum(sources.count_parameters(folder).values())
    assert load_networks("owner/style", local_files_only=False, max_parameters=cap).task == "style"
    assert downloads == [sources._HUB_CONFIG_PATTERNS, sources.HUB_PATTERNS]  # configs first, then the weights
    downloads.clear()
    sizes["gen_ab/model.safetensors"] = 10 * 1024**3  # a small config next to a huge weight file
    with pytest.raises(ModelFileError, match="weight files hold .* bytes, more than"):
        load_networks("owner/style", local_files_only=False, max_parameters=cap)
    assert downloads == [sources._HUB_CONFIG_PATTERNS]  # refused before the weights were downloaded


def test_parameter_cap_and_hub_download_patterns(tmp_path):
    from huggingface_hub.utils import filter_repo_objects

    folder, nets = _style_folder(tmp_path / "style")
    counts = sources.count_parameters(folder)  # built on the meta device: equals the real networks' sizes
    assert counts == {k: sum(p.numel() for p in nets[k].parameters()) for k in ("disc_a", "gen_ab", "gen_ba")}
    assert load_networks(folder, max_parameters=sum(counts.values())).task == "style"
    with pytest.raises(ModelFileError, match=f"{sum(counts.values()):,} parameters is more than"):
        load_networks(folder, max_parameters=sum(counts.values()) - 1)
    repo = ["README.md", "bundle.json", "gen_ab/config.json", "gen_ab/model.safetensors", "final/g/config.json",
            "final/g/model.safetensors", "pytorch_model.bin", "big.safetensors", "data/train.json", "x.md",
            "checkpoints/step-1/state.pt", "gen_ab/optimizer.pt", "gen_ab/notes.md"]
    kept = set(filter_repo_objects(repo, allow_patterns=sources.HUB_PATTERNS))
    assert kept == {"README.md", "bundle.json", "gen_ab/config.json", "gen_ab/model.safetensors",
                    "final/g/config.json", "final/g/model.safetensors"}


def test_run_folder_and_checkpoint_export_what_the_trainer_exports(tmp_path):
    from fashion_gans.training.config import TrainConfig
    from fashion_gans.training.trainer import Trainer

    run = tmp_path / "run"
    cfg = TrainConfig(task="generation", preset="stylegan2_small", model_overrides={"image_channels": 1},
                      data="fashion-mnist", batch_size=4, max_steps=3, checkpoint_every=3, sample_every=100,
                      log_with="none", output_dir=str(run), eval_batches=1)
    Trainer(cfg).fit()
    final = load_networks(run)
    assert final.path == run / "final" and final.meta == {"task": "generation", "data": "fashion-mnist",
                                                          "preset": "stylegan2_small"}
    ckpt = run / "checkpoints" / "step-000000003"
    exported = load_networks(ckpt)
    assert exported.meta["step"] == 3 and exported.meta["source"] == "checkpoint"
    # The checkpoint export is the EMA generator (as the trainer publishes), not the raw training weights.
    assert _same(exported.networks["generator"], final.networks["generator"])
    raw = build_models(exported.networks["generator"].config)["generator"]
    from safetensors.torch import load_model

    load_model(raw, str(ckpt / "models" / "generator.safetensors"))
    assert not _same(raw, exported.networks["generator"])
    # A run folder without final/ falls back to its newest checkpoint.
    shutil.rmtree(run / "final")
    assert _same(load_networks(run).networks["generator"], final.networks["generator"])
    (ckpt / "state.pt").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="cannot export the checkpoint"):
        load_networks(ckpt)
    assert json.loads((run / "config.json").read_text())["train"]["task"] == "generation"
