"""The Gradio web demo: one tab per tool, plus a browser for the synthetic fashion world.

``build_demo(...)`` returns the Blocks app; nothing is loaded until a request needs it (the app starts offline in
a few seconds).  Every tool is also a named API endpoint (``api_name``) that works from ``gradio_client``:

=====================  ==========================================================================================
endpoint               inputs -> outputs
=====================  ==========================================================================================
``/gallery_pose``      pose name -> keypoints JSON, skeleton image
``/detect_pose``       reference photo, recentre -> keypoints JSON, photo with keypoints drawn over it, skeleton
``/set_joint``         keypoints JSON, joint name, x, y (normalised 0..1; negative removes) -> keypoints JSON, skeleton
``/transfer_pose``     person photo, keypoints JSON, model, fit -> result, target skeleton, G1 coarse output
``/extract_garment``   person photo, model, fit -> product image
``/match_style``       item image, direction, model, fit, invert, outline -> matching item
``/generate``          seed, count, psi, model -> image grid
``/style_mix``         seed A, seed B, crossover layer, psi, model -> 2x2 grid (A, B, A+B, B+A)
``/interpolate``       seed A, seed B, frames, psi, model, format (gif|webp) -> animation file
``/edit_attributes``   image, model, edits JSON ``{attribute: value}``, amounts JSON ``{attribute: 0..1.5}``
                       -> edited image, "read as: ..." text, JSON of the attributes read / targeted / amounts
``/render_world``      world seed, identity, size -> poses, extras, attributes JSON
=====================  ==========================================================================================

``/edit_attributes`` takes the edits as JSON text rather than one parameter per attribute: each model has its own
attributes (colour / pattern / kind, or the Fashion-MNIST class), so a fixed positional signature would mean a
different thing for every model; named attributes work for any model and read the same in Python
(``pipe(image, edits, amounts)``).  In the page the per-attribute dropdowns and sliders fill that JSON in.

Bad input (a file that is not an image, an empty pose, a model of another tool ...) answers with a ``gr.Error``
that names the problem; the server keeps serving.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .registry import (
    MODELS_ENV,
    ModelChoiceError,
    ModelRegistry,
    model_attributes,
    parse_model_specs,
    tool_tasks,
    tool_title,
)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
#: Uploads larger than this are refused by the server (``launch(max_file_size=...)``).
MAX_FILE_SIZE = "10mb"
#: Requests that run at once; more wait in the queue (at most ``QUEUE_SIZE``).
CONCURRENCY_LIMIT = 2
QUEUE_SIZE = 32
EDIT_CANVAS = (256, 256)
#: Interpolation frames are enlarged (nearest neighbour) until their short side reaches this many pixels.
ANIMATION_MIN_SIDE = 128
#: The app's own result files (copied by Gradio into its cache at once) are deleted after this many seconds,
#: looked for at most every PRUNE_EVERY_S seconds.
TEMP_MAX_AGE_S = 600.0
PRUNE_EVERY_S = 30.0
#: Name stems of the files the app writes into ``temp_dir`` (``<stem>-<uuid>.<suffix>``): pruning deletes only
#: these (and their interrupted atomic writes, ``.<stem>-...tmp``), since ``temp_dir`` may be a folder the caller
#: shares with other files.
TEMP_FILE_STEMS = ("image", "interpolation")
#: Attribute rows (a target-value dropdown and an amount slider each) of the attribute-editing tab; a model with
#: more attributes has its others edited through the edits JSON (Advanced).
MAX_ATTRIBUTE_ROWS = 4
#: The dropdown value (and edits-JSON value) that leaves an attribute as the model read it.
KEEP = "keep"
#: The crossover slider's upper end for models the demo cannot size in advance (StyleGAN at 1024 px: 18 styles).
CROSSOVER_MAX = 17
_LOG = logging.getLogger(__name__)
#: An absolute server path inside an error message (shown to visitors as its last component only).
_ABS_PATH = re.compile(r"(?<![\w.~])(?:/[^\s/'\"():,;]+){2,}/?")

TOOLS = (
    (
        "Pose transfer",
        "A person image and a target pose (18 OpenPose keypoints) → the same person in the target pose. "
        "Model: PGPG (two-stage U-Net generator + conditional PatchGAN), trained on DeepFashion In-shop "
        "or on the synthetic world's pose pairs.",
    ),
    (
        "Garment extraction",
        "A photo of a dressed person → a product photo of the worn top on white. Model: PixelDTGAN "
        "(encoder/decoder generator with real/fake and associated/unassociated discriminators), trained on "
        "LookBook + In-shop flat items or the synthetic world.",
    ),
    (
        "Style matching",
        "A shoe → a handbag of matching style, and back. Model: DiscoGAN/CycleGAN (two generators, two "
        "PatchGANs; the synthetic model's generators copy the shoe's surface onto the handbag they draw through "
        "an appearance flow), trained on the iGAN handbags/Zappos shoes files, Fashion-MNIST shoes ↔ bags, or "
        "the synthetic world's shared styles.",
    ),
    (
        "Generation",
        "Seeds → new full-body fashion photos, with truncation, style mixing and interpolation. Models: StyleGAN "
        "and StyleGAN2, trained on DeepFashion Fashion Synthesis, Fashion-MNIST or the synthetic world.",
    ),
    (
        "Edit attributes",
        "A product photo + new attribute values → the same item with its colour, pattern or kind changed, each "
        "as far as its slider says (0 keeps it, 1 sets it, up to 1.5 exaggerates). Models: Fader Networks "
        "(an encoder-decoder whose latent code a latent discriminator makes attribute-free) and IcGAN (a "
        "conditional DCGAN with encoders back to its z and attributes), trained on the synthetic world's product "
        "photos or Fashion-MNIST (class).",
    ),
)
_TASK_OF_TOOL = {"Pose transfer": "pose", "Garment extraction": "garment", "Style matching": "style",
                 "Generation": "generation", "Edit attributes": "edit"}


def _grid(images: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile equally sized uint8 HWC images into one image with a 2 px white gutter."""
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    canvas = np.full((rows * (h + 2) + 2, columns * (w + 2) + 2, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        canvas[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + c * (w + 2) : 2 + c * (w + 2) + w] = img
    return canvas


def render_world_preview(seed: int, identity: int, size: int = 128) -> tuple[np.ndarray, np.ndarray, str]:
    """Render one identity of the synthetic world in every pose, its product shot, and a shoe/bag pair."""
    from fashion_gans.data.pose import draw_skeleton
    from fashion_gans.data.synthetic import ACCESSORY_SHAPES, POSE_NAMES, SyntheticWorld

    if size is None or not 32 <= int(size) <= 512:
        raise ValueError(f"size must be between 32 and 512 px, got {size}")
    if seed is None or identity is None or int(seed) < 0 or int(identity) < 0:
        raise ValueError(f"world seed and identity must be integers >= 0, got {seed} and {identity}")
    size = int(size)
    world = SyntheticWorld(seed=int(seed))
    person = world.person(int(identity))
    renders = [world.render_person(person, world.pose(int(identity), k), (size, size)) for k in range(len(POSE_NAMES))]
    people = [r.image for r in renders]
    skeletons = [draw_skeleton(r.keypoints, r.image) for r in renders]
    style = world.accessory_style(int(identity))
    extras = [
        world.render_flat(person.top, (size, size)),
        world.render_person(person, world.pose(int(identity), 0), (size, size), background="scene").image,
        world.render_shoe(style, ACCESSORY_SHAPES["shoe"][0], (size, size)),
        world.render_bag(style, ACCESSORY_SHAPES["bag"][0], (size, size)),
    ]
    top = _grid(people + skeletons, columns=len(people))
    bottom = _grid(extras, columns=len(extras))
    attrs = {"person": person.attributes(), "accessory_style": style.attributes()}
    return top, bottom, json.dumps(attrs, indent=2)


# ---------------------------------------------------------------------------------------------- examples
def example_files(group: str) -> list[str]:
    """Paths of the shipped example images of ``group`` (persons, references, scenes, shoes, bags, fmnist, flats,
    fmnist_clothes)."""
    folder = EXAMPLES_DIR / group
    return sorted(str(p) for p in folder.glob("*.png")) if folder.is_dir() else []


# ---------------------------------------------------------------------------------------------- the app
class DemoBackend:
    """The demo's request handlers, independent of the widgets (each raises ``gr.Error`` on bad input)."""

    def __init__(self, registry: ModelRegistry, device: str = "auto", temp_dir: str | os.PathLike | None = None):
        self.registry = registry
        self.device = device
        self.temp_dir = Path(temp_dir) if temp_dir else Path(tempfile.mkdtemp(prefix="fashion-gans-demo-"))
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self._pruned = 0.0

    # ---- helpers
    def _prune(self, max_age_s: float = TEMP_MAX_AGE_S) -> None:
        """Delete this app's own files older than ``max_age_s``: Gradio copies each result into its cache (and
        serves the copy) before the request ends, so ours are only needed for moments."""
        now = time.time()
        if now - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = now
        patterns = [p for stem in TEMP_FILE_STEMS for p in (f"{stem}-*", f".{stem}-*.tmp")]
        for old in {f for pattern in patterns for f in self.temp_dir.glob(pattern)}:
            try:
                if old.is_file() and now - old.stat().st_mtime > max_age_s:
                    old.unlink()
            except OSError:
                pass

    def _new_file(self, stem: str, suffix: str) -> Path:
        if stem not in TEMP_FILE_STEMS:
            raise ValueError(f"temporary file stem {stem!r} is not one of {TEMP_FILE_STEMS} (the ones pruned)")
        self._prune()
        return self.temp_dir / f"{stem}-{uuid.uuid4().hex[:12]}.{suffix}"

    def image_file(self, image: Any) -> str:
        """``image`` (PIL image or uint8 array) as a PNG file of its own, written atomically; its path.

        Returned PIL images and arrays are written by Gradio into its cache at a path named by their content,
        truncating and rewriting that file in place, so two visitors who get the same result (the same example,
        the same seed) at the same time break each other's download: the server announces the file's length and
        then finds it empty (``RemoteProtocolError`` in ``gradio_client``).  A returned file path is instead copied
        into the cache under a temporary name and renamed, which never changes a file that is being served.
        """
        from PIL import Image

        from fashion_gans.data.io import atomic_path

        img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        path = self._new_file("image", "png")
        with atomic_path(path) as tmp:
            img.save(tmp, format="PNG")
        return str(path)

    def as_files(self, fn: Callable) -> Callable:
        """``fn`` with every image in its result (one value or a tuple) handed over as a PNG file (:meth:`image_file`);
        other values (keypoints JSON, file paths) pass unchanged."""
        from PIL import Image

        def is_image(v: Any) -> bool:
            return isinstance(v, Image.Image) or (isinstance(v, np.ndarray) and v.dtype == np.uint8
                                                  and v.ndim in (2, 3))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            if isinstance(out, tuple):
                return tuple(self.image_file(v) if is_image(v) else v for v in out)
            return self.image_file(out) if is_image(out) else out

        return wrapper

    def pipeline(self, task: str, model: str | None):
        from fashion_gans.models.hub import ModelFileError
        from fashion_gans.pipelines import PipelineError, pipeline_for_task

        source, revision = self.registry.resolve(model, task)
        shown = (model or "").strip() or self.registry.default(task) or "model"
        cls = pipeline_for_task(tool_tasks(task)[0])  # attribute editing: one pipeline for Fader and IcGAN models
        try:
            return cls.from_pretrained(source, device=self.device, revision=revision,
                                       max_parameters=self.registry.max_parameters)
        except (ModelFileError, PipelineError) as exc:  # name the model, never the server's folders
            raise type(exc)(_hide_paths(str(exc), {str(source): shown})) from exc

    def status(self, task: str, model: str | None = None) -> str:
        name = (model or "").strip() or self.registry.default(task)
        if name is None:
            hint = (" Type the Hub repo id of a trained model (user/name) into the model box."
                    if self.registry.allow_hub else "")
            return (f"**No {tool_title(task)} model is available** in this installation: no weights for this tool "
                    f"are bundled yet.{hint}")
        entry = self.registry.entries.get(name)
        if entry is None:
            return f"Model: `{name}` (loaded when you run the tool)."
        from fashion_gans.models.sources import BUNDLED_DIR

        folder = BUNDLED_DIR / name if entry.bundled else Path(entry.source)
        meta: dict[str, Any] = {}
        try:
            meta = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        bits = [f"Model: `{name}`" + (" (bundled)" if entry.bundled else "")]
        if meta.get("preset"):
            bits.append(f"preset `{meta['preset']}`")
        if meta.get("data"):
            bits.append(f"trained on {meta['data']}")
        if isinstance(meta.get("metrics"), dict):
            shown = [f"{k} {v:.3g}" for k, v in meta["metrics"].items() if isinstance(v, (int, float))][:4]
            if shown:
                bits.append("held-out " + ", ".join(shown))
        return " · ".join(bits)

    # ---- pose
    def gallery_pose(self, name: str):
        from fashion_gans.pipelines.pose import draw_pose, gallery_pose

        pose = gallery_pose(name or "front", EDIT_CANVAS)
        return _pose_json(pose), draw_pose(pose, EDIT_CANVAS)

    def detect_pose(self, photo: str | None, recentre: bool = True):
        from fashion_gans.pipelines.pose import draw_pose, estimate_pose, recentre_pose

        if photo is None:
            raise ValueError("reference photo: upload a photo of a person (or pick an example) first")
        found = estimate_pose(photo, frame=EDIT_CANVAS)
        pose = recentre_pose(found.pose, EDIT_CANVAS) if recentre else found.pose
        return _pose_json(pose), found.overlay, draw_pose(pose, EDIT_CANVAS)

    def set_joint(self, pose_json: str | None, joint: str, x: float, y: float):
        from fashion_gans.pipelines.pose import JOINT_NAMES, draw_pose, parse_pose, set_joint

        pose = parse_pose(_read_pose_json(pose_json), "keypoints") if _has_pose(pose_json) else None
        new = set_joint(pose, joint, float(x), float(y))
        return _pose_json(new), draw_pose(new, EDIT_CANVAS, highlight=JOINT_NAMES.index(joint))

    def transfer_pose(self, photo: str | None, pose_json: str | None, model: str | None, fit: str = "pad"):
        from fashion_gans.pipelines.images import upscale_for_display
        from fashion_gans.pipelines.pose import PoseInputError, parse_pose, reframe_pose

        if photo is None:
            raise ValueError("person photo: upload a photo of a person (or pick an example) first")
        if not _has_pose(pose_json):
            raise PoseInputError("target pose: the pose is empty; pick a gallery pose, detect one from a photo or "
                                 "place joints")
        pose = parse_pose(_read_pose_json(pose_json), "target pose")
        pipe = self.pipeline("pose", model)
        pose = reframe_pose(pose, EDIT_CANVAS, pipe.size)  # the editing canvas -> the model's frame (aspect)
        result = pipe(photo, pose, fit=fit or "pad")
        return tuple(upscale_for_display(im) for im in result)

    # ---- garment / style
    def extract_garment(self, photo: str | None, model: str | None, fit: str = "pad"):
        from fashion_gans.pipelines.images import upscale_for_display

        if photo is None:
            raise ValueError("person photo: upload a photo of a dressed person (or pick an example) first")
        return upscale_for_display(self.pipeline("garment", model)(photo, fit=fit or "pad"))

    def match_style(self, image: str | None, direction: str, model: str | None, fit: str = "pad",
                    invert: str = "auto", outline: float = 0):
        from fashion_gans.pipelines.images import upscale_for_display

        if image is None:
            raise ValueError("item image: upload a shoe or handbag photo (or pick an example) first")
        out = self.pipeline("style", model)(image, _direction(direction), fit=fit or "pad", invert=invert or "auto",
                                            outline=_int(0 if outline is None else outline, "outline"))
        return upscale_for_display(out)

    # ---- generation
    def generate(self, seed: float, count: float, psi: float, model: str | None):
        from fashion_gans.pipelines import image_grid
        from fashion_gans.pipelines.images import upscale_for_display

        n = _int(count, "number of images")
        images = self.pipeline("generation", model)(_int(seed, "seed"), n, psi=_float(psi, "psi"))
        return upscale_for_display(image_grid(images, columns=min(n, 8)), 128)

    def style_mix(self, seed_a: float, seed_b: float, crossover: float, psi: float, model: str | None):
        from fashion_gans.pipelines import image_grid
        from fashion_gans.pipelines.images import upscale_for_display

        pipe = self.pipeline("generation", model)
        k = _int(crossover, "crossover layer")
        if not 1 <= k < pipe.num_ws:  # 0 or num_ws would copy one seed: no mixing
            raise ValueError(f"crossover layer: must be in 1..{pipe.num_ws - 1} for this model ({pipe.num_ws} style "
                             f"layers), got {k}")
        images = pipe.style_mix(_int(seed_a, "seed A"), _int(seed_b, "seed B"), k, psi=_float(psi, "psi"))
        return upscale_for_display(image_grid(images, columns=2), 256)

    def style_layers(self, model: str | None) -> int | None:
        """The number of style layers (``num_ws``) of an offered generation model, read from its config (no weights
        loaded); None when unknown (a Hub repo id, a broken folder)."""
        from fashion_gans.models import MODEL_CLASSES

        name = (model or "").strip() or self.registry.default("generation")
        entry = self.registry.entries.get(name or "")
        if entry is None or entry.task != "generation":
            return None
        folder = Path(entry.source)
        for cfg in (folder / "generator" / "config.json", folder / "final" / "generator" / "config.json"):
            try:
                meta = json.loads(cfg.read_text(encoding="utf-8"))
                return int(MODEL_CLASSES[meta["model_class"]].config_class.from_dict(meta["config"]).num_ws)
            except Exception:  # noqa: BLE001 - unknown: the handler checks the loaded model
                continue
        return None

    def crossover_slider(self, model: str | None, current: float | None = None):
        """The crossover slider for ``model``: 1..num_ws-1 (every value mixes the two seeds)."""
        import gradio as gr

        n = self.style_layers(model)
        if n is None or n < 2:
            return gr.update(minimum=1, maximum=CROSSOVER_MAX)
        top = n - 1
        value = min(max(1, int(current if current is not None else 2)), top)
        return gr.update(minimum=1, maximum=top, value=value)

    def interpolate(self, seed_a: float, seed_b: float, frames: float, psi: float, model: str | None,
                    fmt: str = "gif") -> str:
        from fashion_gans.pipelines import save_animation

        fmt = (fmt or "gif").lower().lstrip(".")
        if fmt not in ("gif", "webp"):
            raise ValueError(f"animation format: 'gif' or 'webp', got {fmt!r}")
        pipe = self.pipeline("generation", model)
        images = pipe.interpolate(_int(seed_a, "seed A"), _int(seed_b, "seed B"), _int(frames, "frames"),
                                  psi=_float(psi, "psi"))
        # Enlarged like upscale_for_display(..., 128), but by save_animation after the GIF colour reduction, which
        # then works on the model's pixels (and once per frame of the loop), not on the enlarged copies.
        scale = min(16, max(1, -(-ANIMATION_MIN_SIDE // min(images[0].size))))
        return str(save_animation(images, self._new_file("interpolation", fmt), fps=12, scale=scale))

    # ---- attribute editing
    def edit_attributes_of(self, model: str | None) -> dict[str, list[str]]:
        """The attributes (name -> values) of an attribute-editing model: read from an offered model's config (no
        weights loaded), otherwise from the loaded model (a Hub repo id, a run with only checkpoints)."""
        name = (model or "").strip() or self.registry.default("edit")
        entry = self.registry.entries.get(name or "")
        if entry is not None and entry.task in tool_tasks("edit"):
            attributes = model_attributes(entry.source)
            if attributes:
                return attributes
        return self.pipeline("edit", model).attributes

    def edit_controls(self, model: str | None) -> tuple:
        """The tab's status line and its attribute rows for ``model`` (``MAX_ATTRIBUTE_ROWS`` value dropdowns, amount
        sliders, then the rows' columns): one row per attribute (the first ``MAX_ATTRIBUTE_ROWS``) labelled with its
        name, its values offered after "keep"; the other rows hidden."""
        import gradio as gr
        from fashion_gans.models.hub import ModelFileError
        from fashion_gans.pipelines import PipelineError

        status = self.status("edit", model)
        attributes: dict[str, list[str]] = {}
        if (model or "").strip() or self.registry.default("edit"):
            try:
                attributes = self.edit_attributes_of(model)
            except (ModelChoiceError, ModelFileError, PipelineError, ValueError) as exc:
                status += f"\n\n**This model cannot be used:** {_hide_paths(str(exc))}"
            except Exception as exc:  # noqa: BLE001 - logged; the page keeps working with the other models
                _LOG.exception("reading the attributes of %r failed", model)
                status += f"\n\n**This model cannot be used** ({type(exc).__name__}; it has been logged)."
        if attributes:
            listed = ", ".join(f"{a} ({len(v)} values)" for a, v in attributes.items())
            status += f"\n\nEditable attributes: {listed}."
            if len(attributes) > MAX_ATTRIBUTE_ROWS:
                status += (f" The first {MAX_ATTRIBUTE_ROWS} have controls here; set the others in Advanced → "
                           "Edits (JSON).")
        names = list(attributes)[:MAX_ATTRIBUTE_ROWS]
        values, amounts, columns = [], [], []
        for i in range(MAX_ATTRIBUTE_ROWS):
            if i < len(names):
                attr = names[i]
                values.append(gr.update(choices=[KEEP, *attributes[attr]], value=KEEP, label=attr, visible=True))
                amounts.append(gr.update(value=1.0, label=f"{attr} amount", visible=True))
            else:
                values.append(gr.update(choices=[KEEP], value=KEEP, visible=False))
                amounts.append(gr.update(value=1.0, visible=False))
            columns.append(gr.update(visible=i < len(names)))
        return (status, *values, *amounts, *columns)

    def edit_rows(self, image: str | None, model: str | None, *rows: Any):
        """The page's Edit button: the attribute rows (``MAX_ATTRIBUTE_ROWS`` target values, then as many
        amounts) -> :meth:`edit_attributes`, plus the edits and amounts JSON it used (shown under Advanced)."""
        if len(rows) != 2 * MAX_ATTRIBUTE_ROWS:
            raise ValueError(f"expected {MAX_ATTRIBUTE_ROWS} values and {MAX_ATTRIBUTE_ROWS} amounts, got {len(rows)}")
        names = list(self.edit_attributes_of(model))[:MAX_ATTRIBUTE_ROWS]
        edits: dict[str, str] = {}
        amounts: dict[str, float] = {}
        for i, attr in enumerate(names):
            value, amount = rows[i], rows[MAX_ATTRIBUTE_ROWS + i]
            if value in (None, "", KEEP):
                continue
            edits[attr] = str(value)
            if amount is not None and _float(amount, f"{attr}: amount") != 1.0:
                amounts[attr] = _float(amount, f"{attr}: amount")
        edits_json, amounts_json = json.dumps(edits), json.dumps(amounts)
        return (*self.edit_attributes(image, model, edits_json, amounts_json), edits_json, amounts_json)

    def edit_attributes(self, image: str | None, model: str | None, edits: str | None = None,
                        amounts: str | None = None):
        """``edits``: JSON ``{attribute: value}`` (``"keep"`` or a missing attribute keeps what the model reads);
        ``amounts``: JSON ``{attribute: 0..1.5}`` (missing: 1) -> the edited image (enlarged for display), the
        "read as" line, and JSON of what was read, targeted and how far."""
        from fashion_gans.pipelines.images import upscale_for_display

        if image is None:
            raise ValueError("image: upload a product photo (or pick an example) first")
        wanted = _json_object(edits, "edits")
        how_far = _json_object(amounts, "amounts")
        pipe = self.pipeline("edit", model)
        wanted = {a: v for a, v in wanted.items() if not (v == KEEP and a in pipe.attributes)}
        for attr, value in wanted.items():
            if not isinstance(value, str):
                raise ValueError(f"edits: the value of {attr!r} must be a string, got {value!r}")
        result = pipe(image, wanted, how_far)
        read = result.attributes_read
        target = {a: wanted.get(a, v) for a, v in read.items()}
        text = "read as: " + ", ".join(read.values())
        if wanted:
            text += " → edited to: " + ", ".join(target.values())
        info = {"read": read, "target": target,
                "amounts": {a: float(how_far.get(a, 1.0)) for a in wanted}}
        return upscale_for_display(result.image), text, json.dumps(info, indent=1)


def _int(value: Any, name: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an integer, got {value!r}") from None
    if not f.is_integer():
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return int(f)


def _float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None


def _json_object(text: Any, name: str) -> dict[str, Any]:
    """A JSON object given as text (empty: ``{}``); the error names the parameter."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if isinstance(text, dict):
        return dict(text)
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not valid JSON ({exc}); expected an object such as "
                         '{"colour": "red"}') from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object attribute -> value, got {type(data).__name__}")
    return data


def _direction(text: str | None) -> str:
    t = (text or "shoe_to_bag").lower()
    return "bag_to_shoe" if t.startswith(("bag", "handbag", "ba")) else "shoe_to_bag"


def _pose_json(pose: np.ndarray) -> str:
    return json.dumps([[round(float(x), 4), round(float(y), 4)] for x, y in pose])


def _read_pose_json(text: Any) -> Any:
    from fashion_gans.pipelines.pose import PoseInputError

    if isinstance(text, (list, dict)):
        return text
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PoseInputError(f"target pose: not valid JSON ({exc}); expected 18 [x, y] pairs") from None


def _has_pose(text: Any) -> bool:
    if text is None:
        return False
    if isinstance(text, str):
        return bool(text.strip()) and text.strip() not in ("[]", "{}", "null")
    return bool(np.size(text))


def _hide_paths(message: str, names: dict[str, str] | None = None) -> str:
    """``message`` with the given server paths replaced by names, and any other absolute path cut to its last
    component (visitors see model and file names, never the server's folders)."""
    for path, name in sorted((names or {}).items(), key=lambda kv: -len(kv[0])):
        if path:
            message = message.replace(path, name)
    return _ABS_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], message)


def _user_errors(fn: Callable) -> Callable:
    """Turn the pipelines' input errors into ``gr.Error`` (shown to the visitor, sent to API clients); anything
    unexpected is logged with its traceback and answered with a generic error."""
    import gradio as gr
    from fashion_gans.models.hub import ModelFileError
    from fashion_gans.pipelines import ImageInputError, PipelineError, PoseInputError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ImageInputError, PoseInputError, PipelineError, ModelChoiceError, ModelFileError) as exc:
            raise gr.Error(_hide_paths(str(exc))) from exc
        except (ValueError, TypeError) as exc:
            raise gr.Error(f"{type(exc).__name__}: {_hide_paths(str(exc))}") from exc
        except MemoryError as exc:
            raise gr.Error("the server ran out of memory for this request; try a smaller input") from exc
        except Exception as exc:  # noqa: BLE001 - out of memory on the GPU, disk errors ...: logged, not shown
            _LOG.exception("%s failed", getattr(fn, "__name__", "request"))
            if "out of memory" in str(exc).lower():
                raise gr.Error("the server ran out of memory for this request; try a smaller input") from exc
            raise gr.Error(f"the server could not complete this request ({type(exc).__name__}); it has been "
                           "logged") from exc

    return wrapper


def _readable_upload(image):
    """Make an input ``gr.Image`` report unreadable files as a clear ``gr.Error`` (stock Gradio answers a generic
    error).  The instance's ``preprocess`` is wrapped rather than subclassing ``gr.Image``, which would make Gradio
    write a ``.pyi`` stub next to this module."""
    import gradio as gr

    stock = image.preprocess

    def preprocess(payload):
        try:
            return stock(payload)
        except gr.Error:
            raise
        except Exception as exc:
            from PIL import Image

            from fashion_gans.pipelines.images import MAX_INPUT_PIXELS, describe_file_start

            if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
                raise gr.Error(f"{image.label or 'image'}: image too large (at most "
                               f"{MAX_INPUT_PIXELS / 1e6:.0f} MP)") from exc

            head = b""
            try:
                with open(payload.path, "rb") as fh:
                    head = fh.read(16)
            except (OSError, TypeError, AttributeError):
                pass
            raise gr.Error(f"{image.label or 'image'}: cannot be read: {describe_file_start(head)}") from exc

    image.preprocess = preprocess
    return image


def _model_box(gr, registry: ModelRegistry, task: str):
    names = registry.names(task)
    info = ("a bundled model, or a Hub repo id (user/name) of a trained fashion-gans model" if registry.allow_hub
            else "a model offered by this demo")
    return gr.Dropdown(choices=names, value=registry.default(task), allow_custom_value=True, label="Model",
                       info=info, elem_id=f"{task}-model")


def build_demo(models: dict[str, str | os.PathLike] | None = None, *,
               model_roots: list[str | os.PathLike] | None = None,
               allow_hub: bool = True, include_bundled: bool = True, device: str = "auto",
               temp_dir: str | os.PathLike | None = None):
    """Build the Gradio Blocks app.

    ``models``: extra named model folders (added to the bundled ones; also read from the environment variable
    ``FASHION_GANS_DEMO_MODELS`` as ``name=folder,...``); ``model_roots``: folders inside which a visitor may type a
    local model path (none by default); ``allow_hub``: accept typed Hub repo ids; ``device``: "auto", "cpu",
    "cuda"...  Nothing is loaded until a request needs it.
    """
    import gradio as gr

    extra = {**parse_model_specs(os.environ.get(MODELS_ENV)), **(models or {})}
    registry = ModelRegistry(extra, model_roots=model_roots, allow_hub=allow_hub, include_bundled=include_bundled)
    backend = DemoBackend(registry, device=device, temp_dir=temp_dir)
    from fashion_gans.pipelines.edit import MAX_AMOUNT
    from fashion_gans.pipelines.pose import JOINT_NAMES, POSE_GALLERY

    def upload(label: str, **kw):
        # image_mode=None and type="filepath": the file reaches the pipelines as uploaded (16-bit, alpha, EXIF ...).
        return _readable_upload(gr.Image(label=label, type="filepath", image_mode=None,
                                         sources=["upload", "clipboard"], format="png",
                                         height=kw.pop("height", 260), **kw))

    def output(label: str, **kw):
        return gr.Image(label=label, format="png", interactive=False, height=kw.pop("height", 260), **kw)

    def examples(files: list[str], target, label: str, elem_id: str | None = None):
        if files:
            gr.Examples(examples=[[f] for f in files], inputs=[target], label=label, examples_per_page=12,
                        api_visibility="private", elem_id=elem_id)

    def wrap(fn: Callable) -> Callable:  # clear errors, and images handed to Gradio as files (DemoBackend.as_files)
        return _user_errors(backend.as_files(fn))

    # delete_cache: Gradio's copies of uploads and results older than a day are removed every hour.
    with gr.Blocks(title="fashion-gans", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            "# fashion-gans\nA fashion image multi-tool of GANs: pose transfer, garment extraction, shoes ↔ handbags "
            "style matching, fashion photo generation and attribute editing. Pick an example or upload a photo; "
            "results come from the small bundled models (trained on the synthetic fashion world and Fashion-MNIST) "
            "unless you choose another model."
        )
        with gr.Tabs():
            # ------------------------------------------------------------------------------------ pose
            with gr.Tab("Pose transfer", id="pose"):
                gr.Markdown(f"### Pose transfer\n{TOOLS[0][1]}")
                pose_status = gr.Markdown(backend.status("pose"))
                pose_model = _model_box(gr, registry, "pose")
                with gr.Row():
                    with gr.Column():
                        person = upload("Person photo", elem_id="pose-person")
                        examples(example_files("persons"), person, "Example persons (synthetic world)", "pose-examples")
                    with gr.Column():
                        with gr.Tabs():
                            with gr.Tab("Pose gallery"):
                                pose_name = gr.Dropdown(
                                    choices=list(POSE_GALLERY) + [f"{p} (mirrored)" for p in POSE_GALLERY],
                                    value="walking", label="Target pose")
                            with gr.Tab("From a photo"):
                                reference = upload("Reference photo (a whole person)", height=220,
                                                   elem_id="pose-reference")
                                examples(example_files("references"), reference, "Example reference photos",
                                         "pose-reference-examples")
                                detect = gr.Button("Detect pose")
                                detected = output("Detected keypoints", height=220, elem_id="pose-detected")
                            with gr.Tab("Edit joints"):
                                joint = gr.Dropdown(choices=list(JOINT_NAMES), value="r_wrist", label="Joint")
                                gr.Markdown("Click on the target skeleton where the chosen joint goes.")
                                remove_joint = gr.Button("Remove this joint")
                        skeleton_editor = output("Target pose (click to place the chosen joint)", elem_id="pose-editor")
                pose_go = gr.Button("Transfer pose", variant="primary")
                with gr.Row():
                    pose_result = output("Result (G2 refined)", elem_id="pose-result")
                    pose_skeleton = output("Target skeleton", elem_id="pose-skeleton")
                    pose_coarse = output("G1 coarse output", elem_id="pose-coarse")
                with gr.Accordion("Advanced", open=False):
                    pose_fit = gr.Radio(["pad", "crop"], value="pad", label="Fit the photo to the model's frame",
                                        info="pad: whole photo on white; crop: fill the frame, cut the centre")
                    pose_recentre = gr.Checkbox(value=True, label="Scale and centre detected poses to the frame")
                    keypoints = gr.Textbox(label="Target keypoints (18 [x, y], normalised 0..1, -1 = missing)",
                                           lines=2)
                pose_model.change(backend.status, inputs=[gr.State("pose"), pose_model], outputs=pose_status,
                                  api_visibility="private")
                pose_name.change(wrap(backend.gallery_pose), inputs=pose_name, outputs=[keypoints, skeleton_editor],
                                 api_name="gallery_pose")
                detect.click(wrap(backend.detect_pose), inputs=[reference, pose_recentre],
                             outputs=[keypoints, detected, skeleton_editor], api_name="detect_pose")

                def click_joint(pose_json, joint_name, evt):
                    x, y = evt.index[0], evt.index[1]
                    return wrap(backend.set_joint)(pose_json, joint_name, (x + 0.5) / EDIT_CANVAS[1],
                                                   (y + 0.5) / EDIT_CANVAS[0])

                click_joint.__annotations__ = {"evt": gr.SelectData}  # resolved here, not from a string
                skeleton_editor.select(click_joint, inputs=[keypoints, joint],
                                       outputs=[keypoints, skeleton_editor], api_visibility="private")
                remove_joint.click(wrap(lambda p, j: backend.set_joint(p, j, -1, -1)), inputs=[keypoints, joint],
                                   outputs=[keypoints, skeleton_editor], api_visibility="private")
                joint_x = gr.Number(visible=False, label="x")
                joint_y = gr.Number(visible=False, label="y")
                set_joint_button = gr.Button(visible=False)  # the API route of joint editing
                set_joint_button.click(wrap(backend.set_joint), inputs=[keypoints, joint, joint_x, joint_y],
                                       outputs=[keypoints, skeleton_editor], api_name="set_joint")
                pose_go.click(wrap(backend.transfer_pose), inputs=[person, keypoints, pose_model, pose_fit],
                              outputs=[pose_result, pose_skeleton, pose_coarse], api_name="transfer_pose")
                demo.load(wrap(backend.gallery_pose), inputs=pose_name, outputs=[keypoints, skeleton_editor],
                          api_visibility="private")

            # ------------------------------------------------------------------------------------ garment
            with gr.Tab("Garment extraction", id="garment"):
                gr.Markdown(f"### Garment extraction\n{TOOLS[1][1]}")
                garment_status = gr.Markdown(backend.status("garment"))
                garment_model = _model_box(gr, registry, "garment")
                with gr.Row():
                    with gr.Column():
                        dressed = upload("Photo of a dressed person", elem_id="garment-input")
                        examples(example_files("scenes") + example_files("persons")[:2], dressed,
                                 "Example photos (synthetic world)", "garment-examples")
                        garment_go = gr.Button("Extract garment", variant="primary")
                    product = output("Product image", elem_id="garment-output")
                with gr.Accordion("Advanced", open=False):
                    garment_fit = gr.Radio(["pad", "crop"], value="pad", label="Fit the photo to the model's frame")
                garment_model.change(backend.status, inputs=[gr.State("garment"), garment_model],
                                     outputs=garment_status, api_visibility="private")
                garment_go.click(wrap(backend.extract_garment), inputs=[dressed, garment_model, garment_fit],
                                 outputs=product, api_name="extract_garment")

            # ------------------------------------------------------------------------------------ style
            with gr.Tab("Style matching", id="style"):
                gr.Markdown(f"### Style matching\n{TOOLS[2][1]}")
                style_status = gr.Markdown(backend.status("style"))
                style_model = _model_box(gr, registry, "style")
                with gr.Row():
                    with gr.Column():
                        item = upload("Shoe or handbag", elem_id="style-input")
                        examples(example_files("shoes") + example_files("bags"), item,
                                 "Synthetic shoes and handbags (for style-synthetic)", "style-examples")
                        examples(example_files("fmnist"), item, "Fashion-MNIST shoes and bags (for style-fmnist)",
                                 "style-fmnist-examples")
                        direction = gr.Radio(["shoe → handbag", "handbag → shoe"], value="shoe → handbag",
                                             label="Direction")
                        style_go = gr.Button("Find the matching item", variant="primary")
                    matched = output("Matching item", elem_id="style-output")
                with gr.Accordion("Advanced", open=False, elem_id="style-advanced"):
                    style_fit = gr.Radio(["pad", "crop"], value="pad", label="Fit the photo to the model's frame")
                    style_invert = gr.Radio(["auto", "on", "off"], value="auto",
                                            label="Invert for one-channel (Fashion-MNIST) models",
                                            info="auto: invert photos on a light background (Fashion-MNIST "
                                                 "items are light on black)")
                    style_outline = gr.Slider(0, 7, value=0, step=1, label="Outline", elem_id="style-outline",
                                              info="models that store target-domain silhouettes (style-synthetic): "
                                                   "which stored outline to draw; other models take 0")
                style_model.change(backend.status, inputs=[gr.State("style"), style_model], outputs=style_status,
                                   api_visibility="private")
                style_go.click(wrap(backend.match_style),
                               inputs=[item, direction, style_model, style_fit, style_invert, style_outline],
                               outputs=matched,
                               api_name="match_style")

            # ------------------------------------------------------------------------------------ generation
            with gr.Tab("Generation", id="generation"):
                gr.Markdown(f"### Generation\n{TOOLS[3][1]}")
                gen_status = gr.Markdown(backend.status("generation"))
                gen_model = _model_box(gr, registry, "generation")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=2**32 - 1,
                                     elem_id="generation-seed")
                    random_seed = gr.Button("Random seed")
                    count = gr.Slider(1, 32, value=8, step=1, label="Number of images")
                    psi = gr.Slider(0.0, 1.0, value=0.7, step=0.05, label="Truncation ψ",
                                    info="1: full variety; lower: closer to the average image")
                gen_go = gr.Button("Generate", variant="primary")
                generated = output("Generated images", height=300, elem_id="generation-output")
                with gr.Accordion("Style mixing and interpolation", open=False):
                    with gr.Row():
                        seed_a = gr.Number(value=1, precision=0, label="Seed A", minimum=0)
                        seed_b = gr.Number(value=2, precision=0, label="Seed B", minimum=0)
                        # The whole range for API clients; a page narrows it to the chosen model's layers.
                        crossover = gr.Slider(1, CROSSOVER_MAX, value=2, step=1, label="Crossover layer",
                                              info="styles below this layer come from the first seed")
                        frames = gr.Slider(4, 48, value=16, step=1, label="Interpolation frames")
                    with gr.Row():
                        mix_go = gr.Button("Mix styles")
                        interp_go = gr.Button("Interpolate A → B")
                    with gr.Row():
                        mixed = output("A · B · A coarse + B fine · B coarse + A fine", elem_id="generation-mix")
                        animation = gr.Image(label="Interpolation (animated)", type="filepath", interactive=False,
                                             height=260, elem_id="generation-animation")
                with gr.Accordion("Advanced", open=False):
                    anim_format = gr.Radio(["gif", "webp"], value="gif", label="Animation format")
                gen_model.change(backend.status, inputs=[gr.State("generation"), gen_model], outputs=gen_status,
                                 api_visibility="private")
                gen_model.change(backend.crossover_slider, inputs=[gen_model, crossover], outputs=crossover,
                                 api_visibility="private")
                demo.load(backend.crossover_slider, inputs=[gen_model, crossover], outputs=crossover,
                          api_visibility="private")
                random_seed.click(lambda: random.randint(0, 2**31 - 1), outputs=seed, api_visibility="private")
                gen_go.click(wrap(backend.generate), inputs=[seed, count, psi, gen_model], outputs=generated,
                             api_name="generate")
                mix_go.click(wrap(backend.style_mix), inputs=[seed_a, seed_b, crossover, psi, gen_model],
                             outputs=mixed, api_name="style_mix")
                interp_go.click(wrap(backend.interpolate), inputs=[seed_a, seed_b, frames, psi, gen_model, anim_format],
                                outputs=animation, api_name="interpolate")

            # ------------------------------------------------------------------------------------ attributes
            with gr.Tab("Edit attributes", id="edit"):
                gr.Markdown(f"### Edit attributes\n{TOOLS[4][1]}")
                # The rows as the default model's attributes label them (page updates follow the model box).
                first = [u if isinstance(u, str) else {k: v for k, v in u.items() if k != "__type__"}
                         for u in backend.edit_controls(registry.default("edit"))][:1 + 2 * MAX_ATTRIBUTE_ROWS]
                edit_status = gr.Markdown(first[0])
                edit_model = _model_box(gr, registry, "edit")
                with gr.Row():
                    with gr.Column():
                        edit_input = upload("Product photo", elem_id="edit-input")
                        examples(example_files("flats"), edit_input,
                                 "Synthetic product photos (for fader-synthetic and icgan-synthetic)", "edit-examples")
                        if any(list(model_attributes(registry.entries[n].source) or ()) == ["class"]
                               for n in registry.names("edit")):  # a Fashion-MNIST (class) model is offered
                            examples(example_files("fmnist_clothes"), edit_input,
                                     "Fashion-MNIST items (for Fashion-MNIST class models)", "edit-fmnist-examples")
                    with gr.Column():
                        edit_result = output("Edited image", elem_id="edit-output")
                        edit_read = gr.Textbox(label="Attributes read from the input", interactive=False,
                                               elem_id="edit-read")
                gr.Markdown("New value per attribute (keep: as read from the photo) and how far to go: amount 0 "
                            "keeps it, 1 sets it, above 1 exaggerates it.")
                edit_values, edit_amounts, edit_columns = [], [], []
                with gr.Row():
                    for i in range(MAX_ATTRIBUTE_ROWS):
                        shown = first[1 + i].get("visible", False)
                        with gr.Column(min_width=180, visible=shown, elem_id=f"edit-attribute-{i}") as column:
                            # allow_custom_value: the choices follow the model; the handler checks every value.
                            edit_values.append(gr.Dropdown(allow_custom_value=True, elem_id=f"edit-value-{i}",
                                                           **first[1 + i]))
                            edit_amounts.append(gr.Slider(0.0, MAX_AMOUNT, step=0.05, elem_id=f"edit-amount-{i}",
                                                          **first[1 + MAX_ATTRIBUTE_ROWS + i]))
                        edit_columns.append(column)
                edit_go = gr.Button("Edit", variant="primary")
                with gr.Accordion("Advanced", open=False):
                    edit_json = gr.Textbox(label="Edits (JSON: attribute → new value; what /edit_attributes takes)",
                                           value="{}", lines=1, elem_id="edit-json")
                    amounts_json = gr.Textbox(label="Amounts (JSON: attribute → 0..1.5, default 1)", value="{}",
                                              lines=1, elem_id="edit-amounts-json")
                    edit_info = gr.Code(label="Read, target and amounts", language="json")
                    edit_json_go = gr.Button("Edit with this JSON")
                edit_model.change(backend.edit_controls, inputs=edit_model,
                                  outputs=[edit_status, *edit_values, *edit_amounts, *edit_columns],
                                  api_visibility="private")
                edit_go.click(wrap(backend.edit_rows), inputs=[edit_input, edit_model, *edit_values, *edit_amounts],
                              outputs=[edit_result, edit_read, edit_info, edit_json, amounts_json],
                              api_visibility="private")
                edit_json_go.click(wrap(backend.edit_attributes),
                                   inputs=[edit_input, edit_model, edit_json, amounts_json],
                                   outputs=[edit_result, edit_read, edit_info], api_name="edit_attributes")

            # ------------------------------------------------------------------------------------ world
            with gr.Tab("Synthetic world", id="world"):
                gr.Markdown(
                    "The procedural fashion world the models train and are scored on: every attribute "
                    "(colour, pattern, garment, pose, style) is known, so results can be checked."
                )
                with gr.Row():
                    world_seed = gr.Number(value=0, precision=0, label="World seed")
                    identity = gr.Number(value=0, precision=0, label="Identity")
                    size = gr.Slider(32, 256, value=128, step=16, label="Size (px)")
                    button = gr.Button("Render", variant="primary")
                poses = gr.Image(label="Poses and keypoints", format="png", interactive=False, elem_id="world-poses")
                extras = gr.Image(label="Product shot · LookBook-style scene · shoe · handbag", format="png",
                                  interactive=False)
                attributes = gr.Code(label="Recorded attributes", language="json")
                button.click(wrap(render_world_preview), inputs=[world_seed, identity, size],
                             outputs=[poses, extras, attributes], api_name="render_world")
                demo.load(wrap(render_world_preview), inputs=[world_seed, identity, size],
                          outputs=[poses, extras, attributes], api_visibility="private")
    demo.backend = backend  # type: ignore[attr-defined]
    return demo


def launch_demo(demo, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
                max_file_size: str | int = MAX_FILE_SIZE, concurrency: int = CONCURRENCY_LIMIT,
                queue_size: int = QUEUE_SIZE, **kwargs):
    """Queue (``concurrency`` requests at once, ``queue_size`` waiting) and launch with an upload size limit."""
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return demo.launch(server_name=host, server_port=port, share=share, max_file_size=max_file_size,
                       show_error=True, **kwargs)
