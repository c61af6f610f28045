"""Body keypoints: the OpenPose-18 layout, conversions, heatmaps, flips and drawing.

Keypoints are ``float32`` arrays of shape ``(18, 2)`` holding **(x, y) pixel coordinates** of the image they
belong to, in OpenPose-18 order (:data:`OPENPOSE18_NAMES`). Pixel ``(row i, column j)`` has its centre at
``(x, y) = (j, i)``, the convention of numpy indexing and PIL drawing. A missing or invisible joint is
``(-1, -1)``; any joint with a negative coordinate is treated as missing.

The pose-transfer literature (PG2, PATN and their successors) stores the same 18 joints as
``keypoints_y``/``keypoints_x`` lists with ``-1`` for missing joints; COCO-17 and BlazePose-33 detectors are
converted with :func:`coco17_to_openpose18` / :func:`blazepose33_to_openpose18`, the neck being the mean of the
two shoulders.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "OPENPOSE18_NAMES",
    "OPENPOSE18_LIMBS",
    "OPENPOSE18_FLIP",
    "OPENPOSE18_COLOURS",
    "COCO17_NAMES",
    "COCO17_TO_OPENPOSE18",
    "OPENPOSE18_TO_COCO17",
    "BLAZEPOSE_TO_COCO17",
    "MISSING",
    "visible_joints",
    "validate_keypoints",
    "keypoints_to_heatmaps",
    "heatmaps_to_keypoints",
    "coco17_to_openpose18",
    "openpose18_to_coco17",
    "blazepose33_to_openpose18",
    "flip_keypoints",
    "scale_keypoints",
    "draw_skeleton",
    "keypoints_to_body_mask",
]

OPENPOSE18_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)

#: Skeleton edges drawn by OpenPose (its 17 drawn limbs, in its drawing/colour order).
OPENPOSE18_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7),
    (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

#: ``flipped[i] = original[OPENPOSE18_FLIP[i]]``: the permutation that swaps left and right joints.
OPENPOSE18_FLIP: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

#: The 18 colours OpenPose uses for joints (and, in order, for the limbs of :data:`OPENPOSE18_LIMBS`).
OPENPOSE18_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)

COCO17_NAMES: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear",
    "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)

#: OpenPose joint ``j`` is COCO joint ``COCO17_TO_OPENPOSE18[j]``; ``-1`` marks the neck, which COCO lacks
#: (it is the mean of the two shoulders).
COCO17_TO_OPENPOSE18: tuple[int, ...] = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)

#: COCO joint ``i`` is OpenPose joint ``OPENPOSE18_TO_COCO17[i]``.
OPENPOSE18_TO_COCO17: tuple[int, ...] = tuple(COCO17_TO_OPENPOSE18.index(i) for i in range(17))

#: COCO joint ``i`` is BlazePose (MediaPipe Pose, 33 landmarks) landmark ``BLAZEPOSE_TO_COCO17[i]``.
BLAZEPOSE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

MISSING: float = -1.0

_NECK = OPENPOSE18_NAMES.index("neck")
_R_SHOULDER = OPENPOSE18_NAMES.index("r_shoulder")
_L_SHOULDER = OPENPOSE18_NAMES.index("l_shoulder")
_R_HIP = OPENPOSE18_NAMES.index("r_hip")
_L_HIP = OPENPOSE18_NAMES.index("l_hip")
_NOSE = OPENPOSE18_NAMES.index("nose")


def _as_keypoints(kp, n_joints: int | None = None, name: str = "keypoints") -> np.ndarray:
    try:
        arr = np.array(kp, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not a numeric array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: expected shape (n_joints, 2) of (x, y), got {arr.shape}")
    if n_joints is not None and arr.shape[0] != n_joints:
        raise ValueError(f"{name}: expected {n_joints} joints, got {arr.shape[0]}")
    return arr


def visible_joints(kp) -> np.ndarray:
    """Boolean ``(n,)`` array: ``True`` for joints with both coordinates ``>= 0``."""
    arr = np.asarray(kp, dtype=np.float32)
    return (arr[..., 0] >= 0) & (arr[..., 1] >= 0)


def validate_keypoints(kp, n_joints: int = 18, min_visible: int = 1, *,
                       size: tuple[int, int] | None = None) -> np.ndarray:
    """Check a keypoint array and return it as ``float32 (n_joints, 2)`` with missing joints set to ``(-1, -1)``.

    Raises ``ValueError`` naming the problem: wrong shape, NaN/inf, a joint with one negative and one
    non-negative coordinate, fewer than ``min_visible`` visible joints, or (when ``size=(H, W)`` is given) a
    visible joint outside the image.
    """
    arr = _as_keypoints(kp, n_joints)
    if not np.all(np.isfinite(arr)):
        bad = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        raise ValueError(f"keypoints: joint {bad} ({_joint_name(bad, n_joints)}) is not finite: {arr[bad].tolist()}")
    neg = arr < 0
    half = neg[:, 0] != neg[:, 1]
    if half.any():
        bad = int(np.nonzero(half)[0][0])
        raise ValueError(
            f"keypoints: joint {bad} ({_joint_name(bad, n_joints)}) is {arr[bad].tolist()}; "
            "a missing joint must have both coordinates negative, e.g. (-1, -1)")
    vis = ~neg[:, 0]
    arr[~vis] = MISSING
    if int(vis.sum()) < min_visible:
        raise ValueError(f"keypoints: only {int(vis.sum())} visible joints, need at least {min_visible}")
    if size is not None:
        h, w = size
        outside = vis & ((arr[:, 0] > w - 1) | (arr[:, 1] > h - 1))
        if outside.any():
            bad = int(np.nonzero(outside)[0][0])
            raise ValueError(f"keypoints: joint {bad} ({_joint_name(bad, n_joints)}) at {arr[bad].tolist()} "
                             f"lies outside the {h}x{w} image")
    return arr


def _joint_name(i: int, n_joints: int) -> str:
    if n_joints == 18:
        return OPENPOSE18_NAMES[i]
    if n_joints == 17:
        return COCO17_NAMES[i]
    return f"joint {i}"


def _check_size(size, name: str = "size") -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected (H, W), got {size!r}") from exc
    if h < 1 or w < 1:
        raise ValueError(f"{name}: expected positive (H, W), got {size!r}")
    return h, w


def keypoints_to_heatmaps(keypoints, size: tuple[int, int], sigma: float = 6.0) -> np.ndarray:
    """One Gaussian blob per joint: ``float32 (n_joints, H, W)`` in ``[0, 1]``, peak 1 at the joint.

    Missing joints, and joints outside the image, give an all-zero channel.
    """
    kp = _as_keypoints(keypoints)
    h, w = _check_size(size)
    if not sigma > 0:
        raise ValueError(f"sigma: must be positive, got {sigma}")
    vis = visible_joints(kp) & (kp[:, 0] <= w - 1) & (kp[:, 1] <= h - 1)
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)
    inv = np.float32(-0.5 / (sigma * sigma))
    gx = np.exp((xs[None, :] - kp[:, 0:1]) ** 2 * inv)  # (n, W)
    gy = np.exp((ys[None, :] - kp[:, 1:2]) ** 2 * inv)  # (n, H)
    gx[~vis] = 0.0
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32, copy=False)


def heatmaps_to_keypoints(heatmaps, threshold: float = 0.1, *, subpixel: bool = False) -> np.ndarray:
    """Arg-max of each channel as ``(x, y)``; ``(-1, -1)`` where the channel's maximum is below ``threshold``.

    With ``subpixel=True`` the arg-max is refined by a parabola fit to the log-heatmap along x and y (exact
    for the Gaussian blobs of :func:`keypoints_to_heatmaps`).
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 3:
        raise ValueError(f"heatmaps: expected shape (n_joints, H, W), got {hm.shape}")
    n, h, w = hm.shape
    flat = hm.reshape(n, -1)
    idx = flat.argmax(axis=1)
    peak = flat[np.arange(n), idx]
    ys, xs = np.divmod(idx, w)
    out = np.stack([xs, ys], axis=1).astype(np.float32)
    if subpixel:
        for j in range(n):
            if peak[j] < threshold:
                continue
            x, y = int(xs[j]), int(ys[j])
            if 0 < x < w - 1:
                out[j, 0] += _parabola_offset(hm[j, y, x - 1], hm[j, y, x], hm[j, y, x + 1])
            if 0 < y < h - 1:
                out[j, 1] += _parabola_offset(hm[j, y - 1, x], hm[j, y, x], hm[j, y + 1, x])
    out[peak < threshold] = MISSING
    return out


def _parabola_offset(a: float, b: float, c: float) -> float:
    eps = 1e-12
    la, lb, lc = np.log(max(a, eps)), np.log(max(b, eps)), np.log(max(c, eps))
    denom = la - 2.0 * lb + lc
    if denom >= -1e-9:
        return 0.0
    return float(np.clip(0.5 * (la - lc) / denom, -0.5, 0.5))


def coco17_to_openpose18(kp17) -> np.ndarray:
    """COCO-17 keypoints -> OpenPose-18; the neck is the mean of the shoulders (missing if either is)."""
    kp = _as_keypoints(kp17, 17, "kp17")
    vis = visible_joints(kp)
    out = np.full((18, 2), MISSING, dtype=np.float32)
    for j, c in enumerate(COCO17_TO_OPENPOSE18):
        if c >= 0 and vis[c]:
            out[j] = kp[c]
    ls, rs = COCO17_NAMES.index("l_shoulder"), COCO17_NAMES.index("r_shoulder")
    if vis[ls] and vis[rs]:
        out[_NECK] = 0.5 * (kp[ls] + kp[rs])
    return out


def openpose18_to_coco17(kp18) -> np.ndarray:
    """OpenPose-18 keypoints -> COCO-17 (the neck is dropped)."""
    kp = _as_keypoints(kp18, 18, "kp18")
    out = kp[list(OPENPOSE18_TO_COCO17)].copy()
    out[~visible_joints(out)] = MISSING
    return out


def blazepose33_to_openpose18(kp33) -> np.ndarray:
    """BlazePose (MediaPipe Pose, 33 landmarks) -> OpenPose-18 via COCO-17."""
    kp = _as_keypoints(kp33, 33, "kp33")
    return coco17_to_openpose18(kp[list(BLAZEPOSE_TO_COCO17)])


def flip_keypoints(kp, width: int) -> np.ndarray:
    """Mirror keypoints of an image of the given width: ``x -> width - 1 - x`` and left/right joints swapped.

    Matches ``image[:, ::-1]``. Missing joints stay missing.
    """
    arr = _as_keypoints(kp, 18)
    vis = visible_joints(arr)
    out = arr.copy()
    out[vis, 0] = (width - 1) - arr[vis, 0]
    out[~vis] = MISSING
    return out[list(OPENPOSE18_FLIP)]


def scale_keypoints(kp, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Map keypoints of an image of ``from_size=(H, W)`` onto the same image resized to ``to_size=(H, W)``.

    Pixel centres are aligned the way image resizing (PIL, ``align_corners=False``) aligns them:
    ``x' = (x + 0.5) * W'/W - 0.5``. Missing joints stay missing.
    """
    arr = _as_keypoints(kp)
    h0, w0 = _check_size(from_size, "from_size")
    h1, w1 = _check_size(to_size, "to_size")
    vis = visible_joints(arr)
    out = np.full_like(arr, MISSING)
    out[vis, 0] = (arr[vis, 0] + 0.5) * (w1 / w0) - 0.5
    out[vis, 1] = (arr[vis, 1] + 0.5) * (h1 / h0) - 0.5
    # A joint that lands a hair below 0 after rounding is still on the image.
    out[vis] = np.maximum(out[vis], 0.0)
    return out


def draw_skeleton(keypoints, size_or_image, *, thickness: int | None = None, radius: int | None = None,
                  limbs: Sequence[tuple[int, int]] = OPENPOSE18_LIMBS) -> np.ndarray:
    """Draw an OpenPose-style skeleton: coloured limbs and joints, ``uint8 (H, W, 3)``.

    ``size_or_image`` is either ``(H, W)`` (black canvas) or a ``uint8`` HWC/HW image (or PIL image) to draw
    over; the input is never modified. Limbs with a missing end are skipped.
    """
    kp = _as_keypoints(keypoints, 18)
    if isinstance(size_or_image, Image.Image):
        canvas = size_or_image.convert("RGB").copy()
    elif isinstance(size_or_image, np.ndarray):
        arr = size_or_image
        if arr.dtype != np.uint8:
            raise ValueError(f"image: expected uint8, got {arr.dtype}")
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"image: expected (H, W, 3), got {arr.shape}")
        canvas = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    else:
        h, w = _check_size(size_or_image, "size_or_image")
        canvas = Image.new("RGB", (w, h), (0, 0, 0))
    w, h = canvas.size
    if thickness is None:
        thickness = max(1, int(round(min(h, w) / 64)))
    if radius is None:
        radius = max(1, int(round(min(h, w) / 64)))
    draw = ImageDraw.Draw(canvas)
    vis = visible_joints(kp)
    for i, (a, b) in enumerate(limbs):
        if vis[a] and vis[b]:
            colour = OPENPOSE18_COLOURS[i % len(OPENPOSE18_COLOURS)]
            draw.line([tuple(kp[a]), tuple(kp[b])], fill=colour, width=thickness)
    for j in np.nonzero(vis)[0]:
        x, y = kp[j]
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=OPENPOSE18_COLOURS[j])
    return np.asarray(canvas, dtype=np.uint8).copy()


def keypoints_to_body_mask(kp, size: tuple[int, int], width: float | None = None) -> np.ndarray:
    """A body-shaped ``uint8`` {0, 1} mask ``(H, W)`` from OpenPose-18 keypoints: the skeleton drawn thick
    (``width`` px, default ``max(2, H / 10)``), the torso filled, the head a disc, then dilated.

    Used for the mask-weighted L1 of pose transfer when no DensePose IUV map exists (the PGPG paper derives
    its mask the same way). Missing joints are left out.
    """
    h, w = _check_size(size)
    kp = _as_keypoints(kp, 18)
    width = width if width is not None else max(2.0, h / 10.0)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    vis = visible_joints(kp)
    for a, b in OPENPOSE18_LIMBS:
        if vis[a] and vis[b]:
            draw.line([tuple(kp[a]), tuple(kp[b])], fill=1, width=int(round(width)))
    r = width / 2
    for x, y in kp[vis]:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=1)
    torso = [j for j in (_R_SHOULDER, _L_SHOULDER, _L_HIP, _R_HIP) if vis[j]]
    if len(torso) >= 3:
        draw.polygon([tuple(kp[j]) for j in torso], fill=1)
    if vis[_NOSE]:  # head
        x, y = kp[_NOSE]
        draw.ellipse([x - width, y - width, x + width, y + width], fill=1)
    k = max(3, int(round(width / 2)) | 1)
    canvas = canvas.filter(ImageFilter.MaxFilter(k))
    return np.asarray(canvas, np.uint8)
