"""``scripts/make_results.py``: one bundle on a tiny held-out world -> RESULTS.md whose model row, baseline rows and
quality-bar verdicts are those of the JSON it wrote next to it."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_results.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through the module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _load_script()


@pytest.fixture(scope="module")
def pose_run(script, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert script.main(["--only", "pose-synthetic", "--count", "8", "--train-count", "16", "--out", str(out),
                        "--world", str(out / "world")]) == 0
    return script, out


def test_markdown_rows_and_verdicts_come_from_the_json(pose_run):
    script, out = pose_run
    md = (out / "RESULTS.md").read_text(encoding="utf-8")
    summary = json.loads((out / "results" / "summary.json").read_text(encoding="utf-8"))
    entry = json.loads((out / "results" / "pose-synthetic.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in summary["models"]] == ["pose-synthetic"]
    assert entry["task"] == "pose" and entry["data_kind"] == "synthetic" and 1 <= entry["count"] <= 8
    assert entry["model"]["split"] == "test" and entry["model"]["held_out"]
    # The model row and one row per baseline, each with the SSIM measured in the JSON.
    ssim = {m["metric"]: m["value"] for m in entry["model"]["metrics"]}["ssim"]
    model_row = next(line for line in md.splitlines() if line.startswith("| **pose-synthetic** |"))
    assert f"{ssim:.3f}" in model_row
    assert set(entry["baselines"]) == {"copy", "mean", "nearest"}
    for b, res in entry["baselines"].items():
        b_ssim = {m["metric"]: m["value"] for m in res["metrics"]}["ssim"]
        row = next(line for line in md.splitlines() if line.startswith(f"| baseline `{b}` |"))
        assert f"{b_ssim:.3f}" in row
    # Each bar's verdict is recomputed here from the measured value and the threshold.
    bars = {b["bar"]: b for b in summary["bars"]}
    assert set(bars) == {"pose-ssim", "pose-keypoints"}
    values = {m["metric"]: m["value"] for m in entry["model"]["metrics"]}
    for key, op in (("pose-ssim", ">"), ("pose-keypoints", "<")):
        bar = bars[key]
        value = values[bar["metric"]]
        assert bar["value"] == value and bar["op"] == op
        expect = value > bar["threshold"] if op == ">" else value < bar["threshold"]
        verdict = "PASS" if math.isfinite(value) and expect else "MISS"
        assert bar["result"] == verdict
        line = next(line for line in md.splitlines() if line.startswith(f"| {bar['label']} |"))
        assert line.endswith(f"**{verdict}** |")
        assert (bar["why"] != "") == (verdict == "MISS")
        if verdict == "MISS":
            assert f"`{key}` (`pose-synthetic`): {bar['why']}" in md
    # The thesis' numbers are labelled as another dataset and protocol; the run is recorded.
    assert "different dataset and protocol" in md.lower() and "Table 8" in md
    assert summary["run"]["count"] == 8 and summary["run"]["world_seed"] != entry["train_seed"]
    assert "python scripts/make_results.py --only pose-synthetic --count 8" in md


def test_sample_grid_is_written(pose_run):
    from PIL import Image

    _, out = pose_run
    with Image.open(out / "results" / "pose-synthetic.png") as img:
        w, h = img.size
    # four columns (source, target pose, output, target) of 64 px cells and one row per sample
    assert w > 4 * 64 and h > 64
    assert not list(out.rglob("*.tmp")) and not list((out / "results").glob(".*"))


def test_bars_judge_values(script):
    bar = next(b for b in script.BARS if b.key == "fmnist-recall")
    assert bar.passed(0.61) and not bar.passed(0.6) and not bar.passed(float("nan"))
    kp = next(b for b in script.BARS if b.key == "pose-keypoints")
    assert kp.passed(0.049) and not kp.passed(0.05)


def test_bad_arguments_are_refused(script, tmp_path):
    with pytest.raises(SystemExit, match="unknown bundle"):
        script.main(["--only", "no-such-bundle", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="must be >= 1"):
        script.main(["--count", "0", "--out", str(tmp_path)])
    assert not (tmp_path / "RESULTS.md").exists()
