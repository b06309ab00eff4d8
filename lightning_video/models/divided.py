"""Divided space-time attention (TimeSformer "T+S"): temporal attention, then spatial, then the MLP."""
from __future__ import annotations

import torch
from torch import nn

from lightning_video.models.attention import Attention
from lightning_video.models.block import Block, TokenGrid, layer_norm


class DividedSpaceTimeBlock(Block):
    """Official TimeSformer divided block.

    Temporal step: each patch attends to the patches at its spatial location in the other frames (the cls
    token is left out), through its own `temporal_norm1`, `temporal_attn` and a zero-initialised
    `temporal_fc`, so a fresh block starts as the image ViT block. Spatial step: each frame attends within
    itself together with a copy of the cls token; the T cls outputs are averaged.
    (The official code leaves block 0's `temporal_fc` at its random init; the paper's "start as the image
    model" needs all of them zero, which is what we do.)
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0,
                 **kwargs) -> None:
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, drop=drop, attn_drop=attn_drop, **kwargs)
        self.temporal_norm1 = layer_norm(dim)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.temporal_fc = nn.Linear(dim, dim)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.zeros_(self.temporal_fc.weight)
        nn.init.zeros_(self.temporal_fc.bias)

    def attend(self, x: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
        batch, _, dim = x.shape
        frames, space = grid.frames, grid.patches_per_frame
        cls, patches = x[:, :1], x[:, 1:]

        # Space-major, time-minor order makes each location's T tokens contiguous.
        temporal = self.drop_path(self.temporal_attn(self.temporal_norm1(patches.reshape(batch * space, frames, dim))))
        patches = patches + self.temporal_fc(temporal.reshape(batch, space * frames, dim))

        per_frame = patches.reshape(batch, space, frames, dim).transpose(1, 2).reshape(batch * frames, space, dim)
        per_frame = torch.cat([cls.repeat_interleave(frames, dim=0), per_frame], dim=1)
        spatial = self.drop_path(self.attn(self.norm1(per_frame)))
        cls_update = spatial[:, 0].reshape(batch, frames, dim).mean(dim=1, keepdim=True)
        patch_update = spatial[:, 1:].reshape(batch, frames, space, dim).transpose(1, 2)
        patch_update = patch_update.reshape(batch, space * frames, dim)
        return torch.cat([cls + cls_update, patches + patch_update], dim=1)
