"""Learning-rate schedules of the training loop: the thesis' plateau scheduler and the linear decay of pix2pix
and CycleGAN.

The thesis trained CycleGAN and StyleGAN with ``ReduceLROnPlateau`` on both optimisers, fed the *batch* loss and
stepped on every iteration: factor 0.99 (thesis Table 13/16; its text's "to 1‰" is erratum E13, so the factor is
configurable), cooldown 200 (CycleGAN) or 100 (StyleGAN, Table 16), patience 10 ("the check lasts at least 10
steps"), and a minimum learning rate of 5e-6 (the original code).  :class:`PlateauScheduler` is that scheduler,
with one addition: ``every=N`` feeds it the mean loss of ``N`` steps instead of each batch loss (patience and
cooldown then count ``N``-step windows), which smooths the noise a single batch loss has.

How the loop feeds it (:class:`~fashion_gans.training.trainer.Trainer`): the loop reads one small tensor from the
device after every step anyway, to name a non-finite loss at the exact step.  The monitored losses ride in that
same read (averaged over processes in the same all-reduce, so every process takes the same decision and the
learning rates stay identical), so stepping on every batch loss, as the thesis did, costs no extra
synchronisation.  The scheduler's state (best loss, bad-step and cooldown counters, the open window) is saved in
every checkpoint; the learning rate itself lives in the optimiser state.  A resumed run therefore continues the
schedule exactly.  The settings (factor, patience, cooldown, minimum learning rate, threshold, window) are not
restored from a checkpoint: they come from the resumed run's configuration, so a changed ``lr_plateau`` applies.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

__all__ = ["LinearDecayScheduler", "PlateauScheduler", "PLATEAU_DEFAULTS"]

#: The thesis' plateau settings (CycleGAN; StyleGAN uses cooldown 100).
PLATEAU_DEFAULTS: dict[str, Any] = {"factor": 0.99, "patience": 10, "cooldown": 200, "min_lr": 5e-6,
                                    "threshold": 1e-4, "threshold_mode": "rel", "every": 1}


class PlateauScheduler(ReduceLROnPlateau):
    """``ReduceLROnPlateau`` (mode ``min``) fed through :meth:`observe`: every ``every`` observed losses it steps
    once on their mean.  ``state_dict`` includes the open window, so a resume mid-window is exact."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, every: int = 1, factor: float = 0.99,
                 patience: int = 10, cooldown: int = 200, min_lr: float = 5e-6, threshold: float = 1e-4,
                 threshold_mode: str = "rel") -> None:
        super().__init__(optimizer, mode="min", factor=float(factor), patience=int(patience),
                         cooldown=int(cooldown), min_lr=float(min_lr), threshold=float(threshold),
                         threshold_mode=threshold_mode)
        self.every = int(every)
        self.window_sum = 0.0
        self.window_count = 0

    def observe(self, value: float) -> bool:
        """Add one step's loss; step the scheduler when the window is full.  Returns whether it stepped."""
        self.window_sum += float(value)
        self.window_count += 1
        if self.window_count < self.every:
            return False
        mean = self.window_sum / self.window_count
        self.window_sum, self.window_count = 0.0, 0
        self.step(mean)
        return True

    #: What :meth:`load_state_dict` restores: the counters of the schedule, never its settings.
    STATE_KEYS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "_last_lr", "window_sum",
                  "window_count")

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the schedule's counters (best loss, bad-step and cooldown counters, open window); the settings
        stay those this scheduler was built with (``ReduceLROnPlateau.load_state_dict`` would overwrite them)."""
        self.__dict__.update({k: state_dict[k] for k in self.STATE_KEYS if k in state_dict})

    @property
    def lr(self) -> float:
        """Learning rate of the optimiser's first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])


class LinearDecayScheduler:
    """Constant learning rate for the first ``start`` steps, then a linear decay towards zero (pix2pix and
    CycleGAN train at a constant rate for half their epochs and decay it linearly to zero over the other half).

    After ``s`` completed steps every parameter group trains at ``base * min(1, (total - s) / (total - start))``:
    the full rate up to step ``start``, ``1 / (total - start)`` of it for the last update.  The rate depends on the
    step count only, so a resumed run continues the schedule exactly; one resumed with more ``total_steps``
    decays over the new length (its rate rises again if it had already begun decaying).  ``base`` is each group's
    rate when the scheduler is built (after any correction the task applied, such as StyleGAN2's lazy R1 ratio)
    and travels in :meth:`state_dict`.  The loop calls :meth:`observe` after every step; it reads no loss."""

    needs_loss = False

    def __init__(self, optimizer: torch.optim.Optimizer, *, total_steps: int, start: int) -> None:
        total_steps, start = int(total_steps), int(start)
        if total_steps < 1:
            raise ValueError(f"a linear LR decay needs total_steps >= 1, got {total_steps}")
        if not 0 <= start < total_steps:
            raise ValueError(f"the linear LR decay must start in [0, {total_steps}) (total_steps), got {start}")
        self.optimizer = optimizer
        self.total_steps, self.start = total_steps, start
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.steps_done = 0

    def factor(self, steps_done: int) -> float:
        """The share of the base rate used after ``steps_done`` completed steps."""
        if steps_done <= self.start:
            return 1.0
        return max(0.0, (self.total_steps - steps_done) / (self.total_steps - self.start))

    def _apply(self) -> None:
        f = self.factor(self.steps_done)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def observe(self, value: float | None = None) -> bool:
        """Count one completed step and set the rate of the next; ``value`` (a loss) is ignored."""
        self.steps_done += 1
        self._apply()
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "linear", "steps_done": self.steps_done, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step count and base rates (the length and start come from this run's configuration).  A
        state of another schedule (a run switched from ``plateau``) keeps this scheduler's base rates and takes
        the step count from the caller through :meth:`set_step`."""
        if state_dict.get("kind") == "linear":
            if len(state_dict["base_lrs"]) != len(self.base_lrs):
                raise ValueError(f"the saved linear LR schedule has {len(state_dict['base_lrs'])} parameter "
                                 f"group(s); this optimiser has {len(self.base_lrs)}")
            self.base_lrs = [float(v) for v in state_dict["base_lrs"]]
            self.steps_done = int(state_dict["steps_done"])
        self._apply()

    def set_step(self, steps_done: int) -> None:
        """Set the completed step count (a resume) and the rate that goes with it."""
        self.steps_done = int(steps_done)
        self._apply()

    @property
    def lr(self) -> float:
        """Learning rate of the optimiser's first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])
