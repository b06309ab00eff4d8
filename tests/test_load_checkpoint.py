"""A checkpoint describes its clips: `load_checkpoint` and `VideoClassifier.load_from_checkpoint` rebuild the trained
model of every scheme with its clip settings and class names, and `test --ckpt_path` takes the checkpoint's settings
except those the command line gives, also where they equal the default."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from lightning_video import load_checkpoint
from lightning_video.cli import main
from lightning_video.data.clip_settings import ClipSettings
from lightning_video.models import VideoTransformer
from lightning_video.models.checkpoint_file import DIGEST_KEY
from lightning_video.training.module import VideoClassifier
from lightning_video.training.runs import CONFIG_KEY
from test_runs import tiny_fit

ATTENTION = "--model.backbone.init_args.attention"
# Each scheme by name, and X-ViT as a scheme object with options other than its defaults (which change its logits).
SCHEMES = {name: [ATTENTION, name] for name in ("space", "joint", "divided", "local_global", "axial")}
SCHEMES["xvit"] = [ATTENTION, "XViT", f"{ATTENTION}.init_args.mix", "k", f"{ATTENTION}.init_args.temporal", "ta"]
ONE_STEP = ["--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1", "--data.test_clips", "2"]


def fit(scheme: str, data: Path, runs: Path) -> tuple[VideoClassifier, Path]:
    """The model after one training step of a tiny run, and the `last.ckpt` that run wrote."""
    cli = main(tiny_fit(data, runs, *SCHEMES[scheme], *ONE_STEP))
    return cli.model, runs / "lightning_logs/version_0/checkpoints/last.ckpt"


@pytest.fixture(scope="module")
def trained(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[VideoClassifier, Path]:
    return fit("divided", motion_root, tmp_path_factory.mktemp("runs"))


def clip(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scheme", [name for name in SCHEMES if name != "divided"])
def test_load_from_checkpoint_reproduces_the_logits_of_every_scheme(scheme: str, motion_root: Path, tmp_path: Path):
    trained_model, path = fit(scheme, motion_root, tmp_path)
    assert_reproduces(trained_model, VideoClassifier.load_from_checkpoint(path))


def test_load_from_checkpoint_reproduces_divided(trained: tuple[VideoClassifier, Path]):
    trained_model, path = trained
    assert_reproduces(trained_model, VideoClassifier.load_from_checkpoint(path))


def assert_reproduces(trained_model: VideoClassifier, loaded: VideoClassifier) -> None:
    assert type(loaded.backbone.scheme) is type(trained_model.backbone.scheme)
    assert loaded.backbone.scheme.options() == trained_model.backbone.scheme.options()
    assert not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip()), trained_model.eval()(clip()), rtol=0, atol=0)


def test_load_checkpoint_returns_model_clip_settings_and_class_names(trained: tuple[VideoClassifier, Path]):
    trained_model, path = trained
    loaded = load_checkpoint(path)
    expected = ClipSettings(num_frames=4, sampling_rate=2, sampling="clip", crop_size=16, mean=(0.45, 0.45, 0.45),
                            std=(0.225, 0.225, 0.225), test_clips=2, test_crops=3, class_names=["left", "right"],
                            multi_label=False)
    assert loaded.clip_settings == loaded.model.clip_settings == trained_model.clip_settings == expected
    assert loaded.class_names == ["left", "right"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(clip(1)), trained_model.eval()(clip(1)), rtol=0, atol=0)
    # stored as plain data: the checkpoint reads without unpickling any class
    assert torch.load(path, weights_only=True)["clip_settings"] == expected.to_dict()


def test_a_checkpoint_saved_before_clip_settings_were_takes_them_from_its_config(trained: tuple[VideoClassifier, Path],
                                                                               tmp_path: Path):
    checkpoint = torch.load(trained[1], weights_only=True)
    del checkpoint["clip_settings"], checkpoint[DIGEST_KEY]
    torch.save(checkpoint, tmp_path / "older.ckpt")
    assert load_checkpoint(tmp_path / "older.ckpt").clip_settings == trained[0].clip_settings


def test_a_checkpoint_whose_schedule_options_have_since_changed_still_loads(trained: tuple[VideoClassifier, Path],
                                                                            tmp_path: Path):
    """Optimiser and schedule are training's: an option of theirs since renamed (WarmupCosineLR's `max_epochs`,
    before the schedule read the trainer's length) does not stop a model from being rebuilt."""
    checkpoint = torch.load(trained[1], weights_only=True)
    config = yaml.safe_load(checkpoint[CONFIG_KEY])
    config["model"]["lr_scheduler"] = {"class_path": "lightning_video.training.schedules.WarmupCosineLR",
                                       "init_args": {"max_epochs": 40, "warmup_epochs": 1}}
    checkpoint[CONFIG_KEY] = yaml.safe_dump(config)
    del checkpoint[DIGEST_KEY]
    torch.save(checkpoint, tmp_path / "older.ckpt")
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(tmp_path / "older.ckpt").model(clip(1)), trained[0].eval()(clip(1)),
                                   rtol=0, atol=0)


def test_a_checkpoint_without_a_run_config_is_refused_with_how_to_load_it(trained: tuple[VideoClassifier, Path],
                                                                         tmp_path: Path):
    checkpoint = torch.load(trained[1], weights_only=True)
    foreign = {"state_dict": checkpoint["state_dict"]}
    torch.save(foreign, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match=r"foreign\.ckpt holds no run config .*models\.load_pretrained\(backbone, "):
        load_checkpoint(tmp_path / "foreign.ckpt")


def test_clip_settings_the_backbone_cannot_take_are_refused():
    backbone = VideoTransformer(num_classes=2, img_size=16, patch_size=8, num_frames=4, embed_dim=16, depth=1,
                                num_heads=2)
    clips = ClipSettings(num_frames=8, sampling_rate=2, sampling="clip", crop_size=16, mean=(0.5, 0.5, 0.5),
                         std=(0.2, 0.2, 0.2), test_clips=1, test_crops=1, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"^clip_settings \(8 frames, crop 16, 2 classes\) do not fit the backbone "
                                         r"built with num_frames=4, img_size=16, num_classes=2: build it with "
                                         r"num_frames=8, img_size=16, num_classes=2$"):
        VideoClassifier(backbone, clip_settings=clips)


class CountViews(pl.Callback):
    """The views a test evaluates."""

    def __init__(self) -> None:
        self.views = 0

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: dict,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self.views += int(batch["valid"].sum())


def views_tested(checkpoint: Path, data: Path, folder: Path, *options: str) -> int:
    cli = main(["test", "--ckpt_path", str(checkpoint), "--data.root", str(data), "--data.num_workers", "0",
                "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.enable_progress_bar", "false",
                "--trainer.logger", "false", "--trainer.default_root_dir", str(folder),
                "--trainer.callbacks+=test_load_checkpoint.CountViews", *options])
    assert cli.trainer.callback_metrics["test/videos"] == 4
    (counter,) = [callback for callback in cli.trainer.callbacks if isinstance(callback, CountViews)]
    return counter.views


def test_an_option_given_wins_over_the_checkpoints_also_when_it_is_the_default(trained: tuple[VideoClassifier, Path],
                                                                             motion_root: Path, tmp_path: Path):
    checkpoint = trained[1]
    # not given: the checkpoint's 2 clips × 3 crops per video (and its 4 frames at 16 px, or the model would refuse)
    assert views_tested(checkpoint, motion_root, tmp_path) == 4 * 2 * 3
    # given, equal to the default 1: honoured, on the command line or in a config file
    assert views_tested(checkpoint, motion_root, tmp_path, "--data.test_clips", "1") == 4 * 1 * 3
    config = tmp_path / "views.yaml"
    config.write_text(yaml.safe_dump({"data": {"test_clips": 1, "test_crops": 1}}))
    assert views_tested(checkpoint, motion_root, tmp_path, "--config", str(config)) == 4 * 1 * 1
