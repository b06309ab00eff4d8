"""One-command GPU check: everything we want to know the first time a GPU runs this code, inside a fixed time budget
(GPUs come rarely and briefly), written to one report as it goes.

Steps, each a subprocess with its own time box (a failure or timeout is recorded and the check moves on):
environment; matrix-product rates (bf16, fp32, TF32); the model benchmark in bf16 (divided, joint, xvit, ours against
HF where HF has the scheme); which kernel SDPA picks for our attention calls; synthetic 224-pixel videos; a real `fit`
through the CLI in bf16-mixed (clips/s, GPU utilisation, peak memory); the DataLoader with 16 workers on Kinetics-like
videos; a one-GPU DDP (NCCL) run; and, with the time left, our training step under `torch.compile` (its first call's
compile time and the compiled step's speed).

Output in `--out` (default `$OUT`, else `gpu_check/`): `gpu_check.md` (the report), `gpu_check.json` (its figures)
and `gpu_check.log` (every step's output). TFLOP/s in the report count 2 FLOP per multiply-add, as GPU datasheets
do (fvcore's GFLOPs, which the model benchmark and the CLI log, count 1: they are doubled here).

    bash experiments/bench/gpu_check.sh             # on a GPU machine; --dry-run: tiny sizes on the CPU, seconds
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from experiments.bench.utilisation import GpuSampler

STEP_FLOOR_S = 15  # time kept back for each later step when a step's time box is cut to fit the budget


@dataclass(frozen=True)
class Sizes:
    """What the check runs: ViT-B/16 8×224 at batch 16 on a GPU, or tiny sizes on the CPU for a dry run."""

    device: str
    budget_s: float
    matmul_side: int
    model: tuple[str, ...]  # size options of the model benchmark and the SDPA probe (empty: the 8×224 preset)
    batch: int
    repeats: tuple[str, str]  # model benchmark warm-up and timed repeats
    backbone: dict[str, int]  # the fit's ViT
    video_side: int
    video_frames: int
    clip_frames: int
    videos_per_class: int
    fit_steps: int
    ddp_steps: int
    log_every: int
    workers: int
    loader: tuple[str, ...]
    schemes: tuple[str, ...] = ("divided", "joint", "xvit")  # of the model benchmark and the SDPA probe
    compile_backend: str = "inductor"  # the dry run's "eager" traces with dynamo but compiles nothing


GPU = Sizes(device="cuda", budget_s=450, matmul_side=8192, model=(), batch=16, repeats=("3", "5"),
            backbone=dict(patch_size=16, embed_dim=768, depth=12, num_heads=12), video_side=224, video_frames=8,
            clip_frames=8, videos_per_class=128, fit_steps=100, ddp_steps=10, log_every=10, workers=16,
            loader=("--videos", "32", "--seconds", "10", "--sampling", "8x32", "--batches", "40"))
DRY_RUN = Sizes(device="cpu", budget_s=300, matmul_side=256,
                model=("--depth", "1", "--embed-dim", "64", "--num-heads", "2", "--img-size", "32", "--patch-size",
                       "16", "--num-frames", "2"),
                batch=2, repeats=("1", "1"), backbone=dict(patch_size=16, embed_dim=64, depth=1, num_heads=2),
                video_side=32, video_frames=4, clip_frames=2, videos_per_class=4, fit_steps=4, ddp_steps=2,
                log_every=1, workers=2, loader=("--videos", "2", "--seconds", "2", "--sampling", "4x4", "--batches",
                                                "2"), schemes=("divided",), compile_backend="eager")


@dataclass
class Step:
    key: str
    title: str
    command: list[str]
    cap_s: float
    describe: Callable[[str, Check], tuple[dict, list[str]]]  # (output, check) -> figures, markdown lines
    skip: str = ""  # why the step is not run
    sample_gpu: bool = False


@dataclass
class Check:
    sizes: Sizes
    out: Path
    work: Path
    budget_s: float
    dry_run: bool
    started: float = field(default_factory=time.perf_counter)
    results: dict[str, dict] = field(default_factory=dict)
    sections: dict[str, list[str]] = field(default_factory=dict)

    def figures(self, key: str) -> dict:
        return self.results.get(key, {}).get("figures", {})


def python(*arguments: str) -> list[str]:
    return [sys.executable, "-m", *arguments]


def results_in(output: str) -> list[dict]:
    return [json.loads(line.removeprefix("RESULT ")) for line in output.splitlines() if line.startswith("RESULT ")]


def tflops_from_fvcore(gflops_per_s: float) -> float:
    return 2 * gflops_per_s / 1000


def figure(value: float) -> str:
    """Three significant digits: the dry run's tiny rates still read as numbers."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


# ---- the steps' readers: figures for the JSON, lines for the report -------------------------------------------------

def describe_env(output: str, check: Check) -> tuple[dict, list[str]]:
    env = results_in(output)[0]
    packages = ", ".join(f"{name} {version}" for name, version in env["packages"].items())
    return env, [f"- device: {env['device']} (CUDA available: {env['cuda_available']}, CUDA {env['cuda']}), "
                 f"{env['cpu_count']} CPUs, Python {env['python']}", f"- packages: {packages}"]


def describe_matmul(output: str, check: Check) -> tuple[dict, list[str]]:
    rates = {row["dtype"]: row["tflops"] for row in results_in(output)}
    side = check.sizes.matmul_side
    return rates, [f"{side}×{side}×{side} products, median of 10 after 3 warm-ups:", "",
                   "| dtype | TFLOP/s |", "|---|---|",
                   *(f"| {name} | {figure(rate)} |" for name, rate in rates.items())]


MODEL_ROW = re.compile(r"^\| (\w+) \| (ours|HF) \| ([\d.]+) \| ([\d.]+) \| (\d+) / (\d+) \| (\d+)% / (\d+)% \|")
SPEEDUP_ROW = re.compile(r"^\| (\w+) \| ours vs HF \| ([\d.]+)× \| ([\d.]+)× \|")


def describe_model(output: str, check: Check) -> tuple[dict, list[str]]:
    """The model benchmark's table as printed, and per scheme and model the train TFLOP/s, share and clips/s."""
    figures: dict[str, dict] = {}
    for line in output.splitlines():
        if row := MODEL_ROW.match(line):
            scheme, model, inference, step, _, train_gflops, _, share = row.groups()
            figures.setdefault(scheme, {})[model] = dict(
                train_tflops=tflops_from_fvcore(float(train_gflops)), train_share=int(share) / 100,
                train_clips_per_s=check.sizes.batch / float(step), inference_clips_per_s=float(inference))
        elif row := SPEEDUP_ROW.match(line):
            figures.setdefault(row[1], {})["ours_vs_hf"] = dict(inference=float(row[2]), train=float(row[3]))
    if not figures:
        raise ValueError("no table rows in the model benchmark's output")
    kept = [line for line in output.splitlines()
            if line.startswith(("model bench:", "|", "ours vs HF:")) or "logits ours vs HF" in line]
    lines = ["GFLOP/s and the matmul rate in this table are the benchmark's own (fvcore: 1 FLOP per multiply-add; "
             "double them for datasheet TFLOP/s); its shares are of a bf16 matmul it timed itself.", "", *kept]
    return figures, lines


def describe_sdpa(output: str, check: Check) -> tuple[dict, list[str]]:
    rows = results_in(output)
    backends = ("flash", "efficient", "cudnn", "math")
    lines = [f"Each distinct call of one bf16 training forward at batch {check.sizes.batch}; q, k, v shapes "
             "`[batch, heads, tokens, head dim]`; per backend forced with `sdpa_kernel`: forward + backward ms, or "
             "why it cannot run.", "",
             f"| scheme | q k v | calls | SDPA picked | {' | '.join(backends)} |", "|---|---|---|---|---|---|---|---|"]
    kernels = []
    for row in rows:
        for call in row["calls"]:
            times = [value if isinstance(value, str) else f"{value:.2f}" for value in
                     (call["backends_ms"][name] for name in backends)]
            picked = ", ".join(op.removeprefix("aten::") for op in call["picked"] if "backward" not in op)
            lines.append(f"| {row['attention']} | {call['signature']} | {call['count']} | {picked} | "
                         f"{' | '.join(times)} |")
            if call["kernels"]:
                kernels.append(f"- {row['attention']} {call['signature']}: " + "; ".join(
                    f"`{name}`" for name in call["kernels"]))
    if kernels:
        lines += ["", "GPU kernels of the picked backend (forward + backward, most time first):", *kernels]
    figures = {row["attention"]: [dict(signature=call["signature"], picked=call["picked"], kernels=call["kernels"],
                                       backends_ms=call["backends_ms"]) for call in row["calls"]] for row in rows}
    return figures, lines


def describe_videos(output: str, check: Check) -> tuple[dict, list[str]]:
    count = sum(1 for _ in (check.work / "motion").rglob("*.mp4"))
    seconds = check.results["videos"]["seconds"]
    sizes = check.sizes
    return dict(videos=count, seconds=seconds), [
        f"{count} videos of {sizes.video_frames} frames at {sizes.video_side}×{sizes.video_side} "
        f"(`lightning_video.data.synthetic`, task motion) in {seconds:.0f} s"]


def metrics_rows(run: str, check: Check) -> list[dict]:
    files = sorted((check.work / "runs" / run).rglob("metrics.csv"))
    if not files:
        raise FileNotFoundError(f"no metrics.csv under {check.work / 'runs' / run}")
    with files[-1].open() as handle:
        return list(csv.DictReader(handle))


def logged(rows: list[dict], name: str) -> list[float]:
    return [float(row[name]) for row in rows if row.get(name)]


def describe_fit(output: str, check: Check) -> tuple[dict, list[str]]:
    rows = metrics_rows("fit", check)
    speeds = logged(rows, "perf/clips_per_s")
    steady = speeds[1:] or speeds  # the first window holds the workers' start and the first CUDA calls
    clips_per_s = statistics.median(steady)
    gflops = logged(rows, "model/gflops_per_view")[0]
    tflops = tflops_from_fvcore(3 * gflops * clips_per_s)  # a training step ≈ 3 forwards
    matmul = check.figures("matmul").get("bf16")
    figures = dict(clips_per_s=clips_per_s, clips_per_s_logged=speeds, steps=int(max(logged(rows, "step"))) + 1,
                   peak_memory_GiB=max(logged(rows, "perf/peak_memory_GiB")), gflops_per_view=gflops,
                   train_tflops=tflops, train_share=tflops / matmul if matmul else None,
                   gpu=check.results["fit"].get("gpu", {}))
    sizes = check.sizes
    share = f" = {figures['train_share']:.0%} of the measured bf16 matmul rate" if matmul else ""
    gpu = figures["gpu"]
    utilisation = (f"GPU utilisation {gpu['mean_util_pct']:.0f}% mean, {gpu['median_util_pct']:.0f}% median over "
                   f"{gpu['busy_s']:.0f} busy s ({gpu['samples']} NVML samples); at most "
                   f"{gpu['max_memory_used_GiB']:.1f} GiB in use on the card" if gpu
                   else f"GPU utilisation: {check.results['fit'].get('gpu_unavailable', 'not sampled')}")
    return figures, [
        f"`python -m lightning_video fit` on the synthetic motion videos: ViT {sizes.backbone}, "
        f"{sizes.clip_frames}×{sizes.video_side}, divided, batch {sizes.batch}, bf16-mixed, "
        f"{sizes.workers} data workers, {figures['steps']} steps.",
        f"- clips/s (ComputeMonitor's `perf/clips_per_s`, median of the logged windows after the first; data loading "
        f"included): **{clips_per_s:.1f}** (logged: {', '.join(f'{speed:.1f}' for speed in speeds)})",
        f"- train: {figure(gflops)} fvcore GFLOPs per clip × 3 → **{figure(tflops)} TFLOP/s**{share}",
        f"- peak memory (`perf/peak_memory_GiB`, CUDA allocator on a GPU): {figures['peak_memory_GiB']:.2f} GiB",
        f"- {utilisation}"]


def describe_loader(output: str, check: Check) -> tuple[dict, list[str]]:
    loader = results_in(output)[-1]
    fit = check.figures("fit").get("clips_per_s")
    bench = check.figures("model").get("divided", {}).get("ours", {}).get("train_clips_per_s")
    lines = [f"- DataLoader, {loader['workers']} workers, batch {loader['batch']}, {loader['sampling']} clips of "
             f"{loader['videos']} Kinetics-like videos ({loader['seconds']}-s 320×240 H.264, written in "
             f"{loader['write_s']:.0f} s): "
             f"**{loader['clips_per_s']:.1f} clips/s**"]
    for name, speed in (("the fit above (data included)", fit), ("the model benchmark's divided train step", bench)):
        if speed:
            lines.append(f"- against {name}: {speed:.1f} clips/s: the loader gives "
                         f"{loader['clips_per_s'] / speed:.2f}× what the model takes")
    return loader, lines


def describe_ddp(output: str, check: Check) -> tuple[dict, list[str]]:
    rows = metrics_rows("ddp", check)
    backend = re.search(r"distributed_backend=(\w+)", output)
    figures = dict(steps=int(max(logged(rows, "step"))) + 1, backend=backend[1] if backend else "not printed",
                   clips_per_s=logged(rows, "perf/clips_per_s")[-1])
    return figures, [f"`--trainer.strategy ddp --trainer.devices 1`: {figures['steps']} steps, process-group backend "
                     f"{figures['backend']}, last logged {figures['clips_per_s']:.1f} clips/s"]


def describe_compile(output: str, check: Check) -> tuple[dict, list[str]]:
    matmul = check.figures("matmul").get("bf16")
    figures: dict[str, dict] = {}
    for row in results_in(output):  # each mode's last line holds all it measured
        figures.setdefault(row["attention"], {})[row["mode"]] = row
    lines = [f"`torch.compile` of our training step, batch {check.sizes.batch}, bf16 autocast; the first call compiles.",
             "", "| scheme | mode | first call (s) | train step (s) | clips/s | TFLOP/s | of bf16 matmul |",
             "|---|---|---|---|---|---|---|"]
    for attention, modes in figures.items():
        for mode, row in modes.items():
            if "train_step_s" not in row:
                lines.append(f"| {attention} | {mode} | {row['first_call_s']:.1f} | (cut off) | | | |")
                continue
            share = f"{row['train_tflops'] / matmul:.0%}" if matmul else ""
            lines.append(f"| {attention} | {mode} | {row['first_call_s']:.1f} | {figure(row['train_step_s'])} | "
                         f"{figure(row['clips_per_s'])} | {figure(row['train_tflops'])} | {share} |")
    if not figures:
        raise ValueError("no step was timed")
    return figures, lines


# ---- the plan ----------------------------------------------------------------------------------------------------

def fit_command(check: Check, run: str, steps: int, *extra: str) -> list[str]:
    sizes = check.sizes
    backbone = [f"--model.backbone.init_args.{name}={value}" for name, value in sizes.backbone.items()]
    return python("lightning_video", "fit", "--config", "experiments/configs/synthetic_motion.yaml",
                  f"--trainer.accelerator={'gpu' if sizes.device == 'cuda' else 'cpu'}", "--trainer.devices=1",
                  "--trainer.precision=bf16-mixed", f"--trainer.max_steps={steps}", "--trainer.limit_val_batches=0",
                  f"--trainer.log_every_n_steps={sizes.log_every}",
                  f"--trainer.logger.init_args.save_dir={check.work / 'runs'}",
                  f"--trainer.logger.init_args.name={run}",
                  "--checkpoint.save_last=false", "--checkpoint.save_top_k=0",  # nothing to keep: no 1 GB writes
                  f"--data.root={check.work / 'motion'}", f"--data.num_frames={sizes.clip_frames}",
                  f"--data.crop_size={sizes.video_side}", f"--data.train_min_short_side={sizes.video_side}",
                  f"--data.train_max_short_side={sizes.video_side * 5 // 4}", f"--data.batch_size={sizes.batch}",
                  f"--data.num_workers={sizes.workers}", f"--data.synthetic.size={sizes.video_side}",
                  f"--data.synthetic.frames={sizes.video_frames}",
                  f"--data.synthetic.videos_per_class={sizes.videos_per_class}", *backbone, *extra)


def plan(check: Check, compile_model: bool) -> list[Step]:
    sizes = check.sizes
    model_bench = python("experiments.bench", "model", "--device", sizes.device, "--dtype", "bf16", "--attention",
                         *sizes.schemes, "--batch", str(sizes.batch), "--warmup", sizes.repeats[0], "--repeats",
                         sizes.repeats[1], *sizes.model)
    return [
        Step("env", "Environment", python("experiments.bench.gpu_probes", "env"), 60, describe_env),
        Step("matmul", "Matrix-product rates", python("experiments.bench.gpu_probes", "matmul", "--device",
                                                      sizes.device, "--side", str(sizes.matmul_side)), 60,
             describe_matmul),
        Step("model", "Model benchmark (bf16)", model_bench, 200, describe_model),
        Step("sdpa", "SDPA kernels", python("experiments.bench.gpu_probes", "sdpa", "--device", sizes.device, "--batch",
                                            str(sizes.batch), "--attention", *sizes.schemes, *sizes.model),
             90, describe_sdpa),
        Step("videos", "Synthetic videos", python(
            "lightning_video.data.synthetic", "--task", "motion", "--out", str(check.work / "motion"), "--size",
            str(sizes.video_side), "--frames", str(sizes.video_frames), "--videos-per-class",
            str(sizes.videos_per_class)), 90, describe_videos),
        Step("fit", "Fit through the CLI (bf16-mixed)", fit_command(check, "fit", sizes.fit_steps), 180,
             describe_fit, sample_gpu=True),
        Step("loader", f"Data loader, {sizes.workers} workers", python(
            "experiments.bench.loader", "--workers", str(sizes.workers), "--batch", str(sizes.batch), *sizes.loader),
             120, describe_loader),
        Step("ddp", "DDP smoke run (1 GPU, NCCL)", fit_command(check, "ddp", sizes.ddp_steps,
                                                               "--trainer.strategy=ddp"), 120, describe_ddp),
        Step("compile", "torch.compile of our train step", python(
            "experiments.bench.gpu_probes", "compile", "--device", sizes.device, "--backend", sizes.compile_backend,
            "--batch", str(sizes.batch), "--attention", *sizes.schemes, *sizes.model),
             float("inf"), describe_compile, skip="" if compile_model else "--no-compile"),
    ]


# ---- running and reporting -------------------------------------------------------------------------------------------

def run_step(step: Step, timeout: float, check: Check, log) -> None:
    """Run one step in its own process group (a timeout ends its data workers too) and record what it gave."""
    log.write(f"\n===== {step.title}: {' '.join(step.command)} (time box {timeout:.0f} s)\n")
    log.flush()
    result = check.results[step.key] = {"command": " ".join(step.command)}
    start = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with GpuSampler() as sampler:
        process = subprocess.Popen(step.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=env, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout)
            status = "ok" if process.returncode == 0 else f"failed (exit {process.returncode})"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            status = f"timed out after {timeout:.0f} s"
    result["seconds"] = time.perf_counter() - start
    if step.sample_gpu:
        result["gpu"], result["gpu_unavailable"] = sampler.summary(), sampler.unavailable
    log.write(output)
    log.flush()
    try:
        result["figures"], lines = step.describe(output, check)
    except Exception as error:  # a step that failed early leaves nothing to read: report what it printed
        status += "" if status != "ok" else " but unreadable"
        result["figures"], lines = {}, [f"figures not read: {type(error).__name__}: {error}"]
    if status != "ok":
        tail = "\n".join(output.strip().splitlines()[-25:])
        lines += ["", "Last lines of its output (all of it is in gpu_check.log):", "", "```", tail, "```"]
    result["status"] = status
    check.sections[step.key] = lines


def summary(check: Check) -> list[str]:
    lines = []
    matmul = check.figures("matmul")
    if matmul:
        lines.append("matmul: " + ", ".join(f"{name} {figure(rate)} TFLOP/s" for name, rate in matmul.items()))
    for scheme, models in check.figures("model").items():
        parts = [f"{model} {figure(figures['train_tflops'])} TFLOP/s ({figures['train_share']:.0%})"
                 for model, figures in models.items() if model in ("ours", "HF")]
        speedup = f", ours vs HF {models['ours_vs_hf']['train']:.2f}×" if "ours_vs_hf" in models else ""
        lines.append(f"model train {scheme}: {', '.join(parts)}{speedup}")
    for scheme, calls in check.figures("sdpa").items():
        picked = sorted({op.removeprefix("aten::") for call in calls for op in call["picked"] if "backward" not in op})
        lines.append(f"SDPA {scheme}: {', '.join(picked)}")
    fit = check.figures("fit")
    if fit:
        share = f" ({fit['train_share']:.0%} of bf16 matmul)" if fit["train_share"] else ""
        gpu = f", GPU {fit['gpu']['mean_util_pct']:.0f}% busy" if fit["gpu"] else ""
        lines.append(f"fit: {fit['clips_per_s']:.1f} clips/s, {figure(fit['train_tflops'])} TFLOP/s{share}{gpu}, "
                     f"peak {fit['peak_memory_GiB']:.1f} GiB")
    loader = check.figures("loader")
    if loader:
        lines.append(f"loader: {loader['clips_per_s']:.1f} clips/s with {loader['workers']} workers")
    ddp = check.figures("ddp")
    if ddp:
        lines.append(f"ddp: {ddp['steps']} steps, backend {ddp['backend']}")
    for attention, modes in check.figures("compile").items():
        lines.append(f"torch.compile {attention} train step: " + ", ".join(
            f"{mode} {figure(row['train_tflops'])} TFLOP/s" if "train_tflops" in row
            else f"{mode} cut off after a {row['first_call_s']:.0f}-s first call" for mode, row in modes.items()))
    statuses = [f"{key} {result['status']}" for key, result in check.results.items() if result["status"] != "ok"]
    lines.append("steps not ok: " + ("; ".join(statuses) if statuses else "none"))
    return lines


def write_report(check: Check, steps: list[Step]) -> None:
    """The whole report, rewritten after every step so a check cut short still leaves what it measured."""
    elapsed = time.perf_counter() - check.started
    mode = "dry run (tiny sizes on the CPU)" if check.dry_run else "GPU"
    lines = ["# GPU check", "", f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {mode}, {elapsed:.0f} s of a "
             f"{check.budget_s:.0f}-s budget. TFLOP/s: 2 FLOP per multiply-add.", "", "## Summary", "",
             *(f"- {line}" for line in summary(check))]
    for step in steps:
        result = check.results.get(step.key)
        lines += ["", f"## {step.title}", ""]
        if result is None:
            lines.append("status: not run yet")
            continue
        seconds = f" in {result['seconds']:.0f} s" if "seconds" in result else ""
        lines += [f"status: {result['status']}{seconds}", "", *check.sections.get(step.key, [])]
    (check.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    (check.out / "gpu_check.json").write_text(json.dumps(
        dict(mode=mode, budget_s=check.budget_s, elapsed_s=elapsed, sizes=check.sizes.__dict__,
             steps=check.results), indent=1, default=str) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the check in seconds")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_check"),
                        help="report folder (default: $OUT, else gpu_check/)")
    parser.add_argument("--budget", type=float, help="seconds for all steps (default 450 on a GPU)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile step (the last)")
    args = parser.parse_args(argv)
    sizes = DRY_RUN if args.dry_run else GPU
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(sizes, args.out, Path(tempfile.mkdtemp(prefix="gpu_check_")), args.budget or sizes.budget_s,
                  args.dry_run)
    steps = plan(check, compile_model=not args.no_compile)
    try:
        with (args.out / "gpu_check.log").open("w") as log:
            for index, step in enumerate(steps):
                left = check.budget_s - (time.perf_counter() - check.started)
                timeout = min(step.cap_s, left - STEP_FLOOR_S * sum(not later.skip for later in steps[index + 1:]))
                if step.skip or timeout < 10:
                    check.results[step.key] = {"status": f"skipped: {step.skip or 'no time left in the budget'}"}
                else:
                    print(f"[{time.perf_counter() - check.started:4.0f} s] {step.title} (time box {timeout:.0f} s)",
                          flush=True)
                    run_step(step, timeout, check, log)
                    print(f"       {check.results[step.key]['status']} in {check.results[step.key]['seconds']:.0f} s",
                          flush=True)
                write_report(check, steps)
    finally:
        shutil.rmtree(check.work, ignore_errors=True)
    print("\n" + "\n".join(summary(check)))
    print(f"\nreport: {args.out / 'gpu_check.md'} (figures: gpu_check.json, output: gpu_check.log)")


if __name__ == "__main__":
    main()
