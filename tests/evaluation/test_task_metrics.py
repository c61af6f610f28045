"""Task metrics move the right way on images whose ground truth is known (the synthetic world, Fashion-MNIST)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fashion_gans.data import synthetic as sw
from fashion_gans.evaluation import task_metrics as tm

WORLD = sw.SyntheticWorld(4242)  # identities and styles no extractor was trained on


def _t(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _far_colour(colour: str) -> str:
    warm = {"red", "orange", "yellow", "pink", "brown", "beige", "purple"}
    return "teal" if colour in warm else "red"


# --------------------------------------------------------------------------------------------- keypoints
def test_keypoint_detector_is_accurate_on_held_out_renders_and_fails_on_wrong_poses():
    from fashion_gans.metrics.extractors.train import render_keypoint_set

    images, kp = render_keypoint_set(3000, 48, blur_fraction=0.0)
    s = images.shape[-1]
    target = torch.where(kp >= 0, kp * s - 0.5, kp)
    right = tm.keypoint_metrics(images, target)
    assert float(right["keypoint_error"].nanmean()) < 0.03
    assert float(right["pck_0.05"].nanmean()) > 0.9
    # The keypoints of another image (another pose and identity) are far from what the detector sees.
    wrong = tm.keypoint_metrics(images, target.roll(1, dims=0))
    assert float(wrong["keypoint_error"].nanmean()) > 3 * float(right["keypoint_error"].nanmean())


def test_keypoint_error_of_the_true_target_is_the_floor_and_a_copied_source_is_worse():
    sources, targets, target_kp = [], [], []
    for i in range(24):
        p = WORLD.person(i)
        a = WORLD.render_person(p, WORLD.pose(i, 0), (64, 64))  # front
        b = WORLD.render_person(p, WORLD.pose(i, 4), (64, 64))  # arms raised
        sources.append(a.image)
        targets.append(b.image)
        target_kp.append(b.keypoints)
    src, tgt, kp = _t(sources), _t(targets), torch.from_numpy(np.stack(target_kp))
    floor = tm.keypoint_metrics(tgt, kp)["keypoint_error"].nanmean()
    copied = tm.keypoint_metrics(src, kp)["keypoint_error"].nanmean()
    assert floor < 0.03
    assert copied > 2 * floor
    same, copy = tm.ssim_l1(tgt, tgt), tm.ssim_l1(src, tgt)
    assert torch.allclose(same["ssim"], torch.ones(24), atol=1e-6) and float(same["l1"].max()) == 0.0
    assert float(copy["ssim"].mean()) < 0.95 and float(copy["l1"].mean()) > 0.01


# --------------------------------------------------------------------------------------------- garment
def test_garment_colour_kept_high_for_the_true_product_and_low_when_recoloured():
    garments = [WORLD.person(i).top for i in range(40)]
    true = _t([WORLD.render_flat(g, (64, 64)) for g in garments])
    recoloured = _t([WORLD.render_flat(dataclasses.replace(g, colour=_far_colour(g.colour)), (64, 64))
                     for g in garments])
    truth = {"colour": [g.colour for g in garments], "pattern": [g.pattern for g in garments]}
    ok = tm.attributes_kept(true, truth)
    assert float(ok["colour_kept"].mean()) >= 0.9
    assert float(ok["garment_kept"].mean()) >= 0.85
    bad = tm.attributes_kept(recoloured, truth)
    assert float(bad["colour_kept"].mean()) <= 0.2
    # A person photo keeps the colour of the worn top but is no product photo.
    persons = _t([WORLD.render_person(WORLD.person(i), WORLD.pose(i, 0), (64, 64)).image for i in range(40)])
    worn = tm.attributes_kept(persons, truth)
    assert float(worn["domain_ok"].mean()) <= 0.1 and float(worn["garment_kept"].mean()) <= 0.1


# --------------------------------------------------------------------------------------------- style
def test_style_match_of_the_true_partner_is_high_and_of_a_random_partner_low():
    n = 40
    styles = [WORLD.accessory_style(j) for j in range(n)]
    bags = _t([WORLD.render_bag(s, sw.ACCESSORY_SHAPES["bag"][j % 5], (64, 64)) for j, s in enumerate(styles)])
    shoe_truth = {"colour": [s.colour for s in styles], "pattern": [s.pattern for s in styles]}
    partner = tm.style_match(bags, shoe_truth, "bag")
    assert float(partner["colour_match"].mean()) >= 0.9
    assert float(partner["pattern_match"].mean()) >= 0.85
    assert float(partner["domain_ok"].mean()) == 1.0
    perm = torch.from_numpy(np.random.default_rng(0).permutation(n))
    random_partner = tm.style_match(bags[perm], shoe_truth, "bag")
    same_colour = float(np.mean([styles[int(perm[j])].colour == styles[j].colour for j in range(n)]))
    assert float(random_partner["colour_match"].mean()) <= same_colour + 0.15
    assert float(random_partner["style_match"].mean()) < float(partner["style_match"].mean())
    # The material head is weak (~68% held out): style_match does not require it, material_match reports it.
    wrong_material = dict(shoe_truth, material=[sw.MATERIALS[(sw.MATERIALS.index(s.material) + 2) % 4] for s in styles])
    graded = tm.style_match(bags, wrong_material, "bag")
    assert float(graded["material_match"].mean()) <= 0.5
    assert torch.equal(graded["style_match"], partner["style_match"])
    assert float(graded["style_match"].mean()) >= 0.8
    # The shoe itself (returned unchanged) has the style but is not a bag.
    shoes = _t([WORLD.render_shoe(s, "sneaker", (64, 64)) for s in styles])
    assert float(tm.style_match(shoes, shoe_truth, "bag")["style_match"].mean()) == 0.0


# --------------------------------------------------------------------------------------------- Fashion-MNIST
def test_fmnist_target_class_rate_of_real_bags_and_shoes(fashion_mnist_dir):
    from fashion_gans.data.fashion_mnist import load_fashion_mnist

    images, labels = load_fashion_mnist(fashion_mnist_dir, "test")
    images = torch.from_numpy(np.array(images[:1200])).unsqueeze(1)
    labels = torch.from_numpy(np.array(labels[:1200]))
    bags, shoes = images[labels == 8], images[torch.isin(labels, torch.tensor([5, 7, 9]))]
    assert float(tm.target_class_rate(bags, tm.SHOE_TO_BAG).mean()) >= 0.9
    assert float(tm.target_class_rate(shoes, tm.SHOE_TO_BAG).mean()) <= 0.05
    assert float(tm.target_class_rate(shoes, tm.BAG_TO_SHOE).mean()) >= 0.95
    assert float(tm.target_class_rate(bags, tm.BAG_TO_SHOE).mean()) <= 0.05
    # What a collapsed translator emits: the classifier alone calls flat grey a Bag and flat black a shoe, and
    # reads some noise images as bags; none of them may count.
    levels = torch.linspace(-1, 1, 21).view(-1, 1, 1, 1).expand(-1, 1, 32, 32)
    g = torch.Generator().manual_seed(0)
    noise = torch.cat([torch.rand(300, 1, 32, 32, generator=g) * 2 - 1,
                       (torch.randn(300, 1, 32, 32, generator=g) * 0.5).clamp(-1, 1)])
    for direction in (tm.SHOE_TO_BAG, tm.BAG_TO_SHOE):
        assert float(tm.target_class_rate(levels, direction).max()) == 0.0
        assert float(tm.target_class_rate(noise, direction).mean()) <= 0.01
    assert float(tm.target_class_rate(levels, tm.SHOE_TO_BAG, min_confidence=0.5, min_contrast=0.0).mean()) >= 0.8
    with pytest.raises(ValueError, match="direction"):
        tm.target_class_rate(bags, "bag2bag")


# --------------------------------------------------------------------------------------------- generation
def test_coverage_and_entropy_fall_when_a_generator_collapses():
    real = torch.arange(10).repeat(20)
    full = tm.attribute_coverage(real.flip(0), real, 10)
    assert full["coverage"] == 1.0 and full["entropy"] == pytest.approx(1.0)
    collapsed = tm.attribute_coverage(torch.full((200,), 3), real, 10)
    assert collapsed["coverage"] == pytest.approx(0.1) and collapsed["entropy"] == 0.0
    half = tm.attribute_coverage(torch.arange(5).repeat(40), real, 10)
    assert half["coverage"] == pytest.approx(0.5)
    f = torch.randn(50, 8)
    assert tm.mean_pairwise_distance(f) > 0 and tm.mean_pairwise_distance(f[:1].expand(50, -1)) == 0.0


def test_keypoint_training_lowers_the_loss_and_the_shipped_detector_is_small(tmp_path):
    from fashion_gans.metrics.extractors import ASSETS_DIR
    from fashion_gans.metrics.extractors.keypoints import KeypointDetector, KeypointNetConfig
    from fashion_gans.metrics.extractors.train import TrainConfig, render_keypoint_set, train_keypoint_net

    images, kp = render_keypoint_set(5, 96)
    lines: list[str] = []
    det = train_keypoint_net(KeypointNetConfig(), images, kp, TrainConfig(epochs=4, batch_size=32, lr=3e-3),
                             log=lines.append)
    losses = [float(line.split("L1 ")[1].split()[0]) for line in lines]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]
    det.save_pretrained(tmp_path / "kp")
    again = KeypointDetector.from_pretrained(tmp_path / "kp")
    assert torch.equal(again.detect(images[:4]), det.detect(images[:4]))
    shipped = ASSETS_DIR / "synthetic-pose" / "model.safetensors"
    assert shipped.stat().st_size < 3 * 2 ** 20
