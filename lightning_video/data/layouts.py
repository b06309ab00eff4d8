"""Where each dataset keeps its videos and labels, as published: one small reader per layout.

A reader takes the dataset root, a split ("train", "val" or "test"), the official fold (UCF101 and HMDB51 have
three) and a `Problems` collector, and returns the split's (path, label) pairs and the class names. Datasets
published without a validation split (UCF101, HMDB51, Charades, Diving-48) and SSv2, whose test labels are not in
its JSON files, validate and test on their test (SSv2: validation) split, as the papers report. A missing file
raises FileNotFoundError naming it and the layout expected. Every bad line or entry of a file that is there is noted
and skipped, and `read` raises one AnnotationError naming them all (`annotations`). A video listed but absent stays
in the list, so that training skips and counts it and `check-data` reports it; Kinetics, where absent videos are
normal, leaves them out and counts them instead (`kinetics`).
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lightning_video.data import epic_kitchens, kinetics
from lightning_video.data.annotations import Problems, spans
# Label and VideoList are imported from here too
from lightning_video.data.video_list import SPLITS, VIDEO_SUFFIXES, Label, VideoList


def same_file(path: str) -> str:
    """The file itself, whatever the path's spelling: two splits listing it share a video."""
    return str(Path(path).resolve())


@dataclass(frozen=True)
class Layout:
    """A dataset's reader, the layout it expects (for error messages) and the papers' settings for it.

    Args:
        read: (root, split, fold, problems) → VideoList, noting each bad line in `problems`.
        expected: the files the reader needs, `{root}` standing for the root.
        multi_label: labels are multi-hot vectors (train with `model.multi_label`, score with mAP).
        sampling: the frame sampling the papers use on it (see `sampling`).
        horizontal_flip: whether flipping keeps the label (not for "left to right" classes).
        video_id: path → what makes two files the same video (`check-data` reports one in two splits).
    """

    read: Callable[[Path, str, int, Problems], VideoList]
    expected: str
    multi_label: bool = False
    sampling: str = "clip"
    horizontal_flip: bool = True
    video_id: Callable[[str], str] = same_file


def read(dataset: str, root: str | Path, split: str, fold: int = 1) -> VideoList:
    """The videos of one split of `dataset` (a key of LAYOUTS) stored at `root`; AnnotationError lists every problem
    of its files."""
    if dataset not in LAYOUTS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(LAYOUTS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    root = Path(root)
    if not root.is_dir():
        raise _missing(f"data folder {root} does not exist", root, dataset)
    problems = Problems()
    videos = LAYOUTS[dataset].read(root, split, fold, problems)
    if not videos.videos and not problems.found:
        problems.add(root, "", "", f"lists no videos for the {split} split",
                     f"add them as the {dataset} layout expects: {LAYOUTS[dataset].expected.format(root=root)}")
    problems.raise_if_any()
    return videos


def _missing(what: str, root: Path, dataset: str) -> FileNotFoundError:
    return FileNotFoundError(f"{what}. Expected the {dataset} layout: {LAYOUTS[dataset].expected.format(root=root)}")


def _need(path: Path, root: Path, dataset: str) -> Path:
    if not path.exists():
        raise _missing(f"{path} is missing", root, dataset)
    return path


CSV_LINE = "write one `path label` line per video: the path relative to the root or absolute, then whitespace and " \
           "an integer label"
CLASS_NAMES_LINE = "write one class name per line, line i naming label i"


def _csv_rows(table: Path, problems: Problems, classes: int | None, names_file: Path) -> list[tuple[str, int]]:
    """The (path, label) of each good `path label` line of `table` (PyTorchVideo's format)."""
    rows = []
    for number, line in problems.lines(table, CSV_LINE):
        fields = line.rsplit(None, 1)
        if len(fields) < 2:
            comma = " (fields are separated by whitespace, not commas)" if "," in line else ""
            problems.add(table, f"line {number}", line, f"has no label{comma}", CSV_LINE)
            continue
        label = problems.class_index(fields[1], table, f"line {number}", classes, str(names_file))
        if label is not None:
            rows.append((fields[0], label))
    return rows


def read_csv(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    """Labels checked against classes.txt, or, without it, the class count inferred from the labels of every split,
    which must then leave no class without a video: a gap is more likely a wrong label than a class never seen."""
    table, names_file = _need(root / f"{split}.csv", root, "csv"), root / "classes.txt"
    if names_file.is_file():
        classes = [line for _, line in problems.lines(names_file, CLASS_NAMES_LINE)]
        rows = _csv_rows(table, problems, len(classes) or None, names_file)
        return VideoList([(str(root / path), label) for path, label in rows], classes)
    rows = _csv_rows(table, problems, None, names_file)
    tables = [root / f"{name}.csv" for name in SPLITS if (root / f"{name}.csv").is_file()]
    # the other splits' bad lines are reported when those splits are read
    labels = {label for other in tables for _, label in _csv_rows(other, Problems(), None, names_file)}
    count = max(labels, default=-1) + 1
    files = f"{root}/{{{','.join(other.name for other in tables)}}}" if len(tables) > 1 else str(table)
    if set(range(count)) - labels:
        problems.add(files, "", spans(labels), f"are the labels used; without {names_file} the class count is taken "
                                               f"as the largest label + 1 = {count}, which leaves the classes "
                                               f"{spans(set(range(count)) - labels)} with no video in any split",
                     f"correct the labels if those classes do not exist, or else write {names_file} naming all "
                     f"{count} classes ({CLASS_NAMES_LINE})")
    note = (f"{root} has no classes.txt: {count} classes inferred from the labels of {files} (labels seen: "
            f"{spans(labels)}); to name them, {CLASS_NAMES_LINE} in {names_file}")
    return VideoList([(str(root / path), label) for path, label in rows], [str(label) for label in range(count)],
                     [note])


def read_folders(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    """Class folders, the classes being those of every split (sorted), so that labels agree across splits."""
    folder = _need(root / split, root, "folder")
    classes = sorted({path.name for name in SPLITS if (root / name).is_dir() for path in (root / name).iterdir()
                      if path.is_dir()})
    videos = [(str(path), label) for label, name in enumerate(classes) if (folder / name).is_dir()
              for path in sorted((folder / name).iterdir()) if path.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in the class folders of {folder}")
    return VideoList(videos, classes)


def read_kinetics(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    """The first layout of the three that `root` holds for `split`: the official CSVs (CVDF or crawler layout, see
    `kinetics`), PyTorchVideo's `path label` csv, or class folders."""
    table = kinetics.annotation_file(root, split)
    if table is not None:
        train_table = kinetics.annotation_file(root, "train")
        if train_table is None:
            raise _missing(f"{table} is an official Kinetics CSV, but there is no train CSV beside it to take the "
                           f"class names from", root, "kinetics")
        videos = kinetics.read_official(root, split, table, train_table, problems)
        if videos.missing and not videos.videos:
            folders = " or ".join(str(root / name) for name in kinetics.FOLDER_NAMES[split])
            raise _missing(f"none of the {videos.listed:,} videos listed in {table} is under {folders} (nor "
                           f"{root / kinetics.REPLACEMENT_FOLDER}); the first: {videos.missing[0]}", root, "kinetics")
        return videos
    if (root / f"{split}.csv").is_file():
        return read_csv(root, split, fold, problems)
    if (root / split).is_dir():
        return read_folders(root, split, fold, problems)
    raise _missing(f"{root} holds none of the Kinetics layouts for the {split} split", root, "kinetics")


def _index(folder: Path) -> dict[str, str]:
    """Video id → its file (any video suffix) or frame folder, listing the folder once rather than probing each id."""
    return {entry.stem if entry.suffix.lower() in VIDEO_SUFFIXES else entry.name: str(entry) for entry in
            folder.iterdir() if entry.is_dir() or entry.suffix.lower() in VIDEO_SUFFIXES}


SSV2_VIDEO_FOLDERS = ("20bn-something-something-v2", "videos", "frames")
AS_PUBLISHED = "restore the file as published"


def read_ssv2(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    labels_file = _need(root / "labels/something-something-v2-labels.json", root, "ssv2")
    table = _need(root / f"labels/{'train' if split == 'train' else 'validation'}.json", root, "ssv2")
    folder = next((root / name for name in SSV2_VIDEO_FOLDERS if (root / name).is_dir()), None)
    if folder is None:
        raise _missing(f"no video folder ({', '.join(SSV2_VIDEO_FOLDERS)}) in {root}", root, "ssv2")
    ids = {template: problems.class_index(value, labels_file, f"template {template!r}", None, str(labels_file))
           for template, value in problems.json(labels_file, dict, AS_PUBLISHED + " ({template: class id})").items()}
    label_of = {template: label for template, label in ids.items() if label is not None}
    if sorted(label_of.values()) != list(range(len(label_of))):
        problems.add(labels_file, "", spans(label_of.values()), f"are the class ids of its {len(label_of)} "
                                                                f"templates, not 0 to {len(label_of) - 1} once each",
                     AS_PUBLISHED)
    found, videos = _index(folder), []
    for number, entry in problems.entries(table, ("id", "template"), AS_PUBLISHED):
        template = str(entry["template"]).replace("[", "").replace("]", "")
        if template not in label_of:
            problems.add(table, f"entry {number}", entry["template"], f"is not a template of {labels_file}",
                         "correct the template, or restore both files as published")
            continue
        videos.append((found.get(str(entry["id"]), str(folder / f"{entry['id']}.webm")), label_of[template]))
    return VideoList(videos, sorted(label_of, key=label_of.get))


def read_ucf101(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    lists = root / "ucfTrainTestlist"
    class_file = _need(lists / "classInd.txt", root, "ucf101")
    classes = []
    for number, line in problems.lines(class_file, AS_PUBLISHED + ": line i is `i ClassName`"):
        fields = line.split()
        if len(fields) != 2 or fields[0] != str(len(classes) + 1):
            problems.add(class_file, f"line {number}", line, f"is not `{len(classes) + 1} ClassName`",
                         AS_PUBLISHED + ": line i is `i ClassName`")
        classes.append(fields[-1])
    label_of = {name.lower(): label for label, name in enumerate(classes)}  # the lists' case varies
    names = _need(lists / f"{'train' if split == 'train' else 'test'}list0{fold}.txt", root, "ucf101")
    videos = []
    # trainlist lines carry a 1-based label; testlist lines only the path, whose folder is the class
    for number, line in problems.lines(names, AS_PUBLISHED + ": lines `Class/v_Class_gXX_cXX.avi [label]`"):
        path, *label_field = line.split()
        label = label_of.get(path.split("/")[0].lower())
        if label is None:
            problems.add(names, f"line {number}", path, f"is in a class folder that {class_file} does not list",
                         "correct the path (`Class/v_Class_gXX_cXX.avi`) or restore classInd.txt as published")
        elif label_field[:1] not in ([], [str(label + 1)]):
            problems.add(names, f"line {number}", line, f"gives label {label_field[0]}, but its folder is class "
                                                        f"{label + 1} ({classes[label]}) in {class_file}",
                         "correct the label or the path")
        else:
            videos.append((str(root / "UCF-101" / path), label))
    return VideoList(videos, classes)


def read_hmdb51(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    lists = _need(root / "testTrainMulti_7030_splits", root, "hmdb51")
    suffix = f"_test_split{fold}.txt"
    files = sorted(lists.glob(f"*{suffix}"))
    if not files:
        raise _missing(f"no *{suffix} files in {lists}", root, "hmdb51")
    wanted = "1" if split == "train" else "2"  # 1 train, 2 test, 0 unused
    classes, videos = [file.name[:-len(suffix)] for file in files], []
    for label, (name, file) in enumerate(zip(classes, files)):
        for number, line in problems.lines(file, AS_PUBLISHED + ": lines `video.avi 0|1|2`"):
            fields = line.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                problems.add(file, f"line {number}", line, "is not `video.avi 0|1|2` (0 unused, 1 train, 2 test)",
                             AS_PUBLISHED)
            elif fields[1] == wanted:
                videos.append((str(root / name / fields[0]), label))
    return VideoList(videos, classes)


def read_charades(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    """Video-level multi-hot targets: the union of the classes of all the video's actions."""
    class_file = _need(root / "Charades_v1_classes.txt", root, "charades")
    codes, classes = {}, []
    for number, line in problems.lines(class_file, AS_PUBLISHED + ": lines `cNNN Class name`"):
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            problems.add(class_file, f"line {number}", line, "is not `cNNN Class name`", AS_PUBLISHED)
            continue
        codes[fields[0]] = len(classes)
        classes.append(fields[1])
    table = _need(root / f"Charades_v1_{'train' if split == 'train' else 'test'}.csv", root, "charades")
    videos = []
    with table.open(newline="") as file:
        rows = csv.DictReader(file)
        if not {"id", "actions"} <= set(rows.fieldnames or ()):
            problems.add(table, "line 1", ",".join(rows.fieldnames or ()), "needs the columns `id` and `actions`",
                         AS_PUBLISHED)
            return VideoList(videos, classes)
        for row in rows:
            target = torch.zeros(len(classes))
            for code in (action.split()[0] for action in (row["actions"] or "").split(";") if action.strip()):
                if code in codes:
                    target[codes[code]] = 1.0
                else:
                    problems.add(table, f"line {rows.line_num}", code, f"is not a class code of {class_file}",
                                 "correct the action, or restore the class file as published")
            videos.append((str(root / "Charades_v1_480" / f"{row['id']}.mp4"), target))
    return VideoList(videos, classes)


def read_diving48(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    vocab_file = _need(root / "Diving48_vocab.json", root, "diving48")
    vocab = problems.json(vocab_file, list, AS_PUBLISHED + " (a list of [takeoff, somersaults, twists, flight])")
    table = _need(root / f"Diving48_V2_{'train' if split == 'train' else 'test'}.json", root, "diving48")
    videos = []
    for number, entry in problems.entries(table, ("vid_name", "label"), AS_PUBLISHED):
        label = problems.class_index(entry["label"], table, f"entry {number}", len(vocab) or None, str(vocab_file))
        if label is not None:
            videos.append((str(root / "rgb" / f"{entry['vid_name']}.mp4"), label))
    return VideoList(videos, [" ".join(map(str, parts)) if isinstance(parts, list) else str(parts) for parts in vocab])


LAYOUTS: dict[str, Layout] = {
    "csv": Layout(read_csv, "{root}/train.csv, {root}/val.csv and {root}/test.csv, one `path label` line per "
                            "video (paths relative to {root} or absolute, integer labels), and optionally "
                            "{root}/classes.txt with one class name per line (without it the class count is the "
                            "largest label + 1, and every class needs a video)"),
    "folder": Layout(read_folders, "{root}/<split>/<class>/<video> for the splits train, val and test, one folder "
                                   "per class (labels in sorted class-name order)"),
    "kinetics": Layout(read_kinetics, "Kinetics-400/600/700 in one of three layouts, tried in this order: the "
                                      "official CSVs (header label,youtube_id,time_start,time_end,split) as "
                                      "{root}/annotations/<split>.csv, {root}/<split>.csv or "
                                      "{root}/kinetics-400_<split>.csv (val also as validate) with the videos "
                                      "<youtube_id>_<start>_<end>.mp4 anywhere under {root}/<split>/ (CVDF's flat "
                                      "folders or the crawler's label folders) or {root}/replacement/; else "
                                      "PyTorchVideo's {root}/<split>.csv of `path label` lines (see `csv`); else "
                                      "{root}/<split>/<class>/<video> (see `folder`)",
                       video_id=kinetics.video_id),
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
    "epic_kitchens": Layout(epic_kitchens.read_epic_kitchens, epic_kitchens.EXPECTED, sampling="segments"),
}
