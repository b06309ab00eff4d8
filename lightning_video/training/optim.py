"""Optimiser parameter groups: weight decay only where it regularises."""
from __future__ import annotations

from torch import nn

# Token and position embeddings: decaying them pulls every position towards the same code.
EMBEDDINGS = ("cls_token", "pos_embed", "time_embed")


def parameter_groups(model: nn.Module, no_weight_decay: bool) -> list[dict]:
    """The trainable parameters, with weight decay 0 for norms, biases (every 1-D parameter) and the `EMBEDDINGS`
    when `no_weight_decay` (timm's rule for ViTs); the other group takes the optimiser's own weight decay.

    Kept over timm's `param_groups_weight_decay`, which splits the parameters the same way (checked on
    `VideoClassifier`, given `*pos_embed`-style patterns: with our bare names it matches whole names only and misses
    the `backbone.` ones, 17 against 20) but puts the no-decay group first, so every saved optimizer state would no
    longer load on resume ("loaded state dict contains a parameter group that doesn't match the size of optimizer's
    group"), and needs the weight decay given here, where the optimizer's config holds it."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        excluded = no_weight_decay and (param.ndim <= 1 or name.rsplit(".", 1)[-1] in EMBEDDINGS)
        (no_decay if excluded else decay).append(param)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]
