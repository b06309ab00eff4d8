"""The results index: what every finished row of a table measured, and where, when and how, as data (as mmaction2's
metafiles). The results documents (`docs/results/`) are rendered from it (`render.py`), so every number in them is one
a run wrote here, never one typed into a document.

One JSON file per table and scale, `INDEX/<table>_<scale>.json`: two tables running at once never write the same
file, and two branches' results merge without conflict. A file holds the table's title, base config and command, and
its rows in the table's order; a row holds its setting, the keys it sets, params, GFLOPs per view, its number of
classes, the paper's number and its runs, one per seed, each with its metrics (`val_top1`: the validation top-1 of the
checkpoint tested, which rows are chosen on; `top1`, `top5`: the test split's, video level), wall time, hardware,
date, git commit and `fit` command. A new run of a (setting, seed) replaces the old one; rows and seeds not run
again stay as they were.

A file may instead hold a table of measurements that are not `fit` runs (a benchmark): `"kind": "measurements"`,
its `columns` (key, label, number format) and `rows` of values, rendered as they stand.
"""
from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from experiments.tables.fit_process import RowResult
from experiments.tables.provenance import REPOSITORY
from experiments.tables.table import Table

INDEX_DIR = REPOSITORY / "docs" / "results" / "index"
RUN_METRICS = ("val_top1", "top1", "top5")  # validation first: rows are chosen on it
REQUIRED = {"runs": ("table", "scale", "title", "rows"), "measurements": ("table", "title", "columns", "rows")}
_LOCK = threading.Lock()  # the rows of one table finish on several threads (`jobs`)


def add_argument(parser: argparse.ArgumentParser) -> None:
    """`--index DIR`, as `ablate` and `sweep` take it."""
    parser.add_argument("--index", type=Path, help="also record each finished run in this results index (the "
                        "repository's: docs/results/index; then `python -m experiments.tables render`)")


def index_path(index_dir: Path, table: str, scale: str) -> Path:
    return index_dir / f"{table}_{scale}.json"


def load(path: Path) -> dict[str, Any]:
    """An index file, checked for what rendering needs."""
    try:
        entry = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error}); fix the file, or delete it and run its table again") from error
    kind = entry.get("kind", "runs")
    if kind not in REQUIRED:
        raise ValueError(f"{path}: unknown kind {kind!r}; valid: {', '.join(REQUIRED)}")
    missing = [key for key in REQUIRED[kind] if key not in entry]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)}; a {kind!r} index file holds {', '.join(REQUIRED[kind])}")
    return entry


def record(index_dir: Path, table: Table, scale_name: str, result: RowResult, command: str) -> Path:
    """Add one finished run to its table's index file (made at the first), rows in the scale's order."""
    scale = table.scale(scale_name)
    steps = {step.setting: (step, True) for step in scale.pretrain} | {row.setting: (row, False) for row in scale.rows}
    row, pretraining = steps[result.setting]
    path = index_path(index_dir, table.name, scale_name)
    with _LOCK:
        entry = load(path) if path.is_file() else {"table": table.name, "scale": scale_name, "rows": []}
        entry.update(title=table.title, paper_source=table.paper_source, config=scale.config, command=command)
        rows = {line["setting"]: line for line in entry["rows"]}
        line = rows.setdefault(row.setting, {"setting": row.setting, "runs": []})
        line.update(pretraining=pretraining, config=row.config or scale.config, set=row.set, paper=row.paper,
                    params_M=result.params_M, gflops_per_view=result.gflops_per_view,
                    **({"classes": result.classes} if result.classes else {}))
        metrics = {name: getattr(result, name) for name in RUN_METRICS if getattr(result, name) is not None}
        run = {"seed": result.seed, "metrics": metrics,
               "wall_s": result.wall_s, "hardware": result.hardware, "date": result.date, "commit": result.commit,
               "command": command, "fit_command": result.fit_command, "log_dir": result.log_dir}
        line["runs"] = sorted([*(old for old in line["runs"] if old["seed"] != result.seed), run],
                              key=lambda old: old["seed"])
        order = list(steps)
        entry["rows"] = sorted(rows.values(), key=lambda line: order.index(line["setting"])
                               if line["setting"] in order else len(order))
        index_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n")
    return path
