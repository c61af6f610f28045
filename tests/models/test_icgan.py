"""IcGAN networks: shapes for both presets, G conditioned on y, E_y's logit blocks, input checks, save/load."""

from __future__ import annotations

import pytest
import torch

from fashion_gans.models import (
    MODEL_CLASSES,
    IcGANDiscriminator,
    IcGANEncoderY,
    IcGANEncoderZ,
    IcGANGenerator,
    build_models,
    get_preset,
)
from fashion_gans.models.attributes import attribute_code, split_code

PRESETS = ["icgan_synthetic", "icgan_fmnist"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _labels(cfg, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, len(v), (n,), generator=gen) for v in cfg.attributes.values()], dim=1)


@pytest.mark.parametrize("name", PRESETS)
def test_shapes_and_roles(name):
    cfg = get_preset(name)
    models = build_models(cfg)
    assert set(models) == {"generator", "discriminator", "encoder_z", "encoder_y"}
    assert {type(m).__name__ for m in models.values()} <= set(MODEL_CLASSES)
    s, c = cfg.image_size, cfg.image_channels
    code = attribute_code(_labels(cfg, 3), cfg.attributes)
    img = models["generator"](torch.randn(3, cfg.z_dim), code)
    assert img.shape == (3, c, s, s) and img.abs().max() <= 1
    assert models["discriminator"](img, code).shape == (3,)
    assert models["encoder_z"](img).shape == (3, cfg.z_dim)
    logits = models["encoder_y"](img)
    assert logits.shape == (3, cfg.code_size)
    # One logit block per attribute, in the config's order; code() is a softmax per block.
    blocks = split_code(logits, cfg.attributes)
    assert [b.shape[1] for b in blocks] == [len(v) for v in cfg.attributes.values()]
    y = models["encoder_y"].code(img)
    assert torch.allclose(torch.stack([b.sum(1) for b in split_code(y, cfg.attributes)]), torch.ones(len(blocks), 3))


def test_generator_and_discriminator_use_the_code():
    cfg = get_preset("icgan_fmnist")
    torch.manual_seed(0)
    g, d = IcGANGenerator(cfg).eval(), IcGANDiscriminator(cfg).eval()
    z = torch.randn(2, cfg.z_dim).repeat(5, 1)
    codes = torch.eye(cfg.code_size)[torch.arange(5).repeat_interleave(2)]
    with torch.no_grad():
        imgs = g(z, codes)
        scores = d(imgs[:1].expand(5, -1, -1, -1), torch.eye(cfg.code_size)[:5])
    diffs = (imgs[::2, None] - imgs[None, ::2]).abs().flatten(2).mean(2)  # same z, five codes
    assert (diffs + torch.eye(5) > 1e-4).all()
    assert scores.unique().numel() == 5  # the same image scores differently under different codes


def test_generator_learns_images_that_only_the_code_tells_apart():
    """Four targets drawn from ONE latent with four codes: G can only fit them by using y."""
    cfg = get_preset("icgan_fmnist").replace(g_channels=(64, 32, 16))
    torch.manual_seed(0)
    g = IcGANGenerator(cfg).train()
    s = cfg.image_size
    targets = torch.full((4, 1, s, s), -0.8)
    for i, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):  # a bright quadrant per code
        targets[i, :, r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = 0.8
    z = torch.randn(1, cfg.z_dim).expand(4, -1)
    code = torch.eye(cfg.code_size)[:4]
    opt = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.99))
    with torch.no_grad():
        start = (g(z, code) - targets).abs().mean().item()
    for _ in range(80):
        loss = (g(z, code) - targets).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = g(z, code)
    assert (out - targets).abs().mean().item() < start / 4
    dist = (out[:, None] - targets[None]).abs().mean(dim=(2, 3, 4))
    assert torch.equal(dist.argmin(dim=1), torch.arange(4))


def test_input_checks_name_the_problem():
    cfg = get_preset("icgan_fmnist")
    g, d, ez = IcGANGenerator(cfg), IcGANDiscriminator(cfg), IcGANEncoderZ(cfg)
    with pytest.raises(ValueError, match="attribute code"):
        g(torch.randn(2, cfg.z_dim), torch.zeros(2, cfg.code_size + 1))
    with pytest.raises(ValueError, match="z: expected"):
        g(torch.randn(2, cfg.z_dim + 1), torch.zeros(2, cfg.code_size))
    with pytest.raises(ValueError, match="image: expected"):
        d(torch.zeros(2, 3, 32, 32), torch.zeros(2, cfg.code_size))
    with pytest.raises(ValueError, match="attribute code"):
        d(torch.zeros(2, 1, 32, 32), torch.zeros(3, cfg.code_size))
    with pytest.raises(ValueError, match="image: expected"):
        ez(torch.zeros(2, 1, 64, 64))


@pytest.mark.parametrize("cls", [IcGANGenerator, IcGANDiscriminator, IcGANEncoderZ, IcGANEncoderY])
def test_save_load_round_trip_is_bit_exact(tmp_path, cls):
    cfg = get_preset("icgan_synthetic")
    torch.manual_seed(1)
    model = cls(cfg)
    # Train-mode forwards move the BatchNorm running statistics away from their initial values.
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    code = attribute_code(_labels(cfg, 4), cfg.attributes)
    args = (torch.randn(4, cfg.z_dim), code) if cls is IcGANGenerator else (x, code) if cls is IcGANDiscriminator \
        else (x,)
    with torch.no_grad():
        model(*args)
    model.eval()
    model.save_pretrained(tmp_path / "m")
    back = cls.from_pretrained(tmp_path / "m").eval()
    assert back.config == cfg
    for (k, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    with torch.no_grad():
        assert torch.equal(model(*args), back(*args))
    card = (tmp_path / "m" / "README.md").read_text()
    assert cls.__name__ in card and "Attribute editing" in card
