"""OpenPose-18 keypoint utilities: heatmaps, flips, scaling, COCO/BlazePose conversion, drawing, validation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fashion_gans.data.pose import (
    BLAZEPOSE_TO_COCO17,
    COCO17_NAMES,
    COCO17_TO_OPENPOSE18,
    OPENPOSE18_COLOURS,
    OPENPOSE18_FLIP,
    OPENPOSE18_LIMBS,
    OPENPOSE18_NAMES,
    OPENPOSE18_TO_COCO17,
    blazepose33_to_openpose18,
    coco17_to_openpose18,
    draw_skeleton,
    flip_keypoints,
    heatmaps_to_keypoints,
    keypoints_to_heatmaps,
    openpose18_to_coco17,
    scale_keypoints,
    validate_keypoints,
    visible_joints,
)

NECK = OPENPOSE18_NAMES.index("neck")


def random_keypoints(rng, size=(64, 48), n_missing=3) -> np.ndarray:
    h, w = size
    kp = np.stack([rng.uniform(2, w - 3, 18), rng.uniform(2, h - 3, 18)], axis=1).astype(np.float32)
    kp[rng.choice(18, n_missing, replace=False)] = -1
    return kp


def test_tables_are_consistent():
    assert len(OPENPOSE18_NAMES) == 18 and len(set(OPENPOSE18_NAMES)) == 18
    assert len(COCO17_NAMES) == 17
    for a, b in OPENPOSE18_LIMBS:
        assert 0 <= a < 18 and 0 <= b < 18 and a != b
    # Every joint is reached by the skeleton.
    assert {j for limb in OPENPOSE18_LIMBS for j in limb} == set(range(18))
    assert len(OPENPOSE18_COLOURS) == 18


def test_flip_permutation_swaps_left_and_right_by_name():
    assert sorted(OPENPOSE18_FLIP) == list(range(18))
    for i, j in enumerate(OPENPOSE18_FLIP):
        name, other = OPENPOSE18_NAMES[i], OPENPOSE18_NAMES[j]
        if name.startswith("l_"):
            assert other == "r_" + name[2:]
        elif name.startswith("r_"):
            assert other == "l_" + name[2:]
        else:
            assert other == name
        assert OPENPOSE18_FLIP[j] == i  # an involution


def test_coco_mapping_matches_names():
    for j, c in enumerate(COCO17_TO_OPENPOSE18):
        if j == NECK:
            assert c == -1
        else:
            assert COCO17_NAMES[c] == OPENPOSE18_NAMES[j]
    for i, j in enumerate(OPENPOSE18_TO_COCO17):
        assert OPENPOSE18_NAMES[j] == COCO17_NAMES[i]


def test_heatmap_keypoint_round_trip_within_one_pixel():
    rng = np.random.default_rng(0)
    for _ in range(5):
        kp = random_keypoints(rng)
        hm = keypoints_to_heatmaps(kp, (64, 48), sigma=3.0)
        assert hm.shape == (18, 64, 48) and hm.dtype == np.float32
        assert hm.min() >= 0.0 and hm.max() <= 1.0
        back = heatmaps_to_keypoints(hm)
        vis = visible_joints(kp)
        assert np.all(np.abs(back[vis] - kp[vis]) <= 1.0)
        assert np.all(back[~vis] == -1)
        assert np.all(hm[~vis] == 0)
        fine = heatmaps_to_keypoints(hm, subpixel=True)
        assert np.all(np.abs(fine[vis] - kp[vis]) <= 0.1)


def test_heatmap_peak_is_one_at_integer_joint_and_outside_joint_is_empty():
    kp = np.full((18, 2), -1, np.float32)
    kp[0] = (10, 20)
    kp[1] = (100, 5)  # outside a 32x32 image
    hm = keypoints_to_heatmaps(kp, (32, 32), sigma=2.0)
    assert hm[0, 20, 10] == pytest.approx(1.0)
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (20, 10)
    assert hm[1].max() == 0.0
    assert np.all(heatmaps_to_keypoints(hm)[1] == -1)


def test_flip_twice_is_identity_and_matches_flipped_image():
    rng = np.random.default_rng(1)
    kp = random_keypoints(rng, (40, 30))
    once = flip_keypoints(kp, 30)
    np.testing.assert_allclose(flip_keypoints(once, 30), kp, atol=1e-5)
    rs, ls = OPENPOSE18_NAMES.index("r_shoulder"), OPENPOSE18_NAMES.index("l_shoulder")
    if visible_joints(kp)[ls]:
        np.testing.assert_allclose(once[rs], (29 - kp[ls, 0], kp[ls, 1]))
    # Flipping the heatmap image and decoding equals flipping the keypoints.
    kp_int = np.round(kp).astype(np.float32)
    kp_int[~visible_joints(kp)] = -1
    hm = keypoints_to_heatmaps(kp_int, (40, 30), sigma=2.0)
    hm_flipped = hm[list(OPENPOSE18_FLIP)][:, :, ::-1]
    np.testing.assert_allclose(heatmaps_to_keypoints(hm_flipped), flip_keypoints(kp_int, 30))


def test_missing_joints_stay_missing_through_flip_and_scale():
    kp = np.full((18, 2), -1, np.float32)
    kp[3] = (5, 6)
    flipped = flip_keypoints(kp, 20)
    assert visible_joints(flipped).sum() == 1
    scaled = scale_keypoints(kp, (20, 20), (40, 60))
    assert visible_joints(scaled).sum() == 1
    assert np.all(scaled[~visible_joints(kp)] == -1)


def test_scale_keypoints_round_trip_and_matches_image_resize():
    rng = np.random.default_rng(2)
    kp = random_keypoints(rng, (64, 48))
    there = scale_keypoints(kp, (64, 48), (128, 80))
    back = scale_keypoints(there, (128, 80), (64, 48))
    vis = visible_joints(kp)
    np.testing.assert_allclose(back[vis], kp[vis], atol=1e-4)
    # A blob resized with PIL lands where scale_keypoints says.
    one = np.full((18, 2), -1, np.float32)
    one[0] = (17.0, 40.0)
    hm = keypoints_to_heatmaps(one, (64, 48), sigma=3.0)[0]
    big = np.asarray(Image.fromarray(hm, mode="F").resize((96, 128), Image.BILINEAR))
    found = heatmaps_to_keypoints(big[None], subpixel=True)[0]
    expected = scale_keypoints(one, (64, 48), (128, 96))[0]
    assert np.all(np.abs(found - expected) <= 0.5)


def test_coco_openpose_round_trip_and_neck():
    rng = np.random.default_rng(3)
    kp17 = random_keypoints(rng, n_missing=0)[:17]
    kp18 = coco17_to_openpose18(kp17)
    rs, ls = OPENPOSE18_NAMES.index("r_shoulder"), OPENPOSE18_NAMES.index("l_shoulder")
    np.testing.assert_allclose(kp18[NECK], 0.5 * (kp18[rs] + kp18[ls]))
    np.testing.assert_allclose(openpose18_to_coco17(kp18), kp17)
    # OpenPose -> COCO -> OpenPose keeps every joint but the neck, which is recomputed.
    op = random_keypoints(rng, n_missing=0)
    again = coco17_to_openpose18(openpose18_to_coco17(op))
    keep = np.arange(18) != NECK
    np.testing.assert_allclose(again[keep], op[keep])
    # A missing shoulder makes the neck missing.
    kp17[COCO17_NAMES.index("l_shoulder")] = -1
    assert np.all(coco17_to_openpose18(kp17)[NECK] == -1)


def test_blazepose_goes_through_coco():
    rng = np.random.default_rng(4)
    kp33 = rng.uniform(0, 50, (33, 2)).astype(np.float32)
    np.testing.assert_allclose(blazepose33_to_openpose18(kp33),
                               coco17_to_openpose18(kp33[list(BLAZEPOSE_TO_COCO17)]))
    assert len(BLAZEPOSE_TO_COCO17) == 17 and max(BLAZEPOSE_TO_COCO17) < 33


def test_draw_skeleton_colours_joints_and_skips_missing():
    kp = np.full((18, 2), -1, np.float32)
    blank = draw_skeleton(kp, (32, 32))
    assert blank.shape == (32, 32, 3) and blank.dtype == np.uint8 and blank.max() == 0
    kp[1] = (10, 10)
    kp[2] = (20, 10)
    img = draw_skeleton(kp, (32, 32), radius=1, thickness=1)
    assert tuple(img[10, 10]) == OPENPOSE18_COLOURS[1]
    assert tuple(img[10, 20]) == OPENPOSE18_COLOURS[2]
    assert tuple(img[10, 15]) == OPENPOSE18_COLOURS[OPENPOSE18_LIMBS.index((1, 2))]
    base = np.full((32, 32, 3), 200, np.uint8)
    over = draw_skeleton(kp, base)
    assert base.min() == 200  # input untouched
    assert tuple(over[0, 0]) == (200, 200, 200) and tuple(over[10, 10]) != (200, 200, 200)


def test_validate_keypoints_names_the_problem():
    kp = random_keypoints(np.random.default_rng(5), n_missing=0)
    out = validate_keypoints(kp)
    assert out.dtype == np.float32 and out.shape == (18, 2)
    with pytest.raises(ValueError, match="18 joints"):
        validate_keypoints(kp[:17])
    with pytest.raises(ValueError, match="shape"):
        validate_keypoints(kp.ravel())
    bad = kp.copy()
    bad[4] = (np.nan, 3)
    with pytest.raises(ValueError, match="r_wrist"):
        validate_keypoints(bad)
    bad = kp.copy()
    bad[7] = (-1, 3)
    with pytest.raises(ValueError, match="l_wrist"):
        validate_keypoints(bad)
    with pytest.raises(ValueError, match="visible"):
        validate_keypoints(np.full((18, 2), -1), min_visible=1)
    with pytest.raises(ValueError, match="outside"):
        validate_keypoints(kp * 10, size=(64, 48))
    # Any negative pair is normalised to (-1, -1).
    neg = kp.copy()
    neg[2] = (-3, -7)
    assert np.all(validate_keypoints(neg)[2] == -1)


def test_body_mask_covers_the_skeleton_and_nothing_far_away():
    from fashion_gans.data.pose import OPENPOSE18_LIMBS, keypoints_to_body_mask

    kp = np.full((18, 2), -1.0, np.float32)
    kp[[1, 2, 5, 8, 11, 0]] = [[32, 20], [24, 20], [40, 20], [26, 44], [38, 44], [32, 10]]
    mask = keypoints_to_body_mask(kp, (64, 64))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    for a, b in OPENPOSE18_LIMBS:
        if (kp[[a, b]] >= 0).all():
            for t in np.linspace(0, 1, 5):
                x, y = kp[a] * (1 - t) + kp[b] * t
                assert mask[int(round(y)), int(round(x))] == 1
    assert mask[32, 32] == 1  # the filled torso
    assert mask[60, 2] == 0 and mask[2, 60] == 0
    assert keypoints_to_body_mask(np.full((18, 2), -1.0), (16, 16)).sum() == 0
