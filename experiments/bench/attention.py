"""Attention kernels alone, forward + backward, at the shapes the schemes give them: PyTorch's fused kernel
(`scaled_dot_product_attention`), the explicit products (`softmax(q kᵀ) v`, as HF computes it) and ours on CPU in
bf16 (`head_groups`). q, k and v are the strided views of one `qkv` output, as in the model.

Per kernel: milliseconds per call (median), the rate of the two products forward and four backward (multiply-adds,
fvcore's units) and its share of a large matrix product's rate, and the system time per call: the operating system
zeroing fresh pages, the explicit products' hidden cost at long sequences.

    python -m experiments.bench attention                            # bf16: divided's time step, a frame, a clip
    python -m experiments.bench attention --shapes 2,12,3137,64 --dtype fp32
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from experiments.bench.model import matmul_rate
from lightning_video.models import head_groups

# [batch (clips × groups), heads, tokens, head_dim] of ViT-B/16 8×224 at batch 2: divided's temporal step (392 patch
# positions × 2 clips, 8 frames), a frame of space-only or divided's spatial step (16 frames, 197 tokens), joint's clip
SHAPES = {"time step": (392, 12, 8, 64), "frame": (16, 12, 197, 64), "clip": (2, 12, 1569, 64)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shapes", nargs="+", default=[",".join(map(str, shape)) for shape in SHAPES.values()],
                        help="batch,heads,tokens,head_dim of each case (default: ViT-B/16 8×224 at batch 2)")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)


def run(args: argparse.Namespace) -> None:
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    rate = matmul_rate(torch.device("cpu"), dtype)
    print(f"attention bench: cpu {args.dtype}, threads {torch.get_num_threads()}, matmul rate {rate:.0f} GFLOP/s; "
          f"forward + backward, {args.warmup} warm-up + {args.repeats} timed calls per kernel, kernels alternated\n")
    print("| shape | kernel | ms per call | GFLOP/s | of matmul rate | system ms per call |")
    print("|---|---|---|---|---|---|")
    for text in args.shapes:
        batch, heads, tokens, channels = (int(size) for size in text.split(","))
        macs = 6 * batch * heads * tokens * tokens * channels
        for name, (milliseconds, system) in time_kernels((batch, heads, tokens, channels), dtype, args).items():
            gflops = macs / milliseconds / 1e6
            print(f"| {text} | {name} | {milliseconds:.1f} | {gflops:.0f} | {gflops / rate:.0%} | {system:.1f} |")


def time_kernels(shape: tuple[int, int, int, int], dtype: torch.dtype,
                 args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Median wall and system milliseconds of one forward + backward per kernel."""
    batch, heads, tokens, channels = shape
    torch.manual_seed(0)
    qkv = torch.randn(batch, tokens, 3, heads, channels, dtype=dtype, requires_grad=True)
    upstream = torch.randn(batch, heads, tokens, channels, dtype=dtype)
    scale = channels**-0.5
    kernels = {"fused": F.scaled_dot_product_attention,
               "explicit": lambda q, k, v: ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1) @ v,
               "head_groups": lambda q, k, v: head_groups.attention(q, k, v, scale)}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in kernels}
    for repeat in range(args.warmup + args.repeats):
        for name, kernel in kernels.items():
            system, start = resource.getrusage(resource.RUSAGE_SELF).ru_stime, time.perf_counter()
            kernel(*(t.transpose(1, 2) for t in qkv.unbind(2))).backward(upstream)
            took = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_stime - system
            qkv.grad = None
            if repeat >= args.warmup:
                times[name].append(took)
    return {name: tuple(1e3 * statistics.median(sample[i] for sample in samples) for i in range(2))
            for name, samples in times.items()}
