"""DeepFashion In-shop: the synthetic writer's files in the real formats, read back by the real loader."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from fashion_gans.data.inshop import (
    ANNOTATION_FILES,
    ATTRIBUTES_FILE,
    PAIR_FILES,
    PARTITION_FILE,
    InShopImageDataset,
    InShopPoseDataset,
    InShopWriteConfig,
    parse_inshop_path,
    patn_name,
    read_patn_annotations,
    read_patn_pairs,
    write_synthetic_inshop,
)
from fashion_gans.data.io import DataError
from fashion_gans.data.pose import heatmaps_to_keypoints
from fashion_gans.data.synthetic import COLOURS, SyntheticWorld

DISK = (128, 128)
NAME_RE = re.compile(r"^img/(MEN|WOMEN)/[A-Za-z_]+/id_\d{8}/\d{2}_\d+_(front|side|back|full|additional|flat)\.jpg$")


@pytest.fixture(scope="module")
def inshop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inshop") / "inshop"
    cfg = InShopWriteConfig(identities=6, size=DISK, max_groups=2, poses_per_group=3, flat_fraction=0.5,
                            test_fraction=0.34, seed=1)
    write_synthetic_inshop(root, SyntheticWorld(seed=3), cfg)
    return root


@pytest.fixture(scope="module")
def attrs(inshop) -> dict:
    return json.loads((inshop / ATTRIBUTES_FILE).read_text())["images"]


def _posed_groups(attrs: dict, split: str) -> dict[tuple[str, str], list[str]]:
    groups = defaultdict(list)
    for key, a in attrs.items():
        if a["split"] == split and a["view"] != "flat" and a["has_iuv"]:
            groups[(a["item_id"], a["group"])].append(key)
    return groups


def _colour_fraction(image: torch.Tensor, mask: torch.Tensor, rgb) -> float:
    """Share of the body pixels (mask) whose colour is within 45 (RGB distance) of ``rgb``."""
    px = ((image.permute(1, 2, 0) + 1) * 127.5)[mask[0] > 0]
    return float((torch.linalg.norm(px - torch.tensor(rgb, dtype=torch.float32), dim=1) < 45).float().mean())


# ------------------------------------------------------------------------------------------------ format


def test_tree_is_in_the_real_release_format(inshop, attrs):
    jpgs = sorted(p.relative_to(inshop).as_posix() for p in (inshop / "img").rglob("*.jpg"))
    assert jpgs and all(NAME_RE.match(k) for k in jpgs)
    assert set(jpgs) == set(attrs)
    for key in jpgs:
        iuv = inshop / (key[:-4] + "_IUV.png")
        if attrs[key]["view"] == "flat":
            assert not iuv.exists()
        else:
            assert iuv.is_file() == attrs[key]["has_iuv"]
            png = np.asarray(Image.open(iuv))
            assert png.dtype == np.uint8 and png.shape == DISK + (3,)
    assert any(a["view"] == "flat" for a in attrs.values())

    lines = (inshop / PARTITION_FILE).read_text().splitlines()
    assert int(lines[0]) == len(lines) - 2 == len(jpgs)
    assert lines[1].split() == ["image_name", "item_id", "evaluation_status"]
    for line in lines[2:]:
        key, item, status = line.split()
        assert item == key.split("/")[3] and status in ("train", "query", "gallery")
        assert (status == "train") == (attrs[key]["split"] == "train")

    for split in ("train", "test"):
        header = (inshop / ANNOTATION_FILES[split]).read_text().splitlines()[0]
        assert header == "name:keypoints_y:keypoints_x"
        assert (inshop / PAIR_FILES[split]).read_text().splitlines()[0] == "from,to"


def test_patn_names_and_annotation_frame(inshop, attrs):
    assert patn_name("img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg") == \
        "fashionWOMENBlouses_Shirtsid0000000102_1front.jpg"
    ann = {}
    for split in ("train", "test"):
        ann.update(read_patn_annotations(inshop / ANNOTATION_FILES[split]))
    posed = [k for k, a in attrs.items() if a["view"] != "flat"]
    assert set(ann) == {patn_name(k) for k in posed}
    # The 256x176 frame: scale to height 256, cut the sides equally.
    s = 256 / DISK[0]
    cut = (DISK[1] * s - 176) / 2
    for key in posed:
        kp = np.asarray(attrs[key]["keypoints"], np.float32)
        vis = (kp >= 0).all(1)
        expect = np.stack([kp[:, 0] * s - cut, kp[:, 1] * s], 1)
        vis &= (expect[:, 0] >= 0) & (expect[:, 0] < 176)
        got = ann[patn_name(key)]
        assert np.all((got[~vis] == -1))
        assert np.abs(got[vis] - expect[vis]).max() <= 2.0


# ------------------------------------------------------------------------------------------------ pairs


@pytest.mark.parametrize("protocol", ["patn", "thesis"])
def test_pairs_show_the_same_person_and_outfit(inshop, attrs, protocol):
    # At the stored resolution: shrinking blends fine stripes and dots into colours of their own.
    ds = InShopPoseDataset(inshop, "train", "heatmap", DISK, protocol=protocol)
    assert ds.protocol == protocol and len(ds) == ds.n_pairs > 0
    variants = defaultdict(set)  # item -> top colours of all its groups
    for a in attrs.values():
        variants[a["item_id"]].add(a["top"]["colour"])
    checked = others = 0
    for i in range(0, len(ds), max(1, len(ds) // 16)):
        item = ds[i]
        a, b = attrs[item["source_path"]], attrs[item["target_path"]]
        assert item["source_path"] != item["target_path"]
        assert a["identity"] == b["identity"] and a["group"] == b["group"]
        assert a["top"]["colour"] == b["top"]["colour"]
        for side in ("source", "target"):
            # Measured on the pixels: the recorded top colour covers much of the body, the product's other
            # colour variants (other groups) much less.
            own = _colour_fraction(item[f"{side}_image"], item[f"{side}_mask"], a["top"]["rgb"])
            assert own >= 0.04, (item[f"{side}_path"], own)
            for colour in variants[a["item_id"]] - {a["top"]["colour"]}:
                other = _colour_fraction(item[f"{side}_image"], item[f"{side}_mask"], COLOURS[colour])
                assert other < own / 2, (item[f"{side}_path"], colour, other, own)
                others += 1
        checked += 1
    assert checked >= 8 and others >= 1


def test_groups_are_colour_variants_and_never_paired_across(inshop, attrs):
    tops = defaultdict(set)
    for a in attrs.values():
        tops[a["item_id"]].add((a["group"], a["top"]["colour"]))
    multi = [v for v in tops.values() if len({g for g, _ in v}) > 1]
    assert multi, "the fixture should have a product with two groups"
    for v in multi:
        assert len({c for _, c in v}) == len({g for g, _ in v})
    ds = InShopPoseDataset(inshop, "train", size=(32, 32), protocol="thesis")
    for a, b in ds.pairs:
        assert ds._records[a].group == ds._records[b].group


def test_thesis_pairs_in_both_directions_and_counted(inshop, attrs):
    for split in ("train", "test"):
        ds = InShopPoseDataset(inshop, split, "iuv", (32, 32), protocol="thesis")
        pairs = {(ds._records[a].key, ds._records[b].key) for a, b in ds.pairs}
        assert len(pairs) == len(ds.pairs)
        assert all((b, a) in pairs for a, b in pairs)
        groups = _posed_groups(attrs, split)
        assert len(ds) == 2 * sum(len(list(combinations(v, 2))) for v in groups.values())
        # PATN files list the same ordered pairs.
        patn = {(a, b) for a, b, _ in read_patn_pairs(inshop / PAIR_FILES[split])}
        assert patn == {(patn_name(a), patn_name(b)) for a, b in pairs}


def test_splits_are_identity_disjoint_and_deterministic(inshop, attrs):
    ids = {}
    for split in ("train", "test"):
        for protocol in ("patn", "thesis"):
            ds = InShopPoseDataset(inshop, split, size=(32, 32), protocol=protocol)
            keys = {ds._records[i].key for p in ds.pairs for i in p}
            ids[(split, protocol)] = {attrs[k]["identity"] for k in keys}
            again = InShopPoseDataset(inshop, split, size=(32, 32), protocol=protocol)
            assert again.pairs == ds.pairs
    for protocol in ("patn", "thesis"):
        train, test = ids[("train", protocol)], ids[("test", protocol)]
        assert train and test and not train & test
    assert ids[("train", "patn")] == ids[("train", "thesis")]
    # Without the partition file the fallback hash split is still disjoint by product.
    images = InShopImageDataset(inshop, "all", 16)
    by_split = {s: {r.item_id for r in InShopImageDataset(inshop, s, 16)._records} for s in ("train", "test")}
    assert not by_split["train"] & by_split["test"]
    assert len(images) == sum(len(InShopImageDataset(inshop, s, 16)) for s in ("train", "test"))


# ------------------------------------------------------------------------------------------------ content


@pytest.mark.parametrize("size", [(64, 64), (256, 176)])
def test_keypoints_heatmaps_and_masks_agree(inshop, attrs, size):
    ds = InShopPoseDataset(inshop, "test", "heatmap", size)
    s = size[0] / DISK[0]
    cut = (DISK[1] * s - size[1]) / 2
    for i in range(0, len(ds), max(1, len(ds) // 6)):
        item = ds[i]
        for side in ("source", "target"):
            kp = item[f"{side}_keypoints"].numpy()
            assert kp.shape == (18, 2)
            vis = (kp >= 0).all(1)
            assert vis.sum() >= 10
            rec = np.asarray(attrs[item[f"{side}_path"]]["keypoints"], np.float32)
            expect = np.stack([(rec[:, 0] + 0.5) * s - 0.5 - cut, (rec[:, 1] + 0.5) * s - 0.5], 1)
            assert np.abs(kp[vis] - expect[vis]).max() <= 1.5 * max(1.0, s)
            hm = item[f"{side}_pose"]
            assert hm.shape == (18,) + size and 0 <= hm.min() and hm.max() <= 1
            peaks = heatmaps_to_keypoints(hm.numpy())
            assert np.array_equal((peaks >= 0).all(1), vis)
            assert np.abs(peaks[vis] - kp[vis]).max() <= 1.0
            mask = item[f"{side}_mask"][0].numpy()
            assert mask.shape == size and set(np.unique(mask)) <= {0.0, 1.0}
            # Every joint peak lies on the body (mask dilated by 2 px for joints on the outline).
            dil = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(5))) > 0
            px = peaks[vis].astype(int)
            assert dil[px[:, 1], px[:, 0]].all()
            img = item[f"{side}_image"]
            assert img.shape == (3,) + size and -1 <= img.min() and img.max() <= 1


def test_iuv_is_resized_with_nearest(inshop):
    size = (50, 50)  # a non-integer scale: bilinear would blend part indices
    ds = InShopPoseDataset(inshop, "train", "iuv", size, protocol="thesis")
    item = ds[0]
    pose = item["target_pose"]
    assert pose.shape == (3,) + size and 0 <= pose.min() and pose.max() <= 1
    got = set(np.unique(np.round(pose[0].numpy() * 255).astype(int)))
    png = np.asarray(Image.open(inshop / (item["target_path"][:-4] + "_IUV.png")))
    original = set(np.unique(png[:, :, 0]).tolist())
    assert len(got) >= 3 and got <= original
    bilinear = np.asarray(Image.fromarray(png[:, :, 0]).resize(size[::-1], Image.BILINEAR))
    assert not set(np.unique(bilinear).tolist()) <= original  # the check above could fail
    assert torch.equal(item["target_mask"][0] > 0, pose[0] > 0)


def test_mask_from_keypoints_without_iuv(inshop, tmp_path):
    root = tmp_path / "noiuv"
    shutil.copytree(inshop, root)
    for p in root.rglob("*_IUV.png"):
        p.unlink()
    ds = InShopPoseDataset(root, "train", "heatmap", (64, 64), protocol="patn")
    with_iuv = InShopPoseDataset(inshop, "train", "heatmap", (64, 64), protocol="patn")
    item, ref = ds[0], with_iuv[0]
    assert item["target_path"] == ref["target_path"]
    mask, body = item["target_mask"][0] > 0, ref["target_mask"][0] > 0
    iou = (mask & body).sum() / (mask | body).sum()
    assert iou > 0.4 and 0.05 < mask.float().mean() < 0.6
    with pytest.raises(DataError, match="IUV"):
        InShopPoseDataset(root, "train", "iuv", (64, 64), protocol="patn")[0]
    # The thesis protocol needs the pose maps: no IUV, no posable image.
    assert len(InShopPoseDataset(root, "train", "heatmap", (64, 64), protocol="thesis")) == 0


# ------------------------------------------------------------------------------------------------ bad input


def test_missing_root_and_img_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        InShopPoseDataset(tmp_path / "nope")
    with pytest.raises(DataError, match="no img/ folder"):
        InShopPoseDataset(tmp_path)


def test_malformed_csv_rows_name_file_and_line(inshop, tmp_path):
    root = tmp_path / "badcsv"
    shutil.copytree(inshop, root)
    path = root / ANNOTATION_FILES["train"]
    lines = path.read_text().splitlines()
    good = lines[2]
    lines[2] = good.rsplit(":", 1)[0]  # line 3: a field missing
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"fasion-resize-annotation-train\.csv, line 3: expected 3"):
        InShopPoseDataset(root, "train")
    name, ys, xs = good.split(":")
    short = json.dumps(json.loads(ys)[:17])
    lines[2] = f"{name}:{short}:{xs}"  # 17 keypoints
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 3: keypoints_y has 17 keypoints, expected 18"):
        read_patn_annotations(path)
    pairs = root / PAIR_FILES["test"]
    plines = pairs.read_text().splitlines()
    plines.insert(2, "fashionWOMENDressesid0000009901_1front.jpg")
    pairs.write_text("\n".join(plines) + "\n")
    with pytest.raises(DataError, match=r"fasion-resize-pairs-test\.csv, line 3"):
        read_patn_pairs(pairs)
    plines[2] = "fashionWOMENDressesid0000009901_1front.jpg,fashionWOMENDressesid0000009901_2side.jpg"
    pairs.write_text("\n".join(plines) + "\n")
    path.write_text("\n".join([lines[0], good] + lines[3:]) + "\n")
    with pytest.raises(DataError, match=r"line 3: image fashionWOMENDressesid0000009901_1front\.jpg is not in"):
        InShopPoseDataset(root, "test")
    # A paired image without a keypoint row: an error when the dataset is built (naming the pair file and the
    # image), not an all-zero pose, and not only when the item is read mid-epoch.
    plines.pop(2)
    pairs.write_text("\n".join(plines) + "\n")
    test_ann = root / ANNOTATION_FILES["test"]
    tlines = test_ann.read_text().splitlines()
    dropped = tlines.pop(1).split(":")[0]
    test_ann.write_text("\n".join(tlines) + "\n")
    for encoding in ("heatmap", "iuv"):
        with pytest.raises(DataError, match=r"fasion-resize-pairs-test\.csv, line \d+: image "
                           + re.escape(dropped) + " has no keypoint row"):
            InShopPoseDataset(root, "test", encoding, (32, 32))


def test_corrupt_images_are_skipped_counted_and_warned_once(inshop, tmp_path):
    root = tmp_path / "corrupt"
    shutil.copytree(inshop, root)
    clean = InShopPoseDataset(root, "train", size=(32, 32), protocol="thesis")
    victim = clean._records[clean.pairs[0][0]].key
    n_using = sum(victim in (clean._records[a].key, clean._records[b].key) for a, b in clean.pairs)
    (root / victim).write_bytes(b"this is not a jpeg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = InShopPoseDataset(root, "train", size=(32, 32), protocol="thesis")
    relevant = [w for w in caught if "unreadable" in str(w.message)]
    assert len(relevant) == 1 and "skipped 1 unreadable" in str(relevant[0].message)
    assert ds.n_corrupt_images == 1 and ds.n_skipped_pairs == n_using
    assert len(ds) == len(clean) - n_using
    assert all(victim not in (ds._records[a].key, ds._records[b].key) for a, b in ds.pairs)
    # Without the build-time check, reading it fails loudly, naming the file.
    unchecked = InShopPoseDataset(root, "train", size=(32, 32), protocol="thesis", check_images="none")
    with pytest.raises(DataError, match=re.escape(Path(victim).name)):
        unchecked[0]
    # Many corrupt images are not "a few": an error.
    for a, b in clean.pairs[: len(clean.pairs) // 2]:
        (root / clean._records[b].key).write_bytes(b"")
    with pytest.raises(DataError, match="cannot be read"):
        InShopPoseDataset(root, "train", size=(32, 32), protocol="thesis")


def test_parse_inshop_path_rejects_other_layouts():
    p = parse_inshop_path("Img/MEN/Denim/id_00005608/01_3_back.jpg")
    assert (p.gender, p.category, p.item_id, p.group, p.index, p.view) == ("MEN", "Denim", "id_00005608", "01", 3, "back")
    with pytest.raises(DataError):
        parse_inshop_path("img/MEN/Denim/00005608/01_3_back.jpg")


# ------------------------------------------------------------------------------------------------ other sizes, Hub


def test_patn_frame_writer_at_256x176(tmp_path):
    root = tmp_path / "patn"
    cfg = InShopWriteConfig(identities=2, size=(256, 176), max_groups=1, poses_per_group=2, flat_fraction=0.0)
    summary = write_synthetic_inshop(root, SyntheticWorld(seed=5), cfg)
    assert summary.posed_images == 4 and summary.train_pairs == summary.test_pairs == 2
    attrs = json.loads((root / ATTRIBUTES_FILE).read_text())["images"]
    ann = read_patn_annotations(root / ANNOTATION_FILES["train"])
    for key, a in attrs.items():
        assert Image.open(root / key).size == (176, 256)
        if patn_name(key) in ann:  # same frame: the CSV holds the rendered keypoints, rounded
            kp = np.asarray(a["keypoints"], np.float32)
            vis = (kp >= 0).all(1)
            assert np.abs(ann[patn_name(key)][vis] - np.round(kp[vis])).max() <= 1.0
    ds = InShopPoseDataset(root, "train", size=(256, 176))
    assert len(ds) == 2 and ds[0]["source_image"].shape == (3, 256, 176)
    with pytest.raises(FileExistsError):
        write_synthetic_inshop(root, SyntheticWorld(seed=5), cfg)


def test_hub_round_trip_gives_the_same_items(inshop, tmp_path):
    from fashion_gans.data.hf import write_hf_dataset
    from fashion_gans.data.inshop import HF_FEATURES, iter_hf_records

    path = write_hf_dataset(tmp_path / "hub", {s: iter_hf_records(inshop, s) for s in ("train", "test")},
                            HF_FEATURES, "Synthetic In-shop pose pairs.")
    for split in ("train", "test"):
        files = InShopPoseDataset(inshop, split, "heatmap", (64, 64))
        hub = InShopPoseDataset.from_hf(path, split, pose_encoding="heatmap", size=(64, 64))
        assert sorted((files._records[a].key, files._records[b].key) for a, b in files.pairs) == \
            sorted((hub._records[a].key, hub._records[b].key) for a, b in hub.pairs)
        i = next(j for j, (a, b) in enumerate(hub.pairs)
                 if (hub._records[a].key, hub._records[b].key) ==
                 (files._records[files.pairs[0][0]].key, files._records[files.pairs[0][1]].key))
        x, y = files[0], hub[i]
        assert x["source_path"] == y["source_path"] and x["target_path"] == y["target_path"]
        for k in ("source_image", "target_image", "target_mask"):
            assert torch.equal(x[k], y[k]), k
        for k in ("target_keypoints", "target_pose"):
            assert torch.allclose(x[k], y[k], atol=0.02), k


def test_out_of_frame_keypoints_name_file_and_line(inshop, tmp_path):
    path = tmp_path / ANNOTATION_FILES["train"]
    lines = (inshop / ANNOTATION_FILES["train"]).read_text().splitlines()
    name, ys, xs = lines[3].split(":")
    bad_x = json.loads(xs)
    j = next(k for k, v in enumerate(bad_x) if v >= 0)
    bad_x[j] = 9999  # far outside the 176 px wide PATN frame: rejected, not silently dropped
    lines[3] = f"{name}:{ys}:{json.dumps(bad_x)}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"fasion-resize-annotation-train\.csv, line 4: joint \d+ of "
                       + re.escape(name.strip()) + r".*outside the 256x176 PATN frame"):
        read_patn_annotations(path)
    bad_x[j] = -3  # negative but not the -1 of a missing joint
    lines[3] = f"{name}:{ys}:{json.dumps(bad_x)}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 4"):
        read_patn_annotations(path)
    bad_x[j] = 175  # the last column is inside
    lines[3] = f"{name}:{ys}:{json.dumps(bad_x)}"
    path.write_text("\n".join(lines) + "\n")
    assert read_patn_annotations(path)[name.strip()][j, 0] == 175


def test_truncated_jpeg_is_skipped_at_build_time(inshop, tmp_path):
    root = tmp_path / "truncated"
    shutil.copytree(inshop, root)
    clean = InShopPoseDataset(root, "train", size=(32, 32), protocol="thesis")
    victim = clean._records[clean.pairs[0][0]].key
    data = (root / victim).read_bytes()
    (root / victim).write_bytes(data[: len(data) // 2])  # an interrupted download: a valid header, half the data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = InShopPoseDataset(root, "train", size=(32, 32), protocol="thesis")
    assert [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert ds.n_corrupt_images == 1 and re.search("truncated", ds.corrupt_images[0])
    assert all(victim not in (ds._records[a].key, ds._records[b].key) for a, b in ds.pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoded = InShopPoseDataset(root, "train", size=(32, 32), protocol="thesis", check_images="decode")
    assert decoded.pairs == ds.pairs and decoded.n_corrupt_images == 1


def test_default_product_split_is_an_exact_share(tmp_path):
    # No partition file, PATN files absent: the product-id split decides, with an exact share of the products.
    root = tmp_path / "nopart"
    cfg = InShopWriteConfig(identities=4, size=(32, 32), max_groups=1, poses_per_group=2, flat_fraction=0.0, seed=2)
    write_synthetic_inshop(root, SyntheticWorld(seed=3), cfg)
    (root / PARTITION_FILE).unlink()
    for f in (*ANNOTATION_FILES.values(), *PAIR_FILES.values()):
        (root / f).unlink()
    ids = {a["item_id"] for a in json.loads((root / ATTRIBUTES_FILE).read_text())["images"].values()}
    for percent, n_test in ((10.0, 1), (50.0, 2), (0.0, 0)):
        test = InShopImageDataset(root, "test", 16, test_percent=percent)
        train = InShopImageDataset(root, "train", 16, test_percent=percent)
        test_ids = {r.item_id for r in test._records}
        assert len(test_ids) == n_test and test_ids | {r.item_id for r in train._records} == ids
        pose_test = InShopPoseDataset(root, "test", "iuv", (16, 16), test_percent=percent) if n_test else None
        assert pose_test is None or pose_test.item_ids == test_ids
