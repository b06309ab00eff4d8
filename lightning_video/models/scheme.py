"""What an attention scheme is: one object that declares everything the backbone and the weight loader need.

A scheme subclasses `Scheme`, sets the class attributes that describe it, overrides `attend` (how one block's tokens
exchange information) and, where its official model differs, `attention` (the block's main attention layer),
`readout` and `check`. Its options are the typed, documented arguments of its `__init__`, so the command line
lists them (`--model.backbone.init_args.attention XViT --print_config`) and refuses a wrong one. Registered under a
name (`registry.ATTENTIONS`), it is also reachable as `VideoTransformer(attention=NAME, attention_options={...})`.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch

from lightning_video.models.attention import Attention
from lightning_video.models.readout import ClsReadout, Readout

if TYPE_CHECKING:
    from lightning_video.models.block import Block, TokenGrid

Layout = Literal["clip", "frame"]


class Scheme:
    """Full self-attention over the sequence each block gets; the base every scheme builds on.

    Attributes:
        layout: how the backbone lays out a clip's tokens for the blocks: "clip" is one sequence per clip,
            `[batch, 1 + patches * frames, dim]`, one cls token, patches in space-major, time-minor order; "frame" is
            one sequence per frame, `[batch * frames, 1 + patches, dim]`, each with its own cls token.
        time_embed: whether the scheme's official model has a learned temporal embedding (the default `pos_embed`).
        extra_attentions: names of the attentions a block has besides the image ViT's `norm1` + `attn`; each name
            gives the block `{name}_norm1`, `{name}_attn` and a zero-initialised `{name}_fc` (TimeSformer's
            `temporal_*`), which image weights fill from `norm1` and `attn` (`weights.load_pretrained`).
    """

    layout: ClassVar[Layout] = "clip"
    time_embed: ClassVar[bool] = True
    extra_attentions: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The scheme's options: its `__init__` arguments."""
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # after self
        return tuple(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def options(self) -> dict[str, Any]:
        """The options this scheme was built with (each `__init__` argument is kept as the attribute of its name)."""
        return {name: getattr(self, name) for name in self.option_names()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in self.options().items())})"

    def check(self, grid: TokenGrid, dim: int) -> None:
        """Refuse, with a ValueError naming the fix, model sizes the scheme cannot work with, before any layer is
        built."""

    def attention(self, dim: int, num_heads: int, grid: TokenGrid, layer_index: int, depth: int,
                  **kwargs: Any) -> Attention:
        """The block's main attention layer (`attn`, which image weights fill); `layer_index` of `depth` blocks for
        schemes whose layers differ. `kwargs` are `Attention`'s."""
        return Attention(dim, num_heads, **kwargs)

    def attend(self, block: Block, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """The attention steps of `block` on `x` with their residuals, before the MLP; `cls_only` as in
        `Block.forward`. The block's helpers (`attend_sequence`, `attend_groups_with_cls`, `attend_groups`) are the
        steps schemes are made of."""
        return block.attend_sequence(x, cls_only)

    def readout(self, dim: int, num_heads: int, num_frames: int, mlp_ratio: float, head_drop: float) -> Readout:
        """The module that reads the clip feature the head classifies from the last block's cls token(s), with
        dropout `head_drop` on the features the classifier reads."""
        return ClsReadout(head_drop)
