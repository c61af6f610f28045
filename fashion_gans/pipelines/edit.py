"""Attribute editing: an image + new attribute values (sliders) -> the edited image (Fader Networks or IcGAN).

The model's config lists its attributes and their values (``config.attributes``: e.g. colour, pattern and kind of a
synthetic product photo, or the Fashion-MNIST class).  An edit:

1. the image is fitted to the model's frame as the other pipelines do it (one-channel Fashion-MNIST models get a
   light-on-black image with Fashion-MNIST's 2 px margin; a photo on a light background is inverted);
2. its current attributes are read: by the model's own attribute network when it has one (IcGAN's ``E_y``),
   otherwise by the shipped domain network (``synthetic-attributes`` for colour / pattern / kind,
   ``fmnist-classifier`` for the class), or given by the caller;
3. the source code (one-hot blocks of the read values) and the target code (the requested values) are blended per
   attribute, ``(1 - a) * source + a * target`` with the attribute's amount ``a`` (0 keeps the value, 1 sets the
   new one, up to 1.5 exaggerates it, as the Fader paper's sliders);
4. the model decodes: Fader ``fader(x, code)`` (= ``decode(encode(x), code)``), IcGAN
   ``generator(encoder_z(x), code)``.

>>> pipe = AttributeEditPipeline.from_pretrained("runs/fader")          # a model / run folder or a Hub repo id
>>> result = pipe(photo, {"colour": "red", "pattern": "stripes"}, {"colour": 0.7})
>>> result.image, result.attributes_read                                  # PIL image, {"colour": "blue", ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from PIL import Image, ImageOps

from fashion_gans.models.attributes import attribute_code, blend_code, split_code

from .base import TASK_TITLES, Pipeline, PipelineError
from .images import fit_image, image_to_tensor, load_input_image, tensor_to_image
from .style import _invert_mode, _light_background

__all__ = ["AttributeEditPipeline", "EditResult", "MAX_AMOUNT", "EDIT_TASKS"]

#: Tasks (``bundle.json`` ``task``) this pipeline runs.
EDIT_TASKS = ("fader", "icgan")
#: Largest slider amount: past 1 the code leaves the simplex (the Fader paper's exaggerated edits).
MAX_AMOUNT = 1.5
_READERS = ("auto", "model", "extractor")


@dataclass
class EditResult:
    """The edited image, the attributes read on the input (value names) and the code the model decoded."""

    image: Image.Image
    attributes_read: dict[str, str]
    code: torch.Tensor  # (code_size,) float, one (blended) block per attribute
    source_code: torch.Tensor = field(repr=False, default_factory=lambda: torch.zeros(0))
    target_code: torch.Tensor = field(repr=False, default_factory=lambda: torch.zeros(0))


class AttributeEditPipeline(Pipeline):
    """``pipe(image, edits={attribute: value}, amounts={attribute: 0..1.5})`` -> :class:`EditResult`.

    Loads Fader Network models (``{"fader": FaderNetwork}``) and IcGAN models (``{"generator", "encoder_z",
    "encoder_y"}``)."""

    task: ClassVar[str] = "fader"

    def __init__(self, loaded, device="cpu") -> None:
        task = loaded.meta.get("task")
        if task not in EDIT_TASKS:
            raise PipelineError(f"{loaded.path}: is a {task!r} model ({TASK_TITLES.get(str(task), 'unknown tool')}); "
                                f"{type(self).__name__} needs an attribute-editing model ('fader' or 'icgan')")
        self.task = task  # type: ignore[misc]  # this instance's task (the class serves both)
        super().__init__(loaded, device)
        main = self.network("fader" if task == "fader" else "generator")
        cfg = main.config
        self.config = cfg
        self.attributes: dict[str, list[str]] = {k: list(v) for k, v in cfg.attributes.items()}
        self.size: tuple[int, int] = (int(cfg.image_size), int(cfg.image_size))
        self.channels: int = int(cfg.image_channels)
        self._extractor_reader = None

    # ------------------------------------------------------------------------------------------------ input
    def prepare(self, image: Any, *, fit: str = "pad", invert: str | bool = "auto",
                size: int | None = None) -> torch.Tensor:
        """The image as the model's ``(1, C, S, S)`` input in [-1, 1]: letterboxed on white for RGB models;
        for one-channel (Fashion-MNIST) models grey, inverted when the background is light (``invert="auto"``)
        and fitted inside Fashion-MNIST's 2 px margin on black.  ``size`` overrides ``S`` (the shipped attribute
        networks read the input at their own resolution: a 32 px model's input is too coarse for some colours)."""
        invert = _invert_mode(invert)
        img = load_input_image(image, name="image")
        h, w = self.size if size is None else (int(size), int(size))
        if self.channels == 1:
            img = img.convert("L")
            if (_light_background(img) if invert == "auto" else invert):
                img = ImageOps.invert(img)
            inner = (max(1, round(h * 28 / 32)), max(1, round(w * 28 / 32)))
            img, _ = fit_image(img, inner, fit, fill=0)
            canvas = Image.new("L", (w, h), 0)
            canvas.paste(img, ((w - inner[1]) // 2, (h - inner[0]) // 2))
            img = canvas
        else:
            img, _ = fit_image(img, (h, w), fit)
        return image_to_tensor(img, self.channels)

    def _check_edits(self, edits: Mapping[str, str] | None, what: str = "edit") -> dict[str, int]:
        if edits is None:
            return {}
        if not isinstance(edits, Mapping):
            raise PipelineError(f"{what}s must be a mapping attribute -> value, got {type(edits).__name__}")
        out = {}
        for attr, value in edits.items():
            if attr not in self.attributes:
                raise PipelineError(f"unknown attribute {attr!r}; this model's attributes are {list(self.attributes)}")
            values = self.attributes[attr]
            if value not in values:
                raise PipelineError(f"unknown value {value!r} of attribute {attr!r}; valid values: {values}")
            out[attr] = values.index(value)
        return out

    def _amounts(self, amounts: Mapping[str, float] | None) -> list[float]:
        if not isinstance(amounts, (Mapping, type(None))):
            raise PipelineError(f"amounts must be a mapping attribute -> 0..{MAX_AMOUNT}, got {type(amounts).__name__}")
        given = dict(amounts or {})
        out = []
        for attr in given:
            if attr not in self.attributes:
                raise PipelineError(f"amount for unknown attribute {attr!r}; this model's attributes are "
                                    f"{list(self.attributes)}")
        for attr in self.attributes:
            try:
                a = float(given.get(attr, 1.0))
            except (TypeError, ValueError) as exc:
                raise PipelineError(f"amount of {attr!r}: not a number ({given[attr]!r})") from exc
            if not 0.0 <= a <= MAX_AMOUNT:  # also refuses NaN
                raise PipelineError(f"amount of {attr!r} must be in [0, {MAX_AMOUNT}], got {a}")
            out.append(a)
        return out

    # ---------------------------------------------------------------------------------------------- tensors
    def has_attribute_network(self) -> bool:
        """Whether the model reads attributes itself (IcGAN's E_y)."""
        return "encoder_y" in self.loaded.networks

    @torch.inference_mode()
    def read(self, x: torch.Tensor, reader: str | Callable | None = "auto") -> torch.Tensor:
        """Value indices ``(N, n_attributes)`` of images ``x`` ``(N, C, S, S)`` in [-1, 1]: ``"auto"`` (the model's
        own network when it has one, else the shipped one), ``"model"``, ``"extractor"`` or a callable
        ``images -> (N, n_attributes)`` indices."""
        mode = "auto" if reader is None else reader
        if callable(mode):
            idx = torch.as_tensor(mode(x), dtype=torch.int64).cpu()
        elif mode in ("auto", "model") and self.has_attribute_network():
            logits = self.network("encoder_y")(x.to(self.device)).float().cpu()
            idx = torch.stack([b.argmax(-1) for b in split_code(logits, self.attributes)], dim=-1)
        elif mode == "model":
            raise PipelineError(f"this {self.task} model has no attribute network; use reader='extractor' or give "
                                "the input's attributes")
        elif mode in ("auto", "extractor"):
            idx = self._extractor()(x.float().cpu())
        else:
            raise PipelineError(f"reader {reader!r}: use one of {_READERS}, a callable, or a mapping attribute -> "
                                "value of the input")
        if idx.shape != (x.shape[0], len(self.attributes)):
            raise PipelineError(f"the attribute reader returned shape {tuple(idx.shape)}, expected "
                                f"({x.shape[0]}, {len(self.attributes)})")
        return idx

    def _extractor(self):
        if self._extractor_reader is None:
            from fashion_gans.evaluation.editing import attribute_reader

            try:
                self._extractor_reader = attribute_reader(self.attributes)
            except ValueError as exc:
                raise PipelineError(f"cannot read this model's attributes: {exc}; give the input's attributes "
                                    "(reader={attribute: value, ...})") from exc
        return self._extractor_reader

    @torch.inference_mode()
    def edit_tensor(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """The model on a batch: images ``(N, C, S, S)`` in [-1, 1] and codes ``(N, code_size)`` -> images (on
        ``x``'s device).  The ``edit_fn`` of :func:`fashion_gans.evaluation.editing.edit_metrics`."""
        xd, cd = x.to(self.device), code.to(self.device, torch.float32)
        if self.task == "fader":
            out = self.network("fader")(xd, cd)
        else:
            out = self.network("generator")(self.network("encoder_z")(xd), cd)
        return out.to(x.device)

    # ------------------------------------------------------------------------------------------------- call
    @torch.inference_mode()
    def __call__(self, image: Any, edits: Mapping[str, str] | None = None,
                 amounts: Mapping[str, float] | None = None, reader: str | Callable | Mapping[str, str] | None = None,
                 *, fit: str = "pad", invert: str | bool = "auto") -> EditResult:
        """Edit ``image``: ``edits`` maps attributes to their new values (others are kept), ``amounts`` how far
        each goes (0..1.5, default 1).  ``reader`` says how the input's current attributes are found: ``None`` /
        ``"auto"``, ``"model"``, ``"extractor"``, a callable, or a mapping attribute -> value of the input (the
        attributes it leaves out are read)."""
        target_idx = self._check_edits(edits)
        amount = self._amounts(amounts)
        x = self.prepare(image, fit=fit, invert=invert)
        known: dict[str, int] = {}
        if isinstance(reader, Mapping):
            known = self._check_edits(reader, "known attribute")
            reader = "auto"
        if all(a in known for a in self.attributes):
            idx = torch.zeros(len(self.attributes), dtype=torch.int64)
        elif reader in (None, "auto", "extractor") and not (reader != "extractor" and self.has_attribute_network()):
            # The shipped network reads the photo at its own resolution.
            side = int(self._extractor().extractor.cfg.image_size)
            idx = self.read(self.prepare(image, fit=fit, invert=invert, size=max(side, self.size[0])), "extractor")[0]
        else:
            idx = self.read(x, reader)[0]
        for k, attr in enumerate(self.attributes):
            if attr in known:
                idx[k] = known[attr]
        target = idx.clone()
        for k, attr in enumerate(self.attributes):
            if attr in target_idx:
                target[k] = target_idx[attr]
        source_code = attribute_code(idx[None], self.attributes)
        target_code = attribute_code(target[None], self.attributes)
        code = blend_code(source_code, target_code, amount, self.attributes)
        out = self.edit_tensor(x.to(self.device), code.to(self.device))
        read = {attr: self.attributes[attr][int(idx[k])] for k, attr in enumerate(self.attributes)}
        return EditResult(image=tensor_to_image(out), attributes_read=read, code=code[0].cpu(),
                          source_code=source_code[0], target_code=target_code[0])
