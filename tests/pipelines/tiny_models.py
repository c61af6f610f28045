"""Tiny untrained models of every tool, saved as model folders (``save_pretrained`` + ``bundle.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from fashion_gans.models import build_models, get_preset

#: name -> (preset, task, exported networks, config overrides)
TINY_MODELS = {
    "tiny-pose": ("pgpg_small", "pose", ("generator",), {}),
    "tiny-garment": ("pixeldtgan_small", "garment", ("generator",), {}),
    "tiny-style": ("cyclegan_small", "style", ("gen_ab", "gen_ba"), {}),
    "tiny-style-gray": ("cyclegan_small", "style", ("gen_ab", "gen_ba"),
                        {"image_size": (32, 32), "channels_a": 1, "channels_b": 1}),
    "tiny-generation": ("stylegan2_small", "generation", ("generator",), {}),
    "tiny-generation-gray": ("stylegan_small", "generation", ("generator",), {"image_channels": 1}),
}


def make_tiny_models(root: Path) -> dict[str, Path]:
    """Write every :data:`TINY_MODELS` folder under ``root``; returns ``{name: folder}``."""
    out = {}
    for name, (preset, task, keep, overrides) in TINY_MODELS.items():
        folder = root / name
        if not (folder / "bundle.json").is_file():
            config = get_preset(preset).replace(**overrides)
            nets = build_models(config)
            for key in keep:
                nets[key].save_pretrained(folder / key)
            meta = {"task": task, "preset": preset, "data": "none (untrained)"}
            (folder / "bundle.json").write_text(json.dumps(meta))
        out[name] = folder
    return out
