"""Typed configs: validation, JSON round trip, preset registry."""

from __future__ import annotations

import json

import pytest

from fashion_gans.models import build_models, config_from_dict, get_preset, list_presets
from fashion_gans.models.config import (
    PRESET_DESCRIPTIONS,
    ConfigError,
    CycleGANConfig,
    FaderConfig,
    IcGANConfig,
    PGPGConfig,
    PixelDTGANConfig,
    StyleGANConfig,
)


@pytest.mark.parametrize("name", list_presets())
def test_preset_json_round_trip(name):
    cfg = get_preset(name)
    data = json.loads(cfg.to_json())
    back = config_from_dict(data)
    assert back == cfg and type(back) is type(cfg)
    assert type(cfg).from_dict(data) == cfg


def test_registry_lists_described_presets_and_returns_fresh_copies():
    names = list_presets()
    assert set(names) == set(PRESET_DESCRIPTIONS)
    assert {"pgpg_thesis", "pixeldtgan_thesis", "cyclegan_thesis", "stylegan_thesis", "pgpg_256x176"} <= set(names)
    for tool in ("pgpg", "pixeldtgan", "cyclegan", "stylegan", "stylegan2"):
        assert f"{tool}_small" in names
    a = get_preset("pgpg_small")
    a.g2_dropout = 0.5
    assert get_preset("pgpg_small").g2_dropout != 0.5
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*pgpg_thesis"):
        get_preset("nope")


@pytest.mark.parametrize(
    "cls, kwargs, field",
    [
        (PGPGConfig, {"pose_encoding": "keypoints"}, "pose_encoding"),
        (PGPGConfig, {"image_size": (128,)}, "image_size"),
        (PGPGConfig, {"g2_dropout": 1.5}, "g2_dropout"),
        (PGPGConfig, {"image_size": (16, 16), "g2_blocks": 6}, "g2_blocks"),
        (PGPGConfig, {"image_size": (512, 512)}, "g1_bottleneck_channels"),  # FC would be 262k x 262k
        (PixelDTGANConfig, {"image_size": (60, 60)}, "g_blocks"),
        (PixelDTGANConfig, {"g_kernel": 4}, "g_kernel"),
        (CycleGANConfig, {"generator": "vit"}, "generator"),
        (CycleGANConfig, {"g_norm": "group"}, "g_norm"),
        (CycleGANConfig, {"d_norm": "layer"}, "d_norm"),
        (CycleGANConfig, {"generator": "discogan", "g_down": 7}, "g_down"),  # 64 px / 2**7
        (StyleGANConfig, {"resolution": 96}, "resolution"),
        (StyleGANConfig, {"channels": (512, 512)}, "channels"),
        (StyleGANConfig, {"version": 3}, "version"),
        (FaderConfig, {"enc_channels": (32, 64, 128, 256, 256, 256, 256)}, "enc_channels"),  # 64 px / 2**7
        (FaderConfig, {"dis_dropout": 1.0}, "dis_dropout"),
        (FaderConfig, {"attributes": {"colour": ["red"]}}, "attributes"),
        (FaderConfig, {"attributes": {"a": [1, 2]}}, "attributes"),
    ],
)
def test_invalid_configs_name_the_field(cls, kwargs, field):
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field}"):
        cls(**kwargs)


@pytest.mark.parametrize("attributes, problem", [
    ({"a": [1, 2]}, "values must be non-empty strings"),  # the UI and JSON edits name values by their strings
    ({"a": ["x", ""]}, "values must be non-empty strings"),
    ({"a": ["x", "x"]}, "2 distinct values"),
    ({3: ["x", "y"]}, "attribute names must be strings"),
])
def test_edit_configs_require_string_attribute_names_and_values(attributes, problem):
    for cls in (FaderConfig, IcGANConfig):
        with pytest.raises(ConfigError, match=rf"{cls.__name__}\.attributes.*{problem}"):
            cls(attributes=attributes)
    assert FaderConfig(attributes={"a": ["x", "y"]}).attributes == {"a": ["x", "y"]}


def test_from_dict_rejects_unknown_fields_and_other_families():
    data = get_preset("cyclegan_small").to_dict()
    with pytest.raises(ConfigError, match="unknown field"):
        CycleGANConfig.from_dict({**data, "bogus": 1})
    with pytest.raises(ConfigError, match="family 'cyclegan'"):
        PGPGConfig.from_dict(data)
    with pytest.raises(ConfigError, match="unknown or missing model family"):
        config_from_dict({"image_size": [64, 64]})


def test_pose_encoding_sets_input_channels():
    assert PGPGConfig(pose_encoding="iuv").pose_channels == 3
    assert PGPGConfig(pose_encoding="heatmaps").pose_channels == 18
    g = build_models(get_preset("pgpg_small").replace(pose_encoding="iuv"))["generator"]
    assert g.g1.unet.stem.in_channels == 3 + 3


def test_non_square_bottleneck_derives_from_shapes():
    cfg = get_preset("pgpg_256x176")
    assert cfg.image_size == (256, 176)
    # 4 max-pools (ceil): 256 -> 16, 176 -> 11
    assert cfg.g1_bottleneck_shape == (256 // 16, 176 // 16)
    assert cfg.g1_bottleneck_features == cfg.g1_bottleneck_channels * 16 * 11
    odd = PGPGConfig(image_size=(40, 24), g1_base_channels=4, g1_blocks=3, g1_bottleneck_channels=2,
                     g2_base_channels=4, g2_blocks=3, d_blocks=3)
    assert odd.g1_bottleneck_shape == (5, 3)
