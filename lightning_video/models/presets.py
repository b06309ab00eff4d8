"""Named model settings: the papers' configurations and small ones that train on a CPU in minutes.

    create_model("timesformer_base_8x224", num_classes=174)
    create_model("synthetic_8x32", attention="axial", num_classes=8)
"""
from __future__ import annotations

from typing import Any

from lightning_video.models.video_transformer import VideoTransformer

VIT_BASE_16 = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=400)
# X-ViT's best SSv2 setting: keys and values mixed from t±1 at ρ = 50% in every layer, the TA head.
XVIT_MIXING = dict(attention="xvit", attention_options=dict(mix="kv", shift_div=4, temporal="ta"))
SYNTHETIC = dict(img_size=32, patch_size=8, num_frames=8, embed_dim=96, depth=4, num_heads=4, drop_path_rate=0.0,
                 time_embed_init="sincos", num_classes=8)

PRESETS: dict[str, dict[str, Any]] = {
    "timesformer_base_8x224": dict(VIT_BASE_16, attention="divided", num_frames=8, img_size=224),
    "timesformer_hr_16x448": dict(VIT_BASE_16, attention="divided", num_frames=16, img_size=448),
    "timesformer_l_96x224": dict(VIT_BASE_16, attention="divided", num_frames=96, img_size=224),
    "xvit_base_8x224": dict(VIT_BASE_16, **XVIT_MIXING, num_frames=8, img_size=224),
    "xvit_base_16x224": dict(VIT_BASE_16, **XVIT_MIXING, num_frames=16, img_size=224),
    "synthetic_8x32": dict(SYNTHETIC, attention="divided"),
    "xvit_synthetic_8x32": dict(SYNTHETIC, **XVIT_MIXING),
}


def create_model(name: str, **overrides: Any) -> VideoTransformer:
    """The preset `name` with any `VideoTransformer` argument overridden (`attention_options` is replaced whole)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return VideoTransformer(**{**PRESETS[name], **overrides})
