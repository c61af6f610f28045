"""Task metrics from ground truth: per-image values (tensors of shape ``(N,)``) that callers average.

Images are float ``(N, C, H, W)`` in [-1, 1] (generator outputs, dataset items) or uint8. Every network used
here is loaded once per process (:mod:`.cache`).

==============  ================================================================================================
task            metrics
==============  ================================================================================================
pose            ``ssim``, ``l1`` against the true target (the same mannequin rendered in the target pose);
                ``keypoint_error``: mean distance between the keypoints the ``synthetic-pose`` detector finds on
                the result and the target keypoints, as a fraction of the image height; ``pck_0.05``: share of
                visible joints within 5% of the height.
garment         ``ssim``, ``l1`` against the true product photo; ``colour_kept`` / ``pattern_kept``: the
                ``synthetic-attributes`` network reads the produced product photo's colour / pattern and it equals
                the ground truth of the worn garment.
style           no pixel target exists (a handbag "of the same style" as a shoe is not one image), so no SSIM:
                ``colour_match`` / ``pattern_match`` / ``material_match`` (the attribute network's reading of
                the translated image equals the source's style), ``domain_ok`` (read as the target domain),
                ``style_match`` (colour, pattern and the domain; material is left out: its head is about 68%
                accurate, so requiring it would cap a perfect translator well below 1). Fashion-MNIST:
                ``target_class_rate`` (``fmnist-classifier`` confidently reads the target class on an image
                with contrast; a constant image or noise does not count).
generation      ``coverage_<head>`` (share of the attribute values present in the real set that the generator
                produces), ``entropy_<head>`` (normalised entropy of the predicted values), ``diversity``
                (mean pairwise feature distance, fakes / reals), plus FID / KID / precision / recall.
==============  ================================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fashion_gans.metrics.features import to_uint8
from fashion_gans.metrics.ssim import ssim as _ssim
from fashion_gans.metrics.ssim import to_unit

from .cache import cached_extractor, cached_keypoint_detector

__all__ = [
    "ATTRIBUTE_EXTRACTOR", "FMNIST_EXTRACTOR", "STYLE_HEADS", "STYLE_MATCH_HEADS", "GARMENT_HEADS", "PERSON_HEADS",
    "TARGET_CLASS_CONFIDENCE", "TARGET_CLASS_MIN_CONTRAST",
    "ssim_l1", "keypoint_metrics", "read_attributes", "attribute_indices", "attributes_kept", "style_match",
    "target_class_rate", "attribute_coverage", "mean_pairwise_distance", "SHOE_TO_BAG", "BAG_TO_SHOE",
]

ATTRIBUTE_EXTRACTOR = "synthetic-attributes"
FMNIST_EXTRACTOR = "fmnist-classifier"
STYLE_HEADS = ("colour", "pattern", "material")
#: The heads ``style_match`` requires: colour and pattern (read at ~98% held-out accuracy), not material (~68%).
STYLE_MATCH_HEADS = ("colour", "pattern")
#: ``target_class_rate``: the classifier's summed softmax over the target class(es) must reach this. Measured with
#: ``fmnist-classifier`` on 32x32 images: uniform / Gaussian noise peaks at 0.915 / 0.906 (2000 images each),
#: while 96.1% of the 1000 real test bags and 99.9% of the 3000 real test shoes reach 0.95.
TARGET_CLASS_CONFIDENCE = 0.95
#: ``target_class_rate``: minimum per-image pixel standard deviation (on the [-1, 1] scale). The classifier calls
#: any constant image from -0.8 to 1 a Bag with >= 0.7 (0.98 at mid-grey) and all-black a shoe (0.81); the real
#: test bags / shoes have a standard deviation of at least 0.20 / 0.14.
TARGET_CLASS_MIN_CONTRAST = 0.1
GARMENT_HEADS = ("colour", "pattern")
PERSON_HEADS = ("colour", "pattern", "kind", "bottom")
SHOE_TO_BAG = "shoe2bag"
BAG_TO_SHOE = "bag2shoe"


def _check_pair(x: torch.Tensor, y: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(f"{what}: need two (N, C, H, W) batches of the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")


def ssim_l1(generated: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ``ssim`` (Gaussian 11-tap window, data range 1 on [0, 1] images) and ``l1`` (mean absolute
    difference on the [-1, 1] scale, as the training losses) of paired images."""
    _check_pair(generated, target, "ssim/l1")
    g, t = to_unit(generated.detach().cpu()), to_unit(target.detach().cpu())
    window = min(11, *g.shape[-2:])
    window -= (window + 1) % 2  # odd
    return {"ssim": _ssim(g, t, data_range=1.0, window_size=window).float(),
            "l1": (2 * (g - t).abs()).flatten(1).mean(1).float()}


# --------------------------------------------------------------------------------------------- pose
def keypoint_metrics(images: torch.Tensor, target_keypoints: torch.Tensor, device=None) -> dict[str, torch.Tensor]:
    """``keypoint_error`` (mean distance of the detected to the visible target keypoints / image height) and
    ``pck_0.05`` (share of visible joints within 5% of the height) per image. ``target_keypoints``: ``(N, 18, 2)``
    pixel ``(x, y)`` in the images' frame, negative where hidden."""
    from fashion_gans.metrics.extractors.keypoints import keypoint_error

    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"keypoint metrics need RGB (N, 3, H, W) images, got {tuple(images.shape)}")
    target = torch.as_tensor(target_keypoints, dtype=torch.float32).cpu()
    if target.shape != (images.shape[0], 18, 2):
        raise ValueError(f"target_keypoints must be ({images.shape[0]}, 18, 2), got {tuple(target.shape)}")
    h = images.shape[-2]
    pred = cached_keypoint_detector(device).detect(to_uint8(images))
    err = keypoint_error(pred, target, h)
    visible = (target >= 0).all(-1)
    within = ((pred - target).norm(dim=-1) / h < 0.05) & visible
    pck = within.sum(-1).float() / visible.sum(-1).clamp(min=1).float()
    pck[visible.sum(-1) == 0] = float("nan")
    return {"keypoint_error": err, "pck_0.05": pck}


# --------------------------------------------------------------------------------------------- attributes
@torch.no_grad()
def read_attributes(images: torch.Tensor, heads: Sequence[str] | None = None, device=None,
                    batch_size: int = 256) -> dict[str, torch.Tensor]:
    """The ``synthetic-attributes`` network's predicted class index per head, ``{head: (N,) int64}``."""
    ext = cached_extractor(ATTRIBUTE_EXTRACTOR, device)
    images = to_uint8(images)
    if images.shape[1] != 3:
        raise ValueError(f"attribute metrics need RGB images, got {images.shape[1]} channel(s)")
    heads = tuple(heads or ext.class_names)
    out: dict[str, list[torch.Tensor]] = {h: [] for h in heads}
    for start in range(0, images.shape[0], batch_size):
        res = ext(images[start:start + batch_size])["heads"]
        for h in heads:
            out[h].append(res[h].argmax(1).cpu())
    return {h: torch.cat(v) for h, v in out.items()}


def attribute_indices(head: str, values: Sequence[str | None]) -> torch.Tensor:
    """Attribute names -> class indices of the attribute network's ``head`` (-1 for None / unknown)."""
    names = cached_extractor(ATTRIBUTE_EXTRACTOR).class_names[head]
    index = {n: i for i, n in enumerate(names)}
    return torch.tensor([index.get(v, -1) if v is not None else -1 for v in values], dtype=torch.int64)


def _agreement(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    out = (pred == truth).float()
    out[truth < 0] = float("nan")
    return out


def attributes_kept(images: torch.Tensor, truth: dict[str, torch.Tensor | Sequence[str]],
                    device=None, domain: str | None = "flat") -> dict[str, torch.Tensor]:
    """``{head}_kept`` per image: 1 where the attribute network reads ``truth[head]`` on ``images`` (names or
    class indices; NaN where the truth is unknown), else 0. With ``domain`` (default ``flat``: a product
    photo) also ``domain_ok`` (read as that domain) and ``garment_kept`` (every head kept and the domain right:
    a person photo returned unchanged keeps the colour but is no product photo)."""
    heads = tuple(truth)
    pred = read_attributes(images, heads + (("domain",) if domain else ()), device)
    out = {}
    all_ok = torch.ones(images.shape[0])
    for h in heads:
        t = truth[h]
        t = t if isinstance(t, torch.Tensor) else attribute_indices(h, t)
        out[f"{h}_kept"] = _agreement(pred[h], t.cpu())
        all_ok = all_ok * out[f"{h}_kept"]
    if domain:
        out["domain_ok"] = (pred["domain"] == attribute_indices("domain", [domain])[0]).float()
        out["garment_kept"] = all_ok * out["domain_ok"]
    return out


def style_match(translated: torch.Tensor, source_style: dict[str, torch.Tensor | Sequence[str]],
                target_domain: str, device=None) -> dict[str, torch.Tensor]:
    """Per image: ``<head>_match`` for the style heads in ``source_style`` (colour, pattern, material; names or
    indices), ``domain_ok`` (read as ``target_domain``: ``shoe`` or ``bag``) and ``style_match`` (colour and
    pattern match and the domain is right: the input returned unchanged keeps its style but is no translation).
    ``material_match`` is reported on its own but not required by ``style_match``: the material head is right
    on only about 68% of held-out images, so requiring it would score a perfect translator well below 1."""
    heads = tuple(source_style)
    pred = read_attributes(translated, heads + ("domain",), device)
    out: dict[str, torch.Tensor] = {}
    all_ok = torch.ones(translated.shape[0])
    for h in heads:
        t = source_style[h]
        t = t if isinstance(t, torch.Tensor) else attribute_indices(h, t)
        agree = _agreement(pred[h], t.cpu())
        out[f"{h}_match"] = agree
        if h in STYLE_MATCH_HEADS:
            all_ok = all_ok * agree
    out["domain_ok"] = (pred["domain"] == attribute_indices("domain", [target_domain])[0]).float()
    out["style_match"] = all_ok * out["domain_ok"]
    return out


@torch.no_grad()
def target_class_rate(images: torch.Tensor, direction: str, device=None,
                      min_confidence: float = TARGET_CLASS_CONFIDENCE,
                      min_contrast: float = TARGET_CLASS_MIN_CONTRAST) -> torch.Tensor:
    """Per image 1.0 where ``fmnist-classifier`` confidently puts it in the target domain of ``direction``
    (``shoe2bag`` -> Bag; ``bag2shoe`` -> Sandal / Sneaker / Ankle boot): the softmax summed over the target
    class(es) is at least ``min_confidence`` and the image is no flat fill (pixel standard deviation on the
    [-1, 1] scale at least ``min_contrast``). The classifier alone calls a constant grey image a Bag and an
    all-black one a shoe, so a collapsed translator would otherwise score 1.0; report ``diversity`` next to it,
    since a confident but constant silhouette still counts here."""
    from fashion_gans.data.fashion_mnist import BAG_CLASSES, SHOE_CLASSES

    if direction not in (SHOE_TO_BAG, BAG_TO_SHOE):
        raise ValueError(f"direction must be {SHOE_TO_BAG!r} or {BAG_TO_SHOE!r}, got {direction!r}")
    ext = cached_extractor(FMNIST_EXTRACTOR, device)
    classes = list(BAG_CLASSES if direction == SHOE_TO_BAG else SHOE_CLASSES)
    pixels = to_uint8(images)
    prob = torch.cat([ext(pixels[i:i + 512])["logits"].float().softmax(1)[:, classes].sum(1).cpu()
                      for i in range(0, pixels.shape[0], 512)])
    contrast = (pixels.float() / 127.5 - 1).flatten(1).std(1).cpu()
    return ((prob >= min_confidence) & (contrast >= min_contrast)).float()


# --------------------------------------------------------------------------------------------- generation
def attribute_coverage(fake_pred: torch.Tensor, real_pred: torch.Tensor, num_classes: int,
                       min_share: float = 0.01) -> dict[str, float]:
    """``coverage``: share of the values that make up at least ``min_share`` of ``real_pred`` (and at least one
    image) that occur at least once in ``fake_pred``; ``entropy``: the fakes' value entropy / log(num_classes)
    (1 = uniform, 0 = one value); ``entropy_real`` the same for the reals."""
    real_counts = torch.bincount(real_pred, minlength=num_classes).double()
    fake_counts = torch.bincount(fake_pred, minlength=num_classes).double()
    present = real_counts >= max(1.0, min_share * float(real_counts.sum()))
    covered = (fake_counts > 0) & present

    def entropy(c: torch.Tensor) -> float:
        p = c / c.sum().clamp(min=1)
        h = -(p[p > 0] * p[p > 0].log()).sum()
        return float(h / torch.log(torch.tensor(float(num_classes)))) + 0.0  # no "-0.0"

    return {"coverage": float(covered.sum() / present.sum().clamp(min=1)), "entropy": entropy(fake_counts),
            "entropy_real": entropy(real_counts)}


def mean_pairwise_distance(features: torch.Tensor, max_items: int = 2000) -> float:
    """Mean Euclidean distance between distinct rows of ``features`` (the first ``max_items`` rows)."""
    f = features[:max_items].double()
    n = f.shape[0]
    if n < 2:
        return float("nan")
    d = torch.cdist(f, f)
    return float(d.sum() / (n * (n - 1)))
