"""Task.evaluation_domain / merge_metrics: which ground truth a run's data has, and how the task metrics of
fashion_gans.evaluation join each task's own held-out metrics."""

from __future__ import annotations

import math

from fashion_gans.training.config import TrainConfig
from fashion_gans.training.tasks.base import Task


def _task(data: str) -> Task:
    class T(Task):
        name = "pose"

    return T(TrainConfig(task="pose", data=data), None)


def test_evaluation_domain_follows_the_data(tmp_path):
    assert _task("fashion-mnist").evaluation_domain() == "fashion-mnist"
    assert _task("fashion-mnist:/usr/share/datasets/fashion-mnist").evaluation_domain() == "fashion-mnist"
    assert _task("synthetic").evaluation_domain() == "synthetic"
    real = tmp_path / "deepfashion"
    (real / "img").mkdir(parents=True)
    assert _task(str(real)).evaluation_domain() == "other"  # real photos: pixel and keypoint metrics only
    prepared = tmp_path / "prepared"
    (prepared / "lookbook").mkdir(parents=True)
    (prepared / "lookbook" / "synthetic_attributes.json").write_text("{}")
    assert _task(str(prepared)).evaluation_domain() == "synthetic"
    assert _task(str(prepared / "lookbook")).evaluation_domain() == "synthetic"
    assert _task("hf:user/dataset").evaluation_domain() == "other"


def test_merge_keeps_the_task_metrics_and_averages_the_rest():
    merged = Task.merge_metrics({"ssim": 0.5}, [{"ssim": 0.9, "kp": 0.1}, {"kp": 0.3, "rate": float("nan")}])
    assert merged["ssim"] == 0.5  # the task's own value wins
    assert math.isclose(merged["kp"], 0.2)
    assert math.isnan(merged["rate"])  # NaN only where no batch had a value
