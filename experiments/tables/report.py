"""A table's outputs, generated from its rows' results (never typed by hand): `table.md`, `table.csv` and a plot of
top-1 against GFLOPs per view."""
from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib.pyplot as plt

from experiments.outputs import save_figure, write_csv
from experiments.tables.fit_process import RowResult
from experiments.tables.table import Scale, Table

COLUMNS = ("setting", "params_M", "gflops_per_view", "top1", "top5", "top1_per_seed", "paper", "wall_s", "log_dirs")


def summarise(scale: Scale, results: list[RowResult]) -> list[dict]:
    """One line per setting in the scale's order, pretraining runs first (marked): means over its seeds (each
    seed's top-1 listed too)."""
    lines = []
    for row in [*scale.pretrain, *scale.rows]:
        runs = [result for result in results if result.setting == row.setting]
        if not runs:
            continue
        setting = f"{row.setting} (pretraining)" if row in scale.pretrain else row.setting
        lines.append({"setting": setting, "params_M": runs[0].params_M, "gflops_per_view": runs[0].gflops_per_view,
                      "top1": statistics.mean(run.top1 for run in runs),
                      "top5": statistics.mean(run.top5 for run in runs),
                      "top1_per_seed": " ".join(f"{run.top1:.3f}" for run in runs), "paper": row.paper,
                      "wall_s": sum(run.wall_s for run in runs), "log_dirs": " ".join(run.log_dir for run in runs)})
    return lines


def write(table: Table, scale_name: str, seeds: list[int], lines: list[dict], out: Path) -> list[Path]:
    scale = table.scale(scale_name)
    write_csv(out / "table.csv", COLUMNS, lines)
    text = [f"# {table.title} ({scale_name} scale)\n",
            f"Base config `{scale.config}`, seeds {', '.join(map(str, seeds))}; top-1/top-5: video level on the test "
            f"split, mean over seeds.{f' Paper: {table.paper_source}.' if table.paper_source else ''}\n",
            "| setting | params (M) | GFLOPs/view | top-1 | top-5 | top-1 per seed | paper | wall (min) | logs |",
            "|---|---|---|---|---|---|---|---|---|"]
    text += [f"| {line['setting']} | {line['params_M']:.2f} | {line['gflops_per_view']:.3g} | {line['top1']:.3f} | "
             f"{line['top5']:.3f} | {line['top1_per_seed']} | {line['paper']} | {line['wall_s'] / 60:.1f} | "
             f"{line['log_dirs']} |" for line in lines]
    (out / "table.md").write_text("\n".join(text) + "\n")
    return [out / "table.md", out / "table.csv", plot(table.title, scale_name, lines, out)]


def plot(title: str, scale_name: str, lines: list[dict], out: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6, 4))
    for line in lines:
        axes.scatter(line["gflops_per_view"], line["top1"])
        axes.annotate(line["setting"], (line["gflops_per_view"], line["top1"]), textcoords="offset points",
                      xytext=(4, 4), fontsize=8)
    axes.set(xlabel="GFLOPs per view", ylabel="test top-1 (video)", title=f"{title} ({scale_name})")
    axes.grid(alpha=0.3)
    return save_figure(figure, out / "top1_vs_gflops.png")

