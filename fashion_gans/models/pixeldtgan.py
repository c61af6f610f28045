"""PixelDTGAN: garment extraction, person photo -> product photo of the worn garment (thesis §3.2).

Generator: an encoder/decoder without skips and a bottleneck vector (100-d in the thesis, PixelNorm on
both sides).  Two PatchGAN discriminators: D_R (real/fake, sees the product image only) and D_A
(associated/unassociated, sees the person image concatenated with a product image).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PatchGANDiscriminator, PixelNorm
from .config import PixelDTGANConfig
from .hub import HubModel

__all__ = ["PixelDTGenerator", "PixelDTRealDiscriminator", "PixelDTAssociationDiscriminator"]

_DATASET = (
    "LookBook person/product pairs augmented with DeepFashion In-shop flat items, or the fashion-gans synthetic "
    "fashion world rendered in the same format"
)
_LICENSE = ("LookBook is distributed for research use; DeepFashion is released for non-commercial research "
            "purposes only; weights trained on them inherit that restriction")


def _check_image(config: PixelDTGANConfig, x: torch.Tensor, name: str) -> None:
    h, w = config.image_size
    if x.ndim != 4 or x.shape[1] != config.image_channels or tuple(x.shape[-2:]) != (h, w):
        raise ValueError(f"{name}: expected (N, {config.image_channels}, {h}, {w}), got {tuple(x.shape)}")


class PixelDTGenerator(HubModel, tags=["garment-extraction", "pixeldtgan"]):
    """``forward(person)`` -> product image in [-1, 1]; ``encode`` / ``decode`` expose the bottleneck.

    Encoder: CONV5 3->128 s2 -> LReLU -> [CONV5 s2 Cin->2Cin -> BN -> LReLU] x3 -> CONV(h/16 x w/16) -> 100 -> PN.
    Decoder: TCONV 100->1024 -> PN -> ReLU -> [TCONV5 s2 Cin->Cin/2 -> BN -> ReLU] x3 -> TCONV5 s2 128->3 -> tanh.
    Thesis erratum E12: the encoder blocks use 5x5 kernels (37.7M parameters; 3x3 would give 26.7M).

    The L1 reconstruction weight is a fixed training hyper-parameter, not a parameter of this module: the
    thesis code made it an ``nn.Parameter`` optimised with G, which drove it below zero (the epoch-186
    incident) and, once clipped by a ReLU, to zero, switching the L1 term off.
    """

    config_class = PixelDTGANConfig
    card_task = ("**Garment extraction** (PixelDTGAN generator): from a photo of a dressed person, generate a "
                 "product photo of the worn garment on a white background.")
    card_architecture = "Encoder/decoder without skips, 5x5 convolutions, PixelNorm'd bottleneck vector."
    card_dataset = _DATASET
    card_data_license = _LICENSE
    card_pipeline_tag = "image-to-image"

    def __init__(self, config: PixelDTGANConfig | dict | None = None) -> None:
        super().__init__()
        self.config: PixelDTGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        k, pad = c.g_kernel, c.g_kernel // 2
        chans = [c.g_base_channels * 2**i for i in range(c.g_blocks)]
        enc: list[nn.Module] = [nn.Conv2d(c.image_channels, chans[0], k, stride=2, padding=pad), nn.LeakyReLU(0.2)]
        for a, b in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(a, b, k, stride=2, padding=pad), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        bh, bw = (s // 2**c.g_blocks for s in c.image_size)
        # The bottleneck conv covers the whole remaining map (4x4 at 64 px), so its size derives from the shapes.
        enc += [nn.Conv2d(chans[-1], c.bottleneck_dim, (bh, bw)), PixelNorm()]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.ConvTranspose2d(c.bottleneck_dim, chans[-1], (bh, bw)), PixelNorm(), nn.ReLU()]
        for a, b in zip(chans[::-1][:-1], chans[::-1][1:]):
            dec += [nn.ConvTranspose2d(a, b, k, stride=2, padding=pad, output_padding=1), nn.BatchNorm2d(b), nn.ReLU()]
        dec += [nn.ConvTranspose2d(chans[0], c.image_channels, k, stride=2, padding=pad, output_padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def encode(self, person: torch.Tensor) -> torch.Tensor:
        _check_image(self.config, person, "person")
        return self.encoder(person).flatten(1)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code[:, :, None, None])

    def forward(self, person: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(person))


class PixelDTRealDiscriminator(HubModel, tags=["garment-extraction", "pixeldtgan", "discriminator"]):
    """D_R: real/fake PatchGAN on the product image only (not conditioned). ``forward(product)`` -> 4x4 scores."""

    config_class = PixelDTGANConfig
    card_task = "**Garment extraction** (PixelDTGAN): D_R, the real/fake discriminator on product images."
    card_architecture = ("PatchGAN, no UF stem: the first conv counts as block 1 (thesis erratum E11), "
                         "spectrally normalised 1x1 head.")
    card_dataset = _DATASET
    card_data_license = _LICENSE
    n_inputs = 1

    def __init__(self, config: PixelDTGANConfig | dict | None = None) -> None:
        super().__init__()
        self.config: PixelDTGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        self.net = PatchGANDiscriminator(self.n_inputs * c.image_channels, c.d_base_channels, c.d_blocks,
                                         uf_stem=False, negative_slope=c.d_negative_slope)

    def forward(self, product: torch.Tensor) -> torch.Tensor:
        _check_image(self.config, product, "product")
        return self.net(product)


class PixelDTAssociationDiscriminator(PixelDTRealDiscriminator,
                                      tags=["garment-extraction", "pixeldtgan", "discriminator"]):
    """D_A: associated/unassociated PatchGAN on (person, product). ``forward(person, product)`` -> 4x4 scores.

    Trained with (person, its product) -> 1, (person, generated) -> 0, (person, another real product) -> 0.
    """

    card_task = ("**Garment extraction** (PixelDTGAN): D_A, the associated/unassociated discriminator on "
                 "(person, product) pairs.")
    n_inputs = 2

    def forward(self, person: torch.Tensor, product: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _check_image(self.config, person, "person")
        _check_image(self.config, product, "product")
        return self.net(torch.cat([person, product], dim=1))
