"""lightning-video: TimeSformer and X-ViT video transformers on PyTorch Lightning."""
from lightning_video import compat  # noqa: F401  (before any pytorchvideo.transforms import)

__version__ = "0.1.0"
