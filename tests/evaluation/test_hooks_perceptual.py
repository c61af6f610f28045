"""batch_metrics (the training-loop hook), the extractor cache, LPIPS and the domain perceptual distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fashion_gans.data import synthetic as sw
from fashion_gans.evaluation import (LPIPS, DomainPerceptualDistance, batch_metrics, cached_extractor,
                                     cached_keypoint_detector, load_lpips)
from fashion_gans.evaluation.perceptual import lpips_distance_reference, normalize_tensor

WORLD = sw.SyntheticWorld(777)


def _signed(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_networks_are_loaded_once_per_process():
    assert cached_extractor("synthetic-attributes") is cached_extractor("synthetic-attributes")
    assert cached_keypoint_detector() is cached_keypoint_detector()


def test_batch_metrics_pose_garment_style():
    renders = [(WORLD.render_person(WORLD.person(i), WORLD.pose(i, 0), (64, 64)),
                WORLD.render_person(WORLD.person(i), WORLD.pose(i, 3), (64, 64))) for i in range(12)]
    batch = {"source_image": _signed([a.image for a, _ in renders]),
             "target_image": _signed([b.image for _, b in renders]),
             "target_keypoints": torch.from_numpy(np.stack([b.keypoints for _, b in renders]))}
    perfect = batch_metrics("pose", batch, batch["target_image"])
    copied = batch_metrics("pose", batch, batch["source_image"])
    assert perfect["ssim"] == pytest.approx(1.0) and perfect["l1"] == 0.0
    assert perfect["keypoint_error"] < 0.03 < copied["keypoint_error"] and copied["ssim"] < perfect["ssim"]
    # Real photos: the synthetic-pose detector only knows the mannequins, so no keypoint numbers.
    assert set(batch_metrics("pose", batch, batch["target_image"], domain="other")) == {"ssim", "l1"}

    garments = [WORLD.person(i).top for i in range(12)]
    products = _signed([WORLD.render_flat(g, (64, 64)) for g in garments])
    g_batch = {"person_image": batch["source_image"], "product_image": products}
    good = batch_metrics("garment", g_batch, products)
    bad = batch_metrics("garment", g_batch, g_batch["person_image"])
    assert good["colour_kept"] >= 0.9 and good["garment_kept"] >= 0.8 and bad["garment_kept"] <= 0.1
    assert set(batch_metrics("garment", g_batch, products, domain="other")) == {"ssim", "l1"}

    styles = [WORLD.accessory_style(j) for j in range(12)]
    shoes = _signed([WORLD.render_shoe(s, "boot", (64, 64)) for s in styles])
    bags = _signed([WORLD.render_bag(s, "tote", (64, 64)) for s in styles])
    s_batch = {"shoe": shoes, "bag": bags}
    partners = batch_metrics("style", s_batch, {"bag": bags, "shoe": shoes})
    unchanged = batch_metrics("style", s_batch, {"bag": shoes, "shoe": bags})
    assert partners["shoe2bag/colour_match"] >= 0.9 and partners["bag2shoe/domain_ok"] == 1.0
    assert unchanged["shoe2bag/style_match"] == 0.0
    with pytest.raises(TypeError, match="dict"):
        batch_metrics("style", s_batch, bags)
    with pytest.raises(ValueError, match="unknown task"):
        batch_metrics("posing", batch, bags)


def test_batch_metrics_fashion_mnist(fashion_mnist_dir):
    from fashion_gans.data.fashion_mnist import FashionMNIST, FashionMNISTShoesBags

    ds = FashionMNISTShoesBags(fashion_mnist_dir, "test")
    items = [ds[i] for i in range(64)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("shoe", "bag")}
    right = batch_metrics("style", batch, {"bag": batch["bag"], "shoe": batch["shoe"]})
    wrong = batch_metrics("style", batch, {"bag": batch["shoe"], "shoe": batch["bag"]})
    assert right["shoe2bag/target_class_rate"] >= 0.9 and wrong["shoe2bag/target_class_rate"] <= 0.05
    # A collapsed translator (one flat grey image, which the classifier alone calls a Bag) scores nothing,
    # and the diversity next to the rate shows the collapse.
    grey = torch.zeros_like(batch["bag"])
    collapsed = batch_metrics("style", batch, {"bag": grey, "shoe": grey})
    assert collapsed["shoe2bag/target_class_rate"] == 0.0 and collapsed["bag2shoe/target_class_rate"] == 0.0
    assert collapsed["shoe2bag/diversity"] < 1e-6 < 0.5 < right["shoe2bag/diversity"]
    gen = FashionMNIST(fashion_mnist_dir, "test")
    real = torch.stack([gen[i]["image"] for i in range(128)])
    other = torch.stack([gen[i]["image"] for i in range(128, 256)])
    good = batch_metrics("generation", {"image": real}, other)
    collapsed = batch_metrics("generation", {"image": real}, other[:1].expand(128, -1, -1, -1))
    assert good["fid"] < collapsed["fid"] and good["coverage_class"] > collapsed["coverage_class"]
    assert collapsed["diversity"] < 1e-6 < good["diversity"]


# --------------------------------------------------------------------------------------------- LPIPS
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_the_reference_formula_with_random_weights(net):
    torch.manual_seed(0)
    model = LPIPS(net).eval()
    for lin in model.lins:
        lin.weight.data.uniform_(0, 1)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        got = model(x, y)
        fx, fy = model._activations(x), model._activations(y)
        ref = lpips_distance_reference(fx, fy, [lin.weight.flatten() for lin in model.lins])
    assert [f.shape[1] for f in fx] == list({"alex": (64, 192, 384, 256, 256),
                                             "vgg": (64, 128, 256, 512, 512)}[net])
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-7)
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-7)
    # Unit normalisation: a rescaled activation has the same normalised value.
    assert torch.allclose(normalize_tensor(3 * fx[0]), normalize_tensor(fx[0]), atol=1e-6)


def test_lpips_loads_local_weight_files(tmp_path):
    torch.manual_seed(1)
    src = LPIPS("alex")
    for lin in src.lins:
        lin.weight.data.uniform_(0, 1)
    torch.save({f"features.{k}": v for k, v in src.features.state_dict().items()}, tmp_path / "alexnet.pth")
    torch.save({f"lin{i}.model.1.weight": lin.weight.data.clone() for i, lin in enumerate(src.lins)},
               tmp_path / "alex.pth")
    loaded = load_lpips("alex", trunk=tmp_path / "alexnet.pth", linear=tmp_path / "alex.pth")
    x, y = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded(x, y), src.eval()(x, y))
    torch.save({"lin0.model.1.weight": torch.ones(1, 64, 1, 1)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="lin1"):
        load_lpips("alex", trunk=tmp_path / "alexnet.pth", linear=tmp_path / "partial.pth")
    with pytest.raises(FileNotFoundError, match="LPIPS weight file"):
        load_lpips("alex", trunk=tmp_path / "none.pth", linear=tmp_path / "alex.pth")


def test_domain_perceptual_distance_grows_with_the_difference():
    images = _signed([WORLD.render_flat(WORLD.person(i).top, (64, 64)) for i in range(8)])
    d = DomainPerceptualDistance("synthetic-attributes")
    assert len(d.stages) == 4
    assert torch.allclose(d(images, images), torch.zeros(8), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(images.shape, generator=g)
    small = d(images, (images + 0.1 * noise).clamp(-1, 1)).mean()
    large = d(images, (images + 0.5 * noise).clamp(-1, 1)).mean()
    other = d(images, images.roll(1, 0)).mean()
    assert 0 < small < large and small < other
    fm = DomainPerceptualDistance("fmnist-classifier")
    assert len(fm.stages) == 3
