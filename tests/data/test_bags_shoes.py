"""Handbags <-> shoes: iGAN hdf5 layout, unpaired per-epoch partners, style correspondence, HF round trip."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from fashion_gans.data import bags_shoes as bs
from fashion_gans.data.io import DataError, array_to_tensor
from fashion_gans.data.synthetic import ACCESSORY_SHAPES, SyntheticWorld

N_BAGS, N_SHOES, N_STYLES = 90, 36, 6


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(seed=2)


@pytest.fixture(scope="module")
def root(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("bags_shoes")
    bs.write_synthetic_bags_shoes(root, world, N_BAGS, N_SHOES, size=64, seed=0, n_styles=N_STYLES)
    return root


def test_file_layout_keys_dtypes(root):
    assert sorted(p.name for p in root.iterdir()) == sorted([bs.BAGS_FILE, bs.SHOES_FILE, bs.ATTRIBUTES_FILE])
    for name, n in ((bs.BAGS_FILE, N_BAGS), (bs.SHOES_FILE, N_SHOES)):
        with h5py.File(root / name, "r") as f:
            assert list(f.keys()) == ["imgs"]
            imgs = f["imgs"][()]
        assert imgs.dtype == np.uint8 and imgs.shape == (n, 64, 64, 3)
        # Centred on white: the corners are white, the centre is not.
        assert (imgs[:, :3, :3] >= 240).all()
        assert (imgs[:, 24:40, 24:40].reshape(n, -1).min(axis=1) < 200).all()


def test_attributes_give_the_style_correspondence(root, world):
    meta = bs.load_bags_shoes_attributes(root)
    assert len(meta["handbags"]) == N_BAGS and len(meta["shoes"]) == N_SHOES
    assert set(meta["styles"]) == {str(j) for j in range(N_STYLES)}
    with h5py.File(root / bs.BAGS_FILE, "r") as f:
        bags = f["imgs"][()]
    with h5py.File(root / bs.SHOES_FILE, "r") as f:
        shoes = f["imgs"][()]
    for j in range(N_STYLES):
        group = meta["correspondence"][str(j)]
        assert group["handbags"] and group["shoes"]  # every style exists in both domains
        assert all(meta["handbags"][i]["style_id"] == j for i in group["handbags"])
        assert meta["styles"][str(j)] == world.accessory_style(j).attributes()
    # Several shapes per domain, all of them known to the world.
    assert {r["shape"] for r in meta["handbags"]} <= set(ACCESSORY_SHAPES["bag"])
    assert len({r["shape"] for r in meta["handbags"]}) > 1 and len({r["shape"] for r in meta["shoes"]}) > 1
    # The stored pixels are the world's rendering of the recorded style/shape/variant.
    for kind, imgs, render in (("handbags", bags, world.render_bag), ("shoes", shoes, world.render_shoe)):
        for i in (0, 5):
            r = meta[kind][i]
            again = render(world.accessory_style(r["style_id"]), r["shape"], (64, 64), variant=r["variant"])
            np.testing.assert_array_equal(imgs[i], again)


def test_items_and_full_coverage_with_redrawn_partners(root):
    ds = bs.BagsShoesDataset(root, split="all")
    assert len(ds) == N_BAGS  # the larger domain, not min() as in the thesis

    def epoch(e):
        ds.set_epoch(e)
        items = [ds[i] for i in range(len(ds))]
        return [(it["bag_index"], it["shoe_index"]) for it in items], items

    pairs0, items0 = epoch(0)
    pairs1, _ = epoch(1)
    assert sorted(b for b, _ in pairs0) == list(range(N_BAGS))
    assert sorted({s for _, s in pairs0}) == list(range(N_SHOES))  # every shoe seen in one epoch
    counts = np.bincount([s for _, s in pairs0], minlength=N_SHOES)
    assert counts.min() >= N_BAGS // N_SHOES and counts.max() <= -(-N_BAGS // N_SHOES)
    changed = np.mean([a[1] != b[1] for a, b in zip(pairs0, pairs1)])
    assert changed > 0.7
    assert epoch(0)[0] == pairs0

    with h5py.File(root / bs.SHOES_FILE, "r") as f:
        shoe = f["imgs"][pairs0[3][1]]
    item = items0[3]
    assert item["bag"].shape == item["shoe"].shape == (3, 64, 64)
    assert torch.equal(item["shoe"], array_to_tensor(shoe))
    assert ds.__class__(root, split="all", size=32)[0]["bag"].shape == (3, 32, 32)


def test_splits_disjoint_per_domain(root):
    train = bs.BagsShoesDataset(root, "train", test_fraction=0.3)
    test = bs.BagsShoesDataset((root / bs.BAGS_FILE, root / bs.SHOES_FILE), "test", test_fraction=0.3)
    for domain, n in (("bags", N_BAGS), ("shoes", N_SHOES)):
        a, b = getattr(train, domain).indices, getattr(test, domain).indices
        assert set(a).isdisjoint(b) and sorted(set(a) | set(b)) == list(range(n))
    seen = {test[i]["bag_index"] for i in range(len(test))}
    assert seen <= set(test.bags.indices.tolist())


def _h5(path, key, data):
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=data)
    return path


def test_malformed_files_are_named(root, tmp_path):
    shoes = root / bs.SHOES_FILE
    wrong_key = _h5(tmp_path / "a.hdf5", "images", np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(DataError, match=r"a\.hdf5: missing key 'imgs'; keys found: \['images'\]"):
        bs.BagsShoesDataset((wrong_key, shoes))
    wrong_dtype = _h5(tmp_path / "b.hdf5", "imgs", np.zeros((2, 64, 64, 3), np.float32))
    with pytest.raises(DataError, match=r"b\.hdf5: 'imgs' has dtype float32"):
        bs.BagsShoesDataset((wrong_dtype, shoes))
    chw = _h5(tmp_path / "c.hdf5", "imgs", np.zeros((2, 3, 64, 64), np.uint8))
    with pytest.raises(DataError, match=r"c\.hdf5: 'imgs' has shape \(2, 3, 64, 64\)"):
        bs.BagsShoesDataset((root / bs.BAGS_FILE, chw))
    with pytest.raises(DataError, match=r"missing\.hdf5: hdf5 file not found"):
        bs.BagsShoesDataset((tmp_path / "missing.hdf5", shoes))


def test_hugging_face_round_trip(root, tmp_path):
    from fashion_gans.data.hf import load_hf_split, write_hf_dataset

    out = write_hf_dataset(
        tmp_path / "bags-shoes-hf",
        {s: bs.iter_hf_records(root, s, test_fraction=0.3) for s in ("train", "test")},
        bs.HF_FEATURES,
        "# Synthetic handbags and shoes",
    )
    meta = bs.load_bags_shoes_attributes(root)
    rows = load_hf_split(out, "test", cache_dir=tmp_path / "cache")
    for r in rows.select(range(4)):
        kind = "handbags" if r["domain"] == 0 else "shoes"
        assert r["style_id"] == meta[kind][r["index"]]["style_id"]
    for split in ("train", "test"):
        original = bs.BagsShoesDataset(root, split, test_fraction=0.3)
        converted = bs.BagsShoesDataset.from_hf(out, split, cache_dir=tmp_path / "cache")
        original.set_epoch(2)
        converted.set_epoch(2)
        assert len(original) == len(converted) > 0
        for i in range(len(original)):
            a, b = original[i], converted[i]
            assert (a["bag_index"], a["shoe_index"]) == (b["bag_index"], b["shoe_index"])
            assert torch.equal(a["bag"], b["bag"]) and torch.equal(a["shoe"], b["shoe"])


@pytest.mark.parametrize("n_a, n_b", [(6, 6), (9, 4), (4, 9)])
def test_partners_are_redrawn_also_for_equal_sizes(n_a, n_b):
    # Thesis bug: with equal domain sizes a[i] was paired with b[i] in every epoch.
    partners = bs.UnpairedPartners(n_a, n_b, seed=3)
    epochs = []
    for epoch in range(4):
        partners.set_epoch(epoch)
        pairs = np.array([partners[i] for i in range(len(partners))])
        # Every image of both domains is seen each epoch, as evenly as the lengths allow.
        for col, n in ((0, n_a), (1, n_b)):
            counts = np.bincount(pairs[:, col], minlength=n)
            assert counts.min() >= len(partners) // n and counts.max() <= -(-len(partners) // n)
        epochs.append(pairs)
    if n_a >= n_b:  # a first domain at least as large is visited in index order
        assert all((e[:, 0] == np.arange(n_a)).all() for e in epochs)
    # The pairing changes every epoch, also when both domains have the same size.
    assert len({e.tobytes() for e in epochs}) == len(epochs)
    if n_a == n_b:
        assert not any((e[:, 0] == e[:, 1]).all() for e in epochs)
