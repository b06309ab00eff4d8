"""VideoDataModule: a video dataset in its published layout (`layouts`), the papers' sampling, augmentation and
views, a guard against too many unreadable videos, and prediction on a video file or a folder of videos."""
from __future__ import annotations

import json
import signal
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import pytorch_lightning as pl
from filelock import FileLock
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.warnings import PossibleUserWarning
from pytorchvideo.data import LabeledVideoDataset
from torch.utils.data import DataLoader

from lightning_video.data import layouts, synthetic
from lightning_video.data.annotations import AnnotationError
from lightning_video.data.clip_settings import ClipSettings
from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.layouts import LAYOUTS, VIDEO_SUFFIXES, Label, VideoList
from lightning_video.data.pytorchvideo_reader import pytorchvideo_dataset
from lightning_video.data.sampler import TrainingSampler, trained_position
from lightning_video.data.sampling import SAMPLINGS
from lightning_video.data.segments import VideoSegment
from lightning_video.data.transforms import AUGMENTS, Transform, evaluation_transform, train_transform
from lightning_video.seeding import run_seed

# The splits each stage reads: their annotation files are checked together when the stage is set up.
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
READERS = ("ours", "pytorchvideo")


def leave_preemption_to_the_trainer(worker_id: int) -> None:
    """SLURM signals every process of a job step, loader workers too, and a forked worker would run the trainer's
    SIGUSR1 handler on its stale copy of the trainer: it saved a preemption checkpoint of the weights at the worker's
    start over the one of the main process (`experiments/slurm/train.sbatch`). The main process alone handles it."""
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


@dataclass
class SyntheticTask:
    """A synthetic task to generate into the data root when it is not there yet (see `data.synthetic`).

    Args:
        task: "motion", "appearance", "long_range" or "location".
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
    """Train/val/test loaders over a dataset in its published layout: `dataset` names it (see `layouts.LAYOUTS`).

    Training clips are `num_frames` frames taken one every `sampling_rate` from a random start (or one per segment:
    `sampling`), short side scaled to a random size in [`train_min_short_side`, `train_max_short_side`], randomly
    cropped and flipped. An unreadable training video is replaced by another and counted; more than
    `max_skip_fraction` of an epoch's samples stops the run on every rank.
    Validation is clip-level (one centre clip and crop per video, logged as `val/clip_*`); testing takes
    `test_clips` evenly spaced clips × `test_crops` crops per video and the module averages them per video;
    prediction takes the same views of the videos at `path`.

    Args:
        root: dataset folder, in the layout of `dataset`; fit, validate and test need it.
        dataset: its layout: "csv", "folder" (one folder per class), "kinetics" (the official CSVs as CVDF or the
            crawler lay them out, or either of the two before), "ssv2", "ucf101", "hmdb51", "charades"
            (multi-label), "diving48" or "epic_kitchens" (verb and noun heads); the error for a missing file
            describes the layout.
        fold: the official train/test split of UCF101 and HMDB51 (1, 2 or 3).
        num_frames: frames per clip (linked to the model's `num_frames`).
        sampling_rate: one frame in `sampling_rate` of the video (unused by segment sampling).
        sampling: "clip" (frames at `sampling_rate`) or "segments" (TSN: one frame per segment of the whole video);
            None: the papers' choice for the dataset (segments for SSv2).
        crop_size: side of the square crop (linked to the model's `img_size`).
        train_min_short_side: lower bound of the training short-side scale.
        train_max_short_side: upper bound of the training short-side scale.
        horizontal_flip: random horizontal flips in training; None: on, but off for SSv2 (a flip turns "left" into
            "right").
        augment: X-ViT's augmentation policy on training frames: "autoaugment", "randaugment", "augmix" or None.
        random_erasing: probability of erasing a random box of a training clip (X-ViT on SSv2: 0.5).
        test_clips: temporal clips per video at test time.
        test_crops: spatial crops per clip at test time (1 centre, or 3 left/centre/right).
        mean: per-channel normalisation mean (of frames scaled to [0, 1]).
        std: per-channel normalisation std.
        batch_size: clips per batch per device.
        num_workers: data-loading processes per device.
        cache_frames: keep every decoded video in memory (in each worker) after its first read: for small datasets
            like the synthetic tasks, where decoding is a third of a CPU training step.
        max_skip_fraction: stop training when, on any rank, an epoch's unreadable videos outnumber this fraction
            of its samples (`check-data` lists them).
        synthetic: generate this synthetic task into `root` first if `root` does not hold it yet.
        path: the videos to predict: a video file, or a folder searched recursively for video files.
        class_names: the label names, the i-th naming label i; None reads them from the data (see `class_names`).
            `predict --ckpt_path` sets them from the checkpoint.
        heads: the class count of each head of a dataset whose videos have several labels (see `heads`); None: the
            data's. `predict --ckpt_path` sets them from the checkpoint.
        reader: "ours" (decodes only the sampled frames; exact resume, DDP-safe) or "pytorchvideo" (PyTorchVideo's
            `LabeledVideoDataset` and clip samplers over the same videos, one process: see `pytorchvideo_reader`).
    """

    def __init__(self, root: str | None = None, dataset: str = "csv", fold: int = 1, num_frames: int = 8,
                 sampling_rate: int = 32, sampling: str | None = None, crop_size: int = 224,
                 train_min_short_side: int = 256, train_max_short_side: int = 320, horizontal_flip: bool | None = None,
                 augment: str | None = None, random_erasing: float = 0.0, test_clips: int = 1, test_crops: int = 3,
                 mean: tuple[float, float, float] = (0.45, 0.45, 0.45),
                 std: tuple[float, float, float] = (0.225, 0.225, 0.225), batch_size: int = 8,
                 num_workers: int = 4, cache_frames: bool = False, max_skip_fraction: float = 0.5,
                 synthetic: SyntheticTask | None = None,
                 path: str | None = None, class_names: list[str] | None = None,
                 heads: dict[str, int] | None = None, reader: str = "ours") -> None:
        super().__init__()
        if synthetic is not None and root is None:
            raise ValueError("data.synthetic needs data.root: the folder to generate the synthetic task into")
        if synthetic is not None and dataset != "csv":
            raise ValueError(f"data.synthetic writes the csv layout, but data.dataset is {dataset!r}: set it to csv")
        if dataset not in LAYOUTS:
            raise ValueError(f"unknown data.dataset {dataset!r}; valid: {', '.join(LAYOUTS)}")
        if fold not in (1, 2, 3):
            raise ValueError(f"data.fold={fold}: UCF101 and HMDB51 have the official splits 1, 2 and 3")
        if reader not in READERS:
            raise ValueError(f"unknown data.reader {reader!r}; valid: {', '.join(READERS)}")
        if sampling is not None and sampling not in SAMPLINGS:
            raise ValueError(f"unknown data.sampling {sampling!r}; valid: {', '.join(SAMPLINGS)}")
        invalid = invalid_settings(num_frames=num_frames, sampling_rate=sampling_rate, crop_size=crop_size,
                                   train_min_short_side=train_min_short_side,
                                   train_max_short_side=train_max_short_side, augment=augment,
                                   random_erasing=random_erasing, test_clips=test_clips, test_crops=test_crops,
                                   mean=mean, std=std, batch_size=batch_size, num_workers=num_workers,
                                   max_skip_fraction=max_skip_fraction)
        if invalid:
            raise ValueError("\n".join(invalid))
        layout = LAYOUTS[dataset]
        self.root = Path(root) if root is not None else None
        self.dataset = dataset
        self.fold = fold
        self.sampling = sampling or layout.sampling
        self.max_skip_fraction = max_skip_fraction
        self._lists: dict[str, VideoList] = {}
        self._skips = (-1, 0)  # (epoch, unreadable videos so far in it on this rank)
        self.path = path
        self._class_names = class_names
        self._heads = heads
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.crop_size = crop_size
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache_frames = cache_frames
        self.synthetic = synthetic
        self.reader = reader
        self.train_transform = train_transform(
            crop_size, train_min_short_side, train_max_short_side,
            layout.horizontal_flip if horizontal_flip is None else horizontal_flip, mean, std, augment, random_erasing)
        self.evaluation_transform = evaluation_transform(crop_size, test_crops, mean, std)
        self.test_clips = test_clips
        self.test_crops = test_crops
        self.datasets: dict[str, VideoClipDataset] = {}
        self._seed: int | None = None  # the run's seed, once a checkpoint gave it
        self._start = (0, 0)  # (epoch, batches of it trained) to resume training at

    @property
    def class_names(self) -> list[str]:
        """The names given, else those of the synthetic task, else the dataset's (read with the splits of `fit`, so
        that building the model for it reports the problems of both its annotation files at once)."""
        if self._class_names is not None:
            return self._class_names
        if self.synthetic is not None:
            return synthetic.task_classes(self.synthetic.task)
        return self._read(STAGE_SPLITS["fit"])[0].classes

    @property
    def heads(self) -> dict[str, int]:
        """Each head's class count where the dataset asks several questions of a video (Epic-Kitchens: verb and
        noun), in the order of `class_names`; empty for one."""
        if self._heads is not None or self._class_names is not None or self.synthetic is not None:
            return dict(self._heads or {})
        return self._read(STAGE_SPLITS["fit"])[0].heads

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def multi_label(self) -> bool:
        """Whether labels are multi-hot (Charades): the model must be built with `multi_label` too."""
        return LAYOUTS[self.dataset].multi_label

    @property
    def clip_settings(self) -> ClipSettings:
        """How this data makes clips and what its labels are: what a model trained on it needs to predict (the CLI
        links it into the model, which saves it in its checkpoints)."""
        return ClipSettings(num_frames=self.num_frames, sampling_rate=self.sampling_rate, sampling=self.sampling,
                            crop_size=self.crop_size, mean=self.mean, std=self.std, test_clips=self.test_clips,
                            test_crops=self.test_crops, class_names=list(self.class_names),
                            multi_label=self.multi_label, heads=self.heads)

    def prepare_data(self) -> None:
        """Generate the synthetic task (once, on one process) if it is configured and not on disk yet."""
        if self.synthetic is None:
            return
        settings_file = self.root / "synthetic.json"
        wanted = asdict(self.synthetic)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.root}.lock"):  # runs side by side (ablation rows) share the root: one generates
            if settings_file.is_file():
                existing = json.loads(settings_file.read_text())
                if all(existing.get(key) == value for key, value in wanted.items() if value is not None):
                    return
            synthetic.generate(out=self.root, **wanted)

    @property
    def seed(self) -> int:
        """The seed of the training data's order and draws: the run's, or on a resume the checkpoint's."""
        return run_seed() if self._seed is None else self._seed

    def state_dict(self) -> dict:
        """The label names, for predictions from a checkpoint far from the dataset (`cli` reads them back), and the
        seed and position of training, from which a resumed fit carries on exactly (`sampler.TrainingSampler`)."""
        state = {"class_names": self.class_names, "seed": self.seed}
        if self.trainer is not None and self.trainer.state.fn == TrainerFn.FITTING:
            state["position"] = trained_position(self.trainer)
        return state

    def load_state_dict(self, state: dict) -> None:
        self._seed = state.get("seed")
        self._start = tuple(state.get("position", (0, 0)))

    def _read(self, splits: tuple[str, ...]) -> list[VideoList]:
        """The splits' videos and classes, each read once (SSv2's label files are large). The problems of all their
        annotation files come in one AnnotationError; what a layout had to infer is said once per call."""
        if self.root is None:
            raise ValueError(f"data.root is not set; the {' and '.join(splits)} videos (and the label names, unless "
                             f"data.class_names gives them) come from a dataset folder in the {self.dataset} layout: "
                             f"{LAYOUTS[self.dataset].expected.format(root='ROOT')}")
        problems, notes = [], []
        for split in (split for split in splits if split not in self._lists):
            try:
                self._lists[split] = layouts.read(self.dataset, self.root, split, self.fold)
            except AnnotationError as error:
                problems += error.problems
            else:
                notes += self._lists[split].notes
        for note in dict.fromkeys(notes):
            rank_zero_info(note)
        if problems:
            raise AnnotationError(problems)
        return [self._lists[split] for split in splits]

    def videos(self, split: str) -> list[tuple[str, Label]]:
        """The (path, label) pairs of a split ("train", "val" or "test"), or of the videos at `path` ("predict",
        label -1), in the order of the `video_index` of their batches."""
        if split in self.datasets:
            return self.datasets[split].videos
        if split == "predict":
            return self._videos_to_predict()
        return self._read((split,))[0].videos

    def setup(self, stage: str) -> None:
        model = self.trainer.lightning_module if self.trainer is not None else None
        if model is not None and getattr(model, "multi_label", self.multi_label) != self.multi_label:
            raise ValueError(f"data.dataset={self.dataset} has {'multi-hot' if self.multi_label else 'single'} labels "
                             f"but model.multi_label={model.multi_label}: set model.multi_label={self.multi_label}")
        if stage in STAGE_SPLITS:  # every problem of the stage's annotation files, before its first step
            for split, videos in zip(STAGE_SPLITS[stage], self._read(STAGE_SPLITS[stage])):
                if not videos.labelled:
                    raise ValueError(f"the {split} split of {self.root} was published without labels, so {stage} "
                                     f"cannot score it; predict its videos instead (`predict --data.root "
                                     f"{self.root}` without data.path)")
        if self.reader == "pytorchvideo" and self.trainer is not None and self.trainer.world_size > 1:
            raise ValueError("data.reader=pytorchvideo runs in one process: PyTorchVideo's iterable datasets let a "
                             "rank whose videos fail take fewer steps than the others, which then wait forever. Use "
                             "data.reader=ours with several devices")
        views = dict(clips_per_video=self.test_clips, crops_per_video=self.test_crops)
        if stage == "fit":
            self.datasets["train"] = self._dataset(self.videos("train"), self.train_transform, train=True)
        if stage in ("fit", "validate"):
            self.datasets["val"] = self._dataset(self.videos("val"), self.evaluation_transform, train=False)
        if stage == "test":
            self.datasets["test"] = self._dataset(self.videos("test"), self.evaluation_transform, False, **views)
        if stage == "predict":
            self.datasets["predict"] = self._dataset(self._videos_to_predict(), self.evaluation_transform, False,
                                                     **views)

    def _dataset(self, videos: list[tuple[str, Label]], transform: Transform, train: bool,
                 **views: int) -> VideoClipDataset | LabeledVideoDataset:
        clip = dict(num_frames=self.num_frames, sampling_rate=self.sampling_rate, sampling=self.sampling)
        if self.reader == "pytorchvideo":
            if any(isinstance(path, VideoSegment) for path, _ in videos):
                raise ValueError(f"data.reader=pytorchvideo samples clips from whole videos, but data.dataset="
                                 f"{self.dataset} labels segments of long videos: use data.reader=ours")
            return pytorchvideo_dataset(videos, **clip, transform=transform, train=train, **views)
        return VideoClipDataset(videos, **clip, transform=transform, train=train, cache_frames=self.cache_frames,
                                **views)

    def _videos_to_predict(self) -> list[tuple[str, int]]:
        """(path, -1) for the video at `path` or each video file under it, else for the test split of `root`
        (Kinetics' crawler-era test set has no labels) (-1: no label)."""
        if self.path is None and self.root is not None:
            return [(path, -1) for path, _ in self.videos("test")]
        if self.path is None:
            raise ValueError("predict needs data.path (a video file or a folder of videos) or data.root (its test "
                             "split is predicted)")
        path = Path(self.path)
        if not path.exists():
            raise FileNotFoundError(f"data.path {path} does not exist")
        files = [path] if path.is_file() else sorted(file for file in path.rglob("*")
                                                     if file.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) under data.path {path}")
        return [(str(file), -1) for file in files]

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Stop every rank at once when this epoch's unreadable training videos on any rank pass `max_skip_fraction`
        of its samples: a rank stopping alone would leave the others waiting in the next gradient all-reduce."""
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return batch
        epoch, skipped = self._skips
        skipped = (skipped if epoch == trainer.current_epoch else 0) + int(batch["skipped"].sum())
        self._skips = (trainer.current_epoch, skipped)
        samples = trainer.num_training_batches * self.batch_size
        if trainer.strategy.reduce_boolean_decision(skipped > self.max_skip_fraction * samples, all=False):
            raise RuntimeError(
                f"too many unreadable training videos: more than data.max_skip_fraction={self.max_skip_fraction} of "
                f"the {samples} samples of epoch {trainer.current_epoch} on a rank ({skipped} so far on this one). "
                f"List them with `python -m lightning_video check-data --config CONFIG`, then repair or remove them, "
                f"or raise data.max_skip_fraction")
        return batch

    def _loader(self, split: str, sampler: TrainingSampler | None = None, train: bool = False) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          drop_last=train, worker_init_fn=leave_preemption_to_the_trainer)

    def train_dataloader(self) -> DataLoader:
        """Shuffled by the run's seed and the epoch, this rank's share, from where a resumed fit left off."""
        if self.reader == "pytorchvideo":  # iterable: in its own order
            return self._loader("train", train=True)
        trainer = self.trainer
        world_size, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = TrainingSampler(self.datasets["train"], self.batch_size, self.seed, world_size, rank, self._start)
        if sampler.num_samples < self.batch_size:  # Lightning would stop with "No training batches", then test
            raise ValueError(
                f"no training batch: the training split has {len(self.datasets['train'])} videos"
                f"{f', {sampler.num_samples} per each of {world_size} processes' if world_size > 1 else ''}, fewer "
                f"than data.batch_size={self.batch_size}, and training batches are full (drop_last=True, so that "
                f"batch statistics and the lr per sample do not vary). Lower data.batch_size to at most "
                f"{sampler.num_samples}, or add training videos")
        # Lightning warns on a mid-epoch resume unless the loader has a state_dict; the sampler resumes on its own
        warnings.filterwarnings("ignore", "You're resuming from a checkpoint that ended before the epoch ended",
                                PossibleUserWarning)
        return self._loader("train", sampler, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")



def invalid_settings(num_frames: int, sampling_rate: int, crop_size: int, train_min_short_side: int,
                     train_max_short_side: int, augment: str | None, random_erasing: float, test_clips: int,
                     test_crops: int, mean: tuple[float, ...], std: tuple[float, ...], batch_size: int,
                     num_workers: int, max_skip_fraction: float) -> list[str]:
    """What is wrong with the data settings, naming their config keys: caught here rather than deep in PyTorchVideo
    (`crop_size must be less than or equal to min_size`) or in the middle of the first epoch."""
    at_least_one = dict(num_frames=num_frames, sampling_rate=sampling_rate, crop_size=crop_size,
                        test_clips=test_clips, batch_size=batch_size)
    invalid = [f"data.{key}={value} must be at least 1" for key, value in at_least_one.items() if value < 1]
    if crop_size > train_min_short_side:
        invalid.append(f"data.crop_size={crop_size} is larger than data.train_min_short_side={train_min_short_side}: "
                       f"training crops are taken from frames whose short side is scaled to between "
                       f"data.train_min_short_side and data.train_max_short_side; raise data.train_min_short_side to "
                       f"at least {crop_size} or lower data.crop_size")
    if train_min_short_side > train_max_short_side:
        invalid.append(f"data.train_min_short_side={train_min_short_side} is larger than "
                       f"data.train_max_short_side={train_max_short_side}: swap them, or set them equal for a fixed "
                       f"scale")
    if test_crops not in (1, 3):
        invalid.append(f"data.test_crops={test_crops}: valid are 1 (centre) and 3 (left, centre, right)")
    if augment is not None and augment not in AUGMENTS:
        invalid.append(f"unknown data.augment {augment!r}; valid: {', '.join(AUGMENTS)} (or null)")
    if len(mean) != 3:
        invalid.append(f"data.mean={list(mean)} must be 3 numbers, one per colour channel")
    if len(std) != 3 or min(std) <= 0:
        invalid.append(f"data.std={list(std)} must be 3 positive numbers, one per colour channel")
    if num_workers < 0:
        invalid.append(f"data.num_workers={num_workers} must be 0 (load in the training process) or more")
    if not 0 <= random_erasing <= 1:
        invalid.append(f"data.random_erasing={random_erasing} is a probability: between 0 and 1")
    if max_skip_fraction < 0:  # above 1 is allowed: replacements can be unreadable too, so skips can outnumber samples
        invalid.append(f"data.max_skip_fraction={max_skip_fraction} must be 0 (stop at the first unreadable video) "
                       f"or more")
    return invalid
