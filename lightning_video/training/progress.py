"""Progress display: Rich bars in a terminal; in batch jobs, whose log files bars would fill with redraws, plain
lines at the logging interval."""
from __future__ import annotations

import sys

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar
from pytorch_lightning.utilities import rank_zero_info


def progress_bar() -> ProgressBar:
    """Rich bars when stdout is a terminal, else `ProgressLines`."""
    return RichProgressBar() if sys.stdout.isatty() else ProgressLines()


class ProgressLines(ProgressBar):
    """One line every `trainer.log_every_n_steps` training batches and one per validation, with the progress-bar
    metrics (`train/loss`, `val/clip_*`)."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object,
                           batch_idx: int) -> None:
        if (batch_idx + 1) % max(trainer.log_every_n_steps, 1) == 0:
            self._line(trainer, f"epoch {trainer.current_epoch} batch {batch_idx + 1}/{self.total_train_batches}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._line(trainer, f"epoch {trainer.current_epoch} validation")

    def _line(self, trainer: pl.Trainer, where: str) -> None:
        if not self._enabled:
            return
        metrics = self.get_metrics(trainer, trainer.lightning_module)
        rank_zero_info(f"{where}: " + ", ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                                                for name, value in metrics.items()))
