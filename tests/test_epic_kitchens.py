"""Epic-Kitchens-100 on a tiny copy of its published files: action segments of two long videos (as video files and
as frame folders), clips sampled inside each segment, two heads (verb and noun) trained and tested through the CLI
with the verb, noun and action metrics, and predictions of all three."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import published_layouts as published
from lightning_video.cli import main
from lightning_video.data.annotations import AnnotationError
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.data.segments import VideoSegment
from lightning_video.training.runs import read_checkpoint

TINY = ["--data.dataset", "epic_kitchens", "--data.num_workers", "0", "--data.batch_size", "2", "--data.num_frames",
        "4", "--data.crop_size", "16", "--data.train_min_short_side", "16", "--data.train_max_short_side", "20",
        "--data.test_crops", "1", "--model.backbone.init_args.patch_size", "8",
        "--model.backbone.init_args.embed_dim", "16", "--model.backbone.init_args.depth", "1",
        "--model.backbone.init_args.num_heads", "2", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
        "--trainer.enable_progress_bar", "false"]
METRICS = [f"{head}_{metric}" for head in ("verb", "noun") for metric in ("top1", "top5", "mean_class_accuracy")] + \
          ["action_top1", "action_top5"]


def datamodule(root: Path, **overrides) -> VideoDataModule:
    settings = dict(num_frames=4, crop_size=16, train_min_short_side=16, train_max_short_side=20, batch_size=2,
                    num_workers=0, test_crops=1)
    return VideoDataModule(str(root), dataset="epic_kitchens", **{**settings, **overrides})


@pytest.mark.parametrize("store", ["videos", "frames"])
def test_segments_of_long_videos_with_a_verb_and_a_noun(tmp_path: Path, store: str):
    data = datamodule(published.epic_kitchens(tmp_path, store))
    assert data.heads == {"verb": 97, "noun": 300} and data.num_classes == 397 and data.sampling == "segments"
    names = data.class_names
    assert (names[0], names[3], names[97 + 2], names[97 + 3], names[1]) == ("take", "open", "plate", "door", "verb1")
    train = data.videos("train")
    video = {"videos": "P01/videos/P01_01.MP4", "frames": "P01/rgb_frames/P01_01"}[store]
    assert isinstance(train[0][0], VideoSegment) and train[0][0] == str(tmp_path / video)
    assert [(path.first, path.last) for path, _ in train] == [(start - 1, stop - 1) for _, start, stop, _, _ in
                                                             published.EPIC_TRAIN]
    assert [label.tolist() for _, label in train] == [[verb, noun] for *_, verb, noun in published.EPIC_TRAIN]
    # the test labels are not published: val and test are the validation set
    assert [(path.first, label.tolist()) for path, label in data.videos("test")] == \
           [(path.first, label.tolist()) for path, label in data.videos("val")] == [(6, [0, 3]), (1, [3, 2])]


@pytest.mark.parametrize(("store", "sampling"), [("videos", "segments"), ("frames", "segments"), ("videos", "clip")])
def test_every_sampled_clip_lies_inside_its_segment(tmp_path: Path, store: str, sampling: str):
    data = datamodule(published.epic_kitchens(tmp_path, store), test_clips=2, sampling=sampling, sampling_rate=2)
    segments = [(path.first, path.last) for path, _ in data.videos("train")]
    data.setup("fit")
    data.setup("test")
    train, test = data.datasets["train"], data.datasets["test"]
    train.transform = test.transform = lambda sample: sample
    torch.manual_seed(0)
    for index, (first, last) in enumerate(segments):
        drawn = [published.frame_numbers(train[index]["video"]) for _ in range(30)]
        assert all(first <= frame <= last for frames in drawn for frame in frames), (first, last, drawn)
        assert min(frames[0] for frames in drawn) == first and max(frames[-1] for frames in drawn) == last
    for view in range(len(test)):  # 2 clips per segment, evenly placed inside it
        path = test.videos[view // 2][0]
        assert all(path.first <= frame <= path.last for frame in published.frame_numbers(test[view]["video"]))


def test_bad_rows_are_named_with_file_and_line(tmp_path: Path):
    root = published.epic_kitchens(tmp_path)
    table = root / "EPIC_100_train.csv"
    lines = table.read_text().splitlines()
    lines[1] = lines[1].replace(",1,8,", ",8,1,")  # stop before start
    lines[2] = lines[2].replace(",open,3,", ",open,97,")  # verb class outside the 97
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError) as error:
        datamodule(root).videos("train")
    assert f"{table}, line 2: '8,1' are not frame numbers" in str(error.value)
    assert f"{table}, line 3: '97' is outside the 97 classes named in {root / 'EPIC_100_verb_classes.csv'}" in \
        str(error.value)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny two-head model trained and tested through the CLI: its dataset and its run folder. The best checkpoint
    is chosen on the action top-1 without being told (there is no single top-1)."""
    root = published.epic_kitchens(tmp_path_factory.mktemp("epic"))
    runs = tmp_path_factory.mktemp("runs")
    main(["fit", *TINY, "--data.root", str(root), "--trainer.logger.init_args.save_dir", str(runs),
          "--trainer.max_epochs", "2", "--test_after_fit", "true"])
    return root, runs / "lightning_logs/version_0"


def test_fit_and_test_log_the_verb_noun_and_action_metrics(fitted: tuple[Path, Path]):
    _, run = fitted
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert {f"{split}_{metric}" for split in ("val/clip", "test/video") for metric in METRICS} <= set(rows[0])
    assert not {"val/clip_top1", "test/video_top1"} & set(rows[0])  # no single answer to score
    (tested,) = [row for row in rows if row["test/video_action_top1"]]
    values = {name: float(tested[f"test/video_{name}"]) for name in METRICS}
    assert all(0 <= value <= 1 for value in values.values()) and float(tested["test/videos"]) == 2
    assert values["action_top1"] <= min(values["verb_top1"], values["noun_top1"])  # both right
    assert values["action_top1"] <= values["action_top5"]
    checkpoint = read_checkpoint(next((run / "checkpoints").glob("epoch*.ckpt")))
    (best,) = [state for key, state in checkpoint["callbacks"].items() if key.startswith("ModelCheckpoint")]
    assert best["monitor"] == "val/clip_action_top1"
    assert checkpoint["clip_settings"]["heads"] == {"verb": 97, "noun": 300}
    assert len(checkpoint["clip_settings"]["class_names"]) == 397


def test_predict_writes_verb_noun_and_action(fitted: tuple[Path, Path], tmp_path: Path):
    root, run = fitted
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(run / "checkpoints/last.ckpt"), "--data.path", str(root / "P01/videos"),
          "--data.num_workers", "0", "--predictions.output_dir", str(out), "--trainer.logger", "false",
          "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"])
    (result,) = json.loads((out / "predictions.json").read_text())
    assert result["video"] == str(root / "P01/videos/P01_01.MP4") and set(result) == {"video", "verb", "noun", "action"}
    verb, noun, action = result["verb"], result["noun"], result["action"]
    assert all(len(answer["labels"]) == len(answer["scores"]) == 5 for answer in (verb, noun, action))
    assert action["labels"][0] == f"{verb['labels'][0]} {noun['labels'][0]}"
    assert action["scores"][0] == pytest.approx(verb["scores"][0] * noun["scores"][0], abs=2e-6)  # rounded to 6 places
    assert action["scores"] == sorted(action["scores"], reverse=True)
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert [(row["head"], row["rank"]) for row in rows] == [(head, str(rank)) for head in ("verb", "noun", "action")
                                                            for rank in range(1, 6)]


def test_a_segment_past_the_videos_end_is_unreadable_and_a_late_stop_is_clamped(tmp_path: Path):
    root = published.epic_kitchens(tmp_path)
    data = datamodule(root, test_clips=1)
    data.setup("test")
    dataset = data.datasets["test"]
    video = str(root / "P01/videos/P01_01.MP4")
    dataset.videos = [(VideoSegment(video, 14, 40), 0), (VideoSegment(video, 16, 20), 0)]  # the video has 16 frames
    dataset.transform = lambda sample: sample
    assert published.frame_numbers(dataset[0]["video"]) == [14, 14, 14, 15] and dataset[0]["valid"]
    assert not dataset[1]["valid"]  # left out of the metrics and counted, as any unreadable video


def test_the_pytorchvideo_reader_is_refused_for_segments_of_long_videos(tmp_path: Path):
    """It would sample clips anywhere in the long video, not inside the labelled action."""
    data = VideoDataModule(root=str(published.epic_kitchens(tmp_path)), dataset="epic_kitchens", reader="pytorchvideo")
    with pytest.raises(ValueError, match="data.reader=pytorchvideo samples clips from whole videos, but data.dataset="
                                         "epic_kitchens labels segments of long videos: use data.reader=ours"):
        data.setup("fit")
