"""VideoClassifier: training, clip-level validation, video-level testing and prediction of a video transformer."""
from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from jsonargparse import lazy_instance
from lightning_utilities.core.rank_zero import rank_zero_info
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable

from lightning_video.data.clip_settings import ClipSettings
from lightning_video.training.losses import Mixing, classification_loss, one_hot_per_head
from lightning_video.training.metrics import VideoPredictions, classification_metrics, head_slices
from lightning_video.models import VideoTransformer, load_pretrained
from lightning_video.models.resize import Resize
from lightning_video.seeding import derived_seed, run_seed, seed_all
from lightning_video.training.optim import parameter_groups
from lightning_video.training.schedules import WarmupCosineLR

SEED_KEY = "training_seed"
CLIP_SETTINGS_KEY = "clip_settings"


class VideoClassifier(pl.LightningModule):
    """Single-label (cross-entropy) or multi-label (binary cross-entropy) classification of clips.

    Logged: `train/loss`, `train/clip_*`, `train/skipped_videos` (unreadable videos replaced, per epoch);
    `val/loss`, `val/clip_*` (one centre view per video); `test/video_*` (probabilities averaged over each video's
    views, the papers' protocol), `test/videos` (videos scored) and `test/unreadable_views`. The metrics `*` are
    `top1`, `top5` and `mean_class_accuracy`, or `map` for multi-label data (see `metrics.classification_metrics`).
    A model whose clip settings declare several heads (Epic-Kitchens: verb and noun) has one classifier per head, the
    backbone's outputs side by side, a softmax per head, the sum of the heads' losses, and the metrics per head
    (`val/clip_verb_top1`, `test/video_noun_top5`, ...) and of all heads right at once (`test/video_action_top1`).

    Args:
        backbone: the video transformer (its `num_classes`, `num_frames` and `img_size` come from the data).
        optimizer: optimizer class and arguments, given the model parameters.
        lr_scheduler: schedule, stepped once per epoch (`WarmupCosineLR` spans the trainer's length itself, per step
            where training is in steps); None keeps the lr constant.
        label_smoothing: moves every training target towards 1/num_classes by this much.
        pretrained: weights to start the backbone from: a checkpoint file or an HF model directory, in any format
            `lightning_video.models.load_pretrained` reads (it adapts clip size and scheme, and logs a report).
        pretrained_resize: how `pretrained` embeddings of another frame size or frame count are fitted: "smooth" or
            "official" (what the official code of the model's paper does; see `load_pretrained`'s `resize`).
        multi_label: labels are multi-hot `[B, num_classes]` (e.g. Charades): sigmoid outputs, binary cross-entropy
            and mAP instead of softmax, cross-entropy and accuracy.
        mixing: Mixup / CutMix of training batches (off by default).
        no_weight_decay: exempt norms, biases and the token and position embeddings from weight decay, or, as a list
            of name patterns (e.g. `backbone.head.bias`), exactly the parameters they match (`optim.parameter_groups`).
        compile: `torch.compile` the backbone in place (its checkpoint names stay as they are). The first training
            and the first evaluation step each compile first: ~15 s for a tiny model on CPU, minutes at ViT-B.
        clip_settings: the clips the model takes, its class names and heads (the CLI links them from the data);
            saved in every checkpoint, so that `load_from_checkpoint` gives a model that knows how to be fed.
    """

    def __init__(self, backbone: VideoTransformer = lazy_instance(VideoTransformer),
                 optimizer: OptimizerCallable = torch.optim.AdamW,
                 lr_scheduler: LRSchedulerCallable | None = None, label_smoothing: float = 0.0,
                 pretrained: str | None = None, pretrained_resize: Resize = "smooth", multi_label: bool = False, mixing: Mixing = Mixing(),
                 no_weight_decay: bool | list[str] = True, compile: bool = False,
                 clip_settings: ClipSettings | None = None) -> None:
        super().__init__()
        if clip_settings is not None:
            _check_backbone_takes(backbone, clip_settings)
            if clip_settings.heads and multi_label:
                raise ValueError(f"model.multi_label with several heads ({clip_settings.heads}) is not supported")
        self.backbone = backbone
        self.clip_settings = clip_settings
        if pretrained:
            rank_zero_info(load_pretrained(backbone, pretrained, resize=pretrained_resize).summary())
        if compile:
            backbone.compile()
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.label_smoothing = label_smoothing
        self.multi_label = multi_label
        self.mixing = mixing
        self.no_weight_decay = no_weight_decay
        self.num_classes = backbone.head.out_features
        self.heads = clip_settings.heads if clip_settings is not None else {}
        metrics = classification_metrics(self.num_classes, multi_label, self.heads)
        self.train_metrics = metrics.clone(prefix="train/clip_")
        self.val_metrics = metrics.clone(prefix="val/clip_")
        self.test_metrics = metrics.clone(prefix="test/video_")
        self.test_videos = VideoPredictions()
        self._training_seed: int | None = None  # the run's seed, once a checkpoint gave it

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, map_location: str | torch.device = "cpu",
                             strict: bool = True) -> VideoClassifier:
        """The model a checkpoint of `python -m lightning_video fit` holds, with its scheme, sizes, clip settings and
        class names, in eval mode (`lightning_video.load_checkpoint`, which also returns the clip settings). The
        file is checked against its digest; Lightning's own version would rebuild the default model."""
        from lightning_video.training.rebuild import load_checkpoint  # it builds this class

        return load_checkpoint(checkpoint_path, map_location, strict, model_class=cls).model

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.backbone(video)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Sigmoids (multi-label), a softmax, or one softmax per head, side by side."""
        if self.multi_label:
            return logits.float().sigmoid()
        if self.heads:
            return torch.cat([logits[:, columns].float().softmax(dim=-1)
                              for columns in head_slices(self.heads).values()], dim=1)
        return logits.float().softmax(dim=-1)

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        return classification_loss(logits, targets, self.multi_label, label_smoothing, list(self.heads.values()))

    def _metric_targets(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.int() if self.multi_label else labels

    @property
    def training_seed(self) -> int:
        """The seed of the training steps' draws: the run's, or on a resume the checkpoint's."""
        return run_seed() if self._training_seed is None else self._training_seed

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        """Seed this batch's dropout, drop-path and mixing from (seed, rank, epoch, batch): a resumed run then draws
        what the uninterrupted one did, whatever drew random numbers before (validation, loader start-up)."""
        seed_all(derived_seed(self.training_seed, self.global_rank, self.current_epoch, batch_idx))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[SEED_KEY] = self.training_seed
        if self.clip_settings is not None:
            checkpoint[CLIP_SETTINGS_KEY] = self.clip_settings.to_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._training_seed = checkpoint.get(SEED_KEY)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        video, targets = batch["video"], batch["label"]
        if self.mixing.active:
            targets = targets.float() if self.multi_label else \
                one_hot_per_head(targets, list(self.heads.values()) or [self.num_classes])
            video, targets = self.mixing(video, targets)
        logits = self(video)
        loss = self._loss(logits, targets, self.label_smoothing)
        self._stop_unless_finite(loss, batch_idx)
        self.train_metrics.update(self.probabilities(logits.detach()), self._metric_targets(batch["label"]))
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        self.log("train/skipped_videos", batch["skipped"].sum().float(), on_step=False, on_epoch=True,
                 reduce_fx="sum", sync_dist=True)
        return loss

    def _stop_unless_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Raise on every rank at once when any rank's loss is NaN or infinite: a rank stopping alone would leave
        the others waiting forever in the next gradient all-reduce."""
        if self.trainer.strategy.reduce_boolean_decision(not torch.isfinite(loss).item(), all=False):
            raise FloatingPointError(
                f"the training loss is not finite at global step {self.global_step} (epoch {self.current_epoch}, "
                f"batch {batch_idx}; this rank's loss: {loss.item()}), so every rank stops here. Lower the lr, clip "
                f"gradients (trainer.gradient_clip_val), use bf16-mixed rather than 16-mixed precision, or check the "
                f"data for NaNs")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        valid = batch["valid"]
        logits, labels = self(batch["video"])[valid], batch["label"][valid]
        self.log("val/loss", self._loss(logits, labels, 0.0), sync_dist=True)
        self.val_metrics.update(self.probabilities(logits), self._metric_targets(labels))
        self.log_dict(self.val_metrics, prog_bar=True)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        valid = batch["valid"]
        self.test_videos.update(self.probabilities(self(batch["video"])[valid]), batch["label"][valid],
                                batch["video_index"][valid], batch["clip_index"][valid], batch["aug_index"][valid])
        self.log("test/unreadable_views", (~valid).sum().float(), reduce_fx="sum", sync_dist=True)

    def on_test_epoch_end(self) -> None:
        videos = self.test_videos.compute()  # every rank's views, gathered
        self.log("test/videos", float(len(videos.labels)))
        # forward, not compute: the videos are gathered already, another sync would count each once per rank
        self.log_dict(self.test_metrics(videos.probs, self._metric_targets(videos.labels)))
        self.test_metrics.reset()
        self.test_videos.reset()

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Class probabilities of each view; `predictions.PredictionWriter` averages them per video."""
        return self.probabilities(self(batch["video"]))

    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer(parameter_groups(self, self.no_weight_decay))
        if self.lr_scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.lr_scheduler(optimizer)
        interval = "epoch"
        if isinstance(scheduler, WarmupCosineLR):  # the trainer's length, set once: max_epochs or max_steps
            interval = self._span_to_trainer(scheduler)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def _span_to_trainer(self, scheduler: WarmupCosineLR) -> str:
        """Spread the schedule over the trainer's training: per epoch when it is given in epochs (the recipes'
        schedule), else per optimizer step. Returns Lightning's stepping interval."""
        trainer = self.trainer
        if trainer.max_steps == -1 and not scheduler.per_step:
            scheduler.span(trainer.max_epochs)
            return "epoch"
        total = trainer.estimated_stepping_batches
        trainer.fit_loop.setup_data()  # what estimated_stepping_batches does, unless max_steps answered it first
        steps_per_epoch = max(1, math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches))
        scheduler.span(int(total), steps_per_epoch)
        return "step"


def _check_backbone_takes(backbone: VideoTransformer, clips: ClipSettings) -> None:
    """Refuse clip settings the backbone cannot take: its scores would be computed on the wrong clips or read
    under the wrong labels."""
    wanted = dict(num_frames=clips.num_frames, img_size=clips.crop_size, num_classes=len(clips.class_names))
    built = dict(num_frames=backbone.num_frames, img_size=backbone.img_size, num_classes=backbone.head.out_features)
    if wanted != built:
        raise ValueError(f"clip_settings ({clips.num_frames} frames, crop {clips.crop_size}, "
                         f"{len(clips.class_names)} classes) do not fit the backbone built with "
                         f"{', '.join(f'{key}={value}' for key, value in built.items())}: build it with "
                         f"{', '.join(f'{key}={value}' for key, value in wanted.items())}")
