"""The files a command writes besides its logs: CSV tables and figures (drawn without a display, as on a cluster node).
Shared by the tables (`experiments.tables`) and the benchmarks that write files (`experiments.bench cost`)."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_csv(path: Path, columns: tuple[str, ...], lines: list[dict]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        writer.writerows(lines)
