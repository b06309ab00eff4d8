"""The shipped recipes (`experiments/configs/*.yaml`): each one, shrunk to a tiny model on a CPU, trains a step on a
tiny copy of its own dataset in its published layout, and its pieces (`experiments/configs/pieces/`) are what the
recipes and `models/presets.py` say they are."""
from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

import published_layouts
from lightning_video.cli import main
from lightning_video.data import synthetic
from lightning_video.models.presets import PRESETS
from lightning_video.models.video_transformer import VideoTransformer

CONFIGS = Path(__file__).parents[1] / "experiments/configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))
PIECES = CONFIGS / "pieces"
# The datasets' published layouts, written tiny by the tests (synthetic recipes generate their own task).
LAYOUT_WRITERS: dict[str, Callable[[Path], Path]] = {"kinetics": published_layouts.kinetics_folders,
                                                     "ssv2": published_layouts.ssv2,
                                                     "csv": published_layouts.csv_layout,
                                                     "epic_kitchens": published_layouts.epic_kitchens}
CLASS_COUNTS = {"kinetics": len(published_layouts.KINETICS_CLASSES), "ssv2": len(published_layouts.SSV2_LABELS),
                "csv": len(published_layouts.CSV_CLASSES), "epic_kitchens": 97 + 300}  # verb and noun heads
# What each backbone piece is: a preset, with the options it changes. Frames, crop and classes come from the data.
# The TimeSformer-HR and -L presets differ from `timesformer_base_8x224` only in frames and crop: one piece serves all.
BACKBONE_PRESETS = {"timesformer_vit_b16": ("timesformer_base_8x224", {}),
                    "xvit_vit_b16_rho50": ("xvit_base_8x224", {"drop_path_rate": 0.0}),
                    "xvit_vit_b16_rho25": ("xvit_base_8x224",
                                           {"drop_path_rate": 0.0,
                                            "attention_options": dict(mix="kv", shift_div=8, temporal="ta")}),
                    "xvit_vit_b16_rho25_segments8": ("xvit_k600_16x224", {}),
                    "synthetic_divided": ("synthetic_8x32", {})}
LINKED_FROM_DATA = {"num_frames", "img_size", "num_classes"}
# A paper recipe's name ends with its dataset: the layout it must declare (HowTo100M comes as the csv layout).
DATASET_IN_NAME = {"k400": "kinetics", "k600": "kinetics", "ssv2": "ssv2", "howto100m": "csv", "epic": "epic_kitchens"}


def shrunk(recipe: Path) -> list[str]:
    """A tiny model on tiny clips, on one CPU process, with the recipe's scheme, optimiser, schedule and precision.
    X-ViT's `segment_frames` shrinks with the clip, so the mixing still stops at the same share of it."""
    num_frames = declared_data(recipe).get("num_frames", 8)
    frames = min(num_frames, 4)
    options = declared_backbone(recipe)["init_args"].get("attention_options") or {}
    segments = []
    if options.get("segment_frames"):
        scaled = {**options, "segment_frames": options["segment_frames"] * frames // num_frames}
        segments = ["--model.backbone.init_args.attention_options", json.dumps(scaled)]
    return [*segments, "--data.num_workers", "0", "--data.batch_size", "2", "--data.num_frames", str(frames),
            "--data.sampling_rate", "2", "--data.crop_size", "16", "--data.train_min_short_side", "16",
            "--data.train_max_short_side", "20", "--model.backbone.init_args.patch_size", "8",
            "--model.backbone.init_args.embed_dim", "32", "--model.backbone.init_args.depth", "1",
            "--model.backbone.init_args.num_heads", "2", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
            "--trainer.num_nodes", "1", "--trainer.strategy", "auto", "--trainer.enable_progress_bar", "false",
            "--trainer.fast_dev_run", "1"]


def declared_data(recipe: Path) -> dict:
    return yaml.safe_load(recipe.read_text())["data"]


def declared_backbone(recipe: Path) -> dict:
    """The recipe's backbone, inline or its piece."""
    backbone = yaml.safe_load(recipe.read_text())["model"]["backbone"]
    return yaml.safe_load((CONFIGS / backbone).read_text()) if isinstance(backbone, str) else backbone


def dataset_of(recipe: Path) -> str:
    """The dataset a recipe trains on: its synthetic task, or else its layout."""
    data = declared_data(recipe)
    return "synthetic" if data.get("synthetic") else data.get("dataset", "csv")


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {dataset: write(tmp_path_factory.mktemp(dataset)) for dataset, write in LAYOUT_WRITERS.items()}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_recipe_trains_a_step_on_its_own_datasets_layout(recipe: Path, layouts: dict[str, Path], tmp_path: Path):
    data, dataset = declared_data(recipe), dataset_of(recipe)
    if dataset == "synthetic":
        root, classes = tmp_path / "synthetic", len(synthetic.task_classes(data["synthetic"]["task"]))
        on_data = ["--data.root", str(root), "--data.synthetic.videos_per_class", "2"]
    else:
        assert dataset in LAYOUT_WRITERS, f"{recipe.name}: no tiny {dataset} layout in tests/published_layouts.py"
        root, classes = layouts[dataset], CLASS_COUNTS[dataset]
        on_data = ["--data.root", str(root)]
    cli = main(["fit", "--config", str(recipe), *shrunk(recipe), *on_data,
                "--trainer.default_root_dir", str(tmp_path)])
    assert cli.datamodule.dataset == data.get("dataset", "csv") and cli.datamodule.root == root
    if "sampling" in data:
        assert cli.datamodule.sampling == data["sampling"]
    assert cli.model.backbone.head.out_features == classes
    assert cli.trainer.precision == yaml.safe_load(recipe.read_text())["trainer"].get("precision", "32-true")
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_each_recipe_declares_the_dataset_its_name_says():
    named = {recipe.stem: dataset_of(recipe) for recipe in RECIPES}
    assert named == {stem: "synthetic" if stem.startswith("synthetic_") else DATASET_IN_NAME[stem.rsplit("_", 1)[1]]
                     for stem in named}


def test_ssv2_recipes_take_one_frame_per_segment_unflipped():
    for recipe in [recipe for recipe in RECIPES if dataset_of(recipe) == "ssv2"]:
        data = declared_data(recipe)
        assert (data["sampling"], data["horizontal_flip"]) == ("segments", False), recipe.name


def _with_defaults(arguments: dict) -> dict:
    defaults = {name: parameter.default for name, parameter in inspect.signature(VideoTransformer).parameters.items()}
    return {key: value for key, value in {**defaults, **arguments}.items() if key not in LINKED_FROM_DATA}


@pytest.mark.parametrize("piece", sorted((PIECES / "backbone").glob("*.yaml")), ids=lambda path: path.stem)
def test_backbone_piece_is_its_preset(piece: Path):
    assert piece.stem in BACKBONE_PRESETS, f"{piece}: name the preset it is in BACKBONE_PRESETS"
    preset, changed = BACKBONE_PRESETS[piece.stem]
    declared = yaml.safe_load(piece.read_text())
    assert declared["class_path"] == "lightning_video.models.VideoTransformer"
    assert _with_defaults(declared["init_args"]) == _with_defaults({**PRESETS[preset], **changed})


def test_every_piece_is_used_by_a_recipe():
    used = {(CONFIGS / value).resolve() for recipe in RECIPES for value in _values(yaml.safe_load(recipe.read_text()))
            if isinstance(value, str) and value.startswith("pieces/")}
    assert used == {path.resolve() for path in PIECES.rglob("*.yaml")}


def _values(tree: dict | list | object) -> list:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _values(value)]
    if isinstance(tree, list):
        return [leaf for value in tree for leaf in _values(value)]
    return [tree]
