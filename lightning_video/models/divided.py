"""Divided space-time attention (TimeSformer "T+S"): temporal attention, then spatial, then the MLP."""
from __future__ import annotations

import torch

from lightning_video.models.block import Block, split_cls
from lightning_video.models.grouping import Grouping
from lightning_video.models.scheme import Scheme


class Divided(Scheme):
    """Official TimeSformer divided block.

    Temporal step: each patch attends to the patches at its spatial location in the other frames (the cls
    token is left out), through its own `temporal_norm1`, `temporal_attn` and a zero-initialised
    `temporal_fc`, so a fresh block starts as the image ViT block. Spatial step: each frame attends within
    itself together with a copy of the cls token; the T cls outputs are averaged.
    (The official code leaves block 0's `temporal_fc` at its random init; the paper's "start as the image
    model" needs all of them zero, which is what we do.)
    """

    extra_attentions = ("temporal",)

    def attend(self, block: Block, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        sizes = (block.grid.patches_per_frame, block.grid.frames)
        cls, patches = split_cls(x)
        patches = block.attend_groups(patches, Grouping(sizes, (0, 1)), "temporal")
        cls, patches = block.attend_groups_with_cls(cls, patches, Grouping(sizes, (1, 0)), cls_only)
        return cls if cls_only else torch.cat([cls, patches], dim=1)
