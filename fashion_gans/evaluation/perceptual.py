"""Perceptual distances for paired tasks.

:class:`LPIPS`
    The LPIPS metric of Zhang et al. 2018 ("The Unreasonable Effectiveness of Deep Features as a Perceptual
    Metric") with the ``lpips`` package's architecture: a VGG-16 or AlexNet trunk (torchvision layout), the
    package's input scaling layer, channel-unit-normalised activations at 5 layers, squared differences weighted
    per channel by a learned 1x1 convolution (``lin0..lin4``, no bias), averaged over space, summed over layers.
    Nothing is downloaded: the trunk and the linear layers load from local files (see :func:`load_lpips`).

:class:`DomainPerceptualDistance`
    **Not LPIPS.** The same recipe on the trunk of a shipped domain extractor (``synthetic-attributes``: 4
    conv stages; ``fmnist-classifier``: 3), with *no learned layer*: every stage's activations are unit-normalised
    over channels, the squared differences are summed over channels, averaged over space and averaged over
    stages. Works offline with the package's own weights; its scale is not comparable with LPIPS numbers in
    papers.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from fashion_gans.metrics.features import to_uint8

__all__ = ["LPIPS", "LPIPS_LAYERS", "load_lpips", "normalize_tensor", "lpips_distance_reference",
           "DomainPerceptualDistance"]

#: torchvision ``features`` indices after which LPIPS taps the activations (the ``lpips`` package's slices).
LPIPS_LAYERS = {"vgg": (3, 8, 15, 22, 29), "alex": (1, 4, 7, 9, 11)}
LPIPS_CHANNELS = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}
#: The ``lpips`` package's ScalingLayer (input in [-1, 1] -> ImageNet-like statistics).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def normalize_tensor(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-normalise over channels: ``x / (sqrt(sum_c x^2) + eps)`` (the ``lpips`` package's formula)."""
    return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + eps)


def _trunk(net: str) -> nn.Sequential:
    """The torchvision ``features`` module of VGG-16 / AlexNet (same layer indices and parameter names), built
    without the classifier."""
    if net == "vgg":
        from torchvision.models.vgg import cfgs, make_layers

        return make_layers(cfgs["D"], batch_norm=False)
    if net == "alex":
        return nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
    raise ValueError(f"LPIPS net must be 'vgg' or 'alex', got {net!r}")


class LPIPS(nn.Module):
    """``forward(x, y) -> (N,)`` LPIPS distances of float images in [-1, 1] (or uint8)."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net_name = net
        self.features = _trunk(net)
        self.taps = LPIPS_LAYERS[net]
        self.features = self.features[:self.taps[-1] + 1]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in LPIPS_CHANNELS[net])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        for m in self.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False

    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x.float() - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"LPIPS: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
        total = 0.0
        for lin, fx, fy in zip(self.lins, self._activations(x), self._activations(y)):
            d = (normalize_tensor(fx) - normalize_tensor(fy)) ** 2
            total = total + lin(d).mean(dim=(2, 3))
        return total.flatten()


def lpips_distance_reference(feats_x: list[torch.Tensor], feats_y: list[torch.Tensor],
                             weights: list[torch.Tensor]) -> torch.Tensor:
    """The LPIPS formula written out, for checking: ``sum_l mean_hw sum_c w_lc (x̂_lchw - ŷ_lchw)^2`` with
    ``x̂ = x / ||x||_c``; ``weights[l]`` of shape ``(C_l,)``."""
    total = 0.0
    for fx, fy, w in zip(feats_x, feats_y, weights):
        nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        per = torch.einsum("nchw,c->nhw", (nx - ny) ** 2, w)
        total = total + per.flatten(1).mean(1)
    return total


def load_lpips(net: str = "alex", *, trunk: str | os.PathLike, linear: str | os.PathLike) -> LPIPS:
    """An :class:`LPIPS` with weights from local files (nothing is downloaded):

    * ``trunk``: the torchvision ImageNet weights of the trunk (``alexnet-owt-7be5be79.pth`` or
      ``vgg16-397923af.pth``, as found in ``~/.cache/torch/hub/checkpoints/``; a full model state dict whose
      ``features.*`` entries are used), ``.pth`` or ``.safetensors``;
    * ``linear``: the ``lpips`` package's linear layers, ``lpips/weights/v0.1/{alex,vgg}.pth`` (keys
      ``lin0.model.1.weight`` ... ``lin4.model.1.weight``, shape ``(1, C, 1, 1)``).
    """
    model = LPIPS(net)

    def read(path) -> dict[str, torch.Tensor]:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: LPIPS weight file not found")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)

    trunk_state = read(trunk)
    features = {k[len("features."):]: v for k, v in trunk_state.items() if k.startswith("features.")}
    if not features:
        features = trunk_state
    try:
        res = model.features.load_state_dict(
            {k: v for k, v in features.items() if int(k.split(".")[0]) <= model.taps[-1]}, strict=False)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{trunk}: not {net} trunk weights ({exc})") from exc
    if res.missing_keys:
        raise ValueError(f"{trunk}: trunk weights lack {res.missing_keys[:4]}")
    lin_state = read(linear)
    for i, lin in enumerate(model.lins):
        key = f"lin{i}.model.1.weight"
        if key not in lin_state:
            raise ValueError(f"{linear}: no {key!r} (keys: {sorted(lin_state)[:6]})")
        lin.weight.data.copy_(lin_state[key].reshape(lin.weight.shape))
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


class DomainPerceptualDistance(nn.Module):
    """Unweighted perceptual distance on a domain extractor's trunk (NOT LPIPS: no learned layer, see the module
    docstring). ``forward(x, y) -> (N,)`` for float images in [-1, 1] or uint8."""

    def __init__(self, extractor: str = "synthetic-attributes") -> None:
        super().__init__()
        from .cache import cached_extractor

        self.extractor_name = extractor
        self.ext = cached_extractor(extractor)
        trunk = self.ext.net.trunk
        self.stages: list[int] = [i for i, m in enumerate(trunk) if isinstance(m, nn.MaxPool2d)]

    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.ext.preprocess(to_uint8(x))
        out = []
        for i, layer in enumerate(self.ext.net.trunk):
            h = layer(h)
            if i + 1 in self.stages:
                out.append(h)  # the activation before each pooling (after the stage's ReLU)
        return out

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"domain perceptual distance: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
        ax, ay = self._activations(x), self._activations(y)
        total = torch.zeros(x.shape[0], device=ax[0].device)
        for fx, fy in zip(ax, ay):
            total = total + ((normalize_tensor(fx) - normalize_tensor(fy)) ** 2).sum(1).mean(dim=(1, 2))
        return (total / len(ax)).cpu()
