"""`lightning-video plot RUN... [--out DIR]`: the learning curves of runs from their CSV logs, for those who log to
CSV only (the default): losses, top-1 and the learning rate against the optimizer step, one figure per run.

RUN is a run folder (`runs/NAME/version_N`, holding `metrics.csv`) or its `metrics.csv`; the figure goes to
`RUN/learning_curves.png`, or `DIR/<run>.png` with `--out`. The ablation and sweep tables draw the same figure for each
of their runs (`experiments/tables/report.py`).
"""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS_FILE = "metrics.csv"
FIGURE_FILE = "learning_curves.png"
# Panel title -> whether a logged column belongs in it. Test metrics are one point at the end: drawn as a marker.
PANELS = {
    "loss": lambda column: column.endswith("loss"),
    "top-1": lambda column: column.endswith("top1"),
    "learning rate": lambda column: column.startswith("lr") or column.endswith("/lr"),
}


def read_metrics(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Each logged column of a Lightning CSVLogger's `metrics.csv` -> its (step, value) points, in logged order."""
    series: dict[str, list[tuple[float, float]]] = {}
    with path.open() as file:
        for line in csv.DictReader(file):
            step = float(line.get("step") or "nan")
            for column, value in line.items():
                if column not in ("step", "epoch") and value not in ("", None) and not math.isnan(step):
                    series.setdefault(column, []).append((step, float(value)))
    return series


def learning_curves(metrics_csv: Path, out: Path, title: str) -> Path:
    """Draw the curves of `metrics_csv` (`curves_figure`) into the image file `out`."""
    try:
        figure = curves_figure(read_metrics(metrics_csv), title)
    except ValueError as error:
        raise ValueError(f"{metrics_csv}: {error}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return out


def curves_figure(series: dict[str, list[tuple[float, float]]], title: str) -> Figure:
    """A panel per kind of metric logged (`PANELS`), each column a line against the step (a single value, such as a
    test metric, a star).

    Raises:
        ValueError: none of the columns belongs in a panel (every column's name is given).
    """
    try:
        from matplotlib.figure import Figure  # no pyplot: no display and no global backend, in a job or a notebook
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("plotting needs matplotlib: pip install 'lightning-video[experiments]'") from error

    panels = {name: [column for column in series if belongs(column)] for name, belongs in PANELS.items()}
    panels = {name: columns for name, columns in panels.items() if columns}
    if not panels:
        raise ValueError(f"no loss, top-1 or learning-rate column to plot; it has "
                         f"{', '.join(series) or 'no logged values'}")
    figure = Figure(figsize=(4.2 * len(panels), 3.6), layout="constrained")
    for axes, (name, columns) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels.items()):
        for column in columns:
            steps, values = zip(*series[column])
            single = len(steps) == 1
            axes.plot(steps, values, "*" if single else ".-", markersize=9 if single else 3, label=column)
        axes.set(xlabel="optimizer step", title=name)
        if name == "learning rate":
            axes.set_yscale("log")
        if name == "top-1":
            axes.set_ylim(-0.02, 1.02)  # the whole range: a wobble between 0.50 and 0.52 stays one
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    return figure


def metrics_file(run: Path) -> Path:
    """The `metrics.csv` of RUN (a run folder or the file itself), or an error naming what RUN holds instead."""
    if run.is_file() and run.name == METRICS_FILE:
        return run
    if (run / METRICS_FILE).is_file():
        return run / METRICS_FILE
    inside = sorted(str(path.parent) for path in run.glob(f"*/{METRICS_FILE}")) if run.is_dir() else []
    hint = f"; the runs in it: {', '.join(inside)}" if inside else " (a CSV-logged run folder: runs/NAME/version_N)"
    raise ValueError(f"{run}: no {METRICS_FILE}{hint}")


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lightning-video plot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders (or their metrics.csv)")
    parser.add_argument("--out", type=Path, help="write every figure here, as <run>.png (default: in each run)")
    arguments = parser.parse_args(args)
    try:
        files = [metrics_file(run) for run in arguments.runs]  # every RUN checked before any is drawn
        for path in files:
            version = path.parent.name.startswith("version_")  # runs/NAME/version_N: NAME_version_N
            name = "_".join(path.parent.parts[-2:]) if version else path.parent.name
            out = arguments.out / f"{name}.png" if arguments.out else path.parent / FIGURE_FILE
            print(learning_curves(path, out, str(path.parent)))
    except ValueError as error:
        print(f"lightning-video plot: {error}")
        return 2
    return 0
