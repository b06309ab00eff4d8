"""Attention rollout against references written here from the maps alone, in float64: the textbook rollout for joint
attention, the explicit space-time matrix of each divided block's two steps, and X-ViT's documented approximation."""
from __future__ import annotations

import pytest
import torch

from lightning_video.models import VideoTransformer
from lightning_video.models.attention import Attention
from lightning_video.models.rollout import cls_attention, rollout

FRAMES, SIDE = 3, 2  # 3 frames of 2 × 2 patches
PATCHES = SIDE * SIDE


def random_model(attention: str, frames: int = FRAMES, **options) -> VideoTransformer:
    """Tiny, float64, every parameter random (the zero-initialised ones too), so the maps are far from uniform."""
    torch.manual_seed(0)
    model = VideoTransformer(attention, num_classes=3, img_size=4 * SIDE, patch_size=4, num_frames=frames,
                             embed_dim=16, depth=2, num_heads=2, drop_path_rate=0.0, attention_options=options)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.5)
    return model.double().eval()


def clip(batch: int = 1, frames: int = FRAMES) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(batch, 3, frames, 4 * SIDE, 4 * SIDE, dtype=torch.float64)


def maps_of_every_block(model: VideoTransformer, video: torch.Tensor, names: tuple[str, ...]) -> list[dict]:
    """Per block, the softmax of each named attention layer (`[sequences, heads, queries, keys]`), every token
    querying."""
    layers = {id(block): {name: getattr(block, name) for name in names} for block in model.blocks}
    maps: list[dict] = []
    for block in model.blocks:
        for layer in layers[id(block)].values():
            layer.keep_attention_map = True
        block.register_forward_hook(lambda block, args, out: maps.append(
            {name: layer.last_attention_map for name, layer in layers[id(block)].items()}))
    model.cls_only_last_block = False
    with torch.no_grad():
        model(video)
    return maps


def fuse(attention: torch.Tensor, head_fusion: str) -> torch.Tensor:
    """Heads, the axis before the last two, fused."""
    return attention.mean(dim=-3) if head_fusion == "mean" else attention.amax(dim=-3)


def with_residual(attention: torch.Tensor) -> torch.Tensor:
    """`(A + I)` with rows renormalised."""
    residual = attention + torch.eye(attention.shape[-1], dtype=attention.dtype)
    return residual / residual.sum(dim=-1, keepdim=True)


def clip_patch_heat(cls_row: torch.Tensor) -> torch.Tensor:
    """`[1 + patches]` over a clip sequence -> `[frames, height, width]`. The backbone's clip sequence is the cls
    token, then patch (t, h, w) at token 1 + (h * width + w) * frames + t (space-major, time-minor)."""
    heat = torch.empty(FRAMES, SIDE, SIDE, dtype=cls_row.dtype)
    for t in range(FRAMES):
        for h in range(SIDE):
            for w in range(SIDE):
                heat[t, h, w] = cls_row[1 + (h * SIDE + w) * FRAMES + t]
    return heat


@pytest.mark.parametrize(("head_fusion", "discard_ratio"), [("mean", 0.0), ("max", 0.0), ("mean", 0.5)])
def test_joint_rollout_is_the_textbook_rollout_of_its_maps(head_fusion: str, discard_ratio: float):
    model, video = random_model("joint"), clip()
    tokens = 1 + FRAMES * PATCHES
    result = torch.eye(tokens, dtype=torch.float64)
    for maps in maps_of_every_block(model, video, ("attn",)):  # vit-explain's vit_rollout, from the maps alone
        fused = fuse(maps["attn"][0], head_fusion)
        flat = fused.view(-1)
        lowest = flat.topk(int(flat.numel() * discard_ratio), largest=False).indices
        flat[lowest[lowest != 0]] = 0
        result = with_residual(fused) @ result

    got = rollout(model, video, head_fusion, discard_ratio).heat[0]

    torch.testing.assert_close(got, clip_patch_heat(result[0]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("head_fusion", ["mean", "max"])
def test_divided_rollout_is_rollout_through_the_space_time_matrix_of_its_two_steps(head_fusion: str):
    model, video = random_model("divided"), clip()
    tokens = 1 + FRAMES * PATCHES

    def token(location: int, t: int) -> int:
        return 1 + location * FRAMES + t

    result = torch.eye(tokens, dtype=torch.float64)
    for maps in maps_of_every_block(model, video, ("temporal_attn", "attn")):
        temporal_maps, spatial_maps = fuse(maps["temporal_attn"], head_fusion), fuse(maps["attn"], head_fusion)
        temporal = torch.zeros(tokens, tokens, dtype=torch.float64)
        temporal[0, 0] = 1.0  # the cls token sits the temporal step out
        for location in range(PATCHES):  # sequence `location`: that location's patch in each frame
            for t in range(FRAMES):
                for other in range(FRAMES):
                    temporal[token(location, t), token(location, other)] = temporal_maps[location, t, other]
        spatial = torch.zeros(tokens, tokens, dtype=torch.float64)
        for t in range(FRAMES):  # sequence t: a copy of the cls token, then frame t's patches
            members = [0] + [token(location, t) for location in range(PATCHES)]
            for i, query in enumerate(members):
                for j, key in enumerate(members):
                    if query == 0:  # the cls token's update is the mean of its copies'
                        spatial[query, key] += spatial_maps[t, i, j] / FRAMES
                    else:
                        spatial[query, key] = spatial_maps[t, i, j]
        result = with_residual(spatial) @ with_residual(temporal) @ result

    got = rollout(model, video, head_fusion).heat[0]

    torch.testing.assert_close(got, clip_patch_heat(result[0]), rtol=1e-12, atol=1e-12)


def test_xvit_rollout_splits_each_weight_by_the_value_channels_each_frame_gives_the_head():
    """embed_dim 16, 2 heads of 8 channels, shift_div 8: 2 channels from frame t + 1 and the next 2 from t - 1 (both
    in head 0, a quarter of its channels each; none where that frame does not exist), head 1 all its own."""
    model, video = random_model("xvit", mix="kv", shift_div=8), clip()
    tokens_per_frame = 1 + PATCHES
    tokens = FRAMES * tokens_per_frame
    shares = {0: {+1: 0.25, -1: 0.25, 0: 0.5}, 1: {0: 1.0}}  # head -> {frame offset: share of its values}
    result = torch.eye(tokens, dtype=torch.float64)
    for maps in maps_of_every_block(model, video, ("attn",)):
        per_head = torch.zeros(2, tokens, tokens, dtype=torch.float64)
        for head, offsets in shares.items():
            for t in range(FRAMES):
                for offset, share in offsets.items():
                    if 0 <= t + offset < FRAMES:
                        rows = slice(t * tokens_per_frame, (t + 1) * tokens_per_frame)
                        columns = slice((t + offset) * tokens_per_frame, (t + offset + 1) * tokens_per_frame)
                        per_head[head, rows, columns] = maps["attn"][t, head] * share
        result = with_residual(per_head.mean(dim=0)) @ result
    readout = torch.zeros(tokens, dtype=torch.float64)
    readout[::tokens_per_frame] = 1 / FRAMES  # the mean of the frames' cls tokens
    expected = (readout @ result).view(FRAMES, tokens_per_frame)[:, 1:].reshape(FRAMES, SIDE, SIDE)

    got = rollout(model, video).heat[0]

    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert got[0].sum() > 0 and got[-1].sum() > 0


def test_cls_attention_of_a_joint_layer_is_its_cls_row_and_of_divided_each_frames_cls_copy():
    video = clip()
    joint = random_model("joint")
    maps = maps_of_every_block(joint, video, ("attn",))
    expected = clip_patch_heat(maps[1]["attn"][0].mean(0)[0])  # the last block's cls row, heads averaged
    torch.testing.assert_close(cls_attention(joint, video, layer=-1).heat[0], expected)

    divided = random_model("divided")
    spatial = maps_of_every_block(divided, video, ("attn",))[0]["attn"].mean(1)  # [frames, 1 + patches, 1 + patches]
    got = cls_attention(divided, video, layer=0).heat[0]
    torch.testing.assert_close(got, spatial[:, 0, 1:].reshape(FRAMES, SIDE, SIDE))


SCHEMES = [("space", {}), ("joint", {}), ("divided", {}), ("local_global", {}), ("axial", {}), ("xvit", {}),
           ("xvit", {"temporal": "ta"}), ("xvit", {"temporal": "summary", "segment_frames": 1}),
           ("xvit", {"mix": "input"})]


@pytest.mark.parametrize(("attention", "options"), SCHEMES)
def test_every_scheme_gives_a_share_per_patch_and_its_own_logits_and_leaves_the_fused_kernels(attention: str,
                                                                                             options: dict):
    frames = 2 if attention == "local_global" else FRAMES  # local_global: even frames and sides
    model, video = random_model(attention, frames, **options), clip(batch=2, frames=frames)
    model.train()
    expected_logits = model.eval()(video)
    model.train()

    explanation = rollout(model, video, discard_ratio=0.3)

    grid = model.grid
    assert explanation.heat.shape == (2, grid.frames, grid.height, grid.width)
    assert (explanation.heat >= 0).all() and (explanation.heat.sum(dim=(1, 2, 3)) <= 1 + 1e-12).all()
    assert explanation.heat.sum() > 0
    torch.testing.assert_close(explanation.logits, expected_logits)
    assert model.training and model.cls_only_last_block
    attentions = [module for module in model.modules() if isinstance(module, Attention)]
    assert not any(module.keep_attention_map or module.last_attention_map is not None for module in attentions)
    assert not any("attend_sequence" in vars(block) for block in model.blocks)


def test_bad_arguments_are_named_with_their_valid_values():
    model, video = random_model("divided"), clip()
    with pytest.raises(ValueError, match="layer=2: the model has 2 blocks"):
        cls_attention(model, video, layer=2)
    with pytest.raises(ValueError, match="head_fusion 'min'; valid: mean, max"):
        rollout(model, video, head_fusion="min")
    with pytest.raises(ValueError, match=r"discard_ratio=1.0: valid values are in \[0, 1\)"):
        rollout(model, video, discard_ratio=1.0)
