"""GlobalBatch: keep a recipe's global batch on any number of GPUs by accumulating gradients."""
from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info


class GlobalBatch(pl.Callback):
    """Sets `trainer.accumulate_grad_batches` so that each optimiser step sees `size` clips over all processes.

    The papers' learning rates hold for their global batch (TimeSformer 64, X-ViT 128). With fewer or smaller GPUs
    the same recipe then accumulates more batches per step instead of needing a different lr.

    Args:
        size: clips per optimiser step: data.batch_size × devices × nodes × accumulated batches. None leaves
            `trainer.accumulate_grad_batches` as configured.
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = size

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.size is None:
            return
        batch_size = getattr(trainer.datamodule, "batch_size", None)
        if batch_size is None:
            raise ValueError("global_batch.size needs a datamodule with a batch_size; set global_batch.size to null "
                             "and trainer.accumulate_grad_batches instead")
        if trainer.accumulate_grad_batches != 1:
            raise ValueError(f"global_batch.size={self.size} and trainer.accumulate_grad_batches="
                             f"{trainer.accumulate_grad_batches} both set the accumulation; set only one")
        per_step = batch_size * trainer.world_size
        if self.size % per_step:
            raise ValueError(f"global_batch.size={self.size} is not a multiple of data.batch_size × devices × nodes "
                             f"= {batch_size} × {trainer.num_devices} × {trainer.num_nodes} = {per_step}; change the "
                             f"batch size or the number of devices, or set global_batch.size to a multiple of "
                             f"{per_step}")
        trainer.accumulate_grad_batches = self.size // per_step
        rank_zero_info(f"global batch {self.size} = {batch_size} clips × {trainer.world_size} processes × "
                       f"{trainer.accumulate_grad_batches} accumulated batches")
