"""DeepFashion Fashion Image Synthesis Benchmark (FISB): the generation data, and a synthetic version of it.

Real file (thesis §2.3): FashionGAN's ``G2.h5`` (the thesis renamed it ``Img.h5``), about 79K posing
models at 128x128.  Keys used:

* ``ih``: the images, float, channel-first *and transposed*: ``ih[i]`` has shape ``(3, W, H)`` and
  ``ih[i].swapaxes(2, 0)`` is the ``(H, W, 3)`` image; mean-subtracted and scaled.
* ``ih_mean``: the mean image, same layout.

Decoding (as the thesis decodes the real file): ``img = max(ih_mean) * ih[i] + ih_mean``, then
``img /= max(img)`` (every image is normalised by its own maximum), then x255 to ``uint8`` RGB.

The images are badly and differently cropped: horizontally centred but misplaced vertically.  The
thesis' "FISB scraper" computes per-image crop bounds (uniform background bands at the top and the
bottom, then an equal crop left and right to stay square, resized back) and a background colour per
image (dominant colour of two side strips, channels rounded to multiples of 5, hex), and trains only on
images whose background is "whiter than #F0F0F0" (53.2K of 79K).  Both are computed once here and cached
in ``crops.json`` / ``backgrounds.json`` next to the ``.h5`` file (the ``.h5`` is never modified).

FISB has no identities or official split, so the split is a deterministic hash of the image index
(:func:`hash_split`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from .io import DataError, array_to_tensor, atomic_path
from .hf import lazy_hf_features
from .sources import HubImageRows, LazyH5Array
from .splits import hash_split

__all__ = [
    "FISB_FILE",
    "CROPS_FILE",
    "BACKGROUNDS_FILE",
    "ATTRIBUTES_FILE",
    "HF_FEATURES",
    "hash_split",
    "decode_fisb_image",
    "find_crop",
    "detect_background",
    "hex_at_least",
    "render_synthetic_fisb",
    "write_synthetic_fisb",
    "load_fisb_attributes",
    "user_cache_dir",
    "fallback_cache_dir",
    "FISBDataset",
    "iter_hf_records",
]

FISB_FILE = "G2.h5"
CROPS_FILE = "crops.json"
BACKGROUNDS_FILE = "backgrounds.json"
ATTRIBUTES_FILE = "synthetic_attributes.json"

# The thesis' neutral-band test: sum over channels of (max - min) < 0.1 on [0, 1] data.
NEUTRAL_TOLERANCE = 0.1
# The thesis' background strips on 128 px images: 15x100 px (w x h) at (x, y) = (10, 5) and (105, 5).
_STRIP_X = (10, 105)
_STRIP_Y = 5
_STRIP_W = 15
_STRIP_H = 100
_REFERENCE_SIZE = 128


def _hf_features():
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "index": datasets.Value("int64"),
            "background": datasets.Value("string"),
            "h_from": datasets.Value("int32"),
            "h_until": datasets.Value("int32"),
            "w_from": datasets.Value("int32"),
            "w_until": datasets.Value("int32"),
        }
    )


__getattr__ = lazy_hf_features(__name__, _hf_features)  # HF_FEATURES, built on first access


# --------------------------------------------------------------------------------------------- decoding


def decode_fisb_image(ih_i: np.ndarray, ih_mean: np.ndarray, mean_max: float | None = None) -> np.ndarray:
    """One ``ih[i]`` record ``(3, W, H)`` -> ``uint8 (H, W, 3)`` RGB, as the real G2.h5 is decoded."""
    if mean_max is None:
        mean_max = float(np.max(ih_mean))
    img = mean_max * np.asarray(ih_i, dtype=np.float64) + ih_mean
    img = img.swapaxes(2, 0)  # (3, W, H) -> (H, W, 3)
    peak = float(img.max())
    if peak <= 0:
        return np.zeros(img.shape, dtype=np.uint8)
    return np.clip(np.rint(img / peak * 255.0), 0, 255).astype(np.uint8)


def _encode_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``uint8 (N, H, W, 3)`` -> (``ih`` float32 (N, 3, W, H), ``ih_mean`` float32 (3, W, H)), inverse of
    :func:`decode_fisb_image` for images whose maximum is 255."""
    data = images.astype(np.float32) / 255.0
    data = data.transpose(0, 3, 2, 1)  # (N, H, W, 3) -> (N, 3, W, H)
    ih_mean = data.mean(axis=0, dtype=np.float64).astype(np.float32)
    scale = float(ih_mean.max()) or 1.0
    ih = ((data - ih_mean) / scale).astype(np.float32)
    return ih, ih_mean


# --------------------------------------------------------------------------------------------- scraper


def find_crop(image: np.ndarray, tolerance: float = NEUTRAL_TOLERANCE, min_band: int = 2) -> dict[str, int]:
    """Per-image crop bounds with the thesis' FISB scraper algorithm.

    From the bottom, a band of ``min_band`` rows is grown upwards while it is neutral background; the
    first object row ends the crop.  The same from the top.  Left and right are then cropped equally so
    the crop stays square (FISB images are horizontally centred).  A band is neutral when each row's
    spread, summed over channels, ``sum_c(max - min)`` on ``[0, 1]`` data, is below ``tolerance``.

    The thesis applied the spread to the whole growing band, which stops at the first shade of a lit
    studio backdrop's vertical gradient; testing it row by row is the same test on a flat backdrop.  The
    thesis code also counted any grey row (equal channels) as background, which crops into grey clothes;
    that is left out.  Returns ``{h_from, h_until, w_from, w_until, upscale_size}`` (the thesis'
    ``crops.json`` entry; ``*_until`` exclusive).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    h, w = image.shape[:2]
    spread = (image.max(axis=1).astype(np.int32) - image.min(axis=1)).sum(axis=1) / 255.0  # (H,)
    neutral = spread < tolerance
    # Top: number of leading neutral rows; bottom: number of trailing neutral rows.
    top = int(np.argmin(neutral)) if not neutral.all() else h
    bottom_rows = int(np.argmin(neutral[::-1])) if not neutral.all() else h
    if top < min_band:
        top = 0
    if bottom_rows < min_band:
        bottom_rows = 0
    h_from, h_until = top, h - bottom_rows
    if h_until - h_from < max(min_band, h // 8):  # blank or nearly blank image: keep it whole
        h_from, h_until = 0, h
    side = min(h_until - h_from, w)
    w_from = (w - side) // 2
    return {"h_from": h_from, "h_until": h_until, "w_from": w_from, "w_until": w_from + side, "upscale_size": h}


def _quantise5(colours: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(colours.astype(np.float64) / 5.0) * 5.0, 0, 255).astype(np.int64)


def detect_background(image: np.ndarray) -> str:
    """Dominant background colour of an image as a lowercase hex string, per the thesis' scraper.

    Two vertical strips of 15x100 px (w x h) at (10, 5) and (105, 5) px (scaled for other sizes); the
    strip with the most pixels of one colour gives the colour; channels rounded to multiples of 5.  The
    colours are rounded before counting (so sensor or JPEG noise does not split one backdrop into many
    colours).
    """
    h, w = image.shape[:2]
    sx, sy = w / _REFERENCE_SIZE, h / _REFERENCE_SIZE
    best_count, best = -1, (0, 0, 0)
    for x0 in _STRIP_X:
        x_from = int(round(x0 * sx))
        y_from = int(round(_STRIP_Y * sy))
        strip = image[y_from : y_from + max(1, int(round(_STRIP_H * sy))), x_from : x_from + max(1, int(round(_STRIP_W * sx)))]
        q = _quantise5(strip.reshape(-1, 3))
        codes = (q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2]
        values, counts = np.unique(codes, return_counts=True)
        k = int(np.argmax(counts))
        if counts[k] > best_count:
            best_count = int(counts[k])
            c = int(values[k])
            best = (c >> 16, (c >> 8) & 255, c & 255)
    return "#{:02x}{:02x}{:02x}".format(*best)


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    s = colour.strip().lstrip("#")
    if len(s) != 6:
        raise ValueError(f"expected a colour like '#f0f0f0', got {colour!r}")
    try:
        return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)
    except ValueError as exc:
        raise ValueError(f"expected a colour like '#f0f0f0', got {colour!r}") from exc


def hex_at_least(colour: str, minimum: str) -> bool:
    """True when every channel of ``colour`` is >= the same channel of ``minimum`` ("whiter than").

    The thesis compared the hex strings lexicographically, which also admits saturated colours such as
    ``#fa0000`` as "whiter than #f0f0f0"; comparing channel by channel does not.
    """
    return all(a >= b for a, b in zip(_hex_rgb(colour), _hex_rgb(minimum)))


# --------------------------------------------------------------------------------------------- writing


def _pad_rows(image: np.ndarray, top: int, bottom: int) -> np.ndarray:
    return np.pad(image, ((top, bottom),) + ((0, 0),) * (image.ndim - 1), mode="edge")


def render_synthetic_fisb(
    world,
    count: int,
    size: int = 128,
    seed: int = 0,
    *,
    dark_fraction: float = 0.3,
    n_poses: int = 8,
) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """The images (``uint8 (count, size, size, 3)``) and attributes that :func:`write_synthetic_fisb` stores.

    Like FISB, bodies are horizontally centred but of varying height and vertical placement (each is
    rendered ``h' x size`` with ``h'`` in ``[0.72, 1] * size`` and placed at a random height, the
    backdrop extended), and backgrounds are mostly light (every channel >= 245) with a share
    (``dark_fraction``) of darker grey or brownish ones, so the "whiter than #F0F0F0" filter has work to
    do.  Each image is normalised to a maximum of 255, so that decoding (which divides by the maximum)
    gives it back unchanged.  Attributes (index -> dict): person and pose attributes, the true body box
    (``body_top``, ``body_bottom`` exclusive, ``body_left``, ``body_right`` exclusive), the background's
    median RGB and whether it is light.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = np.random.default_rng([seed, 0xF15B])
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    attributes: dict[str, dict[str, Any]] = {}
    dark = rng.random(count) < dark_fraction
    for i in range(count):
        identity = int(rng.integers(0, 1 << 30))
        k = int(rng.integers(0, n_poses))
        person = world.person(identity)
        pose = world.pose(identity, k)
        body_h = int(rng.integers(int(0.72 * size), size + 1))
        pad_top = int(rng.integers(0, size - body_h + 1))
        pad = (pad_top, size - body_h - pad_top)
        render = world.render_person(person, pose, (body_h, size), background="studio", background_seed=i)
        img = _pad_rows(np.asarray(render.image, dtype=np.uint8), *pad).astype(np.float64)
        mask = np.pad(np.asarray(render.mask) > 0, (pad, (0, 0)))
        bg = ~mask
        body_max = float(img[mask].max()) if mask.any() else 255.0
        if dark[i]:
            tint = np.array([1.0, 0.93, 0.82]) if rng.random() < 0.4 else np.ones(3)
            bg_max = float(img[bg].max()) if bg.any() else 255.0
            # After the decoder's normalisation the backdrop stays at most ~0.8 of full scale.
            f = min(float(rng.uniform(0.55, 0.8)), 0.8 * max(body_max, 1.0) / max(bg_max, 1.0))
            img[bg] = img[bg] * f * tint
        else:
            lowest = float(img[bg].min()) if bg.any() else 255.0
            if lowest < 245.0:  # lift the backdrop so that every channel is >= 245
                a = 10.0 / (255.0 - lowest)
                img[bg] = 255.0 - (255.0 - img[bg]) * a
        peak = float(img.max())
        img = np.clip(np.rint(img * (255.0 / peak)), 0, 255).astype(np.uint8) if peak > 0 else img.astype(np.uint8)
        images[i] = img
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        bg_rgb = np.median(img[bg], axis=0) if bg.any() else np.full(3, 255.0)
        attributes[str(i)] = {
            "identity": identity,
            "pose_k": k,
            "pose": getattr(pose, "name", None),
            "person": person.attributes(),
            "body_top": int(rows[0]) if rows.size else 0,
            "body_bottom": int(rows[-1]) + 1 if rows.size else size,
            "body_left": int(cols[0]) if cols.size else 0,
            "body_right": int(cols[-1]) + 1 if cols.size else size,
            "background_rgb": [int(round(c)) for c in bg_rgb],
            "light_background": bool(not dark[i]),
        }
    return images, attributes


def write_synthetic_fisb(
    path: str | os.PathLike,
    world,
    count: int,
    size: int = 128,
    seed: int = 0,
    *,
    dark_fraction: float = 0.3,
    n_poses: int = 8,
) -> Path:
    """Render ``count`` full-body studio photos from ``world`` (:func:`render_synthetic_fisb`) and write
    them as a FISB ``G2.h5`` at ``path`` (keys ``ih``, ``ih_mean``), atomically, with the side-car
    ``synthetic_attributes.json`` (index -> attributes) next to it."""
    import h5py

    path = Path(path)
    images, attributes = render_synthetic_fisb(world, count, size, seed, dark_fraction=dark_fraction,
                                               n_poses=n_poses)
    ih, ih_mean = _encode_images(images)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("ih", data=ih, chunks=(1,) + ih.shape[1:])
            f.create_dataset("ih_mean", data=ih_mean)
    meta = {"format": "synthetic FISB G2.h5", "file": path.name, "count": count, "size": size, "seed": seed,
            "images": attributes}
    with atomic_path(path.parent / ATTRIBUTES_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return path


def load_fisb_attributes(path: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """Index -> attributes from the synthetic side-car next to a synthetic ``G2.h5``."""
    side = Path(path).parent / ATTRIBUTES_FILE
    if not side.is_file():
        raise DataError(f"{side}: attributes file not found (only synthetic FISB has one)")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
        return {int(k): v for k, v in meta["images"].items()}
    except (json.JSONDecodeError, KeyError, ValueError) as exc:
        raise DataError(f"{side}: malformed attributes file ({exc.__class__.__name__}: {exc})") from exc


# --------------------------------------------------------------------------------------------- reading


class _H5Source:
    """The FISB ``G2.h5``, validated once; ``get(i)`` decodes image ``i`` (fork-safe, see :class:`LazyH5Array`)."""

    def __init__(self, path: Path, in_memory: bool = False) -> None:
        import h5py

        self.path = path
        if not path.is_file():
            raise DataError(f"{path}: FISB file not found")
        try:
            with h5py.File(path, "r") as f:
                keys = sorted(f.keys())
                for key in ("ih", "ih_mean"):
                    if key not in f:
                        raise DataError(f"{path}: missing key {key!r}; keys found: {keys}")
                ih, mean = f["ih"], f["ih_mean"]
                if ih.ndim != 4 or ih.shape[1] != 3 or ih.shape[0] == 0:
                    raise DataError(f"{path}: 'ih' has shape {ih.shape}, expected (N, 3, W, H) with N > 0")
                if tuple(mean.shape) != tuple(ih.shape[1:]):
                    raise DataError(f"{path}: 'ih_mean' has shape {mean.shape}, expected {ih.shape[1:]}")
                if not np.issubdtype(ih.dtype, np.floating):
                    raise DataError(f"{path}: 'ih' has dtype {ih.dtype}, expected float mean-subtracted images")
                self.n = int(ih.shape[0])
                self.shape = (int(ih.shape[3]), int(ih.shape[2]))  # (H, W)
                self.ih_mean = mean[()].astype(np.float64)
                self._ih = LazyH5Array(path, "ih", ih[()] if in_memory else None)
        except OSError as exc:
            raise DataError(f"{path}: not a readable hdf5 file ({exc})") from exc
        self.mean_max = float(self.ih_mean.max())

    def __len__(self) -> int:
        return self.n

    def get(self, i: int) -> np.ndarray:
        return decode_fisb_image(self._ih[i], self.ih_mean, self.mean_max)

    def iter_all(self, chunk: int = 256) -> Iterator[tuple[int, np.ndarray]]:
        ih = self._ih.data()
        for start in range(0, self.n, chunk):
            block = ih[start : start + chunk]
            for j in range(block.shape[0]):
                yield start + j, decode_fisb_image(block[j], self.ih_mean, self.mean_max)

    def fingerprint(self) -> dict[str, Any]:
        st = self.path.stat()
        return {"file": self.path.name, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "count": self.n}


def _read_cache(path: Path, fingerprint: dict[str, Any], key: str):
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError):
        return None
    if data.get("source") != fingerprint or key not in data:
        return None
    return data[key]


def _scrape(source: _H5Source) -> tuple[list[dict[str, int]], dict[str, list[int]]]:
    crops: list[dict[str, int]] = [None] * len(source)  # type: ignore[list-item]
    groups: dict[str, list[int]] = {}
    for i, img in source.iter_all():
        crops[i] = find_crop(img)
        groups.setdefault(detect_background(img), []).append(i)
    return crops, groups


def user_cache_dir() -> Path:
    """The per-user cache folder of this project: ``$XDG_CACHE_HOME/fashion-gans`` (else ``~/.cache/fashion-gans``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fashion-gans"


def fallback_cache_dir(h5_path: str | os.PathLike) -> Path:
    """Where the scraper caches of ``h5_path`` go when its own folder is read-only:
    ``user_cache_dir()/fisb/<hash of the file's absolute path>``."""
    digest = hashlib.sha1(str(Path(h5_path).resolve()).encode()).hexdigest()[:16]
    return user_cache_dir() / "fisb" / digest


def _writable_dir(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (or in its nearest existing parent, if it does not exist)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _write_caches(cache_dir: Path, fp: dict[str, Any], crops, groups) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache_dir / CROPS_FILE) as tmp:
        tmp.write_text(json.dumps({"source": fp, "crops": crops}), encoding="utf-8")
    with atomic_path(cache_dir / BACKGROUNDS_FILE) as tmp:
        tmp.write_text(json.dumps({"source": fp, "backgrounds": groups}), encoding="utf-8")


def _scrape_cached(source: _H5Source, cache_dir: Path) -> tuple[list[dict[str, int]], list[str], Path]:
    """Crop bounds and backgrounds from the caches in ``cache_dir`` (or the user cache fallback), else scraped
    and cached.  A read-only ``cache_dir`` (e.g. a shared dataset folder) falls back to
    :func:`fallback_cache_dir`.  Returns ``(crops, backgrounds, folder the caches are in)``."""
    fp = source.fingerprint()
    fallback = fallback_cache_dir(source.path)
    crops = groups = None
    used = cache_dir
    for folder in (cache_dir, fallback):
        crops = _read_cache(folder / CROPS_FILE, fp, "crops")
        groups = _read_cache(folder / BACKGROUNDS_FILE, fp, "backgrounds")
        if crops is not None and groups is not None and len(crops) == len(source):
            used = folder
            break
    else:
        crops, groups = _scrape(source)
        targets = [cache_dir, fallback] if _writable_dir(cache_dir) else [fallback]
        errors = []
        for folder in targets:
            try:
                _write_caches(folder, fp, crops, groups)
                used = folder
                break
            except OSError as exc:  # read-only despite the permission bits (e.g. a read-only mount)
                errors.append(f"{folder} ({exc.__class__.__name__}: {exc})")
        else:
            raise DataError(f"{source.path}: cannot write the scraper caches {CROPS_FILE}/{BACKGROUNDS_FILE} "
                            f"to {cache_dir} nor to {fallback}: " + "; ".join(errors))
    backgrounds = [""] * len(source)
    for colour, indices in groups.items():
        for i in indices:
            backgrounds[int(i)] = colour
    if any(not b for b in backgrounds):
        raise DataError(f"{used / BACKGROUNDS_FILE}: does not cover every image of {source.path}")
    return crops, backgrounds, used


class _HubSource(HubImageRows):
    """Decoded FISB images held by a Hugging Face dataset; ``get(i)`` reads the image of FISB index ``i``."""

    def __init__(self, ds, indices: np.ndarray) -> None:
        super().__init__(ds, np.arange(len(indices)), indices)

    def get(self, i: int) -> np.ndarray:  # type: ignore[override] - FISB sources are read by index
        return self.get_index(i)


class FISBDataset(Dataset):
    """FISB images for unconditional generation: ``{"image": (3, size, size) in [-1, 1], "index": int}``.

    ``min_background``: keep only images whose detected background is channel-wise at least this colour
    (the thesis trained on ``"#f0f0f0"``); ``None`` keeps all.  ``crop``: apply the per-image crop
    bounds and resize back to ``size`` (bicubic).  Crop bounds and background colours are computed on
    first use and cached as ``crops.json`` and ``backgrounds.json`` in ``cache_dir`` (default: next to the
    ``.h5``; when that folder is read-only, :func:`fallback_cache_dir` under ``$XDG_CACHE_HOME``), keyed by
    the file's size and modification time; ``self.cache_dir`` is the folder used.  ``split``: "train", "test" (a
    ``test_fraction`` share by index hash) or "all".

    Thesis erratum: the thesis' loader ended with ``clamp(0, 1)`` after normalising to ``[-1, 1]``,
    throwing away every dark value; images here keep the full ``[-1, 1]`` range.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        split: str = "train",
        size: int = 128,
        min_background: str | None = "#f0f0f0",
        crop: bool = True,
        in_memory: bool = False,
        *,
        test_fraction: float = 0.1,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / FISB_FILE
        source = _H5Source(path, in_memory=in_memory)
        crops, backgrounds, self.cache_dir = _scrape_cached(
            source, Path(cache_dir) if cache_dir is not None else path.parent
        )
        self.path = path
        self._init(source, np.arange(len(source)), crops, backgrounds, split, size, min_background, crop, test_fraction)

    def _init(self, source, indices, crops, backgrounds, split, size, min_background, crop, test_fraction) -> None:
        if min_background is not None:
            _hex_rgb(min_background)
        self._source = source
        self._crops = {int(i): c for i, c in zip(indices, crops)}
        self._backgrounds = {int(i): b for i, b in zip(indices, backgrounds)}
        self.size, self.crop, self.split, self.min_background = int(size), bool(crop), split, min_background
        total = int(max(indices)) + 1 if len(indices) else 0
        in_split = hash_split(total, split, test_fraction, salt="fisb")
        keep = [int(i) for i in indices if in_split[int(i)]]
        if min_background is not None:
            keep = [i for i in keep if hex_at_least(self._backgrounds[i], min_background)]
        self.indices = np.asarray(keep, dtype=np.int64)

    @classmethod
    def from_hf(
        cls,
        repo_id_or_path: str | os.PathLike,
        split: str = "train",
        size: int = 128,
        min_background: str | None = "#f0f0f0",
        crop: bool = True,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> "FISBDataset":
        """The same dataset read from a Hugging Face dataset written from :func:`iter_hf_records`
        (whose split already is ``split``; crop bounds and backgrounds come from its columns)."""
        from .hf import load_hf_split

        ds = load_hf_split(repo_id_or_path, split, revision=revision, cache_dir=cache_dir,
                           required_columns=_hf_features())
        cols = ds.select_columns(["index", "background", "h_from", "h_until", "w_from", "w_until"])[:]
        indices = np.asarray(cols["index"], dtype=np.int64)
        crops = [
            {"h_from": a, "h_until": b, "w_from": c, "w_until": d, "upscale_size": None}
            for a, b, c, d in zip(cols["h_from"], cols["h_until"], cols["w_from"], cols["w_until"])
        ]
        self = cls.__new__(cls)
        self.path = Path(str(repo_id_or_path))
        self.cache_dir = None
        self._init(_HubSource(ds, indices), indices, crops, list(cols["background"]), "all", size,
                   min_background, crop, 0.0)
        self.split = split
        return self

    def background_groups(self) -> dict[str, list[int]]:
        """``backgrounds.json`` content for the images of this dataset: hex colour -> indices."""
        groups: dict[str, list[int]] = {}
        for i in self.indices:
            groups.setdefault(self._backgrounds[int(i)], []).append(int(i))
        return groups

    def crop_bounds(self, index: int) -> dict[str, int]:
        return dict(self._crops[int(index)])

    def image_array(self, index: int) -> np.ndarray:
        """The decoded, uncropped ``uint8`` image of FISB index ``index``."""
        return self._source.get(int(index))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, Any]:
        index = int(self.indices[k])
        img = self._source.get(index)
        if self.crop:
            c = self._crops[index]
            img = img[c["h_from"] : c["h_until"], c["w_from"] : c["w_until"]]
        if img.shape[0] != self.size or img.shape[1] != self.size:
            img = np.array(Image.fromarray(img).resize((self.size, self.size), Image.BICUBIC))
        return {"image": array_to_tensor(img), "index": index}


def iter_hf_records(
    path: str | os.PathLike,
    split: str = "train",
    *,
    test_fraction: float = 0.1,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Iterator[dict[str, Any]]:
    """Records for :data:`HF_FEATURES`: the decoded, uncropped images of ``split`` (every background),
    with their crop bounds and background colour so that :meth:`FISBDataset.from_hf` can crop and filter."""
    ds = FISBDataset(path, split=split, min_background=None, crop=False, test_fraction=test_fraction,
                     cache_dir=cache_dir)
    for n, index in enumerate(ds.indices):
        if limit is not None and n >= limit:
            break
        c = ds.crop_bounds(int(index))
        yield {
            "image": ds.image_array(int(index)),
            "index": int(index),
            "background": ds._backgrounds[int(index)],
            "h_from": c["h_from"],
            "h_until": c["h_until"],
            "w_from": c["w_from"],
            "w_until": c["w_until"],
        }
