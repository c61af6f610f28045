"""StyleGAN / StyleGAN2 latent API: determinism, z/w, truncation in W, style mixing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fashion_gans.models import StyleGAN2Generator, StyleGANGenerator, get_preset

GENERATORS = [("stylegan_small", StyleGANGenerator), ("stylegan2_small", StyleGAN2Generator)]


def _make(name, cls):
    g = cls(get_preset(name))
    with torch.no_grad():  # non-zero noise strengths, so the noise mode matters
        for m in g.modules():
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.3)
    return g.eval()


@pytest.mark.parametrize("name, cls", GENERATORS)
def test_same_w_same_image_and_z_w_paths_agree(name, cls):
    g = _make(name, cls)
    z = torch.randn(3, g.config.z_dim)
    with torch.no_grad():
        a = g(z, noise_mode="const")
        b = g(z, noise_mode="const")
        w = g.mapping_net(z)
        c = g(w=w, noise_mode="const")
        d = g(w=w[:, None].repeat(1, g.num_ws, 1), noise_mode="const")
        r1, r2 = g(z, noise_mode="random"), g(z, noise_mode="random")
        n1, n2 = g(z, noise_mode="none"), g(z, noise_mode="none")
    assert torch.equal(a, b)
    assert torch.allclose(a, c) and torch.allclose(a, d)
    assert not torch.allclose(r1, r2)  # fresh noise differs
    assert torch.equal(n1, n2) and not torch.allclose(n1, a)
    with pytest.raises(ValueError, match="exactly one of z or w"):
        g(z, w=w)
    with pytest.raises(ValueError, match="w: expected"):
        g(w=torch.zeros(3, 5))


@pytest.mark.parametrize("name, cls", GENERATORS)
def test_truncation_psi_zero_gives_the_w_avg_image(name, cls):
    g = _make(name, cls)
    assert not g.w_avg.any()
    g.train()
    with torch.no_grad():
        for _ in range(5):
            g.mapping(torch.randn(64, g.config.z_dim), update_w_avg=True)
    g.eval()
    assert g.w_avg.abs().sum() > 0  # tracked from the mapping outputs
    with torch.no_grad():
        ref = g(w=g.w_avg[None], noise_mode="const")
        for _ in range(3):
            img = g(torch.randn(2, g.config.z_dim), psi=0.0, noise_mode="const")
            assert torch.allclose(img, ref.expand_as(img), atol=1e-5)
        # psi = 0.5 halves the distance to w_avg in W; a cutoff leaves later layers untouched.
        z = torch.randn(2, g.config.z_dim)
        ws = g.mapping(z)
        half = g.mapping(z, psi=0.5)
        assert torch.allclose(half, g.w_avg + 0.5 * (ws - g.w_avg), atol=1e-6)
        cut = g.mapping(z, psi=0.0, truncation_cutoff=2)
        assert torch.allclose(cut[:, :2], g.w_avg.expand(2, 2, -1))
        assert torch.equal(cut[:, 2:], ws[:, 2:])


def _layout(x, f):
    """Low-frequency layout: pooled by f, mean removed per channel, unit norm per image."""
    lo = F.avg_pool2d(x, f)
    lo = lo - lo.mean(dim=(2, 3), keepdim=True)
    return F.normalize(lo.flatten(1), dim=1)


def _detail(x):
    """High-frequency detail: image minus its 2x blur, unit norm per image."""
    hi = x - F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
    return F.normalize(hi.flatten(1), dim=1)


def _mix_scores(g, crossover, n=48):
    """(low-frequency similarity to the coarse donor minus to the fine donor, high-frequency similarity to the
    fine donor minus to the coarse donor), averaged over n mixed images."""
    with torch.no_grad():
        ws = g.mapping(torch.randn(2 * n, g.config.z_dim))
        a, b = ws[:n], ws[n:]
        ia, ib = g.synthesis(a, noise_mode="const"), g.synthesis(b, noise_mode="const")
        im = g.synthesis(g.mix(a, b, crossover), noise_mode="const")
    f = g.config.resolution // 8
    low = ((_layout(im, f) * _layout(ia, f)).sum(1) - (_layout(im, f) * _layout(ib, f)).sum(1)).mean()
    high = ((_detail(im) * _detail(ib)).sum(1) - (_detail(im) * _detail(ia)).sum(1)).mean()
    return low.item(), high.item()


@pytest.mark.parametrize("name, cls, crossover", [("stylegan_small", StyleGANGenerator, 4),
                                                  ("stylegan2_small", StyleGAN2Generator, 4)])
def test_style_mixing_takes_coarse_from_one_and_fine_from_the_other(name, cls, crossover):
    g = _make(name, cls)
    n_ws = g.num_ws
    with torch.no_grad():
        ws = g.mapping(torch.randn(4, g.config.z_dim))
    mixed = g.mix(ws[:2], ws[2:], crossover)
    assert torch.equal(mixed[:, :crossover], ws[:2, :crossover])
    assert torch.equal(mixed[:, crossover:], ws[2:, crossover:])
    assert mixed.shape == (2, n_ws, g.config.w_dim)

    # On the images, relative to the fine donor, the coarse donor explains the mixed image's low-frequency
    # layout better than its high-frequency detail (frequency separation of the styles) ...
    low, high = _mix_scores(g, crossover)
    assert low + high > 0.1, (low, high)
    # ... handing more layers to the coarse donor moves both further its way, and at the extremes the
    # donor holding most layers wins in its own band.
    lows, highs = zip(*(_mix_scores(g, k) for k in (1, n_ws // 2, n_ws - 1)))
    assert lows[0] < lows[1] < lows[2], lows
    assert highs[0] > highs[1] > highs[2], highs
    assert lows[2] > 0 and highs[0] > 0


def test_stylegan_v1_low_resolution_output_depends_only_on_coarse_styles():
    """Progressive growing makes the split exact: the 8x8 output uses only the 4x4 and 8x8 styles (0..3)."""
    g = _make("stylegan_small", StyleGANGenerator)
    with torch.no_grad():
        ws = g.mapping(torch.randn(4, g.config.z_dim))
        mixed = g.mix(ws[:2], ws[2:], 4)
        assert torch.equal(g.synthesis(mixed, level=1, noise_mode="const"),
                           g.synthesis(ws[:2], level=1, noise_mode="const"))
        assert not torch.allclose(g.synthesis(mixed, noise_mode="const"), g.synthesis(ws[:2], noise_mode="const"))
