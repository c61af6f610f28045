"""Garment extraction: PixelDTGAN (thesis §3.2; Yoo et al., "Pixel-Level Domain Transfer", ECCV 2016).

Networks: the generator (person photo -> product photo), D_R (real/fake, sees a product image only) and D_A
(associated/unassociated, sees ``concat(person, product)``), each with its own Adam (the thesis trained the two
discriminators separately).  Losses (LSGAN, least squares):

* ``L_DR = MSE(D_R(product), 1) + MSE(D_R(G(person)), 0)``;
* ``L_DA = MSE(D_A(person, product), 1) + MSE(D_A(person, unassociated), 0) + MSE(D_A(person, G(person)), 0)``,
  where ``unassociated`` is a real product photo of a *different* product of the same split, drawn by the dataset
  (``unassociated_product_image``; the thesis code took the previous batch's targets, which can hold the very
  garment of the current pair);
* ``L_G  = adv_real · MSE(D_R(G(person)), 1) + adv_assoc · MSE(D_A(person, G(person)), 1)
  + recon · L1(G(person), product) + colour · |mean colour of G(person) - mean colour of product|``, the last
  term over the true garment region (:func:`mean_colour_l1`; off by default).

Generated images are detached in both D steps.  Update order per batch: D_R, D_A, then G.

Loss weights (``TrainConfig.loss_weights``):

==============  =======  =====================================================================================
key             default  meaning
==============  =======  =====================================================================================
``adv_real``    1.0      weight of D_R's adversarial term in the generator loss
``adv_assoc``   1.0      weight of D_A's adversarial term in the generator loss
``recon``       10.0     FIXED weight of the L1 reconstruction term.  The thesis made it a trainable parameter
                         (initialised to 4): optimised with G it fell below zero by epoch 186, was reset to 0 and
                         passed through a ReLU, which switched the L1 term off for the rest of training.  A loss
                         weight must not be a parameter of the loss it weighs.
``colour``      0.0      weight of the mean-colour term (this project's extension, not in the thesis): mean L1
                         between the RGB mean of the generated and of the true product photo over the true
                         garment's pixels (:func:`mean_colour_l1`).  The pixel L1 of an uncertain generator
                         regresses to washed-out colours (garment edges blend with the white background, a pink
                         shirt comes out beige); the mean over the garment region is what tells the garment's
                         colour, so this term weighs it on its own.
==============  =======  =====================================================================================

``schedule`` keys: ``colour_from_step`` (0): the step from which the ``colour`` term is applied (a run continued
with the term records where it was switched on, so that a fresh run reproduces it); ``ema_beta`` (0 = off): keep
an exponential moving average of the generator's weights (decay per update, warmed up as
``min(beta, (1+n)/(10+n))``; BatchNorm running statistics averaged with the weights), used for the samples, the
held-out evaluation and the export in place of the raw generator.  GAN checkpoints a few hundred steps apart
differ by several points of colour kept; the average stands for the whole recent run.  On the bundled setting
(6000 steps, 0.999) it lowered the held-out L1 from 0.104 to 0.097 and kept as many colours (89.2% against
89.5% of 600 items, read by the attribute network before it was trained on JPEG product photos too).

Measured (preset ``pixeldtgan_small``, batch 16, the synthetic world; 256 held-out items of a world of another
seed, read by the ``synthetic-attributes`` network): after 2000 steps without the term 74% of the garments kept
their colour, the misses almost all desaturated (pink / yellow read as beige, brown / green / blue as grey); with
``colour`` 10 from step 2000 the checkpoints at 2400 / 2750 / 3000 kept 81% / 86% / 76% (GAN training moves
this by about 5 points from checkpoint to checkpoint) and the pattern rose from 83% to 86-91%.

Thesis optimiser settings (Tables 9-10), for a faithful run: ``lr_g = lr_d = 1e-4``, ``betas = (0.9, 0.999)``,
batch 256, 64 px (preset ``pixeldtgan_thesis``), 348 epochs.  The values in :class:`TrainConfig` are used as
given.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...models import build_models as build_model_dict
from ..config import TrainingError
from .base import Task, register_task
from .common import ModelAverage, eval_mode, lsgan_loss, schedule_steps
from .pose import data_folder, dataset_kwargs, resolve, ssim, synthetic

__all__ = ["GarmentTask", "garment_mask", "mean_colour_error", "mean_colour_l1"]

#: A product-photo pixel belongs to the garment when one of its channels is below this (in [0, 1]): the
#: background of a product photo is white.
WHITE_THRESHOLD = 0.9


def garment_mask(product: torch.Tensor, threshold: float = WHITE_THRESHOLD) -> torch.Tensor:
    """``(N, 1, H, W)`` float mask of the non-white pixels of product photos in ``[-1, 1]``."""
    rgb01 = (product.float() + 1) / 2
    return (rgb01.amin(dim=1, keepdim=True) < threshold).float()


def _region_mean_colours(generated: torch.Tensor, product: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C)`` mean colours ([0, 1] RGB) of the generated and the true product photo over the true garment
    region (non-white pixels of the true photo; the whole image when it has none)."""
    mask = garment_mask(product)
    empty = mask.flatten(1).sum(1) == 0
    mask = torch.where(empty[:, None, None, None], torch.ones_like(mask), mask)
    area = mask.flatten(1).sum(1)[:, None]
    g = ((generated.float() + 1) / 2 * mask).flatten(2).sum(2) / area
    p = ((product.float() + 1) / 2 * mask).flatten(2).sum(2) / area
    return g, p


def mean_colour_error(generated: torch.Tensor, product: torch.Tensor) -> torch.Tensor:
    """Per-image Euclidean distance (RGB in [0, 1], so at most √3) between the mean colour of the generated and
    the true product photo over the true garment region (non-white pixels of the true photo; the whole image
    when it has none).  Measures whether the extracted garment kept its colour, whatever its shape details."""
    g, p = _region_mean_colours(generated, product)
    return (g - p).norm(dim=1)


def mean_colour_l1(generated: torch.Tensor, product: torch.Tensor) -> torch.Tensor:
    """Mean over images and channels of ``|mean colour of generated - mean colour of product|`` ([0, 1] RGB), both
    over the true garment region as :func:`mean_colour_error`; differentiable in ``generated`` (the training
    term of loss weight ``colour``; the L1 keeps its gradient finite where the colours agree)."""
    g, p = _region_mean_colours(generated, product)
    return (g - p).abs().mean()


@register_task
class GarmentTask(Task):
    """PixelDTGAN garment extraction (see the module docstring for the losses and weights)."""

    name = "garment"
    default_loss_weights = {"adv_real": 1.0, "adv_assoc": 1.0, "recon": 10.0, "colour": 0.0}
    # For lr_schedule="plateau"; the thesis trained PixelDTGAN without one.
    lr_monitor = {"g": "g", "d_real": "d_real", "d_assoc": "d_assoc"}

    def __init__(self, config, model_config) -> None:
        super().__init__(config, model_config)
        self.check_setup(schedule_keys=("colour_from_step", "ema_beta"), non_negative_weights=True)
        self.colour_from_step = schedule_steps("garment", config.schedule, "colour_from_step")
        beta = config.schedule.get("ema_beta", 0.0)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
            raise TrainingError(f"task 'garment': schedule['ema_beta'] must be a number in [0, 1) (0 = no EMA), "
                                f"got {beta!r}")
        self.ema_beta = float(beta)
        self._average = ModelAverage(self.ema_beta, buffers="average") if self.ema_beta > 0 else None
        self.ema_updates = 0

    @property
    def ema(self) -> nn.Module | None:
        """The averaged generator (``ema_beta`` > 0, once bound), else ``None``."""
        return self._average.module if self._average is not None else None

    # ----------------------------------------------------------------------------------------------- building
    def build_models(self) -> dict[str, nn.Module]:
        return build_model_dict(self.model_config)

    def build_optimizers(self, models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"g": torch.optim.Adam(models["generator"].parameters(), lr=c.lr_g, betas=c.betas),
                "d_real": torch.optim.Adam(models["disc_real"].parameters(), lr=c.lr_d, betas=c.betas),
                "d_assoc": torch.optim.Adam(models["disc_assoc"].parameters(), lr=c.lr_d, betas=c.betas)}

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        from ...data.lookbook import LookBookDataset

        h, w = self.model_config.image_size
        if h != w:
            raise TrainingError(f"task 'garment': LookBook images are square; the model config's image_size is "
                                f"{(h, w)}")
        options = {"seed": self.config.seed, **self.config.data_options}
        kwargs = dataset_kwargs(LookBookDataset, options, {"size": h}, self.name)
        kind, location = resolve(self.config)
        if kind == "synthetic":
            return LookBookDataset(synthetic(self.config, ("lookbook",)) / "lookbook", split, **kwargs)
        if kind == "folder":
            return LookBookDataset(data_folder(location, "lookbook"), split, **kwargs)
        if kind == "hf":
            return LookBookDataset.from_hf(location, split, **kwargs)
        raise TrainingError(f"task 'garment' cannot train on data kind {kind!r} ({self.config.data!r}); "
                            "use synthetic, a LookBook folder or hf:REPO")

    def bind(self, accelerator, models, optimizers) -> None:
        super().bind(accelerator, models, optimizers)
        if self._average is not None:
            self._average.bind(self.unwrap("generator"))

    def check_data(self, item: dict[str, torch.Tensor]) -> None:
        mc = self.model_config
        want = (mc.image_channels, *mc.image_size)
        for key in ("person_image", "product_image", "unassociated_product_image"):
            if key not in item:
                raise TrainingError(f"task 'garment': dataset items have no {key!r} (keys: {sorted(item)})")
            got = tuple(item[key].shape)
            if got != want:
                raise TrainingError(f"task 'garment': dataset {key} is {got} (C, H, W) but the model config "
                                    f"{type(mc).__name__} expects {want} (image_size {tuple(mc.image_size)})")

    # ----------------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        G, DR, DA = self.models["generator"], self.models["disc_real"], self.models["disc_assoc"]
        opt_g, opt_dr, opt_da = self.optimizers["g"], self.optimizers["d_real"], self.optimizers["d_assoc"]
        acc = self.accelerator
        w = self.loss_weights
        person, product = batch["person_image"], batch["product_image"]
        unassoc = batch["unassociated_product_image"]
        n = person.shape[0]

        fake = G(person)
        fake_d = fake.detach()

        # D_R: real products -> 1, generated -> 0 (one forward; the PatchGAN normalises per sample).
        opt_dr.zero_grad(set_to_none=True)
        s_real, s_fake = DR(torch.cat([product, fake_d])).split(n)
        dr_real, dr_fake = lsgan_loss(s_real, 1.0), lsgan_loss(s_fake, 0.0)
        loss_dr = dr_real + dr_fake
        acc.backward(loss_dr)
        opt_dr.step()

        # D_A: (person, its product) -> 1, (person, another product) -> 0, (person, generated) -> 0.
        opt_da.zero_grad(set_to_none=True)
        a_pos, a_neg, a_fake = DA(torch.cat([person, person, person]),
                                  torch.cat([product, unassoc, fake_d])).split(n)
        da_assoc, da_unassoc, da_fake = lsgan_loss(a_pos, 1.0), lsgan_loss(a_neg, 0.0), lsgan_loss(a_fake, 0.0)
        loss_da = da_assoc + da_unassoc + da_fake
        acc.backward(loss_da)
        opt_da.step()

        # G: fool both discriminators and stay close (L1) to the true product photo.
        opt_g.zero_grad(set_to_none=True)
        g_adv_real = lsgan_loss(DR(fake), 1.0)
        g_adv_assoc = lsgan_loss(DA(person, fake), 1.0)
        g_l1 = F.l1_loss(fake.float(), product.float())
        loss_g = w["adv_real"] * g_adv_real + w["adv_assoc"] * g_adv_assoc + w["recon"] * g_l1
        if w["colour"] > 0 and step >= self.colour_from_step:
            g_colour = mean_colour_l1(fake, product)
            loss_g = loss_g + w["colour"] * g_colour
        else:
            g_colour = torch.zeros((), device=fake.device)
        acc.backward(loss_g)
        opt_g.step()
        if self._average is not None:
            self._average.update(self.unwrap("generator"), self.ema_updates)
            self.ema_updates += 1

        return {"d_real_real": dr_real.detach(), "d_real_fake": dr_fake.detach(), "d_real": loss_dr.detach(),
                "d_assoc_assoc": da_assoc.detach(), "d_assoc_unassoc": da_unassoc.detach(),
                "d_assoc_fake": da_fake.detach(), "d_assoc": loss_da.detach(),
                "g_adv_real": g_adv_real.detach(), "g_adv_assoc": g_adv_assoc.detach(), "g_l1": g_l1.detach(),
                "g_colour": g_colour.detach(), "g": loss_g.detach()}

    # ----------------------------------------------------------------------------------------------- results
    def _generate(self, person: torch.Tensor) -> torch.Tensor:
        """The EMA generator's output where one is kept, else the raw generator's (eval mode)."""
        if self.ema is not None:
            with torch.no_grad():
                return self.ema(person)
        with eval_mode(self.models["generator"]), torch.no_grad():
            return self.models["generator"](person)

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Columns: person | true product | generated product."""
        fake = self._generate(batch["person_image"])
        cols = [batch["person_image"].float(), batch["product_image"].float(), fake.float()]
        return torch.stack(cols, dim=1).flatten(0, 1).clamp(-1, 1)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Held-out metrics: ``l1`` (generated vs true product, [-1, 1] scale, lower is better), ``colour_error``
        (:func:`mean_colour_error`, lower is better), ``ssim`` (higher is better) and ``l1_copy_person`` (the
        trivial baseline: the person photo returned unchanged); plus the ground-truth task metrics of
        :meth:`ground_truth_metrics` (``colour_kept``, ``pattern_kept`` on the synthetic world)."""
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("l1", "colour_error", "ssim", "l1_copy_person")}
        truth: list[dict[str, float]] = []
        for batch in batches:
            person, product = batch["person_image"].float(), batch["product_image"].float()
            fake = self._generate(batch["person_image"]).float()
            truth.append(self.ground_truth_metrics(batch, fake))
            parts["l1"].append((fake - product).abs().flatten(1).mean(1))
            parts["colour_error"].append(mean_colour_error(fake, product))
            parts["ssim"].append(ssim(fake, product))
            parts["l1_copy_person"].append((person - product).abs().flatten(1).mean(1))
        return self.merge_metrics(self.mean_metrics(parts), truth)

    def export(self) -> dict[str, nn.Module]:
        """The generator, or its EMA where one is kept (``ema_beta`` > 0)."""
        return {"generator": self.ema if self.ema is not None else self.unwrap("generator")}

    def state_dict(self) -> dict[str, Any]:
        # The reconstruction weight is fixed (not learnt); it is stored so that a checkpoint says what it was.
        state: dict[str, Any] = {"epoch": self.epoch, "loss_weights": dict(self.loss_weights)}
        ema = self._average.state_dict() if self._average is not None else None
        if ema is not None:
            state["ema"] = ema
            state["ema_updates"] = self.ema_updates
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.ema_updates = int(state.get("ema_updates", 0))
        if self._average is None:
            return
        ema = state.get("ema")
        if ema is None and self.ema is not None:
            # A run continued with an EMA from a checkpoint without one: the average starts at the loaded weights
            # (the trainer loads the networks before the task state).
            ema = self.unwrap("generator").state_dict()
        if ema is not None:
            self._average.load_state_dict(ema)
