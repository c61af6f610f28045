"""Fashion-MNIST from the Debian package's idx files: counts, padding, classes, shoes <-> bags domains."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from fashion_gans.data import fashion_mnist as fm
from fashion_gans.data.io import DataError


@pytest.fixture(scope="module")
def root(fashion_mnist_dir):
    if not (Path(fashion_mnist_dir) / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(
            f"Fashion-MNIST not installed in {fashion_mnist_dir}: install the Debian package dataset-fashion-mnist "
            "(scripts/test.sh does) or point FASHION_MNIST_DIR at the idx .gz files"
        )
    return fashion_mnist_dir


@pytest.fixture(scope="module")
def train(root):
    return fm.FashionMNIST(root, "train")


@pytest.fixture(scope="module")
def test_set(root):
    return fm.FashionMNIST(root, "test")


def test_real_counts_and_balanced_classes(train, test_set):
    assert len(train) == 60_000 and len(test_set) == 10_000
    n_classes = len(fm.CLASS_NAMES)
    assert n_classes == 10
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=n_classes), np.full(n_classes, 6000))
    np.testing.assert_array_equal(np.bincount(test_set.labels, minlength=n_classes), np.full(n_classes, 1000))
    assert train.images.shape == (60_000, 28, 28) and train.images.dtype == np.uint8
    # Real photos, not blanks: every image has ink, and the splits differ.
    assert (train.images.reshape(60_000, -1).max(axis=1) > 0).all()
    assert not np.array_equal(train.images[:100], test_set.images[:100])


def test_item_is_padded_with_background(train):
    raw = train.images[7].astype(np.float32) / 127.5 - 1.0
    item = train[7]
    image = item["image"]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32
    assert item["label"] == int(train.labels[7])
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (image[0][border] == -1.0).all()
    torch.testing.assert_close(image[0, 2:30, 2:30], torch.from_numpy(raw))
    assert image.min() >= -1.0 and image.max() <= 1.0 and image.max() > 0.0


def test_channels_and_no_padding(root, train):
    rgb = fm.FashionMNIST.from_arrays(train.images[:5], train.labels[:5], channels=3)
    grey = fm.FashionMNIST.from_arrays(train.images[:5], train.labels[:5], pad_to=None)
    x = rgb[2]["image"]
    assert x.shape == (3, 32, 32) and torch.equal(x[0], x[1]) and torch.equal(x[0], x[2])
    assert grey[2]["image"].shape == (1, 28, 28)
    with pytest.raises(ValueError, match="pad_to"):
        fm.FashionMNIST.from_arrays(train.images[:5], train.labels[:5], pad_to=16)
    with pytest.raises(ValueError, match="channels"):
        fm.FashionMNIST.from_arrays(train.images[:5], train.labels[:5], channels=2)


def test_class_filter_by_name_or_id(train):
    bags = fm.FashionMNIST.from_arrays(train.images, train.labels, classes=["Bag"])
    assert len(bags) == 6000 and set(bags.labels.tolist()) == {fm.CLASS_NAMES.index("Bag")}
    shoes = fm.FashionMNIST.from_arrays(train.images, train.labels, classes=[5, "Sneaker", 9])
    assert len(shoes) == 18_000
    with pytest.raises(ValueError, match="Handbag"):
        fm.FashionMNIST.from_arrays(train.images, train.labels, classes=["Handbag"])


def test_shoes_bags_domains_and_epoch_partners(train):
    ds = fm.FashionMNISTShoesBags.from_arrays(train.images, train.labels, "train", seed=3)
    names = {fm.CLASS_NAMES[c] for c in fm.SHOE_CLASSES}
    assert names == {"Sandal", "Sneaker", "Ankle boot"}
    assert [fm.CLASS_NAMES[c] for c in fm.BAG_CLASSES] == ["Bag"]
    assert len(ds) == 18_000  # the larger domain: every shoe once per epoch

    def epoch_pairs(epoch):
        ds.set_epoch(epoch)
        return np.array([ds.partners[i] for i in range(len(ds))])

    e0, e1 = epoch_pairs(0), epoch_pairs(1)
    bag_idx0 = ds.bag_indices[e0[:, 0]]
    shoe_idx0 = ds.shoe_indices[e0[:, 1]]
    assert set(train.labels[bag_idx0].tolist()) == {8}
    assert set(train.labels[shoe_idx0].tolist()) == set(fm.SHOE_CLASSES)
    # Every shoe exactly once, every bag 18000 / 6000 = 3 times per epoch.
    np.testing.assert_array_equal(np.sort(shoe_idx0), ds.shoe_indices)
    np.testing.assert_array_equal(np.bincount(e0[:, 0], minlength=6000), np.full(6000, 3))
    # Partners are re-drawn: most shoes get another bag in the next epoch; same epoch -> same pairs.
    assert (e0[:, 0] != e1[:, 0]).mean() > 0.9
    np.testing.assert_array_equal(epoch_pairs(0), e0)

    ds.set_epoch(0)
    item = ds[11]
    assert item["bag"].shape == item["shoe"].shape == (1, 32, 32)
    assert train.labels[item["bag_index"]] == 8 and item["shoe_label"] == train.labels[item["shoe_index"]]
    expected = torch.from_numpy(train.images[item["shoe_index"]].astype(np.float32) / 127.5 - 1.0)
    torch.testing.assert_close(item["shoe"][0, 2:30, 2:30], expected)


def _write_idx(path: Path, magic: int, dims: tuple[int, ...], data: bytes) -> Path:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + data)
    return path


def test_idx_validation_names_the_file(tmp_path):
    good = np.arange(2 * 28 * 28, dtype=np.uint8).tobytes()
    ok = _write_idx(tmp_path / "ok.gz", 0x803, (2, 28, 28), good)
    assert fm.read_idx(ok, 0x803).shape == (2, 28, 28)

    bad_magic = _write_idx(tmp_path / "bad-magic.gz", 0x801, (2, 28, 28), good)
    with pytest.raises(DataError, match=r"bad-magic\.gz: magic number 0x00000801, expected 0x00000803"):
        fm.read_idx(bad_magic, 0x803)
    short = _write_idx(tmp_path / "short.gz", 0x803, (3, 28, 28), good)
    with pytest.raises(DataError, match=r"short\.gz: .*dimensions \(3, 28, 28\)"):
        fm.read_idx(short, 0x803)
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"definitely not gzip data")
    with pytest.raises(DataError, match=r"plain\.gz: unreadable or corrupt"):
        fm.read_idx(not_gzip)


def test_label_count_mismatch_and_missing_files(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 0x803, (2, 28, 28), bytes(2 * 28 * 28))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x801, (3,), bytes([1, 2, 3]))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: 3 labels for 2 images"):
        fm.FashionMNIST(tmp_path, "test")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: Fashion-MNIST file not found"):
        fm.FashionMNIST(tmp_path, "train")
