"""IcGAN task: learning on synthetic flats (E_y, E_z, D/G), the matching-aware D batch, the edit metrics,
export and exact resume through the Trainer."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from fashion_gans.models import IcGANEncoderY, IcGANEncoderZ, IcGANGenerator, get_preset
from fashion_gans.models.attributes import attribute_code
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.tasks import get_task_class
from fashion_gans.training.tasks.icgan import IcGANTask, mismatched_attributes, random_attributes
from task_harness import bind_task, first_batch

#: icgan_synthetic at 32 px with narrow networks: a step takes a few tens of milliseconds on one core.
TINY = dict(image_size=32, z_dim=16, g_channels=(64, 32, 16), d_channels=(16, 32, 64), e_channels=(16, 32, 64))


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**kw):
    return get_preset("icgan_synthetic").replace(**{**TINY, **kw})


def _config(tmp_path, **kw) -> TrainConfig:
    base = dict(task="icgan", data="synthetic", synthetic_size=320, batch_size=16, max_steps=100, lr_g=1e-3,
                lr_d=1e-3, output_dir=str(tmp_path / "run"), cpu=True, log_with="none",
                schedule={"edit_metrics": False})
    base.update(kw)
    return TrainConfig(**base)


def test_registered_and_config_errors(tmp_path):
    assert get_task_class("icgan") is IcGANTask
    with pytest.raises(TrainingError, match="unknown loss weight"):
        IcGANTask(_config(tmp_path, loss_weights={"recon_x": 1.0}), _model())
    key = next(iter(IcGANTask.default_loss_weights))
    with pytest.raises(TrainingError, match=rf"task 'icgan': loss weight '{key}' must be >= 0, got -1.0"):
        IcGANTask(_config(tmp_path, loss_weights={key: -1.0}), _model())
    with pytest.raises(TrainingError, match="fake_attributes"):
        IcGANTask(_config(tmp_path, schedule={"fake_attributes": "normal"}), _model())
    with pytest.raises(TrainingError, match="IcGANConfig"):
        IcGANTask(_config(tmp_path), get_preset("fader_synthetic"))
    task = IcGANTask(_config(tmp_path), _model(image_size=64, g_channels=(64, 32, 16, 8)))
    with pytest.raises(TrainingError, match="dataset images are"):
        task.check_data({"image": torch.zeros(3, 32, 32), "attributes": torch.zeros(3, dtype=torch.int64)})


def test_mismatched_and_random_attributes():
    sizes = [13, 4, 9]
    torch.manual_seed(0)
    labels = torch.stack([torch.randint(0, s, (2000,)) for s in sizes], dim=1)
    wrong = mismatched_attributes(labels, sizes)
    changed = wrong != labels
    assert (changed.sum(1) == 1).all()  # exactly one attribute moved per row: a label the image does not have
    assert all(int(wrong[:, k].max()) < s and int(wrong[:, k].min()) >= 0 for k, s in enumerate(sizes))
    for k, s in enumerate(sizes):  # every attribute is chosen, and every other value of it reachable
        rows = changed[:, k]
        assert rows.float().mean() > 0.25
        assert set(((wrong[rows, k] - labels[rows, k]) % s).tolist()) == set(range(1, s))
    shuffled = random_attributes(labels, sizes, "shuffle")
    assert sorted(map(tuple, shuffled.tolist())) == sorted(map(tuple, labels.tolist()))
    uniform = random_attributes(labels, sizes, "uniform")
    assert [len(uniform[:, k].unique()) for k in range(3)] == sizes


def test_discriminator_sees_real_fake_and_mismatched_pairs(tmp_path):
    task = IcGANTask(_config(tmp_path, synthetic_size=32), _model())
    batch = first_batch(task.build_dataset("train"), n=6)
    bind_task(task)
    seen = []
    task.unwrap("discriminator").register_forward_hook(
        lambda m, args, out: seen.append((args[0].detach().clone(), args[1].detach().clone())))
    losses = task.training_step(batch, 0)
    x, y = batch["image"], attribute_code(batch["attributes"], task.attributes)
    (real_x, real_y), (fake_x, fake_y), (wrong_x, wrong_y), (g_x, g_y) = seen[:4]  # D step, then the G step
    assert torch.equal(real_x, x) and torch.equal(real_y, y)
    assert torch.equal(wrong_x, x) and ((wrong_y != y).sum(1) == 2).all()  # one block changed: 2 entries differ
    assert torch.allclose(fake_x, g_x) and torch.equal(fake_y, g_y)  # the G step scores the D step's fakes
    assert torch.allclose(losses["d"], losses["d_real"] + losses["d_fake"] + losses["d_mismatch"], rtol=1e-5)
    assert {"g_adv", "e_z_latent", "e_z_recon", "e_y"} <= set(losses)
    assert all(v.ndim == 0 and not v.requires_grad and torch.isfinite(v) for v in losses.values())


def test_learns_on_synthetic_flats(tmp_path):
    """A short run on held-out designs: E_y's accuracy rises far above chance, E_z's latent error falls, the
    reconstruction through G improves, edits start to land (read by the synthetic-attributes network) where the
    do-nothing editor's never do, and the adversarial losses stay finite."""
    from fashion_gans.evaluation.editing import attribute_reader, copy_edit, edit_metrics

    task = IcGANTask(_config(tmp_path, schedule={}), _model())  # with the edit metrics
    train, test = task.build_dataset("train"), task.build_dataset("test")
    task.check_data(train[0])
    bind_task(task)
    eval_batches = list(DataLoader(test, batch_size=40))[:2]
    before = task.evaluate(eval_batches)
    loader = DataLoader(train, batch_size=16, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    step, history = 0, []
    while step < 120:
        for batch in loader:
            losses = task.training_step(batch, step)
            assert all(torch.isfinite(v) for v in losses.values()), (step, losses)
            history.append(losses)
            step += 1
            if step == 120:
                break
    after = task.evaluate(eval_batches)
    chance = sum(1 / len(v) for v in task.attributes.values()) / len(task.attributes)
    assert before["attr_acc"] < chance + 0.15 and after["attr_acc"] > 0.7, (before, after)
    assert after["latent_mse"] < 0.6 * before["latent_mse"], (before, after)
    assert after["recon_l1"] < 0.7 * before["recon_l1"], (before, after)
    # The edit metrics of IcGANTask.evaluate, against the copy editor on the same images: per attribute, and
    # edits that land (copy: only where the reader misreads a 32 px flat) at the cost of an imperfect
    # reconstruction (copy: SSIM 1).
    images = torch.cat([b["image"] for b in eval_batches])
    labels = torch.cat([b["attributes"] for b in eval_batches])
    copy = edit_metrics(copy_edit, images, labels, task.attributes, attribute_reader(task.attributes))
    for name in task.attributes:
        assert {f"edit_success_{name}", f"others_kept_{name}", f"reader_accuracy_{name}"} <= set(after), name
    assert copy["edit_success"] <= 0.1 and copy["recon_ssim"] == pytest.approx(1.0)
    assert after["edit_success"] > max(copy["edit_success"], before["edit_success"]) + 0.1, (before, after, copy)
    assert before["recon_ssim"] + 0.1 < after["recon_ssim"] < copy["recon_ssim"] - 0.1, (before, after)
    # D keeps telling the three kinds of pair apart without winning outright (LSGAN: 0.25 is a coin flip).
    late = {k: sum(float(h[k]) for h in history[-30:]) / 30 for k in ("d_real", "d_fake", "d_mismatch", "g_adv")}
    assert all(0.0 < v < 1.0 for v in late.values()), late
    grid = task.sample(first_batch(test, n=3))
    assert grid.shape == (3 * 5, 3, 32, 32) and grid.min() >= -1 and grid.max() <= 1
    assert torch.equal(grid[0], test[0]["image"])  # column 0 is the input


def test_edit_metrics_switch_and_values(tmp_path):
    """``schedule["edit_metrics"]``: on by default (64 px: the flats as the world renders them for the
    synthetic-attributes reader), off with false, and a string such as "false" is an error, not a true value."""
    from fashion_gans.evaluation.editing import attribute_reader, edit_metrics

    small = dict(image_size=64, g_channels=(32, 16, 16, 8), d_channels=(8, 16, 16, 32), e_channels=(8, 16, 16, 32))
    task = IcGANTask(_config(tmp_path, schedule={}), _model(**small))
    test = task.build_dataset("test")
    bind_task(task)
    batch = first_batch(test, n=8)
    metrics = task.evaluate([batch])
    # The same numbers as edit_metrics on the task's own editor; an untrained G does not give its input back.
    direct = edit_metrics(task.edit, batch["image"], batch["attributes"], task.attributes,
                          attribute_reader(task.attributes))
    for key in ("edit_success", "others_kept", "recon_kept", "edit_success_colour", "reader_accuracy"):
        assert metrics[key] == pytest.approx(direct[key], abs=1e-6), key
    assert metrics["reader_accuracy"] > 0.9  # the reader knows held-out synthetic flats
    assert metrics["recon_ssim"] < 0.5 and "n_edits" not in metrics
    off = IcGANTask(_config(tmp_path, schedule={"edit_metrics": False}), _model(**small))
    bind_task(off)
    assert "edit_success" not in off.evaluate([batch]) and "recon_ssim" in off.evaluate([batch])
    with pytest.raises(TrainingError, match=r"schedule\['edit_metrics'\] must be true or false, got 'false'"):
        IcGANTask(_config(tmp_path, schedule={"edit_metrics": "false"}), _model())


def test_trainer_exports_and_resumes_exactly(tmp_path):
    from fashion_gans.training.trainer import Trainer

    common = dict(preset="icgan_synthetic", model_overrides=dict(TINY), synthetic_size=48, batch_size=4,
                  checkpoint_every=2, sample_every=100, eval_batches=1, deterministic=True)
    straight = _config(tmp_path, output_dir=str(tmp_path / "a"), max_steps=4, **common)
    metrics = Trainer(straight).fit()
    assert {"recon_ssim", "attr_acc", "latent_mse"} <= set(metrics)
    Trainer(_config(tmp_path, output_dir=str(tmp_path / "b"), max_steps=2, **common)).fit()
    Trainer(_config(tmp_path, output_dir=str(tmp_path / "b"), max_steps=4, resume="latest", **common)).fit()
    for role, cls in (("generator", IcGANGenerator), ("encoder_z", IcGANEncoderZ), ("encoder_y", IcGANEncoderY)):
        a = cls.from_pretrained(tmp_path / "a" / "final" / role)
        b = cls.from_pretrained(tmp_path / "b" / "final" / role)
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(va, vb), (role, k)
    assert not (tmp_path / "a" / "final" / "discriminator").exists()
