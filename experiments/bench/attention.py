"""Attention kernels alone, forward + backward, at the shapes the schemes give them: PyTorch's fused kernel
(`scaled_dot_product_attention`), the explicit products (`softmax(q kᵀ) v`, as HF computes it) and ours on CPU in
bf16 (`head_groups`). q, k and v are the strided views of one `qkv` output, as in the model.

Per kernel: milliseconds per call (median), the rate of the two products forward and four backward (multiply-adds,
fvcore's units) and its share of a large matrix product's rate, and the system time per call: the operating system
zeroing fresh pages, the explicit products' hidden cost at long sequences. Two more rows split `head_groups` into its
parts, each timed alone on the same buffers: its seven products (the backward recomputes the weights) and its
softmax work (forward twice, backward once); what neither accounts for is the rest of its time. Every row's GFLOP/s
is the six products' work over that row's time: a part's row is the rate the kernel would have if the other part
were free.

    python -m experiments.bench attention                            # bf16: divided's time step, a frame, a clip
    python -m experiments.bench attention --shapes 2,12,3137,64 --dtype fp32
"""
from __future__ import annotations

import argparse
import functools
import resource
import statistics
import time
from collections.abc import Callable

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
            print(f"| {text} | {name} | {milliseconds:.3g} | {gflops:.3g} | {gflops / rate:.0%} | {system:.1f} |")


def time_kernels(shape: tuple[int, int, int, int], dtype: torch.dtype,
                 args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Median wall and system milliseconds of one forward + backward per kernel, and of `head_groups`' parts."""
    batch, heads, tokens, channels = shape
    torch.manual_seed(0)
    qkv = torch.randn(batch, tokens, 3, heads, channels, dtype=dtype, requires_grad=True)
    upstream = torch.randn(batch, heads, tokens, channels, dtype=dtype)
    scale = channels**-0.5
    kernels = {"fused": F.scaled_dot_product_attention,
               "explicit": lambda q, k, v: ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1) @ v,
               "head_groups": lambda q, k, v: head_groups.attention(q, k, v, scale)}
    work = {name: functools.partial(forward_backward, kernel, qkv, upstream) for name, kernel in kernels.items()}
    work.update(head_group_parts(shape, dtype))
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in work}
    for repeat in range(args.warmup + args.repeats):
        for name, call in work.items():
            system, start = resource.getrusage(resource.RUSAGE_SELF).ru_stime, time.perf_counter()
            call()
            took = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_stime - system
            if repeat >= args.warmup:
                times[name].append(took)
    return {name: tuple(1e3 * statistics.median(sample[i] for sample in samples) for i in range(2))
            for name, samples in times.items()}


def forward_backward(kernel: Callable[..., torch.Tensor], qkv: torch.Tensor, upstream: torch.Tensor) -> None:
    kernel(*(t.transpose(1, 2) for t in qkv.unbind(2))).backward(upstream)
    qkv.grad = None


def head_group_parts(shape: tuple[int, int, int, int], dtype: torch.dtype) -> dict[str, Callable[[], object]]:
    """`head_groups`' products and its softmax work, each alone, over buffers of its group size."""
    batch, heads, tokens, channels = shape
    q, k, v, upstream = (torch.randn(batch * heads, tokens, channels, dtype=dtype) for _ in range(4))
    size = head_groups.group_size(q, k)
    buffers = [torch.randn(size, tokens, tokens, dtype=dtype) for _ in range(2)]
    out = torch.empty_like(q)
    groups = head_groups.groups(q, k)

    def products() -> None:
        for group in groups:
            weights, gradient = (buffer[: group.stop - group.start] for buffer in buffers)
            for _ in range(2):  # forward, then recomputed in the backward
                torch.bmm(q[group], k[group].transpose(1, 2), out=weights)
            torch.bmm(weights, v[group], out=out[group])
            torch.bmm(weights.transpose(1, 2), upstream[group], out=out[group])
            torch.bmm(upstream[group], v[group].transpose(1, 2), out=gradient)
            torch.bmm(gradient, k[group], out=out[group])
            torch.bmm(gradient.transpose(1, 2), q[group], out=out[group])

    def softmax() -> None:
        for group in groups:
            weights, gradient = (buffer[: group.stop - group.start] for buffer in buffers)
            for _ in range(2):
                torch.ops.aten._softmax.out(weights, -1, False, out=weights)
            torch.ops.aten._softmax_backward_data.out(gradient, weights, -1, dtype, grad_input=gradient)

    return {"head_groups: products alone": products, "head_groups: softmax alone": softmax}
