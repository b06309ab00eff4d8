"""AttentionFigures: the `explain` figure of one fixed validation clip in the run's logs as training goes.

    lightning-video fit --config CONFIG \
        --trainer.callbacks+=lightning_video.training.attention_figures.AttentionFigures \
        --trainer.callbacks.every_n_epochs 5
"""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from lightning_video.explain import explain_clip, figure, title_of
from lightning_video.models.rollout import HeadFusion
from lightning_video.training.module import VideoClassifier
from lightning_video.training.runs import run_dir


class AttentionFigures(pl.Callback):
    """Every `every_n_epochs` validation epochs, the attention rollout of one validation clip, drawn as `explain`
    draws it: saved as `<run folder>/attention/epoch=NNN.png` (beside `checkpoints/`), and logged as the image
    `attention/rollout` to wandb. Computed on the global-zero process alone, from the explicit attention of that one
    clip; training keeps the fused kernels.

    Args:
        every_n_epochs: draw after every this many epochs' validation.
        video_index: which view of the validation set (its `video_index`-th item): the same clip every time.
        head_fusion: "mean" or "max" (see `models.rollout.rollout`).
        discard_ratio: see `models.rollout.rollout`.
    """

    def __init__(self, every_n_epochs: int = 5, video_index: int = 0, head_fusion: HeadFusion = "mean",
                 discard_ratio: float = 0.0) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs={every_n_epochs}: valid values are integers >= 1")
        self.every_n_epochs = every_n_epochs
        self.video_index = video_index
        self.head_fusion = head_fusion
        self.discard_ratio = discard_ratio

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: VideoClassifier) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        dataset = trainer.val_dataloaders.dataset
        if not 0 <= self.video_index < len(dataset):
            raise ValueError(f"AttentionFigures video_index={self.video_index}: the validation set has "
                             f"{len(dataset)} views; valid: 0..{len(dataset) - 1}")
        sample = dataset[self.video_index]
        settings = pl_module.clip_settings or trainer.datamodule.clip_settings
        explanation = explain_clip(pl_module, sample["video"], settings, head_fusion=self.head_fusion,
                                   discard_ratio=self.discard_ratio)
        name = Path(dataset.videos[sample["video_index"]][0]).name
        image = figure(explanation, f"epoch {trainer.current_epoch}, " + title_of(name, explanation))
        folder = run_dir(trainer) / "attention"
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"epoch={trainer.current_epoch:03d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("attention/rollout", [image], step=trainer.global_step, caption=[name])
