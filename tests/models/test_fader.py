"""Fader Networks model: shapes, the attribute code at every decoder layer, a decoder that learns to follow the
code, parameter counts from the architecture, save/load round trip."""

from __future__ import annotations

import pytest
import torch

from fashion_gans.models import FaderNetwork, LatentDiscriminator, ModelFileError, build_models, get_preset
from fashion_gans.models.attributes import attribute_code
from fashion_gans.models.blocks import count_parameters
from fashion_gans.models.fader import latent_shape

PRESETS = ["fader_synthetic", "fader_fmnist"]


def _batch(cfg, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, cfg.image_channels, cfg.image_size, cfg.image_size, generator=g) * 2 - 1
    idx = torch.stack([torch.randint(0, len(v), (n,), generator=g) for v in cfg.attributes.values()], 1)
    return x, idx, attribute_code(idx, cfg.attributes)


@pytest.mark.parametrize("preset", PRESETS)
def test_forward_backward_shapes_and_every_parameter_gets_a_gradient(preset):
    cfg = get_preset(preset)
    models = build_models(cfg)
    assert set(models) == {"fader", "latent_disc"}
    fader, dis = models["fader"], models["latent_disc"]
    x, idx, code = _batch(cfg)
    rec, z = fader(x, code, return_latent=True)
    logits = dis(z)
    assert rec.shape == x.shape and rec.abs().max() <= 1  # tanh output
    assert z.shape == (4, *latent_shape(cfg)) == (4, cfg.enc_channels[-1], 2, 2)
    assert logits.shape == (4, cfg.code_size)
    ((rec - x).square().mean() + logits.square().mean()).backward()
    for m in (fader, dis):
        missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not missing, missing
    fader.eval()
    assert torch.equal(fader(x, code), fader.decode(fader.encode(x), code))


def test_code_is_concatenated_to_the_input_of_every_decoder_layer():
    """Each decoder layer's input ends with the code as constant maps (the paper's placement)."""
    cfg = get_preset("fader_synthetic")
    fader = FaderNetwork(cfg).eval()
    x, _, code = _batch(cfg, n=3)
    seen = []
    convs = [m for m in fader.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == len(cfg.enc_channels)
    for conv in convs:
        conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    fader(x, code)
    assert len(seen) == len(convs)
    for inp in seen:
        tail = inp[:, -cfg.code_size:]
        assert torch.equal(tail, code[:, :, None, None].expand_as(tail))
    assert [t.shape[-1] for t in seen] == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("preset", PRESETS)
def test_different_codes_give_different_outputs(preset):
    cfg = get_preset(preset)
    torch.manual_seed(0)
    fader = FaderNetwork(cfg).eval()
    x, idx, code = _batch(cfg)
    other = idx.clone()
    other[:, 0] = (other[:, 0] + 1) % len(next(iter(cfg.attributes.values())))
    with torch.no_grad():
        z = fader.encode(x)
        a, b = fader.decode(z, code), fader.decode(z, attribute_code(other, cfg.attributes))
    assert (a - b).abs().flatten(1).amax(1).min() > 1e-4


def test_decoder_learns_to_follow_the_code():
    """With one latent map for both images, 150 Adam steps teach the decoder to draw one of two target images by
    the code alone: each code reproduces its own target, far from the other one."""
    cfg = get_preset("fader_fmnist").replace(enc_channels=(8, 16, 32))
    torch.manual_seed(0)
    fader = FaderNetwork(cfg).train()
    s = cfg.image_size
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    square = ((yy - s / 2).abs() < s / 4) & ((xx - s / 2).abs() < s / 4)
    ring = ((yy - s / 2) ** 2 + (xx - s / 2) ** 2 - (s / 3) ** 2).abs() < 2 * s
    targets = torch.stack([square, ring]).float()[:, None] * 2 - 1  # (2, 1, s, s)
    idx = torch.tensor([[0], [7]])
    code = attribute_code(idx, cfg.attributes)
    # One latent map for both (a spatially constant input could not place a shape: transposed convs are
    # translation-equivariant); only the code tells the two targets apart.
    z = torch.randn(1, *latent_shape(cfg), generator=torch.Generator().manual_seed(0)).expand(2, -1, -1, -1)
    opt = torch.optim.Adam(fader.decoder.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(150):
        opt.zero_grad()
        loss = (fader.decode(z, code) - targets).square().mean()
        loss.backward()
        opt.step()
    fader.eval()
    with torch.no_grad():
        out = fader.decode(z, code)
    own = (out - targets).abs().mean(dim=(1, 2, 3))
    swapped = (out - targets.flip(0)).abs().mean(dim=(1, 2, 3))
    assert (own < 0.15).all() and (swapped > 3 * own).all(), (own, swapped)


def _expected_counts(cfg) -> tuple[int, int]:
    """Parameter counts from the architecture: 4x4 convs with bias, BatchNorm (2 per channel) on every encoder
    layer but the first and every decoder layer but the last, the code's extra input maps on every decoder layer."""
    w = [cfg.image_channels, *cfg.enc_channels]
    enc = sum(a * b * 16 + b + (2 * b if i > 0 else 0) for i, (a, b) in enumerate(zip(w[:-1], w[1:])))
    r = w[::-1]
    dec = sum((a + cfg.code_size) * b * 16 + b + (2 * b if i < len(r) - 2 else 0)
              for i, (a, b) in enumerate(zip(r[:-1], r[1:])))
    c, s, _ = latent_shape(cfg)
    h = cfg.dis_hidden
    k = 16 if s >= 2 else 1
    out_s = s // 2 if s >= 2 else s
    dis = c * h * k + h + 2 * h + h * out_s * out_s * h + h + h * cfg.code_size + cfg.code_size
    return enc + dec, dis


@pytest.mark.parametrize("preset", PRESETS)
def test_parameter_counts_follow_the_architecture(preset):
    cfg = get_preset(preset)
    models = build_models(cfg)
    fader_n, dis_n = _expected_counts(cfg)
    assert count_parameters(models["fader"]) == fader_n
    assert count_parameters(models["latent_disc"]) == dis_n
    # Small presets: a few million parameters at most (CPU training, bundled weights).
    assert 0.5e6 < fader_n < 5e6 and dis_n < fader_n


@pytest.mark.parametrize("cls", [FaderNetwork, LatentDiscriminator])
def test_save_load_round_trip_is_bit_exact(tmp_path, cls):
    cfg = get_preset("fader_synthetic")
    torch.manual_seed(1)
    model = cls(cfg)
    # Move the BatchNorm running statistics off their initial values so that buffers are checked too.
    x, _, code = _batch(cfg, n=8)
    with torch.no_grad():
        model.train()
        model(x, code) if cls is FaderNetwork else model(FaderNetwork(cfg).encode(x))
    model.eval()
    model.save_pretrained(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    back = cls.from_pretrained(tmp_path / "m")
    assert back.config == cfg and not back.training
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad():
        if cls is FaderNetwork:
            assert torch.equal(model(x, code), back(x, code))
        else:
            z = torch.randn(8, *latent_shape(cfg))
            assert torch.equal(model(z), back(z))
    other = LatentDiscriminator if cls is FaderNetwork else FaderNetwork
    with pytest.raises(ModelFileError, match=cls.__name__):
        other.from_pretrained(tmp_path / "m")


def test_bad_inputs_name_the_problem():
    cfg = get_preset("fader_fmnist")
    fader, dis = FaderNetwork(cfg).eval(), LatentDiscriminator(cfg).eval()
    x, _, code = _batch(cfg, n=2)
    with pytest.raises(ValueError, match=r"image: expected \(N, 1, 32, 32\)"):
        fader(torch.zeros(2, 3, 32, 32), code)
    with pytest.raises(ValueError, match=r"attribute code: expected \(2, 10\)"):
        fader(x, code[:, :5])
    with pytest.raises(ValueError, match=r"latent: expected \(N, 256, 2, 2\)"):
        dis(torch.zeros(2, 256, 4, 4))
