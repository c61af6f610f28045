"""``scripts/train_bundled.py`` end to end on a few steps of a real bundle setting (``style-fmnist``): train,
resume, export (weights, model cards whose metadata carries the held-out metrics, ``bundle.json``), the wall-time
record over sessions, re-scoring a shipped bundle without its run, and a session stopped by SIGTERM still
counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("train_bundled.py")


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--only", "style-fmnist", "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "out"),
            "--benchmark-file", str(tmp_path / "bench.json"), *extra]


def test_trains_resumes_and_exports_a_bundle_with_its_record(script, tmp_path, one_thread, monkeypatch):
    from huggingface_hub import ModelCard

    from fashion_gans.models.sources import load_networks
    from fashion_gans.training.trainer import Trainer

    assert script.main(_args(tmp_path, "--steps", "4")) == 0
    with pytest.raises(SystemExit, match="--resume"):  # a finished run is not silently trained over
        script.main(_args(tmp_path, "--steps", "6"))
    assert script.main(_args(tmp_path, "--steps", "6", "--resume")) == 0

    run, out = tmp_path / "runs" / "style-fmnist", tmp_path / "out" / "style-fmnist"
    sessions = json.loads((run / script.WALL_FILE).read_text())["sessions"]
    assert [(s["start_step"], s["end_step"]) for s in sessions] == [(0, 4), (4, 6)]
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["steps"] == 6 and meta["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in sessions))
    assert meta["num_processes"] == 1
    bench = json.loads((tmp_path / "bench.json").read_text())["bundles"]["style-fmnist"]
    assert bench["steps"] == 6 and len(bench["sessions"]) == 2 and "--resume" in bench["command"]
    # Exporting the finished run again (a changed model card, say) keeps the command that trained it.
    assert script.main(_args(tmp_path, "--export-only")) == 0
    again = json.loads((tmp_path / "bench.json").read_text())["bundles"]["style-fmnist"]
    assert again["command"] == bench["command"] == sessions[-1]["command"] and again["sessions"] == sessions

    loaded = load_networks(out)
    assert loaded.task == "style" and sorted(loaded.networks) == ["gen_ab", "gen_ba"]
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    final = load_networks(run / "final").networks["gen_ab"]
    assert torch.equal(loaded.networks["gen_ab"](x), final(x))  # the exported weights are the run's
    measured = {k: v for k, v in json.loads((run / "final_metrics.json").read_text()).items() if k != "step"}
    assert measured
    for card in (out / "README.md", out / "gen_ab" / "README.md", out / "gen_ba" / "README.md"):
        data = ModelCard.load(card).data
        assert {r.metric_type: r.metric_value for r in data.eval_results} == pytest.approx(measured), card
        assert {r.dataset_type for r in data.eval_results} == {"fashion-mnist"}
    net_card = (out / "gen_ab" / "README.md").read_text()
    assert "license: mit" in net_card and "Zalando" in net_card  # the training data's licence, not the real sets'

    # --rescore measures the shipped bundle again without its run folder: the run's own end-of-training evaluation,
    # so with the same metric networks it gives the values the run measured.  Stale values (as a changed metric
    # network leaves them) are replaced, the earlier ones kept under "rescored", and the weights are untouched.
    weights = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.safetensors")}
    stale = {**meta, "metrics": {**meta["metrics"], **{k: v + 1.0 for k, v in measured.items()}}}
    # The recorded process count reaches the scoring (a max_steps run's evaluation does not depend on it).
    stale["num_processes"] = 2
    (out / "bundle.json").write_text(json.dumps(stale))
    shutil.rmtree(run)  # no run folder needed
    with pytest.raises(SystemExit, match="--rescore"):
        script.main(_args(tmp_path, "--rescore", "--resume"))
    scored_with, evaluate_exported = [], Trainer.evaluate_exported

    def spy(self, folder, *, num_processes=1):
        scored_with.append(num_processes)
        return evaluate_exported(self, folder, num_processes=num_processes)

    monkeypatch.setattr(Trainer, "evaluate_exported", spy)
    assert script.main(_args(tmp_path, "--rescore")) == 0
    assert scored_with == [2]
    again = json.loads((out / "bundle.json").read_text())
    assert {k: v for k, v in again["metrics"].items() if k != "step"} == pytest.approx(measured, rel=1e-5)
    assert again["metrics"]["step"] == 6 and again["steps"] == 6 and again["wall_seconds"] == meta["wall_seconds"]
    assert [h["previous_metrics"] for h in again["rescored"]] == [stale["metrics"]]
    assert "--rescore" in again["rescored"][0]["command"]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.safetensors")} == weights
    for card in (out / "README.md", out / "gen_ab" / "README.md"):
        data = ModelCard.load(card).data
        assert {r.metric_type: r.metric_value for r in data.eval_results} == pytest.approx(measured, rel=1e-5)
    assert "Measured again on" in (out / "README.md").read_text()
    bench = json.loads((tmp_path / "bench.json").read_text())["bundles"]["style-fmnist"]
    assert bench["metrics"] == again["metrics"] and bench["sessions"] == sessions  # wall times kept
    with pytest.raises(SystemExit, match="not 'style-fmnist'"):  # another bundle's folder is refused
        wrong = {**again, "name": "generation-fmnist"}
        (out / "bundle.json").write_text(json.dumps(wrong))
        script.main(_args(tmp_path, "--rescore"))


def test_a_session_stopped_by_sigterm_is_recorded(script, tmp_path, monkeypatch):
    from fashion_gans.training import trainer

    def stopped(self):
        raise trainer.Preempted(3, None)

    monkeypatch.setattr(trainer.Trainer, "fit", stopped)
    with pytest.raises(trainer.Preempted):
        script.main(_args(tmp_path, "--steps", "8"))
    sessions = json.loads((tmp_path / "runs" / "style-fmnist" / script.WALL_FILE).read_text())["sessions"]
    assert [(s["start_step"], s["end_step"]) for s in sessions] == [(0, 3)] and sessions[0]["wall_seconds"] >= 0
    assert not (tmp_path / "out" / "style-fmnist").exists()  # nothing exported from an unfinished run
