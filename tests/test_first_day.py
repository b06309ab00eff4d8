"""What a new user meets on the first day: training length set once (the lr schedule follows the trainer), loud
failures instead of meaningless numbers, and outputs where people look."""
from __future__ import annotations

import io
import json
import logging
import math
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml

import published_layouts
from hub_cache import cache_timm_vit, offline_cache
from lightning_video.cli import main
from lightning_video.training.module import VideoClassifier
from lightning_video.training.progress import ProgressLines
from lightning_video.training.schedules import WarmupCosineLR
from tests.test_runs import tiny_fit
from tests.test_training import loader, tiny_backbone, trainer


def old_schedule(epoch: int, max_epochs: int, warmup: int, start: float, min_factor: float = 0.0) -> float:
    """The per-epoch factor the recorded runs were trained with (the schedule before it read the trainer)."""
    if epoch < warmup:
        return start + (1 - start) * epoch / warmup
    progress = min((epoch - warmup) / (max_epochs - warmup), 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def lrs(scheduler: WarmupCosineLR, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return seen


# the shipped recipes: synthetic_motion, xvit_k400, xvit_ssv2, synthetic_image_pretrain
@pytest.mark.parametrize("epochs, warmup, start", [(40, 1, 0.1), (30, 5, 0.333), (35, 5, 0.1), (10, 1, 0.1)])
def test_spanning_the_trainers_epochs_gives_the_recorded_lr_of_every_epoch(epochs: int, warmup: int, start: float):
    scheduler = WarmupCosineLR(optimizer(), warmup_epochs=warmup, warmup_start_factor=start)
    scheduler.span(epochs)
    assert lrs(scheduler, epochs) == pytest.approx([old_schedule(e, epochs, warmup, start) for e in range(epochs)],
                                                   abs=1e-12)


def test_per_step_schedule_meets_the_per_epoch_one_at_every_epoch_boundary():
    epochs, warmup, start, steps_per_epoch = 30, 5, 0.333, 7
    scheduler = WarmupCosineLR(optimizer(), warmup_steps=warmup * steps_per_epoch, warmup_start_factor=start)
    scheduler.span(epochs * steps_per_epoch, steps_per_epoch)
    per_step = lrs(scheduler, epochs * steps_per_epoch)
    assert per_step[::steps_per_epoch] == pytest.approx([old_schedule(e, epochs, warmup, start)
                                                         for e in range(epochs)], abs=1e-12)
    assert per_step[1] > per_step[0]  # warms up within the first epoch


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_warmup_longer_than_training_is_clamped_with_a_warning(epochs: int):
    scheduler = WarmupCosineLR(optimizer(), warmup_epochs=5)
    with pytest.warns(UserWarning, match=f"clamped to {epochs - 1}"):
        scheduler.span(epochs)
    seen = lrs(scheduler, epochs)
    assert seen == pytest.approx([old_schedule(e, epochs, epochs - 1, 0.1) for e in range(epochs)], abs=1e-12)
    assert max(seen) == pytest.approx(1.0) or epochs == 1 and seen == [1.0]


def fit_lrs(**trainer_settings) -> list[float]:
    """The lr of each optimizer step of a tiny fit with the X-ViT schedule (warmup 5 epochs, start 0.1)."""
    model = VideoClassifier(tiny_backbone(), optimizer=lambda params: torch.optim.SGD(params, lr=1.0),
                            lr_scheduler=lambda opt: WarmupCosineLR(opt, warmup_epochs=5))
    seen = []
    model.on_train_batch_start = lambda batch, index: seen.append(model.optimizers().param_groups[0]["lr"])
    trainer(**trainer_settings).fit(model, loader(8))  # 4 batches per epoch
    return seen


def test_the_fit_takes_its_schedule_length_from_max_epochs():
    seen = fit_lrs(max_epochs=3)  # warmup clamped to 2 epochs; stepped per epoch
    assert seen == pytest.approx([old_schedule(e, 3, 2, 0.1) for e in range(3) for _ in range(4)], abs=1e-12)


def test_the_fit_takes_its_schedule_length_from_max_steps():
    seen = fit_lrs(max_epochs=-1, max_steps=10)  # 10 steps, warmup clamped to 9 steps
    assert seen == pytest.approx([old_schedule(step, 10, 9, 0.1) for step in range(10)], abs=1e-12)

EVALUATE = ["--data.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]


# Loud failures instead of meaningless numbers.

def test_too_few_training_videos_for_one_batch_is_an_error_naming_batch_size_videos_and_drop_last(
        motion_root: Path, tmp_path: Path):
    with pytest.raises(ValueError, match=r"8 videos.*data\.batch_size=16.*drop_last=True.*at most 8"):
        main(tiny_fit(motion_root, tmp_path, "--data.batch_size", "16", "--test_after_fit", "true"))


@pytest.fixture(scope="module")
def limited_run(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny fit on 2 batches, tested after fit: its checkpoint and what it logged."""
    runs = tmp_path_factory.mktemp("runs")
    with _captured_info() as text:
        main(tiny_fit(motion_root, runs, "--test_after_fit", "true", "--trainer.limit_test_batches", "1"))
    return runs / "lightning_logs/version_0/checkpoints/last.ckpt", text.getvalue()


def test_test_after_fit_on_limited_batches_says_the_number_is_not_a_result(limited_run: tuple[Path, str]):
    text = limited_run[1]
    assert "test video top-1:" in text
    assert ("not a result: trained and tested on limited batches (trainer.limit_train_batches=2, "
            "trainer.limit_val_batches=2, trainer.limit_test_batches=1)") in text


def test_model_summary_has_no_flops_of_its_own_under_ours(limited_run: tuple[Path, str]):
    text = limited_run[1]
    assert "model/gflops_per_view" in text and "Trainable params" in text
    assert "Flops" not in text and "FLOPs" not in text


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_a_missing_ckpt_path_is_named_with_the_checkpoints_beside_it(subcommand: str, limited_run: tuple[Path, str]):
    mistyped = limited_run[0].with_name("lats.ckpt")
    with pytest.raises(FileNotFoundError, match=rf"--ckpt_path {mistyped}: no such file; checkpoints in .*last\.ckpt"):
        main([subcommand, "--ckpt_path", str(mistyped)])


@contextmanager
def _captured_info() -> Iterator[io.StringIO]:
    """Everything logged at INFO by Lightning and by this project's rank-zero messages."""
    text, handler = io.StringIO(), logging.StreamHandler()
    handler.stream = text
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning_video", "lightning.pytorch")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield text
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


# Outputs where people look.

def test_test_writes_beside_the_checkpoints_run_with_its_data_root_and_says_where(limited_run: tuple[Path, str]):
    checkpoint = limited_run[0]
    with _captured_info() as text:
        cli = main(["test", "--ckpt_path", str(checkpoint), *EVALUATE])  # no data.root: the checkpoint's
    metrics = checkpoint.parents[1] / "test/version_0/metrics.csv"
    assert f"test metrics: {metrics}" in text.getvalue()
    assert "test/video_top1" in metrics.read_text().splitlines()[0]
    assert cli.trainer.callback_metrics["test/videos"] == 4  # the motion task's test split


def test_predict_writes_to_a_stated_out_folder(limited_run: tuple[Path, str], motion_root: Path, tmp_path: Path):
    out = tmp_path / "mine"
    with _captured_info() as text:
        main(["predict", "--ckpt_path", str(limited_run[0]), "--data.path", str(motion_root / "test"), "--out",
              str(out), *EVALUATE])
    assert f"{out / 'predictions.csv'}" in text.getvalue()
    assert len((out / "predictions.csv").read_text().splitlines()) == 1 + 4 * 2  # 4 videos × top-2 of 2 classes


def test_predict_writes_beside_the_checkpoints_run(limited_run: tuple[Path, str], motion_root: Path):
    main(["predict", "--ckpt_path", str(limited_run[0]), "--data.path", str(motion_root / "test"), *EVALUATE])
    assert (limited_run[0].parents[1] / "predict/version_0/predictions.json").is_file()


# The README's own-videos section, run as written on tiny videos, with a tiny model and its weights by the recipe's name
# from an offline Hub cache (tests/hub_cache.py).

README = Path(__file__).parents[1] / "README.md"
MY_VIDEOS = Path(__file__).parents[1] / "experiments/configs/my_videos.yaml"
RECIPE_WEIGHTS = yaml.safe_load(MY_VIDEOS.read_text())["model"]["pretrained"]
TINY_DATA = ["--data.num_workers", "0", "--data.num_frames", "4", "--data.sampling_rate", "2", "--data.crop_size", "16",
             "--data.train_min_short_side", "16", "--data.train_max_short_side", "20"]
TINY_VIT = dict(img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=0)
TINY_MODEL = [f"--model.backbone.init_args.{key}={TINY_VIT[key]}" for key in ("patch_size", "embed_dim", "depth",
                                                                              "num_heads")]


def readme_own_videos_commands() -> list[list[str]]:
    """The commands of the README's "Use your own videos" section, without the program name."""
    section = README.read_text().split("\n## Use your own videos\n")[1].split("\n## ")[0]
    block = section.split("```bash\n")[1].split("```")[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.strip()]


def write_own_videos(root: Path, train: int, val: int, test: int) -> None:
    """The csv layout the README describes: `path label` lines, two classes, and classes.txt."""
    root.mkdir(parents=True)
    (root / "classes.txt").write_text("waving\nclapping\n")
    for split, count in (("train", train), ("val", val), ("test", test)):
        lines = [f"videos/{split}_{index}.mp4 {index % 2}\n" for index in range(count)]
        (root / f"{split}.csv").write_text("".join(lines))
        for index in range(count):
            published_layouts.write_video(root / f"videos/{split}_{index}.mp4")


@pytest.fixture
def in_a_users_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding the repository's experiments/, with the recipe's weights in an offline Hub cache."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").symlink_to(MY_VIDEOS.parents[1], target_is_directory=True)
    cache_timm_vit(offline_cache(tmp_path / "hf_home", monkeypatch), RECIPE_WEIGHTS, tmp_path / "vit", **TINY_VIT)
    return tmp_path


def test_the_readmes_own_videos_commands_check_and_train_on_40_videos(in_a_users_folder: Path):
    write_own_videos(in_a_users_folder / "my_data", train=24, val=8, test=8)
    check, fit = readme_own_videos_commands()
    assert check[0] == "check-data" and fit[0] == "fit"
    with pytest.raises(SystemExit) as checked:
        main([*check, "--data.num_workers", "0"])
    audit = json.loads(Path("runs/check-data/my_data_csv.json").read_text())
    assert checked.value.code == 0 and audit["videos"] == 40 and audit["unreadable"] == []
    with _captured_info() as text:
        main([*fit, *TINY_DATA, *TINY_MODEL, "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"])
    run = in_a_users_folder / "runs/my_data/version_0"  # named after the data folder
    assert (run / "checkpoints/last.ckpt").is_file()
    assert f"{RECIPE_WEIGHTS} (timm / TimeSformer names): " in text.getvalue()  # the load report
    assert re.search(r"test video top-1: \d\.\d{3} over 8 videos", text.getvalue())


def test_the_readmes_own_videos_command_on_7_videos_says_there_are_too_few(in_a_users_folder: Path):
    write_own_videos(in_a_users_folder / "my_data", train=5, val=1, test=1)
    fit = readme_own_videos_commands()[1]
    with pytest.raises(ValueError, match=r"training split has 5 videos, fewer than data\.batch_size=8"):
        main([*fit, *TINY_DATA, *TINY_MODEL, "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"])


# A quiet, discoverable command line.

def test_progress_lines_say_the_time_the_rate_and_when_the_run_ends():
    model = VideoClassifier(tiny_backbone(), optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    with _captured_info() as text:
        trainer(max_epochs=2, callbacks=[ProgressLines()], enable_progress_bar=True, log_every_n_steps=2,
                num_sanity_val_steps=0).fit(model, loader(8), loader(4))  # 4 batches per epoch, 8 in the run
    lines = [line for line in text.getvalue().splitlines() if line.startswith("epoch")]
    timing = r"\[(\d+:\d\d:\d\d) elapsed, [\d.e-]+ s/batch, run ETA (\d+:\d\d:\d\d)\]: "
    assert [re.sub(timing, "[T]: ", line).split(":")[0] for line in lines] == [
        "epoch 0 batch 2/4 [T]", "epoch 0 batch 4/4 [T]", "epoch 0 validation [T]",
        "epoch 1 batch 2/4 [T]", "epoch 1 batch 4/4 [T]", "epoch 1 validation [T]"]
    assert re.search(timing, lines[-2])[2] == "0:00:00"  # the last batch: nothing left
