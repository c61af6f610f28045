"""scripts/prepare_data.py: renders every dataset in its real format, atomically, as a command-line tool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from PIL import Image

from fashion_gans.data.inshop import (
    ANNOTATION_FILES,
    PAIR_FILES,
    PARTITION_FILE,
    InShopPoseDataset,
    atomic_directory,
)
from fashion_gans.data.lookbook import LOOKBOOK_NAME_RE, LookBookDataset

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "prepare_data.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_writes_every_dataset_in_its_format(tmp_path):
    out = tmp_path / "synth"
    res = _run("synthetic", "--out", str(out), "--identities", "4", "--size", "64", "--lookbook-persons", "2",
               "--fisb-count", "4", "--fisb-size", "32", "--bags", "5", "--shoes", "3", "--bags-shoes-size", "32")
    assert res.returncode == 0, res.stderr
    for name in ("inshop", "lookbook", "fisb", "bags_shoes"):
        assert str(out / name) in res.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]  # no temporary folder left behind

    inshop = out / "inshop"
    jpgs = list((inshop / "img").rglob("*.jpg"))
    assert jpgs and all(Image.open(p).size == (64, 64) for p in jpgs)
    assert all(p.with_name(p.stem + "_IUV.png").is_file() for p in jpgs if not p.stem.endswith("_flat"))
    for f in [PARTITION_FILE, *ANNOTATION_FILES.values(), *PAIR_FILES.values(), "synthetic_attributes.json"]:
        assert (inshop / f).is_file(), f
    assert int((inshop / PARTITION_FILE).read_text().splitlines()[0]) == len(jpgs)
    train = InShopPoseDataset(inshop, "train", size=(32, 32))
    test = InShopPoseDataset(inshop, "test", size=(32, 32))
    assert len(train) > 0 and len(test) > 0 and not train.item_ids & test.item_ids

    names = [p.name for p in (out / "lookbook" / "ImgHQ").iterdir()]
    assert len(names) == 4 * 3 and all(LOOKBOOK_NAME_RE.match(n) for n in names)
    assert len(LookBookDataset(out / "lookbook", "train", 32, test_percent=0)) == 4 * 2

    with h5py.File(out / "fisb" / "G2.h5", "r") as f:
        assert {"ih", "ih_mean"} <= set(f.keys()) and len(f["ih"]) == 4
    for name, n in (("handbags_64.hdf5", 5), ("shoes_64.hdf5", 3)):
        with h5py.File(out / "bags_shoes" / name, "r") as f:
            assert f["imgs"].shape == (n, 32, 32, 3) and f["imgs"].dtype == "uint8"

    # An existing output is not touched without --overwrite.
    stamp = (inshop / PARTITION_FILE).stat().st_mtime_ns
    again = _run("synthetic", "--out", str(out), "--identities", "2", "--datasets", "inshop")
    assert again.returncode == 2 and "exists" in again.stderr
    assert (inshop / PARTITION_FILE).stat().st_mtime_ns == stamp

    # --overwrite replaces it; --datasets picks; HxW sizes for the PATN frame.
    res = _run("synthetic", "--out", str(out), "--identities", "2", "--datasets", "inshop", "--size", "64x44",
               "--poses", "2", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["inshop"]
    assert {Image.open(p).size for p in (out / "inshop" / "img").rglob("*.jpg")} == {(44, 64)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]


def test_rejects_bad_arguments(tmp_path):
    res = _run("synthetic", "--out", str(tmp_path / "x"), "--datasets", "inshop,nonsense")
    assert res.returncode == 2 and "nonsense" in res.stderr
    res = _run("synthetic", "--out", str(tmp_path / "x"), "--size", "12x")
    assert res.returncode == 2 and "size" in res.stderr
    assert not (tmp_path / "x").exists()


def test_atomic_directory_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "data"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "half-written.jpg").write_bytes(b"...")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("a")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "a" and sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    with pytest.raises(FileExistsError):
        with atomic_directory(target):
            pass
