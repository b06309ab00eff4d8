"""Decode only the frames a clip needs, with PyAV.

A clip of `num_frames` at `sampling_rate` uses one frame in `sampling_rate`; decoding and converting every
frame of the window (what PyTorchVideo's time-based `get_clip` does) wastes most of the work. We seek to
the keyframe before the first needed frame, decode forward, and convert to RGB only the frames we keep.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch


class UnreadableVideo(RuntimeError):
    """A video file that cannot be opened or decoded (missing, truncated, not a video)."""

    def __init__(self, path: str | Path, reason: object) -> None:
        super().__init__(f"cannot read video {path}: {reason}")
        self.path = str(path)


class VideoReader:
    """An open video file: its frame count and rate, and random access to frames by index."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._container = av.open(self.path)
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError, UnicodeDecodeError) as error:
            raise UnreadableVideo(path, error) from error
        self._stream.thread_count = 1  # one decoder thread per data worker; workers give the parallelism
        self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 0)
        if self.fps <= 0:
            self.close()
            raise UnreadableVideo(path, "no frame rate in the video stream")
        self.num_frames = self._stream.frames or self._frames_from_duration()
        if self.num_frames <= 0:
            self.close()
            raise UnreadableVideo(path, "no frames")

    def _frames_from_duration(self) -> int:
        stream = self._stream
        if stream.duration is not None:
            return int(round(float(stream.duration * stream.time_base) * self.fps))
        if self._container.duration is not None:
            return int(round(self._container.duration / av.time_base * self.fps))
        return 0

    def _frame_index(self, frame: av.VideoFrame) -> int:
        start = self._stream.start_time or 0
        return int(round(float((frame.pts - start) * self._stream.time_base) * self.fps))

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` (ascending, repeats allowed) as uint8 `[T, H, W, 3]`."""
        wanted = set(int(i) for i in indices)
        first, last = min(wanted), max(wanted)
        found: dict[int, np.ndarray] = {}
        try:
            start = self._stream.start_time or 0
            self._container.seek(start + int(first / self.fps / self._stream.time_base), stream=self._stream,
                                 backward=True, any_frame=False)
            for frame in self._container.decode(self._stream):
                if frame.pts is None:
                    continue
                index = self._frame_index(frame)
                if index in wanted:
                    found[index] = frame.to_ndarray(format="rgb24")
                if index >= last:
                    break
        except (av.FFmpegError, OSError, ValueError) as error:
            raise UnreadableVideo(self.path, error) from error
        missing = wanted - found.keys()
        if missing:
            raise UnreadableVideo(self.path, f"frames {sorted(missing)[:5]} of {self.num_frames} could not be decoded")
        return torch.from_numpy(np.stack([found[int(i)] for i in indices]))

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clip_indices(num_video_frames: int, num_frames: int, sampling_rate: int, start: int) -> np.ndarray:
    """`num_frames` indices one every `sampling_rate` from `start`, clamped to the video (short videos repeat
    their last frame, as in the official TimeSformer loader)."""
    return np.clip(start + np.arange(num_frames) * sampling_rate, 0, num_video_frames - 1)
