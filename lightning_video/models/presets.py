"""Named model settings: the papers' configurations, one per released checkpoint, and small ones that train on a CPU
in minutes.

    create_model("timesformer_base_8x224", num_classes=174)
    load_pretrained(create_model("xvit_k600_16x224"), "xvit_b16_16_k600.pth")  # the official model (`RELEASED`)
    create_model("synthetic_8x32", attention="axial", num_classes=8)
"""
from __future__ import annotations

from typing import Any

from lightning_video.models.video_transformer import VideoTransformer

VIT_BASE_16 = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=400)
# X-ViT's best SSv2 setting: keys and values mixed from t±1 at ρ = 50% in every layer, the TA head.
XVIT_MIXING = dict(attention="xvit", attention_options=dict(mix="kv", shift_div=4, temporal="ta"))
# The official X-ViT's MODEL.DROPOUT_RATE in every released config (`VideoTransformer.head_drop_rate`).
XVIT_HEAD_DROP = 0.5
SYNTHETIC = dict(img_size=32, patch_size=8, num_frames=8, embed_dim=96, depth=4, num_heads=4, drop_path_rate=0.0,
                 time_embed_init="sincos", num_classes=8)


def _timesformer(classes: int, frames: int, size: int) -> dict[str, Any]:
    """Official TimeSformer (`vit_base_patch16_224`): divided attention, drop path 0.1, config NUM_CLASSES,
    NUM_FRAMES and TRAIN_CROP_SIZE."""
    return dict(VIT_BASE_16, attention="divided", num_classes=classes, num_frames=frames, img_size=size)


def _xvit(classes: int, shift_div: int, segment_frames: int) -> dict[str, Any]:
    """Official X-ViT (`XVIT`, configs `xvit_B16_16x16_*.yaml`): kv mixing in every layer (LOCATIONS_LIST 0-14 covers
    all 12), SHIFT_DIV, NUM_SEGMENTS, the TA head (CONSENSUS_TYPE vit), 16 frames at 224, no drop path, head dropout
    MODEL.DROPOUT_RATE."""
    return dict(VIT_BASE_16, attention="xvit", num_classes=classes, num_frames=16, img_size=224, drop_path_rate=0.0,
                head_drop_rate=XVIT_HEAD_DROP,
                attention_options=dict(mix="kv", shift_div=shift_div, temporal="ta", segment_frames=segment_frames))


# The released checkpoints: for each, the preset that computes the official model from it with
# `load_pretrained(create_model(NAME), FILE)`, and FILE as the model zoos name it.
# HowTo100M: the paper's 1059 task classes (its long-term modeling experiment); crop 224 as every file name says
# (the zoo's table gives 448 for the 64-frame model, its file name 224).
RELEASED: dict[str, tuple[str, dict[str, Any]]] = {
    "timesformer_k400_8x224": ("TimeSformer_divST_8x32_224_K400.pyth", _timesformer(400, 8, 224)),
    "timesformer_hr_k400_16x448": ("TimeSformer_divST_16x16_448_K400.pyth", _timesformer(400, 16, 448)),
    "timesformer_l_k400_96x224": ("TimeSformer_divST_96x4_224_K400.pyth", _timesformer(400, 96, 224)),
    "timesformer_k600_8x224": ("TimeSformer_divST_8x32_224_K600.pyth", _timesformer(600, 8, 224)),
    "timesformer_hr_k600_16x448": ("TimeSformer_divST_16x16_448_K600.pyth", _timesformer(600, 16, 448)),
    "timesformer_l_k600_96x224": ("TimeSformer_divST_96x4_224_K600.pyth", _timesformer(600, 96, 224)),
    "timesformer_ssv2_8x224": ("TimeSformer_divST_8_224_SSv2.pyth", _timesformer(174, 8, 224)),
    "timesformer_hr_ssv2_16x448": ("TimeSformer_divST_16_448_SSv2.pyth", _timesformer(174, 16, 448)),
    "timesformer_l_ssv2_64x224": ("TimeSformer_divST_64_224_SSv2.pyth", _timesformer(174, 64, 224)),
    "timesformer_howto100m_8x224": ("TimeSformer_divST_8x32_224_HowTo100M.pyth", _timesformer(1059, 8, 224)),
    "timesformer_howto100m_32x224": ("TimeSformer_divST_32x32_224_HowTo100M.pyth", _timesformer(1059, 32, 224)),
    "timesformer_howto100m_64x224": ("TimeSformer_divST_64x32_224_HowTo100M.pyth", _timesformer(1059, 64, 224)),
    "timesformer_howto100m_96x224": ("TimeSformer_divST_96x32_224_HowTo100M.pyth", _timesformer(1059, 96, 224)),
    # Kinetics-600 config: SHIFT_DIV 8, NUM_SEGMENTS 8 at 16 frames (two runs of 8 frames that never mix).
    "xvit_k600_16x224": ("xvit_b16_16_k600.pth", _xvit(600, shift_div=8, segment_frames=8)),
    # SSv2 config: SHIFT_DIV 4, NUM_SEGMENTS 16.
    "xvit_ssv2_16x224": ("xvit_b16_16_ss2.pth", _xvit(174, shift_div=4, segment_frames=16)),
}

PRESETS: dict[str, dict[str, Any]] = {
    "timesformer_base_8x224": dict(VIT_BASE_16, attention="divided", num_frames=8, img_size=224),
    "timesformer_hr_16x448": dict(VIT_BASE_16, attention="divided", num_frames=16, img_size=448),
    "timesformer_l_96x224": dict(VIT_BASE_16, attention="divided", num_frames=96, img_size=224),
    "xvit_base_8x224": dict(VIT_BASE_16, **XVIT_MIXING, num_frames=8, img_size=224, head_drop_rate=XVIT_HEAD_DROP),
    "xvit_base_16x224": dict(VIT_BASE_16, **XVIT_MIXING, num_frames=16, img_size=224, head_drop_rate=XVIT_HEAD_DROP),
    "synthetic_8x32": dict(SYNTHETIC, attention="divided"),
    "xvit_synthetic_8x32": dict(SYNTHETIC, **XVIT_MIXING),
    **{name: settings for name, (_, settings) in RELEASED.items()},
}


def create_model(name: str, **overrides: Any) -> VideoTransformer:
    """The preset `name` with any `VideoTransformer` argument overridden (`attention_options` is replaced whole)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return VideoTransformer(**{**PRESETS[name], **overrides})
