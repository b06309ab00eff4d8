"""Attention schemes by config name. A new scheme is a `Scheme` subclass and one entry here (or in `ATTENTIONS` from
anywhere: `ATTENTIONS["mine"] = Mine`); on the command line a scheme class is also reachable by its class path."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_video.models.axial import Axial
from lightning_video.models.divided import Divided
from lightning_video.models.joint import Joint
from lightning_video.models.local_global import LocalGlobal
from lightning_video.models.scheme import Scheme
from lightning_video.models.space import Space
from lightning_video.models.xvit import XViT

ATTENTIONS: dict[str, type[Scheme]] = {
    "space": Space,
    "joint": Joint,
    "divided": Divided,
    "local_global": LocalGlobal,
    "axial": Axial,
    "xvit": XViT,
}


def build_scheme(attention: str | Scheme, options: Mapping[str, Any] | None = None) -> Scheme:
    """The scheme a name and its options stand for (the short form), or `attention` itself when it is a scheme.

    Raises:
        ValueError: an unknown name or option, naming the valid ones, or options besides a scheme object.
    """
    if isinstance(attention, Scheme):
        if options:
            raise ValueError(f"attention_options go with a scheme name; {attention!r} carries its own options: give "
                             f"{', '.join(options)} to it instead")
        return attention
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}; valid: {', '.join(ATTENTIONS)}")
    scheme = ATTENTIONS[attention]
    unknown = sorted(set(options or {}) - set(scheme.option_names()))
    if unknown:
        raise ValueError(f"attention={attention!r} has no option {', '.join(unknown)}; valid attention_options: "
                         f"{', '.join(scheme.option_names()) or 'none'}")
    return scheme(**(options or {}))


def scheme_name(scheme: Scheme) -> str:
    """The name `scheme`'s class is registered under, else its class name."""
    return next((name for name, registered in ATTENTIONS.items() if registered is type(scheme)),
                type(scheme).__name__)
