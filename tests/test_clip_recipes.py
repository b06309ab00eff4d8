"""The papers' frame sampling and X-ViT's training augmentation."""
from __future__ import annotations

import pytest
import torch
from pytorchvideo.data.ssv2 import SSv2
from pytorchvideo.transforms.functional import uniform_temporal_subsample

from lightning_video.data.sampling import clip_indices, dense_clip, segments
from lightning_video.data.transforms import AUGMENTS, train_transform


def test_clip_frames_are_the_official_loaders():
    # official `temporal_sampling`: linspace(start, start + T·R − 1, T), rounded down, clamped to the video
    assert clip_indices(1000, 8, 32, start=10).tolist() == [10 + 255 * k // 7 for k in range(8)]
    assert clip_indices(1000, 8, 32, start=10).tolist() == [10, 46, 82, 119, 155, 192, 228, 265]
    assert clip_indices(1000, 16, 1, start=3).tolist() == list(range(3, 19))
    assert clip_indices(50, 8, 32, start=0).tolist() == [0, 36, 49, 49, 49, 49, 49, 49]  # short: the last frame


@pytest.mark.parametrize(("frames", "rate"), [(8, 32), (16, 16), (8, 8), (96, 4), (4, 1)])
def test_clip_frames_match_pytorchvideos_subsample_of_the_window(frames: int, rate: int):
    window = torch.arange(40, 40 + frames * rate)  # the T·R frames of the clip's duration
    reference = uniform_temporal_subsample(window, frames, temporal_dim=0)
    assert clip_indices(1000, frames, rate, start=40).tolist() == reference.tolist()


def test_clip_windows_stay_in_the_video():
    evaluation = [dense_clip(300, 8, 32, k, 3, train=False) for k in range(3)]
    assert [clip[0] for clip in evaluation] == [0, 22, 44] and evaluation[-1][-1] == 299  # 300 − 256 = 44
    torch.manual_seed(0)
    starts = [dense_clip(300, 8, 32, 0, 1, train=True)[0] for _ in range(500)]
    assert min(starts) == 0 and max(starts) == 44


@pytest.mark.parametrize("video_frames", [1, 7, 12, 45, 100])
def test_segment_centres_match_pytorchvideos_ssv2_sampler(video_frames: int):
    reference = SSv2._sample_clip_frames(list(range(video_frames)), 8, rand_sample=False)
    assert segments(video_frames, 8, 32, clip_index=0, clips_per_video=1, train=False).tolist() == reference


def test_several_segment_clips_take_distinct_points_of_each_segment():
    clips = [segments(48, 4, 1, clip_index=k, clips_per_video=3, train=False).tolist() for k in range(3)]
    # segment bounds round(47 / 4 · i) = 0, 12, 24, 35, 47; clip k at (2k + 1) / 6 of each segment
    assert clips == [[2, 14, 25, 37], [6, 18, 29, 41], [10, 22, 33, 45]]


def test_training_segments_stay_in_their_segment():
    torch.manual_seed(0)
    drawn = torch.tensor([segments(45, 8, 1, 0, 1, train=True).tolist() for _ in range(200)])
    bounds = [round(44 / 8 * i) for i in range(9)]
    assert all(bounds[i] <= drawn[:, i].min() and drawn[:, i].max() <= bounds[i + 1] for i in range(8))


@pytest.mark.parametrize("augment", [*AUGMENTS, None])
def test_xvit_augmentation_keeps_the_clip_shape(augment: str | None):
    transform = train_transform(16, 18, 24, False, (0.5,) * 3, (0.5,) * 3, augment=augment, random_erasing=1.0)
    clip = torch.randint(0, 256, (4, 20, 30, 3), dtype=torch.uint8)
    video = transform({"video": clip})["video"]
    assert video.shape == (3, 4, 16, 16) and video.isfinite().all()
    erased = (video == 0).all(dim=0).all(dim=0)  # erasing writes 0 (the mean colour) through channels and frames
    assert erased.any()


def test_unknown_augment_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown augment 'autoaug'; valid: randaugment, augmix, autoaugment"):
        train_transform(16, 16, 16, False, (0.5,) * 3, (0.5,) * 3, augment="autoaug")
