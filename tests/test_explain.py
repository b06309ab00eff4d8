"""`lightning-video explain`: the files it writes per video, its errors, the heat map drawn where its patch is, and the
training callback that logs the same figure."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_video import load_checkpoint
from lightning_video.cli import main as cli_main
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.explain import GAP, MIN_CELL, TITLE_HEIGHT, ClipExplanation, main, overlays
from lightning_video.models.rollout import rollout
from test_runs import tiny_fit

FRAMES, PATCHES_PER_SIDE = 4, 2  # the tiny fit's clips: 4 frames of 16 × 16 pixels, 8-pixel patches
FIGURE_SIZE = (FRAMES * (MIN_CELL + GAP) - GAP, TITLE_HEIGHT + 2 * MIN_CELL + GAP)
FIGURES = ["--trainer.callbacks+=lightning_video.training.attention_figures.AttentionFigures",
           "--trainer.callbacks.every_n_epochs", "1"]


@pytest.fixture(scope="module")
def run(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a tiny two-epoch run that drew the attention figure every second epoch."""
    runs = tmp_path_factory.mktemp("runs")
    cli_main(tiny_fit(motion_root, runs, *FIGURES, "--trainer.callbacks.every_n_epochs", "2",
                      "--trainer.max_epochs", "2"))
    return runs / "lightning_logs/version_0"


def test_explain_writes_a_figure_an_animation_the_rollout_and_the_top_classes_per_video(run: Path, motion_root: Path,
                                                                                       tmp_path: Path):
    checkpoint = run / "checkpoints/last.ckpt"
    with pytest.raises(SystemExit) as exit_status:  # through the CLI, as a user runs it
        cli_main(["explain", "--ckpt_path", str(checkpoint), "--data.path", str(motion_root / "test"),
                  "--out", str(tmp_path)])
    assert exit_status.value.code == 0

    videos = sorted((motion_root / "test").rglob("*.mp4"))
    folders = sorted(path.parent for path in tmp_path.rglob("rollout.png"))
    assert folders == sorted(tmp_path / path.relative_to(motion_root / "test").with_suffix("") for path in videos)
    for folder in folders:
        image = Image.open(folder / "rollout.png")
        assert image.size == FIGURE_SIZE
        animation = Image.open(folder / "rollout.gif")
        assert animation.n_frames == FRAMES and animation.size == (MIN_CELL, MIN_CELL)
        heat = np.load(folder / "rollout.npy")
        assert heat.shape == (FRAMES, PATCHES_PER_SIDE, PATCHES_PER_SIDE) and 0 < heat.sum() <= 1
        top = json.loads((folder / "top5.json").read_text())
        assert [entry["class"] for entry in top] in (["left", "right"], ["right", "left"])
        assert top[0]["probability"] >= top[1]["probability"] and sum(e["probability"] for e in top) == pytest.approx(1)
        assert (folder / "top5.txt").read_text().splitlines()[0] == f"{top[0]['probability']:.4f} {top[0]['class']}"

    loaded = load_checkpoint(checkpoint)  # the saved rollout is the model's on the centre clip and crop
    data = VideoDataModule(**{**loaded.clip_settings.data_arguments(), "test_clips": 1, "test_crops": 1},
                           path=str(videos[0]), num_workers=0)
    data.setup("predict")
    expected = rollout(loaded.model.backbone, data.datasets["predict"][0]["video"].unsqueeze(0)).heat[0]
    saved = np.load(tmp_path / videos[0].relative_to(motion_root / "test").with_suffix("") / "rollout.npy")
    np.testing.assert_allclose(saved, expected.numpy(), rtol=1e-6)


def test_explain_layer_draws_the_cls_attention_of_that_block(run: Path, motion_root: Path, tmp_path: Path):
    video = next((motion_root / "test").rglob("*.mp4"))
    assert main(["--ckpt_path", str(run / "checkpoints/last.ckpt"), "--data.path", str(video), "--out",
                 str(tmp_path), "--layer", "0"]) == 0
    heat = np.load(tmp_path / video.stem / "layer0.npy")
    # the divided block's spatial step: each frame's cls copy spreads its attention over the cls token and the patches
    assert heat.shape == (FRAMES, PATCHES_PER_SIDE, PATCHES_PER_SIDE) and (heat.sum(axis=(1, 2)) <= 1 + 1e-6).all()
    assert {path.name for path in (tmp_path / video.stem).iterdir()} == {"layer0.png", "layer0.gif", "layer0.npy",
                                                                        "top5.json", "top5.txt"}


def test_explain_names_a_missing_checkpoint_a_bad_option_or_path_and_unreadable_videos(run: Path, tmp_path: Path):
    checkpoint = str(run / "checkpoints/last.ckpt")
    with pytest.raises(SystemExit, match="--ckpt_path .*missing.ckpt is not a file"):
        main(["--ckpt_path", str(tmp_path / "missing.ckpt"), "--data.path", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--layer 1: the model has 1 blocks; valid: 0..0, or -1..-1 from the end"):
        main(["--ckpt_path", checkpoint, "--data.path", str(tmp_path), "--out", str(tmp_path), "--layer", "1"])
    with pytest.raises(SystemExit, match=r"--discard_ratio 1.0: valid values are in \[0, 1\)"):
        main(["--ckpt_path", checkpoint, "--data.path", str(tmp_path), "--out", str(tmp_path), "--discard_ratio", "1"])
    with pytest.raises(SystemExit, match="data.path .*nowhere does not exist"):
        main(["--ckpt_path", checkpoint, "--data.path", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="no video files"):
        main(["--ckpt_path", checkpoint, "--data.path", str(tmp_path), "--out", str(tmp_path / "out")])
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    assert main(["--ckpt_path", checkpoint, "--data.path", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out/broken").exists()


def test_a_patch_heat_is_drawn_over_that_patch_of_that_frame():
    """No "horizontal bars": the heat of patch (frame 1, row 0, column 1) is drawn in frame 1's top-right quarter."""
    heat = np.zeros((FRAMES, PATCHES_PER_SIDE, PATCHES_PER_SIDE), dtype=np.float32)
    heat[1, 0, 1] = 1.0
    grey = np.full((FRAMES, 16, 16, 3), 128, dtype=np.uint8)
    frames, blended = overlays(ClipExplanation(grey, heat, [("left", 1.0)], "rollout"), cell=16)
    redness = blended[..., 0].astype(int) - blended[..., 2].astype(int)
    assert (frames == 128).all()
    assert redness[1, :8, 8:].mean() > 50 and redness[1, 8:, :8].mean() < 0
    assert (redness[[0, 2, 3]] < 0).all()


def test_the_callback_saved_the_figure_of_every_second_epoch(run: Path):
    assert [path.name for path in (run / "attention").iterdir()] == ["epoch=001.png"]
    image = Image.open(run / "attention/epoch=001.png")
    assert image.size == FIGURE_SIZE
    assert np.asarray(image).std() > 0


def test_the_callback_logs_the_figure_to_wandb(motion_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    wandb = pytest.importorskip("wandb")
    for variable, value in (("WANDB_MODE", "offline"), ("WANDB_DIR", str(tmp_path)), ("WANDB_SILENT", "true")):
        monkeypatch.setenv(variable, value)
    logger = ["--trainer.logger", "pytorch_lightning.loggers.WandbLogger", "--trainer.logger.init_args.save_dir",
              str(tmp_path), "--trainer.logger.init_args.project", "demo"]
    try:
        run_id = cli_main(tiny_fit(motion_root, tmp_path, *logger, *FIGURES)).trainer.logger.version
    finally:
        wandb.finish()
    logged = list(tmp_path.glob(f"wandb/offline-run-*-{run_id}/files/media/images/attention/rollout_*.png"))
    assert len(logged) == 1 and Image.open(logged[0]).size == FIGURE_SIZE
    assert (tmp_path / "demo" / run_id / "attention/epoch=000.png").is_file()
