"""Divided, axial and local-global blocks against a float64 reference written with masks over the full tokens.

The reference knows nothing of the blocks' reshapes: each token has coordinates (t, h, w), and an attention
step is "tokens whose key (e.g. the same location) is equal attend among themselves", computed as masked
softmax attention over the whole clip sequence, group by group.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from lightning_video.models import VideoTransformer
from lightning_video.models.block import TokenGrid

GRID = TokenGrid(frames=4, height=4, width=4)
DIM, HEADS = 16, 2


def patch_coordinates(grid: TokenGrid) -> list[tuple[int, int, int]]:
    """(t, h, w) of each patch token in the clip sequence (space-major, time-minor)."""
    return [(t, h, w) for h, w, t in itertools.product(range(grid.height), range(grid.width), range(grid.frames))]


def masked_attention(x: torch.Tensor, attn, allowed: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / sqrt(d)) v over the tokens `allowed[i, j]` lets query i see, then the output projection."""
    tokens, dim = x.shape
    head_dim = dim // attn.num_heads
    q, k, v = torch.nn.functional.linear(x, attn.qkv.weight, attn.qkv.bias).reshape(tokens, 3, attn.num_heads,
                                                                                     head_dim).unbind(1)
    out = torch.zeros_like(q)
    for head in range(attn.num_heads):
        logits = q[:, head] @ k[:, head].T / head_dim ** 0.5
        weights = logits.masked_fill(~allowed, float("-inf")).softmax(dim=-1).nan_to_num()
        out[:, head] = weights @ v[:, head]
    return attn.proj(out.reshape(tokens, dim))


def grouped_step(x: torch.Tensor, key, norm, attn, fc=None, with_cls: bool = False) -> torch.Tensor:
    """One attention step of one clip `x` `[1 + patches, D]`: patches with equal `key(t, h, w)` attend together.
    With `with_cls` each group also holds the cls token, whose update is the mean over groups; else cls sits out."""
    coords = patch_coordinates(GRID)
    keys = [key(*c) for c in coords]
    normed = norm(x)
    update = torch.zeros_like(x)
    cls_updates = []
    for group in sorted(set(keys)):
        members = torch.tensor([False] + [k == group for k in keys])
        if with_cls:
            members[0] = True
        out = masked_attention(normed, attn, members[:, None] & members[None, :])
        if fc is not None:
            out = fc(out)
        update[1:][members[1:]] = out[1:][members[1:]]
        cls_updates.append(out[0])
    if with_cls:
        update[0] = torch.stack(cls_updates).mean(dim=0)
    return x + update


def reference_block(block, attention: str, x: torch.Tensor) -> torch.Tensor:
    half_h, half_w = GRID.height // 2, GRID.width // 2
    steps = {
        "divided": [(lambda t, h, w: (h, w), "temporal"), (lambda t, h, w: t, None)],
        "axial": [(lambda t, h, w: (h, w), "temporal"), (lambda t, h, w: (t, h), "width"),
                  (lambda t, h, w: (t, w), None)],
        "local_global": [(lambda t, h, w: (h // half_h, w // half_w), None),
                         (lambda t, h, w: (t % 2, h % 2, w % 2), "global")],
    }[attention]
    for key, prefix in steps:
        if prefix is None:
            x = grouped_step(x, key, block.norm1, block.attn, with_cls=True)
        else:
            x = grouped_step(x, key, getattr(block, f"{prefix}_norm1"), getattr(block, f"{prefix}_attn"),
                             getattr(block, f"{prefix}_fc"))
    return x + block.mlp(block.norm2(x))


@pytest.mark.parametrize("attention", ["divided", "axial", "local_global"])
def test_block_matches_the_masked_float64_reference(attention: str):
    torch.manual_seed(0)
    model = VideoTransformer(attention, num_classes=3, img_size=16, patch_size=4, num_frames=GRID.frames,
                             embed_dim=DIM, depth=1, num_heads=HEADS, drop_path_rate=0.0).double().eval()
    block = model.blocks[0]
    with torch.no_grad():
        for param in block.parameters():  # random everything, the zero-initialised *_fc included
            param.normal_(0, 0.3)
        x = torch.randn(2, 1 + GRID.frames * GRID.patches_per_frame, DIM, dtype=torch.float64)
        expected = torch.stack([reference_block(block, attention, clip) for clip in x])
        torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("attention", ["axial", "local_global"])
def test_fresh_extra_attentions_start_at_zero(attention: str):
    model = VideoTransformer(attention, num_classes=3, img_size=16, patch_size=4, num_frames=4, embed_dim=DIM,
                             depth=2, num_heads=HEADS)
    fcs = [(name, p) for name, p in model.named_parameters() if "_fc." in name]
    assert len(fcs) == {"axial": 8, "local_global": 4}[attention]
    assert all(p.abs().sum() == 0 for _, p in fcs)


def test_local_global_needs_even_frames_and_patch_grid():
    with pytest.raises(ValueError, match=r"local_global' needs an even number of frames.*num_frames=3"):
        VideoTransformer("local_global", num_classes=3, img_size=16, patch_size=4, num_frames=3, embed_dim=DIM,
                         depth=1, num_heads=HEADS)
    with pytest.raises(ValueError, match=r"got num_frames=4 and 3x3 patches"):
        VideoTransformer("local_global", num_classes=3, img_size=12, patch_size=4, num_frames=4, embed_dim=DIM,
                         depth=1, num_heads=HEADS)
