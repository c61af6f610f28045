"""Tiny untrained models of every tool, saved as model folders (``save_pretrained`` + ``bundle.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

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
    # attribute editing: 64 px synthetic flats (colour / pattern / kind) and 32 px Fashion-MNIST (class)
    "tiny-fader": ("fader_synthetic", "fader", ("fader",), {"enc_channels": (8, 16, 16, 32), "dis_hidden": 16}),
    "tiny-icgan": ("icgan_synthetic", "icgan", ("generator", "encoder_z", "encoder_y"),
                   {"z_dim": 8, "g_channels": (32, 16, 16, 8), "d_channels": (8, 16), "e_channels": (8, 16)}),
    "tiny-fader-fmnist": ("fader_fmnist", "fader", ("fader",), {"enc_channels": (8, 16, 32), "dis_hidden": 16}),
}


def _calibrate_icgan(nets: dict[str, nn.Module], config) -> None:
    """Set the IcGAN generator's batch-norm statistics from one batch of random (z, y) (as a first training step
    would): freshly initialised statistics (mean 0, variance 1) let the activations shrink layer by layer, so an
    untrained generator draws a near-constant image whose attribute code changes it by less than one grey level."""
    from fashion_gans.models.attributes import attribute_code

    gen = nets["generator"]
    norms = [m for m in gen.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: this batch's statistics exactly
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, config.z_dim, generator=g)
    idx = torch.stack([torch.randint(len(v), (64,), generator=g) for v in config.attributes.values()], dim=1)
    gen.train()
    with torch.no_grad():
        gen(z, attribute_code(idx, config.attributes))
    for m in norms:
        m.momentum = 0.1
    gen.eval()


#: name -> what to do to the freshly built networks before they are saved
PREPARE = {"tiny-icgan": _calibrate_icgan}


def make_tiny_models(root: Path) -> dict[str, Path]:
    """Write every :data:`TINY_MODELS` folder under ``root``; returns ``{name: folder}``."""
    out = {}
    for name, (preset, task, keep, overrides) in TINY_MODELS.items():
        folder = root / name
        if not (folder / "bundle.json").is_file():
            config = get_preset(preset).replace(**overrides)
            nets = build_models(config)
            if name in PREPARE:
                PREPARE[name](nets, config)
            for key in keep:
                nets[key].save_pretrained(folder / key)
            meta = {"task": task, "preset": preset, "data": "none (untrained)"}
            (folder / "bundle.json").write_text(json.dumps(meta))
        out[name] = folder
    return out
