"""Every value that makes a paper recipe (`experiments/configs/*.yaml` but the synthetic ones, whose values are this
project's measurements) the paper's, as the CLI's own parser resolves the recipe with its pieces, against a table of
those values written from their sources: the papers and the official configs. A recipe value changed without its
source fails here.

Sources: "TimeSformer" is Bertasius et al., ICML 2021, and `ts:` files are of github.com/facebookresearch/TimeSformer;
"X-ViT" is Bulat et al., NeurIPS 2021, and `xv:` files are of github.com/1adrianb/video-transformers."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightning_video.cli import main
from lightning_video.data.layouts import LAYOUTS

CONFIGS = Path(__file__).parents[1] / "experiments/configs"
PAPER_RECIPES = sorted(path for path in CONFIGS.glob("*.yaml") if not path.stem.startswith("synthetic_"))


@dataclass(frozen=True)
class Traced:
    """A recipe value and where it comes from."""

    value: Any
    source: str


T = Traced
TS_DEFAULTS = "ts:timesformer/config/defaults.py"
XV_DEFAULTS = "xv:slowfast/config/defaults.py"
DATASETS_CODE = {"ts:": "ts:timesformer/datasets/", "xv:": "xv:slowfast/datasets/"}
XV_PAPER = "X-ViT training details"


def timesformer_solver(config: str) -> dict[str, Traced]:
    """Optimiser, schedule, loss and model settings shared by every TimeSformer recipe."""
    return {
        "model.backbone.init_args.attention": T("divided", f"{config} TIMESFORMER.ATTENTION_TYPE divided_space_time"),
        "model.backbone.init_args.drop_path_rate": T(0.1, "ts:timesformer/models/vit.py vit_base_patch16_224"),
        "model.backbone.init_args.head_drop_rate": T(0.0, f"{config} MODEL.DROPOUT_RATE 0.5 is read by no TimeSformer "
                                                          "model: its head is a bare Linear"),
        "model.backbone.init_args.drop_rate": T(0.0, "ts:timesformer/models/vit.py vit_base_patch16_224 drop_rate=0."),
        "model.optimizer.class_path": T("torch.optim.SGD", f"TimeSformer Section 4; {config} SOLVER.OPTIMIZING_METHOD"),
        "model.optimizer.init_args.lr": T(0.005, f"TimeSformer Section 4; {config} SOLVER.BASE_LR"),
        "model.optimizer.init_args.momentum": T(0.9, f"TimeSformer Section 4; {config} SOLVER.MOMENTUM"),
        "model.optimizer.init_args.nesterov": T(True, f"{TS_DEFAULTS} SOLVER.NESTEROV"),
        "model.optimizer.init_args.weight_decay": T(0.0001, f"TimeSformer Section 4; {config} SOLVER.WEIGHT_DECAY"),
        "model.no_weight_decay": T(False, "ts:timesformer/models/optimizer.py exempts only names with 'bn'"),
        "model.lr_scheduler.class_path": T("torch.optim.lr_scheduler.MultiStepLR",
                                           f"{config} SOLVER.LR_POLICY steps_with_relative_lrs; "
                                           f"{TS_DEFAULTS} SOLVER.WARMUP_EPOCHS 0"),
        "model.lr_scheduler.init_args.milestones": T([11, 14], f"TimeSformer Section 4; {config} SOLVER.STEPS"),
        "model.lr_scheduler.init_args.gamma": T(0.1, f"TimeSformer Section 4; {config} SOLVER.LRS"),
        "trainer.max_epochs": T(15, f"TimeSformer Section 4; {config} SOLVER.MAX_EPOCH"),
        "global_batch.size": T(64, "TimeSformer Section 4 (the config's TRAIN.BATCH_SIZE 8 is 1 clip per GPU)"),
        "model.label_smoothing": T(0.0, f"{config} MODEL.LOSS_FUNC cross_entropy"),
        "model.mixing.mixup_alpha": T(0.0, f"{TS_DEFAULTS} has no mixup"),
        "model.mixing.cutmix_alpha": T(0.0, f"{TS_DEFAULTS} has no cutmix"),
        "data.augment": T(None, "ts:timesformer/datasets/kinetics.py, ssv2.py: scale jitter, crop and flip only"),
        "data.random_erasing": T(0.0, "ts:timesformer/datasets: no random erasing"),
        "data.test_clips": T(1, f"{config} TEST.NUM_ENSEMBLE_VIEWS"),
        "data.test_crops": T(3, f"TimeSformer Section 4 (3 spatial crops); {config} TEST.NUM_SPATIAL_CROPS"),
        "data.mean": T([0.45, 0.45, 0.45], f"{TS_DEFAULTS} DATA.MEAN"),
        "data.std": T([0.225, 0.225, 0.225], f"{TS_DEFAULTS} DATA.STD"),
    }


def clip(config: str, sampling: str, frames: int, rate: int | None, crop: int, jitter: tuple[int, int],
         flip: bool) -> dict[str, Traced]:
    """A recipe's clips: `rate` is None for segment (TSN) sampling, where the data module ignores it."""
    loader = "ssv2.py get_seq_frames" if sampling == "segments" else "kinetics.py, at DATA.SAMPLING_RATE"
    values = {"data.sampling": T(sampling, f"{DATASETS_CODE[config[:3]]}{loader}"),
              "data.num_frames": T(frames, f"{config} DATA.NUM_FRAMES"),
              "data.crop_size": T(crop, f"{config} DATA.TRAIN_CROP_SIZE, DATA.TEST_CROP_SIZE"),
              "data.train_min_short_side": T(jitter[0], f"{config} DATA.TRAIN_JITTER_SCALES"),
              "data.train_max_short_side": T(jitter[1], f"{config} DATA.TRAIN_JITTER_SCALES"),
              "data.horizontal_flip": T(flip, f"{config} DATA.RANDOM_FLIP")}
    if rate is not None:
        values["data.sampling_rate"] = T(rate, f"{config} DATA.SAMPLING_RATE")
    return values


def timesformer(config: str, **clip_values: Any) -> dict[str, Traced]:
    return {**timesformer_solver(f"ts:{config}"), **clip(f"ts:{config}", **clip_values)}


TS_K = "configs/Kinetics/TimeSformer_divST_8x32_224.yaml"
TS_K_HR = "configs/Kinetics/TimeSformer_divST_16x16_448.yaml"
TS_K_L = "configs/Kinetics/TimeSformer_divST_96x4_224.yaml"
BASE_KINETICS = dict(sampling="clip", frames=8, rate=32, crop=224, jitter=(256, 320), flip=True)
HR_KINETICS = dict(sampling="clip", frames=16, rate=16, crop=448, jitter=(448, 512), flip=True)
L_KINETICS = dict(sampling="clip", frames=96, rate=4, crop=224, jitter=(256, 320), flip=True)

XV_K400 = "xv:configs/Kinetics/xvit_B16_16x16_k400.yaml"
XV_K600 = "xv:configs/Kinetics/xvit_B16_16x16_k600.yaml"
XV_SSV2 = "xv:configs/SSv2/xvit_B16_16x16.yaml"


def xvit(config: str, shift_div: int, segment_frames: int | None, lr: Traced, weight_decay: float, epochs: Traced,
         warmup_from: float, batch: Traced, label_smoothing: Traced, mixup: Traced, random_erasing: Traced,
         test_clips: Traced) -> dict[str, Traced]:
    """An X-ViT recipe: the values the paper and the config share, and those where the recipe chose one of them."""
    options = {"mix": "kv", "shift_div": shift_div, "temporal": "ta"}
    if segment_frames is not None:
        options["segment_frames"] = segment_frames
    return {
        "model.backbone.init_args.attention": T("xvit", f"X-ViT; {config} XVIT.USE_XVIT"),
        "model.backbone.init_args.attention_options": T(options, f"X-ViT ablations (mixing, ρ, TA head); {config} "
                                                                 "XVIT.SHIFT_DIV, NUM_SEGMENTS, CONSENSUS_TYPE vit"),
        "model.backbone.init_args.drop_path_rate": T(0.0, f"{XV_DEFAULTS} XVIT.BACKBONE.DROP_PATH_RATE"),
        "model.backbone.init_args.head_drop_rate": T(0.5, f"{config} MODEL.DROPOUT_RATE (frame features, TA head MLP)"),
        "model.backbone.init_args.drop_rate": T(0.0, "xv:slowfast/models/video_model_builder.py drop_rate=0"),
        "model.optimizer.class_path": T("torch.optim.SGD", f"{XV_PAPER}; {config} SOLVER.OPTIMIZING_METHOD"),
        "model.optimizer.init_args.lr": lr,
        "model.optimizer.init_args.momentum": T(0.9, f"{config} SOLVER.MOMENTUM"),
        "model.optimizer.init_args.nesterov": T(True, f"{XV_DEFAULTS} SOLVER.NESTEROV"),
        "model.optimizer.init_args.weight_decay": T(weight_decay, f"{config} SOLVER.WEIGHT_DECAY"),
        "model.no_weight_decay": T(["backbone.head.bias", "backbone.temporal_head.mlp_head.*.bias"],
                                   "xv:slowfast/models/optimizer.py decays all but the biases of modules named *head*"),
        "model.lr_scheduler.class_path": T("lightning_video.training.schedules.WarmupCosineLR",
                                           f"{XV_PAPER} (cosine, linear warmup); {config} SOLVER.LR_POLICY"),
        "model.lr_scheduler.init_args.warmup_epochs": T(5, f"{config} SOLVER.WARMUP_EPOCHS"),
        "model.lr_scheduler.init_args.warmup_start_factor": T(warmup_from, f"{config} SOLVER.WARMUP_START_LR / "
                                                                           "SOLVER.BASE_LR"),
        "trainer.max_epochs": epochs,  # the cosine schedule spans the trainer's length
        "global_batch.size": batch,
        "model.label_smoothing": label_smoothing,
        "model.mixing.mixup_alpha": mixup,
        "model.mixing.cutmix_alpha": T(0.0, f"{XV_DEFAULTS} has no cutmix"),
        "data.augment": T("autoaugment", f"{XV_PAPER}; {config} DATA.AUTOAUGMENT"),
        "data.random_erasing": random_erasing,
        "data.test_clips": test_clips,
        "data.test_crops": T(3, f"{XV_PAPER} (3 crops); {XV_DEFAULTS} TEST.NUM_SPATIAL_CROPS"),
        "data.mean": T([0.5, 0.5, 0.5], f"{config} DATA.MEAN"),
        "data.std": T([0.5, 0.5, 0.5], f"{config} DATA.STD"),
    }


# The 8-frame X-ViT recipes follow the paper (no 8-frame config was released); the 16-frame ones the config released
# with the 16-frame checkpoints.
XVIT_PAPER = dict(batch=T(128, f"{XV_PAPER} (the batch its lr is given for)"),
                  test_clips=T(1, f"{XV_PAPER} (1 clip x 3 crops)"))
XVIT_KINETICS_PAPER = dict(XVIT_PAPER, lr=T(0.03, XV_PAPER), weight_decay=0.00001,
                           epochs=T(30, XV_PAPER), warmup_from=0.333,
                           label_smoothing=T(0.0, f"{XV_PAPER} (label smoothing on SSv2 only)"),
                           mixup=T(0.4, f"{XV_PAPER} (mixup on Kinetics)"),
                           random_erasing=T(0.0, f"{XV_DEFAULTS} DATA.RAND_CROP"))


def xvit_kinetics_release(config: str) -> dict[str, Any]:
    return dict(lr=T(0.03, f"{config} SOLVER.BASE_LR"), weight_decay=0.00001,
                epochs=T(30, f"{config} SOLVER.MAX_EPOCH"), warmup_from=0.333,
                batch=T(64, f"{config} TRAIN.BATCH_SIZE (total over NUM_GPUS)"),
                label_smoothing=T(0.3, f"{config} MODEL.LOSS_FUNC smooth_cross_entropy (xv:slowfast/models/losses.py "
                                       "smoothing=0.3)"),
                mixup=T(0.4, f"{config} TRAIN.MIXUP_ALPHA"), random_erasing=T(0.0, f"{XV_DEFAULTS} DATA.RAND_CROP"),
                test_clips=T(1, f"{config} TEST.NUM_ENSEMBLE_VIEWS"))


def xvit_kinetics(config: str, frames: int, segment_frames: int | None, **solver: Any) -> dict[str, Traced]:
    return {**xvit(config, shift_div=8, segment_frames=segment_frames, **solver),
            **clip(config, "clip", frames=frames, rate=16, crop=224, jitter=(256, 320), flip=True)}


XVIT_SSV2_CLIP = dict(sampling="segments", rate=None, crop=224, jitter=(256, 320), flip=False)

VALUES: dict[str, dict[str, Traced]] = {
    "timesformer_k400": timesformer(TS_K, **BASE_KINETICS),
    "timesformer_k600": timesformer(TS_K, **BASE_KINETICS),  # no K600 config: the K400 one
    "timesformer_hr_k400": timesformer(TS_K_HR, **HR_KINETICS),
    "timesformer_hr_k600": timesformer(TS_K_HR, **HR_KINETICS),
    "timesformer_l_k400": timesformer(TS_K_L, **L_KINETICS),
    "timesformer_l_k600": timesformer(TS_K_L, **L_KINETICS),
    "timesformer_ssv2": timesformer("configs/SSv2/TimeSformer_divST_8_224.yaml", sampling="segments", frames=8,
                                    rate=None, crop=224, jitter=(256, 320), flip=False),
    "timesformer_hr_ssv2": timesformer("configs/SSv2/TimeSformer_divST_16_448.yaml", sampling="segments", frames=16,
                                       rate=None, crop=448, jitter=(448, 512), flip=False),
    "timesformer_l_ssv2": timesformer("configs/SSv2/TimeSformer_divST_64_224.yaml", sampling="segments", frames=64,
                                      rate=None, crop=224, jitter=(256, 320), flip=False),
    "timesformer_howto100m": {**timesformer(TS_K, **BASE_KINETICS),  # no HowTo100M config
                              "data.sampling_rate": T(32, "TimeSformer Table 8"),
                              "data.num_frames": T(8, "TimeSformer Table 8 (8, 32, 64, 96)"),
                              "data.test_clips": T(48, "TimeSformer Table 8 (clips covering the video)"),
                              "data.test_crops": T(1, "this project's choice: TimeSformer Table 8 gives the clips only")},
    "xvit_k400": xvit_kinetics(XV_K400, frames=8, segment_frames=None, **XVIT_KINETICS_PAPER),
    "xvit_k600": xvit_kinetics(XV_K600, frames=8, segment_frames=None, **XVIT_KINETICS_PAPER),
    "xvit_16f_k400": xvit_kinetics(XV_K400, frames=16, segment_frames=8, **xvit_kinetics_release(XV_K400)),
    "xvit_16f_k600": xvit_kinetics(XV_K600, frames=16, segment_frames=8, **xvit_kinetics_release(XV_K600)),
    "xvit_ssv2": {**xvit(XV_SSV2, shift_div=4, segment_frames=None, lr=T(0.05, f"{XV_PAPER} (config: 0.03)"),
                         weight_decay=0.0001, epochs=T(35, XV_PAPER), warmup_from=0.1,
                         label_smoothing=T(0.3, f"{XV_PAPER} (config: cross_entropy)"),
                         mixup=T(0.0, f"{XV_SSV2} TRAIN.MIXUP_ALPHA"),
                         random_erasing=T(0.5, f"{XV_PAPER}; {XV_SSV2} DATA.RAND_CROP"), **XVIT_PAPER),
                  **clip(XV_SSV2, frames=8, **XVIT_SSV2_CLIP)},
    "xvit_16f_ssv2": {**xvit(XV_SSV2, shift_div=4, segment_frames=None, lr=T(0.03, f"{XV_SSV2} SOLVER.BASE_LR"),
                             weight_decay=0.0001, epochs=T(35, f"{XV_SSV2} SOLVER.MAX_EPOCH"), warmup_from=0.1,
                             batch=T(64, f"{XV_SSV2} TRAIN.BATCH_SIZE (total over NUM_GPUS)"),
                             label_smoothing=T(0.0, f"{XV_SSV2} MODEL.LOSS_FUNC cross_entropy"),
                             mixup=T(0.0, f"{XV_SSV2} TRAIN.MIXUP_ALPHA"),
                             random_erasing=T(0.5, f"{XV_SSV2} DATA.RAND_CROP"),
                             test_clips=T(2, f"{XV_SSV2} TEST.NUM_ENSEMBLE_VIEWS")),
                      **clip(XV_SSV2, frames=16, **XVIT_SSV2_CLIP)},
    # no Epic-Kitchens config was released: the paper, and the SSv2 config where it is silent
    "xvit_epic": {**xvit(XV_SSV2, shift_div=4, segment_frames=None, lr=T(0.05, XV_PAPER), weight_decay=0.0001,
                         epochs=T(50, XV_PAPER), warmup_from=0.1, label_smoothing=T(0.3, XV_PAPER),
                         mixup=T(0.0, f"{XV_PAPER} (mixup on Kinetics only)"),
                         random_erasing=T(0.5, f"{XV_PAPER}; {XV_SSV2} DATA.RAND_CROP"), **XVIT_PAPER),
                  **clip(XV_SSV2, frames=8, **{**XVIT_SSV2_CLIP, "flip": True}),
                  "data.horizontal_flip": T(True, f"{XV_PAPER} (flips on all datasets but SSv2)"),
                  "data.dataset": T("epic_kitchens", "X-ViT Table 7"),
                  "checkpoint.monitor": T("val/clip_action_top1", "X-ViT Table 7 (action top-1 first)")},
}


def resolved(recipe: Path) -> dict:
    """The `fit` config the CLI resolves from the recipe and its pieces (`--print_config`)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit):
        main(["fit", "--config", str(recipe), "--print_config"])
    return yaml.safe_load(printed.getvalue())


def looked_up(config: dict, key: str) -> Any:
    value = config
    for part in key.split("."):
        value = value[part]
    if key == "data.sampling" and value is None:  # the data module's choice for the dataset
        return LAYOUTS[config["data"]["dataset"]].sampling
    return value


def test_every_paper_recipe_has_its_values_traced():
    assert sorted(VALUES) == [recipe.stem for recipe in PAPER_RECIPES]


@pytest.mark.parametrize("recipe", PAPER_RECIPES, ids=lambda path: path.stem)
def test_recipe_resolves_to_its_traced_values(recipe: Path):
    config = resolved(recipe)
    wrong = [f"{key}: {looked_up(config, key)!r} in the recipe, {traced.value!r} in {traced.source}"
             for key, traced in VALUES[recipe.stem].items() if looked_up(config, key) != traced.value]
    assert not wrong, f"{recipe.name}:\n" + "\n".join(wrong)
