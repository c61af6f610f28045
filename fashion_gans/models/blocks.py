"""Building blocks shared by the four model families.

U-Net contracting/expanding blocks and the FC bottleneck (PGPG, CycleGAN U-Net option), the PatchGAN
discriminator (PGPG, PixelDTGAN, CycleGAN), the ResNet block (CycleGAN), and the style-based pieces
(equalised-LR layers, PixelNorm, AdaIN, noise injection, minibatch standard deviation, modulated conv).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "make_norm",
    "UNetContractingBlock",
    "UNetExpandingBlock",
    "FCBottleneck",
    "UNet",
    "PatchGANDiscriminator",
    "ResnetBlock",
    "EqualizedLinear",
    "EqualizedConv2d",
    "PixelNorm",
    "AdaIN",
    "NoiseInjection",
    "MinibatchStd",
    "ModulatedConv2d",
    "count_parameters",
]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (buffers such as spectral-norm vectors or fixed noise excluded)."""
    return sum(p.numel() for p in module.parameters())


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


class _SamePad2(nn.Module):
    """2x2 conv with 'same' output size (one extra row/column of zeros at the bottom/right)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class UNetContractingBlock(nn.Module):
    """[CONV3 Cin->2Cin -> norm -> (DO) -> LReLU0.2 -> CONV3 2Cin->2Cin -> norm -> (DO) -> LReLU0.2 -> POOL2].

    Max-pool uses ``ceil_mode`` so odd sizes (e.g. 176 -> 88 -> 44 -> 22 -> 11 -> 6) work.
    """

    def __init__(self, c_in: int, norm: str = "batch", dropout: float = 0.0) -> None:
        super().__init__()
        c_out = 2 * c_in
        layers: list[nn.Module] = []
        for a, b in ((c_in, c_out), (c_out, c_out)):
            layers += [nn.Conv2d(a, b, 3, padding=1), make_norm(norm, b)]
            if dropout > 0:
                layers.append(nn.Dropout2d(dropout))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNetExpandingBlock(nn.Module):
    """[UP2x (bilinear) -> CONV2 Cin->Cin/2 -> CONCAT skip -> CONV3 Cin->Cin/2 -> norm -> LReLU0.2
    -> CONV2 Cin/2->Cin/2 -> norm -> LReLU0.2].

    The upsampling goes to the skip's exact size, so non-power-of-two sizes work.
    """

    def __init__(self, c_in: int, norm: str = "batch") -> None:
        super().__init__()
        half = c_in // 2
        self.reduce = _SamePad2(c_in, half)
        self.conv3 = nn.Conv2d(c_in, half, 3, padding=1)
        self.norm1 = make_norm(norm, half)
        self.conv2 = _SamePad2(half, half)
        self.norm2 = make_norm(norm, half)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([self.reduce(x), skip], dim=1)
        x = self.act(self.norm1(self.conv3(x)))
        return self.act(self.norm2(self.conv2(x)))


class FCBottleneck(nn.Module):
    """PJ C->B -> FLATTEN -> FC -> LReLU0.2 -> UNFLATTEN -> PJ B->C, so information can cross the image.

    The FC size is B * h * w of the bottleneck feature map (derived from the input shape, square or not).
    """

    def __init__(self, channels: int, bottleneck_channels: int, spatial: tuple[int, int]) -> None:
        super().__init__()
        self.spatial = tuple(spatial)
        self.bottleneck_channels = bottleneck_channels
        n = bottleneck_channels * spatial[0] * spatial[1]
        self.down = nn.Conv2d(channels, bottleneck_channels, 1)
        self.fc = nn.Linear(n, n)
        self.act = nn.LeakyReLU(0.2)
        self.up = nn.Conv2d(bottleneck_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.spatial:
            raise ValueError(
                f"FC bottleneck expects a {self.spatial} feature map (built for that input size), got "
                f"{tuple(x.shape[-2:])}; the input image size does not match the configuration"
            )
        y = self.down(x)
        # LReLU after the FC as in the thesis listing (the thesis code had no activation here).
        y = self.act(self.fc(y.flatten(1))).view(y.shape)
        return self.up(y)


class UNet(nn.Module):
    """U-Net: UF stem -> n contracting blocks -> (optional FC bottleneck) -> n expanding blocks -> PJ out.

    Skips are the stem output and the outputs of the contracting blocks (as in pix2pix-style course U-Nets
    the thesis built on).  No output activation: callers apply tanh where they need it.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        base_channels: int,
        n_blocks: int,
        *,
        stem_kernel: int = 1,
        norm: str = "batch",
        dropout: float = 0.0,
        bottleneck_channels: int = 0,
        bottleneck_spatial: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(c_in, base_channels, stem_kernel, padding=stem_kernel // 2,
                              padding_mode="reflect" if stem_kernel > 1 else "zeros")
        # Dropout only in the first half of the encoder (thesis text; the code used i < n/2).
        self.down = nn.ModuleList(
            UNetContractingBlock(base_channels * 2**i, norm, dropout if i < n_blocks / 2 else 0.0)
            for i in range(n_blocks)
        )
        c_bottom = base_channels * 2**n_blocks
        self.bottleneck: nn.Module = nn.Identity()
        if bottleneck_channels:
            assert bottleneck_spatial is not None
            self.bottleneck = FCBottleneck(c_bottom, bottleneck_channels, bottleneck_spatial)
        self.up = nn.ModuleList(UNetExpandingBlock(c_bottom // 2**i, norm) for i in range(n_blocks))
        self.head = nn.Conv2d(base_channels, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        x = self.bottleneck(x)
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)


class PatchGANDiscriminator(nn.Module):
    """PatchGAN: optional UF stem, ``n_blocks`` x [CONV3 stride 2 (reflect pad) -> IN -> ReLU], PJ -> 1.

    The first stride-2 conv has no norm; ``norm`` picks the others' ("instance", the thesis' non-affine
    InstanceNorm; "batch"; or "none").  Spectral norm is on the final 1x1 projection only (thesis §3.0).
    With ``uf_stem=True`` (PGPG): UF in->base (1x1), then blocks base -> base*2**n_blocks.
    With ``uf_stem=False`` (PixelDTGAN, CycleGAN): the first conv in->base is block 1, blocks go
    base -> base*2**(n_blocks-1) (thesis erratum E11).
    Output: a raw score map (LSGAN: no sigmoid) of size H/2**n_blocks x W/2**n_blocks.
    """

    def __init__(
        self,
        c_in: int,
        base_channels: int,
        n_blocks: int,
        *,
        uf_stem: bool,
        negative_slope: float = 0.0,
        use_spectral_norm: bool = True,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        if norm not in ("instance", "batch", "none"):
            raise ValueError(f"PatchGANDiscriminator: unknown norm {norm!r}")
        layers: list[nn.Module] = []
        if uf_stem:
            layers.append(nn.Conv2d(c_in, base_channels, 1))
            c = base_channels
            outs = [base_channels * 2 ** (i + 1) for i in range(n_blocks)]
        else:
            c = c_in
            outs = [base_channels * 2**i for i in range(n_blocks)]
        for i, c_out in enumerate(outs):
            layers.append(nn.Conv2d(c, c_out, 3, stride=2, padding=1, padding_mode="reflect"))
            if i > 0 and norm != "none":
                layers.append(nn.InstanceNorm2d(c_out) if norm == "instance" else nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(negative_slope) if negative_slope > 0 else nn.ReLU())
            c = c_out
        self.body = nn.Sequential(*layers)
        proj = nn.Conv2d(c, 1, 1)
        self.proj = spectral_norm(proj) if use_spectral_norm else proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.body(x))


class ResnetBlock(nn.Module):
    """[CONV3 -> IN -> ReLU -> CONV3 -> IN] + input (reflect padding)."""

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
            make_norm(norm, channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
            make_norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


# ------------------------------------------------------------------------------------------ style-based
class EqualizedLinear(nn.Module):
    """Linear layer with an optional equalised learning rate (weights ~ N(0, 1/lr_mul), scaled at run time).

    With ``equalized=False`` the same parameters are initialised at the He-scaled values and used as is.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, equalized: bool = True, gain: float = 1.0) -> None:
        super().__init__()
        he = gain / math.sqrt(in_features)
        if equalized:
            self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
            self.w_scale, self.b_scale = he * lr_mul, lr_mul
        else:
            self.weight = nn.Parameter(torch.randn(out_features, in_features) * he)
            self.w_scale, self.b_scale = 1.0, 1.0
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / self.b_scale)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.b_scale if self.bias is not None else None
        return F.linear(x, self.weight * self.w_scale, b)


class EqualizedConv2d(nn.Module):
    """Conv2d ('same' padding) with an optional equalised learning rate."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, *, bias: bool = True, equalized: bool = True,
                 gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        he = gain / math.sqrt(c_in * kernel_size * kernel_size)
        if equalized:
            self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel_size, kernel_size))
            self.w_scale = he
        else:
            self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel_size, kernel_size) * he)
            self.w_scale = 1.0
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.w_scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Normalise each feature vector (dim 1) to unit average square."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class AdaIN(nn.Module):
    """Adaptive instance norm: IN(x) * (1 + scale(w)) + shift(w), with one affine map w -> (scale, shift)."""

    def __init__(self, channels: int, w_dim: int, equalized: bool = True) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.style = EqualizedLinear(w_dim, 2 * channels, equalized=equalized)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, shift = self.style(w)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + scale) + shift


NOISE_MODES = ("random", "const", "none")


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled per channel (scale starts at 0).

    ``noise_mode``: "random" draws fresh noise, "const" uses a fixed buffer (same w -> same image),
    "none" adds nothing.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return x + self.weight * noise


class MinibatchStd(nn.Module):
    """Minibatch standard deviation: appends one channel with the mean std over groups of samples.

    Works on any batch size (the group shrinks to a divisor of the batch).  No in-place ops on the input
    (the thesis code subtracted the mean in place on a view of its input).
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        y = x.reshape(g, n // g, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (n/g, c, h, w)
        y = y.mean(dim=(1, 2, 3))  # (n/g,)
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated (and optionally demodulated) convolution.

    ``upsample=True`` doubles the resolution (bilinear) before the convolution.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, w_dim: int, *, demodulate: bool = True,
                 upsample: bool = False, equalized: bool = True) -> None:
        super().__init__()
        self.c_in, self.c_out, self.k = c_in, c_out, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.affine = EqualizedLinear(w_dim, c_in, bias_init=1.0, equalized=equalized)
        he = 1.0 / math.sqrt(c_in * kernel_size * kernel_size)
        if equalized:
            self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel_size, kernel_size))
            self.w_scale = he
        else:
            self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel_size, kernel_size) * he)
            self.w_scale = 1.0
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # StyleGAN2's non-fused form: scale the input channels by the style, convolve with the shared weight,
        # scale the output channels by the demodulation coefficients.  It equals convolving every sample with
        # its own modulated weight (a grouped convolution over the batch) and is several times faster on CPUs.
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        s = self.affine(w)  # (n, c_in)
        weight = self.weight * self.w_scale
        out = F.conv2d(x * s[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.k // 2)
        if self.demodulate:
            # sum over c_in and the kernel of (W * s)^2, per sample and output channel
            demod = torch.rsqrt(s.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)  # (n, c_out)
            out = out * demod[:, :, None, None].to(out.dtype)
        return out + self.bias[None, :, None, None].to(out.dtype)
