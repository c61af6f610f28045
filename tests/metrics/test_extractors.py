"""Feature extractors: the standard FID Inception's layout and resize, the thesis variant, the shipped domain
networks (accuracy as stated in their config.json) and deterministic retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fashion_gans.metrics.extractors import ASSETS_DIR, FIDInceptionV3, ThesisInceptionV3, resize_bilinear_tf1
from fashion_gans.metrics.extractors.domain import DomainExtractor, fmnist_config, synthetic_attributes_config
from fashion_gans.metrics.extractors.inception import FID_WEIGHTS_FILENAME
from fashion_gans.metrics.extractors.train import (TrainConfig, evaluate, evaluate_by_domain, predict,
                                                   fmnist_arrays, jpeg_round_trip, render_synthetic,
                                                   train_domain_net)
from fashion_gans.metrics.features import get_extractor, list_extractors


# --------------------------------------------------------------------------------------------- helpers
def standard_fid_state_dict(seed: int = 0, with_num_batches_tracked: bool = False) -> dict[str, torch.Tensor]:
    """Random weights in the layout of pt_inception-2015-12-05-6726825d.pth: pytorch-fid builds the model the
    file is loaded into as torchvision ``inception_v3(num_classes=1008, aux_logits=False)`` with patched
    (parameter-identical) Mixed blocks, so that model's state-dict keys and shapes are the standard ones."""
    from torchvision.models import inception_v3

    torch.manual_seed(seed)
    ref = inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    state = {}
    for k, v in ref.state_dict().items():
        if k.endswith("num_batches_tracked"):
            if with_num_batches_tracked:
                state[k] = v.clone()
            continue
        if k.endswith("running_var"):
            state[k] = torch.rand_like(v) + 0.5
        else:
            state[k] = torch.randn_like(v) * 0.05
    return state


def tf1_resize_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """float64 TensorFlow 1.x ``resize_bilinear(align_corners=False)`` from its definition: output pixel ``i``
    samples ``i * in / out``; neighbours ``floor`` and ``min(floor + 1, in - 1)``; bilinear weights."""
    c, in_h, in_w = img.shape
    out = np.zeros((c, out_h, out_w), dtype=np.float64)
    for i in range(out_h):
        sy = i * in_h / out_h
        y0 = int(np.floor(sy))
        y1 = min(y0 + 1, in_h - 1)
        fy = sy - y0
        for j in range(out_w):
            sx = j * in_w / out_w
            x0 = int(np.floor(sx))
            x1 = min(x0 + 1, in_w - 1)
            fx = sx - x0
            top = img[:, y0, x0] * (1 - fx) + img[:, y0, x1] * fx
            bottom = img[:, y1, x0] * (1 - fx) + img[:, y1, x1] * fx
            out[:, i, j] = top * (1 - fy) + bottom * fy
    return out


# --------------------------------------------------------------------------------------------- registry
def test_all_extractors_registered():
    names = set(list_extractors())
    assert {"inception-v3-fid", "inception-v3-thesis", "fmnist-classifier", "synthetic-attributes"} <= names


# --------------------------------------------------------------------------------------------- FID Inception
def test_fid_inception_loads_standard_layout(tmp_path):
    state = standard_fid_state_dict()
    path = tmp_path / FID_WEIGHTS_FILENAME
    torch.save(state, path)
    net = FIDInceptionV3(weights=path)
    own = net.state_dict()
    assert {k for k in own if not k.endswith("num_batches_tracked")} == set(state)
    for k, v in state.items():
        assert torch.equal(own[k], v), k
    assert own["fc.weight"].shape == (1008, 2048)
    images = torch.randint(0, 256, (2, 3, 40, 56), dtype=torch.uint8)
    with torch.no_grad():
        out = net(images)
    assert out["features"].shape == (2, 2048) and out["logits"].shape == (2, 1008)
    assert torch.isfinite(out["features"]).all()
    # pool3 features are averages of ReLU outputs; logits are fc(features).
    assert (out["features"] >= 0).all()
    torch.testing.assert_close(out["logits"], out["features"] @ state["fc.weight"].T + state["fc.bias"])
    # A checkpoint that carries BatchNorm counters loads as well.
    torch.save(standard_fid_state_dict(with_num_batches_tracked=True), tmp_path / "b.pth")
    FIDInceptionV3(weights=tmp_path / "b.pth")


def test_fid_inception_rejects_wrong_layout(tmp_path):
    state = standard_fid_state_dict()
    state["fc.weight"] = state["fc.weight"][:1000]
    state["fc.bias"] = state["fc.bias"][:1000]
    path = tmp_path / "torchvision_like.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="torchvision_like.pth"):
        FIDInceptionV3(weights=path)


def test_fid_inception_without_weights_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_GANS_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        FIDInceptionV3()
    assert FID_WEIGHTS_FILENAME in str(err.value) and str(tmp_path) in str(err.value)
    # ... and finds the file there once it is put in place.
    torch.save(standard_fid_state_dict(), tmp_path / FID_WEIGHTS_FILENAME)
    assert torch.equal(FIDInceptionV3().fc.bias, torch.load(tmp_path / FID_WEIGHTS_FILENAME)["fc.bias"])


@pytest.mark.parametrize("in_hw", [(32, 32), (64, 48), (28, 28), (300, 310)])
def test_resize_matches_tf1_reference(in_hw):
    g = torch.Generator().manual_seed(in_hw[0])
    img = torch.randint(0, 256, (1, 3, *in_hw), dtype=torch.uint8, generator=g)
    ours = resize_bilinear_tf1(img.float(), (299, 299))[0].double().numpy()
    ref = tf1_resize_reference(img[0].double().numpy(), 299, 299)
    # Source coordinates are float32 (as torch-fidelity computes them): each is off by at most a few ulps of
    # ``in_size``, times a neighbour difference of at most 255 grey levels - far below one grey level.
    tol = 255 * max(in_hw) * 2.0 ** -22 + 1e-4
    assert np.abs(ours - ref).max() < tol
    # The TF-1 resize is not pytorch-fid's F.interpolate(align_corners=False) (half-pixel centres).
    half_pixel = F.interpolate(img.float(), size=(299, 299), mode="bilinear", align_corners=False)[0].numpy()
    assert np.abs(half_pixel - ref).max() > 1.0


def test_resize_identity_and_preprocess():
    img = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    assert torch.equal(resize_bilinear_tf1(img.float(), (299, 299)), img.float())
    net = FIDInceptionV3(load_weights=False)
    small = torch.randint(0, 256, (1, 3, 20, 30), dtype=torch.uint8)
    ref = (tf1_resize_reference(small[0].double().numpy(), 299, 299) - 128) / 128
    assert np.abs(net.preprocess(small)[0].double().numpy() - ref).max() < 2e-5
    grey = small[:, :1]
    x = net.preprocess(grey)
    assert x.shape == (1, 3, 299, 299) and torch.equal(x[:, 0], x[:, 2])
    with pytest.raises(TypeError, match="uint8"):
        net(small.float())


# --------------------------------------------------------------------------------------------- thesis Inception
def test_thesis_inception_loads_torchvision_layout(tmp_path):
    from torchvision.models import inception_v3

    torch.manual_seed(1)
    ref = inception_v3(weights=None, aux_logits=True, init_weights=False)  # torchvision's file has AuxLogits
    state = {k: (torch.rand_like(v) + 0.5 if k.endswith("running_var") else torch.randn_like(v) * 0.05)
             if v.is_floating_point() else v for k, v in ref.state_dict().items()}
    path = tmp_path / "inception_v3_google.pth"
    torch.save(state, path)
    net = ThesisInceptionV3(weights=path)
    assert torch.equal(net.fc.weight, state["fc.weight"])
    assert torch.equal(net.net.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    images = torch.randint(0, 256, (2, 3, 64, 48), dtype=torch.uint8)
    x = net.preprocess(images)
    assert x.shape == (2, 3, 299, 299)
    # Thesis quirk: the batch is min/max rescaled to [0, 1] before the ImageNet normalisation.
    unit = x * net.std + net.mean
    assert float(unit.min()) == pytest.approx(0.0, abs=1e-6) and float(unit.max()) == pytest.approx(1.0, abs=1e-6)
    with torch.no_grad():
        out = net(images)
    assert out["features"].shape == (2, 2048) and out["logits"].shape == (2, 1000)


# --------------------------------------------------------------------------------------------- shipped networks
def _shipped(name: str) -> tuple[DomainExtractor, dict]:
    directory = ASSETS_DIR / name
    if not (directory / "model.safetensors").is_file():
        pytest.fail(f"{directory}: shipped weights missing (run scripts/train_extractors.py)")
    return get_extractor(name), json.loads((directory / "config.json").read_text())


@pytest.mark.parametrize("name", ["fmnist-classifier", "synthetic-attributes"])
def test_shipped_extractor_is_small_and_documented(name):
    ext, meta = _shipped(name)
    assert sum(p.numel() for p in ext.parameters()) < 1_000_000
    assert (ASSETS_DIR / name / "model.safetensors").stat().st_size < 4 * 2 ** 20
    for key in ("command", "seed", "data", "heldout_accuracy", "train"):
        assert key in meta, key
    assert not ext.training and ext.name == name


def test_fmnist_classifier_reaches_stated_test_accuracy(fashion_mnist_dir):
    ext, meta = _shipped("fmnist-classifier")
    images, labels = fmnist_arrays(fashion_mnist_dir, "test")
    acc = evaluate(ext, images, labels)["class"]
    assert acc["n"] == 10000
    assert acc["accuracy"] >= 0.90
    assert acc["accuracy"] == pytest.approx(meta["heldout_accuracy"]["class"]["accuracy"], abs=2e-3)
    out = ext(images[:4])
    assert out["features"].shape == (4, ext.feature_dim) and out["logits"].shape == (4, 10)
    # 28 px input is padded with black to 32 px, exactly like the project's Fashion-MNIST datasets.
    padded = F.pad(images[:4], (2, 2, 2, 2), value=0)
    torch.testing.assert_close(ext(padded)["logits"], out["logits"])


def test_synthetic_attributes_reproduce_heldout_accuracy():
    ext, meta = _shipped("synthetic-attributes")
    held = meta["data"]["heldout"]
    # A prefix of the held-out set (per-item random streams make it identical to the first items there).
    x, y = render_synthetic(ext.cfg, held["world_seed"], 80, 40, 30, held.get("jpeg_fraction", 0.0))
    acc = evaluate(ext, x, y)
    for head, stated in meta["heldout_accuracy"].items():
        chance = 1.0 / len(ext.cfg.heads[head])
        assert acc[head]["accuracy"] >= stated["accuracy"] - 0.12, (head, acc[head], stated)
        assert stated["accuracy"] > chance + 0.1, (head, stated)
    out = ext(x[:3])
    assert set(out["heads"]) == set(ext.cfg.heads)
    assert out["logits"].shape == (3, len(ext.cfg.heads["colour"]))
    assert out["features"].shape == (3, ext.feature_dim)


def test_synthetic_attributes_read_product_photos_stored_as_jpeg():
    """The garment and editing metrics read product photos from dataset folders of JPEGs (quality 95, 4:2:0
    chroma): the shipped reader gets their colour and pattern right as on lossless renders (a reader trained on
    lossless renders only read 93.5% of the colours of the held-out flats right after this round trip)."""
    ext, meta = _shipped("synthetic-attributes")
    by_domain = meta["heldout_accuracy_by_domain"]
    assert by_domain["flat"]["colour"]["accuracy"] >= 0.99 and by_domain["person"]["colour"]["n"] > 0
    x, y = render_synthetic(ext.cfg, meta["data"]["heldout"]["world_seed"], 0, 300, 0)  # lossless flats
    stored = torch.stack([torch.from_numpy(jpeg_round_trip(im, 95)).permute(2, 0, 1)
                          for im in x.permute(0, 2, 3, 1).numpy()])
    assert not torch.equal(stored, x)
    lossless, jpeg = (evaluate(ext, images, {h: y[h] for h in ("colour", "pattern")}) for images in (x, stored))
    for head in ("colour", "pattern"):
        assert jpeg[head]["n"] == 300 and jpeg[head]["accuracy"] >= 0.98, (head, jpeg[head])
        assert jpeg[head]["accuracy"] >= lossless[head]["accuracy"] - 0.02, (head, lossless[head], jpeg[head])


def test_render_synthetic_jpeg_share_keeps_the_rest_of_the_set():
    cfg = synthetic_attributes_config()
    plain, labels = render_synthetic(cfg, 7, 4, 6, 3)
    again, _ = render_synthetic(cfg, 7, 4, 6, 3, jpeg_fraction=0.0)
    half, half_labels = render_synthetic(cfg, 7, 4, 6, 3, jpeg_fraction=0.5)
    every, _ = render_synthetic(cfg, 7, 4, 6, 3, jpeg_fraction=1.0)
    assert torch.equal(plain, again)
    assert all(torch.equal(labels[k], half_labels[k]) for k in labels)  # same items, same labels
    changed = (half != plain).flatten(1).any(1)
    assert 0 < int(changed.sum()) < plain.shape[0]  # some images compressed, the others untouched
    assert (every != plain).flatten(1).any(1).all()
    assert torch.equal(half[~changed], plain[~changed])
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="jpeg_fraction"):
            render_synthetic(cfg, 7, 1, 0, 0, jpeg_fraction=bad)


def test_evaluate_by_domain_splits_the_heads():
    cfg = synthetic_attributes_config()
    x, y = render_synthetic(cfg, 3, 5, 4, 2)
    ext = DomainExtractor(cfg).eval()
    res = evaluate_by_domain(ext, x, y)
    assert set(res) == {"person", "flat", "shoe", "bag"}
    assert res["person"]["colour"]["n"] == 5 and res["flat"]["colour"]["n"] == 4 and res["shoe"]["colour"]["n"] == 2
    assert "material" not in res["flat"] and "bottom" in res["person"] and "material" in res["bag"]
    overall = evaluate(ext, x, y)["colour"]
    mixed = sum(r["colour"]["accuracy"] * r["colour"]["n"] for r in res.values()) / overall["n"]
    assert mixed == pytest.approx(overall["accuracy"])
    # Predictions read once serve both scores; given the true labels as predictions, every head is right.
    preds = predict(ext, x, y)
    assert evaluate_by_domain(ext, x, y, predictions=preds) == res and evaluate(ext, x, y, predictions=preds) == \
        evaluate(ext, x, y)
    perfect = evaluate_by_domain(ext, x, y, predictions={k: v.clone() for k, v in y.items()})
    assert all(h["accuracy"] == 1.0 for heads in perfect.values() for h in heads.values())
    with pytest.raises(ValueError, match="'colour'"):
        evaluate(ext, x, y, predictions={**preds, "colour": preds["colour"][:3]})


# --------------------------------------------------------------------------------------------- determinism
def _state(ext):
    return {k: v.clone() for k, v in ext.net.state_dict().items()}


def test_retraining_is_bit_identical(fashion_mnist_dir):
    x, y = fmnist_arrays(fashion_mnist_dir, "train", limit=256)
    tc = TrainConfig(seed=3, epochs=1, batch_size=64, threads=1)
    a = _state(train_domain_net(fmnist_config(), x, y, tc, log=None))
    b = _state(train_domain_net(fmnist_config(), x, y, tc, log=None))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = _state(train_domain_net(fmnist_config(), x, y, TrainConfig(seed=4, epochs=1, batch_size=64, threads=1),
                                log=None))
    assert not torch.equal(a["heads.class.weight"], c["heads.class.weight"])


def test_synthetic_retraining_is_bit_identical(tmp_path):
    cfg = synthetic_attributes_config()
    x, y = render_synthetic(cfg, 5, 12, 6, 4)
    x2, y2 = render_synthetic(cfg, 5, 12, 6, 4)
    assert torch.equal(x, x2) and all(torch.equal(y[k], y2[k]) for k in y)
    tc = TrainConfig(seed=0, epochs=1, batch_size=16, threads=1)
    ea = train_domain_net(cfg, x, y, tc, log=None)
    eb = train_domain_net(cfg, x, y, tc, log=None)
    a, b = _state(ea), _state(eb)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Saved and reloaded: same outputs; files written without temp leftovers.
    ea.save_pretrained(tmp_path / "net", meta={"seed": 0})
    assert sorted(p.name for p in (tmp_path / "net").iterdir()) == ["config.json", "model.safetensors"]
    back = DomainExtractor.from_pretrained(tmp_path / "net")
    torch.testing.assert_close(back(x[:2])["features"], ea(x[:2])["features"], rtol=0, atol=0)


def test_domain_extractor_bad_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        DomainExtractor.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="config.json"):
        DomainExtractor.from_pretrained(tmp_path)
