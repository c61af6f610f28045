"""Which model names a visitor may type into the demo, and what each tab offers by default."""

from __future__ import annotations

import json

import pytest

from fashion_gans.models import build_models, get_preset
from fashion_gans.ui.registry import ModelChoiceError, ModelRegistry, model_task, parse_model_specs


@pytest.fixture(scope="module")
def garment_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("allowed")
    build_models("pixeldtgan_small")["generator"].save_pretrained(root / "garment" / "generator")  # no bundle.json
    return root


def test_model_task_is_read_without_loading_weights(garment_folder, tmp_path):
    assert model_task(garment_folder / "garment") == "garment"  # from the network's config.json
    (tmp_path / "run" / "final").mkdir(parents=True)
    (tmp_path / "run" / "final" / "bundle.json").write_text(json.dumps({"task": "style"}))
    assert model_task(tmp_path / "run") == "style"
    assert model_task(tmp_path / "nothing") is None


def test_model_specs_from_the_command_line_or_environment():
    assert parse_model_specs("a=/x, b=/y") == {"a": "/x", "b": "/y"}
    assert parse_model_specs('{"a": "/x"}') == {"a": "/x"}
    assert parse_model_specs("") == {}
    with pytest.raises(ValueError, match="expected name=folder"):
        parse_model_specs("just-a-path")


def test_local_folders_only_inside_the_allowed_roots(garment_folder, tmp_path):
    outside = tmp_path / "outside"
    build_models("pixeldtgan_small")["generator"].save_pretrained(outside / "generator")
    escape = garment_folder / "escape"
    escape.symlink_to(outside, target_is_directory=True)
    reg = ModelRegistry({}, model_roots=[garment_folder], include_bundled=False)
    assert reg.resolve(str(garment_folder / "garment"), "garment")[0] == str((garment_folder / "garment").resolve())
    for typed in (str(outside), str(escape), str(garment_folder / ".." / "outside"), "/etc"):
        with pytest.raises(ModelChoiceError, match="local folders are accepted only inside"):
            reg.resolve(typed, "garment")
    closed = ModelRegistry({}, include_bundled=False)  # no roots: no typed local folder at all
    with pytest.raises(ModelChoiceError, match="local folders are accepted only inside"):
        closed.resolve(str(garment_folder / "garment"), "garment")


def test_named_models_defaults_and_hub_switch(garment_folder):
    reg = ModelRegistry({"mine": garment_folder / "garment"}, include_bundled=False, allow_hub=False)
    assert reg.names("garment") == ["mine"] and reg.default("garment") == "mine" and reg.default("pose") is None
    assert reg.resolve("", "garment")[0] == str((garment_folder / "garment").resolve())  # empty box: the default
    with pytest.raises(ModelChoiceError, match="No pose transfer model is available"):
        reg.resolve("", "pose")
    with pytest.raises(ModelChoiceError, match="Hub is switched off"):
        reg.resolve("user/model", "garment")
    with pytest.raises(ModelChoiceError, match="not a model of this demo"):
        reg.resolve("no spaces allowed", "garment")
    with pytest.raises(ValueError, match="holds no model"):
        ModelRegistry({"empty": garment_folder / "nothing-here"}, include_bundled=False)


def test_bundled_models_are_named_by_their_package_path(tmp_path, monkeypatch):
    from fashion_gans.models import sources
    from fashion_gans.ui import registry as reg_module

    bundled = tmp_path / "package-models"
    build_models("pixeldtgan_small")["generator"].save_pretrained(bundled / "garment-test" / "generator")
    monkeypatch.setattr(sources, "BUNDLED_DIR", bundled)
    monkeypatch.setattr(reg_module, "BUNDLED_DIR", bundled)
    decoy = tmp_path / "cwd" / "garment-test"  # a folder of the same name in the server's working directory
    build_models("pixeldtgan_small")["generator"].save_pretrained(decoy / "generator")
    monkeypatch.chdir(tmp_path / "cwd")
    assert ModelRegistry().resolve("garment-test", "garment")[0] == str(bundled / "garment-test")


def test_run_and_checkpoint_folders_are_offered_by_their_training_task(tmp_path):
    from fashion_gans.pipelines.base import _version_of

    run = tmp_path / "run"
    for step in ("step-000000002", "step-000000010"):
        (run / "checkpoints" / step).mkdir(parents=True)
        (run / "checkpoints" / step / "config.json").write_text(json.dumps({"train": {"task": "pose"}}))
    (run / "config.json").write_text(json.dumps({"train": {"task": "pose"}}))
    reg = ModelRegistry({"run": run, "ckpt": run / "checkpoints" / "step-000000002"}, include_bundled=False)
    assert reg.entries["run"].task == reg.entries["ckpt"].task == "pose"
    before = _version_of(str(run))
    (run / "checkpoints" / "step-000000020").mkdir()
    assert before and _version_of(str(run)) != before  # a new checkpoint is a new model for the cache


def test_hub_ids_are_resolved_once_with_a_size_cap(monkeypatch, tmp_path):
    from fashion_gans.models.hub import ModelFileError
    from fashion_gans.ui import registry as reg_module

    calls = []

    def fake_resolve(repo, **kwargs):
        calls.append((repo, kwargs["revision"], kwargs["max_parameters"]))
        if repo == "big/model":
            raise ModelFileError("big/model: 90,000,000 parameters is more than this installation accepts")
        return tmp_path

    monkeypatch.setattr(reg_module, "resolve_source", fake_resolve)
    reg = ModelRegistry({}, include_bundled=False)
    assert reg.resolve("user/model@v1", "garment") == (str(tmp_path), "v1")
    assert reg.resolve("user/model@v1", "garment") == (str(tmp_path), "v1")
    assert calls == [("user/model", "v1", reg_module.MAX_MODEL_PARAMETERS)]  # one snapshot, capped
    with pytest.raises(ModelChoiceError, match="90,000,000 parameters is more than"):
        reg.resolve("big/model", "garment")


def test_visitors_see_model_names_and_generic_errors_never_server_paths(garment_folder, tmp_path):
    import gradio as gr

    from fashion_gans.ui.app import DemoBackend, _user_errors

    broken = tmp_path / "secret" / "place" / "broken"
    build_models("pixeldtgan_small")["generator"].save_pretrained(broken / "generator")
    (broken / "generator" / "model.safetensors").write_bytes(b"not safetensors")
    backend = DemoBackend(ModelRegistry({"mine": broken}, include_bundled=False), device="cpu", temp_dir=tmp_path)
    with pytest.raises(gr.Error) as info:
        _user_errors(backend.extract_garment)(str(garment_folder / "x.png"), "mine")
    assert "secret" not in str(info.value) and "mine/generator/model.safetensors: not a readable" in str(info.value)

    def crash(*args):
        raise RuntimeError("CUDA out of memory at /srv/app/secret/kernel.cu")

    def disk(*args):
        raise FileNotFoundError(2, "No such file", "/srv/app/secret/tmp/anim.gif")

    for fn, expected in ((crash, "ran out of memory"), (disk, r"could not complete this request \(FileNotFoundError")):
        with pytest.raises(gr.Error, match=expected) as info:
            _user_errors(fn)()
        assert "secret" not in str(info.value)


def test_crossover_range_follows_the_model_and_no_hub_status(garment_folder, tmp_path):
    import gradio as gr

    from fashion_gans.ui.app import DemoBackend, _user_errors

    gen = tmp_path / "gen"
    build_models("stylegan2_small")["generator"].save_pretrained(gen / "generator")
    backend = DemoBackend(ModelRegistry({"g": gen}, include_bundled=False, allow_hub=False), device="cpu",
                          temp_dir=tmp_path)
    layers = backend.style_layers("g")
    assert layers == build_models("stylegan2_small")["generator"].num_ws
    update = backend.crossover_slider("g", 16)
    assert update["maximum"] == layers - 1 and update["value"] == layers - 1 and update["minimum"] == 1
    for k in (0, layers):  # would copy one seed: no mixing
        with pytest.raises(gr.Error, match=rf"crossover layer: must be in 1..{layers - 1}"):
            _user_errors(backend.style_mix)(1, 2, k, 0.7, "g")
    assert "Hub" not in backend.status("pose")  # the Hub is off: no advice to type a repo id


def test_one_model_per_command_line_option():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("demo_app", Path(__file__).resolve().parents[2] / "app.py")
    demo_app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_app)
    assert demo_app.model_args(["a=/runs/x,y=1", " b = /runs/b "]) == {"a": "/runs/x,y=1", "b": "/runs/b"}
    with pytest.raises(ValueError, match="expected NAME=FOLDER"):
        demo_app.model_args(["/just/a/folder"])


def test_oversized_uploads_are_named_as_too_large(tmp_path):
    import struct
    import zlib

    import gradio as gr
    from gradio.data_classes import ImageData

    from fashion_gans.ui.app import _readable_upload

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"  # 200 MP: above PIL's own decompression-bomb limit
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 10000, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    image = _readable_upload(gr.Image(label="Person photo", type="filepath", image_mode=None, format="png"))
    with pytest.raises(gr.Error, match=r"Person photo: image too large \(at most 64 MP\)"):
        image.preprocess(ImageData(path=str(bomb)))


def test_attribute_editing_tab_offers_fader_and_icgan_models_and_their_attributes(tmp_path, monkeypatch):
    from fashion_gans.models import sources
    from fashion_gans.ui import registry as reg_module
    from fashion_gans.ui.registry import model_attributes

    fader = build_models(get_preset("fader_fmnist").replace(enc_channels=(4, 4, 4), dis_hidden=4))
    fader["fader"].save_pretrained(tmp_path / "fader" / "fader")  # no bundle.json: the task from config.json
    icgan = build_models(get_preset("icgan_synthetic").replace(z_dim=4, g_channels=(8, 8, 8, 8), d_channels=(4,),
                                                               e_channels=(4,)))
    for key in ("generator", "encoder_z", "encoder_y"):
        icgan[key].save_pretrained(tmp_path / "run" / "final" / key)  # a training run's export
    (tmp_path / "fader" / "fader" / "model.safetensors").unlink()  # attributes come from the config alone
    assert model_task(tmp_path / "fader") == "fader" and model_task(tmp_path / "run") == "icgan"
    assert model_attributes(tmp_path / "fader") == {"class": list(get_preset("fader_fmnist").attributes["class"])}
    assert list(model_attributes(tmp_path / "run")) == ["colour", "pattern", "kind"]
    assert model_attributes(tmp_path / "run" / "final" / "encoder_z") is None  # not a model folder

    reg = ModelRegistry({"f": tmp_path / "fader", "i": tmp_path / "run"}, include_bundled=False)
    assert reg.names("edit") == ["f", "i"] and reg.names("fader") == ["f"] and reg.default("edit") == "f"
    assert reg.resolve("i", "edit")[0] == str((tmp_path / "run").resolve())
    with pytest.raises(ModelChoiceError, match="'f' is an attribute editing \\(Fader Networks\\) model, not a "
                                               "garment extraction model"):
        reg.resolve("f", "garment")
    with pytest.raises(ModelChoiceError, match="No attribute editing model is available"):
        ModelRegistry({}, include_bundled=False).resolve("", "edit")

    # Once shipped, the bundled Fader model is the tab's default over any other.
    bundled = tmp_path / "package-models"
    icgan["generator"].save_pretrained(bundled / "icgan-synthetic" / "generator")
    fader["fader"].save_pretrained(bundled / "fader-synthetic" / "fader")
    monkeypatch.setattr(sources, "BUNDLED_DIR", bundled)
    monkeypatch.setattr(reg_module, "BUNDLED_DIR", bundled)
    reg = ModelRegistry({"f": tmp_path / "fader"})
    assert set(reg.names("edit")) == {"fader-synthetic", "icgan-synthetic", "f"}
    assert reg.default("edit") == "fader-synthetic"
