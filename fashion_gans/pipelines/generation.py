"""Generation: seeds -> new fashion images (StyleGAN / StyleGAN2), with truncation, style mixing and
interpolation.

Latents are drawn on the CPU from ``torch.Generator().manual_seed(seed)`` (one ``z`` per seed), so a seed gives
the same image on every device; the synthesis noise is the generator's fixed buffers (``noise_mode="const"``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from fashion_gans.data.io import atomic_path

from .base import Pipeline, PipelineError
from .images import tensor_to_image

__all__ = ["GenerationPipeline", "image_grid", "save_animation", "MAX_IMAGES", "MAX_FRAMES"]

MAX_IMAGES = 64
MAX_FRAMES = 120
MAX_SEED = 2**32 - 1


def _check_seed(seed, name: str = "seed") -> int:
    try:
        value = float(seed)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"{name}: expected an integer, got {seed!r}") from exc
    if not value.is_integer() or not 0 <= value <= MAX_SEED:
        raise PipelineError(f"{name}: expected an integer in 0..{MAX_SEED}, got {seed!r}")
    return int(value)


def image_grid(images: Sequence[Image.Image], columns: int, gutter: int = 2, fill=255) -> Image.Image:
    """Tile equally sized images (row-major) with a ``gutter`` px border of ``fill``."""
    if not images:
        raise ValueError("image_grid: no images")
    w, h = images[0].size
    mode = images[0].mode
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    colour = fill if mode == "L" else (fill, fill, fill)
    canvas = Image.new(mode, (columns * (w + gutter) + gutter, rows * (h + gutter) + gutter), colour)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        canvas.paste(img, (gutter + c * (w + gutter), gutter + r * (h + gutter)))
    return canvas


def save_animation(frames: Sequence[Image.Image], path: str | os.PathLike, fps: float = 12.0, *,
                   scale: int = 1) -> Path:
    """Write frames as a looping animated GIF or WebP (by suffix), atomically, each frame enlarged ``scale`` times
    (nearest neighbour, so small model outputs stay crisp).

    GIF frames are reduced to 256 colours at their own size, with a palette each (median cut, Pillow's default
    method), and only then enlarged as palette images; a frame object given twice (the way back of a looping
    interpolation) is converted once.  Pillow's default, median cut on every enlarged RGB frame, spends about
    ``scale``² times the work per frame and was most of the server's time of the demo's 16-frame interpolation
    (~200 of ~320 ms CPU); at the model's size it costs ~3 ms a 32 px frame and keeps the default's colour error.
    Pillow's fast octree (0.25 ms a frame) had 2.4 times the default's error on the synthetic generator trained
    for 2000 steps, and one palette shared by all frames 2.8 times.  ``L`` frames are written as they are (a grey
    palette, no colour reduction).
    """
    path = Path(path)
    fmt = {".gif": "GIF", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise PipelineError(f"{path.name}: animations are written as .gif or .webp")
    if not frames:
        raise PipelineError("save_animation: no frames")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 16:
        raise PipelineError(f"save_animation: scale must be an integer in 1..16, got {scale!r}")
    duration = max(20, int(round(1000 / max(fps, 1e-3))))
    prepare = _gif_frame if fmt == "GIF" else _webp_frame
    done: dict[int, Image.Image] = {}  # id(frame) -> prepared frame; ``frames`` keeps every key alive
    ready = []
    for frame in frames:
        if id(frame) not in done:
            done[id(frame)] = prepare(frame, scale)
        ready.append(done[id(frame)])
    first, rest = ready[0], ready[1:]
    # optimize=False: Pillow's palette optimisation rescans every frame for unused colours, which a per-frame
    # octree palette barely has.
    kwargs = {"lossless": True} if fmt == "WEBP" else {"disposal": 2, "optimize": False}
    with atomic_path(path) as tmp:
        first.save(tmp, format=fmt, save_all=True, append_images=rest, duration=duration, loop=0, **kwargs)
    return path


def _enlarge(img: Image.Image, scale: int) -> Image.Image:
    return img if scale == 1 else img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def _gif_frame(img: Image.Image, scale: int) -> Image.Image:
    """One GIF frame: ``L`` and ``P`` as they are, anything else RGB reduced to 256 colours (median cut); then
    enlarged."""
    if img.mode not in ("L", "P"):
        img = img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    return _enlarge(img, scale)


def _webp_frame(img: Image.Image, scale: int) -> Image.Image:
    return _enlarge(img if img.mode in ("RGB", "RGBA") else img.convert("RGB"), scale)


class GenerationPipeline(Pipeline):
    """``pipe(seed, n=..., psi=...)`` -> list of PIL images; :meth:`style_mix`, :meth:`interpolate`."""

    task = "generation"

    def __init__(self, loaded, device="cpu") -> None:
        super().__init__(loaded, device)
        self.generator = self.network("generator")
        cfg = self.generator.config
        self.resolution: int = cfg.resolution
        self.channels: int = cfg.image_channels
        self.num_ws: int = self.generator.num_ws

    @property
    def size(self) -> tuple[int, int]:
        return self.resolution, self.resolution

    def latents(self, seeds: Sequence[int]) -> torch.Tensor:
        """``(len(seeds), z_dim)``: one standard normal ``z`` per seed, drawn on the CPU."""
        z_dim = self.generator.config.z_dim
        return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(_check_seed(s)))
                            for s in seeds])

    def _check_psi(self, psi: float) -> float:
        try:
            p = float(psi)
        except (TypeError, ValueError) as exc:
            raise PipelineError(f"psi: expected a number, got {psi!r}") from exc
        if not -2.0 <= p <= 2.0 or math.isnan(p):
            raise PipelineError(f"psi (truncation): must be in [-2, 2], got {psi!r}")
        return p

    def _ws(self, seeds: Sequence[int], psi: float) -> torch.Tensor:
        return self.generator.mapping(self.latents(seeds).to(self.device), psi=self._check_psi(psi))

    def _render(self, ws: torch.Tensor) -> list[Image.Image]:
        out = []
        for chunk in ws.split(16):
            imgs = self.generator.synthesis(chunk, noise_mode="const")
            out += [tensor_to_image(img) for img in imgs]
        return out

    @torch.inference_mode()
    def __call__(self, seed: int = 0, n: int = 1, *, psi: float = 1.0) -> list[Image.Image]:
        """``n`` images from seeds ``seed, seed + 1, ...`` with truncation ``psi`` (1 = none, 0 = the mean)."""
        n = int(n)
        if not 1 <= n <= MAX_IMAGES:
            raise PipelineError(f"number of images: must be in 1..{MAX_IMAGES}, got {n}")
        first = _check_seed(seed)
        seeds = [(first + i) % (MAX_SEED + 1) for i in range(n)]
        return self._render(self._ws(seeds, psi))

    @torch.inference_mode()
    def style_mix(self, seed_a: int, seed_b: int, crossover: int, *, psi: float = 1.0) -> list[Image.Image]:
        """``[A, B, A's coarse styles + B's fine styles, B's coarse + A's fine]``: layers ``< crossover`` come from
        the first seed (pose, shape), the rest from the second (colour, texture)."""
        k = int(crossover)
        if not 0 <= k <= self.num_ws:
            raise PipelineError(f"crossover layer: must be in 0..{self.num_ws}, got {crossover}")
        ws = self._ws([seed_a, seed_b], psi)
        a, b = ws[:1], ws[1:]
        mixed = torch.cat([a, b, self.generator.mix(a, b, k), self.generator.mix(b, a, k)])
        return self._render(mixed)

    @torch.inference_mode()
    def interpolate(self, seed_a: int, seed_b: int, frames: int = 16, *, psi: float = 1.0,
                    loop: bool = True) -> list[Image.Image]:
        """Frames of a linear walk in W from seed A to seed B (and back when ``loop``)."""
        n = int(frames)
        if not 2 <= n <= MAX_FRAMES:
            raise PipelineError(f"frames: must be in 2..{MAX_FRAMES}, got {frames}")
        ws = self._ws([seed_a, seed_b], psi)
        t = torch.linspace(0, 1, n, device=ws.device)[:, None, None]
        path = torch.lerp(ws[:1].expand(n, -1, -1), ws[1:].expand(n, -1, -1), t)
        images = self._render(path)
        return images + images[-2:0:-1] if loop else images
