"""`lightning-video extract`: one row per video (or window), features that are the model's on the test protocol's
views, pooled levels that are the mean of the views, and a resumed extraction that writes nothing twice."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lightning_video import load_checkpoint
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.data.windows import window_starts
from lightning_video.extract import main
from lightning_video.models import VideoTransformer
from lightning_video.models.features import clip_features
from lightning_video.training import extraction
from test_load_checkpoint import fit

ONE_PROCESS = ["--data.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.devices", "1"]
VIDEO_SECONDS = 1.6  # the synthetic videos: 16 frames at 10 fps
REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def checkpoint(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit("divided", motion_root, tmp_path_factory.mktemp("runs"))[1]


def extract(checkpoint: Path, videos: Path, out: Path, *options: str) -> int:
    return main(["--ckpt_path", str(checkpoint), "--data.path", str(videos), "--out", str(out), *ONE_PROCESS,
                 *options])


def rows(out: Path) -> list[tuple[dict, torch.Tensor]]:
    """Each row of the index with its features, read from its shard."""
    with open(out / "index.csv", newline="") as file:
        index = list(csv.DictReader(file))
    shards = {name: load_file(out / name)["features"] for name in {row["shard"] for row in index}}
    return [(row, shards[row["shard"]][int(row["row"])]) for row in index]


def test_one_row_per_video_holding_the_cls_feature_pooled_over_the_test_views(checkpoint: Path, motion_root: Path,
                                                                           tmp_path: Path):
    assert extract(checkpoint, motion_root / "test", tmp_path, "--data.test_clips", "2") == 0
    extracted = rows(tmp_path)
    videos = sorted(str(path) for path in (motion_root / "test").rglob("*.mp4"))
    assert [row["video"] for row, _ in extracted] == videos
    assert all((row["window"], row["start"], row["end"]) == ("0", "0.0", str(VIDEO_SECONDS)) for row, _ in extracted)
    # independently: the model's clip feature on each view the test protocol takes (2 clips x 3 crops), averaged
    loaded = load_checkpoint(checkpoint)
    data = VideoDataModule(**{**loaded.clip_settings.data_arguments(), "test_clips": 2}, path=str(motion_root / "test"),
                           num_workers=0)
    data.setup("predict")
    views = torch.stack([data.datasets["predict"][item]["video"] for item in range(len(data.datasets["predict"]))])
    with torch.no_grad():
        expected = loaded.model.backbone.forward_features(views).unflatten(0, (len(videos), 6)).mean(dim=1)
    torch.testing.assert_close(torch.stack([features for _, features in extracted]), expected, rtol=1e-5, atol=1e-6)


def test_pooled_features_are_the_mean_of_the_per_view_features(checkpoint: Path, motion_root: Path, tmp_path: Path):
    for level in ("view", "clip", "video"):
        assert extract(checkpoint, motion_root / "test.csv", tmp_path / level, "--level", level, "--feature",
                       "patch_mean", "--data.test_clips", "2") == 0
    views, clips, videos = (rows(tmp_path / level) for level in ("view", "clip", "video"))
    assert len(views) == 4 * 2 * 3 and len(clips) == 4 * 2 and len(videos) == 4
    assert [(row["clip"], row["crop"]) for row, _ in views[:6]] == [(clip, crop) for clip in "01" for crop in "012"]
    assert [row["label"] for row, _ in videos] == ["0", "0", "1", "1"]  # from the CSV file
    per_view = torch.stack([features for _, features in views]).unflatten(0, (4, 2, 3))
    torch.testing.assert_close(torch.stack([features for _, features in clips]), per_view.mean(dim=2).flatten(0, 1))
    torch.testing.assert_close(torch.stack([features for _, features in videos]), per_view.mean(dim=(1, 2)))


def test_sliding_windows_give_one_row_per_window_with_its_times(checkpoint: Path, motion_root: Path, tmp_path: Path):
    assert extract(checkpoint, motion_root / "test", tmp_path, "--window", "0.5", "--stride", "0.4", "--feature",
                   "frames") == 0
    extracted = rows(tmp_path)
    # 5-frame windows every 4 frames of 16, the last moved back to end with the video
    assert window_starts(16, 5, 4) == [0, 4, 8, 11]
    assert len(extracted) == 4 * 4
    first_video = [row for row, _ in extracted if row["video"] == extracted[0][0]["video"]]
    assert [(row["window"], float(row["start"]), float(row["end"])) for row in first_video] == [
        ("0", 0.0, 0.5), ("1", 0.4, 0.9), ("2", 0.8, 1.3), ("3", 1.1, 1.6)]
    assert extracted[0][1].shape == (4, 32)  # per frame: 4 frames of 32 channels


def test_a_resumed_extraction_writes_nothing_twice(checkpoint: Path, motion_root: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    write = extraction.write_atomically
    shards_written = []

    def killed_during_the_second_shard(data: bytes, path: Path) -> None:
        if path.name.startswith("features_") and shards_written:
            path.with_name(f".{path.name}.999999.tmp").write_bytes(data[:100])  # a write cut short
            raise RuntimeError("killed")
        shards_written.append(path.name)
        write(data, path)

    monkeypatch.setattr(extraction, "write_atomically", killed_during_the_second_shard)
    options = ("--shard_rows", "1", "--data.batch_size", "1")
    with pytest.raises(RuntimeError, match="killed"):
        extract(checkpoint, motion_root / "test", tmp_path, *options)
    assert shards_written == ["features_0000000.safetensors"]
    first = (tmp_path / shards_written[0]).stat()
    monkeypatch.setattr(extraction, "write_atomically", write)
    assert extract(checkpoint, motion_root / "test", tmp_path, *options) == 0
    assert (tmp_path / shards_written[0]).stat().st_mtime_ns == first.st_mtime_ns  # not written again
    extracted = rows(tmp_path)
    assert len({row["video"] for row, _ in extracted}) == len(extracted) == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "extract.json", *(f"features_{video:07d}.safetensors" for video in range(4)), "index.csv"]
    # a finished extraction, rerun, writes no shard
    times = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("features_*")}
    assert extract(checkpoint, motion_root / "test", tmp_path, *options) == 0
    assert times == {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("features_*")}
    assert rows(tmp_path)[0][0] == extracted[0][0]


def test_resuming_with_other_settings_is_refused(checkpoint: Path, motion_root: Path, tmp_path: Path):
    assert extract(checkpoint, motion_root / "test", tmp_path) == 0
    with pytest.raises(ValueError, match="other feature, level .*Give another --out"):
        extract(checkpoint, motion_root / "test", tmp_path, "--feature", "patch_mean", "--level", "clip")


def test_weights_and_videos_are_required(motion_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["--data.path", str(motion_root / "test"), "--out", str(tmp_path)])
    assert "no weights: give --ckpt_path" in capsys.readouterr().err


@pytest.mark.parametrize("attention", ["divided", "xvit"])
def test_clip_features_of_one_sequence_and_of_per_frame_sequences(attention: str):
    options = {"temporal": "mean"} if attention == "xvit" else None  # X-ViT's paper readout: the frames averaged
    model = VideoTransformer(attention, num_classes=3, img_size=16, patch_size=8, num_frames=4, embed_dim=32, depth=2,
                             num_heads=2, attention_options=options).eval()
    video = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        features = {kind: clip_features(model, video, kind) for kind in ("cls", "patch_mean", "frames")}
        logits = model(video)
    assert features["frames"].shape == (2, 4, 32) and features["patch_mean"].shape == features["cls"].shape == (2, 32)
    torch.testing.assert_close(model.head(features["cls"]), logits)  # cls is what the head classifies
    if attention == "divided":  # frames: each frame's patches averaged, so their mean is the mean of all patches
        torch.testing.assert_close(features["frames"].mean(dim=1), features["patch_mean"])
    else:  # frames: each frame's own cls token, which this readout averages
        torch.testing.assert_close(features["frames"].mean(dim=1), features["cls"])
    assert model.cls_only_last_block  # restored after reading every token


def test_two_processes_share_the_videos_and_rank_zero_writes_one_index(checkpoint: Path, motion_root: Path,
                                                                       tmp_path: Path):
    assert extract(checkpoint, motion_root / "test", tmp_path / "one", "--window", "0.8") == 0
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--window", "0.8", "--shard_rows", "1",
           "--data.batch_size", "1"]
    command = [sys.executable, "-m", "lightning_video", "extract", "--ckpt_path", str(checkpoint), "--data.path",
               str(motion_root / "test"), "--out", str(tmp_path / "two"), *ONE_PROCESS, *ddp]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(command, cwd=tmp_path, check=True, timeout=300, env=environment)
    one = rows(tmp_path / "one")
    assert len(one) == 4 * 2  # two windows of 0.8 s per video
    assert_same_rows(rows(tmp_path / "two"), one)
    # resumed with one video left: a rank with nothing to do takes part all the same
    (tmp_path / "two" / "features_0000002.safetensors").unlink()
    subprocess.run(command, cwd=tmp_path, check=True, timeout=300, env=environment)
    assert_same_rows(rows(tmp_path / "two"), one)


def assert_same_rows(got: list[tuple[dict, torch.Tensor]], expected: list[tuple[dict, torch.Tensor]]) -> None:
    """The same rows with the same features, wherever each shard put them."""
    assert [{**row, "shard": None, "row": None} for row, _ in got] == [{**row, "shard": None, "row": None}
                                                                       for row, _ in expected]
    torch.testing.assert_close(torch.stack([f for _, f in got]), torch.stack([f for _, f in expected]))


def test_pretrained_weights_for_a_backbone_described_by_options(checkpoint: Path, motion_root: Path, tmp_path: Path):
    """`--model.pretrained` with the backbone and clips given as options extracts what the checkpoint does."""
    assert extract(checkpoint, motion_root / "test", tmp_path / "checkpoint") == 0
    backbone = "--model.backbone.init_args."
    assert main(["--model.pretrained", str(checkpoint), "--data.path", str(motion_root / "test"), "--out",
                 str(tmp_path / "pretrained"), *ONE_PROCESS, "--data.num_frames", "4", "--data.sampling_rate", "2",
                 "--data.crop_size", "16", "--data.test_clips", "2", f"{backbone}patch_size", "8",
                 f"{backbone}embed_dim", "32", f"{backbone}depth", "1", f"{backbone}num_heads", "2"]) == 0
    torch.testing.assert_close(torch.stack([f for _, f in rows(tmp_path / "pretrained")]),
                               torch.stack([f for _, f in rows(tmp_path / "checkpoint")]))


def test_unreadable_videos_are_named_counted_and_retried_by_a_rerun(checkpoint: Path, motion_root: Path,
                                                                      tmp_path: Path, capsys: pytest.CaptureFixture):
    videos = tmp_path / "videos"
    shutil.copytree(motion_root / "test", videos)
    good = next(videos.rglob("*.mp4"))
    (videos / "broken.mp4").write_bytes(b"not a video")
    (videos / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert extract(checkpoint, videos, tmp_path / "out") == 1
    assert "2 of the 6 videos could not be read" in capsys.readouterr().out
    assert len(rows(tmp_path / "out")) == 4
    unreadable = json.loads((tmp_path / "out" / "unreadable.json").read_text())
    assert sorted(Path(path).name for path in unreadable) == ["broken.mp4", "truncated.mp4"]
    assert all(reason for reason in unreadable.values())
    (videos / "truncated.mp4").write_bytes(good.read_bytes())  # repaired: the rerun extracts it, and it alone
    shards = sorted(path.name for path in (tmp_path / "out").glob("features_*"))
    assert extract(checkpoint, videos, tmp_path / "out") == 1
    assert len(rows(tmp_path / "out")) == 5 and len(list((tmp_path / "out").glob("features_*"))) == len(shards) + 1
    assert list(json.loads((tmp_path / "out" / "unreadable.json").read_text())) == [str(videos / "broken.mp4")]
    (videos / "broken.mp4").unlink()
    with pytest.raises(ValueError, match="other videos"):  # the video list is part of the settings
        extract(checkpoint, videos, tmp_path / "out")
