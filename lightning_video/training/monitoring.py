"""ComputeMonitor: the cost side of a run (parameters, GFLOPs per view, throughput, peak memory) in its logs."""
from __future__ import annotations

import resource
import sys
import time
from collections import deque

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from lightning_video import flops


class ComputeMonitor(pl.Callback):
    """Logs `model/params_M` and `model/gflops_per_view` (fvcore's count, the papers' convention) when fitting
    starts, and with every training batch `perf/clips_per_s` (clips per second over all processes, averaged over the
    last `trainer.log_every_n_steps` batches, data loading included) and `perf/peak_memory_GiB` (of this process: the
    CUDA allocator's peak on a GPU, the peak resident memory on a CPU).

    Kept over Lightning's `ThroughputMonitor`, which logs rates only (no parameters, GFLOPs per view or memory) and
    calls `torch.cuda.synchronize()` after every training batch: a stall per step in a GPU run, which this window
    average over `log_every_n_steps` batches does without. Its FLOP rate needs a `flops_per_batch` from Lightning's
    `measure_flops` (FlopCounterMode: 2 per multiply-add, no norms; `tests/test_flops.py` relates it to fvcore's), not
    the papers' count logged here."""

    def __init__(self) -> None:
        self._batch_ends: deque[float] = deque()
        self._batch_clips: deque[int] = deque()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        sizes = {"model/params_M": sum(p.numel() for p in pl_module.parameters()) / 1e6}
        try:
            sizes["model/gflops_per_view"] = flops.count(pl_module.backbone)[0]
        except RuntimeError as error:
            rank_zero_warn(f"GFLOPs per view not logged: {error}")
        rank_zero_info(", ".join(f"{name} {value:.4g}" for name, value in sizes.items()))
        for logger in trainer.loggers:
            logger.log_metrics(sizes, step=trainer.global_step)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a fit resumed mid-epoch starts without on_train_epoch_start

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        window = max(trainer.log_every_n_steps, 1)
        self._batch_ends = deque([time.perf_counter()], maxlen=window + 1)
        self._batch_clips = deque(maxlen=window)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: dict,
                           batch_idx: int) -> None:
        self._batch_ends.append(time.perf_counter())
        self._batch_clips.append(len(batch["video"]))
        seconds = self._batch_ends[-1] - self._batch_ends[0]
        pl_module.log("perf/clips_per_s", sum(self._batch_clips) * trainer.world_size / seconds)
        pl_module.log("perf/peak_memory_GiB", peak_memory_gib(pl_module.device))


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20  # bytes on macOS, KiB on Linux
