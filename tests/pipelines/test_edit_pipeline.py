"""The attribute-editing pipeline on Fader Networks and IcGAN models: what it reads, the code it builds, what it
feeds the networks, and its errors.  Untrained small models check the wiring against the networks called directly;
the bundled trained models, when shipped, must clear the edit bars on held-out synthetic flats."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_gans.data.attributes import SyntheticAttributeDataset
from fashion_gans.data.fashion_mnist import CLASS_NAMES
from fashion_gans.data.io import tensor_to_pil
from fashion_gans.data.synthetic import Garment, SyntheticWorld
from fashion_gans.models import build_models, get_preset
from fashion_gans.models.attributes import attribute_code
from fashion_gans.models.sources import list_bundled
from fashion_gans.pipelines import PIPELINES, AttributeEditPipeline, EditResult, PipelineError, pipeline_for_task

SMALL = {
    "fader": ("fader_synthetic", {"image_size": 32, "enc_channels": (8, 16, 16)}, ("fader",)),
    "fader-gray": ("fader_fmnist", {"enc_channels": (8, 16)}, ("fader",)),
    "icgan": ("icgan_synthetic", {"image_size": 32, "z_dim": 8, "g_channels": (16, 8, 8), "d_channels": (8, 16),
                                  "e_channels": (8, 16)}, ("generator", "encoder_z", "encoder_y")),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("edit-models")
    out = {}
    for name, (preset, overrides, keep) in SMALL.items():
        torch.manual_seed(0)
        nets = build_models(get_preset(preset).replace(**overrides))
        folder = root / name
        for key in keep:
            nets[key].save_pretrained(folder / key)
        (folder / "bundle.json").write_text(json.dumps({"task": preset.split("_")[0], "preset": preset}))
        out[name] = folder
    return out


@pytest.fixture(scope="module")
def flat():
    """A held-out style product photo (navy checks shirt) and its attributes."""
    world = SyntheticWorld(5)
    g = Garment("shirt", "navy", "checks", "yellow")
    return Image.fromarray(world.render_flat(g, (64, 64))), {"colour": "navy", "pattern": "checks", "kind": "shirt"}


def test_registered_for_both_tasks(models):
    assert PIPELINES["fader"] is PIPELINES["icgan"] is AttributeEditPipeline
    assert pipeline_for_task("icgan") is AttributeEditPipeline
    fader = AttributeEditPipeline.from_pretrained(models["fader"], device="cpu")
    icgan = AttributeEditPipeline.from_pretrained(str(models["icgan"]), device="cpu")
    assert (fader.task, icgan.task) == ("fader", "icgan")
    # The attributes come back in training order (the order of the code blocks), not sorted by name.
    assert list(fader.attributes) == ["colour", "pattern", "kind"] and fader.size == (32, 32)
    assert not fader.has_attribute_network() and icgan.has_attribute_network()


def test_fader_reads_the_input_and_decodes_the_edited_code(models, flat):
    image, truth = flat
    pipe = AttributeEditPipeline.from_pretrained(models["fader"], device="cpu")
    result = pipe(image, {"colour": "red", "kind": "tshirt"})
    assert isinstance(result, EditResult) and result.image.size == (32, 32) and result.image.mode == "RGB"
    # No attribute network in a Fader model: the shipped synthetic-attributes network reads the photo.
    assert result.attributes_read == truth
    attrs = pipe.attributes
    want = attribute_code(torch.tensor([[attrs["colour"].index("red"), attrs["pattern"].index("checks"),
                                         attrs["kind"].index("tshirt")]]), attrs)[0]
    assert torch.equal(result.code, want)
    # The image is the network's decode of the prepared input with that code.
    x = pipe.prepare(image)
    direct = pipe.network("fader")(x, want[None])
    assert np.array_equal(np.asarray(result.image), np.asarray(tensor_to_pil(direct[0])))


def test_amounts_blend_per_attribute(models, flat):
    image, truth = flat
    pipe = AttributeEditPipeline.from_pretrained(models["fader"], device="cpu")
    attrs = pipe.attributes
    half = pipe(image, {"colour": "red", "pattern": "dots"}, {"colour": 0.25, "pattern": 1.5})
    colour, pattern, kind = torch.split(half.code, [len(v) for v in attrs.values()])
    assert colour[attrs["colour"].index("navy")] == pytest.approx(0.75)
    assert colour[attrs["colour"].index("red")] == pytest.approx(0.25)
    assert pattern[attrs["pattern"].index("dots")] == pytest.approx(1.5)  # beyond the simplex
    assert pattern[attrs["pattern"].index("checks")] == pytest.approx(-0.5)
    assert kind[attrs["kind"].index("shirt")] == 1.0
    # Amount 0 everywhere is the reconstruction: the same image as no edit at all.
    none = pipe(image)
    zero = pipe(image, {"colour": "red"}, {"colour": 0.0})
    assert np.array_equal(np.asarray(none.image), np.asarray(zero.image))
    assert not np.array_equal(np.asarray(none.image), np.asarray(pipe(image, {"colour": "red"}).image))


def test_icgan_reads_with_its_own_encoder(models, flat):
    image, _ = flat
    pipe = AttributeEditPipeline.from_pretrained(models["icgan"], device="cpu")
    ey = pipe.network("encoder_y")
    attrs = pipe.attributes
    # Make E_y read "beige, dots, skirt" whatever the image: the pipeline must use it, not the shipped network.
    wanted = {"colour": "beige", "pattern": "dots", "kind": "skirt"}
    bias = attribute_code(torch.tensor([[attrs[a].index(v) for a, v in wanted.items()]]), attrs)[0] * 10
    saved = {k: v.clone() for k, v in ey.head.state_dict().items()}
    try:
        with torch.no_grad():
            ey.head.weight.zero_()
            ey.head.bias.copy_(bias)
        result = pipe(image, {"pattern": "solid"})
        assert result.attributes_read == wanted
        assert pipe(image, reader="extractor").attributes_read == flat[1]
        # Given attributes win over reading.
        assert pipe(image, reader={"colour": "red"}).attributes_read == {**wanted, "colour": "red"}
    finally:
        ey.head.load_state_dict(saved)
    x = pipe.prepare(image)
    direct = pipe.network("generator")(pipe.network("encoder_z")(x), result.code[None])
    assert np.array_equal(np.asarray(result.image), np.asarray(tensor_to_pil(direct[0])))


def test_grey_model_gets_fashion_mnist_like_input(models):
    pipe = AttributeEditPipeline.from_pretrained(models["fader-gray"], device="cpu")
    assert list(pipe.attributes) == ["class"] and pipe.channels == 1
    photo = Image.new("RGB", (50, 80), (250, 250, 250))
    photo.paste((20, 20, 20), (10, 10, 40, 70))  # a dark object on white
    x = pipe.prepare(photo)
    assert x.shape == (1, 1, 32, 32)
    # Inverted: the light background becomes the black margin, the dark object (grey 20) light (255 - 20).
    assert float(x[0, 0, 0, 0]) == pytest.approx(-1.0, abs=0.05)
    assert float(x[0, 0, 16, 16]) == pytest.approx(235 / 127.5 - 1, abs=1e-4)
    result = pipe(photo, {"class": "Bag"}, reader={"class": "Trouser"})
    assert result.image.mode == "L" and result.image.size == (32, 32)
    assert result.attributes_read == {"class": "Trouser"}
    assert result.code.argmax().item() == CLASS_NAMES.index("Bag")


def test_grey_model_reads_fashion_mnist_images_with_the_classifier(models, fashion_mnist_dir):
    import os

    if not os.path.isdir(fashion_mnist_dir):
        pytest.skip("Fashion-MNIST is not installed")
    from fashion_gans.data.fashion_mnist import load_fashion_mnist

    images, labels = load_fashion_mnist(fashion_mnist_dir, "test")
    pipe = AttributeEditPipeline.from_pretrained(models["fader-gray"], device="cpu")
    # A 28 px Fashion-MNIST image goes in exactly as the dataset pads it (no inversion: it is light on black).
    x = pipe.prepare(Image.fromarray(images[0]))
    assert torch.equal(x[0, 0, 2:30, 2:30], torch.tensor(images[0]).float() / 127.5 - 1)
    read = [pipe(Image.fromarray(images[i])).attributes_read["class"] for i in range(20)]
    assert sum(r == CLASS_NAMES[labels[i]] for i, r in enumerate(read)) >= 17


def test_errors_name_the_problem(models, flat, tmp_path):
    image, _ = flat
    pipe = AttributeEditPipeline.from_pretrained(models["fader"], device="cpu")
    with pytest.raises(ValueError, match=r"unknown attribute 'sleeve'.*\['colour', 'pattern', 'kind'\]"):
        pipe(image, {"sleeve": "long"})
    with pytest.raises(ValueError, match=r"unknown value 'white' of attribute 'colour'; valid values: \['red'"):
        pipe(image, {"colour": "white"})
    with pytest.raises(ValueError, match=r"amount of 'colour' must be in \[0, 1.5\], got 2.0"):
        pipe(image, {"colour": "red"}, {"colour": 2})
    with pytest.raises(ValueError, match="amount for unknown attribute 'size'"):
        pipe(image, {"colour": "red"}, {"size": 1})
    with pytest.raises(PipelineError, match="has no attribute network"):
        pipe(image, reader="model")
    with pytest.raises(PipelineError, match="reader 'mine'"):
        pipe(image, reader="mine")
    # A model of another tool.
    nets = build_models(get_preset("cyclegan_small"))
    for key in ("gen_ab", "gen_ba"):
        nets[key].save_pretrained(tmp_path / "style" / key)
    with pytest.raises(PipelineError, match="is a 'style' model.*needs an attribute-editing model"):
        AttributeEditPipeline.from_pretrained(tmp_path / "style", device="cpu")


def _bundled_edit_metrics(name: str) -> dict[str, float]:
    """Edit metrics of a bundled editor on 48 held-out flats (designs its training seed held out)."""
    from fashion_gans.evaluation.editing import attribute_reader, edit_metrics

    assert name in list_bundled(), f"{name} is not bundled"
    pipe = AttributeEditPipeline.from_pretrained(name, device="cpu")
    seed = int(pipe.meta.get("train", {}).get("seed", 0))
    ds = SyntheticAttributeDataset(48, "test", size=pipe.size[0], seed=seed, attributes=pipe.attributes)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    return edit_metrics(pipe.edit_tensor, images, ds.labels, pipe.attributes, attribute_reader(pipe.attributes))


@pytest.mark.parametrize("name", ["fader-synthetic", "icgan-synthetic"])
def test_bundled_editors_clear_the_bars_on_heldout_flats(name):
    from fashion_gans.evaluation.editing import EDIT_SUCCESS_BAR, OTHERS_KEPT_BAR, RECON_SSIM_BAR

    m = _bundled_edit_metrics(name)
    assert m["edit_success"] >= EDIT_SUCCESS_BAR and m["others_kept"] >= OTHERS_KEPT_BAR, m
    assert m["recon_ssim"] > RECON_SSIM_BAR, m
