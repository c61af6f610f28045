"""Generation task (StyleGAN v1 / StyleGAN2): learning on Fashion-MNIST, fp32 penalties under autocast,
progressive-growing schedule, G EMA, DiffAugment."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Subset

from fashion_gans.models import StyleGAN2Generator, StyleGANGenerator, get_preset
from fashion_gans.training.augment import diff_augment, parse_policy
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.tasks import get_task_class
from fashion_gans.training.tasks.generation import (
    GenerationTask,
    frechet_distance,
    gradient_penalty,
    pixel_features,
    progressive_position,
    r1_penalty,
)
from task_harness import bind_task

TINY = dict(image_channels=1, z_dim=32, w_dim=32, const_channels=32, channels=(32, 32, 32, 16),
            d_channels=(32, 32, 16, 16), mapping_layers=2)


def _model(version: int):
    return get_preset("stylegan2_small" if version == 2 else "stylegan_small").replace(**TINY)


def _config(tmp_path, **kw) -> TrainConfig:
    base = dict(task="generation", data="fashion-mnist", batch_size=16, max_steps=100, lr_g=2e-3, lr_d=2e-3,
                betas=(0.0, 0.99), output_dir=str(tmp_path / "run"), cpu=True, log_with="none")
    base.update(kw)
    return TrainConfig(**base)


def _run(task, dataset, steps: int, batch_size: int):
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    for step in range(steps):
        losses = task.training_step(next(it), step)
        assert all(torch.isfinite(v) and v.ndim == 0 and not v.requires_grad for v in losses.values()), losses


@pytest.fixture(scope="module")
def fmnist_test():
    from fashion_gans.data.fashion_mnist import FashionMNIST

    test = Subset(FashionMNIST(split="test"), range(0, 10000, 40))
    return list(DataLoader(test, batch_size=125))


def test_registered():
    assert get_task_class("generation") is GenerationTask


# ------------------------------------------------------------------------------------------------ learning
def test_stylegan2_learns_fashion_mnist(tmp_path, fmnist_test):
    task = GenerationTask(_config(tmp_path), _model(2))
    bind_task(task)
    train = task.build_dataset("train")
    task.check_data(train[0])
    before = task.evaluate(fmnist_test)["fd_pixels"]
    _run(task, train, 80, 16)
    after = task.evaluate(fmnist_test)["fd_pixels"]
    assert after < 0.6 * before, (before, after)
    assert task.d_steps == 80 and task.images_seen == 80 * 16
    grid = task.sample({"image": torch.zeros(6, 1, 32, 32)})
    assert grid.shape == (6, 3, 32, 32) and grid.min() >= -1 and grid.max() <= 1
    assert torch.equal(grid, task.sample({"image": torch.zeros(6, 1, 32, 32)}))  # fixed latents, const noise
    exported = task.export()["generator"]
    assert exported is task.ema and isinstance(exported, StyleGAN2Generator)


def test_stylegan_v1_progressive_learns_fashion_mnist(tmp_path, fmnist_test):
    # 80 steps at 4x4, then 8x8 fading in (alpha 0.25 after 90 steps); WGAN-GP with the drift term.
    cfg = _config(tmp_path, lr_g=3e-3, lr_d=3e-3, schedule={"images_per_stage": 1280, "fade_images": 640})
    task = GenerationTask(cfg, _model(1))
    bind_task(task)
    train = task.build_dataset("train")
    before = task.evaluate(fmnist_test)["fd_pixels"]
    _run(task, train, 90, 16)
    assert task.position() == (1, 0.25)
    after = task.evaluate(fmnist_test)["fd_pixels"]
    assert after < 0.6 * before, (before, after)
    assert isinstance(task.export()["generator"], StyleGANGenerator)


def test_stylegan2_learns_synthetic_fisb(tmp_path):
    # The synthetic world rendered as a FISB G2.h5 at 32 px (background-filtered like the thesis' data).
    model = _model(2).replace(image_channels=3)
    task = GenerationTask(_config(tmp_path, data="synthetic", synthetic_size=400), model)
    train, test = task.build_dataset("train"), task.build_dataset("test")
    task.check_data(train[0])
    bind_task(task)
    eval_batches = list(DataLoader(test, batch_size=64))
    before = task.evaluate(eval_batches)["fd_pixels"]
    _run(task, ConcatDataset([train] * 4), 60, 16)  # a few epochs
    after = task.evaluate(eval_batches)["fd_pixels"]
    assert after < 0.6 * before, (before, after)


# ------------------------------------------------------------------------------------------------ mechanics
def test_progressive_schedule_advances_levels_and_alpha():
    kw = dict(start_level=1, max_level=3, images_per_stage=100, fade_images=40)
    assert progressive_position(0, **kw) == (1, 1.0)  # the first level has nothing to fade in
    assert progressive_position(99, **kw) == (1, 1.0)
    assert progressive_position(100, **kw) == (2, 0.0)
    assert progressive_position(110, **kw) == (2, 0.25)
    assert progressive_position(140, **kw) == (2, 1.0)
    assert progressive_position(220, **kw) == (3, 0.5)
    assert progressive_position(250, **kw) == (3, 1.0)
    assert progressive_position(10**6, **kw) == (3, 1.0)  # stays at full resolution
    sig = progressive_position(120, **{**kw, "curve": "sigmoid"})
    assert sig[0] == 2 and 0.0 < sig[1] < 1.0
    alphas = [progressive_position(100 + i, **{**kw, "curve": "sigmoid"})[1] for i in range(0, 41, 5)]
    assert alphas == sorted(alphas) and alphas[0] == 0.0 and alphas[-1] == 1.0


def test_task_steps_through_stages_and_fades_reals(tmp_path):
    cfg = _config(tmp_path, batch_size=4, schedule={"images_per_stage": 8, "fade_images": 4})
    task = GenerationTask(cfg, _model(1))
    bind_task(task)
    batch = {"image": torch.rand(4, 1, 32, 32) * 2 - 1}
    seen = []
    for step in range(7):
        seen.append(task.position())
        task.training_step(batch, step)
    assert seen == [(0, 1.0), (0, 1.0), (1, 0.0), (1, 1.0), (2, 0.0), (2, 1.0), (3, 0.0)]
    # Reals are resized to the level's resolution and faded exactly like the generator's output.
    x = batch["image"]
    assert task.real_at(x, 1, 1.0).shape == (4, 1, 8, 8)
    half = task.real_at(x, 1, 0.5)
    sharp = torch.nn.functional.interpolate(x, size=(8, 8), mode="area")
    blurred = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(sharp, 2), scale_factor=2,
                                              mode="bilinear", align_corners=False)
    assert torch.allclose(half, 0.5 * sharp + 0.5 * blurred, atol=1e-6)
    # Position, counters and EMA round-trip through the task state.
    state = task.state_dict()
    other = GenerationTask(cfg, _model(1))
    other.load_state_dict(state)  # before bind: kept until the EMA exists
    bind_task(other, seed=1)
    assert other.position() == task.position() and other.d_steps == 7
    assert all(torch.equal(a, b) for a, b in zip(other.ema.state_dict().values(), task.ema.state_dict().values()))


def test_ema_differs_from_generator_and_tracks_it(tmp_path):
    task = GenerationTask(_config(tmp_path, batch_size=4, schedule={"ema_beta": 0.9}), _model(2))
    bind_task(task)
    g = task.unwrap("generator")
    start = [p.detach().clone() for p in g.parameters()]
    batch = {"image": torch.rand(4, 1, 32, 32) * 2 - 1}
    for step in range(12):
        task.training_step(batch, step)
    now = [p.detach() for p in g.parameters()]
    ema = list(task.ema.parameters())

    def dist(a, b):
        return sum((x - y).square().sum() for x, y in zip(a, b)).sqrt()

    assert dist(ema, now) > 0  # the EMA is not the raw generator
    assert dist(ema, now) < dist(start, now)  # ...but it followed it away from the initial weights
    assert not any(p.requires_grad for p in ema)
    assert torch.equal(task.ema.w_avg, g.w_avg)  # buffers are copied


def _dtype_probe(module: nn.Module) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) or type(m).__name__.startswith("Equalized"):
            m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("version", [1, 2])
def test_penalties_run_in_fp32_under_bf16_autocast(tmp_path, version):
    task = GenerationTask(_config(tmp_path, mixed_precision="bf16"), _model(version))
    bind_task(task, mixed_precision="bf16")
    prepared = task.models["discriminator"]
    raw = task.unwrap("discriminator")
    seen = _dtype_probe(raw)
    real, fake = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        prepared(real)  # the prepared critic itself runs in bf16 (the probe sees it)
        assert seen and seen[-1] == torch.bfloat16
        seen.clear()
        torch.manual_seed(5)
        gp = gradient_penalty(raw, real, fake)
        r1 = r1_penalty(raw, real)
    assert seen and all(d == torch.float32 for d in seen)
    assert gp.dtype == torch.float32 and r1.dtype == torch.float32
    torch.manual_seed(5)
    gp_ref = gradient_penalty(raw, real, fake)
    assert torch.allclose(gp, gp_ref, rtol=1e-5)
    # A full step under bf16 autocast trains and the penalties in it are fp32 too.
    seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = task.training_step({"image": real}, 0)
    assert (losses["d_gp"] if version == 1 else losses["d_r1"]).dtype == torch.float32
    assert torch.float32 in seen


def test_diffaugment_policies_and_config_errors(tmp_path):
    assert parse_policy("color, translation,cutout") == ("color", "translation", "cutout")
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        parse_policy("colour")
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape and not torch.equal(y, x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # differentiable
    cut = diff_augment(torch.ones(6, 1, 16, 16), "cutout")
    assert ((cut == 0).flatten(1).sum(1) > 0).all()  # one zeroed square per image
    with pytest.raises(TrainingError, match="diffaugment"):
        GenerationTask(_config(tmp_path, schedule={"diffaugment": "zoom"}), _model(2))
    with pytest.raises(TrainingError, match="unknown schedule"):
        GenerationTask(_config(tmp_path, schedule={"image_per_stage": 3}), _model(1))
    task = GenerationTask(_config(tmp_path), get_preset("stylegan2_small"))  # 3-channel model, 1-channel data
    with pytest.raises(TrainingError, match="dataset images are.*use preset 'stylegan2_fmnist'"):
        task.check_data(task.build_dataset("test")[0])
    # With DiffAugment on, a StyleGAN2 step runs and R1 is applied on the lazy interval.
    task = GenerationTask(_config(tmp_path, batch_size=4, schedule={"diffaugment": "color,translation,cutout",
                                                                   "r1_interval": 2}), _model(2))
    bind_task(task)
    keys = [set(task.training_step({"image": torch.rand(4, 1, 32, 32) * 2 - 1}, s)) for s in range(3)]
    assert ["d_r1" in k for k in keys] == [True, False, True]


def test_frechet_distance_matches_closed_form():
    torch.manual_seed(0)
    x = torch.randn(4000, 3)
    y = torch.randn(4000, 3) * 2 + 1
    # N(0, I) vs N(1, 4I): |mu|^2 = 3, trace term 3 * (1 + 4 - 2 * 2) = 3.
    assert abs(frechet_distance(x, y) - 6.0) < 0.4
    assert frechet_distance(x, x) < 1e-6
    assert pixel_features(torch.zeros(2, 3, 32, 32)).shape == (2, 192)


def test_trainer_fit_exports_ema_generator(tmp_path):
    from fashion_gans.training.trainer import Trainer

    cfg = _config(tmp_path, max_steps=3, checkpoint_every=3, sample_every=3, eval_batches=1, batch_size=8,
                  preset="stylegan_small", model_overrides=dict(TINY), schedule={"images_per_stage": 8})
    metrics = Trainer(cfg).fit()
    assert "fd_pixels" in metrics
    g = StyleGANGenerator.from_pretrained(tmp_path / "run" / "final" / "generator")
    z = torch.randn(2, 32)
    assert g(z, noise_mode="const").shape == (2, 1, 32, 32)


def test_init_from_fine_tunes_the_exported_generator_with_a_fresh_critic(tmp_path):
    """``init_from``: the generator and its average start at the source's exported (EMA) generator and the critic
    at the initialisation a fresh run draws, so before any step the run measures what its source measures; another
    task's model, a missing source and networks of another shape are refused by name."""
    from fashion_gans.training.trainer import Trainer

    kw = dict(max_steps=3, checkpoint_every=3, sample_every=3, eval_batches=1, batch_size=8,
              preset="stylegan2_small", model_overrides=dict(TINY))
    src = tmp_path / "src"
    Trainer(_config(tmp_path, output_dir=str(src), **kw)).fit()
    exported = StyleGAN2Generator.from_pretrained(src / "final" / "generator").state_dict()

    tuned = Trainer(_config(tmp_path, output_dir=str(tmp_path / "tuned"), init_from=str(src), **kw))
    tuned._setup(write_run=False)
    fresh = Trainer(_config(tmp_path, output_dir=str(tmp_path / "fresh"), **kw))
    fresh._setup(write_run=False)
    for net in (tuned.task.unwrap("generator"), tuned.task.ema):
        state = net.state_dict()
        assert all(torch.equal(state[k], v) for k, v in exported.items())
    fresh_g = fresh.task.unwrap("generator").state_dict()
    assert not all(torch.equal(fresh_g[k], v) for k, v in exported.items())
    fresh_d, tuned_d = fresh.task.unwrap("discriminator").state_dict(), tuned.task.unwrap("discriminator").state_dict()
    assert all(torch.equal(tuned_d[k], v) for k, v in fresh_d.items())
    scored = Trainer(_config(tmp_path, output_dir=str(tmp_path / "score"), **kw)).evaluate_exported(src / "final")
    assert tuned._measure()["fd_pixels"] == pytest.approx(scored["fd_pixels"], rel=1e-5)
    assert fresh._measure()["fd_pixels"] != pytest.approx(scored["fd_pixels"], rel=1e-3)

    with pytest.raises(TrainingError, match="init_from: 'pose-synthetic' holds a 'pose' model"):
        Trainer(_config(tmp_path, output_dir=str(tmp_path / "x"), init_from="pose-synthetic", **kw))._setup(
            write_run=False)
    with pytest.raises(TrainingError, match="init_from: .*nowhere"):
        Trainer(_config(tmp_path, output_dir=str(tmp_path / "y"), init_from=str(tmp_path / "nowhere"), **kw))._setup(
            write_run=False)
    wider = dict(kw, model_overrides=dict(TINY, channels=(48, 32, 32, 16)))
    with pytest.raises(TrainingError, match="network 'generator' does not fit"):
        Trainer(_config(tmp_path, output_dir=str(tmp_path / "z"), init_from=str(src), **wider))._setup(
            write_run=False)


def test_a_fine_tuned_run_resumes_without_its_init_from_source(tmp_path, capsys):
    """A resumed run takes its weights from its checkpoint: the ``init_from`` source is not read, so a run whose
    source has gone (a deleted folder, an unreachable Hub repo) still resumes, and goes on from its checkpoint."""
    import shutil

    from fashion_gans.training.checkpoint import latest_checkpoint
    from fashion_gans.training.trainer import Trainer

    kw = dict(checkpoint_every=3, sample_every=3, eval_batches=1, batch_size=8, preset="stylegan2_small",
              model_overrides=dict(TINY))
    src, run = tmp_path / "src", tmp_path / "tuned"
    Trainer(_config(tmp_path, output_dir=str(src), max_steps=3, **kw)).fit()
    Trainer(_config(tmp_path, output_dir=str(run), init_from=str(src), max_steps=3, **kw)).fit()
    assert f"init_from {src}: generator loaded" in capsys.readouterr().out
    at_checkpoint = StyleGAN2Generator.from_pretrained(run / "final" / "generator").state_dict()
    shutil.rmtree(src)
    with pytest.raises(TrainingError, match="init_from: .*src"):  # a fresh run does need its source
        Trainer(_config(tmp_path, output_dir=str(tmp_path / "other"), init_from=str(src), max_steps=3, **kw)).fit()

    resumed = Trainer(_config(tmp_path, output_dir=str(run), init_from=str(src), resume="latest", max_steps=4, **kw))
    resumed._setup(write_run=False, find_resume=True)
    resumed._restore(resumed.resume_path)
    assert resumed.step == 3
    ema = resumed.task.ema.state_dict()
    assert all(torch.equal(ema[k], v) for k, v in at_checkpoint.items())
    Trainer(_config(tmp_path, output_dir=str(run), init_from=str(src), resume="latest", max_steps=4, **kw)).fit()
    out = capsys.readouterr().out
    assert "resumed from" in out and "at step 3" in out and "init_from" not in out
    assert latest_checkpoint(run / "checkpoints").name.endswith("4")
