"""Divided space-time attention (TimeSformer "T+S"): temporal attention, then spatial, then the MLP."""
from __future__ import annotations

import torch

from lightning_video.models.block import Block, TokenGrid, extra_attention, split_cls
from lightning_video.models.grouping import Grouping


class DividedSpaceTimeBlock(Block):
    """Official TimeSformer divided block.

    Temporal step: each patch attends to the patches at its spatial location in the other frames (the cls
    token is left out), through its own `temporal_norm1`, `temporal_attn` and a zero-initialised
    `temporal_fc`, so a fresh block starts as the image ViT block. Spatial step: each frame attends within
    itself together with a copy of the cls token; the T cls outputs are averaged.
    (The official code leaves block 0's `temporal_fc` at its random init; the paper's "start as the image
    model" needs all of them zero, which is what we do.)
    """

    def __init__(self, dim: int, num_heads: int, grid: TokenGrid, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, **kwargs) -> None:
        super().__init__(dim, num_heads, grid, qkv_bias=qkv_bias, drop=drop, attn_drop=attn_drop, **kwargs)
        self.temporal_norm1, self.temporal_attn, self.temporal_fc = extra_attention(dim, num_heads, qkv_bias, drop,
                                                                                    attn_drop)

    def attend(self, x: torch.Tensor, grid: TokenGrid, cls_only: bool = False) -> torch.Tensor:
        sizes = (grid.patches_per_frame, grid.frames)
        cls, patches = split_cls(x)
        patches = self.attend_groups(patches, Grouping(sizes, (0, 1)), self.temporal_norm1, self.temporal_attn,
                                     self.temporal_fc)
        cls, patches = self.attend_groups_with_cls(cls, patches, Grouping(sizes, (1, 0)), cls_only)
        return cls if cls_only else torch.cat([cls, patches], dim=1)
