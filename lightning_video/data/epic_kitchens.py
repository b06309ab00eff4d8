"""Epic-Kitchens-100 as published: action segments of long kitchen videos, each labelled with a verb and a noun.

The annotations (github.com/epic-kitchens/epic-kitchens-100-annotations, in the root or in its
`epic-kitchens-100-annotations/` folder) list each action as a row of `EPIC_100_{train,validation}.csv`: its video,
`start_frame` and `stop_frame` (frame numbers from 1, as the extracted frames are named), `verb_class` (97 classes) and
`noun_class` (300). Class names come from `EPIC_100_{verb,noun}_classes.csv` (columns `id,key,instances,category`)
when they are there, else they are numbered. The videos are `<participant>/videos/<video_id>.MP4` as the download
scripts write them, or extracted frames `<participant>/rgb_frames/<video_id>/frame_%010d.jpg`.

A model answers both questions from one clip (two heads); test labels are not published, so the val and test splits
are the validation set, as the papers report.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lightning_video.data.annotations import Problems
from lightning_video.data.segments import VideoSegment

if TYPE_CHECKING:
    from lightning_video.data.layouts import VideoList

HEADS = {"verb": 97, "noun": 300}
TABLES = {"train": "EPIC_100_train.csv", "val": "EPIC_100_validation.csv", "test": "EPIC_100_validation.csv"}
ANNOTATION_FOLDER = "epic-kitchens-100-annotations"
COLUMNS = ("participant_id", "video_id", "start_frame", "stop_frame", "verb_class", "noun_class")
AS_PUBLISHED = "restore the file as published (github.com/epic-kitchens/epic-kitchens-100-annotations)"
EXPECTED = ("{root}/EPIC_100_train.csv and {root}/EPIC_100_validation.csv (or in "
            "{root}/epic-kitchens-100-annotations/), optionally EPIC_100_verb_classes.csv and "
            "EPIC_100_noun_classes.csv beside them, and the videos as {root}/<participant>/videos/<video_id>.MP4 or "
            "their frames as {root}/<participant>/rgb_frames/<video_id>/frame_%010d.jpg")


def annotation_file(root: Path, name: str) -> Path:
    """`name` in the root, or in the annotation repository's folder cloned into it."""
    return root / name if (root / name).is_file() else root / ANNOTATION_FOLDER / name


def class_file(root: Path, head: str) -> Path:
    return annotation_file(root, f"EPIC_100_{head}_classes.csv")


def class_names(root: Path, head: str, problems: Problems) -> list[str]:
    """The `key` of each class id of `EPIC_100_<head>_classes.csv`, or "verb 0", "verb 1", ... without the file."""
    size, file = HEADS[head], class_file(root, head)
    if not file.is_file():
        return [f"{head} {index}" for index in range(size)]
    names: dict[int, str] = {}
    with file.open(newline="") as opened:
        rows = csv.DictReader(opened)
        if not {"id", "key"} <= set(rows.fieldnames or ()):
            problems.add(file, "line 1", ",".join(rows.fieldnames or ()), "needs the columns `id` and `key`",
                         AS_PUBLISHED)
            return [f"{head} {index}" for index in range(size)]
        for row in rows:
            index = problems.class_index(row["id"], file, f"line {rows.line_num}", size, f"Epic-Kitchens-100's {head} "
                                                                                         f"classes")
            if index is not None:
                names[index] = row["key"]
    missing = sorted(set(range(size)) - names.keys())
    if missing:
        problems.add(file, "", "", f"names {len(names)} of the {size} {head} classes; missing ids: "
                                   f"{', '.join(map(str, missing[:10]))}", AS_PUBLISHED)
    return [names.get(index, f"{head} {index}") for index in range(size)]


def _video(root: Path, participant: str, video_id: str) -> str:
    """The video file, else its frame folder; the file's path when neither is there (training skips and counts it,
    `check-data` reports it)."""
    file = root / participant / "videos" / f"{video_id}.MP4"
    frames = root / participant / "rgb_frames" / video_id
    return str(frames if not file.is_file() and frames.is_dir() else file)


def read_epic_kitchens(root: Path, split: str, fold: int, problems: Problems) -> VideoList:
    """Each action segment as a `VideoSegment` (frames counted from 0) with its (verb, noun) label."""
    from lightning_video.data.layouts import VideoList  # here: `layouts` imports this module to list its reader

    table = annotation_file(root, TABLES[split])
    if not table.is_file():
        raise FileNotFoundError(f"{table} is missing. Expected the epic_kitchens layout: {EXPECTED.format(root=root)}")
    heads = {head: class_names(root, head, problems) for head in HEADS}
    videos, found = [], {}
    with table.open(newline="") as opened:
        rows = csv.DictReader(opened)
        absent = [column for column in COLUMNS if column not in (rows.fieldnames or ())]
        if absent:
            problems.add(table, "line 1", ",".join(rows.fieldnames or ()), f"lacks the columns {', '.join(absent)}",
                         AS_PUBLISHED)
            return VideoList([], [name for names in heads.values() for name in names], heads=dict(HEADS))
        for row in rows:
            where = f"line {rows.line_num}"
            label = [problems.class_index(row[f"{head}_class"], table, where, size, str(class_file(root, head)))
                     for head, size in HEADS.items()]
            frames = _frame_numbers(row, table, where, problems)
            if None in label or frames is None:
                continue
            key = (row["participant_id"], row["video_id"])
            path = found.setdefault(key, _video(root, *key))
            videos.append((VideoSegment(path, frames[0] - 1, frames[1] - 1), torch.tensor(label)))
    return VideoList(videos, [name for names in heads.values() for name in names], heads=dict(HEADS))


def _frame_numbers(row: dict, table: Path, where: str, problems: Problems) -> tuple[int, int] | None:
    try:
        start, stop = int(row["start_frame"]), int(row["stop_frame"])
    except (TypeError, ValueError):
        start = stop = -1
    if not 1 <= start <= stop:
        problems.add(table, where, f"{row['start_frame']},{row['stop_frame']}",
                     "are not frame numbers with 1 <= start_frame <= stop_frame", AS_PUBLISHED)
        return None
    return start, stop
