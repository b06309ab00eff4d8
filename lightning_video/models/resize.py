"""How a checkpoint's position and time embeddings are fitted to a model of another frame size or frame count.

Two sets of rules (`load_pretrained(..., resize=...)`):

- "smooth" (the default): the patch grid by timm's `resample_abs_pos_embed` (bicubic with antialiasing), time
  linearly with the first and last frames' codes kept. Smooth in both: neighbouring patches and frames keep
  neighbouring codes, an embedding linear in time stays exactly that, and shrinking averages rather than drops codes.
- "official": what the official code of the model's paper computes, to fine-tune or evaluate a released checkpoint
  at another size as its authors did. TimeSformer (`helpers.load_pretrained`, which builds its HR models from 224
  image weights) takes the nearest entry, in time and, for the patches, along the flattened patch sequence (not the
  2-D grid, so rows of codes land out of place; only a model built at the checkpoint's size and run on other crops
  takes the nearest grid cell, in its `forward`);
  X-ViT resizes the grid bicubically without antialiasing (at run time, by the ratio of the sides); its time
  embedding is covered by `tile_time_embed`.

An official X-ViT checkpoint's 8-entry `temp_embed` is tiled over a clip of a multiple of 8 frames under both rules:
its backbone is always built with 8 frames and adds the embedding to each run of 8 frames of the batch, so frame t
of a 16-frame clip gets entry t mod 8 (`tile_time_embed`). Other frame counts have no per-clip equivalent there;
"smooth" resizes them linearly, "official" refuses them.
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F

Resize = Literal["smooth", "official"]
RESIZES: tuple[str, ...] = get_args(Resize)


def _grid_sides(pos_embed: torch.Tensor, length: int) -> tuple[int, int]:
    """The side of the square patch grid of `pos_embed` `[1, 1 + s², D]` and of `length` positions."""
    old, new = (math.isqrt(count - 1) for count in (pos_embed.shape[1], length))
    if old * old + 1 != pos_embed.shape[1] or new * new + 1 != length:
        raise ValueError(f"cannot resize pos_embed from {pos_embed.shape[1]} to {length} positions: each must be "
                         f"the cls position plus a square patch grid")
    return old, new


def _with_cls(pos_embed: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The cls position of `pos_embed` before the patch grid `[1, D, s, s]` flattened back."""
    patches = grid.permute(0, 2, 3, 1).flatten(1, 2).to(pos_embed.dtype)
    return torch.cat([pos_embed[:, :1], patches], dim=1)


def resize_pos_embed(pos_embed: torch.Tensor, length: int) -> torch.Tensor:
    """`[1, 1 + s², D]` -> `[1, length, D]`: the s × s patch grid resized by timm's `resample_abs_pos_embed`
    (bicubic with antialiasing, in float32; the cls position kept), which computed bit-identical values to the
    interpolation written here before (float32, bfloat16, float64; 14 -> 28, 7, 16)."""
    from timm.layers import resample_abs_pos_embed  # timm's import takes seconds: only when a checkpoint is resized

    old, new = _grid_sides(pos_embed, length)
    return resample_abs_pos_embed(pos_embed, [new, new], [old, old], num_prefix_tokens=1)


def resize_pos_embed_xvit(pos_embed: torch.Tensor, length: int) -> torch.Tensor:
    """Official X-ViT: the patch grid resized bicubically without antialiasing by the ratio of the sides (a scale
    factor, as its `forward_features` does), in the embedding's own dtype, the cls position kept. Not timm's
    `resample_abs_pos_embed(..., antialias=False)`: that interpolates to a size in float32, which differs from a
    scale factor in the tensor's dtype wherever the ratio is not a whole number (14 -> 16: 6.5e-6 in float64,
    0.016 in bfloat16)."""
    old, new = _grid_sides(pos_embed, length)
    grid = pos_embed[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=new / old, mode="bicubic")
    return _with_cls(pos_embed, grid)


def resize_pos_embed_timesformer(pos_embed: torch.Tensor, length: int) -> torch.Tensor:
    """Official TimeSformer (`helpers.load_pretrained`): the nearest entry along the flattened patch sequence,
    1 + n -> `length`, the cls position kept."""
    patches = F.interpolate(pos_embed[:, 1:].transpose(1, 2), size=length - 1, mode="nearest")
    return torch.cat([pos_embed[:, :1], patches.transpose(1, 2)], dim=1)


def resize_time_embed(time_embed: torch.Tensor, frames: int) -> torch.Tensor:
    """`[1, T, D]` -> `[1, frames, D]`, linear in time with the first and last frames' codes kept, so an embedding
    linear in time stays exactly that."""
    resized = F.interpolate(time_embed.transpose(1, 2).float(), size=frames, mode="linear", align_corners=True)
    return resized.transpose(1, 2).to(time_embed.dtype)


def resize_time_embed_nearest(time_embed: torch.Tensor, frames: int) -> torch.Tensor:
    """Official TimeSformer (and HF): `[1, T, D]` -> `[1, frames, D]`, each frame the nearest entry."""
    return F.interpolate(time_embed.transpose(1, 2), size=frames, mode="nearest").transpose(1, 2)


def tile_time_embed(time_embed: torch.Tensor, frames: int) -> torch.Tensor:
    """Official X-ViT: `[1, T, D]` -> `[1, frames, D]` with frame t taking entry t mod T, for `frames` a multiple of
    T (for other counts the official code adds entries by position in the batch, not in the clip)."""
    if frames % time_embed.shape[1]:
        raise ValueError(f"cannot tile a {time_embed.shape[1]}-entry X-ViT time embedding over {frames} frames: the "
                         f"official code does so for multiples of {time_embed.shape[1]} only (for other counts it "
                         f"mixes clips of the batch); load with resize='smooth' to resize it linearly")
    return time_embed.repeat(1, frames // time_embed.shape[1], 1)
