"""Style matching: DiscoGAN/CycleGAN training, shoes (domain A) <-> handbags (domain B) (thesis §3.3).

Networks (``fashion_gans.models.build_models`` of a :class:`~fashion_gans.models.CycleGANConfig`):
``gen_ab`` (G_AB: shoe -> handbag), ``gen_ba`` (G_BA: handbag -> shoe), ``disc_a`` (D_A: real/fake shoes),
``disc_b`` (D_B: real/fake handbags).  Domain A is the shoes and domain B the handbags, as in the thesis.

One training step (CycleGAN's order, G then D):

1. **Generators** (one Adam over both, as the thesis and DiscoGAN):
   ``L_G = adversarial * (LSGAN(D_B(G_AB(a)), 1) + LSGAN(D_A(G_BA(b)), 1))
   + cycle * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)
   + identity * (|G_AB(b) - b| + |G_BA(a) - a|)
   + colour * (S(G_AB(a)) ~ S(a) + S(G_BA(b)) ~ S(b))`` (mean L1; the discriminators are frozen during this
   update; the last term is the colour-statistics term below, off by default).
2. **Discriminators** (one Adam over both): ``L_D = 1/2 (LSGAN(D(real), 1) + LSGAN(D(pool(fake)), 0))`` per
   domain, on fakes that are *detached* and drawn from an image pool of the 50 most recent fakes per domain
   (Shrivastava et al. 2017, as CycleGAN).

``loss_weights`` keys: ``cycle`` (10), ``identity`` (5; it needs ``channels_a == channels_b``), ``adversarial``
(1), ``colour`` (0: off, as in the thesis and CycleGAN), ``rigidity`` (0: off) and ``smooth`` (0: off).
``schedule`` keys: ``pool_size`` (50; 0 disables the pool), ``colour_from_step`` (0: the step from which the colour
term, when on, is applied), ``adversarial_from_step`` (0: the step from which the adversarial term counts in
``L_G``; before it the generators learn only the reconstructions), ``rigidity_from_step`` (0), ``cycle_noise`` (0:
off; the standard deviation, on the [-1, 1] scale, of Gaussian noise added to each translation before it is
translated back in the cycle term: a source hidden in faint detail does not survive it, so the cycle can only be
closed through what the translation visibly shows, the remedy Chu et al. 2017 suggest for CycleGAN's steganography)
and ``cycle_blur`` (0: off; an odd width in pixels: the cycle and identity L1 compare both images blurred by a box
of that width, so the outline and the colours count and a pattern's phase does not.  A tiling generator folds a
piece of the source's surface into the new outline, so the way back cannot rebuild where the source's stripes or
dots fell; a pixel-exact cycle asks for it anyway, and the generators then hide it in distortions of the sampling
map and holes in the sampled share).

Colour-statistics term (``colour`` > 0; this project's extension, not in the thesis or CycleGAN).  Cycle
consistency alone does not make a translation keep the style: a generator may map every shoe to one handbag
colour and hide the source's colour in faint high-frequency detail that the other generator decodes (Chu et al.
2017, "CycleGAN, a master of steganography"), so the cycle error is low while the colour is lost.  The term
compares weights-free statistics of the *object pixels* (pixels away from the image's corner colour, as
:func:`object_mean_colour`) of each source image and its translation: ``S(x) ~ S(y)`` is the mean L1 between
their per-channel object mean colour, their per-channel object standard deviation (zero for a solid item,
large for a contrasting pattern) and their mean absolute horizontal / vertical differences between neighbouring
object pixels (stripes change along one axis, checks and dots along both) (:func:`object_colour_stats`).  Only
the statistics, not the pixels, are compared, so the shape is free to change between the domains.  It
assumes that a shoe and a handbag of one style share colour and pattern (true of the synthetic world and of the
intended use: matching a handbag to a shoe); it needs ``channels_a == channels_b``.  ``colour_from_step`` lets
the adversarial term first teach the target domain's shape and background, since the object mask is read against
the corner colour, which means nothing while the translations are still blobs on a grey field.

Measured on the synthetic world (batch 8; held-out items of the training world, so rough).  With the ResNet
generators of ``cyclegan_small`` (cycle 5, identity 0.5, colour 10) the term does not help: from step 0 it is met
by painting the whole field (after 150 steps every shoe became the same grey-green field); switched on at step 700
of a run without it, the generators learnt to texture the background, which moves the corner reference, and the
attribute network's colour match fell to 0% / 13%.  With DiscoGAN's encoder-decoder generators, BatchNorm and a
discriminator without InstanceNorm (preset ``discogan_small``), the thesis' weights, colour 5 from step 0 and
``cycle_noise`` 0.1, it is what makes the style carry over: without it those generators collapsed to one output
whatever the input; with it the colour was kept on 48% / 64% of 64 items at step 1500 and 75% / 81% at step 3000.
It stays off by default (the thesis and CycleGAN have no such term); the synthetic bundle uses it.

Rigidity term (``rigidity`` > 0, off by default; appearance-flow generators only, ``generator="discogan_flow"`` or
``"discogan_tile"``;
from step ``schedule["rigidity_from_step"]``, 0).  Between horizontal neighbours of a translation the flow's
sampling point should move one input pixel to the right, between vertical ones one pixel down: the term is the
mean L1 distance of those steps from a translation at scale 1, weighted by the pixels' sample shares
(:func:`~fashion_gans.models.cyclegan.sampling_rigidity`), so the flow copies undistorted pieces of the source
and the pattern keeps its scale and orientation; the L1 distance lets it jump between pieces where the outline
needs a seam.  On the synthetic world (validation world, 256 items) weight 1 from step 0 kept the pattern on 82% /
79% of items at step 3000 against 75% / 63% without it at step 1500 and 66% / 55% at step 3000, but handbag ->
shoe translations then read as shoes only 44% of the time (92% without it): the outlines form more slowly.  The
synthetic bundle's surface-tiling generators (``"discogan_tile"``) use weight 0.3: their map starts as such a copy,
and the term keeps the learned flow near it.

Smoothness term (``smooth`` > 0, off by default; appearance-flow generators only).  The total variation
(:func:`total_variation`: mean absolute difference of neighbouring pixels) of the generators' drawn layer, the part
of a translation that is not copied from the source: backgrounds, soles, handles, clasps, all flat colours in a
product photo.  Without it the silhouette-conditioned generators filled their drawn layer with saturated
high-frequency noise, which leaked into the translations wherever the sample's share dropped and swung the attribute
reading from checkpoint to checkpoint; noise of standard deviation 0.3 in the cycle term did not stop it.

Silhouette-conditioned generators (``g_shape_bank`` > 0, preset ``discogan_shape_small``): every translation is
told the outline to draw.  ``G_AB(a_i)`` draws the silhouette of the batch's real handbag ``b_i`` (the batches are
unpaired, so this is a random real outline) and ``G_BA(b_i)`` that of the real shoe ``a_i``; the cycle's way back
draws the source's own silhouette, and the identity term each image's own.  The translation then has no reason to
carry the source's outline, which an unconditioned cycle needs to rebuild the source and which kept the translated
shoes from reading as shoes.  The discriminators see fakes and reals with the same outlines, so they judge the
surface and the details.  The first batches' real target silhouettes fill each generator's bank
(:meth:`~fashion_gans.models.CycleGANGenerator.store_shapes`), the outlines a user picks from at inference.

Learning rate (``TrainConfig.lr_schedule``): by default the thesis' plateau scheduler (Table 13) on both Adams,
the generators' fed ``g_total`` and the discriminators' ``d_total`` after every step: factor 0.99, patience 10,
cooldown 200, min lr 5e-6 (:mod:`..schedulers`); ``lr_schedule="none"`` keeps the learning rates constant.

Fixes of the thesis code: the fakes are detached for the D step (the code back-propagated the D loss into the
generators); the identity weight is the thesis' 5, not the code's 0.1; both directions are trained and exported.

Held-out metrics (:meth:`StyleTask.evaluate`, lower is better):

* ``cycle_l1_a`` / ``cycle_l1_b``: mean absolute reconstruction error of ``a -> b -> a`` and ``b -> a -> b``
  ([-1, 1] scale).  Low cycle error alone is reachable by a near-identity mapping, hence the next two.
* ``fd8_ab`` / ``fd8_ba``: Fréchet distance between translated images and *real* held-out images of the
  target domain, on 8x8 area-downsampled pixels (a fixed, weights-free feature space: it measures whether
  the translations have the target domain's coarse shape and intensity statistics, not fine texture; with
  a few hundred images the covariance is estimated from few samples, so compare values of one setting).
* ``colour_err_ab`` / ``colour_err_ba`` (3-channel data only): mean L1 distance in RGB ([0, 1] scale) between
  the mean colour of the object pixels of each source image and of its translation (object pixels: farther
  than 0.15 from the image's corner colour).  On the synthetic world shoes and handbags of one style share
  their colour, so this scores whether the translation kept the style; on real photos it is a rough proxy.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...models.config import FLOW_GENERATORS
from ...models.cyclegan import object_mask, sampling_rigidity, silhouette
from ..config import TrainingError
from .base import Task, register_task
from .common import eval_mode, frozen, lsgan_loss, schedule_steps
from .generation import frechet_distance, pixel_features, to_rgb_grid

__all__ = ["ImagePool", "StyleTask", "colour_stats_loss", "object_colour_stats", "object_mean_colour",
           "total_variation"]


class ImagePool:
    """History of generated images (Shrivastava et al. 2017), as CycleGAN: until ``size`` images are stored,
    every new image is stored and returned; afterwards each new image is, with probability 1/2, returned as
    is, or swapped with a random stored image (the stored one is returned, the new one takes its place).

    Randomness comes from torch's global CPU RNG; :meth:`state_dict` / :meth:`load_state_dict` save and restore
    the stored images, so a resumed run replays the same choices.
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The images to show the discriminator for the detached batch ``images`` (same shape)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                k = int(torch.randint(0, self.size, ()))
                out.append(self.images[k].clone())
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.stack(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stored}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str | None = None) -> None:
        self.size = int(state["size"])
        images = state["images"]
        if device is not None:
            images = images.to(device)
        self.images = [img.clone() for img in images] if images.numel() else []


def object_mean_colour(images: torch.Tensor, threshold: float = 0.15) -> torch.Tensor:
    """Mean colour ([0, 1] RGB) of the object pixels of each image: pixels farther than ``threshold`` (max
    channel difference, [0, 1] scale) from the mean colour of the image's four 2x2 corners.  (N, C)."""
    x = (images.float() + 1) / 2
    mask = object_mask(images, threshold)  # an image without object pixels counts as all object
    return (x * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3))


def object_colour_stats(images: torch.Tensor, threshold: float = 0.15, close: int = 7) -> torch.Tensor:
    """Weights-free colour and texture statistics of the object pixels of each image, ``(N, 2C + 2)``: the
    per-channel mean and standard deviation ([0, 1] scale) over the object pixels, then the mean absolute
    difference between horizontally and vertically neighbouring object pixels (averaged over channels).

    Object pixels are found as in :func:`object_mean_colour` (farther than ``threshold`` from the corner colour),
    then the mask is closed with a ``close`` x ``close`` square (odd), so that thin parts of a pattern in the
    background colour count as object; the whole image when there are no object pixels.  The mask is computed
    without gradient, the statistics are differentiable in the pixel values: a generator trained on them changes
    the colours of what it draws, not what counts as the object."""
    x = (images.float() + 1) / 2
    with torch.no_grad():
        # Closed: a pattern drawn in the background colour (white stripes, dots or check lines a few pixels wide)
        # belongs to the object and must count in its colour spread and differences.
        mask = silhouette(images, close, threshold)
        mask = torch.where(mask.sum(dim=(2, 3), keepdim=True) > 0, mask, torch.ones_like(mask))
    area = mask.sum(dim=(2, 3))
    mean = (x * mask).sum(dim=(2, 3)) / area
    var = (((x - mean[..., None, None]) ** 2) * mask).sum(dim=(2, 3)) / area
    std = (var + 1e-6).sqrt()
    pair_x = mask[..., :, 1:] * mask[..., :, :-1]
    pair_y = mask[..., 1:, :] * mask[..., :-1, :]
    dx = ((x[..., :, 1:] - x[..., :, :-1]).abs().mean(1, keepdim=True) * pair_x).sum(dim=(1, 2, 3)) \
        / pair_x.sum(dim=(1, 2, 3)).clamp(min=1)
    dy = ((x[..., 1:, :] - x[..., :-1, :]).abs().mean(1, keepdim=True) * pair_y).sum(dim=(1, 2, 3)) \
        / pair_y.sum(dim=(1, 2, 3)).clamp(min=1)
    return torch.cat([mean, std, dx[:, None], dy[:, None]], dim=1)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between horizontally and vertically neighbouring pixels of ``(N, C, H, W)`` images
    (summed over the two axes, averaged over pixels and channels): zero for flat colours, about 1.1 for Gaussian
    noise of standard deviation 0.5."""
    x = images.float()
    return (x[..., :, 1:] - x[..., :, :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean()


def colour_stats_loss(source: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
    """Mean L1 between :func:`object_colour_stats` of the source images (constants) and of their translations."""
    if source.shape[0] != translated.shape[0] or source.shape[1] != translated.shape[1]:
        raise ValueError(f"colour statistics need the same batch size and channels, got {tuple(source.shape)} "
                         f"and {tuple(translated.shape)}")
    with torch.no_grad():
        target = object_colour_stats(source)
    return F.l1_loss(object_colour_stats(translated), target)


@register_task
class StyleTask(Task):
    """DiscoGAN/CycleGAN shoes (A) <-> handbags (B); see the module docstring for losses and metrics."""

    name: ClassVar[str] = "style"
    default_loss_weights: ClassVar[dict[str, float]] = {"cycle": 10.0, "identity": 5.0, "adversarial": 1.0,
                                                         "colour": 0.0, "rigidity": 0.0, "smooth": 0.0}
    default_pool_size: ClassVar[int] = 50
    # Thesis (Table 13): a plateau scheduler on each Adam, fed its batch loss, factor 0.99, cooldown 200.
    lr_monitor: ClassVar[dict[str, str]] = {"g": "g_total", "d": "d_total"}
    default_lr_schedule: ClassVar[str] = "plateau"
    default_plateau: ClassVar[dict[str, Any]] = {"cooldown": 200}

    def __init__(self, config, model_config) -> None:
        super().__init__(config, model_config)
        from fashion_gans.models import CycleGANConfig

        self.check_setup(CycleGANConfig, ("pool_size", "colour_from_step", "cycle_noise", "adversarial_from_step",
                                          "rigidity_from_step", "cycle_blur"), non_negative_weights=True)
        self.colour_from_step = schedule_steps("style", config.schedule, "colour_from_step")
        self.rigidity_from_step = schedule_steps("style", config.schedule, "rigidity_from_step")
        self.adversarial_from_step = schedule_steps("style", config.schedule, "adversarial_from_step")
        noise = config.schedule.get("cycle_noise", 0.0)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= float(noise) <= 1.0:
            raise TrainingError(f"task 'style': schedule['cycle_noise'] must be a number in [0, 1], got {noise!r}")
        self.cycle_noise = float(noise)
        blur = config.schedule.get("cycle_blur", 0)
        if isinstance(blur, bool) or not isinstance(blur, int) or blur < 0 or (blur and blur % 2 == 0):
            raise TrainingError(f"task 'style': schedule['cycle_blur'] must be 0 (off) or an odd number of pixels, "
                                f"got {blur!r}")
        self.cycle_blur = int(blur)
        mc = model_config
        if self.loss_weights["identity"] > 0 and mc.channels_a != mc.channels_b:
            raise TrainingError(
                f"task 'style': identity loss needs channels_a == channels_b (got {mc.channels_a} and "
                f"{mc.channels_b}); set loss_weights['identity'] = 0"
            )
        if self.loss_weights["colour"] > 0 and mc.channels_a != mc.channels_b:
            raise TrainingError(
                f"task 'style': the colour-statistics loss compares source and translation channel by channel and "
                f"needs channels_a == channels_b (got {mc.channels_a} and {mc.channels_b}); set "
                f"loss_weights['colour'] = 0"
            )
        for key in ("rigidity", "smooth"):
            if self.loss_weights[key] > 0 and mc.generator not in FLOW_GENERATORS:
                raise TrainingError(
                    f"task 'style': loss_weights['{key}'] regularises an appearance flow's sampling map or drawn "
                    f"layer and needs generator='discogan_flow' or 'discogan_tile' (got {mc.generator!r}); "
                    f"set loss_weights['{key}'] = 0")
        pool_size = int(config.schedule.get("pool_size", self.default_pool_size))
        if pool_size < 0:
            raise TrainingError(f"task 'style': schedule['pool_size'] must be >= 0, got {pool_size}")
        self.pool_a = ImagePool(pool_size)  # fake shoes
        self.pool_b = ImagePool(pool_size)  # fake handbags

    # ----------------------------------------------------------------------------------------------- building
    def build_models(self) -> dict[str, nn.Module]:
        from fashion_gans.models import build_models

        return build_models(self.model_config)

    def build_optimizers(self, models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        g_params = list(models["gen_ab"].parameters()) + list(models["gen_ba"].parameters())
        d_params = list(models["disc_a"].parameters()) + list(models["disc_b"].parameters())
        betas = (float(c.betas[0]), float(c.betas[1]))
        return {
            "g": torch.optim.Adam(g_params, lr=c.lr_g, betas=betas),
            "d": torch.optim.Adam(d_params, lr=c.lr_d, betas=betas),
        }

    def _square_size(self) -> int:
        h, w = self.model_config.image_size
        if h != w:
            raise TrainingError(f"task 'style': the shoes/handbags datasets are square; image_size is {(h, w)}")
        return int(h)

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        from ..data import resolve_data

        kind, location = resolve_data(self.config)
        options = {k: v for k, v in self.config.data_options.items() if k != "size"}
        size = self._square_size()
        try:
            if kind == "synthetic":
                from fashion_gans.data.bags_shoes import BagsShoesDataset
                from ..data import synthetic_root

                root = synthetic_root(self.config, ("bags_shoes",)) / "bags_shoes"
                return BagsShoesDataset(root, split, size, **{"seed": self.config.seed, **options})
            if kind == "folder":
                from fashion_gans.data.bags_shoes import BagsShoesDataset

                return BagsShoesDataset(location, split, size, **{"seed": self.config.seed, **options})
            if kind == "hf":
                from fashion_gans.data.bags_shoes import BagsShoesDataset

                return BagsShoesDataset.from_hf(location, split, size, **{"seed": self.config.seed, **options})
            if kind == "fashion-mnist":
                from fashion_gans.data.fashion_mnist import FashionMNISTShoesBags

                kwargs = {"pad_to": 32, "channels": 1, "seed": self.config.seed, **options}
                return FashionMNISTShoesBags(location, split, **kwargs)
        except TypeError as exc:
            raise TrainingError(f"task 'style': bad data_options {options} for data kind {kind!r}: {exc}") from exc
        raise TrainingError(f"task 'style' cannot train on data kind {kind!r}")

    def check_data(self, item: dict[str, torch.Tensor]) -> None:
        mc = self.model_config
        h, w = mc.image_size
        for key, channels in (("shoe", mc.channels_a), ("bag", mc.channels_b)):
            if key not in item:
                raise TrainingError(f"task 'style': dataset items need {key!r}, got keys {sorted(item)}")
            shape = tuple(item[key].shape)
            if shape != (channels, h, w):
                hint = ("; for Fashion-MNIST use preset 'cyclegan_fmnist'"
                        if self.config.data.strip().startswith("fashion-mnist") else "")
                raise TrainingError(
                    f"task 'style': dataset {key} images are {shape} but the model expects {(channels, h, w)}; "
                    f"set model_overrides (channels_a/channels_b, image_size) or data_options (channels, pad_to)"
                    f"{hint}"
                )

    # ----------------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        acc = self.accelerator
        g_ab, g_ba = self.models["gen_ab"], self.models["gen_ba"]
        d_a, d_b = self.models["disc_a"], self.models["disc_b"]
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        w = self.loss_weights
        real_a, real_b = batch["shoe"], batch["bag"]
        shape_a, shape_b = self._silhouettes(real_a, real_b)

        # 1. Generators.  The discriminators are called as bare modules with frozen parameters: no gradient
        #    reaches them and no data-parallel gradient reduction is started for them in this update.
        raw_d_a, raw_d_b = self.unwrap("disc_a"), self.unwrap("disc_b")
        with frozen(raw_d_a, raw_d_b):
            fake_b = g_ab(real_a, shape_b)
            g_rigidity, g_smooth = self._rigidity("gen_ab", step), self._smoothness("gen_ab")
            fake_a = g_ba(real_b, shape_a)
            g_rigidity = g_rigidity + self._rigidity("gen_ba", step)
            g_smooth = g_smooth + self._smoothness("gen_ba")
            g_adv = lsgan_loss(raw_d_b(fake_b), 1.0) + lsgan_loss(raw_d_a(fake_a), 1.0)
            adv_weight = w["adversarial"] if step >= self.adversarial_from_step else 0.0
            g_cycle = (self._reconstruction(g_ba(self._cycle_input(fake_b), shape_a), real_a)
                       + self._reconstruction(g_ab(self._cycle_input(fake_a), shape_b), real_b))
            if w["identity"] > 0:
                g_identity = (self._reconstruction(g_ab(real_b, shape_b), real_b)
                              + self._reconstruction(g_ba(real_a, shape_a), real_a))
            else:
                g_identity = torch.zeros((), device=real_a.device)
            if w["colour"] > 0 and step >= self.colour_from_step:
                g_colour = colour_stats_loss(real_a, fake_b) + colour_stats_loss(real_b, fake_a)
            else:
                g_colour = torch.zeros((), device=real_a.device)
            g_total = (adv_weight * g_adv + w["cycle"] * g_cycle + w["identity"] * g_identity
                       + w["colour"] * g_colour + w["rigidity"] * g_rigidity + w["smooth"] * g_smooth)
            opt_g.zero_grad(set_to_none=True)
            acc.backward(g_total)
            opt_g.step()

        # 2. Discriminators, on detached fakes from the image pools (thesis-code fix: the fakes were not detached).
        pooled_a = self.pool_a.query(fake_a.detach())
        pooled_b = self.pool_b.query(fake_b.detach())
        d_a_real, d_a_fake = lsgan_loss(d_a(real_a), 1.0), lsgan_loss(d_a(pooled_a), 0.0)
        d_b_real, d_b_fake = lsgan_loss(d_b(real_b), 1.0), lsgan_loss(d_b(pooled_b), 0.0)
        d_total = 0.5 * (d_a_real + d_a_fake) + 0.5 * (d_b_real + d_b_fake)
        opt_d.zero_grad(set_to_none=True)
        acc.backward(d_total)
        opt_d.step()

        losses = {
            "g_adv": g_adv, "g_cycle": g_cycle, "g_identity": g_identity, "g_colour": g_colour,
            **({"g_rigidity": g_rigidity} if w["rigidity"] > 0 else {}),
            **({"g_smooth": g_smooth} if w["smooth"] > 0 else {}), "g_total": g_total,
            "d_a_real": d_a_real, "d_a_fake": d_a_fake, "d_b_real": d_b_real, "d_b_fake": d_b_fake,
            "d_total": d_total,
        }
        return {k: v.detach() for k, v in losses.items()}

    def _silhouettes(self, real_a: torch.Tensor, real_b: torch.Tensor
                     ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(shape_a, shape_b)``: the real shoes' and handbags' silhouettes (:func:`silhouette`) for generators that
        draw a given outline (``g_shape_bank`` > 0), else ``(None, None)``.  Each translation draws the silhouette
        of a real image of its target domain from the same batch (G_AB(a_i) the outline of b_i, unpaired), and the
        cycle term gives the way back the source's own outline, so the translation need not hide it.  While a
        generator's bank has free slots, the batch's target silhouettes are stored in it (the first one is the
        outline drawn when none is given)."""
        if not self.model_config.g_shape_bank:
            return None, None
        for name, target in (("gen_ab", real_b), ("gen_ba", real_a)):
            self.unwrap(name).store_shapes(target)
        return silhouette(real_a), silhouette(real_b)

    def _rigidity(self, name: str, step: int) -> torch.Tensor:
        """:func:`~fashion_gans.models.cyclegan.sampling_rigidity` of the translation generator ``name`` just made
        (zero when the term is off or before ``rigidity_from_step``)."""
        if self.loss_weights["rigidity"] <= 0 or step < self.rigidity_from_step:
            return torch.zeros((), device=self._device())
        return sampling_rigidity(*self.unwrap(name).net.last_sampling)

    def _smoothness(self, name: str) -> torch.Tensor:
        """:func:`total_variation` of the drawn layer of the translation generator ``name`` just made (zero when the
        ``smooth`` term is off)."""
        if self.loss_weights["smooth"] <= 0:
            return torch.zeros((), device=self._device())
        return total_variation(self.unwrap(name).net.last_drawn)

    def _reconstruction(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean L1 of a reconstruction (cycle, identity), with ``cycle_blur`` > 0 between both images blurred by a
        ``cycle_blur`` x ``cycle_blur`` box (stride 1): the outline and the colours count, a pattern's phase not."""
        output, target = output.float(), target.float()
        if self.cycle_blur:
            k = self.cycle_blur
            output, target = (F.avg_pool2d(t, k, 1, k // 2, count_include_pad=False) for t in (output, target))
        return F.l1_loss(output, target)

    def _cycle_input(self, fake: torch.Tensor) -> torch.Tensor:
        """The translation as the cycle term feeds it back: with ``cycle_noise`` > 0, plus Gaussian noise of that
        standard deviation, so that information hidden in faint detail cannot survive the round trip."""
        if self.cycle_noise <= 0:
            return fake
        return fake + self.cycle_noise * torch.randn_like(fake)

    # ----------------------------------------------------------------------------------------------- results
    def _generators(self) -> tuple[nn.Module, nn.Module]:
        return self.unwrap("gen_ab"), self.unwrap("gen_ba")

    def _device(self) -> torch.device:
        return next(self.unwrap("gen_ab").parameters()).device

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows of ``shoe | G_AB(shoe) | handbag | G_BA(handbag)`` (grey images repeated to 3 channels)."""
        g_ab, g_ba = self._generators()
        device = self._device()
        real_a, real_b = batch["shoe"].to(device), batch["bag"].to(device)
        with eval_mode(g_ab, g_ba):
            fake_b, fake_a = g_ab(real_a).float(), g_ba(real_b).float()
        columns = [to_rgb_grid(t) for t in (real_a.float(), fake_b, real_b.float(), fake_a)]
        return torch.stack(columns, dim=1).flatten(0, 1).clamp(-1, 1).cpu()

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """``cycle_l1_a/b``, ``fd8_ab/ba`` (8x8-pixel Fréchet distance to the target domain), ``colour_err_ab/ba``
        (RGB data) plus the ground-truth task metrics of :meth:`ground_truth_metrics` (attribute matches on the
        synthetic world, ``*_target_class_rate`` on Fashion-MNIST)."""
        g_ab, g_ba = self._generators()
        device = self._device()
        sums = {"cycle_l1_a": 0.0, "cycle_l1_b": 0.0, "colour_err_ab": 0.0, "colour_err_ba": 0.0}
        n_a = n_b = 0
        feats: dict[str, list[torch.Tensor]] = {"real_a": [], "real_b": [], "fake_a": [], "fake_b": []}
        colour = self.model_config.channels_a == 3 and self.model_config.channels_b == 3
        truth: list[dict[str, float]] = []
        with eval_mode(g_ab, g_ba):
            for batch in batches:
                real_a, real_b = batch["shoe"].to(device).float(), batch["bag"].to(device).float()
                fake_b, fake_a = g_ab(real_a).float(), g_ba(real_b).float()
                truth.append(self.ground_truth_metrics(batch, {"bag": fake_b, "shoe": fake_a}))
                if self.model_config.g_shape_bank:  # the way back draws the source's own outline
                    rec_a = g_ba(fake_b, silhouette(real_a)).float()
                    rec_b = g_ab(fake_a, silhouette(real_b)).float()
                else:
                    rec_a, rec_b = g_ba(fake_b).float(), g_ab(fake_a).float()
                sums["cycle_l1_a"] += (rec_a - real_a).abs().mean(dim=(1, 2, 3)).sum().item()
                sums["cycle_l1_b"] += (rec_b - real_b).abs().mean(dim=(1, 2, 3)).sum().item()
                if colour:
                    sums["colour_err_ab"] += (object_mean_colour(fake_b) - object_mean_colour(real_a)).abs() \
                        .mean(dim=1).sum().item()
                    sums["colour_err_ba"] += (object_mean_colour(fake_a) - object_mean_colour(real_b)).abs() \
                        .mean(dim=1).sum().item()
                n_a += real_a.shape[0]
                n_b += real_b.shape[0]
                for key, t in (("real_a", real_a), ("real_b", real_b), ("fake_a", fake_a), ("fake_b", fake_b)):
                    feats[key].append(pixel_features(t).cpu())
        if n_a == 0:
            raise TrainingError("task 'style': evaluate() got no batches")
        out = {"cycle_l1_a": sums["cycle_l1_a"] / n_a, "cycle_l1_b": sums["cycle_l1_b"] / n_b}
        f = {k: torch.cat(v) for k, v in feats.items()}
        out["fd8_ab"] = frechet_distance(f["fake_b"], f["real_b"])
        out["fd8_ba"] = frechet_distance(f["fake_a"], f["real_a"])
        if colour:
            out["colour_err_ab"] = sums["colour_err_ab"] / n_a
            out["colour_err_ba"] = sums["colour_err_ba"] / n_b
        return self.merge_metrics(out, truth)

    def export(self) -> dict[str, nn.Module]:
        return {"gen_ab": self.unwrap("gen_ab"), "gen_ba": self.unwrap("gen_ba")}

    # ----------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        device = self._device() if self.models else None
        if "pool_a" in state:
            self.pool_a.load_state_dict(state["pool_a"], device)
        if "pool_b" in state:
            self.pool_b.load_state_dict(state["pool_b"], device)
