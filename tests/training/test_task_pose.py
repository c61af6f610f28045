"""Pose task (PGPG): learning on real synthetic In-shop pairs, λ_recon schedule, detached D step, frozen G1."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from fashion_gans.data.inshop import InShopPoseDataset, InShopWriteConfig, write_synthetic_inshop
from fashion_gans.data.synthetic import SyntheticWorld
from fashion_gans.models import PGPGGenerator, get_preset
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.tasks.pose import DEFAULT_RECON_EPOCHS, PoseTask, recon_weight_at, ssim
from task_harness import bind_task, first_batch

SIZE = 32


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A prepared data folder (``inshop/`` subfolder) of the synthetic world at 32 px."""
    root = tmp_path_factory.mktemp("pose-data")
    write_synthetic_inshop(root / "inshop", SyntheticWorld(seed=0),
                           InShopWriteConfig(identities=16, size=(SIZE, SIZE), poses_per_group=3, seed=0))
    return root



def _model(**kw):
    return get_preset("pgpg_small").replace(image_size=(SIZE, SIZE), **kw)


def _config(tmp_path, data, **kw) -> TrainConfig:
    base = dict(task="pose", data=str(data), batch_size=8, max_steps=100, lr_g=2e-3, lr_d=2e-3,
                output_dir=str(tmp_path / "run"), cpu=True, log_with="none")
    base.update(kw)
    return TrainConfig(**base)


def test_registered_and_defaults():
    from fashion_gans.training.tasks import get_task_class

    assert get_task_class("pose") is PoseTask
    assert set(PoseTask.default_loss_weights) == {"g1", "adv", "mask"}


def test_learns_on_synthetic_pairs(tmp_path, data_dir, one_thread):
    """150 CPU steps: held-out L1 falls to a fraction of its start and below the mean-target baseline."""
    task = PoseTask(_config(tmp_path, data_dir), _model())
    train, test = task.build_dataset("train"), task.build_dataset("test")
    assert isinstance(train, InShopPoseDataset) and train.size == (SIZE, SIZE) and len(test) > 0
    task.check_data(train[0])
    bind_task(task)
    eval_batches = list(DataLoader(test, batch_size=16))
    before = task.evaluate(eval_batches)
    loader = DataLoader(train, batch_size=8, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    step, epoch = 0, 0
    while step < 150:
        task.on_epoch_start(epoch)
        for batch in loader:
            losses = task.training_step(batch, step)
            assert all(v.ndim == 0 and not v.requires_grad and torch.isfinite(v) for v in losses.values())
            step += 1
            if step == 150:
                break
        epoch += 1
    after = task.evaluate(eval_batches)
    assert after["l1"] < 0.3 * before["l1"], (before, after)
    assert after["l1_coarse"] < 0.3 * before["l1_coarse"], (before, after)
    assert after["l1_masked"] < 0.4 * before["l1_masked"], (before, after)
    # Trivial baseline: the mean training target image (copying the source, ``l1_copy_source``, is a stronger
    # one on the white studio background; a few hundred CPU steps do not reliably beat it).
    mean_target = torch.stack([item["target_image"] for item in train]).mean(0)
    mean_l1 = torch.cat([(b["target_image"] - mean_target).abs().flatten(1).mean(1) for b in eval_batches]).mean()
    assert after["l1"] < float(mean_l1), (after, float(mean_l1))
    assert after["ssim"] > before["ssim"] + 0.2, (before, after)
    # Metrics are recomputable from the exported generator.
    G = task.export()["generator"]
    assert isinstance(G, PGPGGenerator)
    G.eval()
    with torch.no_grad():
        l1 = torch.cat([(G(b["source_image"], b["target_pose"]).refined - b["target_image"]).abs().flatten(1).mean(1)
                        for b in eval_batches]).mean()
    assert abs(float(l1) - after["l1"]) < 1e-5


def test_recon_schedule_changes_at_thesis_epochs(tmp_path, data_dir):
    task = PoseTask(_config(tmp_path, data_dir), _model())
    weights = []
    for epoch in range(100):
        task.on_epoch_start(epoch)
        weights.append(task.recon_weight)
    changes = [e for e in range(1, 100) if weights[e] != weights[e - 1]]
    assert changes == [start for start, _ in DEFAULT_RECON_EPOCHS[1:]] == [37, 66]  # thesis erratum E7
    assert [weights[0], weights[37], weights[66]] == [w for _, w in DEFAULT_RECON_EPOCHS]
    assert weights[36] == weights[0] and weights[65] == weights[37] and weights[99] == weights[66]
    # The state says where the schedule is; a fresh task resumes there.
    task.on_epoch_start(40)
    fresh = PoseTask(_config(tmp_path, data_dir), _model())
    fresh.load_state_dict(task.state_dict())
    assert fresh.epoch == 40 and fresh.recon_weight == recon_weight_at(DEFAULT_RECON_EPOCHS, 40) == weights[40]

    custom = PoseTask(_config(tmp_path, data_dir, schedule={"recon_epochs": [[0, 2], [3, 7]]}), _model())
    seen = []
    for epoch in range(5):
        custom.on_epoch_start(epoch)
        seen.append(custom.recon_weight)
    assert seen == [2, 2, 2, 7, 7]
    for bad in ([[1, 2]], [[0, 1], [0, 2]], [[0, -1]], "x", 1, []):
        with pytest.raises(TrainingError, match="recon_epochs"):
            PoseTask(_config(tmp_path, data_dir, schedule={"recon_epochs": bad}), _model())
    with pytest.raises(TrainingError, match="schedule"):
        PoseTask(_config(tmp_path, data_dir, schedule={"recon": [[0, 1]]}), _model())


def test_step_uses_scheduled_weight(tmp_path, data_dir):
    task = PoseTask(_config(tmp_path, data_dir), _model())
    batch = first_batch(task.build_dataset("train"))
    bind_task(task)
    for epoch in (0, 66):
        task.on_epoch_start(epoch)
        losses = task.training_step(batch, 0)
        lam = recon_weight_at(DEFAULT_RECON_EPOCHS, epoch)
        assert float(losses["lambda_recon"]) == lam
        total = losses["g1_l1"] + losses["g2_adv"] + lam * losses["g2_l1"]
        assert torch.allclose(losses["g"], total, rtol=1e-5)
        assert torch.allclose(losses["d"], losses["d_real"] + losses["d_fake"], rtol=1e-5)


def test_d_step_does_not_reach_generator(tmp_path, data_dir):
    """Fakes are detached for D: no generator gradient arrives before the D optimiser has stepped."""
    task = PoseTask(_config(tmp_path, data_dir), _model())
    batch = first_batch(task.build_dataset("train"))
    bind_task(task)
    events: list[str] = []
    for p in task.unwrap("generator").parameters():
        p.register_post_accumulate_grad_hook(lambda _p: events.append("g_grad"))
    for p in task.unwrap("discriminator").parameters():
        p.register_post_accumulate_grad_hook(lambda _p: events.append("d_grad"))
    for name in ("d", "g"):
        opt = task.optimizers[name]
        step_fn = opt.step
        opt.step = lambda *a, _n=name, _f=step_fn, **k: (events.append(f"{_n}_step"), _f(*a, **k))[1]
    task.training_step(batch, 0)
    d_step = events.index("d_step")
    assert "d_grad" in events[:d_step] and "g_grad" not in events[:d_step]
    assert "g_grad" in events[d_step:events.index("g_step")]


@pytest.mark.parametrize("g1_weight", [0.0, 1.0])
def test_g1_learns_only_from_its_own_loss(tmp_path, data_dir, g1_weight):
    """G1 is frozen inside G2's loss: with L_G1 weighted 0, a step leaves G1 exactly as it was."""
    task = PoseTask(_config(tmp_path, data_dir, loss_weights={"g1": g1_weight}), _model())
    batch = first_batch(task.build_dataset("train"))
    bind_task(task)
    G = task.unwrap("generator")
    g1_before = [p.detach().clone() for p in G.g1.parameters()]
    g2_before = [p.detach().clone() for p in G.g2.parameters()]
    task.training_step(batch, 0)
    g1_grads = [p.grad for p in G.g1.parameters()]
    g1_changed = any(not torch.equal(a, p) for a, p in zip(g1_before, G.g1.parameters()))
    g2_changed = any(not torch.equal(a, p) for a, p in zip(g2_before, G.g2.parameters()))
    assert g2_changed
    if g1_weight == 0.0:
        assert not g1_changed
        assert all(g is None or not g.any() for g in g1_grads)
    else:
        assert g1_changed


def test_check_data_rejects_contradictions(tmp_path, data_dir):
    heat = PoseTask(_config(tmp_path, data_dir), _model())
    item = heat.build_dataset("test")[0]
    heat.check_data(item)  # consistent: no error
    wrong_size = PoseTask(_config(tmp_path, data_dir), _model().replace(image_size=(64, 64)))
    with pytest.raises(TrainingError, match=r"\(3, 32, 32\).*\(3, 64, 64\)"):
        wrong_size.check_data(item)
    iuv = PoseTask(_config(tmp_path, data_dir), _model(pose_encoding="iuv"))
    with pytest.raises(TrainingError, match=r"target_pose is \(18, 32, 32\).*\(3, 32, 32\).*'iuv'"):
        iuv.check_data(item)
    # The dataset the task builds follows the model config's pose encoding (IUV: 3 channels).
    iuv_item = iuv.build_dataset("test")[0]
    assert iuv_item["target_pose"].shape == (3, SIZE, SIZE)
    iuv.check_data(iuv_item)
    with pytest.raises(TrainingError, match="pose_encoding"):
        PoseTask(_config(tmp_path, data_dir, data_options={"pose_encoding": "heatmap"}),
                 _model(pose_encoding="iuv")).build_dataset("train")
    with pytest.raises(TrainingError, match="fashion-mnist"):
        PoseTask(_config(tmp_path, "fashion-mnist"), _model()).build_dataset("train")


def test_sample_columns(tmp_path, data_dir):
    task = PoseTask(_config(tmp_path, data_dir), _model())
    batch = first_batch(task.build_dataset("test"), n=3)
    bind_task(task)
    grid = task.sample(batch)
    assert grid.shape == (3 * 5, 3, SIZE, SIZE) and grid.min() >= -1 and grid.max() <= 1
    cols = grid.view(3, 5, 3, SIZE, SIZE)
    assert torch.equal(cols[:, 0], batch["source_image"]) and torch.equal(cols[:, 2], batch["target_image"])
    # The pose column is a skeleton drawing on black (not an image copy).
    assert (cols[:, 1] == -1).float().mean() > 0.5 and (cols[:, 1] > -1).any()
    G = task.unwrap("generator").eval()
    out = G(batch["source_image"], batch["target_pose"])
    assert torch.allclose(cols[:, 3], out.coarse) and torch.allclose(cols[:, 4], out.refined)


def test_ssim_properties():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    very = (x + 0.9 * torch.randn_like(x)).clamp(-1, 1)
    assert (ssim(x, very) < ssim(x, noisy)).all() and (ssim(x, noisy) < 0.99).all()


def test_trainer_fit_exports_generator(tmp_path, one_thread):
    pytest.importorskip("fashion_gans.training.trainer")
    from fashion_gans.training.trainer import Trainer

    cfg = TrainConfig(task="pose", data="synthetic", synthetic_size=6, model_overrides={"image_size": [SIZE, SIZE]},
                      batch_size=4, max_steps=3, checkpoint_every=3, sample_every=3, log_every=1, eval_batches=1,
                      output_dir=str(tmp_path / "run"), cpu=True, log_with="none")
    metrics = Trainer(cfg).fit()
    assert {"l1", "l1_coarse", "ssim", "keypoint_error", "pck_0.05"} <= set(metrics)  # + ground-truth metrics
    assert 0 <= metrics["keypoint_error"] and 0 <= metrics["pck_0.05"] <= 1
    G = PGPGGenerator.from_pretrained(tmp_path / "run" / "final" / "generator")
    assert G.config.image_size == (SIZE, SIZE) and G.config.pose_encoding == "heatmaps"
    assert (tmp_path / "data-cache").is_dir()
