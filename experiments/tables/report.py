"""A table's own files in its output folder, rendered from its index file (`OUT/<table>_<scale>.json`), never typed
by hand: `table.md` (with each run's log folder and learning curves), `table.csv` (`chosen_on_val` marks the row
chosen on validation), the plot of top-1 against what the rows change (`top1_vs_<it>.png`) and each run's learning
curves (`curves/<run>.png`, from its `metrics.csv`)."""
from __future__ import annotations

from pathlib import Path

from experiments.outputs import write_csv
from experiments.tables import render, results_index
from experiments.tables.selection import choose
from lightning_video.plot import METRICS_FILE, learning_curves

COLUMNS = ("setting", "params_M", "gflops_per_view", "val_top1", "top1", "top5", "val_top1_per_seed", "top1_per_seed",
           "chosen_on_val", "paper", "wall_s", "log_dirs")


def write(index_file: Path, out: Path) -> list[Path]:
    entry = results_index.load(index_file)
    lines = render.summary(entry)
    chosen = choose(lines).setting
    rows = [{**line, **{f"{name}_per_seed": " ".join(f"{value:.3f}" for value in line.get(f"{name}_per_seed", [])
                                                      if value is not None) for name in ("val_top1", "top1")},
             "chosen_on_val": int(line["setting"] == chosen), "wall_s": sum(line["wall_s"]),
             "log_dirs": " ".join(line["log_dirs"])} for line in lines]
    write_csv(out / "table.csv", COLUMNS, [{key: row.get(key) for key in COLUMNS} for row in rows])
    curves = curves_of(lines, out / "curves")
    listed = "".join(f"- {path.stem}: [{path.relative_to(out)}]({path.relative_to(out)})\n" for path in curves)
    (out / "table.md").write_text(f"# {render.heading(entry)}\n\n{render.runs_markdown(entry, logs=True)}"
                                  + (f"\nLearning curves (from each run's `{METRICS_FILE}`):\n\n{listed}" if curves
                                     else ""))
    figure = render.plot(entry, out)
    return [out / "table.md", out / "table.csv", *([figure] if figure else []), *curves, index_file]


def curves_of(lines: list[dict], out: Path) -> list[Path]:
    """A learning-curve plot per run whose log folder is still there (a run copied from elsewhere has none)."""
    runs = [Path(folder) for line in lines for folder in line["log_dirs"] if folder]
    return [learning_curves(run / METRICS_FILE, out / f"{run.name}.png", run.name) for run in runs
            if (run / METRICS_FILE).is_file()]
