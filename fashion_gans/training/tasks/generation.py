"""Unconditional generation: StyleGAN v1 (progressive growing, WGAN-GP) and StyleGAN2 (logistic loss, lazy R1)
(thesis §3.4).

Networks: ``generator`` and ``discriminator`` of a :class:`~fashion_gans.models.StyleGANConfig`
(``version`` 1 or 2).  A copy of the generator whose weights are an exponential moving average of the trained
ones (G EMA, as ProGAN/StyleGAN) is kept in the task state, used for samples and evaluation, and exported
instead of the raw generator.

**StyleGAN v1** (``version=1``): one critic update then one generator update per batch.

* WGAN-GP (thesis, λ_GP = 10): ``L_D = E[D(G(z))] - E[D(x)] + gp * GP + drift * E[D(x)^2]`` with the ProGAN
  drift term (ε = 0.001) that keeps the critic's output from wandering; ``L_G = -E[D(G(z))]``.  The gradient
  penalty is computed in fp32 with autocast disabled, whatever the run's mixed precision.
* Progressive growing by images seen (counted over all processes): the run starts at level
  ``schedule["start_level"]`` (0 = 4x4) and moves one level up every ``schedule["images_per_stage"]`` images,
  up to full resolution.  In the first ``schedule["fade_images"]`` images of every new level the new block is
  faded in: ``alpha`` goes 0 -> 1 along ``schedule["alpha_curve"]`` (``linear`` as ProGAN, or ``sigmoid``, the
  thesis' curve :func:`~fashion_gans.models.fade_in_alpha`).  Real batches are area-downsampled to the current
  resolution and faded exactly like the generator's output (``lerp(up(down(x)), x, alpha)``).  The batch size
  stays the run's ``batch_size`` at every level (the thesis shrank it per level).

**StyleGAN2** (``version=2``): non-saturating logistic loss ``L_D = softplus(D(G(z))) + softplus(-D(x))``,
``L_G = softplus(-D(G(z)))``, with lazy R1 regularisation on reals every ``schedule["r1_interval"]`` (16)
critic updates, scaled by the interval (``r1/2 * |∇D(x)|^2 * interval``, fp32, autocast disabled); the critic's
Adam learning rate and betas are corrected for the lazy interval as in StyleGAN2.  No path-length regulariser.

Options (``TrainConfig.schedule``):

* ``images_per_stage`` (v1, 600000), ``fade_images`` (v1, half of ``images_per_stage``), ``start_level``
  (v1, 0), ``alpha_curve`` (v1, ``"linear"`` or ``"sigmoid"``);
* ``r1_interval`` (v2, 16);
* ``ema_beta`` (0.999): G EMA decay per generator update, warmed up as ``min(beta, (1+n)/(10+n))`` after ``n``
  updates so that short runs' EMA follows the generator;
* ``style_mixing`` (probability of the style-mixing regularisation per batch: 0.9 for v2 as StyleGAN2, 0 for
  v1 as the thesis);
* ``diffaugment``: DiffAugment policy (``"color,translation,cutout"``, any subset, or ``""`` = off, the
  default) applied to every image the critic sees, real or fake, in both updates (:mod:`..augment`); use it on
  small datasets.

``loss_weights`` keys: ``gp`` (10, v1), ``drift`` (0.001, v1), ``r1`` (v2; γ, default "auto" =
``0.0002 * resolution^2 / batch_size`` as StyleGAN2-ADA's heuristic; 0 disables R1).

Learning rate (``TrainConfig.lr_schedule``): by default the thesis' plateau scheduler (Table 16) on both Adams,
the generator's fed ``g_adv`` and the critic's ``d_total`` after every step: factor 0.99, patience 10, cooldown
100, min lr 5e-6 (:mod:`..schedulers`); ``lr_schedule="none"`` keeps the learning rates constant.

Held-out metric (:meth:`GenerationTask.evaluate`): ``fd_pixels``, the Fréchet distance between images of the
EMA generator (fixed latents, at the current level, bilinearly resized to full resolution) and the held-out real
images, in a fixed, weights-free feature space: 8x8 area-downsampled pixels (64 x channels dimensions).  Lower
is better.  It measures coarse layout, intensity and colour statistics, not texture, and with a few hundred
images its covariance is estimated from few samples (compare values of one setting only); it is not the
Inception FID of the literature.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import diff_augment, parse_policy
from ..config import TrainingError
from .base import Task, register_task
from .common import ModelAverage, eval_mode, frozen, update_ema

__all__ = [
    "GenerationTask",
    "pixel_features",
    "frechet_distance",
    "to_rgb_grid",
    "call_fp32",
    "gradient_penalty",
    "r1_penalty",
    "update_ema",
    "progressive_position",
    "frozen",
    "eval_mode",
]

_SCHEDULE_KEYS = ("images_per_stage", "fade_images", "start_level", "alpha_curve", "r1_interval", "ema_beta",
                  "style_mixing", "diffaugment")


# --------------------------------------------------------------------------------------------- metric helpers
def pixel_features(images: torch.Tensor, size: int = 8) -> torch.Tensor:
    """``(N, C, H, W)`` images -> ``(N, C * size * size)`` float32 features: area-downsampled pixels."""
    x = images.float()
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.flatten(1)


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``x`` (N, D) and ``y`` (M, D), in float64
    (:func:`fashion_gans.metrics.fid.fid_from_features`)."""
    from fashion_gans.metrics.fid import fid_from_features

    return fid_from_features(x, y)


def to_rgb_grid(images: torch.Tensor) -> torch.Tensor:
    """Grey ``(N, 1, H, W)`` images repeated to 3 channels (colour images unchanged), for sample grids."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


# --------------------------------------------------------------------------------------------- loss helpers
def call_fp32(module: nn.Module, *args, **kwargs) -> torch.Tensor:
    """Run ``module`` in fp32 with autocast disabled.

    The class's ``forward`` is called directly: Accelerate's mixed precision replaces a prepared module's
    instance ``forward`` with one that re-enables autocast, which would defeat ``enabled=False``.  ``module``
    must be the bare network (``Task.unwrap``); its parameters are fp32 under mixed precision.
    """
    device_type = next(module.parameters()).device.type
    args = tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)
    with torch.autocast(device_type=device_type, enabled=False):
        return type(module).forward(module, *args, **kwargs)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, **kwargs) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``E[(|∇D(x̂)|_2 - 1)^2]`` at random interpolates of ``real`` and
    ``fake``, in fp32 with autocast disabled; differentiable w.r.t. the critic's parameters."""
    device_type = real.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        real32, fake32 = real.detach().float(), fake.detach().float()
        eps = torch.rand(real32.shape[0], 1, 1, 1, device=real32.device)
        x = torch.lerp(real32, fake32, eps).requires_grad_(True)
        scores = call_fp32(critic, x, **kwargs).float()
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
        return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def r1_penalty(critic: nn.Module, real: torch.Tensor, augment=None, **kwargs) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``E[|∇_x D(x)|^2]`` on real images (through ``augment`` when given), in fp32
    with autocast disabled; differentiable w.r.t. the critic's parameters."""
    with torch.autocast(device_type=real.device.type, enabled=False):
        x = real.detach().float().requires_grad_(True)
        scores = call_fp32(critic, augment(x) if augment is not None else x, **kwargs).float()
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
        return grad.square().sum(dim=(1, 2, 3)).mean()


def progressive_position(images_seen: int, *, start_level: int, max_level: int, images_per_stage: int,
                         fade_images: int, curve: str = "linear") -> tuple[int, float]:
    """``(level, alpha)`` of progressive growing after ``images_seen`` training images (see module docstring)."""
    stage = images_seen // images_per_stage
    level = min(start_level + stage, max_level)
    if level == start_level:
        return level, 1.0
    into = images_seen - (level - start_level) * images_per_stage
    if into >= fade_images:
        return level, 1.0
    if curve == "sigmoid":
        from fashion_gans.models import fade_in_alpha

        return level, float(fade_in_alpha(into, fade_images))
    return level, into / fade_images


# --------------------------------------------------------------------------------------------- task
@register_task
class GenerationTask(Task):
    """StyleGAN v1 / StyleGAN2 unconditional generation; see the module docstring."""

    name: ClassVar[str] = "generation"
    # "r1" listed with 0.0 here; when the config does not set it, the auto value of the module docstring is used.
    default_loss_weights: ClassVar[dict[str, float]] = {"gp": 10.0, "drift": 0.001, "r1": 0.0}
    # Thesis (Table 16): a plateau scheduler on each Adam, fed its batch loss, factor 0.99, cooldown 100.
    lr_monitor: ClassVar[dict[str, str]] = {"g": "g_adv", "d": "d_total"}
    default_lr_schedule: ClassVar[str] = "plateau"
    default_plateau: ClassVar[dict[str, Any]] = {"cooldown": 100}

    def __init__(self, config, model_config) -> None:
        super().__init__(config, model_config)
        from fashion_gans.models import StyleGANConfig

        self.check_setup(StyleGANConfig, _SCHEDULE_KEYS)
        s = dict(config.schedule)
        mc = model_config
        self.version = int(mc.version)
        self.max_level = mc.num_resolutions - 1
        self.images_per_stage = int(s.get("images_per_stage", 600_000))
        self.fade_images = int(s.get("fade_images", self.images_per_stage // 2))
        self.start_level = int(s.get("start_level", 0))
        self.alpha_curve = str(s.get("alpha_curve", "linear"))
        self.r1_interval = int(s.get("r1_interval", 16))
        self.ema_beta = float(s.get("ema_beta", 0.999))
        self.style_mixing = float(s.get("style_mixing", 0.9 if self.version == 2 else 0.0))
        try:
            self.augment_policy = parse_policy(s.get("diffaugment", ""))
        except ValueError as exc:
            raise TrainingError(f"task 'generation': schedule['diffaugment']: {exc}") from None
        problems = []
        if self.images_per_stage < 1:
            problems.append(f"images_per_stage must be >= 1, got {self.images_per_stage}")
        if not 0 <= self.fade_images <= self.images_per_stage:
            problems.append(f"fade_images must be in [0, images_per_stage], got {self.fade_images}")
        if not 0 <= self.start_level <= self.max_level:
            problems.append(f"start_level must be in [0, {self.max_level}], got {self.start_level}")
        if self.alpha_curve not in ("linear", "sigmoid"):
            problems.append(f"alpha_curve must be 'linear' or 'sigmoid', got {self.alpha_curve!r}")
        if self.r1_interval < 1:
            problems.append(f"r1_interval must be >= 1, got {self.r1_interval}")
        if not 0.0 <= self.ema_beta < 1.0:
            problems.append(f"ema_beta must be in [0, 1), got {self.ema_beta}")
        if not 0.0 <= self.style_mixing <= 1.0:
            problems.append(f"style_mixing must be in [0, 1], got {self.style_mixing}")
        if problems:
            raise TrainingError("task 'generation': schedule: " + "; ".join(problems))
        if "r1" not in config.loss_weights:
            self.loss_weights["r1"] = 0.0002 * mc.resolution**2 / config.batch_size
        self.images_seen = 0
        self.d_steps = 0
        self.g_steps = 0
        self._average = ModelAverage(self.ema_beta)
        self._fixed_z: dict[tuple[int, int], torch.Tensor] = {}

    # ----------------------------------------------------------------------------------------------- building
    def build_models(self) -> dict[str, nn.Module]:
        from fashion_gans.models import build_models

        return build_models(self.model_config)

    def build_optimizers(self, models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        b1, b2 = float(c.betas[0]), float(c.betas[1])
        lr_d, betas_d = c.lr_d, (b1, b2)
        if self.version == 2:
            # StyleGAN2 lazy regularisation: the critic's Adam sees 1 + 1/interval updates' worth per step.
            ratio = self.r1_interval / (self.r1_interval + 1)
            lr_d, betas_d = lr_d * ratio, (b1**ratio, b2**ratio)
        return {
            "g": torch.optim.Adam(models["generator"].parameters(), lr=c.lr_g, betas=(b1, b2)),
            "d": torch.optim.Adam(models["discriminator"].parameters(), lr=lr_d, betas=betas_d),
        }

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        from ..data import resolve_data

        kind, location = resolve_data(self.config)
        options = {k: v for k, v in self.config.data_options.items() if k != "size"}
        res = self.model_config.resolution
        try:
            if kind == "synthetic":
                from fashion_gans.data.fisb import FISBDataset
                from ..data import synthetic_root

                return FISBDataset(synthetic_root(self.config, ("fisb",)) / "fisb" / "G2.h5", split, res, **options)
            if kind == "folder":
                from fashion_gans.data.fisb import FISBDataset

                return FISBDataset(location, split, res, **options)
            if kind == "hf":
                from fashion_gans.data.fisb import FISBDataset

                return FISBDataset.from_hf(location, split, res, **options)
            if kind == "fashion-mnist":
                from fashion_gans.data.fashion_mnist import FashionMNIST

                return FashionMNIST(location, split, **{"pad_to": 32, "channels": 1, **options})
        except TypeError as exc:
            raise TrainingError(f"task 'generation': bad data_options {options} for data kind {kind!r}: {exc}") from exc
        raise TrainingError(f"task 'generation' cannot train on data kind {kind!r}")

    def check_data(self, item: dict[str, torch.Tensor]) -> None:
        mc = self.model_config
        expected = (mc.image_channels, mc.resolution, mc.resolution)
        if "image" not in item:
            raise TrainingError(f"task 'generation': dataset items need 'image', got keys {sorted(item)}")
        shape = tuple(item["image"].shape)
        if shape != expected:
            hint = ""
            if self.config.data.strip().startswith("fashion-mnist"):
                hint = f"; for Fashion-MNIST use preset '{'stylegan2' if self.version == 2 else 'stylegan'}_fmnist'"
            raise TrainingError(
                f"task 'generation': dataset images are {shape} but the model expects {expected}; set "
                f"model_overrides (image_channels, resolution, channels, d_channels) or data_options{hint}"
            )

    def bind(self, accelerator, models, optimizers) -> None:
        super().bind(accelerator, models, optimizers)
        self._average.bind(self.unwrap("generator"))

    @property
    def ema(self) -> nn.Module | None:
        """The EMA generator (once bound)."""
        return self._average.module

    # ----------------------------------------------------------------------------------------------- schedule
    def position(self) -> tuple[int, float]:
        """``(level, alpha)`` for the next step (v2: always full resolution)."""
        if self.version != 1:
            return self.max_level, 1.0
        return progressive_position(self.images_seen, start_level=self.start_level, max_level=self.max_level,
                                    images_per_stage=self.images_per_stage, fade_images=self.fade_images,
                                    curve=self.alpha_curve)

    def _growth_kwargs(self, level: int, alpha: float) -> dict[str, Any]:
        return {"level": level, "alpha": alpha} if self.version == 1 else {}

    def real_at(self, images: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        """Real images at the resolution of ``level``, faded like the generator's output."""
        res = 4 * 2**level
        x = images
        if x.shape[-1] != res or x.shape[-2] != res:
            x = F.interpolate(x, size=(res, res), mode="area")
        if level > 0 and alpha < 1.0:
            low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
            x = torch.lerp(low, x, alpha)
        return x

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.augment_policy) if self.augment_policy else x

    def _generate(self, gen: nn.Module, n: int, device: torch.device, train_g: bool, **kwargs) -> torch.Tensor:
        """Fakes from fresh latents (global RNG), with style mixing with probability ``style_mixing``.

        The styles are mapped here and rendered through the prepared generator's ``forward(w=...)``; in the
        generator update the tracked ``w_avg`` is updated here too, in fp32 (safe under autocast).
        """
        raw = self.unwrap("generator")
        z = torch.randn(n, self.model_config.z_dim, device=device)
        ws = raw.mapping(z)
        if train_g:
            with torch.no_grad():
                batch_mean = ws[:, 0].detach().float().mean(dim=0)
                if self.accelerator is not None and self.accelerator.num_processes > 1:
                    # Every process tracks the same w_avg (a buffer the data-parallel wrapper does not sync).
                    batch_mean = self.accelerator.reduce(batch_mean, reduction="mean")
                raw.w_avg.copy_(batch_mean.lerp(raw.w_avg.float(), self.model_config.w_avg_beta))
        if self.style_mixing > 0 and float(torch.rand(())) < self.style_mixing:
            ws2 = raw.mapping(torch.randn_like(z))
            crossover = int(torch.randint(1, raw.num_ws, ()))
            ws = raw.mix(ws, ws2, crossover)
        return gen(w=ws, **kwargs)

    # ----------------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        acc = self.accelerator
        gen, disc = self.models["generator"], self.models["discriminator"]
        raw_d = self.unwrap("discriminator")
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        w = self.loss_weights
        level, alpha = self.position()
        grow = self._growth_kwargs(level, alpha)
        real = self.real_at(batch["image"], level, alpha) if self.version == 1 else batch["image"]
        n, device = real.shape[0], real.device
        losses: dict[str, torch.Tensor] = {}

        # 1. Critic.
        with torch.no_grad():
            fake = self._generate(gen, n, device, train_g=False, **grow)
        real_aug, fake_aug = self._augment(real), self._augment(fake)
        d_real = disc(real_aug, **grow).float()
        d_fake = disc(fake_aug, **grow).float()
        if self.version == 1:
            d_wgan = d_fake.mean() - d_real.mean()
            gp = gradient_penalty(raw_d, real_aug, fake_aug, **grow)
            drift = d_real.square().mean()
            d_total = d_wgan + w["gp"] * gp + w["drift"] * drift
            losses.update(d_wgan=d_wgan, d_gp=gp, d_drift=drift)
        else:
            d_adv = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
            d_total = d_adv
            losses["d_adv"] = d_adv
            if w["r1"] > 0 and self.d_steps % self.r1_interval == 0:
                r1 = r1_penalty(raw_d, real, self._augment if self.augment_policy else None)
                d_total = d_total + (w["r1"] / 2) * r1 * self.r1_interval
                losses["d_r1"] = r1
        losses["d_total"] = d_total
        opt_d.zero_grad(set_to_none=True)
        acc.backward(d_total)
        opt_d.step()
        self.d_steps += 1

        # 2. Generator; the critic is called as a bare, frozen module (no gradient, no gradient reduction).
        with frozen(raw_d):
            fake = self._generate(gen, n, device, train_g=True, **grow)
            scores = raw_d(self._augment(fake), **grow).float()
            g_adv = -scores.mean() if self.version == 1 else F.softplus(-scores).mean()
        opt_g.zero_grad(set_to_none=True)
        acc.backward(g_adv)
        opt_g.step()
        losses["g_adv"] = g_adv
        self.g_steps += 1
        self._average.update(self.unwrap("generator"), self.g_steps)

        self.images_seen += n * int(getattr(acc, "num_processes", 1))
        return {k: v.detach() for k, v in losses.items()}

    # ----------------------------------------------------------------------------------------------- results
    def _z(self, n: int, offset: int = 0) -> torch.Tensor:
        """Fixed latents (their own generator seeded from the run seed; torch's global RNG is untouched)."""
        key = (n, offset)
        if key not in self._fixed_z:
            g = torch.Generator().manual_seed(int(self.config.seed) * 1000 + 17 + offset)
            self._fixed_z[key] = torch.randn(n, self.model_config.z_dim, generator=g)
        return self._fixed_z[key]

    def _render(self, z: torch.Tensor) -> torch.Tensor:
        """EMA-generator images at the current level, resized to full resolution, fp32."""
        level, alpha = self.position()
        device = next(self.ema.parameters()).device
        images = self.ema(z.to(device), noise_mode="const", **self._growth_kwargs(level, alpha)).float()
        res = self.model_config.resolution
        if images.shape[-1] != res:
            images = F.interpolate(images, size=(res, res), mode="bilinear", align_corners=False)
        return images

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """EMA-generator images of a fixed latent grid (as many as the batch's images), clamped to [-1, 1]."""
        n = int(batch["image"].shape[0]) if "image" in batch else 16
        return to_rgb_grid(self._render(self._z(n))).clamp(-1, 1).cpu()

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """``fd_pixels`` (Fréchet distance of 8x8 pixel features, lower is better) plus the ground-truth task metrics
        of :meth:`ground_truth_metrics` (domain-extractor ``fid``, ``diversity``, attribute/class ``coverage_*``)."""
        real_feats, fake_feats, truth = [], [], []
        for k, batch in enumerate(batches):
            real = batch["image"]
            fake = self._render(self._z(int(real.shape[0]), offset=1 + k))
            real_feats.append(pixel_features(real).cpu())
            fake_feats.append(pixel_features(fake).cpu())
            truth.append(self.ground_truth_metrics(batch, fake))
        if not real_feats:
            raise TrainingError("task 'generation': evaluate() got no batches")
        return self.merge_metrics({"fd_pixels": frechet_distance(torch.cat(fake_feats), torch.cat(real_feats))}, truth)

    def assume_trained(self, steps: int, num_processes: int = 1) -> None:
        """The images seen after ``steps`` steps of ``batch_size`` per process: the level and fade-in (v1) of
        the run's end."""
        self.images_seen = int(steps) * int(self.config.batch_size) * int(num_processes)

    def export(self) -> dict[str, nn.Module]:
        """The EMA generator (as ProGAN/StyleGAN publish), under the name ``generator``."""
        return {"generator": self.ema if self.ema is not None else self.unwrap("generator")}

    # ----------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "images_seen": self.images_seen,
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "ema": self._average.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.images_seen = int(state.get("images_seen", 0))
        self.d_steps = int(state.get("d_steps", 0))
        self.g_steps = int(state.get("g_steps", 0))
        if state.get("ema") is not None:
            self._average.load_state_dict(state["ema"])

