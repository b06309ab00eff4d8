"""Video-level accuracy: the papers' test protocol (softmax averaged over a video's views), DDP-safe."""
from __future__ import annotations

import torch
from torchmetrics import Metric


class VideoAccuracy(Metric):
    """Top-k accuracy of per-video predictions, each the mean softmax of the video's views.

    Views of one video may land on different ranks, and DistributedSampler pads ranks with repeated views;
    views are keyed by (video, clip, crop), gathered from all ranks and counted once each.
    """

    full_state_update = False

    def __init__(self, top_k: tuple[int, ...] = (1, 5)) -> None:
        super().__init__()
        self.top_k = top_k
        for name in ("view_keys", "probs", "labels"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, labels: torch.Tensor, video_index: torch.Tensor, clip_index: torch.Tensor,
               crop_index: torch.Tensor) -> None:
        self.view_keys.append(torch.stack([video_index, clip_index, crop_index], dim=1))
        self.probs.append(logits.float().softmax(dim=-1))
        self.labels.append(labels)

    def compute(self) -> dict[str, torch.Tensor]:
        """`top{k}` for each k, and `videos`: how many videos were scored."""
        keys, probs, labels = (torch.cat(x) if isinstance(x, list) else x
                               for x in (self.view_keys, self.probs, self.labels))
        keys, first = _unique_rows(keys)
        probs, labels = probs[first], labels[first]
        videos, video_of_view = torch.unique(keys[:, 0], return_inverse=True)
        video_probs = probs.new_zeros(len(videos), probs.shape[1]).index_add_(0, video_of_view, probs)
        video_labels = labels.new_empty(len(videos)).scatter_(0, video_of_view, labels)
        ranked = video_probs.argsort(dim=1, descending=True)
        hits = ranked == video_labels[:, None]
        result = {f"top{k}": hits[:, :k].any(dim=1).float().mean() for k in self.top_k if k <= probs.shape[1]}
        result["videos"] = torch.tensor(float(len(videos)), device=probs.device)
        return result


def _unique_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of an integer matrix and, for each, the index of its first occurrence."""
    unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
    positions = torch.arange(len(rows), device=rows.device)
    first = torch.full((len(unique),), len(rows), device=rows.device).scatter_reduce_(0, inverse, positions, "amin")
    return unique, first
