"""LookBook (+ In-shop flat items): the synthetic writer's files in the real format, read back by the loader."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_gans.data.inshop import ATTRIBUTES_FILE as INSHOP_ATTRIBUTES
from fashion_gans.data.inshop import InShopPoseDataset, InShopWriteConfig, write_synthetic_inshop
from fashion_gans.data.io import DataError
from fashion_gans.data.lookbook import (
    ATTRIBUTES_FILE,
    LookBookDataset,
    LookBookWriteConfig,
    lookbook_name,
    parse_lookbook_name,
    squarify,
    write_synthetic_lookbook,
)
from fashion_gans.data.synthetic import SyntheticWorld

NAME_RE = re.compile(r"^PID\d{6}_CLEAN[01]_IID\d{6}\.jpg$")
SIZE = 96


@pytest.fixture(scope="module")
def lookbook(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lookbook") / "lookbook"
    cfg = LookBookWriteConfig(products=8, persons_per_product=3, size=(SIZE, SIZE), nonsquare_fraction=0.5)
    write_synthetic_lookbook(root, SyntheticWorld(seed=7), cfg)
    return root


@pytest.fixture(scope="module")
def attrs(lookbook) -> dict:
    return json.loads((lookbook / ATTRIBUTES_FILE).read_text())["images"]


@pytest.fixture(scope="module")
def inshop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inshop_flat") / "inshop"
    cfg = InShopWriteConfig(identities=5, size=(SIZE, SIZE), max_groups=1, poses_per_group=2, flat_fraction=1.0,
                            test_fraction=0.4)
    write_synthetic_inshop(root, SyntheticWorld(seed=7), cfg)
    return root


def _pid(product_id: str) -> int:
    return int(product_id.split("PID")[1])


def _colour_fraction(image: torch.Tensor, rgb, mask: torch.Tensor | None = None) -> float:
    px = ((image.permute(1, 2, 0) + 1) * 127.5).reshape(-1, 3)
    if mask is not None:
        px = px[mask.reshape(-1)]
    return float((torch.linalg.norm(px - torch.tensor(rgb, dtype=torch.float32), dim=1) < 45).float().mean())


def _torso_box(person: dict, size: int) -> torch.Tensor:
    """Mask of the shoulder-hip box of a person photo after padding to a square and resizing to ``size``."""
    h, w = person["size"]
    side = max(h, w)
    kp = np.asarray(person["keypoints"], np.float32)[[2, 5, 8, 11]]  # shoulders, hips
    assert (kp >= 0).all()
    kp = (kp + [(side - w) / 2, (side - h) / 2]) * size / side
    x0, y0 = kp.min(0)
    x1, y1 = kp.max(0)
    cx, r = (x0 + x1) / 2, max(2.0, (x1 - x0) / 2 - 1)  # side views have shoulders and hips stacked
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[int(y0) + 1: int(y1), int(round(cx - r)): int(round(cx + r)) + 1] = True
    return mask


def test_files_follow_the_lookbook_naming(lookbook, attrs):
    names = sorted(p.name for p in (lookbook / "ImgHQ").iterdir())
    assert names and all(NAME_RE.match(n) for n in names) and set(names) == set(attrs)
    iids = [parse_lookbook_name(n)[2] for n in names]
    assert len(set(iids)) == len(iids)  # IID numbers every image once
    per_pid: dict[int, list[bool]] = {}
    for n in names:
        pid, clean, _ = parse_lookbook_name(n)
        per_pid.setdefault(pid, []).append(clean)
    assert len(per_pid) == 8 and all(v.count(True) == 1 and v.count(False) == 3 for v in per_pid.values())
    assert lookbook_name(12, True, 345) == "PID000012_CLEAN1_IID000345.jpg"
    sizes = {Image.open(lookbook / "ImgHQ" / n).size for n in names if "_CLEAN0_" in n}
    assert (SIZE, SIZE) in sizes and any(w < h for w, h in sizes)  # some person photos are not square
    with pytest.raises(DataError):
        parse_lookbook_name("PID12_CLEAN1_IID345.jpg")


def test_pairs_are_the_worn_garment_and_its_product_shot(lookbook, attrs):
    train = LookBookDataset(lookbook, "train", SIZE, test_percent=30)
    assert len(train) == train.n_pairs == sum(3 for _ in train.products)
    checked = 0
    for i in range(len(train)):
        item = train[i]
        person, product = attrs[Path(item["person_path"]).name], attrs[Path(item["product_path"]).name]
        assert person["clean"] == 0 and product["clean"] == 1
        assert person["pid"] == product["pid"] == _pid(item["product_id"])
        assert person["garment"] == product["garment"]
        if product["garment"]["pattern"] != "solid":
            # Fine patterns blend into other colours once a 256 px photo is resized to 64 px: the pixel
            # checks below are made on the solid garments.
            continue
        checked += 1
        rgb = product["garment"]["rgb"]
        # Measured on the pixels: the garment colour is on the product shot and on the person.
        garment_px = (item["product_image"] < 0.9).any(dim=0)  # everything but the white background
        assert _colour_fraction(item["product_image"], rgb, garment_px) > 0.5
        torso = _torso_box(person, SIZE)
        on_person = _colour_fraction(item["person_image"], rgb, torso)
        assert on_person > 0.04, (item["person_path"], on_person)
        neg = attrs[Path(item["unassociated_product_path"]).name]
        # Dark negatives are left out of the person check: hair, shoes and scene shadows share those colours.
        if neg["garment"]["colour"] != product["garment"]["colour"] and max(neg["garment"]["rgb"]) > 80:
            assert _colour_fraction(item["person_image"], neg["garment"]["rgb"], torso) < on_person / 2
            assert _colour_fraction(item["unassociated_product_image"], rgb) < _colour_fraction(
                item["product_image"], rgb)
    assert checked >= 2 * 3, "too few solid garments in the fixture for the pixel checks to mean anything"


def test_split_is_disjoint_by_product_and_covers_all(lookbook):
    train = LookBookDataset(lookbook, "train", SIZE, test_percent=30)
    test = LookBookDataset(lookbook, "test", SIZE, test_percent=30)
    a, b = {p.product_id for p in train.products}, {p.product_id for p in test.products}
    assert a and b and not a & b and len(a | b) == 8
    assert {person for _, person, _ in train.pairs}.isdisjoint({person for _, person, _ in test.pairs})
    assert LookBookDataset(lookbook, "train", SIZE, test_percent=30).pairs == train.pairs


def test_unassociated_products_differ_and_change_across_epochs(lookbook, attrs):
    ds = LookBookDataset(lookbook, "train", SIZE, test_percent=30, seed=3)
    for i in range(len(ds)):
        item = ds[i]
        assert item["unassociated_product_id"] != item["product_id"]
        assert attrs[Path(item["unassociated_product_path"]).name]["clean"] == 1
        assert _pid(item["unassociated_product_id"]) == attrs[Path(item["unassociated_product_path"]).name]["pid"]
    # The negative image is that product's shot, loaded like any product shot.
    item = ds[0]
    other = next(j for j in range(len(ds)) if ds[j]["product_path"] == item["unassociated_product_path"])
    assert torch.equal(item["unassociated_product_image"], ds[other]["product_image"])
    # Same epoch: same negatives; new epochs: new ones.
    first = [ds.unassociated(i) for i in range(len(ds))]
    assert first == [ds.unassociated(i) for i in range(len(ds))]
    per_epoch = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        per_epoch.append([ds.unassociated(i)[1] for i in range(len(ds))])
    assert len({tuple(e) for e in per_epoch}) == 6
    assert len({e[0] for e in per_epoch}) > 1


def test_squarify_at_load_time_leaves_files_untouched(lookbook):
    folder = lookbook / "ImgHQ"
    portrait = next(p for p in sorted(folder.iterdir()) if Image.open(p).size[0] < Image.open(p).size[1])
    digest = hashlib.sha256(portrait.read_bytes()).hexdigest()
    ds = LookBookDataset(lookbook, "train", SIZE, test_percent=0)
    i = next(j for j, (_, person, _) in enumerate(ds.pairs) if person.endswith(portrait.name))
    img = ds[i]["person_image"]
    assert img.shape == (3, SIZE, SIZE)
    w, h = Image.open(portrait).size
    bar = int((h - w) / 2 * SIZE / h) - 1
    assert bar >= 2
    assert img[:, :, :bar].min() > 0.95 and img[:, :, -bar:].min() > 0.95  # white bars left and right
    assert hashlib.sha256(portrait.read_bytes()).hexdigest() == digest
    cropped = LookBookDataset(lookbook, "train", SIZE, test_percent=0, squarify=False)[i]["person_image"]
    assert not torch.equal(cropped, img)
    sq = squarify(Image.new("RGB", (30, 60), (0, 0, 0)))
    assert sq.size == (60, 60) and sq.getpixel((0, 0)) == (255, 255, 255) and sq.getpixel((30, 30)) == (0, 0, 0)


def test_inshop_flat_items_augment_the_pairs(lookbook, inshop):
    alone = LookBookDataset(lookbook, "train", SIZE, test_percent=30)
    both = LookBookDataset(lookbook, "train", SIZE, inshop_root=inshop, test_percent=30)
    extra = [p for p in both.products if p.source == "inshop"]
    assert extra and len(both) == len(alone) + sum(len(p.persons) * len(p.flats) for p in extra)
    iattrs = json.loads((inshop / INSHOP_ATTRIBUTES).read_text())["images"]
    for i, (k, person, flat) in enumerate(both.pairs):
        if both.products[k].source != "inshop":
            continue
        a, b = iattrs[person[len("inshop/"):]], iattrs[flat[len("inshop/"):]]
        assert b["view"] == "flat" and a["view"] != "flat"
        assert (a["item_id"], a["group"]) == (b["item_id"], b["group"]) and a["top"] == b["top"]
        assert a["split"] == b["split"] == "train"
        item = both[i]
        assert item["source"] == "inshop" and item["product_image"].shape == (3, SIZE, SIZE)
    # In-shop products keep the In-shop split: none of the pose-transfer test products is used for training.
    pose_test = InShopPoseDataset(inshop, "test", size=(32, 32)).item_ids
    assert pose_test and not {p.product_id.split(":")[1].split("/")[0] for p in extra} & pose_test
    # In-shop alone works too.
    only = LookBookDataset(None, "train", SIZE, inshop_root=inshop)
    assert only.products and all(p.source == "inshop" for p in only.products)


def test_bad_input(lookbook, tmp_path):
    with pytest.raises(DataError, match="not found"):
        LookBookDataset(tmp_path / "nope")
    with pytest.raises(DataError, match="no LookBook images"):
        LookBookDataset(tmp_path)
    root = tmp_path / "corrupt"
    shutil.copytree(lookbook, root)
    clean = LookBookDataset(root, "train", SIZE, test_percent=30)
    victim = clean.pairs[0][1]
    (root / victim).write_bytes(b"\xff\xd8 truncated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = LookBookDataset(root, "train", SIZE, test_percent=30)
    relevant = [w for w in caught if "unreadable" in str(w.message)]
    assert len(relevant) == 1 and "skipped 1 unreadable" in str(relevant[0].message)
    assert ds.n_corrupt_images == 1 and ds.n_skipped_pairs == 1 and len(ds) == len(clean) - 1
    assert all(person != victim for _, person, _ in ds.pairs)
    unchecked = LookBookDataset(root, "train", SIZE, test_percent=30, check_images="none")
    with pytest.raises(DataError, match=Path(victim).name):
        unchecked[0]


def test_hub_round_trip_gives_the_same_items(lookbook, inshop, tmp_path):
    from fashion_gans.data.hf import write_hf_dataset
    from fashion_gans.data.lookbook import HF_FEATURES, iter_hf_records

    kw = dict(inshop_root=inshop, test_percent=30)
    path = write_hf_dataset(tmp_path / "hub", {s: iter_hf_records(lookbook, s, **kw) for s in ("train", "test")},
                            HF_FEATURES, "Synthetic LookBook garment-extraction pairs.")
    for split in ("train", "test"):
        files = LookBookDataset(lookbook, split, SIZE, **kw)
        hub = LookBookDataset.from_hf(path, split, size=SIZE)
        assert sorted((p, f) for _, p, f in files.pairs) == sorted((p, f) for _, p, f in hub.pairs)
        assert {p.product_id for p in files.products} == {p.product_id for p in hub.products}
        x = files[0]
        j = next(i for i, (_, p, f) in enumerate(hub.pairs) if (p, f) == (x["person_path"], x["product_path"]))
        y = hub[j]
        assert torch.equal(x["person_image"], y["person_image"]) and torch.equal(x["product_image"], y["product_image"])
        assert y["unassociated_product_id"] != y["product_id"]


def test_default_split_of_a_small_render_has_test_products(tmp_path):
    # 12 products at the default 10 %: a crc32 threshold left the test split empty; an exact share does not.
    root = tmp_path / "small"
    write_synthetic_lookbook(root, SyntheticWorld(seed=2),
                             LookBookWriteConfig(products=12, persons_per_product=1, size=(32, 32)))
    test = LookBookDataset(root, "test", 16)
    train = LookBookDataset(root, "train", 16)
    test_ids = {p.product_id for p in test.products}
    assert len(test_ids) == 2  # round(1.2) = 1, raised to the two that unassociated negatives need
    assert not test_ids & {p.product_id for p in train.products}
    assert len(test_ids) + len(train.products) == 12


def test_truncated_jpeg_is_found_at_build_time(lookbook, tmp_path):
    root = tmp_path / "truncated"
    shutil.copytree(lookbook, root)
    clean = LookBookDataset(root, "train", SIZE, test_percent=30)
    victim = clean.pairs[0][1]
    data = (root / victim).read_bytes()
    (root / victim).write_bytes(data[: len(data) // 2])
    for check in ("header", "decode"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = LookBookDataset(root, "train", SIZE, test_percent=30, check_images=check)
        assert len([w for w in caught if "unreadable" in str(w.message)]) == 1
        assert ds.n_corrupt_images == 1 and ds.n_skipped_pairs == 1 and len(ds) == len(clean) - 1
        assert all(person != victim for _, person, _ in ds.pairs)
