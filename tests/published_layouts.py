"""Tiny copies of the datasets' published layouts, written by the tests: label files in the official formats and
real encoded videos (or frame folders) in which frame t is grey level 16·t + 8, so a test can tell which frames
a clip took (`frame_numbers`)."""
from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from lightning_video.data.synthetic import write_mp4

FRAMES = 12
SIZE = 16


def grey_ramp(frames: int = FRAMES) -> np.ndarray:
    return np.repeat((np.arange(frames) * 16 + 8).astype(np.uint8), SIZE * SIZE * 3).reshape(frames, SIZE, SIZE, 3)


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """The frame index of each frame of a uint8 `[T, H, W, 3]` clip of a grey-ramp video."""
    return [round((level - 8) / 16) for level in clip.float().mean(dim=(1, 2, 3)).tolist()]


def write_video(path: Path, frames: int = FRAMES) -> Path:
    """A grey-ramp video in the codec its suffix implies for these datasets: MPEG-4 part 2 in .avi (UCF101's XviD,
    HMDB51's DivX), VP9 in .webm (SSv2), H.264 otherwise."""
    if path.suffix == ".mp4":
        write_mp4(path, grey_ramp(frames), fps=10)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = {".avi": "mpeg4", ".webm": "libvpx-vp9"}[path.suffix]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.height = stream.width = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "1"} if codec == "mpeg4" else {"lossless": "1"}
        for index, image in enumerate(grey_ramp(frames)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 10)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_frame_folder(folder: Path, frames: int = FRAMES, name: str = "{:06d}.jpg") -> Path:
    """A video as one JPEG per frame, named by `name` from frame number 1 (default: like the usual SSv2 frame
    extraction, `000001.jpg`, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(grey_ramp(frames)):
        Image.fromarray(image).save(folder / name.format(index + 1), quality=100)
    return folder


CSV_CLASSES = ("opening a door", "closing a door")


def csv_layout(root: Path) -> Path:
    """This project's csv layout: `<split>.csv` with `relative/path.mp4 label` lines and `classes.txt`; per class two
    training videos and one each for val and test."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(f"{name}\n" for name in CSV_CLASSES))
    for split, count in (("train", 2), ("val", 1), ("test", 1)):
        videos = [(f"videos/{split}_{label}_{index}.mp4", label) for label in range(len(CSV_CLASSES))
                  for index in range(count)]
        (root / f"{split}.csv").write_text("".join(f"{path} {label}\n" for path, label in videos))
        for path, _ in videos:
            write_video(root / path)
    return root


KINETICS_CLASSES = ("abseiling", "air drumming")


def kinetics_folders(root: Path) -> Path:
    """`root/<split>/<class>/<youtube id>_<start>_<end>.mp4`, as the Kinetics downloaders write it."""
    for split, count in (("train", 2), ("val", 1), ("test", 1)):
        for label, name in enumerate(KINETICS_CLASSES):
            for index in range(count):
                write_video(root / split / name / f"{split}{label}{index}xYz_{index:06d}_{index + 10:06d}.mp4")
    (root / "train" / KINETICS_CLASSES[0] / "notes.txt").write_text("not a video: ignored")
    return root


# templates → ids as in something-something-v2-labels.json (ids deliberately not in template order)
SSV2_LABELS = {"Pushing something from left to right": "0", "Approaching something with your camera": "1",
               "Moving something and something away from each other": "2"}
SSV2_TRAIN = [("78687", "Approaching [something] with your camera", ["a mug"]),
              ("42326", "Pushing [something] from left to right", ["a pen"]),
              ("100904", "Moving [something] and [something] away from each other", ["a cup", "a box"])]
SSV2_VALIDATION = [("74225", "Pushing [something] from left to right", ["a book"]),
                   ("116154", "Approaching [something] with your camera", ["a lamp"])]


def _ssv2_entries(videos: list[tuple[str, str, list[str]]]) -> list[dict]:
    return [{"id": id_, "label": template.replace("[something]", "{}").format(*objects).lower(), "template": template,
             "placeholders": objects} for id_, template, objects in videos]


def ssv2(root: Path, store: str = "webm") -> Path:
    """The published label files, and the videos as `20bn-something-something-v2/<id>.webm` (`store="webm"`; the
    second validation video as .mp4) or as frame folders `frames/<id>/*.jpg` (`store="frames"`)."""
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "something-something-v2-labels.json").write_text(json.dumps(SSV2_LABELS, indent=1))
    (labels / "train.json").write_text(json.dumps(_ssv2_entries(SSV2_TRAIN)))
    (labels / "validation.json").write_text(json.dumps(_ssv2_entries(SSV2_VALIDATION)))
    (labels / "test.json").write_text(json.dumps([{"id": "1420"}]))  # published without labels
    for index, (id_, _, _) in enumerate(SSV2_TRAIN + SSV2_VALIDATION):
        if store == "frames":
            write_frame_folder(root / "frames" / id_)
        else:
            write_video(root / "20bn-something-something-v2" / f"{id_}{'.mp4' if index == 4 else '.webm'}")
    return root


UCF_CLASSES = ("ApplyEyeMakeup", "ApplyLipstick", "Archery")


def ucf101(root: Path) -> Path:
    """`ucfTrainTestlist/` with Windows line ends as published, videos `UCF-101/<Class>/v_<Class>_gGG_cCC.avi`.
    Split 1 trains on group 8 and tests on group 1; split 2 the other way round."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {name}\r\n" for i, name in enumerate(UCF_CLASSES)))
    videos = {group: [f"{name}/v_{name}_g{group:02d}_c01.avi" for name in UCF_CLASSES] for group in (1, 8)}
    for fold, (train, test) in ((1, (8, 1)), (2, (1, 8))):
        (lists / f"trainlist0{fold}.txt").write_text(
            "".join(f"{path} {UCF_CLASSES.index(path.split('/')[0]) + 1}\r\n" for path in videos[train]))
        (lists / f"testlist0{fold}.txt").write_text("".join(f"{path}\r\n" for path in videos[test]))
    for path in videos[1] + videos[8]:
        write_video(root / "UCF-101" / path)
    return root


HMDB_CLASSES = ("brush_hair", "cartwheel")


def hmdb51(root: Path) -> Path:
    """`testTrainMulti_7030_splits/<class>_test_split1.txt` (`name.avi 1|2|0 `, with the published trailing space)
    and videos `<class>/<name>.avi`; per class one training, one test and one unused video."""
    lists = root / "testTrainMulti_7030_splits"
    lists.mkdir(parents=True, exist_ok=True)
    for name in HMDB_CLASSES:
        lines = [(f"{name}_{role}_u_nm_np1_ba_goo_0.avi", code) for role, code in (("train", 1), ("test", 2),
                                                                                  ("unused", 0))]
        (lists / f"{name}_test_split1.txt").write_text("".join(f"{video} {code} \n" for video, code in lines))
        for video, _ in lines:
            write_video(root / name / video)
    return root


CHARADES_COLUMNS = ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
                    "actions", "length"]
CHARADES_TRAIN = {"46GP8": "c092 11.90 21.20;c147 0.00 12.60", "N11GT": "c098 8.60 14.20;c075 0.00 11.70;c098 0.0 3.1"}
CHARADES_TEST = {"YSKX3": "c009 0.00 8.00", "0A8CF": ""}  # some published videos have no action


def charades(root: Path) -> Path:
    """`Charades_v1_classes.txt` (157 classes), `Charades_v1_{train,test}.csv` with the published columns, videos
    `Charades_v1_480/<id>.mp4`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Charades_v1_classes.txt").write_text("".join(f"c{i:03d} Action number {i}\n" for i in range(157)))
    for split, videos in (("train", CHARADES_TRAIN), ("test", CHARADES_TEST)):
        with (root / f"Charades_v1_{split}.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(CHARADES_COLUMNS)
            for id_, actions in videos.items():
                writer.writerow([id_, "HR43", "Kitchen", 6, 7, "Yes", "A person cooks, then drinks.", "cup;dish",
                                 "A person is cooking.", actions, 24.83])
                write_video(root / "Charades_v1_480" / f"{id_}.mp4")
    return root


DIVING_TRAIN = [("-mmq0PT-u8k_00155", 0), ("-mmq0PT-u8k_00156", 47)]
DIVING_TEST = [("0ZO2GMsl2lU_00001", 47), ("0ZO2GMsl2lU_00002", 3)]


def diving48(root: Path) -> Path:
    """`Diving48_vocab.json` (48 dives, each [takeoff, somersaults, twists, flight]), `Diving48_V2_{train,test}.json`
    and the trimmed clips `rgb/<vid_name>.mp4`."""
    root.mkdir(parents=True, exist_ok=True)
    vocab = [[takeoff, f"{som:02d}som", f"{twist:02d}Twis", flight] for takeoff in ("Back", "Forward", "Inward")
             for som in (15, 25) for twist in (0, 5, 10, 15) for flight in ("FREE", "PIKE")]
    (root / "Diving48_vocab.json").write_text(json.dumps(vocab))
    for split, videos in (("train", DIVING_TRAIN), ("test", DIVING_TEST)):
        (root / f"Diving48_V2_{split}.json").write_text(json.dumps(
            [{"vid_name": name, "label": label, "start_frame": 0, "end_frame": FRAMES} for name, label in videos]))
        for name, _ in videos:
            write_video(root / "rgb" / f"{name}.mp4")
    return root


# Kinetics as the official download scripts leave it. Labels are class names, listed unsorted (label i is the i-th in
# sorted order); each row says what is on disk: "ok", "missing", "short" (3 frames, less than a 4 × 2 clip),
# "unreadable" (not a video), "replacement" (only in CVDF's replacement folder) or "corrupted" (unreadable in the split
# folder, whole in the replacement folder). One id holds `_` and `-`; `abcdefghij1` is in train and test.
KINETICS_CLASS_NAMES = ("zumba", "abseiling", "air drumming")
KINETICS_TRAIN = [("zumba", "zumbazumba1", 0, 10, "ok"), ("abseiling", "-_aB3-x_9Zq", 0, 10, "ok"),
                  ("abseiling", "abcdefghij1", 5, 15, "ok"), ("air drumming", "airdrum0001", 10, 20, "ok"),
                  ("zumba", "zumbazumba2", 3, 13, "missing"), ("abseiling", "shortvid001", 0, 10, "short"),
                  ("air drumming", "replaced001", 0, 10, "replacement"),
                  ("zumba", "corrupted01", 0, 10, "corrupted")]
KINETICS_VAL = [("abseiling", "valvideo001", 0, 10, "ok"), ("air drumming", "valvideo002", 0, 10, "ok"),
                ("zumba", "valvideo003", 0, 10, "ok"), ("zumba", "brokenvid01", 0, 10, "unreadable"),
                ("air drumming", "valmissing1", 0, 10, "missing")]
KINETICS_TEST = [("abseiling", "testvideo01", 0, 10, "ok"), ("air drumming", "testvideo02", 0, 10, "ok"),
                 ("zumba", "testvideo03", 0, 10, "ok"), ("abseiling", "abcdefghij1", 20, 30, "ok")]
KINETICS_HEADER = ["label", "youtube_id", "time_start", "time_end", "split"]


def kinetics_file_name(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}.mp4"


def _kinetics_split(table: Path, split: str, rows: list, folder_of: callable, labelled: bool = True,
                    is_cc: bool = False) -> None:
    """The split's official CSV (`split` column as published: train, val or test) and its videos, each written where
    `folder_of(label, state)` says (None: nowhere)."""
    table.parent.mkdir(parents=True, exist_ok=True)
    header = KINETICS_HEADER[0 if labelled else 1:] + (["is_cc"] if is_cc else [])
    with table.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for label, youtube_id, start, end, state in rows:
            writer.writerow(([label] if labelled else []) + [youtube_id, start, end, split] + ([0] if is_cc else []))
            folder = folder_of(label, state)
            if folder is None:
                continue
            path = folder / kinetics_file_name(youtube_id, start, end)
            if state in ("unreadable", "corrupted"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)  # a torn download
            else:
                write_video(path, frames=3 if state == "short" else FRAMES)


def kinetics_cvdf(root: Path) -> Path:
    """CVDF's Kinetics-400: `annotations/{train,val,test}.csv` (with `is_cc`), flat `{train,val,test}/` folders and
    `replacement/replacement_for_corrupted_k400/`."""
    replacement = root / "replacement/replacement_for_corrupted_k400"
    for split, rows in (("train", KINETICS_TRAIN), ("val", KINETICS_VAL), ("test", KINETICS_TEST)):
        _kinetics_split(root / f"annotations/{split}.csv", split, rows,
                        lambda label, state, split=split: None if state in ("missing", "replacement") else root / split,
                        is_cc=True)
        for label, youtube_id, start, end, state in rows:
            if state in ("replacement", "corrupted"):
                write_video(replacement / kinetics_file_name(youtube_id, start, end))
    return root


def kinetics_crawler(root: Path, test_labels: bool = True) -> Path:
    """The crawler's layout: DeepMind's `train.csv`, `validate.csv` and `test.csv` in `root`, the videos in
    `<split>/<label>/` (the label with its spaces); without `test_labels`, the crawler-era test CSV (no `label`
    column), whose videos the crawler writes to `test/test/`. No replacement folder: those videos are missing."""
    for split, table, rows in (("train", "train.csv", KINETICS_TRAIN), ("val", "validate.csv", KINETICS_VAL),
                               ("test", "test.csv", KINETICS_TEST)):
        labelled = test_labels or split != "test"
        _kinetics_split(root / table, split, rows, lambda label, state, split=split, labelled=labelled:
                        None if state in ("missing", "replacement") else
                        root / split / (label if labelled else "test"), labelled=labelled)
    return root


EPIC_FRAMES = 16  # the most frames the grey ramp tells apart: "long" videos of several overlapping actions
EPIC_COLUMNS = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class",
                "all_nouns", "all_noun_classes"]
# (narration id, start_frame, stop_frame, verb class, noun class): frame numbers count from 1, as the frames are named
EPIC_TRAIN = [("P01_01_0", 1, 8, 0, 3), ("P01_01_1", 5, 12, 3, 2), ("P02_03_0", 3, 10, 3, 3),
              ("P02_03_1", 9, 16, 0, 2)]
EPIC_VALIDATION = [("P01_01_2", 7, 14, 0, 3), ("P02_03_2", 2, 9, 3, 2)]
EPIC_VERBS, EPIC_NOUNS = {0: "take", 3: "open"}, {2: "plate", 3: "door"}


def epic_kitchens(root: Path, store: str = "videos") -> Path:
    """EPIC_100_{train,validation}.csv with the published columns, EPIC_100_{verb,noun}_classes.csv (97 and 300
    classes) and two long videos whose actions overlap, as `<participant>/videos/<video_id>.MP4` (`store="videos"`)
    or as frames `<participant>/rgb_frames/<video_id>/frame_%010d.jpg` (`store="frames"`)."""
    root.mkdir(parents=True, exist_ok=True)
    for head, size, named in (("verb", 97, EPIC_VERBS), ("noun", 300, EPIC_NOUNS)):
        with (root / f"EPIC_100_{head}_classes.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["id", "key", "instances", "category"])
            for index in range(size):
                key = named.get(index, f"{head}{index}")
                writer.writerow([index, key, str([key]), "kitchen"])
    for name, actions in (("EPIC_100_train.csv", EPIC_TRAIN), ("EPIC_100_validation.csv", EPIC_VALIDATION)):
        with (root / name).open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(EPIC_COLUMNS)
            for narration_id, start, stop, verb, noun in actions:
                video_id = narration_id.rsplit("_", 1)[0]
                verb_name, noun_name = EPIC_VERBS[verb], EPIC_NOUNS[noun]
                times = [f"00:00:{frame / 10:05.2f}" for frame in (start, start, stop)]
                writer.writerow([narration_id, video_id[:3], video_id, *times, start, stop, f"{verb_name} {noun_name}",
                                 verb_name, verb, noun_name, noun, str([noun_name]), str([noun])])
    for video_id in ("P01_01", "P02_03"):
        if store == "frames":
            write_frame_folder(root / video_id[:3] / "rgb_frames" / video_id, EPIC_FRAMES, "frame_{:010d}.jpg")
        else:
            write_mp4(root / video_id[:3] / "videos" / f"{video_id}.MP4", grey_ramp(EPIC_FRAMES), fps=10)
    return root
