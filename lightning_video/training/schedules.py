"""Learning-rate schedules of the papers that torch does not ship as one class."""
from __future__ import annotations

import math

from lightning_utilities.core.rank_zero import rank_zero_warn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warmup from `warmup_start_factor` × lr, then cosine decay to `min_factor` × lr (X-ViT recipe).

    Its length is the trainer's (`trainer.max_epochs` or `trainer.max_steps`), given by `VideoClassifier` through
    `span`, so training length is set in one place. Trained in epochs without `warmup_steps`, it steps once per
    epoch, as the X-ViT code does and as the measured results were trained; with `warmup_steps` or `trainer.max_steps`
    it steps once per optimizer step (warmup in epochs then counts each epoch's steps).

    Kept over the libraries' (lr factors of 10 epochs, warmup 2, per epoch):
    ours and timm's `CosineLRScheduler(warmup_prefix=True, t_initial=8)` 0.100 0.550 1.000 0.962 0.854 ... 0.038;
    timm's without `warmup_prefix` 0.100 0.550 0.905 (its cosine starts at step 0, under the warmup); transformers'
    `get_cosine_schedule_with_warmup` 0.000 0.500 1.000 ... (no start factor: stepped per epoch, the first epoch trains
    at lr 0). timm's matches, but is no torch `LRScheduler` (Lightning then needs `lr_scheduler_step` overridden),
    takes its length when built rather than from the trainer (`span`), and keeps another state in checkpoints.

    Args:
        optimizer: the optimizer.
        warmup_epochs: epochs of linear warmup; clamped to leave at least one epoch (or step) of decay.
        warmup_steps: optimizer steps of linear warmup instead (then the schedule steps per optimizer step).
        warmup_start_factor: lr multiplier at the first epoch (or step).
        min_factor: lr multiplier reached at the end.
        total: the schedule's length in its steps; None until `span` gives the trainer's.
    """

    def __init__(self, optimizer: Optimizer, warmup_epochs: float = 0, warmup_steps: int | None = None,
                 warmup_start_factor: float = 0.1, min_factor: float = 0.0, total: int | None = None) -> None:
        if warmup_epochs < 0 or (warmup_steps or 0) < 0:
            raise ValueError(f"warmup must be >= 0, got warmup_epochs={warmup_epochs}, warmup_steps={warmup_steps}")
        self.warmup_epochs, self.warmup_steps = warmup_epochs, warmup_steps
        self.warmup_start_factor, self.min_factor = warmup_start_factor, min_factor
        self.total, self.warmup = total, 0
        if total is not None:
            self._set_length(total, warmup_steps if warmup_steps is not None else round(warmup_epochs))
        super().__init__(optimizer, self.factor)

    @property
    def per_step(self) -> bool:
        """Whether warmup was asked in steps, so that the schedule must step per optimizer step."""
        return self.warmup_steps is not None

    def span(self, total: int, steps_per_epoch: int = 1) -> None:
        """Spread the schedule over `total` of its steps (epochs, or optimizer steps with `steps_per_epoch`)."""
        warmup = self.warmup_steps if self.warmup_steps is not None else round(self.warmup_epochs * steps_per_epoch)
        self._set_length(total, warmup)
        for group, lr in zip(self.optimizer.param_groups, self.base_lrs):  # the first lr, now the length is known
            group["lr"] = lr * self.factor(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _set_length(self, total: int, warmup: int) -> None:
        if total < 1:
            raise ValueError(f"the lr schedule needs a length of at least 1, got {total}")
        if warmup >= total:
            rank_zero_warn(f"lr warmup of {warmup} of the schedule's steps clamped to {total - 1}: training is "
                           f"{total} long and the lr must decay in at least one")
        self.total, self.warmup = total, min(warmup, total - 1)

    def factor(self, step: int) -> float:
        """The lr multiplier at `step` of the schedule (an epoch, or an optimizer step)."""
        if step < self.warmup:
            return self.warmup_start_factor + (1 - self.warmup_start_factor) * step / self.warmup
        if self.total is None:  # before `span`: the lr a schedule without warmup starts from
            return 1.0
        progress = min((step - self.warmup) / (self.total - self.warmup), 1.0)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
