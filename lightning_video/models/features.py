"""Features of a clip for downstream work, read from a `VideoTransformer` without changing it.

Three kinds, all after the backbone's final `norm`:

- `cls`: the clip feature the head classifies (`VideoTransformer.forward_features`: the cls token, or for the
  frame-layout schemes the readout of the per-frame cls tokens, X-ViT's TA head included). `[B, D]`.
- `patch_mean`: the mean of the last block's patch tokens. `[B, D]`.
- `frames`: one feature per frame: the mean of that frame's patch tokens (one-sequence schemes) or the frame's own
  cls token (`space`, `xvit`, which give each frame one; `space`'s head, linear, then scores each frame as the clip
  is scored). `[B, T, D]`.

The last block normally computes only the cls token(s) (`VideoTransformer.cls_only_last_block`); the patch kinds
need all its tokens, so it computes them while they are read.
"""
from __future__ import annotations

from typing import Literal, get_args

import torch

from lightning_video.models.video_transformer import VideoTransformer

FeatureKind = Literal["cls", "patch_mean", "frames"]
FEATURE_KINDS: tuple[str, ...] = get_args(FeatureKind)


def clip_features(model: VideoTransformer, video: torch.Tensor, kind: FeatureKind) -> torch.Tensor:
    """The `kind` features (see the module docstring) of each clip of `video` `[B, C, T, H, W]`."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; valid: {', '.join(FEATURE_KINDS)}")
    if kind == "cls":
        return model.forward_features(video)
    tokens = _last_block_tokens(model, video)
    frames = model.grid.frames
    if model.scheme.layout == "frame":  # [B * T, 1 + S, D]: each frame its own sequence, cls first
        per_frame = tokens.unflatten(0, (-1, frames))
        frame_cls, patches = model.norm(per_frame[:, :, 0]), model.norm(per_frame[:, :, 1:])
        return frame_cls if kind == "frames" else patches.mean(dim=(1, 2))
    # [B, 1 + S * T, D]: one sequence, patches space-major, time-minor
    patches = model.norm(tokens[:, 1:]).unflatten(1, (-1, frames))  # [B, S, T, D]
    return patches.mean(dim=1) if kind == "frames" else patches.mean(dim=(1, 2))


def _last_block_tokens(model: VideoTransformer, video: torch.Tensor) -> torch.Tensor:
    """Every token of the last block's output, captured while the backbone runs as usual but with all its tokens."""
    captured: list[torch.Tensor] = []
    hook = model.blocks[-1].register_forward_hook(lambda module, args, output: captured.append(output))
    saved, model.cls_only_last_block = model.cls_only_last_block, False
    try:
        model.forward_features(video)
    finally:
        model.cls_only_last_block = saved
        hook.remove()
    return captured[0]
