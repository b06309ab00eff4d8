"""Cost of the attention schemes (TimeSformer Fig. 3): GFLOPs per view and measured peak training memory per scheme as
the crop and the clip grow, with the settings that exceed a memory budget marked. No dataset and no training.

Peak memory is one training step (forward and backward, batch 1) measured twice: with the explicit softmax of the
papers' code, which keeps every attention map for the backward pass (joint attention's T·S × T·S blow-up), and with
the fused kernel this project uses by default, which does not. GFLOPs are fvcore's count of the real model (one
multiply-add = one FLOP); `gflops_8x224.csv` gives every scheme at the paper config, the hand counts of
`tests/test_flops.py`.

Two scales:
- `paper`: ViT-B/16 at crops 224–560 and 8–96 frames against 32 GiB (the paper's V100); for a GPU.
- `synthetic`: the same token counts for a narrow, shallow model, against a budget scaled down with it, so the
  blow-up shows on a CPU in minutes.

Writes `OUT/table.md`, `table.csv`, `gflops_8x224.csv` and `cost.png`.

    python -m experiments.bench cost --scale synthetic
"""
from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from experiments.bench.memory import PeakMemory
from experiments.outputs import save_figure, write_csv
from lightning_video.flops import count
from lightning_video.models import ATTENTIONS, create_model, explicit_attention

PAPER_MODEL = "timesformer_base_8x224"
SCALES = {  # crops (at the smallest frame count), frame counts (at the smallest crop), budget GiB, model overrides
    "paper": dict(crops=[224, 336, 448, 560], frames=[8, 32, 64, 96], budget=32.0, model={}),
    "synthetic": dict(crops=[224, 336, 448], frames=[8, 16, 32], budget=2.0,
                      model=dict(embed_dim=96, depth=4, num_heads=4)),
}
KERNELS: dict[str, Callable[[], AbstractContextManager]] = {"explicit_GiB": explicit_attention,
                                                             "fused_GiB": contextlib.nullcontext}
COLUMNS = ("scheme", "frames", "crop", "tokens", "gflops_per_view", "params_M", *KERNELS, "over_budget")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", required=True, type=scale, help=f"{' or '.join(SCALES)} (see above)")
    parser.add_argument("--out", type=Path, help="output folder (default: bench/cost_SCALE)")
    parser.add_argument("--schemes", nargs="+", choices=list(ATTENTIONS), default=list(ATTENTIONS),
                        help="attention schemes to sweep (default: all; Fig. 3 shows joint and divided)")
    parser.add_argument("--crops", type=int, nargs="+", help="crop sizes (default: the scale's)")
    parser.add_argument("--frames", type=int, nargs="+", help="frame counts (default: the scale's)")
    parser.add_argument("--budget-gib", type=float, help="memory budget (default: the scale's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def scale(name: str) -> str:
    if name not in SCALES:
        raise argparse.ArgumentTypeError(f"cost has no scale {name!r}; valid: {', '.join(SCALES)}")
    return name


def run(args: argparse.Namespace) -> None:
    chosen = SCALES[args.scale]
    device = torch.device(args.device)
    if args.scale == "paper" and device.type == "cpu":
        raise SystemExit("the paper cost scale needs tens of GiB per setting: run it with --device cuda, or use "
                         "--scale synthetic (the same token counts for a small model) on a CPU")
    out = args.out or Path("bench") / f"cost_{args.scale}"
    out.mkdir(parents=True, exist_ok=True)
    budget = args.budget_gib or chosen["budget"]
    crops, frames = args.crops or chosen["crops"], args.frames or chosen["frames"]
    settings = [(scheme, frames[0], crop) for scheme in args.schemes for crop in crops]
    settings += [(scheme, count_, crops[0]) for scheme in args.schemes for count_ in frames[1:]]
    lines = []
    for scheme, num_frames, crop in settings:
        lines.append(measure(scheme, num_frames, crop, chosen["model"], device, budget))
        print(_describe(lines[-1]), flush=True)
    paper_config = [dict(scheme=scheme, gflops_per_view=gflops, params_M=params) for scheme in args.schemes
                    for gflops, params in [count(create_model(PAPER_MODEL, attention=scheme))]]
    write_csv(out / "table.csv", COLUMNS, lines)
    write_csv(out / "gflops_8x224.csv", ("scheme", "gflops_per_view", "params_M"), paper_config)
    (out / "table.md").write_text(_markdown(args.scale, chosen["model"], budget, device, lines, paper_config))
    written = [out / "table.md", out / "table.csv", out / "gflops_8x224.csv", plot(lines, budget, out)]
    print("\n".join(["", *(str(path) for path in written)]))


def measure(scheme: str, frames: int, crop: int, model_overrides: dict, device: torch.device, budget: float) -> dict:
    """One line: a setting the scheme cannot take (e.g. L+G on an odd patch grid) says why instead."""
    line = dict(scheme=scheme, frames=frames, crop=crop, tokens=frames * (crop // 16) ** 2)
    try:
        model = create_model(PAPER_MODEL, attention=scheme, num_frames=frames, img_size=crop, **model_overrides)
    except ValueError as error:
        return dict(line, over_budget=f"n/a: {error}")
    line["gflops_per_view"], line["params_M"] = count(model)
    model.to(device)
    for column, kernel in KERNELS.items():
        line[column] = step_memory_gib(model, frames, crop, device, kernel)
    line["over_budget"] = " and ".join(column.removesuffix("_GiB") for column in KERNELS if line[column] > budget)
    return line


def step_memory_gib(model: torch.nn.Module, frames: int, crop: int, device: torch.device,
                    kernel: Callable[[], AbstractContextManager]) -> float:
    """Peak memory of one training step at batch 1 (inf when the device runs out)."""
    video = torch.randn(1, 3, frames, crop, crop, device=device)
    try:
        with kernel(), PeakMemory(device) as peak:
            model(video).sum().backward()
    except torch.OutOfMemoryError:
        return math.inf
    finally:
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return peak.mib / 1024


def _describe(line: dict) -> str:
    if "gflops_per_view" not in line:
        return f"{line['scheme']} {line['frames']}x{line['crop']}: {line['over_budget']}"
    return (f"{line['scheme']} {line['frames']}x{line['crop']} ({line['tokens']} tokens): "
            f"{line['gflops_per_view']:.4g} GFLOPs, peak {line['explicit_GiB']:.3g} GiB explicit / "
            f"{line['fused_GiB']:.3g} GiB fused{'; over budget: ' + line['over_budget'] if line['over_budget'] else ''}")


def _markdown(scale_name: str, model: dict, budget: float, device: torch.device, lines: list[dict],
              paper_config: list[dict]) -> str:
    size = ", ".join(f"{key} {value}" for key, value in model.items()) or "ViT-B/16"
    text = [f"# Cost of attention schemes ({scale_name} scale)\n",
            f"Model: TimeSformer ({size}), patch 16. Peak memory of one training step at batch 1 on {device.type}, "
            f"budget {budget:g} GiB.\n",
            "| scheme | frames | crop | tokens | GFLOPs/view | params (M) | peak GiB, explicit | peak GiB, fused | "
            "over budget |", "|---|---|---|---|---|---|---|---|---|"]
    for line in lines:
        numbers = [f"{line[key]:.4g}" if key in line else "" for key in ("gflops_per_view", "params_M", *KERNELS)]
        text.append(f"| {line['scheme']} | {line['frames']} | {line['crop']} | {line['tokens']} | "
                    f"{' | '.join(numbers)} | {line['over_budget']} |")
    text += ["\nGFLOPs per view at the paper config (ViT-B/16, 8×224, 400 classes):\n",
             "| scheme | GFLOPs/view | params (M) |", "|---|---|---|"]
    text += [f"| {line['scheme']} | {line['gflops_per_view']:.2f} | {line['params_M']:.2f} |" for line in paper_config]
    return "\n".join(text) + "\n"


def plot(lines: list[dict], budget: float, out: Path) -> Path:
    """GFLOPs and peak memory against crop (left) and frames (right), one curve per scheme and kernel."""
    measured = [line for line in lines if "gflops_per_view" in line]
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    smallest_frames, smallest_crop = min(line["frames"] for line in measured), min(line["crop"] for line in measured)
    for column, (fixed, key, label) in enumerate((
            (lambda line: line["frames"] == smallest_frames, "crop", f"crop ({smallest_frames} frames)"),
            (lambda line: line["crop"] == smallest_crop, "frames", f"frames (crop {smallest_crop})"))):
        for index, scheme in enumerate(dict.fromkeys(line["scheme"] for line in measured)):
            points = sorted((line for line in measured if line["scheme"] == scheme and fixed(line)),
                            key=lambda line: line[key])
            xs, colour = [line[key] for line in points], f"C{index}"  # one colour per scheme in every panel
            axes[0, column].plot(xs, [line["gflops_per_view"] for line in points], marker="o", color=colour,
                                 label=scheme)
            for kernel, style in zip(KERNELS, ("-", "--")):
                axes[1, column].plot(xs, [line[kernel] for line in points], style, marker="o", color=colour,
                                     label=f"{scheme}, {kernel.removesuffix('_GiB')}")
        axes[0, column].set(xlabel=label, ylabel="GFLOPs per view", yscale="log")
        axes[1, column].axhline(budget, color="grey", linestyle=":", label=f"budget {budget:g} GiB")
        axes[1, column].set(xlabel=label, ylabel="peak training memory (GiB)", yscale="log")
        for axis in axes[:, column]:
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    return save_figure(figure, out / "cost.png")
