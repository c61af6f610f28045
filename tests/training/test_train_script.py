"""scripts/train.py end to end: --dry-run, exact resume after a real SIGKILL for every task, and two-process
data-parallel training (gloo on CPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fashion_gans.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train.py"
HERE = Path(__file__).resolve().parent

#: A plateau LR schedule that halves the LR on every step after the first (nothing counts as an improvement
#: against an absolute threshold of 1e9), so that the resumed runs continue a schedule that really moves.
DROPPING = {"factor": 0.5, "patience": 0, "cooldown": 0, "threshold": 1e9, "threshold_mode": "abs"}

#: Per task: tiny model and data so that a step takes well under a second on a CPU.
TINY = {
    "style": {"model_overrides": {"image_size": [32, 32], "g_base_channels": 8, "g_residual_blocks": 1,
                                  "d_base_channels": 8}, "synthetic_size": 64,
              "schedule": {"pool_size": 2},  # a pool that fills (and mixes) within the run
              "lr_plateau": DROPPING},
    "pose": {"model_overrides": {"image_size": [32, 32], "g1_base_channels": 8, "g2_base_channels": 8,
                                 "d_base_channels": 8}, "synthetic_size": 12},
    "garment": {"model_overrides": {"image_size": [32, 32], "g_base_channels": 8, "d_base_channels": 8},
                "synthetic_size": 16},
    "generation": {"model_overrides": {"channels": [32, 32, 16, 16], "d_channels": [32, 16, 16, 16]},
                   "synthetic_size": 40,
                   "schedule": {"images_per_stage": 4, "fade_images": 2},  # grows during the run
                   "lr_plateau": DROPPING},
    "fader": {"model_overrides": {"image_size": 32, "enc_channels": [16, 32], "dis_hidden": 32},
              "synthetic_size": 48},
}
STEPS = 4


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(torch.get_num_threads()), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.update(extra)
    return env


def _args(task: str, out: Path, **changes) -> list[str]:
    tiny = TINY.get(task, {"synthetic_size": 18})
    args = ["--task", task, "--output-dir", str(out), "--max-steps", str(STEPS), "--batch-size", "2",
            "--checkpoint-every", str(STEPS // 2), "--sample-every", "100", "--log-every", "1",
            "--log-with", "none", "--cpu", "--deterministic", "--eval-batches", "1",
            "--set", f"synthetic_size={tiny['synthetic_size']}"]
    if "model_overrides" in tiny:
        args += ["--model-overrides", json.dumps(tiny["model_overrides"])]
    if "schedule" in tiny:
        args += ["--schedule", json.dumps(tiny["schedule"])]
    if "lr_plateau" in tiny:
        args += ["--lr-plateau", json.dumps(tiny["lr_plateau"])]
    for key, value in changes.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    return args


def _config(args: list[str]) -> TrainConfig:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train
    finally:
        sys.path.pop(0)
    return train.resolve_config(train.build_parser().parse_args(args))


def _weights(run: Path, step: int) -> dict[str, bytes]:
    folder = run / "checkpoints" / f"step-{step:09d}" / "models"
    out = {p.name: p.read_bytes() for p in sorted(folder.glob("*.safetensors"))}
    assert out, f"no weights in {folder}"
    return out


def test_dry_run_prints_resolved_config(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), *_args("generation", tmp_path / "runs" / "g"), "--dry-run",
                          "--set", "lr_g=0.001"], capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["train"]["task"] == "generation" and out["train"]["lr_g"] == 0.001
    assert out["train"]["preset"] == "" and out["preset"] == "stylegan_small" and out["model"]["family"] == "stylegan"
    assert out["train"]["lr_schedule"] == "default"
    assert out["model"]["channels"] == TINY["generation"]["model_overrides"]["channels"]
    assert out["data"]["train_size"] > 0 and out["data"]["test_size"] > 0
    assert out["data"]["total_steps"] == STEPS
    assert not (tmp_path / "runs" / "g").exists()  # nothing trained or written for the run itself
    bad = subprocess.run([sys.executable, str(SCRIPT), "--task", "style", "--set", "nonsense=1", "--dry-run"],
                         capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300)
    assert bad.returncode == 2 and "nonsense" in bad.stderr


@pytest.mark.parametrize("task", ["dummy", "style", "pose", "garment", "generation"])
def test_sigkill_then_resume_is_exact(tmp_path, task):
    """N steps straight == N/2 steps, SIGKILL right after the N/2 checkpoint, resume for N/2 (CPU, deterministic)."""
    if task == "dummy":  # the loop alone, through the same entry point
        runner = tmp_path / "run_dummy.py"
        runner.write_text(
            f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(REPO / 'scripts')!r}]\n"
            "from dummy_task import DummyTask\nimport train\n"
            "sys.exit(train.main(sys.argv[1:], task_class=DummyTask))\n")
        cmd, task_name, task_class = [sys.executable, str(runner)], "style", "dummy"
    else:
        cmd, task_name, task_class = [sys.executable, str(SCRIPT)], task, None
    base = tmp_path / "runs"
    straight, killed = base / "straight", base / "killed"
    if task_class == "dummy":
        from dummy_task import DummyTask

        task_class = DummyTask
    from fashion_gans.training.trainer import Trainer

    # The killed run: a subprocess that SIGKILLs itself right after checkpoint N/2 is written.
    res = subprocess.run([*cmd, *_args(task_name, killed)], capture_output=True, text=True, cwd=REPO, timeout=600,
                         env=_env(FASHION_GANS_KILL_AFTER_STEP=str(STEPS // 2)))
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    assert [p.name for p in (killed / "checkpoints").iterdir()] == [f"step-{STEPS // 2:09d}"]
    assert not (killed / "final_metrics.json").exists()

    # Straight and resumed runs in this process (same thread count as the subprocess).
    Trainer(_config(_args(task_name, straight)), task_class=task_class).fit()
    Trainer(_config(_args(task_name, killed, resume="latest")), task_class=task_class).fit()
    assert _weights(straight, STEPS) == _weights(killed, STEPS)
    a = torch.load(straight / f"checkpoints/step-{STEPS:09d}/optimizers.pt", weights_only=True)
    b = torch.load(killed / f"checkpoints/step-{STEPS:09d}/optimizers.pt", weights_only=True)
    for name in a:
        for k, state in a[name]["state"].items():
            assert all(torch.equal(state[key], b[name]["state"][k][key]) for key in state), (name, k)
        assert a[name]["param_groups"][0]["lr"] == b[name]["param_groups"][0]["lr"], name
    if "lr_plateau" in TINY.get(task, {}):  # the thesis' plateau schedule (default of style and generation) moved
        assert a["g"]["param_groups"][0]["lr"] == pytest.approx(2e-4 * 0.5 ** (STEPS - 1))
        sa = torch.load(straight / f"checkpoints/step-{STEPS:09d}/state.pt", weights_only=True)["schedulers"]
        sb = torch.load(killed / f"checkpoints/step-{STEPS:09d}/state.pt", weights_only=True)["schedulers"]
        assert sorted(sa) == ["d", "g"] and sa == sb
    # Task state beyond the networks (image pools, EMA, growth stage, schedules) continues exactly too.
    sa = torch.load(straight / f"checkpoints/step-{STEPS:09d}/state.pt", weights_only=True)["task"]
    sb = torch.load(killed / f"checkpoints/step-{STEPS:09d}/state.pt", weights_only=True)["task"]
    _assert_same(sa, sb)
    assert json.loads((straight / "final_metrics.json").read_text()) == \
        json.loads((killed / "final_metrics.json").read_text())


def _assert_same(a, b, where="task"):
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not installed")
@pytest.mark.parametrize("task,exported,port", [("style", "gen_ab", 29517), ("generation", "generator", 29519),
                                                ("fader", "fader", 29521), ("garment", "generator", 29523)])
def test_two_processes_keep_identical_weights(tmp_path, task, exported, port):
    """Weights, buffers included (StyleGAN's tracked w_avg, Fader's BatchNorm statistics), and the weight averages
    that are exported (StyleGAN's G EMA; the garment generator's average, whose BatchNorm statistics average each
    process's own) stay identical on both processes, and the held-out metrics they report are those of one process
    scoring the exported weights (the edit metrics, which depend on each image's position, tell a duplicated
    held-out set apart)."""
    out, debug, audit, hub = tmp_path / "runs" / "ddp", tmp_path / "debug", tmp_path / "audit", tmp_path / "hub"
    extra = {"schedule": {"ema_beta": 0.5}} if task == "garment" else {}  # the garment average is off by default
    # accelerate 1.x starts several CPU processes through its multi-process launcher (torchrun); the script's
    # --cpu flag keeps them on the CPU, where Accelerate picks the gloo backend.
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), str(SCRIPT),
           *_args(task, out, hub_repo=f"file:{hub}", **extra)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                         env=_env(FASHION_GANS_DEBUG_DIR=str(debug), FASHION_GANS_WRITE_AUDIT=str(audit),
                                  OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-4000:]
    hashes = [json.loads((debug / f"weights-{r}.json").read_text()) for r in (0, 1)]
    assert hashes[0]["step"] == hashes[1]["step"] == STEPS
    assert hashes[0]["sha256"] == hashes[1]["sha256"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["num_processes"] == 2
    # Checkpoints come from the main process only: one complete folder per checkpoint step, nothing else.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"step-{s:09d}" for s in (STEPS // 2, STEPS)]
    state = torch.load(out / f"checkpoints/step-{STEPS:09d}/state.pt", weights_only=True)
    assert len(state["rng"]) == 2  # both processes' RNG states, gathered to the main process
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    assert (out / "final" / exported / "model.safetensors").is_file()
    # Every file-system write under the run folder and the (file:) Hub folder, per process, from audit hooks:
    # the main process wrote checkpoints, samples, logs, final weights and Hub uploads; the other wrote nothing.
    writes = {r: json.loads((audit / f"writes-{r}.json").read_text())["writes"] for r in (0, 1)}
    assert writes[1] == []
    written = {Path(path).relative_to(out).parts[0] for _, path in writes[0]
               if Path(path).is_relative_to(out) and Path(path) != out}
    assert {"config.json", "checkpoints", "samples", "logs", "plots", "final", "final_metrics.json"} <= written
    assert any(Path(path).is_relative_to(hub) for _, path in writes[0])
    assert sorted(p.name for p in (hub / "checkpoints").iterdir()) == [f"step-{s:09d}" for s in (STEPS // 2, STEPS)]
    assert (hub / "logs" / "scalars.jsonl").is_file() and (hub / "final" / exported / "model.safetensors").is_file()

    from fashion_gans.training.trainer import Trainer

    measured = {k: v for k, v in json.loads((out / "final_metrics.json").read_text()).items() if k != "step"}
    alone = Trainer(TrainConfig.from_dict({**saved["train"], "output_dir": str(tmp_path / "alone"), "hub_repo": "",
                                           "resume": ""}))
    scored = alone.evaluate_exported(out / "final", num_processes=2)
    assert scored and set(scored) == set(measured) - set(alone.task.unexported_metrics)
    assert scored == pytest.approx({k: measured[k] for k in scored}, rel=1e-4, abs=1e-6)
    if task == "fader":
        assert {"edit_success", "others_kept", "recon_kept"} <= set(scored)


def test_preempted_run_resumes_from_the_hub_losing_at_most_one_interval(tmp_path):
    """Killed (SIGKILL) right after a checkpoint, a run resumes on a fresh machine from its file: Hub copy, having
    lost at most one checkpoint interval (a checkpoint's upload waits for the previous one), and ends with the
    weights of the uninterrupted run."""
    from dummy_task import DummyTask

    from fashion_gans.training.checkpoint import list_checkpoints
    from fashion_gans.training.trainer import Trainer

    hub, steps, every, kill = tmp_path / "hub", 6, 2, 4
    runner = tmp_path / "run_dummy.py"
    runner.write_text(
        f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(REPO / 'scripts')!r}]\n"
        "from dummy_task import DummyTask\nimport train\n"
        "sys.exit(train.main(sys.argv[1:], task_class=DummyTask))\n")
    common = dict(max_steps=steps, checkpoint_every=every, hub_repo=f"file:{hub}")
    res = subprocess.run([sys.executable, str(runner), *_args("style", tmp_path / "machine1", **common)],
                         capture_output=True, text=True, cwd=REPO, timeout=600,
                         env=_env(FASHION_GANS_KILL_AFTER_STEP=str(kill)))
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    fresh = tmp_path / "machine2"
    Trainer(_config(_args("style", fresh, resume="latest", **common)), task_class=DummyTask).fit()
    resumed_from = list_checkpoints(fresh / "checkpoints")[0].name
    assert resumed_from in (f"step-{kill - every:09d}", f"step-{kill:09d}")  # lost <= one interval
    straight = tmp_path / "straight"
    Trainer(_config(_args("style", straight, max_steps=steps, checkpoint_every=every)), task_class=DummyTask).fit()
    assert _weights(straight, steps) == _weights(fresh, steps)
    logged = {json.loads(x)["step"] for x in (fresh / "logs" / "scalars.jsonl").read_text().splitlines()}
    assert logged == set(range(1, steps + 1))  # the Hub's logs filled in the steps before the resume

