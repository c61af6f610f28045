"""Pose transfer: PGPG / "PoseGAN" (thesis §3.1).

Networks: the generator (G1 coarse U-Net with the FC bottleneck + G2 refiner, one module, one Adam) and the
conditional PatchGAN D on ``concat(source, target | generated)`` (its own Adam).  Losses (LSGAN, least squares):

* ``L_D  = MSE(D(I_A, I_B), 1) + MSE(D(I_A, Î_B), 0)``, with ``Î_B`` detached (the D step never reaches G);
* ``L_G1 = ‖(Î_B1 − I_B) ⊙ (1 + M_B)‖₁`` (mask-weighted L1 of the coarse image; body pixels count double);
* ``L_G2 = MSE(D(I_A, Î_B), 1) + λ_recon · ‖(Î_B − I_B) ⊙ (1 + M_B)‖₁``;
* ``L_G  = L_G1 + L_G2``.  G1 is frozen inside ``L_G2`` (the generator's ``detach_coarse``): G1 learns only from
  its own L1, G2 from the adversarial and refined L1 terms, both through one optimiser, as in the thesis.

Update order per batch: D, then G (the thesis' order).  L1 terms are means over pixels (the thesis' ‖·‖₁ is a
sum; a mean keeps the weights independent of the resolution).

Loss weights (``TrainConfig.loss_weights``):

=========  =======  ==============================================================================================
key        default  meaning
=========  =======  ==============================================================================================
``g1``     1.0      weight of ``L_G1`` in the generator loss
``adv``    1.0      weight of G2's adversarial term
``mask``   1.0      extra weight of body pixels in both L1 terms: ``(1 + mask · M)``.  The thesis equation has 1
                    (body 2, background 1); the thesis code used weight 3 on the body and 2 on the background.
=========  =======  ==============================================================================================

Schedules (``TrainConfig.schedule``): ``recon_epochs``: ``[[epoch, λ_recon], ...]``, the first at epoch 0; the
weight of the refined L1 from each listed epoch on.  Default: the thesis run ``[[0, 1], [37, 5], [66, 10]]``
(thesis erratum E7: the text says "1→5 at epoch 66"; it is 5→10, as its table and the notebooks record).

Thesis optimiser settings (Table 7), for a faithful run: ``lr_g = lr_d = 1e-4``, ``betas = (0.9, 0.999)``, batch
48, 128 px, DensePose IUV pose (preset ``pgpg_thesis``), 93 epochs.  The values in :class:`TrainConfig` are used
as given.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...models import build_models as build_model_dict
from ..config import TrainingError
from .base import Task, register_task
from .common import eval_mode, lsgan_loss

__all__ = ["PoseTask", "DEFAULT_RECON_EPOCHS", "recon_weight_at", "masked_l1", "ssim", "lsgan_loss"]

#: Thesis λ_recon schedule (epoch, weight).  Thesis erratum E7: 1 → 5 at epoch 37, 5 → 10 at epoch 66.
DEFAULT_RECON_EPOCHS: tuple[tuple[int, float], ...] = ((0, 1.0), (37, 5.0), (66, 10.0))
_SCHEDULE_KEYS = ("recon_epochs",)
_RENDER_ONLY = ("size",)


# ---------------------------------------------------------------------------------------------- losses, metrics
def masked_l1(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, body_weight: float = 1.0) -> torch.Tensor:
    """Mean of ``|x − y| ⊙ (1 + body_weight · M)`` (the thesis' mask-weighted L1), per batch."""
    weight = 1.0 + body_weight * mask.float()
    return ((x.float() - y.float()).abs() * weight).mean()


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of two ``(N, C, H, W)`` batches in ``[-1, 1]``, shape ``(N,)``.

    Computed on ``[0, 1]`` images (data range 1) with an 11x11 Gaussian window (σ 1.5), ``K1 = 0.01``,
    ``K2 = 0.03``, valid-region averaging, per channel then averaged.  The thesis' SSIM used the wrong constants
    for its data range; these are the standard ones.
    """
    x = (x.float() + 1) / 2
    y = (y.float() + 1) / 2
    n, c, h, w = x.shape
    size = min(window, h, w)
    win = _gaussian_window(size, sigma, c, x.device, x.dtype)
    c1, c2 = 0.01**2, 0.03**2

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def recon_weight_at(schedule: Iterable[Iterable[float]], epoch: int) -> float:
    """λ_recon of ``epoch`` under a ``[[start_epoch, weight], ...]`` schedule (the last start <= epoch)."""
    weight = None
    for start, value in schedule:
        if epoch >= start:
            weight = float(value)
    if weight is None:
        raise TrainingError(f"schedule recon_epochs {schedule!r} has no entry for epoch {epoch}")
    return weight


def _parse_recon_schedule(raw: Any) -> tuple[tuple[int, float], ...]:
    where = "TrainConfig.schedule['recon_epochs']"
    try:
        entries = [(int(e), float(w)) for e, w in raw]
    except (TypeError, ValueError):
        raise TrainingError(f"{where}: expected [[epoch, weight], ...], got {raw!r}") from None
    if not entries or entries[0][0] != 0:
        raise TrainingError(f"{where}: the first entry must start at epoch 0, got {raw!r}")
    if any(b[0] <= a[0] for a, b in zip(entries, entries[1:])):
        raise TrainingError(f"{where}: epochs must increase, got {raw!r}")
    if any(not np.isfinite(w) or w < 0 for _, w in entries):
        raise TrainingError(f"{where}: weights must be finite and >= 0, got {raw!r}")
    return tuple(entries)


# ---------------------------------------------------------------------------------------------- data helpers
def dataset_kwargs(cls: type, options: dict[str, Any], fixed: dict[str, Any], task: str) -> dict[str, Any]:
    """Keyword arguments for a dataset class: ``options`` (``TrainConfig.data_options``) that the class accepts,
    plus ``fixed`` (what the model config dictates).  An option contradicting a fixed value is an error; options
    the class does not take, and ``size`` (the rendering size of synthetic data; images are always loaded at the
    model resolution), are left to the synthetic renderer."""
    params = inspect.signature(cls.__init__).parameters
    out = {k: v for k, v in options.items() if k in params and not k.startswith("_") and k not in _RENDER_ONLY}
    for key, value in fixed.items():
        if key in out and out[key] != value:
            raise TrainingError(f"task {task!r}: data_options[{key!r}] = {out[key]!r} contradicts the model "
                                f"config ({value!r})")
        out[key] = value
    return out


def data_folder(location: str, sub: str) -> Path:
    """A prepared data folder (``scripts/prepare_data.py`` output has one subfolder per dataset) or a dataset
    root itself."""
    path = Path(location)
    if not path.exists():
        raise TrainingError(f"data folder {path} does not exist")
    return path / sub if (path / sub).is_dir() else path


def resolve(config) -> tuple[str, str]:
    """``(kind, location)`` of ``config.data`` (:func:`fashion_gans.training.data.resolve_data`)."""
    from ..data import resolve_data

    return resolve_data(config)


def synthetic(config, datasets: tuple[str, ...]) -> Path:
    """The synthetic world of this run, rendered once (:func:`fashion_gans.training.data.synthetic_root`)."""
    from ..data import synthetic_root

    return Path(synthetic_root(config, datasets))


def _pose_to_rgb(pose: torch.Tensor, keypoints: torch.Tensor | None) -> torch.Tensor:
    """A pose condition as an RGB image in [-1, 1]: IUV as is; heatmaps as the OpenPose skeleton (from keypoints
    when the batch has them) or as colour-coded joint blobs."""
    from ...data.pose import OPENPOSE18_COLOURS, draw_skeleton

    if pose.shape[1] == 3:
        return pose.float() * 2 - 1
    n, _, h, w = pose.shape
    if keypoints is not None and keypoints.shape[1:] == (18, 2):
        kp = keypoints.detach().float().cpu().numpy()
        imgs = [torch.from_numpy(draw_skeleton(kp[i], (h, w))).permute(2, 0, 1) for i in range(n)]
        return (torch.stack(imgs).float() / 127.5 - 1).to(pose.device)
    colours = torch.tensor(OPENPOSE18_COLOURS[: pose.shape[1]], dtype=torch.float32, device=pose.device) / 255.0
    rgb = torch.einsum("nkhw,kc->nchw", pose.float().clamp(0, 1), colours).clamp(0, 1)
    return rgb * 2 - 1


# ---------------------------------------------------------------------------------------------- the task
@register_task
class PoseTask(Task):
    """PGPG pose transfer (see the module docstring for the losses, weights and schedule)."""

    name = "pose"
    default_loss_weights = {"g1": 1.0, "adv": 1.0, "mask": 1.0}
    lr_monitor = {"g": "g", "d": "d"}  # for lr_schedule="plateau"; the thesis trained PGPG without one

    def __init__(self, config, model_config) -> None:
        super().__init__(config, model_config)
        self.check_setup(schedule_keys=_SCHEDULE_KEYS)
        self.recon_schedule = _parse_recon_schedule(config.schedule.get("recon_epochs", DEFAULT_RECON_EPOCHS))
        self.recon_weight = recon_weight_at(self.recon_schedule, 0)
        self._recon_cache: tuple[float, torch.Tensor] | None = None

    # ----------------------------------------------------------------------------------------------- building
    def build_models(self) -> dict[str, nn.Module]:
        return build_model_dict(self.model_config)

    def build_optimizers(self, models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        # G1 and G2 jointly by one Adam (thesis), D by another.
        return {"g": torch.optim.Adam(models["generator"].parameters(), lr=c.lr_g, betas=c.betas),
                "d": torch.optim.Adam(models["discriminator"].parameters(), lr=c.lr_d, betas=c.betas)}

    @property
    def dataset_pose_encoding(self) -> str:
        return "iuv" if self.model_config.pose_encoding == "iuv" else "heatmap"

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        from ...data.inshop import InShopPoseDataset

        kind, location = resolve(self.config)
        kwargs = dataset_kwargs(InShopPoseDataset, self.config.data_options,
                                {"pose_encoding": self.dataset_pose_encoding,
                                 "size": tuple(self.model_config.image_size)}, self.name)
        if kind == "synthetic":
            return InShopPoseDataset(synthetic(self.config, ("inshop",)) / "inshop", split, **kwargs)
        if kind == "folder":
            return InShopPoseDataset(data_folder(location, "inshop"), split, **kwargs)
        if kind == "hf":
            return InShopPoseDataset.from_hf(location, split, **kwargs)
        raise TrainingError(f"task 'pose' cannot train on data kind {kind!r} ({self.config.data!r}); "
                            "use synthetic, a DeepFashion In-shop folder or hf:REPO")

    def check_data(self, item: dict[str, torch.Tensor]) -> None:
        mc = self.model_config
        want = (mc.image_channels, *mc.image_size)
        for key in ("source_image", "target_image", "target_pose", "target_mask"):
            if key not in item:
                raise TrainingError(f"task 'pose': dataset items have no {key!r} (keys: {sorted(item)})")
        got = tuple(item["source_image"].shape)
        if got != want:
            raise TrainingError(f"task 'pose': dataset images are {got} (C, H, W) but the model config "
                                f"{type(mc).__name__} expects {want} (image_size {tuple(mc.image_size)})")
        pose = tuple(item["target_pose"].shape)
        if pose[0] != mc.pose_channels or pose[1:] != want[1:]:
            raise TrainingError(f"task 'pose': dataset target_pose is {pose} but the model config expects "
                                f"({mc.pose_channels}, {want[1]}, {want[2]}) (pose_encoding "
                                f"{mc.pose_encoding!r}: {mc.pose_channels} channels)")

    # ----------------------------------------------------------------------------------------------- training
    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self.recon_weight = recon_weight_at(self.recon_schedule, epoch)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        G, D = self.models["generator"], self.models["discriminator"]
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        acc = self.accelerator
        src, tgt = batch["source_image"], batch["target_image"]
        pose, mask = batch["target_pose"], batch["target_mask"]
        w = self.loss_weights

        out = G(src, pose, detach_coarse=True)  # G1 frozen inside G2's loss
        fake = out.refined

        # D step: real and (detached) generated pairs in one forward (PatchGAN uses instance norm: per sample).
        opt_d.zero_grad(set_to_none=True)
        scores = D(torch.cat([src, src]), torch.cat([tgt, fake.detach()]))
        s_real, s_fake = scores.chunk(2)
        d_real, d_fake = lsgan_loss(s_real, 1.0), lsgan_loss(s_fake, 0.0)
        loss_d = d_real + d_fake
        acc.backward(loss_d)
        opt_d.step()

        # G step: L_G1 + L_G2.  D's parameter gradients from this backward are cleared before the next D step.
        opt_g.zero_grad(set_to_none=True)
        g1_l1 = masked_l1(out.coarse, tgt, mask, w["mask"])
        g2_adv = lsgan_loss(D(src, fake), 1.0)
        g2_l1 = masked_l1(fake, tgt, mask, w["mask"])
        loss_g = w["g1"] * g1_l1 + w["adv"] * g2_adv + self.recon_weight * g2_l1
        acc.backward(loss_g)
        opt_g.step()

        return {"d_real": d_real.detach(), "d_fake": d_fake.detach(), "d": loss_d.detach(),
                "g1_l1": g1_l1.detach(), "g2_adv": g2_adv.detach(), "g2_l1": g2_l1.detach(), "g": loss_g.detach(),
                "lambda_recon": self._recon_weight_tensor(loss_g.device)}

    def _recon_weight_tensor(self, device: torch.device) -> torch.Tensor:
        """λ_recon as a 0-dim tensor on ``device`` for the loss log, made once per value (no per-step copy)."""
        cached = self._recon_cache
        if cached is None or cached[0] != self.recon_weight or cached[1].device != device:
            self._recon_cache = (self.recon_weight, torch.tensor(self.recon_weight, device=device))
        return self._recon_cache[1]

    # ----------------------------------------------------------------------------------------------- results
    def _generate(self, batch: dict[str, torch.Tensor]):
        G = self.models["generator"]
        with eval_mode(G), torch.no_grad():
            return G(batch["source_image"], batch["target_pose"])

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Columns: source | target pose (skeleton or IUV as RGB) | target | G1 coarse | output."""
        out = self._generate(batch)
        pose_rgb = _pose_to_rgb(batch["target_pose"], batch.get("target_keypoints"))
        cols = [batch["source_image"].float(), pose_rgb.to(out.refined.device), batch["target_image"].float(),
                out.coarse.float(), out.refined.float()]
        return torch.stack(cols, dim=1).flatten(0, 1).clamp(-1, 1)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Held-out metrics (lower is better except ``ssim``): ``l1`` (refined vs target, plain L1 in [-1, 1]),
        ``l1_masked`` (the training loss' mask-weighted L1), ``l1_coarse`` (G1's), ``ssim`` (refined vs target) and
        ``l1_copy_source`` (the trivial baseline: the source image returned unchanged); plus the ground-truth task
        metrics of :meth:`ground_truth_metrics` (``keypoint_error``, ``pck_0.05`` ...)."""
        body = self.loss_weights["mask"]
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in
                                                ("l1", "l1_masked", "l1_coarse", "ssim", "l1_copy_source")}
        truth: list[dict[str, float]] = []
        for batch in batches:
            out = self._generate(batch)
            truth.append(self.ground_truth_metrics(batch, out.refined.float()))
            tgt, src = batch["target_image"].float(), batch["source_image"].float()
            weight = 1.0 + body * batch["target_mask"].float()
            per = {
                "l1": (out.refined.float() - tgt).abs().flatten(1).mean(1),
                "l1_masked": ((out.refined.float() - tgt).abs() * weight).flatten(1).mean(1),
                "l1_coarse": (out.coarse.float() - tgt).abs().flatten(1).mean(1),
                "ssim": ssim(out.refined, tgt),
                "l1_copy_source": (src - tgt).abs().flatten(1).mean(1),
            }
            for k, v in per.items():
                parts[k].append(v)
        return self.merge_metrics(self.mean_metrics(parts), truth)

    def export(self) -> dict[str, nn.Module]:
        return {"generator": self.unwrap("generator")}

    # ----------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "recon_weight": self.recon_weight,
                "recon_schedule": [list(e) for e in self.recon_schedule]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        # The schedule of the current config wins (a resumed run may change it); the weight follows the epoch.
        self.recon_weight = recon_weight_at(self.recon_schedule, self.epoch)
