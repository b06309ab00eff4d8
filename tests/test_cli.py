"""The command line with the shipped configs: fit, test after fit, print_config, and config errors."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lightning_video.cli import main

CONFIG = str(Path(__file__).parents[1] / "experiments/configs/synthetic_motion.yaml")
SYNTHETIC_CONFIGS = sorted(str(path) for path in (Path(__file__).parents[1] / "experiments/configs").glob("synthetic_*"))
SMALL = ["--data.num_workers", "0", "--data.batch_size", "4", "--model.backbone.init_args.embed_dim", "32",
         "--model.backbone.init_args.depth", "1", "--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize("config", SYNTHETIC_CONFIGS, ids=lambda path: Path(path).stem)
def test_fit_fast_dev_run_from_the_shipped_config(config: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    data = tmp_path / "synthetic"
    with caplog.at_level(logging.INFO):
        main(["fit", "--config", config, *SMALL, "--data.root", str(data), "--data.synthetic.videos_per_class", "2",
              "--trainer.fast_dev_run", "2", "--test_after_fit", "true",
              "--trainer.default_root_dir", str(tmp_path)])  # fast_dev_run checkpoints land there, not in cwd
    assert (data / "train.csv").is_file()  # the synthetic task was generated into data.root
    assert "test video top-1:" in caplog.text


def test_fit_writes_logs_config_and_checkpoints(motion_root: Path, tmp_path: Path):
    main(["fit", "--config", CONFIG, *SMALL, "--data.root", str(motion_root), "--data.synthetic", "null",
          "--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "1",
          "--trainer.logger.init_args.save_dir", str(tmp_path)])
    run = tmp_path / "synthetic_motion/version_0"
    assert (run / "config.yaml").is_file() and (run / "checkpoints/last.ckpt").is_file()
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss" in header and "val/clip_top1" in header and "train/skipped_videos" in header


def test_print_config_shows_the_model_and_data_knobs(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["fit", "--config", CONFIG, "--print_config"])
    printed = capsys.readouterr().out
    assert "attention: divided" in printed and "sampling_rate: 1" in printed and "test_after_fit" in printed


def test_unknown_config_key_is_reported(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["fit", "--config", CONFIG, "--data.frames_per_clip", "8"])
    assert "frames_per_clip" in capsys.readouterr().err
