"""LastCheckpoint: `last.ckpt` always holds the latest training state, whatever the best-k checkpoints monitor.

Lightning 2.6's `ModelCheckpoint(save_last=True)` writes `last.ckpt` only in a step where it also saves a top-k
checkpoint, so with a monitored metric `last.ckpt` follows validation improvements, not training: a run whose
validation stops improving keeps resuming from its best epoch. This callback writes it on its own schedule.
"""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

DEFAULT_INTERVAL = timedelta(minutes=30)


class LastCheckpoint(ModelCheckpoint):
    """Writes `last.ckpt` (in the run's `checkpoints/`, or `checkpoint.dirpath`, beside the best-k ones) at the end of
    every epoch, after its validation, and within an epoch every `every_n_train_steps` optimizer steps and/or every
    `train_time_interval`, so a crash loses at most that much training. Saves within an epoch happen only right after
    an optimizer step: gradients being accumulated are not in a checkpoint, so one taken between steps could not
    resume exactly.

    Args:
        every_n_train_steps: also save every this many optimizer steps; None: not by steps.
        train_time_interval: also save when this much time has passed since the last save (checked after each
            optimizer step; at paper scale a step takes seconds, so a crash loses at most about this much); None:
            not by time. Give it as `HH:MM:SS`.
    """

    def __init__(self, every_n_train_steps: int | None = None,
                 train_time_interval: timedelta | None = DEFAULT_INTERVAL) -> None:
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(f"last_checkpoint.every_n_train_steps={every_n_train_steps}: give a number of optimizer "
                             f"steps of at least 1, or null to save by time only")
        # no version counter: `last.ckpt` is overwritten, never joined by a `last-v1.ckpt`
        super().__init__(save_last=True, save_top_k=0, enable_version_counter=False)
        self.every_n_steps = every_n_train_steps
        self.interval = train_time_interval
        self._last_save_time = time.monotonic()

    @property
    def state_key(self) -> str:
        """One key whatever the intervals: a run resumed with other intervals still finds its state."""
        return self._generate_state_key()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_save_time = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        epoch_loop = trainer.fit_loop.epoch_loop
        if epoch_loop._should_accumulate() or epoch_loop.batch_progress.is_last_batch:
            return  # between optimizer steps, or at the epoch's end, where `on_train_epoch_end` saves
        by_steps = self.every_n_steps is not None and trainer.global_step % self.every_n_steps == 0
        by_time = self.interval is not None and time.monotonic() - self._last_save_time >= self.interval.total_seconds()
        # every rank must take the same decision: a save is collective under DDP
        if trainer.strategy.broadcast(by_steps or by_time):
            self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Not after validation on its own: the epoch's end, after validation, saves."""

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Training that stops within an epoch (`max_steps`, a stop request) ends with its latest state saved too."""
        self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_save_time = time.monotonic()
