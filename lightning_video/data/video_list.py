"""What a layout reader returns: a split's videos with their labels, the class names, and what it could not find."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

SPLITS = ("train", "val", "test")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
Label = int | torch.Tensor  # a class index, or a multi-hot float vector for multi-label data


@dataclass
class VideoList:
    """A split's videos and the dataset's class names. A dataset with several heads labels each video with a class
    index per head (a tensor) and lists each head's class names in turn.

    Args:
        videos: (path, label) of each video to load.
        classes: the class names, the i-th naming label i.
        notes: what was inferred rather than read (a csv layout's class count without classes.txt) or counted (the
            videos found), for the user to see.
        missing: the listed videos not on disk, left out of `videos` (Kinetics, where they are normal); the other
            layouts keep a listed video that is absent, so that training counts it as unreadable.
        labelled: False for a split published without labels (Kinetics' crawler-era test CSV): every label is -1,
            so it can be predicted but not evaluated.
        heads: each head's class count, for several answers per video (see `ClipSettings.heads`); empty for one.
    """

    videos: list[tuple[str, Label]]
    classes: list[str]
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    labelled: bool = True
    heads: dict[str, int] = field(default_factory=dict)

    @property
    def listed(self) -> int:
        """How many videos the annotation lists, found or not."""
        return len(self.videos) + len(self.missing)
