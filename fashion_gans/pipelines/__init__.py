"""Inference pipelines, one per tool, usable from Python without the web demo.

>>> from fashion_gans.pipelines import PoseTransferPipeline
>>> pipe = PoseTransferPipeline.from_pretrained("pose-synthetic")  # bundled name, folder or Hub repo id
>>> result = pipe(person_photo, "arms_raised")                      # gallery pose, keypoints or a photo
>>> result.image, result.skeleton, result.coarse                    # PIL images
>>> edit = AttributeEditPipeline.from_pretrained("runs/fader")        # Fader Networks or IcGAN
>>> edit(product_photo, {"colour": "red"}, {"colour": 0.8}).image     # attribute -> new value, slider amount

Every pipeline takes PIL images (or arrays, paths, bytes: see :mod:`.images`) and returns PIL images at the
model's size and channels; models are loaded once per (source, device) and run under ``torch.inference_mode()``.
"""

from __future__ import annotations

from .base import Pipeline, PipelineError, clear_model_cache, resolve_device
from .edit import AttributeEditPipeline, EditResult
from .garment import GarmentExtractionPipeline
from .generation import GenerationPipeline, image_grid, save_animation
from .images import ImageInputError, fit_image, load_input_image
from .pose import (
    JOINT_NAMES,
    POSE_GALLERY,
    PoseEstimate,
    PoseInputError,
    PoseTransferPipeline,
    PoseTransferResult,
    draw_pose,
    estimate_pose,
    gallery_pose,
    set_joint,
)
from .style import StyleMatchingPipeline

__all__ = [
    "Pipeline", "PipelineError", "ImageInputError", "PoseInputError", "clear_model_cache", "resolve_device",
    "PoseTransferPipeline", "PoseTransferResult", "GarmentExtractionPipeline", "StyleMatchingPipeline",
    "GenerationPipeline", "AttributeEditPipeline", "EditResult", "PIPELINES", "pipeline_for_task",
    "POSE_GALLERY", "JOINT_NAMES", "PoseEstimate", "gallery_pose", "estimate_pose", "set_joint", "draw_pose",
    "load_input_image", "fit_image", "image_grid", "save_animation",
]

#: Task name (``bundle.json`` ``task``) -> pipeline class.
PIPELINES: dict[str, type[Pipeline]] = {
    "pose": PoseTransferPipeline,
    "garment": GarmentExtractionPipeline,
    "style": StyleMatchingPipeline,
    "generation": GenerationPipeline,
    "fader": AttributeEditPipeline,
    "icgan": AttributeEditPipeline,
}


def pipeline_for_task(task: str) -> type[Pipeline]:
    """The pipeline class of a task (pose, garment, style, generation, fader, icgan)."""
    if task not in PIPELINES:
        raise PipelineError(f"unknown task {task!r}; expected one of {', '.join(PIPELINES)}")
    return PIPELINES[task]
