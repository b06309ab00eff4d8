"""How the clip feature the head classifies is read from the last block's cls token(s): a scheme's `readout`."""
from __future__ import annotations

import torch
from torch import nn


class Readout(nn.Module):
    """Turns the last block's cls tokens `[batch, sequences per clip, dim]` into the clip feature `[batch, dim]`.

    The backbone's final `norm` is passed in rather than owned, so its weights keep their official name (`norm`);
    where it applies is the readout's to say (the papers differ). So is where `head_drop` (dropout on the features
    the classifier reads) applies.

    Args:
        head_drop: dropout probability on the features the classifier reads (`VideoTransformer.head_drop_rate`).
    """

    def __init__(self, head_drop: float = 0.0) -> None:
        super().__init__()
        self.head_drop = nn.Dropout(head_drop)

    def read(self, cls: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def init_classifier(self, head: nn.Linear) -> None:
        """Initialise the backbone's classifier `head`, which classifies what this readout reads: timm's ViT init
        (truncated normal, std 0.02; zero bias), unless the official code of the readout's paper does otherwise."""
        nn.init.trunc_normal_(head.weight, std=0.02)
        nn.init.zeros_(head.bias)


class ClsReadout(Readout):
    """The cls token, normed: the clip's one (TimeSformer) or, one per frame, their average before the norm (the
    official space-only model)."""

    def read(self, cls: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return self.head_drop(norm(cls.mean(dim=1)))
