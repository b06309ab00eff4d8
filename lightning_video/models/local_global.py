"""Sparse local-global attention (TimeSformer "L+G"): local windows, then strided global attention, then the MLP."""
from __future__ import annotations

import torch

from lightning_video.models.block import Block, TokenGrid, split_cls
from lightning_video.models.grouping import Grouping
from lightning_video.models.scheme import Scheme


class LocalGlobal(Scheme):
    """Local step: the clip's patches split into four F × H/2 × W/2 windows (all frames, one quadrant of the
    frame each); each window attends within itself with a copy of the cls token, through the image model's
    `norm1` and `attn`, and the four cls outputs are averaged. Global step: attention over the whole clip
    with stride 2 in time, height and width, i.e. among the patches whose (t, h, w) have the same parities
    (eight groups of T/2 × H/2 × W/2), through its own `global_norm1`, `global_attn` and zero-initialised
    `global_fc`; the cls token sits out. Two steps together let every patch reach every other.

    The paper says "neighbouring F × H/2 × W/2 patches"; we read it as the four non-overlapping windows, which
    costs a quarter of joint attention (a sliding window per patch would cost as much as joint attention).
    """

    extra_attentions = ("global",)

    def check(self, grid: TokenGrid, dim: int) -> None:
        if grid.frames % 2 or grid.height % 2 or grid.width % 2:
            raise ValueError(f"attention='local_global' needs an even number of frames and an even number of "
                             f"patches along the height and width (H/2 × W/2 windows, stride-2 global attention); "
                             f"got num_frames={grid.frames} and {grid.height}x{grid.width} patches per frame: use "
                             f"e.g. num_frames={grid.frames + grid.frames % 2} and img_size = an even multiple of "
                             f"patch_size")

    def attend(self, block: Block, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Every token, even with `cls_only`: the cls token leaves before the global step, whose weights would then
        get no gradient at all in the last block (DDP refuses that), rather than a zero one."""
        grid = block.grid
        half_height, half_width, half_frames = grid.height // 2, grid.width // 2, grid.frames // 2
        # Rows as (window row, row in window), columns likewise: windows are axes 0 and 2.
        windows = Grouping((2, half_height, 2, half_width, grid.frames), (0, 2, 1, 3, 4), member_axes=3)
        cls, patches = block.attend_groups_with_cls(*split_cls(x), windows)
        # Rows as (row // 2, row % 2), etc.: the parity axes 1, 3 and 5 pick the group.
        strided = Grouping((half_height, 2, half_width, 2, half_frames, 2), (1, 3, 5, 0, 2, 4), member_axes=3)
        patches = block.attend_groups(patches, strided, "global")
        return torch.cat([cls, patches], dim=1)
