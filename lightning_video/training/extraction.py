"""Feature extraction as Lightning's predict loop: each rank its share of the videos, features written as shards.

The shards are the record of what is done. Each holds whole videos (every row of each, at the chosen level) as a
safetensors file: the `features` tensor and, in its metadata, one description per row (video, window, start and end
in seconds, label, clip, crop). A shard is written to a temporary file and renamed, so it is whole or absent; a
resumed extraction reads which videos the shards hold and skips them, so nothing is written twice, on any number of
ranks. The index (`index.csv`) is rebuilt from the shards by rank 0 at the end.
"""
from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Literal, get_args

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from safetensors import safe_open
from safetensors.torch import save
from torch.utils.data import DataLoader

from lightning_video.data.layouts import Label
from lightning_video.data.transforms import Transform
from lightning_video.data.windows import WindowClips, Window, plan_windows
from lightning_video.models.features import FeatureKind, clip_features
from lightning_video.models.video_transformer import VideoTransformer

Level = Literal["view", "clip", "video"]
LEVELS: tuple[str, ...] = get_args(Level)
SHARD_GLOB = "features_*.safetensors"
INDEX_FILE = "index.csv"
INDEX_COLUMNS = ("video", "window", "start", "end", "label", "clip", "crop", "shard", "row")
ROWS_KEY = "rows"  # the shard metadata entry describing its rows, as JSON


class FeatureExtractor(pl.LightningModule):
    """Computes the `kind` features (`models.features`) of every crop of a batch of clips `[B, crops, C, T, H, W]`."""

    def __init__(self, backbone: VideoTransformer, kind: FeatureKind) -> None:
        super().__init__()
        self.backbone = backbone
        self.kind = kind
        self.allow_zero_length_dataloader_with_multiple_devices = True  # fewer videos left than ranks

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        video = batch["video"]
        return clip_features(self.backbone, video.flatten(0, 1), self.kind).unflatten(0, video.shape[:2])


class ExtractionData(pl.LightningDataModule):
    """This rank's share of the videos not extracted yet (every world-size-th of them), cut into windows. Every rank
    reads which are done before any can write (the process group forms in between), so the shares do not overlap.

    Args:
        videos: (path, label) of every video of the extraction, in index order.
        done: the indices of the videos the shards already hold.
        window: window length in seconds (None: whole videos); stride: seconds between window starts (None: window).
        frame_folder_fps: the rate at which the frames of frame folders count.
        clips: `WindowClips`'s clip arguments (num_frames, sampling_rate, sampling, clips_per_window,
            crops_per_clip).
        transform: the evaluation transform.
        batch_size: clips per batch; num_workers: loader processes.
    """

    def __init__(self, videos: list[tuple[str, Label]], done: set[int], window: float | None, stride: float | None,
                 frame_folder_fps: float, clips: dict, transform: Transform, batch_size: int,
                 num_workers: int) -> None:
        super().__init__()
        self.videos = videos
        self.done = done
        self.window, self.stride, self.frame_folder_fps = window, stride, frame_folder_fps
        self.clips = clips
        self.transform = transform
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.windows: list[Window] = []
        self.clips_per_video: dict[int, int] = {}  # this rank's videos -> how many clips come for each
        self.unreadable: dict[int, str] = {}

    def setup(self, stage: str) -> None:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        share = [index for index in range(len(self.videos)) if index not in self.done][rank::world]
        self.windows, self.unreadable = plan_windows(self.videos, share, self.window, self.stride,
                                                     self.frame_folder_fps)
        self.clips_per_video = {}
        for window in self.windows:
            self.clips_per_video[window.video_index] = self.clips_per_video.get(window.video_index, 0) + \
                self.clips["clips_per_window"]

    def predict_dataloader(self) -> DataLoader:
        dataset = WindowClips(self.videos, self.windows, **self.clips, transform=self.transform)
        return DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers)


class ShardWriter(BasePredictionWriter):
    """Collects each video's clips as they come (in video order), pools them to the level's rows when its last one
    is in, and writes a shard whenever `shard_rows` rows are waiting, and at the end.

    Args:
        out: the extraction folder.
        level: "view" (a row per clip and crop), "clip" (crops averaged) or "video" (every view of a window
            averaged: one row per video, or per window with windows).
        shard_rows: rows per shard, about (a video's rows are never split).
    """

    def __init__(self, out: Path, level: Level, shard_rows: int) -> None:
        super().__init__(write_interval="batch")
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; valid: {', '.join(LEVELS)}")
        self.out, self.level, self.shard_rows = out, level, shard_rows
        self.clips: dict[int, list[tuple[Window, int, torch.Tensor]]] = defaultdict(list)
        self.unreadable: dict[int, str] = {}
        self.rows: list[dict] = []
        self.features: list[torch.Tensor] = []

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: torch.Tensor,
                           batch_indices: object, batch: dict, batch_idx: int, dataloader_idx: int) -> None:
        data: ExtractionData = trainer.datamodule
        for features, position, clip, problem in zip(prediction.float().cpu(), batch["window"].tolist(),
                                                     batch["clip_index"].tolist(), batch["unreadable"]):
            window = data.windows[position]
            if problem:
                self.unreadable.setdefault(window.video_index, problem)
            self.clips[window.video_index].append((window, clip, features))
            if len(self.clips[window.video_index]) == data.clips_per_video[window.video_index]:
                self._add_video(data, window.video_index)
        if len(self.rows) >= self.shard_rows:
            self._write_shard()

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write_shard()
        self.unreadable.update(trainer.datamodule.unreadable)
        if self.unreadable:  # one file per rank; rank 0 gathers them (`merge_index`)
            unreadable = {trainer.datamodule.videos[index][0]: reason for index, reason in self.unreadable.items()}
            write_atomically(json.dumps(unreadable).encode(), self.out / f"unreadable.rank{trainer.global_rank}.json")

    def _add_video(self, data: ExtractionData, video_index: int) -> None:
        """Pool the finished video's clips into its rows (none if any clip of it was unreadable)."""
        clips = sorted(self.clips.pop(video_index), key=lambda entry: (entry[0].index, entry[1]))
        if video_index in self.unreadable:
            return
        path, label = data.videos[video_index]
        by_window: dict[Window, list[torch.Tensor]] = defaultdict(list)
        for window, _, features in clips:
            by_window[window].append(features)
        for window, window_clips in by_window.items():
            views = torch.stack(window_clips)  # [clips, crops, ...]
            described = {"video": path, "video_index": video_index, "window": window.index,
                         "start": round(window.start, 6), "end": round(window.end, 6), "label": _label_text(label)}
            if self.level == "video":
                self._add_rows([described], views.mean(dim=(0, 1))[None])
            elif self.level == "clip":
                self._add_rows([{**described, "clip": clip} for clip in range(len(views))], views.mean(dim=1))
            else:
                self._add_rows([{**described, "clip": clip, "crop": crop} for clip in range(views.shape[0])
                                for crop in range(views.shape[1])], views.flatten(0, 1))

    def _add_rows(self, rows: list[dict], features: torch.Tensor) -> None:
        self.rows += rows
        self.features.append(features)

    def _write_shard(self) -> None:
        if not self.rows:
            return
        path = self.out / f"features_{self.rows[0]['video_index']:07d}.safetensors"
        tensors = {"features": torch.cat(self.features).contiguous()}
        write_atomically(save(tensors, metadata={ROWS_KEY: json.dumps(self.rows)}), path)
        self.rows, self.features = [], []


def _label_text(label: Label) -> str:
    """A class index as it is, a multi-hot label as its classes' indices; no label (-1) as nothing."""
    if isinstance(label, torch.Tensor):
        return " ".join(str(index) for index in label.nonzero().flatten().tolist())
    return "" if label == -1 else str(label)


def write_atomically(data: bytes, path: Path) -> None:
    """`path` holds all of `data` or is absent (or as it was), also after a kill: a synced temporary file renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def shard_rows(out: Path) -> list[tuple[Path, list[dict]]]:
    """Each shard in `out` with the descriptions of its rows, in video order."""
    shards = []
    for path in sorted(out.glob(SHARD_GLOB)):
        with safe_open(path, "pt") as shard:
            shards.append((path, json.loads(shard.metadata()[ROWS_KEY])))
    return shards


def extracted_videos(out: Path) -> set[int]:
    """The indices of the videos whose features the shards in `out` hold."""
    return {row["video_index"] for _, rows in shard_rows(out) for row in rows}


def merge_index(out: Path) -> tuple[int, dict[str, str]]:
    """Write `index.csv` (a row per feature row: `INDEX_COLUMNS`, its shard and row in it) from every shard, gather
    the ranks' unreadable videos into `unreadable.json` and remove temporary files of writes that were killed.
    Returns the number of rows and the unreadable videos (path -> reason)."""
    lines = [{**row, "shard": path.name, "row": number} for path, rows in shard_rows(out)
             for number, row in enumerate(rows)]
    lines.sort(key=lambda line: (line["video_index"], line["window"], line.get("clip", -1), line.get("crop", -1)))
    index = out / f".{INDEX_FILE}.building"
    with index.open("w", newline="") as file:
        writer = csv.DictWriter(file, INDEX_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(lines)
    os.replace(index, out / INDEX_FILE)
    unreadable: dict[str, str] = {}
    for rank_file in sorted(out.glob("unreadable.rank*.json")):
        unreadable.update(json.loads(rank_file.read_text()))
        rank_file.unlink()
    if unreadable:
        (out / "unreadable.json").write_text(json.dumps(unreadable, indent=1) + "\n")
    else:  # those of an earlier run were read this time
        (out / "unreadable.json").unlink(missing_ok=True)
    for leftover in out.glob(".*.tmp"):
        leftover.unlink()
    return len(lines), unreadable
