"""StyleGAN (v1, progressive growing; thesis §3.4) and StyleGAN2 (modulated convs, skip G, residual D).

Both generators share one API:

* ``G(z)`` or ``G(w=w)``: ``w`` is (N, w_dim) (broadcast to every layer) or (N, num_ws, w_dim) (per-layer
  styles, for style mixing).
* ``psi`` / ``truncation_cutoff``: truncation in W around the tracked average ``w_avg``
  (``w_avg + psi * (w - w_avg)``, on the first ``truncation_cutoff`` layers or all).
* ``G.mapping(z, ...)`` returns per-layer styles ``ws``; ``G.mix(ws_a, ws_b, k)`` takes layers ``< k``
  (coarse) from ``ws_a`` and ``>= k`` (fine) from ``ws_b``; ``G.synthesis(ws, ...)`` renders them.
* ``noise_mode``: "random" (fresh noise), "const" (fixed noise buffers: same w -> same image), "none".
* ``update_w_avg=True`` (training) tracks the running mean of w with ``config.w_avg_beta``.

StyleGAN v1 also takes ``level`` (0 = 4x4, ..., num_resolutions-1 = full size) and ``alpha`` (fade-in of
the newest block, 0 -> 1) in both G and D; :func:`fade_in_alpha` is the thesis' sigmoid-shaped schedule.

Fixes of the thesis code (which never converged): one affine map per AdaIN (the code used two 3-layer
MLPs per AdaIN), truncation in W around the tracked ``w_avg`` (the code truncated a normal in Z), per-layer
style mixing (absent), equalised learning rate with N(0, 1) init (the code used a naive N(0, 0.05) init and no
equalised LR), and a minibatch-std layer that does not modify its input in place.

Thesis erratum E14: the discriminator ends in a linear critic output (no sigmoid with WGAN-GP) and its FC
input size derives from the shapes (512 x 4 x 4 + the minibatch-std channel handled by a conv first),
not the listed 4608.  Thesis erratum E17: the generator is 58.5M parameters (Table 16's "G1 276M,
G2 117.4M" is a PoseGAN leftover).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    AdaIN,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStd,
    ModulatedConv2d,
    NoiseInjection,
    PixelNorm,
)
from .config import ConfigError, StyleGANConfig
from .hub import DEEPFASHION_LICENSE, HubModel

__all__ = [
    "MappingNetwork",
    "StyleGANGenerator",
    "StyleGANDiscriminator",
    "StyleGAN2Generator",
    "StyleGAN2Discriminator",
    "fade_in_alpha",
]

_DATASET = ("DeepFashion Fashion Synthesis Benchmark (FISB, background-filtered), Fashion-MNIST, or the "
            "fashion-gans synthetic fashion world rendered in the same format")
SQRT2 = math.sqrt(2.0)


def fade_in_alpha(step: int, total_steps: int, sharpness: float = 10.0) -> float:
    """Thesis fade-in curve (deviation 3): a sigmoid over ``total_steps``, rescaled to run from 0 to 1."""
    if total_steps <= 0 or step >= total_steps:
        return 1.0
    if step <= 0:
        return 0.0

    def sig(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-(sharpness / total_steps) * (x - total_steps / 2)))

    lo, hi = sig(0.0), sig(float(total_steps))
    return (sig(float(step)) - lo) / (hi - lo)


class MappingNetwork(nn.Module):
    """z -> PixelNorm -> [FC -> act] x n_layers -> w."""

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        c = config
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(c.mapping_layers):
            layers.append(EqualizedLinear(c.z_dim if i == 0 else c.w_dim, c.w_dim, lr_mul=c.mapping_lr_mul,
                                          equalized=c.equalized_lr, gain=SQRT2))
            layers.append(nn.ReLU() if c.mapping_activation == "relu" else nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _StyleGeneratorBase(HubModel):
    config_class = StyleGANConfig
    card_dataset = _DATASET
    card_data_license = DEEPFASHION_LICENSE
    card_pipeline_tag = "unconditional-image-generation"
    version = 1

    def _init_base(self, config: StyleGANConfig | dict | None) -> StyleGANConfig:
        cfg: StyleGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        if cfg.version != self.version:
            raise ConfigError(f"{type(self).__name__} needs StyleGANConfig.version={self.version}, got {cfg.version}")
        self.config = cfg
        self.num_ws = cfg.num_ws
        self.mapping_net = MappingNetwork(cfg)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        return cfg

    # ------------------------------------------------------------------ latent API
    def mapping(self, z: torch.Tensor, *, psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:
        """z (N, z_dim) -> per-layer styles (N, num_ws, w_dim), truncated when ``psi != 1``."""
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z: expected (N, {self.config.z_dim}), got {tuple(z.shape)}")
        w = self.mapping_net(z)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.config.w_avg_beta))
        return self.truncate(w[:, None, :].repeat(1, self.num_ws, 1), psi, truncation_cutoff)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """(N, w_dim) -> (N, num_ws, w_dim); per-layer input is checked and returned as is."""
        if w.ndim == 2 and w.shape[1] == self.config.w_dim:
            return w[:, None, :].repeat(1, self.num_ws, 1)
        if w.ndim == 3 and w.shape[1:] == (self.num_ws, self.config.w_dim):
            return w
        raise ValueError(f"w: expected (N, {self.config.w_dim}) or (N, {self.num_ws}, {self.config.w_dim}), "
                         f"got {tuple(w.shape)}")

    def truncate(self, ws: torch.Tensor, psi: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """Truncation trick in W: ``w_avg + psi * (w - w_avg)`` on layers ``< truncation_cutoff`` (all if None)."""
        ws = self.broadcast(ws)
        if psi == 1.0:
            return ws
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        out = ws.clone()
        out[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return out

    @staticmethod
    def mix(ws_coarse: torch.Tensor, ws_fine: torch.Tensor, crossover: int) -> torch.Tensor:
        """Style mixing: layers ``< crossover`` from ``ws_coarse``, the rest from ``ws_fine``."""
        if ws_coarse.shape != ws_fine.shape or ws_coarse.ndim != 3:
            raise ValueError(f"mix: expected two (N, num_ws, w_dim) tensors, got {tuple(ws_coarse.shape)} and "
                             f"{tuple(ws_fine.shape)}")
        out = ws_fine.clone()
        out[:, :crossover] = ws_coarse[:, :crossover]
        return out

    def forward(self, z: torch.Tensor | None = None, *, w: torch.Tensor | None = None, psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random", update_w_avg: bool = False,
                **synthesis_kwargs) -> torch.Tensor:
        """Generate images from ``z`` or from ``w`` (exactly one); images are linear (no tanh, as the thesis)."""
        if (z is None) == (w is None):
            raise ValueError("pass exactly one of z or w")
        if z is not None:
            ws = self.mapping(z, psi=psi, truncation_cutoff=truncation_cutoff, update_w_avg=update_w_avg)
        else:
            ws = self.truncate(w, psi, truncation_cutoff)  # type: ignore[arg-type]
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random", **kwargs) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- v1
class _V1Layer(nn.Module):
    """(UP2x ->) CONV3 -> InjectNoise -> LReLU0.2 -> AdaIN."""

    def __init__(self, c_in: int, c_out: int, resolution: int, cfg: StyleGANConfig, upsample: bool) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = EqualizedConv2d(c_in, c_out, 3, equalized=cfg.equalized_lr)
        self.noise = NoiseInjection(c_out, resolution)
        self.adain = AdaIN(c_out, cfg.w_dim, cfg.equalized_lr)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.leaky_relu(self.noise(self.conv(x), noise_mode), 0.2)
        return self.adain(x, w)


class StyleGANGenerator(_StyleGeneratorBase, tags=["stylegan", "unconditional-image-generation"]):
    """StyleGAN v1 generator with progressive growing.

    Synthesis: CONST -> noise -> AdaIN -> CONV3 -> noise -> AdaIN (4x4), then per resolution
    [UP2x -> CONV3 -> noise -> AdaIN -> CONV3 -> noise -> AdaIN], a 1x1 toRGB at every resolution.
    Styles: two per resolution (``num_ws = 2 * num_resolutions``); layer 0/1 are 4x4, 2/3 are 8x8, ...
    """

    card_task = "**Fashion image generation** (StyleGAN v1 generator): seed(s) -> new fashion photos."
    card_architecture = ("Mapping network (4 FC), learned constant, noise inputs, AdaIN, progressive growing with "
                         "fade-in; truncation in W and per-layer style mixing.")
    version = 1

    def __init__(self, config: StyleGANConfig | dict | None = None) -> None:
        super().__init__()
        c = self._init_base(config)
        ch = c.channels
        self.const = nn.Parameter(torch.randn(1, c.const_channels, 4, 4))
        self.const_noise = NoiseInjection(c.const_channels, 4)
        self.const_adain = AdaIN(c.const_channels, c.w_dim, c.equalized_lr)
        self.layers = nn.ModuleList([_V1Layer(c.const_channels, ch[0], 4, c, upsample=False)])
        for i in range(1, c.num_resolutions):
            res = 4 * 2**i
            self.layers.append(_V1Layer(ch[i - 1], ch[i], res, c, upsample=True))
            self.layers.append(_V1Layer(ch[i], ch[i], res, c, upsample=False))
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(ch[i], c.image_channels, 1, equalized=c.equalized_lr, gain=1.0)
            for i in range(c.num_resolutions)
        )

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random", level: int | None = None,
                  alpha: float = 1.0) -> torch.Tensor:
        """Render ``ws`` at resolution ``4 * 2**level`` (full size by default), fading in the newest block."""
        c = self.config
        ws = self.broadcast(ws)
        level = c.num_resolutions - 1 if level is None else int(level)
        if not 0 <= level < c.num_resolutions:
            raise ValueError(f"level must be in [0, {c.num_resolutions - 1}], got {level}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.const_adain(F.leaky_relu(self.const_noise(x, noise_mode), 0.2), ws[:, 0])
        x = self.layers[0](x, ws[:, 1], noise_mode)
        prev = x
        for i in range(1, level + 1):
            prev = x
            x = self.layers[2 * i - 1](x, ws[:, 2 * i], noise_mode)
            x = self.layers[2 * i](x, ws[:, 2 * i + 1], noise_mode)
        rgb = self.to_rgb[level](x)
        if level > 0 and alpha < 1.0:
            old = F.interpolate(self.to_rgb[level - 1](prev), scale_factor=2, mode="bilinear", align_corners=False)
            rgb = torch.lerp(old, rgb, alpha)
        return rgb


class _DiscriminatorEpilogue(nn.Module):
    """4x4: MinibatchStd -> CONV3 (C+1)->C -> LReLU -> FC C*16->C -> LReLU -> FC C->1 (linear critic, E14)."""

    def __init__(self, channels: int, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.mbstd = MinibatchStd(cfg.mbstd_group)
        self.conv = EqualizedConv2d(channels + 1, channels, 3, equalized=cfg.equalized_lr)
        self.fc = EqualizedLinear(channels * 16, channels, equalized=cfg.equalized_lr, gain=SQRT2)
        self.out = EqualizedLinear(channels, 1, equalized=cfg.equalized_lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        x = F.leaky_relu(self.fc(x.flatten(1)), 0.2)
        return self.out(x)


def _check_images(cfg: StyleGANConfig, img: torch.Tensor, resolution: int) -> None:
    if img.ndim != 4 or img.shape[1] != cfg.image_channels or tuple(img.shape[-2:]) != (resolution, resolution):
        raise ValueError(f"images: expected (N, {cfg.image_channels}, {resolution}, {resolution}), "
                         f"got {tuple(img.shape)}")


class StyleGANDiscriminator(HubModel, tags=["stylegan", "discriminator"]):
    """StyleGAN v1 (ProGAN-style) critic with progressive growing: ``forward(images, level=None, alpha=1.0)``.

    From-RGB (1x1) at every resolution; per resolution [CONV3 Cin->Cout -> LReLU -> CONV3 -> LReLU -> AVGPOOL2]
    with channels doubling as the resolution halves (thesis: 16 at 128 px -> 512 at 4x4); the 4x4 epilogue
    has minibatch std.  The thesis states 11.3M parameters without describing the from-RGB and final layers;
    this layout gives 11.28M.
    """

    config_class = StyleGANConfig
    card_task = "**Fashion image generation** (StyleGAN v1): progressive-growing critic (WGAN-GP)."
    card_architecture = "ProGAN-style critic with from-RGB per resolution, minibatch std, linear output."
    card_dataset = _DATASET
    card_data_license = DEEPFASHION_LICENSE

    def __init__(self, config: StyleGANConfig | dict | None = None) -> None:
        super().__init__()
        cfg: StyleGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        if cfg.version != 1:
            raise ConfigError(f"StyleGANDiscriminator needs StyleGANConfig.version=1, got {cfg.version}")
        self.config = cfg
        d = cfg.d_channels
        n = cfg.num_resolutions
        self.from_rgb = nn.ModuleList(
            EqualizedConv2d(cfg.image_channels, d[i], 1, equalized=cfg.equalized_lr) for i in range(n)
        )
        self.blocks = nn.ModuleList([nn.Identity()])
        for i in range(1, n):
            self.blocks.append(nn.Sequential(
                EqualizedConv2d(d[i], d[i - 1], 3, equalized=cfg.equalized_lr), nn.LeakyReLU(0.2),
                EqualizedConv2d(d[i - 1], d[i - 1], 3, equalized=cfg.equalized_lr), nn.LeakyReLU(0.2),
                nn.AvgPool2d(2),
            ))
        self.epilogue = _DiscriminatorEpilogue(d[0], cfg)

    def forward(self, images: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        cfg = self.config
        level = cfg.num_resolutions - 1 if level is None else int(level)
        if not 0 <= level < cfg.num_resolutions:
            raise ValueError(f"level must be in [0, {cfg.num_resolutions - 1}], got {level}")
        _check_images(cfg, images, 4 * 2**level)
        x = F.leaky_relu(self.from_rgb[level](images), 0.2)
        if level > 0:
            x = self.blocks[level](x)
            if alpha < 1.0:
                old = F.leaky_relu(self.from_rgb[level - 1](F.avg_pool2d(images, 2)), 0.2)
                x = torch.lerp(old, x, alpha)
        for i in range(level - 1, 0, -1):
            x = self.blocks[i](x)
        return self.epilogue(x)


# ---------------------------------------------------------------------------------------------- v2
class _V2Layer(nn.Module):
    """Modulated conv (optionally upsampling) -> noise -> LReLU * sqrt(2)."""

    def __init__(self, c_in: int, c_out: int, resolution: int, cfg: StyleGANConfig, upsample: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 3, cfg.w_dim, upsample=upsample, equalized=cfg.equalized_lr)
        self.noise = NoiseInjection(c_out, resolution)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        return F.leaky_relu(self.noise(self.conv(x, w), noise_mode), 0.2) * SQRT2


class StyleGAN2Generator(_StyleGeneratorBase, tags=["stylegan2", "unconditional-image-generation"]):
    """StyleGAN2 generator: modulated/demodulated convs, skip architecture (toRGB at every resolution, summed).

    Styles: 4x4 conv uses ws[0], its toRGB ws[1]; resolution i uses ws[2i-1], ws[2i] for its convs and
    ws[2i+1] for its toRGB (as StyleGAN2), ``num_ws = 2 * num_resolutions``.
    """

    card_task = "**Fashion image generation** (StyleGAN2 generator): seed(s) -> new fashion photos."
    card_architecture = ("Mapping network, learned constant, modulated/demodulated convolutions, noise inputs, "
                         "skip generator; truncation in W and per-layer style mixing.")
    version = 2

    def __init__(self, config: StyleGANConfig | dict | None = None) -> None:
        super().__init__()
        c = self._init_base(config)
        ch = c.channels
        self.const = nn.Parameter(torch.randn(1, c.const_channels, 4, 4))
        self.layers = nn.ModuleList([_V2Layer(c.const_channels, ch[0], 4, c, upsample=False)])
        for i in range(1, c.num_resolutions):
            res = 4 * 2**i
            self.layers.append(_V2Layer(ch[i - 1], ch[i], res, c, upsample=True))
            self.layers.append(_V2Layer(ch[i], ch[i], res, c, upsample=False))
        self.to_rgb = nn.ModuleList(
            ModulatedConv2d(ch[i], c.image_channels, 1, c.w_dim, demodulate=False, equalized=c.equalized_lr)
            for i in range(c.num_resolutions)
        )

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        ws = self.broadcast(ws)
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], noise_mode)
        img = self.to_rgb[0](x, ws[:, 1])
        for i in range(1, self.config.num_resolutions):
            x = self.layers[2 * i - 1](x, ws[:, 2 * i - 1], noise_mode)
            x = self.layers[2 * i](x, ws[:, 2 * i], noise_mode)
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) \
                + self.to_rgb[i](x, ws[:, 2 * i + 1])
        return img


class _ResBlock(nn.Module):
    """[CONV3 Cin->Cin -> LReLU -> CONV3 Cin->Cout -> LReLU -> AVGPOOL2] + [AVGPOOL2 -> 1x1 Cin->Cout], / sqrt(2)."""

    def __init__(self, c_in: int, c_out: int, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_in, 3, equalized=cfg.equalized_lr)
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, equalized=cfg.equalized_lr)
        self.skip = EqualizedConv2d(c_in, c_out, 1, bias=False, equalized=cfg.equalized_lr, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv0(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv1(y), 0.2), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / SQRT2


class StyleGAN2Discriminator(HubModel, tags=["stylegan2", "discriminator"]):
    """StyleGAN2 residual critic: from-RGB at full size, residual blocks down to 4x4, minibatch-std epilogue."""

    config_class = StyleGANConfig
    card_task = "**Fashion image generation** (StyleGAN2): residual critic."
    card_architecture = "Residual discriminator with minibatch std and a linear output."
    card_dataset = _DATASET
    card_data_license = DEEPFASHION_LICENSE

    def __init__(self, config: StyleGANConfig | dict | None = None) -> None:
        super().__init__()
        cfg: StyleGANConfig = self._coerce_config(config)  # type: ignore[assignment]
        if cfg.version != 2:
            raise ConfigError(f"StyleGAN2Discriminator needs StyleGANConfig.version=2, got {cfg.version}")
        self.config = cfg
        d = cfg.d_channels
        n = cfg.num_resolutions
        self.from_rgb = EqualizedConv2d(cfg.image_channels, d[n - 1], 1, equalized=cfg.equalized_lr)
        self.blocks = nn.Sequential(*(_ResBlock(d[i], d[i - 1], cfg) for i in range(n - 1, 0, -1)))
        self.epilogue = _DiscriminatorEpilogue(d[0], cfg)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(self.config, images, self.config.resolution)
        return self.epilogue(self.blocks(F.leaky_relu(self.from_rgb(images), 0.2)))
