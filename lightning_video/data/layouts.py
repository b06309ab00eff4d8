"""Where each dataset keeps its videos and labels, as published: one small reader per layout.

A reader takes the dataset root, a split ("train", "val" or "test") and the official fold (UCF101 and HMDB51 have
three) and returns the split's (path, label) pairs and the class names. Datasets published without a validation
split (UCF101, HMDB51, Charades, Diving-48) and SSv2, whose test labels are not in its JSON files, validate and test
on their test (SSv2: validation) split, as the papers report. A missing file raises FileNotFoundError naming it
and the layout expected. A video listed but absent stays in the list, so that training skips and counts it and
`check-data` reports it.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from pytorchvideo.data.labeled_video_paths import LabeledVideoPaths

SPLITS = ("train", "val", "test")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
Label = int | torch.Tensor  # a class index, or a multi-hot float vector for multi-label data


@dataclass
class VideoList:
    videos: list[tuple[str, Label]]
    classes: list[str]


@dataclass(frozen=True)
class Layout:
    """A dataset's reader, the layout it expects (for error messages) and the papers' settings for it.

    Args:
        read: (root, split, fold) → VideoList.
        expected: the files the reader needs, `{root}` standing for the root.
        multi_label: labels are multi-hot vectors (train with `model.multi_label`, score with mAP).
        sampling: the frame sampling the papers use on it (see `sampling`).
        horizontal_flip: whether flipping keeps the label (not for "left to right" classes).
    """

    read: Callable[[Path, str, int], VideoList]
    expected: str
    multi_label: bool = False
    sampling: str = "clip"
    horizontal_flip: bool = True


def read(dataset: str, root: str | Path, split: str, fold: int = 1) -> VideoList:
    """The videos of one split of `dataset` (a key of LAYOUTS) stored at `root`."""
    if dataset not in LAYOUTS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(LAYOUTS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    root = Path(root)
    if not root.is_dir():
        raise _missing(f"data folder {root} does not exist", root, dataset)
    return LAYOUTS[dataset].read(root, split, fold)


def _missing(what: str, root: Path, dataset: str) -> FileNotFoundError:
    return FileNotFoundError(f"{what}. Expected the {dataset} layout: {LAYOUTS[dataset].expected.format(root=root)}")


def _need(path: Path, root: Path, dataset: str) -> Path:
    if not path.exists():
        raise _missing(f"{path} is missing", root, dataset)
    return path


def _lines(path: Path) -> list[str]:
    """Non-empty stripped lines (the official UCF101 and HMDB51 lists have Windows line ends and trailing spaces)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_csv(root: Path, split: str, fold: int) -> VideoList:
    paths = LabeledVideoPaths.from_path(str(_need(root / f"{split}.csv", root, "csv")))
    paths.path_prefix = str(root)
    videos = [(path, info["label"]) for path, info in paths]
    if (root / "classes.txt").is_file():
        return VideoList(videos, _lines(root / "classes.txt"))
    labels = {info["label"] for name in SPLITS if (root / f"{name}.csv").is_file()
              for _, info in LabeledVideoPaths.from_path(str(root / f"{name}.csv"))}
    return VideoList(videos, [str(label) for label in range(max(labels) + 1)])


def read_folders(root: Path, split: str, fold: int) -> VideoList:
    """Class folders, the classes being those of every split (sorted), so that labels agree across splits."""
    folder = _need(root / split, root, "folder")
    classes = sorted({path.name for name in SPLITS if (root / name).is_dir() for path in (root / name).iterdir()
                      if path.is_dir()})
    videos = [(str(path), label) for label, name in enumerate(classes) if (folder / name).is_dir()
              for path in sorted((folder / name).iterdir()) if path.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in the class folders of {folder}")
    return VideoList(videos, classes)


def read_kinetics(root: Path, split: str, fold: int) -> VideoList:
    if (root / f"{split}.csv").is_file():
        return read_csv(root, split, fold)
    if (root / split).is_dir():
        return read_folders(root, split, fold)
    raise _missing(f"neither {root / f'{split}.csv'} nor {root / split} exists", root, "kinetics")


def _index(folder: Path) -> dict[str, str]:
    """Video id → its file (any video suffix) or frame folder, listing the folder once rather than probing each id."""
    return {entry.stem if entry.suffix.lower() in VIDEO_SUFFIXES else entry.name: str(entry) for entry in
            folder.iterdir() if entry.is_dir() or entry.suffix.lower() in VIDEO_SUFFIXES}


SSV2_VIDEO_FOLDERS = ("20bn-something-something-v2", "videos", "frames")


def read_ssv2(root: Path, split: str, fold: int) -> VideoList:
    labels = json.loads(_need(root / "labels/something-something-v2-labels.json", root, "ssv2").read_text())
    entries = json.loads(_need(root / f"labels/{'train' if split == 'train' else 'validation'}.json",
                               root, "ssv2").read_text())
    folder = next((root / name for name in SSV2_VIDEO_FOLDERS if (root / name).is_dir()), None)
    if folder is None:
        raise _missing(f"no video folder ({', '.join(SSV2_VIDEO_FOLDERS)}) in {root}", root, "ssv2")
    found = _index(folder)
    classes = sorted(labels, key=lambda template: int(labels[template]))
    videos = [(found.get(entry["id"], str(folder / f"{entry['id']}.webm")),
               int(labels[entry["template"].replace("[", "").replace("]", "")])) for entry in entries]
    return VideoList(videos, classes)


def read_ucf101(root: Path, split: str, fold: int) -> VideoList:
    lists = root / "ucfTrainTestlist"
    classes = [line.split()[1] for line in _lines(_need(lists / "classInd.txt", root, "ucf101"))]
    label_of = {name.lower(): label for label, name in enumerate(classes)}  # the lists' case varies
    names = _lines(_need(lists / f"{'train' if split == 'train' else 'test'}list0{fold}.txt", root, "ucf101"))
    # trainlist lines carry a 1-based label; testlist lines only the path, whose folder is the class
    paths = [line.split()[0] for line in names]
    return VideoList([(str(root / "UCF-101" / path), label_of[path.split("/")[0].lower()]) for path in paths],
                     classes)


def read_hmdb51(root: Path, split: str, fold: int) -> VideoList:
    lists = _need(root / "testTrainMulti_7030_splits", root, "hmdb51")
    suffix = f"_test_split{fold}.txt"
    files = sorted(lists.glob(f"*{suffix}"))
    if not files:
        raise _missing(f"no *{suffix} files in {lists}", root, "hmdb51")
    wanted = "1" if split == "train" else "2"  # 1 train, 2 test, 0 unused
    classes = [file.name[:-len(suffix)] for file in files]
    videos = [(str(root / name / line.split()[0]), label) for label, (name, file) in enumerate(zip(classes, files))
              for line in _lines(file) if line.split()[1] == wanted]
    return VideoList(videos, classes)


def read_charades(root: Path, split: str, fold: int) -> VideoList:
    """Video-level multi-hot targets: the union of the classes of all the video's actions."""
    class_lines = _lines(_need(root / "Charades_v1_classes.txt", root, "charades"))
    codes = {line.split()[0]: index for index, line in enumerate(class_lines)}
    table = _need(root / f"Charades_v1_{'train' if split == 'train' else 'test'}.csv", root, "charades")
    videos = []
    with table.open(newline="") as file:
        for row in csv.DictReader(file):
            target = torch.zeros(len(codes))
            for action in filter(None, row["actions"].split(";")):
                target[codes[action.split()[0]]] = 1.0
            videos.append((str(root / "Charades_v1_480" / f"{row['id']}.mp4"), target))
    return VideoList(videos, [line.split(maxsplit=1)[1] for line in class_lines])


def read_diving48(root: Path, split: str, fold: int) -> VideoList:
    vocab = json.loads(_need(root / "Diving48_vocab.json", root, "diving48").read_text())
    table = _need(root / f"Diving48_V2_{'train' if split == 'train' else 'test'}.json", root, "diving48")
    videos = [(str(root / "rgb" / f"{entry['vid_name']}.mp4"), int(entry["label"]))
              for entry in json.loads(table.read_text())]
    return VideoList(videos, [" ".join(parts) for parts in vocab])


LAYOUTS: dict[str, Layout] = {
    "csv": Layout(read_csv, "{root}/train.csv, {root}/val.csv and {root}/test.csv, one `path label` line per "
                            "video (paths relative to {root} or absolute, integer labels), and optionally "
                            "{root}/classes.txt with one class name per line"),
    "folder": Layout(read_folders, "{root}/<split>/<class>/<video> for the splits train, val and test, one folder "
                                   "per class (labels in sorted class-name order)"),
    "kinetics": Layout(read_kinetics, "Kinetics-400/600/700 as PyTorchVideo reads it: {root}/<split>.csv (see "
                                      "`csv`) or else {root}/<split>/<class>/<video> (see `folder`), for the "
                                      "splits train, val and test"),
    "ssv2": Layout(read_ssv2, "{root}/labels/something-something-v2-labels.json, {root}/labels/train.json and "
                              "{root}/labels/validation.json as published, and the videos as "
                              "{root}/20bn-something-something-v2/<id>.webm (or <id>.mp4), or under {root}/videos "
                              "or {root}/frames, where <id>/ may also be a folder of frames",
                   sampling="segments", horizontal_flip=False),
    "ucf101": Layout(read_ucf101, "{root}/ucfTrainTestlist/{{classInd.txt, trainlist0N.txt, testlist0N.txt}} and "
                                  "the videos as {root}/UCF-101/<Class>/v_<Class>_gXX_cXX.avi (the two official "
                                  "archives unpacked in {root})"),
    "hmdb51": Layout(read_hmdb51, "{root}/testTrainMulti_7030_splits/<class>_test_split<N>.txt (lines `video.avi "
                                  "1|2|0`: train, test, unused) and the videos as {root}/<class>/<video>.avi"),
    "charades": Layout(read_charades, "{root}/Charades_v1_classes.txt, {root}/Charades_v1_train.csv and "
                                      "{root}/Charades_v1_test.csv (columns `id` and `actions`) and the videos as "
                                      "{root}/Charades_v1_480/<id>.mp4",
                       multi_label=True),
    "diving48": Layout(read_diving48, "{root}/Diving48_vocab.json, {root}/Diving48_V2_train.json and "
                                      "{root}/Diving48_V2_test.json (lists of {{vid_name, label, ...}}) and the "
                                      "videos as {root}/rgb/<vid_name>.mp4"),
}
