"""Hub-native save/load: local folders, a laid-out offline Hub cache, revisions, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fashion_gans.models import (
    MODEL_CLASSES,
    CycleGANDiscriminator,
    CycleGANGenerator,
    ModelFileError,
    PGPGDiscriminator,
    PGPGGenerator,
    PixelDTAssociationDiscriminator,
    PixelDTGenerator,
    PixelDTRealDiscriminator,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    StyleGANDiscriminator,
    StyleGANGenerator,
    get_preset,
)
from fashion_gans.models import IcGANDiscriminator, IcGANEncoderY, IcGANEncoderZ, IcGANGenerator
from fashion_gans.models import FaderNetwork, LatentDiscriminator


def _inputs(model):
    """Deterministic inputs for any of the model classes."""
    g = torch.Generator().manual_seed(1)
    cfg = model.config

    def img(c=3, size=None):
        h, w = size or cfg.image_size
        return torch.rand(2, c, h, w, generator=g) * 2 - 1

    if isinstance(model, PGPGGenerator):
        return (img(), torch.rand(2, cfg.pose_channels, *cfg.image_size, generator=g)), {}
    if isinstance(model, PGPGDiscriminator | PixelDTAssociationDiscriminator):
        return (img(), img()), {}
    if isinstance(model, StyleGANGenerator | StyleGAN2Generator):
        return (torch.randn(2, cfg.z_dim, generator=g),), {"noise_mode": "const"}
    if isinstance(model, StyleGANDiscriminator | StyleGAN2Discriminator):
        return (img(size=(cfg.resolution, cfg.resolution)),), {}
    if isinstance(model, IcGANGenerator):
        return (torch.randn(2, cfg.z_dim, generator=g), torch.rand(2, cfg.code_size, generator=g)), {}
    if isinstance(model, IcGANDiscriminator):
        return (img(cfg.image_channels, (cfg.image_size,) * 2), torch.rand(2, cfg.code_size, generator=g)), {}
    if isinstance(model, IcGANEncoderZ | IcGANEncoderY):
        return (img(cfg.image_channels, (cfg.image_size,) * 2),), {}
    if isinstance(model, FaderNetwork):
        return (img(cfg.image_channels, (cfg.image_size,) * 2), torch.rand(2, cfg.code_size, generator=g)), {}
    if isinstance(model, LatentDiscriminator):
        s = cfg.image_size // 2 ** len(cfg.enc_channels)
        return (torch.randn(2, cfg.enc_channels[-1], s, s, generator=g),), {}
    return (img(),), {}


def _small_models():
    return [
        PGPGGenerator(get_preset("pgpg_small")),
        PGPGDiscriminator(get_preset("pgpg_small")),
        PixelDTGenerator(get_preset("pixeldtgan_small")),
        PixelDTRealDiscriminator(get_preset("pixeldtgan_small")),
        PixelDTAssociationDiscriminator(get_preset("pixeldtgan_small")),
        CycleGANGenerator(get_preset("cyclegan_small"), direction="ba"),
        CycleGANDiscriminator(get_preset("cyclegan_small"), domain="b"),
        StyleGANGenerator(get_preset("stylegan_small")),
        StyleGANDiscriminator(get_preset("stylegan_small")),
        StyleGAN2Generator(get_preset("stylegan2_small")),
        StyleGAN2Discriminator(get_preset("stylegan2_small")),
        *(cls(get_preset("icgan_fmnist")) for cls in (IcGANGenerator, IcGANDiscriminator, IcGANEncoderZ,
                                                      IcGANEncoderY)),
        FaderNetwork(get_preset("fader_fmnist")),
        LatentDiscriminator(get_preset("fader_fmnist")),
    ]


def _outputs(model):
    args, kwargs = _inputs(model)
    with torch.no_grad():
        out = model(*args, **kwargs)
    return tuple(out) if isinstance(out, tuple) else (out,)


def _perturb(model):
    """Move every parameter/buffer off its init so the round trip checks real values."""
    with torch.no_grad():
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            t.add_(torch.randn_like(t) * 0.01)


def _assert_same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    for x, y in zip(_outputs(a), _outputs(b)):
        assert torch.equal(x, y)


def test_every_class_is_covered():
    assert {type(m).__name__ for m in _small_models()} == set(MODEL_CLASSES)


@pytest.mark.parametrize("index", range(len(_small_models())))
def test_local_folder_round_trip_is_bit_exact(tmp_path, index):
    model = _small_models()[index]
    _perturb(model)
    model.eval()
    model.save_pretrained(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]  # no temp leftovers, no pickle
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model_class"] == type(model).__name__
    loaded = type(model).from_pretrained(tmp_path / "m")
    assert not loaded.training
    assert loaded.config == model.config
    for name in type(model).extra_init_args:
        assert getattr(loaded, name) == getattr(model, name)
    _assert_same(model, loaded)


def test_model_card_states_task_data_licence_and_metrics(tmp_path):
    g = PGPGGenerator(get_preset("pgpg_small"))
    g.save_pretrained(tmp_path / "a", metrics={"FID": 21.37, "SSIM": 0.812})
    card = (tmp_path / "a" / "README.md").read_text()
    assert "Pose transfer" in card
    assert "DeepFashion" in card and "non-commercial" in card
    assert "| FID | 21.37 |" in card and "| SSIM | 0.812 |" in card
    assert "license: other" in card and "library_name: fashion-gans" in card
    assert "PGPGGenerator.from_pretrained" in card

    c = CycleGANGenerator(get_preset("cyclegan_small"))
    c.save_pretrained(tmp_path / "b", dataset="fashion-gans synthetic shoes and handbags", data_license="MIT")
    card = (tmp_path / "b" / "README.md").read_text()
    assert "synthetic shoes and handbags" in card and "license: mit" in card
    assert "No metrics were measured" in card
    assert "model-index" not in card


def test_model_card_metadata_holds_the_metric_values(tmp_path):
    from huggingface_hub import ModelCard

    g = PixelDTGenerator(get_preset("pixeldtgan_small"))
    g.save_pretrained(tmp_path / "g", metrics={"colour_kept": 0.898, "l1": 0.21, "note": "a text", "bad": float("nan")},
                      dataset="synthetic LookBook-layout world", dataset_type="synthetic", repo_id="me/garment")
    data = ModelCard.load(tmp_path / "g" / "README.md").data
    got = {r.metric_type: r.metric_value for r in data.eval_results}
    assert got == {"colour_kept": 0.898, "l1": 0.21}  # numbers only: text and NaN stay in the table
    r = data.eval_results[0]
    assert (r.task_type, r.dataset_type, r.dataset_split) == ("image-to-image", "synthetic", "test")
    assert r.dataset_name == "synthetic LookBook-layout world" and data.model_name == "me/garment"


def _lay_out_cache(cache: Path, repo_id: str, folders: dict[str, Path], refs: dict[str, str]) -> dict[str, str]:
    """Build ``models--owner--name/{snapshots/<hash>/..., refs/<ref>}`` as huggingface_hub stores it."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    hashes = {}
    for i, (label, folder) in enumerate(folders.items()):
        commit = f"{i + 1:x}" * 40
        commit = commit[:40]
        hashes[label] = commit
        shutil.copytree(folder, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir(parents=True)
    for ref, label in refs.items():
        (repo_dir / "refs" / ref).write_text(hashes[label])
    return hashes


def test_offline_hub_cache_round_trip_with_revisions(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    cfg = get_preset("stylegan2_small")
    main, tagged = StyleGAN2Generator(cfg), StyleGAN2Generator(cfg)
    _perturb(main)
    _perturb(tagged)
    main.eval(), tagged.eval()
    main.save_pretrained(tmp_path / "main")
    tagged.save_pretrained(tmp_path / "tagged")
    cache = tmp_path / "hub"
    hashes = _lay_out_cache(cache, "owner/name", {"main": tmp_path / "main", "tagged": tmp_path / "tagged"},
                            {"main": "main", "v1": "tagged"})
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))

    _assert_same(main, StyleGAN2Generator.from_pretrained("owner/name"))  # refs/main
    _assert_same(tagged, StyleGAN2Generator.from_pretrained("owner/name", revision="v1"))  # named ref
    _assert_same(tagged, StyleGAN2Generator.from_pretrained("owner/name", revision=hashes["tagged"]))  # commit
    _assert_same(main, StyleGAN2Generator.from_pretrained("owner/name", cache_dir=cache))  # explicit cache_dir

    with pytest.raises(ModelFileError, match=r"owner/missing@main/config\.json"):
        StyleGAN2Generator.from_pretrained("owner/missing")
    with pytest.raises(ModelFileError, match=r"owner/name@v2/config\.json"):
        StyleGAN2Generator.from_pretrained("owner/name", revision="v2")


def test_config_of_another_class_is_rejected_naming_the_file(tmp_path):
    StyleGANGenerator(get_preset("stylegan_small")).save_pretrained(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"config\.json.*'StyleGANGenerator'.*'StyleGAN2Generator'"):
        StyleGAN2Generator.from_pretrained(tmp_path / "m")
    PixelDTRealDiscriminator(get_preset("pixeldtgan_small")).save_pretrained(tmp_path / "d")
    with pytest.raises(ModelFileError, match="PixelDTRealDiscriminator"):
        PixelDTAssociationDiscriminator.from_pretrained(tmp_path / "d")


def test_weights_with_wrong_shapes_name_file_and_tensor(tmp_path):
    small = get_preset("cyclegan_small")
    CycleGANGenerator(small).save_pretrained(tmp_path / "a")
    CycleGANGenerator(small.replace(g_base_channels=8)).save_pretrained(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "model.safetensors", tmp_path / "a" / "model.safetensors")
    with pytest.raises(ModelFileError, match=r"model\.safetensors.*wrong shape.*net\.0\.weight: file \(8, 3, 7, 7\) "
                                              r"vs model \(16, 3, 7, 7\)"):
        CycleGANGenerator.from_pretrained(tmp_path / "a")


def test_missing_or_corrupt_files_give_clear_errors(tmp_path):
    d = PGPGDiscriminator(get_preset("pgpg_small"))
    d.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = {k: v.clone() for k, v in load_file(weights).items()}
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match=r"model\.safetensors: not a readable safetensors"):
        PGPGDiscriminator.from_pretrained(tmp_path / "m")
    weights.unlink()
    # A pickled checkpoint next to the config is never loaded: safetensors only.
    torch.save(state, tmp_path / "m" / "pytorch_model.bin")
    with pytest.raises(ModelFileError, match=r"model\.safetensors: missing"):
        PGPGDiscriminator.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match=r"config\.json: not valid JSON"):
        PGPGDiscriminator.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model_class": "PGPGDiscriminator",
                                                            "config": {"family": "pgpg", "norm": "layer"}}))
    with pytest.raises(ModelFileError, match=r"config\.json: invalid configuration.*norm"):
        PGPGDiscriminator.from_pretrained(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"empty[/\\]config\.json: missing"):
        (tmp_path / "empty").mkdir()
        PGPGDiscriminator.from_pretrained(tmp_path / "empty")


def test_push_to_hub_uploads_the_saved_folder(tmp_path, monkeypatch):
    """push_to_hub goes through the mixin's upload of a save_pretrained folder (HfApi stubbed, no network)."""
    import huggingface_hub.hub_mixin as hub_mixin

    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            return type("R", (), {"repo_id": repo_id})()

        def upload_folder(self, repo_id, folder_path, **kwargs):
            uploaded["repo_id"] = repo_id
            uploaded["files"] = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
            return "https://huggingface.co/owner/name/commit/0"

    monkeypatch.setattr(hub_mixin, "HfApi", FakeApi)
    g = PixelDTGenerator(get_preset("pixeldtgan_small"))
    g.push_to_hub("owner/name", metrics={"FID": 49.0})
    assert uploaded["repo_id"] == "owner/name"
    assert set(uploaded["files"]) == {"README.md", "config.json", "model.safetensors"}
    card = uploaded["files"]["README.md"].decode()
    assert "| FID | 49 |" in card and 'from_pretrained("owner/name")' in card
