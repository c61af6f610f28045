"""Shared image I/O: conversions, clear errors, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_gans.data.io import (
    DataError,
    array_to_tensor,
    atomic_path,
    label_map_to_tensor,
    load_image,
    save_image,
    tensor_to_array,
)


def test_array_tensor_round_trip_is_exact_and_in_range():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
    t = array_to_tensor(arr)
    assert t.shape == (3, 9, 7) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1
    assert float(array_to_tensor(np.zeros((1, 1), np.uint8))) == -1.0
    assert float(array_to_tensor(np.full((1, 1), 255, np.uint8))) == 1.0
    np.testing.assert_array_equal(tensor_to_array(t), arr)


def test_array_to_tensor_rejects_non_uint8():
    with pytest.raises(DataError, match="uint8"):
        array_to_tensor(np.zeros((4, 4, 3), np.float32))


def test_label_map_keeps_values():
    labels = np.array([[0, 3], [24, 7]], np.uint8)
    t = label_map_to_tensor(labels)
    assert t.dtype == torch.int64 and t.tolist() == [[0, 3], [24, 7]]


def test_load_image_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(err.value)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match="not a readable image") as err:
        load_image(bad)
    assert "bad.jpg" in str(err.value)


def test_load_image_converts_rgba_on_white_16bit_and_exif(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.asarray(load_image(tmp_path / "a.png")).min() == 255

    sixteen = np.full((4, 4), 65535, np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "b.png")
    assert np.asarray(load_image(tmp_path / "b.png")).min() == 255

    img = Image.new("RGB", (6, 2), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "c.jpg", exif=exif)
    assert load_image(tmp_path / "c.jpg").size == (2, 6)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_save_image_round_trip_and_unknown_suffix(tmp_path):
    arr = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    save_image(arr, tmp_path / "x.png")
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "x.png")), arr)
    with pytest.raises(DataError, match="suffix"):
        save_image(arr, tmp_path / "x.unknown")


def test_atomic_path_gives_normal_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644


def test_check_image_file_finds_truncated_jpeg_and_png(tmp_path):
    from fashion_gans.data.io import check_image_file, find_unreadable_images

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    for suffix in (".jpg", ".png"):
        good = tmp_path / f"good{suffix}"
        img.save(good)
        half = tmp_path / f"half{suffix}"
        half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        assert check_image_file(good) is None and check_image_file(good, "decode") is None
        assert "truncated" in check_image_file(half).lower()  # header check: the end marker is missing
        assert check_image_file(half, "decode") is not None
        assert check_image_file(half, "none") is None
    found = find_unreadable_images({"a": [tmp_path / "good.jpg"], "b": [tmp_path / "half.jpg", None]},
                                   max_fraction=0.5, where="here")
    assert found.bad == {"b"} and found.total == 2 and "half.jpg" in found.problems[0]
    with pytest.raises(DataError, match=r"here: 1 of 2 images cannot be read"):
        find_unreadable_images({"a": [tmp_path / "good.jpg"], "b": [tmp_path / "half.png"]}, max_fraction=0.1,
                               where="here")


def test_atomic_directory_replaces_only_on_success(tmp_path):
    from fashion_gans.data.io import atomic_directory

    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("2")
            raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("2")
    assert (target / "a.txt").read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["out"]
