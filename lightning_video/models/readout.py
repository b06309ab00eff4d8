"""How the clip feature the head classifies is read from the last block's cls token(s): a scheme's `readout`."""
from __future__ import annotations

import torch
from torch import nn


class Readout(nn.Module):
    """Turns the last block's cls tokens `[batch, sequences per clip, dim]` into the clip feature `[batch, dim]`.

    The backbone's final `norm` is passed in rather than owned, so its weights keep their official name (`norm`);
    where it applies is the readout's to say (the papers differ)."""

    def read(self, cls: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        raise NotImplementedError


class ClsReadout(Readout):
    """The cls token, normed: the clip's one (TimeSformer) or, one per frame, their average before the norm (the
    official space-only model)."""

    def read(self, cls: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return norm(cls.mean(dim=1))
