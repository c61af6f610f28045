"""How the demo hands its results to Gradio: interpolation animations (encoded once per frame at the model's size,
then enlarged) keep the pipeline's frames, and result images become files of their own, written atomically, so
concurrent visitors never share a file that is being rewritten."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PIL import Image

from fashion_gans.pipelines import PipelineError, save_animation
from fashion_gans.ui.app import ANIMATION_MIN_SIDE, DemoBackend
from fashion_gans.ui.registry import ModelRegistry


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> DemoBackend:
    return DemoBackend(ModelRegistry({}), device="cpu", temp_dir=tmp_path_factory.mktemp("demo-files"))


def _frames(path: str) -> list[np.ndarray]:
    out = []
    with Image.open(path) as anim:
        for i in range(anim.n_frames):
            anim.seek(i)
            out.append(np.asarray(anim.convert("RGB"), dtype=np.float64))
    return out


def _shrink(frame: np.ndarray, k: int) -> np.ndarray:
    """The model-size image behind a nearest-neighbour ``k``x enlargement (asserting every block is uniform)."""
    h, w = frame.shape[0] // k, frame.shape[1] // k
    blocks = frame.reshape(h, k, w, k, -1)
    assert np.array_equal(blocks.min(axis=(1, 3)), blocks.max(axis=(1, 3))), "not a nearest-neighbour enlargement"
    return blocks[:, 0, :, 0]


def test_interpolation_gif_keeps_every_pipeline_frame(backend):
    pipe = backend.pipeline("generation", "generation-synthetic")
    walk = pipe.interpolate(3, 4, 16, psi=0.7)  # 16 frames there and 14 back
    path = backend.interpolate(3, 4, 16, 0.7, "generation-synthetic", "gif")
    with Image.open(path) as anim:
        assert anim.format == "GIF" and anim.n_frames == len(walk) == 30
        assert anim.info["loop"] == 0 and abs(anim.info["duration"] - 1000 / 12) < 10  # ~12 fps (GIF: 1/100 s), endless
    k = ANIMATION_MIN_SIDE // pipe.resolution
    frames = _frames(path)
    assert frames[0].shape == (pipe.resolution * k, pipe.resolution * k, 3)
    want = [np.asarray(im.convert("RGB"), dtype=np.float64) for im in walk]
    errors = [np.abs(_shrink(f, k) - w).mean() for f, w in zip(frames, want)]
    # Within palette error of each frame (256 colours for ~1000 distinct ones) ...
    assert max(errors) < 6.0, errors
    # ... and no worse than Pillow's own GIF colour reduction (median cut on the enlarged frames).
    stock = backend.temp_dir / "stock.gif"
    big = [im.resize((im.width * k, im.height * k), Image.NEAREST) for im in walk]
    big[0].save(stock, save_all=True, append_images=big[1:], duration=83, loop=0)
    stock_errors = [np.abs(_shrink(f, k) - w).mean() for f, w in zip(_frames(str(stock)), want)]
    assert np.mean(errors) < 1.2 * np.mean(stock_errors), (np.mean(errors), np.mean(stock_errors))
    # The walk moves: its ends differ far more than the colour error.
    assert np.abs(want[0] - want[15]).mean() > 5 * max(errors)


def test_grey_and_webp_animations_are_exact(backend, tmp_path):
    pipe = backend.pipeline("generation", "generation-fmnist")
    walk = pipe.interpolate(1, 2, 4, psi=0.7)
    assert walk[0].mode == "L"
    for suffix in ("gif", "webp"):  # grey GIF frames need no colour reduction; WebP is written lossless
        path = save_animation(walk, tmp_path / f"walk.{suffix}", scale=3)
        frames = _frames(str(path))
        assert len(frames) == len(walk) == 6
        for got, im in zip(frames, walk):
            assert np.array_equal(_shrink(got, 3)[..., 0], np.asarray(im, dtype=np.float64)), suffix


def test_save_animation_refuses_bad_scale(tmp_path):
    frame = Image.new("RGB", (8, 8))
    for bad in (0, 17, 2.5, True):
        with pytest.raises(PipelineError, match="scale must be an integer in 1..16"):
            save_animation([frame, frame], tmp_path / "a.gif", scale=bad)
    assert not list(tmp_path.iterdir())


def test_results_become_png_files_of_their_own(backend):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    pil = Image.fromarray(arr[::-1].copy())

    def handler(flag: bool):
        return '{"keypoints": []}', arr, pil, None

    text, a, b, nothing = backend.as_files(handler)(True)
    assert text == '{"keypoints": []}' and nothing is None
    for path, want in ((a, arr), (b, arr[::-1])):
        with Image.open(path) as img:
            assert img.format == "PNG" and np.array_equal(np.asarray(img), want)
    again = backend.as_files(lambda: arr)()
    assert again != a and os.path.isfile(a)  # the same image twice: two files, the first never rewritten
    assert not [p for p in backend.temp_dir.iterdir() if p.name.endswith(".tmp")]  # no leftovers of the writes


def test_old_result_files_are_pruned(backend):
    old = backend.image_file(np.zeros((4, 4, 3), np.uint8))
    young = backend.image_file(np.ones((4, 4, 3), np.uint8))
    foreign = backend.temp_dir / "notes.txt"  # temp_dir may be shared: only the app's own files go
    foreign.write_text("keep me")
    past = time.time() - 3600
    for path in (old, foreign):
        os.utime(path, (past, past))
    backend._pruned = 0.0  # as if the last look was long ago
    backend._prune(max_age_s=600)
    assert not os.path.exists(old) and os.path.exists(young)
    assert foreign.read_text() == "keep me"
