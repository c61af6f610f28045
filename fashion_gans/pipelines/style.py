"""Style matching: a shoe -> a handbag of matching style, or a handbag -> a shoe (DiscoGAN/CycleGAN).

Domain A is shoes and domain B handbags, as in training (``gen_ab``: shoe -> bag, ``gen_ba``: bag -> shoe).
Models trained on Fashion-MNIST see light objects on black, 28 px inside a 32 px frame: for one-channel models a
photo on a light background is inverted (``invert="auto"``) and fitted with the same margin.
Models whose generators store target-domain silhouettes (``g_shape_bank`` > 0, as ``style-synthetic``) draw the
outline of stored silhouette ``outline`` (0 by default) in the source's colour and pattern.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from .base import Pipeline, PipelineError
from .images import fit_image, image_to_tensor, load_input_image, tensor_to_image

__all__ = ["StyleMatchingPipeline", "DIRECTIONS"]

#: Accepted directions -> the network that runs.
DIRECTIONS = {"shoe_to_bag": "gen_ab", "bag_to_shoe": "gen_ba", "ab": "gen_ab", "ba": "gen_ba",
              "shoe->bag": "gen_ab", "bag->shoe": "gen_ba"}


_INVERT = {"auto": "auto", "on": True, "true": True, "yes": True, "1": True, "off": False, "false": False,
           "no": False, "0": False}


def _invert_mode(invert: str | bool) -> str | bool:
    """``"auto"``, ``True``/``"on"``/``"true"``... or ``False``/``"off"``/``"false"``...; anything else is refused."""
    if isinstance(invert, (bool, np.bool_)):
        return bool(invert)
    mode = _INVERT.get(str(invert).strip().lower())
    if mode is None:
        raise PipelineError(f"invert {invert!r}: use 'auto', 'on' or 'off'")
    return mode


def _light_background(img: Image.Image) -> bool:
    arr = np.asarray(img.convert("L"), np.float32)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    return float(border.mean()) > 127.5


class StyleMatchingPipeline(Pipeline):
    """``pipe(image, direction="shoe_to_bag" | "bag_to_shoe", outline=0)`` -> the matching item (PIL)."""

    task = "style"

    def __init__(self, loaded, device="cpu") -> None:
        super().__init__(loaded, device)
        cfg = self.network("gen_ab").config
        self.size: tuple[int, int] = tuple(cfg.image_size)  # type: ignore[assignment]

    def _generator(self, direction: str):
        key = DIRECTIONS.get(str(direction).strip().lower().replace(" ", "_"))
        if key is None:
            raise PipelineError(f"direction {direction!r}: use 'shoe_to_bag' or 'bag_to_shoe'")
        return self.network(key)

    def prepare(self, image: Any, direction: str = "shoe_to_bag", *, fit: str = "pad",
                invert: str | bool = "auto") -> torch.Tensor:
        """The input item as the chosen generator's ``(1, C, H, W)`` input in ``[-1, 1]``."""
        gen = self._generator(direction)
        channels = gen.c_in
        invert = _invert_mode(invert)
        img = load_input_image(image, name="item image")
        if channels == 1:
            img = img.convert("L")
            flip = _light_background(img) if invert == "auto" else invert
            if flip:
                img = ImageOps.invert(img)
            h, w = self.size
            inner = (max(1, round(h * 28 / 32)), max(1, round(w * 28 / 32)))  # Fashion-MNIST's 2 px margin
            img, _ = fit_image(img, inner, fit, fill=0)
            canvas = Image.new("L", (w, h), 0)  # the margin, as Fashion-MNIST's loader pads 28 -> 32
            canvas.paste(img, ((w - inner[1]) // 2, (h - inner[0]) // 2))
            img = canvas
        else:
            img, _ = fit_image(img, self.size, fit)
        return image_to_tensor(img, channels)

    def outlines(self, direction: str = "shoe_to_bag") -> int:
        """How many stored silhouettes the direction's generator can draw (``outline`` in ``0..n-1``); 1 for a
        generator that draws the outline it learned."""
        gen = self._generator(direction)
        return max(1, int(gen.shape_bank_filled)) if gen.takes_shape else 1

    @torch.inference_mode()
    def __call__(self, image: Any, direction: str = "shoe_to_bag", *, fit: str = "pad",
                 invert: str | bool = "auto", outline: int = 0) -> Image.Image:
        gen = self._generator(direction)
        n = self.outlines(direction)
        if isinstance(outline, bool) or not isinstance(outline, (int, np.integer)) or not 0 <= int(outline) < n:
            which = (f"an int in 0..{n - 1} (the stored silhouettes)" if gen.takes_shape
                     else "0 (this model draws the outline it learned)")
            raise PipelineError(f"outline {outline!r}: use {which}")
        x = self.prepare(image, direction, fit=fit, invert=invert).to(self.device)
        shape = gen.stored_shape(int(outline)) if gen.takes_shape else None
        return tensor_to_image(gen(x, shape))
