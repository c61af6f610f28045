"""Pose transfer: a photo of a person + a target pose (18 OpenPose keypoints) -> the person in that pose.

A target pose is 18 ``(x, y)`` keypoints in **normalised frame coordinates** (``0..1`` across the output image,
pixel centres at ``(i + 0.5) / size``; ``(-1, -1)`` for a missing joint), so one pose fits any model resolution.
It comes from

* the pose gallery: the synthetic world's poses (:data:`POSE_GALLERY`), via :func:`gallery_pose`;
* a reference photo: offline pose estimation with MediaPipe BlazePose (:func:`estimate_pose`; the model ships in
  the ``mediapipe`` wheel, nothing is downloaded); its 33 landmarks are reduced to COCO-17 and OpenPose-18 (the
  neck is the mean of the shoulders);
* or joint by joint (:func:`set_joint`).

The pipeline feeds the generator exactly what the training data loader does: the person image in ``[-1, 1]`` at
the model size and one Gaussian heatmap per joint with the In-shop loader's sigma (``max(1, 6 H / 256)`` px).
"""

from __future__ import annotations

import threading
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from fashion_gans.data.pose import (
    OPENPOSE18_NAMES,
    blazepose33_to_openpose18,
    draw_skeleton,
    keypoints_to_heatmaps,
    visible_joints,
)
from fashion_gans.data.synthetic import POSE_NAMES, base_pose

from .base import Pipeline, PipelineError
from .images import fit_image, image_to_tensor, load_input_image, tensor_to_image

__all__ = ["POSE_GALLERY", "JOINT_NAMES", "MIN_POSE_JOINTS", "PoseInputError", "PoseEstimate", "PoseTransferResult",
           "PoseTransferPipeline", "gallery_pose", "estimate_pose", "set_joint", "pose_to_pixels", "pixels_to_pose",
           "reframe_pose", "heatmap_sigma", "draw_pose", "parse_pose", "recentre_pose"]

#: Poses of the pose gallery (the synthetic world's poses; ``"<name> (mirrored)"`` flips left and right).
POSE_GALLERY: tuple[str, ...] = POSE_NAMES
JOINT_NAMES: tuple[str, ...] = OPENPOSE18_NAMES
#: A target or estimated pose needs at least this many visible joints.
MIN_POSE_JOINTS = 8
#: BlazePose landmarks below this visibility count as not found.
MIN_VISIBILITY = 0.5


class PoseInputError(ValueError):
    """A target pose is unusable (empty, malformed, too few joints) or none could be estimated from a photo."""


# ---------------------------------------------------------------------------------------------- coordinates
def pose_to_pixels(pose: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Normalised ``(x, y)`` -> pixel ``(x, y)`` of an image of ``size=(H, W)``; missing joints stay ``(-1, -1)``."""
    kp = np.asarray(pose, np.float32)
    h, w = size
    vis = visible_joints(kp)
    out = np.full_like(kp, -1.0)
    out[vis] = kp[vis] * np.array([w, h], np.float32) - 0.5
    out[vis] = np.clip(out[vis], 0, [w - 1, h - 1])
    return out


def pixels_to_pose(kp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixel ``(x, y)`` of an image of ``size=(H, W)`` -> normalised; missing joints stay ``(-1, -1)``."""
    arr = np.asarray(kp, np.float32)
    h, w = size
    vis = visible_joints(arr)
    out = np.full_like(arr, -1.0)
    out[vis] = (arr[vis] + 0.5) / np.array([w, h], np.float32)
    return out


def reframe_pose(pose: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]) -> np.ndarray:
    """A pose normalised to a frame of ``src_size=(H, W)`` -> the same body in a frame of ``dst_size``: scaled by
    the height ratio (a person spans the frame's height) and centred horizontally, as the synthetic world and the
    fitted photos place people.  Joints that fall outside the new frame become missing ``(-1, -1)``."""
    kp = np.asarray(pose, np.float32).reshape(-1, 2)
    (h0, w0), (h1, w1) = (tuple(float(v) for v in s) for s in (src_size, dst_size))
    out = kp.copy()
    vis = (kp[:, 0] >= 0) & (kp[:, 1] >= 0)
    out[vis, 0] = (kp[vis, 0] * w0 - w0 / 2) * (h1 / h0) / w1 + 0.5
    out[~vis | (out[:, 0] < 0) | (out[:, 0] > 1)] = -1.0
    return out


def parse_pose(pose: Any, name: str = "pose") -> np.ndarray:
    """Check a normalised pose (18 ``(x, y)`` pairs, nested list/array or ``{"keypoints": ...}``) and return it
    as ``float32 (18, 2)``; a joint outside ``[0, 1]`` counts as missing.  Raises :class:`PoseInputError`."""
    if isinstance(pose, dict):
        pose = pose.get("keypoints")
    if pose is None:
        raise PoseInputError(f"{name}: no target pose given")
    try:
        arr = np.array(pose, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise PoseInputError(f"{name}: not a list of 18 (x, y) pairs ({exc})") from exc
    if arr.size == 0:
        raise PoseInputError(f"{name}: the target pose is empty (no joints); pick a pose from the gallery, "
                             "estimate one from a photo or place joints")
    if arr.shape != (18, 2):
        raise PoseInputError(f"{name}: expected 18 (x, y) pairs in OpenPose-18 order, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise PoseInputError(f"{name}: coordinates must be finite numbers")
    inside = (arr[:, 0] >= 0) & (arr[:, 1] >= 0) & (arr[:, 0] <= 1) & (arr[:, 1] <= 1)
    arr[~inside] = -1.0
    return arr


def _require_joints(pose: np.ndarray, what: str, minimum: int = MIN_POSE_JOINTS) -> None:
    n = int(visible_joints(pose).sum())
    if n < minimum:
        raise PoseInputError(f"{what} is a pose with too few joints ({n} of 18 visible, at least {minimum} needed)")


def gallery_pose(name: str, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Normalised keypoints of gallery pose ``name`` (:data:`POSE_GALLERY`, optionally ``"... (mirrored)"``) as
    the synthetic world draws it in a frame of aspect ``size``."""
    base, mirror = name, False
    if name.endswith(" (mirrored)"):
        base, mirror = name[: -len(" (mirrored)")], True
    if base not in POSE_GALLERY:
        raise PoseInputError(f"unknown gallery pose {name!r}; choose one of {', '.join(POSE_GALLERY)}")
    return pixels_to_pose(base_pose(base, mirror=mirror).pixel_keypoints(size), size)


def set_joint(pose: Any, joint: str | int, x: float, y: float) -> np.ndarray:
    """A copy of ``pose`` with ``joint`` (name or index) moved to normalised ``(x, y)``; a negative or outside
    position removes the joint."""
    arr = parse_pose(pose) if pose is not None and np.size(pose) else np.full((18, 2), -1.0, np.float32)
    if isinstance(joint, str):
        if joint not in JOINT_NAMES:
            raise PoseInputError(f"unknown joint {joint!r}; choose one of {', '.join(JOINT_NAMES)}")
        j = JOINT_NAMES.index(joint)
    else:
        j = int(joint)
        if not 0 <= j < 18:
            raise PoseInputError(f"joint index must be in 0..17, got {j}")
    out = arr.copy()
    out[j] = (x, y) if 0 <= x <= 1 and 0 <= y <= 1 else (-1.0, -1.0)
    return out


def recentre_pose(pose: np.ndarray, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Scale and shift a pose so its body spans the frame as the gallery poses (and the training images) do:
    the highest head/neck joint and the lowest leg joint land where they are on the front gallery pose, and the
    body is centred horizontally.  Poses without a head or leg joint are only centred."""
    kp = np.asarray(pose, np.float32).copy()
    vis = visible_joints(kp)
    if vis.sum() < 2:
        return kp
    ref = gallery_pose("front", size)
    top_joints = [JOINT_NAMES.index(n) for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear", "neck")]
    bottom_joints = [JOINT_NAMES.index(n) for n in ("r_ankle", "l_ankle", "r_knee", "l_knee", "r_hip", "l_hip")]
    tops = [j for j in top_joints if vis[j]]
    bottoms = next(([j] for j in bottom_joints if vis[j]), [])
    scale, shift_y = 1.0, 0.0
    if tops and bottoms:
        t = min(tops, key=lambda j: kp[j, 1])
        b = bottoms[0]
        span, ref_span = kp[b, 1] - kp[t, 1], ref[b, 1] - ref[t, 1]
        if span > 1e-3 and ref_span > 1e-3:
            scale = float(ref_span / span)
            shift_y = float(ref[t, 1] - kp[t, 1] * scale)
    out = kp.copy()
    out[vis, 1] = kp[vis, 1] * scale + shift_y
    centre = 0.5 * (kp[vis, 0].min() + kp[vis, 0].max())
    out[vis, 0] = (kp[vis, 0] - centre) * scale + 0.5
    outside = (out[:, 0] < 0) | (out[:, 0] > 1) | (out[:, 1] < 0) | (out[:, 1] > 1)
    out[~vis | outside] = -1.0
    return out


def draw_pose(pose: np.ndarray, size: tuple[int, int] = (256, 256), background: Image.Image | None = None,
              highlight: int | None = None) -> Image.Image:
    """The OpenPose skeleton of a normalised pose on black (or over ``background``), ``highlight`` circled."""
    h, w = size
    kp = pose_to_pixels(np.asarray(pose, np.float32), (h, w))
    canvas = background.convert("RGB").resize((w, h)) if background is not None else (h, w)
    img = Image.fromarray(draw_skeleton(kp, canvas, thickness=max(2, h // 64), radius=max(3, h // 64)))
    if highlight is not None and visible_joints(kp)[highlight]:
        from PIL import ImageDraw

        x, y = kp[highlight]
        r = max(6, h // 32)
        ImageDraw.Draw(img).ellipse([x - r, y - r, x + r, y + r], outline=(255, 255, 255), width=2)
    return img


def heatmap_sigma(height: int) -> float:
    """The keypoint heatmap sigma the In-shop loader uses at this height (6 px at 256 px, at least 1)."""
    return max(1.0, 6.0 * height / 256.0)


# ---------------------------------------------------------------------------------------------- BlazePose
_BLAZEPOSE = None
_BLAZEPOSE_LOCK = threading.Lock()


def _blazepose():
    global _BLAZEPOSE
    if _BLAZEPOSE is None:
        import os

        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ info/warning lines on every start
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise PipelineError("pose estimation from a photo needs mediapipe (pip install mediapipe==0.10.21)") \
                from exc
        # model_complexity=1 is the BlazePose model inside the wheel (0 and 2 would be downloaded).
        _BLAZEPOSE = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False)
    return _BLAZEPOSE


@dataclass
class PoseEstimate:
    """A pose found in a photo: ``pose`` normalised to the output frame (as the photo is fitted into it),
    ``keypoints`` in the photo's own pixels, and ``overlay``, the photo with the skeleton drawn over it."""

    pose: np.ndarray
    keypoints: np.ndarray
    overlay: Image.Image
    visible: int


def estimate_pose(image: Any, *, frame: tuple[int, int] = (256, 256), fit: str = "pad",
                  min_joints: int = MIN_POSE_JOINTS, name: str = "reference photo") -> PoseEstimate:
    """Find the body pose in a photo with BlazePose (offline) as OpenPose-18 keypoints.

    Raises :class:`PoseInputError` when no person is found or the pose has fewer than ``min_joints`` joints
    (mannequins, drawings and garments on their own often give too few).
    """
    img = load_input_image(image, name=name).convert("RGB")
    arr = np.asarray(img)
    with _BLAZEPOSE_LOCK:
        result = _blazepose().process(arr)
    if result.pose_landmarks is None:
        raise PoseInputError(f"{name}: no person found; it is a pose with too few joints (0 of 18 visible, at "
                             f"least {min_joints} needed). Use a photo of a whole person, or pick a gallery pose")
    w, h = img.size
    lm = np.array([[p.x * w - 0.5, p.y * h - 0.5, p.visibility] for p in result.pose_landmarks.landmark],
                  np.float32)
    kp33 = lm[:, :2].copy()
    off = (lm[:, 2] < MIN_VISIBILITY) | (kp33[:, 0] < 0) | (kp33[:, 1] < 0) | (kp33[:, 0] > w - 1) | \
        (kp33[:, 1] > h - 1)
    kp33[off] = -1.0
    kp18 = blazepose33_to_openpose18(kp33)
    n = int(visible_joints(kp18).sum())
    if n < min_joints:
        raise PoseInputError(f"{name}: found a pose with too few joints ({n} of 18 visible, at least {min_joints} "
                             "needed). Use a photo of a whole person, or pick a gallery pose")
    _, geometry = fit_image(img, frame, fit)
    pose = pixels_to_pose(geometry.map_keypoints(kp18), frame)
    show = img.copy()
    show.thumbnail((512, 512))
    overlay = Image.fromarray(draw_skeleton(kp18 * (show.width / w), show))
    return PoseEstimate(pose=pose, keypoints=kp18, overlay=overlay, visible=n)


# ---------------------------------------------------------------------------------------------- pipeline
@dataclass
class PoseTransferResult:
    """``image``: the person in the target pose (G2's refined output); ``skeleton``: the target pose drawn at
    the model size; ``coarse``: G1's coarse output; ``pose``: the normalised target keypoints used."""

    image: Image.Image
    skeleton: Image.Image
    coarse: Image.Image
    pose: np.ndarray

    def __iter__(self):
        return iter((self.image, self.skeleton, self.coarse))


class PoseTransferPipeline(Pipeline):
    """PGPG pose transfer.  ``pipe(person, pose)`` with ``pose`` a gallery pose name, 18 normalised ``(x, y)``
    keypoints, or a reference photo (its pose is estimated); returns a :class:`PoseTransferResult`."""

    task = "pose"

    def __init__(self, loaded, device="cpu") -> None:
        super().__init__(loaded, device)
        self.generator = self.network("generator")
        cfg = self.generator.config
        if cfg.pose_encoding != "heatmaps":
            raise PipelineError(f"{loaded.path}: this model takes DensePose IUV target poses (preset "
                                f"{self.meta.get('preset') or 'pgpg_thesis'}); the pipeline supports keypoint-"
                                "heatmap models (pose_encoding='heatmaps', e.g. pgpg_small, pgpg_256x176)")
        self.size: tuple[int, int] = tuple(cfg.image_size)  # type: ignore[assignment]
        self.channels: int = cfg.image_channels

    def prepare_image(self, image: Any, fit: str = "pad") -> torch.Tensor:
        """The person photo as the model's ``(1, C, H, W)`` input in ``[-1, 1]``."""
        img, _ = fit_image(load_input_image(image, name="person image"), self.size, fit)
        return image_to_tensor(img, self.channels)

    def resolve_pose(self, pose: Any, fit: str = "pad", recentre: bool = False) -> np.ndarray:
        """Any accepted target pose -> normalised ``(18, 2)`` keypoints (checked for enough joints)."""
        if isinstance(pose, str) and (pose.removesuffix(" (mirrored)") in POSE_GALLERY
                                      or not Path(pose).expanduser().is_file()):
            out = gallery_pose(pose, self.size)
        elif isinstance(pose, (list, tuple, dict)) or (isinstance(pose, np.ndarray) and pose.ndim == 2
                                                        and pose.shape[-1] == 2):
            out = parse_pose(pose, "target pose")
        elif pose is None:
            raise PoseInputError("target pose: none given; pick a gallery pose, a reference photo or keypoints")
        else:  # a reference photo: PIL image, image array, path or bytes
            out = estimate_pose(pose, frame=self.size, fit=fit).pose
        if recentre:
            out = recentre_pose(out, self.size)
        _require_joints(out, "the target pose")
        return out

    def prepare_pose(self, pose: np.ndarray) -> torch.Tensor:
        """Normalised keypoints -> the ``(1, 18, H, W)`` heatmaps the model was trained on."""
        kp = pose_to_pixels(pose, self.size)
        hm = keypoints_to_heatmaps(kp, self.size, sigma=heatmap_sigma(self.size[0]))
        return torch.from_numpy(hm)[None]

    @torch.inference_mode()
    def __call__(self, image: Any, pose: Any, *, fit: str = "pad", recentre: bool = False) -> PoseTransferResult:
        target = self.resolve_pose(pose, fit=fit, recentre=recentre)
        x = self.prepare_image(image, fit).to(self.device)
        heatmaps = self.prepare_pose(target).to(self.device)
        out = self.generator(x, heatmaps)
        skeleton = Image.fromarray(draw_skeleton(pose_to_pixels(target, self.size), self.size))
        return PoseTransferResult(tensor_to_image(out.refined), skeleton, tensor_to_image(out.coarse), target)

