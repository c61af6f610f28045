"""evaluate_model / scripts/evaluate.py end to end: a tiny model folder, baselines, files, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fashion_gans.evaluation import (EvaluationError, evaluate_model, load_eval_data, run_baseline,
                                     score_outputs)
from fashion_gans.evaluation.evaluate import run_data_options
from fashion_gans.models import build_models
from fashion_gans.models.sources import write_bundle_meta

REPO = Path(__file__).resolve().parents[2]


def _script():
    """scripts/evaluate.py as a module (its main() runs in this process: no interpreter start-up per call)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_script", REPO / "scripts" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECORD_KEYS = {"metric", "value", "extractor", "samples", "split", "date", "model", "task", "data"}


@pytest.fixture(scope="module")
def pose_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "pose-tiny"
    torch.manual_seed(0)
    build_models("pgpg_small")["generator"].save_pretrained(folder / "generator")
    write_bundle_meta(folder, {"task": "pose", "preset": "pgpg_small", "data": "synthetic"})
    return folder


def test_pose_true_target_scores_perfectly_and_the_copy_baseline_worse(synthetic_dir):
    data = load_eval_data("pose", synthetic_dir, count=24, train_count=0)
    truth = score_outputs(data, {"target_image": data.targets["target_image"]}, model="truth")
    assert truth["ssim"] == pytest.approx(1.0) and truth["l1"] == 0.0
    assert truth["keypoint_error"] == pytest.approx(truth["keypoint_error_floor"])
    copy = score_outputs(data, run_baseline("copy", data), model="copy")
    assert copy["ssim"] < truth["ssim"] and copy["l1"] > 0.05
    assert copy["keypoint_error"] > truth["keypoint_error"]
    assert "colour_kept" in copy.skipped


def test_evaluate_model_on_a_tiny_model_folder_and_the_script(pose_model, synthetic_dir, tmp_path):
    result = evaluate_model(pose_model, synthetic_dir, count=8, batch_size=4)
    assert result.task == "pose" and result.count == 8 and result.model == str(pose_model)
    values = result.values
    for m in ("ssim", "l1", "keypoint_error", "keypoint_error_floor", "pck_0.05", "fid"):
        assert m in values
    assert values["ssim"] < 0.9  # an untrained generator is far from the target
    assert all(r.samples == 8 and r.split == "test" for r in result.records)

    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, str(REPO / "scripts/evaluate.py"), "--model", str(pose_model),
                           "--data", str(synthetic_dir), "--count", "8", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads((out / "metrics.json").read_text())
    assert payload["task"] == "pose" and payload["count"] == 8
    assert {r["metric"] for r in payload["metrics"]} == set(values)
    for rec in payload["metrics"]:
        assert RECORD_KEYS <= set(rec) and rec["model"] == str(pose_model) and rec["task"] == "pose"
    ssim = next(r for r in payload["metrics"] if r["metric"] == "ssim")["value"]
    assert ssim == pytest.approx(values["ssim"], abs=1e-6)  # deterministic
    md = (out / "metrics.md").read_text()
    assert "| ssim |" in md and "| keypoint_error |" in md
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "metrics.md"]  # no temp files left


def test_baselines_rank_as_expected_on_garment_and_the_script_writes_skips(synthetic_dir, tmp_path):
    results = {b: evaluate_model(None, synthetic_dir, task="garment", baseline=b, count=24)
               for b in ("copy", "mean", "nearest")}
    # A person photo is no product photo; the mean product photo has no colour of its own.
    assert results["copy"]["garment_kept"] == 0.0 and results["copy"]["domain_ok"] == 0.0
    assert results["mean"]["ssim"] > results["copy"]["ssim"]
    assert results["nearest"]["domain_ok"] == 1.0  # a training product photo, of some garment
    assert results["copy"]["garment_kept_floor"] >= 0.9
    # The reader's own accuracy on the true products bounds each attribute's score; the same for every baseline.
    for k in ("colour_kept", "pattern_kept"):
        assert results["copy"][f"{k}_floor"] >= results["copy"]["garment_kept_floor"]
        assert results["mean"][f"{k}_floor"] == results["copy"][f"{k}_floor"]

    out = tmp_path / "style-copy"
    assert _script().main(["--baseline", "copy", "--task", "style", "--data", str(synthetic_dir),
                           "--count", "16", "--out", str(out)]) == 0
    payload = json.loads((out / "metrics.json").read_text())
    skipped = {s["metric"]: s["reason"] for s in payload["skipped"]}
    assert "ssim" in skipped and "no pixel target" in skipped["ssim"]
    values = {r["metric"]: r["value"] for r in payload["metrics"]}
    assert values["shoe2bag/colour_match"] >= 0.9 and values["shoe2bag/style_match"] == 0.0


def test_fashion_mnist_baselines(fashion_mnist_dir):
    copy = evaluate_model(None, fashion_mnist_dir, task="style", baseline="copy", count=200)
    nearest = evaluate_model(None, fashion_mnist_dir, task="style", baseline="nearest", count=200, train_count=400)
    # The training bags nearest to shoes in pixels are the shoe-like ones: real bags, but not all read confidently.
    assert copy["shoe2bag/target_class_rate"] <= 0.05 and nearest["shoe2bag/target_class_rate"] >= 0.75
    assert nearest["shoe2bag/fid"] < copy["shoe2bag/fid"]
    # A collapsed translator (constant mid-grey) is the floor the table shows; the real bags are diverse.
    assert copy["shoe2bag/target_class_rate_floor"] == 0.0 and copy["bag2shoe/target_class_rate_floor"] == 0.0
    assert copy["shoe2bag/diversity"] > 0.5 and "| shoe2bag/target_class_rate_floor |" in copy.to_markdown()
    gen = evaluate_model(None, "fashion-mnist", task="generation", baseline="copy", count=300, train_count=300)
    mean = evaluate_model(None, "fashion-mnist", task="generation", baseline="mean", count=300, train_count=300)
    assert gen["coverage_class"] == 1.0 and mean["coverage_class"] <= 0.2
    assert gen["fid"] < mean["fid"] and mean["diversity"] < 1e-6 < gen["diversity"]
    assert gen.records[0].extractor == "fmnist-classifier"


def test_generator_samples_draw_fresh_noise_and_are_reproducible(fashion_mnist_dir):
    """A generator is scored with per-image noise (as it trained), under a seeded RNG of its own: the same seed
    scores the same images, the caller's RNG stream is left as it was, and the noise reaches the images."""
    from fashion_gans.evaluation.data import load_eval_data
    from fashion_gans.evaluation.evaluate import _run_model

    torch.manual_seed(0)
    g = build_models("stylegan2_fmnist")["generator"].eval()
    with torch.no_grad():  # the noise strengths start at zero (StyleGAN2); a trained generator has learnt them
        for name, p in g.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    data = load_eval_data("generation", fashion_mnist_dir, count=6, image_size=(32, 32), channels=1, train_count=0)
    torch.manual_seed(123)
    first = _run_model("generation", {"generator": g}, data, 8, "cpu", seed=7)["image"]
    after = torch.rand(3)
    torch.manual_seed(123)
    again = _run_model("generation", {"generator": g}, data, 8, "cpu", seed=7)["image"]
    assert torch.equal(first, again) and torch.equal(torch.rand(3), after)
    other = _run_model("generation", {"generator": g}, data, 8, "cpu", seed=8)["image"]
    assert not torch.equal(first, other)
    with torch.no_grad():  # the same latents through the fixed noise buffers give other images
        z = torch.randn(6, g.config.z_dim, generator=torch.Generator().manual_seed(7))
        fixed = g(z, noise_mode="const").clamp(-1, 1)
        g_quiet = build_models("stylegan2_fmnist")["generator"].eval()
        g_quiet.load_state_dict({k: (v * 0 if k.endswith("noise.weight") else v) for k, v in g.state_dict().items()})
    assert (fixed - first).abs().amax(dim=(1, 2, 3)).min() > 1e-3
    # (the latents are the ones scored: without noise, both ways give the same images)
    quiet = _run_model("generation", {"generator": g_quiet}, data, 8, "cpu", seed=7)["image"]
    assert torch.allclose(quiet, g_quiet(z, noise_mode="const").clamp(-1, 1), atol=1e-5)


def test_clear_errors(synthetic_dir, tmp_path, pose_model, capsys):
    with pytest.raises(EvaluationError, match="count"):
        evaluate_model(pose_model, synthetic_dir, count=0)
    with pytest.raises(EvaluationError, match="Fashion-MNIST"):
        evaluate_model(None, "fashion-mnist", task="pose", baseline="copy", count=4)
    with pytest.raises(EvaluationError, match="task"):
        evaluate_model(None, synthetic_dir, baseline="copy", count=4)
    with pytest.raises(EvaluationError, match="baseline"):
        evaluate_model(None, synthetic_dir, task="pose", baseline="median", count=4)
    with pytest.raises(EvaluationError, match="not 'garment'"):
        evaluate_model(pose_model, synthetic_dir, task="garment", count=4)
    with pytest.raises(EvaluationError, match="needs a lookbook/"):
        evaluate_model(None, synthetic_dir / "inshop", task="garment", baseline="copy", count=4)
    with pytest.raises(EvaluationError, match="no such folder"):
        evaluate_model(None, tmp_path / "nowhere", task="pose", baseline="copy", count=4)
    with pytest.raises(EvaluationError, match="nearest"):
        evaluate_model(None, synthetic_dir, task="generation", baseline="nearest", count=4, image_size=32)
    script = _script()
    capsys.readouterr()
    assert script.main(["--model", str(tmp_path / "missing-model"), "--data", str(synthetic_dir),
                        "--out", str(tmp_path / "o")]) == 2
    assert "missing-model" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert script.main(["--baseline", "copy", "--task", "garment", "--data", "fashion-mnist",
                        "--out", str(tmp_path / "o")]) == 2
    assert "Fashion-MNIST" in capsys.readouterr().err and not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as exc:
        script.main(["--baseline", "copy", "--task", "pose", "--data", str(synthetic_dir), "--count", "0",
                     "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "--count must be >= 1" in capsys.readouterr().err


def test_split_labels_baselines_on_test_only_and_a_run_folders_split_options(synthetic_dir, tmp_path, pose_model):
    with pytest.raises(EvaluationError, match="'test' split only"):
        evaluate_model(None, synthetic_dir, task="style", baseline="copy", split="all", count=4)
    assert _script().main(["--baseline", "nearest", "--task", "garment", "--split", "train",
                           "--data", str(synthetic_dir), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    seen = evaluate_model(pose_model, synthetic_dir, split="train", count=4, batch_size=4)
    assert not seen.held_out and seen.to_dict()["held_out"] is False
    assert "NOT held out" in seen.to_markdown()
    held = evaluate_model(None, synthetic_dir, task="pose", baseline="copy", count=4)
    assert held.held_out and "NOT held out" not in held.to_markdown()

    # A training run with test_percent=50 is evaluated on its own held-out products (not the default 10%).
    run = tmp_path / "run"
    torch.manual_seed(0)
    build_models("pixeldtgan_small")["generator"].save_pretrained(run / "final" / "generator")
    (run / "config.json").write_text(json.dumps({"train": {"task": "garment", "data": "synthetic", "data_options": {
        "test_percent": 50, "size": 64}}}))
    assert run_data_options(run) == {"test_percent": 50} == run_data_options(run / "final")
    assert run_data_options(pose_model) is None
    default = load_eval_data("garment", synthetic_dir, count=1000, train_count=0)
    wider = load_eval_data("garment", synthetic_dir, count=1000, train_count=0, data_options={"test_percent": 50})
    assert wider.count > default.count
    result = evaluate_model(run, synthetic_dir, count=1000, batch_size=32)
    assert result.task == "garment" and result.count == wider.count
    assert any("test_percent" in n for n in result.notes)


def test_real_photo_folders_get_pixel_metrics_only(synthetic_dir, tmp_path):
    import shutil

    from fashion_gans.evaluation import resolve_data_kind

    assert resolve_data_kind(synthetic_dir)[0] == "synthetic"
    assert resolve_data_kind(synthetic_dir / "inshop")[0] == "synthetic"
    real = tmp_path / "deepfashion"
    shutil.copytree(synthetic_dir / "inshop", real / "inshop",
                    ignore=shutil.ignore_patterns("synthetic_attributes.json"))
    assert resolve_data_kind(real)[0] == "other" and resolve_data_kind(real / "inshop")[0] == "other"
    result = evaluate_model(None, real, task="pose", baseline="copy", count=8)
    assert "ssim" in result.values and "l1" in result.values
    for m in ("keypoint_error", "pck_0.05", "keypoint_error_floor"):
        assert m not in result.values and "synthetic-pose" in result.skipped[m]


def test_style_match_floor_is_the_ceiling_a_perfect_translator_reaches(synthetic_dir):
    data = load_eval_data("style", synthetic_dir, count=16, train_count=0, data_options={"test_fraction": 0.5})
    copy = score_outputs(data, run_baseline("copy", data), model="copy")
    for direction in ("shoe2bag", "bag2shoe"):
        assert copy[f"{direction}/style_match_floor"] >= 0.9 and copy[f"{direction}/style_match"] == 0.0
        assert copy[f"{direction}/diversity"] > 0.3
    # The true partners (the other domain's images of each source's style) score the floor as style_match.
    partners = {"bag": data.truth["shoe_partner"], "shoe": data.truth["bag_partner"]}
    assert partners["bag"].shape == data.inputs["shoe"].shape and partners["shoe"].shape == data.inputs["bag"].shape
    perfect = score_outputs(data, partners, model="partners")
    assert perfect["shoe2bag/style_match"] == pytest.approx(perfect["shoe2bag/style_match_floor"])
    assert perfect["shoe2bag/style_match"] >= 0.9


# --------------------------------------------------------------------------------------------- attribute editing
#: A small attribute space (4 colours x 4 patterns x 3 kinds = 48 combinations): 300 training flats hold every
#: combination, so the retrieval baseline always finds the requested one.
EDIT_ATTRIBUTES = {"colour": ["red", "blue", "yellow", "black"], "pattern": ["solid", "stripes", "checks", "dots"],
                   "kind": ["tshirt", "trousers", "dress"]}


@pytest.fixture(scope="module")
def fader_model(tmp_path_factory):
    """An untrained, narrow Fader Network saved as a model folder whose bundle.json records world seed 3."""
    from fashion_gans.models.config import FaderConfig

    folder = tmp_path_factory.mktemp("models") / "fader-tiny"
    torch.manual_seed(0)
    cfg = FaderConfig(attributes=EDIT_ATTRIBUTES, enc_channels=(8, 16, 16, 16, 16), dis_hidden=16)
    build_models(cfg)["fader"].save_pretrained(folder / "fader")
    write_bundle_meta(folder, {"task": "fader", "preset": "fader_synthetic", "data": "synthetic",
                               "data_source": "synthetic", "train": {"seed": 3, "synthetic_size": 300}})
    return folder


def test_editing_baselines_copy_keeps_everything_and_nearest_retrieves_the_edit():
    kw = {"task": "fader", "count": 24, "train_count": 300, "attributes": EDIT_ATTRIBUTES}
    copy = evaluate_model(None, "synthetic", baseline="copy", **kw)
    nearest = evaluate_model(None, "synthetic", baseline="nearest", **kw)
    mean = evaluate_model(None, "synthetic", baseline="mean", **kw)
    assert copy.task == "fader" and copy.held_out and copy.count == 24
    # The reader reads the held-out flats (the ceiling); an unchanged input never shows a requested new value.
    assert copy["reader_accuracy"] >= 0.95
    assert copy["edit_success"] <= 0.05 and copy["others_kept"] == 1.0
    assert copy["recon_ssim"] == pytest.approx(1.0) and copy["recon_l1"] == 0.0
    # Retrieval of a training flat with exactly the requested attributes: the edit lands, the rest is kept,
    # but the input's own pixels (pattern colour) are not reproduced.
    # (A held-out solid design's combination never occurs in training: retrieval then relaxes the match.)
    assert nearest["edit_success"] >= 0.8 and nearest["others_kept"] >= 0.9
    assert nearest["recon_l1"] > 0.0 and nearest["recon_ssim"] < 1.0
    # The mean of a combination's training flats (pattern colours differ) is further from the input than a flat.
    assert mean["recon_l1"] > nearest["recon_l1"]
    for a in EDIT_ATTRIBUTES:
        assert copy[f"edit_success_{a}"] <= 0.1 and nearest[f"edit_success_{a}"] >= 0.7
    rec = {r.metric: r for r in nearest.records}
    assert rec["edit_success"].samples == 24 * 3 and rec["edit_success_colour"].samples == 24
    assert rec["recon_ssim"].samples == 24 and rec["recon_ssim"].extractor is None
    assert rec["edit_success"].extractor == "synthetic-attributes" and rec["recon_l1"].higher_is_better is False
    assert rec["edit_success_kind"].higher_is_better is True


def test_editing_data_holds_out_the_training_seeds_designs():
    from fashion_gans.evaluation.data import load_edit_data

    ev = load_edit_data("fader", "synthetic", count=40, attributes=EDIT_ATTRIBUTES, train_seed=3, train_count=300)
    test, train = ev.inputs["image"].flatten(1), ev.train_targets["image"].flatten(1)
    assert ev.kind == "synthetic" and test.shape == (40, 3 * 64 * 64) and ev.truth["attributes"].shape == (40, 3)
    assert torch.cdist(test, train).min() > 0  # no held-out flat is a training flat
    other = load_edit_data("fader", "synthetic", count=40, attributes=EDIT_ATTRIBUTES, train_seed=4, train_count=0)
    assert not torch.equal(other.inputs["image"], ev.inputs["image"])  # the seed picks the held-out designs


def test_an_editing_model_folder_end_to_end_and_the_script(fader_model, tmp_path):
    from fashion_gans.data.attributes import SyntheticAttributeDataset
    from fashion_gans.evaluation.editing import attribute_reader, edit_metrics
    from fashion_gans.models.sources import load_networks
    from fashion_gans.pipelines.edit import AttributeEditPipeline

    result = evaluate_model(fader_model, "synthetic", count=12, batch_size=8)
    assert result.task == "fader" and result.count == 12 and result.model == str(fader_model)
    assert "world seed 3" in " ".join(result.notes)  # the seed recorded in bundle.json
    # The same numbers as edit_metrics on the model's own edits of seed 3's held-out flats.
    ds = SyntheticAttributeDataset(12, "test", seed=3, attributes=EDIT_ATTRIBUTES)
    images = ds.images.float() / 127.5 - 1
    pipe = AttributeEditPipeline(load_networks(fader_model), "cpu")
    direct = edit_metrics(pipe.edit_tensor, images, ds.labels, EDIT_ATTRIBUTES, attribute_reader(EDIT_ATTRIBUTES))
    for k in ("edit_success", "others_kept", "recon_ssim", "recon_l1", "edit_success_pattern", "reader_accuracy"):
        assert result[k] == pytest.approx(direct[k], abs=1e-6)
    assert result["recon_ssim"] < 0.9  # an untrained decoder does not give its input back
    with pytest.raises(EvaluationError, match="seed 3"):
        evaluate_model(fader_model, "synthetic", count=4, train_seed=0)
    with pytest.raises(EvaluationError, match="'synthetic'.*'fashion-mnist'"):
        evaluate_model(fader_model, tmp_path, count=4)

    out = tmp_path / "res"
    assert _script().main(["--model", str(fader_model), "--data", "synthetic", "--count", "12", "--batch-size", "8",
                           "--out", str(out)]) == 0
    payload = json.loads((out / "metrics.json").read_text())
    assert payload["task"] == "fader" and payload["held_out"]
    values = {r["metric"]: r["value"] for r in payload["metrics"]}
    assert values["edit_success"] == pytest.approx(result["edit_success"], abs=1e-6)
    assert "| edit_success |" in (out / "metrics.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "metrics.md"]


#: Training data options that move the held-out designs: another world seed and half the designs held out.
LEAK_OPTIONS = {"seed": 5, "test_fraction": 0.5}


@pytest.mark.parametrize("recorded_in", ["bundle.json", "run config.json"])
def test_editing_evaluation_holds_out_what_the_training_data_options_held_out(recorded_in, tmp_path, monkeypatch):
    """A run trained with data_options {"seed": 5, "test_fraction": 0.5}: its evaluation must rebuild the held-out
    designs of those options (not of ``train.seed`` 3 and the default test_fraction, half of which it trained on)."""
    from types import SimpleNamespace

    import fashion_gans.evaluation.evaluate as ev_module
    from fashion_gans.evaluation.data import load_edit_data
    from fashion_gans.models.config import FaderConfig
    from fashion_gans.training.config import TrainConfig
    from fashion_gans.training.tasks.editing import build_attribute_dataset

    cfg = FaderConfig(attributes=EDIT_ATTRIBUTES, enc_channels=(8, 16, 16, 16, 16), dis_hidden=16)
    train = TrainConfig(task="fader", data="synthetic", seed=3, synthetic_size=300, data_options=LEAK_OPTIONS,
                        output_dir=str(tmp_path / "run"))
    recorded = {"task": "fader", "data": "synthetic", "seed": 3, "synthetic_size": 300, "data_options": LEAK_OPTIONS}
    torch.manual_seed(0)
    if recorded_in == "bundle.json":
        source = tmp_path / "bundle"
        build_models(cfg)["fader"].save_pretrained(source / "fader")
        write_bundle_meta(source, {"task": "fader", "preset": "fader_synthetic", "data": "synthetic",
                                   "train": recorded})
    else:  # a training run's export: final/ next to the run's config.json
        source = tmp_path / "run" / "final"
        build_models(cfg)["fader"].save_pretrained(source / "fader")
        (source.parent / "config.json").write_text(json.dumps({"train": recorded}))
    seen = []

    def spy(*args, **kwargs):
        seen.append(load_eval_data(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(ev_module, "load_eval_data", spy)
    result = evaluate_model(source, "synthetic", count=40, batch_size=20)
    held_out = seen[-1].inputs["image"].flatten(1)
    training = build_attribute_dataset(SimpleNamespace(name="fader", config=train, model_config=cfg), "train")
    trained_on = torch.stack([training[i]["image"] for i in range(len(training))]).flatten(1)
    assert held_out.shape == (40, 3 * 64 * 64) and trained_on.shape[0] == 300
    # A flat is a pure function of its design: no shared pixels means no shared design.
    assert torch.cdist(held_out, trained_on).min() > 0
    assert "world seed 5" in " ".join(result.notes) and '"test_fraction": 0.5' in " ".join(result.notes)
    # The designs train.seed alone would hold out include training images: the check above can fail.
    naive = load_edit_data("fader", "synthetic", count=40, attributes=EDIT_ATTRIBUTES, train_seed=3, train_count=0)
    assert torch.cdist(naive.inputs["image"].flatten(1), trained_on).min() == 0
    with pytest.raises(EvaluationError, match="seed 5"):  # the recorded data seed is the one to match
        evaluate_model(source, "synthetic", count=4, train_seed=3)


def test_fashion_mnist_editing_model_ignores_the_synthetic_seed_check(fashion_mnist_dir, tmp_path):
    from fashion_gans.data.fashion_mnist import CLASS_NAMES
    from fashion_gans.models.config import FaderConfig

    if not Path(fashion_mnist_dir).is_dir():
        pytest.skip("Fashion-MNIST is not installed")
    cfg = FaderConfig(attributes={"class": list(CLASS_NAMES)}, image_size=32, image_channels=1, enc_channels=(8, 16, 16), dis_hidden=16)
    build_models(cfg)["fader"].save_pretrained(tmp_path / "fader")
    write_bundle_meta(tmp_path, {"task": "fader", "data": "fashion-mnist", "train": {"seed": 3}})
    # Fashion-MNIST's split is fixed: another train_seed does not change the held-out images, so no error.
    result = evaluate_model(tmp_path, fashion_mnist_dir, count=8, train_seed=0)
    assert result.count == 8 and not any("synthetic" in n for n in result.notes)


def test_fashion_mnist_editing_baselines(fashion_mnist_dir):
    kw = {"task": "icgan", "count": 60, "train_count": 300}
    copy = evaluate_model(None, fashion_mnist_dir, baseline="copy", **kw)
    nearest = evaluate_model(None, fashion_mnist_dir, baseline="nearest", **kw)
    assert copy.count == 60 and copy["reader_accuracy"] >= 0.8  # fmnist-classifier on the test split
    assert copy["edit_success"] <= 0.1 and nearest["edit_success"] >= 0.8
    assert "others_kept" not in copy.values and "others_kept" in copy.skipped  # one attribute: nothing to keep
    assert copy["recon_ssim"] == pytest.approx(1.0)
