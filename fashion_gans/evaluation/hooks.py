"""Cheap task metrics for a training loop: :func:`batch_metrics` scores one held-out batch (generator outputs
already computed by the task) and returns plain floats. The evaluation networks are loaded once per process
(:mod:`.cache`), so calling it every N steps costs one forward pass of a small network per batch.

Ground truth comes from the batch itself (dataset items): pose uses ``target_image`` and ``target_keypoints``;
garment uses ``product_image`` (the garment's colour / pattern are read from the true product photo by the
attribute network, since the items carry no attribute names); style compares the attribute network's reading
of the translated image with its reading of the source image; generation compares the fakes with ``image``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from . import task_metrics as tm

__all__ = ["batch_metrics"]


def _mean(v: torch.Tensor) -> float:
    v = v.detach().float().cpu()
    return float(v.nanmean()) if v.numel() else float("nan")


def _domain(images: torch.Tensor, domain: str | None) -> str:
    if domain is not None:
        if domain not in ("synthetic", "fashion-mnist", "other"):
            raise ValueError(f"domain must be 'synthetic', 'fashion-mnist', 'other' or None, got {domain!r}")
        return domain
    return "fashion-mnist" if images.shape[1] == 1 else "synthetic"


@torch.no_grad()
def batch_metrics(task: str, batch: Mapping[str, Any], outputs: torch.Tensor | Mapping[str, torch.Tensor], *,
                  domain: str | None = None, device: torch.device | str | None = None,
                  keypoints: bool = True) -> dict[str, float]:
    """Task metrics of one batch, as floats (means over the batch; NaN-safe).

    ``outputs`` (float images in [-1, 1]):

    * ``pose``: the refined result ``G(source_image, target_pose).refined``; batch keys ``target_image``
      (+ ``target_keypoints`` for ``keypoint_error``/``pck_0.05``, skipped when ``keypoints=False``, absent, or
      ``domain="other"``) -> ``ssim``, ``l1``, ``keypoint_error``, ``pck_0.05``.
    * ``garment``: ``G(person_image)``; batch ``product_image`` -> ``ssim``, ``l1``, ``colour_kept``,
      ``pattern_kept`` (synthetic RGB only).
    * ``style``: ``{"bag": G_AB(shoe), "shoe": G_BA(bag)}`` (either may be missing); batch ``shoe`` / ``bag``
      -> synthetic: ``shoe2bag/colour_match``, ``.../pattern_match``, ``.../style_match``, ``.../domain_ok``
      (and ``bag2shoe/...``); Fashion-MNIST: ``shoe2bag/target_class_rate`` (confident, non-flat target-class
      readings only), ``shoe2bag/diversity`` (the results' mean pairwise ``fmnist-classifier`` feature distance
      / the real target images': near 0 for a collapsed translator) and the same for ``bag2shoe``.
    * ``generation``: the fakes ``(N, C, H, W)``; batch ``image`` (the reals) -> ``fid`` (domain extractor;
      noisy on one batch, for trends only), ``diversity`` (fakes' mean pairwise feature distance / reals'), and
      synthetic: ``coverage_colour``, ``coverage_pattern``; Fashion-MNIST: ``coverage_class``.

    ``domain``: ``synthetic`` or ``fashion-mnist`` (default: 1-channel images are Fashion-MNIST, RGB synthetic);
    ``other`` (real photos, which neither the attribute networks nor the ``synthetic-pose`` detector, trained on
    the synthetic mannequins, know) keeps only the pixel metrics (``ssim``, ``l1``); style and generation then
    return nothing.
    """
    out: dict[str, float] = {}
    if task == "pose":
        fake, real = outputs, batch["target_image"]
        out.update({k: _mean(v) for k, v in tm.ssim_l1(fake, real).items()})
        kp = batch.get("target_keypoints")
        if keypoints and kp is not None and fake.shape[1] == 3 and _domain(fake, domain) == "synthetic":
            out.update({k: _mean(v) for k, v in tm.keypoint_metrics(fake, kp, device).items()})
    elif task == "garment":
        fake, real = outputs, batch["product_image"]
        out.update({k: _mean(v) for k, v in tm.ssim_l1(fake, real).items()})
        if _domain(fake, domain) == "synthetic":
            truth = tm.read_attributes(real, tm.GARMENT_HEADS, device)
            out.update({k: _mean(v) for k, v in tm.attributes_kept(fake, truth, device).items()})
    elif task == "style":
        if not isinstance(outputs, Mapping):
            raise TypeError("style outputs must be a dict {'bag': G_AB(shoe), 'shoe': G_BA(bag)}")
        for direction, src, dst in ((tm.SHOE_TO_BAG, "shoe", "bag"), (tm.BAG_TO_SHOE, "bag", "shoe")):
            fake = outputs.get(dst)
            if fake is None:
                continue
            dom = _domain(fake, domain)
            if dom == "other":
                continue
            if dom == "synthetic":
                truth = tm.read_attributes(batch[src], ("colour", "pattern"), device)
                for k, v in tm.style_match(fake, truth, dst, device).items():
                    out[f"{direction}/{k}"] = _mean(v)
            else:
                from .evaluate import _features, mean_pairwise_ratio

                out[f"{direction}/target_class_rate"] = _mean(tm.target_class_rate(fake, direction, device))
                real = batch.get(dst)
                if real is not None:
                    out[f"{direction}/diversity"] = mean_pairwise_ratio(_features(fake, tm.FMNIST_EXTRACTOR),
                                                                        _features(real, tm.FMNIST_EXTRACTOR))
    elif task == "generation":
        from fashion_gans.metrics import fid_from_features

        from .evaluate import _features, mean_pairwise_ratio

        fake, real = outputs, batch["image"]
        dom = _domain(fake, domain)
        if dom == "other":
            return out
        ext = tm.ATTRIBUTE_EXTRACTOR if dom == "synthetic" else tm.FMNIST_EXTRACTOR
        ff, fr = _features(fake, ext), _features(real, ext)
        out["fid"] = float(fid_from_features(fr, ff)) if min(len(ff), len(fr)) >= 2 else math.nan
        out["diversity"] = mean_pairwise_ratio(ff, fr)
        if dom == "synthetic":
            pf, pr = tm.read_attributes(fake, ("colour", "pattern"), device), tm.read_attributes(
                real, ("colour", "pattern"), device)
            names = tm.cached_extractor(tm.ATTRIBUTE_EXTRACTOR).class_names
            for h in ("colour", "pattern"):
                out[f"coverage_{h}"] = tm.attribute_coverage(pf[h], pr[h], len(names[h]))["coverage"]
        else:
            from fashion_gans.metrics.features import to_uint8

            ext_m = tm.cached_extractor(tm.FMNIST_EXTRACTOR)
            pf = ext_m(to_uint8(fake))["logits"].argmax(1).cpu()
            pr = ext_m(to_uint8(real))["logits"].argmax(1).cpu()
            out["coverage_class"] = tm.attribute_coverage(pf, pr, 10)["coverage"]
    else:
        raise ValueError(f"unknown task {task!r}; choose from pose, garment, style, generation")
    return out
