"""Every released checkpoint, loaded into its preset, computes the official model: float64 references written from
the official code's behaviour (facebookresearch/TimeSformer `vit.py`; 1adrianb/video-transformers `vit.py`,
`transformer_block.py`, `temporal_shift.py`, `head_helper.py`, `video_model_builder.py`), on checkpoints written in
each repository's file format, with the presets' structure (frames, classes, attention options) at tiny widths.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lightning_video.models import VideoTransformer, create_model, load_pretrained
from lightning_video.models.presets import RELEASED

TINY_WIDTH = dict(embed_dim=16, depth=2, num_heads=2, patch_size=4)
HEADS = TINY_WIDTH["num_heads"]
PATCH = TINY_WIDTH["patch_size"]
XVIT_BACKBONE_FRAMES = 8  # the official X-ViT backbone is always built with num_frames=8


def tiny_side(img_size: int) -> int:
    """Patch grid side of a preset's crop shrunk 7 times: 224 (14 × 14 patches) -> 2, 448 (28 × 28) -> 4."""
    return img_size // 16 // 7


def normal(*shape: int, std: float = 0.3) -> torch.Tensor:
    return torch.randn(*shape) * std


def norm_state(name: str, dim: int) -> dict[str, torch.Tensor]:
    return {f"{name}.weight": 1 + normal(dim), f"{name}.bias": normal(dim)}


def linear_state(name: str, out: int, dim: int, bias: bool = True) -> dict[str, torch.Tensor]:
    return {f"{name}.weight": normal(out, dim, std=dim ** -0.5), **({f"{name}.bias": normal(out)} if bias else {})}


def attention_state(name: str, dim: int, qkv_bias: bool = True) -> dict[str, torch.Tensor]:
    return {**linear_state(f"{name}.qkv", 3 * dim, dim, qkv_bias), **linear_state(f"{name}.proj", dim, dim)}


def vit_block_state(name: str, dim: int, qkv_bias: bool = True) -> dict[str, torch.Tensor]:
    return {**norm_state(f"{name}.norm1", dim), **attention_state(f"{name}.attn", dim, qkv_bias),
            **norm_state(f"{name}.norm2", dim), **linear_state(f"{name}.mlp.fc1", 4 * dim, dim),
            **linear_state(f"{name}.mlp.fc2", dim, 4 * dim)}


def vit_embedding_state(name: str, dim: int, side: int, depth: int) -> dict[str, torch.Tensor]:
    """A timm ViT's embeddings and blocks under `name` (`model.`, `base_model.`), as the official models hold them;
    cls tokens at the trained scale (std 0.02), where the LayerNorm eps matters."""
    state = {f"{name}patch_embed.proj.weight": normal(dim, 3, PATCH, PATCH, std=0.1),
             f"{name}patch_embed.proj.bias": normal(dim), f"{name}cls_token": normal(1, 1, dim, std=0.02),
             f"{name}pos_embed": normal(1, 1 + side * side, dim), **norm_state(f"{name}norm", dim)}
    for index in range(depth):
        state |= vit_block_state(f"{name}blocks.{index}", dim)
    return state


def official_timesformer_state(frames: int, side: int, classes: int, dim: int = 16, depth: int = 2) -> dict:
    """The `model_state` of an official TimeSformer `.pyth` (divided attention, `vit_base_patch16_224` names)."""
    state = vit_embedding_state("model.", dim, side, depth) | {"model.time_embed": normal(1, frames, dim)}
    for index in range(depth):
        block = f"model.blocks.{index}"
        state |= (norm_state(f"{block}.temporal_norm1", dim) | attention_state(f"{block}.temporal_attn", dim)
                  | linear_state(f"{block}.temporal_fc", dim, dim))
    return state | linear_state("model.head", classes, dim)


def official_xvit_state(side: int, classes: int, dim: int = 16, depth: int = 2, head_layers: int = 1) -> dict:
    """The `model_state` of an official X-ViT checkpoint (`XVIT` with the TA head, `DROPOUT_RATE` > 0): the ViT
    under `base_model.` with an 8-entry `temp_embed` [1, 8, 1, D] and a Dropout for head, the unused `new_fc`, the
    `VitHead` under `consensus.` (blocks without qkv bias; `mlp_head` LayerNorm, Linear, GELU, Dropout, Linear)."""
    state = vit_embedding_state("base_model.", dim, side, depth)
    state |= {"base_model.temp_embed": normal(1, XVIT_BACKBONE_FRAMES, 1, dim), "consensus.cls_token":
              normal(1, 1, dim, std=0.02), **linear_state("new_fc", classes, dim)}
    for index in range(head_layers):
        state |= vit_block_state(f"consensus.temporal_encoder.{index}", dim, qkv_bias=False)
    return (state | norm_state("consensus.mlp_head.0", dim) | linear_state("consensus.mlp_head.1", dim, dim)
            | linear_state("consensus.mlp_head.4", classes, dim))


def save_official(state: dict, path: Path) -> Path:
    """Both repositories' `save_checkpoint`: the model state beside the training state and the config text."""
    torch.save({"epoch": 30, "model_state": state, "optimizer_state": {"state": {}, "param_groups": []},
                "cfg": "TRAIN:\n  ENABLE: True\n"}, path)
    return path


# ---- float64 references of the official forward passes, from the state dicts above -----------------------------

def layer_norm(x: torch.Tensor, state: dict, name: str, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], eps)


def linear(x: torch.Tensor, state: dict, name: str) -> torch.Tensor:
    return F.linear(x, state[f"{name}.weight"], state.get(f"{name}.bias"))


def heads_of(qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`[sequences, tokens, 3 D]` -> q, k, v `[sequences, heads, tokens, head_dim]`, channel = head * head_dim + j."""
    return tuple(part.unflatten(-1, (HEADS, -1)).transpose(1, 2) for part in qkv.chunk(3, dim=-1))


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)
    return (weights @ v).transpose(1, 2).flatten(2)


def attention(x: torch.Tensor, state: dict, name: str) -> torch.Tensor:
    return linear(attend(*heads_of(linear(x, state, f"{name}.qkv"))), state, f"{name}.proj")


def mlp(x: torch.Tensor, state: dict, name: str) -> torch.Tensor:
    return linear(F.gelu(linear(x, state, f"{name}.fc1")), state, f"{name}.fc2")


def patch_tokens(video: torch.Tensor, state: dict, name: str) -> torch.Tensor:
    """Each frame's patches `[B * T, patches, D]`, frames of a clip adjacent, with its cls token and `pos_embed`."""
    frames = video.transpose(1, 2).flatten(0, 1)
    tokens = F.conv2d(frames, state[f"{name}patch_embed.proj.weight"], state[f"{name}patch_embed.proj.bias"],
                      stride=PATCH).flatten(2).transpose(1, 2)
    cls = state[f"{name}cls_token"].expand(tokens.shape[0], -1, -1)
    return torch.cat([cls, tokens], dim=1) + state[f"{name}pos_embed"]


def timesformer_reference(state: dict, video: torch.Tensor) -> torch.Tensor:
    """Official divided space-time TimeSformer (`VisionTransformer.forward`, `Block.forward`), eval mode."""
    state = {key.removeprefix("model."): value for key, value in state.items()}
    batch, _, frames = video.shape[:3]
    tokens = patch_tokens(video, state, "")
    cls = tokens[:batch, :1]  # the official code takes the first `batch` rows' cls: all the same token
    patches = tokens[:, 1:].unflatten(0, (batch, frames))  # b t n m
    patches = (patches + state["time_embed"][:, :, None]).transpose(1, 2).flatten(1, 2)  # b (n t) m
    x = torch.cat([cls, patches], dim=1)
    count = patches.shape[1] // frames
    for index in range(len({key.split(".")[1] for key in state if key.startswith("blocks.")})):
        block = f"blocks.{index}"
        cls, patches = x[:, :1], x[:, 1:]
        in_time = patches.reshape(batch * count, frames, -1)  # each location's frames
        update = attention(layer_norm(in_time, state, f"{block}.temporal_norm1", 1e-6), state, f"{block}.temporal_attn")
        patches = patches + linear(update.reshape(batch, count * frames, -1), state, f"{block}.temporal_fc")
        per_frame = patches.reshape(batch, count, frames, -1).transpose(1, 2).flatten(0, 1)  # (b t) n m
        with_cls = torch.cat([cls.repeat_interleave(frames, dim=0), per_frame], dim=1)
        update = attention(layer_norm(with_cls, state, f"{block}.norm1", 1e-6), state, f"{block}.attn")
        cls_update = update[:, :1].unflatten(0, (batch, frames)).mean(dim=1)
        patch_update = update[:, 1:].unflatten(0, (batch, frames)).transpose(1, 2).flatten(1, 2)
        x = torch.cat([cls, patches], dim=1) + torch.cat([cls_update, patch_update], dim=1)
        x = x + mlp(layer_norm(x, state, f"{block}.norm2", 1e-6), state, f"{block}.mlp")
    return linear(layer_norm(x, state, "norm", 1e-6)[:, 0], state, "head")


def temporal_shift(x: torch.Tensor, segment: int, shift_div: int) -> torch.Tensor:
    """Official `TemporalShift` on k or v `[frames of the batch, heads, tokens, head_dim]`: of the heads × head_dim
    channels, [0, fold) from the next frame and [fold, 2 fold) from the previous one, within each run of `segment`
    frames of the batch, zeros at a run's ends."""
    channels = x.transpose(1, 2).flatten(2)  # [frames, tokens, heads * head_dim]
    fold = channels.shape[-1] // shift_div
    out = channels.clone()
    for frame in range(channels.shape[0]):
        position = frame % segment
        out[frame, :, :fold] = channels[frame + 1, :, :fold] if position + 1 < segment else 0
        out[frame, :, fold:2 * fold] = channels[frame - 1, :, fold:2 * fold] if position > 0 else 0
    return out.unflatten(-1, (x.shape[1], -1)).transpose(1, 2)


def xvit_reference(state: dict, video: torch.Tensor, shift_div: int, segment: int) -> torch.Tensor:
    """Official X-ViT with the TA head (`XVIT.forward`: the timm ViT with `TemporalShift` on k and v in every
    block, its `temp_embed` added to each run of 8 frames of the batch; `VitHead` on the normed per-frame cls
    tokens, its LayerNorms at nn.LayerNorm's eps 1e-5), eval mode."""
    batch, _, frames = video.shape[:3]
    backbone = {key.removeprefix("base_model."): value for key, value in state.items() if key.startswith("base_")}
    tokens = patch_tokens(video, backbone, "")
    temp_embed = backbone["temp_embed"]  # [1, 8, 1, D]
    x = (tokens.unflatten(0, (-1, temp_embed.shape[1])) + temp_embed).flatten(0, 1)
    for index in range(len({key.split(".")[1] for key in backbone if key.startswith("blocks.")})):
        block = f"blocks.{index}"
        q, k, v = heads_of(linear(layer_norm(x, backbone, f"{block}.norm1", 1e-6), backbone, f"{block}.attn.qkv"))
        k, v = (temporal_shift(t, segment, shift_div) for t in (k, v))
        x = x + linear(attend(q, k, v), backbone, f"{block}.attn.proj")
        x = x + mlp(layer_norm(x, backbone, f"{block}.norm2", 1e-6), backbone, f"{block}.mlp")
    features = layer_norm(x, backbone, "norm", 1e-6)[:, 0].unflatten(0, (batch, frames))
    head = {key.removeprefix("consensus."): value for key, value in state.items() if key.startswith("consensus.")}
    y = torch.cat([head["cls_token"].expand(batch, -1, -1), features], dim=1)
    for index in range(len({key.split(".")[1] for key in head if key.startswith("temporal_encoder.")})):
        block = f"temporal_encoder.{index}"
        y = y + attention(layer_norm(y, head, f"{block}.norm1", 1e-5), head, f"{block}.attn")
        y = y + mlp(layer_norm(y, head, f"{block}.norm2", 1e-5), head, f"{block}.mlp")
    hidden = F.gelu(linear(layer_norm(y[:, 0], head, "mlp_head.0", 1e-5), head, "mlp_head.1"))
    return linear(hidden, head, "mlp_head.4")


# ---- the tests ---------------------------------------------------------------------------------------------------

def as_float64(state: dict) -> dict:
    return {key: value.double() for key, value in state.items()}


def assert_matches(ours: torch.Tensor, reference: torch.Tensor) -> None:
    error = ((ours - reference).abs().max() / reference.abs().max()).item()
    assert error <= 1e-12, f"relative error {error:.2e}"


def loaded_logits(model: VideoTransformer, path: Path, video: torch.Tensor, **load_options) -> torch.Tensor:
    report = load_pretrained(model, path, strict=True, **load_options)
    assert not report.missing and not report.unexpected
    with torch.no_grad():
        return model.double().eval()(video)


def released_case(name: str, tmp_path: Path) -> tuple[VideoTransformer, Path, torch.Tensor, torch.Tensor]:
    """The preset `name` at tiny widths, its checkpoint file in the official format, a clip and the reference
    logits for it."""
    file_name, settings = RELEASED[name]
    side = tiny_side(settings["img_size"])
    model = create_model(name, **TINY_WIDTH, img_size=side * PATCH)
    video = torch.randn(2, 3, settings["num_frames"], side * PATCH, side * PATCH, dtype=torch.float64)
    if settings["attention"] == "xvit":
        options = settings["attention_options"]
        state = official_xvit_state(side, settings["num_classes"])
        reference = xvit_reference(as_float64(state), video, options["shift_div"], options["segment_frames"])
    else:
        state = official_timesformer_state(settings["num_frames"], side, settings["num_classes"])
        reference = timesformer_reference(as_float64(state), video)
    return model, save_official(state, tmp_path / file_name), video, reference


@pytest.mark.parametrize("name", list(RELEASED))
def test_every_released_checkpoint_in_its_preset_computes_the_official_model(name: str, tmp_path: Path):
    model, path, video, reference = released_case(name, tmp_path)
    assert_matches(loaded_logits(model, path, video), reference)


def test_the_ta_head_model_at_8_frames_computes_the_official_one(tmp_path: Path):
    """No tiling, no segments: what differs is the TA head's LayerNorm eps (1e-5, the backbone's 1e-6)."""
    model = create_model("xvit_base_8x224", **TINY_WIDTH, img_size=2 * PATCH, num_classes=5)
    state = official_xvit_state(side=2, classes=5)
    video = torch.randn(2, 3, 8, 2 * PATCH, 2 * PATCH, dtype=torch.float64)
    reference = xvit_reference(as_float64(state), video, shift_div=4, segment=8)
    assert_matches(loaded_logits(model, save_official(state, tmp_path / "xvit.pth"), video), reference)
    assert model.temporal_head.mlp_head[0].eps == model.temporal_head.temporal_encoder[0].norm1.eps == 1e-5
    assert model.norm.eps == model.blocks[0].norm1.eps == 1e-6


def test_frames_of_two_segments_never_mix_and_the_readout_reads_all(tmp_path: Path):
    """segment_frames=8 at 16 frames: the first 8 frames' tokens ignore the last 8, the clip feature does not."""
    model = create_model("xvit_k600_16x224", **TINY_WIDTH, img_size=2 * PATCH).eval()
    video = torch.randn(1, 3, 16, 2 * PATCH, 2 * PATCH)
    changed = video.clone()
    changed[:, :, 8:] = torch.randn_like(changed[:, :, 8:])
    with torch.no_grad():
        first, second = (model.blocks[1](model.blocks[0](model.embed(clip)))[:8] for clip in (video, changed))
        torch.testing.assert_close(first, second, rtol=0, atol=0)
        assert not torch.allclose(model(video), model(changed))
        whole = create_model("xvit_k600_16x224", **TINY_WIDTH, img_size=2 * PATCH,
                             attention_options=dict(shift_div=8, temporal="ta")).eval()
        whole.load_state_dict(model.state_dict())
        first, second = (whole.blocks[1](whole.blocks[0](whole.embed(clip)))[:8] for clip in (video, changed))
        assert not torch.allclose(first, second)  # without segments, frame 7 hears frame 8


def test_an_xvit_checkpoint_tiles_its_8_entries_other_sources_and_counts_keep_linear_resizing(tmp_path: Path):
    path = save_official(official_xvit_state(side=2, classes=5), tmp_path / "xvit.pth")
    temp_embed = torch.load(path)["model_state"]["base_model.temp_embed"].flatten(1, 2)
    sixteen = create_model("xvit_base_16x224", **TINY_WIDTH, img_size=2 * PATCH, num_classes=5)
    report = load_pretrained(sixteen, path, strict=True)
    assert torch.equal(sixteen.time_embed.detach(), temp_embed[:, [t % 8 for t in range(16)]])
    assert "t mod T" in report.adapted["time_embed"]

    twelve = create_model("xvit_base_16x224", **TINY_WIDTH, img_size=2 * PATCH, num_classes=5, num_frames=12)
    assert "linearly" in load_pretrained(twelve, path, strict=True).adapted["time_embed"]
    torch.testing.assert_close(twelve.time_embed[:, [0, -1]], temp_embed[:, [0, -1]])
    with pytest.raises(ValueError, match="multiples of 8 only .* resize='smooth'"):
        load_pretrained(twelve, path, resize="official")

    timesformer = {key.removeprefix("model."): value for key, value in official_timesformer_state(8, 2, 5).items()}
    divided = create_model("timesformer_base_8x224", **TINY_WIDTH, img_size=2 * PATCH, num_classes=5, num_frames=16)
    assert "linearly" in load_pretrained(divided, timesformer, strict=True).adapted["time_embed"]


def test_official_resizing_is_timesformers_nearest_entries(tmp_path: Path):
    """An 8-frame 2 × 2-patch checkpoint into a 16-frame 4 × 4-patch model: official TimeSformer's
    `load_pretrained` takes the nearest entry in time and along the flattened patch sequence (entry j * 4 // 16)."""
    state = official_timesformer_state(frames=8, side=2, classes=5)
    path = save_official(state, tmp_path / "TimeSformer_divST_8x32_224_K400.pyth")
    model = create_model("timesformer_hr_k400_16x448", **TINY_WIDTH, img_size=4 * PATCH, num_classes=5)
    report = load_pretrained(model, path, strict=True, resize="official")
    time_embed, pos_embed = state["model.time_embed"], state["model.pos_embed"]
    assert torch.equal(model.time_embed.detach(), time_embed[:, [t * 8 // 16 for t in range(16)]])
    assert torch.equal(model.pos_embed.detach(), pos_embed[:, [0, *(1 + j * 4 // 16 for j in range(16))]])
    assert "TimeSformer" in report.adapted["pos_embed"] and "TimeSformer" in report.adapted["time_embed"]
    video = torch.randn(1, 3, 16, 4 * PATCH, 4 * PATCH, dtype=torch.float64)
    adapted = state | {"model.time_embed": model.time_embed.detach(), "model.pos_embed": model.pos_embed.detach()}
    with torch.no_grad():
        assert_matches(model.double().eval()(video), timesformer_reference(as_float64(adapted), video))


def test_official_resizing_is_xvits_bicubic_without_antialiasing(tmp_path: Path):
    """The official X-ViT interpolates the 224 grid to the crop at run time: bicubic by the ratio of the sides, no
    antialiasing (which for 2 × 2 -> 4 × 4 changes nothing; a shrink shows it)."""
    state = official_xvit_state(side=4, classes=5)
    path = save_official(state, tmp_path / "xvit.pth")
    model = create_model("xvit_base_8x224", **TINY_WIDTH, img_size=2 * PATCH, num_classes=5)
    report = load_pretrained(model, path, strict=True, resize="official")
    grid = state["base_model.pos_embed"][:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, scale_factor=0.5, mode="bicubic", align_corners=False)
    torch.testing.assert_close(model.pos_embed[:, 1:].detach(), expected.flatten(2).transpose(1, 2), rtol=0, atol=0)
    assert "without antialiasing" in report.adapted["pos_embed"]
    smooth = create_model("xvit_base_8x224", **TINY_WIDTH, img_size=2 * PATCH, num_classes=5)
    load_pretrained(smooth, path, strict=True)
    assert not torch.allclose(smooth.pos_embed, model.pos_embed)  # the default antialiases


def test_an_unknown_resize_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown resize 'nearest'; valid: smooth, official"):
        load_pretrained(create_model("xvit_synthetic_8x32"), {}, resize="nearest")
