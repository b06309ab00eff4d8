"""A table's plot: test and validation top-1 of every row against what the rows change, with each seed's value, the
spread over seeds and the chance level, the row chosen on validation ringed.

On x: GFLOPs per view where the rows differ in them (the papers' cost axis; for up to `COLOURS` rows, each told apart
by its colour), else the one number the rows set differently (a sweep's lr, on a log axis when it spans a factor of
10), else the settings in table order. No text is drawn beside the points, so no label can cover another: rows are
told apart by the x axis or, on the GFLOPs axis, by colour and the legend beside the plot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from experiments.tables.selection import candidates

COLOURS = 10  # matplotlib's default cycle; more rows on a GFLOPs axis would share colours
METRICS = {"top1": ("test top-1 (video)", "o", "-"), "val_top1": ("val top-1 (clip, checkpoint tested)", "s", "--")}


@dataclass(frozen=True)
class Axis:
    """What x shows: its label, each row's position, whether it is logarithmic, the tick labels of a categorical axis
    and a short name for the plot's file (`top1_vs_<name>.png`)."""

    label: str
    positions: list[float]
    log: bool
    categories: list[str] | None
    name: str


def x_axis(lines: list[dict[str, Any]], sets: list[dict[str, Any]]) -> Axis:
    """GFLOPs where they differ (and rows have a colour each), else the one numeric key the rows vary, else the
    settings."""
    gflops = [line["gflops_per_view"] for line in lines]
    differ = None not in gflops and not all(math.isclose(value, gflops[0], rel_tol=1e-6) for value in gflops)
    if differ and len(lines) <= COLOURS:
        return Axis("GFLOPs per view", gflops, _spans_decade(gflops), None, "gflops")
    varied = [key for key in dict.fromkeys(key for row in sets for key in row)
              if len({repr(row.get(key)) for row in sets}) > 1]
    if len(varied) == 1 and all(_is_number(row.get(varied[0])) for row in sets):
        values = [float(row[varied[0]]) for row in sets]
        name = varied[0].rsplit(".", 1)[-1]
        return Axis(f"{name} ({varied[0]})", values, _spans_decade(values), None, name)
    settings = [line["setting"] for line in lines]
    return Axis("setting", [float(index) for index in range(len(lines))], False, settings, "setting")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spans_decade(values: list[float]) -> bool:
    return min(values) > 0 and max(values) / min(values) >= 10


def draw(entry: dict[str, Any], lines: list[dict[str, Any]], chosen: str | None) -> tuple[plt.Figure, Axis] | None:
    """The figure of `render.summary`'s lines for `entry` (pretraining runs left out: another task); None where fewer
    than two rows have a test top-1, as one point compares nothing."""
    rows = [line for line in candidates(lines) if line.get("top1") is not None]
    if len(rows) < 2:
        return None
    sets = [next(row.get("set", {}) for row in entry["rows"] if row["setting"] == line["setting"]) for line in rows]
    axis = x_axis(rows, sets)
    figure, axes = plt.subplots(figsize=(max(9.0, 0.6 * len(rows) + 3) if axis.categories else 9.0, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_row = axis.name == "gflops"  # rows at any GFLOPs, in any order: a colour each, no line through them
    handles = []
    for metric, (label, marker, style) in METRICS.items():
        if all(line.get(metric) is None for line in rows):
            continue
        for index, (line, x) in enumerate(zip(rows, axis.positions)):
            values = [value for value in line[f"{metric}_per_seed"] if value is not None]
            if not values:
                continue
            colour = colours[index] if by_row else colours[list(METRICS).index(metric)]
            mean = line[metric] if line.get(metric) is not None else sum(values) / len(values)
            axes.errorbar(x, mean, yerr=[[mean - min(values)], [max(values) - mean]], fmt=marker, color=colour,
                          markerfacecolor=colour if metric == "top1" else "white", capsize=3, zorder=3)
            axes.scatter([x] * len(values), values, s=8, color=colour, alpha=0.5, zorder=2)
            if line["setting"] == chosen and metric == "val_top1":
                axes.scatter([x], [mean], s=260, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4)
        if not by_row and not axis.categories:  # a line only along a swept number, not between unrelated settings
            means = [line.get(metric) for line in rows]
            axes.plot(*zip(*[(x, m) for x, m in zip(axis.positions, means) if m is not None]), style,
                      color=colours[list(METRICS).index(metric)], alpha=0.6)
        handles.append(Line2D([], [], color="black" if by_row else colours[list(METRICS).index(metric)],
                              marker=marker, markerfacecolor="black" if metric == "top1" else "white",
                              linestyle="none" if by_row else style, label=f"{label}: mean, seeds' range, each seed"))
    if by_row:
        handles += [Line2D([], [], color=colours[index], marker="o", linestyle="none",
                           label=line["setting"]) for index, line in enumerate(rows)]
    if chosen in {line["setting"] for line in rows}:
        handles.append(Line2D([], [], marker="o", markersize=12, markerfacecolor="none", markeredgecolor="black",
                              linestyle="none", label=f"chosen on validation: {chosen}"))
    classes = {line.get("classes") for line in rows}
    if len(classes) == 1 and None not in classes:
        (count,) = classes
        handles.append(axes.axhline(1 / count, color="grey", linestyle=":", label=f"chance (1/{count})"))
    if axis.log:
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())
    if axis.categories:
        axes.set_xticks(axis.positions, axis.categories, rotation=30, ha="right", fontsize=8)
    elif axis.name != "gflops":
        axes.set_xticks(axis.positions, [f"{value:g}" for value in axis.positions], fontsize=8)
    axes.set(xlabel=axis.label, ylabel="top-1", ylim=(-0.02, 1.05), title=f"{entry['title']} ({entry['scale']})")
    axes.grid(alpha=0.3)
    axes.legend(handles=handles, fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0.0), borderaxespad=0)
    return figure, axis
