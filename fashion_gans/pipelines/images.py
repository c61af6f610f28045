"""Input images for the pipelines: one place that turns whatever a user hands in into what a model takes.

:func:`load_input_image` accepts a PIL image, a numpy array, a file path or raw bytes and returns an 8-bit
RGB (or ``L``) PIL image with

* EXIF orientation applied (phone photos stored sideways come out upright);
* transparency composited over white (RGBA, LA, palette images with a transparent colour);
* 16-bit and 32-bit greyscale scaled to 8 bits, CMYK/YCbCr/HSV/LAB/1-bit converted;
* very large images refused above :data:`MAX_INPUT_PIXELS` (a decompression bomb never gets decoded: the size
  is read from the header first) and otherwise downscaled to at most :data:`WORKING_SIDE` px on the long side
  (JPEGs are decoded at a reduced scale directly);
* anything that is not an image refused with an :class:`ImageInputError` naming the problem (a PDF, a ZIP, an
  empty or truncated file ...).

:func:`fit_image` then brings it to the model's ``(H, W)``: ``"pad"`` keeps the whole picture (letterboxed on
the background colour), ``"crop"`` fills the frame and cuts the centre (the In-shop/LookBook loaders' geometry).
Tiny images are upscaled.  :class:`Fit` records the mapping so that keypoints follow the image.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageInputError", "describe_file_start", "MAX_INPUT_PIXELS", "WORKING_SIDE", "FIT_MODES", "Fit",
           "load_input_image", "fit_image", "image_to_tensor", "tensor_to_image", "upscale_for_display",
           "fit_keypoints"]

#: Images with more pixels than this are refused before decoding (PIL's own bomb limit is ~179 MP).
MAX_INPUT_PIXELS = 64_000_000
#: Larger inputs are downscaled to this long side before anything else (models run at <= 256 px).
WORKING_SIDE = 1024
#: How an image is brought to the model's frame.
FIT_MODES = ("pad", "crop")

_SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"<!DOCTYPE", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"<svg", "an SVG drawing (vector images are not supported)"),
    (b"<?xml", "an XML file (SVG drawings are not supported)"),
    (b"\x7fELF", "a program binary"),
    (b"ID3", "an MP3 audio file"),
)


class ImageInputError(ValueError):
    """An input is not a usable image (the message names the input and the problem)."""


def describe_file_start(head: bytes) -> str:
    """Why the first bytes of a file are not a readable image, in words ("it is a PDF document, not an image")."""
    if not head:
        return "the file is empty"
    for magic, what in _SIGNATURES:
        if head.lstrip()[: len(magic)].lower() == magic.lower():
            return f"it is {what}, not an image"
    if head[4:8] == b"ftyp":
        return "it is a video/ISO media file, not an image"
    return "it is not an image file PIL can read (PNG, JPEG, WebP, BMP, GIF, TIFF ...)"


def _open(source: Any, name: str) -> Image.Image:
    """Open without decoding pixels (the header is read; the size is known)."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        head, stream = data[:16], io.BytesIO(data)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"{name}: file {path.name!r} not found")
        with open(path, "rb") as fh:
            head = fh.read(16)
        stream = path
    else:
        raise ImageInputError(f"{name}: expected an image (PIL image, array, file path or bytes), "
                              f"got {type(source).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(f"{name}: the image is too large to decode safely ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{name}: cannot be read: {describe_file_start(head)}") from exc
    return img


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):  # CHW -> HWC
        a = np.moveaxis(a, 0, 2)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ImageInputError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise ImageInputError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if a.dtype != np.uint8:
        f = a.astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise ImageInputError(f"{name}: the array holds NaN or infinite values")
        if a.dtype == bool:
            f = f * 255.0
        elif np.issubdtype(a.dtype, np.floating):
            f = (f + 1.0) * 127.5 if f.min() < 0 else (f * 255.0 if f.max() <= 1.0 else f)
        elif f.max() > 255:
            f = f / 65535.0 * 255.0
        a = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[a.ndim if a.ndim == 2 else a.shape[2]]
    return Image.fromarray(np.ascontiguousarray(a), mode)


_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _to_8bit(img: Image.Image) -> Image.Image:
    """Any PIL mode -> ``RGB`` or ``L`` (transparency over white, 16/32-bit scaled to 8 bits)."""
    if img.mode in ("P", "L", "RGB") and "transparency" in img.info:  # palette or PNG tRNS transparent colour
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in _WIDE_MODES:
        arr = np.array(img, dtype=np.float32)  # a writable copy, scaled in place below
        if img.mode.startswith("I;16"):  # 16-bit samples: full scale is 65535 whatever the image holds
            scale = 65535.0
        else:  # 32-bit integer or float: guess the range from the values
            lo, hi = img.getextrema()
            if not (np.isfinite(lo) and np.isfinite(hi)):
                finite = arr[np.isfinite(arr)]
                lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if img.mode == "F" and lo >= 0 and hi <= 1.0:
                scale = 1.0
            elif hi > 255:
                scale = 65535.0
            else:
                scale = 255.0
            np.nan_to_num(arr, copy=False, nan=0.0, posinf=scale, neginf=0.0)
        arr *= np.float32(255.0 / scale)
        arr += np.float32(0.5)
        np.clip(arr, 0, 255, out=arr)
        return Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "L":
        return img
    return img.convert("RGB")


def load_input_image(source: Any, *, name: str = "image", max_side: int = WORKING_SIDE,
                     max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Read ``source`` (PIL image, array, path or bytes) as an upright 8-bit ``RGB`` or ``L`` PIL image whose
    long side is at most ``max_side``; raises :class:`ImageInputError` naming the problem."""
    img = _open(source, name)
    opened_here = not isinstance(source, Image.Image)
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageInputError(f"{name}: the image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageInputError(f"{name}: {w}x{h} pixels is too large (at most {max_pixels / 1e6:.0f} megapixels)")
    try:
        if opened_here and img.format == "JPEG" and max(w, h) > 2 * max_side:
            img.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale directly
        if getattr(img, "is_animated", False):
            img.seek(0)
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageInputError(f"{name}: the image data is damaged or truncated ({exc})") from exc
    if max(img.size) > 2 * max_side and (img.mode in _WIDE_MODES + _ALPHA_MODES or "transparency" in img.info):
        # Wide samples and alpha are converted at full size otherwise (float and RGBA temporaries of every pixel):
        # a cheap nearest-neighbour reduction first, the filtered one after the 8-bit conversion.
        s = 2 * max_side / max(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.NEAREST)
    img = _to_8bit(img)
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.LANCZOS, reducing_gap=3.0)
    return img


@dataclass(frozen=True)
class Fit:
    """How :func:`fit_image` mapped an image of ``src_size=(H, W)`` onto ``out_size``: output pixel
    ``= input pixel * scale + offset`` (pixel centres aligned)."""

    src_size: tuple[int, int]
    out_size: tuple[int, int]
    scale: float
    offset: tuple[float, float]  # (x, y)

    def map_keypoints(self, kp: np.ndarray) -> np.ndarray:
        """(n, 2) ``(x, y)`` pixels of the input -> the output frame; missing or outside joints -> ``(-1, -1)``."""
        return fit_keypoints(kp, self)


def fit_keypoints(kp: np.ndarray, fit: Fit) -> np.ndarray:
    arr = np.asarray(kp, np.float32).reshape(-1, 2)
    vis = (arr[:, 0] >= 0) & (arr[:, 1] >= 0)
    out = (arr + 0.5) * np.float32(fit.scale) - 0.5 + np.asarray(fit.offset, np.float32)
    h, w = fit.out_size
    inside = vis & (out[:, 0] >= -0.5) & (out[:, 1] >= -0.5) & (out[:, 0] <= w - 0.5) & (out[:, 1] <= h - 0.5)
    out = np.clip(out, 0, [w - 1, h - 1]).astype(np.float32)
    out[~inside] = -1.0
    return out


def fit_image(img: Image.Image, size: tuple[int, int], fit: str = "pad",
              fill: int | tuple[int, int, int] | None = None) -> tuple[Image.Image, Fit]:
    """Bring ``img`` to ``size=(H, W)``: ``"pad"`` scales the whole image into the frame and pads with ``fill``
    (default white), ``"crop"`` scales it to cover the frame and crops the centre.  Returns the image and the
    :class:`Fit` that maps coordinates."""
    if fit not in FIT_MODES:
        raise ValueError(f"fit must be one of {FIT_MODES}, got {fit!r}")
    h, w = (int(s) for s in size)
    src_w, src_h = img.size
    s = (min if fit == "pad" else max)(h / src_h, w / src_w)
    rw, rh = max(1, int(round(src_w * s))), max(1, int(round(src_h * s)))
    if fit == "crop":
        rw, rh = max(rw, w), max(rh, h)
    resample = Image.LANCZOS if s < 1 else Image.BICUBIC
    resized = img.resize((rw, rh), resample) if (rw, rh) != (src_w, src_h) else img
    left, top = (w - rw) // 2, (h - rh) // 2
    if fill is None:
        fill = 255 if img.mode == "L" else (255, 255, 255)
    canvas = Image.new(img.mode, (w, h), fill)
    canvas.paste(resized, (left, top))
    return canvas, Fit((src_h, src_w), (h, w), float(rw / src_w), (float(left), float(top)))


def image_to_tensor(img: Image.Image, channels: int) -> torch.Tensor:
    """8-bit PIL image -> ``(1, channels, H, W)`` float tensor in ``[-1, 1]`` (greyscale for 1 channel)."""
    mode = "L" if channels == 1 else "RGB"
    arr = np.asarray(img.convert(mode), dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if channels not in (1, 3):
        raise ValueError(f"models with {channels} image channels are not supported (1 or 3)")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].div(127.5).sub(1.0)


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """``(C, H, W)`` or ``(1, C, H, W)`` tensor in ``[-1, 1]`` -> PIL ``L`` (1 channel) or ``RGB`` image."""
    x = t.detach().float().cpu()
    if x.ndim == 4:
        x = x[0]
    arr = ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(arr[:, :, 0]), "L")
    return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]), "RGB")


def upscale_for_display(img: Image.Image, min_side: int = 256) -> Image.Image:
    """Nearest-neighbour upscale by an integer factor so the short side reaches ``min_side`` (small model
    outputs stay crisp in a browser)."""
    k = max(1, -(-min_side // min(img.size)))
    return img if k == 1 else img.resize((img.width * k, img.height * k), Image.NEAREST)
