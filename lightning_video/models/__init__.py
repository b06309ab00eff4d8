"""Video transformers: the backbone, its interchangeable attention schemes, and their weights."""
from lightning_video.models.attention import explicit_attention
from lightning_video.models.hf_export import export_hf
from lightning_video.models.presets import PRESETS, RELEASED, create_model
from lightning_video.models.registry import ATTENTIONS
from lightning_video.models.scheme import Scheme
from lightning_video.models.video_transformer import VideoTransformer
from lightning_video.models.weights import LoadReport, load_pretrained

__all__ = ["ATTENTIONS", "PRESETS", "RELEASED", "LoadReport", "Scheme", "VideoTransformer", "create_model",
           "explicit_attention", "export_hf", "load_pretrained"]
