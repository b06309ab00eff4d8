"""Axial attention (TimeSformer "T+W+H"): temporal, then width, then height attention, then the MLP."""
from __future__ import annotations

import torch

from lightning_video.models.block import Block, split_cls
from lightning_video.models.grouping import Grouping
from lightning_video.models.scheme import Scheme


class Axial(Scheme):
    """Each step attends along one axis of the T × H × W patch grid, with its own weights.

    Temporal step: the T patches at one location (`temporal_norm1`, `temporal_attn`, `temporal_fc`, as in the
    divided block). Width step: the W patches of one row of one frame (`width_*`). Height step: the H patches
    of one column of one frame, with a copy of the cls token, through the image model's `norm1` and `attn`;
    the T × W cls outputs are averaged. The paper gives no cls rule for axial; this one mirrors the divided
    block, where the cls token joins the step that carries the image weights. Both `*_fc` start at zero, so
    a fresh block computes what the image ViT block computes per column. Parameters: two extra attentions
    over the image block, 156.8M at ViT-B/16 with 174 classes (TimeSformer Table 1).
    """

    extra_attentions = ("temporal", "width")

    def attend(self, block: Block, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        sizes = (block.grid.height, block.grid.width, block.grid.frames)
        cls, patches = split_cls(x)
        patches = block.attend_groups(patches, Grouping(sizes, (0, 1, 2)), "temporal")
        patches = block.attend_groups(patches, Grouping(sizes, (0, 2, 1)), "width")
        cls, patches = block.attend_groups_with_cls(cls, patches, Grouping(sizes, (1, 2, 0)), cls_only)
        return cls if cls_only else torch.cat([cls, patches], dim=1)
