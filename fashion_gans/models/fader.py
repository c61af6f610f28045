"""Fader Networks: attribute editing by sliding attributes (Lample et al., "Fader Networks: Manipulating Images
by Sliding Attributes", NeurIPS 2017).

An encoder maps an image to a latent map ``z``; a decoder rebuilds the image from ``z`` and the image's
attribute code ``y``.  A latent discriminator is trained to read ``y`` from ``z`` while the encoder is trained to
defeat it, so ``z`` carries everything about the image *except* its attributes and the decoder must take them
from ``y``: decoding ``z`` with another ``y`` edits the attributes, and a blend of two codes (a point of the
simplex per attribute, :func:`fashion_gans.models.attributes.blend_code`) slides between them.

The code is the concatenation of one block per attribute (one-hot for a hard value; :mod:`.attributes`).  As in
the paper it is appended, as constant maps, to the input of *every* decoder layer, so the decoder cannot lose it
on the way up.
"""

from __future__ import annotations

import torch
from torch import nn

from .attributes import EDIT_DATA_LICENSE, EDIT_DATASET, check_image
from .config import FaderConfig
from .hub import HubModel

__all__ = ["FaderNetwork", "LatentDiscriminator"]

_TAGS = ["attribute-editing", "fader-networks"]


def latent_shape(config: FaderConfig) -> tuple[int, int, int]:
    """``(C, H, W)`` of the latent map: the last encoder width at ``image_size / 2**len(enc_channels)``."""
    s = config.image_size // 2 ** len(config.enc_channels)
    return int(config.enc_channels[-1]), s, s


def _check_latent(config: FaderConfig, z: torch.Tensor) -> None:
    want = latent_shape(config)
    if z.ndim != 4 or tuple(z.shape[1:]) != want:
        raise ValueError(f"latent: expected (N, {', '.join(map(str, want))}), got {tuple(z.shape)}")


class FaderNetwork(HubModel, tags=_TAGS):
    """The encoder-decoder: ``encode(x) -> z``, ``decode(z, code) -> x`` in [-1, 1], ``forward(x, code)``.

    Encoder: per ``enc_channels`` entry a 4x4 stride-2 conv + BatchNorm (none on the first) + LeakyReLU(0.2).
    Decoder: the mirror, per layer a 4x4 stride-2 transposed conv + BatchNorm + ReLU whose input is the previous
    map with the attribute code appended as ``code_size`` constant maps; the last layer gives the image channels
    through tanh.
    """

    config_class = FaderConfig
    card_task = ("**Attribute editing** (Fader Networks): encode a product photo into an attribute-free latent map "
                 "and decode it with any attribute values (colour, pattern, kind; or the Fashion-MNIST class), "
                 "including blends between two values.")
    card_architecture = ("Conv encoder (4x4 stride 2, BatchNorm, LeakyReLU 0.2) to a latent map; mirrored decoder "
                         "(transposed convs, BatchNorm, ReLU, tanh) with the one-hot attribute code concatenated as "
                         "constant maps to the input of every layer; trained against a latent discriminator.")
    card_dataset = EDIT_DATASET
    card_data_license = EDIT_DATA_LICENSE
    card_pipeline_tag = "image-to-image"

    def __init__(self, config: FaderConfig | dict | None = None) -> None:
        super().__init__()
        self.config: FaderConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        widths = [int(w) for w in c.enc_channels]
        enc: list[nn.Module] = []
        for i, (a, b) in enumerate(zip([c.image_channels] + widths[:-1], widths)):
            layer: list[nn.Module] = [nn.Conv2d(a, b, 4, stride=2, padding=1)]
            if i > 0:
                layer.append(nn.BatchNorm2d(b))
            layer.append(nn.LeakyReLU(0.2))
            enc.append(nn.Sequential(*layer))
        self.encoder = nn.Sequential(*enc)
        ins = widths[::-1]
        outs = widths[::-1][1:] + [c.image_channels]
        dec: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(ins, outs)):
            last = i == len(ins) - 1
            conv = nn.ConvTranspose2d(a + c.code_size, b, 4, stride=2, padding=1)
            dec.append(nn.Sequential(conv, nn.Tanh()) if last else nn.Sequential(conv, nn.BatchNorm2d(b), nn.ReLU()))
        self.decoder = nn.ModuleList(dec)

    def check_code(self, code: torch.Tensor, n: int) -> None:
        """A clear error unless ``code`` is ``(n, code_size)``."""
        k = self.config.code_size
        if code.ndim != 2 or code.shape != (n, k):
            raise ValueError(f"attribute code: expected ({n}, {k}) for attributes {list(self.config.attributes)} "
                             f"(one block per attribute), got {tuple(code.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent map ``(N, *latent_shape(config))`` of images ``(N, C, S, S)`` in [-1, 1]."""
        check_image(self.config, x, "image")
        return self.encoder(x)

    def decode(self, z: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from latent maps and attribute codes ``(N, code_size)`` (one-hot or blended)."""
        _check_latent(self.config, z)
        self.check_code(code, z.shape[0])
        code = code.to(z.dtype)[:, :, None, None]
        h = z
        for layer in self.decoder:
            h = layer(torch.cat([h, code.expand(-1, -1, *h.shape[-2:])], dim=1))
        return h

    def forward(self, x: torch.Tensor, code: torch.Tensor, return_latent: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``decode(encode(x), code)``: the reconstruction with ``x``'s own code, an edit with another one.
        ``return_latent`` also returns the latent map (training needs both from one call through ``forward``, the
        only method data-parallel and mixed-precision wrappers see)."""
        z = self.encode(x)
        out = self.decode(z, code)
        return (out, z) if return_latent else out


class LatentDiscriminator(HubModel, tags=_TAGS + ["discriminator"]):
    """Reads the attributes from a latent map: ``forward(z) -> logits (N, code_size)``, one block per attribute.

    One conv on the latent map (4x4 stride 2 as the paper's C512 when the map is at least 2x2, else 1x1) +
    BatchNorm + LeakyReLU(0.2), then dropout, a hidden FC layer of ``dis_hidden`` units + LeakyReLU, dropout, and
    the logits.  Dropout keeps the discriminator from memorising the training latents, which would give the
    encoder a gradient that does not generalise.
    """

    config_class = FaderConfig
    card_task = ("**Attribute editing** (Fader Networks): the latent discriminator, which predicts the attributes "
                 "from the encoder's latent map during training.")
    card_architecture = "Conv + BatchNorm + LeakyReLU on the latent map, FC hidden layer with dropout, logit blocks."
    card_dataset = EDIT_DATASET
    card_data_license = EDIT_DATA_LICENSE

    def __init__(self, config: FaderConfig | dict | None = None) -> None:
        super().__init__()
        self.config: FaderConfig = self._coerce_config(config)  # type: ignore[assignment]
        c = self.config
        ch, s, _ = latent_shape(c)
        if s >= 2:
            conv, out_s = nn.Conv2d(ch, c.dis_hidden, 4, stride=2, padding=1), s // 2
        else:
            conv, out_s = nn.Conv2d(ch, c.dis_hidden, 1), s
        self.conv = nn.Sequential(conv, nn.BatchNorm2d(c.dis_hidden), nn.LeakyReLU(0.2))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(c.dis_dropout), nn.Linear(c.dis_hidden * out_s * out_s, c.dis_hidden),
            nn.LeakyReLU(0.2), nn.Dropout(c.dis_dropout), nn.Linear(c.dis_hidden, c.code_size),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latent(self.config, z)
        return self.head(self.conv(z))
