"""Progress display: Rich bars in a terminal; in batch jobs, whose log files bars would fill with redraws, plain
lines at the logging interval. Both say when the whole run will end (`run ETA`), not only the epoch."""
from __future__ import annotations

import datetime
import sys
import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar
from pytorch_lightning.utilities import rank_zero_info


def progress_bar() -> ProgressBar:
    """Rich bars when stdout is a terminal, else `ProgressLines`."""
    return RichBars() if sys.stdout.isatty() else ProgressLines()


def run_position(trainer: pl.Trainer) -> tuple[int, int] | None:
    """(done, total) of the run in the unit that ends it: optimizer steps under `max_steps`, else training batches
    over `max_epochs`; None when the run has no set end."""
    if trainer.max_steps > 0:
        return trainer.global_step, trainer.max_steps
    batches = trainer.num_training_batches
    if not trainer.max_epochs or trainer.max_epochs < 0 or batches == float("inf"):
        return None
    return trainer.fit_loop.epoch_loop.batch_progress.total.processed, trainer.max_epochs * int(batches)


def clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


class RunClock(ProgressBar):
    """The wall time since training started in this process and the run's remaining time at the rate so far
    (validation included, as it recurs; a resumed run counts from where it resumed)."""

    _started: float | None = None
    _done_at_start = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        position = run_position(trainer)
        self._started, self._done_at_start = time.monotonic(), position[0] if position else 0

    def timing(self, trainer: pl.Trainer) -> dict[str, str]:
        """`elapsed`, and once a unit of the run is done, `s/batch` (or `s/step`) and `run ETA`."""
        if self._started is None or trainer.sanity_checking:
            return {}
        elapsed = time.monotonic() - self._started
        times = {"elapsed": clock(elapsed)}
        position = run_position(trainer)
        if position is not None and position[0] > self._done_at_start:
            per_unit = elapsed / (position[0] - self._done_at_start)
            times["s/step" if trainer.max_steps > 0 else "s/batch"] = f"{per_unit:.3g}"
            times["run ETA"] = clock(max(position[1] - position[0], 0) * per_unit)
        return times


class RichBars(RunClock, RichProgressBar):
    """Lightning's Rich bars, with the whole run's ETA beside the metrics (the bar times the epoch)."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        eta = self.timing(trainer).get("run ETA")
        return {**super().get_metrics(trainer, pl_module), **({"run ETA": eta} if eta else {})}


class ProgressLines(RunClock):
    """One line every `trainer.log_every_n_steps` training batches and one per validation, with the time, the rate
    and the run's ETA, and the progress-bar metrics (`train/loss`, `val/clip_*`)."""

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
        timing = ", ".join(f"{name} {value}" if name == "run ETA" else f"{value} {name}"  # 1.2 s/batch, run ETA 0:03:10
                           for name, value in self.timing(trainer).items())
        metrics = self.get_metrics(trainer, trainer.lightning_module)
        rank_zero_info(f"{where}{f' [{timing}]' if timing else ''}: " +
                       ", ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                                 for name, value in metrics.items()))
