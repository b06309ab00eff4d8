"""A trained model rebuilt from its checkpoint alone: scheme, sizes, clip settings and class names.

Every checkpoint `python -m lightning_video fit` writes holds the run's resolved config (`runs.CONFIG_KEY`) and the
clip settings of its data (`module.CLIP_SETTINGS_KEY`), as plain text and numbers, so that it reads with
`weights_only` and names no class but through the config. `lightning_video.load_checkpoint` and
`VideoClassifier.load_from_checkpoint` build from them; `validate`, `test` and `predict --ckpt_path` take their
model and clip settings from the same place (`saved_run`).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import NamedTuple

import torch
import yaml
from pytorch_lightning.cli import LightningArgumentParser

from lightning_video.data.clip_settings import DATA_ARGUMENTS, ClipSettings
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.training.module import CLIP_SETTINGS_KEY, VideoClassifier
from lightning_video.training.runs import CONFIG_KEY, read_checkpoint

# The data module's state, where checkpoints written before the clip settings were saved keep the class names.
DATA_STATE_KEY = VideoDataModule.__qualname__
# The model options that only training reads: a rebuilt model takes the defaults.
TRAINING_ONLY = ("optimizer", "lr_scheduler")


class SavedRun(NamedTuple):
    """What a checkpoint says about the run that wrote it.

    Attributes:
        model: the `model` section of its config, as the CLI parsed it, without the pretrained weights (the
            checkpoint's replace them), the settings the data links into it and the optimiser and schedule.
        clip_settings: how its clips were made, and its class names.
    """

    model: dict
    clip_settings: ClipSettings


class LoadedCheckpoint(NamedTuple):
    """A rebuilt model (in eval mode, its weights loaded) and the clips it takes."""

    model: VideoClassifier
    clip_settings: ClipSettings

    @property
    def class_names(self) -> list[str]:
        """The name of each output of the model."""
        return self.clip_settings.class_names


def saved_run(checkpoint: dict, path: str | Path) -> SavedRun:
    """The model config and clip settings that `checkpoint` (read from `path`) was trained with.

    Raises:
        ValueError: it holds no config (not written by this project's CLI), saying how to load its weights instead.
    """
    if CONFIG_KEY not in checkpoint:
        raise ValueError(f"{path} holds no run config (`{CONFIG_KEY}`), so it was not written by `python -m "
                         f"lightning_video fit` and does not say which model it holds: build the model yourself and "
                         f"load its weights with `lightning_video.models.load_pretrained(backbone, {str(path)!r})`")
    config = yaml.safe_load(checkpoint[CONFIG_KEY])
    model = config["model"]
    model["pretrained"] = None
    for key in TRAINING_ONLY:  # an option of theirs since renamed would refuse a model that needs none of them
        model.pop(key, None)
    if CLIP_SETTINGS_KEY in checkpoint:
        return SavedRun(model, ClipSettings.from_dict(checkpoint[CLIP_SETTINGS_KEY]))
    return SavedRun(model, _clip_settings_of_config(config["data"], checkpoint, path))


def _clip_settings_of_config(data: dict, checkpoint: dict, path: str | Path) -> ClipSettings:
    """The clip settings of a checkpoint saved before they were: its data config, and the class names its data
    module's state kept."""
    class_names = checkpoint.get(DATA_STATE_KEY, {}).get("class_names")
    if class_names is None:
        raise ValueError(f"{path} holds neither clip settings (`{CLIP_SETTINGS_KEY}`) nor its data's class names "
                         f"(`{DATA_STATE_KEY}`): its outputs cannot be named")
    arguments = {key: data[key] for key in (*DATA_ARGUMENTS, "dataset") if key in data}
    return VideoDataModule(**{**arguments, "class_names": class_names}).clip_settings


def _model_config(saved: SavedRun) -> dict:
    """`saved.model` with what the CLI links from the data into the model: its clip settings and sizes."""
    clips = saved.clip_settings
    model = copy.deepcopy(saved.model)
    backbone = model["backbone"].setdefault("init_args", {})
    backbone.update(num_frames=clips.num_frames, img_size=clips.crop_size, num_classes=len(clips.class_names))
    model["clip_settings"] = clips.to_dict()
    return model


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", strict: bool = True,
                    model_class: type[VideoClassifier] = VideoClassifier) -> LoadedCheckpoint:
    """The model a checkpoint of `python -m lightning_video fit` holds, with its weights, clip settings and class
    names; the file is checked against its digest first.

    Raises:
        ValueError: the checkpoint holds no run config.
        jsonargparse.ArgumentError: its config no longer parses (an option since renamed), naming the key.
        models.checkpoint_file.CheckpointError: the file is damaged or no checkpoint.
    """
    checkpoint = read_checkpoint(path)
    saved = saved_run(checkpoint, path)
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(model_class, "model", subclass_mode=False)
    config = parser.parse_object({"model": _model_config(saved)})
    model = parser.instantiate_classes(config).model
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"], strict=strict)
    return LoadedCheckpoint(model.to(map_location).eval(), saved.clip_settings)
