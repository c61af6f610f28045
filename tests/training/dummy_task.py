"""A tiny task for testing the training loop alone: one linear generator, one linear critic, random data.

It uses the global torch RNG inside its step (noise), keeps extra state (a step counter tensor), and can inject
a non-finite loss (``loss_weights={"nan_at": STEP}``; once per process with ``"nan_once": 1``) or contradict its
data (``data_options={"contradict": True}``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fashion_gans.training.config import TrainingError
from fashion_gans.training.tasks.base import Task

_NAN_FIRED: set[int] = set()


class _Data(torch.utils.data.Dataset):
    def __init__(self, n: int, offset: int) -> None:
        g = torch.Generator().manual_seed(1234 + offset)
        self.images = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        # Depends on the epoch, so a missed set_epoch changes the result.
        return {"image": self.images[i] * (1.0 - 0.01 * self.epoch)}


class DummyTask(Task):
    name = "dummy"
    default_loss_weights = {"nan_at": -1.0, "nan_once": 0.0}
    lr_monitor = {"g": "g_adv", "d": "d_loss"}  # used with lr_schedule="plateau" (default: none)

    def build_models(self) -> dict[str, nn.Module]:
        return {"generator": nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh()),
                "discriminator": nn.Linear(3 * 8 * 8, 1)}

    def build_optimizers(self, models):
        return {"g": torch.optim.Adam(models["generator"].parameters(), lr=1e-2),
                "d": torch.optim.Adam(models["discriminator"].parameters(), lr=1e-2)}

    def build_dataset(self, split: str):
        n = int(self.config.data_options.get("n_" + split, self.config.synthetic_size))
        return _Data(n, 0 if split == "train" else 1)

    def check_data(self, item) -> None:
        if self.config.data_options.get("contradict"):
            raise TrainingError("dummy: image size 8 contradicts the model config")

    def bind(self, accelerator, models, optimizers) -> None:
        super().bind(accelerator, models, optimizers)
        self.counter = torch.zeros((), device=accelerator.device)
        self.batch_formats: list[bool] = []  # whether each training batch's images were channels_last

    def training_step(self, batch, step):
        self.batch_formats.append(batch["image"].is_contiguous(memory_format=torch.channels_last))
        real = batch["image"].flatten(1)
        g, d = self.models["generator"], self.models["discriminator"]
        z = torch.randn(real.shape[0], 4, device=real.device)
        fake = g(z)
        d_loss = (d(fake.detach()) - d(real)).mean() + 0.1 * (d(real) ** 2).mean()
        self.optimizers["d"].zero_grad()
        self.accelerator.backward(d_loss)
        self.optimizers["d"].step()
        g_loss = -d(g(z)).mean()
        self.optimizers["g"].zero_grad()
        self.accelerator.backward(g_loss)
        self.optimizers["g"].step()
        self.counter += 1
        if int(self.loss_weights["nan_at"]) == step:
            once = bool(self.loss_weights["nan_once"])
            if not once or step not in _NAN_FIRED:
                _NAN_FIRED.add(step)
                g_loss = g_loss * float("nan")
        return {"d_loss": d_loss.detach(), "g_adv": g_loss.detach()}

    @torch.no_grad()
    def sample(self, batch):
        n = batch["image"].shape[0]
        fake = self.models["generator"](torch.randn(n, 4, device=batch["image"].device)).view(n, 3, 8, 8)
        return torch.cat([batch["image"], fake])

    @torch.no_grad()
    def evaluate(self, batches) -> dict[str, float]:
        total = 0.0
        for batch in batches:
            n = batch["image"].shape[0]
            fake = self.models["generator"](torch.randn(n, 4, device=batch["image"].device))
            total += float((fake.mean(0) - batch["image"].flatten(1).mean(0)).abs().mean())
        return {"mean_l1": total / max(1, len(batches))}

    def export(self):
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "counter": self.counter.cpu()}

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.counter = state["counter"].to(self.accelerator.device)
