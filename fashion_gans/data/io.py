"""Image and file I/O shared by every dataset.

Conventions: images are ``uint8`` HWC arrays or PIL images at the edges (files, metrics, UI) and
``float32`` CHW tensors in ``[-1, 1]`` inside the models.  Every reader raises :class:`DataError`
naming the file and the problem; every writer writes to a temporary file first and renames it, so an
interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DataError",
    "atomic_path",
    "atomic_directory",
    "IMAGE_CHECKS",
    "check_image_file",
    "UnreadableImages",
    "find_unreadable_images",
    "load_image",
    "save_image",
    "pil_to_tensor",
    "array_to_tensor",
    "tensor_to_array",
    "tensor_to_pil",
    "label_map_to_tensor",
]


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once here, at import, rather than on every write, because
    # the writes run in concurrent threads (e.g. the demo's workers) and the brief 0 would leak into their files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The process umask when this module was imported (files written here get ``0o666 & ~_UMASK``).
_UMASK = _read_umask()


class DataError(ValueError):
    """A dataset file is missing, corrupt or malformed. The message names the file and the problem."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the usual permissions (0666 less the umask).
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success rename it onto ``path``.

    On an exception the temporary folder is removed and ``path`` is untouched. With ``overwrite`` an existing
    ``path`` is replaced (moved aside first, deleted after the rename); otherwise it is a ``FileExistsError``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it private; a dataset folder should not be
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "previous")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: Build-time image checks: "header" (header, structure and the end-of-image marker; no pixel decode),
#: "decode" (a full decode) and "none".
IMAGE_CHECKS = ("header", "decode", "none")
_TAIL_BYTES = 64


def _truncation_problem(path: Path, fmt: str | None) -> str | None:
    """JPEG must end with the EOI marker FFD9, PNG with its IEND chunk (trailing zero padding allowed)."""
    if fmt not in ("JPEG", "PNG"):
        return None
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read().rstrip(b"\x00")
    if fmt == "JPEG" and not tail.endswith(b"\xff\xd9"):
        return "truncated JPEG (no end-of-image marker FFD9)"
    if fmt == "PNG" and tail[-8:-4] != b"IEND":
        return "truncated PNG (no IEND chunk at the end)"
    return None


def check_image_file(path: str | os.PathLike, check: str = "header") -> str | None:
    """Whether an image file can be read: ``None`` if so, else the problem as text.

    ``check="header"`` opens the file, verifies its structure (``PIL.Image.verify``, which does not decode
    JPEG data) and requires a JPEG to end with its end-of-image marker and a PNG with its IEND chunk, so
    that truncated files are found without decoding them.  ``check="decode"`` decodes the pixels fully.
    """
    if check not in IMAGE_CHECKS:
        raise ValueError(f"check must be one of {IMAGE_CHECKS}, got {check!r}")
    if check == "none":
        return None
    path = Path(path)
    try:
        if check == "decode":
            with Image.open(path) as img:
                img.load()
            return None
        with Image.open(path) as img:
            fmt = img.format
            img.verify()
        return _truncation_problem(path, fmt)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"{exc.__class__.__name__}: {exc}"


@dataclass
class UnreadableImages:
    """What :func:`find_unreadable_images` found: the keys of unreadable entries and a note per bad file."""

    bad: set = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    total: int = 0

    def __bool__(self) -> bool:
        return bool(self.bad)

    def warn(self, what: str, n_skipped_pairs: int, stacklevel: int = 3) -> None:
        """One warning for the lot: how many images and pairs were skipped, with an example."""
        warnings.warn(f"{what}: skipped {len(self.bad)} unreadable images and the {n_skipped_pairs} pairs that "
                      f"use them, e.g. {self.problems[0]}", stacklevel=stacklevel + 1)


def find_unreadable_images(
    candidates: Mapping[Hashable, Sequence[str | os.PathLike | None]] | Iterable[tuple[Hashable, Sequence]],
    *,
    check: str = "header",
    max_fraction: float = 0.05,
    where: str | os.PathLike = "",
) -> UnreadableImages:
    """Check the image files of each entry (key -> paths; ``None`` paths are skipped) with :func:`check_image_file`.

    An entry is bad when any of its files is.  More than ``max_fraction`` of the entries bad is a
    :class:`DataError` naming ``where`` and the first problems (a few bad files are skipped, a broken
    download is not).
    """
    items = candidates.items() if isinstance(candidates, Mapping) else candidates
    found = UnreadableImages()
    for key, paths in items:
        found.total += 1
        if check == "none":
            continue
        for path in paths:
            if path is None:
                continue
            problem = check_image_file(path, check)
            if problem is not None:
                found.bad.add(key)
                found.problems.append(f"{path} ({problem})")
                break
    if len(found.bad) > max_fraction * max(1, found.total):
        raise DataError(f"{where}: {len(found.bad)} of {found.total} images cannot be read, e.g. "
                        + "; ".join(found.problems[:3]))
    return found


def load_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """Open an image file fully (EXIF rotation applied) and convert it to ``mode``.

    Raises :class:`DataError` if the file is missing or is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if mode in ("RGB", "L") and img.mode in ("RGBA", "LA", "P", "PA"):
                # Composite transparency on white rather than on black.
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            elif img.mode in ("I;16", "I;16B", "I;16L", "I") and mode in ("RGB", "L"):
                arr = np.asarray(img, dtype=np.float64)
                hi = max(float(arr.max()), 1.0)
                scale = 65535.0 if hi > 255 else 255.0
                img = Image.fromarray(np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8))
            return img.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({exc.__class__.__name__}: {exc})") from exc


def save_image(image: Image.Image | np.ndarray, path: str | os.PathLike, **save_kwargs) -> Path:
    """Save an image atomically. The format follows the file suffix (``.jpg`` gets quality 95)."""
    path = Path(path)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown image suffix {path.suffix!r}")
    if fmt == "JPEG":
        save_kwargs.setdefault("quality", 95)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)
    return path


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``uint8`` HWC (or HW) array -> ``float32`` CHW tensor in ``[-1, 1]``."""
    if array.dtype != np.uint8:
        raise DataError(f"expected a uint8 image array, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise DataError(f"expected an HWC image array, got shape {array.shape}")
    if not array.flags.writeable:  # e.g. np.asarray(PIL image); torch warns on read-only memory
        array = array.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float()
    return tensor.div_(127.5).sub_(1.0)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> ``float32`` CHW tensor in ``[-1, 1]``."""
    return array_to_tensor(np.asarray(image))


def label_map_to_tensor(array: np.ndarray) -> torch.Tensor:
    """Integer label map (HW) -> ``int64`` tensor, values unchanged (never interpolated)."""
    if array.ndim != 2:
        raise DataError(f"expected an HW label map, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array).astype(np.int64))


def tensor_to_array(tensor: torch.Tensor) -> np.ndarray:
    """``[-1, 1]`` CHW (or NCHW with N=1) tensor -> ``uint8`` HWC array (HW for one channel)."""
    t = tensor.detach().float().cpu()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"expected a CHW tensor, got shape {tuple(t.shape)}")
    arr = ((t.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """``[-1, 1]`` CHW tensor -> PIL image."""
    return Image.fromarray(tensor_to_array(tensor))
