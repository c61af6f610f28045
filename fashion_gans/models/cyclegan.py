"""DiscoGAN/CycleGAN style matching: shoes (domain A) <-> handbags (domain B) (thesis §3.3).

Two generators of the same architecture (``G_AB`` and ``G_BA``: build two :class:`CycleGANGenerator` with
``direction="ab"`` / ``"ba"`` in the training code) and two unconditional PatchGANs (``D_A``, ``D_B``).

The thesis generator is the CycleGAN ResNet generator: stem, 2 stride-2 downsampling convs, 9 residual
blocks, 2 transposed-conv upsampling blocks, head, tanh.  ``config.generator="unet"`` selects a U-Net with
bilinear upsampling instead, and ``"discogan"`` the encoder-decoder of DiscoGAN (Kim et al. 2017): ``g_down``
stride-2 4x4 convolutions (LeakyReLU 0.2, normalised after the first) down to a small code, then as many stride-2
4x4 transposed convolutions (ReLU) back to the image.  Without skip connections or a full-resolution residual
path nothing ties the output's layout to the input's, so a shoe can become a handbag of another shape; the
ResNet generator keeps the input's silhouette.
``"discogan_adain"`` adds a global style code to that encoder-decoder (:class:`StyleCodeEncoderDecoder`): the
mean and standard deviation of every encoder level's features, mapped to a vector that sets the scale and bias
of every decoder layer (AdaIN, Huang & Belongie 2017, as MUNIT's decoder), so colour and pattern can reach an
outline of the other domain without passing through the small spatial code.
``"discogan_flow"`` adds an appearance-flow head to that style-code generator (:class:`AppearanceFlowEncoderDecoder`,
after Zhou et al. 2016, "View Synthesis by Appearance Flow"): besides the drawn image, the generator decides where
to sample the input and how much of each output pixel to take from that sample, so the surface of the source
object (its colour and its pattern) is copied onto an outline of the other domain rather than redrawn.
``"discogan_tile"`` (:class:`SurfaceTile`) starts that sampling map as a whole-pixel copy of the source at its own
scale, mirrored into a box in the middle of the source object that the style code may move (off a clasp or a
logo): the surface reaches the output undistorted however the outline changes, and the learned flow only departs
from that copy where it must.  ``g_tile`` sets each generator's box, in standard deviations of the source object's
pixel coordinates: it should span a pattern period (or the fold holds a phase-dependent share of the pattern
colour) and stay inside the outline.
``g_shape_bank`` > 0 (with a flow generator; preset ``discogan_shape_small``) conditions each generator on the
silhouette of the outline to draw, an exemplar of the target domain: the encoder reads it beside the image and every
decoder layer gets it directly (a 3x3 convolution of the resized silhouette added before the layer's AdaIN, as
SPADE lays out a segmentation map).  The shape then comes from the exemplar and the surface from the source: in
training each translation draws a real target image's outline and the way back the source's own, so the cycle term
no longer asks the translation to hide the source's outline in its pixels (the steganography of Chu et al. 2017),
the conflict that kept unconditioned generators from drawing clean outlines of the other domain.  The generator
stores ``g_shape_bank`` real target silhouettes with its weights (``store_shapes``, filled from the first training
batches) and draws the first of them when no silhouette is given; ``stored_shape(k)`` picks another.

Both directions are first-class modules (the thesis code exposed only ``gen_a_to_b`` through its ``gen``
property, whose setter was a no-op).  Training-side fixes of the thesis code (fakes detached for the D step,
identity weight 5 as in the thesis rather than the code's 0.1) belong to the training task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import AdaIN, PatchGANDiscriminator, ResnetBlock, UNet, make_norm
from .config import FLOW_GENERATORS, CycleGANConfig
from .hub import HubModel

__all__ = ["AppearanceFlowEncoderDecoder", "CycleGANGenerator", "CycleGANDiscriminator", "StyleCodeEncoderDecoder",
           "sampling_rigidity", "silhouette",
           "object_mask", "pixel_centres"]

_DATASET = ("handbags_64.hdf5 / shoes_64.hdf5 (iGAN handbags, UT Zappos50K shoes), Fashion-MNIST shoes and bags, "
            "or the fashion-gans synthetic shoes and handbags")
_LICENSE = ("UT Zappos50K and the iGAN handbags are distributed for academic, non-commercial use; weights trained "
            "on them inherit that restriction (Fashion-MNIST: MIT; synthetic data: MIT)")


@torch.no_grad()
def background_colour(images: torch.Tensor) -> torch.Tensor:
    """``(N, C, 1, 1)``: the mean colour of each image's four 2x2 corners (the background of a product photo), on
    the images' scale."""
    corners = torch.cat([images[..., :2, :2], images[..., :2, -2:], images[..., -2:, :2], images[..., -2:, -2:]],
                        dim=-1)
    return corners.float().mean(dim=(-2, -1), keepdim=True)


def object_mask(images: torch.Tensor, threshold: float = 0.15) -> torch.Tensor:
    """``(N, 1, H, W)`` float mask of each image's object pixels: pixels farther than ``threshold`` (largest
    channel difference, [0, 1] scale) from the mean colour of the image's four 2x2 corners, the background of a
    product photo.  An image without such pixels is all object.  ``images`` in [-1, 1]; no gradient."""
    with torch.no_grad():
        x = (images.float() + 1) / 2
        mask = ((x - background_colour(x)).abs().amax(dim=1, keepdim=True) > threshold).float()
        return torch.where(mask.sum(dim=(2, 3), keepdim=True) > 0, mask, torch.ones_like(mask))


@torch.no_grad()
def silhouette(images: torch.Tensor, close: int = 5, threshold: float = 0.15) -> torch.Tensor:
    """``(N, 1, H, W)`` float silhouette of each image's object: :func:`object_mask` (``threshold``) closed with a
    ``close`` x ``close`` square (odd), so that a pattern's lines in the background colour (white checks, stripes or
    dots) count as object while a handle's opening stays open.  ``images`` in [-1, 1]; no gradient."""
    mask = object_mask(images, threshold)
    pad = close // 2
    return -F.max_pool2d(-F.max_pool2d(mask, close, 1, pad), close, 1, pad)


@torch.no_grad()
def object_moments(images: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``((cx, cy), (sx, sy))``, each ``(N,)``: the mean and standard deviation of each image's object pixel
    coordinates (:func:`object_mask`) along x and y, in ``grid_sample``'s [-1, 1] coordinates."""
    _, _, h, w = images.shape
    mask = object_mask(images)[:, 0]  # (N, H, W)
    ys, xs = pixel_centres(h, images.device), pixel_centres(w, images.device)
    area = mask.sum(dim=(1, 2))
    cy = (mask * ys[:, None]).sum(dim=(1, 2)) / area
    cx = (mask * xs[None, :]).sum(dim=(1, 2)) / area
    sy = ((mask * (ys[:, None] - cy[:, None, None]) ** 2).sum(dim=(1, 2)) / area).sqrt()
    sx = ((mask * (xs[None, :] - cx[:, None, None]) ** 2).sum(dim=(1, 2)) / area).sqrt()
    return (cx, cy), (sx, sy)


def _frame_grid(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 2)`` sampling grid (``grid_sample``'s ``(x, y)``) from each output column's ``gx`` ``(N, W)`` and
    each output row's ``gy`` ``(N, H)``."""
    n, h, w = gy.shape[0], gy.shape[1], gx.shape[1]
    return torch.stack([gx[:, None, :].expand(n, h, w), gy[:, :, None].expand(n, h, w)], dim=-1)


def pixel_centres(size: int, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``size`` pixel centres of one image axis in ``grid_sample``'s [-1, 1] coordinates
    (``align_corners=False``)."""
    return (2 * torch.arange(size, device=device, dtype=dtype) + 1) / size - 1


class CycleGANGenerator(HubModel, tags=["image-to-image", "cyclegan", "discogan"]):
    """``forward(x)`` -> translated image in [-1, 1].

    ``direction`` "ab" maps domain A (config.channels_a) to B, "ba" the reverse.
    Thesis erratum E20: the upsampling blocks go Cin -> Cin/2 (256 -> 128 -> 64), not Cin -> 2Cin.
    """

    config_class = CycleGANConfig
    card_task = ("**Style matching** (DiscoGAN/CycleGAN generator): translate a shoe into a handbag of matching "
                 "style, or back.")
    card_architecture = "ResNet generator: 7x7 stem, 2 stride-2 convs, residual blocks, 2 transposed convs, tanh."
    _architectures = {
        "resnet": card_architecture,
        "unet": "U-Net generator: stride-2 conv encoder, bilinear-upsampling decoder with skip connections, tanh.",
        "discogan": "DiscoGAN encoder-decoder: stride-2 4x4 convs to a small code, as many 4x4 transposed convs "
                    "back, no skip connections, tanh.",
        "discogan_adain": "DiscoGAN encoder-decoder with a global style code: the mean and standard deviation of "
                          "every encoder level's features, mapped to a style vector that sets the scale and bias "
                          "of every decoder layer (AdaIN), tanh.",
        "discogan_flow": "DiscoGAN encoder-decoder with a global style code (AdaIN) and an appearance-flow head: "
                         "each output pixel blends a drawn colour (tanh) with a sample of the input object's "
                         "surface taken where the decoded flow points (bilinear), by a decoded mask.",
        "discogan_tile": "DiscoGAN encoder-decoder with a global style code (AdaIN) and a surface-tiling head: "
                         "each output pixel blends a drawn colour (tanh) with the input object's surface copied at "
                         "its own scale and mirrored into a box in the object's middle (plus a decoded flow), by a "
                         "decoded mask.",
    }
    card_dataset = _DATASET
    card_data_license = _LICENSE
    card_pipeline_tag = "image-to-image"
    extra_init_args = ("direction",)

    def __init__(self, config: CycleGANConfig | dict | None = None, direction: str = "ab") -> None:
        super().__init__()
        self.config: CycleGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        if direction not in ("ab", "ba"):
            raise ValueError(f"direction must be 'ab' or 'ba', got {direction!r}")
        self.direction = direction
        c = self.config
        self.c_in, self.c_out = (c.channels_a, c.channels_b) if direction == "ab" else (c.channels_b, c.channels_a)
        self.card_architecture = self._architectures[c.generator]
        side = 0 if direction == "ab" else 1  # this generator's entry of the per-direction options
        tile, clip = c.g_tile[side], c.g_shape_clip[side]
        if c.generator == "discogan_tile":
            self.card_architecture += (f" The box spans {tile:g} standard deviations of the source object's pixel "
                                       f"coordinates each way.")
        if c.g_shape_bank > 0:
            self.card_architecture += (f" It draws the outline of a given target-domain silhouette (read by the "
                                       f"encoder and added to every decoder layer), by default the first of the "
                                       f"{c.g_shape_bank} real silhouettes stored with the weights.")
            if clip:
                self.card_architecture += (" Pixels outside that silhouette take the source's background colour "
                                           "(the mean of its corners).")
        if c.generator == "unet":
            self.net: nn.Module = UNet(self.c_in, self.c_out, c.g_base_channels, c.g_down,
                                       stem_kernel=c.g_stem_kernel, norm=c.g_norm)
        elif c.generator == "discogan":
            self.net = _encoder_decoder(self.c_in, self.c_out, c.g_base_channels, c.g_down, c.g_norm)
        elif c.generator == "discogan_adain":
            self.net = StyleCodeEncoderDecoder(self.c_in, self.c_out, c.g_base_channels, c.g_down, c.g_norm,
                                               c.g_style_dim)
        elif c.generator in FLOW_GENERATORS:
            shape_in = c.g_shape_bank > 0
            if c.generator == "discogan_tile":
                self.net = SurfaceTile(self.c_in, self.c_out, c.g_base_channels, c.g_down, c.g_norm, c.g_style_dim,
                                       shape_in=shape_in, clip=clip, tile=float(tile))
            else:
                self.net = AppearanceFlowEncoderDecoder(self.c_in, self.c_out, c.g_base_channels, c.g_down, c.g_norm,
                                                        c.g_style_dim, shape_in=shape_in, clip=clip)
        else:
            k = c.g_stem_kernel
            layers: list[nn.Module] = [
                nn.Conv2d(self.c_in, c.g_base_channels, k, padding=k // 2, padding_mode="reflect"),
                make_norm(c.g_norm, c.g_base_channels), nn.ReLU(),
            ]
            ch = c.g_base_channels
            for _ in range(c.g_down):
                layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), make_norm(c.g_norm, 2 * ch), nn.ReLU()]
                ch *= 2
            layers += [ResnetBlock(ch, c.g_norm) for _ in range(c.g_residual_blocks)]
            for _ in range(c.g_down):
                layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                           make_norm(c.g_norm, ch // 2), nn.ReLU()]
                ch //= 2
            layers.append(nn.Conv2d(ch, self.c_out, k, padding=k // 2, padding_mode="reflect"))
            self.net = nn.Sequential(*layers)

        if c.g_shape_bank > 0:
            # Target-domain silhouettes (float masks in [0, 1]) stored with the weights, filled from real training
            # images (store_shapes); the first is the outline drawn when no silhouette is given.
            self.register_buffer("shape_bank", torch.zeros(c.g_shape_bank, 1, *c.image_size))
            self.register_buffer("shape_bank_filled", torch.zeros((), dtype=torch.int64))

    @property
    def takes_shape(self) -> bool:
        """Whether the generator draws a given silhouette (``config.g_shape_bank > 0``)."""
        return self.config.g_shape_bank > 0

    @torch.no_grad()
    def store_shapes(self, images: torch.Tensor) -> int:
        """Store the silhouettes (:func:`silhouette`) of real target-domain ``images`` in the free slots of the
        bank, in order; returns how many were stored (0 once the bank is full)."""
        if not self.takes_shape:
            raise ValueError("this generator stores no silhouettes (config.g_shape_bank is 0)")
        free = int(self.shape_bank.shape[0]) - int(self.shape_bank_filled)
        if free == 0:
            return 0
        new = silhouette(images[:free])
        n = int(new.shape[0])
        if n:
            start = int(self.shape_bank_filled)
            self.shape_bank[start:start + n] = new.to(self.shape_bank)
            self.shape_bank_filled += n
        return n

    def stored_shape(self, index: int = 0) -> torch.Tensor:
        """Silhouette ``index`` of the bank, ``(1, 1, H, W)``; a clear error for an empty slot or another index."""
        if not self.takes_shape:
            raise ValueError("this generator stores no silhouettes (config.g_shape_bank is 0)")
        filled = int(self.shape_bank_filled)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < max(filled, 1):
            raise ValueError(f"shape index: expected an int in [0, {max(filled - 1, 0)}] (the {filled} stored "
                             f"silhouettes), got {index!r}")
        return self.shape_bank[index:index + 1]

    def forward(self, x: torch.Tensor, shape: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(N, C, H, W)`` in [-1, 1] -> translation.  ``shape`` (silhouette-conditioned generators only):
        the outline to draw, ``(N or 1, 1, H, W)`` in [0, 1]; ``None`` draws the first stored silhouette."""
        h, w = self.config.image_size
        if x.ndim != 4 or x.shape[1] != self.c_in or tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"input: expected (N, {self.c_in}, {h}, {w}), got {tuple(x.shape)}")
        if self.takes_shape:
            shape = self.stored_shape(0) if shape is None else shape
            if shape.ndim != 4 or shape.shape[1] != 1 or tuple(shape.shape[-2:]) != (h, w) \
                    or shape.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"shape: expected a silhouette (N or 1, 1, {h}, {w}), got {tuple(shape.shape)}")
            return self.net(x, shape.expand(x.shape[0], -1, -1, -1))
        if shape is not None:
            raise ValueError("shape: this generator takes no silhouette (config.g_shape_bank is 0)")
        if isinstance(self.net, AppearanceFlowEncoderDecoder):
            return self.net(x)  # already a blend of images in [-1, 1]
        return torch.tanh(self.net(x))


def _encoder_stages(c_in: int, base: int, down: int, norm: str) -> tuple[list[list[nn.Module]], int]:
    """DiscoGAN's encoder as ``down`` stages of layers (4x4 conv, stride 2; norm after all but the first;
    LeakyReLU 0.2) and the channel count at ``H / 2**down``."""
    stages: list[list[nn.Module]] = [[nn.Conv2d(c_in, base, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]]
    ch = base
    for _ in range(down - 1):
        stages.append([nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), make_norm(norm, 2 * ch), nn.LeakyReLU(0.2)])
        ch *= 2
    return stages, ch


def _encoder_decoder(c_in: int, c_out: int, base: int, down: int, norm: str) -> nn.Sequential:
    """DiscoGAN's generator: ``down`` x (4x4 conv, stride 2) to ``H / 2**down``, then ``down`` x (4x4 transposed
    conv, stride 2) back; no activation after the last layer (``forward`` applies tanh)."""
    stages, ch = _encoder_stages(c_in, base, down, norm)
    layers: list[nn.Module] = [layer for stage in stages for layer in stage]
    for _ in range(down - 1):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1), make_norm(norm, ch // 2), nn.ReLU()]
        ch //= 2
    layers.append(nn.ConvTranspose2d(ch, c_out, 4, stride=2, padding=1))
    return nn.Sequential(*layers)


class StyleCodeEncoderDecoder(nn.Module):
    """DiscoGAN's encoder-decoder (:func:`_encoder_decoder`) plus a global style code.

    The encoder is DiscoGAN's; the mean and standard deviation over the image of every encoder level's
    activations (first-level means carry a flat object's colour, deeper levels' statistics its texture: dots,
    stripes, checks) go through a 2-layer MLP to a ``style_dim`` vector, which sets the scale and bias of every
    decoder layer's instance normalisation (AdaIN, as MUNIT's decoder).  The spatial code at ``H / 2**down``
    still decides the layout; the style vector, being global, can paint the colour and pattern onto whatever
    outline the decoder draws, which DiscoGAN's generator has to pass through its small spatial code.
    """

    def __init__(self, c_in: int, c_out: int, base: int, down: int, norm: str, style_dim: int,
                 shape_in: bool = False) -> None:
        super().__init__()
        # shape_in: the encoder also reads a silhouette channel (the outline to draw) after the image's channels.
        stages, ch = _encoder_stages(c_in + int(shape_in), base, down, norm)
        self.encoder = nn.ModuleList(nn.Sequential(*stage) for stage in stages)
        stats = sum(2 * stage[0].out_channels for stage in stages)  # mean and std of every level's channels
        self.style = nn.Sequential(nn.Linear(stats, style_dim), nn.LeakyReLU(0.2), nn.Linear(style_dim, style_dim))
        self.up = nn.ModuleList()
        self.adain = nn.ModuleList()
        # With shape_in, the silhouette also reaches every decoder layer directly (area-resized, a 3x3 conv added
        # to the layer's features before its normalisation, as SPADE lays out a segmentation map), so the outline
        # to draw does not have to pass through the small spatial code.
        self.shape_proj = nn.ModuleList() if shape_in else None
        for _ in range(down - 1):
            if self.shape_proj is not None:
                self.shape_proj.append(nn.Conv2d(1, ch // 2, 3, padding=1))
            self.up.append(nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1))
            adain = AdaIN(ch // 2, style_dim, equalized=False)
            nn.init.zeros_(adain.style.weight)  # starts as plain InstanceNorm: scale 1, bias 0
            nn.init.zeros_(adain.style.bias)
            self.adain.append(adain)
            ch //= 2
        self.head = nn.ConvTranspose2d(ch, c_out, 4, stride=2, padding=1)

    def style_code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(spatial code, style vector)`` of an image batch."""
        stats = []
        for layer in self.encoder:
            x = layer(x)
            flat = x.float().flatten(2)
            stats += [flat.mean(2), flat.std(2)]
        return x, self.style(torch.cat(stats, dim=1).to(x.dtype))

    def features(self, h: torch.Tensor, style: torch.Tensor, shape: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's last hidden layer (at ``H / 2``) for a spatial code under a style vector (and, for networks
        built with ``shape_in``, the silhouette ``(N, 1, H, W)`` to draw, on the [-1, 1] scale)."""
        for i, (up, adain) in enumerate(zip(self.up, self.adain)):
            u = up(h)
            if shape is not None and self.shape_proj is not None:
                u = u + self.shape_proj[i](F.interpolate(shape.to(u.dtype), size=u.shape[-2:], mode="area"))
            h = torch.relu(adain(u, style))
        return h

    def decode(self, h: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """A spatial code decoded under a style vector (before ``tanh``)."""
        return self.head(self.features(h, style))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.style_code(x))


class AppearanceFlowEncoderDecoder(StyleCodeEncoderDecoder):
    """:class:`StyleCodeEncoderDecoder` whose output copies the input object's surface where it can.

    A second head on the decoder's last layer gives, per output pixel, a flow ``(dx, dy)`` and a mask logit.  The
    pixel is ``m * x(p + flow) + (1 - m) * tanh(drawn)``: a bilinear sample of the input at ``p + flow`` blended
    with the colour the ordinary head draws (backgrounds, soles, handles).  ``p`` is a fixed sampling grid inside
    the input *object*: the output frame laid over the object's centre of mass, scaled to ``spread`` times its
    extent along each axis (object pixels: :func:`object_mask`; the extent of a uniform rectangle is ``sqrt(3)``
    standard deviations of its pixel coordinates).  Without that grid, output pixels over a plain background
    would sample the flat background, which gives the flow no gradient towards the object.  The flow and mask
    head starts at zero: at initialisation every output pixel is half the drawn colour and half a sample of the
    object's middle.

    A translation that copies the source's surface keeps its colour by construction, and its pattern as far as
    the flow keeps neighbouring samples together, where a decoder that redraws them from a code tends to draw one
    generic texture; it needs as many output as input channels.
    """

    spread: float = 0.6

    def __init__(self, c_in: int, c_out: int, base: int, down: int, norm: str, style_dim: int,
                 shape_in: bool = False, clip: bool = False) -> None:
        if c_in != c_out:
            raise ValueError(f"appearance flow copies input pixels and needs as many output as input channels, "
                             f"got {c_in} -> {c_out}")
        super().__init__(c_in, c_out, base, down, norm, style_dim, shape_in)
        #: With a given silhouette: pixels outside it take the source's background colour (``g_shape_clip``).
        self.clip = bool(clip)
        self.flow_head = nn.ConvTranspose2d(self.head.in_channels, 3, 4, stride=2, padding=1)
        nn.init.zeros_(self.flow_head.weight)
        nn.init.zeros_(self.flow_head.bias)

    @torch.no_grad()
    def object_grid(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, H, W, 2)`` sampling grid (``grid_sample``'s ``(x, y)`` in [-1, 1], pixel centres) of the output
        frame laid over the middle of each input's object."""
        _, _, h, w = x.shape
        (cx, cy), (sx, sy) = object_moments(x)
        sy, sx = sy.clamp(min=1.0 / h), sx.clamp(min=1.0 / w)
        ys, xs = pixel_centres(h, x.device), pixel_centres(w, x.device)
        k = self.spread * 3 ** 0.5
        return _frame_grid(cx[:, None] + k * sx[:, None] * xs[None, :], cy[:, None] + k * sy[:, None] * ys[None, :])

    def sampling_maps(self, x: torch.Tensor, flow: torch.Tensor, style: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(map, read)``, each ``(N, H, W, 2)``: the sampling map (:meth:`object_grid` plus the decoded ``flow``),
        on which :func:`sampling_rigidity` is measured, and where it reads the input: the map itself here;
        :class:`SurfaceTile` folds it into the object (``style``: the style vector)."""
        grid = self.object_grid(x).to(flow.dtype) + flow[:, :2].permute(0, 2, 3, 1)
        return grid, grid

    def parts(self, x: torch.Tensor, shape: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(drawn, sampled, mask)``: the drawn image (tanh), the input sampled along the flow, and the share
        ``m`` in [0, 1] of the sample in each output pixel ``(N, 1, H, W)``.  ``shape``: the silhouette to draw
        ``(N, 1, H, W)`` in [0, 1], read by the encoder beside the image (networks built with ``shape_in``)."""
        signed = None if shape is None else shape.to(x.dtype) * 2 - 1  # the silhouette on the image's scale
        code, style = self.style_code(x if signed is None else torch.cat([x, signed], dim=1))
        h = self.features(code, style, signed)
        drawn = torch.tanh(self.head(h))
        flow = self.flow_head(h)
        grid, read = self.sampling_maps(x, flow, style)
        sampled = F.grid_sample(x, read, mode="bilinear", padding_mode="border", align_corners=False)
        m = torch.sigmoid(flow[:, 2:3])
        if torch.is_grad_enabled():  # for training losses on the sampling map (sampling_rigidity) and drawn layer
            self.last_sampling = (grid, m)
            self.last_drawn = drawn
        return drawn, sampled, m

    def forward(self, x: torch.Tensor, shape: torch.Tensor | None = None) -> torch.Tensor:
        drawn, sampled, m = self.parts(x, shape)
        if shape is None:
            return m * sampled + (1 - m) * drawn
        shape = shape.to(m.dtype)
        out = m * shape * sampled + (1 - m * shape) * drawn  # the source's surface is laid inside the outline only
        if self.clip:  # and nothing is drawn outside it
            out = shape * out + (1 - shape) * background_colour(x).to(out.dtype)
        return out


class SurfaceTile(AppearanceFlowEncoderDecoder):
    """:class:`AppearanceFlowEncoderDecoder` whose sampling map starts as a copy of the input at its own scale,
    folded into the middle of the object.

    The map is a translation at scale 1 that lays the output frame's centre on the object's centre of mass (plus
    the learned flow); it is then mirrored back, like a kaleidoscope, into the box of ``tile`` standard deviations
    of the object's pixel coordinates around that centre.  Every output pixel therefore reads the object's own
    surface, undistorted: stripes keep their width and direction, dots their size, checks their period, whatever
    outline the drawn mask gives the result, where the object-frame grid stretches the surface over the output
    frame and any learned distortion scrambles it.  The folds are the only seams.  :func:`sampling_rigidity` is
    measured on the map before folding, where a pure copy costs nothing."""

    #: The box's half size, in standard deviations of the object's pixel coordinates (``CycleGANConfig.g_tile``; set
    #: by the constructor).
    tile: float
    #: How far the style code may move the box from the object's centre of mass, in standard deviations of the
    #: object's pixel coordinates: away from a clasp, a logo or a sole that sits in the middle of some objects.
    reach: float = 1.0

    def __init__(self, c_in: int, c_out: int, base: int, down: int, norm: str, style_dim: int,
                 shape_in: bool = False, clip: bool = False, tile: float = 0.5) -> None:
        super().__init__(c_in, c_out, base, down, norm, style_dim, shape_in, clip)
        self.tile = float(tile)
        self.box_head = nn.Linear(style_dim, 2)  # starts at zero: the box sits on the centre of mass
        nn.init.zeros_(self.box_head.weight)
        nn.init.zeros_(self.box_head.bias)

    @torch.no_grad()
    def object_grid(self, x: torch.Tensor) -> torch.Tensor:
        return self._copy_grid(x, self._box(x)[0])

    @staticmethod
    @torch.no_grad()
    def _copy_grid(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """The output frame's pixel centres moved by the whole pixels nearest to ``centre`` ``(N, 2)``: a copy of
        the input at its own scale, pixel centres on pixel centres."""
        _, _, h, w = x.shape
        pixels = centre.new_tensor([w / 2.0, h / 2.0])
        centre = centre.mul(pixels).round().div(pixels)
        return _frame_grid(centre[:, 0, None] + pixel_centres(w, x.device)[None, :],
                           centre[:, 1, None] + pixel_centres(h, x.device)[None, :])

    @torch.no_grad()
    def _box(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(centre, half size)``, each ``(N, 2)`` in ``(x, y)`` grid coordinates, of the box the map folds into:
        ``tile`` standard deviations of the object pixels' coordinates around their mean, at least one pixel."""
        _, _, h, w = x.shape
        (cx, cy), (sx, sy) = object_moments(x)
        half = torch.stack([(self.tile * sx).clamp(min=1.0 / w), (self.tile * sy).clamp(min=1.0 / h)], dim=1)
        return torch.stack([cx, cy], dim=1), half

    def sampling_maps(self, x: torch.Tensor, flow: torch.Tensor, style: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, h, w = x.shape
        centre, half = self._box(x)
        grid = self._copy_grid(x, centre).to(flow.dtype) + flow[:, :2].permute(0, 2, 3, 1)
        centre = centre + self.reach * torch.tanh(self.box_head(style)) * half / self.tile
        # The box's edges on pixel boundaries (straight-through for the shift's gradient), so that the mirror
        # images of pixel centres are pixel centres and a whole-pixel copy stays sharp.
        pixels = centre.new_tensor([w / 2.0, h / 2.0])
        lo_px = _snap((centre - half + 1) * pixels)
        lo, hi = lo_px / pixels - 1, torch.maximum(_snap((centre + half + 1) * pixels), lo_px + 1) / pixels - 1
        lo, size = lo[:, None, None, :].to(grid.dtype), (hi - lo)[:, None, None, :].to(grid.dtype)
        t = torch.remainder((grid - lo) / size, 2.0)  # position in the mirrored period [0, 2)
        return grid, lo + size * torch.where(t > 1, 2 - t, t)


def _snap(v: torch.Tensor) -> torch.Tensor:
    """``v`` rounded to whole numbers, with the gradient of ``v`` (straight-through)."""
    return v + (v.round() - v).detach()


def sampling_rigidity(grid: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """How far an appearance flow's sampling map is from a translation at scale 1, in input pixels per output pixel.

    ``grid`` ``(N, H, W, 2)`` is where each output pixel samples the input (``grid_sample`` coordinates) and
    ``share`` ``(N, 1, H, W)`` the weight of that sample in the pixel.  Between horizontal neighbours the sampling
    point should move one input pixel to the right, between vertical ones one pixel down: the mean L1 distance of
    those steps from ``(1, 0)`` and ``(0, 1)``, weighted by both pixels' (detached) shares.  Zero where the output
    copies an undistorted piece of the input, so the pattern keeps its scale and orientation; an L1 distance lets
    the map jump between pieces (seams) where the outline needs it."""
    n, h, w, _ = grid.shape
    pixels = grid.new_tensor([w / 2.0, h / 2.0])
    step_x = (grid[:, :, 1:] - grid[:, :, :-1]) * pixels - grid.new_tensor([1.0, 0.0])
    step_y = (grid[:, 1:] - grid[:, :-1]) * pixels - grid.new_tensor([0.0, 1.0])
    s = share[:, 0].detach()
    wx, wy = s[:, :, 1:] * s[:, :, :-1], s[:, 1:] * s[:, :-1]
    return ((step_x.abs().sum(-1) * wx).sum() / wx.sum().clamp(min=1e-6)
            + (step_y.abs().sum(-1) * wy).sum() / wy.sum().clamp(min=1e-6))


class CycleGANDiscriminator(HubModel, tags=["image-to-image", "cyclegan", "discogan", "discriminator"]):
    """Unconditional PatchGAN of one domain: ``forward(x)`` -> (N, 1, H/16, W/16) raw LSGAN scores.

    Thesis erratum E11: with base 64 the last projection is PJ 512->1 (1.55M parameters).
    """

    config_class = CycleGANConfig
    card_task = "**Style matching** (DiscoGAN/CycleGAN): real/fake PatchGAN discriminator of one domain."
    card_architecture = "PatchGAN: stride-2 conv + InstanceNorm + ReLU blocks, spectrally normalised 1x1 head."
    _norm_names = {"instance": "InstanceNorm", "batch": "BatchNorm", "none": "no norm"}
    card_dataset = _DATASET
    card_data_license = _LICENSE
    extra_init_args = ("domain",)

    def __init__(self, config: CycleGANConfig | dict | None = None, domain: str = "a") -> None:
        super().__init__()
        self.config: CycleGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        if domain not in ("a", "b"):
            raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
        self.domain = domain
        c = self.config
        self.c_in = c.channels_a if domain == "a" else c.channels_b
        act = f"LeakyReLU {c.d_negative_slope:g}" if c.d_negative_slope > 0 else "ReLU"
        self.card_architecture = (f"PatchGAN: {c.d_blocks} stride-2 conv + {self._norm_names[c.d_norm]} + {act} "
                                  "blocks, spectrally normalised 1x1 head.")
        self.net = PatchGANDiscriminator(self.c_in, c.d_base_channels, c.d_blocks, uf_stem=False,
                                         negative_slope=c.d_negative_slope, norm=c.d_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.config.image_size
        if x.ndim != 4 or x.shape[1] != self.c_in or tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"input: expected (N, {self.c_in}, {h}, {w}), got {tuple(x.shape)}")
        return self.net(x)
