"""Does a trained model's attention rollout land on the moving object? The share of it on the object, over
the synthetic `motion` task's videos, beside what a uniform map would put there.

    python -m experiments.rollout_on_motion --ckpt_path CKPT --data.path data/synthetic_motion/test

Each video's clip is the one `explain` draws (centre clip, centre crop). The object is bright on a dark, uniform
background, so it is found in the frames themselves: the pixels far from each frame's median colour. Each patch's
share is spread evenly over its pixels, so the share on the object is the sum of each patch's share times the fraction
of the patch the object covers; a uniform map puts on it the fraction of the clip's pixels the object covers.
"""
from __future__ import annotations

import sys

import numpy as np
import torch
from jsonargparse import ArgumentParser

from lightning_video import load_checkpoint
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.models.rollout import HeadFusion, rollout

OBJECT_CONTRAST = 0.25  # of the [0, 1] range, in some channel: the object's colour is bright, the background dark


def object_cover(frames: np.ndarray, patch: int) -> np.ndarray:
    """`[3, T, H, W]` frames in [0, 1] -> `[T, H / patch, W / patch]`: the fraction of each patch the object covers."""
    background = np.median(frames.reshape(*frames.shape[:2], -1), axis=2)[..., None, None]
    on_object = np.abs(frames - background).max(axis=0) > OBJECT_CONTRAST
    frames_number, height, width = on_object.shape
    return on_object.reshape(frames_number, height // patch, patch, width // patch, patch).mean(axis=(2, 4))


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="python -m experiments.rollout_on_motion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", type=str, required=True)
    parser.add_argument("--data.path", type=str, required=True, help="a folder of the motion task's videos")
    parser.add_argument("--head_fusion", type=HeadFusion, default="mean")
    parser.add_argument("--discard_ratio", type=float, default=0.0)
    args = parser.parse_args(argv)
    loaded = load_checkpoint(args.ckpt_path)
    settings, backbone = loaded.clip_settings, loaded.model.backbone
    data = VideoDataModule(**{**settings.data_arguments(), "test_clips": 1, "test_crops": 1}, path=args.data.path,
                           num_workers=0)
    data.setup("predict")
    dataset = data.datasets["predict"]
    mean, std = (torch.tensor(values).view(3, 1, 1, 1) for values in (settings.mean, settings.std))
    on_object, uniform = [], []
    for index in range(len(dataset)):
        video = dataset[index]["video"]
        heat = rollout(backbone, video.unsqueeze(0), args.head_fusion, args.discard_ratio).heat[0].numpy()
        cover = object_cover((video * std + mean).numpy(), backbone.patch_embed.proj.kernel_size[0])
        on_object.append((heat * cover).sum() / heat.sum())
        uniform.append(cover.mean())
    on_object, uniform = np.array(on_object), np.array(uniform)
    print(f"{len(dataset)} videos, rollout ({args.head_fusion}, discard_ratio {args.discard_ratio}): "
          f"{on_object.mean():.3f} of it on the object, a uniform map {uniform.mean():.3f} "
          f"({on_object.mean() / uniform.mean():.2f}x); more than uniform in {(on_object > uniform).mean():.1%} of the "
          f"videos")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
