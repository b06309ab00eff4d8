"""What a table reads from a finished run's folder besides its last logged values: the validation top-1 of the
checkpoint that was tested (the figure a row is chosen on, so the test split is only ever reported, never chosen
on) and the number of classes (the chance level the plots draw)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import yaml

VALIDATION_TOP1 = "val/clip_top1"


def tested_validation_top1(log_dir: Path) -> float | None:
    """`val/clip_top1` of the validation pass whose checkpoint `--test_after_fit` tested: the first best value of the
    run's `checkpoint.monitor` in its `checkpoint.mode` (Lightning keeps a checkpoint only when strictly better), or
    the last validation without a monitor (the final weights were tested). None when the run logged no validation.
    """
    config = log_dir / "config.yaml"
    checkpoint = (yaml.safe_load(config.read_text()) or {}).get("checkpoint") or {} if config.is_file() else {}
    monitor, mode = checkpoint.get("monitor"), checkpoint.get("mode", "min")
    with (log_dir / "metrics.csv").open() as file:
        passes = [line for line in csv.DictReader(file) if line.get(VALIDATION_TOP1)]
    if not passes:
        return None
    tested = passes[-1]
    if monitor:
        scored = [line for line in passes if line.get(monitor)]
        if scored:
            sign = 1 if mode == "max" else -1
            best = max(sign * float(line[monitor]) for line in scored)
            tested = next(line for line in scored if math.isclose(sign * float(line[monitor]), best))
    return float(tested[VALIDATION_TOP1])


def class_count(log_dir: Path) -> int | None:
    """The number of classes the run's model was built for, from the clip settings its last checkpoint holds; None
    without one (`last_checkpoint` turned off) or when it holds none (a checkpoint of an older run)."""
    from lightning_video.models.checkpoint_file import load_checkpoint_file  # torch only when a run has finished
    from lightning_video.training.module import CLIP_SETTINGS_KEY

    path = log_dir / "checkpoints" / "last.ckpt"
    if not path.is_file():
        return None
    checkpoint = load_checkpoint_file(path, mmap=True)
    names = (checkpoint.get(CLIP_SETTINGS_KEY) or {}).get("class_names")
    return len(names) if names else None
