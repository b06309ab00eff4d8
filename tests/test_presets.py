"""Presets build the papers' models and the small synthetic ones; overrides and bad names behave."""
from __future__ import annotations

import pytest
import torch

from lightning_video.models import PRESETS, create_model


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
