"""FISB: the G2.h5 format round trip, the thesis' scraper (crops, backgrounds), the light filter, HF."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from fashion_gans.data import fisb
from fashion_gans.data.io import DataError, array_to_tensor
from fashion_gans.data.synthetic import SyntheticWorld

COUNT, SIZE, SEED = 40, 128, 5


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(seed=1)


@pytest.fixture(scope="module")
def written(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("fisb")
    path = fisb.write_synthetic_fisb(root / "G2.h5", world, COUNT, size=SIZE, seed=SEED)
    return path


@pytest.fixture(scope="module")
def attrs(written):
    return fisb.load_fisb_attributes(written)


@pytest.fixture(scope="module")
def everything(written):
    return fisb.FISBDataset(written, split="all", min_background=None, crop=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_layout_and_decode_round_trip(written, world):
    assert sorted(p.name for p in written.parent.iterdir()) == ["G2.h5", "synthetic_attributes.json"]
    with h5py.File(written, "r") as f:
        assert set(f.keys()) == {"ih", "ih_mean"}
        ih, ih_mean = f["ih"][()], f["ih_mean"][()]
    assert ih.shape == (COUNT, 3, SIZE, SIZE) and np.issubdtype(ih.dtype, np.floating)
    assert ih_mean.shape == (3, SIZE, SIZE)
    # Stored mean-subtracted: the per-pixel mean over images is ~0.
    assert np.abs(ih.mean(axis=0)).max() < 1e-4

    expected, _ = fisb.render_synthetic_fisb(world, COUNT, size=SIZE, seed=SEED)
    for i in range(COUNT):
        # The real file's decode, written out here step by step.
        img = ih_mean.max() * ih[i].astype(np.float64) + ih_mean
        img = img.swapaxes(2, 0)
        img = img / img.max() * 255.0
        decoded = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        assert np.abs(decoded.astype(int) - expected[i]).max() <= 1
        np.testing.assert_array_equal(fisb.decode_fisb_image(ih[i], ih_mean), decoded)
    # The layout really is transposed: reading it as (3, H, W) gives a different (sideways) image.
    wrong = (ih_mean.max() * ih[0] + ih_mean).transpose(1, 2, 0)
    assert np.abs(np.rint(wrong / wrong.max() * 255) - expected[0]).mean() > 5


def test_crops_follow_the_true_body_bounds(everything, attrs):
    for i in range(COUNT):
        c, a = everything.crop_bounds(i), attrs[i]
        assert abs(c["h_from"] - a["body_top"]) <= 2, (i, c, a["body_top"])
        assert abs(c["h_until"] - a["body_bottom"]) <= 2, (i, c, a["body_bottom"])
        side = c["h_until"] - c["h_from"]
        assert c["w_until"] - c["w_from"] == side and c["upscale_size"] == SIZE
        assert abs((c["w_from"] + c["w_until"]) - SIZE) <= 1  # equal left and right
        assert c["w_from"] <= a["body_left"] and c["w_until"] >= a["body_right"]
    # FISB's point: the bounds differ from image to image.
    assert len({everything.crop_bounds(i)["h_from"] for i in range(COUNT)}) > 5


def test_cropped_item_is_filled_by_the_body(written, attrs):
    ds = fisb.FISBDataset(written, split="all", min_background=None, crop=True)
    # Uncropped, bodies leave empty bands (the reason for cropping).
    assert min(a["body_bottom"] - a["body_top"] for a in attrs.values()) < SIZE - 16
    for k in range(0, COUNT, 7):
        item = ds[k]
        i = item["index"]
        img = ((item["image"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        spread = (img.max(axis=1).astype(int) - img.min(axis=1)).sum(axis=1)
        object_rows = np.flatnonzero(spread > 0.1 * 255)
        assert object_rows[0] <= 3 and object_rows[-1] >= SIZE - 4


def test_background_detection_and_light_filter(written, attrs):
    light = sorted(i for i, a in attrs.items() if a["light_background"])
    dark = sorted(i for i, a in attrs.items() if not a["light_background"])
    assert light and dark
    ds = fisb.FISBDataset(written, split="all", min_background="#f0f0f0")
    assert ds.indices.tolist() == light
    groups = json.loads((written.parent / fisb.BACKGROUNDS_FILE).read_text())["backgrounds"]
    assert sorted(i for idx in groups.values() for i in idx) == list(range(COUNT))
    for colour, indices in groups.items():
        r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
        assert r % 5 == g % 5 == b % 5 == 0
        for i in indices:
            true = attrs[i]["background_rgb"]
            assert max(abs(x - y) for x, y in zip((r, g, b), true)) <= 12, (i, colour, true)
    crops = json.loads((written.parent / fisb.CROPS_FILE).read_text())["crops"]
    assert len(crops) == COUNT
    assert set(crops[0]) == {"h_from", "h_until", "w_from", "w_until", "upscale_size"}


def test_whiter_than_is_channelwise():
    assert fisb.hex_at_least("#f5f5f0", "#f0f0f0")
    assert not fisb.hex_at_least("#f0e6f0", "#f0f0f0")
    # The thesis compared hex strings: a saturated red passed as "whiter than #f0f0f0".
    assert "#fa0000" >= "#f0f0f0" and not fisb.hex_at_least("#fa0000", "#f0f0f0")
    with pytest.raises(ValueError, match="#f0f0"):
        fisb.hex_at_least("#fff", "#f0f0")


def test_no_clamp_keeps_dark_values(everything):
    for k in (0, 1, 2):
        item = everything[k]
        img = everything.image_array(item["index"])
        assert torch.equal(item["image"], array_to_tensor(img))
        # Dark hair, clothes or backdrop are negative; the thesis' clamp(0, 1) would have zeroed them.
        assert (item["image"] < -0.3).any()
        assert item["image"].min() >= -1 and item["image"].max() <= 1


def test_splits_are_disjoint_and_deterministic(written):
    train = fisb.FISBDataset(written, split="train", min_background=None, test_fraction=0.25)
    test = fisb.FISBDataset(written, split="test", min_background=None, test_fraction=0.25)
    assert set(train.indices).isdisjoint(test.indices)
    assert sorted(set(train.indices) | set(test.indices)) == list(range(COUNT))
    assert 0 < len(test) < COUNT // 2
    again = fisb.FISBDataset(written, split="test", min_background=None, test_fraction=0.25)
    assert again.indices.tolist() == test.indices.tolist()
    mask = fisb.hash_split(10_000, "test", 0.1, salt="x")
    assert 0.08 < mask.mean() < 0.12


def test_caches_are_reused_and_the_h5_untouched(written):
    h5_hash = _sha(written)
    crops = written.parent / fisb.CROPS_FILE
    fisb.FISBDataset(written, split="all")
    stamp = crops.stat().st_mtime_ns
    fisb.FISBDataset(written, split="all")
    assert crops.stat().st_mtime_ns == stamp
    assert _sha(written) == h5_hash
    leftovers = [p.name for p in written.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_stale_cache_is_recomputed(tmp_path, world):
    path = fisb.write_synthetic_fisb(tmp_path / "G2.h5", world, 6, size=64, seed=0)
    first = fisb.FISBDataset(path, split="all", min_background=None)
    fisb.write_synthetic_fisb(path, world, 9, size=64, seed=1)
    os.utime(path, ns=(1, 1))  # a different file, whatever the clock resolution
    second = fisb.FISBDataset(path, split="all", min_background=None)
    assert len(first) == 6 and len(second) == 9
    cache = json.loads((tmp_path / fisb.CROPS_FILE).read_text())
    assert cache["source"]["count"] == 9


def test_wrong_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "Img.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("imgs", data=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"Img\.h5: missing key 'ih'; keys found: \['imgs'\]"):
        fisb.FISBDataset(bad)
    with pytest.raises(DataError, match=r"nowhere\.h5: FISB file not found"):
        fisb.FISBDataset(tmp_path / "nowhere.h5")
    not_h5 = tmp_path / "text.h5"
    not_h5.write_text("hello")
    with pytest.raises(DataError, match=r"text\.h5: not a readable hdf5 file"):
        fisb.FISBDataset(not_h5)


def test_hugging_face_round_trip(written, tmp_path):
    from fashion_gans.data.hf import write_hf_dataset

    out = write_hf_dataset(
        tmp_path / "fisb-hf",
        {s: fisb.iter_hf_records(written, s) for s in ("train", "test")},
        fisb.HF_FEATURES,
        "# Synthetic FISB",
        shard_size=16,
    )
    for split in ("train", "test"):
        original = fisb.FISBDataset(written, split=split)
        converted = fisb.FISBDataset.from_hf(out, split, cache_dir=tmp_path / "cache")
        assert converted.indices.tolist() == original.indices.tolist()
        assert len(original) > 0
        for k in range(len(original)):
            a, b = original[k], converted[k]
            assert a["index"] == b["index"] and torch.equal(a["image"], b["image"])


def test_read_only_folder_falls_back_to_the_user_cache(tmp_path, world, monkeypatch):
    data = tmp_path / "shared"
    path = fisb.write_synthetic_fisb(data / "G2.h5", world, 4, size=32, seed=2)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_access = os.access
    # The dataset folder is read-only (simulated: tests may run as root, for whom chmod does not stop writes).
    monkeypatch.setattr(fisb.os, "access", lambda p, mode: False if Path(p) == data else real_access(p, mode))
    ds = fisb.FISBDataset(path, split="all", size=32, min_background=None)
    fallback = fisb.fallback_cache_dir(path)
    assert fallback.parent == tmp_path / "xdg" / "fashion-gans" / "fisb" and ds.cache_dir == fallback
    assert (fallback / fisb.CROPS_FILE).is_file() and (fallback / fisb.BACKGROUNDS_FILE).is_file()
    assert not (data / fisb.CROPS_FILE).exists()
    # The fallback cache is found again: no second scrape.
    monkeypatch.setattr(fisb, "_scrape", lambda source: pytest.fail("scraped again"))
    again = fisb.FISBDataset(path, split="all", size=32, min_background=None)
    assert again.cache_dir == fallback and torch.equal(again[0]["image"], ds[0]["image"])


def test_unwritable_caches_are_a_clear_error(tmp_path, world, monkeypatch):
    path = fisb.write_synthetic_fisb(tmp_path / "G2.h5", world, 2, size=32, seed=2)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fisb, "_write_caches", refuse)
    with pytest.raises(DataError, match=r"cannot write the scraper caches .* to .* nor to .*xdg"):
        fisb.FISBDataset(path, split="all", size=32, min_background=None)
