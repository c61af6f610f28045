"""Garment extraction: a photo of a dressed person -> a product photo of the worn top on white (PixelDTGAN)."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from .base import Pipeline
from .images import fit_image, image_to_tensor, load_input_image, tensor_to_image

__all__ = ["GarmentExtractionPipeline"]


class GarmentExtractionPipeline(Pipeline):
    """``pipe(person_photo)`` -> the product image (PIL, the model's size and channels)."""

    task = "garment"

    def __init__(self, loaded, device="cpu") -> None:
        super().__init__(loaded, device)
        self.generator = self.network("generator")
        cfg = self.generator.config
        self.size: tuple[int, int] = tuple(cfg.image_size)  # type: ignore[assignment]
        self.channels: int = cfg.image_channels

    def prepare(self, image: Any, fit: str = "pad") -> torch.Tensor:
        """The person photo as the model's ``(1, C, H, W)`` input in ``[-1, 1]`` (letterboxed on white)."""
        img, _ = fit_image(load_input_image(image, name="person photo"), self.size, fit)
        return image_to_tensor(img, self.channels)

    @torch.inference_mode()
    def __call__(self, image: Any, *, fit: str = "pad") -> Image.Image:
        return tensor_to_image(self.generator(self.prepare(image, fit).to(self.device)))
