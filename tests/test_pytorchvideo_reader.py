"""`data.reader: pytorchvideo`: PyTorchVideo's `LabeledVideoDataset` over a layout's videos gives the default reader's
samples (same keys, dtypes, views and frames where both samplers agree), counts what it skips, and trains through
the CLI."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

import published_layouts
from lightning_video.cli import main
from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.pytorchvideo_reader import pytorchvideo_dataset
from lightning_video.data.synthetic import write_mp4


def as_is(sample: dict) -> dict:
    return sample


def grey_ramp_30fps(path: Path, frames: int = 16) -> Path:  # frame t: grey 16·t + 8, so at most 16
    write_mp4(path, published_layouts.grey_ramp(frames), fps=30)
    return path


def test_samples_have_the_default_readers_keys_types_and_frames(tmp_path: Path):
    videos = [(str(grey_ramp_30fps(tmp_path / f"video{index}.mp4")), index) for index in range(2)]
    theirs = list(pytorchvideo_dataset(videos, 4, 2, "clip", as_is, train=False, clips_per_video=2,
                                       crops_per_video=3))
    ours = VideoClipDataset(videos, 4, 2, as_is, train=False, clips_per_video=2, crops_per_video=3)
    assert len(theirs) == len(ours) == 12
    assert sorted((s["video_index"], s["clip_index"], s["aug_index"]) for s in theirs) == \
        sorted((s["video_index"], s["clip_index"], s["aug_index"]) for s in (ours[i] for i in range(12)))
    for sample in theirs:
        reference = ours[sample["video_index"] * 6]
        assert set(sample) == set(reference)
        assert sample["video"].dtype == torch.uint8 and sample["video"].shape == reference["video"].shape
        assert sample["label"] == reference["label"] and sample["skipped"] == 0 and sample["valid"]
    # both readers start the first evaluation clip at frame 0: 4 frames spread over 8 at 30 fps
    first = next(s for s in theirs if s["clip_index"] == 0)
    assert published_layouts.frame_numbers(first["video"]) == published_layouts.frame_numbers(ours[0]["video"]) \
        == [0, 2, 4, 7]


def test_unreadable_videos_are_skipped_and_counted(tmp_path: Path):
    videos = [(str(grey_ramp_30fps(tmp_path / f"video{index}.mp4")), 0) for index in range(3)]
    (tmp_path / "broken.mp4").write_text("not a video")
    videos.insert(1, (str(tmp_path / "broken.mp4"), 1))
    samples = list(pytorchvideo_dataset(videos, 4, 2, "clip", as_is, train=True))
    assert len(samples) == 3 and sum(sample["skipped"] for sample in samples) == 1
    assert {sample["video_index"] for sample in samples} == {0, 2, 3}


def test_segment_sampling_spreads_the_frames_over_the_whole_video(tmp_path: Path):
    videos = [(str(grey_ramp_30fps(tmp_path / "video.mp4")), 0)]
    sample = next(iter(pytorchvideo_dataset(videos, 4, 2, "segments", as_is, train=True)))
    assert published_layouts.frame_numbers(sample["video"]) == np.linspace(0, 15, 4).astype(int).tolist()


def test_fit_and_test_on_kinetics_folders_through_the_cli(tmp_path: Path):
    root = published_layouts.kinetics_folders(tmp_path / "kinetics")
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump({"data": {"reader": "pytorchvideo"}}))
    cli = main(["fit", "--config", str(Path(__file__).parents[1] / "experiments/configs/synthetic_motion.yaml"),
                "--config", str(config), "--data.root", str(root), "--data.dataset", "kinetics",
                "--data.synthetic", "null", "--data.num_workers", "0", "--data.batch_size", "2",
                "--data.num_frames", "4", "--data.sampling_rate", "2", "--data.crop_size", "16",
                "--data.train_min_short_side", "16", "--data.train_max_short_side", "20", "--data.test_crops", "3",
                "--model.backbone.init_args.patch_size", "8", "--model.backbone.init_args.embed_dim", "32",
                "--model.backbone.init_args.depth", "1", "--trainer.max_epochs", "2",
                "--trainer.log_every_n_steps", "1",
                "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(tmp_path),
                "--test_after_fit", "true"])
    assert cli.datamodule.reader == "pytorchvideo"
    assert 0 <= cli.trainer.callback_metrics["test/video_top1"] <= 1
    assert cli.trainer.callback_metrics["test/videos"] == 2  # the test split's two videos, each scored once
    with open(next(tmp_path.rglob("metrics.csv"))) as table:
        rows = list(csv.DictReader(table))
    losses = [float(row["train/loss"]) for row in rows if row.get("train/loss")]
    assert losses and all(math.isfinite(loss) for loss in losses)
    assert max(int(row["step"]) for row in rows) >= 3  # 4 training videos, batches of 2, 2 epochs: 4 steps


def test_unknown_reader_is_refused_with_the_valid_ones():
    from lightning_video.data.datamodule import VideoDataModule

    with pytest.raises(ValueError, match="unknown data.reader 'decord'; valid: ours, pytorchvideo"):
        VideoDataModule(reader="decord")


def test_several_processes_are_refused_naming_the_default_reader(tmp_path: Path):
    from lightning_video.data.datamodule import VideoDataModule

    data = VideoDataModule(root=str(published_layouts.kinetics_folders(tmp_path)), dataset="kinetics",
                           reader="pytorchvideo")
    data.trainer = SimpleNamespace(world_size=2, lightning_module=None)
    with pytest.raises(ValueError, match="data.reader=pytorchvideo runs in one process.*Use data.reader=ours"):
        data.setup("fit")
