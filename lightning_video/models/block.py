"""The transformer block every attention scheme runs in: the scheme's attention steps, then the MLP, each residual.

The steps schemes are made of live here: attention over whole sequences, within groups of patches with a copy of
the cls token, and an extra attention within groups (its output Linears merged where that saves work).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from lightning_video.models.attention import Attention
from lightning_video.models.grouping import Grouping
from lightning_video.models.scheme import Scheme


class TokenGrid(NamedTuple):
    """How the patch tokens of one clip are arranged: frames × height × width patches."""

    frames: int
    height: int
    width: int

    @property
    def patches_per_frame(self) -> int:
        return self.height * self.width


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per row of the batch while training."""

    def __init__(self, prob: float = 0.0) -> None:
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


BACKBONE_NORM_EPS = 1e-6  # the official TimeSformer and timm ViT backbones'


def layer_norm(dim: int, eps: float = BACKBONE_NORM_EPS) -> nn.LayerNorm:
    """LayerNorm with the eps of the official TimeSformer and timm ViT weights, unless told otherwise."""
    return nn.LayerNorm(dim, eps=eps)


class Block(nn.Module):
    """Pre-norm transformer block: the scheme's attention steps (`Scheme.attend`), then the MLP, each residual.

    Its layers are the image ViT block's (`norm1`, `attn`, `norm2`, `mlp`, so ViT weights load by name) with `attn`
    built by the scheme, plus, for each of the scheme's `extra_attentions`, `{name}_norm1`, `{name}_attn` and
    `{name}_fc`, named as in the official TimeSformer code so checkpoints load by name.

    Args:
        grid: the token grid of one clip; the scheme's steps read it.
        scheme: the attention scheme; None is full attention over the sequence the block gets (`Scheme`).
        layer_index: where the block sits among `depth` blocks, for schemes whose layers differ (X-ViT).
        norm_eps: the LayerNorms' eps: the backbone's 1e-6, or what the official code of a head built of blocks
            used (X-ViT's TA head: PyTorch's default 1e-5).
    """

    def __init__(self, dim: int, num_heads: int, grid: TokenGrid, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0, scheme: Scheme | None = None,
                 layer_index: int = 0, depth: int = 1, norm_eps: float = BACKBONE_NORM_EPS) -> None:
        super().__init__()
        self.grid = grid
        self.scheme = scheme or Scheme()
        self.norm1 = layer_norm(dim, norm_eps)
        self.attn = self.scheme.attention(dim, num_heads, grid, layer_index, depth, qkv_bias=qkv_bias,
                                          attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = layer_norm(dim, norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        for name in self.scheme.extra_attentions:
            self.add_module(f"{name}_norm1", layer_norm(dim, norm_eps))
            self.add_module(f"{name}_attn", Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                                      proj_drop=drop))
            self.add_module(f"{name}_fc", nn.Linear(dim, dim))
        self.merge_output_linears = True  # see `extra_attention_output`

    def image_counterparts(self) -> dict[str, str]:
        """Each extra attention's module name -> the image block's module it starts from with image weights
        (`temporal_norm1` -> `norm1`, `temporal_attn` -> `attn`; the `*_fc` has none and starts at zero)."""
        return {f"{name}_{own}": own for name in self.scheme.extra_attentions for own in ("norm1", "attn")}

    def init_weights(self) -> None:
        """timm ViT init (truncated-normal Linear weights, zero biases), except that the output Linear of every
        extra attention (`{name}_fc`) starts at zero, so a fresh block computes what the image ViT block does."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for name in self.scheme.extra_attentions:
            nn.init.zeros_(getattr(self, f"{name}_fc").weight)

    def forward(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """`x` with this block applied. `cls_only`: the caller reads only the cls token(s) (the readout, of the last
        block), so the block may return just them, `[sequences, 1, D]`, and spare the other tokens' queries and
        MLP."""
        x = self.scheme.attend(self, x, cls_only)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def attend_sequence(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Main attention (`norm1`, `attn`) over each whole sequence of `x`, with its residual."""
        return (x[:, :1] if cls_only else x) + self.drop_path(self.attn(self.norm1(x), cls_only))

    def attend_groups_with_cls(self, cls: torch.Tensor, patches: torch.Tensor, grouping: Grouping,
                               cls_only: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Main attention (`norm1`, `attn`) within each group of patches plus a copy of the cls token; the cls
        token's update is the average over its copies (the official divided block's spatial step).

        Args:
            cls: `[B, 1, D]`, as `split_cls` gives it.
            patches: `[B, patches, D]`.
            cls_only: only the cls copies query; the patches come back as None.
        Returns:
            The updated `cls` and `patches`.
        """
        groups = grouping.split(patches)
        with_cls = torch.cat([cls.unsqueeze(1).expand(-1, grouping.groups, -1, -1), groups], dim=2)
        update = self.drop_path(self.attn(self.norm1(with_cls.flatten(0, 1)), cls_only))
        cls_update, patch_update = update.unflatten(0, groups.shape[:2]).split([1, update.shape[1] - 1], dim=2)
        return cls + cls_update.mean(dim=1), None if cls_only else grouping.add(patches, patch_update)

    def attend_groups(self, patches: torch.Tensor, grouping: Grouping, extra_attention: str) -> torch.Tensor:
        """The extra attention of that name (its `_norm1`, `_attn` and `_fc`) within each group of `patches`
        `[B, patches, D]`; the cls token sits out."""
        norm, attn, fc = (getattr(self, f"{extra_attention}_{part}") for part in ("norm1", "attn", "fc"))
        normed = norm(grouping.split(patches))
        update = self.extra_attention_output(attn.heads(normed.flatten(0, 1)), attn, fc)
        return grouping.add(patches, update.unflatten(0, normed.shape[:2]))

    def extra_attention_output(self, heads: torch.Tensor, attn: Attention, fc: nn.Linear) -> torch.Tensor:
        """`fc(drop_path(attn.output(heads)))`. With no dropout between them, `attn.proj` and `fc` act as one Linear,
        `fc.weight @ attn.proj.weight` (stochastic depth scales whole rows, so it passes `fc.weight`; `fc.bias` stays
        outside it): one token-sized matrix product instead of two forward and two instead of four backward, for
        the same function and gradients. The weight
        product costs as much as the products it saves for as many tokens as channels, so fewer tokens stay separate,
        as everything does while `merge_output_linears` is False (`VideoTransformer.as_written`)."""
        worth_it = heads.numel() > heads.shape[-1] ** 2  # tokens > channels
        if not (self.merge_output_linears and worth_it) or (attn.training and attn.proj_drop.p):
            return fc(self.drop_path(attn.output(heads)))
        merged = nn.functional.linear(heads, fc.weight @ attn.proj.weight, fc.weight @ attn.proj.bias)
        return self.drop_path(merged) + fc.bias


def split_cls(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The cls token `[B, 1, D]` and the patches `[B, patches, D]` of a clip sequence, for the grouped steps; one
    `split`, whose backward is one `cat` (two slices would each write a full-size zero gradient)."""
    return x.split([1, x.shape[1] - 1], dim=1)
