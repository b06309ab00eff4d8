"""The training loss and its targets: class indices or multi-hot labels, label smoothing, Mixup and CutMix.

Mixing turns labels into class probabilities, so the loss reads both: cross-entropy for single-label data,
per-class binary cross-entropy for multi-label data (targets multi-hot `[B, C]`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Mixing:
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) of each training batch with itself in reverse order;
    X-ViT trains Kinetics with mixup α 0.4.

    Not timm's `Mixup`: it sizes the CutMix box on the last two dims but pastes it at `x[:, :, y0:y1, x0:x1]`, which
    on `[B, C, T, H, W]` is frames × rows (measured on 8 × 16 × 16 clips: frames 6-7 only, at full width, 14% of the
    clip pasted while the label weight said 32%). Here the box spans every frame, in H and W, and the label follows
    it.

    Args:
        mixup_alpha: the mixing weight is drawn from Beta(α, α); 0 turns mixup off.
        cutmix_alpha: the pasted box's share of the frame is drawn from Beta(α, α); 0 turns CutMix off. The box is
            the same in every frame of a clip. With both 0 (the default) nothing is mixed.
        prob: the chance that a batch is mixed at all.
        switch_prob: with both on, the chance that a mixed batch uses CutMix rather than mixup.
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError(f"mixing alphas are Beta parameters, 0 (off) or positive, got mixup_alpha="
                             f"{self.mixup_alpha} and cutmix_alpha={self.cutmix_alpha}")
        if not 0 <= self.prob <= 1 or not 0 <= self.switch_prob <= 1:
            raise ValueError(f"mixing prob and switch_prob are probabilities, got {self.prob} and {self.switch_prob}")

    @property
    def active(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def __call__(self, video: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed clips `[B, C, T, H, W]` and targets (float `[B, classes]`, one-hot or multi-hot)."""
        if not self.active or torch.rand(()) >= self.prob:
            return video, targets
        cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or bool(torch.rand(()) < self.switch_prob))
        alpha = self.cutmix_alpha if cutmix else self.mixup_alpha
        weight = float(torch.distributions.Beta(alpha, alpha).sample())
        partner = video.flip(0)
        if cutmix:
            video, weight = _paste_box(video, partner, 1 - weight)
        else:
            video = video * weight + partner * (1 - weight)
        return video, targets * weight + targets.flip(0) * (1 - weight)


def _paste_box(video: torch.Tensor, partner: torch.Tensor, area: float) -> tuple[torch.Tensor, float]:
    """`video` with a box of about `area` of the frame taken from `partner`, and the share of `video` left (the box is
    clipped at the frame's border, so the label weight follows the box actually pasted)."""
    height, width = video.shape[-2:]
    box_h, box_w = int(height * math.sqrt(area)), int(width * math.sqrt(area))
    centre_y, centre_x = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(centre_y - box_h // 2, 0), min(centre_y + box_h - box_h // 2, height)
    left, right = max(centre_x - box_w // 2, 0), min(centre_x + box_w - box_w // 2, width)
    video = video.clone()
    video[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
    return video, 1 - (bottom - top) * (right - left) / (height * width)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool,
                        label_smoothing: float, heads: Sequence[int] = ()) -> torch.Tensor:
    """Cross-entropy of class indices `[B]` or class probabilities `[B, C]`; for multi-label data, binary
    cross-entropy of multi-hot targets `[B, C]`. Smoothing moves every target towards 1/C (timm's convention for
    both). With several `heads` (their class counts, outputs side by side), the sum of each head's cross-entropy,
    smoothed towards 1/C of that head; targets are then a class index per head `[B, heads]` or each head's class
    probabilities side by side `[B, C]` (`one_hot_per_head`)."""
    if len(heads) > 1:
        logits_per_head = logits.split(list(heads), dim=1)
        targets_per_head = targets.split(list(heads), dim=1) if targets.is_floating_point() else targets.unbind(1)
        return sum(F.cross_entropy(head_logits, head_targets, label_smoothing=label_smoothing)
                   for head_logits, head_targets in zip(logits_per_head, targets_per_head))
    if multi_label:
        targets = targets.float() * (1 - label_smoothing) + label_smoothing / logits.shape[-1]
        return F.binary_cross_entropy_with_logits(logits.float(), targets)
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def one_hot_per_head(labels: torch.Tensor, heads: Sequence[int]) -> torch.Tensor:
    """Class indices `[B]` (one head of `heads[0]` classes) or `[B, heads]` as one-hot vectors, each head's side by
    side `[B, sum(heads)]`: the class probabilities that Mixup and CutMix mix."""
    per_head = labels[:, None] if labels.dim() == 1 else labels
    return torch.cat([F.one_hot(column, size) for column, size in zip(per_head.unbind(1), heads)], dim=1).float()
