"""PGPG / "PoseGAN": pose-guided person image generation (thesis §3.1).

Stage I (G1) is a U-Net with a fully connected bottleneck that maps (source image, target pose) to a
coarse, blurry image in the target pose.  Stage II (G2) is a U-Net refiner (dropout in the first half of
its encoder) that maps (source image, coarse image) to a difference map added to the coarse result.
The discriminator is a conditional PatchGAN on (source image, real or generated target).

Combination of the two stages (a documented choice): G1 outputs logits ``a``; ``coarse = tanh(a)``.  G2
outputs an unbounded difference map ``d`` in the same pre-activation space, and
``refined = tanh(a + d)``.  A zero difference map reproduces the coarse image exactly, the result stays
in (-1, 1) without clamping, and gradients never saturate at a clamp.  The thesis equation adds the maps
in image space (``coarse + D_map``, which can leave [-1, 1]); its code computed ``tanh(tanh(G2) + tanh(G1))``,
squashing twice.  ``refined - coarse`` is the image-space difference to show next to the outputs.

"G1 frozen in G2's loss" (thesis): with ``detach_coarse=True`` (the default) G2's input and the refined
output use a detached copy of G1's logits, so a loss on ``refined`` updates only G2 while a loss on
``coarse`` updates G1: ``loss = L_G1(coarse) + L_G2(refined)`` trains both with one optimiser exactly as
the thesis describes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .blocks import PatchGANDiscriminator, UNet
from .config import PGPGConfig
from .hub import DEEPFASHION_LICENSE, HubModel

__all__ = ["PGPGOutput", "PGPGStage1", "PGPGStage2", "PGPGGenerator", "PGPGDiscriminator"]

_DATASET = (
    "DeepFashion In-shop Clothes Retrieval Benchmark (ICRB) pose-change pairs, or the fashion-gans synthetic "
    "fashion world rendered in the same format"
)


class PGPGOutput(NamedTuple):
    coarse: torch.Tensor  # G1's image, tanh(a), in (-1, 1)
    diff: torch.Tensor  # G2's difference map d (pre-activation space)
    refined: torch.Tensor  # tanh(a + d), in (-1, 1)


class PGPGStage1(nn.Module):
    """G1: U-Net (4 blocks, base 32 in the thesis) with the FC bottleneck; returns logits."""

    def __init__(self, config: PGPGConfig) -> None:
        super().__init__()
        c = config
        self.unet = UNet(
            c.image_channels + c.pose_channels, c.image_channels, c.g1_base_channels, c.g1_blocks,
            stem_kernel=c.g1_stem_kernel, norm=c.norm,
            bottleneck_channels=c.g1_bottleneck_channels, bottleneck_spatial=c.g1_bottleneck_shape,
        )

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([image, pose], dim=1))


class PGPGStage2(nn.Module):
    """G2: U-Net refiner (6 blocks, base 32, 7x7 stem, no bottleneck layer); returns the difference map."""

    def __init__(self, config: PGPGConfig) -> None:
        super().__init__()
        c = config
        self.unet = UNet(
            2 * c.image_channels, c.image_channels, c.g2_base_channels, c.g2_blocks,
            stem_kernel=c.g2_stem_kernel, norm=c.norm, dropout=c.g2_dropout,
        )

    def forward(self, image: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([image, coarse], dim=1))


def _check_inputs(config: PGPGConfig, image: torch.Tensor, other: torch.Tensor, other_name: str,
                  other_channels: int) -> None:
    h, w = config.image_size
    if image.ndim != 4 or image.shape[1] != config.image_channels or tuple(image.shape[-2:]) != (h, w):
        raise ValueError(f"image: expected (N, {config.image_channels}, {h}, {w}), got {tuple(image.shape)}")
    if other.ndim != 4 or other.shape[1] != other_channels or other.shape[-2:] != image.shape[-2:] \
            or other.shape[0] != image.shape[0]:
        raise ValueError(f"{other_name}: expected ({image.shape[0]}, {other_channels}, {h}, {w}), "
                         f"got {tuple(other.shape)}")


class PGPGGenerator(HubModel, tags=["pose-transfer", "pgpg"]):
    """G1 + G2 (trained jointly with one optimiser).

    ``forward(image, pose)`` -> :class:`PGPGOutput` ``(coarse, diff, refined)``.
    ``image``: (N, 3, H, W) in [-1, 1]; ``pose``: (N, 3, H, W) IUV in [0, 1] or (N, 18, H, W) heatmaps in
    [0, 1], as set by ``config.pose_encoding``.
    """

    config_class = PGPGConfig
    card_task = ("**Pose transfer** (PGPG / PoseGAN generator, G1 + G2): given a photo of a person and a target "
                 "pose, generate the same person in the target pose.")
    card_architecture = ("G1 U-Net with a fully connected bottleneck (coarse result); G2 U-Net refiner with dropout "
                         "in the first half of its encoder (difference map); refined = tanh(G1 + G2).")
    card_dataset = _DATASET
    card_data_license = DEEPFASHION_LICENSE
    card_pipeline_tag = "image-to-image"

    def __init__(self, config: PGPGConfig | dict | None = None) -> None:
        super().__init__()
        self.config: PGPGConfig = self._coerce_config(config)  # type: ignore[assignment]
        self.g1 = PGPGStage1(self.config)
        self.g2 = PGPGStage2(self.config)

    def forward(self, image: torch.Tensor, pose: torch.Tensor, *, detach_coarse: bool = True) -> PGPGOutput:
        _check_inputs(self.config, image, pose, "pose", self.config.pose_channels)
        logits = self.g1(image, pose)
        coarse = torch.tanh(logits)
        base = logits.detach() if detach_coarse else logits
        diff = self.g2(image, coarse.detach() if detach_coarse else coarse)
        refined = torch.tanh(base + diff)
        return PGPGOutput(coarse, diff, refined)


class PGPGDiscriminator(HubModel, tags=["pose-transfer", "pgpg", "discriminator"]):
    """Conditional PatchGAN: ``forward(source, target)`` -> (N, 1, H/32, W/32) raw LSGAN scores.

    Thesis erratum E6: UF 6->16 and 5 stride-2 blocks give a 4x4 map at 128 px (32 px cells), 1.57M params.
    """

    config_class = PGPGConfig
    card_task = "**Pose transfer** (PGPG / PoseGAN): conditional PatchGAN discriminator on (source, target) pairs."
    card_architecture = "PatchGAN: UF stem, stride-2 conv + InstanceNorm + ReLU blocks, spectrally normalised 1x1 head."
    card_dataset = _DATASET
    card_data_license = DEEPFASHION_LICENSE

    def __init__(self, config: PGPGConfig | dict | None = None) -> None:
        super().__init__()
        self.config: PGPGConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        self.net = PatchGANDiscriminator(2 * c.image_channels, c.d_base_channels, c.d_blocks, uf_stem=True,
                                         negative_slope=c.d_negative_slope)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_inputs(self.config, source, target, "target", self.config.image_channels)
        return self.net(torch.cat([source, target], dim=1))
