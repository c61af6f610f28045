"""Attribute-labelled datasets (fashion_gans.data.attributes) and the editing tasks' dataset builder."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_gans.data.attributes import (
    CSV_NAME,
    AttributeFolderDataset,
    FashionMNISTAttributes,
    SyntheticAttributeDataset,
)
from fashion_gans.data.fashion_mnist import CLASS_NAMES
from fashion_gans.data.io import DataError
from fashion_gans.data.synthetic import GARMENT_COLOURS, GARMENT_KINDS, PATTERNS, _CONTRASTING
from fashion_gans.models import get_preset
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.tasks.editing import build_attribute_dataset, check_attribute_item


@pytest.fixture(scope="module")
def flats():
    return SyntheticAttributeDataset(1300, "train", size=64, seed=3)


@pytest.fixture(scope="module")
def flats_test():
    return SyntheticAttributeDataset(400, "test", size=64, seed=3)


# ----------------------------------------------------------------------------------------------- synthetic
def test_synthetic_items_have_the_documented_form(flats):
    item = flats[5]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 64, 64)
    assert -1.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["attributes"].dtype == torch.int64 and item["attributes"].shape == (3,)
    g = flats.garments[5]
    assert [GARMENT_COLOURS[item["attributes"][0]], PATTERNS[item["attributes"][1]],
            GARMENT_KINDS[item["attributes"][2]]] == [g.colour, g.pattern, g.kind]
    # The stored image is the world's render of that garment.
    assert torch.equal(item["image"], flats.render(g))


def test_synthetic_is_deterministic_and_seeded():
    a = SyntheticAttributeDataset(50, "train", size=32, seed=7)
    b = SyntheticAttributeDataset(50, "train", size=32, seed=7)
    c = SyntheticAttributeDataset(50, "train", size=32, seed=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)
    # Item i does not depend on how many items are drawn.
    longer = SyntheticAttributeDataset(80, "train", size=32, seed=7)
    assert torch.equal(longer.images[:50], a.images)


def test_synthetic_labels_are_balanced(flats):
    n = len(flats)
    for k, values in enumerate((GARMENT_COLOURS, PATTERNS, GARMENT_KINDS)):
        counts = torch.bincount(flats.labels[:, k], minlength=len(values)).float()
        expected = n / len(values)
        # Uniform draws: every value within 30% of its share (the world's own outfits are 40% solid).
        assert counts.min() > 0.7 * expected and counts.max() < 1.3 * expected, (k, counts)
    # Pattern colours contrast with the main colour, as the world draws them.
    assert all(g.pattern_colour in _CONTRASTING[g.colour] for g in flats.garments)


def test_synthetic_splits_are_disjoint_designs(flats, flats_test):
    train = {flats.design(g) for g in flats.garments}
    test = {flats_test.design(g) for g in flats_test.garments}
    assert len(test) > 100 and not train & test
    # No test image equals a training image pixel for pixel.
    train_bytes = {bytes(img.numpy()) for img in flats.images}
    assert not any(bytes(img.numpy()) in train_bytes for img in flats_test.images)


def test_synthetic_attribute_subset_and_grey():
    ds = SyntheticAttributeDataset(60, "train", size=32, seed=0, attributes={"pattern": ["solid", "dots"]},
                                   channels=1)
    assert ds[0]["image"].shape == (1, 32, 32) and ds.labels.shape == (60, 1)
    assert {g.pattern for g in ds.garments} == {"solid", "dots"}
    with pytest.raises(ValueError, match="unknown attribute 'sleeve'"):
        SyntheticAttributeDataset(4, attributes={"sleeve": ["short", "long"]})
    with pytest.raises(ValueError, match="'colour' has unknown value.*'white'"):
        SyntheticAttributeDataset(4, attributes={"colour": ["red", "white"]})


def test_shipped_extractor_reads_the_rendered_attributes(flats_test):
    from fashion_gans.metrics.extractors import load_domain_extractor

    net = load_domain_extractor("synthetic-attributes")
    with torch.no_grad():
        heads = net(flats_test.images)["heads"]
    for k, name in enumerate(("colour", "pattern", "kind")):
        accuracy = (heads[name].argmax(1) == flats_test.labels[:, k]).float().mean().item()
        assert accuracy >= (0.9 if name != "kind" else 0.75), (name, accuracy)


# ------------------------------------------------------------------------------------------- Fashion-MNIST
def test_fashion_mnist_attributes_from_arrays():
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    images[:, 10:18, 10:18] = 255
    labels = np.array([3, 1, 4, 1, 5])
    ds = FashionMNISTAttributes.from_arrays(images, labels, "test")
    assert ds.attributes == {"class": list(CLASS_NAMES)}
    item = ds[2]
    assert item["image"].shape == (1, 32, 32) and item["attributes"].tolist() == [4]
    # Padding is background (-1), the square is white (+1) and shifted by the 2 px margin.
    assert float(item["image"][0, 0, 0]) == -1.0 and float(item["image"][0, 12, 12]) == 1.0
    assert len(FashionMNISTAttributes.from_arrays(images, labels, limit=2)) == 2


def test_fashion_mnist_attributes_real_files(fashion_mnist_dir):
    import os

    if not os.path.isdir(fashion_mnist_dir):
        pytest.skip("Fashion-MNIST is not installed")
    ds = FashionMNISTAttributes(fashion_mnist_dir, "test", limit=200)
    assert len(ds) == 200 and len(set(ds.labels[:, 0].tolist())) == 10


# ------------------------------------------------------------------------------------------------- folder
ATTRS = {"colour": ["red", "blue"], "pattern": ["solid", "dots"]}


def _folder(tmp_path, rows, header="file,colour,pattern", make=True):
    for row in rows:
        name = row.split(",")[0]
        if make and name:
            Image.new("RGB", (40, 30), (200, 10, 10) if "red" in row else (10, 10, 200)).save(tmp_path / name)
    (tmp_path / CSV_NAME).write_text("\n".join([header, *rows]) + "\n")
    return tmp_path


def test_folder_dataset_reads_labels_in_config_order(tmp_path):
    rows = [f"img{i}.png,{'red' if i % 2 else 'blue'},{'dots' if i % 3 == 0 else 'solid'}" for i in range(10)]
    # Columns in another order than the config: the labels still follow the config.
    root = _folder(tmp_path, [f"{r.split(',')[0]},{r.split(',')[2]},{r.split(',')[1]}" for r in rows],
                   header="file,pattern,colour")
    train = AttributeFolderDataset(root, ATTRS, "train", size=16)
    test = AttributeFolderDataset(root, ATTRS, "test", size=16)
    assert len(train) + len(test) == 10 and len(test) == 1 and not set(train.files) & set(test.files)
    for ds in (train, test):
        for i in range(len(ds)):
            k = int(ds.files[i][3:-4])
            item = ds[i]
            assert item["attributes"].tolist() == [k % 2 == 0, k % 3 == 0]  # blue=1, dots=1
            assert item["image"].shape == (3, 16, 16)
            # Red images have more red than blue in the middle (the 40x30 image is padded on white).
            mid = item["image"][:, 8, 8]
            assert (mid[0] > mid[2]) == (k % 2 == 1)


@pytest.mark.parametrize("rows, header, pattern", [
    (["a.png,green,solid"], "file,colour,pattern", r"row 2: file 'a.png': unknown 'colour' value 'green'.*'red'"),
    (["a.png,red,solid", "b.png,red,plaid"], "file,colour,pattern", r"row 3: file 'b.png': unknown 'pattern'"),
    (["a.png,red"], "file,colour", r"missing column\(s\) \['pattern'\]"),
    (["a.png,red,solid,1"], "file,colour,pattern,size", r"unexpected column\(s\) \['size'\]"),
    (["a.png,red,solid"], "image,colour,pattern", r"first column must be 'file'"),
    (["a.png,red,solid", "a.png,blue,solid"], "file,colour,pattern", r"row 3: file 'a.png' is listed again"),
    (["a.png,red"], "file,colour,pattern", r"row 2: 2 fields"),
])
def test_folder_csv_errors_name_the_problem(tmp_path, rows, header, pattern):
    root = _folder(tmp_path, rows, header)
    with pytest.raises(DataError, match=pattern):
        AttributeFolderDataset(root, ATTRS, "train")


def test_folder_with_one_image_has_no_test_split(tmp_path):
    root = _folder(tmp_path, ["a.png,red,solid"])
    assert AttributeFolderDataset(root, ATTRS, "train").files == ["a.png"]
    with pytest.raises(DataError, match="no images in the test split"):
        AttributeFolderDataset(root, ATTRS, "test")


def test_folder_missing_files(tmp_path):
    with pytest.raises(DataError, match="attributes.csv: not found"):
        AttributeFolderDataset(tmp_path, ATTRS)
    root = _folder(tmp_path, ["a.png,red,solid", "gone.png,red,solid"])
    (root / "gone.png").unlink()
    with pytest.raises(DataError, match=r"row 3: image file 'gone.png' not found"):
        AttributeFolderDataset(root, ATTRS)


def test_folder_csv_paths_stay_in_the_folder(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for path in (tmp_path / "outside.png", root / "a.png", root / "sub" / "b.png"):
        Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    ok = _folder(root, ["a.png,red,solid", "sub/b.png,blue,dots"], make=False)
    both = AttributeFolderDataset(ok, ATTRS, "train").files + AttributeFolderDataset(ok, ATTRS, "test").files
    assert sorted(both) == ["a.png", "sub/b.png"]  # a subfolder is fine
    for bad in ("../outside.png", str(tmp_path / "outside.png"), "sub/../../outside.png"):
        _folder(root, ["a.png,red,solid", f"{bad},blue,dots"], make=False)
        with pytest.raises(DataError, match=rf"row 3: file '{re.escape(bad)}' is outside the data folder"):
            AttributeFolderDataset(root, ATTRS, "train")


# -------------------------------------------------------------------------------------------- task builder
def _task(data, preset, tmp_path, **kw):
    config = TrainConfig(task=preset.split("_")[0], data=data, output_dir=str(tmp_path / "run"), **kw)
    return SimpleNamespace(name=preset.split("_")[0], config=config, model_config=get_preset(preset))


def test_build_synthetic_dataset_sizes_and_check(tmp_path):
    task = _task("synthetic", "fader_synthetic", tmp_path, synthetic_size=120, seed=2)
    train, test = build_attribute_dataset(task, "train"), build_attribute_dataset(task, "test")
    assert (len(train), len(test)) == (120, 64)
    assert train.seed == 2 and train.attributes == task.model_config.attributes
    check_attribute_item(task, train[0])
    with pytest.raises(TrainingError, match=r"images are \(3, 32, 32\).*expects \(3, 64, 64\)"):
        check_attribute_item(task, {"image": torch.zeros(3, 32, 32), "attributes": torch.zeros(3, dtype=torch.long)})
    with pytest.raises(TrainingError, match=r"shape \(2,\).*3 attribute\(s\)"):
        check_attribute_item(task, {"image": torch.zeros(3, 64, 64), "attributes": torch.zeros(2, dtype=torch.long)})
    with pytest.raises(TrainingError, match=r"'pattern' has value index 4"):
        check_attribute_item(task, {"image": torch.zeros(3, 64, 64), "attributes": torch.tensor([0, 4, 0])})


def test_fmnist_edit_problem_names_the_mismatch(tmp_path):
    """Training and evaluation refuse an editor that does not fit Fashion-MNIST with the same reason."""
    from fashion_gans.data.attributes import fmnist_edit_problem
    from fashion_gans.data.fashion_mnist import CLASS_NAMES
    from fashion_gans.evaluation.data import load_edit_data
    from fashion_gans.evaluation.evaluate import EvaluationError

    classes = {"class": list(CLASS_NAMES)}
    assert fmnist_edit_problem(classes, 32) is None
    two = {"class": ["Bag", "Sandal"]}
    assert "the model's attributes are {'class': ['Bag', 'Sandal']}" in fmnist_edit_problem(two, 32)
    assert "padded to 32; the model works at 64 px" in fmnist_edit_problem(classes, 64)
    with pytest.raises(TrainingError, match="Fashion-MNIST has one attribute, 'class'.*preset 'icgan_fmnist'"):
        build_attribute_dataset(_task("fashion-mnist", "icgan_synthetic", tmp_path), "train")
    with pytest.raises(EvaluationError, match="padded to 32; the model works at 64 px"):
        load_edit_data("fader", "fashion-mnist", count=4, image_size=64)


def test_build_dataset_errors(tmp_path):
    with pytest.raises(TrainingError, match="not supported for attribute editing"):
        build_attribute_dataset(_task("hf:user/data", "fader_synthetic", tmp_path), "train")
    folder = tmp_path / "data"
    folder.mkdir()
    _folder(folder, ["a.png,red,solid"])
    with pytest.raises(TrainingError, match="missing column"):
        build_attribute_dataset(_task(str(folder), "fader_synthetic", tmp_path), "train")


def test_build_folder_dataset(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [f"img{i}.png,{('red', 'blue')[i % 2]},{('solid', 'dots')[i % 3 == 0]},shirt" for i in range(12)]
    _folder(folder, rows, header="file,colour,pattern,kind")
    task = _task(str(folder), "fader_synthetic", tmp_path)
    ds = build_attribute_dataset(task, "train")
    check_attribute_item(task, ds[0])
    assert ds[0]["attributes"][2].item() == GARMENT_KINDS.index("shirt")
