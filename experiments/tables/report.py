"""A table's own files in its output folder, rendered from its index file (`OUT/<table>_<scale>.json`), never typed
by hand: `table.md` (with each run's log folder), `table.csv` and the plot of top-1 against GFLOPs per view."""
from __future__ import annotations

from pathlib import Path

from experiments.outputs import write_csv
from experiments.tables import render, results_index

COLUMNS = ("setting", "params_M", "gflops_per_view", "top1", "top5", "top1_per_seed", "paper", "wall_s", "log_dirs")


def write(index_file: Path, out: Path) -> list[Path]:
    entry = results_index.load(index_file)
    lines = [{**line, "top1_per_seed": " ".join(f"{value:.3f}" for value in line["top1_per_seed"]),
              "wall_s": sum(line["wall_s"]), "log_dirs": " ".join(line["log_dirs"])}
             for line in render.summary(entry)]
    # .get: a task of 5 classes or fewer has no top5
    write_csv(out / "table.csv", COLUMNS, [{key: line.get(key) for key in COLUMNS} for line in lines])
    (out / "table.md").write_text(f"# {render.heading(entry)}\n\n{render.runs_markdown(entry, logs=True)}")
    figure = render.plot(entry, out / "top1_vs_gflops.png")
    return [out / "table.md", out / "table.csv", *([figure] if figure else []), index_file]
