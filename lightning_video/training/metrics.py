"""The papers' metrics, on clips and on videos, computed the same way on one process or many."""
from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAveragePrecision


def classification_metrics(num_classes: int, multi_label: bool) -> MetricCollection:
    """`top1` and `top5` accuracy (micro: the share of samples right, the Kinetics convention) and
    `mean_class_accuracy` (each class counts the same); for multi-label data, `map` (mean over classes of the
    average precision, the Charades convention). No compute groups: torchmetrics merges metrics whose states are
    equal after the first batch, and a first batch of one class (sorted validation lists) made top-5 report top-1."""
    if multi_label:
        return MetricCollection({"map": MultilabelAveragePrecision(num_classes, average="macro")}, compute_groups=False)
    return MetricCollection({
        "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
        "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
        "mean_class_accuracy": MulticlassAccuracy(num_classes, average="macro"),
    }, compute_groups=False)


class PerVideo:
    """Video indices `[V]` (ascending), their mean probabilities `[V, C]` and their labels. A plain class: torchmetrics
    squeezes one-element tensors inside the tuples, lists and dataclasses that `compute` returns."""

    def __init__(self, videos: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor) -> None:
        self.videos, self.probs, self.labels = videos, probs, labels


class VideoPredictions(Metric):
    """Per-video class probabilities, each the mean over the video's views: the papers' test protocol.

    Views of one video may land on different ranks, and DistributedSampler pads ranks with repeated views;
    views are keyed by (video, clip, crop), gathered from all ranks and counted once each.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("view_keys", "probs", "labels"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, labels: torch.Tensor, video_index: torch.Tensor, clip_index: torch.Tensor,
               crop_index: torch.Tensor) -> None:
        """Probabilities `[N, C]` of N views and their labels (`[N]` class indices or `[N, C]` multi-hot)."""
        self.view_keys.append(torch.stack([video_index, clip_index, crop_index], dim=1))
        self.probs.append(probs.float())
        self.labels.append(labels)

    def compute(self) -> PerVideo:
        keys, probs, labels = (torch.cat(x) if isinstance(x, list) else x
                               for x in (self.view_keys, self.probs, self.labels))
        keys, first = _unique_rows(keys)
        probs, labels = probs[first], labels[first]
        videos, video_of_view = torch.unique(keys[:, 0], return_inverse=True)
        sums = probs.new_zeros(len(videos), probs.shape[1]).index_add_(0, video_of_view, probs)
        views = torch.bincount(video_of_view, minlength=len(videos))
        video_labels = labels.new_empty((len(videos), *labels.shape[1:])).index_copy_(0, video_of_view, labels)
        return PerVideo(videos, sums / views[:, None], video_labels)


def _unique_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of an integer matrix and, for each, the index of its first occurrence."""
    unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
    positions = torch.arange(len(rows), device=rows.device)
    first = torch.full((len(unique),), len(rows), device=rows.device).scatter_reduce_(0, inverse, positions, "amin")
    return unique, first
