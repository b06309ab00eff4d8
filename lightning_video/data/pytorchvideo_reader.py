"""`data.reader: pytorchvideo`: PyTorchVideo's own `LabeledVideoDataset` and clip samplers over the same videos, for a
user whose pipeline already stands on them, with the batches and metrics of the default reader downstream.

PyTorchVideo's dataset builders (`Kinetics`, `Ucf101`, `Hmdb51`, `Charades`, `SomethingSomethingV2`) each parse one
annotation format into the `(path, {"label": ...})` list a `LabeledVideoDataset` takes, and some only the format of
their own era (`Kinetics` reads `path label` lines; Charades and SSv2 want frame folders and frame lists). The
layout readers here already turn every published layout into that list, so we build the `LabeledVideoDataset` from
it directly: the same videos, labels and `video_index` order as the default reader, whatever the layout. The rest
is PyTorchVideo's: its decoder (PyAV, or decord), its clip samplers in seconds (`random` in training;
`constant_clips_per_video` with `test_clips` clips × `test_crops` augmentations at test, one clip and crop in
validation) and its video samplers (random or sequential, split across loader workers by its `MultiProcessSampler`).

What differs from the default reader, as PyTorchVideo behaves:
- Clips are T × R frames at 30 fps in seconds (`clip_seconds`), then `UniformTemporalSubsample(T)`: the frames of a
  30-fps video are the official loader's; at another rate the window covers other frames. Segment sampling (SSv2)
  takes the whole video and `UniformTemporalSubsample`, PyTorchVideo's SSv2 way (not TSN's random frame per
  segment). PyTorchVideo's first evaluation clip starts at the video's start, ours at its centre.
- Its datasets are iterable: the epoch order comes from its own generator, not the run's seed, and a fit resumes at
  an epoch's start, not mid-epoch. An unreadable video is skipped by PyTorchVideo; we count each (in `skipped`, as
  the default reader), but at test it leaves the video out rather than marking its views invalid.
- One process only: under DDP a rank whose videos fail would take fewer steps and the others would wait at the next
  collective (why the default reader is map-style); `VideoDataModule` refuses the combination.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch
from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler
from pytorchvideo.data.video import VideoPathHandler
from pytorchvideo.transforms import UniformTemporalSubsample

from lightning_video.data.layouts import Label
from lightning_video.data.transforms import Transform

FPS = 30  # the frame rate PyTorchVideo's Kinetics recipes assume when they turn frames into seconds
WHOLE_VIDEO_SECONDS = 10**6  # a clip longer than any video: segment sampling takes all of it


def clip_seconds(num_frames: int, sampling_rate: int, sampling: str) -> Fraction:
    """The clip's length in seconds, as PyTorchVideo's clip samplers take it (exact: a float end that falls on a frame
    can round past it and add a frame)."""
    return Fraction(WHOLE_VIDEO_SECONDS) if sampling == "segments" else Fraction(num_frames * sampling_rate, FPS)


class CountingPathHandler(VideoPathHandler):
    """PyTorchVideo's video opener, counting what `LabeledVideoDataset` skips without a word (it logs at debug level):
    videos that do not open and clips that do not decode."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def video_from_path(self, *args: Any, **kwargs: Any) -> Any:
        try:
            video = super().video_from_path(*args, **kwargs)
        except Exception:  # noqa: BLE001  (LabeledVideoDataset catches every exception here and skips the video)
            self.failures += 1
            raise
        get_clip = video.get_clip

        def counted_get_clip(start: float, end: float) -> dict | None:
            clip = get_clip(start, end)
            self.failures += clip is None or clip["video"] is None
            return clip

        video.get_clip = counted_get_clip
        return video


class ToOurSample:
    """Turns a `LabeledVideoDataset` sample into the default reader's: the clip's T frames as uint8 `[T, H, W, 3]`,
    `skipped` (videos skipped since the last sample) and `valid`, then the default reader's transform."""

    def __init__(self, num_frames: int, transform: Transform, handler: CountingPathHandler) -> None:
        self.subsample = UniformTemporalSubsample(num_frames)
        self.transform = transform
        self.handler = handler
        self.reported = 0

    def __call__(self, sample: dict) -> dict:
        frames = self.subsample(sample["video"])  # float [C, T, H, W] with integer values in [0, 255]
        skipped, self.reported = self.handler.failures - self.reported, self.handler.failures
        ours = {"video": frames.permute(1, 2, 3, 0).round().clamp(0, 255).to(torch.uint8), "label": sample["label"],
                "video_index": sample["video_index"], "clip_index": sample["clip_index"],
                "aug_index": sample["aug_index"], "skipped": skipped, "valid": True}
        return self.transform(ours)


def pytorchvideo_dataset(videos: list[tuple[str, Label]], num_frames: int, sampling_rate: int, sampling: str,
                         transform: Transform, train: bool, clips_per_video: int = 1, crops_per_video: int = 1,
                         decoder: str = "pyav") -> LabeledVideoDataset:
    """PyTorchVideo's dataset over `videos` (see the module docstring), with `videos` kept as an attribute as on
    `VideoClipDataset` (the predictions writer names files by it)."""
    seconds = clip_seconds(num_frames, sampling_rate, sampling)
    if train:
        clip_sampler, video_sampler = make_clip_sampler("random", seconds), torch.utils.data.RandomSampler
    else:
        clip_sampler = make_clip_sampler("constant_clips_per_video", seconds, clips_per_video, crops_per_video)
        video_sampler = torch.utils.data.SequentialSampler
    handler = CountingPathHandler()
    dataset = LabeledVideoDataset([(path, {"label": label}) for path, label in videos], clip_sampler, video_sampler,
                                  ToOurSample(num_frames, transform, handler), decode_audio=False, decoder=decoder)
    dataset.video_path_handler = handler
    dataset.videos = videos
    return dataset
