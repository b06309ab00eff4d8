"""A map-style dataset over (video, view) pairs: the shape that makes DDP, resumption and skips robust.

PyTorchVideo's own datasets are iterable, so under DDP a rank whose videos fail takes fewer steps and the
others hang at the next collective. Here every index always yields a sample; Lightning's
DistributedSampler then gives each rank a disjoint, equal share.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.utils.data import Dataset

from lightning_video.data.decode import UnreadableVideo, open_video
from lightning_video.data.layouts import Label
from lightning_video.data.sampling import SAMPLINGS
from lightning_video.data.segments import frame_range
from lightning_video.data.transforms import Transform
from lightning_video.seeding import seeded


class VideoClipDataset(Dataset):
    """Item i is one view (temporal clip × spatial crop) of one video.

    Training (`train=True`): one view per video per epoch, a random clip start. An unreadable video is
    replaced by another random video and counted in the sample's `skipped` field, so the count survives
    worker processes and reaches the training module, which logs it per epoch.

    Evaluation: `clips_per_video` evenly spaced clips × `crops_per_video` crops per video. An unreadable
    video yields zero clips flagged `valid=False`, which the metrics leave out and count.

    Args:
        videos: (path, label) pairs; a path is a video file or a folder of frames, a label a class index or a
            multi-hot float tensor.
        num_frames: frames per clip.
        sampling_rate: take one frame in `sampling_rate` (frames × rate source frames per clip).
        sampling: which frames a clip takes: "clip" or "segments" (see `sampling`).
        transform: applied to the sample dict (its "video" is uint8 `[T, H, W, 3]`).
        train: random clips and replacement of unreadable videos, or fixed evaluation views.
        clips_per_video: evaluation clips per video.
        crops_per_video: evaluation crops per clip (recorded as `aug_index` for the transform).
        max_consecutive_failures: in training, give up with an error after this many unreadable videos in a row.
        cache_frames: keep each video's decoded frames after its first read and take later clips from them: for
            datasets small enough to hold decoded in memory (once per worker), such as the synthetic tasks, where
            decoding, mostly the colour conversion, is a third of a training step.
    """

    def __init__(self, videos: list[tuple[str, Label]], num_frames: int, sampling_rate: int, transform: Transform,
                 train: bool, clips_per_video: int = 1, crops_per_video: int = 1,
                 max_consecutive_failures: int = 10, sampling: str = "clip", cache_frames: bool = False) -> None:
        if not videos:
            raise ValueError("no videos given")
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}; valid: {', '.join(SAMPLINGS)}")
        self.sampling = sampling
        self.videos = videos
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.transform = transform
        self.train = train
        self.clips_per_video = 1 if train else clips_per_video
        self.crops_per_video = 1 if train else crops_per_video
        self.max_consecutive_failures = max_consecutive_failures
        self.cache_frames = cache_frames
        self._decoded: dict[int, torch.Tensor] = {}

    @property
    def views_per_video(self) -> int:
        return self.clips_per_video * self.crops_per_video

    def __len__(self) -> int:
        return len(self.videos) * self.views_per_video

    def _indices(self, path: str, num_video_frames: int, clip_index: int) -> list[int]:
        """The clip's frames, inside the segment where `path` is a `segments.VideoSegment`."""
        first, last = frame_range(path, num_video_frames)
        return [first + int(i) for i in SAMPLINGS[self.sampling](last - first + 1, self.num_frames,
                                                                  self.sampling_rate, clip_index,
                                                                  self.clips_per_video, self.train)]

    def _read(self, video_index: int, clip_index: int) -> torch.Tensor:
        path = self.videos[video_index][0]
        if not self.cache_frames:
            with open_video(path) as reader:
                return reader.read(self._indices(path, reader.num_frames, clip_index))
        if video_index not in self._decoded:
            with open_video(path) as reader:
                self._decoded[video_index] = reader.read(range(reader.num_frames))
        frames = self._decoded[video_index]
        return frames[self._indices(path, len(frames), clip_index)]

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        """`item` is an index, or (index, seed) from `sampler.TrainingSampler`: the random clip, the augmentation
        and any replacement of an unreadable video are then drawn from that seed, whichever process loads it."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        with seeded(seed) if seed is not None else nullcontext():
            return self._sample(index)

    def _sample(self, index: int) -> dict:
        video_index, view = divmod(index, self.views_per_video)
        clip_index, crop_index = divmod(view, self.crops_per_video)
        skipped, valid = 0, True
        while True:
            try:
                frames = self._read(video_index, clip_index)
                break
            except UnreadableVideo as error:
                skipped += 1
                if not self.train:
                    frames, valid = self._placeholder(), False
                    break
                if skipped >= self.max_consecutive_failures:
                    raise RuntimeError(f"{skipped} unreadable videos in a row, the last: {error}. Check the "
                                       f"dataset's files (are they videos PyAV can decode?)") from error
                video_index = int(torch.randint(len(self.videos), ()).item())
        sample = {"video": frames, "label": self.videos[video_index][1], "video_index": video_index,
                  "clip_index": clip_index, "aug_index": crop_index, "skipped": skipped, "valid": valid}
        return self.transform(sample)

    def _placeholder(self) -> torch.Tensor:
        """Black 1×1 frames: the evaluation transform scales them to the crop like any clip."""
        return torch.zeros(self.num_frames, 1, 1, 3, dtype=torch.uint8)
