"""Every common kind of image becomes the model's input; anything else is refused with a clear error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fashion_gans.pipelines.images import (
    ImageInputError,
    WORKING_SIDE,
    fit_image,
    image_to_tensor,
    load_input_image,
    tensor_to_image,
)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` pixels (a decompression bomb's header; no pixel data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_rgba_is_composited_over_white():
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., 0] = 255  # red ...
    arr[:, :4, 3] = 0  # ... invisible on the left half
    arr[:, 4:, 3] = 255
    out = np.asarray(load_input_image(_png_bytes(Image.fromarray(arr, "RGBA"))))
    assert out.shape == (8, 8, 3)
    assert (out[:, :4] == 255).all()  # transparent -> white, not black
    assert (out[:, 4:] == [255, 0, 0]).all()


def test_palette_with_transparency_and_16_bit_greyscale():
    pal = Image.new("P", (6, 6), 0)
    pal.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    pal.putpixel((0, 0), 1)
    pal.info["transparency"] = 1
    out = np.asarray(load_input_image(pal))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[3, 3], [0, 0, 255])

    grey16 = Image.fromarray(np.array([[0, 32768], [65535, 65535]], np.uint16))
    out16 = np.asarray(load_input_image(_png_bytes(grey16)))
    assert out16.dtype == np.uint8 and out16.shape == (2, 2)
    assert out16[0, 0] == 0 and out16[1, 0] == 255 and 126 <= out16[0, 1] <= 129


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    assert load_input_image(buf.getvalue()).size == (20, 40)


def test_large_images_are_downscaled_and_bombs_refused():
    big = Image.new("RGB", (6000, 3000), (10, 200, 30))
    out = load_input_image(_png_bytes(big))
    assert out.size == (WORKING_SIDE, WORKING_SIDE // 2)
    with pytest.raises(ImageInputError, match="too large"):
        load_input_image(_png_header_only(30000, 30000))


@pytest.mark.parametrize("data, problem", [
    (b"%PDF-1.7\n1 0 obj <<>> endobj\n", "PDF document"),
    (b"", "empty"),
    (b"PK\x03\x04" + b"\x00" * 40, "ZIP archive"),
    (b"hello, this is text, not pixels", "not an image file"),
])
def test_non_images_are_named(data, problem):
    with pytest.raises(ImageInputError, match=problem):
        load_input_image(data, name="upload")


def test_truncated_image_is_reported():
    data = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        load_input_image(data[: len(data) // 2])


def test_fit_pad_keeps_the_whole_image_and_maps_keypoints():
    wide = Image.new("RGB", (100, 50), (255, 0, 0))
    out, fit = fit_image(wide, (64, 64), "pad")
    arr = np.asarray(out)
    assert out.size == (64, 64)
    np.testing.assert_array_equal(arr[0, 32], [255, 255, 255])  # letterbox bands on top and bottom
    np.testing.assert_array_equal(arr[32, 1], [255, 0, 0])  # the full width is kept
    centre = fit.map_keypoints(np.array([[49.5, 24.5], [-1, -1]], np.float32))
    np.testing.assert_allclose(centre[0], [31.5, 31.5], atol=0.01)
    np.testing.assert_array_equal(centre[1], [-1, -1])

    cropped, cfit = fit_image(wide, (64, 64), "crop")
    assert np.asarray(cropped).min(axis=(0, 1)).tolist() == [255, 0, 0]  # no padding at all
    # The left edge of the photo is cut off: a joint there falls outside the frame.
    np.testing.assert_array_equal(cfit.map_keypoints(np.array([[1.0, 25.0]], np.float32))[0], [-1, -1])


def test_tiny_image_is_upscaled_and_greyscale_models_get_one_channel():
    one = load_input_image(Image.new("RGB", (1, 1), (0, 128, 255)))
    out, _ = fit_image(one, (32, 32), "pad")
    arr = np.asarray(out)
    assert arr.shape == (32, 32, 3) and (arr == [0, 128, 255]).all()
    grey = image_to_tensor(out, channels=1)
    assert grey.shape == (1, 1, 32, 32)
    back = tensor_to_image(grey)
    assert back.mode == "L" and back.size == (32, 32)
    rgb = image_to_tensor(Image.new("L", (8, 8), 255), channels=3)
    assert rgb.shape == (1, 3, 8, 8) and float(rgb.min()) == 1.0


def test_arrays_in_common_layouts():
    chw = np.zeros((3, 10, 12), np.float32)  # [0, 1] float, channels first
    assert load_input_image(chw).size == (12, 10)
    with pytest.raises(ImageInputError, match="shape"):
        load_input_image(np.zeros((5, 5, 7)))
    with pytest.raises(ImageInputError, match="expected an image"):
        load_input_image(12345)


def test_png_transparent_colour_is_put_on_white():
    for mode, key, colour in (("L", 0, 200), ("RGB", (0, 0, 0), (200, 10, 10))):
        img = Image.new(mode, (4, 4), key)  # all transparent (tRNS) but one pixel
        img.putpixel((0, 0), colour)
        buf = io.BytesIO()
        img.save(buf, format="PNG", transparency=key)
        out = np.asarray(load_input_image(buf.getvalue()).convert("RGB"))
        assert (out[0, 1:] == 255).all() and (out[1:] == 255).all(), mode  # the transparent colour -> white
        assert tuple(out[0, 0]) == ((colour,) * 3 if mode == "L" else colour)


def test_16_bit_samples_scale_by_full_range_not_by_the_image():
    dark = Image.fromarray(np.full((8, 8), 200, np.uint16))  # a 16-bit image that is nearly black
    assert dark.mode.startswith("I;16")
    assert np.asarray(load_input_image(dark)).max() == 1  # 200 / 65535 * 255, not 200 / 255 * 255
    assert np.asarray(load_input_image(Image.fromarray(np.full((8, 8), 65535, np.uint16)))).min() == 255


def test_large_16_bit_and_alpha_images_do_not_convert_at_full_size():
    import tracemalloc

    for img in (Image.new("I;16", (4000, 4000), 30000), Image.new("F", (4000, 3000), 0.5)):
        tracemalloc.start()
        out = load_input_image(img)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        expected = 117 if img.mode != "F" else 128  # 30000 / 65535 and 0.5 of full scale
        assert max(out.size) == WORKING_SIDE and abs(int(np.asarray(out).mean()) - expected) <= 1
        assert peak < 32e6, f"{img.mode}: {peak / 1e6:.0f} MB of numpy temporaries"  # full size: 64-192 MB
