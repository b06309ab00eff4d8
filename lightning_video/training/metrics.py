"""The papers' metrics, on clips and on videos, computed the same way on one process or many."""
from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAveragePrecision


JOINT = "action"  # the metrics of every head right at once: Epic-Kitchens' action (verb and noun)
TOP_K = (1, 5)


def classification_metrics(num_classes: int, multi_label: bool,
                           heads: dict[str, int] | None = None) -> MetricCollection:
    """`top1` and `top5` accuracy (micro: the share of samples right, the Kinetics convention) and
    `mean_class_accuracy` (each class counts the same); for multi-label data, `map` (mean over classes of the
    average precision, the Charades convention). A top-k with k at least the class count is left out: it is 1 by
    construction. With several `heads` (name: class count, in the order of the outputs), the same per head
    (`verb_top1`, `noun_top5`, ...) and `action_top1`/`action_top5` of every head at once (`JointTopK`); the targets are
    then `[B, heads]` class indices. Metrics take class scores `[B, num_classes]`: probabilities where there are
    heads (the action ranks their products). No compute groups: torchmetrics merges metrics whose states are equal
    after the first batch, and a first batch of one class (sorted validation lists) made top-5 report top-1."""
    if multi_label:
        if heads:
            raise ValueError(f"multi-label data with several heads ({heads}) is not supported: use one of them")
        return MetricCollection({"map": MultilabelAveragePrecision(num_classes, average="macro")}, compute_groups=False)
    if not heads:
        return MetricCollection(_accuracies(num_classes), compute_groups=False)
    if sum(heads.values()) != num_classes:
        raise ValueError(f"the heads {heads} have {sum(heads.values())} classes in all, the outputs {num_classes}")
    metrics: dict[str, Metric] = {}
    for index, (name, columns) in enumerate(head_slices(heads).items()):
        metrics.update({f"{name}_{key}": metric for key, metric in _accuracies(heads[name], columns, index).items()})
    combinations = math.prod(heads.values())
    metrics.update({f"{JOINT}_top{k}": JointTopK(heads, k) for k in TOP_K if k == 1 or k < combinations})
    return MetricCollection(metrics, compute_groups=False)


def _accuracies(num_classes: int, columns: slice | None = None, head: int | None = None) -> dict[str, Metric]:
    top_k = {f"top{k}": HeadAccuracy(num_classes, columns, head, top_k=k, average="micro") for k in TOP_K
             if k == 1 or k < num_classes}
    return {**top_k, "mean_class_accuracy": HeadAccuracy(num_classes, columns, head, average="macro")}


def head_slices(heads: dict[str, int]) -> dict[str, slice]:
    """Each head's columns of the outputs, the heads' outputs side by side in their order."""
    ends = list(itertools.accumulate(heads.values()))
    return {name: slice(end - size, end) for (name, size), end in zip(heads.items(), ends)}


class HeadAccuracy(MulticlassAccuracy):
    """Accuracy of one head: its `columns` of the scores and its column `head` of the targets `[B, heads]` (both None:
    all the scores and targets `[B]`, a model with one head)."""

    def __init__(self, num_classes: int, columns: slice | None = None, head: int | None = None, **kwargs: Any) -> None:
        super().__init__(num_classes, **kwargs)
        self.columns, self.head = columns, head

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if self.columns is not None:
            preds, target = preds[:, self.columns], target[:, self.head]
        super().update(preds, target)


def joint_top_k(probs: torch.Tensor, heads: dict[str, int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most likely combinations of one class per head, the heads taken as independent (a combination's score
    is the product of its classes' probabilities, the Epic-Kitchens action score): class indices `[B, k, heads]`
    and scores `[B, k]`, best first. Exact without forming every combination: a combination in the top k has its
    first heads' part in the top k of those heads' combinations, so each head adds only k candidates per kept one."""
    scores = probs.new_ones(len(probs), 1)
    combinations = torch.zeros(len(probs), 1, 0, dtype=torch.long, device=probs.device)
    for columns in head_slices(heads).values():
        top = probs[:, columns].topk(min(k, columns.stop - columns.start), dim=1)
        kept, width = combinations.shape[1], top.indices.shape[1]
        scores = (scores[:, :, None] * top.values[:, None, :]).flatten(1)
        combinations = torch.cat([combinations[:, :, None, :].expand(-1, -1, width, -1),
                                  top.indices[:, None, :, None].expand(-1, kept, -1, -1)], dim=-1).flatten(1, 2)
        best = scores.topk(min(k, scores.shape[1]), dim=1)
        scores = best.values
        combinations = combinations.gather(1, best.indices[:, :, None].expand(-1, -1, combinations.shape[-1]))
    return combinations, scores


class JointTopK(Metric):
    """The share of samples whose classes of all heads together are among the k most likely combinations
    (`joint_top_k`); at k = 1, every head right at once (Epic-Kitchens' action accuracy: verb and noun both right)."""

    full_state_update = False

    def __init__(self, heads: dict[str, int], top_k: int) -> None:
        super().__init__()
        self.heads, self.top_k = dict(heads), top_k
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        """Probabilities `[B, classes]` (each head's summing to 1) and the class of each head `[B, heads]`."""
        combinations, _ = joint_top_k(probs, self.heads, self.top_k)
        self.correct += (combinations == target[:, None, :]).all(dim=-1).any(dim=-1).sum()
        self.total += len(target)

    def compute(self) -> torch.Tensor:
        return self.correct.float() / self.total


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
