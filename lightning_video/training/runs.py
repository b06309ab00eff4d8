"""A run's record: its resolved config saved with its logs and inside its checkpoints, and its continuation.

`fit --ckpt_path last` resumes the newest `last.ckpt` among the runs of the configured logger and, with wandb,
continues the same wandb run (whose id every checkpoint records). The resumed part logs into a new run folder
(CSVLogger would otherwise overwrite the earlier metrics), with the step and epoch counts continuing. wandb logs
offline unless the user has logged in.
"""
from __future__ import annotations

import netrc
import os
import pydoc
from pathlib import Path
from urllib.parse import urlparse

import pytorch_lightning as pl
import yaml
from jsonargparse import Namespace
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_info

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
    from it, and a resumed fit continues the same wandb runs."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, save_to_log_dir=False, **kwargs)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        folder = run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(folder / self.config_filename), skip_none=False, overwrite=self.overwrite,
                         multifile=self.multifile)
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
