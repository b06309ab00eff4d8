"""VideoDataModule and VideoClipDataset: shapes, labels, views, and unreadable or missing data (skipped, counted,
flagged, and stopped past `max_skip_fraction`)."""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

import published_layouts
from lightning_video.data import synthetic
from lightning_video.data.datamodule import SyntheticTask, VideoDataModule
from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.decode import open_video
from lightning_video.data.transforms import evaluation_transform
from lightning_video.models import VideoTransformer
from lightning_video.training.module import VideoClassifier

real_generate = synthetic.generate


def small_datamodule(root: Path, **overrides) -> VideoDataModule:
    settings = dict(num_frames=4, sampling_rate=2, crop_size=24, train_min_short_side=24, train_max_short_side=28,
                    batch_size=4, num_workers=0, test_clips=2, test_crops=3)
    return VideoDataModule(str(root), **{**settings, **overrides})


def test_train_batches_have_the_model_input_shape(motion_root: Path):
    datamodule = small_datamodule(motion_root)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["video"].shape == (4, 3, 4, 24, 24) and batch["video"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and set(batch["label"].tolist()) <= {0, 1}
    assert batch["skipped"].sum() == 0
    assert -3 < batch["video"].mean() < 3  # normalised, not [0, 255]
    assert datamodule.num_classes == 2 and datamodule.class_names == ["left", "right"]


def test_test_split_has_every_view_of_every_video(motion_root: Path):
    datamodule = small_datamodule(motion_root)
    datamodule.setup("test")
    batches = list(datamodule.test_dataloader())
    views = torch.cat([torch.stack([b["video_index"], b["clip_index"], b["aug_index"]], 1) for b in batches])
    assert len(views) == 4 * 2 * 3 and len(torch.unique(views, dim=0)) == len(views)  # 4 videos, 2 clips, 3 crops
    labels = torch.cat([b["label"] for b in batches])
    assert labels.tolist() == [label for label in range(2) for _ in range(2 * 2 * 3)]


def test_three_crops_are_left_centre_right():
    columns = torch.arange(40, dtype=torch.uint8).expand(2, 24, 40)[..., None].expand(-1, -1, -1, 3)
    transform = evaluation_transform(24, 3, mean=(0.0,) * 3, std=(1 / 255,) * 3)  # keeps pixel values
    first_column = [transform({"video": columns, "aug_index": i})["video"][0, 0, 0, 0].item() for i in range(3)]
    assert first_column == pytest.approx([0, 8, 16])


def test_clip_frames_are_spread_over_the_window(motion_root: Path):
    video = [(str(motion_root / "train/left/left_00000.mp4"), 0)]
    keep_frames = lambda sample: sample  # noqa: E731
    clip = VideoClipDataset(video, num_frames=4, sampling_rate=3, transform=keep_frames, train=False)[0]["video"]
    every = VideoClipDataset(video, num_frames=16, sampling_rate=1, transform=keep_frames, train=False)[0]["video"]
    start = (16 - 4 * 3) // 2  # the centred 12-frame window; 4 frames spread over it, 11 / 3 apart, rounded down
    assert torch.equal(clip, every[[start, start + 3, start + 7, start + 11]])


def test_cached_frames_give_the_same_clips_and_decode_each_video_once(motion_root: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    videos = [(str(motion_root / f"train/{name}/{name}_00000.mp4"), label)
              for label, name in enumerate(["left", "right"])]
    keep_frames = lambda sample: sample  # noqa: E731
    settings = dict(num_frames=4, sampling_rate=3, transform=keep_frames, train=False, clips_per_video=2)
    plain = VideoClipDataset(videos, **settings)
    expected = [plain[index]["video"] for index in range(len(plain))]
    cached = VideoClipDataset(videos, **settings, cache_frames=True)
    opened = []
    monkeypatch.setattr("lightning_video.data.dataset.open_video", lambda path: opened.append(path) or open_video(path))
    for _ in range(2):  # two epochs
        assert all(torch.equal(cached[index]["video"], clip) for index, clip in enumerate(expected))
    assert sorted(opened) == sorted(path for path, _ in videos)


def corrupt_copy(source: Path, target: Path) -> list[str]:
    """A copy of the dataset whose first training videos are a zero-byte file, a truncated file and a text file."""
    shutil.copytree(source, target)
    lines = (target / "train.csv").read_text().splitlines()
    paths = [target / line.rsplit(" ", 1)[0] for line in lines[:3]]
    paths[0].write_bytes(b"")
    paths[1].write_bytes(paths[1].read_bytes()[:300])
    paths[2].write_text("not a video")
    return [str(p) for p in paths]


@pytest.mark.parametrize("cache_frames", [False, True])
def test_unreadable_training_videos_are_replaced_and_counted(motion_root: Path, tmp_path: Path, cache_frames: bool):
    corrupt_copy(motion_root, tmp_path / "data")
    datamodule = small_datamodule(tmp_path / "data", cache_frames=cache_frames)
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    torch.manual_seed(0)
    samples = [dataset[i] for i in range(len(dataset))]
    assert all(s["video"].shape == (3, 4, 24, 24) for s in samples)
    assert all(s["skipped"] >= 1 for s in samples[:3])
    assert all(s["video_index"] >= 3 for s in samples[:3])  # replaced by readable videos
    # the 3 corrupt videos, plus any time one of them was drawn as a replacement
    replacements_of_corrupt = sum(s["skipped"] - 1 for s in samples[:3]) + sum(s["skipped"] for s in samples[3:])
    assert sum(s["skipped"] for s in samples) == 3 + replacements_of_corrupt


def test_unreadable_test_videos_are_flagged_not_scored(motion_root: Path, tmp_path: Path):
    corrupt_copy(motion_root, tmp_path / "data")
    (tmp_path / "data/test.csv").write_text((tmp_path / "data/train.csv").read_text())
    datamodule = small_datamodule(tmp_path / "data")
    datamodule.setup("test")
    valid = torch.cat([b["valid"] for b in datamodule.test_dataloader()])
    assert (~valid).sum() == 3 * 6 and valid[18:].all()


def test_all_videos_unreadable_fails_fast_with_a_message(tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    dataset = VideoClipDataset([(str(bad), 0)] * 4, 4, 1, evaluation_transform(24, 1, (0.5,) * 3, (0.5,) * 3), train=True)
    with pytest.raises(RuntimeError, match="10 unreadable videos in a row"):
        dataset[0]


def test_missing_folder_names_the_path_and_the_layout(tmp_path: Path):
    datamodule = small_datamodule(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist.*train\.csv.*path label"):
        datamodule.setup("fit")


def test_synthetic_task_is_generated_once(tmp_path: Path):
    datamodule = small_datamodule(tmp_path / "gen", synthetic=SyntheticTask(task="appearance", videos_per_class=2))
    assert datamodule.num_classes == 6
    datamodule.prepare_data()
    csv = tmp_path / "gen/train.csv"
    written = csv.stat().st_mtime_ns
    datamodule.prepare_data()
    assert csv.stat().st_mtime_ns == written
    assert len(csv.read_text().splitlines()) == 12


def test_runs_side_by_side_generate_a_shared_synthetic_root_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    generated = []
    monkeypatch.setattr(synthetic, "generate", lambda **kwargs: generated.append(real_generate(**kwargs)))
    task = SyntheticTask(task="appearance", videos_per_class=2)
    runs = [small_datamodule(tmp_path / "shared", synthetic=task) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda datamodule: datamodule.prepare_data(), runs))
    assert len(generated) == 1 and len((tmp_path / "shared/train.csv").read_text().splitlines()) == 12


@pytest.mark.parametrize("store", ["webm", "frames"])
def test_unreadable_videos_of_other_layouts_are_replaced_counted_and_flagged(tmp_path: Path, store: str):
    root = published_layouts.ssv2(tmp_path, store=store)
    if store == "webm":
        (root / "20bn-something-something-v2/78687.webm").unlink()  # listed in train.json, not on disk
        (root / "20bn-something-something-v2/74225.webm").write_bytes(b"")
    else:
        for frame in range(1, 5):  # the whole first segment, so that every draw reads a broken image
            (root / f"frames/78687/{frame:06d}.jpg").write_text("not an image")
        truncated = root / "frames/74225/000002.jpg"  # frame 1: the first segment's centre
        truncated.write_bytes(truncated.read_bytes()[:300])
    datamodule = small_datamodule(root, dataset="ssv2", crop_size=16, train_min_short_side=16,
                                  train_max_short_side=16, test_clips=1, test_crops=1)
    datamodule.setup("fit")
    torch.manual_seed(0)
    samples = [datamodule.datasets["train"][i] for i in range(3)]
    assert samples[0]["skipped"] >= 1 and samples[0]["video_index"] != 0  # video 0 replaced...
    assert [s["skipped"] for s in samples[1:]] == [0, 0]  # ...and counted once per unreadable draw
    datamodule.setup("test")
    assert [datamodule.datasets["test"][i]["valid"] for i in range(2)] == [False, True]


class FakeTrainer(SimpleNamespace):
    """What the skip guard reads of a trainer, on one process."""

    def __init__(self, batches: int) -> None:
        super().__init__(training=True, current_epoch=0, num_training_batches=batches,
                         strategy=SimpleNamespace(reduce_boolean_decision=lambda decision, all: decision))


def test_skips_above_the_fraction_of_an_epoch_stop_training(motion_root: Path):
    datamodule = small_datamodule(motion_root, max_skip_fraction=0.25)  # 4 batches of 4: stop past 4 skips
    datamodule.trainer = FakeTrainer(batches=4)
    skipping = {"skipped": torch.tensor([0, 1, 0, 1])}
    datamodule.on_after_batch_transfer(skipping, 0)
    datamodule.on_after_batch_transfer(skipping, 0)  # 4 skipped: at the limit, not above
    datamodule.trainer.current_epoch = 1  # each epoch counts afresh
    datamodule.on_after_batch_transfer(skipping, 0)
    datamodule.on_after_batch_transfer(skipping, 0)
    with pytest.raises(RuntimeError, match=r"max_skip_fraction=0.25 of the 16 samples of epoch 1 on a rank \(6 so "
                                           r"far.*check-data"):
        datamodule.on_after_batch_transfer(skipping, 0)
    datamodule.trainer.training = False  # validation and test batches are not counted
    datamodule.on_after_batch_transfer(skipping, 0)


def test_lightning_calls_the_skip_guard_during_fit(motion_root: Path, tmp_path: Path):
    corrupt_copy(motion_root, tmp_path / "data")
    datamodule = small_datamodule(tmp_path / "data", max_skip_fraction=0.01)
    backbone = VideoTransformer("space", num_classes=8, img_size=24, patch_size=12, num_frames=4, embed_dim=16,
                                depth=1, num_heads=2)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    with pytest.raises(RuntimeError, match="too many unreadable training videos"):
        trainer.fit(VideoClassifier(backbone), datamodule=datamodule)


@pytest.mark.parametrize("settings, message", [
    (dict(crop_size=32), r"^data\.crop_size=32 is larger than data\.train_min_short_side=24: .* raise "
                         r"data\.train_min_short_side to at least 32 or lower data\.crop_size$"),
    (dict(train_min_short_side=30), r"^data\.train_min_short_side=30 is larger than data\.train_max_short_side=28"),
    (dict(num_frames=0, sampling_rate=0, test_clips=0),
     r"^data\.num_frames=0 must be at least 1\ndata\.sampling_rate=0 must be at least 1\ndata\.test_clips=0 must be "
     r"at least 1$"),
    (dict(test_crops=2), r"^data\.test_crops=2: valid are 1 \(centre\) and 3 \(left, centre, right\)$"),
    (dict(std=(0.2, 0.2, 0.0)), r"^data\.std=\[0\.2, 0\.2, 0\.0\] must be 3 positive numbers"),
])
def test_invalid_size_settings_name_their_config_keys_at_construction(tmp_path: Path, settings: dict, message: str):
    with pytest.raises(ValueError, match=message):
        small_datamodule(tmp_path, **settings)
