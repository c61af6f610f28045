"""Fader task: real training runs on synthetic flats through the Trainer (reconstruction learnt, latent made
attribute-free by the adversarial term, λ_E ramp), exact resume, the adversarial losses, config checks."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fashion_gans.models import FaderNetwork, get_preset
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.tasks import get_task_class
from fashion_gans.training.tasks.fader import FaderTask, adversarial_loss, lambda_e_at
from task_harness import bind_task, first_batch

#: A small Fader at 32 px on four colours x two patterns: a step takes milliseconds on one CPU thread.
ATTRIBUTES = {"colour": ["red", "green", "blue", "black"], "pattern": ["solid", "stripes"]}
TINY = {"image_size": 32, "enc_channels": [16, 32, 64], "dis_hidden": 64, "attributes": ATTRIBUTES}
STEPS = 160


def _config(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(task="fader", data="synthetic", synthetic_size=256, model_overrides=TINY, batch_size=16,
                max_steps=STEPS, lr_g=2e-3, lr_d=2e-3, checkpoint_every=STEPS, sample_every=STEPS, log_every=1,
                eval_every=STEPS, eval_batches=4, output_dir=str(tmp_path / name), cpu=True, log_with="none",
                loss_weights={"lambda_e": 0.1}, schedule={"lambda_e_ramp_steps": 40})
    base.update(kw)
    return TrainConfig(**base)


def _records(run, kind):
    lines = (run / "logs" / "scalars.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of STEPS steps, identical but for λ_E: the paper's ramp to 0.1 over 40 steps, and 0 (a plain
    autoencoder whose latent discriminator is never opposed).  Plus each run's untrained metrics."""
    from fashion_gans.training.trainer import Trainer

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("fader-runs")
    out = {}
    try:
        for name, lam in (("adv", 0.1), ("plain", 0.0)):
            cfg = _config(tmp, name, loss_weights={"lambda_e": lam})
            trainer = Trainer(cfg)
            metrics = trainer.fit()
            fresh = FaderTask(cfg, trainer.model_config)
            bind_task(fresh, seed=cfg.seed)
            out[name] = {"before": fresh.evaluate(trainer.eval_batches), "after": metrics, "run": tmp / name,
                         "eval": trainer.eval_batches}
    finally:
        torch.set_num_threads(before)
    return out


def test_registered_and_defaults():
    assert get_task_class("fader") is FaderTask
    assert FaderTask.default_loss_weights == {"recon": 1.0, "lambda_e": 1e-2}
    cfg = TrainConfig(task="fader", data="synthetic")
    assert cfg.preset_name == "fader_synthetic"
    assert TrainConfig(task="fader", data="fashion-mnist").preset_name == "fader_fmnist"


def test_reconstruction_learnt_on_held_out_flats(runs):
    """Held-out reconstruction error falls to well under half of the untrained network's, and the SSIM rises."""
    for name in ("adv", "plain"):
        before, after = runs[name]["before"], runs[name]["after"]
        assert after["recon_l1"] < 0.5 * before["recon_l1"], (name, before["recon_l1"], after["recon_l1"])
        assert after["recon_ssim"] > before["recon_ssim"] + 0.2, (name, before["recon_ssim"], after["recon_ssim"])
    # The edit metrics of the shipped attribute network come with every evaluation on synthetic data.
    after = runs["adv"]["after"]
    assert {"edit_success", "others_kept", "reader_accuracy", "edit_success_colour", "latent_acc"} <= set(after)
    # Opposing the latent discriminator is what makes the decoder follow the code: edits land far more often.
    assert after["edit_success"] > runs["plain"]["after"]["edit_success"] + 0.1, (
        after["edit_success"], runs["plain"]["after"]["edit_success"])


def test_adversarial_term_makes_the_latent_attribute_free(runs):
    """Unopposed, the latent discriminator reads the attributes from held-out latents far above chance; with λ_E
    on, the encoder hides them: the discriminator is near chance (the most frequent value of each attribute)."""
    plain, adv = runs["plain"]["after"], runs["adv"]["after"]
    chance = adv["latent_chance"]
    assert 0.3 < chance < 0.7
    assert plain["latent_acc"] > chance + 0.25, (plain["latent_acc"], chance)
    assert adv["latent_acc"] < chance + 0.15, (adv["latent_acc"], chance)
    # The training-time accuracy tells the same story at the end of the run.
    acc = {name: [r["dis_acc"] for r in _records(runs[name]["run"], "loss")][-20:] for name in runs}
    assert sum(acc["plain"]) / 20 > sum(acc["adv"]) / 20 + 0.2, acc


def test_lambda_e_ramps_as_configured(runs):
    """λ_E of every logged step (log_every 1) is the linear ramp 0 -> 0.1 over 40 steps, then 0.1."""
    records = _records(runs["adv"]["run"], "loss")
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    for r in records:
        assert r["lambda_e"] == pytest.approx(0.1 * min(1.0, (r["step"] - 1) / 40), abs=1e-7), r["step"]
        assert r["ae"] == pytest.approx(r["recon"] + r["lambda_e"] * r["adv"], rel=1e-4)
    assert all(r["lambda_e"] == 0 for r in _records(runs["plain"]["run"], "loss"))
    assert lambda_e_at(5, 0.2, 0) == 0.2 and lambda_e_at(10, 0.2, 40) == pytest.approx(0.05)


def test_exported_network_edits(runs):
    """The exported final/fader reproduces the trained task on its held-out batches: the same reconstruction
    error and the same edit metrics as the run's last evaluation, and a changed code changes the output."""
    from fashion_gans.evaluation.editing import attribute_reader, edit_metrics
    from fashion_gans.evaluation.task_metrics import ssim_l1
    from fashion_gans.models.attributes import attribute_code

    fader = FaderNetwork.from_pretrained(runs["adv"]["run"] / "final" / "fader").eval()
    assert fader.config.attributes == ATTRIBUTES and fader.config.image_size == 32
    after = runs["adv"]["after"]
    images = torch.cat([b["image"] for b in runs["adv"]["eval"]]).float()
    labels = torch.cat([b["attributes"] for b in runs["adv"]["eval"]]).long()
    with torch.no_grad():
        own = fader(images, attribute_code(labels, ATTRIBUTES))
        other = labels.clone()
        other[:, 0] = (other[:, 0] + 1) % len(ATTRIBUTES["colour"])
        edited = fader(images, attribute_code(other, ATTRIBUTES))
    assert ssim_l1(own, images)["l1"].mean().item() == pytest.approx(after["recon_l1"], rel=1e-4, abs=1e-5)
    assert (edited - own).abs().flatten(1).mean(1).min() > 0.02  # every image changes with its colour code

    def edit(x, code):
        with torch.no_grad():
            return fader(x, code)

    values = edit_metrics(edit, images, labels, ATTRIBUTES, attribute_reader(ATTRIBUTES))
    for key in ("edit_success", "others_kept", "recon_kept"):
        assert values[key] == pytest.approx(after[key], abs=1e-6), key
    grid = sorted((runs["adv"]["run"] / "samples").glob("*.png"))
    assert grid, "no sample grid written"


def test_resume_is_exact(tmp_path, one_thread):
    """8 steps straight == 4 steps, then a resumed run of 4 more: weights, optimiser state and the λ_E ramp position
    (the ramp is still climbing across the resume, so a restarted ramp would change the weights)."""
    from fashion_gans.training.trainer import Trainer

    common = dict(max_steps=8, checkpoint_every=4, sample_every=100, eval_every=0, eval_batches=1, batch_size=4,
                  synthetic_size=64, deterministic=True, loss_weights={"lambda_e": 0.5},
                  schedule={"lambda_e_ramp_steps": 6})
    Trainer(_config(tmp_path, "straight", **common)).fit()
    Trainer(_config(tmp_path, "split", **{**common, "max_steps": 4})).fit()
    Trainer(_config(tmp_path, "split", **{**common, "resume": "latest"})).fit()

    def state(run):
        folder = tmp_path / run / "checkpoints" / "step-000000008"
        weights = {p.name: p.read_bytes() for p in sorted((folder / "models").glob("*.safetensors"))}
        task = torch.load(folder / "state.pt", weights_only=True)["task"]
        return weights, task, torch.load(folder / "optimizers.pt", weights_only=True)

    (wa, ta, oa), (wb, tb, ob) = state("straight"), state("split")
    assert set(wa) == {"fader.safetensors", "latent_disc.safetensors"} and wa == wb
    assert ta["steps_done"] == tb["steps_done"] == 8 and ta["lambda_e"] == tb["lambda_e"] == 0.5
    for name in oa:
        for k, st in oa[name]["state"].items():
            assert all(torch.equal(st[key], ob[name]["state"][k][key]) for key in st), (name, k)
    lam = [r["lambda_e"] for r in _records(tmp_path / "split", "loss")]
    assert lam == pytest.approx([0.5 * min(1, s / 6) for s in range(8)])


def test_adversarial_losses():
    attrs = {"a": ["x", "y", "z"], "b": ["u", "v"]}
    torch.manual_seed(0)
    logits = torch.randn(5, 5)
    idx = torch.tensor([[0, 1], [2, 0], [1, 1], [0, 0], [2, 1]])
    # flip: the expectation of the cross-entropy towards a uniformly drawn other value.
    expected = 0.0
    for k, (lo, n) in enumerate(((0, 3), (3, 2))):
        block = logits[:, lo:lo + n]
        per = [torch.nn.functional.cross_entropy(block[i:i + 1], torch.tensor([t]))
               for i in range(5) for t in range(n) if t != idx[i, k]]
        expected += torch.stack(per).view(5, n - 1).mean(1).mean()
    assert adversarial_loss(logits, idx, attrs, "flip") == pytest.approx(float(expected), rel=1e-5)
    # uniform: KL from uniform, 0 exactly for an uninformed discriminator.
    assert adversarial_loss(torch.zeros(5, 5), idx, attrs, "uniform") == pytest.approx(0.0, abs=1e-6)
    assert adversarial_loss(logits, idx, attrs, "uniform") > 0.05
    # flip rewards moving probability off the true value.
    confident_true = torch.zeros(5, 5)
    confident_true[torch.arange(5), idx[:, 0]] = 5.0
    assert adversarial_loss(confident_true, idx, attrs, "flip") > adversarial_loss(torch.zeros(5, 5), idx, attrs)
    with pytest.raises(ValueError, match="adversarial target"):
        adversarial_loss(logits, idx, attrs, "entropy")


def test_config_and_data_checks(tmp_path):
    mc = get_preset("fader_synthetic").replace(**TINY)
    with pytest.raises(TrainingError, match="unknown schedule key"):
        FaderTask(_config(tmp_path, schedule={"ramp": 3}), mc)
    with pytest.raises(TrainingError, match="lambda_e_ramp_steps"):
        FaderTask(_config(tmp_path, schedule={"lambda_e_ramp_steps": -1}), mc)
    with pytest.raises(TrainingError, match="adversarial"):
        FaderTask(_config(tmp_path, schedule={"adversarial": "entropy"}), mc)
    with pytest.raises(TrainingError, match="lambda_e"):
        FaderTask(_config(tmp_path, loss_weights={"lambda_e": -1.0}), mc)
    with pytest.raises(TrainingError, match="unknown loss weight"):
        FaderTask(_config(tmp_path, loss_weights={"cycle": 1.0}), mc)
    with pytest.raises(TrainingError, match="FaderConfig"):
        FaderTask(_config(tmp_path), get_preset("cyclegan_small"))
    task = FaderTask(_config(tmp_path), mc)
    item = task.build_dataset("test")[0]
    task.check_data(item)
    with pytest.raises(TrainingError, match=r"\(3, 32, 32\)"):
        FaderTask(_config(tmp_path), mc.replace(image_size=64)).check_data(item)


def test_sample_columns(tmp_path):
    """input | reconstruction | 3 colour edits | 1 pattern edit, one row per image."""
    task = FaderTask(_config(tmp_path), get_preset("fader_synthetic").replace(**TINY))
    batch = first_batch(task.build_dataset("test"), n=3)
    bind_task(task)
    targets = task.edit_columns(batch["attributes"])
    assert len(targets) == 4
    for t in targets:  # exactly one attribute changed per edit
        assert ((t != batch["attributes"]).sum(1) == 1).all()
    grid = task.sample(batch).view(3, 6, 3, 32, 32)
    assert torch.equal(grid[:, 0], batch["image"].clamp(-1, 1))
    assert not torch.allclose(grid[:, 2], grid[:, 3])  # different codes, different images
    assert math.isfinite(float(grid.abs().max()))


def test_training_code_matches_attribute_code(tmp_path):
    """The step's sync-free one-hot code is the models' attribute code."""
    from fashion_gans.models.attributes import attribute_code

    mc = get_preset("fader_synthetic")
    task = FaderTask(_config(tmp_path), mc)
    idx = torch.stack([torch.randint(0, len(v), (64,), generator=torch.Generator().manual_seed(k))
                       for k, v in enumerate(mc.attributes.values())], 1)
    assert torch.equal(task._code(idx), attribute_code(idx, mc.attributes))


def test_learns_fashion_mnist_classes(tmp_path, fashion_mnist_dir, one_thread):
    """The fader_fmnist preset on Fashion-MNIST (the class as the attribute): a short run learns to reconstruct
    held-out test images, and its evaluation reads edits with the shipped classifier."""
    from fashion_gans.training.trainer import Trainer

    cfg = TrainConfig(task="fader", data=f"fashion-mnist:{fashion_mnist_dir}", data_options={"limit": 2000},
                      model_overrides={"enc_channels": [16, 32, 64, 64], "dis_hidden": 64}, batch_size=32,
                      max_steps=60, lr_g=2e-3, lr_d=2e-3, checkpoint_every=60, sample_every=60, eval_every=60,
                      log_every=20, eval_batches=2, output_dir=str(tmp_path / "fm"), cpu=True, log_with="none")
    trainer = Trainer(cfg)
    assert cfg.preset_name == "fader_fmnist" and list(trainer.model_config.attributes) == ["class"]
    after = trainer.fit()
    fresh = FaderTask(cfg, trainer.model_config)
    bind_task(fresh, seed=cfg.seed)
    before = fresh.evaluate(trainer.eval_batches)
    assert after["recon_l1"] < 0.6 * before["recon_l1"], (before, after)
    assert after["reader_accuracy"] > 0.8  # the classifier reads the unedited test images
    assert 0.0 <= after["edit_success"] <= 1.0 and "others_kept" not in after  # one attribute: nothing else to keep
