"""Garment task (PixelDTGAN): learning on real synthetic LookBook pairs, D_A negatives, detached D steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from fashion_gans.data.lookbook import LookBookDataset, LookBookWriteConfig, write_synthetic_lookbook
from fashion_gans.data.synthetic import SyntheticWorld
from fashion_gans.models import PixelDTGenerator, get_preset
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.tasks.common import ModelAverage, ema_decay, update_ema
from fashion_gans.training.tasks.garment import GarmentTask, garment_mask, mean_colour_error
from task_harness import bind_task, first_batch

SIZE = 32


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A prepared data folder (``lookbook/`` subfolder) of the synthetic world at 32 px."""
    root = tmp_path_factory.mktemp("garment-data")
    write_synthetic_lookbook(root / "lookbook", SyntheticWorld(seed=0),
                             LookBookWriteConfig(products=20, persons_per_product=3, size=(SIZE, SIZE), seed=0))
    return root


def _model(**kw):
    return get_preset("pixeldtgan_small").replace(**{"image_size": (SIZE, SIZE), **kw})


def _config(tmp_path, data, **kw) -> TrainConfig:
    base = dict(task="garment", data=str(data), batch_size=8, max_steps=100, lr_g=2e-3, lr_d=2e-3,
                output_dir=str(tmp_path / "run"), cpu=True, log_with="none")
    base.update(kw)
    return TrainConfig(**base)


def test_registered_and_fixed_recon_weight():
    from fashion_gans.training.tasks import get_task_class

    assert get_task_class("garment") is GarmentTask
    assert set(GarmentTask.default_loss_weights) == {"adv_real", "adv_assoc", "recon", "colour"}
    assert GarmentTask.default_loss_weights["colour"] == 0  # the thesis' loss unless asked for


def test_learns_on_synthetic_pairs(tmp_path, data_dir, one_thread):
    """~400 CPU steps: held-out L1 to the true product falls well below its start, below the copy-the-person
    baseline and below the mean-product-image baseline; the same for the weight average (EMA) kept beside the
    generator, which is what the task evaluates and exports."""
    task = GarmentTask(_config(tmp_path, data_dir, schedule={"ema_beta": 0.98}), _model())
    train, test = task.build_dataset("train"), task.build_dataset("test")
    assert isinstance(train, LookBookDataset) and train.size == SIZE and train.seed == 0
    task.check_data(train[0])
    bind_task(task)
    eval_batches = list(DataLoader(test, batch_size=16))
    before = task.evaluate(eval_batches)
    loader = DataLoader(train, batch_size=8, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    step, epoch = 0, 0
    while step < 400:
        task.on_epoch_start(epoch)
        train.set_epoch(epoch)
        for batch in loader:
            losses = task.training_step(batch, step)
            assert all(v.ndim == 0 and not v.requires_grad and torch.isfinite(v) for v in losses.values())
            step += 1
            if step == 400:
                break
        epoch += 1
    after = task.evaluate(eval_batches)  # the EMA generator's outputs
    mean_product = torch.stack([item["product_image"] for item in train]).mean(0)
    mean_l1 = torch.cat([(b["product_image"] - mean_product).abs().flatten(1).mean(1) for b in eval_batches]).mean()
    average, task._average = task._average, None
    raw = task.evaluate(eval_batches)  # the raw generator's
    task._average = average
    for result in (after, raw):
        assert result["l1"] < 0.7 * before["l1"], (before, result)
        assert result["l1"] < result["l1_copy_person"], result
        assert result["l1"] < float(mean_l1), (result, float(mean_l1))
    assert after["l1"] != raw["l1"]
    G = task.export()["generator"]
    assert isinstance(G, PixelDTGenerator) and G is task.ema


def test_loss_composition_and_assoc_negatives(tmp_path, data_dir):
    """D_A sees (person, product), (person, unassociated product from the item) and (person, generated)."""
    task = GarmentTask(_config(tmp_path, data_dir, loss_weights={"recon": 3.0}), _model())
    batch = first_batch(task.build_dataset("train"))
    assert not torch.equal(batch["product_image"], batch["unassociated_product_image"])
    bind_task(task)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    task.unwrap("disc_assoc").register_forward_hook(lambda m, args, out: seen.append(
        (args[0].detach().clone(), args[1].detach().clone())))
    losses = task.training_step(batch, 0)
    person, n = batch["person_image"], batch["person_image"].shape[0]
    d_person, d_product = seen[0]  # the D_A step: one forward over the three kinds of pair
    assert torch.equal(d_person, torch.cat([person] * 3))
    assert torch.equal(d_product[:n], batch["product_image"])
    assert torch.equal(d_product[n:2 * n], batch["unassociated_product_image"])
    assert torch.equal(seen[1][0], person)  # the G step: (person, generated)
    assert torch.allclose(d_product[2 * n:], seen[1][1])
    assert torch.allclose(losses["d_assoc"], losses["d_assoc_assoc"] + losses["d_assoc_unassoc"]
                          + losses["d_assoc_fake"], rtol=1e-5)
    assert torch.allclose(losses["g"], losses["g_adv_real"] + losses["g_adv_assoc"] + 3.0 * losses["g_l1"],
                          rtol=1e-5)
    assert task.state_dict()["loss_weights"]["recon"] == 3.0
    assert float(losses["g_colour"]) == 0  # off by default
    coloured = GarmentTask(_config(tmp_path, data_dir, loss_weights={"recon": 3.0, "colour": 2.0}), _model())
    bind_task(coloured)
    losses = coloured.training_step(batch, 0)
    assert float(losses["g_colour"]) > 0
    assert torch.allclose(losses["g"], losses["g_adv_real"] + losses["g_adv_assoc"] + 3.0 * losses["g_l1"]
                          + 2.0 * losses["g_colour"], rtol=1e-5)
    later = GarmentTask(_config(tmp_path, data_dir, loss_weights={"colour": 2.0}, schedule={"colour_from_step": 3}),
                        _model())
    bind_task(later)
    assert float(later.training_step(batch, 2)["g_colour"]) == 0
    assert float(later.training_step(batch, 3)["g_colour"]) > 0
    with pytest.raises(TrainingError, match="schedule"):
        GarmentTask(_config(tmp_path, data_dir, schedule={"colour_from": 3}), _model())


def test_mean_colour_l1_reads_the_garment_region_and_pulls_washed_out_colour_back():
    """A pink garment on white, rendered washed out (half-way to white) and with a white rim: the term measures
    the mean colour over the true garment only, and gradient descent on it restores the saturated colour."""
    from fashion_gans.training.tasks.garment import mean_colour_l1

    product = torch.ones(1, 3, 16, 16)
    pink = torch.tensor([1.0, 0.4, 0.6])[:, None, None]  # [-1, 1] scale
    product[:, :, 4:12, 4:12] = pink
    assert float(mean_colour_l1(product, product)) == 0
    washed = torch.ones(1, 3, 16, 16)
    washed[:, :, 4:12, 4:12] = (pink + 1) / 2  # half-way to white
    washed[:, :, 4:12, 4] = 1.0  # one column of the garment lost to the background
    first = float(mean_colour_l1(washed, product))
    assert first > 0.05
    x = washed.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.02)
    for _ in range(100):
        loss = mean_colour_l1(x, product)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(mean_colour_l1(x.detach(), product)) < 0.1 * first
    assert torch.equal(x.detach()[:, :, :4], washed[:, :, :4])  # pixels outside the garment get no gradient


def test_d_steps_do_not_reach_generator(tmp_path, data_dir):
    task = GarmentTask(_config(tmp_path, data_dir), _model())
    batch = first_batch(task.build_dataset("train"))
    bind_task(task)
    events: list[str] = []
    for role in ("generator", "disc_real", "disc_assoc"):
        for p in task.unwrap(role).parameters():
            p.register_post_accumulate_grad_hook(lambda _p, _r=role: events.append(f"{_r}_grad"))
    for name in ("d_real", "d_assoc", "g"):
        opt = task.optimizers[name]
        step_fn = opt.step
        opt.step = lambda *a, _n=name, _f=step_fn, **k: (events.append(f"{_n}_step"), _f(*a, **k))[1]
    task.training_step(batch, 0)
    da_step = events.index("d_assoc_step")
    assert events.index("d_real_step") < da_step < events.index("g_step")
    assert "disc_real_grad" in events[:da_step] and "disc_assoc_grad" in events[:da_step]
    assert "generator_grad" not in events[:da_step]
    assert "generator_grad" in events[da_step:events.index("g_step")]


def test_update_ema_averages_batchnorm_statistics_on_request():
    def bn(value: float) -> torch.nn.BatchNorm2d:
        m = torch.nn.BatchNorm2d(2)
        for t in (m.weight, m.running_mean, m.running_var):
            t.data.fill_(value)
        m.num_batches_tracked.fill_(int(value) + 5)
        return m

    ema, model = bn(0.0), bn(1.0)
    update_ema(ema, model, 0.75, buffers="average")
    assert torch.allclose(ema.weight, torch.full((2,), 0.25)) and torch.allclose(ema.running_mean, ema.weight)
    assert torch.allclose(ema.running_var, torch.full((2,), 0.25)) and int(ema.num_batches_tracked) == 6
    ema = bn(0.0)
    update_ema(ema, model, 0.75)  # the default copies buffers (StyleGAN's w_avg)
    assert torch.allclose(ema.weight, torch.full((2,), 0.25)) and torch.equal(ema.running_mean, model.running_mean)
    with pytest.raises(ValueError, match="buffers"):
        update_ema(ema, model, 0.5, buffers="mean")
    assert ema_decay(0.999, 0) == 0.1 and ema_decay(0.999, 10**6) == 0.999


def test_model_average_keeps_a_state_loaded_before_bind():
    """The holder both tasks keep: a frozen copy at bind, warmed-up updates, a state round trip in either order."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = ModelAverage(0.9, buffers="average")
    assert average.state_dict() is None
    with pytest.raises(RuntimeError, match="before bind"):
        average.update(net, 0)
    copy = average.bind(net)
    assert copy is average.module and copy is not net and not copy.training
    assert not any(p.requires_grad for p in copy.parameters())
    before = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    average.update(net, 0)  # decay 0.1 at the first update
    assert torch.allclose(copy[0].weight, before + 0.9)
    state = average.state_dict()
    assert state["0.weight"].device.type == "cpu" and state["0.weight"] is not copy[0].weight

    resumed = ModelAverage(0.9, buffers="average")
    resumed.load_state_dict(state)  # before bind: kept until the copy exists
    assert resumed.module is None and torch.equal(resumed.state_dict()["0.weight"], state["0.weight"])
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    resumed.bind(fresh)
    assert torch.equal(resumed.module[0].weight, copy[0].weight)
    resumed.load_state_dict({k: torch.zeros_like(v) for k, v in state.items()})  # after bind: loaded at once
    assert not resumed.module[0].weight.any()
    with pytest.raises(ValueError, match="buffers"):
        ModelAverage(0.9, buffers="mean")


def test_generator_ema_state_export_and_options(tmp_path, data_dir):
    plain = GarmentTask(_config(tmp_path, data_dir), _model())
    batch = first_batch(plain.build_dataset("train"), 8)
    bind_task(plain)
    plain.training_step(batch, 0)
    assert plain.ema is None and "ema" not in plain.state_dict()  # off by default: the thesis' generator
    assert plain.export()["generator"] is plain.unwrap("generator")

    cfg = _config(tmp_path, data_dir, schedule={"ema_beta": 0.9})
    task = GarmentTask(cfg, _model())
    bind_task(task)
    g = task.unwrap("generator")
    start = [p.detach().clone() for p in g.parameters()]
    for step in range(4):
        task.training_step(batch, step)
    now, ema = [p.detach() for p in g.parameters()], list(task.ema.parameters())

    def dist(a, b):
        return sum((x - y).square().sum() for x, y in zip(a, b)).sqrt()

    assert 0 < dist(ema, now) < dist(start, now)  # behind the generator, but following it
    assert not any(p.requires_grad for p in ema) and not task.ema.training
    g_bn = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    e_bn = [m for m in task.ema.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert g_bn and not torch.equal(e_bn[0].running_mean, g_bn[0].running_mean)  # statistics averaged too
    person = batch["person_image"]
    assert torch.equal(task._generate(person), task.ema(person))  # samples and evaluation use the average
    assert task.export()["generator"] is task.ema

    # Checkpoint state: a resumed run continues the same average.
    state = task.state_dict()
    assert state["ema_updates"] == 4
    other = GarmentTask(cfg, _model())
    other.load_state_dict(state)  # before bind (as the trainer resumes): kept until the EMA exists
    bind_task(other, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(other.ema.state_dict().values(), task.ema.state_dict().values()))
    previous = [p.detach().clone() for p in other.ema.parameters()]
    other.training_step(batch, 4)
    assert other.ema_updates == 5
    weight = 1 - ema_decay(0.9, 4)  # the warm-up goes on from update 4 (a restart would use 1 - 0.1)
    for e, before, p in zip(other.ema.parameters(), previous, other.unwrap("generator").parameters()):
        assert torch.allclose(e, before + weight * (p.detach() - before), atol=1e-6)
    # A run without an EMA continued with one: the average starts at the loaded generator, not at the init.
    resumed = GarmentTask(cfg, _model())
    bind_task(resumed, seed=2)
    resumed.unwrap("generator").load_state_dict(g.state_dict())  # as the trainer loads the networks first
    resumed.load_state_dict(plain.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(resumed.ema.state_dict().values(), g.state_dict().values()))
    for bad in (1.0, -0.1, "0.9", True):
        with pytest.raises(TrainingError, match="ema_beta"):
            GarmentTask(_config(tmp_path, data_dir, schedule={"ema_beta": bad}), _model())


def test_check_data_rejects_contradictions(tmp_path, data_dir):
    task = GarmentTask(_config(tmp_path, data_dir), _model())
    item = task.build_dataset("test")[0]
    task.check_data(item)
    other = GarmentTask(_config(tmp_path, data_dir), _model(image_size=(64, 64)))
    with pytest.raises(TrainingError, match=r"\(3, 32, 32\).*\(3, 64, 64\)"):
        other.check_data(item)
    with pytest.raises(TrainingError, match="unassociated_product_image"):
        task.check_data({k: v for k, v in item.items() if k != "unassociated_product_image"})
    with pytest.raises(TrainingError, match="square"):
        GarmentTask(_config(tmp_path, data_dir), _model(image_size=(32, 64))).build_dataset("train")
    with pytest.raises(TrainingError, match="fashion-mnist"):
        GarmentTask(_config(tmp_path, "fashion-mnist"), _model()).build_dataset("train")
    with pytest.raises(TrainingError, match="recon"):
        GarmentTask(_config(tmp_path, data_dir, loss_weights={"recon": -1.0}), _model())


def test_sample_and_colour_metric(tmp_path, data_dir):
    task = GarmentTask(_config(tmp_path, data_dir), _model())
    batch = first_batch(task.build_dataset("test"), n=3)
    bind_task(task)
    grid = task.sample(batch).view(3, 3, 3, SIZE, SIZE)
    assert torch.equal(grid[:, 0], batch["person_image"]) and torch.equal(grid[:, 1], batch["product_image"])
    product = batch["product_image"]
    assert garment_mask(product).mean() > 0.05  # a garment on white
    assert torch.allclose(mean_colour_error(product, product), torch.zeros(3), atol=1e-6)
    # A generated image with the garment region recoloured by +0.2 in every channel ([0, 1] scale: +0.1).
    shifted = torch.where(garment_mask(product).bool(), (product + 0.2).clamp(-1, 1), product)
    assert (mean_colour_error(shifted, product) > 0).all()
    assert (mean_colour_error(shifted, product) <= (0.1 * 3**0.5) + 1e-5).all()


class _ProbedGarmentTask(GarmentTask):
    """Records, per forward of the generator's first convolution, its output dtype and whether its input was
    channels_last, and per training step whether the batch was (hooks registered before Accelerate/compile)."""

    def build_models(self):
        models = super().build_models()
        self.conv_calls: list[tuple[torch.dtype, bool]] = []
        self.batch_channels_last: list[bool] = []
        conv = next(m for m in models["generator"].modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(lambda _m, args, out: self.conv_calls.append(
            (out.dtype, args[0].is_contiguous(memory_format=torch.channels_last))))
        return models

    def training_step(self, batch, step):
        self.batch_channels_last.append(batch["person_image"].is_contiguous(memory_format=torch.channels_last))
        return super().training_step(batch, step)


def test_trainer_fit_bf16_channels_last_compiled_learns_and_exports(tmp_path, one_thread):
    """The loop on the CPU with every speed option a CPU can run: bf16 autocast, channels_last networks and batches,
    torch.compile (backend aot_eager: inductor would first compile C++ kernels for about a minute on this CPU, and
    this CPU has no native bf16, so the run is kept to 16 px).  The generator's convolutions ran in bf16 on
    channels_last inputs, the reconstruction loss fell, and the exported generator loads in fp32."""
    from fashion_gans.training.trainer import Trainer

    tiny = {"image_size": [16, 16], "g_base_channels": 8, "d_base_channels": 8, "bottleneck_dim": 32, "d_blocks": 3}
    cfg = TrainConfig(task="garment", data="synthetic", synthetic_size=12, model_overrides=tiny, batch_size=4,
                      max_steps=24, lr_g=2e-3, lr_d=2e-3, checkpoint_every=24, sample_every=24, log_every=4,
                      eval_batches=1, output_dir=str(tmp_path / "run"), cpu=True, log_with="none",
                      mixed_precision="bf16", channels_last=True, compile=True, compile_backend="aot_eager")
    trainer = Trainer(cfg, task_class=_ProbedGarmentTask)
    metrics = trainer.fit()
    task = trainer.task
    assert type(trainer.models["generator"]).__name__ == "OptimizedModule"  # compiled
    assert len(task.batch_channels_last) == 24 and all(task.batch_channels_last)
    assert task.conv_calls and all(dtype == torch.bfloat16 for dtype, _ in task.conv_calls)
    assert all(cl for _, cl in task.conv_calls)
    weight = next(w for w in task.unwrap("generator").parameters() if w.ndim == 4)
    assert weight.dtype == torch.float32 and weight.is_contiguous(memory_format=torch.channels_last)
    import json

    records = [json.loads(x) for x in (tmp_path / "run/logs/scalars.jsonl").read_text().splitlines()]
    l1 = [r["g_l1"] for r in records if r["kind"] == "loss"]
    assert len(l1) == 6 and l1[-1] < 0.8 * l1[0], l1  # 0.72 -> 0.54 (deterministic on one CPU thread)
    assert {"l1", "colour_error", "colour_kept", "pattern_kept"} <= set(metrics)  # + ground-truth metrics
    G = PixelDTGenerator.from_pretrained(tmp_path / "run" / "final" / "generator")
    assert G.config.image_size == (16, 16) and next(G.parameters()).dtype == torch.float32
