"""VideoClassifier: training, clip-level validation and video-level testing of a video transformer."""
from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from lightning_utilities.core.rank_zero import rank_zero_info, rank_zero_warn
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torchmetrics.classification import MulticlassAccuracy

from lightning_video.metrics import VideoAccuracy
from lightning_video.models import VideoTransformer, load_pretrained


class VideoClassifier(pl.LightningModule):
    """Cross-entropy classification of clips.

    Logged: `train/loss`, `train/clip_top1`, `train/skipped_videos` (unreadable videos replaced, per epoch);
    `val/loss`, `val/clip_top1`, `val/clip_top5` (one centre view per video); `test/video_top1`,
    `test/video_top5` (softmax averaged over each video's views, the papers' protocol), `test/videos`
    (videos scored) and `test/unreadable_views`.

    Args:
        backbone: the video transformer (its `num_classes`, `num_frames` and `img_size` come from the data).
        optimizer: optimizer class and arguments, given the model parameters.
        lr_scheduler: schedule, stepped once per epoch; None keeps the lr constant.
        label_smoothing: cross-entropy label smoothing.
        pretrained: weights to start the backbone from: a checkpoint file or an HF model directory, in any format
            `lightning_video.models.load_pretrained` reads (it adapts clip size and scheme, and logs a report).
    """

    def __init__(self, backbone: VideoTransformer = lazy_instance(VideoTransformer),
                 optimizer: OptimizerCallable = torch.optim.AdamW,
                 lr_scheduler: LRSchedulerCallable | None = None, label_smoothing: float = 0.0,
                 pretrained: str | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        if pretrained:
            rank_zero_info(load_pretrained(backbone, pretrained).summary())
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.label_smoothing = label_smoothing
        num_classes = backbone.head.out_features
        self.train_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.test_accuracy = VideoAccuracy(top_k=(1, 5))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.backbone(video)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["video"])
        loss = F.cross_entropy(logits, batch["label"], label_smoothing=self.label_smoothing)
        self.train_top1(logits, batch["label"])
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/clip_top1", self.train_top1, on_step=False, on_epoch=True)
        self.log("train/skipped_videos", batch["skipped"].sum().float(), on_step=False, on_epoch=True,
                 reduce_fx="sum", sync_dist=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        valid = batch["valid"]
        logits, labels = self(batch["video"])[valid], batch["label"][valid]
        self.log("val/loss", F.cross_entropy(logits, labels), sync_dist=True)
        self.val_top1(logits, labels)
        self.val_top5(logits, labels)
        self.log("val/clip_top1", self.val_top1, prog_bar=True)
        self.log("val/clip_top5", self.val_top5)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        valid = batch["valid"]
        self.test_accuracy.update(self(batch["video"])[valid], batch["label"][valid], batch["video_index"][valid],
                                  batch["clip_index"][valid], batch["aug_index"][valid])
        self.log("test/unreadable_views", (~valid).sum().float(), reduce_fx="sum", sync_dist=True)

    def on_test_epoch_end(self) -> None:
        result = self.test_accuracy.compute()
        self.log("test/videos", result.pop("videos"))
        self.log_dict({f"test/video_{name}": value for name, value in result.items()})
        self.test_accuracy.reset()

    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.lr_scheduler(optimizer)
        epochs = getattr(scheduler, "max_epochs", None)
        if epochs is not None and epochs != self.trainer.max_epochs:
            rank_zero_warn(f"the lr schedule spans {epochs} epochs but trainer.max_epochs={self.trainer.max_epochs}; "
                           f"set model.lr_scheduler.init_args.max_epochs to match")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
