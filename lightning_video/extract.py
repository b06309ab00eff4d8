"""`lightning-video extract --out DIR`: features of videos for downstream work, per view, clip or video, over windows.

The model is a checkpoint of `fit` (`--ckpt_path`: it gives its clip settings too) or a backbone given by options or a
fit config (`--config`, its `model:` and `data:` sections) started from `--model.pretrained` weights. The videos are
`--data.path` (a video, a folder searched for videos, or a `path label` CSV file), or a split (`--split`) of the
dataset `--data.root` and `--data.dataset` describe. Features (`--feature`, see `models.features`): the cls feature
the head reads, the mean of the patch tokens, or one per frame. Levels (`--level`): each view (clip × crop, as
testing takes them: `data.test_clips`, `data.test_crops`), each clip (its crops averaged) or each video (its views
averaged). `--window` and `--stride` (seconds) cut long videos into windows, each sampled as a whole video would be
(`data.windows`), with its start and end times.

Written to `--out`: `features_*.safetensors` shards (`features` tensor; which row is what in their metadata),
`index.csv` (video, window, start, end, label, clip, crop, shard, row), `extract.json` (the settings) and, if any
video could not be read, `unreadable.json` (exit status 1). A rerun resumes: videos the shards hold are skipped, and
settings other than those of the first run are refused. `--trainer.devices N --trainer.strategy ddp` splits the
videos over N processes; rank 0 writes the index.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import yaml
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser
from pytorch_lightning.utilities import rank_zero_info

from lightning_video.data.annotations import Problems
from lightning_video.data.clip_settings import ClipSettings
from lightning_video.data.datamodule import SyntheticTask, VideoDataModule
from lightning_video.data.layouts import SPLITS, Label, read_csv
from lightning_video.models.features import FeatureKind
from lightning_video.models.video_transformer import VideoTransformer
from lightning_video.training.extraction import ExtractionData, FeatureExtractor, ShardWriter, Level, \
    extracted_videos, merge_index, write_atomically
from lightning_video.training.module import VideoClassifier
from lightning_video.training.progress import progress_bar
from lightning_video.training.rebuild import load_checkpoint

SETTINGS_FILE = "extract.json"
CLIP_KEYS = ("num_frames", "sampling_rate", "sampling", "crop_size", "mean", "std")


def parser() -> LightningArgumentParser:
    parser = LightningArgumentParser(prog="lightning-video extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=str | None, default=None, help="a fit config: its model: and data: sections")
    parser.add_argument("--ckpt_path", type=str | None, default=None, help="a checkpoint of `fit` (model and clips)")
    parser.add_argument("--out", type=str, help="the folder for the shards and the index (a rerun resumes)")
    parser.add_argument("--split", type=str, default="test", help=f"with data.root: the split ({', '.join(SPLITS)})")
    parser.add_argument("--feature", type=FeatureKind, default="cls",
                        help="cls (what the head reads), patch_mean or frames (one per frame): models/features.py")
    parser.add_argument("--level", type=Level, default="video",
                        help="a row per view, per clip (crops averaged) or per video or window (views averaged)")
    parser.add_argument("--window", type=float | None, default=None, help="window length in seconds (None: whole)")
    parser.add_argument("--stride", type=float | None, default=None, help="seconds between windows (None: window)")
    parser.add_argument("--shard_rows", type=int, default=4096, help="rows per shard (whole videos each)")
    parser.add_argument("--frame_folder_fps", type=float, default=30.0,
                        help="the rate frame folders (which have none) count at for windows and times")
    for name, kind, default in (("accelerator", str, "auto"), ("devices", int | str, "auto"), ("num_nodes", int, 1),
                                ("strategy", str, "auto"), ("precision", str | None, None)):
        parser.add_argument(f"--trainer.{name}", type=kind, default=default, help=f"the Trainer's {name}")
    parser.add_lightning_class_args(VideoClassifier, "model", subclass_mode=False)
    parser.add_lightning_class_args(VideoDataModule, "data", subclass_mode=False)
    return parser


def main(argv: list[str]) -> int:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config")
    first.add_argument("--ckpt_path")
    known = first.parse_known_args(argv)[0]
    config = (yaml.safe_load(Path(known.config).read_text()) or {}) if known.config else {}
    loaded = load_checkpoint(known.ckpt_path) if known.ckpt_path else None
    command = parser()
    sections = {"data": {**(loaded.clip_settings.data_arguments() if loaded else {}), **config.get("data", {})}}
    if loaded is None and "model" in config:
        sections["model"] = config["model"]
    args = command.parse_args(argv, namespace=command.parse_object(sections, defaults=True))
    problems = invalid_options(args, loaded is not None)
    if problems:
        command.error("\n".join(problems))
    data = data_module(args.data)
    backbone = loaded.model.backbone if loaded else _pretrained_backbone(command, args, data)
    clips = ClipSettings(**{key: getattr(data, key) for key in CLIP_KEYS}, test_clips=data.test_clips,
                         test_crops=data.test_crops)
    videos = videos_of(data, args.split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings(args, clips, videos))
    done = extracted_videos(out)
    rank_zero_info(f"{len(videos)} videos: {len(done)} extracted already, {len(videos) - len(done)} to do")
    writer = ShardWriter(out, args.level, args.shard_rows)
    trainer = pl.Trainer(**{key: value for key, value in vars(args.trainer).items() if value is not None},
                         logger=False, callbacks=[writer, progress_bar()], use_distributed_sampler=False,
                         enable_checkpointing=False, enable_model_summary=False)
    extraction = ExtractionData(
        videos, done, args.window, args.stride, args.frame_folder_fps,
        dict(num_frames=clips.num_frames, sampling_rate=clips.sampling_rate, sampling=clips.sampling,
             clips_per_window=clips.test_clips, crops_per_clip=clips.test_crops),
        data.evaluation_transform, data.batch_size, data.num_workers)
    if len(done) < len(videos):
        trainer.predict(FeatureExtractor(backbone, args.feature), datamodule=extraction, return_predictions=False)
    trainer.strategy.barrier()
    if not trainer.is_global_zero:
        return 0
    rows, unreadable = merge_index(out)
    print(f"{rows} rows of {args.feature} features per {args.level}: {out / 'index.csv'}")
    if unreadable:
        print(f"{len(unreadable)} of the {len(videos)} videos could not be read (rerun to retry them): "
              f"{out / 'unreadable.json'}")
    return int(bool(unreadable))


def invalid_options(args: Namespace, has_checkpoint: bool) -> list[str]:
    """What is wrong with the command's own options, naming each and its fix."""
    problems = []
    if not args.out:
        problems.append("--out is required: the folder for the shards and the index")
    if args.window is not None and args.window <= 0 or args.stride is not None and args.stride <= 0:
        problems.append(f"--window {args.window} --stride {args.stride}: give positive seconds")
    if args.stride is not None and args.window is None:
        problems.append("--stride needs --window: the length of the windows it spaces")
    if args.shard_rows < 1:
        problems.append(f"--shard_rows {args.shard_rows} must be at least 1")
    if not has_checkpoint and not args.model.pretrained:
        problems.append("no weights: give --ckpt_path (a checkpoint of `fit`) or --model.pretrained (weights "
                        "`lightning_video.models.load_pretrained` reads, for the backbone --config or "
                        "--model.backbone.* describes); features of a random model mean nothing")
    if args.data.path is None and args.data.root is None:
        problems.append("no videos: give --data.path (a video, a folder of videos or a `path label` CSV file) or "
                        "--data.root with --data.dataset and --split")
    return problems


def data_module(data: Namespace) -> VideoDataModule:
    """The data module of the `data` options (built alone: the parser would build the model with it)."""
    arguments = data.as_dict()
    synthetic = arguments.pop("synthetic", None)
    return VideoDataModule(**arguments, synthetic=SyntheticTask(**synthetic) if synthetic else None)


def _pretrained_backbone(command: LightningArgumentParser, args: Namespace,
                         data: VideoDataModule) -> VideoTransformer:
    """The backbone the model options describe, at the data's clip size, loaded from `--model.pretrained`."""
    backbone = args.model.backbone.init_args
    backbone.num_frames, backbone.img_size = data.num_frames, data.crop_size
    return command.instantiate_classes(args).model.backbone


def videos_of(data: VideoDataModule, split: str) -> list[tuple[str, Label]]:
    """The videos to extract: those at `data.path` (a CSV file's rows with their labels), else the split's."""
    if data.path is not None and Path(data.path).suffix.lower() == ".csv":
        table = Path(data.path)
        if not table.is_file():
            raise FileNotFoundError(f"data.path {table} does not exist")
        problems = Problems()
        videos = read_csv(table.parent, table.stem, 1, problems).videos
        problems.raise_if_any()
        return videos
    return data.videos("predict" if data.path is not None else split)


def settings(args: Namespace, clips: ClipSettings, videos: list[tuple[str, Label]]) -> dict:
    """What the features depend on: a resumed extraction must have the same."""
    clip = {key: value for key, value in clips.to_dict().items() if key not in ("class_names", "multi_label")}
    return {"weights": args.ckpt_path or args.model.pretrained, "feature": args.feature, "level": args.level,
            "window": args.window, "stride": args.stride, "clips": clip, "videos": [path for path, _ in videos]}


def check_settings(out: Path, wanted: dict) -> None:
    """Record the settings of a new extraction in `out`, or refuse to resume one made with other settings."""
    file = out / SETTINGS_FILE
    if not file.is_file():  # every rank writes the same, whole (ranks started together may all find none)
        write_atomically((json.dumps(wanted, indent=1) + "\n").encode(), file)
        return
    saved = json.loads(file.read_text())
    differing = [key for key in wanted if saved.get(key) != wanted[key]]
    if differing:
        raise ValueError(f"{out} holds an extraction with other {', '.join(differing)} ({file}): resuming it would "
                         f"mix features. Give another --out, or the options of that extraction to resume it")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
