"""Run one row of a table as its own `lightning_video fit` process and keep what the table needs from it.

A row's result is written to `OUT/rows/<setting>-seed<seed>.json` only when its run has finished and tested, so a
re-run of the command skips finished rows and resumes an interrupted one from its `last.ckpt`. Each run is a
separate process: rows cannot leak state into each other, and `--trainer.devices N` runs a row with DDP exactly as a
single training would.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from experiments.tables.provenance import git_commit, hardware, utc_now
from experiments.tables.run_folder import class_count, tested_validation_top1
from experiments.tables.table import Row

METRICS = {"params_M": "model/params_M", "gflops_per_view": "model/gflops_per_view", "top1": "test/video_top1"}
TOP5 = "test/video_top5"  # not logged for a task of 5 classes or fewer, where it is 1 by construction


@dataclass
class RowResult:
    setting: str
    seed: int
    params_M: float
    gflops_per_view: float
    top1: float
    top5: float | None  # None: the task has too few classes for a top-5
    wall_s: float
    log_dir: str
    # Provenance for the results index; empty in rows written before it was recorded.
    fit_command: str = ""
    date: str = ""
    hardware: str = ""
    commit: str | None = None
    # What rows are chosen on, and the chance level; None in rows written before they were recorded.
    val_top1: float | None = None
    classes: int | None = None


def run_name(setting: str, seed: int) -> str:
    """A file name for a row's run: its setting with anything but letters, digits, "." and "-" made "_"."""
    return re.sub(r"[^\w.-]+", "_", setting) + f"-seed{seed}"


def result_path(out: Path, setting: str, seed: int) -> Path:
    return out / "rows" / f"{run_name(setting, seed)}.json"


def finished(out: Path, setting: str, seed: int) -> RowResult | None:
    path = result_path(out, setting, seed)
    return RowResult(**json.loads(path.read_text())) if path.is_file() else None


def command(config: str, row: Row, seed: int, overrides: list[str], log_dir: Path) -> list[str]:
    """The `fit` command of one row: base config, then the row's keys, then the user's overrides (which win), then
    the seed, a CSV logger in `log_dir` and, if an earlier attempt was interrupted, its last checkpoint."""
    logger = {"class_path": "pytorch_lightning.loggers.CSVLogger",
              "init_args": {"save_dir": str(log_dir.parent), "name": log_dir.name, "version": ""}}
    resume = log_dir / "checkpoints" / "last.ckpt"
    return [sys.executable, "-m", "lightning_video", "fit", "--config", config, *row.arguments(), *overrides,
            "--seed_everything", str(seed), "--test_after_fit", "true", "--trainer.logger", json.dumps(logger),
            *(["--ckpt_path", str(resume)] if resume.is_file() else [])]


def last_values(metrics_csv: Path) -> dict[str, float]:
    """The last logged value of every column of a Lightning CSVLogger's metrics.csv."""
    values: dict[str, float] = {}
    with metrics_csv.open() as file:
        for line in csv.DictReader(file):
            values.update({key: float(value) for key, value in line.items() if value not in ("", None)})
    return values


def run_row(config: str, row: Row, seed: int, overrides: list[str], out: Path, threads: int | None = None) -> RowResult:
    """Train and test one row, on `threads` CPU threads if given; its output goes to `OUT/runs/<setting>-seed<seed>/`
    (`fit.log`, the CSV logs, config and checkpoints)."""
    log_dir = out / "runs" / run_name(row.setting, seed)
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fit = command(config, row, seed, overrides, log_dir)
    with (log_dir / "fit.log").open("w") as log:
        environment = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        returncode = subprocess.run(fit, stdout=log, stderr=subprocess.STDOUT, env=environment).returncode
    wall = time.perf_counter() - started
    if returncode:
        tail = "".join((log_dir / "fit.log").read_text().splitlines(keepends=True)[-15:])
        raise RuntimeError(f"row {row.setting!r} (seed {seed}) failed with exit code {returncode}; the end of "
                           f"{log_dir / 'fit.log'}:\n{tail}")
    values = last_values(log_dir / "metrics.csv")
    missing = [name for name in METRICS.values() if name not in values]
    if missing:
        raise RuntimeError(f"row {row.setting!r} (seed {seed}) logged no {', '.join(missing)} in "
                           f"{log_dir / 'metrics.csv'}: was the CSV logger replaced, or testing skipped?")
    result = RowResult(row.setting, seed, *(values[name] for name in METRICS.values()), values.get(TOP5), wall,
                       str(log_dir), shlex.join(["python", *fit[1:]]), utc_now(), hardware(), git_commit(),
                       tested_validation_top1(log_dir), class_count(log_dir))
    path = result_path(out, row.setting, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result
