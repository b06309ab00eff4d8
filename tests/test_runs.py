"""Runs from the command line: every recipe knob in --print_config, resuming the last run,
wandb offline, prediction on a folder, and 2-process DDP giving the single-process metrics."""
from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from jsonargparse import Namespace
from pytorch_lightning.callbacks import RichProgressBar

from lightning_video.cli import main
from lightning_video.training.progress import ProgressLines, progress_bar
from lightning_video.training.runs import wandb_offline_unless_logged_in

REPO = Path(__file__).parents[1]
# A tiny model on tiny clips, on one CPU process.
TINY = ["--data.num_workers", "0", "--data.batch_size", "4", "--data.num_frames", "4", "--data.sampling_rate", "2",
        "--data.crop_size", "16", "--data.train_min_short_side", "16", "--data.train_max_short_side", "20",
        "--model.backbone.init_args.patch_size", "8", "--model.backbone.init_args.embed_dim", "32",
        "--model.backbone.init_args.depth", "1", "--model.backbone.init_args.num_heads", "2",
        "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.enable_progress_bar", "false"]


def tiny_fit(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["fit", *TINY, "--data.root", str(data), "--trainer.logger.init_args.save_dir", str(runs),
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2", "--trainer.max_epochs", "1",
            *extra]


def test_print_config_shows_every_recipe_knob_with_its_default(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["fit", "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    model, trainer = config["model"], config["trainer"]
    assert model["mixing"] == {"mixup_alpha": 0.0, "cutmix_alpha": 0.0, "prob": 1.0, "switch_prob": 0.5}
    assert (model["label_smoothing"], model["multi_label"], model["no_weight_decay"]) == (0.0, False, True)
    assert model["optimizer"]["class_path"] == "torch.optim.AdamW" and "lr_scheduler" in model
    assert config["global_batch"] == {"size": None}
    assert config["checkpoint"]["monitor"] == "val/clip_top1" and config["checkpoint"]["save_last"] is True
    assert config["last_checkpoint"] == {"every_n_train_steps": None, "train_time_interval": "0:30:00"}
    assert trainer["logger"]["class_path"] == "pytorch_lightning.loggers.CSVLogger"
    assert {"precision", "gradient_clip_val", "accumulate_grad_batches", "devices", "num_nodes", "strategy"} <= set(
        trainer)


def test_progress_is_rich_in_a_terminal_and_plain_lines_in_a_batch_job(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert isinstance(progress_bar(), RichProgressBar)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert isinstance(progress_bar(), ProgressLines)


class StateAtTrainStart(pl.Callback):
    """What a resumed run starts from."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        self.state = dict(step=trainer.global_step, epoch=trainer.current_epoch, lr=optimizer.param_groups[0]["lr"],
                          optimizer=copy.deepcopy(optimizer.state_dict()))


def test_fit_resumes_the_last_run_where_it_stopped(motion_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    recipe = ["--model.optimizer", "torch.optim.SGD", "--model.optimizer.lr", "0.1", "--model.optimizer.momentum",
              "0.9", "--model.lr_scheduler", "torch.optim.lr_scheduler.MultiStepLR",
              "--model.lr_scheduler.milestones", "[1]", "--trainer.log_every_n_steps", "1"]
    first = main(tiny_fit(motion_root, tmp_path, *recipe, "--trainer.enable_progress_bar", "true"))
    assert "epoch 0 batch 2/2: v_num 0, train/loss" in caplog.text  # not a terminal: plain progress lines
    stopped = dict(step=first.trainer.global_step, optimizer=first.trainer.optimizers[0].state_dict())

    second = main(tiny_fit(motion_root, tmp_path, *recipe, "--trainer.max_epochs", "2", "--ckpt_path", "last",
                           "--trainer.callbacks+=test_runs.StateAtTrainStart"))
    assert second.config.fit.ckpt_path == str(tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt")
    (start,) = [callback.state for callback in second.trainer.callbacks if isinstance(callback, StateAtTrainStart)]
    assert (start["step"], start["epoch"]) == (stopped["step"], 1)
    assert start["lr"] == pytest.approx(0.01)  # the scheduler stepped at the end of epoch 0
    for name, buffers in stopped["optimizer"]["state"].items():
        torch.testing.assert_close(start["optimizer"]["state"][name], buffers, rtol=0, atol=0)
    assert second.trainer.global_step == 2 * stopped["step"]
    steps = [int(row["step"]) for row in csv.DictReader(open(tmp_path / "lightning_logs/version_0/metrics.csv"))
             if row["train/loss"]]
    assert steps == list(range(2 * stopped["step"]))  # the run's own folder and metrics, counting on
    assert not (tmp_path / "lightning_logs/version_1").exists()


def test_wandb_offline_unless_logged_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for variable in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))

    def wandb_logger() -> Namespace:
        return Namespace(class_path="pytorch_lightning.loggers.WandbLogger",
                         init_args=Namespace(offline=False, log_model=False))

    anonymous = wandb_logger()
    wandb_offline_unless_logged_in([anonymous])
    assert anonymous.init_args.offline
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password 0123456789\n")
    logged_in = wandb_logger()
    wandb_offline_unless_logged_in(logged_in)
    assert not logged_in.init_args.offline


def test_wandb_run_is_written_offline_and_continued_on_resume(motion_root: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = ["--trainer.logger", "pytorch_lightning.loggers.WandbLogger", "--trainer.logger.init_args.save_dir",
              str(tmp_path), "--trainer.logger.init_args.project", "demo"]
    try:
        run_id = main(tiny_fit(motion_root, tmp_path, *logger)).trainer.logger.version
        wandb.finish()
        assert list(tmp_path.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
        run = tmp_path / "demo" / run_id
        assert (run / "config.yaml").is_file() and (run / "checkpoints/last.ckpt").is_file()
        resumed = main(tiny_fit(motion_root, tmp_path, *logger, "--trainer.max_epochs", "2", "--ckpt_path", "last"))
        assert resumed.trainer.logger.version == run_id and resumed.trainer.current_epoch == 2
    finally:
        wandb.finish()


def test_tensorboard_logger_writes_events(motion_root: Path, tmp_path: Path):
    main(tiny_fit(motion_root, tmp_path, "--trainer.logger", "pytorch_lightning.loggers.TensorBoardLogger",
                  "--trainer.logger.init_args.save_dir", str(tmp_path)))
    run = tmp_path / "lightning_logs/version_0"
    assert list(run.glob("events.out.tfevents.*")) and (run / "config.yaml").is_file()


@pytest.fixture(scope="module")
def trained(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last checkpoint of a tiny one-epoch run."""
    runs = tmp_path_factory.mktemp("runs")
    main(tiny_fit(motion_root, runs, "--trainer.log_every_n_steps", "1"))
    return runs / "lightning_logs/version_0/checkpoints/last.ckpt"


def test_fit_logs_cost_and_saves_config_and_label_names(trained: Path):
    header = (trained.parents[1] / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"model/params_M", "model/gflops_per_view", "perf/clips_per_s", "perf/peak_memory_GiB",
            "val/clip_top1", "val/clip_mean_class_accuracy"} <= set(header)
    assert "val/clip_top5" not in header  # 2 classes: a top-5 would be 1 by construction
    assert (trained.parents[1] / "config.yaml").is_file()
    checkpoint = torch.load(trained, weights_only=True)
    assert checkpoint["VideoDataModule"]["class_names"] == ["left", "right"]


def test_predict_on_a_folder_writes_each_videos_top_classes(trained: Path, motion_root: Path, tmp_path: Path):
    folder = tmp_path / "videos"
    shutil.copytree(motion_root / "test/left", folder / "left")
    (folder / "broken.mp4").write_text("not a video")
    out = tmp_path / "predictions"
    with pytest.warns(UserWarning, match="1 videos could not be read .*broken.mp4"):
        main(["predict", "--ckpt_path", str(trained), "--data.path", str(folder), "--data.num_workers", "0",
              "--predictions.output_dir", str(out), "--trainer.logger", "false", "--trainer.default_root_dir",
              str(tmp_path), "--trainer.enable_progress_bar", "false"])
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    videos = sorted(str(path) for path in (folder / "left").glob("*.mp4"))
    assert sorted({row["video"] for row in rows}) == videos and len(rows) == 2 * len(videos)  # top 5 of 2 classes
    results = json.loads((out / "predictions.json").read_text())
    for result in results:
        assert sorted(result["labels"]) == ["left", "right"]
        assert result["scores"] == sorted(result["scores"], reverse=True) and sum(result["scores"]) == pytest.approx(1)
        assert result["scores"] == sorted(result["scores"], reverse=True) and 0 < sum(result["scores"]) <= 1


def test_two_process_ddp_fit_and_test_match_one_process(motion_root: Path, tmp_path: Path):
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--data.test_clips", "2", "--test_after_fit", "true"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "lightning_video", *tiny_fit(motion_root, tmp_path, *ddp)], cwd=tmp_path,
                   env=env, check=True, timeout=300, capture_output=True)
    run = tmp_path / "lightning_logs/version_0"
    (tested,) = [row for row in csv.DictReader(open(run / "metrics.csv")) if row["test/video_top1"]]
    (best,) = [path for path in (run / "checkpoints").glob("*.ckpt") if path.name != "last.ckpt"]
    single = main(["test", "--ckpt_path", str(best), "--data.root", str(motion_root), "--data.num_workers", "0",
                   "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.enable_progress_bar", "false",
                   "--trainer.logger.init_args.save_dir", str(tmp_path / "single")])
    metrics = single.trainer.callback_metrics
    assert metrics["test/videos"] == float(tested["test/videos"]) == 4
    assert "test/video_top5" not in metrics and "test/video_top5" not in tested  # 2 classes
    for name in ("test/video_top1", "test/video_mean_class_accuracy"):
        assert metrics[name].item() == pytest.approx(float(tested[name]), abs=1e-6), name
