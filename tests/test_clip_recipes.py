"""The papers' frame sampling and X-ViT's training augmentation."""
from __future__ import annotations

import pytest
import torch
from pytorchvideo.data.ssv2 import SSv2

from lightning_video.data.sampling import segments
from lightning_video.data.transforms import AUGMENTS, train_transform


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
