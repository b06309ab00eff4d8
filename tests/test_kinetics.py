"""Kinetics as downloaded: the official CSVs with string labels in the CVDF and crawler layouts, missing videos
left out and counted, the replacement folder, a label-less test CSV, and fit/test/predict through the CLI."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

import published_layouts as published
from lightning_video.cli import main
from lightning_video.data import layouts
from lightning_video.data.annotations import AnnotationError
from lightning_video.data.kinetics import youtube_id
from test_layouts import datamodule
from test_runs import TINY

CLASSES = ["abseiling", "air drumming", "zumba"]  # the train CSV's names, sorted
WRITERS = {"cvdf": published.kinetics_cvdf, "crawler": published.kinetics_crawler}


def names_and_labels(root: Path, split: str) -> list[tuple[str, int]]:
    return [(str(Path(path).relative_to(root)), label) for path, label in layouts.read("kinetics", root, split).videos]


def test_cvdf_layout_string_labels_replacement_folder_and_missing_videos_counted(tmp_path: Path):
    root = published.kinetics_cvdf(tmp_path)
    train = layouts.read("kinetics", root, "train")
    assert train.classes == CLASSES and train.labelled
    replacement = "replacement/replacement_for_corrupted_k400"
    assert names_and_labels(root, "train") == [
        ("train/zumbazumba1_000000_000010.mp4", 2), ("train/-_aB3-x_9Zq_000000_000010.mp4", 0),
        ("train/abcdefghij1_000005_000015.mp4", 0), ("train/airdrum0001_000010_000020.mp4", 1),
        ("train/shortvid001_000000_000010.mp4", 0),
        (f"{replacement}/replaced001_000000_000010.mp4", 1),  # absent from train/
        (f"{replacement}/corrupted01_000000_000010.mp4", 2)]  # preferred to the corrupted original
    assert train.missing == [str(root / "train/zumbazumba2_000003_000013.mp4")] and train.listed == 8
    assert train.notes == ["train: 7 of 8 listed videos found (87.5%); 1 missing left out (`check-data` lists them)"]
    assert layouts.read("kinetics", root, "test").notes == ["test: 4 of 4 listed videos found (100.0%)"]


def test_crawler_layout_label_folders_with_spaces(tmp_path: Path):
    root = published.kinetics_crawler(tmp_path)  # train.csv, validate.csv, test.csv beside the split folders
    assert names_and_labels(root, "val") == [
        ("val/abseiling/valvideo001_000000_000010.mp4", 0), ("val/air drumming/valvideo002_000000_000010.mp4", 1),
        ("val/zumba/valvideo003_000000_000010.mp4", 2), ("val/zumba/brokenvid01_000000_000010.mp4", 2)]
    train = layouts.read("kinetics", root, "train")
    assert train.missing == [str(root / "train/zumba/zumbazumba2_000003_000013.mp4"),
                             str(root / "train/air drumming/replaced001_000000_000010.mp4")]


def test_label_less_test_csv_is_predicted_not_tested(tmp_path: Path):
    root = published.kinetics_crawler(tmp_path, test_labels=False)  # videos in test/test/, as the crawler puts them
    test = layouts.read("kinetics", root, "test")
    assert not test.labelled and test.classes == CLASSES and {label for _, label in test.videos} == {-1}
    data = datamodule(root, "kinetics")
    assert [Path(path).name for path, _ in data.videos("predict")] == [
        published.kinetics_file_name(youtube, start, end) for _, youtube, start, end, _ in published.KINETICS_TEST]
    with pytest.raises(ValueError, match=r"test split of .* published without labels, so test cannot score it; "
                                         r"predict its videos instead"):
        data.setup("test")


@pytest.mark.parametrize("table", ["annotations/validate.csv", "validate.csv", "kinetics-700_val.csv",
                                   "annotations/kinetics-400_validate.csv"])
def test_official_csv_names(tmp_path: Path, table: str):
    root = published.kinetics_cvdf(tmp_path)
    (root / "annotations/val.csv").rename(root / table)
    assert len(layouts.read("kinetics", root, "val").videos) == 4


def test_youtube_id_is_the_first_11_characters_of_the_name():
    assert youtube_id("train/-_aB3-x_9Zq_000000_000010.mp4") == "-_aB3-x_9Zq"
    assert youtube_id("a_b-c_d-e_f.mp4") == "a_b-c_d-e_f"  # a file named by its id alone
    assert youtube_id("video_0001.mp4") is None


def test_annotation_problems_come_together(tmp_path: Path):
    root = published.kinetics_cvdf(tmp_path)
    table = root / "annotations/val.csv"
    table.write_text(table.read_text().replace("abseiling,valvideo001", "abseilling,valvideo001")
                     .replace("valvideo002,0,10", "valvideo002,zero,10").replace("valvideo003", "short-id"))
    with pytest.raises(AnnotationError) as caught:
        layouts.read("kinetics", root, "val")
    assert [str(problem) for problem in caught.value.problems] == [
        f"{table}, line 2: 'abseilling' is not a class of {root / 'annotations/train.csv'}; correct the label, or "
        f"restore both files as published",
        f"{table}, line 3: 'zero,10' are not the start and end times in seconds; {published_restore()}",
        f"{table}, line 4: 'short-id' is not a YouTube id (11 letters, digits, _ or -); {published_restore()}"]


def published_restore() -> str:
    return "restore the file as published (header `label,youtube_id,time_start,time_end,split`)"


def test_errors_name_the_layouts_tried_and_the_folders_searched(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"holds none of the Kinetics layouts for the train split\. Expected "
                                                r"the kinetics layout: .*official CSVs.*PyTorchVideo.*<split>/<class>"):
        layouts.read("kinetics", tmp_path, "train")
    root = published.kinetics_cvdf(tmp_path / "cvdf")
    for video in (root / "val").iterdir():
        video.unlink()
    with pytest.raises(FileNotFoundError, match=rf"none of the 5 videos listed in .*val\.csv is under {root}/val or "
                                                rf"{root}/validate"):
        layouts.read("kinetics", root, "val")
    (root / "annotations/train.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"test\.csv is an official Kinetics CSV, but there is no train CSV"):
        layouts.read("kinetics", root, "test")


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_fit_test_and_predict_through_the_cli(layout: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    root, runs = WRITERS[layout](tmp_path / layout), tmp_path / "runs"
    found = {"cvdf": 7, "crawler": 6}[layout]  # the crawler has no replacement folder
    with caplog.at_level(logging.INFO):
        main(["fit", *TINY, "--data.dataset", "kinetics", "--data.root", str(root), "--data.batch_size", "2",
              "--trainer.logger.init_args.save_dir", str(runs), "--trainer.limit_train_batches", "2",
              "--trainer.limit_val_batches", "2", "--trainer.max_epochs", "1"])
        run = runs / "lightning_logs/version_0"
        main(["test", "--ckpt_path", str(run / "checkpoints/last.ckpt"), "--data.num_workers", "0",
              "--trainer.enable_progress_bar", "false"])
    assert f"train: {found} of 8 listed videos found ({100 * found / 8:.1f}%); {8 - found} missing left out" in \
        caplog.text
    assert "val: 4 of 5 listed videos found (80.0%)" in caplog.text
    assert "test: 4 of 4 listed videos found (100.0%)" in caplog.text
    assert (run / "classes.txt").read_text().splitlines() == CLASSES
    tested = [row for row in csv.DictReader(open(run / "test/version_0/metrics.csv")) if row.get("test/videos")]
    assert float(tested[0]["test/videos"]) == 4

    unlabelled = published.kinetics_crawler(tmp_path / "unlabelled", test_labels=False)
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(run / "checkpoints/last.ckpt"), "--data.root", str(unlabelled),
          "--data.dataset", "kinetics", "--data.num_workers", "0", "--predictions.output_dir", str(out),
          "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar",
          "false"])
    predicted = json.loads((out / "predictions.json").read_text())
    assert sorted(Path(result["video"]).name for result in predicted) == sorted(
        published.kinetics_file_name(youtube, start, end) for _, youtube, start, end, _ in published.KINETICS_TEST)
    assert all(set(result["labels"]) == set(CLASSES) for result in predicted)
