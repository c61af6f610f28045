"""Render the web demo's example images into ``fashion_gans/assets/examples/``.

    python scripts/make_examples.py [--out DIR] [--fashion-mnist DIR]

* ``persons/``: synthetic-world people on white in several poses (pose-transfer inputs, In-shop style);
* ``references/``: larger synthetic people whose pose BlazePose finds (pose-from-a-photo examples);
* ``scenes/``: synthetic people in LookBook-style street scenes (garment-extraction inputs);
* ``shoes/`` and ``bags/``: synthetic shoes and handbags (style-matching inputs);
* ``fmnist/``: Fashion-MNIST test-split sneakers, sandals, ankle boots and bags (28 px, as in the data set);
* ``flats/``: synthetic product photos ("flats") of several colours, patterns and kinds at 64 px, as the
  attribute-editing models (Fader Networks, IcGAN) train on them; each is a design the attribute data set holds
  out of training for seed 0 when one of its pattern colours is (the index records which);
* ``fmnist_clothes/``: Fashion-MNIST test-split T-shirt, trouser and dress (inputs of class-editing models).

Everything is deterministic (fixed seeds and indices) and small (well under 1 MB in all); files are written
atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fashion_gans.data.io import atomic_path, save_image  # noqa: E402
from fashion_gans.data.synthetic import ACCESSORY_SHAPES, SyntheticWorld  # noqa: E402

DEFAULT_OUT = ROOT / "fashion_gans" / "assets" / "examples"
#: Identities of the world of seed 1000 (not the training worlds' seed 0) and the pose index each is shown in.
PERSONS = ((0, 0), (1, 3), (2, 6), (5, 0), (7, 4), (9, 1))
REFERENCES = ((0, 4), (2, 5), (3, 3))  # (identity, pose index): arms raised, hands on hips, walking
SCENES = (0, 3, 4, 8)
STYLES = (0, 1, 2, 5)
#: Fashion-MNIST test-split classes: 5 sandal, 7 sneaker, 9 ankle boot; 8 bag.
FMNIST_CLASSES = {"sandal": 5, "sneaker": 7, "ankle_boot": 9, "bag": 8}
#: Attribute-editing examples: (kind, colour, pattern) of synthetic flats, spread over the attributes' values.
FLATS = (("tshirt", "red", "solid"), ("shirt", "navy", "stripes"), ("dress", "green", "dots"),
         ("sweater", "yellow", "checks"), ("trousers", "grey", "solid"), ("skirt", "pink", "stripes"))
FLAT_SIZE = 64
#: Fashion-MNIST test-split classes shown in the attribute-editing tab: 0 T-shirt/top, 1 trouser, 3 dress.
FMNIST_CLOTHES = {"tshirt": 0, "trouser": 1, "dress": 3}


def _flat_garment(kind: str, colour: str, pattern: str):
    """The garment of a flat example: the first contrasting pattern colour whose design the seed-0 attribute data
    set holds out of training (else the first one), and whether it is held out."""
    from fashion_gans.data import synthetic as sw
    from fashion_gans.data.attributes import SyntheticAttributeDataset

    data = SyntheticAttributeDataset(1, "test", size=16, seed=0)
    options = sw._CONTRASTING[colour]
    for pattern_colour in options:
        garment = sw.Garment(kind, colour, pattern, pattern_colour)
        if data.is_test_design(garment):
            return garment, True
    return sw.Garment(kind, colour, pattern, options[0]), False


def _save(img: np.ndarray | Image.Image, path: Path) -> dict:
    save_image(img if isinstance(img, Image.Image) else Image.fromarray(img), path, optimize=True)
    return {"file": path.name}


def make_examples(out: Path, fashion_mnist: Path | None, seed: int = 1000) -> dict[str, list[dict]]:
    world = SyntheticWorld(seed)
    index: dict[str, list[dict]] = {k: [] for k in ("persons", "references", "scenes", "shoes", "bags", "fmnist",
                                                    "flats", "fmnist_clothes")}
    for identity, k in PERSONS:
        pose = world.pose(identity, k)
        render = world.render_person(world.person(identity), pose, (128, 128))
        entry = _save(render.image, out / "persons" / f"person_{identity}_{pose.name}.png")
        index["persons"].append({**entry, "pose": pose.name, "identity": identity})
    for identity, k in REFERENCES:
        pose = world.pose(identity, k)
        render = world.render_person(world.person(identity), pose, (256, 256), background="studio")
        entry = _save(render.image, out / "references" / f"reference_{pose.name}.png")
        index["references"].append({**entry, "pose": pose.name,
                                    "keypoints": np.round(render.keypoints, 2).tolist()})
    for identity in SCENES:
        person = world.person(identity)
        render = world.render_person(person, world.pose(identity, 0), (128, 128), background="scene",
                                     background_seed=identity)
        entry = _save(render.image, out / "scenes" / f"scene_{identity}_{person.top.kind}.png")
        index["scenes"].append({**entry, "top": person.top.attributes()})
    for j in STYLES:
        style = world.accessory_style(j)
        shoe = world.render_shoe(style, ACCESSORY_SHAPES["shoe"][j % len(ACCESSORY_SHAPES["shoe"])], (64, 64))
        bag = world.render_bag(style, ACCESSORY_SHAPES["bag"][j % len(ACCESSORY_SHAPES["bag"])], (64, 64))
        index["shoes"].append({**_save(shoe, out / "shoes" / f"shoe_{j}_{style.colour}.png"),
                               "style": style.attributes()})
        index["bags"].append({**_save(bag, out / "bags" / f"bag_{j}_{style.colour}.png"),
                              "style": style.attributes()})
    for kind, colour, pattern in FLATS:
        garment, held_out = _flat_garment(kind, colour, pattern)
        flat = world.render_flat(garment, (FLAT_SIZE, FLAT_SIZE))
        entry = _save(flat, out / "flats" / f"flat_{colour}_{pattern}_{kind}.png")
        index["flats"].append({**entry, "colour": colour, "pattern": pattern, "kind": kind,
                               "pattern_colour": garment.pattern_colour, "held_out_seed_0": held_out})
    if fashion_mnist is not None:
        from fashion_gans.data.fashion_mnist import load_fashion_mnist

        images, labels = load_fashion_mnist(fashion_mnist, "test")
        for name, cls in FMNIST_CLASSES.items():
            picks = np.nonzero(labels == cls)[0][: 2 if name == "bag" else 1]
            for i in picks:
                index["fmnist"].append({**_save(images[i], out / "fmnist" / f"fmnist_{name}_{int(i)}.png"),
                                        "class": name, "test_index": int(i)})
        for name, cls in FMNIST_CLOTHES.items():
            i = int(np.nonzero(labels == cls)[0][0])
            index["fmnist_clothes"].append({**_save(images[i], out / "fmnist_clothes" / f"fmnist_{name}_{i}.png"),
                                            "class": name, "test_index": i})
    with atomic_path(out / "index.json") as tmp:
        tmp.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                        help="folder of the Fashion-MNIST idx files (skipped when missing)")
    args = parser.parse_args(argv)
    fm = args.fashion_mnist if args.fashion_mnist.is_dir() else None
    index = make_examples(args.out, fm)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{sum(len(v) for v in index.values())} examples in {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
