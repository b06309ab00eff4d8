"""Clip transforms of the papers' recipes, built from PyTorchVideo pieces.

Clips arrive as uint8 `[T, H, W, 3]` (only the sampled frames are decoded) inside a sample dict and leave
as normalised float `[3, T, crop, crop]`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from pytorchvideo.transforms import ApplyTransformToKey, ConvertUint8ToFloat, Normalize, Permute, ShortSideScale, \
    UniformCropVideo, create_video_transform
from torchvision.transforms import AutoAugment, Compose, Lambda, RandomErasing

Sample = dict
Transform = Callable[[Sample], Sample]
# name → PyTorchVideo's `aug_type` (RandAugment and AugMix for video: one draw of the ops for all frames), or None
# for torchvision's ImageNet AutoAugment policy, which also draws once for the whole `[T, C, H, W]` clip.
AUGMENTS = {"randaugment": "randaug", "augmix": "augmix", "autoaugment": None}


def _channels_first(frames: torch.Tensor) -> torch.Tensor:
    return frames.permute(3, 0, 1, 2)


def train_transform(crop_size: int, min_short_side: int, max_short_side: int, horizontal_flip: bool,
                    mean: Sequence[float], std: Sequence[float], augment: str | None = None,
                    random_erasing: float = 0.0) -> Transform:
    """Short side random in [min, max], a random crop and (not for SSv2-like data) a flip: TimeSformer's recipe.

    X-ViT's adds an `augment` policy on the uint8 frames (a key of AUGMENTS; the paper uses AutoAugment) and, with
    probability `random_erasing`, erases one random box through all frames of the normalised clip. (Its scale
    jitter, 0.9–1.33× of a 256 short side, is `min_short_side` 230, `max_short_side` 340.)
    """
    if augment is not None and augment not in AUGMENTS:
        raise ValueError(f"unknown augment {augment!r}; valid: {', '.join(AUGMENTS)} (or none)")
    autoaugment = [ApplyTransformToKey("video", Compose([Permute((1, 0, 2, 3)), AutoAugment(),
                                                        Permute((1, 0, 2, 3))]))] if augment == "autoaugment" else []
    erasing = [ApplyTransformToKey("video", RandomErasing(p=random_erasing))] if random_erasing > 0 else []
    return Compose([
        ApplyTransformToKey("video", Lambda(_channels_first)),
        *autoaugment,
        create_video_transform("train", video_key="video", num_samples=None, video_mean=tuple(mean),
                               video_std=tuple(std), min_size=min_short_side, max_size=max_short_side,
                               crop_size=crop_size, horizontal_flip_prob=0.5 if horizontal_flip else 0.0,
                               aug_type=AUGMENTS.get(augment) or "default"),
        *erasing,
    ])


def evaluation_transform(crop_size: int, crops_per_video: int, mean: Sequence[float],
                         std: Sequence[float]) -> Transform:
    """TimeSformer testing: short side = crop, then the view's spatial crop (left/centre/right for 3 crops).

    The crop is chosen by the sample's `aug_index`; with one crop per video it is the centre crop.
    """
    if crops_per_video not in (1, 3):
        raise ValueError(f"crops_per_video={crops_per_video}: valid are 1 (centre) and 3 (left, centre, right)")
    centre_only = crops_per_video == 1
    return Compose([
        ApplyTransformToKey("video", Compose([
            Lambda(_channels_first), ConvertUint8ToFloat(), Normalize(tuple(mean), tuple(std)),
            ShortSideScale(crop_size)])),
        Lambda(lambda sample: {**sample, "aug_index": 1} if centre_only else sample),
        UniformCropVideo(crop_size),
    ])
