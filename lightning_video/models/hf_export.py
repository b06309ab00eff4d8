"""The HF transformers Timesformer format: its tensor names (one table, read both ways), `to_hf` and `export_hf`.

`load_pretrained` reads HF checkpoints through `from_hf_name`; `to_hf` builds the HF model with the same weights
(the benchmark's reference), and `export_hf` writes it as a directory that
`TimesformerForVideoClassification.from_pretrained` loads, for the three schemes HF implements.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lightning_video.models.video_transformer import VideoTransformer

if TYPE_CHECKING:
    from transformers import TimesformerForVideoClassification

# Our module (or parameter) names -> HF's; `#` stands for the block index.
OURS_TO_HF = {
    "cls_token": "timesformer.embeddings.cls_token",
    "pos_embed": "timesformer.embeddings.position_embeddings",
    "time_embed": "timesformer.embeddings.time_embeddings",
    "patch_embed.proj": "timesformer.embeddings.patch_embeddings.projection",
    "blocks.#.norm1": "timesformer.encoder.layer.#.layernorm_before",
    "blocks.#.attn.qkv": "timesformer.encoder.layer.#.attention.attention.qkv",
    "blocks.#.attn.proj": "timesformer.encoder.layer.#.attention.output.dense",
    "blocks.#.temporal_norm1": "timesformer.encoder.layer.#.temporal_layernorm",
    "blocks.#.temporal_attn.qkv": "timesformer.encoder.layer.#.temporal_attention.attention.qkv",
    "blocks.#.temporal_attn.proj": "timesformer.encoder.layer.#.temporal_attention.output.dense",
    "blocks.#.temporal_fc": "timesformer.encoder.layer.#.temporal_dense",
    "blocks.#.norm2": "timesformer.encoder.layer.#.layernorm_after",
    "blocks.#.mlp.fc1": "timesformer.encoder.layer.#.intermediate.dense",
    "blocks.#.mlp.fc2": "timesformer.encoder.layer.#.output.dense",
    "norm": "timesformer.layernorm",
    "head": "classifier",
}
HF_TO_OURS = {hf: ours for ours, hf in OURS_TO_HF.items()}
HF_ATTENTION = {"space": "space_only", "joint": "joint_space_time", "divided": "divided_space_time"}
_BLOCK_INDEX = re.compile(r"(?<=^blocks\.)\d+(?=\.)|(?<=^timesformer\.encoder\.layer\.)\d+(?=\.)")


def _rename(name: str, table: dict[str, str]) -> str | None:
    """`name` through `table`, matched whole (`cls_token`) or as module + parameter (`norm` + `.weight`)."""
    index = _BLOCK_INDEX.search(name)
    generic = _BLOCK_INDEX.sub("#", name, count=1)
    module, _, parameter = generic.rpartition(".")
    if generic in table:
        renamed = table[generic]
    elif module in table:
        renamed = f"{table[module]}.{parameter}"
    else:
        return None
    return renamed.replace("#", index[0]) if index else renamed


def to_hf_name(name: str) -> str | None:
    """HF Timesformer's name for one of our tensors, None if HF has no such tensor."""
    return _rename(name, OURS_TO_HF)


def from_hf_name(name: str) -> str | None:
    """Our name for an HF Timesformer tensor, None if we have no such tensor."""
    return _rename(name, HF_TO_OURS)


def to_hf(model: VideoTransformer, id2label: dict[int, str] | None = None) -> TimesformerForVideoClassification:
    """`model` as an HF `TimesformerForVideoClassification` in memory, with the same weights (a copy).

    A model without a positional or temporal embedding (`pos_embed="none"` or `"space"`) gets zeros there, which
    computes the same. HF's `space_only` returns one prediction per frame (it does not average the frames as the
    official code and this project do), so a space model matches HF frame by frame. Training-only settings
    (dropout, stochastic depth) are left at HF's defaults: HF's config cannot even hold a fractional
    `drop_path_rate` (it is typed int).

    Args:
        model: a `space`, `joint` or `divided` VideoTransformer.
        id2label: class names by index, one per output of the head; None gives HF's `LABEL_i` names.
    """
    from transformers import TimesformerConfig, TimesformerForVideoClassification  # slow to import: only here

    if model.attention not in HF_ATTENTION:
        raise ValueError(f"HF Timesformer has no {model.attention!r} attention; export_hf supports "
                         f"{', '.join(HF_ATTENTION)}")
    num_classes = model.head.out_features
    if id2label is not None and sorted(id2label) != list(range(num_classes)):
        raise ValueError(f"id2label needs one name for each class index 0..{num_classes - 1} of the head; "
                         f"got indices {sorted(id2label)}")
    block = model.blocks[0]
    config = TimesformerConfig(
        image_size=model.img_size, patch_size=model.patch_embed.proj.kernel_size[0],
        num_channels=model.patch_embed.proj.in_channels, num_frames=model.num_frames,
        hidden_size=model.head.in_features, num_hidden_layers=len(model.blocks),
        num_attention_heads=block.attn.num_heads, intermediate_size=block.mlp.fc1.out_features,
        layer_norm_eps=block.norm1.eps, qkv_bias=block.attn.qkv.bias is not None,
        attention_type=HF_ATTENTION[model.attention], num_labels=num_classes, id2label=id2label)
    reference = TimesformerForVideoClassification(config)
    state = {to_hf_name(name): tensor for name, tensor in model.state_dict().items()}
    expected = reference.state_dict()
    for embedding in ("pos_embed", "time_embed"):
        name = to_hf_name(embedding)
        if getattr(model, embedding) is None and name in expected:
            state[name] = torch.zeros_like(expected[name])
    reference.load_state_dict(state, strict=True)
    return reference


def export_hf(model: VideoTransformer, directory: str | Path, id2label: dict[int, str] | None = None) -> Path:
    """Write `model` as an HF `TimesformerForVideoClassification` directory (config.json + model.safetensors) that
    `from_pretrained` loads; see `to_hf` for what carries over.

    Args:
        model: a `space`, `joint` or `divided` VideoTransformer.
        directory: where to write; created if needed.
        id2label: class names by index, one per output of the head; None writes HF's `LABEL_i` names.
    """
    directory = Path(directory)
    to_hf(model, id2label).save_pretrained(directory)
    return directory
