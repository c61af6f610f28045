"""Attribute editing: IcGAN (Perarnau et al., "Invertible Conditional GANs for image editing", NIPS 2016 workshop).

Networks (:mod:`fashion_gans.models.icgan`): the conditional DCGAN ``generator`` G(z, y) and ``discriminator``
D(x, y), the latent encoder ``encoder_z`` E_z (image -> z) and the attribute encoder ``encoder_y`` E_y (image ->
one logit block per attribute), each with its own Adam (G and both encoders at ``lr_g``, D at ``lr_d``).  y is
the one-hot attribute code (:func:`~fashion_gans.models.attributes.attribute_code`).

The paper trains the cGAN first, then E_z on generated pairs and E_y on labelled real images.  Here the four
updates run in one loop, in this order, on every batch of real images ``x`` with labels ``y``:

(a) **D**, least squares (LSGAN, stable at small scale on the CPU, as the project's other tasks):
    ``L_D = MSE(D(x, y), 1) + MSE(D(G(z, ŷ), ŷ), 0) + mismatch · MSE(D(x, y_wrong), 0)``.
    ``(x, y_wrong)`` is a real image paired with attributes it does not have (one attribute of each label moved
    to another value): without it D could score realism alone and G would be free to ignore y; with it a pair
    is "real" only when the image shows its attributes, the matching-aware discriminator of Reed et al.
    (2016), so G must draw y to fool it.  The fakes are detached.
(b) **G**: ``L_G = adv · MSE(D(G(z, ŷ), ŷ), 1) + recon_g · L1(G(E_z(x), y), x)`` (E_z detached): G also
    redraws real images from their inferred latents and true attributes, an autoencoder path beside the GAN
    one (not in the paper; ``recon_g = 0`` is the paper's G).  On synthetic flats (64 px, batch 16, lr 5e-4)
    it is what makes G usable early: after 200 steps reconstruction SSIM 0.29 with it vs 0.05 without, edit
    success 0.20 vs 0.11.  The conditional D still scores ``G(z, ŷ)`` for random ``z`` and ``ŷ``, which keeps G
    drawing the attributes from y rather than from z.  Then (``edit_cls``, default 1; not in the paper)
    ``+ edit_cls · block_cross_entropy(E_y(G(E_z(x), y_edit)), y_edit)`` with E_y frozen in eval mode: edits
    of real images (one attribute of each label moved, as ``y_wrong``) must read as the requested attributes,
    which counters the reconstruction terms' pull to carry attributes in z instead of y.
(c) **E_z**: ``latent · MSE(E_z(G(z', ŷ')), z')`` on a fresh generated batch (no gradient into G), the
    paper's objective, plus ``recon · L1(G(E_z(x), y), x)`` on the real batch through the frozen G in eval
    mode, the one G uses at editing time.  The paper trains E_z on generated images only and reports poor
    reconstructions of real ones: the generated images are off the real-image manifold early on and E_z then
    fails on real photos.  The reconstruction term asks E_z for the latent that best redraws each real image.
(d) **E_y**: ``attr · block_cross_entropy(E_y(x), y)``: one cross-entropy per attribute block, on real images.

Latents are ``z ~ N(0, I)``; the attributes ``ŷ`` of generated batches follow ``schedule["fake_attributes"]``:
``"shuffle"`` (default: the batch's labels in random order, i.e. the data's label distribution) or
``"uniform"`` (each attribute's value uniformly at random, so rare combinations are drawn too).
``schedule["edit_metrics"]`` (a bool, default true) runs the edit metrics in :meth:`IcGANTask.evaluate`; false
skips them (with ``A`` attributes they cost, per held-out image, ``1 + A`` decodes (its reconstruction and one
edit per attribute) and ``2 + A`` reads by the attribute network (the input, the reconstruction, each edit)).

Loss weights (``TrainConfig.loss_weights``): ``adv`` (1), ``mismatch`` (1), ``latent`` (1), ``recon`` (10),
``recon_g`` (10), ``edit_cls`` (1), ``attr`` (1).  Measured on synthetic flats (64 px, batch 16, lr 1e-3,
200 steps, 128 held-out designs): ``recon_g = recon = 10`` alone gives reconstruction SSIM 0.65 but edit
success 0.22 (the kind stays with z); adding ``edit_cls = 1`` gives SSIM 0.46 and edit success 0.48.

Editing (:meth:`IcGANTask.edit`): ``z = E_z(x)``, ``y`` = the known labels (or ``E_y(x)``), change y, decode
``G(z, y')``.  Held-out metrics (:meth:`IcGANTask.evaluate`): reconstruction ``recon_l1`` / ``recon_ssim``
(``G(E_z(x), y)`` with the true y), ``attr_acc`` (E_y's accuracy, mean over attributes, and per attribute),
``latent_mse`` (E_z on fixed generated pairs) and, on the synthetic world and Fashion-MNIST, the edit metrics of
:func:`fashion_gans.evaluation.editing.edit_metrics` read by the domain's attribute network.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...models import build_models as build_model_dict
from ...models.attributes import attribute_code, block_cross_entropy, code_to_indices
from ..config import TrainingError
from .base import Task, register_task
from .common import eval_mode, frozen, lsgan_loss
from .editing import eval_images
from .pose import ssim

__all__ = ["IcGANTask", "mismatched_attributes", "random_attributes"]

_SCHEDULE_KEYS = ("fake_attributes", "edit_metrics")
_FAKE_ATTRIBUTES = ("shuffle", "uniform")


def mismatched_attributes(indices: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Labels ``(N, n_attributes)`` with, in every row, one randomly chosen attribute moved to another of its
    values (uniformly among the others): a label the image certainly does not have."""
    n, k = indices.shape
    which = torch.randint(0, k, (n,), device=indices.device)
    sizes_t = torch.tensor(sizes, device=indices.device)
    n_values = sizes_t[which]
    shift = 1 + (torch.rand(n, device=indices.device) * (n_values - 1)).long().clamp(max=n_values - 2)
    out = indices.clone()
    rows = torch.arange(n, device=indices.device)
    out[rows, which] = (indices[rows, which] + shift) % n_values
    return out


def random_attributes(indices: torch.Tensor, sizes: list[int], mode: str) -> torch.Tensor:
    """Attributes for a generated batch: the batch's labels shuffled (``shuffle``) or uniform per attribute."""
    if mode == "shuffle":
        return indices[torch.randperm(indices.shape[0], device=indices.device)]
    return torch.stack([torch.randint(0, s, (indices.shape[0],), device=indices.device) for s in sizes], dim=1)


@register_task
class IcGANTask(Task):
    """IcGAN attribute editing (see the module docstring for the updates, losses and weights)."""

    name: ClassVar[str] = "icgan"
    default_loss_weights: ClassVar[dict[str, float]] = {"adv": 1.0, "mismatch": 1.0, "latent": 1.0, "recon": 10.0,
                                                        "recon_g": 10.0, "edit_cls": 1.0,
                                                        "attr": 1.0}
    lr_monitor: ClassVar[dict[str, str]] = {"g": "g", "d": "d", "e_z": "e_z", "e_y": "e_y"}

    def __init__(self, config, model_config) -> None:
        super().__init__(config, model_config)
        from fashion_gans.models import IcGANConfig

        self.check_setup(IcGANConfig, _SCHEDULE_KEYS, non_negative_weights=True)
        s = dict(config.schedule)
        self.fake_attributes = str(s.get("fake_attributes", "shuffle"))
        if self.fake_attributes not in _FAKE_ATTRIBUTES:
            raise TrainingError(f"task 'icgan': schedule['fake_attributes'] must be one of {_FAKE_ATTRIBUTES}, "
                                f"got {self.fake_attributes!r}")
        # Edit metrics read every edited image with the domain's attribute network: on by default, off to keep a
        # quick evaluation cheap.
        with_edit = s.get("edit_metrics", True)
        if not isinstance(with_edit, bool):  # bool("false") is True: accept only a real JSON true / false
            raise TrainingError(f"task 'icgan': schedule['edit_metrics'] must be true or false, got {with_edit!r}")
        self.with_edit_metrics = with_edit
        self.attributes = dict(model_config.attributes)
        self.sizes = [len(v) for v in self.attributes.values()]

    # ----------------------------------------------------------------------------------------------- building
    def build_models(self) -> dict[str, nn.Module]:
        return build_model_dict(self.model_config)

    def build_optimizers(self, models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"g": torch.optim.Adam(models["generator"].parameters(), lr=c.lr_g, betas=c.betas),
                "d": torch.optim.Adam(models["discriminator"].parameters(), lr=c.lr_d, betas=c.betas),
                "e_z": torch.optim.Adam(models["encoder_z"].parameters(), lr=c.lr_g, betas=c.betas),
                "e_y": torch.optim.Adam(models["encoder_y"].parameters(), lr=c.lr_g, betas=c.betas)}

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        from .editing import build_attribute_dataset

        return build_attribute_dataset(self, split)

    def check_data(self, item: dict[str, torch.Tensor]) -> None:
        from .editing import check_attribute_item

        check_attribute_item(self, item)

    # ----------------------------------------------------------------------------------------------- helpers
    def code(self, indices: torch.Tensor) -> torch.Tensor:
        """One-hot attribute code of value indices ``(N, n_attributes)``."""
        return attribute_code(indices, self.attributes)

    def _latents(self, n: int, device) -> torch.Tensor:
        return torch.randn(n, self.model_config.z_dim, device=device)

    # ----------------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        G, D = self.models["generator"], self.models["discriminator"]
        Ez, Ey = self.models["encoder_z"], self.models["encoder_y"]
        opt = self.optimizers
        acc = self.accelerator
        w = self.loss_weights
        x, labels = batch["image"], batch["attributes"].long()
        n, device = x.shape[0], x.device
        y = self.code(labels).to(x.dtype)

        # (a) D: real pairs -> 1, generated pairs -> 0, real images with wrong attributes -> 0.  One forward per
        # kind of pair, as DCGAN: D's BatchNorm then normalises the fakes by fake statistics alone, exactly as in
        # the G step (a joint batch would score the fakes differently there than here).
        fake_labels = random_attributes(labels, self.sizes, self.fake_attributes)
        y_fake = self.code(fake_labels).to(x.dtype)
        fake = G(self._latents(n, device), y_fake)
        y_wrong = self.code(mismatched_attributes(labels, self.sizes)).to(x.dtype)
        opt["d"].zero_grad(set_to_none=True)
        d_real = lsgan_loss(D(x, y), 1.0)
        d_fake = lsgan_loss(D(fake.detach(), y_fake), 0.0)
        d_mismatch = lsgan_loss(D(x, y_wrong), 0.0)
        loss_d = d_real + d_fake + w["mismatch"] * d_mismatch
        acc.backward(loss_d)
        opt["d"].step()

        # (b) G: make D take the generated pairs for real ones (+ optionally redraw real images from E_z).
        opt["g"].zero_grad(set_to_none=True)
        with frozen(D):
            g_adv = lsgan_loss(D(fake, y_fake), 1.0)
        loss_g = w["adv"] * g_adv
        out = {}
        if w["recon_g"] > 0 or w["edit_cls"] > 0:
            with torch.no_grad():
                z_real = Ez(x)
        if w["recon_g"] > 0:
            g_recon = F.l1_loss(G(z_real, y).float(), x.float())
            loss_g = loss_g + w["recon_g"] * g_recon
            out["g_recon"] = g_recon.detach()
        if w["edit_cls"] > 0:
            # Edits of real images (one attribute moved) must read as the requested attributes to E_y.
            edit_labels = mismatched_attributes(labels, self.sizes)
            edited = G(z_real, self.code(edit_labels).to(x.dtype))
            with frozen(Ey), eval_mode(Ey):
                g_edit_cls = block_cross_entropy(Ey(edited), edit_labels, self.attributes)
            loss_g = loss_g + w["edit_cls"] * g_edit_cls
            out["g_edit_cls"] = g_edit_cls.detach()
        acc.backward(loss_g)
        opt["g"].step()

        # (c) E_z: recover z from fresh generated images (no gradient into G), and redraw real images through
        # the frozen G in eval mode (the G of editing time).
        opt["e_z"].zero_grad(set_to_none=True)
        z2 = self._latents(n, device)
        y2 = self.code(random_attributes(labels, self.sizes, self.fake_attributes)).to(x.dtype)
        with torch.no_grad():
            generated = G(z2, y2)
        ez_latent = F.mse_loss(Ez(generated).float(), z2.float())
        loss_ez = w["latent"] * ez_latent
        if w["recon"] > 0:
            with frozen(G), eval_mode(G):
                ez_recon = F.l1_loss(G(Ez(x), y).float(), x.float())
            loss_ez = loss_ez + w["recon"] * ez_recon
            out["e_z_recon"] = ez_recon.detach()
        acc.backward(loss_ez)
        opt["e_z"].step()

        # (d) E_y: the attributes of labelled real images.
        opt["e_y"].zero_grad(set_to_none=True)
        ey_ce = block_cross_entropy(Ey(x), labels, self.attributes)
        loss_ey = w["attr"] * ey_ce
        acc.backward(loss_ey)
        opt["e_y"].step()

        out.update({"d_real": d_real.detach(), "d_fake": d_fake.detach(), "d_mismatch": d_mismatch.detach(),
                    "d": loss_d.detach(), "g_adv": g_adv.detach(), "g": loss_g.detach(),
                    "e_z_latent": ez_latent.detach(), "e_z": loss_ez.detach(), "e_y": loss_ey.detach()})
        return out

    # ----------------------------------------------------------------------------------------------- editing
    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, y)`` of images: E_z's latent and E_y's attribute code (softmax per block)."""
        Ez, Ey = self.unwrap("encoder_z"), self.unwrap("encoder_y")
        with eval_mode(Ez, Ey):
            return Ez(images), Ey.code(images)

    @torch.no_grad()
    def edit(self, images: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Images redrawn with the attribute code ``code`` ``(N, code_size)`` (one-hot blocks, or blends):
        ``G(E_z(x), y')``; the editor of :func:`fashion_gans.evaluation.editing.edit_metrics`."""
        G, Ez = self.unwrap("generator"), self.unwrap("encoder_z")
        with eval_mode(G, Ez):
            return G(Ez(images), code.to(images.dtype))

    # ----------------------------------------------------------------------------------------------- results
    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Columns: input | reconstruction ``G(E_z(x), E_y(x))`` | one edit per attribute (its value moved to the
        next one, the others kept)."""
        from .generation import to_rgb_grid

        x, labels = batch["image"], batch["attributes"].long()
        G = self.unwrap("generator")
        z, y_hat = self.encode(x)
        with eval_mode(G):
            cols = [x.float(), G(z, y_hat.to(x.dtype)).float()]
            for k, size in enumerate(self.sizes):
                target = labels.clone()
                target[:, k] = (target[:, k] + 1) % size
                cols.append(G(z, self.code(target).to(x.dtype)).float())
        cols = [to_rgb_grid(c) for c in cols]
        return torch.stack(cols, dim=1).flatten(0, 1).clamp(-1, 1)

    def _reader(self):
        """The attribute reader of :func:`fashion_gans.evaluation.editing.edit_metrics` for the data's domain
        (``synthetic-attributes`` on the synthetic world, ``fmnist-classifier`` on Fashion-MNIST), else None."""
        if self.evaluation_domain() not in ("synthetic", "fashion-mnist"):
            return None
        if not hasattr(self, "_attribute_reader"):
            from fashion_gans.evaluation.editing import attribute_reader

            device = self.accelerator.device if self.accelerator is not None else None
            self._attribute_reader = attribute_reader(self.attributes, device)
        return self._attribute_reader

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Held-out metrics: ``recon_l1`` (lower is better) and ``recon_ssim`` (higher) of ``G(E_z(x), y)`` with
        the true attributes, ``attr_acc`` (E_y, mean over attributes; ``attr_acc_<name>`` per attribute),
        ``latent_mse`` (E_z on generated pairs of fixed latents, lower is better) and, when the data is the
        synthetic world or Fashion-MNIST, the edit metrics of
        :func:`fashion_gans.evaluation.editing.edit_metrics` (each attribute of every image moved to another value,
        one at a time, the results read by the domain's attribute network)."""
        G, Ez, Ey = self.unwrap("generator"), self.unwrap("encoder_z"), self.unwrap("encoder_y")
        names = list(self.attributes)
        keys = ["recon_l1", "recon_ssim", "attr_acc", "latent_mse", *[f"attr_acc_{k}" for k in names]]
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        images, labels_all = [], []
        with eval_mode(G, Ez, Ey):
            for batch in batches:
                x, labels = batch["image"], batch["attributes"].long()
                images.append(x)
                labels_all.append(labels)
                recon = G(Ez(x), self.code(labels).to(x.dtype)).float()
                parts["recon_l1"].append((recon - x.float()).abs().flatten(1).mean(1))
                parts["recon_ssim"].append(ssim(recon, x.float()))
                pred = code_to_indices(Ey(x), self.attributes)
                right = (pred == labels).float()
                parts["attr_acc"].append(right.mean(1))
                for k, name in enumerate(names):
                    parts[f"attr_acc_{name}"].append(right[:, k])
                # E_z on generated pairs: latents from a fixed generator, attributes the batch's labels.
                gen = torch.Generator().manual_seed(len(parts["latent_mse"]))
                z = torch.randn(x.shape[0], self.model_config.z_dim, generator=gen).to(x.device, x.dtype)
                parts["latent_mse"].append((Ez(G(z, self.code(labels).to(x.dtype))) - z).float().square().mean(1))
        metrics = self.mean_metrics(parts)
        reader = self._reader() if self.with_edit_metrics and images else None
        if reader is not None:
            from fashion_gans.evaluation.editing import edit_metrics

            x_all, labels = eval_images(images, labels_all)
            values = edit_metrics(self.edit, x_all, labels, self.attributes, reader)
            # recon_ssim / recon_l1 are computed above the same way; n_images / n_edits are counts, not metrics.
            metrics.update({k: float(v) for k, v in values.items()
                            if k not in metrics and k not in ("n_images", "n_edits")})
        return metrics

    def export(self) -> dict[str, nn.Module]:
        return {"generator": self.unwrap("generator"), "encoder_z": self.unwrap("encoder_z"),
                "encoder_y": self.unwrap("encoder_y")}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "loss_weights": dict(self.loss_weights)}
