"""Model speed, ours against HF transformers' `TimesformerForVideoClassification` with the same weights and config.

For each attention scheme: the logits of both models on one batch (max relative error, checked before any timing),
then inference clips/s, the training step time (forward, cross-entropy, backward, AdamW step) and peak memory. Ours and
HF alternate within every repeat, so both see the same machine noise; the table gives medians over the timed repeats.
GFLOP/s count as fvcore does (`lightning_video.flops`: one multiply-add = one FLOP; a training step ≈ 3 forwards) and
are set against a large matrix product timed on the same device in the same dtype and units. The count is of the model
as written, so ours can read above 100% of that rate where its shortcuts skip work (`VideoTransformer.as_written`).

HF has `space_only`, `joint_space_time` and `divided_space_time`. Its `space_only` classifies every frame on its own
(the official model averages the frames first), so its logits are compared after averaging its last hidden states
over the frames before its norm and head, as the official model does; its timings are of its own forward. Schemes HF
lacks are timed for ours only.

    python -m experiments.bench model --attention joint divided --device cuda --dtype bf16 --compile
    python -m experiments.bench model --device cpu --onnxruntime   # + onnxruntime's CPU inference beside eager
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from experiments.bench.memory import PeakMemory
from experiments.bench.onnxruntime_speed import onnxruntime_rows
from experiments.bench.timing import seconds
from lightning_video.flops import count
from lightning_video.models import ATTENTIONS, PRESETS, create_model
from lightning_video.models.hf_export import HF_ATTENTION, to_hf

SIZES = ("num_frames", "img_size", "patch_size", "embed_dim", "depth", "num_heads", "num_classes")
MATMUL_SIDE = {"cpu": 2048, "cuda": 8192}
TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}


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


@dataclass
class Contender:
    """One model under test, with its input in its own layout (ours `[B, C, T, H, W]`, HF `[B, T, C, H, W]`)."""

    name: str
    module: nn.Module
    inputs: torch.Tensor
    forward: Callable[[torch.Tensor], torch.Tensor]
    dtype: torch.dtype
    optimizer: torch.optim.Optimizer = field(init=False)
    times: dict[str, list[float]] = field(default_factory=lambda: {"inference": [], "train": []})
    first_call: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)

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
    model = " ".join([args.preset, *(f"{name}={value}" for name, value in sizes.items())])
    print(f"model bench: {model}, batch {args.batch}, {device.type} {args.dtype}"
          f"{', torch.compile' if args.compile else ''}; {args.warmup} warm-up + {args.repeats} timed repeats, ours "
          f"and HF alternated; matmul rate {rate:.0f} GFLOP/s ({MATMUL_SIDE[device.type]}³ {args.dtype}); "
          f"threads {torch.get_num_threads()}")
    rows = [row for attention in args.attention for row in measure(attention, args, sizes, device, dtype, rate)]
    print("\n| scheme | model | inference clips/s | train step (s) | GFLOP/s inference / train | of matmul rate | "
          "peak MiB inference / train |\n|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nours vs HF: speed-ups (HF's time ÷ ours), memory ours ÷ HF's; peak MiB: "
          f"{'CUDA max allocated' if device.type == 'cuda' else 'resident memory the work adds (bench/memory.py)'}")
    print(f"\nwall time of the whole run: {time.perf_counter() - start:.0f} s")


def measure(attention: str, args: argparse.Namespace, sizes: dict[str, int], device: torch.device,
            dtype: torch.dtype, rate: float) -> list[str]:
    """Check the logits, time both models interleaved, and return the scheme's table rows."""
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
    for mode in ("inference", "train"):
        interleave(contenders, mode, args.warmup, args.repeats, device)
    if args.compile:
        print(f"{attention}: first calls (compiling), inference / train: " + ", ".join(
            f"{contender.name} {contender.first_call['inference']:.0f} s / {contender.first_call['train']:.0f} s"
            for contender in contenders))
    rows = table_rows(attention, contenders, gflops * args.batch, rate)
    if args.onnxruntime:
        rows += onnxruntime_rows(attention, ours, video, args.warmup, args.repeats)
    return rows


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
    """Markdown rows: each model's medians, then ours against HF (speed-ups; memory as a fraction of HF's)."""
    medians = [{mode: statistics.median(times) for mode, times in contender.times.items()}
               for contender in contenders]
    rows = []
    for contender, median in zip(contenders, medians):
        speeds = gflops_per_batch / median["inference"], 3 * gflops_per_batch / median["train"]
        rows.append(f"| {attention} | {contender.name} | {figure(len(contender.inputs) / median['inference'])} | "
                    f"{figure(median['train'])} | {speeds[0]:.0f} / {speeds[1]:.0f} | "
                    f"{speeds[0] / rate:.0%} / {speeds[1] / rate:.0%} | "
                    f"{contender.peak_mib['inference']:.0f} / {contender.peak_mib['train']:.0f} |")
    if len(contenders) == 2:
        (ours, hf), memory = medians, [contender.peak_mib for contender in contenders]
        rows.append(f"| {attention} | ours vs HF | {hf['inference'] / ours['inference']:.2f}× | "
                    f"{hf['train'] / ours['train']:.2f}× | | | "
                    f"{memory[0]['inference'] / memory[1]['inference']:.2f} / "
                    f"{memory[0]['train'] / memory[1]['train']:.2f} |")
    return rows


def figure(value: float) -> str:
    """Three significant digits, without an exponent."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
