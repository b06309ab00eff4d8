"""Kinetics-400/600/700 as the official download scripts leave it: the official annotation CSVs and the videos in
the CVDF layout (flat split folders and a replacement folder) or the crawler's (one folder per label).

The CSVs have the header `label,youtube_id,time_start,time_end,split` (Kinetics-400 adds `is_cc`; the test CSV of
the crawler era has no `label`), the labels are class names, and both layouts name a video
`{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`. A video is looked up by that name anywhere under its split's
folder, so flat folders (CVDF) and label folders (crawler; its label-less test videos in `test/`) read alike.
Labels are indices in the sorted order of the train CSV's class names, the order every Kinetics release is
usually numbered in.

Every Kinetics copy misses videos (taken off YouTube before it was downloaded: CVDF's Kinetics-400 has 240,258
of the 246,534 training videos). A missing video is left out of its split, counted, and said at setup
("train: 240,258 of 246,534 listed videos found (97.5%)") and by `check-data`, which lists them: kept, it would count
as unreadable at every epoch and at test, where the papers' numbers are over the videos found.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from lightning_video.data.annotations import Problems
from lightning_video.data.video_list import VIDEO_SUFFIXES, VideoList

# the columns a video needs; `label` is absent from the crawler-era test CSV; `split` and `is_cc` are not needed
ID_COLUMNS = ("youtube_id", "time_start", "time_end")
FOLDER_NAMES = {"train": ("train",), "val": ("val", "validate"), "test": ("test",)}
REPLACEMENT_FOLDER = "replacement"  # CVDF's Kinetics-400: replacement/replacement_for_corrupted_k400/
UNLABELLED = -1
AS_PUBLISHED = "restore the file as published (header `label,youtube_id,time_start,time_end,split`)"
YOUTUBE_ID = re.compile(r"[\w-]{11}")
VIDEO_NAME = re.compile(rf"(?P<id>{YOUTUBE_ID.pattern})_\d{{6}}_\d{{6}}")


def annotation_file(root: Path, split: str) -> Path | None:
    """The split's official CSV: `annotations/{split}.csv` (CVDF), `{split}.csv` (DeepMind's archives, whose val is
    `validate.csv`) or the crawler's `kinetics-400_{split}.csv`, in `root` or `root/annotations`; a `{split}.csv` of
    `path label` lines (PyTorchVideo's format) is not one."""
    for folder in (root / "annotations", root):
        for name in FOLDER_NAMES[split]:
            for table in [folder / f"{name}.csv", *sorted(folder.glob(f"kinetics*_{name}.csv"))]:
                if table.is_file() and set(ID_COLUMNS) <= set(_header(table)):
                    return table
    return None


def read_official(root: Path, split: str, table: Path, train_table: Path, problems: Problems) -> VideoList:
    """The videos `table` lists that are on disk under the split's folder (or, for Kinetics-400, its replacement
    folder, whose files replace corrupted originals and so are taken first), labelled by the sorted class names of
    `train_table`; the others in `VideoList.missing`."""
    labelled = "label" in _header(table)
    rows = _rows(table, problems, need_label=labelled)
    # the train CSV's own problems are reported when the train split is read
    train_rows = rows if table == train_table else _rows(train_table, Problems(), need_label=True)
    classes = sorted({row["label"] for _, row in train_rows} - {""})
    label_of = {name: label for label, name in enumerate(classes)}
    folders = [root / name for name in FOLDER_NAMES[split] if (root / name).is_dir()]
    found = video_index([root / REPLACEMENT_FOLDER, *folders])
    split_folder = folders[0] if folders else root / split
    nested = split_folder.is_dir() and any(entry.is_dir() for entry in os.scandir(split_folder))
    videos, missing = [], []
    for number, row in rows:
        name = _video_name(row, table, number, problems)
        label = label_of.get(row["label"]) if labelled else UNLABELLED
        if label is None and row["label"]:
            problems.add(table, f"line {number}", row["label"], f"is not a class of {train_table}",
                         "correct the label, or restore both files as published")
        if name is None or label is None:
            continue
        path = found.get(name) or found.get(row["youtube_id"])  # some downloaders name files by the id alone
        if path is not None:
            videos.append((path, label))
        else:
            missing.append(str(split_folder / (row["label"] if nested and labelled else "") / f"{name}.mp4"))
    listed = len(videos) + len(missing)
    share = min(round(100 * len(videos) / max(listed, 1), 1), 99.9 if missing else 100.0)
    left_out = f"; {len(missing):,} missing left out (`check-data` lists them)" if missing else ""
    note = f"{split}: {len(videos):,} of {listed:,} listed videos found ({share:.1f}%){left_out}"
    return VideoList(videos, classes, [note], missing, labelled)


def _header(table: Path) -> list[str]:
    with table.open(newline="", encoding="utf-8-sig") as file:  # a BOM would hide `label`
        return next(csv.reader(file), [])


def _rows(table: Path, problems: Problems, need_label: bool) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of an official CSV, with the columns read (`label` where there is one, and ID_COLUMNS); a
    missing column, an empty file or an empty label is noted."""
    with table.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        needed = set(ID_COLUMNS) | ({"label"} if need_label else set())
        if not needed <= set(header):
            absent = needed - set(header)
            problems.add(table, "line 1", ",".join(header),
                         f"lacks the column{'s' if len(absent) > 1 else ''} {', '.join(sorted(absent))}", AS_PUBLISHED)
            return []
        columns = [(name, header.index(name)) for name in ("label", *ID_COLUMNS) if name in header]
        rows = [(reader.line_num, {name: fields[index].strip() if index < len(fields) else ""
                                   for name, index in columns}) for fields in reader if fields]
    if not rows:
        problems.add(table, "", "", "lists no videos", AS_PUBLISHED)
    for number, row in rows:
        if need_label and not row["label"]:
            problems.add(table, f"line {number}", ",".join(row.values()), "has no label", AS_PUBLISHED)
    return rows


def _video_name(row: dict[str, str], table: Path, number: int, problems: Problems) -> str | None:
    """`{youtube_id}_{time_start:06d}_{time_end:06d}`, the name the download scripts give the row's video."""
    if not YOUTUBE_ID.fullmatch(row["youtube_id"]):
        problems.add(table, f"line {number}", row["youtube_id"], "is not a YouTube id (11 letters, digits, _ or -)",
                     AS_PUBLISHED)
        return None
    try:
        start, end = int(float(row["time_start"])), int(float(row["time_end"]))
    except ValueError:
        problems.add(table, f"line {number}", f"{row['time_start']},{row['time_end']}",
                     "are not the start and end times in seconds", AS_PUBLISHED)
        return None
    return f"{row['youtube_id']}_{start:06d}_{end:06d}"


def video_index(folders: list[Path]) -> dict[str, str]:
    """File stem → path of the video files anywhere under `folders` (the first found wins), listing each folder
    once rather than probing every name (a split folder holds up to half a million files)."""
    found: dict[str, str] = {}
    for folder in folders:
        for parent, _, files in sorted(os.walk(folder)):
            for name in sorted(files):
                stem, suffix = os.path.splitext(name)
                if suffix.lower() in VIDEO_SUFFIXES:
                    found.setdefault(stem, os.path.join(parent, name))
    return found


def youtube_id(path: str | Path) -> str | None:
    """The YouTube id of a Kinetics file (`{id}_{start:06d}_{end:06d}.mp4`, or `{id}.mp4`): its first 11 characters,
    which may themselves hold `_` and `-`; None for a file not named so."""
    stem = Path(path).stem
    match = VIDEO_NAME.fullmatch(stem)
    if match:
        return match["id"]
    return stem if YOUTUBE_ID.fullmatch(stem) else None


def video_id(path: str) -> str:
    """What makes two files the same video, for `check-data`'s duplicates across splits: the YouTube id (the same
    video cut at other times is still a leak), else the file itself."""
    return youtube_id(path) or str(Path(path).resolve())
