"""Annotation files are checked when a stage is set up: every problem of every split it needs comes in one error,
each with its file, line (or JSON entry), value and fix, for every published layout."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

import published_layouts as published
from lightning_video.data import layouts
from lightning_video.data.annotations import AnnotationError
from lightning_video.data.datamodule import VideoDataModule


def csv_layout(root: Path, classes: list[str] | None = None, **splits: str) -> Path:
    """A csv-layout root with the given split files (the videos need not exist: labels are checked first)."""
    root.mkdir(parents=True, exist_ok=True)
    if classes is not None:
        (root / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    for split in layouts.SPLITS:
        (root / f"{split}.csv").write_text(splits.get(split, "a.mp4 0\nb.mp4 1\n"))
    return root


def problems(error: pytest.ExceptionInfo[AnnotationError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def test_every_problem_of_the_fit_splits_comes_in_one_error_before_training(tmp_path: Path):
    """The measured cases at once: a label outside classes.txt, a class name as label, a comma-separated line, and an
    empty validation file."""
    root = csv_layout(tmp_path, ["left", "right"], train="a.mp4 0\nb.mp4 5\n\nc.mp4 left\nd.mp4,1\ne.mp4 1\n", val="")
    data = VideoDataModule(str(root), num_workers=0)
    with pytest.raises(AnnotationError) as error:
        data.num_classes  # what the command line links into the model, before anything is trained
    assert str(error.value).startswith("4 problems in the dataset's annotation files, found before training")
    assert problems(error) == [
        f"{root}/train.csv, line 2: '5' is outside the 2 classes named in {root}/classes.txt (labels 0 to 1); "
        f"correct the label, or name its class in {root}/classes.txt",
        f"{root}/train.csv, line 4: 'left' is not an integer label; labels are class indices (0 to 1) into the "
        f"class names of {root}/classes.txt",
        f"{root}/train.csv, line 5: 'd.mp4,1' has no label (fields are separated by whitespace, not commas); "
        f"{layouts.CSV_LINE}",
        f"{root}/val.csv: is empty; {layouts.CSV_LINE}"]
    with pytest.raises(AnnotationError, match="4 problems"):
        data.setup("fit")
    data.setup("test")  # the test split is fine: testing does not need the others


def test_a_bad_test_split_is_reported_when_testing_is_set_up(tmp_path: Path):
    data = VideoDataModule(str(csv_layout(tmp_path, ["a", "b"], test="a.mp4 2\n")), num_workers=0)
    assert data.num_classes == 2
    with pytest.raises(AnnotationError, match=r"test\.csv, line 1: '2' is outside the 2 classes"):
        data.setup("test")


def test_without_classes_txt_the_inferred_class_count_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    data = VideoDataModule(str(csv_layout(tmp_path, test="a.mp4 2\n")), num_workers=0)
    with caplog.at_level(logging.INFO):
        assert data.num_classes == 3
    said = [record.getMessage() for record in caplog.records if "inferred" in record.getMessage()]
    assert said == [f"{tmp_path} has no classes.txt: 3 classes inferred from the labels of "
                    f"{tmp_path}/{{train.csv,val.csv,test.csv}} (labels seen: 0-2); to name them, write one class "
                    f"name per line, line i naming label i in {tmp_path}/classes.txt"]


def test_without_classes_txt_a_class_with_no_video_is_taken_for_a_wrong_label(tmp_path: Path):
    root = csv_layout(tmp_path, train="a.mp4 0\nb.mp4 1\nc.mp4 5\n")
    with pytest.raises(AnnotationError) as error:
        VideoDataModule(str(root), num_workers=0).num_classes
    assert problems(error) == [
        f"{root}/{{train.csv,val.csv,test.csv}}: '0-1, 5' are the labels used; without {root}/classes.txt the class "
        f"count is taken as the largest label + 1 = 6, which leaves the classes 2-4 with no video in any split; "
        f"correct the labels if those classes do not exist, or else write {root}/classes.txt naming all 6 classes "
        f"(write one class name per line, line i naming label i)"]
    (root / "classes.txt").write_text("".join(f"class {i}\n" for i in range(6)))
    assert VideoDataModule(str(root), num_workers=0).num_classes == 6  # the fix the message gives


def break_ssv2(root: Path) -> list[str]:
    entries = json.loads((root / "labels/train.json").read_text())
    entries[1]["template"] = "Pushing [something] from right to left"
    entries[2] = {"id": "100904"}
    (root / "labels/train.json").write_text(json.dumps(entries))
    return [r"labels/train\.json, entry 2: 'Pushing \[something\] from right to left' is not a template of "
            r".*labels\.json",
            r"labels/train\.json, entry 3: '{\"id\": \"100904\"}' needs both `id` and `template`"]


def break_ssv2_json(root: Path) -> list[str]:
    (root / "labels/train.json").write_text('[\n{"id": "1", "template": "x"},\n{"id": "2" "template": "y"}\n]')
    return [r"labels/train\.json, line 3: '\{\"id\": \"2\" \"template\": \"y\"\}' is not valid JSON \(Expecting ',' "
            r"delimiter, column 12\); restore the file as published"]


def break_ucf101(root: Path) -> list[str]:
    trainlist = root / "ucfTrainTestlist/trainlist01.txt"
    lines = trainlist.read_text().splitlines()
    lines[0] = "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2"
    lines[2] = "Bowling/v_Bowling_g08_c01.avi 4"
    trainlist.write_text("\r\n".join(lines) + "\r\n")
    return [r"ucfTrainTestlist/trainlist01\.txt, line 1: 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01\.avi 2' gives "
            r"label 2, but its folder is class 1 \(ApplyEyeMakeup\) in .*classInd\.txt; correct the label or the path",
            r"ucfTrainTestlist/trainlist01\.txt, line 3: 'Bowling/v_Bowling_g08_c01\.avi' is in a class folder "
            r"that .*classInd\.txt does not list"]


def break_hmdb51(root: Path) -> list[str]:
    split_file = root / "testTrainMulti_7030_splits/cartwheel_test_split1.txt"
    split_file.write_text(split_file.read_text().replace(" 1 ", " train "))
    return [r"testTrainMulti_7030_splits/cartwheel_test_split1\.txt, line 1: "
            r"'cartwheel_train_u_nm_np1_ba_goo_0\.avi train' is not `video\.avi 0\|1\|2`"]


def break_charades(root: Path) -> list[str]:
    table = root / "Charades_v1_train.csv"
    table.write_text(table.read_text().replace("c147", "c157"))
    return [r"Charades_v1_train\.csv, line 2: 'c157' is not a class code of .*Charades_v1_classes\.txt"]


def break_diving48(root: Path) -> list[str]:
    table = root / "Diving48_V2_train.json"
    entries = json.loads(table.read_text())
    entries[0]["label"], entries[1]["label"] = 48, "Back 15som"
    table.write_text(json.dumps(entries))
    return [r"Diving48_V2_train\.json, entry 1: '48' is outside the 48 classes named in .*Diving48_vocab\.json "
            r"\(labels 0 to 47\)", r"Diving48_V2_train\.json, entry 2: 'Back 15som' is not an integer label"]


def empty_kinetics_csv(root: Path) -> list[str]:
    (root / "train.csv").write_text("\n\n")
    return [r"train\.csv: is empty"]


BROKEN = {"ssv2": (published.ssv2, break_ssv2), "ssv2 json": (published.ssv2, break_ssv2_json),
          "ucf101": (published.ucf101, break_ucf101), "hmdb51": (published.hmdb51, break_hmdb51),
          "charades": (published.charades, break_charades), "diving48": (published.diving48, break_diving48),
          "kinetics": (published.kinetics_folders, empty_kinetics_csv)}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_layouts_problems_name_file_place_and_value(tmp_path: Path, case: str):
    write, corrupt = BROKEN[case]
    root = write(tmp_path)
    expected = corrupt(root)
    with pytest.raises(AnnotationError) as error:
        layouts.read(case.split()[0], root, "train")
    found = problems(error)
    assert len(found) == len(expected) and all(re.match(f"{re.escape(str(root))}/{pattern}", problem)
                                               for pattern, problem in zip(expected, found)), found


def test_a_split_that_lists_no_video_is_a_problem(tmp_path: Path):
    root = published.hmdb51(tmp_path)
    for split_file in (root / "testTrainMulti_7030_splits").iterdir():
        split_file.write_text(split_file.read_text().replace(" 1 ", " 0 "))
    with pytest.raises(AnnotationError, match=rf"{root}: lists no videos for the train split; add them as the hmdb51 "
                                              rf"layout expects"):
        layouts.read("hmdb51", root, "train")
    assert len(layouts.read("hmdb51", root, "test").videos) == 2
