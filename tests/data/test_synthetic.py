"""The procedural fashion world: determinism, annotations that agree with the pixels, attributes that can be
read back from the images, and clear errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fashion_gans.data.pose import OPENPOSE18_NAMES, scale_keypoints, visible_joints
from fashion_gans.data.synthetic import (
    ACCESSORY_SHAPES,
    COLOURS,
    GARMENT_COLOURS,
    MATERIALS,
    PART_NAMES,
    PATTERNS,
    POSE_NAMES,
    POSE_VIEWS,
    TOP_KINDS,
    AccessoryStyle,
    Garment,
    Pose,
    SyntheticWorld,
    base_pose,
    pattern_mask,
)

PALETTE_NAMES = list(COLOURS)
PALETTE = np.array([COLOURS[c] for c in PALETTE_NAMES], dtype=np.float32)
J = {n: i for i, n in enumerate(OPENPOSE18_NAMES)}


def nearest_colour(rgb) -> str:
    d = np.abs(PALETTE - np.asarray(rgb, np.float32)).sum(axis=1)
    return PALETTE_NAMES[int(d.argmin())]


def colour_histogram(image: np.ndarray) -> list[tuple[str, int]]:
    """Pixels classified to the nearest palette colour, white left out, most common first."""
    px = image.reshape(-1, 3).astype(np.float32)
    d = np.abs(px[:, None, :] - PALETTE[None, :, :]).sum(axis=2)
    counts = np.bincount(d.argmin(axis=1), minlength=len(PALETTE_NAMES))
    counts[PALETTE_NAMES.index("white")] = 0
    order = np.argsort(-counts)
    return [(PALETTE_NAMES[i], int(counts[i])) for i in order if counts[i] > 0]


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(seed=3)


def test_same_seed_same_pixels_different_seed_different(world):
    other = SyntheticWorld(seed=3)
    for i in range(3):
        assert world.person(i) == other.person(i)
        a = world.render_person(world.person(i), world.pose(i, 1), (64, 64), background="scene", background_seed=i)
        b = other.render_person(other.person(i), other.pose(i, 1), (64, 64), background="scene", background_seed=i)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.iuv, b.iuv)
        assert np.array_equal(a.keypoints, b.keypoints)
        s = world.accessory_style(i)
        assert np.array_equal(world.render_shoe(s, "boot", variant=2), other.render_shoe(s, "boot", variant=2))
        assert np.array_equal(world.render_bag(s, "tote"), other.render_bag(s, "tote"))
        assert np.array_equal(world.render_flat(world.person(i).top), other.render_flat(other.person(i).top))
    different = SyntheticWorld(seed=4)
    people_a = [world.person(i).attributes() for i in range(8)]
    people_b = [different.person(i).attributes() for i in range(8)]
    assert people_a != people_b
    img_a = np.stack([world.render_person(world.person(i), world.pose(i, 0), (64, 64)).image for i in range(4)])
    img_b = np.stack([different.render_person(different.person(i), different.pose(i, 0), (64, 64)).image
                      for i in range(4)])
    assert not np.array_equal(img_a, img_b)
    # Different variants of one accessory differ, and the global numpy generator is never used.
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    s = world.accessory_style(0)
    assert not np.array_equal(world.render_shoe(s, "pump", variant=0), world.render_shoe(s, "pump", variant=1))
    assert np.array_equal(before, np.random.get_state()[1])


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (128, 128), (256, 176)])
def test_visible_keypoints_fall_on_the_body(world, size):
    for i in range(6):
        person = world.person(i)
        for k in range(len(POSE_NAMES)):
            r = world.render_person(person, world.pose(i, k), size)
            assert r.image.shape == (*size, 3) and r.image.dtype == np.uint8
            vis = visible_joints(r.keypoints)
            assert vis.sum() >= 14
            cols = np.round(r.keypoints[vis]).astype(int)
            on_body = r.mask[cols[:, 1], cols[:, 0]]
            assert on_body.all(), (i, k, np.array(OPENPOSE18_NAMES)[vis][on_body == 0])


def test_parts_iuv_and_masks_agree(world):
    for i in range(4):
        r = world.render_person(world.person(i), world.pose(i, i), (128, 128), background="studio")
        assert set(np.unique(r.mask)) <= {0, 1}
        assert np.array_equal(r.parts > 0, r.mask == 1)
        assert r.parts.max() < len(PART_NAMES)
        assert np.array_equal(r.iuv[..., 0], r.parts)
        assert r.iuv[r.mask == 0].max() == 0
        assert np.all(r.top_mask <= r.mask) and r.top_mask.sum() > 50
        # U and V use their range within the body.
        assert r.iuv[..., 1][r.mask == 1].std() > 30 and r.iuv[..., 2][r.mask == 1].std() > 30
        # Head and torso parts exist.
        assert (r.parts == PART_NAMES.index("torso")).sum() > 50
        head = np.isin(r.parts, [PART_NAMES.index("head"), PART_NAMES.index("hair")])
        assert head.sum() > 30


def test_background_only_changes_background_pixels(world):
    person, pose = world.person(5), world.pose(5, 3)
    white = world.render_person(person, pose, (96, 64))
    assert np.all(white.image[white.mask == 0] == 255)
    for bg in ("studio", "scene"):
        r = world.render_person(person, pose, (96, 64), background=bg, background_seed=7)
        assert np.array_equal(r.mask, white.mask)
        assert np.array_equal(r.image[r.mask == 1], white.image[white.mask == 1])
        assert not np.all(r.image[r.mask == 0] == 255)
    s1 = world.render_person(person, pose, (96, 64), background="scene", background_seed=1).image
    s2 = world.render_person(person, pose, (96, 64), background="scene", background_seed=2).image
    assert not np.array_equal(s1, s2)


def test_same_identity_keeps_outfit_across_poses(world):
    for i in range(10):
        person = world.person(i)
        # Solid top: the top pixels are the garment's colour.
        solid = dataclasses.replace(person, top=dataclasses.replace(person.top, pattern="solid"))
        means = []
        for k in (0, 1, 3):
            r = world.render_person(solid, world.pose(i, k), (128, 128))
            top_px = r.image[r.top_mask == 1].astype(np.float32)
            assert nearest_colour(np.median(top_px, axis=0)) == person.top.colour
            means.append(top_px.mean(axis=0))
        assert np.abs(means[0] - means[1]).max() < 20 and np.abs(means[0] - means[2]).max() < 20
        # Whatever the pattern, the two poses' top colours agree and the keypoints differ.
        a = world.render_person(person, world.pose(i, 0), (128, 128))
        b = world.render_person(person, world.pose(i, 1), (128, 128))
        ma = a.image[a.top_mask == 1].astype(np.float32).mean(axis=0)
        mb = b.image[b.top_mask == 1].astype(np.float32).mean(axis=0)
        assert np.abs(ma - mb).max() < 30
        assert np.abs(a.keypoints - b.keypoints).max() > 5


def test_patterns_differ_measurably(world):
    person = world.person(0)
    top = dataclasses.replace(person.top, colour="navy", pattern_colour="yellow")
    stds = {}
    for pattern in PATTERNS:
        p = dataclasses.replace(person, top=dataclasses.replace(top, pattern=pattern))
        r = world.render_person(p, world.pose(0, 0), (64, 64))
        px = r.image[r.top_mask == 1].astype(np.float32)
        stds[pattern] = float(px.std(axis=0).mean())
        if pattern != "solid":
            hist = dict(colour_histogram(r.image * r.top_mask[:, :, None] + 255 * (1 - r.top_mask[:, :, None])))
            assert hist.get("yellow", 0) >= 10 and hist.get("navy", 0) > hist["yellow"], (pattern, hist)
    assert stds["solid"] < 15
    for pattern in ("stripes", "checks", "dots"):
        assert stds[pattern] > 35, stds
    # The three pattern masks are different images.
    masks = {p: pattern_mask(p, (64, 64), 6.0) for p in PATTERNS}
    assert not masks["solid"].any()
    for p in ("stripes", "checks", "dots"):
        assert 0.15 < masks[p].mean() < 0.55
    assert (masks["stripes"] != masks["checks"]).mean() > 0.1 and (masks["dots"] != masks["checks"]).mean() > 0.1


def test_views_look_different(world):
    face_part = PART_NAMES.index("head")  # face, ears and neck skin; hair is its own part
    for i in range(6):
        person = world.person(i)
        face, torso_width = {}, {}
        for name in ("front", "side", "back"):
            r = world.render_person(person, base_pose(name), (128, 128))
            face[name] = int((r.parts == face_part).sum())
            torso_width[name] = int((r.parts == PART_NAMES.index("torso")).any(axis=0).sum())
        # From behind the hair hides the face; from the side the body is narrower.
        assert face["front"] > 3 * face["back"], face
        assert face["side"] > face["back"], face
        assert torso_width["side"] < 0.75 * torso_width["front"], torso_width
    # The back view hides the face keypoints; the side view hides one eye and one ear.
    back = base_pose("back").keypoints
    assert np.all(back[[J["nose"], J["r_eye"], J["l_eye"]]] == -1)
    side = base_pose("side").keypoints
    assert visible_joints(side)[[J["r_eye"], J["l_eye"]]].sum() == 1
    assert visible_joints(side)[[J["r_ear"], J["l_ear"]]].sum() == 1


def test_poses_cycle_names_with_jitter(world):
    for k in range(2 * len(POSE_NAMES)):
        p = world.pose(1, k)
        assert p.name == POSE_NAMES[k % len(POSE_NAMES)] and p.view == POSE_VIEWS[p.name]
        assert p.keypoints.shape == (18, 2) and p.keypoints.dtype == np.float32
    a, b = world.pose(1, 0), world.pose(1, len(POSE_NAMES))
    assert a.name == b.name and not np.array_equal(a.keypoints, b.keypoints)
    assert np.array_equal(world.pose(1, 2).keypoints, world.pose(1, 2).keypoints)


def test_render_at_256x176_keeps_proportions_and_keypoints_scale(world):
    person, pose = world.person(4), world.pose(4, 4)
    small = world.render_person(person, pose, (128, 128))
    big = world.render_person(person, pose, (256, 176))
    assert big.image.shape == (256, 176, 3)
    np.testing.assert_allclose(big.keypoints, pose.pixel_keypoints((256, 176)))
    # Twice the height, re-centred horizontally for the narrower frame.
    expected = scale_keypoints(small.keypoints, (128, 128), (256, 256))
    vis = visible_joints(expected)
    expected[vis, 0] += (176 - 256) / 2
    np.testing.assert_allclose(big.keypoints[vis], expected[vis], atol=1e-3)
    # The body's height is the same fraction of the frame.
    rows_small = np.nonzero(small.mask.any(axis=1))[0]
    rows_big = np.nonzero(big.mask.any(axis=1))[0]
    assert abs((rows_big[-1] - rows_big[0]) / 256 - (rows_small[-1] - rows_small[0]) / 128) < 0.02


def test_flat_product_shot_shows_the_garment_colour(world):
    for kind in TOP_KINDS + ("trousers", "shorts", "skirt"):
        for pattern in PATTERNS:
            g = Garment(kind, "red" if kind != "jacket" else "green", pattern, "navy")
            img = world.render_flat(g, (64, 64))
            assert img.shape == (64, 64, 3)
            assert tuple(img[0, 0]) == (255, 255, 255) and tuple(img[-1, -1]) == (255, 255, 255)
            hist = colour_histogram(img)
            assert hist[0][0] == g.colour, (kind, pattern, hist[:3])
            # Centred: the garment's bounding box is centred within a few pixels.
            fg = (img < 250).any(axis=2)
            cols = np.nonzero(fg.any(axis=0))[0]
            assert abs((cols[0] + cols[-1]) / 2 - 31.5) < 3
    for i in range(6):
        g = world.person(i).top
        assert colour_histogram(world.render_flat(g, (64, 64)))[0][0] == g.colour


def test_shoe_and_bag_of_one_style_share_its_colour(world):
    for material in MATERIALS:
        for colour in ("red", "blue", "yellow", "green", "brown"):
            style = AccessoryStyle(0, colour, "solid", "white", material)
            for shape in ACCESSORY_SHAPES["shoe"]:
                img = world.render_shoe(style, shape, (64, 64))
                assert colour_histogram(img)[0][0] == colour, (material, shape, colour_histogram(img)[:3])
            for shape in ACCESSORY_SHAPES["bag"]:
                img = world.render_bag(style, shape, (64, 64))
                assert colour_histogram(img)[0][0] == colour, (material, shape, colour_histogram(img)[:3])
    for j in range(12):
        style = world.accessory_style(j)
        shoe = [c for c, _ in colour_histogram(world.render_shoe(style, "sneaker", variant=j))[:3]]
        bag = [c for c, _ in colour_histogram(world.render_bag(style, "satchel", variant=j))[:3]]
        assert style.colour in shoe and style.colour in bag, (style, shoe, bag)
        json.dumps(style.attributes())


def test_people_and_attributes(world):
    categories = set()
    for i in range(40):
        p = world.person(i)
        attrs = p.attributes()
        assert json.loads(json.dumps(attrs)) == attrs
        assert attrs["identity"] == i
        assert (p.top.kind == "dress") == (p.bottom is None)
        assert p.top.colour in GARMENT_COLOURS and p.top.pattern_colour != p.top.colour
        categories.add(p.category)
        assert attrs["top"]["rgb"] == list(COLOURS[p.top.colour])
    assert len(categories) >= 4
    pose_attrs = world.pose(0, 0).attributes()
    assert json.loads(json.dumps(pose_attrs)) == pose_attrs


def test_bad_input_is_named(world):
    person, pose = world.person(0), world.pose(0, 0)
    with pytest.raises(ValueError, match="jump"):
        base_pose("jump")
    with pytest.raises(ValueError, match="jump"):
        Pose("jump", "front", pose.keypoints)
    with pytest.raises(ValueError, match="diagonal"):
        Pose("front", "diagonal", pose.keypoints)
    with pytest.raises(ValueError, match=r"\(18, 2\)"):
        Pose("front", "front", pose.keypoints[:10])
    style = world.accessory_style(0)
    with pytest.raises(ValueError, match="slipper"):
        world.render_shoe(style, "slipper")
    with pytest.raises(ValueError, match="backpack"):
        world.render_bag(style, "backpack")
    with pytest.raises(ValueError, match="size"):
        world.render_person(person, pose, (8, 64))
    with pytest.raises(ValueError, match="size"):
        world.render_flat(person.top, (15, 15))
    with pytest.raises(ValueError, match="size"):
        world.render_shoe(style, "boot", (12, 64))
    with pytest.raises(ValueError, match="beach"):
        world.render_person(person, pose, background="beach")
    with pytest.raises(ValueError, match="cape"):
        Garment("cape", "red")
    with pytest.raises(ValueError, match="mauve"):
        Garment("tshirt", "mauve")
    with pytest.raises(ValueError, match="velvet"):
        AccessoryStyle(0, "red", material="velvet")
    with pytest.raises(ValueError, match="bottom"):
        dataclasses.replace(person, top=Garment("dress", "red"), bottom=Garment("skirt", "blue")) \
            if person.bottom is None else dataclasses.replace(person, top=Garment("dress", "red"))
    with pytest.raises(ValueError, match="identity"):
        world.person(-1)


def test_benchmark_cli_writes_json(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "benchmark.py"
    out = tmp_path / "bench" / "synthetic.json"
    proc = subprocess.run(
        [sys.executable, str(script), "synthetic", "--count", "6", "--size", "32", "--sizes", "16,32",
         "--repeats", "2", "--warmup", "1", "--other-count", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert set(result["per_size"]) == {"16", "32"}
    assert result["images_per_second"] == result["per_size"]["32"]["images_per_second"] > 0
    assert len(result["per_size"]["16"]["repeats_images_per_second"]) == 2
    assert result["machine"]["logical_cores"] >= 1 and result["versions"]["numpy"] == np.__version__
    assert set(result["other_kinds_64px"]) >= {"flat_product_shot", "shoe", "bag"}
    assert "person images/s" in proc.stdout and len(proc.stdout.strip().splitlines()) == 1
    assert [p.name for p in out.parent.iterdir()] == ["synthetic.json"]  # no temporary file left behind
    bad = subprocess.run([sys.executable, str(script), "synthetic", "--size", "8", "--out", str(out)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0 and "16" in bad.stderr
