"""Attention schemes by config name. A new scheme is one file with a `Block` subclass and one line here."""
from __future__ import annotations

from lightning_video.models.axial import AxialBlock
from lightning_video.models.block import Block
from lightning_video.models.divided import DividedSpaceTimeBlock
from lightning_video.models.joint import JointSpaceTimeBlock
from lightning_video.models.local_global import LocalGlobalBlock
from lightning_video.models.space import SpaceBlock
from lightning_video.models.xvit import XViTBlock

ATTENTIONS: dict[str, type[Block]] = {
    "space": SpaceBlock,
    "joint": JointSpaceTimeBlock,
    "divided": DividedSpaceTimeBlock,
    "local_global": LocalGlobalBlock,
    "axial": AxialBlock,
    "xvit": XViTBlock,
}


def block_class(attention: str) -> type[Block]:
    """The block class for a scheme name, or a ValueError listing the valid names."""
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}; valid: {', '.join(ATTENTIONS)}")
    return ATTENTIONS[attention]
