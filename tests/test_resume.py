"""Crash safety of `fit`: `last.ckpt` follows training whatever the best checkpoint monitors, and a run killed with
SIGKILL anywhere and resumed with `fit --ckpt_path last` ends with exactly the weights of the run never killed, with
and without loader workers, in the run's own folder."""
from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lightning_video.data.sampler import TrainingSampler

REPO = Path(__file__).parents[1]
STEPS_PER_EPOCH, EPOCHS = 4, 3  # 8 training videos in batches of 2
# A tiny fit whose best checkpoint never improves after epoch 0 (`epoch`, minimised, is logged for every checkpoint).
TINY = ["fit", "--data.num_workers", "0", "--data.batch_size", "2", "--data.num_frames", "4", "--data.sampling_rate",
        "2", "--data.crop_size", "16", "--data.train_min_short_side", "16", "--data.train_max_short_side", "24",
        "--model.backbone.init_args.patch_size", "8", "--model.backbone.init_args.embed_dim", "16",
        "--model.backbone.init_args.depth", "1", "--model.backbone.init_args.num_heads", "2",
        "--model.backbone.init_args.drop_path_rate", "0.1", "--model.mixing.mixup_alpha", "0.4",
        "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.max_epochs", str(EPOCHS), "--trainer.log_every_n_steps", "1", "--seed_everything", "3",
        "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min"]


class KillAt(pl.Callback):
    """SIGKILLs its own process as the batch after `step` optimizer steps starts: nothing is saved on the way out."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: dict,
                             batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KillDuringSave(pl.Callback):
    """SIGKILLs its own process halfway through writing the checkpoint of optimizer step `step` to disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if trainer.global_step != self.step:
            return
        write = torch.save

        def half_then_killed(contents: object, file: io.BufferedWriter) -> None:
            buffer = io.BytesIO()
            write(contents, buffer)
            file.write(buffer.getvalue()[:buffer.tell() // 2])
            file.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        torch.save = half_then_killed


def fit(data: Path, runs: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -m lightning_video fit` of the tiny run in its own process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "lightning_video", *TINY, "--data.root", str(data),
                           "--trainer.logger.init_args.save_dir", str(runs), *extra],
                          cwd=runs.parent, env=env, capture_output=True, text=True, timeout=300)


def killed_at(data: Path, runs: Path, step: int, *extra: str, killer: str = "KillAt") -> int:
    """Run until SIGKILLed at `step` (by the callback `killer`); the step of the `last.ckpt` it leaves."""
    result = fit(data, runs, *extra, f"--trainer.callbacks+=test_resume.{killer}", "--trainer.callbacks.step",
                 str(step))
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    return torch.load(last_checkpoint(runs), weights_only=True)["global_step"]


def last_checkpoint(runs: Path) -> Path:
    return runs / "lightning_logs/version_0/checkpoints/last.ckpt"


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_sampler_started_mid_epoch_yields_the_rest_of_that_epoch_with_the_same_seeds():
    uninterrupted = TrainingSampler(range(10), batch_size=2, seed=5, num_replicas=2, rank=1)
    uninterrupted.set_epoch(3)
    epoch = list(uninterrupted)
    resumed = TrainingSampler(range(10), batch_size=2, seed=5, num_replicas=2, rank=1, start=(3, 1))
    assert list(resumed) == epoch[2:] and len(resumed) == len(epoch) == 5  # Lightning counts the skipped batch
    uninterrupted.set_epoch(4)
    resumed.set_epoch(4)
    assert list(resumed) == list(uninterrupted) != epoch
    assert len({seed for _, seed in epoch}) == len(epoch)


@pytest.fixture(scope="module")
def uninterrupted(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run never killed (in a process of its own: the number of threads changes the sums' rounding)."""
    runs = tmp_path_factory.mktemp("uninterrupted") / "runs"
    assert fit(motion_root, runs).returncode == 0
    return runs


def test_last_checkpoint_is_the_final_step_when_validation_stops_improving(uninterrupted: Path):
    checkpoints = last_checkpoint(uninterrupted).parent
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch=0-step=4.ckpt", "last.ckpt"]


@pytest.mark.parametrize("workers, interval, kills", [(0, 2, (3, 7)), (2, 3, (5,))], ids=["0_workers", "2_workers"])
def test_killed_and_resumed_run_ends_with_the_uninterrupted_weights(workers: int, interval: int, kills: tuple,
                                                                     motion_root: Path, uninterrupted: Path,
                                                                     tmp_path: Path):
    """Killed early and mid-epoch (0 workers; the second kill in the resumed run), or at an epoch's start (2 workers,
    whose first indices are taken before Lightning sets the resumed epoch); each time the work lost is at most the
    interval. The resumed parts continue the run's folder, its metrics and its best-checkpoint tracking."""
    runs = tmp_path / "runs"
    settings = ["--data.num_workers", str(workers), "--last_checkpoint.every_n_train_steps", str(interval)]
    for number, step in enumerate(kills):
        saved = killed_at(motion_root, runs, step, *settings, *(["--ckpt_path", "last"] if number else []))
        assert step - interval <= saved <= step
    result = fit(motion_root, runs, *settings, "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dirpath has changed" not in result.stderr

    final, reference = weights(last_checkpoint(runs)), weights(last_checkpoint(uninterrupted))
    assert max((final[name] - reference[name]).abs().max().item() for name in reference) == 0
    assert [path.name for path in (runs / "lightning_logs").iterdir()] == ["version_0"]
    checkpoint = torch.load(last_checkpoint(runs), weights_only=True)
    (best,) = [state for key, state in checkpoint["callbacks"].items() if key.startswith("ModelCheckpoint")]
    assert Path(best["best_model_path"]).name == "epoch=0-step=4.ckpt" and best["best_model_score"] == 0
    steps = [int(row["step"]) for row in csv.DictReader(open(runs / "lightning_logs/version_0/metrics.csv"))
             if row["train/loss"]]
    assert steps == list(range(STEPS_PER_EPOCH * EPOCHS))  # each step logged once, none lost


def test_a_run_killed_while_saving_resumes_from_the_checkpoint_before(motion_root: Path, uninterrupted: Path,
                                                                       tmp_path: Path):
    """Killed halfway through writing `last.ckpt` at step 6: the step-4 file is still whole and the run resumes
    from it to the uninterrupted weights; no partial file is left under a checkpoint's name."""
    runs = tmp_path / "runs"
    every_2_steps = ["--last_checkpoint.every_n_train_steps", "2"]
    assert killed_at(motion_root, runs, 6, *every_2_steps, killer="KillDuringSave") == 4
    assert sorted(path.name for path in last_checkpoint(runs).parent.glob("*.ckpt")) == ["epoch=0-step=4.ckpt",
                                                                                          "last.ckpt"]
    result = fit(motion_root, runs, *every_2_steps, "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    final, reference = weights(last_checkpoint(runs)), weights(last_checkpoint(uninterrupted))
    assert max((final[name] - reference[name]).abs().max().item() for name in reference) == 0
