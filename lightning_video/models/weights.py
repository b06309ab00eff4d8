"""Load pretrained weights into a VideoTransformer, whatever their source, and say what became of each tensor.

    report = load_pretrained(model, "timm/vit_base_patch16_224.augreg_in21k")  # image weights -> video

Sources: timm / original ViT image weights (a state dict file, or the original release's .npz), official
TimeSformer (`{"model_state": ...}`, `model.` prefix) and X-ViT checkpoints, HF Timesformer (a `save_pretrained`
directory or its state dict) and this project's Lightning checkpoints (`backbone.` prefix), from a path or by name (a
timm name or Hub repo id, `hub.py`). The steps: read, rename to our names (one function per format), adapt
(embeddings fitted to the clip size, `resize.py`; the image attention copied into a scheme's extra attentions; a head
of another class count left out), check shapes, load, report.
"""
from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from lightning_video.models.checkpoint_file import load_checkpoint_file
from lightning_video.models.hf_export import from_hf_name
from lightning_video.models.hub import local_weights
from lightning_video.models.resize import (RESIZES, Resize, resize_pos_embed, resize_pos_embed_timesformer,
                                           resize_pos_embed_xvit, resize_time_embed, resize_time_embed_nearest,
                                           tile_time_embed)
from lightning_video.models.video_transformer import VideoTransformer
from lightning_video.models.xvit import XViT

log = logging.getLogger(__name__)

TORCH_SUFFIXES = (".pth", ".pt", ".pyth", ".bin", ".ckpt")
FILE_SUFFIXES = (*TORCH_SUFFIXES, ".safetensors", ".npz")
HF_FILES = ("model.safetensors", "pytorch_model.bin")
# Where training checkpoints keep the state dict: official TimeSformer / X-ViT, Lightning, DeiT, wrapped models.
CONTAINERS = ("model_state", "state_dict", "model", "module")
# Parts of the model a checkpoint may lack on purpose (image weights have no video parts; a backbone may come
# without a head). When it has no tensor of a part, the part keeps its init, which makes a model loaded from image
# weights start as that image model (official TimeSformer): `time_embed` and every extra attention's `*_fc` are zero.
# The scheme's extra attentions (`blocks.N.temporal_`, ...) are optional parts too (`_optional_parts`).
OPTIONAL_PARTS = {
    r"time_embed": "the checkpoint has no temporal embedding; kept at its init",
    r"temporal_head\.": "the checkpoint has no TA head; kept at its init",
    r"head\.": "the checkpoint has no classifier; kept at its init",
}
MISSING_ATTENTION = "the checkpoint has no such attention; kept at its init (a zero *_fc adds nothing)"
XVIT_FORMAT = "X-ViT (official)"
# Checkpoint tensors known to be of no use here.
UNUSED = {
    "pre_logits": "ViT representation layer, dropped for fine-tuning (as timm does)",
    "new_fc.": "X-ViT's classifier, unused with its TA head",
}


@dataclass
class LoadReport:
    """What `load_pretrained` did with each tensor.

    Attributes:
        source: the file read, or "state dict".
        format: the checkpoint format found.
        loaded: model tensors copied from the checkpoint as they were.
        adapted: model tensors filled from a transformed checkpoint tensor, with how.
        skipped: tensors left out on purpose, with why: model tensors of a part the checkpoint lacks (they keep
            their init), a head of another class count, checkpoint tensors known to be of no use.
        missing: model tensors the checkpoint should have had; they keep their init.
        unexpected: checkpoint tensors with no place in the model.
    """

    source: str
    format: str
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.source} ({self.format}): {len(self.loaded)} tensors loaded, {len(self.adapted)} adapted, "
                f"{len(self.skipped)} skipped, {len(self.missing)} missing, {len(self.unexpected)} unexpected")

    def details(self) -> str:
        lines = [f"loaded: {', '.join(self.loaded)}"]
        lines += [f"adapted {name}: {how}" for name, how in self.adapted.items()]
        lines += [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        lines += [f"missing: {', '.join(self.missing)}", f"unexpected: {', '.join(self.unexpected)}"]
        return "\n".join(lines)


def load_pretrained(model: VideoTransformer, source: str | Path | Mapping[str, Any], strict: bool = False,
                    resize: Resize = "smooth") -> LoadReport:
    """Load `source` into `model`, adapting what the model sets differently, and return the report (also logged:
    its summary at INFO, or WARNING when tensors are missing or unexpected, the details at DEBUG).

    Args:
        model: the model to fill.
        source: a checkpoint file (.pth, .pt, .pyth, .bin, .ckpt, .safetensors, .npz), an HF model directory, a
            timm name or Hugging Face Hub repo id (`hub.local_weights`), or a state dict (or training checkpoint
            dict) already in memory.
        strict: fail on any missing or unexpected tensor. What is skipped on purpose (see `LoadReport.skipped`)
            is not an error: a head of another class count, the video parts image weights do not have.
        resize: how `pos_embed` and `time_embed` are fitted when the checkpoint's frame size or frame count is not
            the model's (`resize.py`): "smooth" (the default: bicubic with antialiasing in space, linear in time, so
            neighbouring patches and frames keep neighbouring codes and an embedding linear in time stays so) or
            "official", what the official code of the model's paper does (X-ViT for an X-ViT model, TimeSformer for
            the others): to reproduce fine-tuning a released checkpoint at another size as its authors did. An
            official X-ViT checkpoint's 8-entry `temp_embed` is tiled over 16 (or 8 k) frames under both, as the
            official code computes.

    Raises:
        ValueError: the source is no ViT / TimeSformer / X-ViT checkpoint, a tensor's shape does not fit the model,
            or `strict` and tensors are missing or unexpected; `checkpoint_file.CheckpointError`: the file is empty,
            no checkpoint, or damaged (its digest does not match). Nothing is loaded then.
    """
    if resize not in RESIZES:
        raise ValueError(f"unknown resize {resize!r}; valid: {', '.join(RESIZES)}")
    name = "state dict" if isinstance(source, Mapping) else str(source)
    checkpoint = source if isinstance(source, Mapping) else _read(local_weights(source))
    format_name, state = _convert(checkpoint, name)
    report = LoadReport(name, format_name)
    target = model.state_dict()
    optional = _optional_tensors(target, state, _optional_parts(model))
    _fit_embeddings(state, target, report, _embedding_fits(model, format_name, resize, state, target))
    _adapt(state, target, optional, report, _image_counterparts(model))
    _classify(state, target, optional, report)
    _check_shapes(state, target, name)
    if strict and (report.missing or report.unexpected):
        raise ValueError(f"strict loading of {name}: missing from the checkpoint: {_listed(report.missing)}; "
                         f"unexpected in it: {_listed(report.unexpected)}. Load with strict=False to go on without "
                         f"them (the missing keep their init), or pick a checkpoint of this architecture")
    model.load_state_dict({key: state[key] for key in [*report.loaded, *report.adapted]}, strict=False)
    log.log(logging.WARNING if report.missing or report.unexpected else logging.INFO, report.summary())
    log.debug(report.details())
    return report


def _read(path: Path) -> Mapping[str, Any]:
    """The tensors (or the training checkpoint holding them) in a file or an HF model directory."""
    if path.is_dir():
        files = [path / file for file in HF_FILES if (path / file).is_file()]
        if not files:
            raise FileNotFoundError(f"{path} holds no {' or '.join(HF_FILES)}: an HF model directory is one written "
                                    f"by save_pretrained (or export_hf)")
        path = files[0]
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.suffix == ".safetensors":
        return load_file(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            return {key: torch.from_numpy(arrays[key]) for key in arrays.files}
    if path.suffix in TORCH_SUFFIXES:
        try:
            return load_checkpoint_file(path)
        except pickle.UnpicklingError as error:
            raise ValueError(f"{path} holds Python objects besides tensors, which torch.load reads only with "
                             f"weights_only=False; if you trust the file, load it so yourself and pass the dict "
                             f"to load_pretrained") from error
    raise ValueError(f"unknown checkpoint file type {path.suffix!r} ({path}); supported: "
                     f"{', '.join(FILE_SUFFIXES)} or an HF model directory")


def _convert(checkpoint: Mapping[str, Any], name: str) -> tuple[str, dict[str, torch.Tensor]]:
    """The checkpoint's format and its tensors under our names (renamed, and re-laid-out for the .npz)."""
    state = _unwrap(checkpoint)
    if "embedding/kernel" in state:
        return "ViT .npz (original JAX release)", _from_vit_npz(state)
    if "timesformer.embeddings.patch_embeddings.projection.weight" in state:
        return "HF Timesformer", {from_hf_name(key) or key: tensor for key, tensor in state.items()}
    if "base_model.patch_embed.proj.weight" in state:
        return XVIT_FORMAT, _from_xvit(state)
    for prefix in ("", "model.", "module.", "backbone."):
        if f"{prefix}patch_embed.proj.weight" in state:
            renamed = {key.removeprefix(prefix): tensor for key, tensor in state.items()}
            return f"timm / TimeSformer names{f', prefix {prefix!r} removed' if prefix else ''}", renamed
    raise ValueError(f"{name} is no ViT, TimeSformer or X-ViT checkpoint: it has no patch embedding "
                     f"(patch_embed.proj.weight, HF timesformer.embeddings.*, .npz embedding/kernel); its first keys: "
                     f"{_listed(list(state), 8)}. Readable: timm ViT, official TimeSformer and X-ViT, HF Timesformer, "
                     f"ViT .npz and lightning_video checkpoints")


def _unwrap(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    for container in CONTAINERS:
        if isinstance(checkpoint.get(container), Mapping):
            return _unwrap(checkpoint[container])
    return {key: value for key, value in checkpoint.items() if isinstance(value, torch.Tensor)}


def _from_vit_npz(arrays: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original ViT release's names and JAX layouts (as timm's `_load_weights` reads them) -> ours; tensors it
    does not know keep their names (and are reported)."""
    rest, out = dict(arrays), {}

    def take(key: str, ours: str, layout: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> None:
        if key in rest:
            out[ours] = layout(rest.pop(key))

    transposed = torch.Tensor.t
    take("embedding/kernel", "patch_embed.proj.weight", lambda t: t.permute(3, 2, 0, 1))  # HWIO -> OIHW
    take("embedding/bias", "patch_embed.proj.bias")
    take("cls", "cls_token")
    take("Transformer/posembed_input/pos_embedding", "pos_embed")
    take("Transformer/encoder_norm/scale", "norm.weight")
    take("Transformer/encoder_norm/bias", "norm.bias")
    take("head/kernel", "head.weight", transposed)
    take("head/bias", "head.bias")
    blocks = {match.groups() for key in arrays if (match := re.match(r"(Transformer/encoderblock_(\d+)/)", key))}
    for block, index in blocks:
        ours = f"blocks.{index}."
        for norm, our_norm in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            take(f"{block}{norm}/scale", f"{ours}{our_norm}.weight")
            take(f"{block}{norm}/bias", f"{ours}{our_norm}.bias")
        attention = f"{block}MultiHeadDotProductAttention_1/"
        qkv = [f"{attention}{name}/" for name in ("query", "key", "value")]
        if all(f"{part}{kind}" in rest for part in qkv for kind in ("kernel", "bias")):  # [D,] heads, head_dim
            out[f"{ours}attn.qkv.weight"] = torch.cat([rest.pop(f"{part}kernel").flatten(1).t() for part in qkv])
            out[f"{ours}attn.qkv.bias"] = torch.cat([rest.pop(f"{part}bias").flatten() for part in qkv])
        take(f"{attention}out/kernel", f"{ours}attn.proj.weight", lambda t: t.flatten(0, 1).t())  # heads, dim, D
        take(f"{attention}out/bias", f"{ours}attn.proj.bias")
        for dense in (0, 1):
            take(f"{block}MlpBlock_3/Dense_{dense}/kernel", f"{ours}mlp.fc{dense + 1}.weight", transposed)
            take(f"{block}MlpBlock_3/Dense_{dense}/bias", f"{ours}mlp.fc{dense + 1}.bias")
    return out | rest


def _from_xvit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official X-ViT (`XVIT` module): a timm ViT under `base_model.` with a `temp_embed` [1, T, 1, D], the TA head
    under `consensus.` whose last Linear (`mlp_head.4`) is our `head`; without the TA head the classifier is
    `new_fc` (dropout > 0) or the ViT's own `head`."""
    out = {}
    for key, tensor in state.items():
        if key.startswith("consensus."):
            key = f"temporal_head.{key.removeprefix('consensus.')}"
        out[key.removeprefix("base_model.")] = tensor
    if "temp_embed" in out:
        out["time_embed"] = out.pop("temp_embed").flatten(1, 2)
    classifier = next((name for name in ("temporal_head.mlp_head.4", "new_fc") if f"{name}.weight" in out), None)
    if classifier:
        for parameter in ("weight", "bias"):
            out[f"head.{parameter}"] = out.pop(f"{classifier}.{parameter}")
    return out


Fit = tuple[Callable[[torch.Tensor, int], torch.Tensor], str]


def _embedding_fits(model: VideoTransformer, format_name: str, resize: Resize, state: dict[str, torch.Tensor],
                    target: dict[str, torch.Tensor]) -> dict[str, Fit]:
    """For `pos_embed` and `time_embed`: the function that fits the checkpoint's to the model's length, with how."""
    if resize == "official" and isinstance(model.scheme, XViT):
        return {"pos_embed": (resize_pos_embed_xvit, "patch grid resized bicubically without antialiasing (X-ViT)"),
                "time_embed": (tile_time_embed, "tiled, frame t taking entry t mod T (X-ViT)")}
    if resize == "official":
        return {"pos_embed": (resize_pos_embed_timesformer, "nearest entry along the flattened patches (TimeSformer)"),
                "time_embed": (resize_time_embed_nearest, "nearest entry in time (TimeSformer)")}
    have, want = state.get("time_embed"), target.get("time_embed")
    tiles = (format_name == XVIT_FORMAT and have is not None and want is not None
             and want.shape[1] > have.shape[1] and want.shape[1] % have.shape[1] == 0)
    return {"pos_embed": (resize_pos_embed, "patch grid resized bicubically, cls position kept"),
            "time_embed": (tile_time_embed, "tiled, frame t taking entry t mod T, as official X-ViT computes") if tiles
            else (resize_time_embed, "resized linearly in time")}


def _fit_embeddings(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], report: LoadReport,
                    fits: dict[str, Fit]) -> None:
    """Fit each embedding of `fits` whose length differs between checkpoint and model."""
    for key, (fit, how) in fits.items():
        have, want = state.get(key), target.get(key)
        if (have is not None and want is not None and have.ndim == want.ndim == 3 and have.shape[1] != want.shape[1]
                and have.shape[2] == want.shape[2]):
            state[key] = fit(have, want.shape[1])
            report.adapted[key] = f"{tuple(have.shape)} -> {tuple(want.shape)}, {how}"


def _optional_parts(model: VideoTransformer) -> dict[str, str]:
    """`OPTIONAL_PARTS` and the model's extra attentions, each part a pattern with why the model may go without it."""
    names = "|".join(re.escape(name) for name in model.scheme.extra_attentions)
    return {**OPTIONAL_PARTS, **({rf"blocks\.\d+\.(?:{names})_": MISSING_ATTENTION} if names else {})}


def _image_counterparts(model: VideoTransformer) -> dict[str, str]:
    """Each extra attention tensor -> the image block tensor it starts from with image weights, e.g.
    `blocks.3.temporal_attn.qkv.weight` -> `blocks.3.attn.qkv.weight` (`Block.image_counterparts`)."""
    counterparts = {}
    for index, block in enumerate(model.blocks):
        for extra, own in block.image_counterparts().items():
            for name, _ in getattr(block, extra).named_parameters():
                counterparts[f"blocks.{index}.{extra}.{name}"] = f"blocks.{index}.{own}.{name}"
    return counterparts


def _optional_tensors(target: dict[str, torch.Tensor], state: dict[str, torch.Tensor],
                      parts: dict[str, str]) -> dict[str, str]:
    """Model tensors of the optional `parts` the checkpoint has no tensor of, with why they may stay."""
    def part(key: str) -> tuple[str, str] | None:
        return next(((match[0], reason) for pattern, reason in parts.items() if (match := re.match(pattern, key))),
                    None)

    present = {found[0] for key in state if (found := part(key))}
    return {key: found[1] for key in target if (found := part(key)) and found[0] not in present}


def _adapt(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], optional: dict[str, str],
           report: LoadReport, image_counterparts: dict[str, str]) -> None:
    """Fit the checkpoint to what the model sets differently besides the clip size (`_fit_embeddings`): scheme (its
    extra attentions start from their `image_counterparts`), class count."""
    for key, own in image_counterparts.items():  # image weights: extra attentions start as the block's own
        if key in optional and own in state:
            state[key] = state[own].clone()
            report.adapted[key] = f"copied from {own} (init from image weights)"
    have, want = state.get("head.weight"), target.get("head.weight")
    if have is not None and want is not None and have.shape[0] != want.shape[0]:
        for key in ("head.weight", "head.bias"):
            state.pop(key, None)
            report.skipped[key] = f"the checkpoint has {have.shape[0]} classes, the model {want.shape[0]}; kept at init"


def _classify(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], optional: dict[str, str],
          report: LoadReport) -> None:
    """File every tensor under loaded, missing, unexpected or skipped (adapted ones are filed already)."""
    for key in target:
        if key in state:
            if key not in report.adapted:
                report.loaded.append(key)
        elif key in optional:
            report.skipped[key] = optional[key]
        elif key not in report.skipped:
            report.missing.append(key)
    for key in state:
        if key not in target:
            unused = next((why for prefix, why in UNUSED.items() if key.startswith(prefix)), None)
            if unused:
                report.skipped[key] = unused
            else:
                report.unexpected.append(key)


def _check_shapes(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], name: str) -> None:
    wrong = [f"{key}: checkpoint {tuple(state[key].shape)}, model {tuple(tensor.shape)}"
             for key, tensor in target.items() if key in state and state[key].shape != tensor.shape]
    if wrong:
        raise ValueError(f"{name} does not fit the model: {_listed(wrong)}. Build the model with the checkpoint's "
                         f"sizes (embed_dim, patch_size, mlp_ratio, in_chans, ...) or pick a checkpoint of this "
                         f"architecture")


def _listed(names: list[str], limit: int = 20) -> str:
    shown = "; ".join(names[:limit]) if names else "none"
    return f"{shown} (and {len(names) - limit} more)" if len(names) > limit else shown
