"""The training loop with a tiny task: data order, exact in-process resume, guards, logs, samples, plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.trainer import EpochBatches, Trainer

sys.path.insert(0, str(Path(__file__).parent))
import dummy_task  # noqa: E402
from dummy_task import DummyTask  # noqa: E402


def _cfg(out, **kw):
    base = dict(task="style", output_dir=str(out), max_steps=10, batch_size=4, synthetic_size=18,
                checkpoint_every=5, sample_every=5, log_every=2, eval_every=5, cpu=True, log_with="none")
    base.update(kw)
    return TrainConfig(**base)


def _weights(run: Path, step: int) -> dict[str, bytes]:
    folder = run / "checkpoints" / f"step-{step:09d}" / "models"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.safetensors"))}


def test_epoch_batches_are_deterministic_sharded_and_drop_last():
    a = EpochBatches(23, 4, seed=3, num_replicas=2, rank=0)
    b = EpochBatches(23, 4, seed=3, num_replicas=2, rank=1)
    assert a.batches_per_epoch == 2  # 11 per process, 2 full batches of 4
    ea, eb = a.epoch(0), b.epoch(0)
    assert all(len(x) == 4 for x in ea + eb)
    flat_a, flat_b = sum(ea, []), sum(eb, [])
    assert not set(flat_a) & set(flat_b)  # shards are disjoint
    assert ea == a.epoch(0) and ea != a.epoch(1)  # same (seed, epoch) -> same order; new epoch -> new order
    assert a.epoch(0, start=1) == ea[1:]  # resumable mid-epoch
    assert EpochBatches(23, 4, seed=4).epoch(0) != EpochBatches(23, 4, seed=3).epoch(0)


def test_resume_mid_epoch_is_exact_and_outputs_written(tmp_path):
    # 18 items / batch 4 = 4 batches per epoch: step 5 checkpoint sits inside epoch 1.
    straight = Trainer(_cfg(tmp_path / "a"), task_class=DummyTask)
    metrics = straight.fit()
    part = Trainer(_cfg(tmp_path / "b", max_steps=5), task_class=DummyTask)
    part.fit()
    assert (part.epoch, part.batch_in_epoch) == (1, 1)
    resumed = Trainer(_cfg(tmp_path / "b", resume="latest"), task_class=DummyTask)
    resumed_metrics = resumed.fit()
    assert _weights(tmp_path / "a", 10) == _weights(tmp_path / "b", 10)
    assert metrics == resumed_metrics
    state_a = torch.load(tmp_path / "a/checkpoints/step-000000010/state.pt", weights_only=True)
    state_b = torch.load(tmp_path / "b/checkpoints/step-000000010/state.pt", weights_only=True)
    assert torch.equal(state_a["rng"][0]["torch"], state_b["rng"][0]["torch"])
    assert torch.equal(state_a["task"]["counter"], torch.tensor(10.0))

    run = tmp_path / "a"
    records = [json.loads(x) for x in (run / "logs/scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "loss"] == [2, 4, 6, 8, 10]
    assert [r["step"] for r in records if r["kind"] == "metric"] == [5, 10]
    # After the first full logging window the resumed run logs exactly what the straight run logged.
    records_b = [json.loads(x) for x in (tmp_path / "b/logs/scalars.jsonl").read_text().splitlines()]
    assert [r for r in records_b if r["step"] > 6] == [r for r in records if r["step"] > 6]
    for name in ("plots/losses.png", "plots/metric_mean_l1.png", "samples/step-000000005.png",
                 "samples/step-000000010.png", "final_metrics.json"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["max_steps"] == 10 and saved["model_config_class"] == "CycleGANConfig"
    # Sample grid: 8 fixed test rows x (input | generated) columns of 8x8 images with 2 px padding.
    from PIL import Image

    assert Image.open(run / "samples/step-000000005.png").size == (2 + 2 * 10, 2 + 8 * 10)
    # Fixed-seed sampling: the same weights give the same grid in both runs.
    assert (run / "samples/step-000000010.png").read_bytes() == (tmp_path / "b/samples/step-000000010.png").read_bytes()


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(data_options={"n_train": 0}), "training set of task 'style' has no images"),
        (dict(batch_size=8, data_options={"n_train": 7}), "batch_size 8 is larger than the training set"),
        (dict(data_options={"contradict": True}), "contradicts the model config"),
    ],
)
def test_guards_fail_before_training(tmp_path, changes, message):
    with pytest.raises(TrainingError, match=message):
        Trainer(_cfg(tmp_path / "run", **changes), task_class=DummyTask).fit()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_nan_loss_stops_naming_loss_and_step(tmp_path):
    with pytest.raises(TrainingError, match=r"non-finite loss 'g_adv' at step 7"):
        Trainer(_cfg(tmp_path / "run", loss_weights={"nan_at": 6}), task_class=DummyTask).fit()
    # Steps after the failure were not trained: the last checkpoint is step 5.
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step-000000005"]


def test_nan_rollback_continues_from_last_checkpoint(tmp_path, capsys):
    dummy_task._NAN_FIRED.clear()
    t = Trainer(_cfg(tmp_path / "run", on_nan="rollback", loss_weights={"nan_at": 6, "nan_once": 1}),
                task_class=DummyTask)
    t.fit()
    assert t.step == 10 and t.rollbacks == 1
    assert "rolling back to step-000000005" in capsys.readouterr().out
    assert torch.load(tmp_path / "run/checkpoints/step-000000010/state.pt", weights_only=True)["step"] == 10
    # A loss that stays non-finite gives up after 3 rollbacks.
    with pytest.raises(TrainingError, match="gave up after 3 rollbacks"):
        Trainer(_cfg(tmp_path / "run2", on_nan="rollback", loss_weights={"nan_at": 6}), task_class=DummyTask).fit()
    # And without any checkpoint there is nothing to roll back to.
    with pytest.raises(TrainingError, match="no checkpoint to roll back to"):
        Trainer(_cfg(tmp_path / "run3", on_nan="rollback", loss_weights={"nan_at": 2}), task_class=DummyTask).fit()


def test_keep_checkpoints_and_model_config_mismatch(tmp_path):
    Trainer(_cfg(tmp_path / "run", checkpoint_every=2, keep_checkpoints=2), task_class=DummyTask).fit()
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir()) == ["step-000000008", "step-000000010"]
    other = _cfg(tmp_path / "run", resume="latest", max_steps=12, model_overrides={"g_base_channels": 8})
    with pytest.raises(TrainingError, match="model config differs"):
        Trainer(other, task_class=DummyTask).fit()


def test_resume_with_a_different_data_stream_is_refused(tmp_path):
    Trainer(_cfg(tmp_path / "r", max_steps=5), task_class=DummyTask).fit()
    for change in ({"batch_size": 2}, {"seed": 5}):
        with pytest.raises(TrainingError, match=f"{next(iter(change))}: checkpoint"):
            Trainer(_cfg(tmp_path / "r", resume="latest", **change), task_class=DummyTask).fit()
    # The unchanged setup still resumes.
    assert Trainer(_cfg(tmp_path / "r", resume="latest"), task_class=DummyTask).fit() is not None


@pytest.mark.parametrize("field,value", [("batch_size", "abc"), ("betas", 3), ("max_steps", 1.5),
                                         ("compile", 1), ("data_options", "x")])
def test_config_values_of_the_wrong_type_are_named(field, value):
    with pytest.raises(TrainingError, match=f"TrainConfig.{field}: expected"):
        TrainConfig(**{field: value})
