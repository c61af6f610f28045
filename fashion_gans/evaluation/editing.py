"""Attribute-editing metrics (Fader Networks, IcGAN): does an edit change the requested attribute, and only it?

An editor is a function ``edit_fn(images, code) -> images``: images ``(N, C, H, W)`` in [-1, 1], ``code`` the
float attribute code ``(N, code_size)`` the images should have afterwards (one-hot blocks, one per attribute,
:mod:`fashion_gans.models.attributes`).  A *reader* maps images to the value index it sees for every attribute,
``(N, n_attributes)`` int64 in the order of the model's ``attributes``; :func:`attribute_reader` builds one from
the shipped domain networks (``synthetic-attributes``: colour, pattern and kind of a synthetic flat, each read
at 100% on 300 held-out 64 px flats; ``fmnist-classifier``: the Fashion-MNIST class, 93% on the first 2,000 test
images).  ``synthetic-attributes`` works at 64 px: on flats rendered at 48 px it reads colour / pattern /
kind at 100% / 90% / 94%, at 32 px at 92% / 44% / 88% (the pattern period is then a few pixels), so edit
scores of synthetic models below 64 px are capped by the reader (``reader_accuracy`` shows by how much).

:func:`edit_metrics` runs, on held-out images with known attributes:

* **edits**: for every image and every attribute, ``targets_per_image`` other values of that attribute (the
  offsets cycle through 1 .. n_values - 1 over the images, so every value is requested about equally often and
  the choice is deterministic); the target code is the image's true code with that one block changed.
  ``edit_success`` is the share of edits where the reader reads the requested value on the result;
  ``others_kept`` the share where every *other* attribute reads as the reader read it on the input (left out
  for a model with one attribute, e.g. the Fashion-MNIST class: there is nothing else to keep, and a NaN would
  make the metrics files invalid JSON).  Both also per edited attribute
  (``edit_success_<attr>``, ``others_kept_<attr>``).
* **reconstruction**: the edit to the image's own code (no change): ``recon_ssim`` / ``recon_l1`` against the
  input (as :func:`~fashion_gans.evaluation.task_metrics.ssim_l1`) and ``recon_kept`` (every attribute reads as
  on the input).
* **the ceiling**: ``reader_accuracy`` (every attribute of an unedited input read as its label) and
  ``reader_accuracy_<attr>``.  An edit can score at most about this well.

Two reference editors frame the numbers: :func:`copy_edit` (returns its input: ``others_kept`` 1, ``edit_success``
0, perfect reconstruction) and, on the synthetic world, re-rendering the garment with the requested attributes
(the ground truth: ``edit_success`` at the reader's accuracy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from fashion_gans.metrics.features import to_uint8

from .task_metrics import ATTRIBUTE_EXTRACTOR, FMNIST_EXTRACTOR, ssim_l1

__all__ = ["EDIT_SUCCESS_BAR", "OTHERS_KEPT_BAR", "RECON_SSIM_BAR", "AttributeReader", "attribute_reader",
           "edit_targets", "edit_metrics", "copy_edit"]

#: The bars the attribute editors must clear on held-out synthetic flats.
EDIT_SUCCESS_BAR = 0.8
OTHERS_KEPT_BAR = 0.9
RECON_SSIM_BAR = 0.8

EditFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Reader = Callable[[torch.Tensor], torch.Tensor]


class AttributeReader:
    """Reads a model's attributes from images with a shipped domain network.

    ``heads`` maps each attribute to the network head that reads it (by default the head of the same name).
    The attribute's values must be class names of that head; a head's other classes are ignored (the arg max
    is taken over the attribute's values only, so a model edited over a subset of colours is read among them).
    """

    def __init__(self, extractor, attributes: Mapping[str, Sequence[str]], heads: Mapping[str, str] | None = None,
                 batch_size: int = 256) -> None:
        self.extractor = extractor
        self.attributes = {k: list(v) for k, v in attributes.items()}
        self.heads = {a: (heads or {}).get(a, a) for a in self.attributes}
        names = extractor.class_names
        self.columns: dict[str, torch.Tensor] = {}
        for attr, head in self.heads.items():
            if head not in names:
                raise ValueError(f"attribute {attr!r}: the {extractor.name} network has no head {head!r} "
                                 f"(heads: {list(names)})")
            unknown = [v for v in self.attributes[attr] if v not in names[head]]
            if unknown:
                raise ValueError(f"attribute {attr!r}: value(s) {unknown} are not classes of the {extractor.name} "
                                 f"head {head!r} ({names[head]})")
            self.columns[attr] = torch.tensor([names[head].index(v) for v in self.attributes[attr]])
        self.batch_size = int(batch_size)

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per attribute the logits over its values, ``{attr: (N, n_values)}`` (float, on the CPU)."""
        if images.ndim != 4:
            raise ValueError(f"reader: expected (N, C, H, W) images, got shape {tuple(images.shape)}")
        pixels = to_uint8(images)
        out: dict[str, list[torch.Tensor]] = {a: [] for a in self.attributes}
        for start in range(0, pixels.shape[0], self.batch_size):
            heads = self.extractor(pixels[start:start + self.batch_size])["heads"]
            for attr, head in self.heads.items():
                out[attr].append(heads[head].float().cpu()[:, self.columns[attr]])
        if pixels.shape[0] == 0:
            return {a: torch.zeros(0, len(v)) for a, v in self.attributes.items()}
        return {a: torch.cat(v) for a, v in out.items()}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, n_attributes)`` int64 value indices."""
        logits = self.logits(images)
        return torch.stack([logits[a].argmax(1) for a in self.attributes], dim=1)


def attribute_reader(attributes: Mapping[str, Sequence[str]], device: torch.device | str | None = None
                     ) -> AttributeReader:
    """The shipped reader of a model's ``attributes``: ``fmnist-classifier`` for ``{"class": ...}`` (Fashion-MNIST
    class names), ``synthetic-attributes`` for attributes among its heads (colour, pattern, kind, ...)."""
    from .cache import cached_extractor

    names = list(attributes)
    if names == ["class"]:
        return AttributeReader(cached_extractor(FMNIST_EXTRACTOR, device), attributes)
    ext = cached_extractor(ATTRIBUTE_EXTRACTOR, device)
    missing = [a for a in names if a not in ext.class_names]
    if missing:
        raise ValueError(f"no shipped network reads the attribute(s) {missing}; {ATTRIBUTE_EXTRACTOR} reads "
                         f"{[h for h in ext.class_names if h != 'domain']} and {FMNIST_EXTRACTOR} reads 'class'; "
                         "pass a reader of your own")
    return AttributeReader(ext, attributes)


def copy_edit(images: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """The do-nothing editor: returns its input (perfect reconstruction and ``others_kept``, no edit lands)."""
    return images


def edit_targets(attributes_idx: torch.Tensor, attributes: Mapping[str, Sequence[str]],
                 targets_per_image: int = 1) -> torch.Tensor:
    """The edits of :func:`edit_metrics`: ``(E, 3)`` int64 rows ``(image, attribute, target value)``.

    For image ``i``, attribute ``k`` with ``n`` values and its ``j``-th edit, the target is the true value plus
    an offset ``1 + (i * targets_per_image + j) mod (n - 1)`` (mod ``n``): never the true value, the offsets cycle
    over all the others, and the same inputs always give the same edits."""
    sizes = [len(v) for v in attributes.values()]
    idx = torch.as_tensor(attributes_idx, dtype=torch.int64).cpu()
    if idx.ndim != 2 or idx.shape[1] != len(sizes):
        raise ValueError(f"attributes_idx must be (N, {len(sizes)}) for attributes {list(attributes)}, got "
                         f"{tuple(idx.shape)}")
    t = int(targets_per_image)
    if t < 1:
        raise ValueError(f"targets_per_image must be >= 1, got {targets_per_image}")
    rows = []
    n_images = idx.shape[0]
    image = torch.arange(n_images).repeat_interleave(t)
    j = torch.arange(t).repeat(n_images)
    for k, n in enumerate(sizes):
        offset = 1 + (image * t + j) % (n - 1)
        target = (idx[image, k] + offset) % n
        rows.append(torch.stack([image, torch.full_like(image, k), target], dim=1))
    return torch.cat(rows) if rows else torch.zeros(0, 3, dtype=torch.int64)


@torch.no_grad()
def edit_metrics(edit_fn: EditFn, images: torch.Tensor, attributes_idx: torch.Tensor,
                 attributes: Mapping[str, Sequence[str]], reader: Reader, *, targets_per_image: int = 1,
                 batch_size: int = 64) -> dict[str, float]:
    """Edit success, attributes kept and reconstruction of ``edit_fn`` on ``images`` with true value indices
    ``attributes_idx`` ``(N, n_attributes)``; see the module docstring for every key."""
    from fashion_gans.models.attributes import attribute_code

    if images.ndim != 4 or not torch.is_floating_point(images):
        raise ValueError(f"images must be float (N, C, H, W) in [-1, 1], got {images.dtype} {tuple(images.shape)}")
    names = list(attributes)
    idx = torch.as_tensor(attributes_idx, dtype=torch.int64).cpu()
    if idx.shape != (images.shape[0], len(names)):
        raise ValueError(f"attributes_idx must be ({images.shape[0]}, {len(names)}) for attributes {names}, got "
                         f"{tuple(idx.shape)}")
    if images.shape[0] == 0:
        raise ValueError("edit_metrics needs at least one image")
    attribute_code(idx[:1], attributes)  # checks the value indices' range with a clear error

    def run(image_rows: torch.Tensor, target_idx: torch.Tensor) -> torch.Tensor:
        out = []
        for s in range(0, image_rows.shape[0], batch_size):
            x = images[image_rows[s:s + batch_size].to(images.device)]
            code = attribute_code(target_idx[s:s + batch_size], attributes).to(device=images.device,
                                                                                 dtype=images.dtype)
            y = edit_fn(x, code)
            if tuple(y.shape) != tuple(x.shape):
                raise ValueError(f"edit_fn returned shape {tuple(y.shape)} for inputs of shape {tuple(x.shape)}")
            out.append(y.detach().float().cpu())
        return torch.cat(out)

    def read(x: torch.Tensor) -> torch.Tensor:
        r = torch.as_tensor(reader(x), dtype=torch.int64).cpu()
        if r.shape != (x.shape[0], len(names)):
            raise ValueError(f"reader returned shape {tuple(r.shape)}, expected ({x.shape[0]}, {len(names)})")
        return r

    read_input = read(images)
    metrics: dict[str, float] = {"n_images": float(images.shape[0])}
    correct = read_input == idx
    metrics["reader_accuracy"] = correct.all(1).float().mean().item()
    for k, a in enumerate(names):
        metrics[f"reader_accuracy_{a}"] = correct[:, k].float().mean().item()

    # Reconstruction: the image's own code.
    all_rows = torch.arange(images.shape[0])
    recon = run(all_rows, idx)
    pixel = ssim_l1(recon, images.detach().float().cpu())
    metrics["recon_ssim"] = pixel["ssim"].mean().item()
    metrics["recon_l1"] = pixel["l1"].mean().item()
    metrics["recon_kept"] = (read(recon) == read_input).all(1).float().mean().item()

    # Edits: one attribute changed at a time.
    edits = edit_targets(idx, attributes, targets_per_image)
    target_idx = idx[edits[:, 0]].clone()
    target_idx[torch.arange(edits.shape[0]), edits[:, 1]] = edits[:, 2]
    read_edit = read(run(edits[:, 0], target_idx))
    success = read_edit[torch.arange(edits.shape[0]), edits[:, 1]] == edits[:, 2]
    same = read_edit == read_input[edits[:, 0]]
    others = torch.ones(edits.shape[0], dtype=torch.bool)
    for k in range(len(names)):
        mask = edits[:, 1] != k
        others[mask] &= same[mask, k]
    metrics["n_edits"] = float(edits.shape[0])
    metrics["edit_success"] = success.float().mean().item()
    if len(names) > 1:
        metrics["others_kept"] = others.float().mean().item()
    for k, a in enumerate(names):
        mask = edits[:, 1] == k
        metrics[f"edit_success_{a}"] = success[mask].float().mean().item()
        if len(names) > 1:
            metrics[f"others_kept_{a}"] = others[mask].float().mean().item()
    return metrics
