"""Learning-rate schedules of the papers that torch does not ship as one class."""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warmup from `warmup_start_factor` × lr, then cosine decay to `min_factor` × lr (X-ViT recipe).

    Stepped once per epoch (fractional warmup is rounded to whole epochs).

    Args:
        optimizer: the optimizer.
        max_epochs: the length of training; keep it equal to `trainer.max_epochs`.
        warmup_epochs: epochs of linear warmup.
        warmup_start_factor: lr multiplier at the first epoch.
        min_factor: lr multiplier reached at the end.
    """

    def __init__(self, optimizer: Optimizer, max_epochs: int, warmup_epochs: int = 0,
                 warmup_start_factor: float = 0.1, min_factor: float = 0.0) -> None:
        if not 0 <= warmup_epochs < max_epochs:
            raise ValueError(f"need 0 <= warmup_epochs < max_epochs, got {warmup_epochs} and {max_epochs}")
        self.max_epochs = max_epochs

        def factor(epoch: int) -> float:
            if epoch < warmup_epochs:
                return warmup_start_factor + (1 - warmup_start_factor) * epoch / warmup_epochs
            progress = min((epoch - warmup_epochs) / (max_epochs - warmup_epochs), 1.0)
            return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

        super().__init__(optimizer, factor)
