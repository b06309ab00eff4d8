"""VideoTransformer: a ViT over frame patches whose blocks use the chosen attention scheme.

Parameter names follow the official TimeSformer / timm ViT (`patch_embed.proj`, `cls_token`, `pos_embed`,
`time_embed`, `blocks.N.*`, `norm`, `head`) so image and video checkpoints load by name.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_video.models.block import Block, TokenGrid, layer_norm
from lightning_video.models.registry import build_scheme, scheme_name
from lightning_video.models.scheme import Scheme

PosEmbed = Literal["none", "space", "space_time"]
TimeEmbedInit = Literal["zeros", "sincos"]
PosEmbedInit = Literal["trunc_normal", "sincos"]


def sincos_grid_embedding(side: int, dim: int) -> torch.Tensor:
    """`[side * side, dim]` codes of a square patch grid, row-major: the first half of the channels code the row, the
    second half the column (the 2-D sincos of MAE and MoCo v3)."""
    rows, columns = sincos_embedding(side, dim // 2), sincos_embedding(side, dim - dim // 2)
    return torch.cat([rows[:, None].expand(side, side, -1), columns[None].expand(side, side, -1)], -1).flatten(0, 1)


def sincos_embedding(length: int, dim: int) -> torch.Tensor:
    """`[length, dim]` sinusoidal codes of positions 0..length-1: half sines, half cosines (Vaswani et al.), with
    frequencies spaced geometrically from one radian per position down to one radian per `length` positions.
    The usual 10000-position range would leave most channels nearly constant over a clip of a few frames."""
    frequencies = float(length) ** -(torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = torch.arange(length, dtype=torch.float64)[:, None] * frequencies
    codes = torch.cat([angles.sin(), angles.cos()], dim=1)
    return torch.nn.functional.pad(codes, (0, dim % 2)).float()


class PatchEmbed(nn.Module):
    """Embed each frame's non-overlapping patches with one strided convolution (shared over time)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """`[B, C, T, H, W]` -> `[B * T, patches, D]`, frames of one clip adjacent."""
        batch, chans, frames, height, width = video.shape
        frames_as_images = video.transpose(1, 2).reshape(batch * frames, chans, height, width)
        return self.proj(frames_as_images).flatten(2).transpose(1, 2)


class VideoTransformer(nn.Module):
    """Video classifier `[B, C, T, H, W]` -> logits `[B, num_classes]`.

    Args:
        attention: the attention scheme: a `Scheme` object carrying its options (on the command line, e.g.
            `--model.backbone.init_args.attention XViT` and `--print_config` to see its options), or the name of a
            registered one (`lightning_video.models.registry.ATTENTIONS`) with its options in `attention_options`.
        num_classes: size of the classification head.
        img_size: height and width of the input frames, a multiple of `patch_size`.
        patch_size: side of the square patches.
        num_frames: frames per clip.
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads per attention layer.
        mlp_ratio: MLP hidden width relative to `embed_dim`.
        qkv_bias: bias in the qkv projections (the official weights have it).
        pos_embed: "space_time" (spatial + temporal embeddings), "space" or "none" (TimeSformer Table 4).
            None picks the scheme's official choice: "space" for space-only, "space_time" otherwise.
        drop_rate: dropout after embeddings, attention projections and MLPs.
        attn_drop_rate: dropout on attention weights.
        drop_path_rate: stochastic depth, rising linearly from 0 in the first block to this value.
        head_drop_rate: dropout on the features the classifier reads; where, the scheme's readout says. The official
            X-ViT (`MODEL.DROPOUT_RATE`, 0.5 in its configs) drops each frame's feature before the readout and the
            TA head's hidden MLP features; the official TimeSformer's configs set it too, but its model never reads it.
        in_chans: input channels.
        time_embed_init: "zeros" (official: a fresh video model computes what its image model does, right when
            starting from image weights) or "sincos" (sinusoidal codes, learned from there). From scratch the
            model cannot tell frame order until `time_embed` has learned one, which a zero start makes slow
            (docs/results/tables.md, the main job).
        pos_embed_init: "trunc_normal" (official, std 0.02) or "sincos" (2-D sinusoidal codes of the patch's row and
            column, learned from there; the cls token's entry stays trunc_normal). A from-scratch model at the
            synthetic sizes hardly uses positions that start at std 0.02, and learns them from sincos
            (docs/results/tables.md, the attention table).
        checkpoint_blocks: recompute each block in the backward pass to save activation memory.
        attention_options: the options of a scheme given by name (e.g. X-ViT's `mix`, `shift_div`; see the scheme
            class's arguments).

    Attributes:
        attention: the scheme's registered name (its class name if it has none).
        scheme: the attention scheme.
        cls_only_last_block: the last block computes only the cls token(s), the only tokens the readout reads
            (its other tokens would cost time and change no logit); `as_written` turns it off.
    """

    def __init__(self, attention: Scheme | str = "divided", num_classes: int = 400, img_size: int = 224,
                 patch_size: int = 16, num_frames: int = 8, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, pos_embed: PosEmbed | None = None,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 head_drop_rate: float = 0.0, in_chans: int = 3,
                 time_embed_init: TimeEmbedInit = "zeros", pos_embed_init: PosEmbedInit = "trunc_normal",
                 checkpoint_blocks: bool = False,
                 attention_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        scheme = build_scheme(attention, attention_options)
        if img_size % patch_size:
            nearest = img_size // patch_size * patch_size or patch_size
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={patch_size}; "
                             f"use a multiple of {patch_size} (e.g. {nearest})")
        if num_frames < 1:
            raise ValueError(f"num_frames={num_frames}: need at least one frame")
        pos_embed = pos_embed or ("space_time" if scheme.time_embed else "space")
        if pos_embed not in ("none", "space", "space_time"):
            raise ValueError(f"unknown pos_embed {pos_embed!r}; valid: none, space, space_time")
        if pos_embed == "space_time" and not scheme.time_embed:
            raise ValueError(f"attention={scheme_name(scheme)!r} has no temporal embedding (its frames never meet "
                             f"before the final average); valid pos_embed for it: none, space")
        if time_embed_init not in ("zeros", "sincos"):
            raise ValueError(f"unknown time_embed_init {time_embed_init!r}; valid: zeros, sincos")
        if pos_embed_init not in ("trunc_normal", "sincos"):
            raise ValueError(f"unknown pos_embed_init {pos_embed_init!r}; valid: trunc_normal, sincos")
        side = img_size // patch_size
        self.grid = TokenGrid(num_frames, side, side)
        scheme.check(self.grid, embed_dim)
        self.attention = scheme_name(scheme)
        self.scheme = scheme
        self.num_frames = num_frames
        self.img_size = img_size

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side + 1, embed_dim)) if pos_embed != "none" else None
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim)) if pos_embed == "space_time" else None
        self.pos_drop = nn.Dropout(drop_rate)
        drop_paths = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, self.grid, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=drop_path, scheme=scheme, layer_index=index, depth=depth)
            for index, drop_path in enumerate(drop_paths))
        self.norm = layer_norm(embed_dim)
        # Named after X-ViT's TA head, the one readout with weights, so the official ones load by name.
        self.temporal_head = scheme.readout(embed_dim, num_heads, num_frames, mlp_ratio, head_drop_rate)
        self.head = nn.Linear(embed_dim, num_classes)
        self.checkpoint_blocks = checkpoint_blocks
        self.cls_only_last_block = True
        self._init_weights(time_embed_init, pos_embed_init)

    def _init_weights(self, time_embed_init: TimeEmbedInit, pos_embed_init: PosEmbedInit) -> None:
        """timm ViT init; `time_embed` and the patches' `pos_embed` as `time_embed_init` and `pos_embed_init` say."""
        for param in (self.cls_token, self.pos_embed):
            if param is not None:
                nn.init.trunc_normal_(param, std=0.02)
        if self.pos_embed is not None and pos_embed_init == "sincos":
            with torch.no_grad():
                self.pos_embed[0, 1:] = sincos_grid_embedding(self.grid.height, self.pos_embed.shape[-1])
        if self.time_embed is not None and time_embed_init == "sincos":
            with torch.no_grad():
                self.time_embed.copy_(sincos_embedding(self.num_frames, self.time_embed.shape[-1]))
        for block in self.blocks:
            block.init_weights()
        self.temporal_head.init_classifier(self.head)

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """Patch tokens with cls token(s) and positional embeddings, in the layout the blocks expect."""
        batch, _, frames, height, width = video.shape
        if (frames, height, width) != (self.num_frames, self.img_size, self.img_size):
            raise ValueError(f"expected clips of {self.num_frames} frames at {self.img_size}x{self.img_size}, got "
                             f"{frames} frames at {height}x{width} (input is [B, C, T, H, W])")
        tokens = self.patch_embed(video)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        if self.pos_embed is not None:
            tokens = tokens + self.pos_embed
        tokens = self.pos_drop(tokens)
        if self.scheme.layout == "frame":
            if self.time_embed is None:
                return tokens
            # X-ViT: every token of frame t, cls included, gets time_embed[t].
            per_clip = tokens.reshape(batch, frames, *tokens.shape[1:]) + self.time_embed.unsqueeze(2)
            return self.pos_drop(per_clip.flatten(0, 1))
        # One clip sequence: a single cls token, patches in space-major, time-minor order.
        dim = tokens.shape[-1]
        cls = tokens[::frames, :1]
        patches = tokens[:, 1:].reshape(batch, frames, -1, dim).transpose(1, 2)
        if self.time_embed is not None:
            patches = self.pos_drop(patches + self.time_embed.unsqueeze(1))
        return torch.cat([cls, patches.reshape(batch, -1, dim)], dim=1)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """The clip embedding `[B, D]` the head classifies."""
        tokens = self.embed(video)
        for index, block in enumerate(self.blocks):
            cls_only = self.cls_only_last_block and index == len(self.blocks) - 1
            if self.checkpoint_blocks and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, cls_only, use_reentrant=False)
            else:
                tokens = block(tokens, cls_only)
        cls = tokens[:, 0].unflatten(0, (video.shape[0], -1))  # [B, sequences per clip, D]: all the readout reads
        return self.temporal_head.read(cls, self.norm)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(video))

    @contextlib.contextmanager
    def as_written(self) -> Iterator[None]:
        """Inside this block the model computes all it is written to, as papers count FLOPs: every token of the last
        block (`cls_only_last_block`) and every Linear layer on its own (`Block.merge_output_linears`). The shortcuts
        give the same logits for less work."""
        saved = self.cls_only_last_block, [block.merge_output_linears for block in self.blocks]
        self.cls_only_last_block = False
        for block in self.blocks:
            block.merge_output_linears = False
        try:
            yield
        finally:
            self.cls_only_last_block = saved[0]
            for block, merge in zip(self.blocks, saved[1]):
                block.merge_output_linears = merge
