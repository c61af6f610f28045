"""``scripts/make_results.py``: one bundle on a tiny held-out world -> RESULTS.md whose model row, baseline rows and
quality-bar verdicts are those of the JSON it wrote next to it."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("make_results.py")


@pytest.fixture(scope="module")
def pose_run(script, tmp_path_factory):
    from fashion_gans.models.sources import BUNDLED_DIR

    out = tmp_path_factory.mktemp("results")
    # A copy of the bundle takes the figures into its card (the package's own cards are left alone).
    shutil.copytree(BUNDLED_DIR / "pose-synthetic", out / "models" / "pose-synthetic")
    assert script.main(["--only", "pose-synthetic", "--count", "8", "--train-count", "16", "--out", str(out),
                        "--world", str(out / "world"), "--cards", str(out / "models")]) == 0
    return script, out


def test_the_bundle_card_carries_the_published_figures(pose_run):
    from huggingface_hub import ModelCard

    from fashion_gans.models.sources import BUNDLED_DIR

    script, out = pose_run
    entry = json.loads((out / "results" / "pose-synthetic.json").read_text(encoding="utf-8"))
    folder = out / "models" / "pose-synthetic"
    meta = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
    values = script._values(entry["model"])
    results = meta["results"]
    assert results["metrics"] == pytest.approx(values) and results["steps"] == meta["steps"]
    assert results["baselines"]["nearest"] == pytest.approx(script._values(entry["baselines"]["nearest"]))
    assert results["command"].startswith("python scripts/make_results.py --only pose-synthetic --count 8")
    assert results["protocol"].startswith(f"{entry['count']} held-out samples")
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Results (`RESULTS.md`)" in card and results["protocol"] in card
    ssim_row = next(line for line in card.splitlines() if line.startswith("| ssim |"))
    assert f"{values['ssim']:.4f}" in ssim_row
    # Rendered again from bundle.json (as --rescore does), the card comes out the same.
    bundled = load_script("train_bundled.py")
    assert bundled._model_card(bundled.BUNDLES["pose-synthetic"], meta) == card
    for c in [folder / "README.md"] + [folder / n / "README.md" for n in meta["networks"]]:
        published = {r.metric_type: r.metric_value for r in ModelCard.load(c).data.eval_results}
        assert published == pytest.approx({k: v for k, v in values.items() if math.isfinite(v)}), c
    # The run's own check and the weights are kept as they were.
    shipped = json.loads((BUNDLED_DIR / "pose-synthetic" / "bundle.json").read_text(encoding="utf-8"))
    assert meta["metrics"] == shipped["metrics"]
    for net in meta["networks"]:
        a = (folder / net / "model.safetensors").read_bytes()
        assert a == (BUNDLED_DIR / "pose-synthetic" / net / "model.safetensors").read_bytes()


def test_figures_of_other_weights_are_refused(pose_run, tmp_path):
    from script_loader import load_script

    script, out = pose_run
    publish = load_script("train_bundled.py").publish_results
    folder = out / "models" / "pose-synthetic"
    before = (folder / "bundle.json").read_bytes()
    results = json.loads(before)["results"]
    with pytest.raises(SystemExit, match="training steps"):
        publish(folder, {**results, "name": "pose-synthetic", "steps": results["steps"] + 1})
    with pytest.raises(SystemExit, match="the results are of 'garment-synthetic'"):
        publish(folder, {**results, "name": "garment-synthetic"})
    assert (folder / "bundle.json").read_bytes() == before


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
    # Beating the baselines: the verdicts recomputed from the JSON's values.
    check = next(c for c in summary["baseline_check"] if c["model"] == "pose-synthetic")
    assert check["metrics"] == ["ssim", "l1", "keypoint_error", "pck_0.05"] and check["baselines"] == [
        "copy", "mean", "nearest"]
    for r in check["comparisons"]:
        base = script._values(entry["baselines"][r["baseline"]])[r["metric"]]
        assert (r["model_value"], r["baseline_value"]) == (values[r["metric"]], base)
        assert r["verdict"] == script.compare_to_baseline(r["metric"], values[r["metric"]], base)
    assert check["beats_all"] == all(r["verdict"] == "beats" for r in check["comparisons"])
    assert _row(md, "| `pose-synthetic` |")[3] == ("**yes**" if check["beats_all"] else "**no**")
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


def test_baseline_margin_verdicts(script):
    cmp = script.compare_to_baseline
    # Scores: a clear margin is 2 points.
    assert cmp("ssim", 0.90, 0.87) == "beats" and cmp("ssim", 0.90, 0.89) == "within margin"
    assert cmp("shoe2bag/style_match", 0.891, 0.922) == "loses"
    # Errors: 10 % of the baseline's value.
    assert cmp("fid", 60.0, 70.0) == "beats" and cmp("fid", 66.0, 70.0) == "within margin"
    assert cmp("keypoint_error", 0.06, 0.05) == "loses"
    assert cmp("recall", float("nan"), 0.5) == "n/a" and cmp("no_such_metric", 1.0, 0.0) == "n/a"


def _fake_entry(name, task, kind, model, baselines):
    ev = lambda values: {"metrics": [{"metric": k, "value": v} for k, v in values.items()]}  # noqa: E731
    return {"name": name, "task": task, "data_kind": kind, "model": ev(model),
            "baselines": {b: ev(v) for b, v in baselines.items()}}


def test_check_baselines_names_every_baseline_not_beaten(script):
    strong = _fake_entry("style-a", "style", "synthetic",
                         {"shoe2bag/style_match": 0.95, "bag2shoe/style_match": 0.97, "shoe2bag/fid": 900.0},
                         {"copy": {"shoe2bag/style_match": 0.0, "bag2shoe/style_match": 0.0},
                          "nearest": {"shoe2bag/style_match": 0.90, "bag2shoe/style_match": 0.94,
                                      "shoe2bag/fid": 300.0}})
    weak = _fake_entry("style-b", "style", "synthetic",
                       {"shoe2bag/style_match": 0.89, "bag2shoe/style_match": 0.973},
                       {"copy": {"shoe2bag/style_match": 0.0, "bag2shoe/style_match": 0.0},
                        "nearest": {"shoe2bag/style_match": 0.922, "bag2shoe/style_match": 0.973}})
    checks = {c["model"]: c for c in script.check_baselines([strong, weak])}
    # FID is not a task metric of synthetic style matching, so the strong model's worse FID does not count.
    assert checks["style-a"]["beats_all"] and checks["style-a"]["baselines"] == ["copy", "nearest"]
    assert checks["style-a"]["metrics"] == ["shoe2bag/style_match", "bag2shoe/style_match"]
    assert not checks["style-b"]["beats_all"]
    short = {(r["baseline"], r["metric"]): r["verdict"] for r in checks["style-b"]["comparisons"]
             if r["verdict"] != "beats"}
    assert short == {("nearest", "shoe2bag/style_match"): "loses", ("nearest", "bag2shoe/style_match"): "within margin"}
    md = "\n".join(script._baseline_section({"models": [strong, weak], "baseline_check": list(checks.values())}))
    assert _row(md, "| `style-a` |")[3] == "**yes**" and _row(md, "| `style-b` |")[3] == "**no**"
    assert "`nearest` loses on shoe2bag/style_match: 89.0 % vs 92.2 %" in md
    assert "1 of 2 models beat every baseline" in md and "- `style-b` vs `nearest`: retrieves" in md


def test_bad_arguments_are_refused(script, tmp_path):
    with pytest.raises(SystemExit, match="unknown bundle"):
        script.main(["--only", "no-such-bundle", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="must be >= 1"):
        script.main(["--count", "0", "--out", str(tmp_path)])
    assert not (tmp_path / "RESULTS.md").exists()


# --------------------------------------------------------------------------------------------- attribute editing
@pytest.fixture(scope="module")
def edit_run(script, tmp_path_factory):
    """Both editing bundles (untrained, narrow networks) in a stand-in bundle folder, scored by a full run."""
    import torch

    from fashion_gans.models import build_models
    from fashion_gans.models import sources
    from fashion_gans.models.config import FaderConfig, IcGANConfig
    from fashion_gans.models.sources import write_bundle_meta

    bundled = tmp_path_factory.mktemp("bundled")
    torch.manual_seed(0)
    fader = build_models(FaderConfig(enc_channels=(8, 8, 16, 16, 16), dis_hidden=8))
    fader["fader"].save_pretrained(bundled / "fader-synthetic" / "fader")
    icgan = build_models(IcGANConfig(z_dim=8, g_channels=(16, 16, 8, 8), d_channels=(8, 8, 8, 8),
                                     e_channels=(8, 8, 8, 8)))
    for net in ("generator", "encoder_z", "encoder_y"):
        icgan[net].save_pretrained(bundled / "icgan-synthetic" / net)
    for name, task, preset in (("fader-synthetic", "fader", "fader_synthetic"),
                               ("icgan-synthetic", "icgan", "icgan_synthetic")):
        write_bundle_meta(bundled / name, {
            "name": name, "task": task, "preset": preset, "data": "synthetic product photos", "steps": 5,
            "data_source": "synthetic", "wall_seconds": 60.0, "machine": {"logical_cores": 2},
            "train": {"seed": 0, "synthetic_size": 200, "data": "synthetic"}})
    out = tmp_path_factory.mktemp("edit-results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "BUNDLED_DIR", bundled)
        assert script.main(["--count", "8", "--train-count", "32", "--out", str(out)]) == 0
    return script, out


def _row(md: str, start: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith(start))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_editing_section_puts_fader_and_icgan_beside_the_baselines(edit_run):
    script, out = edit_run
    md = (out / "RESULTS.md").read_text(encoding="utf-8")
    summary = json.loads((out / "results" / "summary.json").read_text(encoding="utf-8"))
    entries = {e["name"]: e for e in summary["models"]}
    assert set(entries) == {"fader-synthetic", "icgan-synthetic"}
    assert "## Attribute editing: Fader Networks vs IcGAN" in md and "not bundled yet" not in md
    fader, icgan = entries["fader-synthetic"], entries["icgan-synthetic"]
    assert fader["model"]["held_out"] and fader["count"] == 8 and fader["baseline_train_count"] == 200
    # Both models are scored on the same held-out flats, so the baselines are scored once and shown once.
    assert fader["baselines"] == icgan["baselines"] and set(fader["baselines"]) == {"copy", "mean", "nearest"}
    header = _row(md, "| | edit success")
    assert header[1:5] == ["edit success ↑", "others kept ↑", "recon SSIM ↑", "recon L1 ↓"]
    assert header[5:] == ["edit colour ↑", "edit pattern ↑", "edit kind ↑"]
    cols = ["edit_success", "others_kept", "recon_ssim", "recon_l1", "edit_success_colour", "edit_success_pattern",
            "edit_success_kind"]
    rows = [(f"| **{name}** (", entries[name]["model"]) for name in entries]
    rows += [(f"| baseline `{b}` |", res) for b, res in fader["baselines"].items()]
    for start, res in rows:
        values = {m["metric"]: m["value"] for m in res["metrics"]}
        cells = _row(md, start)[1:]
        assert cells == [script._fmt(values[c], script._percent_metric(c)) for c in cols]
    assert sum(line.startswith("| baseline `copy`") for line in md.splitlines()) == 1
    copy = {m["metric"]: m["value"] for m in fader["baselines"]["copy"]["metrics"]}
    assert copy["others_kept"] == 1.0 and copy["recon_ssim"] == pytest.approx(1.0)
    ceiling = _row(md, "| reader on the unedited inputs")
    reader = {m["metric"]: m["value"] for m in fader["model"]["metrics"]}
    assert ceiling[1] == script._fmt(reader["reader_accuracy"], True)
    assert ceiling[5] == script._fmt(reader["reader_accuracy_colour"], True)
    # Editing bundles stay out of the per-task tables and the thesis' table.
    assert "### `fader-synthetic`" not in md and "| fader |" not in md


def test_editing_bars_are_recomputed_from_the_json(edit_run):
    script, out = edit_run
    md = (out / "RESULTS.md").read_text(encoding="utf-8")
    summary = json.loads((out / "results" / "summary.json").read_text(encoding="utf-8"))
    bars = {(b["bar"], b["model"]): b for b in summary["bars"]}
    want = {(f"{t}-{k}", f"{t}-synthetic") for t in ("fader", "icgan")
            for k in ("edit-success", "others-kept", "recon-ssim")}
    assert set(bars) == want
    thresholds = {"edit-success": (">=", 0.80), "others-kept": (">=", 0.90), "recon-ssim": (">", 0.80)}
    for (key, model), bar in bars.items():
        entry = json.loads((out / "results" / f"{model}.json").read_text(encoding="utf-8"))
        value = {m["metric"]: m["value"] for m in entry["model"]["metrics"]}[bar["metric"]]
        op, threshold = thresholds[key.split("-", 1)[1]]
        assert (bar["op"], bar["threshold"], bar["value"]) == (op, threshold, value)
        ok = math.isfinite(value) and (value >= threshold if op == ">=" else value > threshold)
        assert bar["result"] == ("PASS" if ok else "MISS")
        line = next(line for line in md.splitlines() if line.startswith(f"| {bar['label']} | `{model}` |"))
        assert line.endswith(f"**{bar['result']}** |")
        if not ok:
            assert bar["why"] and f"`{key}` (`{model}`): {bar['why']}" in md
            assert "model trained 5 steps" in bar["why"]
            if key.endswith("edit-success"):
                assert "weakest attribute: edit_success_" in bar["why"] and "best baseline" in bar["why"]
    # The untrained decoders do not reconstruct their inputs.
    assert bars[("fader-recon-ssim", "fader-synthetic")]["result"] == "MISS"


def test_editing_sample_grids_and_a_missing_bundle(edit_run):
    from PIL import Image

    script, out = edit_run
    summary = json.loads((out / "results" / "summary.json").read_text(encoding="utf-8"))
    for e in summary["models"]:
        assert e["grid_columns"] == ["input", "reconstruction", "edit colour", "edit pattern", "edit kind"]
        assert len(e["grid_rows"]) == script.GRID_ROWS and " -> " in e["grid_rows"][0]
        with Image.open(out / "results" / f"{e['name']}.png") as img:
            w, h = img.size
        assert w > 5 * 64 and h > script.GRID_ROWS * 64
    # Without the IcGAN bundle the section says so and shows Fader alone.
    only_fader = dict(summary, models=[e for e in summary["models"] if e["task"] == "fader"],
                      run=dict(summary["run"], bundled=["fader-synthetic"]))
    md = script.render_markdown(only_fader)
    assert "`icgan-synthetic` is not bundled yet" in md and "| **fader-synthetic** (" in md
    assert "| **icgan-synthetic** (" not in md
    skipped = dict(only_fader, run=dict(only_fader["run"], bundled=["fader-synthetic", "icgan-synthetic"],
                                        only=["fader-synthetic"]))
    assert "`icgan-synthetic` was not evaluated in this run (`--only`)" in script.render_markdown(skipped)
    # A run of other bundles only has no editing section.
    none = dict(summary, models=[], bars=[], run=dict(summary["run"], only=["pose-synthetic"]))
    assert "Attribute editing" not in script.render_markdown(none)
