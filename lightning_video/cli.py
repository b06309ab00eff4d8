"""Command line: `lightning-video fit|validate|test|predict --config FILE` (LightningCLI), and the commands of
`commands.EXTRA_COMMANDS` (check-data, flops, ...), which `--help` lists too. The console command (`console.py`)
filters known third-party noise before this module imports its libraries.

The data decides the model's input and output sizes: `data.num_frames`, `data.crop_size` and the dataset's
class count are linked into the backbone, so each is set once, and the data's clip settings
(`VideoDataModule.clip_settings`) into the model, which saves them in its checkpoints. Beyond its config's own,
every run gets a CSV logger (`trainer.logger`, in `runs/`; a null name is the data folder's), the best checkpoints
(`checkpoint.*`) and `last.ckpt`, the latest training state, saved every epoch and every 30 minutes of training
(`last_checkpoint.*`), the recipe's global batch (`global_batch.size`), cost monitoring
(`monitoring.ComputeMonitor`), the learning rate (`LearningRateMonitor`, unless the config has one), a progress
display fit for a terminal or a batch job, with the whole run's ETA (`progress.py`), and its config saved with its
logs and inside its checkpoints (`runs.RunFiles`).

`fit --test_after_fit true` tests the best checkpoint when training ends and prints the video-level top-1 and where
the run's files are. `fit --ckpt_path last` resumes the newest run (`runs.resume_last_run`). `test` and
`predict --ckpt_path CKPT` rebuild the model and its clip settings from the checkpoint alone (`rebuild.saved_run`),
but an option given on the command line or in a `--config` file wins;
`predict --data.path VIDEO_OR_FOLDER` writes each video's top-5 labels (`predictions.PredictionWriter`). Their logs
and outputs go beside the checkpoint's run (`<run>/test/version_N`, `<run>/predict/version_N`) or to `--out`, and
`test`/`validate` reuse the checkpoint's `data.root` when none is given and it still exists.

Every checkpoint is written whole or not at all and carries a digest checked whenever it is read
(`checkpoint_io.CrashSafeCheckpointIO`, unless the trainer is given a CheckpointIO); `validate`, `test` and `predict`
refuse a checkpoint trained on other classes than the data's.

Under SLURM, `fit` saves, requeues and stops between two training steps when SLURM signals the job's end
(`preemption.RequeueOnPreemption`), not inside the signal handler as Lightning would.
"""
from __future__ import annotations

import inspect
import pydoc
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import torch
import yaml
from jsonargparse import ArgumentParser, Namespace
from pytorch_lightning import Callback, Trainer
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, ModelSummary, ProgressBar
from pytorch_lightning.cli import ArgsType, LightningArgumentParser, LightningCLI
from pytorch_lightning.plugins.io import CheckpointIO
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from lightning_video.commands import EXTRA_COMMANDS, run_extra_command
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.training.checkpoint_io import CrashSafeCheckpointIO
from lightning_video.training.global_batch import GlobalBatch
from lightning_video.training.last_checkpoint import LastCheckpoint
from lightning_video.training.metrics import JOINT
from lightning_video.training.module import VideoClassifier
from lightning_video.training.monitoring import ComputeMonitor
from lightning_video.training.predictions import PredictionWriter
from lightning_video.training.preemption import defer_slurm_requeue
from lightning_video.training.progress import progress_bar
from lightning_video.training.rebuild import saved_run
from lightning_video.training.summary import SummaryWithoutFlops
from lightning_video.training.runs import CONFIG_KEY, RunFiles, continue_metrics, read_checkpoint, resume_last_run, \
    run_dir, wandb_offline_unless_logged_in

# `--ckpt_path` values that Lightning resolves itself rather than as a file
LIGHTNING_CKPT_NAMES = ("best", "last", "hpc", "registry")

DEFAULT_MONITOR = "val/clip_top1"  # a model with several heads monitors all of them right at once instead
DEFAULT_LOGGER = {"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"save_dir": "runs"}}
# Loggers that write `<save_dir>/<name>/version_N`; a null name is the data folder's (`configs/my_videos.yaml`)
FOLDER_LOGGERS = ("pytorch_lightning.loggers.CSVLogger", "pytorch_lightning.loggers.TensorBoardLogger")


# jsonargparse refuses an unknown option of a class given by class_path without saying which it accepts.
REFUSED_OPTION = re.compile(r"Problem with given class_path '(?P<path>[\w.]+)':\n *Option '[^']+' is not accepted")


class VideoArgumentParser(LightningArgumentParser):
    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        super().error(REFUSED_OPTION.sub(_with_accepted_options, message), ex)


def _with_accepted_options(refused: re.Match) -> str:
    parameters = inspect.signature(pydoc.locate(refused["path"])).parameters.values()
    accepted = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return f"{refused[0]}; accepted: {', '.join(accepted)}"


class VideoCLI(LightningCLI):
    # `--ckpt_path` of validate/test/predict and its label names, to check against the data's once it is built.
    _checkpoint_classes: tuple[str, list[str]] | None = None
    _args: ArgsType = None  # as given, to be parsed again over a checkpoint's settings

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_frames", "model.backbone.init_args.num_frames")
        parser.link_arguments("data.crop_size", "model.backbone.init_args.img_size")
        parser.link_arguments("data.num_classes", "model.backbone.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.clip_settings", "model.clip_settings", apply_on="instantiate")
        parser.set_defaults({"trainer.logger": DEFAULT_LOGGER})

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        """Fit, validate, test and predict, and in `--help` also the commands `main` runs before LightningCLI."""
        super()._add_subcommands(parser, **kwargs)
        for name, (_, help_line) in EXTRA_COMMANDS.items():
            parser._subcommands_action.add_subcommand(name, ArgumentParser(description=help_line), help=help_line)

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        # LightningCLI has no public per-subcommand hook; these options only mean something for one subcommand.
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "fit":
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults({"checkpoint.monitor": DEFAULT_MONITOR, "checkpoint.mode": "max",
                                 "checkpoint.save_last": True})
            parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
            parser.add_lightning_class_args(GlobalBatch, "global_batch")
            parser.add_argument("--test_after_fit", type=bool, default=False,
                                help="After training, test the best checkpoint and print the video-level top-1.")
        if subcommand == "predict":
            parser.add_lightning_class_args(PredictionWriter, "predictions")
        if subcommand in ("test", "predict"):
            parser.add_argument("--out", type=str | None, default=None,
                                help="Folder for the logs and outputs (default: beside the --ckpt_path checkpoint's "
                                     "run, in <run>/test or <run>/predict).")
        return parser

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        self._args = args
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """`validate`, `test` and `predict --ckpt_path` take from the checkpoint the model config, the clip settings
        and the label names, so they need no config file; what the command line or a `--config` file gives wins,
        also where it equals the default. (Lightning's own version restores only the model, but the model's input
        size is linked from the data settings, so both must come back in one parse.) `fit` resumes with the config
        it is given."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand not in (None, "fit") else None
        if not ckpt_path or ckpt_path.split(":")[0] in LIGHTNING_CKPT_NAMES or "://" in ckpt_path:
            return
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"--ckpt_path {ckpt_path}: no such file{_checkpoints_beside(Path(ckpt_path))}")
        checkpoint = read_checkpoint(ckpt_path)
        class_names = checkpoint.get(VideoDataModule.__qualname__, {}).get("class_names")
        own_labels = _has_own_labels(self.config[subcommand].data)
        if class_names is not None and own_labels:
            self._checkpoint_classes = (ckpt_path, class_names)
        if CONFIG_KEY not in checkpoint:  # not written by this CLI: the config must come from the command line
            return
        saved = saved_run(checkpoint, ckpt_path)
        data = saved.clip_settings.data_arguments()
        if own_labels:
            del data["class_names"], data["heads"]
        elif subcommand != "predict":  # predict reads data.path, the others the dataset the checkpoint was trained on
            data.update(_trained_data_root(checkpoint))
        # the arguments parsed again over the checkpoint's settings rather than the defaults: each one given wins
        from_checkpoint = self.parser.parse_object({"subcommand": subcommand,
                                                    subcommand: {"model": saved.model, "data": data}}, defaults=False)
        if isinstance(self._args, (dict, Namespace)):
            self.config = self.parser.parse_object(self._args, from_checkpoint)
        else:
            self.config = self.parser.parse_args(self._args, namespace=from_checkpoint)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        if self.subcommand == "fit":
            _name_run_after_data(config)
            resume_last_run(config)
        if self.subcommand in ("test", "predict"):
            _write_beside_checkpoint(config, self.subcommand)
        wandb_offline_unless_logged_in(config.trainer.logger)

    def _check_checkpoint_classes(self) -> None:
        """Refuse a checkpoint trained on other classes than the data's: its scores would go to the wrong labels
        (a 6-class checkpoint on 2-class data tests at top-1 0 without a word)."""
        if self._checkpoint_classes is None:
            return
        path, trained = self._checkpoint_classes
        own = list(self.datamodule.class_names)
        if own == list(trained):
            return
        data = self.config[self.subcommand].data
        source = ("data.class_names" if data.get("class_names") is not None else
                  f"data.synthetic (task {data.synthetic.task})" if data.get("synthetic") is not None else
                  f"data.root {data.root}")
        raise ValueError(f"checkpoint {path} has {len(trained)} classes ({_listed(trained)}) but {source} has "
                         f"{len(own)} ({_listed(own)}): its scores would be read under the wrong labels. Evaluate it "
                         f"on the data it was trained on, or fine-tune it on this data: "
                         f"`fit --model.pretrained {path}`")

    before_validate = before_test = before_predict = _check_checkpoint_classes

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        if self.subcommand == "fit":
            self._hand_last_to_last_checkpoint(callbacks)
        given = config.get("callbacks") or []
        given = given if isinstance(given, list) else [given]
        wants_progress = config.get("enable_progress_bar") is not False  # None is Lightning's default: on
        if wants_progress and not any(isinstance(callback, ProgressBar) for callback in [*given, *callbacks]):
            callbacks.append(progress_bar())
        callbacks.append(ComputeMonitor())
        lr_logged = any(isinstance(callback, LearningRateMonitor) for callback in [*given, *callbacks])
        if self.subcommand == "fit" and config.get("logger") is not False and not lr_logged:
            callbacks.append(LearningRateMonitor())  # at the schedule's interval: `lr-<optimizer>` in metrics.csv
        if config.get("enable_model_summary") is not False and not any(isinstance(c, ModelSummary) for c in given):
            callbacks.append(SummaryWithoutFlops())
            config["enable_model_summary"] = False  # Lightning's own is replaced, without its message that it is
        plugins = config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        strategy_io = getattr(config.get("strategy"), "_checkpoint_io", None)  # Lightning refuses two
        if strategy_io is None and not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            config["plugins"] = [*plugins, CrashSafeCheckpointIO()]
        trainer = super()._instantiate_trainer(config, callbacks)
        _warn_if_bf16_is_emulated(trainer)
        if self.subcommand == "fit":
            defer_slurm_requeue(trainer)
        ckpt_path = self.config.fit.get("ckpt_path") if self.subcommand == "fit" else None
        if ckpt_path and Path(ckpt_path).is_file():
            continue_metrics(trainer.loggers, ckpt_path)
        return trainer

    def _hand_last_to_last_checkpoint(self, callbacks: list[Callback]) -> None:
        """`checkpoint.save_last` switches `last.ckpt`, but `last_checkpoint` writes it: Lightning's own would follow
        the best-k saves, not training."""
        best, last = self._get(self.config_init, "checkpoint"), self._get(self.config_init, "last_checkpoint")
        if best.monitor == DEFAULT_MONITOR and self.datamodule.heads:  # several heads log no single top-1
            best.monitor = f"val/clip_{JOINT}_top1"
            rank_zero_info(f"checkpoint.monitor {best.monitor}: the data has heads {', '.join(self.datamodule.heads)}")
        if not best.save_last:
            callbacks.remove(last)
        best.save_last = False
        last.dirpath = best.dirpath

    def after_test(self) -> None:
        rank_zero_info(f"test metrics: {run_dir(self.trainer) / 'metrics.csv'}")

    def after_fit(self) -> None:
        if not self.config.fit.test_after_fit:
            return
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        metrics = results[0] if results else {}
        limited = _limited_batches(self.trainer)
        caveat = f"\nnot a result: trained and tested on limited batches ({limited})" if limited else ""
        joint = f"test/video_{JOINT}_top1" in metrics  # a model with several heads: all of them right at once
        top1 = metrics.get(f"test/video_{JOINT}_top1" if joint else "test/video_top1", float("nan"))
        rank_zero_info(f"\ntest video {f'{JOINT} ' if joint else ''}top-1: {top1:.3f} over "
                       f"{int(metrics.get('test/videos', 0))} videos ({best or 'final weights'}){caveat}\n"
                       f"logs, config and checkpoints: {run_dir(self.trainer)}")


def _warn_if_bf16_is_emulated(trainer: Trainer) -> None:
    """bf16 on a CPU without bf16 instructions (AVX512-BF16 or AMX) emulates its matrix products: slower than fp32,
    where the synthetic configs take bf16 for speed."""
    if (str(trainer.precision).startswith("bf16") and isinstance(trainer.accelerator, CPUAccelerator)
            and not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())):
        rank_zero_warn(f"trainer.precision {trainer.precision} on a CPU without bf16 instructions (AVX512-BF16 or "
                       f"AMX): its matrix products are emulated, likely slower than fp32. Add --trainer.precision "
                       f"32-true (the synthetic tables ran both; docs/results/tables.md)")


def _limited_batches(trainer: Trainer) -> str:
    """The trainer settings that cut training or testing short (a smoke test, not a measurement), or ''."""
    if trainer.fast_dev_run:
        return f"trainer.fast_dev_run={trainer.fast_dev_run}"
    limits = {key: getattr(trainer, key) for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches")}
    return ", ".join(f"trainer.{key}={value}" for key, value in limits.items() if not (value == 1.0 and
                                                                                        isinstance(value, float)))


def _trained_data_root(checkpoint: dict) -> dict[str, Any]:
    """The dataset a checkpoint was trained on (`data.root`, layout and fold), if its folder is still there."""
    data = yaml.safe_load(checkpoint[CONFIG_KEY]).get("data") or {}
    root = data.get("root")
    if root is None or not Path(root).is_dir():
        return {}
    rank_zero_info(f"data.root {root} (data.dataset {data.get('dataset')}), as the checkpoint was trained on")
    return {key: data[key] for key in ("root", "dataset", "fold") if key in data}


def _name_run_after_data(config: Namespace) -> None:
    """A run whose logger name is null is named after its data folder (`runs/my_data/version_N`), so one recipe
    serves every dataset without all their runs landing in one folder."""
    logger = config.trainer.get("logger")
    if (isinstance(logger, Namespace) and logger.get("class_path") in FOLDER_LOGGERS and
            "name" in logger.init_args and logger.init_args.name is None and config.data.get("root")):
        logger.init_args.name = Path(config.data.root).resolve().name


def _write_beside_checkpoint(config: Namespace, subcommand: str) -> None:
    """The default CSV logger of `test`/`predict` (and so `predictions.csv`) writes to `--out`, or to
    `<run>/<subcommand>/version_N` of the `--ckpt_path` checkpoint's run, where its training logs are, rather than to
    a new `runs/lightning_logs/version_N`. A logger given in the config or on the command line is left as it is."""
    logger = config.trainer.get("logger")
    if not isinstance(logger, Namespace) or logger.get("class_path") != DEFAULT_LOGGER["class_path"]:
        return
    if (logger.init_args.get("save_dir"), logger.init_args.get("name")) != (DEFAULT_LOGGER["init_args"]["save_dir"],
                                                                           "lightning_logs"):
        return
    ckpt_path = config.get("ckpt_path")
    if config.get("out"):  # the files in that folder itself
        logger.init_args.save_dir, logger.init_args.name, logger.init_args.version = config.out, "", ""
    elif ckpt_path and Path(ckpt_path).is_file():
        checkpoint_folder = Path(ckpt_path).parent
        run = checkpoint_folder.parent if checkpoint_folder.name == "checkpoints" else checkpoint_folder
        logger.init_args.save_dir, logger.init_args.name = str(run), subcommand


def _checkpoints_beside(missing: Path) -> str:
    """The checkpoints in the missing file's folder (a mistyped name), or that the folder is missing too."""
    if not missing.parent.is_dir():
        return f" (its folder {missing.parent} does not exist either)"
    found = sorted(path.name for path in missing.parent.glob("*.ckpt"))
    return f"; checkpoints in {missing.parent}: {_listed(found)}" if found else f"; {missing.parent} has no .ckpt files"


def _has_own_labels(data: Any) -> bool:
    """Whether the data config names its classes itself, rather than taking them from a checkpoint (predict on a
    folder of videos far from the dataset)."""
    return any(data.get(key) is not None for key in ("class_names", "root", "synthetic"))


def _listed(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def main(args: list[str] | None = None) -> VideoCLI | None:
    """The commands of `commands.EXTRA_COMMANDS` (check-data, ...) beside LightningCLI's fit/validate/test/predict."""
    given = sys.argv[1:] if args is None else args
    if given[:1] and given[0] in EXTRA_COMMANDS:
        sys.exit(run_extra_command(given[0], given[1:]))
    # auto_configure_optimizers off: the module's own `optimizer` and `lr_scheduler` arguments are the config keys.
    return VideoCLI(VideoClassifier, VideoDataModule, args=args, parser_class=VideoArgumentParser,
                    save_config_callback=RunFiles,
                    save_config_kwargs={"overwrite": True}, auto_configure_optimizers=False)

