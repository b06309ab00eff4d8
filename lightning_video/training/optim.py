"""Optimiser parameter groups: weight decay only where it regularises."""
from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn

# Token and position embeddings: decaying them pulls every position towards the same code.
EMBEDDINGS = ("cls_token", "pos_embed", "time_embed")


def parameter_groups(model: nn.Module, no_weight_decay: bool | list[str]) -> list[dict]:
    """The trainable parameters, with weight decay 0 for those `no_weight_decay` exempts; the other group takes the
    optimiser's own weight decay.

    Kept over timm's `param_groups_weight_decay`, which splits the parameters the same way (checked on
    `VideoClassifier`, given `*pos_embed`-style patterns: with our bare names it matches whole names only and misses
    the `backbone.` ones, 17 against 20) but puts the no-decay group first, so every saved optimizer state would no
    longer load on resume ("loaded state dict contains a parameter group that doesn't match the size of optimizer's
    group"), and needs the weight decay given here, where the optimizer's config holds it.

    Args:
        no_weight_decay: True: norms, biases (every 1-D parameter) and the `EMBEDDINGS` (timm's rule for ViTs);
            False: none; a list: the parameters whose names match one of its shell patterns (`fnmatch`), for a
            recipe that follows another code's rule exactly (the official X-ViT exempts only its head's biases).
    """
    named = named_exempt(model, no_weight_decay) if not isinstance(no_weight_decay, bool) else set()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if isinstance(no_weight_decay, bool):
            excluded = no_weight_decay and (param.ndim <= 1 or name.rsplit(".", 1)[-1] in EMBEDDINGS)
        else:
            excluded = name in named
        (no_decay if excluded else decay).append(param)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def named_exempt(model: nn.Module, patterns: list[str]) -> set[str]:
    """The names of `model`'s parameters that match one of `patterns`; a pattern that matches none is an error (a typo
    would silently decay what the recipe means to exempt)."""
    names = [name for name, _ in model.named_parameters()]
    matching = {pattern: {name for name in names if fnmatchcase(name, pattern)} for pattern in patterns}
    unmatched = [pattern for pattern, matched in matching.items() if not matched]
    if unmatched:
        raise ValueError(f"model.no_weight_decay: {', '.join(unmatched)} match no parameter; names look like "
                         f"{', '.join(names[:2])}, ..., {names[-1]}")
    return set().union(*matching.values())
