"""Hugging Face datasets conversion: parquet shards + card, loading from a directory and from a Hub cache."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import datasets
import yaml

from fashion_gans.data import fashion_mnist as fm
from fashion_gans.data.hf import (
    hf_split_files,
    load_hf_split,
    push_hf_dataset,
    write_hf_dataset,
)
from fashion_gans.data.io import DataError

N_TRAIN, N_TEST = 45, 40


@pytest.fixture(scope="module")
def fmnist_arrays(fashion_mnist_dir):
    return {split: fm.load_fashion_mnist(fashion_mnist_dir, split) for split in ("train", "test")}


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, fashion_mnist_dir):
    out = tmp_path_factory.mktemp("hf") / "fashion-mnist"
    write_hf_dataset(
        out,
        {
            "train": fm.iter_hf_records(fashion_mnist_dir, "train", limit=N_TRAIN),
            "test": fm.iter_hf_records(fashion_mnist_dir, "test", limit=N_TEST),
        },
        fm.HF_FEATURES,
        "# Fashion-MNIST\n\nA small slice for tests.",
        shard_size=20,
        license="mit",
        task_categories=["image-classification"],
    )
    return out


def _front_matter(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text[4 : text.index("\n---", 4)])


def test_layout_and_card(hf_dir):
    files = sorted(p.name for p in (hf_dir / "data").iterdir())
    expected = []
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        shards = -(-n // 20)
        expected += [f"{split}-{i:05d}-of-{shards:05d}.parquet" for i in range(shards)]
    assert files == sorted(expected)
    meta = _front_matter(hf_dir / "README.md")
    assert meta["license"] == "mit"
    assert meta["task_categories"] == ["image-classification"]
    assert meta["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*"},
        {"split": "test", "path": "data/test-*"},
    ]
    sizes = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert sizes == {"train": N_TRAIN, "test": N_TEST}
    feature_names = [f["name"] for f in meta["dataset_info"]["features"]]
    assert feature_names == list(fm.HF_FEATURES)
    assert "# Fashion-MNIST" in (hf_dir / "README.md").read_text()
    # Nothing but the dataset itself next to it: the temporary build directory was renamed away.
    assert [p.name for p in hf_dir.parent.iterdir()] == [hf_dir.name]


def test_local_dir_round_trip_matches_original_loader(hf_dir, fmnist_arrays, tmp_path):
    ds = load_hf_split(hf_dir, "train", cache_dir=tmp_path / "cache")
    assert len(ds) == N_TRAIN
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["label"].names == list(fm.CLASS_NAMES)

    images, labels = fmnist_arrays["train"]
    original = fm.FashionMNIST.from_arrays(images[:N_TRAIN], labels[:N_TRAIN], channels=3)
    converted = fm.FashionMNIST.from_hf(hf_dir, "train", channels=3, cache_dir=tmp_path / "cache")
    assert len(converted) == len(original) == N_TRAIN
    for i in range(N_TRAIN):
        a, b = original[i], converted[i]
        assert a["label"] == b["label"]
        assert torch.equal(a["image"], b["image"])


def test_shoes_bags_from_hf_matches(hf_dir, fmnist_arrays, tmp_path):
    images, labels = fmnist_arrays["test"]
    original = fm.FashionMNISTShoesBags.from_arrays(images[:N_TEST], labels[:N_TEST], "test")
    assert len(original.bag_indices) > 0 and len(original.shoe_indices) > 0
    converted = fm.FashionMNISTShoesBags.from_hf(hf_dir, "test", cache_dir=tmp_path / "cache")
    assert len(converted) == len(original)
    for i in range(len(original)):
        a, b = original[i], converted[i]
        assert (a["bag_index"], a["shoe_index"]) == (b["bag_index"], b["shoe_index"])
        assert torch.equal(a["bag"], b["bag"]) and torch.equal(a["shoe"], b["shoe"])


def _lay_out_hub_cache(src: Path, cache: Path, repo_id: str, commit: str) -> Path:
    repo_dir = cache / f"datasets--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(src, snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def test_load_through_local_hub_cache_offline(hf_dir, fmnist_arrays, tmp_path, monkeypatch):
    cache = tmp_path / "home" / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    _lay_out_hub_cache(hf_dir, cache, "fashion-gans/fashion-mnist-mini", commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))

    ds = load_hf_split("fashion-gans/fashion-mnist-mini", "test", cache_dir=tmp_path / "cache")
    assert len(ds) == N_TEST
    images, labels = fmnist_arrays["test"]
    assert ds["label"][:] == labels[:N_TEST].tolist()
    np.testing.assert_array_equal(np.asarray(ds[3]["image"]), images[3])

    # A pinned commit resolves too; HF_HUB_CACHE takes precedence over HF_HOME.
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "elsewhere"))
    via_class = fm.FashionMNIST.from_hf("fashion-gans/fashion-mnist-mini", "test", revision=commit,
                                        cache_dir=tmp_path / "cache")
    direct = fm.FashionMNIST.from_arrays(images[:N_TEST], labels[:N_TEST])
    assert all(torch.equal(via_class[i]["image"], direct[i]["image"]) for i in range(N_TEST))


def test_repo_missing_from_cache_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(DataError, match=r"fashion-gans/nothing-here.*datasets--fashion-gans--nothing-here"):
        load_hf_split("fashion-gans/nothing-here", "train")


def test_missing_split_is_a_clear_error(hf_dir, tmp_path):
    with pytest.raises(DataError, match=r"no split 'validation'.*\['test', 'train'\]"):
        load_hf_split(hf_dir, "validation", cache_dir=tmp_path / "cache")


def test_corrupt_parquet_is_named(hf_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(hf_dir, broken)
    shard = sorted((broken / "data").glob("train-*.parquet"))[1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"{shard.name}.*not a readable parquet"):
        load_hf_split(broken, "train", cache_dir=tmp_path / "cache")
    # The intact split still loads.
    assert len(load_hf_split(broken, "test", cache_dir=tmp_path / "cache")) == N_TEST


def test_failed_write_leaves_nothing_behind(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})

    def records():
        yield {"image": np.zeros((4, 4), np.uint8), "label": 0}
        yield {"image": np.zeros((4, 4), np.uint8), "label": 1, "extra": "not in the features"}

    with pytest.raises(DataError, match="extra"):
        write_hf_dataset(tmp_path / "out", {"train": records()}, features, "card", shard_size=1)
    assert list(tmp_path.iterdir()) == []


def test_existing_directory_needs_overwrite(hf_dir, tmp_path):
    features = datasets.Features({"x": datasets.Value("int64")})
    target = tmp_path / "ds"
    write_hf_dataset(target, {"train": ({"x": i} for i in range(3))}, features, "v1")
    with pytest.raises(FileExistsError):
        write_hf_dataset(target, {"train": ({"x": i} for i in range(5))}, features, "v2")
    write_hf_dataset(target, {"train": ({"x": i} for i in range(5))}, features, "v2", overwrite=True)
    assert hf_split_files(target) == {"train": [target / "data" / "train-00000-of-00001.parquet"]}
    assert load_hf_split(target, "train", cache_dir=tmp_path / "cache")["x"][:] == list(range(5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "ds"]


class _FakeApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))

        class Info:
            commit_url = f"https://huggingface.co/datasets/{kwargs['repo_id']}/commit/abc"

        return Info()


def test_push_uploads_the_checked_folder(hf_dir, tmp_path):
    api = _FakeApi()
    url = push_hf_dataset(hf_dir, "fashion-gans/fashion-mnist-mini", private=True, api=api)
    assert url.endswith("fashion-gans/fashion-mnist-mini/commit/abc")
    (c_name, c_repo, c_kw), (u_name, u_repo, u_kw) = api.calls
    assert (c_name, c_repo, c_kw["repo_type"], c_kw["private"]) == (
        "create_repo", "fashion-gans/fashion-mnist-mini", "dataset", True)
    assert (u_name, u_kw["repo_type"], Path(u_kw["folder_path"])) == ("upload_folder", "dataset", hf_dir)

    empty = tmp_path / "empty"
    empty.mkdir()
    api2 = _FakeApi()
    with pytest.raises(DataError, match="README.md"):
        push_hf_dataset(empty, "fashion-gans/x", api=api2)
    assert api2.calls == []


def _convert_script():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "convert_to_hub.py"
    spec = importlib.util.spec_from_file_location("convert_to_hub", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_convert_script_writes_a_loadable_dataset(fashion_mnist_dir, fmnist_arrays, tmp_path):
    script = _convert_script()
    assert set(script.SOURCES) == {"inshop", "lookbook", "fisb", "bags_shoes", "fashion_mnist"}
    out = tmp_path / "converted"
    rc = script.main(["fashion_mnist", "--root", str(fashion_mnist_dir), "--out", str(out), "--limit", "25",
                      "--splits", "test"])
    assert rc == 0
    meta = _front_matter(out / "README.md")
    assert meta["license"] == "mit" and meta["pretty_name"] == "Fashion-MNIST"
    converted = fm.FashionMNIST.from_hf(out, "test", cache_dir=tmp_path / "cache")
    images, labels = fmnist_arrays["test"]
    assert len(converted) == 25
    np.testing.assert_array_equal(converted.images, images[:25])
    np.testing.assert_array_equal(converted.labels, labels[:25])
    with pytest.raises(FileExistsError):
        script.main(["fashion_mnist", "--root", str(fashion_mnist_dir), "--out", str(out), "--limit", "5"])


def test_wrong_columns_name_the_dataset_and_the_columns(hf_dir, tmp_path):
    from fashion_gans.data.bags_shoes import BagsShoesDataset
    from fashion_gans.data.fisb import FISBDataset

    # A Fashion-MNIST conversion read as another source: a DataError naming the path and the columns.
    for loader, missing in ((BagsShoesDataset.from_hf, "domain"), (FISBDataset.from_hf, "background")):
        with pytest.raises(DataError, match=rf"{hf_dir}.*lacks the columns \[.*'{missing}'.*columns found: "
                                            r"\['image', 'label'\]"):
            loader(hf_dir, "train", cache_dir=tmp_path / "cache")
    features = datasets.Features({"x": datasets.Value("int64")})
    other = write_hf_dataset(tmp_path / "other", {"train": ({"x": i} for i in range(2))}, features, "card")
    with pytest.raises(DataError, match=r"lacks the columns \['image', 'label'\]; columns found: \['x'\]"):
        fm.FashionMNIST.from_hf(other, "train", cache_dir=tmp_path / "cache")
    assert load_hf_split(other, "train", cache_dir=tmp_path / "cache", required_columns=["x"])["x"] == [0, 1]
