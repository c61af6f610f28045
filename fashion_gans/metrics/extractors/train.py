"""Deterministic training of the domain extractors (:mod:`.domain`) on the CPU.

Used by ``scripts/train_extractors.py`` and by the retraining-determinism test. Everything random is drawn
from the given seed (``torch.manual_seed`` + a seeded ``torch.Generator`` for shuffling and dropout), the
thread count is fixed and ``torch.use_deterministic_algorithms(True)`` is on during training, so two runs with
the same seed, data and thread count give bit-identical weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .domain import DomainExtractor, DomainNetConfig

__all__ = ["TrainConfig", "deterministic", "fmnist_arrays", "render_synthetic", "train_domain_net", "evaluate",
           "evaluate_by_domain", "predict", "jpeg_round_trip", "JPEG_QUALITIES",
           "render_keypoint_set", "train_keypoint_net", "evaluate_keypoints"]


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 4
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    threads: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed torch, fix the thread count and turn on deterministic algorithms; restore afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(int(seed))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


# --------------------------------------------------------------------------------------------- data
def fmnist_arrays(root, split: str, limit: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Fashion-MNIST ``split`` as uint8 ``(N, 1, 28, 28)`` and ``{"class": (N,)}``."""
    from fashion_gans.data.fashion_mnist import load_fashion_mnist

    images, labels = load_fashion_mnist(root, split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1), {"class": torch.from_numpy(labels)}


#: JPEG qualities drawn (uniformly, inclusive) for the compressed share of a rendered set.  The project's dataset
#: writers store photos as JPEG at quality 95 (as DeepFashion and LookBook ship them); lower qualities stand in for
#: photos from elsewhere.
JPEG_QUALITIES = (70, 95)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (uint8 ``(H, W, 3)``) encoded as a JPEG of ``quality`` (PIL's default 4:2:0 chroma subsampling)
    and decoded again: what a photo read back from a dataset folder looks like."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB")).copy()


def render_synthetic(cfg: DomainNetConfig, world_seed: int, n_person: int, n_flat: int, n_accessory: int,
                     jpeg_fraction: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Render a labelled set from ``SyntheticWorld(world_seed)``: uint8 ``(N, 3, S, S)`` already resized the
    way :class:`DomainExtractor` resizes, and one label vector per head (-1 where a head does not apply).

    Persons: identities ``0..n_person-1``, each in a random pose, size (128x128, 128x88 = the 256x176 aspect,
    or 64x64) and background; flats: the top or bottom garment of identities ``0..n_flat-1`` at 64 or 128 px;
    accessories: styles ``0..n_accessory-1``, one shoe and one bag each, random shape and variant.
    ``jpeg_fraction``: the share of images that go through a JPEG round trip (:func:`jpeg_round_trip`, quality
    drawn from :data:`JPEG_QUALITIES`) at their rendered size, before the resize: the dataset folders hold JPEGs,
    whose 4:2:0 chroma subsampling mixes a thin pattern's colour into the garment's (a reader trained on lossless
    renders only reads navy with yellow checks as black).  The choice has its own random stream per item, so the
    rest of the set is the same for every fraction.
    Held-out sets use another ``world_seed`` (fresh identities and styles).
    """
    from fashion_gans.data import synthetic as sw

    if not 0.0 <= float(jpeg_fraction) <= 1.0:
        raise ValueError(f"jpeg_fraction must be in [0, 1], got {jpeg_fraction!r}")
    world = sw.SyntheticWorld(world_seed)

    def rng_for(kind: int, i: int, *sub: int) -> np.random.Generator:
        # One stream per item, so a smaller set is a prefix of a larger one with the same world seed.
        return np.random.default_rng([world_seed, 7919, kind, i, *sub])

    def stored(img: np.ndarray, kind: int, i: int, k: int = 0) -> np.ndarray:
        rng = rng_for(kind, i, 1 + k)  # the item's own stream for the JPEG choice
        if jpeg_fraction > 0 and rng.random() < jpeg_fraction:
            return jpeg_round_trip(img, int(rng.integers(JPEG_QUALITIES[0], JPEG_QUALITIES[1] + 1)))
        return img
    heads = cfg.heads
    idx = {k: {c: i for i, c in enumerate(v)} for k, v in heads.items()}
    ext = DomainExtractor(cfg)
    images: list[torch.Tensor] = []
    labels: dict[str, list[int]] = {k: [] for k in heads}
    pending: list[np.ndarray] = []

    def flush():
        if not pending:
            return
        # Same resize as inference, then back to uint8 (what a stored image would be).
        x = ext.preprocess(torch.from_numpy(np.stack(pending)).permute(0, 3, 1, 2).contiguous())
        images.append((x * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8))
        pending.clear()

    def add(img: np.ndarray, **lab) -> None:
        if pending and pending[0].shape != img.shape:
            flush()
        pending.append(img)
        for k in heads:
            labels[k].append(idx[k][lab[k]] if lab.get(k) is not None else -1)

    sizes = [(128, 128), (128, 88), (64, 64)]
    for i in range(n_person):
        rng = rng_for(0, i)
        p = world.person(i)
        size = sizes[int(rng.integers(3))]
        bg = sw.BACKGROUNDS[int(rng.integers(3))]
        r = world.render_person(p, world.pose(i, int(rng.integers(len(sw.POSE_NAMES)))), size,
                                background=bg, background_seed=int(rng.integers(1000)))
        add(stored(r.image, 0, i), domain="person", colour=p.top.colour, pattern=p.top.pattern, kind=p.top.kind,
            bottom=p.bottom.kind if p.bottom is not None else "none")
    flush()
    for i in range(n_flat):
        rng = rng_for(1, i)
        p = world.person(i)
        g = p.bottom if (p.bottom is not None and rng.random() < 0.3) else p.top
        size = (64, 64) if rng.random() < 0.7 else (128, 128)
        add(stored(world.render_flat(g, size), 1, i), domain="flat", colour=g.colour, pattern=g.pattern, kind=g.kind)
    flush()
    for j in range(n_accessory):
        rng = rng_for(2, j)
        s = world.accessory_style(j)
        for k, kind in enumerate(("shoe", "bag")):
            shape = sw.ACCESSORY_SHAPES[kind][int(rng.integers(len(sw.ACCESSORY_SHAPES[kind])))]
            render = world.render_shoe if kind == "shoe" else world.render_bag
            img = render(s, shape, (64, 64), variant=int(rng.integers(4)))
            add(stored(img, 2, j, k), domain=kind, colour=s.colour, pattern=s.pattern, material=s.material, shape=f"{kind}:{shape}")
    flush()
    return torch.cat(images), {k: torch.tensor(v, dtype=torch.int64) for k, v in labels.items()}


# --------------------------------------------------------------------------------------------- training
def _loss(heads: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> torch.Tensor:
    total = 0.0
    for k, logits in heads.items():
        y = labels[k]
        keep = y >= 0
        if keep.any():
            total = total + F.cross_entropy(logits[keep], y[keep])
    return total


def _fit(net: torch.nn.Module, n: int, tc: TrainConfig, batch_loss, *, log, prefix: str, label: str) -> None:
    """The extractors' one training loop: ``tc.epochs`` epochs over a seeded permutation of ``n`` samples in
    batches of ``tc.batch_size``, AdamW with a one-cycle schedule; ``batch_loss(indices)`` gives each batch's loss."""
    gen = torch.Generator().manual_seed(int(tc.seed))
    opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    steps_per_epoch = math.ceil(n / tc.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=tc.epochs * steps_per_epoch,
                                                pct_start=0.15)
    for epoch in range(tc.epochs):
        t0 = time.time()
        order = torch.randperm(n, generator=gen)
        running = 0.0
        for b in range(steps_per_epoch):
            loss = batch_loss(order[b * tc.batch_size:(b + 1) * tc.batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
        if log is not None:
            log(f"{prefix} epoch {epoch + 1}/{tc.epochs} {label} {running / steps_per_epoch:.4f} "
                f"({time.time() - t0:.0f}s)")


def train_domain_net(cfg: DomainNetConfig, images: torch.Tensor, labels: dict[str, torch.Tensor],
                     tc: TrainConfig, log=print) -> DomainExtractor:
    """Train a fresh :class:`DomainExtractor` on uint8 ``images`` with per-head ``labels`` (summed cross
    entropies, AdamW, one-cycle schedule, no augmentation). Deterministic in ``tc.seed`` and ``tc.threads``."""
    n = images.shape[0]
    if n == 0 or any(v.shape[0] != n for v in labels.values()):
        raise ValueError(f"train_domain_net: {n} images but label lengths {[v.shape[0] for v in labels.values()]}")
    with deterministic(tc.seed, tc.threads):
        ext = DomainExtractor(cfg)
        ext.train()
        _fit(ext.net, n, tc, lambda sel: _loss(ext.net(ext.preprocess(images[sel]))[1],
                                               {k: v[sel] for k, v in labels.items()}),
             log=log, prefix=f"[{cfg.name}]", label="loss")
        ext.eval()
        for p in ext.parameters():
            p.requires_grad_(False)
    return ext


@torch.no_grad()
def predict(ext: DomainExtractor, images: torch.Tensor, heads: Iterable[str],
            batch_size: int = 500) -> dict[str, torch.Tensor]:
    """The extractor's class per image for each of ``heads`` (``{head: (N,) long}``), in batches."""
    ext.eval()
    heads = list(heads)
    preds: dict[str, list[torch.Tensor]] = {k: [] for k in heads}
    for start in range(0, images.shape[0], batch_size):
        out = ext(images[start:start + batch_size])["heads"]
        for k in heads:
            preds[k].append(out[k].argmax(1))
    return {k: torch.cat(v) if v else torch.empty(0, dtype=torch.long) for k, v in preds.items()}


def evaluate(ext: DomainExtractor, images: torch.Tensor, labels: dict[str, torch.Tensor],
             batch_size: int = 500, predictions: dict[str, torch.Tensor] | None = None) -> dict[str, dict]:
    """Per-head accuracy ``{head: {"accuracy": float, "n": int}}`` over the images where the head applies
    (label >= 0).  ``predictions``: the :func:`predict` output for these images, when already computed."""
    return _accuracy(predictions if predictions is not None else predict(ext, images, labels, batch_size), labels)


def _accuracy(preds: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> dict[str, dict]:
    """:func:`evaluate`'s per-head accuracy of given predictions."""
    result = {}
    for k, y in labels.items():
        p = preds[k]
        if p.shape != y.shape:
            raise ValueError(f"head {k!r}: {tuple(p.shape)} predictions for {tuple(y.shape)} labels")
        keep = y >= 0
        result[k] = {"accuracy": float((p[keep] == y[keep]).float().mean()) if keep.any() else float("nan"),
                     "n": int(keep.sum())}
    return result


def evaluate_by_domain(ext: DomainExtractor, images: torch.Tensor, labels: dict[str, torch.Tensor],
                       batch_size: int = 500, predictions: dict[str, torch.Tensor] | None = None,
                       ) -> dict[str, dict[str, dict]]:
    """:func:`evaluate` on each domain's images separately (``{domain: {head: {"accuracy", "n"}}}``, heads that do
    not apply to a domain left out): the overall accuracy of a head hides a weak domain (a reader right on 98% of
    all images may misread two-colour product photos).  The extractor reads every image once (or not at all when
    ``predictions`` are given)."""
    preds = predictions if predictions is not None else predict(ext, images, labels, batch_size)
    names = ext.cfg.heads["domain"]
    out = {}
    for d, name in enumerate(names):
        keep = labels["domain"] == d
        if not keep.any():
            continue
        sub = {k: v[keep] for k, v in labels.items() if k != "domain" and bool((v[keep] >= 0).any())}
        out[name] = _accuracy({k: preds[k][keep] for k in sub}, sub)
    return out


# --------------------------------------------------------------------------------------------- keypoints
def render_keypoint_set(world_seed: int, n: int, image_size: int = 64, blur_fraction: float = 0.3,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``n`` persons of ``SyntheticWorld(world_seed)`` (identities ``0..n-1``) for the keypoint detector.

    Each in a random pose (``pose(i, k)`` with a random ``k``: every pose name, fresh jitter), size (64x64,
    128x128 or 128x88 = the 256x176 aspect), background, and with probability ``blur_fraction`` a Gaussian blur
    (radius 0.3-1.5 px: generated images are often soft). Returns uint8 ``(n, 3, S, S)`` images resized the way
    :class:`~.keypoints.KeypointDetector` resizes and ``(n, 18, 2)`` keypoints as ``(x, y)`` fractions of width
    and height (pixel centre convention: ``(px + 0.5) / W``), ``-1`` for hidden joints.
    """
    from PIL import Image, ImageFilter

    from fashion_gans.data import synthetic as sw

    world = sw.SyntheticWorld(world_seed)
    sizes = [(64, 64), (128, 128), (128, 88)]
    groups: dict[tuple[int, int], list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for i in range(n):
        rng = np.random.default_rng([world_seed, 7, i])
        size = sizes[int(rng.integers(len(sizes)))]
        r = world.render_person(world.person(i), world.pose(i, int(rng.integers(70))), size,
                                background=sw.BACKGROUNDS[int(rng.integers(3))],
                                background_seed=int(rng.integers(1000)))
        img = r.image
        if rng.random() < blur_fraction:
            img = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5)))))
        h, w = size
        kp = r.keypoints.astype(np.float32).copy()
        hidden = (kp < 0).any(1)
        kp = (kp + 0.5) / np.array([w, h], dtype=np.float32)
        kp[hidden] = -1.0
        groups.setdefault(size, []).append((i, img, kp))
    images = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    keypoints = torch.empty(n, 18, 2, dtype=torch.float32)
    for size, items in groups.items():
        idx = torch.tensor([it[0] for it in items])
        x = torch.from_numpy(np.stack([it[1] for it in items])).permute(0, 3, 1, 2).float()
        if size != (image_size, image_size):
            x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        images[idx] = x.round().clamp(0, 255).to(torch.uint8)
        keypoints[idx] = torch.from_numpy(np.stack([it[2] for it in items]))
    return images, keypoints


def train_keypoint_net(cfg, images: torch.Tensor, keypoints: torch.Tensor, tc: TrainConfig, log=print):
    """Train a fresh :class:`~.keypoints.KeypointDetector` on uint8 ``images`` and normalised ``keypoints``
    (L1 on the soft-argmax coordinates of visible joints, AdamW, one-cycle). Deterministic in ``tc``."""
    from .keypoints import KeypointDetector

    n = images.shape[0]
    if n == 0 or keypoints.shape[:1] != (n,):
        raise ValueError(f"train_keypoint_net: {n} images but {tuple(keypoints.shape)} keypoints")
    with deterministic(tc.seed, tc.threads):
        det = KeypointDetector(cfg)
        det.train()

        def batch_loss(sel: torch.Tensor) -> torch.Tensor:
            _, pred = det.net(det.preprocess(images[sel]))
            target = keypoints[sel]
            visible = (target >= 0).all(-1, keepdim=True).float()
            return ((pred - target).abs() * visible).sum() / visible.sum().clamp(min=1) / 2

        _fit(det.net, n, tc, batch_loss, log=log, prefix=f"[{cfg.name}]", label="L1")
        det.eval()
        for p in det.parameters():
            p.requires_grad_(False)
    return det


@torch.no_grad()
def evaluate_keypoints(det, images: torch.Tensor, keypoints: torch.Tensor) -> dict[str, float]:
    """Mean keypoint error of ``det`` on images with normalised ``keypoints``: ``error_height`` (mean distance
    over visible joints / image height, per image then averaged), ``pck_0.05`` (fraction of visible joints within
    5% of the height), ``n``."""
    from .keypoints import keypoint_error

    s = images.shape[-1]
    pred = det.detect(images)
    target = torch.where(keypoints >= 0, keypoints * s - 0.5, keypoints)
    err = keypoint_error(pred, target, s)
    visible = (keypoints >= 0).all(-1)
    dist = (pred - target).norm(dim=-1)[visible] / s
    return {"error_height": float(err.nanmean()), "pck_0.05": float((dist < 0.05).float().mean()),
            "n": int(images.shape[0])}
