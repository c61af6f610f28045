"""Each small generator can fit a fixed batch (the synthesis paths learn); PGPG really uses the pose."""

from __future__ import annotations

import pytest
import torch

from fashion_gans.models import (
    CycleGANGenerator,
    PGPGGenerator,
    PixelDTGenerator,
    StyleGAN2Generator,
    StyleGANGenerator,
    get_preset,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _grid(h, w):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    return ys, xs


def _fit(params, loss_fn, steps, lr):
    opt = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.99))
    first = None
    for _ in range(steps):
        loss = loss_fn()
        first = loss.item() if first is None else first
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return first


def _colours(n, gen):
    return torch.rand(n, 3, generator=gen) * 1.6 - 0.8


def _pose_pairs(size=32, identities=4, poses=3, joints=3):
    """Pose-transfer pairs where the target truly depends on the pose.

    Each identity (a colour) appears with several target poses: the source image is the same for all of
    them, the target paints that colour at the pose's joints.  Without the pose the targets of one identity
    cannot be told apart.
    """
    gen = torch.Generator().manual_seed(3)
    ys, xs = _grid(size, size)
    colours = _colours(identities, gen)
    src, pose, tgt = [], [], []
    for i in range(identities):
        person = torch.ones(3, size, size)
        person[:, 10:22, 12:20] = colours[i][:, None, None]  # a "body" of the identity's colour
        for _ in range(poses):
            centres = torch.randint(5, size - 5, (joints, 2), generator=gen).float()
            heat = torch.zeros(18, size, size)
            target = torch.ones(3, size, size)
            for j, (cy, cx) in enumerate(centres):
                d2 = (ys - cy) ** 2 + (xs - cx) ** 2
                heat[j] = torch.exp(-d2 / (2 * 2.0**2))
                target = torch.where((d2 <= 9)[None], colours[i][:, None, None], target)
            src.append(person)
            pose.append(heat)
            tgt.append(target)
    return torch.stack(src), torch.stack(pose), torch.stack(tgt)


def test_pgpg_overfits_pose_pairs_and_needs_the_pose():
    torch.manual_seed(0)
    src, pose, tgt = _pose_pairs()
    g = PGPGGenerator(get_preset("pgpg_small").replace(image_size=(32, 32), g1_base_channels=8,
                                                       g2_base_channels=8)).train()
    body = (tgt != 1).any(dim=1, keepdim=True).float()  # where the pose puts the person

    def body_l1(x):
        return ((x - tgt).abs() * body).sum().item() / (3 * body.sum().item())


    def loss_fn():
        out = g(src, pose)
        return (out.coarse - tgt).abs().mean() + (out.refined - tgt).abs().mean()

    with torch.no_grad():
        g.eval()
        start = (g(src, pose).refined - tgt).abs().mean().item()
        g.train()
    _fit(g.parameters(), loss_fn, steps=150, lr=3e-3)
    g.eval()
    with torch.no_grad():
        out = g(src, pose).refined
        final = (out - tgt).abs().mean().item()
        no_pose = g(src, torch.zeros_like(pose)).refined
    assert final < start / 10, (start, final)
    # On the body pixels, the pose-less output is far off: the pose is what places the person.
    assert body_l1(no_pose) > 3 * body_l1(out), (body_l1(out), body_l1(no_pose))


def test_pixeldtgan_generator_overfits_person_to_garment():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(4)
    n, s = 8, 64
    ys, xs = _grid(s, s)
    colours = _colours(n, gen)
    person, garment = [], []
    for i in range(n):
        scene = (torch.rand(3, 1, 1, generator=gen) * 2 - 1) * torch.ones(3, s, s)  # varied background
        scene[:, 8:18, 26:38] = 0.6  # head
        stripes = ((ys // 4) % 2 == 0) if i % 2 else torch.zeros(s, s, dtype=torch.bool)
        shirt = colours[i][:, None, None] * torch.where(stripes, 0.3, 1.0)
        scene[:, 18:44, 18:46] = shirt[:, 18:44, 18:46]  # the worn top
        flat = torch.ones(3, s, s)
        flat[:, 16:48, 14:50] = shirt[:, 16:48, 14:50]  # product shot on white, centred
        person.append(scene)
        garment.append(flat)
    person, garment = torch.stack(person), torch.stack(garment)
    g = PixelDTGenerator(get_preset("pixeldtgan_small")).train()
    start = _fit(g.parameters(), lambda: (g(person) - garment).abs().mean(), steps=250, lr=2e-3)
    with torch.no_grad():
        final = (g(person) - garment).abs().mean().item()  # train-mode BN: the batch statistics it fit with
    assert final < start / 10, (start, final)


def test_cyclegan_generator_overfits_shoe_to_bag():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(5)
    n, s = 4, 64
    ys, xs = _grid(s, s)
    colours = _colours(n, gen)
    shoe_mask = ((ys > 36) & (ys < 50) & (xs > 8) & (xs < 56)) | ((ys > 22) & (ys <= 36) & (xs > 8) & (xs < 26))
    bag_mask = ((ys > 24) & (ys < 54) & (xs > 14) & (xs < 50)) | (((ys - 24) ** 2 + (xs - 32) ** 2 < 100)
                                                                   & ((ys - 24) ** 2 + (xs - 32) ** 2 > 49)
                                                                   & (ys < 24))
    shoes = torch.stack([torch.where(shoe_mask[None], c[:, None, None], torch.ones(3, s, s)) for c in colours])
    bags = torch.stack([torch.where(bag_mask[None], c[:, None, None], torch.ones(3, s, s)) for c in colours])
    g = CycleGANGenerator(get_preset("cyclegan_small"), direction="ab").train()
    start = _fit(g.parameters(), lambda: (g(shoes) - bags).abs().mean(), steps=150, lr=3e-3)
    with torch.no_grad():
        final = (g(shoes) - bags).abs().mean().item()
    assert final < start / 10, (start, final)


@pytest.mark.parametrize("name, cls", [("stylegan_small", StyleGANGenerator), ("stylegan2_small", StyleGAN2Generator)])
def test_stylegan_synthesis_fits_fixed_images_from_fixed_w(name, cls):
    torch.manual_seed(0)
    g = cls(get_preset(name)).train()
    gen = torch.Generator().manual_seed(6)
    n, s = 4, g.config.resolution
    ys, xs = _grid(s, s)
    targets = []
    for i in range(n):
        img = torch.ones(3, s, s) * (torch.rand(3, 1, 1, generator=gen) * 2 - 1)
        cy, cx = torch.randint(8, s - 8, (2,), generator=gen).tolist()
        blob = ((ys - cy) ** 2 + (xs - cx) ** 2) < 36
        img = torch.where(blob[None], -img, img)
        targets.append(img)
    targets = torch.stack(targets)
    w = torch.randn(n, g.config.w_dim, generator=gen)
    start = _fit(g.parameters(), lambda: (g(w=w, noise_mode="const") - targets).abs().mean(), steps=250, lr=5e-3)
    with torch.no_grad():
        out = g(w=w, noise_mode="const")
    final = (out - targets).abs().mean().item()
    assert final < start / 10, (start, final)
    # Each w gives its own image (not one average image): output i is nearest to target i.
    dist = (out[:, None] - targets[None]).abs().mean(dim=(2, 3, 4))
    assert torch.equal(dist.argmin(dim=1), torch.arange(n))
