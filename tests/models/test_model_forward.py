"""Forward and backward of every preset on CPU; shapes, input checks and the PGPG stage coupling."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from fashion_gans.models import (
    PGPGGenerator,
    PixelDTGenerator,
    StyleGANDiscriminator,
    StyleGANGenerator,
    build_models,
    fade_in_alpha,
    get_preset,
    list_presets,
)
from fashion_gans.models.cyclegan import (AppearanceFlowEncoderDecoder, CycleGANGenerator, StyleCodeEncoderDecoder,
                                          SurfaceTile, pixel_centres, sampling_rigidity)
from fashion_gans.models.config import CycleGANConfig, PGPGConfig, PixelDTGANConfig, StyleGANConfig
from fashion_gans.models.config import FaderConfig
from fashion_gans.models.config import IcGANConfig
from fashion_gans.models.config import ConfigError

SMALL = [n for n in list_presets() if n.endswith(("_small", "_fmnist", "_synthetic"))]
BIG = ["pgpg_thesis", "pgpg_256x176", "pixeldtgan_thesis", "cyclegan_thesis", "cyclegan_unet", "stylegan_thesis",
       "stylegan2_128"]


def test_every_preset_is_exercised():
    assert set(SMALL) | set(BIG) == set(list_presets())


def _step(cfg, batch):
    """One forward of every network of ``cfg``, a summed loss, backward. Returns (models, outputs)."""
    models = build_models(cfg)
    for m in models.values():
        m.train()
    outs = {}
    if isinstance(cfg, PGPGConfig):
        h, w = cfg.image_size
        src = torch.rand(batch, 3, h, w) * 2 - 1
        pose = torch.rand(batch, cfg.pose_channels, h, w)
        o = models["generator"](src, pose)
        outs = {"coarse": o.coarse, "refined": o.refined, "d": models["discriminator"](src, o.refined)}
        loss = o.coarse.abs().mean() + o.refined.abs().mean() + outs["d"].square().mean()
    elif isinstance(cfg, PixelDTGANConfig):
        person = torch.rand(batch, 3, *cfg.image_size) * 2 - 1
        fake = models["generator"](person)
        outs = {"fake": fake, "dr": models["disc_real"](fake), "da": models["disc_assoc"](person, fake)}
        loss = fake.abs().mean() + outs["dr"].square().mean() + outs["da"].square().mean()
    elif isinstance(cfg, CycleGANConfig):
        a = torch.rand(batch, cfg.channels_a, *cfg.image_size) * 2 - 1
        fake_b = models["gen_ab"](a)
        rec_a = models["gen_ba"](fake_b)
        outs = {"fake_b": fake_b, "rec_a": rec_a, "db": models["disc_b"](fake_b), "da": models["disc_a"](rec_a)}
        loss = (rec_a - a).abs().mean() + outs["db"].square().mean() + outs["da"].square().mean()
    elif isinstance(cfg, FaderConfig):
        x = torch.rand(batch, cfg.image_channels, cfg.image_size, cfg.image_size) * 2 - 1
        code = torch.rand(batch, cfg.code_size)
        rec, z = models["fader"](x, code, return_latent=True)
        outs = {"rec": rec, "z": z, "logits": models["latent_disc"](z)}
        loss = (rec - x).square().mean() + outs["logits"].square().mean()
    elif isinstance(cfg, IcGANConfig):
        code = torch.rand(batch, cfg.code_size)
        img = models["generator"](torch.randn(batch, cfg.z_dim), code)
        outs = {"img": img, "score": models["discriminator"](img, code), "z": models["encoder_z"](img),
                "y": models["encoder_y"](img)}
        loss = img.square().mean() + sum(outs[k].square().mean() for k in ("score", "z", "y"))
    else:
        z = torch.randn(batch, cfg.z_dim)
        img = models["generator"](z)
        outs = {"img": img, "score": models["discriminator"](img)}
        loss = outs["score"].mean() + img.square().mean()
    loss.backward()
    return models, outs


def _check_grads(models, cfg):
    for role, m in models.items():
        params = dict(m.named_parameters())
        with_grad = {n for n, p in params.items() if p.grad is not None}
        for n in with_grad:
            assert torch.isfinite(params[n].grad).all(), (role, n)
        unused = set(params) - with_grad
        if isinstance(cfg, StyleGANConfig) and cfg.version == 1 and role == "generator":
            # Only the lower resolutions' toRGB layers are unused at full resolution with alpha = 1.
            top = cfg.num_resolutions - 1
            assert unused == {f"to_rgb.{i}.{p}" for i in range(top) for p in ("weight", "bias")}
        elif isinstance(cfg, StyleGANConfig) and cfg.version == 1:
            assert unused == {f"from_rgb.{i}.{p}" for i in range(cfg.num_resolutions - 1) for p in ("weight", "bias")}
        else:
            assert not unused, (role, sorted(unused)[:5])


def _check_shapes(cfg, outs, batch):
    if isinstance(cfg, PGPGConfig):
        assert outs["refined"].shape == (batch, 3, *cfg.image_size)
        assert outs["d"].shape == (batch, 1, *(math.ceil(s / 2**cfg.d_blocks) for s in cfg.image_size))
        assert outs["refined"].abs().max() < 1
    elif isinstance(cfg, PixelDTGANConfig):
        assert outs["fake"].shape == (batch, 3, *cfg.image_size)
        assert outs["dr"].shape == outs["da"].shape == (batch, 1, *(s // 16 for s in cfg.image_size))
    elif isinstance(cfg, CycleGANConfig):
        assert outs["fake_b"].shape == (batch, cfg.channels_b, *cfg.image_size)
        assert outs["db"].shape == (batch, 1, *(s // 2**cfg.d_blocks for s in cfg.image_size))
    elif isinstance(cfg, FaderConfig):
        s = cfg.image_size
        assert outs["rec"].shape == (batch, cfg.image_channels, s, s) and outs["rec"].abs().max() <= 1
        assert outs["z"].shape == (batch, cfg.enc_channels[-1], s >> len(cfg.enc_channels), s >> len(cfg.enc_channels))
        assert outs["logits"].shape == (batch, cfg.code_size)
    elif isinstance(cfg, IcGANConfig):
        s = cfg.image_size
        assert outs["img"].shape == (batch, cfg.image_channels, s, s) and outs["img"].abs().max() <= 1
        assert outs["score"].shape == (batch,)
        assert outs["z"].shape == (batch, cfg.z_dim) and outs["y"].shape == (batch, cfg.code_size)
    else:
        assert outs["img"].shape == (batch, cfg.image_channels, cfg.resolution, cfg.resolution)
        assert outs["score"].shape == (batch, 1)
    for v in outs.values():
        assert torch.isfinite(v).all()


@pytest.mark.parametrize("name", SMALL)
def test_small_presets_forward_backward(name):
    cfg = get_preset(name)
    models, outs = _step(cfg, batch=4)
    _check_shapes(cfg, outs, 4)
    _check_grads(models, cfg)


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_big_presets_forward_backward_batch1(name):
    cfg = get_preset(name)
    batch = 2 if isinstance(cfg, StyleGANConfig) else 1  # 2: a minibatch-std group of 1 is degenerate
    models, outs = _step(cfg, batch=batch)
    _check_shapes(cfg, outs, batch)
    _check_grads(models, cfg)


def test_cyclegan_unet_generator_option():
    cfg = get_preset("cyclegan_unet")
    assert cfg.generator == "unet"
    small = get_preset("cyclegan_small").replace(generator="unet", g_down=3)
    models, outs = _step(small, batch=2)
    _check_shapes(small, outs, 2)
    _check_grads(models, small)
    up = [m for m in models["gen_ab"].modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert not up  # bilinear upsampling, no transposed convs


def test_cyclegan_discogan_generator_option_changes_shape_freely():
    small = get_preset("cyclegan_small").replace(generator="discogan", g_down=4, d_norm="none")
    models, outs = _step(small, batch=2)
    _check_shapes(small, outs, 2)
    _check_grads(models, small)
    gen = models["gen_ab"]
    convs = [m for m in gen.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * 4  # 64 -> 4 px code
    assert len([m for m in gen.modules() if isinstance(m, torch.nn.ConvTranspose2d)]) == 4
    # No path from an input pixel to the same output pixel that skips the 4x4 code: the output depends on the
    # whole image (a single changed corner pixel moves the far corner), unlike a skip-connected generator.
    gen.eval()
    x = torch.zeros(1, 3, 64, 64)
    y = x.clone()
    y[..., 0, 0] = 1.0
    with torch.no_grad():
        assert not torch.allclose(gen(x)[..., -1, -1], gen(y)[..., -1, -1])
    norms = [m for m in models["disc_a"].modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert not norms  # d_norm="none"
    assert [m for m in build_models(get_preset("cyclegan_small"))["disc_a"].modules()
            if isinstance(m, torch.nn.InstanceNorm2d)]  # the thesis default keeps InstanceNorm


def test_discogan_adain_style_code_sets_the_decoder():
    small = get_preset("cyclegan_small").replace(generator="discogan_adain", g_down=4, d_norm="none", g_style_dim=8)
    models, outs = _step(small, batch=2)
    _check_shapes(small, outs, 2)
    _check_grads(models, small)
    net = models["gen_ab"].eval().net
    assert isinstance(net, StyleCodeEncoderDecoder)
    # Encoder statistics: mean + std of 16 + 32 + 64 + 128 channels; one AdaIN per inner decoder layer.
    assert net.style[0].in_features == 2 * (16 + 32 + 64 + 128)
    assert len(net.adain) == 3
    # The AdaIN affines start at zero (plain InstanceNorm); once set, the style vector alone moves the output:
    # the same spatial code decoded with two images' style vectors gives two images.
    torch.manual_seed(0)
    for adain in net.adain:
        torch.nn.init.normal_(adain.style.weight, std=0.5)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        h, style = net.style_code(x)
        assert not torch.allclose(style[0], style[1])
        same_code = torch.tanh(net.decode(h[:1].expand(2, -1, -1, -1), style))
        assert (same_code[0] - same_code[1]).abs().mean() > 1e-3
        assert torch.allclose(torch.tanh(net.decode(h, style)), models["gen_ab"](x), atol=1e-6)


def test_discogan_adain_carries_colour_across_a_shape_change(one_thread):
    """A tiny style-code generator learns to draw a disc in the colour of an input square (other shape, other
    place): the colour must cross the 4x4 code or the style vector, as a shoe's colour must reach a handbag."""
    torch.manual_seed(0)
    cfg = get_preset("cyclegan_small").replace(generator="discogan_adain", image_size=(32, 32), g_down=3,
                                               g_base_channels=8, g_norm="batch", g_style_dim=16)
    gen = CycleGANGenerator(cfg)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    square = ((yy >= 4) & (yy < 14) & (xx >= 4) & (xx < 14)).float()
    disc = ((yy - 21) ** 2 + (xx - 21) ** 2 <= 36).float()

    def batch(n):
        colour = torch.rand(n, 3, 1, 1) * 2 - 1
        return colour * square + (1 - square), colour * disc + (1 - disc), colour

    def disc_colour_error(out, colour):
        return ((out * disc).sum((2, 3)) / disc.sum() - colour[:, :, 0, 0]).abs().mean().item()

    x_test, _, c_test = batch(64)
    gen.eval()
    with torch.no_grad():
        before = disc_colour_error(gen(x_test), c_test)
    gen.train()
    opt = torch.optim.Adam(gen.parameters(), lr=2e-3)
    for _ in range(300):
        x, y, _ = batch(16)
        loss = ((gen(x) - y).abs() * (1 + 9 * disc)).mean()  # the disc weighs as much as the white field
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen.eval()
    with torch.no_grad():
        after = disc_colour_error(gen(x_test), c_test)
    assert after < 0.35 * before and after < 0.2, (before, after)


def test_appearance_flow_starts_inside_the_object():
    """At initialisation the flow generator's sampled half is the input object's own surface, wherever the
    object sits and whatever its size; the other half is the drawn image."""
    cfg = get_preset("discogan_flow_small")
    gen = CycleGANGenerator(cfg).eval()
    assert isinstance(gen.net, AppearanceFlowEncoderDecoder)
    x = torch.ones(3, 3, 64, 64)
    x[0, :, 40:56, 4:60] = torch.tensor([-1.0, 0.2, 0.6])[:, None, None]  # a wide, low object (a shoe's box)
    x[1, :, 8:40, 20:36] = torch.tensor([0.5, -0.5, -1.0])[:, None, None]  # a tall one, high up (a bag's)
    x[2] = -0.2  # no object at all: the whole frame counts
    with torch.no_grad():
        drawn, sampled, m = gen.net.parts(x)
        out = gen(x)
    assert torch.allclose(m, torch.full_like(m, 0.5))
    assert torch.allclose(out, 0.5 * sampled + 0.5 * drawn, atol=1e-6)
    for i in range(3):  # every output pixel samples the object's colour, none the white background
        colour = x[i, :, 48, 32] if i == 0 else x[i, :, 24, 28]
        assert torch.allclose(sampled[i], colour[:, None, None].expand_as(sampled[i]), atol=1e-5), i
    grid = gen.net.object_grid(x)
    # Object 0 spans x in [4, 60) and y in [40, 56): the grid covers 60% of it around its centre.
    for axis, (lo, hi) in enumerate([(4, 60), (40, 56)]):  # x, then y, in pixels
        inner = ((lo + 0.2 * (hi - lo)) / 32 - 1, (hi - 0.2 * (hi - lo)) / 32 - 1)  # [-1, 1] coordinates
        assert inner[0] - 0.05 < grid[0, ..., axis].min() < inner[0] + 0.05, axis
        assert inner[1] - 0.05 < grid[0, ..., axis].max() < inner[1] + 0.05, axis
    with pytest.raises(ValueError, match="channels_a == channels_b"):
        cfg.replace(channels_b=1)
    with pytest.raises(ValueError, match="as many output as input channels"):
        AppearanceFlowEncoderDecoder(3, 1, 8, 3, "batch", 8)


def test_appearance_flow_copies_a_pattern_across_a_shape_change(one_thread):
    """A tiny flow generator learns to show an input square's stripes (random colours, orientation and phase)
    inside a disc elsewhere, the way a shoe's pattern must reach a handbag.  The disc comes out striped as the
    square is: its pixels are the two stripe colours, not a blend (the best flat colour, their mean, is what a
    translation that loses the pattern would draw), the stripes run the same way and fall where the true ones
    do."""
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    square = ((yy >= 4) & (yy < 14) & (xx >= 4) & (xx < 14)).float()
    disc = ((yy - 21) ** 2 + (xx - 21) ** 2 <= 36).float()
    inner = ((yy - 21) ** 2 + (xx - 21) ** 2 <= 16).float()  # the disc without its rim

    def batch(n, gen):
        c1, c2 = torch.rand(n, 3, 1, 1, generator=gen) - 1, torch.rand(n, 3, 1, 1, generator=gen)
        vertical = torch.rand(n, 1, 1, 1, generator=gen) < 0.5
        phase = torch.randint(0, 4, (n, 1, 1, 1), generator=gen).float()
        stripes = ((torch.where(vertical, xx, yy) + phase) % 4 < 2).float()
        texture = stripes * c1 + (1 - stripes) * c2
        return texture * square + (1 - square), texture * disc + (1 - disc), c1, c2, vertical.flatten()

    torch.manual_seed(0)
    cfg = get_preset("cyclegan_small").replace(generator="discogan_flow", image_size=(32, 32), g_down=3,
                                               g_base_channels=8, g_norm="batch", g_style_dim=16)
    gen = CycleGANGenerator(cfg)
    rng = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(gen.parameters(), lr=2e-3)
    for _ in range(300):
        x, y, *_ = batch(16, rng)
        loss = ((gen(x) - y).abs() * (1 + 9 * disc)).mean()  # the disc weighs as much as the white field
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y, c1, c2, vertical = batch(64, torch.Generator().manual_seed(2))
    gen.eval()
    with torch.no_grad():
        out = gen(x)
    spread = (c1 - c2).abs().mean(dim=(1, 2, 3))  # how far apart the two stripe colours are
    off_colours = (torch.minimum((out - c1).abs().mean(1), (out - c2).abs().mean(1)) * inner).sum((1, 2)) / inner.sum()
    flat = ((c1 + c2) / 2 - c1).abs().mean(dim=(1, 2, 3))  # the flat mean colour is spread / 2 from both
    assert torch.allclose(flat, spread / 2)
    assert (off_colours / spread).mean() < 0.25, (off_colours / spread).mean()  # flat colour: 0.5
    dx = ((out[..., :, 1:] - out[..., :, :-1]).abs().mean(1) * inner[:, 1:]).sum((1, 2))
    dy = ((out[..., 1:, :] - out[..., :-1, :]).abs().mean(1) * inner[1:, :]).sum((1, 2))
    assert ((dx > dy) == vertical).float().mean() > 0.95  # vertical stripes change along x
    # And in phase: the disc's pixels are the true stripes, far closer than the flat colour's error (spread / 2).
    disc_error = ((out - y).abs().mean(1) * disc).sum((1, 2)) / disc.sum()
    assert disc_error.mean() < 0.2 * (spread / 2).mean(), (disc_error.mean(), (spread / 2).mean())


def test_sampling_rigidity_is_zero_for_a_translation_and_counts_the_distortion_in_pixels():
    """A sampling map that copies a shifted, undistorted piece of the input costs nothing; one that magnifies
    twice costs half a pixel per axis; a seam between two translated pieces costs only where both pixels take the
    sample; the generator keeps the map and shares of its last training forward."""
    h, w = 16, 24
    ys, xs = pixel_centres(h), pixel_centres(w)
    grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)[None]  # the identity map
    share = torch.ones(1, 1, h, w)
    shifted = grid + torch.tensor([2 * 3 / w, 2 * -5 / h])  # 3 pixels right, 5 up
    assert sampling_rigidity(shifted, share).item() == pytest.approx(0.0, abs=1e-5)
    assert sampling_rigidity(grid * 0.5, share).item() == pytest.approx(1.0, abs=1e-5)  # 0.5 px off on each axis
    rotated = torch.stack([grid[..., 1] * h / w, -grid[..., 0] * w / h], dim=-1)  # a quarter turn: the pattern turns
    assert sampling_rigidity(rotated, share).item() == pytest.approx(4.0, abs=1e-4)
    seam = shifted.clone()
    seam[:, :, w // 2:, 0] += 2 * 6 / w  # the right half jumps 6 more pixels: one seam column
    jump = sampling_rigidity(seam, share).item()
    assert jump == pytest.approx(6 / (w - 1), abs=1e-4)  # 6 px on one of the w - 1 horizontal steps per row
    drawn = share.clone()
    drawn[..., w // 2] = 0.0  # that column is drawn, not sampled: the seam costs nothing
    assert sampling_rigidity(seam, drawn).item() == pytest.approx(0.0, abs=1e-5)

    gen = CycleGANGenerator(get_preset("discogan_flow_small")).train()
    gen(torch.rand(2, 3, 64, 64) * 2 - 1)
    grid_seen, share_seen = gen.net.last_sampling
    assert grid_seen.shape == (2, 64, 64, 2) and share_seen.shape == (2, 1, 64, 64) and grid_seen.requires_grad


def _striped_bag(clasp: bool = True) -> torch.Tensor:
    """A 40x30 px bag of vertical stripes (2 px orange, 2 px blue) on white, with a black 6x6 clasp in its
    middle."""
    x = torch.ones(1, 3, 64, 64)
    cols = torch.arange(64)
    orange, blue = torch.tensor([1.0, 0.2, -0.8]), torch.tensor([-0.8, -0.6, 0.8])
    stripes = torch.where((cols % 4 < 2)[None, :, None], orange[None, None, :], blue[None, None, :])  # (1, W, 3)
    x[0, :, 20:50, 12:52] = stripes.permute(2, 0, 1)[:, :, 12:52].expand(3, 30, 40)
    if clasp:
        x[0, :, 32:38, 29:35] = -1.0
    return x


def test_surface_tile_copies_the_surface_at_its_own_scale():
    """At initialisation the tiling generator's sampled half is the object's surface, undistorted: only stripe
    colours (no background), stripes 2 px wide as in the input, and a sampling map that is a pure translation
    (rigidity 0) before it is folded into the box around the object's middle."""
    gen = CycleGANGenerator(get_preset("discogan_tile_small")).train()
    assert isinstance(gen.net, SurfaceTile)
    x = _striped_bag(clasp=False)
    drawn, sampled, m = gen.net.parts(x)
    grid, share = gen.net.last_sampling
    assert sampling_rigidity(grid, share).item() == pytest.approx(0.0, abs=1e-4)
    orange, blue = x[0, :, 30, 12], x[0, :, 30, 14]
    near = torch.minimum((sampled[0] - orange[:, None, None]).abs().amax(0),
                         (sampled[0] - blue[:, None, None]).abs().amax(0))
    assert (near < 1e-4).float().mean() > 0.99  # whole-pixel samples: the stripe colours themselves, no blend
    changes = (sampled[0, :, :, 1:] - sampled[0, :, :, :-1]).abs().amax(0) > 0.5
    assert 0.35 < changes.float().mean() < 0.55  # a 2 px stripe changes every other pixel: 0.5, less the folds
    assert ((sampled[0, :, 1:] - sampled[0, :, :-1]).abs().amax(0) > 0.5).float().mean() < 0.02  # vertical stripes


def _low_striped_shoe(phase: int = 0) -> torch.Tensor:
    """A 40x12 px object of horizontal stripes (3 px orange, 3 px blue) on white: a low shoe, whose box at half a
    standard deviation is about 3 px tall, half a stripe period; ``phase`` shifts the stripes down by that many
    rows."""
    x = torch.ones(1, 3, 64, 64)
    orange, blue = torch.tensor([1.0, 0.2, -0.8]), torch.tensor([-0.8, -0.6, 0.8])
    is_orange = ((torch.arange(12) - phase) % 6 < 3)[None, :, None]
    x[0, :, 30:42, 12:52] = torch.where(is_orange, orange[:, None, None], blue[:, None, None]).expand(3, 12, 40)
    return x


def test_surface_tile_box_size_sets_the_pattern_share_per_direction():
    """``g_tile`` sets each generator's box (A -> B, B -> A): on a low striped object the default box (half a
    standard deviation, about 3 px tall) holds mostly one stripe colour, a box of one standard deviation (a whole
    period) both about equally, as the source shows them; the pair survives config.json and bad values are refused
    by name."""
    orange = torch.tensor([1.0, 0.2, -0.8])

    def worst_share_error(tile: tuple[float, float], direction: str) -> float:
        """The largest distance, over the stripes' six phases, of the sampled orange share from the source's."""
        cfg = dataclasses.replace(get_preset("discogan_tile_small"), g_tile=tile)
        gen = CycleGANGenerator(cfg, direction).eval()
        worst = 0.0
        for phase in range(6):
            with torch.no_grad():
                sampled = gen.net.parts(_low_striped_shoe(phase))[1][0]
            share = float(((sampled - orange[:, None, None]).abs().amax(0) < 1e-4).float().mean())
            worst = max(worst, abs(share - 0.5))  # the object is two whole periods: half orange
        return worst

    assert worst_share_error((0.5, 0.5), "ab") >= 0.25  # a 4 px box holds 3 rows of one colour
    assert worst_share_error((1.0, 0.5), "ab") < 0.1
    assert worst_share_error((0.5, 1.0), "ba") < 0.1  # the B -> A generator reads the second value
    assert worst_share_error((1.0, 0.5), "ba") >= 0.25
    cfg = dataclasses.replace(get_preset("discogan_shape_small"), g_tile=(0.5, 1.0))
    assert CycleGANConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).g_tile == (0.5, 1.0)
    for bad in ((0.5,), (0.5, 0.0), (0.5, 3.0), (0.5, True), 0.5):
        with pytest.raises(ValueError, match="g_tile"):
            dataclasses.replace(cfg, g_tile=bad)


def test_surface_tile_learns_to_move_its_box_off_a_clasp(one_thread):
    """The box sits on the object's centre of mass, where a bag's clasp is; the style code may move it (by up to
    ``reach`` standard deviations), and a loss that asks for the bag's surface moves it off the clasp."""
    torch.manual_seed(0)
    gen = CycleGANGenerator(get_preset("discogan_tile_small")).train()
    x = _striped_bag()

    def clasp_share() -> float:
        with torch.no_grad():
            sampled = gen.net.parts(x)[1]
        return float((sampled.amax(1) < -0.9).float().mean())

    before = clasp_share()
    assert before > 0.15  # the clasp is a large part of the box in the middle
    opt = torch.optim.Adam(gen.net.box_head.parameters(), lr=0.05)
    for _ in range(40):
        dark = (gen.net.parts(x)[1].amax(1) + 1).clamp(max=0.5)  # 0 on the black clasp
        loss = (0.5 - dark).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert clasp_share() < 0.2 * before, (before, clasp_share())


def test_shape_clip_draws_nothing_outside_the_given_silhouette():
    """``g_shape_clip`` (A -> B, B -> A): outside the given silhouette every output pixel of a clipping generator
    is the source's background colour (its corners' mean), inside it the output is the unclipped generator's;
    without the option the drawn layer reaches outside; the option needs silhouettes."""
    torch.manual_seed(0)
    x = _striped_bag()
    beige = torch.tensor([0.6, 0.4, 0.2])[None, :, None, None]
    x[:, :, :20], x[:, :, 50:] = beige, beige  # a beige backdrop: the four corners are beige
    shape = torch.zeros(1, 1, 64, 64)
    shape[..., 24:56, 8:40] = 1
    cfg = dataclasses.replace(get_preset("discogan_shape_small"), g_shape_clip=(False, True))
    plain, clipped = CycleGANGenerator(cfg, "ab").eval(), CycleGANGenerator(cfg, "ba").eval()
    clipped.load_state_dict(plain.state_dict())
    with torch.no_grad():
        a, b = plain(x, shape), clipped(x, shape)
    outside, inside = shape[0, 0] == 0, shape[0, 0] == 1
    assert (b[0][:, outside] - beige[0, :, 0]).abs().max() < 1e-5
    assert (a[0][:, outside] - beige[0, :, 0]).abs().amax(0).mean() > 0.05  # the drawn layer, unclipped
    assert torch.equal(a[0][:, inside], b[0][:, inside])
    for bad in ((True, 1), (True,), True):
        with pytest.raises(ValueError, match="g_shape_clip"):
            dataclasses.replace(cfg, g_shape_clip=bad)
    with pytest.raises(ValueError, match="g_shape_clip"):  # no silhouettes to clip to
        dataclasses.replace(get_preset("discogan_tile_small"), g_shape_clip=(True, True))


def test_silhouette_bank_stores_real_outlines_in_order_and_checks_its_inputs():
    """A silhouette-conditioned generator stores the object masks of real target images in its free slots, in
    order, until the bank is full; draws the first stored silhouette when none is given (the same as passing it);
    and refuses a silhouette of the wrong size, an empty or unknown slot, and silhouettes given to a generator that
    takes none, naming the problem."""
    cfg = get_preset("discogan_shape_small")
    assert cfg.g_shape_bank == 8
    gen = CycleGANGenerator(cfg).eval()
    bags = torch.ones(5, 3, 64, 64)
    for i in range(5):
        bags[i, :, 10 + 2 * i:50, 12:40 + i] = -0.5  # five different boxes on white
    assert gen.store_shapes(bags) == 5 and int(gen.shape_bank_filled) == 5
    assert gen.store_shapes(bags) == 3 and int(gen.shape_bank_filled) == 8  # only the free slots
    assert gen.store_shapes(bags) == 0
    for i in range(5):
        expected = torch.zeros(64, 64)
        expected[10 + 2 * i:50, 12:40 + i] = 1
        assert torch.equal(gen.stored_shape(i)[0, 0], expected)
    assert torch.equal(gen.stored_shape(5), gen.stored_shape(0))  # the second batch's first box
    x = _striped_bag()
    with torch.no_grad():
        assert torch.equal(gen(x), gen(x, gen.stored_shape(0)))
        assert not torch.equal(gen(x, gen.stored_shape(0)), gen(x, gen.stored_shape(4)))
    with pytest.raises(ValueError, match="shape index"):
        gen.stored_shape(8)
    with pytest.raises(ValueError, match="shape: expected a silhouette"):
        gen(x, torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match="shape: expected a silhouette"):
        gen(x.expand(3, -1, -1, -1), torch.ones(2, 1, 64, 64))
    plain = CycleGANGenerator(get_preset("discogan_tile_small"))
    assert not plain.takes_shape and "shape_bank" not in plain.state_dict()
    with pytest.raises(ValueError, match="takes no silhouette"):
        plain(x, torch.ones(1, 1, 64, 64))
    with pytest.raises(ValueError, match="stores no silhouettes"):
        plain.store_shapes(bags)
    with pytest.raises(ConfigError, match="g_shape_bank"):
        get_preset("discogan_small").replace(g_shape_bank=4)
    with pytest.raises(ConfigError, match="g_shape_bank"):
        get_preset("discogan_tile_small").replace(g_shape_bank=-1)


def test_shape_generator_draws_the_silhouette_it_is_given(one_thread):
    """A tiny silhouette-conditioned tiling generator learns, from an L1 loss alone, to draw an input square's
    colour inside whichever of three outlines (a disc, a wide bar, a triangle) it is given.  Afterwards its output
    object follows the given outline (IoU above 0.8, well above its IoU with the other outlines) in the input's
    colour, for colours it never saw."""
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    square = ((yy >= 10) & (yy < 22) & (xx >= 10) & (xx < 22)).float()
    outlines = torch.stack([((yy - 16) ** 2 + (xx - 16) ** 2 <= 100).float(),
                            ((yy >= 12) & (yy < 20) & (xx >= 2) & (xx < 30)).float(),
                            ((yy >= 4) & (yy < 28) & ((xx - 16).abs() <= (yy - 4) / 2)).float()])[:, None]

    def batch(n, gen):
        colour = torch.rand(n, 3, 1, 1, generator=gen) * 1.2 - 1  # dark enough to stand out from white
        which = torch.randint(0, 3, (n,), generator=gen)
        shape = outlines[which]
        return colour * square + (1 - square), shape, colour * shape + (1 - shape), which

    torch.manual_seed(0)
    cfg = get_preset("discogan_shape_small").replace(image_size=(32, 32), g_down=3, g_base_channels=8,
                                                     g_style_dim=16, g_shape_bank=3)
    gen = CycleGANGenerator(cfg)
    rng = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(gen.parameters(), lr=2e-3)
    for _ in range(250):
        x, shape, y, _ = batch(16, rng)
        loss = (gen(x, shape) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, shape, y, which = batch(48, torch.Generator().manual_seed(2))
    gen.eval()
    with torch.no_grad():
        out = gen(x, shape)
    drawn = ((out - 1).abs().amax(1, keepdim=True) > 0.3).float()  # pixels away from the white field

    def iou(a, b):
        return (a * b).sum((1, 2, 3)) / ((a + b).clamp(max=1).sum((1, 2, 3)))

    own = iou(drawn, shape)
    others = torch.stack([iou(drawn, outlines[k:k + 1].expand_as(shape)) for k in range(3)], 1)
    others[torch.arange(48), which] = 0
    assert own.mean() > 0.8, own.mean()
    assert (own > others.amax(1) + 0.2).float().mean() > 0.9
    inner = -torch.nn.functional.max_pool2d(-shape, 3, 1, 1)  # the outline without its rim
    colour = (out * inner).sum((2, 3)) / inner.sum((2, 3))  # mean colour inside the outline
    source = x[:, :, 16, 16]
    error = (colour - source).abs().mean()
    ignored = (source - source.mean(0)).abs().mean()  # the best colour that ignores the input
    assert error < 0.6 * ignored, (error, ignored)


def test_pgpg_256x176_is_non_square_end_to_end():
    cfg = get_preset("pgpg_256x176").replace(g1_base_channels=4, g1_bottleneck_channels=2, g2_base_channels=4,
                                             d_base_channels=4)
    g = PGPGGenerator(cfg).eval()
    with torch.no_grad():
        out = g(torch.zeros(1, 3, 256, 176), torch.zeros(1, 18, 256, 176))
    assert out.refined.shape == (1, 3, 256, 176)
    assert g.g1.unet.bottleneck.fc.in_features == 2 * 16 * 11
    with pytest.raises(ValueError, match=r"image: expected \(N, 3, 256, 176\)"):
        g(torch.zeros(1, 3, 176, 256), torch.zeros(1, 18, 176, 256))


def test_input_checks_name_the_argument():
    cfg = get_preset("pgpg_small")
    g = PGPGGenerator(cfg)
    with pytest.raises(ValueError, match=r"pose: expected \(1, 18, 64, 64\)"):
        g(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))  # IUV given to a heatmap model
    with pytest.raises(ValueError, match="person"):
        PixelDTGenerator(get_preset("pixeldtgan_small"))(torch.zeros(1, 3, 32, 32))


def test_pgpg_g1_is_frozen_in_g2_loss():
    torch.manual_seed(0)
    g = PGPGGenerator(get_preset("pgpg_small").replace(image_size=(32, 32)))
    x, p = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 18, 32, 32)
    out = g(x, p)
    out.refined.mean().backward(retain_graph=True)
    assert all(q.grad is None or not q.grad.any() for q in g.g1.parameters())
    assert any(q.grad is not None and q.grad.any() for q in g.g2.parameters())
    g.zero_grad(set_to_none=True)
    out.coarse.mean().backward()
    assert all(q.grad is None for q in g.g2.parameters())
    assert any(q.grad is not None and q.grad.any() for q in g.g1.parameters())
    # Without the freeze, G2's loss reaches G1 too.
    g.zero_grad(set_to_none=True)
    g(x, p, detach_coarse=False).refined.mean().backward()
    assert any(q.grad is not None and q.grad.any() for q in g.g1.parameters())


def test_pgpg_zero_difference_map_returns_the_coarse_image():
    g = PGPGGenerator(get_preset("pgpg_small").replace(image_size=(32, 32))).eval()
    with torch.no_grad():
        g.g2.unet.head.weight.zero_()
        g.g2.unet.head.bias.zero_()
        out = g(torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 18, 32, 32))
    assert torch.equal(out.diff, torch.zeros_like(out.diff))
    assert torch.allclose(out.refined, out.coarse)


def test_pgpg_dropout_only_in_first_half_of_g2_encoder():
    g = PGPGGenerator(get_preset("pgpg_thesis").replace(g1_bottleneck_channels=0, g1_base_channels=4,
                                                        g2_base_channels=4))
    has_dropout = [any(isinstance(m, torch.nn.Dropout2d) for m in blk.modules()) for blk in g.g2.unet.down]
    assert has_dropout == [True, True, True, False, False, False]
    assert not any(isinstance(m, torch.nn.Dropout2d) for m in g.g1.modules())


def test_stylegan_progressive_levels_and_fade_in():
    cfg = get_preset("stylegan_small")
    g, d = StyleGANGenerator(cfg).eval(), StyleGANDiscriminator(cfg).eval()
    z = torch.randn(4, cfg.z_dim)
    with torch.no_grad():
        for level in range(cfg.num_resolutions):
            res = 4 * 2**level
            img = g(z, level=level, alpha=0.3, noise_mode="const")
            assert img.shape == (4, 3, res, res)
            assert d(img, level=level, alpha=0.3).shape == (4, 1)
        # alpha = 0 shows only the previous resolution's output, upsampled; alpha = 1 only the new block's.
        lvl = 2
        old = torch.nn.functional.interpolate(g(z, level=lvl - 1, noise_mode="const"), scale_factor=2,
                                              mode="bilinear", align_corners=False)
        assert torch.allclose(g(z, level=lvl, alpha=0.0, noise_mode="const"), old, atol=1e-6)
        new = g(z, level=lvl, alpha=1.0, noise_mode="const")
        half = g(z, level=lvl, alpha=0.5, noise_mode="const")
        assert torch.allclose(half, (old + new) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="level"):
        g(z, level=cfg.num_resolutions)
    with pytest.raises(ValueError, match=r"images: expected \(N, 3, 8, 8\)"):
        d(torch.zeros(2, 3, 16, 16), level=1)
    alphas = [fade_in_alpha(s, 100) for s in range(0, 101, 10)]
    assert alphas[0] == 0.0 and alphas[-1] == 1.0
    assert all(a < b for a, b in zip(alphas, alphas[1:]))
    assert abs(fade_in_alpha(50, 100) - 0.5) < 1e-9  # sigmoid-shaped, symmetric around the middle


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_per_sample_modulated_weights(demodulate):
    """The non-fused form (input scaled by the style, output by the demodulation) against the definition: every
    sample convolved with its own modulated (and demodulated) weight."""
    import torch.nn.functional as F

    from fashion_gans.models.blocks import ModulatedConv2d

    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 8, 3, 12, demodulate=demodulate, upsample=True)
    with torch.no_grad():
        conv.bias.normal_()
    x, w = torch.randn(5, 16, 8, 8), torch.randn(5, 12)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    s = conv.affine(w)
    weight = conv.weight[None] * conv.w_scale * s[:, None, :, None, None]
    if demodulate:
        weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    expected = torch.stack([F.conv2d(up[i:i + 1], weight[i], padding=1)[0] for i in range(5)])
    expected = expected + conv.bias[None, :, None, None]
    assert torch.allclose(conv(x, w), expected, atol=1e-5)
