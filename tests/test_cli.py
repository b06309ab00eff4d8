"""The command line with the shipped configs: fit, test after fit, print_config, config errors, and the other
commands, listed in --help; the console command without third-party noise."""
from __future__ import annotations

import csv
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lightning_video.cli import main
from lightning_video.commands import EXTRA_COMMANDS
from lightning_video.flops import count
from lightning_video.models import VideoTransformer

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


def test_help_lists_every_command(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["--help"])
    printed = " ".join(capsys.readouterr().out.split())  # help lines are wrapped
    for name, (_, help_line) in {**EXTRA_COMMANDS, "fit": ("", "Runs the full optimization routine.")}.items():
        assert f"{name} {' '.join(help_line.split()[:3])}" in printed


def test_flops_reads_a_fit_configs_backbone_and_clip_size_and_takes_its_options_in_snake_case(
        capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exited:
        main(["flops", "--config", CONFIG, "--attention", "joint", "--depth", "1"])
    piece = yaml.safe_load((Path(CONFIG).parent / "pieces/backbone/synthetic_divided.yaml").read_text())["init_args"]
    data = yaml.safe_load(Path(CONFIG).read_text())["data"]
    expected = VideoTransformer(**{**piece, "attention": "joint", "depth": 1, "num_frames": data["num_frames"],
                                   "img_size": data["crop_size"]})
    gflops, params = count(expected)
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"joint 8x32: {gflops:.4g} GFLOPs/view, {params:.4g}M params\n"


def test_the_console_command_trains_quietly_logs_the_lr_and_times_the_run(tmp_path: Path):
    """The `lightning-video` entry point in its own process: no third-party deprecation noise or adverts, progress
    lines with the run's ETA, and the learning rate in metrics.csv without a callback in the config."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    with_progress = SMALL[:SMALL.index("--trainer.enable_progress_bar")]
    done = subprocess.run([sys.executable, "-m", "lightning_video", "fit", "--config", CONFIG, *with_progress,
                           "--data.root", str(tmp_path / "data"), "--data.synthetic.videos_per_class", "4",
                           "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1",
                           "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    for noise in ("torch.jit", "LeafSpec", "Tip:", "Warning"):
        assert noise not in output
    assert re.search(r"epoch 1 batch 2/2 \[\d+:\d\d:\d\d elapsed, [\d.e-]+ s/batch, run ETA 0:00:00\]", output)
    metrics = list(csv.DictReader(open(tmp_path / "runs/synthetic_motion/version_0/metrics.csv")))
    lrs = [float(row["lr-AdamW/pg1"]) for row in metrics if row.get("lr-AdamW/pg1")]  # pg2: no weight decay
    assert lrs == pytest.approx([0.1 * 0.0005, 0.0005])  # one warmup epoch from a tenth, per epoch
