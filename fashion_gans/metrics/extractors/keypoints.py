"""``synthetic-pose``: a small keypoint detector for the mannequins of :mod:`fashion_gans.data.synthetic`.

Pose-transfer papers (PATN, PG2, Ma et al.) score "did the result reach the target pose" by running a pose
estimator (OpenPose, HRNet) on the generated image and comparing with the target keypoints. Those estimators
are trained on real people and do not see the procedural mannequins reliably, so the project trains its own
tiny detector on renders whose 18 OpenPose keypoints are known exactly (``scripts/train_extractors.py --only
synthetic-pose``), and ships it in ``fashion_gans/assets/extractors/synthetic-pose/``.

Network: a 3-level convolutional encoder (64 -> 32 -> 16 -> 8 px) and one skip-connected decoder level
producing 18 heatmaps at 16x16; keypoints are the soft-argmax (the expectation under the softmax of each
heatmap: integral pose regression, Sun et al. 2018), trained with an L1 loss on the normalised coordinates of
the visible joints. Input: RGB uint8 of any size, resized to 64x64 (bilinear, antialiased, aspect not kept: the
coordinates are predicted as fractions of width and height and mapped back to the input's pixels).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashion_gans.metrics.features import check_uint8_images

from .domain import ASSETS_DIR, load_net_folder, save_net_folder

__all__ = ["KeypointNetConfig", "KeypointNet", "KeypointDetector", "load_keypoint_detector", "keypoint_error"]


@dataclass
class KeypointNetConfig:
    """Architecture of a :class:`KeypointNet` (saved as ``config.json["model"]``)."""

    name: str = "synthetic-pose"
    image_size: int = 64
    num_joints: int = 18
    widths: tuple[int, ...] = (16, 32, 48, 64)

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if len(self.widths) != 4 or self.image_size % 8:
            raise ValueError(f"{self.name}: need 4 widths and an image_size divisible by 8, got {self.widths}, "
                             f"{self.image_size}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class KeypointNet(nn.Module):
    """Float ``(N, 3, S, S)`` in [-1, 1] -> ``(heatmap logits (N, J, S/4, S/4), keypoints (N, J, 2))`` with the
    keypoints as ``(x, y)`` fractions of the width and height (pixel centres: ``(i + 0.5) / cells``)."""

    def __init__(self, cfg: KeypointNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w0, w1, w2, w3 = cfg.widths
        self.stem = nn.Sequential(_conv(3, w0, stride=2), _conv(w0, w1))          # S/2
        self.down1 = nn.Sequential(nn.MaxPool2d(2), _conv(w1, w2), _conv(w2, w2))  # S/4
        self.down2 = nn.Sequential(nn.MaxPool2d(2), _conv(w2, w3), _conv(w3, w3))  # S/8
        self.fuse = nn.Sequential(_conv(w3 + w2, w2), _conv(w2, w2))                # S/4
        self.head = nn.Conv2d(w2, cfg.num_joints, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s1 = self.down1(self.stem(x))
        s2 = self.down2(s1)
        up = F.interpolate(s2, size=s1.shape[-2:], mode="bilinear", align_corners=False)
        heat = self.head(self.fuse(torch.cat([up, s1], 1)))
        n, j, h, w = heat.shape
        prob = heat.float().flatten(2).softmax(-1).view(n, j, h, w)
        xs = (torch.arange(w, device=x.device, dtype=prob.dtype) + 0.5) / w
        ys = (torch.arange(h, device=x.device, dtype=prob.dtype) + 0.5) / h
        kx = (prob.sum(2) * xs).sum(-1)
        ky = (prob.sum(3) * ys).sum(-1)
        return heat, torch.stack([kx, ky], -1)


class KeypointDetector(nn.Module):
    """A trained :class:`KeypointNet` behind a uint8-image interface: ``detect(images) -> (N, 18, 2)`` pixel
    ``(x, y)`` in the input's own frame."""

    def __init__(self, cfg: KeypointNetConfig, net: KeypointNet | None = None, meta: dict | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = net if net is not None else KeypointNet(cfg)
        self.meta = dict(meta or {})

    @property
    def name(self) -> str:
        return self.cfg.name

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, 3, H, W)`` -> float ``(N, 3, S, S)`` in [-1, 1] on the network's device."""
        check_uint8_images(images, f"keypoint detector {self.name!r}")
        device = next(self.net.parameters()).device
        x = images.to(device=device, dtype=torch.float32) / 127.5 - 1.0
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        s = self.cfg.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised keypoints ``(N, J, 2)`` (fractions of width, height) of uint8 images."""
        return self.net(self.preprocess(images))[1]

    @torch.no_grad()
    def detect(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Pixel keypoints ``(N, J, 2)`` (float32, CPU) of uint8 ``(N, C, H, W)`` images, in their own frame."""
        was = self.training
        self.eval()
        try:
            h, w = images.shape[-2:]
            scale = torch.tensor([w, h], dtype=torch.float32)
            out = [self(images[i:i + batch_size]).float().cpu() for i in range(0, images.shape[0], batch_size)]
        finally:
            self.train(was)
        return torch.cat(out) * scale - 0.5

    # ---- files -------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, meta: dict | None = None) -> Path:
        """Write ``model.safetensors`` and ``config.json`` atomically."""
        return save_net_folder(directory, self.net, self.cfg, meta if meta is not None else self.meta)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "KeypointDetector":
        cfg, net, meta = load_net_folder(directory, lambda d: KeypointNetConfig(**d), KeypointNet,
                                         "a keypoint detector", "scripts/train_extractors.py --only synthetic-pose")
        return cls(cfg, net, meta).requires_grad_(False).eval()


def load_keypoint_detector(path: str | os.PathLike | None = None) -> KeypointDetector:
    """The shipped ``synthetic-pose`` detector (or the one saved in ``path``)."""
    return KeypointDetector.from_pretrained(path if path is not None else ASSETS_DIR / "synthetic-pose")


def keypoint_error(pred: torch.Tensor, target: torch.Tensor, height: int | float) -> torch.Tensor:
    """Per-image mean Euclidean distance between ``pred`` and the visible ``target`` keypoints (pixel ``(x, y)``,
    ``(N, J, 2)``; a target joint is visible when both coordinates are >= 0), as a fraction of ``height``.
    Images without a visible target joint give NaN."""
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"keypoint_error: pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be "
                         "(N, J, 2)")
    target = target.to(pred.device, torch.float32)
    visible = (target >= 0).all(-1)
    dist = (pred.float() - target).norm(dim=-1) * visible
    count = visible.sum(-1)
    return torch.where(count > 0, dist.sum(-1) / count.clamp(min=1), torch.full_like(dist[:, 0], float("nan"))) \
        / float(height)
