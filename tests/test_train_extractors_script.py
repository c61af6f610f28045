"""``scripts/train_extractors.py`` end to end on tiny sets: every shipped metric network can be retrained by the
command its ``config.json`` records, and writes the documented metadata."""

from __future__ import annotations

import json

import pytest

from script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("train_extractors.py")


def test_every_network_trains_and_records_its_metadata(script, tmp_path, fashion_mnist_dir):
    from fashion_gans.metrics.extractors.domain import DomainExtractor
    from fashion_gans.metrics.extractors.keypoints import KeypointDetector

    out = tmp_path / "ext"
    assert script.main(["--out", str(out), "--threads", "1", "--epochs", "1", "--fmnist-root", str(fashion_mnist_dir),
                        "--fmnist-limit", "256", "--persons", "8", "--flats", "8", "--accessories", "4",
                        "--pose-persons", "8", "--heldout-scale", "0.5", "--jpeg-fraction", "0.5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(script.NAMES)  # nothing half-written beside them
    for name in script.NAMES:
        meta = json.loads((out / name / "config.json").read_text())
        assert meta["command"].startswith("python3 scripts/train_extractors.py") and meta["train"]["epochs"] == 1
        assert meta["heldout_accuracy"], name
    fmnist = json.loads((out / "fmnist-classifier" / "config.json").read_text())
    assert fmnist["heldout_accuracy"]["class"]["n"] == 10000 and "heldout_accuracy_by_domain" not in fmnist
    synthetic = json.loads((out / "synthetic-attributes" / "config.json").read_text())
    assert synthetic["data"]["train"]["jpeg_fraction"] == 0.5 and synthetic["data"]["heldout"]["jpeg_fraction"] == 0.5
    assert synthetic["data"]["train"]["images"] == 8 + 8 + 2 * 4
    by_domain = synthetic["heldout_accuracy_by_domain"]
    assert set(by_domain) == {"person", "flat", "shoe", "bag"} and by_domain["flat"]["colour"]["n"] == 4
    assert "material" in by_domain["shoe"] and "material" not in by_domain["flat"]
    DomainExtractor.from_pretrained(out / "synthetic-attributes")
    KeypointDetector.from_pretrained(out / "synthetic-pose")


def test_bad_jpeg_fraction_is_refused_before_any_work(script, tmp_path, capsys):
    with pytest.raises(SystemExit):
        script.main(["--only", "synthetic-attributes", "--out", str(tmp_path / "x"), "--jpeg-fraction", "1.5"])
    assert "--jpeg-fraction must be in [0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
