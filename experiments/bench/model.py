"""Model speed, ours against HF transformers' `TimesformerForVideoClassification` with the same weights and config.

For each attention scheme: the logits of both models on one batch (max relative error, checked before any timing),
then inference clips/s, the training step time (forward, cross-entropy, backward, AdamW step) and peak memory. Ours and
HF alternate within every repeat, so both see the same machine noise; the table gives medians over the timed repeats.
GFLOP/s count as fvcore does (`lightning_video.flops`: one multiply-add = one FLOP; a training step ≈ 3 forwards) and
are set against a large matrix product timed on the same device in the same dtype and units. The count is of the model
as written, so ours can read above 100% of that rate where its shortcuts skip work (`VideoTransformer.as_written`).

In bf16 (autocast, as Lightning's `bf16-mixed`) our training step is also timed in fp32 (on CPU, or with
`--versus-fp32`), interleaved with the others, for the speed-up bf16 gives. `--profile` adds where each model's
training step spends its time on CPU, by kind of operator (`op_shares.py`): what lies outside the matrix products is
what a faster matrix product cannot speed up.

HF has `space_only`, `joint_space_time` and `divided_space_time`. Its `space_only` classifies every frame on its own
(the official model averages the frames first), so its logits are compared after averaging its last hidden states
over the frames before its norm and head, as the official model does; its timings are of its own forward. Schemes HF
lacks are timed for ours only.

    python -m experiments.bench model --attention joint divided --device cuda --dtype bf16 --compile
    python -m experiments.bench model --device cpu --onnxruntime   # + onnxruntime's CPU inference beside eager
    python -m experiments.bench model --device cpu --dtype bf16 --profile   # ours vs HF, bf16 vs fp32, time shares
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from experiments.bench.memory import PeakMemory
from experiments.bench.onnxruntime_speed import onnxruntime_rows
from experiments.bench.op_shares import KINDS, time_shares
from experiments.bench.timing import seconds
from lightning_video.flops import count
from lightning_video.models import ATTENTIONS, PRESETS, create_model
from lightning_video.models import attention as attention_kernels
from lightning_video.models.hf_export import HF_ATTENTION, to_hf

SIZES = ("num_frames", "img_size", "patch_size", "embed_dim", "depth", "num_heads", "num_classes")
MATMUL_SIDE = {"cpu": 2048, "cuda": 8192}
TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}
PROFILED_STEPS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attention", nargs="+", choices=list(ATTENTIONS), default=list(HF_ATTENTION),
                        help="schemes to measure (HF has space, joint, divided)")
    parser.add_argument("--preset", choices=list(PRESETS), default="timesformer_base_8x224")
    for name in SIZES:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=argparse.SUPPRESS,
                            help="overrides the preset")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=list(TOLERANCE), default="fp32", help="bf16: autocast, fp32 weights")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile both models; give it --warmup 5 or more: the first calls compile")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3, help="untimed repeats first")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats")
    parser.add_argument("--onnxruntime", action="store_true",
                        help="add CPU inference rows: ours exported to ONNX and run by onnxruntime, beside eager")
    parser.add_argument("--versus-fp32", action=argparse.BooleanOptionalAction,
                        help="with --dtype bf16, also time our fp32 training step (default: on CPU; on CUDA it would "
                             "lengthen the GPU check)")
    parser.add_argument("--cpu-bf16-attention", choices=["ours", "fused"], default="ours",
                        help="our attention in bf16 on CPU: ours (explicit products for short sequences, head_groups "
                             "for long ones; `attention.cpu_bf16_path`) or PyTorch's fused kernel, for an A/B run")
    parser.add_argument("--profile", action="store_true",
                        help="CPU: each model's training-step time by kind of operator (one more step each)")


@dataclass
class Contender:
    """One model under test, with its input in its own layout (ours `[B, C, T, H, W]`, HF `[B, T, C, H, W]`)."""

    name: str
    module: nn.Module
    inputs: torch.Tensor
    forward: Callable[[torch.Tensor], torch.Tensor]
    dtype: torch.dtype
    modes: tuple[str, ...] = ("inference", "train")
    optimizer: torch.optim.Optimizer = field(init=False)
    times: dict[str, list[float]] = field(default_factory=lambda: {"inference": [], "train": []})
    first_call: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=1e-4, fused=True)

    def logits(self) -> torch.Tensor:
        with autocast(self.inputs.device, self.dtype):
            return self.forward(self.inputs)

    def infer(self) -> None:
        self.module.eval()
        with torch.inference_mode():
            self.logits()

    def train_step(self) -> None:
        self.module.train()
        logits = self.logits()
        labels = torch.zeros(len(logits), dtype=torch.long, device=logits.device)  # HF space: one row per frame
        F.cross_entropy(logits.float(), labels).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def run(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; use --device cpu")
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    sizes = {name: getattr(args, name) for name in SIZES if hasattr(args, name)}
    rate = matmul_rate(device, dtype)
    attention_kernels.cpu_bf16_own_paths = args.cpu_bf16_attention == "ours"
    model = " ".join([args.preset, *(f"{name}={value}" for name, value in sizes.items())])
    print(f"model bench: {model}, batch {args.batch}, {device.type} {args.dtype}"
          f"{', torch.compile' if args.compile else ''}; {args.warmup} warm-up + {args.repeats} timed repeats, the "
          f"models alternated; matmul rate {rate:.0f} GFLOP/s ({MATMUL_SIDE[device.type]}³ {args.dtype}); "
          f"threads {torch.get_num_threads()}; bf16 CPU attention: {args.cpu_bf16_attention}")
    results = {attention: measure(attention, args, sizes, device, dtype, rate) for attention in args.attention}
    print("\n| scheme | model | inference clips/s | train step (s) | GFLOP/s inference / train | of matmul rate | "
          "peak MiB inference / train |\n|---|---|---|---|---|---|---|")
    print("\n".join(row for rows, _ in results.values() for row in rows))
    memory = "CUDA max allocated" if device.type == "cuda" else "resident memory the work adds (bench/memory.py)"
    print(f"\nours vs HF: speed-ups (HF's time ÷ ours), memory ours ÷ HF's; ours bf16 vs fp32: speed-up of bf16; "
          f"peak MiB: {memory}; the fp32 row's share is of the {args.dtype} rate")
    if args.profile:
        print(f"\nShare of the training step's operator time by kind (torch.profiler self time, {PROFILED_STEPS} "
              f"steps):\n\n| scheme | model | {' | '.join(KINDS)} | outside both first two |\n"
              f"|{'---|' * (len(KINDS) + 3)}")
        print("\n".join(share_row(attention, contender) for attention, (_, contenders) in results.items()
                         for contender in contenders))
    print(f"\nwall time of the whole run: {time.perf_counter() - start:.0f} s")


def measure(attention: str, args: argparse.Namespace, sizes: dict[str, int], device: torch.device,
            dtype: torch.dtype, rate: float) -> tuple[list[str], list[Contender]]:
    """Check the logits, time the models interleaved, and return the scheme's table rows and the contenders."""
    torch.manual_seed(0)
    ours = create_model(args.preset, attention=attention, drop_path_rate=0.0, **sizes)
    with torch.no_grad():  # the fresh model's zero tensors (`time_embed`, `*_fc`, biases) would escape the check
        for parameter in ours.parameters():
            if not parameter.any():
                parameter.normal_(std=0.02)
    gflops = count(ours)[0]
    video = torch.randn(args.batch, 3, ours.num_frames, ours.img_size, ours.img_size, device=device)
    ours.to(device)
    contenders = [Contender("ours", ours, video, torch.compile(ours) if args.compile else ours, dtype)]
    if attention in HF_ATTENTION:
        reference = to_hf(ours).to(device)
        frames = video.transpose(1, 2).contiguous()
        with autocast(device, dtype):
            error = relative_error(ours, video, reference, frames)
        verdict = "same logits" if error < TOLERANCE[args.dtype] else "LOGITS DIFFER"
        print(f"{attention}: logits ours vs HF {HF_ATTENTION[attention]}: max relative error {error:.1e} ({verdict})")
        compiled = torch.compile(reference) if args.compile else reference
        contenders.append(Contender("HF", reference, frames, lambda pixels: compiled(pixel_values=pixels).logits,
                                    dtype))
    if dtype != torch.float32 and (device.type == "cpu" if args.versus_fp32 is None else args.versus_fp32):
        fp32 = copy.deepcopy(ours)
        contenders.append(Contender("ours fp32", fp32, video, torch.compile(fp32) if args.compile else fp32,
                                    torch.float32, modes=("train",)))
    for mode in ("inference", "train"):
        interleave([contender for contender in contenders if mode in contender.modes], mode, args.warmup,
                   args.repeats, device)
    if args.profile:
        if device.type != "cpu":
            raise SystemExit("--profile times CPU operators; on CUDA they would be launch times. Use --device cpu")
        for contender in contenders:
            contender.shares = time_shares(contender.train_step, PROFILED_STEPS)
    if args.compile:
        print(f"{attention}: first calls (compiling), inference / train: " + ", ".join(
            f"{contender.name} {contender.first_call['inference']:.0f} s / {contender.first_call['train']:.0f} s"
            for contender in contenders))
    rows = table_rows(attention, contenders, gflops * args.batch, rate)
    if args.onnxruntime:
        rows += onnxruntime_rows(attention, ours, video, args.warmup, args.repeats)
    return rows, contenders


def autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def relative_error(ours: nn.Module, video: torch.Tensor, reference: nn.Module, frames: torch.Tensor) -> float:
    """max |ours - HF| / max |HF| over the batch's logits."""
    ours.eval()
    reference.eval()
    with torch.inference_mode():
        expected = hf_clip_logits(reference, frames).float()
        return ((ours(video).float() - expected).abs().max() / expected.abs().max()).item()


def hf_clip_logits(reference: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """HF's logits per clip; for `space_only` the frames' last hidden states averaged before the norm and head."""
    if reference.config.attention_type != "space_only":
        return reference(pixel_values=frames).logits
    hidden = reference.timesformer(pixel_values=frames, output_hidden_states=True).hidden_states[-1]
    clips = hidden.unflatten(0, (len(frames), -1)).mean(dim=1)
    return reference.classifier(reference.timesformer.layernorm(clips)[:, 0])


def interleave(contenders: list[Contender], mode: str, warmup: int, repeats: int, device: torch.device) -> None:
    """Time `mode` of each contender once per repeat, alternating who goes first; then one more run each for the
    peak memory (the sampler stays out of the timed runs)."""
    work = Contender.infer if mode == "inference" else Contender.train_step
    for repeat in range(warmup + repeats):
        for contender in contenders[::-1] if repeat % 2 else contenders:
            took = seconds(lambda: work(contender), device)
            contender.first_call.setdefault(mode, took)
            if repeat >= warmup:
                contender.times[mode].append(took)
    for contender in contenders:
        with PeakMemory(device) as peak:
            work(contender)
        contender.peak_mib[mode] = peak.mib


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    """GFLOP/s (multiply-adds) of a square matrix product: the most the device does in the models' main op."""
    side = MATMUL_SIDE[device.type]
    a, b = (torch.randn(side, side, device=device, dtype=dtype) for _ in range(2))
    return side**3 / statistics.median(seconds(lambda: a @ b, device) for _ in range(6)) / 1e9


def table_rows(attention: str, contenders: list[Contender], gflops_per_batch: float, rate: float) -> list[str]:
    """Markdown rows: each model's medians, then ours against HF (speed-ups; memory as a fraction of HF's) and our
    bf16 step against our fp32 step. The fp32 step's share is of the bf16 rate the others are set against."""
    medians = {contender.name: {mode: statistics.median(times) for mode, times in contender.times.items() if times}
               for contender in contenders}
    rows = []
    for contender in contenders:
        median, memory = medians[contender.name], contender.peak_mib
        speeds = {mode: (3 if mode == "train" else 1) * gflops_per_batch / took for mode, took in median.items()}
        clips = {mode: len(contender.inputs) / took for mode, took in median.items()}
        inference = figure(clips["inference"]) if "inference" in clips else "–"
        rows.append(f"| {attention} | {contender.name} | {inference} | {figure(median['train'])} | "
                    f"{pair(speeds, '{:.0f}')} | {pair(speeds, '{:.0%}', rate)} | "
                    f"{pair(memory, '{:.0f}')} |")
    if "HF" in medians:
        (ours, hf), memory = (medians["ours"], medians["HF"]), [contender.peak_mib for contender in contenders]
        rows.append(f"| {attention} | ours vs HF | {hf['inference'] / ours['inference']:.2f}× | "
                    f"{hf['train'] / ours['train']:.2f}× | | | "
                    f"{memory[0]['inference'] / memory[1]['inference']:.2f} / "
                    f"{memory[0]['train'] / memory[1]['train']:.2f} |")
    if "ours fp32" in medians:
        speedup = medians["ours fp32"]["train"] / medians["ours"]["train"]
        rows.append(f"| {attention} | ours bf16 vs fp32 | | {speedup:.2f}× | | | |")
    return rows


def pair(figures: dict[str, float], form: str, per: float = 1.0) -> str:
    """`inference / train` figures, each divided by `per`; a mode not timed is a dash."""
    return " / ".join(form.format(figures[mode] / per) if mode in figures else "–" for mode in ("inference", "train"))


def share_row(attention: str, contender: Contender) -> str:
    """A markdown row of where a contender's training step spent its operator time (`--profile`)."""
    outside = 1 - contender.shares["matrix products"] - contender.shares["attention kernels"]
    return (f"| {attention} | {contender.name} | {' | '.join(f'{contender.shares[kind]:.1%}' for kind in KINDS)} | "
            f"{outside:.1%} |")


def figure(value: float) -> str:
    """Three significant digits, without an exponent."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
