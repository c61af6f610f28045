"""scripts/real_data.py: the real-dataset training commands parse into the thesis configurations, and one of
them runs end to end through ``accelerate launch`` on the synthetic world written in the real format."""

from __future__ import annotations

import json
import shlex

import pytest

from script_loader import load_script


real_data = load_script("real_data.py", "real_data_script")
train_script = load_script("train.py", "train_script_for_real_data")


def _printed_commands(capsys) -> list[list[str]]:
    assert real_data.main(["commands", "--root", "/data", "--hub-user", "someone",
                           "--measured", "/nonexistent.json"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("accelerate launch")]
    return [shlex.split(line) for line in lines]


def test_one_command_per_thesis_preset_and_the_patn_preset(capsys):
    from fashion_gans.models import list_presets

    commands = _printed_commands(capsys)
    presets = [argv[argv.index("--preset") + 1] for argv in commands]
    assert sorted(presets) == sorted([p for p in list_presets() if p.endswith("_thesis")] + ["pgpg_256x176"])
    for argv in commands:
        assert argv[:3] == ["accelerate", "launch", "scripts/train.py"]
        assert argv[argv.index("--data") + 1].startswith("/data/")
        assert argv[argv.index("--resume") + 1] == "latest"
        assert argv[argv.index("--hub-repo") + 1].startswith("someone/")


def test_commands_resolve_to_the_thesis_hyper_parameters(capsys):
    """Each printed command, parsed by scripts/train.py itself, gives the batch size, learning rates, betas,
    epochs and schedules the thesis tables state for that model (thesis-spec.md §4)."""
    thesis = {  # preset: (batch, lr_g, lr_d, betas, epochs, lr schedule)
        "pgpg_thesis": (48, 1e-4, 1e-4, (0.9, 0.999), 93, "default"),
        "pixeldtgan_thesis": (256, 1e-4, 1e-4, (0.9, 0.999), 348, "default"),
        "cyclegan_thesis": (32, 2e-4, 2e-4, (0.9, 0.999), 189, "plateau"),
        "stylegan_thesis": (28, 2e-4, 1e-4, (0.9, 0.999), 149, "plateau"),
        # not a thesis run: the PATN protocol's batch 32 with CycleGAN-style Adam, 60 epochs (documented choice)
        "pgpg_256x176": (32, 2e-4, 2e-4, (0.5, 0.999), 60, "default"),
    }
    seen: set[str] = set()
    for argv in _printed_commands(capsys):
        args = train_script.build_parser().parse_args(argv[3:])
        config = train_script.resolve_config(args)
        assert config.mixed_precision == "bf16" and config.max_steps == 0
        batch, lr_g, lr_d, betas, epochs, schedule = thesis[config.preset_name]
        assert (config.batch_size, config.lr_g, config.lr_d, tuple(config.betas), config.epochs) == (
            batch, lr_g, lr_d, betas, epochs), config.preset_name
        assert config.lr_schedule == schedule
        seen.add(config.preset_name)
        if config.preset_name == "pgpg_thesis":  # thesis erratum E7: 1 -> 5 at epoch 37, 5 -> 10 at epoch 66
            assert config.schedule["recon_epochs"] == [[0, 1], [37, 5], [66, 10]]
        if schedule == "plateau":
            assert config.lr_plateau["factor"] == 0.99
            assert config.lr_plateau["cooldown"] == (200 if config.task == "style" else 100)
    assert seen == set(thesis)


def test_verify_runs_a_thesis_command_end_to_end(tmp_path):
    """The CycleGAN thesis command on handbags_64.hdf5 / shoes_64.hdf5 written from the synthetic world: two
    steps through accelerate launch leave a checkpoint, samples, held-out metrics, networks that load back, and a
    local Hub stand-in holding the checkpoint; the result file records the run."""
    out = tmp_path / "verify.json"
    code = real_data.main(["verify", "--work", str(tmp_path / "work"), "--only", "cyclegan_thesis",
                           "--steps", "2", "--batch", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    run = result["runs"]["cyclegan_thesis"]
    assert code == 0, run["problems"]
    assert run["ok"] and run["problems"] == []
    assert run["command"].startswith("accelerate launch scripts/train.py --task style --preset cyclegan_thesis")
    assert run["seconds_per_step_median"] is not None and run["seconds_per_step_median"] > 0
    hub = tmp_path / "work" / "hub" / "cyclegan_thesis"
    assert list((hub / "checkpoints").glob("step-*")), "the checkpoint did not reach the Hub stand-in"
    assert (tmp_path / "work" / "data" / "bags_shoes" / "handbags_64.hdf5").is_file()
    assert result["machine"]["usable_cores"] >= 1 and result["versions"]["torch"]


def test_verify_reports_a_broken_layout(tmp_path, monkeypatch):
    """A dataset that is not where the command expects it fails the run with the trainer's message."""
    def no_data(run, data_root):
        (data_root / "bags_shoes").mkdir(parents=True, exist_ok=True)  # empty: no hdf5 files

    monkeypatch.setattr(real_data, "_prepare", no_data)
    out = tmp_path / "verify.json"
    code = real_data.main(["verify", "--work", str(tmp_path / "work"), "--only", "cyclegan_thesis",
                           "--steps", "1", "--out", str(out)])
    run = json.loads(out.read_text())["runs"]["cyclegan_thesis"]
    assert code == 1 and not run["ok"]
    assert "handbags_64.hdf5" in run["problems"][0] or "bags_shoes" in run["problems"][0]


def test_unknown_run_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown run"):
        real_data.main(["verify", "--work", str(tmp_path), "--only", "nope"])
