"""Windows of long videos, each made into the clips a model takes, for feature extraction.

A window is a stretch of one video, `window` seconds long, a new one every `stride` seconds; the last one is moved
back to end with the video, so that none of it is left out (a video shorter than a window is one window, all of it).
Without a window length the whole video is one window. Each window is sampled as the model's evaluation views sample
a whole video (`sampling.SAMPLINGS`: `test_clips` clips, each cut into `test_crops` crops), so features of a window
are those the model's test protocol would compute for a video of that length.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from lightning_video.data.decode import UnreadableVideo, open_video
from lightning_video.data.layouts import Label
from lightning_video.data.sampling import SAMPLINGS
from lightning_video.data.transforms import Transform


class Window(NamedTuple):
    """Frames [first, first + length) of video `video_index`, the `index`-th window of that video."""

    video_index: int
    index: int
    first: int
    length: int
    fps: float

    @property
    def start(self) -> float:
        """Seconds from the video's start to the window's first frame."""
        return self.first / self.fps

    @property
    def end(self) -> float:
        """Seconds from the video's start to the end of the window's last frame."""
        return (self.first + self.length) / self.fps


def window_starts(num_frames: int, window_frames: int | None, stride_frames: int) -> list[int]:
    """The first frame of each window of `window_frames` frames, every `stride_frames`, the last one ending with the
    video; [0] for a video no longer than a window (or without windows)."""
    if window_frames is None or num_frames <= window_frames:
        return [0]
    last = num_frames - window_frames
    starts = list(range(0, last + 1, stride_frames))
    return starts if starts[-1] == last else [*starts, last]


def plan_windows(videos: list[tuple[str, Label]], video_indices: list[int], window: float | None,
                 stride: float | None, frame_folder_fps: float) -> tuple[list[Window], dict[int, str]]:
    """The windows of the videos at `video_indices` (seconds converted to frames at each video's own rate; frame
    folders, which have none, at `frame_folder_fps`), and the videos that could not be opened, with the reason."""
    windows, unreadable = [], {}
    for video_index in video_indices:
        try:
            with open_video(videos[video_index][0]) as reader:
                num_frames, fps = reader.num_frames, getattr(reader, "fps", frame_folder_fps)
        except UnreadableVideo as error:
            unreadable[video_index] = str(error)
            continue
        window_frames = None if window is None else max(1, round(window * fps))
        stride_frames = max(1, round((stride or window or 0) * fps))
        length = num_frames if window_frames is None else min(window_frames, num_frames)
        windows += [Window(video_index, index, first, length, fps)
                    for index, first in enumerate(window_starts(num_frames, window_frames, stride_frames))]
    return windows, unreadable


class WindowClips(Dataset):
    """Item i is one temporal clip of one window, in all its crops: `video` `[crops, C, T, crop, crop]`, decoded once.

    An unreadable video yields black clips and, in `unreadable`, the reason (else ""), so that whoever collects the
    items can leave its windows out and count it.

    Args:
        videos: (path, label) pairs; `Window.video_index` indexes them.
        windows: the windows to sample.
        num_frames: frames per clip.
        sampling_rate: one frame in `sampling_rate` ("clip" sampling).
        sampling: "clip" or "segments" (see `sampling`).
        clips_per_window: temporal clips per window.
        crops_per_clip: spatial crops per clip; `transform` picks crop `aug_index` of a clip.
        transform: the evaluation transform of a sample dict (its "video" is uint8 `[T, H, W, 3]`).
    """

    def __init__(self, videos: list[tuple[str, Label]], windows: list[Window], num_frames: int, sampling_rate: int,
                 sampling: str, clips_per_window: int, crops_per_clip: int, transform: Transform) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}; valid: {', '.join(SAMPLINGS)}")
        self.videos = videos
        self.windows = windows
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.sampling = sampling
        self.clips_per_window = clips_per_window
        self.crops_per_clip = crops_per_clip
        self.transform = transform

    def __len__(self) -> int:
        return len(self.windows) * self.clips_per_window

    def __getitem__(self, item: int) -> dict:
        window_position, clip_index = divmod(item, self.clips_per_window)
        window = self.windows[window_position]
        indices = SAMPLINGS[self.sampling](window.length, self.num_frames, self.sampling_rate, clip_index,
                                           self.clips_per_window, False)
        unreadable = ""
        try:
            with open_video(self.videos[window.video_index][0]) as reader:
                frames = reader.read([window.first + int(index) for index in indices])
        except UnreadableVideo as error:
            frames, unreadable = torch.zeros(self.num_frames, 1, 1, 3, dtype=torch.uint8), str(error)
        crops = [self.transform({"video": frames, "aug_index": crop})["video"] for crop in range(self.crops_per_clip)]
        return {"video": torch.stack(crops), "window": window_position, "clip_index": clip_index,
                "unreadable": unreadable}
