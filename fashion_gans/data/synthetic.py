"""A procedural fashion world: mannequins, garments, product shots, shoes and handbags, all with known attributes.

The real datasets of the thesis (DeepFashion In-shop, LookBook, the iGAN shoes/handbags files, DeepFashion
Fashion Synthesis) cannot be downloaded here, so the project renders a stand-in world of its own. Everything
is deterministic: every random choice is drawn from ``np.random.default_rng([seed, kind_tag, index, ...])``
(never the global generator), so the same arguments always give identical pixels.

What it draws
-------------
* :class:`Person` - a mannequin identity: gender, skin tone, hair, body proportions and an outfit (a top
  :class:`Garment` and bottoms, or a dress). :meth:`SyntheticWorld.person`.
* :class:`Pose` - 18 OpenPose keypoints in a normalised body frame, one of :data:`POSE_NAMES` with jitter.
  :meth:`SyntheticWorld.pose` gives the ``k``-th pose of an identity, so ``render_person(p, pose(i, 0))`` and
  ``render_person(p, pose(i, 1))`` are a pose-transfer pair (In-shop / PATN style).
* :meth:`SyntheticWorld.render_person` - the dressed mannequin on a white, studio or LookBook-like scene
  background, with pixel keypoints, a body mask, a coarse body-part map and a DensePose-style IUV image.
* :meth:`SyntheticWorld.render_flat` - the garment alone as a product shot centred on white (PixelDTGAN
  targets).
* :meth:`SyntheticWorld.render_shoe` / :meth:`SyntheticWorld.render_bag` - accessories of several shapes that
  share an :class:`AccessoryStyle` (colour, pattern, material): shoes <-> handbags with a known correspondence.

Every object has an ``attributes()`` dict (JSON-serialisable), so evaluation can check that a model kept the
colour and the pattern, reached the pose or matched the style.

Normalised pose frame
---------------------
``y`` runs from 0 (top of the head) to 1 (soles) of the standing body; ``x`` uses the same unit and is
centred at 0.5. A render of height ``H`` maps the body height to ``0.9 H`` with a ``0.05 H`` top margin and
centres ``x = 0.5`` horizontally, whatever the width, so proportions are kept at any ``(H, W)`` (e.g. the
256x176 of the pose-transfer protocol).
"""

from __future__ import annotations

import colorsys
import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .pose import OPENPOSE18_FLIP, OPENPOSE18_NAMES, visible_joints

__all__ = [
    "TOP_KINDS",
    "BOTTOM_KINDS",
    "GARMENT_KINDS",
    "PATTERNS",
    "COLOURS",
    "GARMENT_COLOURS",
    "SKIN_TONES",
    "HAIR_COLOURS",
    "HAIR_STYLES",
    "SHOE_COLOURS",
    "VIEWS",
    "POSE_NAMES",
    "POSE_VIEWS",
    "BACKGROUNDS",
    "ACCESSORY_SHAPES",
    "MATERIALS",
    "PART_NAMES",
    "MIN_SIZE",
    "Garment",
    "Person",
    "Pose",
    "AccessoryStyle",
    "PersonRender",
    "SyntheticWorld",
    "base_pose",
    "category_of",
    "pattern_mask",
]

# --------------------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------------------

TOP_KINDS: tuple[str, ...] = ("tshirt", "shirt", "jacket", "sweater", "dress", "tank")
BOTTOM_KINDS: tuple[str, ...] = ("trousers", "shorts", "skirt")
GARMENT_KINDS: tuple[str, ...] = TOP_KINDS + BOTTOM_KINDS
PATTERNS: tuple[str, ...] = ("solid", "stripes", "checks", "dots")

#: Named palette, well separated in RGB.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 40),
    "orange": (240, 130, 25),
    "yellow": (240, 205, 40),
    "green": (45, 150, 60),
    "teal": (20, 145, 150),
    "blue": (45, 90, 210),
    "navy": (25, 35, 95),
    "purple": (125, 50, 165),
    "pink": (240, 125, 175),
    "brown": (120, 72, 38),
    "beige": (215, 190, 150),
    "grey": (135, 135, 135),
    "black": (28, 28, 30),
    "white": (248, 248, 248),
}
#: Main garment/accessory colours: every palette colour except white (a white item on the white product-shot
#: background has no outline to learn).
GARMENT_COLOURS: tuple[str, ...] = tuple(c for c in COLOURS if c != "white")

SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "porcelain": (250, 222, 200),
    "light": (238, 196, 160),
    "medium": (218, 165, 115),
    "tan": (190, 130, 80),
    "brown": (140, 90, 55),
    "dark": (92, 60, 40),
}
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (30, 26, 24),
    "dark_brown": (70, 45, 30),
    "brown": (120, 78, 42),
    "blonde": (222, 190, 115),
    "auburn": (150, 65, 35),
    "grey": (175, 175, 172),
}
HAIR_STYLES: tuple[str, ...] = ("short", "bob", "long", "bun")
SHOE_COLOURS: tuple[str, ...] = ("black", "brown", "white", "grey")

VIEWS: tuple[str, ...] = ("front", "side", "back")
POSE_NAMES: tuple[str, ...] = ("front", "side", "back", "walking", "arms_raised", "hands_on_hips", "three_quarter")
#: The In-shop view each pose name belongs to.
POSE_VIEWS: dict[str, str] = {
    "front": "front", "side": "side", "back": "back", "walking": "side",
    "arms_raised": "front", "hands_on_hips": "front", "three_quarter": "front",
}
BACKGROUNDS: tuple[str, ...] = ("white", "studio", "scene")

ACCESSORY_SHAPES: dict[str, tuple[str, ...]] = {
    "shoe": ("sneaker", "boot", "pump", "loafer"),
    "bag": ("tote", "satchel", "clutch", "bucket", "hobo"),
}
MATERIALS: tuple[str, ...] = ("leather", "canvas", "suede", "patent")

#: Coarse body parts of :attr:`PersonRender.parts` (index 0 is the background), standing in for DensePose I.
PART_NAMES: tuple[str, ...] = (
    "background", "torso", "head", "hair",
    "r_upper_arm", "l_upper_arm", "r_lower_arm", "l_lower_arm", "r_hand", "l_hand",
    "r_upper_leg", "l_upper_leg", "r_lower_leg", "l_lower_leg", "r_foot", "l_foot",
    "skirt",
)
MIN_SIZE = 16

_SLEEVES: dict[str, str] = {
    "tshirt": "short", "shirt": "long", "jacket": "long", "sweater": "long", "dress": "short", "tank": "none",
    "trousers": "none", "shorts": "none", "skirt": "none",
}
_CATEGORIES: dict[str, dict[str, str]] = {
    "MEN": {"tshirt": "Tees_Tanks", "tank": "Tees_Tanks", "shirt": "Shirts_Polos", "jacket": "Jackets_Vests",
            "sweater": "Sweaters"},
    "WOMEN": {"tshirt": "Tees_Tanks", "tank": "Tees_Tanks", "shirt": "Blouses_Shirts", "jacket": "Jackets_Coats",
              "sweater": "Sweaters", "dress": "Dresses"},
}

# Random-stream tags: rng = default_rng([seed, TAG, index, ...]).
_TAG_PERSON, _TAG_POSE, _TAG_STYLE, _TAG_BACKGROUND, _TAG_VARIANT = 1, 2, 3, 4, 5

# Material codes of the person label map (code = part * 8 + material).
_M_BG, _M_SKIN, _M_HAIR, _M_TOP, _M_BOTTOM, _M_SHOE, _M_FEATURE, _M_TRIM = range(8)
_FEATURE_RGB = (55, 35, 32)

_J = {n: i for i, n in enumerate(OPENPOSE18_NAMES)}
_P = {n: i for i, n in enumerate(PART_NAMES)}


def _contrasting(main: str) -> tuple[str, ...]:
    m = COLOURS[main]
    return tuple(c for c, rgb in COLOURS.items()
                 if c != main and sum(abs(a - b) for a, b in zip(rgb, m)) > 200 and abs(_luma(rgb) - _luma(m)) > 45)


def _pick(x: float, weights: tuple[float, ...]) -> int:
    """Index chosen with the given probabilities by a uniform number ``x`` in [0, 1)."""
    x = x * sum(weights)
    for i, w in enumerate(weights):
        x -= w
        if x < 0:
            return i
    return len(weights) - 1


def _check_choice(value: str, allowed, what: str) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {tuple(allowed)}")
    return value


def _check_size(size, what: str = "size") -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: expected (H, W), got {size!r}") from exc
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"{what} {size!r} is too small: both sides must be at least {MIN_SIZE} pixels")
    return h, w


def _luma(rgb) -> float:
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


def _shade(rgb, factor: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, round(c * factor)))) for c in rgb)


def category_of(top_kind: str, gender: str) -> str:
    """The DeepFashion In-shop category (folder name) of a top kind for a gender."""
    _check_choice(gender, ("MEN", "WOMEN"), "gender")
    _check_choice(top_kind, TOP_KINDS, "top kind")
    table = _CATEGORIES[gender]
    if top_kind not in table:
        raise ValueError(f"top kind {top_kind!r} has no In-shop category for {gender}")
    return table[top_kind]


#: Pattern colours that stand out against each main colour (hue and brightness both differ).
_CONTRASTING: dict[str, tuple[str, ...]] = {c: _contrasting(c) for c in COLOURS}


# --------------------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Garment:
    """One garment: its kind, main colour, pattern and pattern colour (names from :data:`COLOURS`)."""

    kind: str
    colour: str
    pattern: str = "solid"
    pattern_colour: str = "white"
    sleeve: str = ""  # "none" | "short" | "long"; empty means the kind's default

    def __post_init__(self) -> None:
        _check_choice(self.kind, GARMENT_KINDS, "garment kind")
        _check_choice(self.colour, COLOURS, "colour")
        _check_choice(self.pattern, PATTERNS, "pattern")
        _check_choice(self.pattern_colour, COLOURS, "pattern colour")
        if not self.sleeve:
            object.__setattr__(self, "sleeve", _SLEEVES[self.kind])
        _check_choice(self.sleeve, ("none", "short", "long"), "sleeve")

    @property
    def slot(self) -> str:
        """``"top"`` or ``"bottom"``."""
        return "top" if self.kind in TOP_KINDS else "bottom"

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.colour]

    @property
    def pattern_rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.pattern_colour]

    @property
    def trim_rgb(self) -> tuple[int, int, int]:
        """Colour of collars, cuffs, hems and bands (a jacket's trim is the shirt seen under it)."""
        if self.kind == "jacket":
            return (236, 236, 232) if _luma(self.rgb) < 200 else (40, 40, 44)
        if self.kind == "shirt" and _luma(self.rgb) < 110:
            return (236, 236, 232)
        return _shade(self.rgb, 0.7 if _luma(self.rgb) > 60 else 1.9)

    def attributes(self) -> dict:
        return {
            "kind": self.kind,
            "slot": self.slot,
            "colour": self.colour,
            "rgb": list(self.rgb),
            "pattern": self.pattern,
            "pattern_colour": self.pattern_colour,
            "pattern_rgb": list(self.pattern_rgb),
            "sleeve": self.sleeve,
        }


@dataclass(frozen=True)
class Person:
    """A mannequin identity and its outfit. ``bottom`` is ``None`` exactly when the top is a dress."""

    identity: int
    gender: str
    skin_tone: str
    hair_colour: str
    hair_style: str
    top: Garment
    bottom: Garment | None
    shoe_colour: str = "black"
    shoulder_width: float = 1.0  # multipliers of the average body
    hip_width: float = 1.0
    limb_width: float = 1.0

    def __post_init__(self) -> None:
        if int(self.identity) < 0:
            raise ValueError(f"identity must be >= 0, got {self.identity}")
        _check_choice(self.gender, ("MEN", "WOMEN"), "gender")
        _check_choice(self.skin_tone, SKIN_TONES, "skin tone")
        _check_choice(self.hair_colour, HAIR_COLOURS, "hair colour")
        _check_choice(self.hair_style, HAIR_STYLES, "hair style")
        _check_choice(self.shoe_colour, COLOURS, "shoe colour")
        if self.top.slot != "top":
            raise ValueError(f"top garment has bottom kind {self.top.kind!r}")
        if self.top.kind == "dress":
            if self.bottom is not None:
                raise ValueError("a dress is worn without bottoms: bottom must be None")
        else:
            if self.bottom is None or self.bottom.slot != "bottom":
                raise ValueError(f"a {self.top.kind} needs a bottom garment of kind {BOTTOM_KINDS}")
        for name in ("shoulder_width", "hip_width", "limb_width"):
            v = getattr(self, name)
            if not 0.5 <= v <= 1.5:
                raise ValueError(f"{name} must be within [0.5, 1.5], got {v}")

    @property
    def category(self) -> str:
        """The DeepFashion In-shop category of the top, e.g. ``"Tees_Tanks"`` or ``"Dresses"``."""
        return category_of(self.top.kind, self.gender)

    @property
    def skin_rgb(self) -> tuple[int, int, int]:
        return SKIN_TONES[self.skin_tone]

    @property
    def hair_rgb(self) -> tuple[int, int, int]:
        return HAIR_COLOURS[self.hair_colour]

    def attributes(self) -> dict:
        return {
            "identity": int(self.identity),
            "gender": self.gender,
            "category": self.category,
            "skin_tone": self.skin_tone,
            "skin_rgb": list(self.skin_rgb),
            "hair_colour": self.hair_colour,
            "hair_style": self.hair_style,
            "shoe_colour": self.shoe_colour,
            "shoulder_width": float(self.shoulder_width),
            "hip_width": float(self.hip_width),
            "limb_width": float(self.limb_width),
            "top": self.top.attributes(),
            "bottom": None if self.bottom is None else self.bottom.attributes(),
        }


@dataclass(frozen=True, eq=False)
class Pose:
    """A body pose: name, In-shop view and 18 OpenPose keypoints in the normalised body frame.

    ``keypoints`` is ``float32 (18, 2)`` of ``(x, y)``: ``y`` in ``[0, 1]`` from the top of the head to the
    soles (raised hands may reach slightly above 0), ``x`` in the same unit centred at 0.5; ``(-1, -1)`` for
    joints the view hides (the face from behind, the far eye and ear from the side).
    """

    name: str
    view: str
    keypoints: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        _check_choice(self.name, POSE_NAMES, "pose name")
        _check_choice(self.view, VIEWS, "view")
        kp = np.array(self.keypoints, dtype=np.float32)
        if kp.shape != (18, 2):
            raise ValueError(f"pose keypoints must have shape (18, 2), got {kp.shape}")
        if not np.all(np.isfinite(kp)):
            raise ValueError("pose keypoints must be finite")
        kp[~visible_joints(kp)] = -1.0
        kp.setflags(write=False)
        object.__setattr__(self, "keypoints", kp)

    def pixel_keypoints(self, size: tuple[int, int]) -> np.ndarray:
        """The keypoints in pixel ``(x, y)`` of a render of ``size=(H, W)`` (what ``render_person`` returns)."""
        h, w = _check_size(size)
        return _to_pixels(self.keypoints, h, w)

    def attributes(self) -> dict:
        return {"name": self.name, "view": self.view, "keypoints": self.keypoints.round(5).tolist()}


@dataclass(frozen=True)
class AccessoryStyle:
    """A style shared by shoes and handbags: colour, pattern, pattern colour and material."""

    style_id: int
    colour: str
    pattern: str = "solid"
    pattern_colour: str = "white"
    material: str = "leather"

    def __post_init__(self) -> None:
        _check_choice(self.colour, COLOURS, "colour")
        _check_choice(self.pattern, PATTERNS, "pattern")
        _check_choice(self.pattern_colour, COLOURS, "pattern colour")
        _check_choice(self.material, MATERIALS, "material")

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.colour]

    @property
    def pattern_rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.pattern_colour]

    def attributes(self) -> dict:
        return {
            "style_id": int(self.style_id),
            "colour": self.colour,
            "rgb": list(self.rgb),
            "pattern": self.pattern,
            "pattern_colour": self.pattern_colour,
            "pattern_rgb": list(self.pattern_rgb),
            "material": self.material,
        }


@dataclass
class PersonRender:
    """One rendered person image and its annotations (all ``H x W``).

    ``parts`` is nonzero exactly where ``mask`` is 1 (every body pixel belongs to one of :data:`PART_NAMES`);
    ``iuv[..., 0] == parts``, and ``iuv`` is 0 wherever ``mask`` is 0, as in DensePose IUV images. The pixel
    nearest to every visible keypoint lies on the body.
    """

    image: np.ndarray  # uint8 (H, W, 3)
    keypoints: np.ndarray  # float32 (18, 2) pixel (x, y); (-1, -1) if hidden by the view or outside the image
    mask: np.ndarray  # uint8 (H, W): 1 on the body (skin, clothes, hair, shoes), 0 on the background
    parts: np.ndarray  # uint8 (H, W): index into PART_NAMES; nonzero exactly where mask == 1
    iuv: np.ndarray  # uint8 (H, W, 3): I = parts, U along the part's axis, V across it (0..255); 0 off-body
    top_mask: np.ndarray  # uint8 (H, W): 1 where the top garment's own colour/pattern shows (not its trims)


# --------------------------------------------------------------------------------------------------------------
# Poses
# --------------------------------------------------------------------------------------------------------------

_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.15, 0.135, 0.22, 0.215
_NECK_Y, _SHOULDER_Y, _HIP_Y = 0.165, 0.185, 0.49
_HEAD_ABOVE_NECK = 0.1
_HEAD_RX, _HEAD_RY = 0.047, 0.062

# Angles in degrees from straight down: (r_upper_arm, r_forearm, l_upper_arm, l_forearm,
#                                        r_thigh, r_shin, l_thigh, l_shin).
# Front/back views: positive = away from the body's midline. Side views (drawn facing image-left, the left
# side nearest): positive = forward.
_POSE_ANGLES: dict[str, tuple[float, ...]] = {
    "front": (9, 5, 9, 5, 2, 0, 2, 0),
    "back": (9, 5, 9, 5, 2, 0, 2, 0),
    "side": (-6, 8, 6, 14, -2, 1, 3, 0),
    "walking": (24, 42, -22, -10, -17, -34, 20, 5),
    "arms_raised": (125, 155, 125, 155, 4, 1, 4, 1),
    "hands_on_hips": (40, -62, 40, -62, 6, 1, 6, 1),
    "three_quarter": (11, 6, 6, 3, 3, 1, 1, 0),
}


def _make_pose_keypoints(name: str, *, shoulder: float = 0.092, hip: float = 0.05, mirror: bool = False,
                         noise: list[float] | None = None) -> np.ndarray:
    """Keypoints of pose ``name`` in the normalised frame. ``noise``: 11 standard normal numbers that jitter
    the limb angles (arms +-5 degrees, legs +-2), the face (+-0.003) and the horizontal position (+-0.01)."""
    view = POSE_VIEWS[name]
    angles = list(_POSE_ANGLES[name])
    fx = fy = shift = 0.0
    if noise is not None:
        for i in range(8):
            angles[i] += noise[i] * (5.0 if i < 4 else 2.0)
        fx = min(max(noise[8] * 0.003, -0.005), 0.005)
        fy = min(max(noise[9] * 0.003, -0.005), 0.005)
        shift = min(max(noise[10] * 0.01, -0.025), 0.025)
    kp = [None] * 18
    j = _J
    hx, hy = 0.5, _NECK_Y - _HEAD_ABOVE_NECK  # head centre

    def face(dx, dy, k=1.0):
        return (hx + dx + k * fx, hy + dy + k * fy)

    kp[j["neck"]] = (0.5, _NECK_Y)
    if view == "side":
        # Facing image-left: the viewer sees the left side of the body.
        kp[j["l_shoulder"]] = (0.5 - 0.008, _SHOULDER_Y)
        kp[j["r_shoulder"]] = (0.5 + 0.008, _SHOULDER_Y)
        kp[j["l_hip"]] = (0.5 - 0.006, _HIP_Y)
        kp[j["r_hip"]] = (0.5 + 0.006, _HIP_Y)
        sign_r = sign_l = -1.0  # forward = -x
        kp[j["nose"]] = face(-0.049, 0.012)
        kp[j["l_eye"]] = face(-0.029, -0.004)
        kp[j["l_ear"]] = face(0.006, 0.003, 0.5)
    else:
        yaw = 0.8 if name == "three_quarter" else 1.0
        sx = -1.0 if view == "front" else 1.0  # x direction of the body's right side
        kp[j["r_shoulder"]] = (0.5 + sx * shoulder * yaw, _SHOULDER_Y)
        kp[j["l_shoulder"]] = (0.5 - sx * shoulder * yaw, _SHOULDER_Y)
        kp[j["r_hip"]] = (0.5 + sx * hip * yaw, _HIP_Y)
        kp[j["l_hip"]] = (0.5 - sx * hip * yaw, _HIP_Y)
        sign_r, sign_l = sx, -sx
        if name == "three_quarter":
            # Turned towards image-left: features shift left, the right ear goes out of sight.
            kp[j["nose"]] = face(-0.02, 0.012)
            kp[j["r_eye"]] = face(-0.034, -0.004)
            kp[j["l_eye"]] = face(0.002, -0.004)
            kp[j["l_ear"]] = face(0.037, 0.003, 0.5)
        elif view == "front":
            kp[j["nose"]] = face(0.0, 0.012)
            kp[j["r_eye"]] = face(-0.018, -0.004)
            kp[j["l_eye"]] = face(0.018, -0.004)
            kp[j["r_ear"]] = face(-0.042, 0.003, 0.5)
            kp[j["l_ear"]] = face(0.042, 0.003, 0.5)
        else:  # back: no face; ears at the sides of the head
            kp[j["r_ear"]] = face(0.042, 0.003, 0.5)
            kp[j["l_ear"]] = face(-0.042, 0.003, 0.5)

    def chain(root, mid, end, a1, a2, sign, l1, l2):
        r1, r2 = math.radians(a1), math.radians(a2)
        x, y = kp[j[root]]
        x, y = x + l1 * sign * math.sin(r1), y + l1 * math.cos(r1)
        kp[j[mid]] = (x, y)
        kp[j[end]] = (x + l2 * sign * math.sin(r2), y + l2 * math.cos(r2))

    a = angles
    chain("r_shoulder", "r_elbow", "r_wrist", a[0], a[1], sign_r, _UPPER_ARM, _FOREARM)
    chain("l_shoulder", "l_elbow", "l_wrist", a[2], a[3], sign_l, _UPPER_ARM, _FOREARM)
    chain("r_hip", "r_knee", "r_ankle", a[4], a[5], sign_r, _THIGH, _SHIN)
    chain("l_hip", "l_knee", "l_ankle", a[6], a[7], sign_l, _THIGH, _SHIN)
    out = [(-1.0, -1.0) if p is None else
           ((1.0 - (p[0] + shift)) if mirror else (p[0] + shift), p[1]) for p in kp]
    if mirror:
        out = [out[i] for i in OPENPOSE18_FLIP]
    return np.array(out, dtype=np.float32)


def base_pose(name: str, *, mirror: bool = False) -> Pose:
    """The un-jittered pose ``name`` of an average body; ``mirror`` flips it (side views then face right)."""
    _check_choice(name, POSE_NAMES, "pose name")
    return Pose(name, POSE_VIEWS[name], _make_pose_keypoints(name, mirror=mirror))


def _to_pixels(kp: np.ndarray, h: int, w: int, raw: bool = False) -> np.ndarray:
    """Normalised pose frame -> pixel (x, y). Joints hidden by the view, or (unless ``raw``) outside the image,
    become (-1, -1); with ``raw`` hidden joints are NaN and joints outside the image are kept."""
    bh = 0.9 * h
    vis = (kp[:, 0] >= 0) & (kp[:, 1] >= 0)
    out = kp * np.float32(bh)
    out += np.array([w / 2.0 - 0.5 * bh - 0.5, 0.05 * h - 0.5], dtype=np.float32)
    if raw:
        out[~vis] = np.nan
        return out
    inside = vis & (out[:, 0] >= 0) & (out[:, 0] <= w - 1) & (out[:, 1] >= 0) & (out[:, 1] <= h - 1)
    out[~inside] = -1.0
    return out


# --------------------------------------------------------------------------------------------------------------
# Patterns, materials and backgrounds
# --------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return xs, ys


def pattern_mask(pattern: str, size: tuple[int, int], period: float, origin: tuple[float, float] = (0.0, 0.0)
                 ) -> np.ndarray:
    """Boolean ``(H, W)`` map of where a pattern shows its pattern colour.

    ``stripes``: horizontal bands, 40% of each ``period``; ``checks``: a windowpane grid of bands 22% of the
    ``period`` wide (band widths rounded to whole pixels); ``dots``: staggered discs on a ``1.15 period``
    grid; ``solid``: all ``False``. The main colour always covers more than half of the garment.
    """
    _check_choice(pattern, PATTERNS, "pattern")
    h, w = int(size[0]), int(size[1])
    xs, ys = _grid(h, w)
    return _pattern(pattern, xs, ys, float(period), float(origin[0]), float(origin[1]))


def _frac(v: np.ndarray) -> np.ndarray:
    """``v % 1.0`` for float arrays (faster than the float modulo)."""
    return v - np.floor(v)


def _pattern(pattern: str, xs, ys, period: float, ox: float, oy: float) -> np.ndarray:
    if pattern == "solid":
        return np.zeros(xs.shape, dtype=bool)
    p = max(period, 3.0)
    inv = 1.0 / p
    # Band widths are whole pixels so that the share of each colour does not depend on the pixel phase; the
    # threshold sits half a pixel before the band's end, away from rounding errors at exact multiples.
    if pattern == "stripes":
        band = (max(1.0, round(0.4 * p)) - 0.5) * inv
        return _frac((ys - oy) * inv) < band
    if pattern == "checks":
        # Windowpane checks: a grid of thin bands (the main colour stays dominant).
        band = (max(1.0, round(0.22 * p)) - 0.5) * inv
        return (_frac((xs - ox) * inv) < band) | (_frac((ys - oy) * inv) < band)
    if pattern == "dots":
        q = p * 1.15
        gy = (ys - oy) * (1.0 / q)
        row = np.floor(gy)
        fy = gy - row - 0.5
        gx = (xs - ox) * (1.0 / q) + 0.5 * _frac(row * 0.5) * 2.0
        fx = _frac(gx) - 0.5
        return fx * fx + fy * fy < 0.33 * 0.33 * max(1.0, 4.0 / q)
    raise ValueError(f"unknown pattern {pattern!r}; expected one of {PATTERNS}")


@functools.lru_cache(maxsize=256)
def _pattern_tile(pattern: str, period: int, h: int, w: int) -> tuple[np.ndarray, int, int]:
    """The pattern (origin 0) on a grid one repeat larger than ``h x w``, and its repeat ``(ty, tx)``."""
    if pattern == "dots":
        q = period * 1.15
        ty, tx = 2 * int(round(q)), int(round(q))
        q = float(tx)  # whole-pixel repeats so that integer shifts tile exactly
        p = q / 1.15
    else:
        ty = tx = int(period)
        p = float(period)
    ys, xs = np.mgrid[0:h + ty, 0:w + tx].astype(np.float32)
    tile = _pattern(pattern, xs, ys, p, 0.0, 0.0)
    tile.setflags(write=False)
    return tile, ty, tx


def _pattern_at(pattern: str, period: float, ox: float, oy: float, h: int, w: int) -> np.ndarray:
    """``pattern_mask`` for a whole image with a whole-pixel period and origin, sliced from a cached tile."""
    tile, ty, tx = _pattern_tile(pattern, max(3, int(round(period))), h, w)
    a, b = (-int(round(oy))) % ty, (-int(round(ox))) % tx
    return tile[a:a + h, b:b + w]


@functools.lru_cache(maxsize=32)
def _noise(h: int, w: int, kind: str) -> np.ndarray:
    """Fixed grain textures for materials (mean ~0), cached per size."""
    rng = np.random.default_rng([7, h, w, len(kind)])
    if kind == "suede":
        n = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
        img = Image.fromarray(np.uint8(np.clip(n * 40 + 128, 0, 255)), "L").filter(ImageFilter.BoxBlur(0.6))
        out = (np.asarray(img, dtype=np.float32) - 128.0) / 40.0
    else:  # canvas weave
        xs, ys = _grid(h, w)
        out = np.where(((xs.astype(np.int32) + ys.astype(np.int32)) % 2) == 0, 1.0, -1.0).astype(np.float32)
        out += rng.normal(0.0, 0.3, (h, w)).astype(np.float32)
    out.setflags(write=False)
    return out


def _random_colour(rng: np.random.Generator, sat=(0.15, 0.6), val=(0.35, 0.95)) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))
    return int(r * 255), int(g * 255), int(b * 255)


@functools.lru_cache(maxsize=256)
def _background(kind: str, seed: int, background_seed: int, h: int, w: int) -> np.ndarray:
    if kind == "white":
        out = np.full((h, w, 3), 255, dtype=np.uint8)
        out.setflags(write=False)
        return out
    rng = np.random.default_rng([seed, _TAG_BACKGROUND, background_seed, BACKGROUNDS.index(kind)])
    xs, ys = _grid(h, w)
    if kind == "studio":
        # FISB-like: light grey paper, gentle vertical gradient and vignette.
        top = rng.uniform(228, 250)
        bottom = top - rng.uniform(5, 28)
        tint = rng.normal(0, 3, 3)
        base = top + (bottom - top) * (ys / max(h - 1, 1))
        r2 = ((xs - w / 2) / w) ** 2 + ((ys - h * 0.45) / h) ** 2
        base = base - rng.uniform(0, 40) * r2
        out = np.clip(base[:, :, None] + tint[None, None, :], 0, 255).astype(np.uint8)
        out.setflags(write=False)
        return out
    # "scene": LookBook-like street/room backgrounds.
    style = int(rng.integers(0, 4))
    c1, c2 = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
    t = (ys / max(h - 1, 1))[:, :, None]
    img = c1 * (1 - t) + c2 * t
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(pil)
    if style == 1:  # wall stripes
        period = rng.uniform(0.06, 0.2) * w
        col = _random_colour(rng)
        x = rng.uniform(0, period)
        while x < w:
            d.rectangle([x, 0, x + period * 0.45, h], fill=col)
            x += period
    elif style == 2:  # blobs (bokeh, foliage)
        for _ in range(int(rng.integers(4, 10))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.08, 0.3) * h
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_random_colour(rng))
        pil = pil.filter(ImageFilter.GaussianBlur(max(1.0, h / 40)))
        d = ImageDraw.Draw(pil)
    elif style == 3:  # building blocks / windows
        for _ in range(int(rng.integers(3, 7))):
            x0, y0 = rng.uniform(-0.1, 0.9) * w, rng.uniform(-0.1, 0.6) * h
            d.rectangle([x0, y0, x0 + rng.uniform(0.1, 0.5) * w, y0 + rng.uniform(0.1, 0.5) * h],
                        fill=_random_colour(rng))
    # Floor line for every style except the pure gradient.
    if style != 0 or rng.uniform() < 0.5:
        fy = rng.uniform(0.72, 0.9) * h
        d.rectangle([0, fy, w, h], fill=_random_colour(rng, val=(0.25, 0.7)))
    out = np.asarray(pil, dtype=np.uint8).copy()
    out.setflags(write=False)
    return out


# --------------------------------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------------------------------


class _Canvas:
    """A label map ('L' image) plus per-part coordinate frames for IUV and shading.

    Points are Python complex numbers ``x + 1j * y`` (cheap 2-D vector arithmetic; ``1j * v`` is ``v``
    turned by 90 degrees).
    """

    def __init__(self, h: int, w: int) -> None:
        self.img = Image.new("L", (w, h), 0)
        self.draw = ImageDraw.Draw(self.img)
        # per part: origin x, origin y, axis x / len^2, axis y / len^2, perp x / halfwidth, perp y / halfwidth
        self.frames = [(0.0,) * 6] * len(PART_NAMES)
        self.joint_codes = [0] * 18  # label of the limb each keypoint ends (see _draw_person)

    def seg(self, a: complex, b: complex, width: float, part: int, mat: int, caps: bool = True) -> None:
        code = part * 8 + mat
        self.draw.line([(a.real, a.imag), (b.real, b.imag)], fill=code, width=max(1, int(round(width))))
        if caps and width >= 2.0:
            r = width / 2.0
            ellipse = self.draw.ellipse
            ellipse([a.real - r, a.imag - r, a.real + r, a.imag + r], fill=code)
            ellipse([b.real - r, b.imag - r, b.real + r, b.imag + r], fill=code)

    def poly(self, pts, part: int, mat: int) -> None:
        self.draw.polygon([(p.real, p.imag) for p in pts], fill=part * 8 + mat)

    def ellipse(self, c: complex, rx: float, ry: float, part: int, mat: int) -> None:
        self.draw.ellipse([c.real - rx, c.imag - ry, c.real + rx, c.imag + ry], fill=part * 8 + mat)

    def dot(self, c: complex, r: float, part: int, mat: int) -> None:
        """A disc that always covers the pixel nearest to ``c`` (keypoints stay on the body at any size)."""
        if r >= 0.75:
            self.ellipse(c, r, r, part, mat)
        self.draw.point((float(round(c.real)), float(round(c.imag))), fill=part * 8 + mat)

    def chord(self, c: complex, rx: float, ry: float, start: float, end: float, part: int, mat: int) -> None:
        self.draw.chord([c.real - rx, c.imag - ry, c.real + rx, c.imag + ry], start, end, fill=part * 8 + mat)

    def frame(self, part: int, a: complex, b: complex, halfwidth: float) -> None:
        v = b - a
        l2 = max(v.real * v.real + v.imag * v.imag, 1e-6)
        ln = math.sqrt(l2)
        hw = max(halfwidth, 0.5)
        self.frames[part] = (a.real, a.imag, v.real / l2, v.imag / l2, -v.imag / ln / hw, v.real / ln / hw)


def _unit(v: complex) -> complex:
    n = abs(v)
    return v / n if n > 1e-6 else 1j


def _dot(a: complex, b: complex) -> float:
    return a.real * b.real + a.imag * b.imag


# --------------------------------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------------------------------


class SyntheticWorld:
    """A deterministic fashion world. All methods are pure functions of ``seed`` and their arguments."""

    def __init__(self, seed: int = 0) -> None:
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self._people: dict[int, Person] = {}  # memo for pose(), which needs the identity's proportions

    def __repr__(self) -> str:
        return f"SyntheticWorld(seed={self.seed})"

    def _rng(self, tag: int, *index: int, names: tuple[str, ...] = ()) -> np.random.Generator:
        for k, i in enumerate(index):
            if int(i) < 0:
                name = names[k] if k < len(names) else "index"
                raise ValueError(f"{name} must be >= 0, got {i}")
        return np.random.default_rng([self.seed, tag, *(int(i) for i in index)])

    # ---- specs ---------------------------------------------------------------------------------------------

    def _garment(self, draw: Callable[[], float], kind: str) -> Garment:
        colour = GARMENT_COLOURS[int(draw() * len(GARMENT_COLOURS))]
        pattern = PATTERNS[_pick(draw(), (0.4, 0.2, 0.2, 0.2))]
        options = _CONTRASTING[colour]
        return Garment(kind, colour, pattern, options[int(draw() * len(options))])

    def person(self, identity: int) -> Person:
        """The mannequin ``identity`` (deterministic in ``(seed, identity)``)."""
        person = self._people.get(identity) if isinstance(identity, int) else None
        if person is not None:
            return person
        # One block of uniforms per identity, consumed in order (much faster than many small draws).
        draw = iter(self._rng(_TAG_PERSON, identity, names=("identity",)).random(24).tolist()).__next__
        gender = "WOMEN" if draw() < 0.55 else "MEN"
        if gender == "MEN":
            top_kind = ("tshirt", "shirt", "jacket", "sweater", "tank")[_pick(draw(), (.3, .25, .2, .15, .1))]
            bottom_kind = "trousers" if draw() < 0.8 else "shorts"
            hair = ("short", "bob")[_pick(draw(), (.8, .2))]
        else:
            top_kind = ("tshirt", "shirt", "jacket", "sweater", "dress", "tank")[
                _pick(draw(), (.2, .15, .15, .15, .25, .1))]
            bottom_kind = BOTTOM_KINDS[_pick(draw(), (.45, .2, .35))]
            hair = ("long", "bob", "bun", "short")[_pick(draw(), (.45, .25, .2, .1))]
        top = self._garment(draw, top_kind)
        bottom = self._garment(draw, bottom_kind)
        if top_kind == "dress":
            bottom = None
        skin = tuple(SKIN_TONES)[int(draw() * len(SKIN_TONES))]
        hair_colour = tuple(HAIR_COLOURS)[int(draw() * len(HAIR_COLOURS))]
        shoe = SHOE_COLOURS[int(draw() * len(SHOE_COLOURS))]
        base_sw, base_hw, base_lw = (1.06, 0.92, 1.08) if gender == "MEN" else (0.94, 1.08, 0.94)
        person = Person(
            identity=int(identity), gender=gender, skin_tone=skin, hair_colour=hair_colour, hair_style=hair,
            top=top, bottom=bottom, shoe_colour=shoe,
            shoulder_width=round(base_sw * (0.94 + 0.12 * draw()), 4),
            hip_width=round(base_hw * (0.94 + 0.12 * draw()), 4),
            limb_width=round(base_lw * (0.92 + 0.16 * draw()), 4),
        )
        if len(self._people) >= 4096:
            self._people.clear()
        self._people[int(identity)] = person
        return person

    def pose(self, identity: int, k: int) -> Pose:
        """The ``k``-th pose of ``identity``: ``POSE_NAMES[k % len(POSE_NAMES)]`` with per-(identity, k) jitter
        and that identity's shoulder/hip widths; side views face left or right at random."""
        rng = self._rng(_TAG_POSE, identity, k, names=("identity", "k"))
        person = self.person(identity)
        name = POSE_NAMES[int(k) % len(POSE_NAMES)]
        noise = rng.standard_normal(12).tolist()
        mirror = noise[11] > 0 and (POSE_VIEWS[name] == "side" or name == "three_quarter")
        kp = _make_pose_keypoints(name, shoulder=0.092 * person.shoulder_width, hip=0.05 * person.hip_width,
                                  mirror=mirror, noise=noise[:11])
        return Pose(name, POSE_VIEWS[name], kp)

    def accessory_style(self, j: int) -> AccessoryStyle:
        """Style ``j`` shared by a family of shoes and bags (deterministic in ``(seed, j)``)."""
        draw = iter(self._rng(_TAG_STYLE, j, names=("style index j",)).random(4).tolist()).__next__
        colour = GARMENT_COLOURS[int(draw() * len(GARMENT_COLOURS))]
        pattern = PATTERNS[_pick(draw(), (0.4, 0.2, 0.2, 0.2))]
        options = _CONTRASTING[colour]
        pattern_colour = options[int(draw() * len(options))]
        material = MATERIALS[int(draw() * len(MATERIALS))]
        return AccessoryStyle(int(j), colour, pattern, pattern_colour, material)

    # ---- people --------------------------------------------------------------------------------------------

    def render_person(self, person: Person, pose: Pose, size: tuple[int, int] = (128, 128), *,
                      background: str = "white", background_seed: int = 0) -> PersonRender:
        """Draw ``person`` in ``pose`` at ``size=(H, W)`` on a ``"white"``, ``"studio"`` or ``"scene"``
        background (``background_seed`` picks the studio/scene variant)."""
        h, w = _check_size(size)
        _check_choice(background, BACKGROUNDS, "background")
        if not isinstance(person, Person):
            raise ValueError(f"person: expected a Person, got {type(person).__name__}")
        if not isinstance(pose, Pose):
            raise ValueError(f"pose: expected a Pose, got {type(pose).__name__}")
        # Geometry uses the keypoints before clipping to the image.
        bh = 0.9 * h
        raw = _to_pixels(pose.keypoints, h, w, raw=True)
        vis = ~np.isnan(raw[:, 0])
        inside = vis & (raw[:, 0] >= 0) & (raw[:, 0] <= w - 1) & (raw[:, 1] >= 0) & (raw[:, 1] <= h - 1)
        kp = np.where(inside[:, None], raw, np.float32(-1.0))
        canvas = _Canvas(h, w)
        _draw_person(canvas, person, pose.view, raw, vis, bh)
        code = np.array(canvas.img)
        # At small sizes a joint can fall between the rasterised pixels of its limb: the pixel nearest to every
        # visible keypoint is made part of the body, labelled as the limb it ends.
        kx, ky = np.round(kp[:, 0]).astype(np.intp), np.round(kp[:, 1]).astype(np.intp)
        off = inside & (code[ky, kx] == 0)
        if off.any():
            code[ky[off], kx[off]] = np.asarray(canvas.joint_codes, dtype=np.uint8)[off]
        bg = None if background == "white" else _background(background, self.seed, int(background_seed), h, w)
        image, mask, parts, iuv, top_mask = _compose_person(code, canvas.frames, person, raw, bh, bg)
        return PersonRender(image=image, keypoints=kp, mask=mask, parts=parts, iuv=iuv, top_mask=top_mask)

    # ---- product shots -------------------------------------------------------------------------------------

    def render_flat(self, garment: Garment, size: tuple[int, int] = (64, 64)) -> np.ndarray:
        """The garment laid flat, centred on white (a product shot): ``uint8 (H, W, 3)``."""
        h, w = _check_size(size)
        if not isinstance(garment, Garment):
            raise ValueError(f"garment: expected a Garment, got {type(garment).__name__}")
        s = min(h, w)
        ox, oy = (w - s) / 2.0, (h - s) / 2.0
        img = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(img)

        def P(pts):
            return [(ox + x * s, oy + y * s) for x, y in pts]

        _draw_flat(d, garment.kind, P, s)
        labels = np.asarray(img)
        return _colourise(labels, garment.rgb, garment.pattern, garment.pattern_rgb, garment.trim_rgb,
                          period=0.075 * s, origin=(ox + 0.5 * s, oy + 0.1 * s), material=None, inner=(236, 236, 232))

    # ---- accessories ---------------------------------------------------------------------------------------

    def render_shoe(self, style: AccessoryStyle, shape: str, size: tuple[int, int] = (64, 64), *,
                    variant: int = 0) -> np.ndarray:
        """A shoe of ``shape`` (one of ``ACCESSORY_SHAPES["shoe"]``) in ``style``, side view with the toe
        pointing left and slightly down (as in UT-Zappos50K), centred on white. ``variant`` jitters
        scale, position and tilt."""
        return self._render_accessory("shoe", style, shape, size, variant)

    def render_bag(self, style: AccessoryStyle, shape: str, size: tuple[int, int] = (64, 64), *,
                   variant: int = 0) -> np.ndarray:
        """A handbag of ``shape`` (one of ``ACCESSORY_SHAPES["bag"]``) in ``style``, centred on white."""
        return self._render_accessory("bag", style, shape, size, variant)

    def _render_accessory(self, kind: str, style: AccessoryStyle, shape: str, size, variant: int) -> np.ndarray:
        _check_choice(shape, ACCESSORY_SHAPES[kind], f"{kind} shape")
        h, w = _check_size(size)
        if not isinstance(style, AccessoryStyle):
            raise ValueError(f"style: expected an AccessoryStyle, got {type(style).__name__}")
        rng = self._rng(_TAG_VARIANT, int(style.style_id), ACCESSORY_SHAPES[kind].index(shape),
                        0 if kind == "shoe" else 1, int(variant),
                        names=("style_id", "shape", "kind", "variant"))
        scale = rng.uniform(0.88, 1.0) if variant else 1.0
        tilt = math.radians(rng.uniform(-5, 5)) if variant else 0.0
        dx, dy = (rng.uniform(-0.04, 0.04, 2) if variant else (0.0, 0.0))
        s = min(h, w)
        cx, cy = w / 2.0 + dx * s, h / 2.0 + dy * s
        base_tilt = math.radians(-8.0) if kind == "shoe" else 0.0  # toe down-left (south-west)
        ca, sa = math.cos(tilt + base_tilt), math.sin(tilt + base_tilt)

        def P(pts):
            out = []
            for x, y in pts:
                x, y = (x - 0.5) * scale * s, (y - 0.5) * scale * s
                out.append((cx + ca * x - sa * y, cy + sa * x + ca * y))
            return out

        img = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(img)
        if kind == "shoe":
            _draw_shoe(d, shape, P, s * scale)
        else:
            _draw_bag(d, shape, P, s * scale)
        labels = np.asarray(img)
        sole = (238, 236, 230) if shape == "sneaker" else ((30, 28, 28) if _luma(style.rgb) > 70 else (90, 80, 72))
        return _colourise(labels, style.rgb, style.pattern, style.pattern_rgb, sole,
                          period=0.085 * s, origin=(cx, cy), material=style.material, inner=_shade(style.rgb, 0.45))


# --------------------------------------------------------------------------------------------------------------
# Person drawing
# --------------------------------------------------------------------------------------------------------------


def _draw_person(c: _Canvas, person: Person, view: str, kp: np.ndarray, vis: np.ndarray, bh: float) -> None:
    lw = person.limb_width
    women = person.gender == "WOMEN"
    top, bottom = person.top, person.bottom
    u = bh  # one normalised unit in pixels
    pts = [complex(float(x), float(y)) for x, y in kp.tolist()]
    seen = [bool(v) for v in vis]
    J = _J

    def ok(*names):
        return all(seen[J[n]] for n in names)

    def K(name) -> complex:
        return pts[J[name]]

    # Torso frame.
    if ok("r_shoulder", "l_shoulder"):
        S = 0.5 * (K("r_shoulder") + K("l_shoulder"))
    elif ok("neck"):
        S = K("neck") + 0.02j * u
    else:
        return  # nothing sensible to draw without an upper body
    Pm = 0.5 * (K("r_hip") + K("l_hip")) if ok("r_hip", "l_hip") else S + 1j * (_HIP_Y - _SHOULDER_Y) * u
    L = abs(Pm - S)
    n = _unit(Pm - S)
    perp = 1j * n
    neck = K("neck") if ok("neck") else S - n * 0.02 * u
    hc = neck - 1j * _HEAD_ABOVE_NECK * u
    rx, ry = _HEAD_RX * u, _HEAD_RY * u

    def half_sep(a, b, extra, minimum):
        if ok(a, b):
            return max(0.5 * abs(_dot(K(a) - K(b), perp)) + extra, minimum)
        return minimum

    ws = half_sep("r_shoulder", "l_shoulder", 0.028 * u, 0.054 * u * person.shoulder_width)
    wh = half_sep("r_hip", "l_hip", 0.048 * u, 0.058 * u * person.hip_width)
    ww = 0.55 * ws + 0.45 * wh - (0.012 * u if women else 0.0)

    # Facing (side views): the nose is in front of the head centre.
    facing = 0.0
    if view == "side":
        facing = 1.0 if ok("nose") and K("nose").real > hc.real else -1.0
        near = "l" if facing < 0 else "r"
        far = "r" if near == "l" else "l"
    skin, hairm = _M_SKIN, _M_HAIR
    sleeve = top.sleeve
    has_long_hair = person.hair_style in ("long", "bob")
    hair_len = 0.21 * u if person.hair_style == "long" else 0.075 * u
    P_hair, P_torso, P_head, P_skirt = _P["hair"], _P["torso"], _P["head"], _P["skirt"]

    # 1. Hair hanging behind the body (front views).
    if view == "front" and has_long_hair:
        hw_ = rx * 1.25
        c.poly([hc - hw_ - 0.2j * ry, hc + hw_ - 0.2j * ry, hc + hw_ * 1.05 + 1j * hair_len,
                hc - hw_ * 1.05 + 1j * hair_len], P_hair, hairm)

    def draw_arm(side: str) -> None:
        ua, la, hand = _P[side + "_upper_arm"], _P[side + "_lower_arm"], _P[side + "_hand"]
        wu, wl = 0.05 * u * lw, 0.042 * u * lw
        sh, el, wr = side + "_shoulder", side + "_elbow", side + "_wrist"
        if ok(sh, el):
            a, b = K(sh), K(el)
            if sleeve != "long":  # a long sleeve hides the whole arm
                c.seg(a, b, wu, ua, skin)
                c.frame(ua, a, b, wu / 2)
            if sleeve == "long":
                c.seg(a, b, wu * 1.25, ua, _M_TOP)
                c.frame(ua, a, b, wu * 0.625)
            elif sleeve == "short":
                c.seg(a, a + 0.5 * (b - a), wu * 1.22, ua, _M_TOP)
        if ok(el, wr):
            a, b = K(el), K(wr)
            d = _unit(b - a)
            if sleeve != "long":
                c.seg(a, b, wl, la, skin)
                c.frame(la, a, b, wl / 2)
            if sleeve == "long":
                end = b - d * 0.012 * u
                c.seg(a, end, wl * 1.3, la, _M_TOP)
                c.frame(la, a, b, wl * 0.65)
                if top.kind in ("sweater", "shirt"):
                    c.seg(end - d * 0.018 * u, end, wl * 1.3, la, _M_TRIM, caps=False)
            rh = 0.024 * u * lw
            c.ellipse(b + d * 0.018 * u, rh, rh, hand, skin)
            c.frame(hand, b, b + d * 0.045 * u, rh)

    def draw_leg(side: str) -> None:
        ul, ll, ft = _P[side + "_upper_leg"], _P[side + "_lower_leg"], _P[side + "_foot"]
        wt, wsn = 0.075 * u * lw, 0.056 * u * lw
        hp, kn, an = side + "_hip", side + "_knee", side + "_ankle"
        thigh, shin = ok(hp, kn), ok(kn, an)
        trousers = bottom is not None and bottom.kind == "trousers"
        if thigh and not trousers:  # trousers hide the whole leg
            c.seg(K(hp), K(kn), wt, ul, skin)
            c.frame(ul, K(hp), K(kn), wt / 2)
        if shin and not trousers:
            c.seg(K(kn), K(an), wsn, ll, skin)
            c.frame(ll, K(kn), K(an), wsn / 2)
        if trousers:
            if thigh:
                c.seg(K(hp), K(kn), wt * 1.15, ul, _M_BOTTOM)
                c.frame(ul, K(hp), K(kn), wt * 0.575)
            if shin:
                end = K(an) - _unit(K(an) - K(kn)) * 0.006 * u
                c.seg(K(kn), end, wsn * 1.3, ll, _M_BOTTOM)
                c.frame(ll, K(kn), K(an), wsn * 0.65)
        elif bottom is not None and bottom.kind == "shorts" and thigh:
            c.seg(K(hp), K(hp) + 0.5 * (K(kn) - K(hp)), wt * 1.25, ul, _M_BOTTOM)
        if ok(an):
            a = K(an)
            if view == "side":
                toe = a + (facing * 0.055 + 0.042j) * u
                heel = a + (-facing * 0.012 + 0.03j) * u
            else:
                out = (-1.0 if side == "r" else 1.0) * (1.0 if view == "front" else -1.0)
                toe = a + (out * 0.01 + 0.05j) * u
                heel = a + 0.015j * u
            c.seg(heel, toe, 0.045 * u, ft, _M_SHOE)
            c.seg(a, heel, 0.05 * u * lw, ft, _M_SHOE)
            c.frame(ft, a, toe, 0.025 * u)

    # 2. Far arm behind the body (side views).
    if view == "side":
        draw_arm(far)
    # 3. Legs, bottoms, shoes.
    if view == "side":
        draw_leg(far)
        draw_leg(near)
    else:
        draw_leg("r")
        draw_leg("l")
    waist = S + n * (0.62 * L)
    if bottom is not None and bottom.kind in ("trousers", "shorts"):
        drop = (0.07 if bottom.kind == "trousers" else 0.05) * u
        c.poly([waist + perp * ww, waist - perp * ww, Pm - perp * wh + n * drop, Pm + perp * wh + n * drop],
               P_torso, _M_BOTTOM)
    # Skirts and dresses end at the knees.
    if ok("r_knee", "l_knee"):
        knees = 0.5 * (K("r_knee") + K("l_knee"))
        knee_sep = 0.5 * abs(_dot(K("r_knee") - K("l_knee"), perp))
    else:
        knees, knee_sep = Pm + n * _THIGH * u, 0.0
    if (bottom is not None and bottom.kind == "skirt") or top.kind == "dress":
        hem_c = Pm + 0.85 * (knees - Pm) + n * 0.02 * u
        hem_w = max(wh + 0.055 * u, knee_sep + 0.06 * u)
        mat = _M_BOTTOM if top.kind != "dress" else _M_TOP
        c.poly([waist + perp * ww, waist - perp * ww, Pm - perp * (wh + 0.01 * u), hem_c - perp * hem_w,
                hem_c + perp * hem_w, Pm + perp * (wh + 0.01 * u)], P_skirt, mat)
        c.frame(P_skirt, waist, hem_c, hem_w)
    # 4. Neck.
    c.seg(neck + n * 0.02 * u, hc + n * 0.03 * u, 0.042 * u * lw, P_head, skin)
    # 5. Torso (the top garment).
    hem_drop = {"jacket": 0.085, "dress": 0.0, "shirt": 0.035, "sweater": 0.04}.get(top.kind, 0.03) * u
    hem = Pm + n * hem_drop
    hem_w = wh + 0.008 * u
    shoulder_top = S - n * 0.012 * u
    torso = [shoulder_top + perp * ws * 0.72, S + perp * ws + n * 0.012 * u, waist + perp * ww,
             hem + perp * hem_w, hem - perp * hem_w,
             waist - perp * ww, S - perp * ws + n * 0.012 * u, shoulder_top - perp * ws * 0.72]
    if top.kind in ("tank", "dress") and view != "side":
        # Shoulder straps: skin shows at the outer shoulders.
        c.poly(torso, P_torso, skin)
        si, so = ws * 0.35, ws * 0.62
        torso = [shoulder_top + perp * si, shoulder_top + perp * so, S + perp * ws * 0.8 + n * 0.05 * u,
                 waist + perp * ww, hem + perp * hem_w, hem - perp * hem_w, waist - perp * ww,
                 S - perp * ws * 0.8 + n * 0.05 * u, shoulder_top - perp * so, shoulder_top - perp * si]
    c.poly(torso, P_torso, _M_TOP)
    c.frame(P_torso, S, hem, max(ws, wh))
    if view == "front":
        nk = neck + n * 0.01 * u
        kind = top.kind
        if kind == "tshirt":
            c.ellipse(nk, 0.03 * u, 0.024 * u, P_torso, _M_TRIM)
            c.ellipse(nk - n * 0.004 * u, 0.025 * u, 0.019 * u, P_torso, skin)
        elif kind == "sweater":
            c.ellipse(nk, 0.032 * u, 0.022 * u, P_torso, _M_TRIM)
            c.ellipse(nk - n * 0.006 * u, 0.026 * u, 0.016 * u, P_torso, skin)
            band = n * 0.025 * u
            c.poly([hem + perp * hem_w, hem - perp * hem_w, hem - perp * hem_w - band, hem + perp * hem_w - band],
                   P_torso, _M_TRIM)
        elif kind in ("tank", "dress"):
            c.ellipse(nk + n * 0.01 * u, 0.034 * u, 0.034 * u, P_torso, skin)
        elif kind == "shirt":
            c.poly([nk - perp * 0.03 * u - n * 0.012 * u, nk + perp * 0.03 * u - n * 0.012 * u, nk + n * 0.03 * u],
                   P_torso, _M_TRIM)
            c.poly([nk - perp * 0.016 * u - n * 0.01 * u, nk + perp * 0.016 * u - n * 0.01 * u, nk + n * 0.018 * u],
                   P_torso, skin)
            c.seg(nk + n * 0.03 * u, hem, max(1.0, 0.008 * u), P_torso, _M_TRIM, caps=False)
        elif kind == "jacket":
            v = waist - n * 0.02 * u
            c.poly([nk - perp * 0.035 * u - n * 0.012 * u, nk + perp * 0.035 * u - n * 0.012 * u, v],
                   P_torso, _M_TRIM)
            c.seg(v, hem, max(1.0, 0.01 * u), P_torso, _M_TRIM, caps=False)
    # 6. Long hair over the back (back and side views), then the arms.
    if view == "back" and has_long_hair:
        hw_ = rx * 1.2
        c.poly([hc - hw_, hc + hw_, hc + hw_ * 0.95 + 1j * hair_len, hc - hw_ * 0.95 + 1j * hair_len], P_hair, hairm)
    if view == "side" and has_long_hair:
        b = -facing
        c.poly([hc - b * 0.1 * rx, hc + b * 1.15 * rx - 0.2j * ry, hc + b * 1.1 * rx + 1j * hair_len,
                hc + b * 0.1 * rx + 0.9j * hair_len], P_hair, hairm)
    if view == "side":
        draw_arm(near)
    else:
        draw_arm("r")
        draw_arm("l")
    # 7. Head, ears, hair, face.
    c.ellipse(hc, rx, ry, P_head, skin)
    for e in ("r_ear", "l_ear"):
        if ok(e):
            c.dot(K(e), 0.013 * u, P_head, skin)
    c.frame(P_head, hc - 1j * ry, hc + 1j * ry, rx)
    hcap = hc - 0.006j * u
    hrx, hry = rx * 1.1, ry * 1.06
    bun = person.hair_style == "bun"
    if view == "back":
        c.ellipse(hcap, hrx, hry * 1.02, P_hair, hairm)
        if bun:
            c.ellipse(hc - 0.3j * ry, 0.028 * u, 0.028 * u, P_hair, hairm)
    elif view == "side":
        start, end = (200, 80) if facing < 0 else (100, 340)
        c.chord(hcap, hrx, hry, start, end, P_hair, hairm)
        if bun:
            c.ellipse(hc - facing * 0.95 * rx - 0.55j * ry, 0.024 * u, 0.024 * u, P_hair, hairm)
    else:
        turn = (K("nose").real - hc.real) / rx if ok("nose") else 0.0  # three-quarter views
        cut = 12 if person.hair_style == "short" else 0
        c.chord(hcap, hrx, hry, 180 - cut + turn * 20, 360 + cut + turn * 20, P_hair, hairm)
        if bun:
            c.ellipse(hc - 1.05j * ry, 0.026 * u, 0.022 * u, P_hair, hairm)
    # The label of the limb each keypoint ends, used to keep keypoints on the body at small sizes.
    arm_mat = _M_TOP if sleeve == "long" else skin
    hip_mat = _M_TOP if bottom is None else _M_BOTTOM
    knee_mat = _M_BOTTOM if bottom is not None and bottom.kind == "trousers" else skin
    for name, part, mat in (
            ("neck", P_head, skin), ("r_shoulder", P_torso, _M_TOP), ("l_shoulder", P_torso, _M_TOP),
            ("r_elbow", _P["r_upper_arm"], arm_mat), ("l_elbow", _P["l_upper_arm"], arm_mat),
            ("r_wrist", _P["r_hand"], skin), ("l_wrist", _P["l_hand"], skin),
            ("r_hip", P_torso, hip_mat), ("l_hip", P_torso, hip_mat),
            ("r_knee", _P["r_lower_leg"], knee_mat), ("l_knee", _P["l_lower_leg"], knee_mat),
            ("r_ankle", _P["r_foot"], _M_SHOE), ("l_ankle", _P["l_foot"], _M_SHOE),
            ("nose", P_head, skin), ("r_eye", P_head, skin), ("l_eye", P_head, skin),
            ("r_ear", P_head, skin), ("l_ear", P_head, skin)):
        c.joint_codes[J[name]] = part * 8 + mat
    if view != "back":
        er = 0.0075 * u
        for e in ("r_eye", "l_eye"):
            if ok(e):
                c.dot(K(e), er, P_head, _M_FEATURE)
        if view == "side" and ok("nose"):
            c.dot(K("nose"), 0.012 * u, P_head, skin)
        elif ok("nose", "r_eye", "l_eye"):
            m = K("nose") + 0.022j * u
            c.seg(m - 0.011 * u, m + 0.011 * u, max(1.0, 0.006 * u), P_head, _M_FEATURE, caps=False)


_SHADE_LEVELS = 8
_EDGE_DARKEN = 0.72


@functools.lru_cache(maxsize=2048)
def _person_lut(person: Person) -> np.ndarray:
    """Colour table indexed by ``material << 5 | pattern << 4 | edge << 3 | shade level`` (uint8 RGB)."""
    base = np.zeros((8, 2, 3), dtype=np.float32)
    base[_M_BG] = 255.0
    base[_M_SKIN] = person.skin_rgb
    base[_M_HAIR] = person.hair_rgb
    base[_M_TOP, 0] = person.top.rgb
    base[_M_TOP, 1] = person.top.pattern_rgb
    lower = person.bottom if person.bottom is not None else person.top
    base[_M_BOTTOM, 0] = lower.rgb
    base[_M_BOTTOM, 1] = lower.pattern_rgb
    base[_M_SHOE] = COLOURS[person.shoe_colour]
    base[_M_FEATURE] = _FEATURE_RGB
    base[_M_TRIM] = person.top.trim_rgb
    q = (np.arange(_SHADE_LEVELS, dtype=np.float32) + 0.5) / _SHADE_LEVELS  # v^2 at each level
    shade = 1.0 - 0.22 * q
    edge = np.array([1.0, _EDGE_DARKEN], dtype=np.float32)
    factor = edge[:, None] * shade[None, :]  # (2, levels)
    lut = base[:, :, None, None, :] * factor[None, None, :, :, None]  # (8, 2, 2, levels, 3)
    lut[_M_BG] = 255.0
    lut[_M_FEATURE] = base[_M_FEATURE, 0]  # eyes and mouth stay flat
    out = np.clip(lut + 0.5, 0, 255).astype(np.uint8).reshape(-1, 3)
    out.setflags(write=False)
    return out


def _compose_person(code: np.ndarray, frames, person: Person, kp: np.ndarray, bh: float,
                    background: np.ndarray | None):
    h, w = code.shape
    mask = code != 0
    # 1-pixel outlines where the label changes (computed on the whole image) ...
    edge = np.zeros((h, w), dtype=bool)
    np.not_equal(code[:, 1:], code[:, :-1], out=edge[:, 1:])
    edge[1:, :] |= code[1:, :] != code[:-1, :]
    bg = ~mask
    edge[:, :-1] |= bg[:, 1:]
    edge[:-1, :] |= bg[1:, :]
    # ... everything else only on body pixels.
    nz = np.flatnonzero(mask)
    c = code.ravel()[nz]
    mat = c & 7
    parts = c >> 3
    xs_full, ys_full = _grid(h, w)
    xs = xs_full.ravel()[nz]
    ys = ys_full.ravel()[nz]
    # IUV from the per-part frames: U along the part's axis, V across it.
    F = np.fromiter(itertools.chain.from_iterable(frames), dtype=np.float32,
                    count=6 * len(frames)).reshape(-1, 6)[parts].T  # (6, n)
    dx = xs - F[0]
    dy = ys - F[1]
    uu = dx * F[2]
    uu += dy * F[3]
    np.maximum(uu, 0.0, out=uu)
    np.minimum(uu, 1.0, out=uu)
    vv = dx * F[4]
    vv += dy * F[5]
    np.maximum(vv, -1.0, out=vv)
    np.minimum(vv, 1.0, out=vv)
    # Rounded shading across each part: quantised v^2 indexes the colour table.
    idx = (vv * vv * (_SHADE_LEVELS - 0.01)).astype(np.uint8)
    idx |= mat << 5
    idx |= edge.ravel()[nz].view(np.uint8) << 3
    period = max(5.0, 0.055 * bh)
    if person.top.pattern != "solid":
        ox, oy = float(kp[_J["neck"], 0]), float(kp[_J["neck"], 1])
        if not (math.isfinite(ox) and math.isfinite(oy)):
            ox, oy = w / 2.0, 0.2 * h
        pm = _pattern_at(person.top.pattern, period, ox, oy, h, w).ravel()[nz]
        pm &= mat == _M_TOP
        idx |= pm.view(np.uint8) << 4
    if person.bottom is not None and person.bottom.pattern != "solid":
        hips = [(float(x), float(y)) for x, y in kp[[_J["r_hip"], _J["l_hip"]]].tolist()
                if math.isfinite(x) and math.isfinite(y)]
        if hips:
            ox, oy = sum(p[0] for p in hips) / len(hips), sum(p[1] for p in hips) / len(hips)
        else:
            ox, oy = w / 2.0, 0.5 * h
        pm = _pattern_at(person.bottom.pattern, period, ox, oy, h, w).ravel()[nz]
        pm &= mat == _M_BOTTOM
        idx |= pm.view(np.uint8) << 4
    if background is None:
        image = np.full((h, w, 3), 255, dtype=np.uint8)
    else:
        image = background.copy()
    image.reshape(-1, 3)[nz] = _person_lut(person)[idx]
    body_iuv = np.empty((len(nz), 3), dtype=np.uint8)
    body_iuv[:, 0] = parts
    uu *= 255.0
    uu += 0.5
    body_iuv[:, 1] = uu
    vv += 1.0
    vv *= 127.5
    vv += 0.5
    body_iuv[:, 2] = vv
    iuv = np.zeros((h, w, 3), dtype=np.uint8)
    iuv.reshape(-1, 3)[nz] = body_iuv
    top_mask = ((code & 7) == _M_TOP).view(np.uint8)
    return image, mask.view(np.uint8), code >> 3, iuv, top_mask


# --------------------------------------------------------------------------------------------------------------
# Flat product shots and accessories
# --------------------------------------------------------------------------------------------------------------

_L_MAIN, _L_TRIM, _L_INNER, _L_SHADED = 1, 2, 3, 4  # SHADED: the main colour and pattern, darker (flaps)


def _draw_flat(d: ImageDraw.ImageDraw, kind: str, P: Callable, s: float) -> None:
    def poly(pts, label=_L_MAIN):
        d.polygon(P(pts), fill=label)

    def line(pts, width, label=_L_TRIM):
        d.line(P(pts), fill=label, width=max(1, int(round(width * s))))

    if kind in ("tshirt", "sweater", "shirt", "jacket", "tank"):
        long_sleeve = kind in ("shirt", "jacket", "sweater")
        body_w = 0.23 if kind != "jacket" else 0.25
        hem = 0.9 if kind != "jacket" else 0.93
        l, r = 0.5 - body_w, 0.5 + body_w
        if kind != "tank":
            if long_sleeve:
                poly([(l + 0.01, 0.13), (l - 0.15, 0.74), (l - 0.07, 0.77), (l + 0.02, 0.42)])
                poly([(r - 0.01, 0.13), (r + 0.15, 0.74), (r + 0.07, 0.77), (r - 0.02, 0.42)])
                if kind in ("shirt", "sweater"):
                    poly([(l - 0.15, 0.74), (l - 0.07, 0.77), (l - 0.075, 0.8), (l - 0.16, 0.77)], _L_TRIM)
                    poly([(r + 0.15, 0.74), (r + 0.07, 0.77), (r + 0.075, 0.8), (r + 0.16, 0.77)], _L_TRIM)
            else:
                poly([(l + 0.01, 0.13), (l - 0.16, 0.34), (l - 0.06, 0.43), (l + 0.02, 0.36)])
                poly([(r - 0.01, 0.13), (r + 0.16, 0.34), (r + 0.06, 0.43), (r - 0.02, 0.36)])
            poly([(0.4, 0.1), (l, 0.13), (l, hem), (r, hem), (r, 0.13), (0.6, 0.1), (0.5, 0.17)])
        else:
            poly([(0.36, 0.1), (0.42, 0.1), (0.5, 0.22), (0.58, 0.1), (0.64, 0.1), (0.66, 0.3), (r, 0.36),
                  (r, hem), (l, hem), (l, 0.36), (0.34, 0.3)])
        if kind == "tshirt":
            line([(0.4, 0.1), (0.5, 0.17), (0.6, 0.1)], 0.025)
        elif kind == "sweater":
            line([(0.4, 0.1), (0.5, 0.17), (0.6, 0.1)], 0.035)
            poly([(l, hem - 0.06), (r, hem - 0.06), (r, hem), (l, hem)], _L_TRIM)
        elif kind == "shirt":
            poly([(0.4, 0.09), (0.5, 0.18), (0.44, 0.23)], _L_TRIM)
            poly([(0.6, 0.09), (0.5, 0.18), (0.56, 0.23)], _L_TRIM)
            line([(0.5, 0.18), (0.5, hem)], 0.015)
        elif kind == "jacket":
            poly([(0.41, 0.1), (0.59, 0.1), (0.5, 0.55)], _L_INNER)
            line([(0.41, 0.1), (0.47, 0.33), (0.5, 0.55)], 0.025)
            line([(0.59, 0.1), (0.53, 0.33), (0.5, 0.55)], 0.025)
            line([(0.5, 0.55), (0.5, hem)], 0.015)
    elif kind == "dress":
        poly([(0.38, 0.06), (0.43, 0.06), (0.5, 0.16), (0.57, 0.06), (0.62, 0.06), (0.65, 0.2), (0.62, 0.42),
              (0.77, 0.95), (0.23, 0.95), (0.38, 0.42), (0.35, 0.2)])
        poly([(0.38, 0.4), (0.62, 0.4), (0.625, 0.44), (0.375, 0.44)], _L_TRIM)
    elif kind == "trousers":
        poly([(0.3, 0.08), (0.7, 0.08), (0.76, 0.95), (0.55, 0.95), (0.5, 0.32), (0.45, 0.95), (0.24, 0.95)])
        poly([(0.3, 0.06), (0.7, 0.06), (0.7, 0.11), (0.3, 0.11)], _L_TRIM)
    elif kind == "shorts":
        poly([(0.27, 0.25), (0.73, 0.25), (0.8, 0.72), (0.55, 0.75), (0.5, 0.5), (0.45, 0.75), (0.2, 0.72)])
        poly([(0.27, 0.22), (0.73, 0.22), (0.73, 0.28), (0.27, 0.28)], _L_TRIM)
    elif kind == "skirt":
        poly([(0.33, 0.2), (0.67, 0.2), (0.8, 0.82), (0.2, 0.82)])
        poly([(0.33, 0.17), (0.67, 0.17), (0.675, 0.23), (0.325, 0.23)], _L_TRIM)
    else:  # pragma: no cover - Garment validates kinds
        raise ValueError(f"unknown garment kind {kind!r}")


def _draw_shoe(d: ImageDraw.ImageDraw, shape: str, P: Callable, s: float) -> None:
    # Toe on the left. Label 1 = upper (style colour), 2 = sole/heel, 3 = opening/inside.
    if shape == "sneaker":
        d.polygon(P([(0.1, 0.62), (0.14, 0.5), (0.33, 0.45), (0.5, 0.36), (0.72, 0.33), (0.86, 0.36),
                     (0.9, 0.62)]), fill=_L_MAIN)
        d.polygon(P([(0.07, 0.62), (0.92, 0.62), (0.9, 0.7), (0.1, 0.7)]), fill=_L_TRIM)
        d.polygon(P([(0.55, 0.36), (0.72, 0.33), (0.83, 0.36), (0.66, 0.4)]), fill=_L_INNER)
        for i in range(3):
            x = 0.36 + i * 0.06
            d.line(P([(x, 0.45 - i * 0.03), (x + 0.05, 0.49 - i * 0.03)]), fill=_L_TRIM,
                   width=max(1, int(0.018 * s)))
    elif shape == "boot":
        d.polygon(P([(0.1, 0.66), (0.13, 0.54), (0.34, 0.5), (0.46, 0.44), (0.5, 0.12), (0.8, 0.12),
                     (0.82, 0.45), (0.86, 0.66)]), fill=_L_MAIN)
        d.polygon(P([(0.48, 0.12), (0.82, 0.12), (0.82, 0.17), (0.48, 0.17)]), fill=_L_INNER)
        d.polygon(P([(0.08, 0.66), (0.88, 0.66), (0.88, 0.73), (0.1, 0.73)]), fill=_L_TRIM)
    elif shape == "pump":
        d.polygon(P([(0.78, 0.5), (0.86, 0.46), (0.84, 0.8), (0.79, 0.8)]), fill=_L_TRIM)
        d.polygon(P([(0.06, 0.68), (0.1, 0.56), (0.3, 0.46), (0.52, 0.36), (0.66, 0.34), (0.86, 0.3),
                     (0.9, 0.36), (0.88, 0.5), (0.62, 0.58), (0.3, 0.66)]), fill=_L_MAIN)
        d.polygon(P([(0.6, 0.38), (0.84, 0.33), (0.85, 0.37), (0.64, 0.41)]), fill=_L_INNER)
        d.line(P([(0.07, 0.69), (0.3, 0.67), (0.62, 0.59), (0.88, 0.51)]), fill=_L_TRIM,
               width=max(1, int(round(0.03 * s))))
    elif shape == "loafer":
        d.polygon(P([(0.08, 0.62), (0.12, 0.52), (0.3, 0.46), (0.52, 0.44), (0.62, 0.4), (0.86, 0.42),
                     (0.9, 0.62)]), fill=_L_MAIN)
        d.polygon(P([(0.56, 0.42), (0.84, 0.43), (0.82, 0.47), (0.6, 0.46)]), fill=_L_INNER)
        d.line(P([(0.3, 0.47), (0.5, 0.47)]), fill=_L_TRIM, width=max(1, int(0.03 * s)))
        d.polygon(P([(0.06, 0.62), (0.92, 0.62), (0.9, 0.68), (0.1, 0.68)]), fill=_L_TRIM)
    else:  # pragma: no cover - checked by the caller
        raise ValueError(f"unknown shoe shape {shape!r}")


def _draw_bag(d: ImageDraw.ImageDraw, shape: str, P: Callable, s: float) -> None:
    def handle(box, width, label=_L_MAIN, start=180, end=360):
        (x0, y0), (x1, y1) = P([box[0], box[1]])
        d.arc([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], start, end, fill=label,
              width=max(1, int(round(width * s))))

    if shape == "tote":
        handle([(0.32, 0.1), (0.68, 0.5)], 0.045)
        d.polygon(P([(0.2, 0.3), (0.8, 0.3), (0.86, 0.88), (0.14, 0.88)]), fill=_L_MAIN)
        d.polygon(P([(0.2, 0.3), (0.8, 0.3), (0.805, 0.35), (0.195, 0.35)]), fill=_L_INNER)
    elif shape == "satchel":
        handle([(0.38, 0.16), (0.62, 0.44)], 0.045, _L_TRIM)
        d.rounded_rectangle(_bbox(P([(0.16, 0.3), (0.84, 0.84)])), radius=max(1, int(0.06 * s)), fill=_L_MAIN)
        d.polygon(P([(0.16, 0.3), (0.84, 0.3), (0.84, 0.52), (0.5, 0.58), (0.16, 0.52)]), fill=_L_SHADED)
        d.rectangle(_bbox(P([(0.46, 0.52), (0.54, 0.6)])), fill=_L_TRIM)
    elif shape == "clutch":
        d.rounded_rectangle(_bbox(P([(0.12, 0.36), (0.88, 0.72)])), radius=max(1, int(0.04 * s)), fill=_L_MAIN)
        d.polygon(P([(0.12, 0.36), (0.88, 0.36), (0.5, 0.56)]), fill=_L_SHADED)
        d.ellipse(_bbox(P([(0.47, 0.52), (0.53, 0.58)])), fill=_L_TRIM)
    elif shape == "bucket":
        handle([(0.22, 0.04), (0.78, 0.6)], 0.03, _L_TRIM)
        d.polygon(P([(0.24, 0.3), (0.76, 0.3), (0.7, 0.9), (0.3, 0.9)]), fill=_L_MAIN)
        d.ellipse(_bbox(P([(0.24, 0.26), (0.76, 0.34)])), fill=_L_INNER)
        d.line(P([(0.25, 0.38), (0.75, 0.38)]), fill=_L_TRIM, width=max(1, int(0.025 * s)))
    elif shape == "hobo":
        handle([(0.2, 0.06), (0.8, 0.7)], 0.035)
        d.chord(_bbox(P([(0.12, 0.0), (0.88, 0.88)])), 0, 180, fill=_L_MAIN)
        d.line(P([(0.14, 0.44), (0.86, 0.44)]), fill=_L_SHADED, width=max(1, int(0.03 * s)))
    else:  # pragma: no cover - checked by the caller
        raise ValueError(f"unknown bag shape {shape!r}")


def _bbox(pts) -> list[float]:
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return [min(xs), min(ys), max(xs), max(ys)]


def _colourise(labels: np.ndarray, rgb, pattern: str, pattern_rgb, trim_rgb, *, period: float,
               origin: tuple[float, float], material: str | None, inner) -> np.ndarray:
    """Colour a label map (1 main, 2 trim, 3 inner, 4 main but darker) on white: the pattern on the main
    areas, material shading, 1-pixel outlines."""
    h, w = labels.shape
    main = (labels == _L_MAIN) | (labels == _L_SHADED)
    lut = np.array([(255, 255, 255), rgb, trim_rgb, inner, rgb], dtype=np.float32)
    out = lut[np.minimum(labels, 4)]
    if pattern != "solid":
        pm = _pattern_at(pattern, max(5.0, period), origin[0], origin[1], h, w) & main
        out[pm] = pattern_rgb
    out[labels == _L_SHADED] *= 0.86
    fg = labels != 0
    xs, ys = _grid(h, w)
    ys_n = ys / max(h - 1, 1)
    shade = np.ones((h, w), dtype=np.float32)
    if material == "leather":
        shade += 0.1 - 0.2 * ys_n
    elif material == "patent":
        shade += 0.12 - 0.24 * ys_n
        band = np.abs((xs / max(w - 1, 1)) * 0.6 + ys_n - 0.62) < 0.045
        out[band & main] = out[band & main] * 0.35 + 255 * 0.65
    elif material == "suede":
        shade += 0.07 * _noise(h, w, "suede")
        shade *= 0.93
    elif material == "canvas":
        shade += 0.06 * _noise(h, w, "canvas")
    code = labels
    edge = np.zeros((h, w), dtype=bool)
    edge[:, 1:] |= code[:, 1:] != code[:, :-1]
    edge[1:, :] |= code[1:, :] != code[:-1, :]
    edge[:, :-1] |= code[:, 1:] == 0
    edge[:-1, :] |= code[1:, :] == 0
    edge &= fg
    shade[edge] *= 0.75
    out *= shade[:, :, None]
    out[~fg] = 255.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
