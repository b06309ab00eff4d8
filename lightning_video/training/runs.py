"""A run's record: its resolved config saved with its logs and inside its checkpoints, and its continuation.

`fit --ckpt_path last` resumes the newest `last.ckpt` among the runs of the configured logger and continues that run:
in its folder (so the best-k checkpoints' tracking goes on; CSV metrics logged after the checkpoint are replaced by the
resumed run's) and, with wandb, in the same wandb run (whose id every checkpoint records). wandb logs offline unless
the user has logged in.
"""
from __future__ import annotations

import csv
import netrc
import os
import pydoc
from pathlib import Path
from urllib.parse import urlparse

import pytorch_lightning as pl
import yaml
from jsonargparse import Namespace
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

from lightning_video.models.checkpoint_file import load_checkpoint_file

CONFIG_KEY = "lightning_video_config"
WANDB_RUN_IDS = "wandb_run_ids"


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's folder, which holds `checkpoints/` (derived from the first logger, as Lightning's ModelCheckpoint
    does; for wandb that is `save_dir/project/run_id`)."""
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    logger = trainer.loggers[0]
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or trainer.default_root_dir, str(logger.name), version)


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents, memory-mapped, checked against its digest (`models.checkpoint_file`): a damaged
    file stops the command before anything is built from it."""
    return load_checkpoint_file(path, map_location="cpu", mmap=True)


class RunFiles(SaveConfigCallback):
    """Saves the resolved config as `config.yaml` in the run folder (next to `checkpoints/`, whatever the logger),
    logs it to every logger (on wandb it becomes the run's config, so dashboards can filter runs by any setting),
    and stores it, with the wandb run ids, in every checkpoint: `test` and `predict --ckpt_path` rebuild the model
    from it, and a resumed fit continues the same wandb runs. Beside it, `classes.txt` names label i on line i (the
    data's class names, e.g. Kinetics' string labels in sorted order), in the format the csv layout reads."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, save_to_log_dir=False, **kwargs)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        folder = run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(folder / self.config_filename), skip_none=False, overwrite=self.overwrite,
                         multifile=self.multifile)
        class_names = getattr(trainer.datamodule, "class_names", None)
        if class_names:
            (folder / "classes.txt").write_text("".join(f"{name}\n" for name in class_names))
        for logger in trainer.loggers:
            logger.log_hyperparams(yaml.safe_load(self.parser.dump(self.config, skip_none=False)))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.parser.dump(self.config, skip_none=False)
        checkpoint[WANDB_RUN_IDS] = [logger.version for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def resume_last_run(config: Namespace) -> None:
    """Resolve `ckpt_path: last` to the newest `last.ckpt` of this logger's runs (Lightning's own "last" looks only
    in the new run's empty folder, so it would start from scratch), and give wandb the run ids it recorded."""
    if config.ckpt_path == "last":
        found = _newest_last_checkpoint(config)
        if found is not None:
            config.ckpt_path = str(found)
            rank_zero_info(f"resuming from {found}")
    if config.ckpt_path and Path(config.ckpt_path).is_file():
        run_ids = read_checkpoint(config.ckpt_path).get(WANDB_RUN_IDS, [])
        for logger, run_id in zip(_wandb_loggers(config.trainer.logger), run_ids):
            if logger.init_args.get("id") is None and logger.init_args.get("version") is None:
                logger.init_args.id = run_id
        _log_into_run_folder(config, Path(config.ckpt_path))


def _log_into_run_folder(config: Namespace, checkpoint: Path) -> None:
    """A checkpoint in `RUNS/<version>/checkpoints/` of this logger's runs makes the logger log into `<version>`
    (rather than a new folder): its checkpoints then go beside the earlier ones, where the best-k tracking restored
    from the checkpoint expects them."""
    loggers, runs = _logger_configs(config.trainer.logger), _runs_folder(config)
    if not loggers or _is_wandb(loggers[0]) or runs is None or "version" not in loggers[0].init_args:
        return
    run = checkpoint.resolve().parent.parent
    if loggers[0].init_args.version is None and checkpoint.parent.name == "checkpoints" and \
            run.parent == runs.resolve():
        loggers[0].init_args.version = run.name


def continue_metrics(loggers: list, checkpoint_path: str | Path) -> None:
    """Make each CSVLogger of a run resumed from `checkpoint_path` keep its `metrics.csv` up to the checkpoint's
    step (CSVLogger would delete the file): the steps after it are logged again by the resumed run."""
    if rank_zero_only.rank != 0:  # only rank 0 writes CSV metrics
        return
    step = read_checkpoint(checkpoint_path)["global_step"]
    for logger in loggers:
        if isinstance(logger, CSVLogger) and logger._experiment is None:
            Path(logger.log_dir).mkdir(parents=True, exist_ok=True)
            logger._experiment = _ContinuedMetrics(logger.log_dir, step)


class _ContinuedMetrics(ExperimentWriter):
    """CSVLogger's writer, keeping the rows logged before `step` (a checkpoint saved at global step s is resumed with
    logging step s; earlier rows are not logged again)."""

    def __init__(self, log_dir: str, step: int) -> None:
        self.resumed_step = step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if row.get("step") and int(row["step"]) < self.resumed_step]
            self.metrics_keys = list(reader.fieldnames or [])
        kept = f"{self.metrics_file_path}.resumed"
        with open(kept, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(kept, self.metrics_file_path)  # a crash now leaves the old file or the new one, never half of it


def _newest_last_checkpoint(config: Namespace) -> Path | None:
    checkpoint = config.get("checkpoint")
    if checkpoint is not None and checkpoint.get("dirpath"):
        candidates = Path(checkpoint.dirpath).glob("last*.ckpt")
    else:
        runs = _runs_folder(config)
        candidates = runs.glob("*/checkpoints/last*.ckpt") if runs is not None else []
    return max(candidates, key=lambda path: path.stat().st_mtime, default=None)


def _runs_folder(config: Namespace) -> Path | None:
    """The folder whose subfolders are the runs of the first logger (None: no logger, Lightning finds "last")."""
    loggers = _logger_configs(config.trainer.logger)
    if not loggers:
        default = config.trainer.logger in (None, True)
        return Path(config.trainer.default_root_dir or os.getcwd(), "lightning_logs") if default else None
    first = loggers[0]
    if _is_wandb(first):
        project = first.init_args.get("project") or os.environ.get("WANDB_PROJECT", "lightning_logs")
        return Path(first.init_args.get("save_dir") or config.trainer.default_root_dir or os.getcwd(), project)
    return Path(first.init_args.save_dir, first.init_args.get("name") or "")


def wandb_offline_unless_logged_in(logger_config: object) -> None:
    """Without an API key wandb.init would stop the run to ask for one; log offline instead (`wandb sync` uploads
    the run later). An explicit `offline`, `WANDB_MODE` or `log_model` (which needs the server) is left alone."""
    if "WANDB_MODE" in os.environ or _wandb_logged_in():
        return
    for logger in _wandb_loggers(logger_config):
        if not logger.init_args.get("offline") and not logger.init_args.get("log_model"):
            logger.init_args.offline = True
            rank_zero_info("wandb: no API key (`wandb login` or WANDB_API_KEY), so the run is logged offline; "
                           "upload it later with `wandb sync`")


def _wandb_logged_in() -> bool:
    """`wandb login` stores the key in ~/.netrc; WANDB_API_KEY is the other way to give it."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _logger_configs(logger_config: object) -> list[Namespace]:
    loggers = logger_config if isinstance(logger_config, list) else [logger_config]
    return [logger for logger in loggers if isinstance(logger, Namespace) and "class_path" in logger]


def _is_wandb(logger: Namespace) -> bool:
    cls = pydoc.locate(logger.class_path)
    return isinstance(cls, type) and issubclass(cls, WandbLogger)


def _wandb_loggers(logger_config: object) -> list[Namespace]:
    return [logger for logger in _logger_configs(logger_config) if _is_wandb(logger)]
