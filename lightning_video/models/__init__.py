"""Video transformers: the backbone and its interchangeable attention schemes."""
from lightning_video.models.attention import explicit_attention
from lightning_video.models.presets import PRESETS, create_model
from lightning_video.models.registry import ATTENTIONS
from lightning_video.models.video_transformer import VideoTransformer

__all__ = ["ATTENTIONS", "PRESETS", "VideoTransformer", "create_model", "explicit_attention"]
