"""`predict` on a folder: each readable video predicted, the unreadable ones counted, and a failure, not an empty file,
when none can be read."""
from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import pytest

from lightning_video.cli import main

TINY = ["--data.num_workers", "0", "--data.batch_size", "4", "--data.num_frames", "4", "--data.sampling_rate", "2",
        "--data.crop_size", "16", "--data.train_min_short_side", "16", "--data.train_max_short_side", "20",
        "--data.test_crops", "1", "--data.class_names", "[left, right]", "--model.backbone.init_args.patch_size", "8",
        "--model.backbone.init_args.embed_dim", "16", "--model.backbone.init_args.depth", "1",
        "--model.backbone.init_args.num_heads", "2", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]


def predict(folder: Path, out: Path) -> None:
    main(["predict", *TINY, "--data.path", str(folder), "--predictions.output_dir", str(out),
          "--trainer.default_root_dir", str(out.parent)])


def test_some_unreadable_videos_are_counted(motion_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    folder = shutil.copytree(motion_root / "test/left", tmp_path / "videos")
    (folder / "broken.mp4").write_text("not a video")
    with caplog.at_level(logging.INFO), pytest.warns(UserWarning, match=r"broken\.mp4 \(the first: .*Invalid data"):
        predict(folder, tmp_path / "out")
    assert f"predictions for 2 of 3 videos (1 unreadable): {tmp_path / 'out/predictions.csv'}" in caplog.text
    assert len(list(csv.DictReader(open(tmp_path / "out/predictions.csv")))) == 2 * 2  # 2 videos, top 2 of 2 classes


def test_no_readable_video_is_an_error_not_an_empty_file(tmp_path: Path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).write_bytes(b"\x00" * 100)
    with pytest.raises(RuntimeError, match=rf"^none of the 2 videos to predict could be read, so no predictions were "
                                           rf"written; the first, {folder / 'a.mp4'}: .*Invalid data"):
        predict(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()
