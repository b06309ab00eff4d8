"""load_pretrained from every source format, the official image-to-video init, resizing and errors; export_hf."""
from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models.resnet import resnet18
from timm.models.vision_transformer import VisionTransformer, _load_weights
from transformers import TimesformerConfig, TimesformerForVideoClassification

from lightning_video.cli import VideoCLI
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.models import VideoTransformer, export_hf, load_pretrained
from lightning_video.training.module import VideoClassifier

TINY = dict(num_classes=5, img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=2, num_heads=4)
CONFIG = str(Path(__file__).parents[1] / "experiments/configs/synthetic_motion.yaml")


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every tensor drawn at random, so that no zero init (`*_fc`, biases) can hide a misplaced tensor."""
    torch.manual_seed(seed)
    for param in module.parameters():
        torch.nn.init.normal_(param, std=0.2)
    return module.eval()


def image_model(num_classes: int = 5, embed_dim: int = 32, depth: int = 2) -> VisionTransformer:
    """A timm ViT (LayerNorm eps 1e-6, qkv bias, cls-token readout) of the TINY sizes."""
    return randomized(VisionTransformer(img_size=32, patch_size=8, embed_dim=embed_dim, depth=depth, num_heads=4,
                                        num_classes=num_classes))


def write_vit_npz(state: dict[str, torch.Tensor], path: Path, num_heads: int) -> None:
    """The original ViT release's .npz: JAX names and layouts, the inverse of what timm's `_load_weights` reads."""
    dim = state["cls_token"].shape[-1]
    arrays = {"embedding/kernel": state["patch_embed.proj.weight"].permute(2, 3, 1, 0),  # OIHW -> HWIO
              "embedding/bias": state["patch_embed.proj.bias"], "cls": state["cls_token"],
              "Transformer/posembed_input/pos_embedding": state["pos_embed"],
              "Transformer/encoder_norm/scale": state["norm.weight"],
              "Transformer/encoder_norm/bias": state["norm.bias"],
              "head/kernel": state["head.weight"].t(), "head/bias": state["head.bias"]}
    depth = len({key.split(".")[1] for key in state if key.startswith("blocks.")})
    for index in range(depth):
        ours, block = f"blocks.{index}.", f"Transformer/encoderblock_{index}/"
        attention = f"{block}MultiHeadDotProductAttention_1/"
        weights, biases = state[f"{ours}attn.qkv.weight"].chunk(3), state[f"{ours}attn.qkv.bias"].chunk(3)
        for name, weight, bias in zip(("query", "key", "value"), weights, biases):
            arrays[f"{attention}{name}/kernel"] = weight.t().reshape(dim, num_heads, -1)
            arrays[f"{attention}{name}/bias"] = bias.reshape(num_heads, -1)
        arrays[f"{attention}out/kernel"] = state[f"{ours}attn.proj.weight"].t().reshape(num_heads, -1, dim)
        arrays[f"{attention}out/bias"] = state[f"{ours}attn.proj.bias"]
        for norm, our_norm in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            arrays[f"{block}{norm}/scale"] = state[f"{ours}{our_norm}.weight"]
            arrays[f"{block}{norm}/bias"] = state[f"{ours}{our_norm}.bias"]
        for dense in (0, 1):
            arrays[f"{block}MlpBlock_3/Dense_{dense}/kernel"] = state[f"{ours}mlp.fc{dense + 1}.weight"].t()
            arrays[f"{block}MlpBlock_3/Dense_{dense}/bias"] = state[f"{ours}mlp.fc{dense + 1}.bias"]
    np.savez(path, **{name: tensor.detach().numpy() for name, tensor in arrays.items()})


def same_image_clip(image: torch.Tensor, frames: int) -> torch.Tensor:
    return image.unsqueeze(2).expand(-1, -1, frames, -1, -1)


def relative_error(ours: torch.Tensor, expected: torch.Tensor) -> float:
    return ((ours - expected).abs().max() / expected.abs().max()).item()


def assert_same(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, msg=name)


def test_the_npz_writer_makes_the_layout_timm_reads(tmp_path: Path):
    """Guards the test's own .npz writer, so the loader's .npz mapping is checked against the real layout."""
    vit = image_model()
    write_vit_npz(vit.state_dict(), tmp_path / "ViT-B_16.npz", num_heads=4)
    reread = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=5)
    _load_weights(reread, str(tmp_path / "ViT-B_16.npz"))
    for name, tensor in vit.state_dict().items():
        assert_same(reread.state_dict()[name], tensor, name)


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


IMAGE_FILES: dict[str, Callable[[dict[str, torch.Tensor], Path], Path]] = {
    "timm .pth": lambda state, tmp: save_state_dict(state, tmp / "vit.pth"),
    "DeiT-style {'model': ...} with a module. prefix, .pt": lambda state, tmp: save_state_dict(
        {"model": {f"module.{key}": tensor for key, tensor in state.items()}}, tmp / "vit.pt"),
    "model. prefix, .bin": lambda state, tmp: save_state_dict(
        {f"model.{key}": tensor for key, tensor in state.items()}, tmp / "vit.bin"),
    ".safetensors": lambda state, tmp: save_file(state, tmp / "vit.safetensors") or tmp / "vit.safetensors",
    "original ViT .npz": lambda state, tmp: write_vit_npz(state, tmp / "vit.npz", num_heads=4) or tmp / "vit.npz",
}


@pytest.mark.parametrize("file_format", IMAGE_FILES)
def test_image_weights_load_from_every_file_format(file_format: str, tmp_path: Path):
    vit = image_model()
    path = IMAGE_FILES[file_format](vit.state_dict(), tmp_path)
    model = VideoTransformer("space", **TINY)
    report = load_pretrained(model, path, strict=True)
    for name, tensor in vit.state_dict().items():
        assert_same(model.state_dict()[name], tensor, name)
    assert sorted(report.loaded) == sorted(vit.state_dict()) and report.source == str(path)


@pytest.mark.parametrize("attention", ["space", "divided"])
def test_space_and_divided_from_image_weights_give_the_image_models_logits(attention: str, tmp_path: Path):
    """Official init: zero `time_embed` and `temporal_fc` make the video model the image model on a still clip."""
    vit = image_model()
    model = VideoTransformer(attention, **TINY).eval()
    load_pretrained(model, save_state_dict(vit.state_dict(), tmp_path / "vit.pth"), strict=True)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected, ours = vit(image), model(same_image_clip(image, frames=4))
    assert relative_error(ours, expected) < 1e-6  # measured: 0.0


def vit_with_cls_key_bias(vit: VisionTransformer, image: torch.Tensor, bias: float) -> torch.Tensor:
    """The timm ViT's forward with `bias` added to every attention logit on the cls key."""
    patches = vit.patch_embed(image)
    x = torch.cat([vit.cls_token.expand(len(image), -1, -1), patches], dim=1) + vit.pos_embed
    mask = torch.zeros(1, x.shape[1])  # [queries (broadcast), keys]
    mask[0, 0] = bias
    for block in vit.blocks:
        q, k, v = block.attn.qkv(block.norm1(x)).unflatten(-1, (3, block.attn.num_heads, -1)).permute(2, 0, 3, 1, 4)
        x = x + block.attn.proj(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).flatten(2))
        x = x + block.mlp(block.norm2(x))
    return vit.head(vit.norm(x)[:, 0])


def test_joint_from_image_weights_is_the_image_model_with_the_cls_key_weighted_down_by_the_frame_count():
    """Joint attention over T identical frames sees each patch key T times and the cls key once: its softmax is the
    image model's with the cls key's weight divided by T (logit - log T); every patch copy stays identical."""
    vit = image_model()
    model = VideoTransformer("joint", **TINY).eval()
    load_pretrained(model, vit.state_dict(), strict=True)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = model(same_image_clip(image, frames=4))
        plain, reweighted = (vit_with_cls_key_bias(vit, image, bias) for bias in (0.0, -math.log(4)))
        torch.testing.assert_close(plain, vit(image))  # the reference is the ViT's own forward
    assert relative_error(ours, reweighted) < 1e-5  # measured ~3e-7
    assert relative_error(ours, plain) > 1e-3  # ~2e-2: close to the image model, not equal


@pytest.mark.parametrize(("attention", "extras", "options"), [("local_global", ("global",), {}),
                                                               ("axial", ("temporal", "width"), {}),
                                                               ("xvit", (), {"temporal": "ta"})])
def test_image_weights_land_in_the_image_tensors_and_seed_every_extra_attention(attention: str, extras: tuple[str, ...],
                                                                               options: dict):
    vit = image_model()
    model = VideoTransformer(attention, **TINY, attention_options=options)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    report = load_pretrained(model, vit.state_dict(), strict=True)
    state = model.state_dict()
    for name, tensor in vit.state_dict().items():  # same name, same tensor
        assert_same(state[name], tensor, name)
    copied = {}
    for block in range(TINY["depth"]):
        for extra in extras:  # its norm and attention copy the block's own, its output Linear stays zero
            for name in ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                         "attn.proj.bias"):
                copied[f"blocks.{block}.{extra}_{name}"] = f"blocks.{block}.{name}"
            assert state[f"blocks.{block}.{extra}_fc.weight"].abs().sum() == 0
    for name, source in copied.items():
        assert_same(state[name], vit.state_dict()[source], name)
    assert state["time_embed"].abs().sum() == 0
    kept = [name for name in state if name.startswith("temporal_head.")]
    assert (attention == "xvit") == bool(kept)
    for name in kept:  # the TA head has no image counterpart
        assert_same(state[name], initial[name], name)
    assert sorted(report.adapted) == sorted(copied) and not report.missing and not report.unexpected
    assert sorted(report.loaded + list(report.adapted) + list(report.skipped)) == sorted(state)


def test_a_head_of_another_class_count_keeps_its_init_even_when_strict():
    model = VideoTransformer("divided", **TINY)
    head = model.head.weight.clone()
    report = load_pretrained(model, image_model(num_classes=7).state_dict(), strict=True)
    assert_same(model.head.weight, head, "head.weight")
    assert "7 classes, the model 5" in report.skipped["head.weight"] and "head.bias" in report.skipped


def test_official_timesformer_checkpoint_loads_every_tensor(tmp_path: Path):
    """`.pyth` files of the official code: `{"model_state": ...}`, names under `model.`, training state beside."""
    trained = randomized(VideoTransformer("divided", **TINY))
    path = tmp_path / "TimeSformer_divST_8x32_224_K400.pyth"
    torch.save({"epoch": 15, "cfg": "TRAIN:\n  ENABLE: True\n", "optimizer_state": {},
                "model_state": {f"model.{name}": tensor for name, tensor in trained.state_dict().items()}}, path)
    model = VideoTransformer("divided", **TINY)
    report = load_pretrained(model, path, strict=True)
    for name, tensor in trained.state_dict().items():
        assert_same(model.state_dict()[name], tensor, name)
    assert "prefix 'model.'" in report.format and not report.skipped


def official_xvit_checkpoint(model: VideoTransformer) -> dict:
    """What the official X-ViT code saves for a TA-head model: the ViT under `base_model.` with a [1, T, 1, D]
    `temp_embed`, the TA head under `consensus.` ending in `mlp_head.4`, and an unused `new_fc`."""
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "time_embed":
            state["base_model.temp_embed"] = tensor.unsqueeze(2)
        elif name.startswith("head."):
            state[name.replace("head.", "consensus.mlp_head.4.")] = tensor
        elif name.startswith("temporal_head."):
            state[name.replace("temporal_head.", "consensus.")] = tensor
        else:
            state[f"base_model.{name}"] = tensor
    state["new_fc.weight"], state["new_fc.bias"] = torch.randn(5, 32), torch.randn(5)
    return {"epoch": 35, "model_state": state}


def test_official_xvit_checkpoint_loads_every_tensor(tmp_path: Path):
    trained = randomized(VideoTransformer("xvit", **TINY, attention_options={"temporal": "ta"}))
    torch.save(official_xvit_checkpoint(trained), tmp_path / "xvit_B16_16x16_ssv2.pyth")
    model = VideoTransformer("xvit", **TINY, attention_options={"temporal": "ta"})
    report = load_pretrained(model, tmp_path / "xvit_B16_16x16_ssv2.pyth", strict=True)
    for name, tensor in trained.state_dict().items():
        assert_same(model.state_dict()[name], tensor, name)
    assert report.format == "X-ViT (official)" and sorted(report.skipped) == ["new_fc.bias", "new_fc.weight"]


def test_model_pretrained_config_key_loads_a_lightning_checkpoint(tmp_path: Path):
    """`--model.pretrained` with this project's own checkpoint (`state_dict`, names under `backbone.`)."""
    sizes = ["--model.backbone.init_args.embed_dim", "32", "--model.backbone.init_args.depth", "1"]
    base = ["--config", CONFIG, *sizes, "--data.root", str(tmp_path / "data"), "--trainer.logger", "false"]
    trained = VideoCLI(VideoClassifier, VideoDataModule, run=False, args=base).model
    randomized(trained.backbone)
    torch.save({"epoch": 3, "global_step": 30, "state_dict": trained.state_dict()}, tmp_path / "last.ckpt")
    model = VideoCLI(VideoClassifier, VideoDataModule, run=False,
                     args=[*base, "--model.pretrained", str(tmp_path / "last.ckpt")]).model
    for name, tensor in trained.backbone.state_dict().items():
        assert_same(model.backbone.state_dict()[name], tensor, name)


def test_model_pretrained_resize_config_key_reaches_load_pretrained(tmp_path: Path):
    """`--model.pretrained_resize official` fits a 32-pixel checkpoint to 48-pixel clips as `load_pretrained(...,
    resize="official")` does (TimeSformer's nearest entries for this divided model), not as the default does."""
    sizes = ["--model.backbone.init_args.embed_dim", "32", "--model.backbone.init_args.depth", "1"]
    base = ["--config", CONFIG, *sizes, "--data.root", str(tmp_path / "data"), "--trainer.logger", "false"]
    trained = VideoCLI(VideoClassifier, VideoDataModule, run=False, args=base).model
    randomized(trained.backbone)
    torch.save({"state_dict": trained.state_dict()}, tmp_path / "last.ckpt")
    larger = [*base, "--data.crop_size", "48", "--data.train_min_short_side", "48", "--data.train_max_short_side", "48",
              "--model.pretrained", str(tmp_path / "last.ckpt")]
    pos_embed = {}
    for resize in ("smooth", "official"):
        model = VideoCLI(VideoClassifier, VideoDataModule, run=False,
                         args=[*larger, "--model.pretrained_resize", resize]).model.backbone
        pos_embed[resize] = model.pos_embed.detach()
        reference = copy.deepcopy(model)
        load_pretrained(reference, tmp_path / "last.ckpt", resize=resize)
        assert_same(pos_embed[resize], reference.pos_embed.detach(), resize)
    assert not torch.allclose(pos_embed["smooth"], pos_embed["official"])


HF_SCHEMES = [("space", "space_only"), ("joint", "joint_space_time"), ("divided", "divided_space_time")]


def hf_logits(reference: TimesformerForVideoClassification, video: torch.Tensor, space_only: bool) -> torch.Tensor:
    """HF logits; for `space_only`, which classifies each frame alone, the official readout (frames averaged before
    the final norm) from HF's own last hidden state."""
    outputs = reference(pixel_values=video.transpose(1, 2), output_hidden_states=space_only)
    if not space_only:
        return outputs.logits
    tokens = outputs.hidden_states[-1].unflatten(0, (len(video), -1)).mean(dim=1)
    return reference.classifier(reference.timesformer.layernorm(tokens)[:, 0])


@pytest.mark.parametrize(("attention", "hf_attention"), HF_SCHEMES)
def test_hf_directory_loads_with_hf_logits_and_exports_back_losslessly(attention: str, hf_attention: str,
                                                                       tmp_path: Path):
    config = TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=128, attention_type=hf_attention, num_labels=5)
    original = randomized(TimesformerForVideoClassification(config))
    original.save_pretrained(tmp_path / "hf")
    model = VideoTransformer(attention, **TINY).eval()
    report = load_pretrained(model, tmp_path / "hf", strict=True)
    assert report.format == "HF Timesformer" and not report.skipped
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert relative_error(model(video), hf_logits(original, video, attention == "space")) < 1e-5

    labels = {index: f"class {index}" for index in range(5)}
    exported = TimesformerForVideoClassification.from_pretrained(export_hf(model, tmp_path / "export", labels))
    assert exported.config.attention_type == hf_attention and exported.config.id2label == labels
    assert exported.state_dict().keys() == original.state_dict().keys()
    for name, tensor in original.state_dict().items():
        assert_same(exported.state_dict()[name], tensor, name)


def test_export_hf_names_the_schemes_hf_has():
    with pytest.raises(ValueError, match="HF Timesformer has no 'axial' attention; export_hf supports space, joint, "
                                         "divided"):
        export_hf(VideoTransformer("axial", **TINY), "unused")


def linear_in_time(frames: int, dim: int = 32) -> torch.Tensor:
    """[1, frames, dim]: per channel a + b * t, t from 0 to 1 over the clip."""
    time = torch.linspace(0, 1, frames, dtype=torch.float64)[:, None]
    return (torch.randn(dim, dtype=torch.float64) + time * torch.randn(dim, dtype=torch.float64)).float()[None]


def test_time_embed_resizes_linearly_8_to_16_to_8_frames():
    eight = VideoTransformer("divided", **{**TINY, "num_frames": 8})
    with torch.no_grad():
        eight.time_embed.copy_(linear_in_time(8))
    sixteen = VideoTransformer("divided", **{**TINY, "num_frames": 16})
    report = load_pretrained(sixteen, eight.state_dict(), strict=True)
    assert report.adapted["time_embed"].startswith("(1, 8, 32) -> (1, 16, 32)")
    torch.testing.assert_close(sixteen.time_embed[:, [0, -1]], eight.time_embed[:, [0, -1]])  # endpoints kept
    back = VideoTransformer("divided", **{**TINY, "num_frames": 8})
    load_pretrained(back, sixteen.state_dict(), strict=True)
    torch.testing.assert_close(back.time_embed, eight.time_embed, rtol=0, atol=1e-6)  # linear in time: exact

    with torch.no_grad():
        eight.time_embed.copy_(torch.randn(1, 1, 32).expand(1, 8, 32))
    load_pretrained(sixteen, eight.state_dict(), strict=True)
    torch.testing.assert_close(sixteen.time_embed, eight.time_embed[:, :1].expand(1, 16, 32))  # constant stays


@pytest.mark.parametrize(("from_size", "to_size"), [(32, 64), (64, 32)])
def test_pos_embed_resizes_the_patch_grid_bicubically_as_timm_does(from_size: int, to_size: int):
    """Grid 4×4 <-> 8×8 (224 <-> 448 at patch 16 is 14×14 <-> 28×28): timm's resampling, cls position kept."""
    source = randomized(VideoTransformer("divided", **{**TINY, "img_size": from_size}))
    model = VideoTransformer("divided", **{**TINY, "img_size": to_size})
    report = load_pretrained(model, source.state_dict(), strict=True)
    side = to_size // 8
    expected = resample_abs_pos_embed(source.pos_embed.detach(), new_size=[side, side], num_prefix_tokens=1)
    torch.testing.assert_close(model.pos_embed, expected, rtol=0, atol=1e-6)
    assert_same(model.pos_embed[:, 0], source.pos_embed[:, 0], "cls position")
    assert "pos_embed" in report.adapted

    with torch.no_grad():
        source.pos_embed[:, 1:] = torch.randn(1, 1, 32)
    load_pretrained(model, source.state_dict(), strict=True)
    torch.testing.assert_close(model.pos_embed[:, 1:], source.pos_embed[:, 1:2].expand(1, side * side, 32))


def test_checkpoint_of_another_width_is_refused_with_the_tensors_that_do_not_fit():
    model = VideoTransformer("divided", **TINY)
    before = model.patch_embed.proj.weight.clone()
    with pytest.raises(ValueError, match=r"does not fit the model: cls_token: checkpoint \(1, 1, 48\), model "
                                         r"\(1, 1, 32\).*Build the model with the checkpoint's sizes"):
        load_pretrained(model, image_model(embed_dim=48).state_dict())
    assert_same(model.patch_embed.proj.weight, before, "nothing loaded")


def test_a_resnet_checkpoint_is_refused_with_its_keys(tmp_path: Path):
    torch.save(resnet18(num_classes=5).state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match=r"resnet18.pth is no ViT, TimeSformer or X-ViT checkpoint.*conv1.weight"):
        load_pretrained(VideoTransformer("divided", **TINY), tmp_path / "resnet18.pth")


def test_strict_names_missing_and_unexpected_tensors_and_lenient_reports_and_warns(caplog: pytest.LogCaptureFixture):
    state = image_model(depth=3).state_dict()
    del state["norm.weight"]
    with pytest.raises(ValueError, match=r"missing from the checkpoint: norm.weight; unexpected in it: "
                                         r"blocks.2.norm1.weight; .*blocks.2.mlp.fc2.bias"):
        load_pretrained(VideoTransformer("space", **TINY), state, strict=True)
    with caplog.at_level(logging.DEBUG, logger="lightning_video.models.weights"):
        report = load_pretrained(VideoTransformer("space", **TINY), state)
    assert report.missing == ["norm.weight"] and len(report.unexpected) == 12
    summary, details = (record for record in caplog.records)
    assert summary.levelno == logging.WARNING and summary.getMessage() == (
        "state dict (timm / TimeSformer names): 31 tensors loaded, 0 adapted, 0 skipped, 1 missing, 12 unexpected")
    assert details.levelno == logging.DEBUG and "unexpected: blocks.2.norm1.weight" in details.getMessage()


def test_unreadable_sources_say_what_is_readable(tmp_path: Path):
    (tmp_path / "vit.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"unknown checkpoint file type '.h5'.*supported: .pth, .pt, .pyth"):
        load_pretrained(VideoTransformer("divided", **TINY), tmp_path / "vit.h5")
    with pytest.raises(FileNotFoundError, match="holds no model.safetensors or pytorch_model.bin"):
        load_pretrained(VideoTransformer("divided", **TINY), tmp_path)
