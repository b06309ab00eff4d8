"""How a scheme cuts a clip's patch tokens into the groups that attend among themselves.

Patch tokens of a clip lie in space-major, time-minor order, so `[B, H * W * T, D]` views as
`[B, H, W, T, D]`. A scheme names the axes of that view (split further where it needs, e.g. H as 2 × H/2),
an order for them, and how many of the last axes in that order form one group: divided attention's temporal
step is sizes (H·W, T), order (0, 1), one member axis: a group per location, holding its T frames.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch


class Grouping(NamedTuple):
    sizes: tuple[int, ...]
    order: tuple[int, ...]
    member_axes: int = 1

    @property
    def group_size(self) -> int:
        return math.prod(self.sizes[axis] for axis in self.order[-self.member_axes:])

    @property
    def groups(self) -> int:
        """Groups per clip."""
        return math.prod(self.sizes) // self.group_size

    def split(self, patches: torch.Tensor) -> torch.Tensor:
        """`[B, patches, D]` -> `[B, groups, group_size, D]`; a view when the order allows it (divided attention's
        spatial step), else a copy."""
        batch, dim = patches.shape[0], patches.shape[-1]
        view = patches.unflatten(1, self.sizes)
        return view.permute(0, *(axis + 1 for axis in self.order), view.ndim - 1).reshape(batch, self.groups,
                                                                                          self.group_size, dim)

    def add(self, patches: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """`patches` plus `groups` put back in patch order: `[B, patches, D]` + `[B, groups, group_size, D]` ->
        `[B, patches, D]`. The addition reads `groups` through a permuted view, so regrouping costs no copy."""
        batch, dim = patches.shape[0], patches.shape[-1]
        view = groups.reshape(batch, *(self.sizes[axis] for axis in self.order), dim)  # only splits axes: a view
        inverse = sorted(range(len(self.order)), key=self.order.__getitem__)
        ordered = view.permute(0, *(axis + 1 for axis in inverse), view.ndim - 1)
        return (patches.unflatten(1, self.sizes) + ordered).flatten(1, -2)
