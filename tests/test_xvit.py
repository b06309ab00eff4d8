"""X-ViT: space-time mixing against a plain float64 reference, its cost, what sees frame order, heads, errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_video.models import VideoTransformer, explicit_attention
from lightning_video.models.block import Block, TokenGrid
from lightning_video.models.space import Space
from lightning_video.models.xvit import XViT

TINY = dict(num_classes=5, img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=2, num_heads=4)
VIDEO_SHAPE = (2, 3, 4, 32, 32)
PATCHES = 16  # (32 / 8)²


def randomize(module: torch.nn.Module, std: float = 0.2) -> None:
    """Make every parameter matter (zero inits would hide mistakes)."""
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(std=std)


@pytest.mark.parametrize("options", [{"mix": mix} for mix in ("kv", "k", "v", "input", "none")]
                         + [{"temporal": temporal} for temporal in ("mean", "ta", "summary")]
                         + [{"temporal": "ta", "temporal_layers": 2, "mix_layers": [1], "shift_div": 8}, {"window": 2}])
def test_forward_backward_shapes_and_every_parameter_used(options: dict):
    model = VideoTransformer("xvit", **TINY, attention_options=options)
    logits = model(torch.randn(VIDEO_SHAPE))
    assert logits.shape == (2, 5)
    logits.sum().backward()
    unused = [name for name, param in model.named_parameters() if param.grad is None]
    assert not unused


def test_a_single_frame_clip_runs():
    model = VideoTransformer("xvit", **{**TINY, "num_frames": 1}, attention_options={"temporal": "summary"})
    assert model(torch.randn(2, 3, 1, 32, 32)).shape == (2, 5)


def plain_layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + norm.eps) * norm.weight + norm.bias


def from_neighbours(per_frame: list[torch.Tensor], t: int, fold: int, window: int = 1) -> torch.Tensor:
    """Frame t's `[tokens, channels]` with channels [0, fold) of frame t + 1, [fold, 2 fold) of frame t - 1, then
    (window 2) [2 fold, 3 fold) of t + 2 and [3 fold, 4 fold) of t - 2, one channel at a time."""
    mixed = per_frame[t].clone()
    for channel in range(2 * window * fold):
        distance, side = channel // (2 * fold) + 1, channel % (2 * fold) // fold  # side 0: later, 1: earlier
        source = t + distance if side == 0 else t - distance
        mixed[:, channel] = per_frame[source][:, channel] if 0 <= source < len(per_frame) else 0.0
    return mixed


def reference_block(block: Block, x: torch.Tensor, frames: int, heads: int, mix: str, fold: int,
                    summary: bool, window: int = 1) -> torch.Tensor:
    """The X-ViT block written out one clip, frame and head at a time."""
    dim = x.shape[-1]
    head_dim = dim // heads
    w_q, w_k, w_v = block.attn.qkv.weight.split(dim)
    b_q, b_k, b_v = block.attn.qkv.bias.split(dim)
    outputs = []
    for clip in x.split(frames):
        inputs = [plain_layer_norm(frame, block.norm1) for frame in clip]
        projected = [from_neighbours(inputs, t, fold, window) for t in range(frames)] if mix == "input" else inputs
        queries = [frame @ w_q.T + b_q for frame in projected]
        keys = [frame @ w_k.T + b_k for frame in projected]
        values = [frame @ w_v.T + b_v for frame in projected]
        if mix in ("kv", "k"):
            keys = [from_neighbours(keys, t, fold, window) for t in range(frames)]
        if mix in ("kv", "v"):
            values = [from_neighbours(values, t, fold, window) for t in range(frames)]
        if summary:
            means = torch.stack([frame[1:].mean(dim=0) for frame in inputs])
            keys = [torch.cat([k, means @ w_k.T + b_k]) for k in keys]
            values = [torch.cat([v, means @ w_v.T + b_v]) for v in values]
        for t in range(frames):
            per_head = []
            for h in range(heads):
                channels = slice(h * head_dim, (h + 1) * head_dim)
                scores = queries[t][:, channels] @ keys[t][:, channels].T / math.sqrt(head_dim)
                weights = scores.exp() / scores.exp().sum(dim=-1, keepdim=True)
                per_head.append(weights @ values[t][:, channels])
            y = clip[t] + torch.cat(per_head, dim=1) @ block.attn.proj.weight.T + block.attn.proj.bias
            hidden = plain_layer_norm(y, block.norm2) @ block.mlp.fc1.weight.T + block.mlp.fc1.bias
            hidden = 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))
            outputs.append(y + hidden @ block.mlp.fc2.weight.T + block.mlp.fc2.bias)
    return torch.stack(outputs)


@pytest.mark.parametrize(("mix", "temporal", "window"), [("kv", "mean", 1), ("k", "mean", 1), ("v", "mean", 1),
                                                         ("input", "mean", 1), ("kv", "summary", 1), ("kv", "mean", 2),
                                                         ("input", "mean", 2)])
def test_block_matches_a_frame_by_frame_float64_reference(mix: str, temporal: str, window: int):
    torch.manual_seed(0)
    batch, frames, dim, heads, shift_div = 2, 4, 16, 4, 4
    grid = TokenGrid(frames, 2, 2)
    block = Block(dim, heads, grid, scheme=XViT(mix=mix, shift_div=shift_div, window=window,
                                                temporal=temporal)).double().eval()
    randomize(block)
    x = torch.randn(batch * frames, 1 + grid.patches_per_frame, dim, dtype=torch.float64)
    with torch.no_grad():
        ours = block(x).unflatten(0, (batch, frames))
        expected = reference_block(block, x, frames, heads, mix, dim // (shift_div * window), temporal == "summary",
                                   window).unflatten(0, (batch, frames))
    # The first and last frames are where the zero fill happens.
    assert (ours[:, 0] - expected[:, 0]).abs().max() < 1e-10
    assert (ours[:, -1] - expected[:, -1]).abs().max() < 1e-10
    assert (ours - expected).abs().max() < 1e-10
    # ... and mixing did change them: the same block without it gives something else.
    block.attn.mix = "none"
    with torch.no_grad():
        assert (block(x).unflatten(0, (batch, frames))[:, 0] - ours[:, 0]).abs().max() > 1e-3


def test_a_layer_outside_mix_layers_is_a_space_only_block():
    torch.manual_seed(0)
    grid = TokenGrid(4, 2, 2)
    xvit = Block(16, 4, grid, layer_index=0, scheme=XViT(mix_layers=[1], temporal="summary")).eval()
    randomize(xvit)
    space = Block(16, 4, grid, scheme=Space()).eval()
    space.load_state_dict(xvit.state_dict(), strict=True)
    x = torch.randn(8, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(xvit(x), space(x))


@pytest.mark.parametrize(("mix_layers", "mixing"), [("all", [0, 1, 2, 3, 4, 5]), ("first_half", [0, 1, 2]),
                                                   ("second_half", [3, 4, 5]), ("odd", [0, 2, 4]), ([1, 5], [1, 5])])
def test_mix_layers_by_name_pick_the_papers_layers(mix_layers: str | list[int], mixing: list[int]):
    """X-ViT's "which layers" rows at any depth: halves, and the odd layers counted from 1 (indices 0, 2, 4)."""
    model = VideoTransformer("xvit", **{**TINY, "depth": 6}, attention_options={"mix_layers": mix_layers})
    assert [index for index, block in enumerate(model.blocks) if block.attn.mix == "kv"] == mixing
    assert all(block.attn.mix == "none" for index, block in enumerate(model.blocks) if index not in mixing)


@pytest.mark.parametrize(("temporal", "keys"), [("mean", 1 + PATCHES), ("summary", 1 + PATCHES + 4)])
def test_each_query_sees_one_frame_of_keys_like_space_only(temporal: str, keys: int,
                                                           monkeypatch: pytest.MonkeyPatch):
    model = VideoTransformer("xvit", **TINY, attention_options={"temporal": temporal}).eval()
    video = torch.randn(VIDEO_SHAPE)
    fused_shapes = []
    kernel = F.scaled_dot_product_attention

    def recording_kernel(q, k, v, **kwargs):
        fused_shapes.append((tuple(q.shape), tuple(k.shape)))
        return kernel(q, k, v, **kwargs)

    with torch.no_grad(), monkeypatch.context() as patch:
        patch.setattr(F, "scaled_dot_product_attention", recording_kernel)
        fused = model(video)
    # (the last block's only query is the cls token: the readout reads nothing else)
    assert fused_shapes == [((2 * 4, 4, queries, 8), (2 * 4, 4, keys, 8))
                            for queries in [1 + PATCHES] * (TINY["depth"] - 1) + [1]]

    model.blocks[0].attn.keep_attention_map = True
    with torch.no_grad():
        kept = model(video)
        with explicit_attention():
            explicit = model(video)
    assert model.blocks[0].attn.last_attention_map.shape == (2 * 4, 4, 1 + PATCHES, keys)
    torch.testing.assert_close(kept, fused, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-6)


def test_mixing_is_what_sees_frame_order():
    """With zero time embedding and no mixing every frame is processed alone and the frames are averaged, so
    shuffling them changes nothing; with mixing it does."""
    torch.manual_seed(0)
    video = torch.randn(VIDEO_SHAPE)
    shuffled = video[:, :, [2, 0, 3, 1]]
    for mix, order_blind in (("none", True), ("kv", False)):
        model = VideoTransformer("xvit", **TINY, attention_options={"mix": mix}).eval()
        randomize(model, std=0.1)
        with torch.no_grad():
            model.time_embed.zero_()
            difference = (model(video) - model(shuffled)).abs().max()
        assert (difference < 1e-5) == order_blind, (mix, difference)


def test_mean_readout_averages_normed_per_frame_cls_tokens():
    model = VideoTransformer("xvit", **TINY).eval()
    video = torch.randn(VIDEO_SHAPE)
    with torch.no_grad():
        tokens = model.embed(video)
        for block in model.blocks:
            tokens = block(tokens)
        expected = model.norm(tokens[:, 0]).unflatten(0, (2, 4)).mean(dim=1)
        torch.testing.assert_close(model.forward_features(video), expected)


def test_ta_head_has_the_official_layout():
    model = VideoTransformer("xvit", **TINY, attention_options={"temporal": "ta", "temporal_layers": 2})
    params = dict(model.named_parameters())
    assert torch.equal(params["temporal_head.cls_token"], torch.zeros(1, 1, 32))
    assert {"temporal_head.temporal_encoder.1.attn.qkv.weight", "temporal_head.mlp_head.0.weight",
            "temporal_head.mlp_head.1.weight"} <= set(params)
    assert "temporal_head.temporal_encoder.0.attn.qkv.bias" not in params  # as in the official VitHead
    assert "temporal_head.temporal_encoder.2.norm1.weight" not in params
    assert model.temporal_head(torch.randn(2, 4, 32)).shape == (2, 32)


def test_ta_head_and_its_classifier_keep_nn_linear_init_as_the_official_vithead():
    """The official head initialises no Linear (uniform within 1/sqrt(fan_in), biases too); the backbone and the
    other readouts' classifier keep timm's ViT init (std 0.02, zero bias)."""
    torch.manual_seed(0)
    model = VideoTransformer("xvit", **TINY, attention_options={"temporal": "ta"})
    linears = [m for m in model.temporal_head.modules() if isinstance(m, torch.nn.Linear)] + [model.head]
    assert len(linears) == 6  # qkv, proj, fc1, fc2 of the block; mlp_head.1; the classifier (official mlp_head.4)
    for linear in linears:
        bound = linear.in_features ** -0.5
        assert linear.weight.abs().max() <= bound
        assert linear.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15)
        if linear.bias is not None:
            assert linear.bias.abs().max() <= bound and linear.bias.abs().max() > bound / 2
    mean_readout = VideoTransformer("xvit", **TINY, attention_options={"temporal": "mean"})
    assert mean_readout.head.weight.std().item() == pytest.approx(0.02, rel=0.15)
    assert not mean_readout.head.bias.any()
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.15)


@pytest.mark.parametrize(("options", "message"), [
    ({"mix": "q"}, "kv, k, v, input, none"),
    ({"temporal": "lstm"}, "mean, ta, summary"),
    ({"temporal_layers": 0}, "integers >= 1"),
    ({"shift_div": 1}, "from 2"),
    ({"shift_div": 33}, "embed_dim=32"),
    ({"shift_div": 2.5}, "integers"),
    ({"mix_layers": [0, -1]}, "layer indices"),
    ({"mix_layers": "even"}, "all, first_half, second_half, odd or a list of layer indices"),
    ({"window": 0}, "t_w = 0 is mix='none'"),
    ({"window": 5, "shift_div": 8}, "shift_div \\* window <= embed_dim=32"),
    ({"segment_frames": 3}, "segment_frames=3 does not divide num_frames=4"),
    ({"segment_frames": 0}, "None \\(the whole clip\\) or an integer >= 1"),
    ({"nope": 1}, "mix, shift_div, window, mix_layers, temporal, temporal_layers"),
])
def test_bad_options_are_refused_with_the_valid_choices(options: dict, message: str):
    with pytest.raises(ValueError, match=message):
        VideoTransformer("xvit", **TINY, attention_options=options)


@pytest.mark.parametrize("attention, temporal", [("xvit", "mean"), ("xvit", "ta"), ("divided", None)])
def test_head_dropout_drops_what_the_official_code_drops(attention: str, temporal: str | None):
    """X-ViT's `MODEL.DROPOUT_RATE`: each frame's normed feature is dropped on its own before the readout (the
    official `base_model.head` Dropout), and the TA head's MLP output too; TimeSformer's clip feature, once. In eval
    mode the model is the one without it."""
    options = {"attention_options": {"temporal": temporal}} if temporal else {}
    model = VideoTransformer(attention, **TINY, drop_path_rate=0.0, head_drop_rate=0.5, **options).train()
    seen = []
    model.temporal_head.head_drop.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
    video = torch.randn(VIDEO_SHAPE)
    features = model.forward_features(video)
    features_in, dropped = seen[0]
    assert features_in.shape == ((2, 4, 32) if attention == "xvit" else (2, 32))
    kept = dropped != 0
    assert 0.3 < kept.float().mean() < 0.7
    torch.testing.assert_close(dropped[kept], 2 * features_in[kept])
    if temporal == "mean":
        torch.testing.assert_close(features, dropped.mean(dim=1))
    if temporal == "ta":
        assert model.temporal_head.mlp_head[-1].p == 0.5
    without = VideoTransformer(attention, **TINY, drop_path_rate=0.0, **options)
    without.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(video), without.eval()(video))
