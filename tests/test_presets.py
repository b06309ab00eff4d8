"""Presets build the papers' models and the small synthetic ones; overrides and bad names behave."""
from __future__ import annotations

import pytest
import torch

from lightning_video.models import PRESETS, create_model
from lightning_video.models.presets import RELEASED


@pytest.mark.parametrize(("name", "attention", "frames", "size"), [
    ("timesformer_base_8x224", "divided", 8, 224), ("timesformer_hr_16x448", "divided", 16, 448),
    ("timesformer_l_96x224", "divided", 96, 224), ("xvit_base_8x224", "xvit", 8, 224),
    ("xvit_base_16x224", "xvit", 16, 224)])
def test_paper_presets_have_the_paper_settings(name: str, attention: str, frames: int, size: int):
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = create_model(name, num_classes=174)
    assert (model.attention, model.num_frames, model.img_size) == (attention, frames, size)
    assert model.time_embed.shape == (1, frames, 768)
    assert len(model.blocks) == 12 and model.patch_embed.proj.kernel_size == (16, 16)
    assert model.head.out_features == 174


def test_synthetic_presets_run_and_take_overrides():
    assert set(PRESETS) >= {"synthetic_8x32", "xvit_synthetic_8x32"}
    for name in ("synthetic_8x32", "xvit_synthetic_8x32"):
        assert create_model(name)(torch.randn(2, 3, 8, 32, 32)).shape == (2, 8)
    assert create_model("synthetic_8x32", attention="axial", num_classes=5).attention == "axial"


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown preset 'timesformer'; valid: timesformer_base_8x224, "):
        create_model("timesformer")


# The model zoos (TimeSformer README, X-ViT README) and the configs each release was trained with.
ZOO = {  # name: (file, classes, frames, crop, X-ViT shift_div and NUM_SEGMENTS)
    "timesformer_k400_8x224": ("TimeSformer_divST_8x32_224_K400.pyth", 400, 8, 224, None),
    "timesformer_hr_k400_16x448": ("TimeSformer_divST_16x16_448_K400.pyth", 400, 16, 448, None),
    "timesformer_l_k400_96x224": ("TimeSformer_divST_96x4_224_K400.pyth", 400, 96, 224, None),
    "timesformer_k600_8x224": ("TimeSformer_divST_8x32_224_K600.pyth", 600, 8, 224, None),
    "timesformer_hr_k600_16x448": ("TimeSformer_divST_16x16_448_K600.pyth", 600, 16, 448, None),
    "timesformer_l_k600_96x224": ("TimeSformer_divST_96x4_224_K600.pyth", 600, 96, 224, None),
    "timesformer_ssv2_8x224": ("TimeSformer_divST_8_224_SSv2.pyth", 174, 8, 224, None),
    "timesformer_hr_ssv2_16x448": ("TimeSformer_divST_16_448_SSv2.pyth", 174, 16, 448, None),
    "timesformer_l_ssv2_64x224": ("TimeSformer_divST_64_224_SSv2.pyth", 174, 64, 224, None),
    "timesformer_howto100m_8x224": ("TimeSformer_divST_8x32_224_HowTo100M.pyth", 1059, 8, 224, None),
    "timesformer_howto100m_32x224": ("TimeSformer_divST_32x32_224_HowTo100M.pyth", 1059, 32, 224, None),
    "timesformer_howto100m_64x224": ("TimeSformer_divST_64x32_224_HowTo100M.pyth", 1059, 64, 224, None),
    "timesformer_howto100m_96x224": ("TimeSformer_divST_96x32_224_HowTo100M.pyth", 1059, 96, 224, None),
    "xvit_k600_16x224": ("xvit_b16_16_k600.pth", 600, 16, 224, (8, 8)),
    "xvit_ssv2_16x224": ("xvit_b16_16_ss2.pth", 174, 16, 224, (4, 16)),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_each_released_checkpoint_has_a_preset_of_its_full_size(name: str):
    """Full sizes here (the widths `test_official.py` shrinks); semantics there."""
    file, classes, frames, crop, xvit = ZOO[name]
    assert set(RELEASED) == set(ZOO) and RELEASED[name][0] == file
    with torch.device("meta"):
        model = create_model(name)
    assert (model.num_frames, model.img_size, model.head.out_features) == (frames, crop, classes)
    assert len(model.blocks) == 12 and model.patch_embed.proj.weight.shape == (768, 3, 16, 16)
    if xvit:
        options = model.scheme.options()
        assert (options["shift_div"], options["segment_frames"]) == xvit
        assert (options["mix"], options["temporal"], options["mix_layers"]) == ("kv", "ta", "all")
        assert model.blocks[0].drop_path.prob == model.blocks[-1].drop_path.prob == 0
    else:
        assert model.attention == "divided" and model.blocks[-1].drop_path.prob == 0.1
