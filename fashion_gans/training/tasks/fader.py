"""Attribute editing: Fader Networks (Lample et al., "Fader Networks: Manipulating Images by Sliding Attributes",
NeurIPS 2017).

Networks (``fashion_gans.models.build_models`` of a :class:`~fashion_gans.models.FaderConfig`): ``fader`` (the
encoder-decoder :class:`~fashion_gans.models.FaderNetwork`) and ``latent_disc`` (the
:class:`~fashion_gans.models.LatentDiscriminator`), each with its own Adam (``lr_g`` for the autoencoder, ``lr_d``
for the discriminator).  Dataset items are ``{"image": (C, H, W) in [-1, 1], "attributes": (n_attributes,) int64}``
(:mod:`.editing`); ``y`` below is the one-hot code of the attributes (one block per attribute).

One training step (the paper's order; the latent map ``z = E(x)`` is computed once, in train mode):

1. **Latent discriminator**: ``L_dis = Σ_blocks CE(D(z.detach()), y)``: learn to read the attributes from the
   latent map (the encoder gets no gradient from this step).
2. **Autoencoder**: ``L_ae = recon · MSE(Dec(z, y), x) + λ_E(t) · L_adv(D(z), y)`` with ``D`` frozen and in eval
   mode (no dropout), so the encoder is pushed to make ``z`` useless to the discriminator and the decoder must
   take the attributes from ``y``.

The adversarial term ``L_adv`` (``schedule["adversarial"]``):

* ``flip`` (default): the cross-entropy towards a *uniformly drawn other value* of every attribute, computed in
  expectation over the draw, i.e. the mean cross-entropy over all the other values of the block.  The paper
  flips its binary attributes (the official code shifts a categorical attribute to a random other value); the
  expectation gives the same mean gradient without the sampling noise, and needs no random numbers.
* ``uniform``: the cross-entropy towards the uniform distribution over all values of the block, minus its
  minimum ``log(n)`` (the KL divergence from uniform: 0 when the discriminator learns nothing).  It does not
  reward a confidently *wrong* discriminator, which ``flip`` does.

``λ_E`` follows the paper's schedule: a linear ramp from 0 to ``loss_weights["lambda_e"]`` over
``schedule["lambda_e_ramp_steps"]`` steps, so the autoencoder first learns to reconstruct and the latent is made
attribute-free gradually.  The paper used 1e-4 over 500k steps with a summed loss scale; here the reconstruction
term is the *mean* squared error on [-1, 1] images and runs are a few thousand steps, so the defaults are
``lambda_e`` 1e-2 over 300 steps: on synthetic flats (``fader_synthetic``, batch 32, Adam 2e-3) that brings the
latent discriminator from reading the attributes to near chance while the reconstruction keeps improving, and
400 steps already give held-out edit success ~0.86 with the other attributes kept ~0.93 (``flip`` and ``uniform``
were indistinguishable there).  The ramp position (steps done) is part of the task state, so a resumed run
continues the ramp exactly.

``loss_weights`` keys: ``recon`` (1.0), ``lambda_e`` (1e-2, the final λ_E).  ``schedule`` keys:
``lambda_e_ramp_steps`` (300; 0 = the full λ_E from the first step), ``adversarial`` (``flip`` or ``uniform``).

Paper optimiser settings: Adam, learning rate 2e-3, betas (0.5, 0.999), batch 32; the values in
:class:`TrainConfig` are used as given.

Held-out metrics (:meth:`FaderTask.evaluate`): ``recon_l1`` / ``recon_ssim`` (reconstruction with the true
code), ``latent_acc`` (the latent discriminator's accuracy on held-out latents, mean over attributes) next to
``latent_chance`` (the accuracy of always answering the most frequent value of each attribute in those
batches), and, on synthetic and Fashion-MNIST data, the edit metrics of
:func:`fashion_gans.evaluation.editing.edit_metrics` read by the domain's attribute network.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...models.attributes import attribute_code, block_cross_entropy, code_to_indices, split_code
from ..config import TrainingError
from .base import Task, register_task
from .common import eval_mode, frozen, schedule_steps
from .editing import eval_images
from .generation import to_rgb_grid

__all__ = ["FaderTask", "adversarial_loss", "lambda_e_at", "ADVERSARIAL_TARGETS"]

ADVERSARIAL_TARGETS = ("flip", "uniform")
_SCHEDULE_KEYS = ("lambda_e_ramp_steps", "adversarial")


def lambda_e_at(step: int, lambda_e: float, ramp_steps: int) -> float:
    """λ_E after ``step`` steps: linear from 0 to ``lambda_e`` over ``ramp_steps`` steps, then constant."""
    if ramp_steps <= 0:
        return float(lambda_e)
    return float(lambda_e) * min(1.0, step / ramp_steps)


def adversarial_loss(logits: torch.Tensor, indices: torch.Tensor, attributes: dict, target: str = "flip"
                     ) -> torch.Tensor:
    """The encoder's loss against the latent discriminator's ``logits`` ``(N, code_size)`` for true value indices
    ``(N, n_attributes)``, summed over attributes (see the module docstring for ``flip`` and ``uniform``)."""
    if target not in ADVERSARIAL_TARGETS:
        raise ValueError(f"adversarial target must be one of {ADVERSARIAL_TARGETS}, got {target!r}")
    total = logits.new_zeros((), dtype=torch.float32)
    for k, block in enumerate(split_code(logits.float(), attributes)):
        n = block.shape[1]
        logp = F.log_softmax(block, dim=1)
        if target == "flip":
            true = logp.gather(1, indices[:, k:k + 1].long()).squeeze(1)
            total = total + (-(logp.sum(1) - true) / (n - 1)).mean()
        else:
            total = total + (-logp.mean(1) - math.log(n)).mean()
    return total


def _block_accuracy(logits: torch.Tensor, indices: torch.Tensor, attributes: dict) -> torch.Tensor:
    """Per image, the share of attributes whose block argmax is the true value ``(N,)``."""
    return (code_to_indices(logits, attributes) == indices).float().mean(1)


@register_task
class FaderTask(Task):
    """Fader Networks attribute editing (see the module docstring for losses, schedule and metrics)."""

    name: ClassVar[str] = "fader"
    default_loss_weights: ClassVar[dict[str, float]] = {"recon": 1.0, "lambda_e": 1e-2}
    default_ramp_steps: ClassVar[int] = 300
    lr_monitor: ClassVar[dict[str, str]] = {"ae": "recon", "dis": "dis"}
    #: The latent discriminator is not exported.
    unexported_metrics: ClassVar[tuple[str, ...]] = ("latent_acc",)

    def __init__(self, config, model_config) -> None:
        super().__init__(config, model_config)
        from fashion_gans.models import FaderConfig

        self.check_setup(FaderConfig, _SCHEDULE_KEYS, non_negative_weights=True)
        self.ramp_steps = schedule_steps("fader", config.schedule, "lambda_e_ramp_steps", self.default_ramp_steps)
        self.adversarial = config.schedule.get("adversarial", "flip")
        if self.adversarial not in ADVERSARIAL_TARGETS:
            raise TrainingError(f"task 'fader': schedule['adversarial'] must be one of {ADVERSARIAL_TARGETS}, "
                                f"got {self.adversarial!r}")
        self.attributes = dict(model_config.attributes)
        #: Training steps done: the position on the λ_E ramp (saved with the task state).
        self.steps_done = 0

    @property
    def lambda_e(self) -> float:
        """λ_E of the next step."""
        return lambda_e_at(self.steps_done, self.loss_weights["lambda_e"], self.ramp_steps)

    # ----------------------------------------------------------------------------------------------- building
    def build_models(self) -> dict[str, nn.Module]:
        from fashion_gans.models import build_models

        return build_models(self.model_config)

    def build_optimizers(self, models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (float(c.betas[0]), float(c.betas[1]))
        return {"ae": torch.optim.Adam(models["fader"].parameters(), lr=c.lr_g, betas=betas),
                "dis": torch.optim.Adam(models["latent_disc"].parameters(), lr=c.lr_d, betas=betas)}

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        from .editing import build_attribute_dataset

        return build_attribute_dataset(self, split)

    def check_data(self, item: dict[str, torch.Tensor]) -> None:
        from .editing import check_attribute_item

        check_attribute_item(self, item)

    # ----------------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        fader, dis = self.models["fader"], self.models["latent_disc"]
        opt_ae, opt_dis = self.optimizers["ae"], self.optimizers["dis"]
        acc = self.accelerator
        w = self.loss_weights
        x, idx = batch["image"], batch["attributes"].long()
        code = self._code(idx)
        lam = self.lambda_e

        # One call through forward (the wrapped module's): reconstruction and latent map, in train mode.
        rec, z = fader(x, code, return_latent=True)
        # 1. Latent discriminator on the detached latent map.
        opt_dis.zero_grad(set_to_none=True)
        logits = dis(z.detach())
        loss_dis = block_cross_entropy(logits, idx, self.attributes)
        acc.backward(loss_dis)
        opt_dis.step()
        dis_acc = _block_accuracy(logits.detach(), idx, self.attributes).mean()

        # 2. Autoencoder: reconstruct with the true code and fool the (frozen, eval-mode) discriminator.
        opt_ae.zero_grad(set_to_none=True)
        with frozen(dis), eval_mode(dis):
            adv = adversarial_loss(dis(z), idx, self.attributes, self.adversarial)
        recon = F.mse_loss(rec.float(), x.float())
        loss_ae = w["recon"] * recon + lam * adv
        acc.backward(loss_ae)
        opt_ae.step()
        self.steps_done += 1
        return {"dis": loss_dis.detach(), "dis_acc": dis_acc, "recon": recon.detach(), "adv": adv.detach(),
                "ae": loss_ae.detach(), "lambda_e": torch.tensor(lam, device=x.device)}

    def _code(self, idx: torch.Tensor) -> torch.Tensor:
        """One-hot code of value indices, built on their device without reading them back (no host sync in the
        training step; :meth:`check_data` has checked the value ranges)."""
        sizes = torch.tensor([len(v) for v in self.attributes.values()], device=idx.device)
        offsets = torch.cumsum(sizes, 0) - sizes
        code = torch.zeros(idx.shape[0], int(sizes.sum()), device=idx.device)
        return code.scatter_(1, idx + offsets, 1.0)

    # ----------------------------------------------------------------------------------------------- results
    def _device(self) -> torch.device:
        return next(self.unwrap("fader").parameters()).device

    def edit(self, images: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Decode ``images`` with ``codes`` (eval mode, no gradient): the edit function of the metrics."""
        fader = self.unwrap("fader")
        with eval_mode(fader), torch.no_grad():
            device = self._device()
            return fader(images.to(device).float(), codes.to(device).float()).float()

    def edit_columns(self, indices: torch.Tensor, count: int = 6) -> list[torch.Tensor]:
        """Target value indices ``(N, n_attributes)`` of ``count`` edits (fewer when the attributes have fewer
        other values): each attribute in turn moved to other values, spread over its range, the rest kept."""
        n_attr = len(self.attributes)
        per = max(1, count // n_attr)
        targets = []
        for k, values in enumerate(self.attributes.values()):
            n = len(values)
            shifts = sorted({1 + (j * (n - 1)) // per for j in range(min(per, n - 1))})
            for s in shifts:
                t = indices.clone()
                t[:, k] = (t[:, k] + s) % n
                targets.append(t)
        return targets

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Columns: input | reconstruction | edits (each attribute moved to other values, the others kept; grey
        images repeated to 3 channels)."""
        x, idx = batch["image"].float(), batch["attributes"].long()
        columns = [x, self.edit(x, attribute_code(idx, self.attributes))]
        columns += [self.edit(x, attribute_code(t, self.attributes)) for t in self.edit_columns(idx)]
        columns = [to_rgb_grid(c.cpu()) for c in columns]
        return torch.stack(columns, dim=1).flatten(0, 1).clamp(-1, 1)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """``recon_l1`` / ``recon_ssim``, ``latent_acc`` / ``latent_chance`` and, on synthetic or Fashion-MNIST
        data, the edit metrics (``edit_success``, ``others_kept``, ...) of the domain's attribute network."""
        from fashion_gans.evaluation.task_metrics import ssim_l1

        fader, dis = self.unwrap("fader"), self.unwrap("latent_disc")
        parts: dict[str, list[torch.Tensor]] = {"recon_l1": [], "recon_ssim": [], "latent_acc": []}
        images, labels = [], []
        device = self._device()
        with eval_mode(fader, dis):
            for batch in batches:
                x, idx = batch["image"].to(device).float(), batch["attributes"].to(device).long()
                z = fader.encode(x)
                rec = fader.decode(z, attribute_code(idx, self.attributes)).float()
                m = ssim_l1(rec, x)
                parts["recon_l1"].append(m["l1"])
                parts["recon_ssim"].append(m["ssim"])
                parts["latent_acc"].append(_block_accuracy(dis(z).float(), idx, self.attributes))
                images.append(x)
                labels.append(idx)
        out = self.mean_metrics(parts)
        images_all, labels_all = eval_images(images, labels)
        out["latent_chance"] = float(torch.stack([
            torch.bincount(labels_all[:, k], minlength=len(v)).max() / labels_all.shape[0]
            for k, v in enumerate(self.attributes.values())]).mean())
        # The editing metrics' own recon_ssim / recon_l1 are the same measure on the same images.
        return {**self._edit_metrics(images_all.cpu(), labels_all), **out}

    def _edit_metrics(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """:func:`~fashion_gans.evaluation.editing.edit_metrics` with the domain's shipped attribute network
        (``synthetic-attributes`` or ``fmnist-classifier``); nothing on data no shipped network knows."""
        if not hasattr(self, "_eval_domain"):
            self._eval_domain = self.evaluation_domain()
        if self._eval_domain not in ("synthetic", "fashion-mnist"):
            return {}
        from fashion_gans.evaluation.editing import attribute_reader, edit_metrics

        reader = attribute_reader(self.attributes, self._device())
        values = edit_metrics(self.edit, images, labels, self.attributes, reader)
        return {k: float(v) for k, v in values.items() if k not in ("n_images", "n_edits")}

    def export(self) -> dict[str, nn.Module]:
        return {"fader": self.unwrap("fader")}

    # ----------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "steps_done": self.steps_done, "lambda_e": self.lambda_e,
                "loss_weights": dict(self.loss_weights), "ramp_steps": self.ramp_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state.get("steps_done", 0))
