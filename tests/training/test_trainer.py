"""The training loop with a tiny task: data order, exact in-process resume, guards, logs, samples, plots."""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace
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


#: A plateau schedule that halves the LR on the first scheduler step after each cooldown step: an absolute threshold
#: of 1e9 makes every step after the first "not better".  Stepped on the mean loss of 2 steps, so the step-5
#: checkpoint sits mid-window: a resume that lost the window (or the cooldown) would step on other steps.
PLATEAU = {"factor": 0.5, "patience": 0, "cooldown": 1, "threshold": 1e9, "threshold_mode": "abs", "every": 2}


def test_resume_mid_epoch_is_exact_and_outputs_written(tmp_path):
    # 18 items / batch 4 = 4 batches per epoch: step 5 checkpoint sits inside epoch 1.
    sched = dict(lr_schedule="plateau", lr_plateau=PLATEAU)
    straight = Trainer(_cfg(tmp_path / "a", **sched), task_class=DummyTask)
    metrics = straight.fit()
    part = Trainer(_cfg(tmp_path / "b", max_steps=5, **sched), task_class=DummyTask)
    part.fit()
    assert (part.epoch, part.batch_in_epoch) == (1, 1)
    assert part.schedulers["g"].window_count == 1  # mid-window at the checkpoint
    resumed = Trainer(_cfg(tmp_path / "b", resume="latest", **sched), task_class=DummyTask)
    resumed_metrics = resumed.fit()
    assert _weights(tmp_path / "a", 10) == _weights(tmp_path / "b", 10)
    assert metrics == resumed_metrics
    # The LR really dropped (scheduler steps at 2, 4, ..., 10: reduce at 4 and 8), identically in both runs.
    assert straight.learning_rates() == resumed.learning_rates() == {"g": 2.5e-3, "d": 2.5e-3}
    for run in ("a", "b"):
        saved = torch.load(tmp_path / run / "checkpoints/step-000000010/state.pt", weights_only=True)
        assert saved["schedulers"]["g"]["last_epoch"] == 5  # one scheduler step per 2 training steps
    state_a = torch.load(tmp_path / "a/checkpoints/step-000000010/state.pt", weights_only=True)
    state_b = torch.load(tmp_path / "b/checkpoints/step-000000010/state.pt", weights_only=True)
    assert torch.equal(state_a["rng"][0]["torch"], state_b["rng"][0]["torch"])
    assert torch.equal(state_a["task"]["counter"], torch.tensor(10.0))

    run = tmp_path / "a"
    records = [json.loads(x) for x in (run / "logs/scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "loss"] == [2, 4, 6, 8, 10]
    assert [r["step"] for r in records if r["kind"] == "metric"] == [5, 10]
    assert [(r["step"], r["g"]) for r in records if r["kind"] == "lr"] == [
        (2, 1e-2), (4, 5e-3), (6, 5e-3), (8, 2.5e-3), (10, 2.5e-3)]
    # Every logged step also carries its wall clock, increasing with the step.
    clock = [(r["step"], r["unix"]) for r in records if r["kind"] == "time"]
    assert [s for s, _ in clock] == [2, 4, 6, 8, 10]
    assert all(b[1] >= a[1] for a, b in zip(clock, clock[1:]))
    # After the first full logging window the resumed run logs exactly what the straight run logged (apart from
    # the wall clock).
    records_b = [json.loads(x) for x in (tmp_path / "b/logs/scalars.jsonl").read_text().splitlines()]
    assert [r for r in records_b if r["step"] > 6 and r["kind"] != "time"] == [
        r for r in records if r["step"] > 6 and r["kind"] != "time"]
    for name in ("plots/losses.png", "plots/lr.png", "plots/metric_mean_l1.png", "samples/step-000000005.png",
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


def test_fp16_on_the_cpu_is_refused_at_config_time(tmp_path):
    # Accelerate 1.15 accepts fp16 on the CPU but runs it without autocast or a gradient scaler (plain fp32).
    with pytest.raises(TrainingError, match="fp16 needs a CUDA GPU.*use bf16 on the CPU"):
        Trainer(_cfg(tmp_path / "run", mixed_precision="fp16"), task_class=DummyTask)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("changes, message", [
    (dict(lr_schedule="cosine"), "lr_schedule: choose one of"),
    (dict(lr_plateau={"factor": 1.5}), r"'factor' must be in \(0, 1\)"),
    (dict(lr_plateau={"patience": -1}), "'patience' must be an integer >= 0"),
    (dict(lr_plateau={"every": 0}), "'every' must be an integer >= 1"),
    (dict(lr_plateau={"threshold_mode": "relative"}), "'threshold_mode' must be 'rel' or 'abs'"),
    (dict(lr_plateau={"min_lr": "tiny"}), "'min_lr' must be a number"),
    (dict(lr_plateau={"decay": 0.5}), r"unknown key\(s\) \['decay'\]"),
    (dict(compile_backend="tensorrt"), "compile_backend: choose one of"),
    (dict(lr_schedule="linear", lr_decay_start=1.0), r"lr_decay_start: must be in \[0, 1\)"),
])
def test_schedule_and_speed_options_are_checked(changes, message):
    with pytest.raises(TrainingError, match=message):
        TrainConfig(**changes)


def test_task_lr_schedule_defaults_follow_the_thesis(tmp_path):
    """Plateau (factor 0.99, patience 10, min lr 5e-6) for style (cooldown 200) and generation (cooldown 100),
    none for pose and garment; ``lr_plateau`` overrides single settings; a task without monitored losses refuses
    ``plateau``."""
    from fashion_gans.models import get_preset
    from fashion_gans.training.tasks import get_task_class

    for task, kind, cooldown in (("style", "plateau", 200), ("generation", "plateau", 100), ("pose", "none", 200),
                                 ("garment", "none", 200)):
        cfg = TrainConfig(task=task, output_dir=str(tmp_path), lr_plateau={"factor": 0.9} if task == "style" else {})
        got, settings = get_task_class(task)(cfg, get_preset(cfg.preset_name)).lr_schedule()
        assert got == kind, task
        assert settings["cooldown"] == cooldown and settings["patience"] == 10 and settings["min_lr"] == 5e-6
        assert settings["factor"] == (0.9 if task == "style" else 0.99)
    style = get_task_class("style")(TrainConfig(task="style"), get_preset("cyclegan_small"))
    models = style.build_models()
    schedulers = style.build_schedulers(style.build_optimizers(models))
    assert sorted(schedulers) == ["d", "g"] and style.scheduler_losses() == {"g": "g_total", "d": "d_total"}
    assert schedulers["g"].factor == 0.99 and schedulers["g"].cooldown == 200

    class NoMonitor(DummyTask):
        lr_monitor = {}

    with pytest.raises(TrainingError, match="names no loss to drive a plateau"):
        Trainer(_cfg(tmp_path / "r", lr_schedule="plateau"), task_class=NoMonitor).fit()


def test_fashion_mnist_picks_the_fmnist_presets(tmp_path):
    """No preset + fashion-mnist data -> the 1-channel 32 px preset; the dry-run description names it."""
    assert TrainConfig(task="generation", data="fashion-mnist").preset_name == "stylegan_fmnist"
    assert TrainConfig(task="style", data="fashion-mnist:/x").preset_name == "cyclegan_fmnist"
    assert TrainConfig(task="style", data="synthetic").preset_name == "cyclegan_small"
    assert TrainConfig(task="generation", data="fashion-mnist", preset="stylegan2_small").preset_name == \
        "stylegan2_small"
    described = Trainer(TrainConfig(task="style", data="fashion-mnist", output_dir=str(tmp_path))).describe()
    assert described["preset"] == "cyclegan_fmnist" and described["model"]["channels_a"] == 1
    assert described["data"]["train_size"] == 18000


def test_write_audit_records_writes_under_its_roots_only(tmp_path, monkeypatch):
    """The audit hook behind FASHION_GANS_WRITE_AUDIT sees Python, torch and safetensors writes (directly, or
    through the folder they are created in and renamed from) under its roots, and nothing else; a relative root
    and relative paths are resolved against the working directory."""
    from safetensors.torch import save_model

    from fashion_gans.training.trainer import _WriteAudit

    root, other = tmp_path / "run", tmp_path / "elsewhere"
    other.mkdir()
    audit = _WriteAudit([root])
    audit.start()
    try:
        root.mkdir()
        (root / "a.txt").write_text("x")
        (root / "b.txt").exists()  # a read is not a write
        (root / ".tmp").mkdir()
        torch.save({"x": torch.zeros(1)}, root / ".tmp" / "state.pt")
        save_model(torch.nn.Linear(2, 2), str(root / ".tmp" / "w.safetensors"))
        os.replace(root / ".tmp", root / "ckpt")
        (other / "c.txt").write_text("x")
    finally:
        audit.stop()
    (root / "after.txt").write_text("x")  # after stop: not recorded
    events = {(e, str(Path(p).relative_to(root))) for e, p in audit.writes}
    assert ("os.mkdir", ".") in events and ("open", "a.txt") in events and ("os.mkdir", ".tmp") in events
    assert ("os.rename", ".tmp") in events and ("os.rename", "ckpt") in events
    assert not any(p.endswith(("b.txt", "after.txt")) for _, p in events)
    assert all(Path(p).is_relative_to(root) for _, p in audit.writes)

    monkeypatch.chdir(tmp_path)  # output_dir="runs/x": relative root, relative writes
    audit = _WriteAudit([Path("runs/x")])
    audit.start()
    try:
        Path("runs/x").mkdir(parents=True)
        Path("runs/x/a.txt").write_text("x")
        os.replace("runs/x/a.txt", "runs/x/b.txt")
        Path("runs/other.txt").write_text("x")
    finally:
        audit.stop()
    x = tmp_path / "runs" / "x"
    assert {("os.mkdir", str(x)), ("open", str(x / "a.txt")), ("os.rename", str(x / "b.txt"))} <= set(audit.writes)
    assert all(Path(p).is_relative_to(x) for _, p in audit.writes)


@pytest.mark.parametrize("task, preset", [("style", "cyclegan_fmnist"), ("generation", "stylegan_fmnist"),
                                          ("generation", "stylegan2_fmnist")])
def test_fmnist_presets_match_fashion_mnist_and_train_a_step(tmp_path, task, preset):
    from torch.utils.data import DataLoader, Subset

    from fashion_gans.models import count_parameters, get_preset
    from fashion_gans.training.tasks import get_task_class
    from task_harness import bind_task

    cfg = TrainConfig(task=task, data="fashion-mnist", preset=preset, batch_size=4, output_dir=str(tmp_path),
                      cpu=True, log_with="none")
    t = get_task_class(task)(cfg, get_preset(preset))
    test = t.build_dataset("test")
    t.check_data(test[0])  # 1 channel, 32 px: no mismatch
    bind_task(t)
    assert 0.1e6 < sum(count_parameters(m) for m in t.models.values()) < 3e6  # small presets
    batch = next(iter(DataLoader(Subset(test, range(4)), batch_size=4)))
    losses = t.training_step(batch, 0)
    assert losses and all(torch.isfinite(v) for v in losses.values())


def test_plateau_resume_keeps_the_counters_and_takes_the_new_settings():
    """A resumed run continues the schedule (best loss, counters, open window) under the settings of its own
    config: a changed lr_plateau is not overwritten by the checkpoint's."""
    from fashion_gans.training.schedulers import PlateauScheduler

    def opt():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)

    old = PlateauScheduler(opt(), factor=0.5, patience=1, cooldown=0, min_lr=0.0, every=2)
    for value in (1.0, 1.0, 2.0, 2.0, 3.0):
        old.observe(value)
    state = old.state_dict()
    new = PlateauScheduler(opt(), factor=0.9, patience=7, cooldown=3, min_lr=1e-3, threshold=0.1, every=3)
    new.load_state_dict(state)
    assert (new.factor, new.patience, new.cooldown, new.min_lrs, new.threshold, new.every) == (0.9, 7, 3, [1e-3],
                                                                                               0.1, 3)
    assert (new.best, new.num_bad_epochs, new.last_epoch, new.window_sum, new.window_count) == \
        (old.best, old.num_bad_epochs, old.last_epoch, old.window_sum, old.window_count) == (1.0, 1, 2, 3.0, 1)


def test_linear_decay_rates_per_step():
    """Full rate up to the start, then linear towards zero: the last update runs at 1 / (total - start)."""
    from fashion_gans.training.schedulers import LinearDecayScheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = LinearDecayScheduler(opt, total_steps=10, start=5)
    used = []
    for _ in range(10):
        used.append(sched.lr)  # the rate of this update
        sched.observe(123.0)  # any loss: ignored
    assert used == pytest.approx([2.0] * 6 + [1.6, 1.2, 0.8, 0.4])
    with pytest.raises(ValueError, match="must start in"):
        LinearDecayScheduler(opt, total_steps=10, start=10)


def test_linear_schedule_resume_is_exact_and_needs_no_monitored_loss(tmp_path):
    """``lr_schedule="linear"`` decays every optimiser over the steps after ``lr_decay_start``, also for a task
    that names no loss to monitor; a run stopped mid-decay and resumed trains at the same rates to the same
    weights."""
    import shutil

    rates: dict[str, list[tuple[int, float]]] = {}

    class NoMonitor(DummyTask):
        lr_monitor = {}

        def training_step(self, batch, step):
            rates.setdefault(self.config.output_dir, []).append((step, self.optimizers["g"].param_groups[0]["lr"]))
            return super().training_step(batch, step)

    sched = dict(lr_schedule="linear", lr_decay_start=0.4)  # 10 steps: falls from step 4 on, over 6 steps
    straight = Trainer(_cfg(tmp_path / "a", **sched), task_class=NoMonitor)
    straight.fit()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b/checkpoints/step-000000010")  # as if stopped after step 5
    resumed = Trainer(_cfg(tmp_path / "b", resume="latest", **sched), task_class=NoMonitor)
    resumed.fit()
    used = [lr for _, lr in rates[str(tmp_path / "a")]]
    assert used == pytest.approx([1e-2] * 5 + [1e-2 * k / 6 for k in (5, 4, 3, 2, 1)])
    assert rates[str(tmp_path / "b")] == pytest.approx(rates[str(tmp_path / "a")][5:])
    assert _weights(tmp_path / "a", 10) == _weights(tmp_path / "b", 10)
    saved = torch.load(tmp_path / "a/checkpoints/step-000000010/state.pt", weights_only=True)
    assert saved["schedulers"]["g"]["steps_done"] == 10 and saved["schedulers"]["g"]["base_lrs"] == [1e-2]


def test_stop_flag_is_shared_when_a_task_returns_no_losses(tmp_path):
    """SIGTERM on one process stops every process after the same step, also for a step that returns no losses."""
    t = Trainer(_cfg(tmp_path), task_class=DummyTask)
    t._monitored, t._stop_flags = [], (torch.zeros(1), torch.ones(1))
    t._stop_requested = False  # not on this process...
    t.accelerator = SimpleNamespace(num_processes=2, reduce=lambda x, reduction: x + 1)  # ...but on the other
    assert t._check_finite({}) == {} and t._stop_now is True
    t.accelerator = SimpleNamespace(num_processes=1)
    assert t._check_finite({}) == {} and t._stop_now is False


def test_hub_resume_failure_is_raised_on_every_process(tmp_path, monkeypatch):
    """A failed Hub download on the main process is broadcast: every process raises, none waits forever."""
    import accelerate.utils

    sent = []

    def broadcast(objects, from_process=0):
        sent.append(objects[0])
        return [sent[0]]  # what the main process sent

    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast)

    class Offline:
        def list_repo_files(self, repo_id, **_):
            raise RuntimeError("hub unreachable")

    t = Trainer(_cfg(tmp_path, hub_repo="me/run"), task_class=DummyTask, hub_api=Offline())
    t.accelerator = SimpleNamespace(num_processes=2)
    t.is_main = True
    with pytest.raises(TrainingError, match="resume from hub_repo 'me/run': RuntimeError: hub unreachable"):
        t._resolve_resume("latest")
    t.is_main = False  # another process: does not download, raises what the main process broadcast
    with pytest.raises(TrainingError, match="hub unreachable"):
        t._resolve_resume("latest")
    assert sent[1] is None


def test_uploading_runs_get_a_long_collective_timeout():
    """With hub_repo the main process may wait for an upload while the others wait at a barrier."""
    from accelerate.utils import InitProcessGroupKwargs

    from fashion_gans.training.trainer import _accelerator_handlers

    def timeouts(cfg):
        return [h.timeout for h in _accelerator_handlers(cfg) if isinstance(h, InitProcessGroupKwargs)]

    assert timeouts(TrainConfig()) == []
    assert [t.total_seconds() for t in timeouts(TrainConfig(hub_repo="me/run"))] == [4 * 3600]


def test_evaluate_exported_scores_a_finished_model_as_its_run_did(tmp_path, monkeypatch):
    """A run's exported networks, scored again without its checkpoints, give the metrics the run measured at its
    end; other weights give other values; another task's model is refused; metrics of networks that are not
    exported are left out."""
    from fashion_gans.models.sources import load_networks
    from fashion_gans.training.tasks.garment import GarmentTask

    tiny = dict(task="garment", model_overrides={"image_size": [32, 32], "g_base_channels": 8, "d_base_channels": 8},
                synthetic_size=16, max_steps=4, batch_size=2, eval_batches=2, checkpoint_every=4, sample_every=4,
                eval_every=4)
    Trainer(_cfg(tmp_path / "run", **tiny)).fit()
    final = tmp_path / "run" / "final"
    measured = {k: v for k, v in json.loads((tmp_path / "run" / "final_metrics.json").read_text()).items()
                if k != "step"}
    assert {"l1", "ssim", "colour_kept"} <= set(measured)
    again = Trainer(_cfg(tmp_path / "again", **tiny)).evaluate_exported(final)
    assert again == pytest.approx(measured, rel=1e-6, abs=1e-9)
    assert not (tmp_path / "again").exists()  # nothing written

    other = load_networks(final).networks["generator"]
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(0.5)
    other.save_pretrained(tmp_path / "halved" / "generator")
    halved = Trainer(_cfg(tmp_path / "h", **tiny)).evaluate_exported(tmp_path / "halved")
    assert halved["l1"] != pytest.approx(measured["l1"], rel=1e-3)

    with pytest.raises(TrainingError, match="holds a 'garment' model"):
        Trainer(_cfg(tmp_path / "s", task="style", synthetic_size=18)).evaluate_exported(final)

    monkeypatch.setattr(GarmentTask, "unexported_metrics", ("ssim",))
    partial = Trainer(_cfg(tmp_path / "p", **tiny)).evaluate_exported(final)
    assert "ssim" not in partial and partial["l1"] == pytest.approx(measured["l1"], rel=1e-6)
