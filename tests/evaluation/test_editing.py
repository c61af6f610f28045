"""Attribute-editing metrics: the do-nothing editor, the ground-truth editor (re-rendering the synthetic garment
with the requested attributes) and an editor that breaks the other attributes frame what the numbers mean."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from fashion_gans.data.attributes import FashionMNISTAttributes, SyntheticAttributeDataset
from fashion_gans.data.synthetic import _CONTRASTING, Garment
from fashion_gans.evaluation.editing import (
    EDIT_SUCCESS_BAR,
    OTHERS_KEPT_BAR,
    RECON_SSIM_BAR,
    AttributeReader,
    attribute_reader,
    copy_edit,
    edit_metrics,
    edit_targets,
)
from fashion_gans.models.attributes import code_to_indices
from fashion_gans.models.config import SYNTHETIC_EDIT_ATTRIBUTES

ATTRS = SYNTHETIC_EDIT_ATTRIBUTES


@pytest.fixture(scope="module")
def heldout():
    return SyntheticAttributeDataset(40, "test", size=64, seed=0)


@pytest.fixture(scope="module")
def batch(heldout):
    images = torch.stack([heldout[i]["image"] for i in range(len(heldout))])
    return images, heldout.labels


@pytest.fixture(scope="module")
def reader():
    return attribute_reader(ATTRS)


def _renderer(ds: SyntheticAttributeDataset, keep_others: bool = True):
    """Ground truth: the garment of each input re-rendered with the attributes of ``code``.  With
    ``keep_others=False`` every attribute not changed by the edit is also moved to another value."""
    by_pixels = {bytes(ds.images[i].numpy()): g for i, g in enumerate(ds.garments)}

    def edit(images: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        target = code_to_indices(code, ATTRS)
        out = []
        for x, t in zip(images, target):
            pixels = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            g = by_pixels[bytes(pixels.numpy())]
            values = {a: ATTRS[a][int(v)] for a, v in zip(ATTRS, t)}
            if not keep_others:
                for a, vs in ATTRS.items():
                    if values[a] == getattr(g, a):
                        values[a] = vs[(vs.index(values[a]) + 1) % len(vs)]
            pattern_colour = g.pattern_colour
            if pattern_colour not in _CONTRASTING[values["colour"]]:
                pattern_colour = _CONTRASTING[values["colour"]][0]
            out.append(ds.render(Garment(values["kind"], values["colour"], values["pattern"], pattern_colour)))
        return torch.stack(out)

    return edit


def test_edit_targets_cover_every_other_value_deterministically():
    idx = torch.tensor([[0, 1], [2, 0], [1, 1], [0, 0]] * 6)
    attrs = {"a": ["x", "y", "z"], "b": ["p", "q"]}
    edits = edit_targets(idx, attrs, targets_per_image=2)
    assert edits.shape == (24 * 2 * 2, 3)
    assert torch.equal(edits, edit_targets(idx, attrs, targets_per_image=2))
    # Never the image's own value; every (attribute, value) requested, about equally often.
    assert not (idx[edits[:, 0], edits[:, 1]] == edits[:, 2]).any()
    for k, values in enumerate(attrs.values()):
        counts = torch.bincount(edits[edits[:, 1] == k, 2], minlength=len(values))
        assert counts.min() > 0 and counts.max() <= 2 * counts.min()
    with pytest.raises(ValueError, match=r"attributes_idx must be \(N, 2\)"):
        edit_targets(torch.zeros(3, 3, dtype=torch.long), attrs)


def test_copy_editor_keeps_everything_and_edits_nothing(batch, reader):
    images, labels = batch
    m = edit_metrics(copy_edit, images, labels, ATTRS, reader)
    assert m["reader_accuracy"] == 1.0 and m["n_edits"] == 3 * len(images)
    assert m["edit_success"] == 0.0 and m["others_kept"] == 1.0
    assert m["recon_ssim"] > 0.999 and m["recon_l1"] == 0.0 and m["recon_kept"] == 1.0
    assert m["edit_success"] < EDIT_SUCCESS_BAR <= OTHERS_KEPT_BAR <= m["others_kept"]


def test_ground_truth_editor_clears_the_bars(heldout, batch, reader):
    images, labels = batch
    m = edit_metrics(_renderer(heldout), images, labels, ATTRS, reader, targets_per_image=2)
    assert m["n_edits"] == 2 * 3 * len(images)
    for a in ATTRS:
        assert m[f"edit_success_{a}"] >= 0.95, (a, m)
        assert m[f"others_kept_{a}"] >= 0.95, (a, m)
    assert m["edit_success"] >= EDIT_SUCCESS_BAR and m["others_kept"] >= OTHERS_KEPT_BAR
    assert m["recon_ssim"] > 0.999 and m["recon_l1"] < 1e-6 and m["recon_ssim"] > RECON_SSIM_BAR


def test_editor_that_changes_everything_fails_others_kept(heldout, batch, reader):
    images, labels = batch
    m = edit_metrics(_renderer(heldout, keep_others=False), images[:20], labels[:20], ATTRS, reader)
    assert m["edit_success"] >= 0.95  # the requested attribute lands...
    assert m["others_kept"] < 0.1  # ...but nothing else is kept
    assert m["recon_ssim"] < 0.9  # and "no change" changes the image


def test_reader_maps_values_by_name_and_checks_them(batch):
    from fashion_gans.evaluation.cache import cached_extractor

    images, labels = batch
    ext = cached_extractor("synthetic-attributes")
    # A model over a subset of the colours, in another order: read among those values only.
    subset = {"pattern": ["dots", "solid", "checks", "stripes"], "colour": ["blue", "red"]}
    r = AttributeReader(ext, subset)
    pred = r(images)
    truth_pattern = torch.tensor([subset["pattern"].index(ATTRS["pattern"][int(v)]) for v in labels[:, 1]])
    assert torch.equal(pred[:, 0], truth_pattern)
    assert set(pred[:, 1].tolist()) <= {0, 1}
    with pytest.raises(ValueError, match=r"'colour'.*\['white'\] are not classes"):
        AttributeReader(ext, {"colour": ["red", "white"]})
    with pytest.raises(ValueError, match="no shipped network reads the attribute"):
        attribute_reader({"sleeve": ["short", "long"]})


def test_bad_inputs_are_named(batch, reader):
    images, labels = batch
    with pytest.raises(ValueError, match=r"attributes_idx must be \(40, 3\)"):
        edit_metrics(copy_edit, images, labels[:, :2], ATTRS, reader)
    with pytest.raises(ValueError, match="edit_fn returned shape"):
        edit_metrics(lambda x, c: x[:, :1], images[:4], labels[:4], ATTRS, reader)
    with pytest.raises(ValueError, match=r"'pattern': value indices must be in \[0, 4\)"):
        edit_metrics(copy_edit, images[:2], torch.tensor([[0, 7, 0], [0, 0, 0]]), ATTRS, reader)


def test_fashion_mnist_class_editing(fashion_mnist_dir):
    if not os.path.isdir(fashion_mnist_dir):
        pytest.skip("Fashion-MNIST is not installed")
    ds = FashionMNISTAttributes(fashion_mnist_dir, "test", limit=200)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    reader = attribute_reader(ds.attributes)
    by_class = {c: images[ds.labels[:, 0] == c][0] for c in range(10)}

    def swap(x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:  # an image of the requested class
        return torch.stack([by_class[int(c)] for c in code.argmax(1)])

    copy = edit_metrics(copy_edit, images, ds.labels, ds.attributes, reader)
    swapped = edit_metrics(swap, images, ds.labels, ds.attributes, reader, targets_per_image=2)
    # A copy only "lands" where the classifier misreads the input as the requested class.
    assert copy["reader_accuracy"] > 0.85 and copy["edit_success"] < 0.05
    assert not any(k.startswith("others_kept") for k in copy)  # one attribute: nothing else to keep
    # Each class's example image is read as its class, so every swap lands when those examples are read right.
    examples_right = np.mean([int(reader(by_class[c][None])[0, 0]) == c for c in range(10)])
    assert swapped["edit_success"] == pytest.approx(examples_right, abs=0.15) and swapped["edit_success"] > 0.7
