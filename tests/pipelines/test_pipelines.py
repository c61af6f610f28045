"""The four pipelines: what they feed the models, what they return, and their errors.

Untrained tiny models check shapes, modes, determinism and the latent arithmetic; the bundled trained models,
when shipped, are checked for beating the trivial baseline on unseen synthetic examples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_gans.data.io import array_to_tensor
from fashion_gans.data.pose import keypoints_to_heatmaps, visible_joints
from fashion_gans.data.synthetic import ACCESSORY_SHAPES, SyntheticWorld
from fashion_gans.models import build_models, get_preset
from fashion_gans.models.sources import list_bundled
from fashion_gans.pipelines import (
    GarmentExtractionPipeline,
    GenerationPipeline,
    PipelineError,
    PoseInputError,
    PoseTransferPipeline,
    StyleMatchingPipeline,
    estimate_pose,
    gallery_pose,
    save_animation,
    set_joint,
)
from fashion_gans.pipelines.pose import heatmap_sigma, pixels_to_pose, pose_to_pixels
from fashion_gans.ui.app import EXAMPLES_DIR
from tiny_models import make_tiny_models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def world_render():
    world = SyntheticWorld(1000)
    return world, world.render_person(world.person(3), world.pose(3, 0), (64, 64))


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32)


# ---------------------------------------------------------------------------------------------- loading
def test_models_are_loaded_once_per_source_and_device(tiny):
    a = PoseTransferPipeline.from_pretrained(tiny["tiny-pose"], device="cpu")
    b = PoseTransferPipeline.from_pretrained(str(tiny["tiny-pose"]), device="cpu")
    assert a.generator is b.generator
    assert not a.generator.training and not any(p.requires_grad for p in a.generator.parameters())


def test_model_cache_is_lru_loads_once_and_caps_sizes(tiny, monkeypatch):
    import threading

    from fashion_gans.models import ModelFileError
    from fashion_gans.pipelines import base

    base.clear_model_cache()
    calls = []
    real = base.load_networks

    def slow_load(*args, **kwargs):
        calls.append(args[0])
        threading.Event().wait(0.2)  # concurrent requests arrive while the model is loading
        return real(*args, **kwargs)

    monkeypatch.setattr(base, "load_networks", slow_load)
    monkeypatch.setattr(base, "_CACHE_SIZE", 2)
    got = []
    threads = [threading.Thread(target=lambda: got.append(base.cached_networks(tiny["tiny-pose"], torch.device("cpu"))))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and got[0] is got[1] is got[2]  # one load for three simultaneous requests
    base.cached_networks(tiny["tiny-garment"], torch.device("cpu"))
    base.cached_networks(tiny["tiny-pose"], torch.device("cpu"))  # used again: now the most recent
    base.cached_networks(tiny["tiny-style"], torch.device("cpu"))  # evicts tiny-garment, the least recently used
    base.cached_networks(tiny["tiny-pose"], torch.device("cpu"))
    assert [str(c).rsplit("/", 1)[-1] for c in calls] == ["tiny-pose", "tiny-garment", "tiny-style"]
    with pytest.raises(ModelFileError, match="parameters is more than"):
        GarmentExtractionPipeline.from_pretrained(tiny["tiny-garment"], device="cpu", max_parameters=1000)
    base.clear_model_cache()


def test_a_model_of_another_tool_is_refused(tiny):
    with pytest.raises(PipelineError, match="'generation' model.*needs a 'pose' model"):
        PoseTransferPipeline.from_pretrained(tiny["tiny-generation"], device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(PipelineError, match="CUDA is not available"):
            GarmentExtractionPipeline.from_pretrained(tiny["tiny-garment"], device="cuda")


def test_iuv_pose_models_are_refused_with_the_reason(tmp_path):
    net = build_models(get_preset("pgpg_small").replace(pose_encoding="iuv"))["generator"]
    net.save_pretrained(tmp_path / "iuv" / "generator")
    with pytest.raises(PipelineError, match="DensePose IUV"):
        PoseTransferPipeline.from_pretrained(tmp_path / "iuv", device="cpu")


# ---------------------------------------------------------------------------------------------- pose
def test_pose_pipeline_feeds_the_model_what_training_fed_it(tiny, world_render):
    _, render = world_render
    pipe = PoseTransferPipeline.from_pretrained(tiny["tiny-pose"], device="cpu")
    # The person image: same tensor as the data loader's array_to_tensor at the model size.
    torch.testing.assert_close(pipe.prepare_image(render.image)[0], array_to_tensor(render.image))
    # The pose: normalised keypoints round-trip to the same heatmaps (In-shop sigma) as the true pixels give.
    pose = pixels_to_pose(render.keypoints, (64, 64))
    expected = keypoints_to_heatmaps(render.keypoints, (64, 64), sigma=heatmap_sigma(64))
    np.testing.assert_allclose(pipe.prepare_pose(pose)[0].numpy(), expected, atol=1e-4)
    assert heatmap_sigma(256) == 6.0 and heatmap_sigma(64) == 1.5


def test_pose_pipeline_outputs_and_target_dependence(tiny, world_render):
    _, render = world_render
    pipe = PoseTransferPipeline.from_pretrained(tiny["tiny-pose"], device="cpu")
    walking = pipe(render.image, "walking")
    assert [im.size for im in walking] == [(64, 64)] * 3 and all(im.mode == "RGB" for im in walking)
    raised = pipe(Image.fromarray(render.image).resize((300, 300)), gallery_pose("arms_raised"))
    assert np.abs(_arr(walking.image) - _arr(raised.image)).mean() > 0.01  # the target pose matters
    # The skeleton image shows the target: joint colours at the raised elbows' pixels, above the neck.
    sk = _arr(raised.skeleton)
    target = pose_to_pixels(raised.pose, (64, 64))
    for j in (3, 6):  # r_elbow, l_elbow
        x, y = np.round(target[j]).astype(int)
        assert sk[y, x].sum() > 0 and target[j, 1] < target[1, 1]


def test_poses_edited_on_the_square_canvas_fit_a_non_square_model(tmp_path, world_render):
    from fashion_gans.pipelines.pose import reframe_pose
    from fashion_gans.ui.app import EDIT_CANVAS, DemoBackend, _pose_json
    from fashion_gans.ui.registry import ModelRegistry

    narrow = tmp_path / "narrow"
    build_models(get_preset("pgpg_small").replace(image_size=(64, 44)))["generator"].save_pretrained(
        narrow / "generator")
    canvas, model = gallery_pose("walking", EDIT_CANVAS), gallery_pose("walking", (64, 44))
    moved = reframe_pose(canvas, EDIT_CANVAS, (64, 44))
    assert np.allclose(moved, model, atol=1e-4)  # the same body, drawn for the narrower frame
    assert np.array_equal(reframe_pose(canvas, EDIT_CANVAS, EDIT_CANVAS), canvas)
    backend = DemoBackend(ModelRegistry({"narrow": narrow}, include_bundled=False), device="cpu", temp_dir=tmp_path)
    _, person = world_render
    result = backend.transfer_pose(person.image, _pose_json(canvas), "narrow")
    pipe = PoseTransferPipeline.from_pretrained(narrow, device="cpu")
    direct, unmapped = pipe(person.image, model), pipe(person.image, canvas)

    def gap(shown, made):
        return float(np.abs(_arr(shown) - _arr(made.resize(shown.size, Image.NEAREST))).mean())

    # The result, the target skeleton and the coarse output are those of the pose in the model's frame (an
    # untrained generator barely reacts to the pose: the images differ little, but 100x more than the rounding).
    for shown, made, wrong in zip(result, direct, unmapped):
        assert gap(shown, made) < 0.01 and gap(shown, wrong) > 100 * gap(shown, made)
    assert gap(result[1], unmapped.skeleton) > 1.0


def test_pose_pipeline_rejects_empty_and_sparse_poses(tiny, world_render):
    _, render = world_render
    pipe = PoseTransferPipeline.from_pretrained(tiny["tiny-pose"], device="cpu")
    with pytest.raises(PoseInputError, match="empty"):
        pipe(render.image, [])
    sparse = set_joint(None, "nose", 0.5, 0.1)
    with pytest.raises(PoseInputError, match="too few joints .1 of 18"):
        pipe(render.image, sparse)
    with pytest.raises(PoseInputError, match="18 .x, y. pairs"):
        pipe(render.image, [[0.5, 0.5]] * 17)
    with pytest.raises(PoseInputError, match="unknown gallery pose .moonwalk"):
        pipe(render.image, "moonwalk")


def test_blazepose_finds_the_pose_of_a_rendered_person():
    """BlazePose (offline, inside the mediapipe wheel) on the shipped reference renders, against the keypoints
    the renderer recorded."""
    index = json.loads((EXAMPLES_DIR / "index.json").read_text())
    for ref in index["references"]:
        found = estimate_pose(EXAMPLES_DIR / "references" / ref["file"])
        truth = np.asarray(ref["keypoints"], np.float32)
        both = visible_joints(truth) & visible_joints(found.keypoints)
        assert found.visible >= 12 and both.sum() >= 10, ref["file"]
        err = np.linalg.norm(found.keypoints[both] - truth[both], axis=1)
        assert np.median(err) < 0.04 * 256, (ref["file"], np.median(err))  # within ~10 px on 256 px
        assert found.overlay.size[0] >= 256


def test_blazepose_on_an_item_without_a_person_is_a_clear_error():
    shoe = EXAMPLES_DIR / "shoes" / sorted(p.name for p in (EXAMPLES_DIR / "shoes").glob("*.png"))[0]
    with pytest.raises(PoseInputError, match="too few joints"):
        estimate_pose(shoe)
    with pytest.raises(PoseInputError, match="too few joints"):
        estimate_pose(Image.new("RGB", (200, 300), "white"))


# ---------------------------------------------------------------------------------------------- garment, style
def test_garment_and_style_outputs(tiny, world_render):
    world, render = world_render
    garment = GarmentExtractionPipeline.from_pretrained(tiny["tiny-garment"], device="cpu")
    product = garment(Image.fromarray(render.image).convert("L"))  # greyscale photo, 3-channel model
    assert product.size == (64, 64) and product.mode == "RGB"

    style = StyleMatchingPipeline.from_pretrained(tiny["tiny-style"], device="cpu")
    shoe = world.render_shoe(world.accessory_style(0), ACCESSORY_SHAPES["shoe"][0], (64, 64))
    bag = style(shoe, "shoe_to_bag")
    back = style(bag, "bag_to_shoe")
    assert bag.size == back.size == (64, 64) and bag.mode == "RGB"
    assert not np.array_equal(np.asarray(bag), np.asarray(style(shoe, "bag_to_shoe")))  # two networks
    with pytest.raises(PipelineError, match="direction"):
        style(shoe, "sideways")
    assert style.outlines("shoe_to_bag") == 1  # draws the outline it learned
    assert np.array_equal(np.asarray(style(shoe, "shoe_to_bag", outline=0)), np.asarray(bag))
    with pytest.raises(PipelineError, match="outline 1: use 0"):
        style(shoe, "shoe_to_bag", outline=1)


def test_silhouette_style_model_draws_the_chosen_stored_outline(tmp_path, world_render):
    """A model whose generators store target-domain silhouettes offers them as ``outline``: each stored outline
    gives another result, the default is outline 0, and an index past the stored ones is refused by name."""
    from fashion_gans.models import build_models, get_preset

    world, _ = world_render
    cfg = get_preset("discogan_shape_small").replace(g_base_channels=8, g_style_dim=16, g_shape_bank=4)
    nets = build_models(cfg)
    bags = [world.render_bag(world.accessory_style(j), shape, (64, 64))
            for j, shape in enumerate(ACCESSORY_SHAPES["bag"])]
    x = torch.stack([torch.from_numpy(b).permute(2, 0, 1).float() / 127.5 - 1 for b in bags])
    assert nets["gen_ab"].store_shapes(x[:3]) == 3  # three of four slots filled
    for name in ("gen_ab", "gen_ba"):
        nets[name].save_pretrained(tmp_path / "shape-style" / name)
    style = StyleMatchingPipeline.from_pretrained(tmp_path / "shape-style", device="cpu")
    shoe = world.render_shoe(world.accessory_style(0), ACCESSORY_SHAPES["shoe"][0], (64, 64))
    assert style.outlines("shoe_to_bag") == 3 and style.outlines("bag_to_shoe") == 1  # gen_ba's bank is empty
    outs = [np.asarray(style(shoe, "shoe_to_bag", outline=k)) for k in range(3)]
    assert np.array_equal(np.asarray(style(shoe, "shoe_to_bag")), outs[0])
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])
    for bad in (3, -1, 1.5, True):
        with pytest.raises(PipelineError, match=r"outline .*: use an int in 0..2"):
            style(shoe, "shoe_to_bag", outline=bad)


def test_one_channel_style_model_gets_fashion_mnist_like_input(tiny, world_render):
    world, _ = world_render
    style = StyleMatchingPipeline.from_pretrained(tiny["tiny-style-gray"], device="cpu")
    shoe = world.render_shoe(world.accessory_style(1), ACCESSORY_SHAPES["shoe"][0], (64, 64))  # on white
    x = style.prepare(shoe, "shoe_to_bag")
    assert x.shape == (1, 1, 32, 32)
    # Inverted to light-on-black with Fashion-MNIST's 2 px black margin.
    assert float(x[0, 0, :2].max()) < -0.95 and float(x[0, 0, :, :2].max()) < -0.95
    assert float(x.max()) > 0.0
    kept = style.prepare(shoe, "shoe_to_bag", invert=False)
    assert float(kept[0, 0, 5:27, 5:27].mean()) > float(x[0, 0, 5:27, 5:27].mean())
    for off in ("off", "false", "OFF", False):  # a string that means "no" does not invert
        assert torch.equal(style.prepare(shoe, "shoe_to_bag", invert=off), kept)
    for on in ("on", "true", True):
        assert torch.equal(style.prepare(shoe, "shoe_to_bag", invert=on), x)
    with pytest.raises(PipelineError, match="invert 'maybe'"):
        style.prepare(shoe, "shoe_to_bag", invert="maybe")
    out = style(shoe, "shoe_to_bag")
    assert out.mode == "L" and out.size == (32, 32)


def test_fashion_mnist_images_reach_a_one_channel_model_as_in_training(tiny):
    """A 28 px Fashion-MNIST image goes in exactly as the data loader pads it (2 px of -1, no inversion)."""
    from fashion_gans.data.fashion_mnist import FashionMNIST

    style = StyleMatchingPipeline.from_pretrained(tiny["tiny-style-gray"], device="cpu")
    files = sorted((EXAMPLES_DIR / "fmnist").glob("*.png"))
    arrays = np.stack([np.asarray(Image.open(f)) for f in files])
    loader = FashionMNIST.from_arrays(arrays, np.zeros(len(files), np.int64), "test", pad_to=32, channels=1)
    for i, f in enumerate(files):
        torch.testing.assert_close(style.prepare(f, "bag_to_shoe"), loader[i]["image"][None])


# ---------------------------------------------------------------------------------------------- generation
def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_arr(a) - _arr(b)).mean())


def _same(a: Image.Image, b: Image.Image) -> bool:
    """Equal up to rounding: a batch of other size may take another convolution path (last-bit differences)."""
    return float(np.abs(_arr(a) - _arr(b)).max()) <= 2.0


def test_generation_seeds_truncation_mixing_and_interpolation(tiny, tmp_path):
    pipe = GenerationPipeline.from_pretrained(tiny["tiny-generation"], device="cpu")
    gen = pipe.generator
    with torch.no_grad():  # give the untrained model a non-zero average w, as training would
        gen.w_avg.copy_(gen.mapping_net(torch.randn(64, gen.config.z_dim)).mean(0))
    images = pipe(7, 3, psi=1.0)
    assert len(images) == 3 and images[0].size == (32, 32) and images[0].mode == "RGB"
    assert _same(pipe(7, 1)[0], images[0])  # a seed is an image
    assert _same(pipe(8, 1)[0], images[1])  # seeds 7, 8, 9
    assert _diff(images[0], images[1]) > 1.0
    average = pipe(100, 3, psi=0.0)  # psi 0: every seed truncated to the average w -> one image
    assert all(_same(average[0], im) for im in average[1:])

    a, b, ab, ba = pipe.style_mix(7, 8, crossover=0)
    assert _same(ab, b) and _diff(ab, a) > 1.0  # no coarse layers from A: all B
    a2, _, ab_all, _ = pipe.style_mix(7, 8, crossover=pipe.num_ws)
    assert _same(ab_all, a2) and _same(a, images[0])
    with pytest.raises(PipelineError, match="crossover"):
        pipe.style_mix(1, 2, crossover=pipe.num_ws + 1)

    frames = pipe.interpolate(7, 8, frames=5)
    assert len(frames) == 8  # 5 forward + 3 back (a loop without repeating the ends)
    assert _same(frames[0], images[0]) and _same(frames[4], images[1])
    gif = save_animation(frames, tmp_path / "walk.gif")
    with Image.open(gif) as anim:
        assert anim.n_frames == 8
    with pytest.raises(PipelineError, match="seed"):
        pipe(-1)
    with pytest.raises(PipelineError, match="number of images"):
        pipe(0, 0)


def test_one_channel_generation(tiny):
    pipe = GenerationPipeline.from_pretrained(tiny["tiny-generation-gray"], device="cpu")
    out = pipe(0, 2)
    assert [im.mode for im in out] == ["L", "L"] and out[0].size == (32, 32)


# ---------------------------------------------------------------------------------------------- trained models
BUNDLED = set(list_bundled())


@pytest.mark.skipif("pose-synthetic" not in BUNDLED, reason="pose-synthetic weights are not bundled")
def test_bundled_pose_model_moves_the_person_towards_the_target():
    """Through the pipeline, on identities of an unseen world: closer to the true target than the source is."""
    pipe = PoseTransferPipeline.from_pretrained("pose-synthetic", device="cpu")
    world = SyntheticWorld(1000)
    size = pipe.size
    gains = []
    for identity in range(4):
        person = world.person(identity)
        src = world.render_person(person, world.pose(identity, 0), size).image
        tgt = world.render_person(person, world.pose(identity, 3), size)
        out = pipe(src, pixels_to_pose(tgt.keypoints, size))
        gains.append(np.abs(_arr(src) - tgt.image).mean() - np.abs(_arr(out.image) - tgt.image).mean())
    assert np.mean(gains) > 0, gains


@pytest.mark.skipif("garment-synthetic" not in BUNDLED, reason="garment-synthetic weights are not bundled")
def test_bundled_garment_model_is_closer_to_the_product_than_the_photo():
    pipe = GarmentExtractionPipeline.from_pretrained("garment-synthetic", device="cpu")
    world = SyntheticWorld(1000)
    gains = []
    for identity in range(4):
        person = world.person(identity)
        photo = world.render_person(person, world.pose(identity, 0), pipe.size, background="scene").image
        flat = world.render_flat(person.top, pipe.size)
        gains.append(np.abs(_arr(Image.fromarray(photo)) - flat).mean()
                     - np.abs(_arr(pipe(photo)) - flat).mean())
    assert np.mean(gains) > 0, gains


@pytest.mark.skipif("style-synthetic" not in BUNDLED, reason="style-synthetic weights are not bundled")
def test_bundled_style_model_keeps_the_colour_of_the_style():
    """A shoe of an unseen world's style -> a bag whose object colour is nearer that style's colour than the
    other styles' colours (shoes and bags of one style share their colour)."""
    from fashion_gans.training.tasks.style import object_mean_colour

    pipe = StyleMatchingPipeline.from_pretrained("style-synthetic", device="cpu")
    world = SyntheticWorld(1000)
    styles = [world.accessory_style(j) for j in range(8)]
    colours = torch.tensor([s.rgb for s in styles], dtype=torch.float32) / 255.0
    bags = [pipe(world.render_shoe(s, ACCESSORY_SHAPES["shoe"][0], pipe.size), "shoe_to_bag") for s in styles]
    x = torch.stack([torch.from_numpy(np.asarray(b, np.float32)).permute(2, 0, 1) / 127.5 - 1 for b in bags])
    dist = torch.cdist(object_mean_colour(x), colours, p=1)  # (bag, style colour)
    own = dist.diagonal()
    others = (dist.sum(1) - own) / (len(styles) - 1)
    assert float(own.mean()) < float(others.mean()), (own, others)

