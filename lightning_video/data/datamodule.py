"""VideoDataModule: a video classification dataset in the Kinetics CSV layout, the papers' sampling and views."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytorch_lightning as pl
from pytorchvideo.data.labeled_video_paths import LabeledVideoPaths
from torch.utils.data import DataLoader

from lightning_video.data import synthetic
from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.transforms import evaluation_transform, train_transform

SPLITS = ("train", "val", "test")
LAYOUT = ("{root}/train.csv, {root}/val.csv and {root}/test.csv, one `path label` line per video (paths "
          "relative to {root} or absolute, integer labels), and optionally {root}/classes.txt with one class "
          "name per line")


@dataclass
class SyntheticTask:
    """A synthetic task to generate into the data root when it is not there yet (see `data.synthetic`).

    Args:
        task: "motion", "appearance" or "long_range".
        videos_per_class: training videos per class (val and test get a quarter as many, at least 2).
        seed: generation seed.
        size: frame side in pixels.
        frames: frames per video (None: the task's default).
        gap: frames between the two events of `long_range`.
    """

    task: str = "motion"
    videos_per_class: int = 100
    seed: int = 0
    size: int = 32
    frames: int | None = None
    gap: int = 24


class VideoDataModule(pl.LightningDataModule):
    """Train/val/test loaders over a folder in the Kinetics CSV layout (what PyTorchVideo's Kinetics reads).

    Training clips are `num_frames` frames taken one every `sampling_rate` from a random start, short side
    scaled to a random size in [`train_min_short_side`, `train_max_short_side`], randomly cropped and flipped.
    Validation is clip-level (one centre clip and crop per video, logged as `val/clip_*`); testing takes
    `test_clips` evenly spaced clips × `test_crops` crops per video and the module averages them per video.

    Args:
        root: dataset folder (layout: train.csv, val.csv, test.csv, optional classes.txt).
        num_frames: frames per clip (linked to the model's `num_frames`).
        sampling_rate: one frame in `sampling_rate` of the video.
        crop_size: side of the square crop (linked to the model's `img_size`).
        train_min_short_side: lower bound of the training short-side scale.
        train_max_short_side: upper bound of the training short-side scale.
        horizontal_flip: random horizontal flips in training (off for direction-sensitive data such as SSv2).
        test_clips: temporal clips per video at test time.
        test_crops: spatial crops per clip at test time (1 centre, or 3 left/centre/right).
        mean: per-channel normalisation mean (of frames scaled to [0, 1]).
        std: per-channel normalisation std.
        batch_size: clips per batch per device.
        num_workers: data-loading processes per device.
        synthetic: generate this synthetic task into `root` first if `root` does not hold it yet.
    """

    def __init__(self, root: str, num_frames: int = 8, sampling_rate: int = 32, crop_size: int = 224,
                 train_min_short_side: int = 256, train_max_short_side: int = 320, horizontal_flip: bool = True,
                 test_clips: int = 1, test_crops: int = 3, mean: tuple[float, float, float] = (0.45, 0.45, 0.45),
                 std: tuple[float, float, float] = (0.225, 0.225, 0.225), batch_size: int = 8,
                 num_workers: int = 4, synthetic: SyntheticTask | None = None) -> None:
        super().__init__()
        self.root = Path(root)
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.synthetic = synthetic
        self.train_transform = train_transform(crop_size, train_min_short_side, train_max_short_side,
                                               horizontal_flip, mean, std)
        self.evaluation_transform = evaluation_transform(crop_size, test_crops, mean, std)
        self.test_clips = test_clips
        self.test_crops = test_crops
        self.datasets: dict[str, VideoClipDataset] = {}

    @property
    def class_names(self) -> list[str]:
        """Names from classes.txt (or the synthetic task), else the label numbers found in the CSVs."""
        if self.synthetic is not None:
            return synthetic.task_classes(self.synthetic.task)
        names_file = self.root / "classes.txt"
        if names_file.is_file():
            return names_file.read_text().splitlines()
        labels = {label for split in SPLITS for _, label in self._videos(split)}
        return [str(label) for label in range(max(labels) + 1)]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def prepare_data(self) -> None:
        """Generate the synthetic task (once, on one process) if it is configured and not on disk yet."""
        if self.synthetic is None:
            return
        settings_file = self.root / "synthetic.json"
        wanted = asdict(self.synthetic)
        if settings_file.is_file():
            existing = json.loads(settings_file.read_text())
            if all(existing.get(key) == value for key, value in wanted.items() if value is not None):
                return
        synthetic.generate(out=self.root, **wanted)

    def _videos(self, split: str) -> list[tuple[str, int]]:
        csv = self.root / f"{split}.csv"
        if not csv.is_file():
            problem = f"data folder {self.root} does not exist" if not self.root.is_dir() else f"{csv} is missing"
            raise FileNotFoundError(f"{problem}. Expected the Kinetics CSV layout: {LAYOUT.format(root=self.root)}. "
                                    f"For a demo, set data.synthetic to generate a synthetic task there.")
        paths = LabeledVideoPaths.from_path(str(csv))
        paths.path_prefix = str(self.root)
        return [(path, info["label"]) for path, info in paths]

    def setup(self, stage: str) -> None:
        views = dict(clips_per_video=self.test_clips, crops_per_video=self.test_crops)
        clip = dict(num_frames=self.num_frames, sampling_rate=self.sampling_rate)
        if stage == "fit":
            self.datasets["train"] = VideoClipDataset(self._videos("train"), **clip, transform=self.train_transform,
                                                      train=True)
        if stage in ("fit", "validate"):
            self.datasets["val"] = VideoClipDataset(self._videos("val"), **clip,
                                                    transform=self.evaluation_transform, train=False)
        if stage == "test":
            self.datasets["test"] = VideoClipDataset(self._videos("test"), **clip, **views,
                                                     transform=self.evaluation_transform, train=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          drop_last=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
