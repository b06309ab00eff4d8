"""lightning-video: TimeSformer and X-ViT video transformers on PyTorch Lightning."""
from __future__ import annotations

from typing import Any

from lightning_video import compat  # noqa: F401  (before any pytorchvideo.transforms import)

__version__ = "0.1.0"
__all__ = ["load_checkpoint"]


def __getattr__(name: str) -> Any:
    """`load_checkpoint` is imported on first use: it needs Lightning, which `lightning_video.models` alone does not."""
    if name == "load_checkpoint":
        from lightning_video.training.rebuild import load_checkpoint

        return load_checkpoint
    raise AttributeError(f"module 'lightning_video' has no attribute {name!r}")
