"""IcGAN: Invertible Conditional GANs for attribute editing (Perarnau et al., NIPS 2016 workshop).

A conditional DCGAN ``G(z, y)`` / ``D(x, y)`` plus two independent encoders that invert it (the paper's best
"IND" configuration): ``E_z`` maps an image to its latent ``z`` and ``E_y`` to its attributes ``y``.  Editing
an image ``x``: ``z = E_z(x)``, ``y = E_y(x)`` (or the known attributes), change ``y`` to ``y'`` and decode
``x' = G(z, y')``.

The attribute code ``y`` is the concatenation of one block per attribute (one-hot for a hard value, any point of
the simplex for a blend; :mod:`.attributes`).  Placements are the paper's best: ``y`` is concatenated to ``z``
at the input of G and enters D at its first layer, as constant maps concatenated to the image.
"""

from __future__ import annotations

import torch
from torch import nn

from .attributes import EDIT_DATA_LICENSE, EDIT_DATASET, check_image
from .config import IcGANConfig
from .hub import HubModel

__all__ = ["IcGANGenerator", "IcGANDiscriminator", "IcGANEncoderZ", "IcGANEncoderY"]

_TAGS = ["attribute-editing", "icgan"]


def _check_code(config: IcGANConfig, code: torch.Tensor, n: int) -> None:
    if code.ndim != 2 or code.shape != (n, config.code_size):
        raise ValueError(f"attribute code: expected ({n}, {config.code_size}) (one block per attribute of "
                         f"{list(config.attributes)}), got {tuple(code.shape)}")


def _down_stack(in_channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    """DCGAN encoder/discriminator trunk: stride-2 4x4 convs, BN on every block but the first, LeakyReLU 0.2
    (Radford et al.: no BN on the first layer of D)."""
    layers: list[nn.Module] = []
    prev = in_channels
    for i, width in enumerate(widths):
        layers.append(nn.Conv2d(prev, width, 4, stride=2, padding=1, bias=i == 0))
        if i > 0:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.LeakyReLU(0.2))
        prev = width
    return nn.Sequential(*layers)


class IcGANGenerator(HubModel, tags=_TAGS):
    """``forward(z, code)`` -> image in [-1, 1].

    ``concat(z, y)`` as a 1x1 map -> TCONV4 to 4x4 -> BN -> ReLU -> [TCONV4 s2 -> BN -> ReLU] per further width
    -> TCONV4 s2 to the image channels -> tanh (DCGAN, Radford et al. 2016).
    """

    config_class = IcGANConfig
    card_task = ("**Attribute editing** (IcGAN generator): a conditional DCGAN G(z, y) that draws a garment "
                 "image from a latent z and attribute code y; with the encoders E_z and E_y it edits a photo's "
                 "attributes (z = E_z(x), change y, x' = G(z, y')).")
    card_architecture = ("Conditional DCGAN generator, y concatenated to z at the input; transposed 4x4 convs "
                         "with BatchNorm and ReLU, tanh output.")
    card_dataset = EDIT_DATASET
    card_data_license = EDIT_DATA_LICENSE
    card_pipeline_tag = "image-to-image"

    def __init__(self, config: IcGANConfig | dict | None = None) -> None:
        super().__init__()
        self.config: IcGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        widths = tuple(int(w) for w in c.g_channels)
        layers: list[nn.Module] = [nn.ConvTranspose2d(c.z_dim + c.code_size, widths[0], 4, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], c.image_channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        c = self.config
        if z.ndim != 2 or z.shape[1] != c.z_dim:
            raise ValueError(f"z: expected (N, {c.z_dim}), got {tuple(z.shape)}")
        _check_code(c, code, z.shape[0])
        h = torch.cat([z, code.to(z.dtype)], dim=1)
        return self.net(h[:, :, None, None])


class IcGANDiscriminator(HubModel, tags=[*_TAGS, "discriminator"]):
    """``forward(x, code)`` -> ``(N,)`` real/fake logits of the pair (image, attributes).

    The code enters at the first layer, as constant maps concatenated to the image; then the DCGAN trunk
    (:func:`_down_stack`) and one conv covering the remaining map.
    """

    config_class = IcGANConfig
    card_task = ("**Attribute editing** (IcGAN): the conditional discriminator D(x, y), which scores whether an "
                 "image is real *and* shows the attributes y.")
    card_architecture = ("Conditional DCGAN discriminator: y as constant maps concatenated to the image, "
                         "stride-2 4x4 convs with BatchNorm and LeakyReLU 0.2, one logit.")
    card_dataset = EDIT_DATASET
    card_data_license = EDIT_DATA_LICENSE

    def __init__(self, config: IcGANConfig | dict | None = None) -> None:
        super().__init__()
        self.config: IcGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        widths = tuple(int(w) for w in c.d_channels)
        self.trunk = _down_stack(c.image_channels + c.code_size, widths)
        side = c.image_size // 2 ** len(widths)
        self.head = nn.Conv2d(widths[-1], 1, side)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        check_image(self.config, x, "image")
        _check_code(self.config, code, x.shape[0])
        maps = code.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.head(self.trunk(torch.cat([x, maps], dim=1))).flatten()


class _Encoder(HubModel, tags=_TAGS):
    """DCGAN trunk then a linear layer; ``out_features`` set by the subclass."""

    config_class = IcGANConfig
    card_dataset = EDIT_DATASET
    card_data_license = EDIT_DATA_LICENSE

    def out_features(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def __init__(self, config: IcGANConfig | dict | None = None) -> None:
        super().__init__()
        self.config: IcGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        widths = tuple(int(w) for w in c.e_channels)
        self.trunk = _down_stack(c.image_channels, widths)
        side = c.image_size // 2 ** len(widths)
        self.head = nn.Linear(widths[-1] * side * side, self.out_features())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(self.config, x, "image")
        return self.head(self.trunk(x).flatten(1))


class IcGANEncoderZ(_Encoder, tags=_TAGS):
    """E_z: ``forward(x)`` -> ``(N, z_dim)``, the latent that with the image's attributes makes G redraw it."""

    card_task = ("**Attribute editing** (IcGAN): the latent encoder E_z, image -> z, so that G(E_z(x), y) "
                 "redraws x; trained on generated pairs (z, G(z, y)) and on real images through G.")
    card_architecture = "DCGAN encoder: stride-2 4x4 convs with BatchNorm and LeakyReLU 0.2, a linear layer to z."
    card_pipeline_tag = "image-feature-extraction"

    def out_features(self) -> int:
        return self.config.z_dim


class IcGANEncoderY(_Encoder, tags=_TAGS):
    """E_y: ``forward(x)`` -> ``(N, code_size)`` logits, one block per attribute (softmax each block for y)."""

    card_task = ("**Attribute editing** (IcGAN): the attribute encoder E_y, image -> attribute logits (one block "
                 "per attribute), trained on labelled real images.")
    card_architecture = ("DCGAN encoder: stride-2 4x4 convs with BatchNorm and LeakyReLU 0.2, a linear layer to "
                         "one logit block per attribute.")
    card_pipeline_tag = "image-classification"

    def out_features(self) -> int:
        return self.config.code_size

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The attribute code y of images: the softmax of every logit block (a point of each simplex)."""
        from .attributes import split_code

        return torch.cat([b.softmax(dim=-1) for b in split_code(self(x), self.config.attributes)], dim=-1)
