"""Which model names a visitor may type into the demo, and what each tab offers by default."""

from __future__ import annotations

import json

import pytest

from fashion_gans.models import build_models
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
