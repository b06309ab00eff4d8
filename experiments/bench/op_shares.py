"""Where a piece of work spends its time, by kind of operator: the matrix products a FLOP rate is made of, the fused
attention kernels, and the rest (dtype casts, layout copies, normalisation, activations, elementwise arithmetic, the
optimizer), from the self times of one `torch.profiler` run.

The shares say what a faster matrix product cannot speed up: with bf16 products twice as fast as fp32 ones, a step
can only get close to twice as fast if little of its time lies outside them.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile

MATRIX_PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution",
                   "aten::convolution_backward", "aten::_fused_matmul", "aten::addmv_", "aten::mv")
NORMALISATION = ("aten::native_layer_norm", "aten::native_layer_norm_backward")
ACTIVATIONS = ("aten::gelu", "aten::gelu_backward", "aten::_softmax", "aten::_softmax_backward_data")
KINDS = ("matrix products", "attention kernels", "dtype casts", "layout copies", "LayerNorm", "GELU, softmax",
         "optimizer", "other")


def kind(event: FunctionEvent) -> str:
    """The kind of an operator event, for its self time."""
    name = event.name
    if name in MATRIX_PRODUCTS:
        return "matrix products"
    if name.startswith("aten::_scaled_dot_product") or name.startswith("aten::_flash_attention"):
        return "attention kernels"
    if name == "aten::copy_":
        parent = event.cpu_parent
        return "dtype casts" if parent is not None and parent.name == "aten::_to_copy" else "layout copies"
    if name in NORMALISATION:
        return "LayerNorm"
    if name in ACTIVATIONS:
        return "GELU, softmax"
    if "adam" in name.lower() or name.startswith("Optimizer."):
        return "optimizer"
    return "other"


def time_shares(work: Callable[[], object], repeats: int = 2) -> dict[str, float]:
    """Each kind's share of the operators' self time over `repeats` calls of `work` (CPU operators; on CUDA this is
    launch time, not kernel time, so only CPU runs are profiled)."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(repeats):
            work()
    totals = dict.fromkeys(KINDS, 0.0)
    for event in profiler.events():
        totals[kind(event)] += event.self_cpu_time_total
    everything = sum(totals.values()) or 1.0
    return {name: total / everything for name, total in totals.items()}
