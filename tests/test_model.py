"""VideoTransformer: shapes, the paper's parameter counts, HF Timesformer logits, and construction errors."""
from __future__ import annotations

import math

import pytest
import torch
from transformers import TimesformerConfig, TimesformerForVideoClassification

from lightning_video.models import VideoTransformer, explicit_attention, load_pretrained

TINY = dict(num_classes=5, img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=2, num_heads=4)


@pytest.mark.parametrize("attention", ["divided", "joint", "space"])
def test_forward_backward_shapes(attention: str):
    model = VideoTransformer(attention, **TINY)
    video = torch.randn(2, 3, 4, 32, 32)
    logits = model(video)
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(("attention", "millions_174", "millions_400"),
                         [("space", 85.9, 86.1), ("joint", 85.9, 86.1), ("divided", 121.4, 121.6),
                          ("local_global", 121.4, 121.6), ("axial", 156.8, 157.0)])
def test_parameter_counts_match_timesformer_table_1(attention: str, millions_174: float, millions_400: float):
    for classes, expected in ((174, millions_174), (400, millions_400)):
        with torch.device("meta"):
            model = VideoTransformer(attention, num_classes=classes)
        assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize(("attention", "hf_attention"), [("divided", "divided_space_time"),
                                                          ("joint", "joint_space_time")])
def test_logits_match_hf_timesformer(attention: str, hf_attention: str):
    torch.manual_seed(0)
    config = TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=128, attention_type=hf_attention, num_labels=5)
    reference = TimesformerForVideoClassification(config).eval()
    for param in reference.parameters():  # HF zero-inits some tensors; make every one matter
        torch.nn.init.normal_(param, std=0.2)
    model = VideoTransformer(attention, **TINY).eval()
    assert not load_pretrained(model, reference.state_dict(), strict=True).skipped  # every tensor loaded
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = reference(pixel_values=video.transpose(1, 2)).logits
        ours = model(video)
    assert ((ours - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_explicit_attention_path_equals_the_fused_kernel_and_keeps_maps():
    model = VideoTransformer("divided", **TINY).eval()
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        fused = model(video)
        with explicit_attention():
            explicit = model(video)
        model.blocks[0].attn.keep_attention_map = True
        model(video)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-6)
    attention_map = model.blocks[0].attn.last_attention_map
    assert attention_map.shape == (4, 4, 17, 17)  # per frame: cls + 16 patches
    torch.testing.assert_close(attention_map.sum(-1), torch.ones(4, 4, 17))


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = VideoTransformer("divided", **TINY, drop_path_rate=0.0)  # no random stochastic depth to compare
    checkpointed = VideoTransformer("divided", **TINY, drop_path_rate=0.0, checkpoint_blocks=True)
    checkpointed.load_state_dict(plain.state_dict())
    video = torch.randn(2, 3, 4, 32, 32)
    plain(video).square().sum().backward()
    checkpointed(video).square().sum().backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


@pytest.mark.parametrize(("attention", "options"), [("space", None), ("joint", None), ("divided", None),
                                                    ("local_global", None), ("axial", None),
                                                    ("xvit", {"temporal": "ta"}), ("xvit", {"temporal": "summary"})])
def test_cls_only_last_block_gives_the_logits_and_gradients_of_the_whole_block(attention: str, options: dict | None):
    model = random_float64_model(attention, drop_path_rate=0.0, attention_options=options)
    video = torch.randn(2, 3, 4, 32, 32, dtype=torch.float64)
    model.cls_only_last_block = False
    whole = logits_and_gradients(model, video)
    model.cls_only_last_block = True
    assert_same_logits_and_gradients(model, logits_and_gradients(model, video), whole)


@pytest.mark.parametrize("attention", ["divided", "local_global", "axial"])
@pytest.mark.parametrize(("drop_path_rate", "drop_rate", "training"), [(0.0, 0.0, False), (0.5, 0.0, True),
                                                                       (0.0, 0.3, False), (0.5, 0.3, True)])
def test_merged_output_linears_give_the_logits_and_gradients_of_the_separate_ones(
        attention: str, drop_path_rate: float, drop_rate: float, training: bool):
    """Stochastic depth passes the merged Linear; active dropout between `proj` and `*_fc` must keep them apart."""
    model = random_float64_model(attention, drop_path_rate=drop_path_rate, drop_rate=drop_rate).train(training)
    video = torch.randn(2, 3, 4, 32, 32, dtype=torch.float64)
    results = []
    for merge in (False, True):
        for block in model.blocks:
            block.merge_output_linears = merge
        results.append(logits_and_gradients(model, video))
    assert_same_logits_and_gradients(model, results[1], results[0])


def random_float64_model(attention: str, **options) -> VideoTransformer:
    """Every parameter random, the zero-initialised ones included, so none can hide a difference."""
    torch.manual_seed(0)
    model = VideoTransformer(attention, **TINY, **options).double()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.3)
    return model


def logits_and_gradients(model: VideoTransformer, video: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One forward and backward from the same random state (the same stochastic-depth and dropout draws)."""
    model.zero_grad()
    torch.manual_seed(1)
    logits = model(video)
    logits.square().sum().backward()
    return logits.detach(), [param.grad.clone() for param in model.parameters()]


def assert_same_logits_and_gradients(model: VideoTransformer, got: tuple, expected: tuple) -> None:
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=1e-10)
    for (name, _), a, b in zip(model.named_parameters(), got[1], expected[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=name)


def test_fresh_divided_model_starts_as_an_image_model():
    """Zero `time_embed` and `temporal_fc`: the temporal branch adds nothing until trained (official init)."""
    model = VideoTransformer("divided", **TINY)
    assert model.time_embed.abs().sum() == 0
    assert all(block.temporal_fc.weight.abs().sum() == 0 for block in model.blocks)


def test_sincos_time_embed_init_gives_each_frame_the_hand_computed_code():
    """Frame t gets [sin(t w_i), cos(t w_i)] with w_i = T^(-i / (D/2)) for T frames; the embedding stays learnable."""
    model = VideoTransformer("divided", **TINY, time_embed_init="sincos")
    half = TINY["embed_dim"] // 2
    for frame in range(TINY["num_frames"]):
        for i in (0, 1, half - 1):
            angle = frame * TINY["num_frames"] ** (-i / half)
            assert model.time_embed[0, frame, i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert model.time_embed[0, frame, half + i].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert model.time_embed.requires_grad
    with pytest.raises(ValueError, match="unknown time_embed_init 'sin'; valid: zeros, sincos"):
        VideoTransformer("divided", **TINY, time_embed_init="sin")


def test_sincos_pos_embed_init_codes_each_patch_row_and_column():
    """Patch (r, c) of a side × side grid gets [sincos(r) over half the channels, sincos(c) over the other half],
    the codes `time_embed_init="sincos"` gives frames; the cls entry keeps the official init."""
    model = VideoTransformer("space", **TINY, pos_embed_init="sincos")
    side, half = TINY["img_size"] // TINY["patch_size"], TINY["embed_dim"] // 2
    quarter = half // 2
    codes = model.pos_embed[0, 1:].detach().reshape(side, side, -1)
    for row, column in ((0, 0), (1, 3), (3, 2)):
        for i in (0, 1, quarter - 1):
            frequency = side ** (-i / quarter)
            assert codes[row, column, i].item() == pytest.approx(math.sin(row * frequency), abs=1e-6)
            assert codes[row, column, quarter + i].item() == pytest.approx(math.cos(row * frequency), abs=1e-6)
            assert codes[row, column, half + i].item() == pytest.approx(math.sin(column * frequency), abs=1e-6)
            assert codes[row, column, half + quarter + i].item() == pytest.approx(math.cos(column * frequency),
                                                                                abs=1e-6)
    assert model.pos_embed[0, 0].abs().max() < 0.1 and model.pos_embed.requires_grad
    with pytest.raises(ValueError, match="unknown pos_embed_init 'sin'; valid: trunc_normal, sincos"):
        VideoTransformer("space", **TINY, pos_embed_init="sin")


def test_bf16_autocast_runs():
    model = VideoTransformer("divided", **TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randn(1, 3, 4, 32, 32))
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


def test_bad_configurations_fail_at_construction_with_the_valid_choices():
    with pytest.raises(ValueError, match="unknown attention 'divide'; valid: space, joint, divided"):
        VideoTransformer("divide", **{**TINY})
    with pytest.raises(ValueError, match="img_size=30 is not divisible by patch_size=8"):
        VideoTransformer("divided", **{**TINY, "img_size": 30})
    with pytest.raises(ValueError, match="valid pos_embed for it: none, space"):
        VideoTransformer("space", **TINY, pos_embed="space_time")
    with pytest.raises(ValueError, match="num_frames=0"):
        VideoTransformer("divided", **{**TINY, "num_frames": 0})


def test_wrong_input_size_is_explained():
    model = VideoTransformer("divided", **TINY)
    with pytest.raises(ValueError, match=r"expected clips of 4 frames at 32x32, got 8 frames"):
        model(torch.randn(1, 3, 8, 32, 32))
