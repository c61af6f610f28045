"""Style task (DiscoGAN/CycleGAN shoes <-> handbags): learning on real batches, detached D step, image pool."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from fashion_gans.models import CycleGANGenerator, get_preset
from fashion_gans.training.config import TrainConfig, TrainingError
from fashion_gans.training.tasks import get_task_class
from fashion_gans.training.tasks.common import eval_mode
from fashion_gans.training.tasks.generation import frechet_distance, pixel_features
from fashion_gans.training.tasks.style import (ImagePool, StyleTask, colour_stats_loss, object_colour_stats,
                                               object_mean_colour)
from task_harness import bind_task

TINY = dict(g_base_channels=8, g_residual_blocks=1, d_base_channels=16, d_blocks=3)


def _model(channels: int = 1, size: int = 32):
    return get_preset("cyclegan_small").replace(image_size=(size, size), channels_a=channels, channels_b=channels,
                                                **TINY)


def _config(tmp_path, **kw) -> TrainConfig:
    base = dict(task="style", data="fashion-mnist", batch_size=8, max_steps=60, lr_g=5e-4, lr_d=5e-4,
                output_dir=str(tmp_path / "run"), cpu=True, log_with="none")
    base.update(kw)
    return TrainConfig(**base)


def _loader(dataset, batch_size: int = 8) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                      generator=torch.Generator().manual_seed(0))


def _steps(task, dataset, steps: int, batch_size: int = 8) -> dict:
    """``steps`` training steps over as many epochs as they take (the unpaired partners re-drawn every epoch, as the
    loop does; the first batch is ``next(iter(_loader(dataset)))`` at epoch 0); returns the last step's losses."""
    loader = _loader(dataset, batch_size)
    step, epoch, losses = 0, 0, {}
    while step < steps:
        dataset.set_epoch(epoch)
        for batch in loader:
            if step == steps:
                break
            losses = task.training_step(batch, step)
            assert all(torch.isfinite(v) and v.ndim == 0 and not v.requires_grad for v in losses.values())
            step += 1
        epoch += 1
    return losses


def _trained_flow(tmp_path, flow, loss_weights: dict) -> tuple[CycleGANGenerator, dict]:
    """A style task on 100 synthetic items, trained 40 steps with ``loss_weights``: its G_AB, which has just
    translated 16 held-out shoes in training mode (so it keeps its sampling map and drawn layer), and the last
    step's losses."""
    torch.manual_seed(0)
    task = StyleTask(_config(tmp_path, data="synthetic", synthetic_size=100, lr_g=2e-3, lr_d=2e-3,
                             loss_weights=loss_weights), flow)
    train, test = task.build_dataset("train"), task.build_dataset("test")
    bind_task(task)
    losses = _steps(task, train, 40)
    gen = task.unwrap("gen_ab")
    gen(next(iter(DataLoader(test, batch_size=16)))["shoe"])
    return gen, losses


def _train(task, dataset, steps: int, batch_size: int, eval_batches) -> tuple[dict, dict]:
    before = task.evaluate(eval_batches)
    _steps(task, dataset, steps, batch_size)
    return before, task.evaluate(eval_batches)


def test_registered_and_domains():
    assert get_task_class("style") is StyleTask
    assert StyleTask.default_loss_weights["cycle"] == 10 and StyleTask.default_loss_weights["identity"] == 5


# ------------------------------------------------------------------------------------------------ image pool
def test_image_pool_mixes_new_and_stored_and_round_trips():
    torch.manual_seed(3)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 4  # filling: new images returned as they are
    new = torch.arange(100.0, 164.0).view(64, 1, 1, 1)
    out = pool.query(new)
    is_new = (out == new).flatten()
    assert 10 < int(is_new.sum()) < 54  # about half new, half from the history
    stored_before = set(first.flatten().tolist()) | set(new.flatten().tolist())
    assert set(out.flatten().tolist()) <= stored_before
    # State round trip: a restored pool under the same RNG state answers identically.
    state = pool.state_dict()
    clone = ImagePool(1)
    clone.load_state_dict(state)
    rng = torch.get_rng_state()
    probe = torch.arange(500.0, 520.0).view(20, 1, 1, 1)
    a = pool.query(probe)
    torch.set_rng_state(rng)
    b = clone.query(probe)
    assert torch.equal(a, b) and clone.size == 4
    assert ImagePool(0).query(probe) is not None and torch.equal(ImagePool(0).query(probe), probe)


# ------------------------------------------------------------------------------------------------ update order
def test_discriminator_step_gradients_do_not_reach_generators(tmp_path):
    task = StyleTask(_config(tmp_path), _model())
    bind_task(task)
    counts: dict[str, int] = {}
    for role in ("gen_ab", "gen_ba", "disc_a", "disc_b"):
        counts[role] = 0
        for p in task.models[role].parameters():
            p.register_hook(lambda g, role=role: counts.__setitem__(role, counts[role] + 1))
    n_params = {role: sum(1 for _ in task.models[role].parameters()) for role in counts}
    batch = {"shoe": torch.rand(4, 1, 32, 32) * 2 - 1, "bag": torch.rand(4, 1, 32, 32) * 2 - 1}
    task.training_step(batch, 0)
    # Each generator parameter receives exactly one gradient (the G update), each discriminator parameter exactly
    # one (the D update): the D loss does not flow into G (detached fakes) and the G loss not into D (frozen).
    assert counts == n_params
    # The pooled fakes carry no graph.
    assert all(not img.requires_grad and img.grad_fn is None for img in task.pool_a.images + task.pool_b.images)
    assert len(task.pool_a) == 4 and len(task.pool_b) == 4


def test_state_dict_round_trips_pools(tmp_path):
    task = StyleTask(_config(tmp_path, schedule={"pool_size": 6}), _model())
    bind_task(task)
    batch = {"shoe": torch.rand(4, 1, 32, 32) * 2 - 1, "bag": torch.rand(4, 1, 32, 32) * 2 - 1}
    task.training_step(batch, 0)
    task.training_step(batch, 1)
    state = task.state_dict()
    other = StyleTask(_config(tmp_path, schedule={"pool_size": 6}), _model())
    bind_task(other)
    other.load_state_dict(state)
    assert len(other.pool_a) == 6
    assert all(torch.equal(x, y) for x, y in zip(task.pool_a.images, other.pool_a.images))
    assert all(torch.equal(x, y) for x, y in zip(task.pool_b.images, other.pool_b.images))


def test_config_and_data_checks(tmp_path):
    with pytest.raises(TrainingError, match="channels_a == channels_b"):
        StyleTask(_config(tmp_path), _model().replace(channels_b=3))
    with pytest.raises(TrainingError, match="unknown loss weight"):
        StyleTask(_config(tmp_path, loss_weights={"cycel": 1.0}), _model())
    # Fashion-MNIST is 1-channel 32 px: the 3-channel 64 px preset is rejected by check_data.
    task = StyleTask(_config(tmp_path), get_preset("cyclegan_small"))
    item = task.build_dataset("test")[0]
    with pytest.raises(TrainingError, match="shoe images are"):
        task.check_data(item)
    StyleTask(_config(tmp_path), _model()).check_data(item)  # the matching model passes


def test_object_mean_colour_reads_object_not_background():
    img = torch.ones(1, 3, 16, 16)  # white
    img[:, 0, 4:12, 4:12] = 0.0  # a dark red square: R = 0.5, G = B = 0 on the [0, 1] scale
    img[:, 1:, 4:12, 4:12] = -1.0
    colour = object_mean_colour(img)
    assert torch.allclose(colour, torch.tensor([[0.5, 0.0, 0.0]]))


def _square(stripes: str = "") -> torch.Tensor:
    """A red 24x24 square on white ([-1, 1]), optionally with white 2-pixel stripes every 4 pixels."""
    img = torch.ones(1, 3, 32, 32)
    img[:, 1:, 4:28, 4:28] = -1.0
    for start in (4, 5):
        if stripes == "horizontal":
            img[:, :, start:28:4, 4:28] = 1.0
        elif stripes == "vertical":
            img[:, :, 4:28, start:28:4] = 1.0
    return img


def test_object_colour_stats_tell_colour_and_pattern_apart():
    solid, horiz, vert = (object_colour_stats(_square(s)) for s in ("", "horizontal", "vertical"))
    assert torch.allclose(solid[0, :3], torch.tensor([1.0, 0.0, 0.0]))  # mean colour of the object only
    assert float(solid[0, 3:].max()) < 0.01  # solid: no spread, no neighbour differences
    # White stripes (the background colour) count as part of the object: spread in G and B, and the differences
    # run along the stripes' axis only.
    assert float(horiz[0, 4]) > 0.4 and float(vert[0, 4]) > 0.4
    assert float(horiz[0, 7]) > 0.2 > float(horiz[0, 6]) + 0.19  # dy large, dx ~ 0
    assert float(vert[0, 6]) > 0.2 > float(vert[0, 7]) + 0.19


def test_colour_stats_loss_pulls_translation_to_source_style_whatever_its_shape():
    source = _square("horizontal")
    # A blue disc (another shape, another colour, solid) as the learnable "translation".
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disc = ((yy - 16) ** 2 + (xx - 16) ** 2 < 100).float()
    start = torch.ones(1, 3, 32, 32)
    start[:, :2] -= 2 * disc  # blue disc on white
    noise = 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # breaks the symmetry
    logits = (torch.atanh(start.clamp(-0.98, 0.98)) + noise).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=0.05)
    first = float(colour_stats_loss(source, torch.tanh(logits)).detach())
    for _ in range(200):
        loss = colour_stats_loss(source, torch.tanh(logits))
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = torch.tanh(logits).detach()
    assert float(colour_stats_loss(source, out)) < 0.2 * first
    stats, target = object_colour_stats(out), object_colour_stats(source)
    assert (stats[0, :3] - target[0, :3]).abs().max() < 0.1  # the mean colour moved from blue to the source's
    assert float(stats[0, 7]) > float(stats[0, 6]) + 0.1  # and a horizontal texture appeared
    with pytest.raises(ValueError, match="same batch size"):
        colour_stats_loss(source, out.repeat(2, 1, 1, 1))


def test_colour_term_is_off_by_default_and_checked(tmp_path):
    batch = {"shoe": _square("horizontal").repeat(2, 1, 1, 1), "bag": _square().repeat(2, 1, 1, 1)}
    off = StyleTask(_config(tmp_path), _model(channels=3))
    bind_task(off)
    assert off.loss_weights["colour"] == 0 and float(off.training_step(batch, 0)["g_colour"]) == 0
    on = StyleTask(_config(tmp_path, loss_weights={"colour": 10.0}), _model(channels=3))
    bind_task(on)
    assert float(on.training_step(batch, 0)["g_colour"]) > 0
    later = StyleTask(_config(tmp_path, loss_weights={"colour": 10.0}, schedule={"colour_from_step": 5}),
                      _model(channels=3))
    bind_task(later)
    assert float(later.training_step(batch, 4)["g_colour"]) == 0
    assert float(later.training_step(batch, 5)["g_colour"]) > 0
    for bad in (-1, 2.5, "x", True):
        with pytest.raises(TrainingError, match="colour_from_step"):
            StyleTask(_config(tmp_path, schedule={"colour_from_step": bad}), _model(channels=3))
    with pytest.raises(TrainingError, match="colour"):
        StyleTask(_config(tmp_path, loss_weights={"colour": 1.0, "identity": 0.0}),
                  _model(channels=3).replace(channels_b=1))
    for key in ("colour", "cycle"):
        with pytest.raises(TrainingError, match=rf"loss weight '{key}' must be >= 0, got -1.0"):
            StyleTask(_config(tmp_path, loss_weights={key: -1.0}), _model(channels=3))


def test_cycle_noise_is_off_by_default_and_checked(tmp_path):
    fake = torch.zeros(64, 3, 16, 16)
    off = StyleTask(_config(tmp_path), _model(channels=3))
    assert off.cycle_noise == 0 and off._cycle_input(fake) is fake
    on = StyleTask(_config(tmp_path, schedule={"cycle_noise": 0.2}), _model(channels=3))
    noisy = on._cycle_input(fake)
    assert abs(float(noisy.std()) - 0.2) < 0.01 and abs(float(noisy.mean())) < 0.01
    for bad in (-0.1, 1.5, "x", True):
        with pytest.raises(TrainingError, match="cycle_noise"):
            StyleTask(_config(tmp_path, schedule={"cycle_noise": bad}), _model(channels=3))


def test_cycle_blur_ignores_a_patterns_phase_but_not_its_colours(tmp_path):
    """With ``cycle_blur`` the reconstruction terms compare blurred images: stripes shifted by half a period (what a
    tiling generator's way back produces) cost under a fifth of the pixel L1, a colour change the same as
    without the blur.  Off by default; the width must be 0 or odd."""
    rows = torch.arange(64.0)[:, None].expand(64, 64)
    stripes = lambda phase: torch.where(((rows + phase) % 6) < 3, 0.8, -0.6).expand(2, 3, 64, 64)  # noqa: E731
    off = StyleTask(_config(tmp_path), _model(channels=3))
    on = StyleTask(_config(tmp_path, schedule={"cycle_blur": 7}), _model(channels=3))
    assert off.cycle_blur == 0
    shifted = off._reconstruction(stripes(3), stripes(0)).item()
    assert shifted == pytest.approx(1.4)  # every pixel swaps its colour
    assert on._reconstruction(stripes(3), stripes(0)).item() < 0.2 * shifted
    flat_a, flat_b = torch.full((2, 3, 64, 64), 0.5), torch.full((2, 3, 64, 64), -0.3)
    assert on._reconstruction(flat_a, flat_b).item() == pytest.approx(off._reconstruction(flat_a, flat_b).item())
    for bad in (-1, 4, 2.5, True):
        with pytest.raises(TrainingError, match="cycle_blur"):
            StyleTask(_config(tmp_path, schedule={"cycle_blur": bad}), _model(channels=3))


def test_adversarial_term_can_start_later(tmp_path):
    batch = {"shoe": _square("horizontal").repeat(2, 1, 1, 1), "bag": _square().repeat(2, 1, 1, 1)}
    task = StyleTask(_config(tmp_path, schedule={"adversarial_from_step": 3}), _model(channels=3))
    bind_task(task)
    w = task.loss_weights
    for step, adv_weight in ((2, 0.0), (3, 1.0)):
        losses = task.training_step(batch, step)
        assert float(losses["g_adv"]) > 0
        expected = (adv_weight * losses["g_adv"] + w["cycle"] * losses["g_cycle"]
                    + w["identity"] * losses["g_identity"])
        assert torch.allclose(losses["g_total"], expected, rtol=1e-5), (step, losses)
    for bad in (-1, 0.5, "x"):
        with pytest.raises(TrainingError, match="adversarial_from_step"):
            StyleTask(_config(tmp_path, schedule={"adversarial_from_step": bad}), _model(channels=3))


def test_rigidity_term_keeps_the_flow_undistorted(tmp_path):
    """The rigidity term is off by default, starts at ``rigidity_from_step``, is refused for generators without an
    appearance flow, and training with it on the synthetic world's shoes and handbags leaves the flows' sampling
    maps far less distorted than training without it."""
    from fashion_gans.models.cyclegan import sampling_rigidity

    flow = get_preset("discogan_flow_small").replace(image_size=(32, 32), g_down=3, g_base_channels=8,
                                                     g_style_dim=16, d_base_channels=16, d_blocks=3)
    batch = {"shoe": _square("horizontal").repeat(2, 1, 1, 1), "bag": _square().repeat(2, 1, 1, 1)}
    assert StyleTask(_config(tmp_path), flow).loss_weights["rigidity"] == 0
    later = StyleTask(_config(tmp_path, loss_weights={"rigidity": 1.0}, schedule={"rigidity_from_step": 3}), flow)
    bind_task(later)
    assert float(later.training_step(batch, 2)["g_rigidity"]) == 0
    assert float(later.training_step(batch, 3)["g_rigidity"]) > 0
    with pytest.raises(TrainingError, match="rigidity.*generator='discogan_flow'"):
        StyleTask(_config(tmp_path, loss_weights={"rigidity": 1.0}), _model(channels=3))
    for bad in (-1, 0.5):
        with pytest.raises(TrainingError, match="rigidity_from_step"):
            StyleTask(_config(tmp_path, schedule={"rigidity_from_step": bad}), flow)

    distortion = {}
    for weight in (0.0, 1.0):
        gen, _ = _trained_flow(tmp_path, flow, {"colour": 5.0, "rigidity": weight})
        distortion[weight] = float(sampling_rigidity(*gen.net.last_sampling).detach())
    assert distortion[1.0] < 0.6 * distortion[0.0], distortion


def test_smooth_term_keeps_the_drawn_layer_flat(tmp_path):
    """The smoothness term (total variation of the flow generators' drawn layer) is off by default, refused for
    generators without a drawn layer, zero on flat colours and about 1.1 on noise of standard deviation 0.5; training
    with it on the synthetic world leaves the drawn layer (backgrounds, soles, handles) far flatter than training
    without it, where noise can hide there."""
    from fashion_gans.training.tasks.style import total_variation

    assert total_variation(torch.full((2, 3, 16, 16), 0.3)).item() == 0
    noise = 0.5 * torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert total_variation(noise).item() == pytest.approx(2 * 0.5 * 2 / math.sqrt(math.pi), rel=0.05)
    flow = get_preset("discogan_shape_small").replace(image_size=(32, 32), g_down=3, g_base_channels=8,
                                                      g_style_dim=16, g_shape_bank=4, d_base_channels=16, d_blocks=3)
    assert StyleTask(_config(tmp_path), flow).loss_weights["smooth"] == 0
    with pytest.raises(TrainingError, match="smooth.*generator='discogan_flow'"):
        StyleTask(_config(tmp_path, loss_weights={"smooth": 1.0}), _model(channels=3))

    roughness = {}
    for weight in (0.0, 2.0):
        gen, losses = _trained_flow(tmp_path, flow, {"colour": 5.0, "smooth": weight})
        assert ("g_smooth" in losses) == (weight > 0)
        roughness[weight] = float(total_variation(gen.net.last_drawn).detach())
    assert roughness[2.0] < 0.6 * roughness[0.0], roughness


def test_silhouette_generators_learn_to_draw_the_exemplar_outline(tmp_path):
    """With silhouette-conditioned generators (``g_shape_bank`` > 0) each translation draws the outline of a real
    image of its target domain and the way back the source's own: the banks fill with the first batch's real target
    silhouettes, and after 80 steps on the synthetic world's shoes and handbags a held-out translation follows the
    exemplar outline it is given far better than another exemplar's (and better than at initialisation)."""
    from fashion_gans.models.cyclegan import silhouette

    torch.manual_seed(0)
    shape = get_preset("discogan_shape_small").replace(image_size=(32, 32), g_down=3, g_base_channels=8,
                                                       g_style_dim=16, g_shape_bank=4, d_base_channels=16, d_blocks=3)
    task = StyleTask(_config(tmp_path, data="synthetic", synthetic_size=100, lr_g=2e-3, lr_d=2e-3,
                             loss_weights={"colour": 5.0}), shape)
    train, test = task.build_dataset("train"), task.build_dataset("test")
    bind_task(task)
    held_out = next(iter(DataLoader(test, batch_size=16)))
    gen_ab = task.unwrap("gen_ab")

    def follows() -> tuple[float, float]:
        """Mean IoU of the translated shoes' silhouettes with the exemplar bag outlines given, and with others'."""
        bags = silhouette(held_out["bag"])
        with torch.no_grad(), eval_mode(gen_ab):
            drawn = silhouette(gen_ab(held_out["shoe"], bags))

        def iou(a, b):
            return float(((a * b).sum((1, 2, 3)) / (a + b).clamp(max=1).sum((1, 2, 3))).mean())

        return iou(drawn, bags), iou(drawn, bags.roll(1, 0))

    before, _ = follows()
    train.set_epoch(0)
    first = next(iter(_loader(train)))  # the first training batch
    _steps(task, train, 80)
    assert int(gen_ab.shape_bank_filled) == 4 and int(task.unwrap("gen_ba").shape_bank_filled) == 4
    assert torch.equal(gen_ab.shape_bank, silhouette(first["bag"][:4]))  # real handbag outlines for G_AB
    assert torch.equal(task.unwrap("gen_ba").shape_bank, silhouette(first["shoe"][:4]))
    own, other = follows()
    assert own > 0.8 and own > other + 0.15 and own > before + 0.15, (before, own, other)
    assert {"cycle_l1_a", "cycle_l1_b"} <= set(task.evaluate([held_out]))


# ------------------------------------------------------------------------------------------------ learning
def test_learns_fashion_mnist_shoes_to_bags(tmp_path):
    task = StyleTask(_config(tmp_path), _model())
    bind_task(task)
    train = task.build_dataset("train")
    test = Subset(task.build_dataset("test"), range(0, 3000, 24))
    eval_batches = list(DataLoader(test, batch_size=64))
    real = next(iter(DataLoader(test, batch_size=len(test))))
    # Do-nothing reference: the source domain's own statistics vs the target domain's.
    source_fd = frechet_distance(pixel_features(real["shoe"]), pixel_features(real["bag"]))
    before, after = _train(task, train, 40, 8, eval_batches)
    for key in ("cycle_l1_a", "cycle_l1_b", "fd8_ab", "fd8_ba"):
        assert after[key] < 0.6 * before[key], (key, before, after)
    # Translated shoes are closer to real bags (and translated bags to real shoes) than the sources were:
    # the generators moved the images toward the target domain, not merely reconstructed them.
    assert after["fd8_ab"] < source_fd and after["fd8_ba"] < source_fd, (source_fd, after)
    grid = task.sample({k: v[:3] for k, v in real.items() if k in ("shoe", "bag")})
    assert grid.shape == (12, 3, 32, 32) and grid.min() >= -1 and grid.max() <= 1
    assert torch.allclose(grid[0], real["shoe"][0].expand(3, -1, -1))  # column 1 is the input shoe
    assert torch.allclose(grid[2], real["bag"][0].expand(3, -1, -1))  # column 3 the input handbag


def test_learns_synthetic_world(tmp_path):
    cfg = _config(tmp_path, data="synthetic", synthetic_size=100)
    task = StyleTask(cfg, _model(channels=3))
    train, test = task.build_dataset("train"), task.build_dataset("test")
    task.check_data(train[0])
    bind_task(task)
    eval_batches = list(DataLoader(test, batch_size=64))
    before, after = _train(task, train, 60, 8, eval_batches)
    for key in ("cycle_l1_a", "cycle_l1_b", "fd8_ab", "fd8_ba"):
        assert after[key] < 0.6 * before[key], (key, before, after)
    # The style-match score exists on colour data; 60 steps are too few for it to improve reliably, so only its
    # range is checked here.
    assert 0.0 <= after["colour_err_ab"] <= 1.0 and 0.0 <= after["colour_err_ba"] <= 1.0


def test_trainer_fit_exports_both_generators(tmp_path):
    from fashion_gans.training.trainer import Trainer

    cfg = _config(tmp_path, max_steps=3, checkpoint_every=3, sample_every=3, eval_batches=1, preset="cyclegan_small",
                  model_overrides={"image_size": [32, 32], "channels_a": 1, "channels_b": 1, **TINY})
    metrics = Trainer(cfg).fit()
    assert {"cycle_l1_a", "fd8_ab"} <= set(metrics)
    out = tmp_path / "run" / "final"
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    g_ab = CycleGANGenerator.from_pretrained(out / "gen_ab").eval()
    g_ba = CycleGANGenerator.from_pretrained(out / "gen_ba").eval()
    assert (g_ab.direction, g_ba.direction) == ("ab", "ba")
    assert g_ab(x).shape == (2, 1, 32, 32)
    assert not torch.allclose(g_ab(x), g_ba(x))  # two different networks were exported
