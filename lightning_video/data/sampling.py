"""Which frames of a video a clip takes: the papers' two schemes, chosen by name (`VideoDataModule.sampling`).

- `clip` (TimeSformer, X-ViT on Kinetics): `num_frames` frames spread evenly over a window of
  `num_frames × sampling_rate` frames, as the official loader's `temporal_sampling` and PyTorchVideo's
  `UniformTemporalSubsample` do (spacing (T·R − 1) / (T − 1), 36.4 at 8×32, rounded down; exactly 1 at R = 1). The
  window starts at random in training and at evenly spaced starts at test. It is fixed in frames, so it covers more
  or less time with the video's frame rate, as in the official code.
- `segments` (TSN; the official TimeSformer and X-ViT code on SSv2): the whole video cut into `num_frames` equal
  segments, one random frame of each in training and each segment's centre at test. SSv2 videos are short and
  their label spans all of it, so every clip sees the whole action whatever its length.
"""
from __future__ import annotations

import numpy as np
import torch


def clip_indices(num_video_frames: int, num_frames: int, sampling_rate: int, start: int) -> np.ndarray:
    """The official loader's frames of the window from `start`: its float32 `linspace`, rounded down, clamped to the
    video (a short video repeats its last frame)."""
    window = torch.linspace(start, start + num_frames * sampling_rate - 1, num_frames)
    return window.clamp(0, num_video_frames - 1).long().numpy()


def dense_clip(num_video_frames: int, num_frames: int, sampling_rate: int, clip_index: int, clips_per_video: int,
               train: bool) -> np.ndarray:
    span = max(num_video_frames - num_frames * sampling_rate, 0)
    if train:
        start = int(torch.randint(span + 1, ()).item())
    elif clips_per_video == 1:
        start = span // 2
    else:
        start = round(span * clip_index / (clips_per_video - 1))
    return clip_indices(num_video_frames, num_frames, sampling_rate, start)


def segments(num_video_frames: int, num_frames: int, sampling_rate: int, clip_index: int, clips_per_video: int,
             train: bool) -> np.ndarray:
    """The official SSv2 loader's segment bounds (`sampling_rate` plays no part). With several test clips, clip k of
    K takes the point (2k + 1) / 2K of the way through each segment, so one clip is the centre."""
    bounds = np.round((num_video_frames - 1) / num_frames * np.arange(num_frames + 1)).astype(int)
    starts, widths = bounds[:-1], bounds[1:] - bounds[:-1]
    if train:
        return starts + (torch.rand(num_frames).numpy() * (widths + 1)).astype(int)
    return starts + widths * (2 * clip_index + 1) // (2 * clips_per_video)


SAMPLINGS = {"clip": dense_clip, "segments": segments}
