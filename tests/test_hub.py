"""`--model.pretrained NAME`: timm names and Hub repo ids resolve to the files the Hub serves, here from a local cache
with the Hub offline (`tests/hub_cache.py`), and load as the same files given by path would."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import TimesformerConfig, TimesformerForVideoClassification

from hub_cache import cache_repo, cache_timm_vit, offline_cache
from lightning_video.models import VideoTransformer, load_pretrained
from lightning_video.models.hub import is_weights_name, local_weights

SIZES = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=5)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return offline_cache(tmp_path / "hf_home", monkeypatch)


@pytest.mark.parametrize("name", ["timm/vit_base_patch16_224.augreg_in21k", "vit_base_patch16_224.augreg_in21k"])
def test_a_timm_name_loads_timms_hub_files_from_the_cache(name: str, cache: Path, tmp_path: Path):
    vit = cache_timm_vit(cache, "timm/vit_base_patch16_224.augreg_in21k", tmp_path / "timm", **SIZES)
    model = VideoTransformer("divided", num_frames=2, **SIZES)
    report = load_pretrained(model, name)
    assert report.format.startswith("timm") and not report.missing and not report.unexpected
    ours = model.state_dict()
    assert report.loaded == list(vit.state_dict())  # every image tensor, under the same name, as it was
    for key, tensor in vit.state_dict().items():
        assert torch.equal(ours[key], tensor), key


def test_a_repo_holding_only_pytorch_model_bin_loads_from_the_cache(cache: Path, tmp_path: Path):
    vit = cache_timm_vit(cache, "someone/vit_tiny", tmp_path / "bin", safetensors=False, **SIZES)
    assert local_weights("someone/vit_tiny").name == "pytorch_model.bin"
    model = VideoTransformer("divided", num_frames=2, **SIZES)
    load_pretrained(model, "someone/vit_tiny")
    assert torch.equal(model.state_dict()["blocks.1.attn.qkv.weight"], vit.state_dict()["blocks.1.attn.qkv.weight"])


def test_an_hf_repo_id_loads_its_timesformer_with_hfs_logits(cache: Path, tmp_path: Path):
    config = TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=128, num_labels=5)
    torch.manual_seed(0)
    reference = TimesformerForVideoClassification(config).eval()
    for parameter in reference.parameters():
        torch.nn.init.normal_(parameter, std=0.2)
    reference.save_pretrained(tmp_path / "hf")  # model.safetensors and config.json, as the Hub serves them
    cache_repo(cache, "facebook/timesformer-base-finetuned-k400", tmp_path / "hf")
    model = VideoTransformer("divided", num_frames=4, **SIZES).eval()
    assert load_pretrained(model, "facebook/timesformer-base-finetuned-k400", strict=True).format == "HF Timesformer"
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(video), reference(pixel_values=video.transpose(1, 2)).logits)


def test_a_name_not_in_the_cache_offline_names_the_repo_the_cache_and_the_fix(cache: Path):
    with pytest.raises(FileNotFoundError, match=r"timm/vit_base_patch16_224\.augreg_in21k is not in the local Hugging "
                                                rf"Face cache {cache} and HF_HUB_OFFLINE is set.*hf download"):
        local_weights("vit_base_patch16_224.augreg_in21k")


def test_a_name_timm_does_not_know_says_how_names_look(cache: Path):
    with pytest.raises(ValueError, match=r"vit_base_patch16_244: no such file here, and timm has no pretrained "
                                         r"weights of that name.*vit_base_patch16_224\.augreg_in21k"):
        local_weights("vit_base_patch16_244")


def test_paths_stay_paths(tmp_path: Path):
    (tmp_path / "hf_dir").mkdir()
    assert not is_weights_name(tmp_path / "hf_dir")  # exists
    assert not is_weights_name("weights/vit_base_patch16_224.augreg_in21k.safetensors")  # a file's suffix
    assert not is_weights_name("runs/my_data/version_0")  # deeper than owner/repo
    assert not is_weights_name("./vit_b16")
    assert is_weights_name("facebook/timesformer-base-finetuned-k400") and is_weights_name("vit_base_patch16_224")
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        load_pretrained(VideoTransformer("divided", num_frames=2, **SIZES), tmp_path / "missing.pth")
